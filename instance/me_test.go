package instance_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/latchauth/latch"
)

// TestMeWithServiceToken: /v1/me with a client_credentials token (no user,
// no session) says what is wrong instead of "the account no longer
// exists".
func TestMeWithServiceToken(t *testing.T) {
	h := start(t, "", nil)
	h.addClients()
	tok := h.form("/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, basic("svc", svcSecret)...)
	expect(t, "client credentials", tok, 200, "")
	r := h.do("GET", "/v1/me", "", bearer(tok.str("access_token"))...)
	expect(t, "/v1/me with a service token", r, 403, "insufficient_scope")
	if d := r.str("error_description"); !strings.Contains(d, "user's access token") || !strings.Contains(d, "client_credentials") {
		t.Fatalf("description %q does not say a user's token is needed", d)
	}
	if !strings.Contains(r.header.Get("WWW-Authenticate"), `error="insufficient_scope"`) {
		t.Fatalf("WWW-Authenticate %q", r.header.Get("WWW-Authenticate"))
	}

	// A user's token still works.
	h.addUser("ada@example.com", "a good password")
	login := h.login("ada@example.com", "a good password")
	expect(t, "/v1/me with a user's token", h.do("GET", "/v1/me", "", bearer(login.str("access_token"))...), 200, "")
}

// TestLogoutAllWithServiceToken: a client_credentials token cannot log
// out everywhere: it has no user, and every call appended a user cutoff
// (for the client's id) to the revocation feed that every verifier reads.
func TestLogoutAllWithServiceToken(t *testing.T) {
	h := start(t, "", nil)
	h.addClients()
	tok := h.form("/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, basic("svc", svcSecret)...)
	expect(t, "client credentials", tok, 200, "")
	for range 3 {
		r := h.do("POST", "/v1/auth/logout-all", "", bearer(tok.str("access_token"))...)
		expect(t, "logout-all with a service token", r, 403, "insufficient_scope")
	}
	if feedCovers(t, h, latch.RevokeUser, "svc", h.clock.Now()) {
		t.Fatal("logout-all with a service token wrote a user cutoff for the client")
	}
}
