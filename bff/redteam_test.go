package bff

// Red-team tests (docs/redteam-gateway.md). The test here FAILED against
// the code of branch gwred when it was written (commit 4b66914) and
// passes once the finding it names is fixed.

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestRedteamLoginCookiesBounded (finding F5): every GET /auth/login
// sets one more Path=/ cookie (COOKIE_login_<tag>, about 250 bytes, ten
// minutes), and only the callback of that very sign-in deletes it. A
// page that sends signed-out users to /auth/login (or a user clicking
// "sign in" a few times, or a cross-site page navigating the victim
// there repeatedly) piles them up, and every request to the gateway, and
// through it to every upstream, carries them all: with a few dozen the
// Cookie header passes the 8 KB limit of common upstreams and the auth
// server (431/400 for the whole site for ten minutes). A sign-in should
// expire the older sign-in cookies it sees beyond a small number.
func TestRedteamLoginCookiesBounded(t *testing.T) {
	u := newUnit(t)
	const maxPending = 5
	jar := map[string]string{} // what a browser keeps
	for range 30 {
		req := httptest.NewRequest(http.MethodGet, "/auth/login?return_to=/app", nil)
		for n, v := range jar {
			req.AddCookie(&http.Cookie{Name: n, Value: v})
		}
		rec := httptest.NewRecorder()
		u.m.ServeHTTP(rec, req)
		if rec.Code != http.StatusFound {
			t.Fatalf("login: %d %s", rec.Code, rec.Body)
		}
		for _, c := range rec.Result().Cookies() {
			if c.MaxAge < 0 {
				delete(jar, c.Name)
			} else {
				jar[c.Name] = c.Value
			}
		}
	}
	n, size := 0, 0
	for name, v := range jar {
		if strings.Contains(name, "_login_") {
			n++
			size += len(name) + len(v) + 3
		}
	}
	if n > maxPending {
		t.Errorf("after 30 sign-ins started, the browser holds %d sign-in cookies (%d bytes sent with every request); want at most %d", n, size, maxPending)
	}
}
