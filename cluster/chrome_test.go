package cluster_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/latchauth/latch/internal/browsertest"
)

// Bounds of the browser's waits: each step, and the browser's whole life.
const (
	chromeStep = 20 * time.Second
	chromeLife = 4 * time.Minute
)

// page is one tab of a headless Chromium started for one test, with a
// fresh profile. (The cluster's cookie-jar client is called browser.)
type page struct {
	t   *testing.T
	ctx context.Context
}

// startChrome starts Chromium for the test and returns its first tab; the
// test's end closes it.
func startChrome(t *testing.T) *page {
	t.Helper()
	return &page{t: t, ctx: browsertest.Start(t, chromeLife)}
}

// sibling opens another tab in the same browser context: it shares the
// cookies.
func (p *page) sibling() *page {
	p.t.Helper()
	ctx, cancel := chromedp.NewContext(p.ctx)
	p.t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		p.t.Fatalf("open a tab: %v", err)
	}
	return &page{t: p.t, ctx: ctx}
}

// do runs steps under the step timeout.
func (p *page) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, chromeStep)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		p.t.Fatalf("%s: %v; page: %v", what, err, p.state())
	}
}

func (p *page) navigate(url string) {
	p.t.Helper()
	p.do("navigate to "+url, chromedp.Navigate(url))
}

// eval evaluates expr in the page (awaiting a promise) and decodes its
// JSON-serialisable result into v.
func (p *page) eval(expr string, v any) {
	p.t.Helper()
	if err := p.tryEval(chromeStep, expr, v); err != nil {
		p.t.Fatalf("evaluate %s: %v", expr, err)
	}
}

func (p *page) tryEval(timeout time.Duration, expr string, v any) error {
	return browsertest.Eval(p.ctx, timeout, expr, v)
}

// waitJS waits until expr is true in the page. It survives navigations:
// an evaluation that fails while a page is replaced is retried.
func (p *page) waitJS(what, expr string) {
	p.t.Helper()
	if ok, lastErr := browsertest.Poll(p.ctx, chromeStep, expr); !ok {
		p.t.Fatalf("timed out waiting for %s (%s); last error: %v; page: %v", what, expr, lastErr, p.state())
	}
}

// state describes the page for a failure message.
func (p *page) state() any { return browsertest.State(p.ctx) }

// cookies returns the cookies the browser would send to url
// (Network.getCookies), by name.
func (p *page) cookies(url string) map[string]*network.Cookie {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, chromeStep)
	defer cancel()
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{url}})
	if err != nil {
		p.t.Fatalf("Network.getCookies: %v", err)
	}
	out := map[string]*network.Cookie{}
	for _, c := range res.Cookies {
		if _, dup := out[c.Name]; dup {
			p.t.Errorf("two cookies named %s for %s", c.Name, url)
		}
		out[c.Name] = c
	}
	return out
}

// screenshot saves a full-page PNG to cluster/artifacts/name.
func (p *page) screenshot(name string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, chromeStep)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.MkdirAll("artifacts", 0o755); err != nil {
		p.t.Fatal(err)
	}
	path := filepath.Join("artifacts", name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.t.Fatal(err)
	}
	p.t.Logf("screenshot: cluster/%s", path)
}
