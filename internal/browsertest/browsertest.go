// Package browsertest starts the headless Chromium that the browser tests
// of several packages drive (interop/, cluster/): it finds the browser,
// starts it with a fresh profile for one test, and closes it when the test
// ends. A missing browser skips the test, or fails it where
// LATCH_TEST_REQUIRE names "browser" (package testenv).
package browsertest

import (
	"context"
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
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(lifeCtx,
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
	)
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
