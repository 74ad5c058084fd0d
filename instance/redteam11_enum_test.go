package instance_test

import (
	"bytes"
	"net/http"
	"testing"

	"github.com/latchauth/latch/config"
)

// TestRedteam11_RegisterThenSignInEnumerates: with
// accounts.require_verified_email, registration answers a taken address
// like a new one so that it reveals no account. But the registrant knows
// the password it chose: signing in with it right after answers 403
// email_not_verified for an address that was free (the new, unverified
// account) and 401 invalid_credentials for a taken one (the owner's
// password is another). Two requests tell whether any address has an
// account. The two answers must be the same, byte for byte.
func TestRedteam11_RegisterThenSignInEnumerates(t *testing.T) {
	h := start(t, "", func(c *config.Config) { c.Registration = true; c.Accounts.RequireVerifiedEmail = true })
	h.addUser("owner@example.com", "the owner's long password")
	const pw = "the attacker's long password"
	probe := func(addr string) response {
		expect(t, "register "+addr, h.do("POST", "/v1/auth/register", jsonBody(map[string]string{"email": addr, "password": pw})), http.StatusCreated, "")
		return h.do("POST", "/v1/auth/login", jsonBody(map[string]string{"email": addr, "password": pw}))
	}
	free, taken := probe("nobody@example.com"), probe("owner@example.com")
	if free.code != taken.code || !bytes.Equal(free.raw, taken.raw) {
		t.Fatalf("sign-in right after registering tells a taken address from a free one:\nfree:  %d %s\ntaken: %d %s", free.code, free.raw, taken.code, taken.raw)
	}
}
