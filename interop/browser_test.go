package interop_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/latchauth/latch/internal/browsertest"
)

// Bounds of the browser's waits: each step, and the browser's whole life.
const (
	stepTimeout    = 20 * time.Second
	browserTimeout = 3 * time.Minute
)

// tab is a page of a headless Chromium started for one test, with a fresh
// profile.
type tab struct {
	t   *testing.T
	ctx context.Context
}

// startBrowser starts Chromium for the test; the test's end closes it.
func startBrowser(t *testing.T) *tab {
	t.Helper()
	return &tab{t: t, ctx: browsertest.Start(t, browserTimeout)}
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
	if ok, lastErr := browsertest.Poll(tb.ctx, stepTimeout, expr); !ok {
		tb.t.Fatalf("timed out waiting for %s (%s); last error: %v; page: %v", what, expr, lastErr, tb.pageState())
	}
}

func (tb *tab) evalJSON(expr string, v any) error {
	return browsertest.Eval(tb.ctx, 2*time.Second, expr, v)
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
