package account

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/latchauth/latch/auth"
	"github.com/latchauth/latch/throttle"
)

// withThrottle gives s a throttle over memory whose account-wide lock
// takes two failures.
func withThrottle(s *Service, now func() time.Time) *throttle.Policy {
	th := throttle.New(throttle.Config{MaxFailures: 1, Lockout: time.Hour, AccountMaxFailures: 2, AccountWindow: time.Hour},
		throttle.NewMemory(now), throttle.Options{})
	s.throttle = th
	return th
}

func lockAccount(t *testing.T, th *throttle.Policy, addr string) {
	t.Helper()
	ctx := context.Background()
	th.Failed(ctx, throttle.Attempt{Account: addr, IP: "192.0.2.1"})
	th.Failed(ctx, throttle.Attempt{Account: addr, IP: "192.0.2.2"})
	if err := th.Allow(ctx, throttle.Attempt{Account: addr, IP: "203.0.113.7"}); !errors.Is(err, throttle.ErrAccountLocked) {
		t.Fatalf("not locked: %v", err)
	}
}

// TestUnlockLink: SendUnlock mails a link to a known address only; the
// link lifts the account-wide lock once; a link whose account changed
// its address since, a token of another purpose and a malformed token
// are refused and lift nothing.
func TestUnlockLink(t *testing.T) {
	s, st, clk := newService(t)
	th := withThrottle(s, clk.now)
	ctx := context.Background()
	if err := s.SendUnlock(ctx, "nobody@example.com"); err != nil {
		t.Fatal(err)
	}
	if got := claimEmails(t, st, clk.now()); len(got) != 0 {
		t.Fatalf("SendUnlock for an unknown address enqueued %+v", got)
	}
	u, err := s.auth.CreateUser(ctx, "kate@example.com", "a long enough password", auth.Device{})
	if err != nil {
		t.Fatal(err)
	}
	lockAccount(t, th, u.Email)
	if err := s.SendUnlock(ctx, "KATE@example.com"); err != nil {
		t.Fatal(err)
	}
	got := claimEmails(t, st, clk.now())
	if len(got) != 1 || got[0].To != u.Email || got[0].Template != TemplateUnlockSignIn || got[0].Data["lockout"] != "1 hour" {
		t.Fatalf("SendUnlock enqueued %+v", got)
	}
	tok, ok := strings.CutPrefix(got[0].Data["link"], "https://id.example/unlock#token=")
	if !ok || !strings.HasPrefix(tok, UnlockTokenPrefix) {
		t.Fatalf("link %q", got[0].Data["link"])
	}
	locked := func() bool {
		return th.Allow(ctx, throttle.Attempt{Account: u.Email, IP: "203.0.113.7"}) != nil
	}

	reset, _, err := s.ResetLink(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	_, resetTok, _ := strings.Cut(reset, "#token=")
	for name, bad := range map[string]string{
		"a reset token":                      resetTok,
		"a malformed token":                  UnlockTokenPrefix + "short",
		"the unlock prefix on a reset token": UnlockTokenPrefix + strings.TrimPrefix(resetTok, ResetTokenPrefix),
	} {
		if err := s.UnlockSignIn(ctx, bad, auth.Device{}); !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("%s: %v, want ErrInvalidToken", name, err)
		}
	}
	if !locked() {
		t.Fatal("refused tokens lifted the lock")
	}

	// The account's address changed since the link was sent: refused.
	if err := st.SetEmail(ctx, u.ID, u.Email, "kate@example.org", clk.now()); err != nil {
		t.Fatal(err)
	}
	if err := s.UnlockSignIn(ctx, tok, auth.Device{}); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("a link to the old address: %v, want ErrInvalidToken", err)
	}
	if err := st.SetEmail(ctx, u.ID, "kate@example.org", u.Email, clk.now()); err != nil {
		t.Fatal(err)
	}
	if !locked() {
		t.Fatal("a link to the old address lifted the lock")
	}

	if err := s.UnlockSignIn(ctx, tok, auth.Device{}); err != nil {
		t.Fatalf("the link: %v", err)
	}
	if locked() {
		t.Fatal("still locked after the link")
	}
	if err := s.UnlockSignIn(ctx, tok, auth.Device{}); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("the link again: %v, want ErrInvalidToken", err)
	}
}

// TestUnlockWithoutThrottle: a service without a throttle refuses to
// spend a link it cannot act on.
func TestUnlockWithoutThrottle(t *testing.T) {
	s, st, clk := newService(t)
	ctx := context.Background()
	u, err := s.auth.CreateUser(ctx, "kate@example.com", "a long enough password", auth.Device{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SendUnlock(ctx, u.Email); err != nil {
		t.Fatal(err)
	}
	got := claimEmails(t, st, clk.now())
	_, tok, _ := strings.Cut(got[0].Data["link"], "#token=")
	if err := s.UnlockSignIn(ctx, tok, auth.Device{}); err == nil || errors.Is(err, ErrInvalidToken) {
		t.Fatalf("without a throttle: %v, want an error", err)
	}
	withThrottle(s, clk.now)
	if err := s.UnlockSignIn(ctx, tok, auth.Device{}); err != nil {
		t.Fatalf("the link was spent by the refused attempt: %v", err)
	}
}

// TestOperatorUnlockLiftsTheSignInLock: the operator's unlock (latch user
// unlock) also lifts the account-wide sign-in lock.
func TestOperatorUnlockLiftsTheSignInLock(t *testing.T) {
	s, _, clk := newService(t)
	th := withThrottle(s, clk.now)
	ctx := context.Background()
	u, err := s.auth.CreateUser(ctx, "kate@example.com", "a long enough password", auth.Device{})
	if err != nil {
		t.Fatal(err)
	}
	lockAccount(t, th, u.Email)
	if err := s.Unlock(ctx, u.ID, auth.Device{}); err != nil {
		t.Fatal(err)
	}
	if err := th.Allow(ctx, throttle.Attempt{Account: u.Email, IP: "203.0.113.7"}); err != nil {
		t.Fatalf("after the operator's unlock: %v", err)
	}
}
