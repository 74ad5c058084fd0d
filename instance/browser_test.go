package instance_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/auth"
	"github.com/latchauth/latch/config"
	"github.com/latchauth/latch/server"
	"github.com/latchauth/latch/verifier"
)

// The harness issuer is http://latch.test: plain http off localhost, so the
// cookies carry no prefix and no Secure (TestCookieNames covers the rest).
const (
	atCookie   = "latch_at"
	rtCookie   = "latch_rt"
	csrfCookie = "latch_csrf"
)

func (h *harness) addBrowserClients() {
	h.t.Helper()
	ctx := context.Background()
	for id, mode := range map[string]string{"web": latch.DeliveryCookie, "spa": latch.DeliveryMemory, "native": latch.DeliveryBearer} {
		if _, err := h.in.Auth.CreateClient(ctx, auth.NewClient{ID: id, Public: true, Delivery: mode}); err != nil {
			h.t.Fatal(err)
		}
	}
}

// setCookies indexes a response's Set-Cookie headers by name.
func setCookies(r response) map[string]*http.Cookie {
	out := map[string]*http.Cookie{}
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		out[c.Name] = c
	}
	return out
}

// jar is what a browser would send back: name=value pairs.
func jar(cs map[string]*http.Cookie, names ...string) string {
	var parts []string
	for _, n := range names {
		if c, ok := cs[n]; ok {
			parts = append(parts, n+"="+c.Value)
		}
	}
	return strings.Join(parts, "; ")
}

func TestCookieDelivery(t *testing.T) {
	h := start(t, "", func(c *config.Config) { c.CORS.AllowedOrigins = []string{"http://app.test"} })
	h.addUser(adaEmail, adaPass)
	h.addBrowserClients()

	r := h.do("POST", "/v1/auth/login", jsonBody(map[string]string{"email": adaEmail, "password": adaPass, "client_id": "web"}))
	expect(t, "login", r, 200, "")
	if r.str("access_token") != "" || r.str("refresh_token") != "" || r.str("token_type") != "cookie" {
		t.Fatalf("cookie mode leaked a token into the body: %s", r.raw)
	}
	cs := setCookies(r)
	at, rt, csrf := cs[atCookie], cs[rtCookie], cs[csrfCookie]
	if at == nil || rt == nil || csrf == nil || len(cs) != 3 {
		t.Fatalf("cookies = %v", r.header.Values("Set-Cookie"))
	}
	// The access cookie lives as long as the session, so an expired token
	// still reaches the server and earns invalid_token (the SDK refreshes).
	if !at.HttpOnly || at.Path != "/" || at.SameSite != http.SameSiteLaxMode || at.MaxAge != rt.MaxAge {
		t.Errorf("access cookie = %+v", at)
	}
	if !rt.HttpOnly || rt.Path != "/v1/auth" || rt.SameSite != http.SameSiteStrictMode || rt.MaxAge < 600000 {
		t.Errorf("refresh cookie = %+v", rt)
	}
	if csrf.HttpOnly || csrf.Path != "/" || csrf.SameSite != http.SameSiteStrictMode || csrf.Value != r.str("csrf_token") {
		t.Errorf("csrf cookie = %+v (body csrf_token %q)", csrf, r.str("csrf_token"))
	}
	all := jar(cs, atCookie, rtCookie, csrfCookie)
	tok := csrf.Value

	// The access cookie authenticates reads; writes need the CSRF defence.
	me := h.do("GET", "/v1/me", "", "Cookie", all)
	expect(t, "me by cookie", me, 200, "")
	if me.str("csrf_token") != tok || me.body["exp"] == nil {
		t.Fatalf("me by cookie lacks csrf_token or exp: %s", me.raw)
	}
	if b := h.do("GET", "/v1/me", "", bearer(r.str("access_token"))...); b.str("csrf_token") != "" {
		t.Fatal("csrf_token handed to a bearer request")
	}
	for name, hdr := range map[string][]string{
		"no CSRF header":     {"Cookie", all},
		"wrong CSRF header":  {"Cookie", all, "X-CSRF-Token", otherFirst(tok)},
		"cross-site":         {"Cookie", all, "X-CSRF-Token", tok, "Sec-Fetch-Site", "cross-site"},
		"foreign origin":     {"Cookie", all, "X-CSRF-Token", tok, "Origin", "https://evil.example"},
		"null origin":        {"Cookie", all, "X-CSRF-Token", tok, "Origin", "null"},
		"header, no cookie":  {"Cookie", jar(cs, atCookie, rtCookie), "X-CSRF-Token", tok},
		"cookie ≠ header":    {"Cookie", jar(cs, atCookie, rtCookie) + "; " + csrfCookie + "=other", "X-CSRF-Token", tok},
		"refresh, no header": {"Cookie", all},
	} {
		path := "/v1/auth/logout-all"
		if strings.HasPrefix(name, "refresh") {
			path = "/v1/auth/refresh"
		}
		expect(t, name, h.do("POST", path, "", hdr...), 403, "csrf_failed")
	}
	expect(t, "session survived the refused requests", h.do("GET", "/v1/me", "", "Cookie", all), 200, "")

	// Refresh by cookie: new cookies, same CSRF token (bound to the session).
	ref := h.do("POST", "/v1/auth/refresh", "", "Cookie", all, "X-CSRF-Token", tok, "Origin", "http://app.test")
	expect(t, "refresh by cookie", ref, 200, "")
	if ref.header.Get("Access-Control-Allow-Origin") != "http://app.test" || ref.header.Get("Access-Control-Allow-Credentials") != "true" {
		t.Errorf("CORS headers for an allowed origin: %v", ref.header)
	}
	cs2 := setCookies(ref)
	if cs2[rtCookie] == nil || cs2[rtCookie].Value == rt.Value || cs2[csrfCookie].Value != tok || ref.str("refresh_token") != "" {
		t.Fatalf("refresh: %s %v", ref.raw, ref.header.Values("Set-Cookie"))
	}
	// A cookie session's refresh token in a body is refused, unspent.
	expect(t, "cookie token in a body", h.refresh(cs2[rtCookie].Value), 401, "invalid_grant")
	all2 := jar(cs2, atCookie, rtCookie, csrfCookie)
	expect(t, "me after refresh", h.do("GET", "/v1/me", "", "Cookie", all2), 200, "")

	// Sessions and events for the account page.
	ss := h.do("GET", "/v1/sessions", "", "Cookie", all2)
	if s0 := ss.body["sessions"].([]any)[0].(map[string]any); s0["current"] != true {
		t.Fatalf("sessions = %s", ss.raw)
	}
	ev := h.do("GET", "/v1/events", "", "Cookie", all2)
	expect(t, "events", ev, 200, "")
	if len(ev.body["events"].([]any)) == 0 {
		t.Fatalf("events = %s", ev.raw)
	}
	expect(t, "events bad limit", h.do("GET", "/v1/events?limit=1000", "", "Cookie", all2), 400, "invalid_request")

	// Logout by cookie clears every cookie with its own Path.
	out := h.do("POST", "/v1/auth/logout", "", "Cookie", all2, "X-CSRF-Token", tok)
	expect(t, "logout", out, 204, "")
	cleared := setCookies(out)
	for name, path := range map[string]string{atCookie: "/", rtCookie: "/v1/auth", csrfCookie: "/"} {
		c := cleared[name]
		if c == nil || c.MaxAge >= 0 || c.Path != path || c.Value != "" {
			t.Errorf("logout did not clear %s: %+v", name, c)
		}
	}
	expect(t, "me after logout", h.do("GET", "/v1/me", "", "Cookie", all2), 401, "invalid_token")
	expect(t, "refresh after logout", h.do("POST", "/v1/auth/refresh", "", "Cookie", all2, "X-CSRF-Token", tok), 401, "invalid_grant")
}

func TestCSRFTokenBoundToSession(t *testing.T) {
	h := start(t, "", nil)
	h.addUser(adaEmail, adaPass)
	h.addBrowserClients()
	login := func() map[string]*http.Cookie {
		return setCookies(h.do("POST", "/v1/auth/login", jsonBody(map[string]string{"email": adaEmail, "password": adaPass, "client_id": "web"})))
	}
	a, b := login(), login()
	// An attacker holding session A's CSRF token (their own session) cannot
	// use it against session B, even with a matching CSRF cookie.
	mixed := jar(b, atCookie, rtCookie) + "; " + csrfCookie + "=" + a[csrfCookie].Value
	expect(t, "A's token on B", h.do("POST", "/v1/auth/logout-all", "", "Cookie", mixed, "X-CSRF-Token", a[csrfCookie].Value), 403, "csrf_failed")
	expect(t, "A's token refreshing B", h.do("POST", "/v1/auth/refresh", "", "Cookie", mixed, "X-CSRF-Token", a[csrfCookie].Value), 403, "csrf_failed")
	// B's refresh token was not consumed by the refused attempt.
	expect(t, "B refreshes", h.do("POST", "/v1/auth/refresh", "", "Cookie", jar(b, atCookie, rtCookie, csrfCookie), "X-CSRF-Token", b[csrfCookie].Value), 200, "")
}

func TestMemoryAndBearerDelivery(t *testing.T) {
	h := start(t, "", nil)
	h.addUser(adaEmail, adaPass)
	h.addBrowserClients()

	m := h.do("POST", "/v1/auth/login", jsonBody(map[string]string{"email": adaEmail, "password": adaPass, "client_id": "spa"}))
	expect(t, "memory login", m, 200, "")
	cs := setCookies(m)
	if m.str("access_token") == "" || m.str("refresh_token") != "" || cs[atCookie] != nil || cs[rtCookie] == nil || cs[csrfCookie] == nil {
		t.Fatalf("memory mode: body %s cookies %v", m.raw, m.header.Values("Set-Cookie"))
	}
	expect(t, "memory bearer", h.do("GET", "/v1/me", "", bearer(m.str("access_token"))...), 200, "")
	r := h.do("POST", "/v1/auth/refresh", "{}", "Cookie", jar(cs, rtCookie, csrfCookie), "X-CSRF-Token", m.str("csrf_token"))
	expect(t, "memory refresh", r, 200, "")
	if r.str("access_token") == "" || r.str("refresh_token") != "" {
		t.Fatalf("memory refresh body: %s", r.raw)
	}

	// A bearer client's refresh token arriving in a cookie is refused unspent.
	n := h.do("POST", "/v1/auth/login", jsonBody(map[string]string{"email": adaEmail, "password": adaPass, "client_id": "native"}))
	if len(setCookies(n)) != 0 || n.str("refresh_token") == "" {
		t.Fatalf("bearer login set cookies or lacks the token: %s", n.raw)
	}
	fake := rtCookie + "=" + n.str("refresh_token") + "; " + csrfCookie + "=x"
	expect(t, "bearer token by cookie", h.do("POST", "/v1/auth/refresh", "", "Cookie", fake, "X-CSRF-Token", "x"), 401, "invalid_grant")
	expect(t, "bearer token still fine", h.refresh(n.str("refresh_token")), 200, "")

	// Delivery modes are the client's: a confidential client cannot be a
	// browser client, and an unknown mode is refused.
	if _, err := h.in.Auth.CreateClient(context.Background(), auth.NewClient{ID: "x", Secret: svcSecret, Delivery: latch.DeliveryCookie}); err == nil {
		t.Error("a confidential cookie client was accepted")
	}
	if _, err := h.in.Auth.CreateClient(context.Background(), auth.NewClient{ID: "y", Public: true, Delivery: "localStorage"}); err == nil {
		t.Error("an unknown delivery mode was accepted")
	}
}

func TestCORS(t *testing.T) {
	h := start(t, "", func(c *config.Config) { c.CORS.AllowedOrigins = []string{"https://app.example"} })
	pre := h.do("OPTIONS", "/v1/auth/refresh", "", "Origin", "https://app.example", "Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "x-csrf-token")
	if pre.code != 204 || pre.header.Get("Access-Control-Allow-Origin") != "https://app.example" ||
		pre.header.Get("Access-Control-Allow-Credentials") != "true" || !strings.Contains(pre.header.Get("Access-Control-Allow-Headers"), "X-CSRF-Token") {
		t.Fatalf("preflight from an allowed origin: %d %v", pre.code, pre.header)
	}
	evil := h.do("OPTIONS", "/v1/auth/refresh", "", "Origin", "https://evil.example", "Access-Control-Request-Method", "POST")
	if evil.header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("preflight from another origin got CORS headers: %v", evil.header)
	}
	get := h.do("GET", "/healthz", "", "Origin", "https://evil.example")
	if v := get.header.Get("Access-Control-Allow-Origin"); v != "" {
		t.Fatalf("Access-Control-Allow-Origin %q for an unlisted origin", v)
	}
}

func TestCookieNames(t *testing.T) {
	for _, c := range []struct {
		issuer, domain   string
		at, rt, csrf     string
		secure, hasDomin bool
	}{
		{"https://auth.example.com", "", "__Host-latch_at", "__Secure-latch_rt", "__Host-latch_csrf", true, false},
		{"http://localhost:8080", "", "__Host-latch_at", "__Secure-latch_rt", "__Host-latch_csrf", true, false},
		{"http://127.0.0.1:8080", "", "__Host-latch_at", "__Secure-latch_rt", "__Host-latch_csrf", true, false},
		{"https://auth.example.com", "example.com", "__Secure-latch_at", "__Secure-latch_rt", "__Secure-latch_csrf", true, true},
		{"http://192.0.2.10:8080", "", "latch_at", "latch_rt", "latch_csrf", false, false},
	} {
		got := server.NewCookies(c.issuer, c.domain)
		if got.Access != c.at || got.Refresh != c.rt || got.CSRF != c.csrf || got.Secure != c.secure || (got.Domain != "") != c.hasDomin {
			t.Errorf("%s %q: %+v", c.issuer, c.domain, got)
		}
	}
}

// TestVerifierCookieMode: a resource server using the verifier package
// accepts the access cookie, and applies the double-submit and site checks
// to unsafe methods.
func TestVerifierCookieMode(t *testing.T) {
	h := start(t, "", nil)
	h.addUser(adaEmail, adaPass)
	h.addBrowserClients()
	cs := setCookies(h.do("POST", "/v1/auth/login", jsonBody(map[string]string{"email": adaEmail, "password": adaPass, "client_id": "web"})))
	api := httptest.NewServer(h.in.Verifier.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := verifier.ClaimsFrom(r.Context())
		w.Write([]byte(c.Subject))
	})))
	defer api.Close()
	call := func(method string, hdr ...string) int {
		req, _ := http.NewRequest(method, api.URL+"/orders", nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	all, tok := jar(cs, atCookie, csrfCookie), cs[csrfCookie].Value
	// The refresh cookie's Path keeps it from resource paths; here it is
	// simply not needed.
	if got := call("GET", "Cookie", all); got != 200 {
		t.Fatalf("GET with the access cookie: %d", got)
	}
	if got := call("POST", "Cookie", all); got != 403 {
		t.Fatalf("POST without CSRF header: %d", got)
	}
	if got := call("POST", "Cookie", all, "X-CSRF-Token", tok, "Sec-Fetch-Site", "cross-site"); got != 403 {
		t.Fatalf("cross-site POST: %d", got)
	}
	if got := call("POST", "Cookie", all, "X-CSRF-Token", tok, "Sec-Fetch-Site", "same-origin"); got != 200 {
		t.Fatalf("same-origin POST with the CSRF header: %d", got)
	}
	if got := call("GET"); got != 401 {
		t.Fatalf("no credentials: %d", got)
	}
}

// TestBrowserLogoutWithExpiredAccessToken: a browser whose access token has
// expired still signs out (one session, or everywhere) with its refresh
// cookie and CSRF token.
func TestBrowserLogoutWithExpiredAccessToken(t *testing.T) {
	h := start(t, "", nil)
	h.addUser(adaEmail, adaPass)
	h.addBrowserClients()
	login := func(client string) (response, map[string]*http.Cookie) {
		r := h.do("POST", "/v1/auth/login", jsonBody(map[string]string{"email": adaEmail, "password": adaPass, "client_id": client}))
		return r, setCookies(r)
	}
	spa, spaCookies := login("spa")
	_, webCookies := login("web")
	native := h.login(adaEmail, adaPass)
	h.clock.Advance(10 * time.Minute) // every access token expired
	expect(t, "memory logout with an expired bearer", h.do("POST", "/v1/auth/logout", "{}",
		append(bearer(spa.str("access_token")), "Cookie", jar(spaCookies, rtCookie, csrfCookie), "X-CSRF-Token", spa.str("csrf_token"))...), 204, "")
	expect(t, "memory session over", h.do("POST", "/v1/auth/refresh", "", "Cookie", jar(spaCookies, rtCookie, csrfCookie), "X-CSRF-Token", spa.str("csrf_token")), 401, "invalid_grant")

	tok := webCookies[csrfCookie].Value
	expect(t, "logout-all without CSRF", h.do("POST", "/v1/auth/logout-all", "", "Cookie", jar(webCookies, atCookie, rtCookie, csrfCookie)), 403, "csrf_failed")
	expect(t, "logout-all by cookie", h.do("POST", "/v1/auth/logout-all", "", "Cookie", jar(webCookies, atCookie, rtCookie, csrfCookie), "X-CSRF-Token", tok), 204, "")
	expect(t, "every session over", h.refresh(native.str("refresh_token")), 401, "invalid_grant")
	expect(t, "logout-all again", h.do("POST", "/v1/auth/logout-all", "", "Cookie", jar(webCookies, atCookie, rtCookie, csrfCookie), "X-CSRF-Token", tok), 401, "invalid_token")
}

// otherFirst returns tok with its first character replaced by another
// one, so that it is surely not tok.
func otherFirst(tok string) string {
	if strings.HasPrefix(tok, "x") {
		return "y" + tok[1:]
	}
	return "x" + tok[1:]
}
