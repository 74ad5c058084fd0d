package cluster_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// Settings of TestGatewayBrowser.
const (
	// browserAccessTTL is the auth server's access-token lifetime (the least
	// its configuration accepts).
	browserAccessTTL = 10 * time.Second
	// browserGwRefreshBefore: the gateways refresh when less than this is left.
	browserGwRefreshBefore = 3 * time.Second
	// gwStorm is the number of parallel fetches at the moment of expiry.
	gwStorm = 20
	// gwStormGate of them reach the gateways at once (Chromium's limit of
	// connections to one HTTP/1.1 origin).
	gwStormGate = 6
	// gwRevocationBound: a session revoked on the account page ends the
	// gateway session within this.
	gwRevocationBound = time.Second
	// browserGwCookie is the gateway's session cookie on a loopback origin.
	browserGwCookie = "__Host-latch_gw"
)

// TestGatewayBrowser drives `latch gateway` in headless Chromium, end to
// end: one `latch serve` (issuer http://localhost:PORT) on PostgreSQL and
// Redis, and two `latch gateway` processes sharing a session store (their
// own PostgreSQL schema), the Redis and a KEK, behind a round-robin HTTP
// balancer on 127.0.0.1 which the browser knows as the one gateway origin.
// Behind the gateways: an SPA page (auth: session) and an API (auth:
// token, scope orders:read).
//
//  1. Sign-in through the gateway ends with one HttpOnly cookie for the
//     gateway's origin and nothing JavaScript can read; the SPA's fetches
//     reach the API with a bearer token (a POST with X-Latch-CSRF).
//  2. With 10-second access tokens, a fetch after expiry works: the
//     gateway refreshed.
//  3. 20 parallel fetches at the moment of expiry, spread over both
//     gateways, cause exactly one refresh at the auth server and all
//     answer 200.
//  4. Revoking the gateway's session on Latch's /account page (another tab)
//     signs the gateway session out within a second.
//  5. Sign-out through the gateway (POST /auth/logout with the CSRF
//     header) removes the cookie.
func TestGatewayBrowser(t *testing.T) {
	spaTab := startChrome(t)
	c := newCluster(t, options{nodes: 1, localIssuer: true, env: map[string]string{
		"LATCH_TOKENS_ACCESS_TTL": browserAccessTTL.String(),
	}})
	c.addUser(email, password)
	authNode := c.nodes[0]
	latchURL := c.env["LATCH_ISSUER"]

	api := newAPIUpstream(t)
	var pages upstreamLog
	spa := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pages.record(r)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		fmt.Fprint(w, spaHTML)
	}))
	t.Cleanup(spa.Close)

	lb := newBalancer(t)
	pub := lb.url
	secret := c.addGatewayClient("gw", pub)
	storeURL := schemaURL(t, newSchema(t), "")
	kek := c.generateKEK()
	g1 := c.startGateway("gateway1", pub, storeURL, kek, secret, api.srv.URL, spa.URL)
	g2 := c.startGateway("gateway2", pub, storeURL, kek, secret, api.srv.URL, spa.URL)
	gateways := []*node{g1, g2}
	lb.serve(g1, g2)

	// 1. Sign in through the gateway.
	spaTab.navigate(pub + "/orders")
	spaTab.waitJS("Latch's sign-in page, reached from the gateway",
		`location.origin === `+jsString(latchURL)+` && location.pathname === '/login' && !document.getElementById('submit').disabled`)
	spaTab.screenshot("gateway-signin.png")
	spaTab.do("type the credentials and submit",
		chromedp.SendKeys(chromedp.ID("email"), email),
		chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Click(chromedp.ID("submit")),
	)
	spaTab.waitJS("the SPA, signed in", `location.href === `+jsString(pub+"/orders")+` && window.spaReady === true`)
	var who string
	spaTab.eval(`document.getElementById('who').textContent`, &who)
	if !strings.HasPrefix(who, "Signed in as u_") {
		t.Fatalf("the SPA shows %q, want signed in", who)
	}
	spaTab.screenshot("gateway-spa-signed-in.png")

	// One cookie for the gateway's origin: HttpOnly, Secure, SameSite=Lax,
	// an opaque 256-bit id; nothing a script can read.
	jar := spaTab.cookies(pub + "/")
	if len(jar) != 1 || jar[browserGwCookie] == nil {
		t.Fatalf("cookies for %s: %v, want exactly %s", pub, cookieNames(jar), browserGwCookie)
	}
	ck := jar[browserGwCookie]
	if !ck.HTTPOnly || !ck.Secure || ck.SameSite != network.CookieSameSiteLax || ck.Path != "/" || ck.Domain != "127.0.0.1" || len(ck.Value) != 43 || strings.Count(ck.Value, ".") > 0 {
		t.Fatalf("the session cookie: %+v, want HttpOnly, Secure, SameSite=Lax, Path=/, host-only, 43 characters", ck)
	}
	var readable struct {
		Cookie  string `json:"cookie"`
		Local   int    `json:"local"`
		Session int    `json:"session"`
	}
	spaTab.eval(`({cookie: document.cookie, local: localStorage.length, session: sessionStorage.length})`, &readable)
	if readable.Cookie != "" || readable.Local != 0 || readable.Session != 0 {
		t.Fatalf("a script on the SPA reads %+v, want nothing", readable)
	}
	var info map[string]any
	spaTab.eval(`fetch('/auth/session').then(r => r.json())`, &info)
	if info["authenticated"] != true || !strings.HasPrefix(fmt.Sprint(info["sub"]), "u_") {
		t.Fatalf("/auth/session: %v", info)
	}
	for k := range info {
		if !slices.Contains([]string{"authenticated", "sub", "expires_at", "csrf"}, k) {
			t.Errorf("/auth/session tells the page %q", k)
		}
	}
	// What reached the upstreams: the SPA page with the session's bearer
	// token and without the session cookie.
	if len(pages.since(0)) == 0 {
		t.Fatal("the SPA upstream saw no request")
	}
	for _, r := range pages.since(0) {
		if !strings.HasPrefix(r.authz, "Bearer ") || r.claims.Sub == "" {
			t.Errorf("%s %s reached the upstream without a verified bearer token (%q)", r.method, r.path, r.authz)
		}
		if strings.Contains(r.cookie, browserGwCookie) {
			t.Errorf("%s %s reached the upstream with the session cookie", r.method, r.path)
		}
	}

	// The SPA calls the API: a GET, and a POST with X-Latch-CSRF (without
	// it, 403).
	mark := api.mark()
	if res := spaCall(spaTab, "GET", "/api/orders/1", false); res.Status != 200 || res.Body["method"] != "GET" {
		t.Fatalf("GET /api/orders/1 from the SPA: %+v", res)
	}
	if res := spaCall(spaTab, "POST", "/api/orders/", true); res.Status != 200 || res.Body["method"] != "POST" {
		t.Fatalf("POST /api/orders/ with X-Latch-CSRF from the SPA: %+v", res)
	}
	if res := spaCall(spaTab, "POST", "/api/orders/", false); res.Status != 403 || res.Body["error"] != "csrf_failed" {
		t.Fatalf("POST /api/orders/ without X-Latch-CSRF from the SPA: %+v, want 403 csrf_failed", res)
	}
	seen := api.since(mark)
	if len(seen) != 2 || seen[0].method != "GET" || seen[1].method != "POST" {
		t.Fatalf("the API saw %v, want the GET and the CSRF-checked POST", seen)
	}
	for _, r := range seen {
		if !strings.HasPrefix(r.authz, "Bearer ") || !slices.Contains(strings.Fields(r.claims.Scope), "orders:read") || strings.Contains(r.cookie, browserGwCookie) {
			t.Fatalf("the API got %s %s with Authorization %q (scope %q), cookie %q", r.method, r.path, short(r.authz), r.claims.Scope, r.cookie)
		}
	}
	first := seen[len(seen)-1].claims
	t.Logf("signed in: session %s, access token %s expires %s", first.Sid, first.Jti, time.Unix(first.Exp, 0).Format(time.TimeOnly))

	// 2. Transparent refresh: after the access token expired, the SPA
	// still works, with a new token.
	before := c.authRefreshes(authNode)
	waitClock(time.Unix(first.Exp, 0).Add(500 * time.Millisecond))
	mark = api.mark()
	if res := spaCall(spaTab, "GET", "/api/orders/2", false); res.Status != 200 {
		t.Fatalf("GET after the access token expired: %+v", res)
	}
	second := api.since(mark)[0].claims
	if second.Jti == first.Jti || second.Exp <= first.Exp || second.Sid != first.Sid {
		t.Fatalf("after expiry the API got token %s (exp %d, sid %s), want a new one of session %s", second.Jti, second.Exp, second.Sid, first.Sid)
	}
	if d := c.authRefreshes(authNode).minus(before); d.total() != 1 || d["rotated"] != 1 {
		t.Fatalf("refreshes at the auth server for one expired token: %v, want one rotation", d)
	}

	// 3. 20 parallel fetches at the moment of expiry, through both
	// gateways: one refresh at the auth server, no sign-out.
	before = c.authRefreshes(authNode)
	gwBefore := map[string]outcomes{}
	for _, g := range gateways {
		gwBefore[g.name] = c.gatewayRefreshes([]*node{g})
	}
	lbMark := lb.mark()
	mark = api.mark()
	// The browser sends at most 6 requests at a time to one origin over
	// HTTP/1.1: the balancer holds the first 6 until they are all there,
	// so that both gateways see the expired token at the same moment.
	lb.hold("/api/orders/storm-", gwStormGate)
	waitClock(time.Unix(second.Exp, 0))
	var storm []fetchResult
	spaTab.eval(fmt.Sprintf(`Promise.all(Array.from({length: %d}, (_, i) => window.call('GET', '/api/orders/storm-' + i, false)))`, gwStorm), &storm)
	if held := lb.release(); held != gwStormGate {
		t.Errorf("only %d of the storm's requests were in flight together, want %d", held, gwStormGate)
	}
	d := c.authRefreshes(authNode).minus(before)
	gwD := outcomes{}
	var perGatewayRefreshes []string
	for _, g := range gateways {
		dg := c.gatewayRefreshes([]*node{g}).minus(gwBefore[g.name])
		for k, v := range dg {
			gwD[k] += v
		}
		perGatewayRefreshes = append(perGatewayRefreshes, fmt.Sprintf("%s %v", g.name, dg))
	}
	perGateway := lb.counts(lbMark, "/api/orders/")
	t.Logf("storm of %d fetches at expiry: requests per gateway %v; refresh-token redemptions at the auth server %v; gateway refreshes: %s",
		gwStorm, perGateway, d, strings.Join(perGatewayRefreshes, "; "))
	for i, r := range storm {
		if r.Status != 200 {
			t.Errorf("storm fetch %d: %+v", i, r)
		}
	}
	if len(storm) != gwStorm {
		t.Errorf("%d storm results, want %d", len(storm), gwStorm)
	}
	if perGateway[g1.name] == 0 || perGateway[g2.name] == 0 || perGateway[g1.name]+perGateway[g2.name] != gwStorm {
		t.Errorf("the storm went %v over the gateways, want both", perGateway)
	}
	if d.total() != 1 || d["rotated"] != 1 {
		t.Errorf("refresh-token redemptions at the auth server during the storm: %v, want exactly one (rotated)", d)
	}
	if gwD["ok"] != 1 || gwD["invalid"] != 0 || gwD["error"] != 0 || gwD["lost"] != 0 || gwD["timed_out"] != 0 {
		t.Errorf("refreshes at the gateways during the storm: %v, want one ok", gwD)
	}
	jtis := map[string]int{}
	for _, r := range api.since(mark) {
		jtis[r.claims.Jti]++
	}
	if len(jtis) != 1 || jtis[second.Jti] != 0 {
		t.Errorf("the storm's requests carried tokens %v, want one new token", jtis)
	}
	third := api.since(mark)[0].claims
	if t.Failed() {
		t.FailNow()
	}

	// 4. Revocation on Latch's account page, in another tab of the same
	// browser (it has Latch's cookies from the sign-in).
	account := spaTab.sibling()
	account.navigate(latchURL + "/account")
	row := fmt.Sprintf(`#sessions li[data-session-id=%q]`, third.Sid)
	account.waitJS("the gateway's session on the account page", fmt.Sprintf(`document.querySelector(%q) !== null`, row))
	account.do(`click "Sign out" on the gateway's session`, chromedp.Click(chromedp.CSS(row+" button"), chromedp.NodeVisible))
	account.waitJS("the confirmation dialog", `document.getElementById('confirm-dialog').open`)
	revokedAt := time.Now()
	account.do("confirm", chromedp.Click(chromedp.ID("confirm-ok"), chromedp.NodeVisible))
	var signedOutAfter time.Duration
	for polls := 0; ; polls++ {
		res := spaCall(spaTab, "GET", "/api/orders/after-revocation", false)
		if res.Status == 401 && res.Body["error"] == "login_required" {
			signedOutAfter = time.Since(revokedAt)
			t.Logf("revocation on /account → gateway session signed out: %v (%d polls through the balancer)", signedOutAfter.Round(time.Millisecond), polls+1)
			break
		}
		if res.Status != 200 {
			t.Fatalf("GET through the gateway while waiting for the revocation: %+v", res)
		}
		if time.Since(revokedAt) > 5*time.Second {
			t.Fatalf("the gateway session is still signed in %v after its revocation on /account", time.Since(revokedAt).Round(time.Millisecond))
		}
	}
	if signedOutAfter > gwRevocationBound {
		t.Errorf("revocation → signed out took %v, bound %v", signedOutAfter.Round(time.Millisecond), gwRevocationBound)
	}
	account.waitJS("the row to go", fmt.Sprintf(`document.querySelector(%q) === null`, row))
	// Both gateways agree: the session is over.
	for _, g := range gateways {
		r := c.must(g, "GET", "/auth/session", nil, "Cookie", browserGwCookie+"="+ck.Value)
		if r.code != 200 || r.body["authenticated"] != false {
			t.Fatalf("/auth/session on %s after the revocation: %s", g.name, r)
		}
	}

	// 5. Sign in again (the SSO session at Latch is still there: no
	// password), then sign out through the gateway.
	spaTab.navigate(pub + "/orders")
	spaTab.waitJS("the SPA, signed in again", `location.href === `+jsString(pub+"/orders")+` && window.spaReady === true && document.getElementById('who').textContent.startsWith('Signed in as')`)
	if jar := spaTab.cookies(pub + "/"); len(jar) != 1 || jar[browserGwCookie] == nil || jar[browserGwCookie].Value == ck.Value {
		t.Fatalf("cookies after signing in again: %v, want one new %s", cookieNames(jar), browserGwCookie)
	}
	var out fetchResult
	spaTab.eval(`fetch('/auth/logout', {method: 'POST'}).then(r => ({status: r.status}))`, &out)
	if out.Status != 403 {
		t.Fatalf("POST /auth/logout without X-Latch-CSRF: %d, want 403", out.Status)
	}
	var signedOut struct {
		Status int    `json:"status"`
		End    string `json:"end"`
	}
	spaTab.eval(`fetch('/auth/logout', {method: 'POST', headers: {'X-Latch-CSRF': '1'}}).then(async r => ({status: r.status, end: (await r.json()).end_session_url}))`, &signedOut)
	if signedOut.Status != 200 || !strings.Contains(signedOut.End, "/oauth2/logout?") {
		t.Fatalf("POST /auth/logout with X-Latch-CSRF: %d %q, want 200 with the end_session_url", signedOut.Status, signedOut.End)
	}
	if jar := spaTab.cookies(pub + "/"); len(jar) != 0 {
		t.Fatalf("cookies for %s after logout: %v, want none", pub, cookieNames(jar))
	}
	if res := spaCall(spaTab, "GET", "/api/orders/after-logout", false); res.Status != 401 || res.Body["error"] != "login_required" {
		t.Fatalf("GET /api/orders/ after logout: %+v, want 401 login_required", res)
	}
	spaTab.eval(`fetch('/auth/session').then(r => r.json())`, &info)
	if info["authenticated"] != false {
		t.Fatalf("/auth/session after logout: %v", info)
	}

	// The fetch sign-out left the single sign-on session at Latch (this
	// page did not follow end_session_url): a navigation signs in again
	// without a password. The sign-out form (a
	// navigation) ends that too, and comes back through the gateway to
	// Latch's sign-in page.
	spaTab.navigate(pub + "/orders")
	spaTab.waitJS("the SPA, signed in again by single sign-on", `location.href === `+jsString(pub+"/orders")+` && window.spaReady === true && document.getElementById('who').textContent.startsWith('Signed in as')`)
	if jar := spaTab.cookies(pub + "/"); len(jar) != 1 || jar[browserGwCookie] == nil {
		t.Fatalf("cookies after signing in by single sign-on: %v, want %s", cookieNames(jar), browserGwCookie)
	}
	spaTab.do(`click "Sign out"`, chromedp.Click(chromedp.ID("signout"), chromedp.NodeVisible))
	spaTab.waitJS("Latch's sign-in page after the sign-out form",
		`location.origin === `+jsString(latchURL)+` && location.pathname === '/login' && !document.getElementById('submit').disabled`)
	// The session cookie is gone; what the gateway's origin holds now is
	// the sealed state of the sign-in the browser is in the middle of.
	for name, ck := range spaTab.cookies(pub + "/") {
		if !strings.HasPrefix(name, browserGwCookie+"_login_") || !ck.HTTPOnly {
			t.Fatalf("cookies for %s after the sign-out form: %v, want no session cookie", pub, cookieNames(spaTab.cookies(pub+"/")))
		}
	}
	if jar := spaTab.cookies(latchURL + "/"); jar["__Host-latch_sso"] != nil {
		t.Fatalf("Latch's SSO cookie is still there after the sign-out form: %v", cookieNames(jar))
	}

	for _, g := range gateways {
		for k, v := range c.metrics(g) {
			if strings.HasPrefix(k, "latch_gateway_requests_total{") && strings.Contains(k, `code="5`) && v > 0 {
				t.Errorf("%s: %s = %v", g.name, k, v)
			}
		}
	}
	c.no500s(authNode)
}

// spaHTML is the single-page app: it shows who is signed in
// (/auth/session) and offers window.call for the test to fetch with.
const spaHTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Orders</title>
<style>body{font:16px system-ui,sans-serif;margin:2rem;max-width:40rem}pre{background:#f4f4f4;padding:1rem}</style></head>
<body><h1>Orders</h1><p id="who">…</p>
<form method="post" action="/auth/logout"><input type="hidden" name="csrf" id="csrf"><button id="signout">Sign out</button></form><h2>GET /api/orders/1</h2><pre id="out"></pre>
<script>
window.call = async (method, path, csrf) => {
  try {
    const r = await fetch(path, {method, headers: csrf ? {'X-Latch-CSRF': '1'} : {}});
    let body = null;
    try { body = await r.json(); } catch {}
    return {status: r.status, body};
  } catch (e) {
    return {status: 0, error: String(e)};
  }
};
(async () => {
  const s = await (await fetch('/auth/session')).json();
  document.getElementById('who').textContent = s.authenticated ? 'Signed in as ' + s.sub : 'Signed out';
  document.getElementById('csrf').value = s.csrf || '';
  document.getElementById('out').textContent = JSON.stringify(await window.call('GET', '/api/orders/1'), null, 2);
  window.spaReady = true;
})();
</script></body></html>`

// fetchResult is what window.call returns.
type fetchResult struct {
	Status int            `json:"status"`
	Body   map[string]any `json:"body"`
	Error  string         `json:"error"`
}

func spaCall(p *page, method, path string, csrf bool) fetchResult {
	p.t.Helper()
	var r fetchResult
	p.eval(fmt.Sprintf(`window.call(%q, %q, %v)`, method, path, csrf), &r)
	return r
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func cookieNames(jar map[string]*network.Cookie) []string {
	var out []string
	for n := range jar {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

func short(s string) string {
	if len(s) > 20 {
		return s[:20] + "…"
	}
	return s
}

// waitClock waits until the wall clock reaches when. The auth server's
// tokens live in real time: the test waits for one to expire, it does not
// synchronise anything with it.
func waitClock(when time.Time) {
	if d := time.Until(when); d > 0 {
		<-time.After(d)
	}
}

// ---------------------------------------------------------------- upstreams

// tokenClaims are the claims of a bearer token the upstream saw (the
// gateway verified it; the test only reads it).
type tokenClaims struct {
	Sub   string `json:"sub"`
	Sid   string `json:"sid"`
	Jti   string `json:"jti"`
	Scope string `json:"scope"`
	Exp   int64  `json:"exp"`
}

type upstreamRequest struct {
	method, path, authz, cookie string
	claims                      tokenClaims
}

func (r upstreamRequest) String() string {
	return fmt.Sprintf("%s %s (token %s)", r.method, r.path, r.claims.Jti)
}

// upstreamLog records what reached an upstream.
type upstreamLog struct {
	mu   sync.Mutex
	reqs []upstreamRequest
}

// apiUpstream is the API behind the gateway: it records what reached it
// and answers JSON.
type apiUpstream struct {
	srv *httptest.Server
	upstreamLog
}

func newAPIUpstream(t *testing.T) *apiUpstream {
	a := &apiUpstream{}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.record(r)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"ok": true, "method": r.Method, "path": r.URL.Path})
	}))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *upstreamLog) record(r *http.Request) {
	u := upstreamRequest{method: r.Method, path: r.URL.Path, authz: r.Header.Get("Authorization"), cookie: r.Header.Get("Cookie")}
	if tok, ok := strings.CutPrefix(u.authz, "Bearer "); ok {
		if parts := strings.Split(tok, "."); len(parts) == 3 {
			if raw, err := base64.RawURLEncoding.DecodeString(parts[1]); err == nil {
				json.Unmarshal(raw, &u.claims)
			}
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.reqs = append(a.reqs, u)
}

func (a *upstreamLog) mark() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.reqs)
}

func (a *upstreamLog) since(mark int) []upstreamRequest {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.reqs[mark:])
}

// ---------------------------------------------------------------- balancer

// balancer is a round-robin HTTP load balancer on 127.0.0.1: each request
// goes to the next gateway, so one browser origin is served by both.
type balancer struct {
	t   *testing.T
	ln  net.Listener
	url string

	next atomic.Uint64
	mu   sync.Mutex
	log  []lbEntry
	gate *gate
}

// gate holds the requests of a path prefix until n of them are in flight
// together, then lets them all go at once: the browser's fetches reach
// the gateways at the same moment, whatever the order it sent them in.
type gate struct {
	prefix  string
	n       int
	arrived int
	open    chan struct{}
}

type lbEntry struct{ backend, path string }

func newBalancer(t *testing.T) *balancer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return &balancer{t: t, ln: ln, url: "http://" + ln.Addr().String()}
}

// serve starts forwarding to the backends, Host and Origin unchanged.
func (b *balancer) serve(backends ...*node) {
	targets := make([]*url.URL, len(backends))
	for i, n := range backends {
		targets[i], _ = url.Parse(n.base)
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			i := int(b.next.Add(1)-1) % len(targets)
			pr.SetURL(targets[i])
			pr.Out.Host = pr.In.Host
			b.mu.Lock()
			b.log = append(b.log, lbEntry{backends[i].name, pr.In.URL.Path})
			g := b.gate
			var wait chan struct{}
			if g != nil && strings.HasPrefix(pr.In.URL.Path, g.prefix) && g.arrived < g.n {
				g.arrived++
				if g.arrived == g.n {
					close(g.open)
				} else {
					wait = g.open
				}
			}
			b.mu.Unlock()
			if wait != nil {
				select {
				case <-wait:
				case <-pr.In.Context().Done():
				case <-time.After(10 * time.Second): // reported by release
				}
			}
		},
		Transport:     tr,
		FlushInterval: -1,
	}
	srv := &http.Server{Handler: rp, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(b.ln)
	b.t.Cleanup(func() { srv.Close(); tr.CloseIdleConnections() })
}

// hold arms a gate: the next n requests under prefix wait for each other.
func (b *balancer) hold(prefix string, n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.gate = &gate{prefix: prefix, n: n, open: make(chan struct{})}
}

// release disarms the gate and returns how many requests it held
// together (n when it opened).
func (b *balancer) release() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	g := b.gate
	b.gate = nil
	if g == nil {
		return 0
	}
	return g.arrived
}

func (b *balancer) mark() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.log)
}

// counts returns, per backend, the requests from mark on whose path
// starts with prefix.
func (b *balancer) counts(mark int, prefix string) map[string]int {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := map[string]int{}
	for _, e := range b.log[mark:] {
		if strings.HasPrefix(e.path, prefix) {
			out[e.backend]++
		}
	}
	return out
}

// ---------------------------------------------------------------- gateways

// addGatewayClient registers the gateway at the auth server as the
// operator would (docs/gateway.md) and returns its secret.
func (c *cluster) addGatewayClient(id, pub string) string {
	c.t.Helper()
	out, err := c.run("", "client", "add", "--data-dir", filepath.Join(c.t.TempDir(), "cli"), "--id", id, "--generate-secret",
		"--redirect-uri", pub+"/auth/callback", "--post-logout-redirect-uri", pub+"/",
		"--backchannel-logout-uri", pub+"/auth/backchannel-logout", "--first-party", "--can", "read-revocations",
		"--scopes", "openid offline_access orders:read")
	if err != nil {
		c.t.Fatalf("latch client add: %v\n%s", err, out)
	}
	const prefix = "client secret (shown once, store it now): "
	for line := range strings.SplitSeq(out, "\n") {
		if s, ok := strings.CutPrefix(line, prefix); ok {
			return strings.TrimSpace(s)
		}
	}
	c.t.Fatalf("latch client add printed no secret:\n%s", out)
	return ""
}

// startGateway runs `latch gateway` on a port of its own, for the public
// URL pub (the balancer), and waits until /readyz answers 200. It is
// killed when the test ends.
func (c *cluster) startGateway(name, pub, store, kek, secret, apiURL, spaURL string) *node {
	c.t.Helper()
	n := &node{name: name, addr: fmt.Sprintf("127.0.0.1:%d", freePort(c.t)), dataDir: filepath.Join(c.t.TempDir(), name)}
	n.base = "http://" + n.addr
	cfg := fmt.Sprintf(`addr: %s
public_url: %s
issuer: %s
client_id: gw
scopes: [openid, offline_access, orders:read]
data_dir: %s
store: %q
redis: %s
session:
  refresh_before: %s
routes:
  - path: /api/orders/
    upstream: %s
    auth: token
    scopes: [orders:read]
  - path: /
    upstream: %s
    auth: session
`, n.addr, pub, c.env["LATCH_ISSUER"], n.dataDir, store, c.redis.url(), browserGwRefreshBefore, apiURL, spaURL)
	path := filepath.Join(c.t.TempDir(), name+".yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		c.t.Fatal(err)
	}
	cmd := exec.Command(latchBin, "gateway", "--config", path)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LATCH_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "LATCH_GATEWAY_CLIENT_SECRET="+secret, "LATCH_GATEWAY_KEK="+kek)
	cmd.Stdout, cmd.Stderr = &n.log, &n.log
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("start %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	n.cmd, n.done, n.starts = cmd, done, 1
	c.t.Cleanup(func() {
		n.kill()
		logs := n.log.String()
		if strings.Contains(logs, "panic") {
			c.t.Errorf("%s logged a panic:\n%s", n.name, tail(logs, 8000))
		} else if c.t.Failed() {
			c.t.Logf("---- log of %s (last 6 KB) ----\n%s", n.name, tail(logs, 6000))
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, err := c.do(n, "GET", "/readyz", nil)
		if err == nil && r.code == http.StatusOK {
			return n
		}
		select {
		case <-done:
			c.t.Fatalf("%s exited before it was ready (%v):\n%s", name, cmd.ProcessState, tail(n.log.String(), 4000))
		case <-time.After(25 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s not ready within 30 s (last: %v %s):\n%s", name, err, r, tail(n.log.String(), 4000))
		}
	}
}

// total is the sum over every outcome.
func (o outcomes) total() float64 {
	var s float64
	for _, v := range o {
		s += v
	}
	return s
}

// byOutcome reads the series of a counter with an outcome label from
// the nodes' /metrics, summed over the nodes.
func (c *cluster) byOutcome(nodes []*node, name string) outcomes {
	c.t.Helper()
	out := outcomes{}
	for _, n := range nodes {
		for k, v := range c.metrics(n) {
			rest, ok := strings.CutPrefix(k, name+`{`)
			if !ok {
				continue
			}
			i := strings.Index(rest, `outcome="`)
			if i < 0 {
				continue
			}
			o := rest[i+len(`outcome="`):]
			o = o[:strings.IndexByte(o, '"')]
			out[o] += v
		}
	}
	return out
}

// authRefreshes are the auth server's refresh-token redemptions
// (latch_refreshes_total), every outcome.
func (c *cluster) authRefreshes(n *node) outcomes {
	return c.byOutcome([]*node{n}, "latch_refreshes_total")
}

// gatewayRefreshes are the gateways' refreshes
// (latch_gateway_refreshes_total) by outcome.
func (c *cluster) gatewayRefreshes(gateways []*node) outcomes {
	return c.byOutcome(gateways, "latch_gateway_refreshes_total")
}
