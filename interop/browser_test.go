package interop_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/latchauth/latch/internal/testenv"
)

// Bounds of the browser's waits: each step, and the browser's whole life.
const (
	stepTimeout    = 20 * time.Second
	browserTimeout = 3 * time.Minute
)

// chromiumPath finds the browser as e2e/ does (LATCH_CHROMIUM, then
// /usr/bin/chromium, then chromium on PATH), or ends the test: a skip, or
// a failure where LATCH_TEST_REQUIRE names "browser".
func chromiumPath(t *testing.T) string {
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

// tab is a page of a headless Chromium started for one test, with a fresh
// profile.
type tab struct {
	t   *testing.T
	ctx context.Context
}

// startBrowser starts Chromium for the test; the test's end closes it.
func startBrowser(t *testing.T) *tab {
	t.Helper()
	path := chromiumPath(t)
	life, cancelLife := context.WithTimeout(context.Background(), browserTimeout)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(life,
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
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
	return &tab{t: t, ctx: ctx}
}

// do runs steps under the step timeout.
func (tb *tab) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		tb.t.Fatalf("%s: %v; page: %v", what, err, tb.pageState())
	}
}

// waitJS waits until expr is true in the page, across navigations (an
// evaluation that fails while a page is replaced is retried).
func (tb *tab) waitJS(what, expr string) {
	tb.t.Helper()
	deadline := time.Now().Add(stepTimeout)
	var lastErr error
	for time.Now().Before(deadline) {
		var ok bool
		lastErr = tb.evalJSON("(() => { try { return !!("+expr+"); } catch { return false; } })()", &ok)
		if lastErr == nil && ok {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	tb.t.Fatalf("timed out waiting for %s (%s); last error: %v; page: %v", what, expr, lastErr, tb.pageState())
}

func (tb *tab) evalJSON(expr string, v any) error {
	ctx, cancel := context.WithTimeout(tb.ctx, 2*time.Second)
	defer cancel()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](expr))
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, v)
}

// pageState describes the page for a failure message.
func (tb *tab) pageState() any {
	var state any
	_ = tb.evalJSON(`({url: location.href, title: document.title, text: document.body ? document.body.innerText.slice(0, 800) : ''})`, &state)
	return state
}

// location is the page's URL.
func (tb *tab) location() string {
	tb.t.Helper()
	var href string
	if err := tb.evalJSON(`location.href`, &href); err != nil {
		tb.t.Fatalf("location: %v", err)
	}
	return href
}

// signIn types the credentials into Latch's sign-in page, which the tab
// shows, and submits.
func (tb *tab) signIn(email, password string) {
	tb.t.Helper()
	tb.waitJS("the sign-in form to be ready", `location.pathname === '/login' && !document.getElementById('submit').disabled`)
	tb.do("type the credentials and submit",
		chromedp.SendKeys(chromedp.ID("email"), email),
		chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Click(chromedp.ID("submit")),
	)
}

// screenshot saves a full-page PNG to artifacts/name.
func (tb *tab) screenshot(name string) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, stepTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		tb.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.MkdirAll("artifacts", 0o755); err != nil {
		tb.t.Fatal(err)
	}
	p := filepath.Join("artifacts", name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		tb.t.Fatal(err)
	}
	tb.t.Logf("screenshot: interop/%s", p)
}
