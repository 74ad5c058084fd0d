package account

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/auth"
	"github.com/latchauth/latch/password"
	"github.com/latchauth/latch/sqlite"
	"github.com/latchauth/latch/verifier/revocation"
)

type fakeSigner struct{}

func (fakeSigner) Sign(jwt.Claims) (string, error) { return "signed", nil }

type fakeSealer struct{}

func (fakeSealer) Seal(p, _ []byte) []byte          { return p }
func (fakeSealer) Open(s, _ []byte) ([]byte, error) { return s, nil }
func (fakeSealer) MAC(_ string, m []byte) []byte    { return m }

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newService returns a Service over a fresh SQLite store, with its clock.
func newService(t *testing.T) (*Service, latch.Store, *clock) {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "latch.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h, err := password.NewHasher(password.DefaultParams, 2, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Now().UTC()}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	a, err := auth.New(auth.Config{
		Issuer: "https://id.example", Audience: "https://id.example", ClientID: "latch",
		AccessTokenTTL: 5 * time.Minute, RefreshIdleTimeout: time.Hour, RefreshAbsoluteTTL: 24 * time.Hour,
		Throttle: auth.ThrottleConfig{PerIPPerMinute: 100},
	}, auth.Deps{Store: st, Signer: fakeSigner{}, Sealer: fakeSealer{}, Hasher: h, Revocations: revocation.NewSet(), Log: log, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Issuer: "https://id.example/"}, Deps{Store: st, Auth: a, Log: log, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	return s, st, clk
}

// claimEmails claims every enqueued email.
func claimEmails(t *testing.T, st latch.Store, now time.Time) []latch.EmailMessage {
	t.Helper()
	msgs, err := st.ClaimOutbox(t.Context(), "test", now, now.Add(time.Hour), 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []latch.EmailMessage
	for _, m := range msgs {
		e, err := latch.ParseEmailMessage(m.Payload)
		if err != nil || m.Kind != latch.OutboxEmail {
			t.Fatalf("outbox message %+v: %v", m, err)
		}
		out = append(out, e)
	}
	return out
}

func TestNewRefusesARelativeIssuer(t *testing.T) {
	_, st, _ := newService(t)
	for _, iss := range []string{"", "/path", "id.example", "ftp://id.example"} {
		if _, err := New(Config{Issuer: iss}, Deps{Store: st, Auth: &auth.Service{}}); err == nil {
			t.Errorf("New(issuer %q) accepted it", iss)
		}
	}
}

// TestForgotUnknownEnqueuesNothing: the work for an unknown or refused
// address ends without a message; a known one gets exactly one link on
// the issuer.
func TestForgotUnknownEnqueuesNothing(t *testing.T) {
	s, st, clk := newService(t)
	ctx := context.Background()
	for _, addr := range []string{"nobody@example.com", "not an address", ""} {
		if err := s.Forgot(ctx, addr, auth.Device{}); err != nil {
			t.Fatalf("Forgot(%q): %v", addr, err)
		}
	}
	if got := claimEmails(t, st, clk.now()); len(got) != 0 {
		t.Fatalf("Forgot for unknown addresses enqueued %+v", got)
	}
	if _, err := s.auth.CreateUser(ctx, "known@example.com", "a long enough password", auth.Device{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Forgot(ctx, "KNOWN@example.com", auth.Device{}); err != nil {
		t.Fatal(err)
	}
	got := claimEmails(t, st, clk.now())
	if len(got) != 1 || got[0].To != "known@example.com" || got[0].Template != TemplateResetPassword ||
		!strings.HasPrefix(got[0].Data["link"], "https://id.example/reset#token="+ResetTokenPrefix) {
		t.Fatalf("Forgot for a known address enqueued %+v", got)
	}
}

// TestResetChecksBeforeSpending: a weak password or a token of another
// purpose leaves the link usable; an expired one is refused.
func TestResetChecksBeforeSpending(t *testing.T) {
	s, _, clk := newService(t)
	ctx := context.Background()
	u, err := s.auth.CreateUser(ctx, "rosa@example.com", "a long enough password", auth.Device{})
	if err != nil {
		t.Fatal(err)
	}
	link, ttl, err := s.ResetLink(ctx, u.ID)
	if err != nil || ttl != DefaultResetTTL {
		t.Fatalf("ResetLink: %v %v", ttl, err)
	}
	_, tok, _ := strings.Cut(link, "#token=")
	var policy *password.PolicyError
	if _, err := s.ResetPassword(ctx, tok, "short", auth.Device{}); !errors.As(err, &policy) {
		t.Fatalf("weak password: %v", err)
	}
	if _, err := s.VerifyEmail(ctx, strings.Replace(tok, ResetTokenPrefix, VerifyTokenPrefix, 1), auth.Device{}); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("reset token as a verification token: %v", err)
	}
	if _, err := s.ResetPassword(ctx, tok, "a brand new password", auth.Device{}); err != nil {
		t.Fatalf("reset after the refusals: %v", err)
	}
	if _, err := s.ResetPassword(ctx, tok, "another new password", auth.Device{}); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("reuse: %v", err)
	}
	link, _, _ = s.ResetLink(ctx, u.ID)
	_, tok, _ = strings.Cut(link, "#token=")
	clk.advance(DefaultResetTTL)
	if _, err := s.ResetPassword(ctx, tok, "another new password", auth.Device{}); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("expired: %v", err)
	}
}

// TestResetVoidAfterEmailChange: a link sent to an address the account
// no longer has resets nothing.
func TestResetVoidAfterEmailChange(t *testing.T) {
	s, st, clk := newService(t)
	ctx := context.Background()
	u, err := s.auth.CreateUser(ctx, "old@example.com", "a long enough password", auth.Device{})
	if err != nil {
		t.Fatal(err)
	}
	link, _, _ := s.ResetLink(ctx, u.ID)
	_, tok, _ := strings.Cut(link, "#token=")
	if err := st.SetEmail(ctx, u.ID, "old@example.com", "new@example.com", clk.now()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ResetPassword(ctx, tok, "a brand new password", auth.Device{}); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("reset with a link for the old address: %v", err)
	}
}

func TestHumanDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		30 * time.Minute: "30 minutes", time.Hour: "1 hour", 48 * time.Hour: "48 hours", 90 * time.Minute: "90 minutes",
	} {
		if got := humanDuration(d); got != want {
			t.Errorf("humanDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
