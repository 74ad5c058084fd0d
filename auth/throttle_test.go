package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/latchauth/latch/email"
)

// TestAddressKey: the per-address budget is kept per IPv4 address and per
// IPv6 /64, whatever way the address is written.
func TestAddressKey(t *testing.T) {
	cases := []struct{ ip, want string }{
		{"192.0.2.1", "192.0.2.1"},
		{"::ffff:192.0.2.1", "192.0.2.1"},
		{"2001:db8:1:2::1", "2001:db8:1:2::/64"},
		{"2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"},
		{"2001:DB8:1:2:0:0:0:5", "2001:db8:1:2::/64"},
		{"fe80::1%eth0", "fe80::/64"},
		{"2001:db8:1:3::1", "2001:db8:1:3::/64"},
		{"not an address", "not an address"},
	}
	for _, c := range cases {
		if got := addressKey(c.ip); got != c.want {
			t.Errorf("addressKey(%q) = %q, want %q", c.ip, got, c.want)
		}
	}
}

// TestRegistrationSharesTheAddressBudget: allowFrom and allow draw on one
// budget per address.
func TestRegistrationSharesTheAddressBudget(t *testing.T) {
	clk := &testClock{}
	th := newThrottle(ThrottleConfig{PerIPPerMinute: 2}, clk.now)
	if err := th.allowFrom("2001:db8::1"); err != nil {
		t.Fatal(err)
	}
	if err := th.allow("2001:db8::2", "ada@example.com"); err != nil {
		t.Fatal(err)
	}
	if err := th.allowFrom("2001:db8::3"); err == nil {
		t.Fatal("a third attempt from one /64 within the burst of 2 was admitted")
	}
	if err := th.allowFrom("2001:db8:0:1::1"); err != nil {
		t.Fatalf("another /64: %v", err)
	}
}

// TestLockSurvivesEviction: failed sign-ins for many other emails (from
// many addresses) fill the throttle past its bound; the evictions that
// follow must not forget a lock that is still running.
func TestLockSurvivesEviction(t *testing.T) {
	clk := &testClock{t: time.Now()}
	th := newThrottle(ThrottleConfig{MaxFailures: 3, Lockout: time.Hour}, clk.now)
	for range 3 {
		th.failed("kate@example.com")
	}
	for i := range 3 * maxTracked {
		clk.mu.Lock()
		clk.t = clk.t.Add(time.Millisecond)
		clk.mu.Unlock()
		th.failed(fmt.Sprintf("u%d@example.com", i))
	}
	if err := th.allow("192.0.2.1", "kate@example.com"); !errors.Is(err, ErrAccountLocked) {
		t.Fatalf("after %d other failed emails: %v, want ErrAccountLocked", 3*maxTracked, err)
	}
}

// TestThrottleKeysAreSmall: a failed sign-in with an address the rules
// refuse is counted under a key of bounded size, however long the
// address: the throttle keeps up to maxTracked keys, and 100,000 keys of
// 60 KB (a request body's worth) are 6 GB.
func TestThrottleKeysAreSmall(t *testing.T) {
	svc, _ := newService(t)
	svc.throttle = newThrottle(ThrottleConfig{MaxFailures: 2, Lockout: time.Hour}, time.Now)
	ctx := context.Background()
	long := strings.Repeat("A", 60<<10) + "@example.com"
	for range 2 {
		if _, err := login(ctx, svc, long, "wrong password!"); !errors.Is(err, ErrInvalidCredentials) {
			t.Fatalf("login with a 60 KB address: %v", err)
		}
	}
	for key := range svc.throttle.failures {
		if len(key) > email.MaxBytes {
			t.Errorf("throttle key of %d bytes", len(key))
		}
	}
	// Still counted: the same refused address, in any case, is locked.
	if _, err := login(ctx, svc, strings.ToLower(long), "wrong password!"); !errors.Is(err, ErrAccountLocked) {
		t.Fatalf("third attempt with the same refused address: %v, want ErrAccountLocked", err)
	}
}
