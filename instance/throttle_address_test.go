package instance_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/latchauth/latch/config"
)

// TestRegisterRateLimitPerIP: registration draws on the same per-address
// budget as sign-in, so a stream of "email taken" answers (each a password
// hash) is cut off with 429 and Retry-After.
func TestRegisterRateLimitPerIP(t *testing.T) {
	h := start(t, "", func(c *config.Config) {
		c.Registration = true
		c.Login.RatePerIP = 5
		c.TrustedProxies = []string{"127.0.0.1/32"}
	})
	h.addUser(adaEmail, adaPass)
	register := func(ip, email string) response {
		return h.do("POST", "/v1/auth/register", jsonBody(map[string]string{"email": email, "password": adaPass}), "X-Forwarded-For", ip)
	}
	for i := range 5 {
		expect(t, "registration "+strconv.Itoa(i+1), register("192.0.2.1", adaEmail), 409, "email_taken")
	}
	r := register("192.0.2.1", "new@example.com")
	expect(t, "sixth registration in a minute", r, 429, "rate_limited")
	if s, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || s < 1 || s > 12 {
		t.Fatalf("Retry-After = %q", r.header.Get("Retry-After"))
	}
	// One budget for both: sign-in from the same address is refused too.
	login := h.do("POST", "/v1/auth/login", jsonBody(map[string]string{"email": adaEmail, "password": adaPass}), "X-Forwarded-For", "192.0.2.1")
	expect(t, "sign-in after the registrations", login, 429, "rate_limited")
	expect(t, "another address", register("192.0.2.2", "new@example.com"), 201, "")
	h.clock.Advance(12 * time.Second)
	expect(t, "after the wait", register("192.0.2.1", "newer@example.com"), 201, "")
}

// TestIPv6RateLimitPer64: addresses of one /64 share a budget, another
// /64 has its own, and an IPv4-mapped address counts as its IPv4 address.
func TestIPv6RateLimitPer64(t *testing.T) {
	h := start(t, "", func(c *config.Config) {
		c.Login.RatePerIP = 3
		c.TrustedProxies = []string{"127.0.0.1/32"}
	})
	h.addUser(adaEmail, adaPass)
	try := func(ip string) response {
		return h.do("POST", "/v1/auth/login", jsonBody(map[string]string{"email": adaEmail, "password": adaPass}), "X-Forwarded-For", ip)
	}
	for _, ip := range []string{"2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff:ffff:ffff:fffe"} {
		expect(t, "sign-in from "+ip, try(ip), 200, "")
	}
	expect(t, "a fourth address of the same /64", try("2001:db8:1:2:abcd::9"), 429, "rate_limited")
	expect(t, "the neighbouring /64", try("2001:db8:1:3::1"), 200, "")

	for range 3 {
		expect(t, "IPv4", try("192.0.2.7"), 200, "")
	}
	expect(t, "the same IPv4 address, IPv4-mapped", try("::ffff:192.0.2.7"), 429, "rate_limited")
	expect(t, "the next IPv4 address", try("192.0.2.8"), 200, "")
}
