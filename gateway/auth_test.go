package gateway

import (
	"bufio"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/latchauth/latch/verifier/revocation"
)

func TestBearer(t *testing.T) {
	up := echoUpstream(t)
	h := newHarness(t, []Route{
		{Path: "/api/", Upstream: up.URL, Auth: AuthToken, Scopes: []string{"orders:read", "orders:write"}},
		{Path: "/other/", Upstream: up.URL, Auth: AuthToken, Audience: "https://other.example"},
	})
	a := h.auth
	good := a.token("orders:read orders:write")

	t.Run("valid token passes upstream unchanged", func(t *testing.T) {
		e := echoOf(t, h.do("GET", "/api/orders", nil, "Authorization: Bearer "+good))
		if got := e.Header.Get("Authorization"); got != "Bearer "+good {
			t.Errorf("upstream Authorization = %q", got)
		}
	})

	revoked := a.token("orders:read orders:write")
	revokedSID := a.token("orders:read orders:write", func(c map[string]any) { c["sid"] = "sid-gone" })
	var claims map[string]any
	b, _ := base64.RawURLEncoding.DecodeString(strings.Split(revoked, ".")[1])
	json.Unmarshal(b, &claims)
	a.revs.Add(
		revocation.Entry{Seq: 1, Kind: revocation.Token, Value: claims["jti"].(string), ExpiresAt: time.Now().Add(time.Hour)},
		revocation.Entry{Seq: 2, Kind: revocation.Session, Value: "sid-gone", ExpiresAt: time.Now().Add(time.Hour)},
	)
	_, otherKey, _ := ed25519.GenerateKey(nil)
	forged := (&authority{key: otherKey}).token("orders:read orders:write")

	for _, tc := range []struct {
		name, path string
		auth       []string
		status     int
		code       string
		challenge  string // substring of WWW-Authenticate
	}{
		{"no token (and no session)", "/api/x", nil, 401, "login_required", "Bearer"},
		{"another scheme", "/api/x", []string{"Basic YTpi"}, 401, "unauthorized", "Bearer"},
		{"malformed bearer", "/api/x", []string{"Bearer a b"}, 400, "invalid_request", `error="invalid_request"`},
		{"two authorization headers", "/api/x", []string{"Bearer " + good, "Bearer " + good}, 400, "invalid_request", `error="invalid_request"`},
		{"wrong audience", "/other/x", []string{"Bearer " + good}, 401, "invalid_token", `error="invalid_token"`},
		{"missing scope", "/api/x", []string{"Bearer " + a.token("orders:read")}, 403, "insufficient_scope", `scope="orders:read orders:write"`},
		{"scope prefix is not the scope", "/api/x", []string{"Bearer " + a.token("orders:read orders:writer")}, 403, "insufficient_scope", `error="insufficient_scope"`},
		{"expired", "/api/x", []string{"Bearer " + a.token("orders:read orders:write", func(c map[string]any) {
			c["iat"] = time.Now().Add(-time.Hour).Unix()
			c["exp"] = time.Now().Add(-time.Minute).Unix()
		})}, 401, "invalid_token", "expired"},
		{"revoked token", "/api/x", []string{"Bearer " + revoked}, 401, "invalid_token", "revoked"},
		{"revoked session", "/api/x", []string{"Bearer " + revokedSID}, 401, "invalid_token", "revoked"},
		{"forged signature", "/api/x", []string{"Bearer " + forged}, 401, "invalid_token", `error="invalid_token"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var hdr []string
			for _, v := range tc.auth {
				hdr = append(hdr, "Authorization: "+v)
			}
			res := h.do("GET", tc.path, nil, hdr...)
			status, code := errorOf(t, res)
			if status != tc.status || code != tc.code {
				t.Errorf("got %d %s, want %d %s", status, code, tc.status, tc.code)
			}
			if ch := res.Header.Get("WWW-Authenticate"); !strings.Contains(ch, tc.challenge) {
				t.Errorf("WWW-Authenticate %q lacks %q", ch, tc.challenge)
			}
		})
	}

	t.Run("route audience accepted", func(t *testing.T) {
		tok := a.token("", func(c map[string]any) { c["aud"] = "https://other.example" })
		echoOf(t, h.do("GET", "/other/x", nil, "Authorization: Bearer "+tok))
	})
}

// csrfRows: state-changing requests authenticated by the session cookie,
// each refused for one reason.
var csrfRows = []struct {
	name   string
	method string
	hdr    []string // besides the cookie
	ok     bool
}{
	{"no header, same origin", "POST", []string{"Origin: {origin}"}, false},
	{"header, cross-site Origin", "POST", []string{"X-Latch-CSRF: 1", "Origin: https://evil.example"}, false},
	{"header, same host other scheme", "POST", []string{"X-Latch-CSRF: 1", "Origin: https://{host}"}, false},
	{"header, null Origin", "POST", []string{"X-Latch-CSRF: 1", "Origin: null"}, false},
	{"header, no Origin, no Sec-Fetch-Site", "POST", []string{"X-Latch-CSRF: 1"}, false},
	{"header, Sec-Fetch-Site cross-site", "POST", []string{"X-Latch-CSRF: 1", "Sec-Fetch-Site: cross-site"}, false},
	{"header, Sec-Fetch-Site same-site", "POST", []string{"X-Latch-CSRF: 1", "Sec-Fetch-Site: same-site"}, false},
	{"header, same Origin but Sec-Fetch-Site cross-site", "POST", []string{"X-Latch-CSRF: 1", "Origin: {origin}", "Sec-Fetch-Site: cross-site"}, false},
	{"empty header", "POST", []string{"X-Latch-CSRF:", "Origin: {origin}"}, false},
	{"form urlencoded, no header", "POST", []string{"Content-Type: application/x-www-form-urlencoded", "Origin: https://evil.example", "Sec-Fetch-Site: cross-site"}, false},
	{"form multipart, no header", "POST", []string{"Content-Type: multipart/form-data; boundary=x", "Origin: https://evil.example"}, false},
	{"text/plain, no header", "POST", []string{"Content-Type: text/plain", "Origin: https://evil.example"}, false},
	{"form urlencoded same origin, no header", "POST", []string{"Content-Type: application/x-www-form-urlencoded", "Origin: {origin}", "Sec-Fetch-Site: same-origin"}, false},
	{"PUT no header", "PUT", []string{"Origin: {origin}"}, false},
	{"PATCH no header", "PATCH", []string{"Origin: {origin}"}, false},
	{"DELETE cross-site", "DELETE", []string{"X-Latch-CSRF: 1", "Origin: https://evil.example"}, false},
	{"two Origins", "POST", []string{"X-Latch-CSRF: 1", "Origin: {origin}", "Origin: https://evil.example"}, false},
	{"ok: header and same Origin", "POST", []string{"X-Latch-CSRF: 1", "Origin: {origin}"}, true},
	{"ok: header and Sec-Fetch-Site same-origin", "DELETE", []string{"X-Latch-CSRF: 1", "Sec-Fetch-Site: same-origin"}, true},
	{"ok: form with header", "POST", []string{"X-Latch-CSRF: yes", "Content-Type: application/x-www-form-urlencoded", "Origin: {origin}", "Sec-Fetch-Site: same-origin"}, true},
	{"ok: GET needs nothing", "GET", []string{"Origin: https://evil.example"}, true},
}

func TestCSRF(t *testing.T) {
	up := echoUpstream(t)
	h := newHarness(t, []Route{
		{Path: "/app/", Upstream: up.URL, Auth: AuthSession},
		{Path: "/api/", Upstream: up.URL, Auth: AuthToken},
	})
	h.sessions.tokens["c1"] = h.auth.token("")
	host := strings.TrimPrefix(h.url, "http://")
	for _, path := range []string{"/app/x", "/api/x"} {
		for _, row := range csrfRows {
			t.Run(path+" "+row.name, func(t *testing.T) {
				hdr := []string{"Cookie: " + DefaultCookie + "=c1"}
				for _, l := range row.hdr {
					hdr = append(hdr, strings.NewReplacer("{origin}", h.url, "{host}", host).Replace(l))
				}
				before := h.sessions.lookups.Load()
				res := h.do(row.method, path, strings.NewReader("a=1"), hdr...)
				if row.ok {
					e := echoOf(t, res)
					if e.Header.Get(HeaderCSRF) != "" {
						t.Error("X-Latch-CSRF reached the upstream")
					}
					return
				}
				status, code := errorOf(t, res)
				if status != 403 || code != "csrf_failed" {
					t.Errorf("got %d %s, want 403 csrf_failed", status, code)
				}
				if h.sessions.lookups.Load() != before {
					t.Error("a refused request looked up (and could refresh) the session")
				}
			})
		}
	}
	t.Run("bearer requests need no CSRF header", func(t *testing.T) {
		echoOf(t, h.do("POST", "/api/x", nil, "Authorization: Bearer "+h.auth.token(""), "Origin: https://evil.example"))
	})
}

func TestSessionRoutes(t *testing.T) {
	up := echoUpstream(t)
	h := newHarness(t, []Route{
		idRoute("/app/", up.URL, AuthSession, "profile"),
		{Path: "/api/", Upstream: up.URL, Auth: AuthToken},
	})
	tok := h.auth.token("openid profile")
	h.sessions.tokens["good"] = tok
	h.sessions.tokens["noscope"] = h.auth.token("openid")
	h.sessions.tokens["expired"] = h.auth.token("profile", func(c map[string]any) {
		c["iat"] = time.Now().Add(-time.Hour).Unix()
		c["exp"] = time.Now().Add(-time.Minute).Unix()
	})
	cookie := func(v string) string { return "Cookie: " + DefaultCookie + "=" + v }

	for _, tc := range []struct {
		name string
		path string
		hdr  []string
		want int // 302 to login, or 401 login_required
	}{
		{"navigation (Sec-Fetch-Mode)", "/app/page?x=1", []string{"Sec-Fetch-Mode: navigate", "Accept: */*"}, 302},
		{"navigation (Accept, old browser)", "/app/page", []string{"Accept: text/html,application/xhtml+xml"}, 302},
		{"fetch", "/app/page", []string{"Sec-Fetch-Mode: cors", "Accept: text/html"}, 401},
		{"XHR without metadata", "/app/page", []string{"Accept: application/json", "X-Requested-With: XMLHttpRequest"}, 401},
		{"no Accept", "/app/page", nil, 401},
		{"forged cookie navigation", "/app/page", []string{cookie("forged"), "Sec-Fetch-Mode: navigate"}, 302},
		{"forged cookie fetch", "/app/page", []string{cookie("forged"), "Sec-Fetch-Mode: cors"}, 401},
		{"expired session token fetch", "/app/page", []string{cookie("expired"), "Sec-Fetch-Mode: cors"}, 401},
		{"token route navigation gets 401, not a redirect", "/api/x", []string{"Sec-Fetch-Mode: navigate", "Accept: text/html"}, 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := h.do("GET", tc.path, nil, tc.hdr...)
			if tc.want == 302 {
				if res.StatusCode != 302 {
					t.Fatalf("status %d, want 302", res.StatusCode)
				}
				loc, _ := url.Parse(res.Header.Get("Location"))
				if loc.Path != "/auth/login" || loc.Host != "" || loc.Query().Get("return_to") != tc.path {
					t.Errorf("Location %q, want /auth/login?return_to=%s", res.Header.Get("Location"), tc.path)
				}
				return
			}
			status, code := errorOf(t, res)
			if status != 401 || code != "login_required" {
				t.Errorf("got %d %s, want 401 login_required", status, code)
			}
			if res.Header.Get("Location") != "" {
				t.Error("a 401 carries a Location")
			}
		})
	}

	t.Run("session: bearer and identity upstream", func(t *testing.T) {
		e := echoOf(t, h.do("GET", "/app/page", nil, cookie("good"), "Authorization: Bearer client-sent"))
		if got := e.Header.Get("Authorization"); got != "Bearer "+tok {
			t.Errorf("upstream Authorization = %q, want the session's token", got)
		}
		if e.Header.Get(HeaderUser) != "alice" || e.Header.Get(HeaderSession) != "sid-1" || e.Header.Get(HeaderScopes) != "openid profile" {
			t.Errorf("identity headers: %v", e.Header)
		}
		if strings.Contains(e.Header.Get("Cookie"), "good") {
			t.Error("the session cookie reached the upstream")
		}
	})
	t.Run("session on a token route", func(t *testing.T) {
		e := echoOf(t, h.do("GET", "/api/x", nil, cookie("good")))
		if got := e.Header.Get("Authorization"); got != "Bearer "+tok {
			t.Errorf("upstream Authorization = %q", got)
		}
	})
	t.Run("session lacking the route's scope", func(t *testing.T) {
		status, code := errorOf(t, h.do("GET", "/app/page", nil, cookie("noscope")))
		if status != 403 || code != "insufficient_scope" {
			t.Errorf("got %d %s", status, code)
		}
	})
	t.Run("auth endpoints go to the sessions", func(t *testing.T) {
		res := h.do("POST", "/auth/logout", nil, "X-Latch-CSRF: 1")
		if body := readAll(t, res); body != "bff /auth/logout csrf=1" {
			t.Errorf("body %q", body)
		}
	})
	t.Run("session store down: 503, not signed out", func(t *testing.T) {
		h.sessions.err = errStoreDown
		defer func() { h.sessions.err = nil }()
		status, code := errorOf(t, h.do("GET", "/app/page", nil, cookie("good"), "Sec-Fetch-Mode: navigate"))
		if status != 503 || code != "temporarily_unavailable" {
			t.Errorf("got %d %s", status, code)
		}
	})
}

// return_to is always the request's own path: never another host, even
// from an absolute-form request line or a path that looks like one.
func TestReturnToSameOrigin(t *testing.T) {
	up := echoUpstream(t)
	h := newHarness(t, []Route{{Path: "/", Upstream: up.URL, Auth: AuthSession}})
	addr := strings.TrimPrefix(h.url, "http://")
	for _, target := range []string{
		"http://evil.example/steal",
		"//evil.example/x",
		"/\\evil.example/x",
		"/%2F%2Fevil.example",
		"/%5Cevil.example",
		"/a?next=https://evil.example",
		"/..//evil.example",
		"https://evil.example",
	} {
		t.Run(target, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nSec-Fetch-Mode: navigate\r\nConnection: close\r\n\r\n", target, addr)
			res, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			if res.StatusCode != 302 {
				if res.StatusCode != 400 {
					t.Errorf("status %d, want 302 or 400", res.StatusCode)
				}
				return
			}
			loc, err := url.Parse(res.Header.Get("Location"))
			if err != nil || loc.Host != "" || loc.Path != "/auth/login" {
				t.Fatalf("Location %q", res.Header.Get("Location"))
			}
			rt := loc.Query().Get("return_to")
			u, err := url.Parse(rt)
			if err != nil || u.Scheme != "" || u.Host != "" || !strings.HasPrefix(rt, "/") || strings.HasPrefix(rt, "//") || strings.HasPrefix(rt, "/\\") {
				t.Errorf("return_to %q is not a same-origin path", rt)
			}
		})
	}
}

// A path that is not canonical is refused, so that /open/../api/ cannot
// borrow the rules of /open/; so is one holding a control character (a
// decoded NUL ends a path early in C-based upstreams).
func TestNonCanonicalPathRefused(t *testing.T) {
	up := echoUpstream(t)
	h := newHarness(t, []Route{
		{Path: "/open/", Upstream: up.URL, Auth: AuthNone},
		{Path: "/api/", Upstream: up.URL, Auth: AuthToken},
	})
	addr := strings.TrimPrefix(h.url, "http://")
	for _, target := range []string{"/open/../api/x", "/open/%2e%2e/api/x", "/open/..%2fapi/x", "/open//../api/x", "/open/.%2e/api/x", "/open/..\\api/x", "/open/..%5capi/x", "/open/x%00.png", "/open/x%0d%0aSet-Cookie:a=b"} {
		t.Run(target, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", target, addr)
			res, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			if res.StatusCode != 400 {
				t.Errorf("status %d, want 400", res.StatusCode)
			}
		})
	}
}
