package gateway

import (
	"net/http"
	"strings"
	"testing"
)

// spoofRows are identity headers a client may try to send: every default
// header, case and underscore variants, prefix matches, a configured one.
var spoofRows = []struct {
	name string
	keys []string // raw header names, sent as written; several = duplicates
}{
	{"X-Forwarded-User", []string{"X-Forwarded-User"}},
	{"X-Forwarded-Email", []string{"X-Forwarded-Email"}},
	{"X-Forwarded-Preferred-Username", []string{"X-Forwarded-Preferred-Username"}},
	{"X-Forwarded-Groups", []string{"X-Forwarded-Groups"}},
	{"X-Forwarded-Access-Token", []string{"X-Forwarded-Access-Token"}},
	{"X-Auth-Request-User", []string{"X-Auth-Request-User"}},
	{"X-Auth-Request-Email", []string{"X-Auth-Request-Email"}},
	{"X-Auth-Request-Access-Token", []string{"X-Auth-Request-Access-Token"}},
	{"X-Latch-User", []string{"X-Latch-User"}},
	{"X-Latch-Assertion", []string{"X-Latch-Assertion"}},
	{"X-Latch-Scopes", []string{"X-Latch-Scopes"}},
	{"X-Latch-Anything", []string{"X-Latch-Anything"}},
	{"X-User", []string{"X-User"}},
	{"X-User-Id", []string{"X-User-Id"}},
	{"X-Userinfo", []string{"X-Userinfo"}},
	{"X-Remote-User", []string{"X-Remote-User"}},
	{"Remote-User", []string{"Remote-User"}},
	{"X-Email", []string{"X-Email"}},
	{"Forwarded", []string{"Forwarded"}},
	{"lower case", []string{"x-forwarded-user"}},
	{"upper case", []string{"X-FORWARDED-EMAIL"}},
	{"mixed case prefix", []string{"x-AUTH-request-groups"}},
	{"underscores", []string{"X_Forwarded_User"}},
	{"underscores lower prefix", []string{"x_latch_user"}},
	{"remote_user underscore", []string{"REMOTE_USER"}},
	{"duplicate", []string{"X-Forwarded-User", "X-Forwarded-User"}},
	{"duplicate case variants", []string{"X-Forwarded-User", "x-forwarded-user", "X-FORWARDED-USER"}},
	{"duplicate prefix", []string{"X-Auth-Request-User", "x-auth-request-user"}},
	{"configured strip header", []string{"X-Tenant"}},
	{"configured prefix", []string{"X-Internal-Role"}},
}

// sendRaw sends a GET with header names exactly as written.
func sendRaw(t *testing.T, h *harness, path string, keys []string, extra http.Header) echoed {
	t.Helper()
	req, err := http.NewRequest("GET", h.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range extra {
		req.Header[k] = v
	}
	for _, k := range keys {
		req.Header[k] = append(req.Header[k], "spoofed-"+k)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	return echoOf(t, res)
}

func assertNoSpoof(t *testing.T, e echoed) {
	t.Helper()
	for k, vs := range e.Header {
		for _, v := range vs {
			if strings.Contains(v, "spoofed") {
				t.Errorf("upstream received %s: %q", k, v)
			}
		}
	}
}

func TestIdentityHeadersStripped(t *testing.T) {
	up := echoUpstream(t)
	h := newHarness(t, []Route{
		{Path: "/open/", Upstream: up.URL, Auth: AuthNone},
		idRoute("/api/", up.URL, AuthToken),
	}, func(c *Config, _ *Deps) { c.StripHeaders = []string{"X-Tenant", "x-internal-*"} })
	tok := h.auth.token("orders:read")
	for _, row := range spoofRows {
		t.Run(row.name, func(t *testing.T) {
			t.Run("auth none", func(t *testing.T) {
				assertNoSpoof(t, sendRaw(t, h, "/open/x", row.keys, nil))
			})
			t.Run("auth token with identity", func(t *testing.T) {
				e := sendRaw(t, h, "/api/x", row.keys, http.Header{"Authorization": {"Bearer " + tok}})
				assertNoSpoof(t, e)
				if got := e.Header.Get(HeaderUser); got != "alice" {
					t.Errorf("X-Latch-User = %q, want alice", got)
				}
				if len(e.Header.Values(HeaderUser)) != 1 || len(e.Header.Values(HeaderAssertion)) != 1 {
					t.Errorf("identity headers repeated: %v", e.Header)
				}
			})
		})
	}
}

func TestStripperMatches(t *testing.T) {
	s := newStripper([]string{"X-Tenant"})
	for _, n := range []string{"X-Forwarded-User", "x_forwarded_user", "X-Auth-Request-Foo", "X-Latch-CSRF", "X-Userx", "Forwarded", "x-tenant"} {
		if !s.match(n) {
			t.Errorf("%s not stripped", n)
		}
	}
	for _, n := range []string{"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "Authorization", "Cookie", "Accept", "X-Request-Id", "X-Use"} {
		if s.match(n) {
			t.Errorf("%s stripped", n)
		}
	}
}

func TestForwardedHeaders(t *testing.T) {
	up := echoUpstream(t)
	routes := []Route{{Path: "/", Upstream: up.URL, Auth: AuthNone}}
	spoof := http.Header{"X-Forwarded-For": {"1.2.3.4"}, "X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"evil.example"}}

	t.Run("untrusted peer: replaced", func(t *testing.T) {
		h := newHarness(t, routes, func(c *Config, _ *Deps) { c.TrustedProxies = []string{"10.0.0.0/8"} })
		e := sendRaw(t, h, "/x", nil, spoof)
		host := strings.TrimPrefix(h.url, "http://")
		if got := e.Header.Values("X-Forwarded-For"); len(got) != 1 || got[0] != "127.0.0.1" {
			t.Errorf("X-Forwarded-For = %q, want 127.0.0.1 only", got)
		}
		if got := e.Header.Get("X-Forwarded-Proto"); got != "http" {
			t.Errorf("X-Forwarded-Proto = %q, want http", got)
		}
		if got := e.Header.Get("X-Forwarded-Host"); got != host {
			t.Errorf("X-Forwarded-Host = %q, want %q", got, host)
		}
	})
	t.Run("trusted peer: appended", func(t *testing.T) {
		h := newHarness(t, routes, func(c *Config, _ *Deps) { c.TrustedProxies = []string{"127.0.0.1/32"} })
		e := sendRaw(t, h, "/x", nil, spoof)
		if got := e.Header.Get("X-Forwarded-For"); got != "1.2.3.4, 127.0.0.1" {
			t.Errorf("X-Forwarded-For = %q", got)
		}
		if got := e.Header.Get("X-Forwarded-Proto"); got != "https" {
			t.Errorf("X-Forwarded-Proto = %q", got)
		}
		if got := e.Header.Get("X-Forwarded-Host"); got != "evil.example" {
			t.Errorf("X-Forwarded-Host = %q", got)
		}
	})
}

// The gateway's session cookie never reaches an upstream, and an upstream
// cannot set it.
func TestSessionCookieKeptFromUpstreams(t *testing.T) {
	up := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Set-Cookie", DefaultCookie+"=planted; Path=/; Secure; HttpOnly")
		w.Header().Add("Set-Cookie", "app=1")
		w.Write([]byte(r.Header.Get("Cookie")))
	})
	h := newHarness(t, []Route{{Path: "/", Upstream: up.URL, Auth: AuthNone}})
	res := h.do("GET", "/", nil, "Cookie: a=1; "+DefaultCookie+"=secret-session; b=2")
	body := readAll(t, res)
	if body != "a=1; b=2" {
		t.Errorf("upstream got Cookie %q, want a=1; b=2", body)
	}
	if got := res.Header.Values("Set-Cookie"); len(got) != 1 || got[0] != "app=1" {
		t.Errorf("Set-Cookie = %q, want only app=1", got)
	}
}
