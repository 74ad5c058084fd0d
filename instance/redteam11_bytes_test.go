package instance_test

import (
	"encoding/base64"
	"testing"

	"github.com/latchauth/latch/config"
	"github.com/latchauth/latch/internal/testenv"
)

// TestRedteam11_BadBytesAreNo5xx: bytes PostgreSQL refuses in text (a
// user agent that is not UTF-8; a NUL or a non-UTF-8 byte in a device's
// name or id) are bad input, answered 4xx or taken in cleaned form, never
// a 5xx. Before the fix, on PostgreSQL, such a User-Agent made every
// sign-in and refresh a 503, and the device API answered 503 too.
func TestRedteam11_BadBytesAreNo5xx(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			var mutate func(*config.Config)
			if backend == "postgres" {
				u := testenv.PostgresSchema(t, "latch_redteam_")
				mutate = func(c *config.Config) { c.Store = u; c.KEK = base64.StdEncoding.EncodeToString(make([]byte, 32)) }
			}
			h := start(t, "", mutate)
			h.addUser("ada@example.com", adaPass)
			badUA := []string{"User-Agent", "Mozilla/5.0 \xff\xfe (X11; Linux x86_64) Firefox/120.0"}
			r := h.do("POST", "/v1/auth/login", jsonBody(map[string]string{"email": "ada@example.com", "password": adaPass}), badUA...)
			if r.code != 200 {
				t.Fatalf("sign-in with a non-UTF-8 User-Agent: %d %s", r.code, r.raw)
			}
			if rr := h.do("POST", "/v1/auth/refresh", jsonBody(map[string]string{"refresh_token": r.str("refresh_token")}), badUA...); rr.code != 200 {
				t.Fatalf("refresh with a non-UTF-8 User-Agent: %d %s", rr.code, rr.raw)
			}
			if rr := h.do("POST", "/v1/auth/login", jsonBody(map[string]string{"email": "ada@example.com", "password": "wrong password!"}), badUA...); rr.code != 401 {
				t.Fatalf("failed sign-in with a non-UTF-8 User-Agent: %d %s", rr.code, rr.raw)
			}
			auth := bearer(h.login("ada@example.com", adaPass).str("access_token"))
			for _, c := range []struct{ method, path, body string }{
				{"PATCH", "/v1/devices/dev_x", `{"name":"a\u0000b"}`},
				{"PATCH", "/v1/devices/a%00b", `{"name":"ab"}`},
				{"PATCH", "/v1/devices/a%FFb", `{"name":"ab"}`},
				{"DELETE", "/v1/devices/a%00b", ""},
				{"DELETE", "/v1/devices/a%FFb", ""},
				{"DELETE", "/v1/sessions/a%00b", ""},
				{"DELETE", "/v1/consents/a%FFb", ""},
				{"POST", "/admin/v1/users/a%FFb/revoke", ""},
				{"POST", "/admin/v1/sessions/a%00b/revoke", ""},
				{"POST", "/v1/auth/password/forgot", `{"email":"a\u0000@example.com"}`},
			} {
				if rr := h.do(c.method, c.path, c.body, auth...); rr.code >= 500 {
					t.Errorf("%s %s %s: %d %s", c.method, c.path, c.body, rr.code, rr.raw)
				}
			}
			for _, id := range []string{"a%FFb", "a%00b"} {
				if rr := h.do("POST", "/oauth2/token", "grant_type=client_credentials&client_secret=x&client_id="+id, "Content-Type", "application/x-www-form-urlencoded"); rr.code >= 500 {
					t.Errorf("token request of client %s: %d %s", id, rr.code, rr.raw)
				}
				if rr := h.do("GET", "/oauth2/authorize?response_type=code&redirect_uri=x&client_id="+id, ""); rr.code >= 500 {
					t.Errorf("authorization request of client %s: %d %s", id, rr.code, rr.raw)
				}
			}
		})
	}
}
