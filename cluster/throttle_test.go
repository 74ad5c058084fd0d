package cluster_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/latchauth/latch/mail/mailtest"
)

// TestThrottleAcrossInstances: three instances on PostgreSQL + Redis
// throttle sign-ins as one. Failures for one account from one address,
// spread over the instances, add up to that address's lock on every
// instance; failures from many addresses spread over the instances add
// up to the account-wide lock, and the owner is emailed exactly one
// unlock link (the email goes out through the shared outbox, once);
// the per-address budget is one budget, whichever instance is asked.
func TestThrottleAcrossInstances(t *testing.T) {
	sink := mailtest.Start(t)
	c := newCluster(t, options{env: map[string]string{
		"LATCH_LOGIN_RATE_PER_IP":          "6",
		"LATCH_LOGIN_MAX_FAILURES":         "3",
		"LATCH_LOGIN_ACCOUNT_MAX_FAILURES": "9",
		"LATCH_TRUSTED_PROXIES":            "127.0.0.1/32",
		"LATCH_MAIL_SMTP_URL":              sink.URL(),
	}})
	c.addUser(email, password)
	const bob = "bob@example.com"
	c.addUser(bob, password)
	login := func(n *node, ip, addr, pw string) reply {
		t.Helper()
		return c.must(n, "POST", "/v1/auth/login", map[string]string{"email": addr, "password": pw}, "X-Forwarded-For", ip)
	}
	want := func(what string, r reply, code int) {
		t.Helper()
		if r.code != code {
			t.Fatalf("%s: %s, want %d", what, r, code)
		}
	}

	// One failure on each instance from one address: that address is
	// locked out of the account on every instance.
	for i, n := range c.nodes {
		want(fmt.Sprintf("failure %d on %s", i+1, n.name), login(n, "192.0.2.1", email, "wrong password!"), http.StatusUnauthorized)
	}
	for _, n := range c.nodes {
		want("the failing address on "+n.name, login(n, "192.0.2.1", email, password), http.StatusForbidden)
	}
	want("the owner at home", login(c.nodes[1], "203.0.113.7", email, password), http.StatusOK)

	// Six more failures from two more addresses, round robin: nine in
	// all, the account-wide threshold.
	for i := range 6 {
		n := c.nodes[i%3]
		want(fmt.Sprintf("stranger failure %d on %s", i+1, n.name), login(n, fmt.Sprintf("192.0.2.%d", 2+i/3), email, "wrong password!"), http.StatusUnauthorized)
	}
	for _, n := range c.nodes {
		want("the owner at home on "+n.name+", past the account-wide threshold", login(n, "203.0.113.7", email, password), http.StatusForbidden)
	}

	// One budget per address (6 a minute) across the instances.
	for i := range 6 {
		want(fmt.Sprintf("bob's sign-in %d", i+1), login(c.nodes[i%3], "198.51.100.1", bob, password), http.StatusOK)
	}
	r := login(c.nodes[2], "198.51.100.1", bob, password)
	want("bob's seventh sign-in in a minute from one address", r, http.StatusTooManyRequests)
	if r.header.Get("Retry-After") == "" {
		t.Fatal("429 without Retry-After")
	}

	// Exactly one unlock email. A later email (a reset link for bob)
	// proves that the outbox had the chance to send a second one.
	subject := func(raw string) string { return mailtest.Header(raw, "Subject") }
	unlocks := func() int {
		n := 0
		for _, m := range sink.Accepted() {
			if subject(m) == "Sign-in to your account was locked" && strings.Contains(mailtest.Header(m, "To"), email) {
				n++
			}
		}
		return n
	}
	waitUntil(t, "the unlock email", func() bool { return unlocks() >= 1 })
	want("forgot for bob", c.must(c.nodes[0], "POST", "/v1/auth/password/forgot", map[string]string{"email": bob}), http.StatusAccepted)
	waitUntil(t, "bob's reset email", func() bool {
		for _, m := range sink.Accepted() {
			if subject(m) == "Reset your password" {
				return true
			}
		}
		return false
	})
	if n := unlocks(); n != 1 {
		t.Fatalf("%d unlock emails, want exactly one", n)
	}
	c.no500s(c.nodes...)
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 20 s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestThrottleRedisDown: with Redis gone, sign-in neither fails (no 5xx)
// nor goes unthrottled: each instance throttles in its own memory, says
// so once in its log, and shares again once Redis is back.
func TestThrottleRedisDown(t *testing.T) {
	c := newCluster(t, options{env: map[string]string{
		"LATCH_LOGIN_MAX_FAILURES": "3",
		"LATCH_TRUSTED_PROXIES":    "127.0.0.1/32",
	}})
	c.addUser(email, password)
	login := func(n *node, ip, pw string) reply {
		t.Helper()
		return c.must(n, "POST", "/v1/auth/login", map[string]string{"email": email, "password": pw}, "X-Forwarded-For", ip)
	}
	c.redis.kill()
	n := c.nodes[0]
	if r := login(n, "203.0.113.7", password); r.code != http.StatusOK {
		t.Fatalf("sign-in with Redis down: %s", r)
	}
	for range 3 {
		if r := login(n, "192.0.2.1", "wrong password!"); r.code != http.StatusUnauthorized {
			t.Fatalf("a wrong password with Redis down: %s", r)
		}
	}
	if r := login(n, "192.0.2.1", password); r.code != http.StatusForbidden {
		t.Fatalf("three failures with Redis down: %s, want 403 (locked in memory)", r)
	}
	if got := strings.Count(n.log.String(), "shared state unavailable"); got != 1 {
		t.Fatalf("the outage logged %d times, want once:\n%s", got, tail(n.log.String(), 4000))
	}
	if err := c.redis.start(); err != nil {
		t.Fatal(err)
	}
	// Back: failures on two instances add up again.
	waitUntil(t, "the shared state back", func() bool {
		login(n, "203.0.113.7", password)
		return strings.Contains(n.log.String(), "shared state is back")
	})
	for _, m := range c.nodes[:3] {
		if r := login(m, "192.0.2.50", "wrong password!"); r.code != http.StatusUnauthorized {
			t.Fatalf("failure on %s: %s", m.name, r)
		}
	}
	if r := login(c.nodes[1], "192.0.2.50", password); r.code != http.StatusForbidden {
		t.Fatalf("three failures over three instances after Redis came back: %s, want 403", r)
	}
	c.no500s(c.nodes...)
}
