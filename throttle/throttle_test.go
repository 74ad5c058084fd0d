package throttle_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchauth/latch/internal/testenv"
	"github.com/latchauth/latch/throttle"
	"github.com/latchauth/latch/throttle/statetest"
)

func TestMemoryState(t *testing.T) {
	clk := testenv.NewClock(time.Unix(1_700_000_000, 0))
	statetest.Run(t, throttle.NewMemory(clk.Now), "t", clk.Advance)
}

// TestAddressKey: the per-address budget and the per-source failures are
// kept per IPv4 address and per IPv6 /64, whatever way the address is
// written.
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
		if got := throttle.AddressKey(c.ip); got != c.want {
			t.Errorf("AddressKey(%q) = %q, want %q", c.ip, got, c.want)
		}
	}
	if k := throttle.AddressKey(strings.Repeat("x", 70_000)); len(k) > 64 {
		t.Errorf("AddressKey of a 70 KB string is %d bytes", len(k))
	}
}

type rig struct {
	clk    *testenv.Clock
	mem    *throttle.Memory
	th     *throttle.Policy
	mu     sync.Mutex
	mailed []string
	calls  atomic.Int32
}

func newRig(cfg throttle.Config) *rig {
	r := &rig{clk: testenv.NewClock(time.Unix(1_700_000_000, 0))}
	r.mem = throttle.NewMemory(r.clk.Now)
	r.th = throttle.New(cfg, r.mem, throttle.Options{OnAccountLocked: r.locked})
	return r
}

func (r *rig) locked(_ context.Context, account string) {
	r.mu.Lock()
	r.mailed = append(r.mailed, account)
	r.mu.Unlock()
	r.calls.Add(1)
}

func (r *rig) fail(t *testing.T, a throttle.Attempt) {
	t.Helper()
	if err := r.th.Allow(context.Background(), a); err != nil {
		t.Fatalf("attempt %+v refused: %v", a, err)
	}
	r.th.Failed(context.Background(), a)
}

func locked(err error) bool { return errors.Is(err, throttle.ErrAccountLocked) }

var cfg = throttle.Config{MaxFailures: 3, Lockout: 15 * time.Minute, AccountMaxFailures: 10, AccountWindow: time.Hour}

// TestSourceLock: failures lock their source out of their account for
// Lockout, and nothing else: not another source, not another account.
func TestSourceLock(t *testing.T) {
	r := newRig(cfg)
	ctx := context.Background()
	evil := throttle.Attempt{Account: "kate@example.com", IP: "198.51.100.1"}
	for range 3 {
		r.fail(t, evil)
	}
	err := r.th.Allow(ctx, evil)
	var te *throttle.Error
	if !errors.As(err, &te) || !locked(err) || te.RetryAfter != 15*time.Minute {
		t.Fatalf("the failing source: %v, want locked for 15m", err)
	}
	if err := r.th.Allow(ctx, throttle.Attempt{Account: "kate@example.com", IP: "198.51.100.2"}); err != nil {
		t.Fatalf("another address: %v", err)
	}
	if err := r.th.Allow(ctx, throttle.Attempt{Account: "ada@example.com", IP: "198.51.100.1"}); err != nil {
		t.Fatalf("another account from the failing address: %v", err)
	}
	// An IPv6 source is its /64.
	v6 := throttle.Attempt{Account: "kate@example.com", IP: "2001:db8:1:2::1"}
	for range 3 {
		r.fail(t, v6)
	}
	if err := r.th.Allow(ctx, throttle.Attempt{Account: "kate@example.com", IP: "2001:db8:1:2::ffff"}); !locked(err) {
		t.Fatalf("another address of the failing /64: %v, want locked", err)
	}
	r.clk.Advance(15 * time.Minute)
	if err := r.th.Allow(ctx, evil); err != nil {
		t.Fatalf("after the lockout: %v", err)
	}
}

// TestSuccessForgetsTheSource: a success clears the source's failures, so
// a user's occasional typos never add up to a lock; the account-wide
// count stays.
func TestSuccessForgetsTheSource(t *testing.T) {
	r := newRig(cfg)
	ctx := context.Background()
	me := throttle.Attempt{Account: "kate@example.com", IP: "203.0.113.7"}
	for range 3 {
		r.fail(t, me)
		r.fail(t, me)
		r.th.Succeeded(ctx, me)
	}
	if err := r.th.Allow(ctx, me); err != nil {
		t.Fatalf("two typos before each of three sign-ins: %v", err)
	}
	if n := r.th.RecentFailures(ctx, "kate@example.com"); n != 6 {
		t.Fatalf("RecentFailures = %d, want 6", n)
	}
}

// TestAccountLock: failures from many sources add up to the account-wide
// lock, which holds every source but known devices, mails the owner once
// however many failures follow, is renewed while they go on, and is
// lifted by Unlock.
func TestAccountLock(t *testing.T) {
	r := newRig(cfg)
	ctx := context.Background()
	acct := "kate@example.com"
	for i := range 10 {
		r.fail(t, throttle.Attempt{Account: acct, IP: fmt.Sprintf("198.51.100.%d", i)})
	}
	owner := throttle.Attempt{Account: acct, IP: "203.0.113.7"}
	if err := r.th.Allow(ctx, owner); !locked(err) {
		t.Fatalf("past the account-wide threshold, a fresh address: %v, want locked", err)
	}
	known := throttle.Attempt{Account: acct, IP: "198.51.100.0", KnownDevice: "dev-kate"}
	if err := r.th.Allow(ctx, known); err != nil {
		t.Fatalf("a known device: %v", err)
	}
	// The lock counts for Unknown emails as well, and other accounts are
	// free.
	if err := r.th.Allow(ctx, throttle.Attempt{Account: "ada@example.com", IP: "203.0.113.7"}); err != nil {
		t.Fatalf("another account: %v", err)
	}
	// More failures from strangers, known-device holders are spared.
	// Only the first lock mails; the callback runs in a goroutine.
	r.th.Failed(ctx, throttle.Attempt{Account: acct, IP: "192.0.2.200"})
	waitFor(t, func() bool { return r.calls.Load() >= 1 })
	r.th.Failed(ctx, throttle.Attempt{Account: acct, IP: "192.0.2.201"})
	if n := r.th.RecentFailures(ctx, acct); n != 12 {
		t.Fatalf("RecentFailures = %d, want 12", n)
	}
	if err := r.th.Unlock(ctx, acct); err != nil {
		t.Fatal(err)
	}
	if err := r.th.Allow(ctx, owner); err != nil {
		t.Fatalf("after Unlock: %v", err)
	}
	// A new attack within the window locks again, without a second
	// email; a flush of the goroutines is proved by a sentinel lock of
	// another account, whose email does come.
	for i := range 10 {
		r.fail(t, throttle.Attempt{Account: acct, IP: fmt.Sprintf("192.0.2.%d", i)})
	}
	if err := r.th.Allow(ctx, owner); !locked(err) {
		t.Fatalf("a second attack: %v, want locked", err)
	}
	for i := range 10 {
		r.fail(t, throttle.Attempt{Account: "sentinel@example.com", IP: fmt.Sprintf("192.0.2.%d", 100+i)})
	}
	waitFor(t, func() bool { return r.calls.Load() >= 2 })
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.mailed) != 2 || r.mailed[0] != acct || r.mailed[1] != "sentinel@example.com" {
		t.Fatalf("mailed %v, want one email for %s and one for the sentinel", r.mailed, acct)
	}
}

// TestKnownDeviceHasItsOwnBudget: a known device is not locked by
// others' failures, but its own failures lock it (a stolen device cookie
// is no licence to guess).
func TestKnownDeviceHasItsOwnBudget(t *testing.T) {
	r := newRig(cfg)
	ctx := context.Background()
	dev := throttle.Attempt{Account: "kate@example.com", IP: "203.0.113.7", KnownDevice: "dev-kate"}
	for range 3 {
		r.fail(t, throttle.Attempt{Account: "kate@example.com", IP: "203.0.113.7"})
	}
	if err := r.th.Allow(ctx, dev); err != nil {
		t.Fatalf("the known device at a locked address: %v", err)
	}
	for range 3 {
		r.fail(t, dev)
	}
	if err := r.th.Allow(ctx, dev); !locked(err) {
		t.Fatalf("the known device after its own 3 failures: %v, want locked", err)
	}
	if err := r.th.Allow(ctx, throttle.Attempt{Account: "kate@example.com", IP: "203.0.113.7", KnownDevice: "dev-other"}); err != nil {
		t.Fatalf("another known device: %v", err)
	}
}

// TestAccountWindow: the account-wide count is per window; failures
// spread thinner than the threshold per window never lock.
func TestAccountWindow(t *testing.T) {
	r := newRig(cfg)
	ctx := context.Background()
	for i := range 30 {
		if i%9 == 0 {
			r.clk.Advance(time.Hour)
		}
		r.fail(t, throttle.Attempt{Account: "kate@example.com", IP: fmt.Sprintf("198.51.100.%d", i)})
	}
	if err := r.th.Allow(ctx, throttle.Attempt{Account: "kate@example.com", IP: "203.0.113.7"}); err != nil {
		t.Fatalf("9 failures an hour with a threshold of 10: %v", err)
	}
}

// TestDisabled: zero limits lock nothing.
func TestDisabled(t *testing.T) {
	r := newRig(throttle.Config{})
	for i := range 200 {
		r.fail(t, throttle.Attempt{Account: "kate@example.com", IP: fmt.Sprintf("198.51.100.%d", i%3)})
	}
}

// TestRateLimit: the per-address budget.
func TestRateLimit(t *testing.T) {
	r := newRig(throttle.Config{PerIPPerMinute: 2})
	ctx := context.Background()
	for range 2 {
		if err := r.th.AllowAddress(ctx, "198.51.100.1"); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.th.Allow(ctx, throttle.Attempt{Account: "kate@example.com", IP: "198.51.100.1"}); !errors.Is(err, throttle.ErrRateLimited) {
		t.Fatalf("third attempt: %v, want ErrRateLimited", err)
	}
	r.clk.Advance(30 * time.Second)
	if err := r.th.AllowAddress(ctx, "198.51.100.1"); err != nil {
		t.Fatalf("half a minute later: %v", err)
	}
}

// TestLockSurvivesEviction: failures for many other accounts fill the
// memory state past its bound; the evictions that follow must not forget
// a lock that is still running.
func TestLockSurvivesEviction(t *testing.T) {
	r := newRig(throttle.Config{MaxFailures: 3, Lockout: time.Hour})
	ctx := context.Background()
	kate := throttle.Attempt{Account: "kate@example.com", IP: "198.51.100.1"}
	for range 3 {
		r.fail(t, kate)
	}
	for i := range 300_000 {
		r.clk.Advance(time.Millisecond)
		r.th.Failed(ctx, throttle.Attempt{Account: fmt.Sprintf("u%d@example.com", i), IP: "198.51.100.1"})
	}
	if err := r.th.Allow(ctx, kate); !locked(err) {
		t.Fatalf("after 300000 other failed accounts: %v, want locked", err)
	}
	if n := r.mem.Len(); n > 250_000 {
		t.Fatalf("memory state holds %d entries", n)
	}
}

// broken is a shared state that is down; it counts the calls.
type broken struct{ calls *atomic.Int32 }

var errDown = errors.New("connection refused")

func (b broken) down() error { b.calls.Add(1); return errDown }

func (b broken) Take(context.Context, string, int) (time.Duration, error)  { return 0, b.down() }
func (b broken) Fail(context.Context, throttle.Failure) (int, error)       { return 0, b.down() }
func (b broken) Locked(context.Context, ...string) (time.Duration, error)  { return 0, b.down() }
func (b broken) Count(context.Context, string) (int, error)                { return 0, b.down() }
func (b broken) Mark(context.Context, string, time.Duration) (bool, error) { return false, b.down() }
func (b broken) Clear(context.Context, ...string) error                    { return b.down() }

// TestFallback: with the shared state down the throttle keeps working in
// memory (it never fails open and never errors), and says so once.
func TestFallback(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	clk := testenv.NewClock(time.Unix(1_700_000_000, 0))
	var calls atomic.Int32
	fb := &throttle.Fallback{Shared: broken{&calls}, Local: throttle.NewMemory(clk.Now), Log: log, Pause: time.Hour}
	th := throttle.New(throttle.Config{PerIPPerMinute: 100, MaxFailures: 3, Lockout: time.Hour}, fb, throttle.Options{Log: log})
	ctx := context.Background()
	a := throttle.Attempt{Account: "kate@example.com", IP: "198.51.100.1"}
	for range 3 {
		if err := th.Allow(ctx, a); err != nil {
			t.Fatalf("shared state down: %v", err)
		}
		th.Failed(ctx, a)
	}
	if err := th.Allow(ctx, a); !locked(err) {
		t.Fatalf("shared state down, 3 failures: %v, want locked (in memory)", err)
	}
	if !fb.Down() {
		t.Fatal("Down() = false")
	}
	if n := strings.Count(logs.String(), "shared state unavailable"); n != 1 {
		t.Fatalf("logged the outage %d times, want once:\n%s", n, logs.String())
	}
	// Paused after the first failure: the shared state was asked once.
	if n := calls.Load(); n != 1 {
		t.Fatalf("the shared state was asked %d times within its pause, want once", n)
	}
	if err := th.Unlock(ctx, "kate@example.com"); err == nil {
		t.Fatal("Unlock with the shared state down reported success")
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestAllowMail: emails to one account are counted per source and for
// the account: a stranger who spent their budget does not stop the owner
// asking from another address, many addresses together stop at
// PerAccount, and the window frees them again.
func TestAllowMail(t *testing.T) {
	r := newRig(throttle.Config{})
	ctx := t.Context()
	m := throttle.MailLimit{PerSource: 2, PerAccount: 5, Window: time.Hour}
	ask := func(ip string) error {
		return r.th.AllowMail(ctx, throttle.Attempt{Account: "owner@example.com", IP: ip}, m)
	}
	for i := range 2 {
		if err := ask("203.0.113.66"); err != nil {
			t.Fatalf("stranger's request %d: %v", i+1, err)
		}
	}
	var te *throttle.Error
	if err := ask("203.0.113.66"); !errors.As(err, &te) || !errors.Is(err, throttle.ErrRateLimited) || te.RetryAfter <= 0 {
		t.Fatalf("stranger's third request: %v, want rate limited with a Retry-After", err)
	}
	if err := ask("198.51.100.7"); err != nil {
		t.Fatalf("the owner from home after a stranger's budget ran out: %v", err)
	}
	if err := r.th.AllowMail(ctx, throttle.Attempt{Account: "other@example.com", IP: "203.0.113.66"}, m); err != nil {
		t.Fatalf("another account from the stranger's address: %v", err)
	}
	// Five in all: two from .66, one from home, then two more sources.
	for i, ip := range []string{"192.0.2.1", "192.0.2.2"} {
		if err := ask(ip); err != nil {
			t.Fatalf("source %d: %v", i, err)
		}
	}
	if err := ask("192.0.2.3"); !errors.Is(err, throttle.ErrRateLimited) {
		t.Fatalf("a sixth request from a new address: %v, want the account's limit", err)
	}
	r.clk.Advance(time.Hour + time.Second)
	if err := ask("203.0.113.66"); err != nil {
		t.Fatalf("after the window: %v", err)
	}
}
