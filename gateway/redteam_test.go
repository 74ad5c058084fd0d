package gateway

// Red-team tests (docs/redteam-gateway.md). Every test here FAILED against
// the code of branch gwred when it was written (commit 4b66914) and
// passes once the finding it names is fixed.

import (
	"net/http"
	"strings"
	"testing"
)

// TestRedteamPathParameterTraversal (finding F2): "/public/..;/admin/"
// is canonical for path.Clean, so the gateway serves it under /public/'s
// rules (auth none), but Tomcat, Jetty, Spring and other servlet
// upstreams strip ";params" from each segment and then resolve "..",
// serving /admin/ without authentication. A matrix parameter on the
// route's own segment ("/admin;x/…") likewise falls through to a
// less-protected route. The docs promise that "/public/../api/ can never
// reach /api/ under the rules of /public/".
func TestRedteamPathParameterTraversal(t *testing.T) {
	up := echoUpstream(t)
	h := newHarness(t, []Route{
		{Path: "/admin/", Upstream: up.URL, Auth: AuthToken},
		{Path: "/public/", Upstream: up.URL, Auth: AuthNone},
		{Path: "/", Upstream: up.URL, Auth: AuthNone},
	})
	for _, p := range []string{
		"/public/..;/admin/users",
		"/public/..;x/admin/users",
		"/public/%2e%2e;/admin/users",
		"/public/.;/..;/admin/users",
		"/admin;x/users",
		"/admin;jsessionid=1/users",
	} {
		t.Run(p, func(t *testing.T) {
			res := h.do(http.MethodGet, p, nil)
			if res.StatusCode == http.StatusOK {
				e := echoOf(t, res)
				t.Errorf("%s reached the upstream as %q (raw %q) without authentication; want 400, or /admin/'s rules (401)", p, e.Path, e.Raw)
			}
		})
	}
}

// TestRedteamRoutingAndClientIPHeadersStripped (finding F3): headers that
// upstream frameworks read as the request's URL (X-Original-URL and
// X-Rewrite-URL: Symfony, Laminas, IIS URL Rewrite) or as the client's
// address and scheme (X-Real-IP, True-Client-IP, X-Client-IP,
// X-Forwarded-Port, X-Forwarded-Ssl, X-Forwarded-Scheme,
// X-Forwarded-Prefix) pass from any client to the upstream untouched.
// The issue promises that the forwarding headers come from
// trusted_proxies only; X-Original-URL lets /public/x be routed by the
// upstream as /admin/x.
func TestRedteamRoutingAndClientIPHeadersStripped(t *testing.T) {
	up := echoUpstream(t)
	h := newHarness(t, []Route{{Path: "/public/", Upstream: up.URL, Auth: AuthNone}})
	for _, name := range []string{
		"X-Original-URL", "X-Rewrite-URL", "X-Original-Uri",
		"X-Real-IP", "True-Client-IP", "X-Client-IP", "X-Cluster-Client-IP",
		"X-Forwarded-Port", "X-Forwarded-Ssl", "X-Forwarded-Scheme", "X-Url-Scheme", "Front-End-Https",
		"X-Forwarded-Prefix", "X-Forwarded-Server",
	} {
		t.Run(name, func(t *testing.T) {
			const evil = "/admin/delete-everything"
			e := echoOf(t, h.do(http.MethodGet, "/public/x", nil, name+": "+evil))
			for _, v := range e.Header.Values(name) {
				if v == evil {
					t.Errorf("%s: %q reached the upstream from an untrusted client", name, v)
				}
			}
		})
	}
}

// TestRedteamForwardedHostFromUntrustedClient (finding F4): from an
// untrusted peer the gateway copies the request's Host header, which the
// client chooses freely, into X-Forwarded-Host. Upstreams behind a proxy
// believe X-Forwarded-Host (Django USE_X_FORWARDED_HOST, Express "trust
// proxy", Rails) and build absolute URLs from it: password-reset links
// pointing at the attacker's host. The issue: X-Forwarded-Host is set
// from trusted_proxies only; without one it should be public_url's host.
func TestRedteamForwardedHostFromUntrustedClient(t *testing.T) {
	up := echoUpstream(t)
	h := newHarness(t, []Route{{Path: "/public/", Upstream: up.URL, Auth: AuthNone}})
	req, err := http.NewRequest(http.MethodGet, h.url+"/public/reset", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "evil.example"
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return // refusing a foreign Host is a fix too
	}
	e := echoOf(t, res)
	if got := e.Header.Get("X-Forwarded-Host"); got == "evil.example" {
		t.Errorf("X-Forwarded-Host %q: chosen by an untrusted client through Host; want %q", got, strings.TrimPrefix(h.url, "http://"))
	}
}

// TestRedteamLoginCookiesWithheldFromUpstream (finding F5): the BFF's
// sign-in cookies (COOKIE_login_<tag>, Path=/, one per sign-in started,
// each holding the sealed PKCE verifier and nonce) are not the session
// cookie, so dropCookie passes them to every upstream, auth none ones
// included. They pile up (one per abandoned sign-in, ten minutes each)
// and every request carries them upstream, where an upstream with an
// 8 KB header limit answers 431/400: the "split cookies overflowing header
// limits" complaint the issue set out to fix. The gateway's own cookies
// should never leave it.
func TestRedteamLoginCookiesWithheldFromUpstream(t *testing.T) {
	up := echoUpstream(t)
	h := newHarness(t, []Route{{Path: "/public/", Upstream: up.URL, Auth: AuthNone}})
	e := echoOf(t, h.do(http.MethodGet, "/public/x", nil,
		"Cookie: "+DefaultCookie+"=v; "+DefaultCookie+"_login_0123456789abcdef=sealed-pkce-verifier; app=1"))
	if got := e.Header.Get("Cookie"); got != "app=1" {
		t.Errorf("upstream got Cookie %q, want only the application's %q", got, "app=1")
	}
}

// TestRedteamRouteCaseVariant (finding F8, low): routes match
// case-sensitively, so "/ADMIN/x" falls through to a less-protected
// route, and upstreams that match paths case-insensitively (ASP.NET,
// IIS, Spring with setCaseSensitive(false), Windows file servers) serve
// /admin/ without authentication. Either match case-insensitively or
// refuse a path that matches a protected route only when case is
// ignored.
func TestRedteamRouteCaseVariant(t *testing.T) {
	up := echoUpstream(t)
	h := newHarness(t, []Route{
		{Path: "/admin/", Upstream: up.URL, Auth: AuthToken},
		{Path: "/", Upstream: up.URL, Auth: AuthNone},
	})
	for _, p := range []string{"/ADMIN/users", "/Admin/users"} {
		if res := h.do(http.MethodGet, p, nil); res.StatusCode == http.StatusOK {
			t.Errorf("%s reached the upstream without authentication (under /'s rules)", p)
		}
	}
}

// TestRedteamAuthServerCookiesWithheldFromUpstream (finding F1): cookies
// ignore ports, so in the topology the issue and the docs show (Latch on
// 127.0.0.1:8080, the gateway on 127.0.0.1:8090; any deployment where
// the issuer and the gateway share a host name) the browser sends Latch's
// own cookies to the gateway: __Host-latch_sso (the SSO session) and
// __Host-latch_at (an access token of the account app). The gateway
// passes them to every upstream, auth none ones included, and an upstream
// that replays __Host-latch_sso at /oauth2/authorize signs in as the user
// to any client. The gateway knows its issuer: it should withhold the
// issuer's cookies when it shares the issuer's host (as it withholds its
// own).
func TestRedteamAuthServerCookiesWithheldFromUpstream(t *testing.T) {
	up := echoUpstream(t)
	h := newHarness(t, []Route{{Path: "/public/", Upstream: up.URL, Auth: AuthNone}})
	if !strings.HasPrefix(h.url, "http://127.0.0.1:") || !strings.HasPrefix(testIssuer, "http://127.0.0.1:") {
		t.Fatalf("the gateway %s and the issuer %s must share a host for this test", h.url, testIssuer)
	}
	e := echoOf(t, h.do(http.MethodGet, "/public/x", nil,
		"Cookie: __Host-latch_sso=sso_s1.secret; __Host-latch_at=eyJ.access.token; __Host-latch_csrf=c; app=1"))
	if got := e.Header.Get("Cookie"); got != "app=1" {
		t.Errorf("upstream got Cookie %q, want only the application's %q", got, "app=1")
	}
}
