package instance_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/latchauth/latch/config"
)

func TestLoginRateLimitPerIP(t *testing.T) {
	h := start(t, "", func(c *config.Config) {
		c.Login.RatePerIP = 5
		c.TrustedProxies = []string{"127.0.0.1/32"}
	})
	h.addUser(adaEmail, adaPass)
	try := func(ip, pw string) response {
		return h.do("POST", "/v1/auth/login", jsonBody(map[string]string{"email": adaEmail, "password": pw}), "X-Forwarded-For", ip)
	}
	for i := range 5 {
		expect(t, "attempt "+strconv.Itoa(i+1), try("192.0.2.1", "wrong password!"), 401, "invalid_credentials")
	}
	r := try("192.0.2.1", adaPass)
	expect(t, "sixth attempt in a minute", r, 429, "rate_limited")
	if s, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || s < 1 || s > 12 {
		t.Fatalf("Retry-After = %q", r.header.Get("Retry-After"))
	}
	expect(t, "another address", try("192.0.2.2", adaPass), 200, "")
	h.clock.Advance(12 * time.Second)
	expect(t, "after the wait", try("192.0.2.1", adaPass), 200, "")
}

func TestAccountLockout(t *testing.T) {
	h := start(t, "", func(c *config.Config) {
		c.Login.MaxFailures = 3
		c.Login.Lockout = config.Duration(time.Minute)
	})
	h.addUser(adaEmail, adaPass)
	login := func(email, pw string) response {
		return h.do("POST", "/v1/auth/login", jsonBody(map[string]string{"email": email, "password": pw}))
	}
	for range 3 {
		expect(t, "wrong password", login(adaEmail, "wrong password!"), 401, "invalid_credentials")
	}
	locked := login(adaEmail, adaPass)
	expect(t, "right password while locked", locked, 403, "account_locked")
	if locked.header.Get("Retry-After") != "60" {
		t.Fatalf("Retry-After = %q", locked.header.Get("Retry-After"))
	}
	// An unknown email locks the same way: a lock reveals nothing.
	for range 3 {
		expect(t, "unknown email", login("nobody@example.com", "whatever pw"), 401, "invalid_credentials")
	}
	unknown := login("nobody@example.com", "whatever pw")
	expect(t, "unknown email locked", unknown, 403, "account_locked")
	if string(unknown.raw) != string(locked.raw) {
		t.Fatalf("lock answers differ:\n%s\n%s", locked.raw, unknown.raw)
	}
	h.clock.Advance(61 * time.Second)
	expect(t, "after the lockout", login(adaEmail, adaPass), 200, "")
	// Success resets the count: two more failures do not lock.
	for range 2 {
		expect(t, "wrong again", login(adaEmail, "wrong password!"), 401, "invalid_credentials")
	}
	expect(t, "still open", login(adaEmail, adaPass), 200, "")
}
