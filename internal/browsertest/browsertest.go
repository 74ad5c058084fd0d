// Package browsertest starts the headless Chromium that the browser tests
// of several packages drive (interop/, cluster/): it finds the browser,
// starts it with a fresh profile for one test, and closes it when the test
// ends. A missing browser skips the test, or fails it where
// LATCH_TEST_REQUIRE names "browser" (package testenv).
package browsertest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/latchauth/latch/internal/testenv"
)

// Path finds the browser: LATCH_CHROMIUM, then /usr/bin/chromium, then
// chromium on PATH; or ends the test as testenv.Unavailable says.
func Path(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("LATCH_CHROMIUM"); p != "" {
		return p
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	p, err := exec.LookPath("chromium")
	if err != nil {
		testenv.Unavailable(t, testenv.Browser, fmt.Errorf("no /usr/bin/chromium and %w", err))
	}
	return p
}

// Start starts a headless Chromium with a fresh profile for the test, to
// live at most life, and returns the context of its first tab (chromedp's
// context: run actions with chromedp.Run on it). The test's end closes the
// browser.
func Start(t testing.TB, life time.Duration) context.Context {
	t.Helper()
	path := Path(t)
	lifeCtx, cancelLife := context.WithTimeout(context.Background(), life)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(lifeCtx, Options(path)...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	started := false
	t.Cleanup(func() {
		if started {
			stop, done := context.WithTimeout(ctx, 10*time.Second)
			_ = chromedp.Cancel(stop)
			done()
		}
		// Ending the life context kills a browser still there; chromedp's
		// cancel would wait for ever on one that never started.
		cancelLife()
		if started {
			cancel()
		}
		cancelAlloc()
	})
	if err := chromedp.Do(ctx); err != nil {
		testenv.Unavailable(t, testenv.Browser, fmt.Errorf("start %s: %w", path, err))
	}
	started = true
	return ctx
}

// Options are the allocator options of every test browser: Chromium at
// path, headless, with nothing of its own reaching the network, in a
// 1280×900 window. chromedp adds a fresh --user-data-dir in the temporary
// directory and removes it when the browser has exited.
func Options(path string) []chromedp.ExecAllocatorOption {
	return []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("window-size", "1280,900"),
	}
}

// Eval evaluates expr in the tab of ctx, awaiting a promise, within
// timeout, and decodes its JSON-serialisable result into v.
func Eval(ctx context.Context, timeout time.Duration, expr string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("decode %s: %w", raw, err)
	}
	return nil
}

// Poll evaluates expr until it is true or timeout passes, and reports
// whether it became true (with the last error if not). It survives
// navigations: an evaluation that fails while a page is replaced, or an
// expression that throws, counts as false and is tried again.
func Poll(ctx context.Context, timeout time.Duration, expr string) (ok bool, lastErr error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		err := Eval(ctx, 2*time.Second, "(() => { try { return !!("+expr+"); } catch { return false; } })()", &ok)
		if err == nil && ok {
			return true, nil
		}
		lastErr = err
		time.Sleep(25 * time.Millisecond)
	}
	return false, lastErr
}

// State describes the page of ctx for a failure message: its URL, title
// and the start of its text.
func State(ctx context.Context) any {
	var s any
	_ = Eval(ctx, 2*time.Second, `({url: location.href, title: document.title, text: document.body ? document.body.innerText.slice(0, 800) : ''})`, &s)
	return s
}
