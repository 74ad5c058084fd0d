// Package e2e_test drives Latch's pages and browser SDK in a real headless
// Chromium: the cookies a sign-in sets, where the browser sends them, the
// SDK's transparent refresh (one per page and one per browser), the CSRF
// defence against another site, revocation and sign-out.
//
// Every test starts one in-process Latch instance on 127.0.0.1 with the
// issuer http://localhost:PORT (so cookies get the __Host- and __Secure-
// prefixes and Secure, which Chromium honours on localhost), a settable
// clock, and one browser process; tabs and browser contexts are separate
// targets of that process. A recording middleware in front of the server
// logs every request's cookies and answer.
//
// Without Chromium the tests skip, and fail where LATCH_TEST_REQUIRE names
// "browser". LATCH_CHROMIUM overrides the browser path (default
// /usr/bin/chromium, then chromium on PATH).
package e2e_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/storage"
	"github.com/chromedp/chromedp"

	"github.com/latchauth/latch/config"
	"github.com/latchauth/latch/instance"
	"github.com/latchauth/latch/internal/browsertest"
	"github.com/latchauth/latch/internal/testenv"
)

// Cookie names on http://localhost (see server.NewCookies).
const (
	accessCookie  = "__Host-latch_at"
	refreshCookie = "__Secure-latch_rt"
	csrfCookie    = "__Host-latch_csrf"
	ssoCookie     = "__Host-latch_sso"
)

// Bounds of the waits. Every browser call runs under stepTimeout; a whole
// test under testTimeout, which also bounds the browser's life.
const (
	stepTimeout = 20 * time.Second
	testTimeout = 150 * time.Second
)

// sdkTabPath is a tiny page on the Latch origin that loads the browser SDK
// and exposes a cookie-mode client for the "demo" client as window.latch.
// The recording middleware serves it; it never reaches the server.
const sdkTabPath = "/e2e/sdk-tab"

const sdkTabHTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>SDK tab</title></head>
<body><p id="state">loading</p>
<script type="module">
import { createClient } from '/sdk/latch.js';
const client = createClient({ mode: 'cookie', clientId: 'demo' });
const events = [];
for (const type of ['login', 'refresh', 'logout', 'sessionExpired']) {
  client.on(type, (ev) => events.push({ type: ev.type, fromOtherTab: ev.fromOtherTab }));
}
window.latch = client;
window.latchEvents = events;
window.latchReady = true;
document.getElementById('state').textContent = 'ready';
</script></body></html>`

// request is what the recording middleware saw of one request.
type request struct {
	Seq          int
	Method, Path string
	RawQuery     string
	Cookies      map[string]string
	Authz        bool   // an Authorization header was sent
	FetchSite    string // Sec-Fetch-Site
	Origin       string
	Status       int
}

func (r request) String() string {
	names := make([]string, 0, len(r.Cookies))
	for n := range r.Cookies {
		names = append(names, n)
	}
	return fmt.Sprintf("#%d %s %s -> %d cookies=%v site=%q origin=%q", r.Seq, r.Method, r.Path, r.Status, names, r.FetchSite, r.Origin)
}

// recorder wraps the server and logs every request.
type recorder struct {
	next http.Handler
	mu   sync.Mutex
	reqs []request
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	entry := request{
		Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Cookies: map[string]string{},
		Authz: r.Header.Get("Authorization") != "", FetchSite: r.Header.Get("Sec-Fetch-Site"), Origin: r.Header.Get("Origin"),
	}
	for _, c := range r.Cookies() {
		entry.Cookies[c.Name] = c.Value
	}
	sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
	if r.URL.Path == sdkTabPath {
		sw.Header().Set("Content-Type", "text/html; charset=utf-8")
		sw.Header().Set("Cache-Control", "no-store")
		_, _ = sw.Write([]byte(sdkTabHTML))
	} else {
		rec.next.ServeHTTP(sw, r)
	}
	entry.Status = sw.code
	rec.mu.Lock()
	entry.Seq = len(rec.reqs)
	rec.reqs = append(rec.reqs, entry)
	rec.mu.Unlock()
}

// mark is the position from which since reads.
func (rec *recorder) mark() int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return len(rec.reqs)
}

// since returns the requests recorded from mark on.
func (rec *recorder) since(mark int) []request {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]request(nil), rec.reqs[mark:]...)
}

// matching returns the requests from mark on with the method and path.
func (rec *recorder) matching(mark int, method, path string) []request {
	var out []request
	for _, r := range rec.since(mark) {
		if r.Method == method && r.Path == path {
			out = append(out, r)
		}
	}
	return out
}

type statusWriter struct {
	http.ResponseWriter
	code        int
	wroteHeader bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.code, w.wroteHeader = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wroteHeader = true
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// syncBuffer collects the server's log.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// latchServer is one in-process Latch instance with the demo seeded,
// served on 127.0.0.1 and addressed as http://localhost:PORT.
type latchServer struct {
	URL   string // http://localhost:PORT
	clock *testenv.Clock
	in    *instance.Instance
	rec   *recorder
	email string // the demo user
	pass  string
}

func startLatch(t *testing.T) *latchServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	cfg := config.Defaults()
	cfg.DataDir = filepath.Join(t.TempDir(), "latch-data")
	cfg.Addr = ln.Addr().String()
	cfg.Issuer = fmt.Sprintf("http://localhost:%d", port)
	// The tests move the clock without a revocation follower running.
	cfg.Revocation.MaxStale = 0
	if err := cfg.Validate(); err != nil {
		ln.Close()
		t.Fatalf("config: %v", err)
	}
	logs := &syncBuffer{}
	clk := testenv.NewClock(time.Now().UTC())
	in, err := instance.Open(t.Context(), cfg, instance.Options{
		Demo: true, Now: clk.Now,
		Log: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		ln.Close()
		t.Fatalf("open instance: %v", err)
	}
	rec := &recorder{next: in.Server}
	hs := &http.Server{Handler: rec, ReadHeaderTimeout: 5 * time.Second}
	go hs.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(ctx)
		in.Close()
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
			var b strings.Builder
			for _, r := range rec.since(0) {
				fmt.Fprintln(&b, r)
			}
			t.Logf("requests:\n%s", b.String())
		}
	})
	return &latchServer{URL: cfg.Issuer, clock: clk, in: in, rec: rec, email: in.Demo.Email, pass: in.Demo.Password}
}

// browser is one headless Chromium process for one test.
type browser struct {
	t   *testing.T
	ctx context.Context // its first tab, in the default browser context
}

// startBrowser starts Chromium, with a fresh profile, for the test; the
// test's end closes it.
func startBrowser(t *testing.T) *browser {
	t.Helper()
	path := browsertest.Path(t)
	// The deadline bounds the browser's whole life, whatever happens.
	life, cancelLife := context.WithTimeout(context.Background(), testTimeout)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(life, browsertest.Options(path)...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	started := false
	t.Cleanup(func() {
		if !started {
			// chromedp's cancel would wait for ever for the allocation
			// token of a browser that failed to start: end the context
			// from above instead.
			cancelLife()
			cancelAlloc()
			return
		}
		// Close the browser gracefully, then make sure it is gone; each
		// step bounded.
		bounded := func(f func()) {
			done := make(chan struct{})
			go func() { defer close(done); f() }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Logf("closing the browser took over 10s; going on")
			}
		}
		bounded(func() {
			tctx, stop := context.WithTimeout(ctx, 10*time.Second)
			defer stop()
			_ = chromedp.Cancel(tctx)
		})
		cancelLife() // kills the process if it is still there
		bounded(cancel)
		bounded(cancelAlloc) // waits for the process and removes the profile
	})
	start := time.Now()
	if err := chromedp.Do(ctx); err != nil {
		testenv.Unavailable(t, testenv.Browser, fmt.Errorf("start %s: %w", path, err))
	}
	started = true
	t.Logf("browser started in %v", time.Since(start).Round(time.Millisecond))
	return &browser{t: t, ctx: ctx}
}

// tab is one page target.
type tab struct {
	t   *testing.T
	ctx context.Context
}

// newProfile opens a tab, for test t, in a new browser context: its own
// cookie jar and storage, like another browser or device.
func (b *browser) newProfile(t *testing.T) *tab {
	t.Helper()
	return openTab(t, b.ctx, chromedp.WithNewBrowserContext())
}

// sibling opens another tab, for test t, in the same browser context as
// tb: they share cookies, storage, Web Locks and BroadcastChannels.
func (tb *tab) sibling(t *testing.T) *tab {
	t.Helper()
	return openTab(t, tb.ctx)
}

func openTab(t *testing.T, parent context.Context, opts ...chromedp.ContextOption) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(parent, opts...)
	t.Cleanup(cancel)
	// The first Do creates the target and binds it to ctx (no timeout here:
	// the browser's own deadline bounds it).
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("open tab: %v", err)
	}
	return &tab{t: t, ctx: ctx}
}

// do runs steps under the step timeout.
func (tb *tab) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		tb.t.Fatalf("%s: %v", what, err)
	}
}

func (tb *tab) navigate(url string) {
	tb.t.Helper()
	tb.do("navigate to "+url, chromedp.Navigate(url))
}

// evalJSON evaluates expr in the page (awaiting a promise) and decodes its
// JSON-serialisable result into v.
func (tb *tab) evalJSON(expr string, v any) {
	tb.t.Helper()
	if err := tb.tryEvalJSON(stepTimeout, expr, v); err != nil {
		tb.t.Fatalf("evaluate %s: %v", expr, err)
	}
}

func (tb *tab) tryEvalJSON(timeout time.Duration, expr string, v any) error {
	return browsertest.Eval(tb.ctx, timeout, expr, v)
}

// waitJS waits until expr is true in the page. It survives navigations:
// an evaluation that fails while a page is replaced is retried.
func (tb *tab) waitJS(what, expr string) {
	tb.t.Helper()
	tb.waitJSFor(stepTimeout, what, expr)
}

// waitJSFor is waitJS with its own bound, for what must happen quickly.
func (tb *tab) waitJSFor(timeout time.Duration, what, expr string) {
	tb.t.Helper()
	if lastErr, ok := tb.poll(timeout, expr); !ok {
		tb.t.Fatalf("timed out waiting for %s (%s); last error: %v; page: %v", what, expr, lastErr, tb.pageState())
	}
}

// poll evaluates expr until it is true or timeout passes.
func (tb *tab) poll(timeout time.Duration, expr string) (lastErr error, ok bool) {
	ok, lastErr = browsertest.Poll(tb.ctx, timeout, expr)
	return lastErr, ok
}

// pageState describes the page for a failure message.
func (tb *tab) pageState() any { return browsertest.State(tb.ctx) }

// cookies returns every cookie of the tab's browser context, by name,
// whatever its path (Storage.getCookies on the browser endpoint).
func (tb *tab) cookies() map[string]*network.Cookie {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, stepTimeout)
	defer cancel()
	res, err := chromedp.CallBrowser(ctx, storage.GetCookies, storage.GetCookiesParams{
		BrowserContextID: chromedp.FromContext(tb.ctx).BrowserContextID,
	})
	if err != nil {
		tb.t.Fatalf("Storage.getCookies: %v", err)
	}
	out := map[string]*network.Cookie{}
	for _, c := range res.Cookies {
		if _, dup := out[c.Name]; dup {
			tb.t.Errorf("two cookies named %s in the jar", c.Name)
		}
		out[c.Name] = c
	}
	return out
}

// setUserAgent makes the tab present another browser (for the account
// page's device list).
func (tb *tab) setUserAgent(ua string) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, stepTimeout)
	defer cancel()
	if _, err := chromedp.Call(ctx, emulation.SetUserAgentOverride, emulation.SetUserAgentOverrideParams{UserAgent: ua}); err != nil {
		tb.t.Fatalf("set user agent: %v", err)
	}
}

// screenshot saves a full-page PNG to artifacts/name and returns its path.
func (tb *tab) screenshot(name string) string {
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
	return p
}

// loginViaPage signs in through /login: type the credentials, submit, and
// wait for the account page to show the sessions.
func (tb *tab) loginViaPage(base, email, password string) {
	tb.t.Helper()
	tb.navigate(base + "/login")
	tb.waitJS("the sign-in form to be ready", `!document.getElementById('submit').disabled`)
	tb.do("type the credentials and submit",
		chromedp.SendKeys(chromedp.ID("email"), email),
		chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Click(chromedp.ID("submit")),
	)
	tb.waitJS("the account page with its sessions",
		`location.pathname === '/account' && document.querySelector('#sessions .session-row') !== null`)
}

// openSDKTab loads the SDK test page and waits for window.latch.
func (tb *tab) openSDKTab(base string) {
	tb.t.Helper()
	tb.navigate(base + sdkTabPath)
	tb.waitJS("the SDK to load", `window.latchReady === true`)
}

// fetchResult is what a page-level fetch reports.
type fetchResult struct {
	Status int            `json:"status"`
	Body   map[string]any `json:"body"`
	Error  string         `json:"error"`
}

// jsFetchResult turns a Response promise into a fetchResult (as a JS
// function body taking p).
const jsFetchResult = `(p) => p.then(async (r) => { let body = null; try { body = await r.json(); } catch {} return { status: r.status, body }; }, (e) => ({ status: 0, error: String(e && (e.code || e.message) || e) }))`
