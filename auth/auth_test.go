package auth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/email"
	"github.com/latchauth/latch/password"
	"github.com/latchauth/latch/sqlite"
	"github.com/latchauth/latch/verifier/revocation"
)

// fakeSigner "signs" by returning a fixed string; the service does not look
// inside access tokens.
type fakeSigner struct{}

func (fakeSigner) Sign(jwt.Claims) (string, error) { return "signed.access.token", nil }

// fakeSealer binds the plaintext to the aad without encrypting; enough for
// the service, which only round-trips it.
type fakeSealer struct{}

func (fakeSealer) Seal(p, aad []byte) []byte {
	return append(append(append([]byte{}, aad...), 0), p...)
}

func (fakeSealer) Open(s, aad []byte) ([]byte, error) {
	prefix := append(append([]byte{}, aad...), 0)
	if !bytes.HasPrefix(s, prefix) {
		return nil, errors.New("fakeSealer: wrong aad")
	}
	return s[len(prefix):], nil
}

func (fakeSealer) MAC(purpose string, msg []byte) []byte {
	h := sha256.Sum256(append([]byte(purpose+":"), msg...))
	return h[:]
}

// spyStore wraps a real store: it counts refresh-token lookups, can pretend
// sessions are gone, and lets user lookups ignore cancellation so that a
// cancelled context reaches the password hasher.
type spyStore struct {
	latch.Store
	tokenLookups atomic.Int64
	noSessions   atomic.Bool
	// afterSession, if set, runs after each Session lookup.
	afterSession func()
}

func (s *spyStore) RefreshToken(ctx context.Context, hash []byte) (*latch.RefreshToken, error) {
	s.tokenLookups.Add(1)
	return s.Store.RefreshToken(ctx, hash)
}

func (s *spyStore) Session(ctx context.Context, id string) (*latch.Session, error) {
	if s.noSessions.Load() {
		return nil, fmt.Errorf("spy: session %s: %w", id, latch.ErrNotFound)
	}
	sess, err := s.Store.Session(ctx, id)
	if s.afterSession != nil {
		s.afterSession()
	}
	return sess, err
}

func (s *spyStore) UserByEmail(ctx context.Context, email string) (*latch.User, error) {
	return s.Store.UserByEmail(context.WithoutCancel(ctx), email)
}

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func testConfig() Config {
	return Config{
		Issuer: "https://latch.test", Audience: "https://latch.test", ClientID: "latch",
		AccessTokenTTL: 5 * time.Minute, RefreshIdleTimeout: 7 * 24 * time.Hour,
		RefreshAbsoluteTTL: 30 * 24 * time.Hour, RefreshGrace: 30 * time.Second, Leeway: 5 * time.Second,
	}
}

func newService(t *testing.T) (*Service, *spyStore) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "latch.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	spy := &spyStore{Store: st}
	svc, err := New(testConfig(), testDeps(t, spy))
	if err != nil {
		t.Fatal(err)
	}
	return svc, spy
}

func testDeps(t *testing.T, st latch.Store) Deps {
	t.Helper()
	h, err := password.NewHasher(password.DefaultParams, 2, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	clk := &testClock{t: time.Now()}
	return Deps{
		Store: st, Signer: fakeSigner{}, Sealer: fakeSealer{}, Hasher: h, Revocations: revocation.NewSet(),
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: clk.now,
	}
}

// login signs in as the server's own client. Login gained a client id
// argument while these tests were written; the type switch keeps them
// independent of which form the tree has.
func login(ctx context.Context, svc *Service, email, pw string) (*Tokens, error) {
	type withClientID interface {
		Login(ctx context.Context, email, pw, clientID string, c Device) (*Tokens, error)
	}
	type withoutClientID interface {
		Login(ctx context.Context, email, pw string, c Device) (*Tokens, error)
	}
	switch l := any(svc).(type) {
	case withClientID:
		return l.Login(ctx, email, pw, "", Device{})
	case withoutClientID:
		return l.Login(ctx, email, pw, Device{})
	}
	panic("auth: unknown Login signature")
}

func TestNewRejectsUnusableConfig(t *testing.T) {
	deps := testDeps(t, &spyStore{})
	cases := map[string]func(c *Config, d *Deps){
		"no issuer":              func(c *Config, d *Deps) { c.Issuer = "" },
		"no audience":            func(c *Config, d *Deps) { c.Audience = "" },
		"no client id":           func(c *Config, d *Deps) { c.ClientID = "" },
		"zero access ttl":        func(c *Config, d *Deps) { c.AccessTokenTTL = 0 },
		"negative access ttl":    func(c *Config, d *Deps) { c.AccessTokenTTL = -time.Second },
		"negative jitter":        func(c *Config, d *Deps) { c.AccessTokenJitter = -time.Second },
		"jitter equal to ttl":    func(c *Config, d *Deps) { c.AccessTokenJitter = c.AccessTokenTTL },
		"jitter above ttl":       func(c *Config, d *Deps) { c.AccessTokenJitter = c.AccessTokenTTL + time.Second },
		"zero idle timeout":      func(c *Config, d *Deps) { c.RefreshIdleTimeout = 0 },
		"negative absolute ttl":  func(c *Config, d *Deps) { c.RefreshAbsoluteTTL = -time.Hour },
		"zero absolute ttl":      func(c *Config, d *Deps) { c.RefreshAbsoluteTTL = 0 },
		"negative grace":         func(c *Config, d *Deps) { c.RefreshGrace = -time.Nanosecond },
		"no store":               func(c *Config, d *Deps) { d.Store = nil },
		"no signer":              func(c *Config, d *Deps) { d.Signer = nil },
		"no sealer":              func(c *Config, d *Deps) { d.Sealer = nil },
		"no hasher":              func(c *Config, d *Deps) { d.Hasher = nil },
		"no revocation set":      func(c *Config, d *Deps) { d.Revocations = nil },
		"jitter just below zero": func(c *Config, d *Deps) { c.AccessTokenJitter = -time.Nanosecond },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			c, d := testConfig(), deps
			mutate(&c, &d)
			if _, err := New(c, d); err == nil {
				t.Fatalf("New accepted a configuration with %s", name)
			}
		})
	}
	c := testConfig()
	c.RefreshGrace, c.AccessTokenJitter = 0, c.AccessTokenTTL-time.Second
	if _, err := New(c, deps); err != nil {
		t.Fatalf("New refused grace 0 and jitter just below the ttl: %v", err)
	}
}

// TestEmailIdentifiers: registration and sign-in go through package
// email's canonical form; the table of what maps and what is refused is in
// package email, this test proves the service uses it at both doors.
func TestEmailIdentifiers(t *testing.T) {
	svc, _ := newService(t)
	ctx := context.Background()
	const pw = "correct horse battery"
	u, err := svc.CreateUser(ctx, "ＫＡＴＥ@Example.com", pw, Device{})
	if err != nil {
		t.Fatal(err)
	}
	if u.Email != "kate@example.com" {
		t.Fatalf("stored email %q, want kate@example.com", u.Email)
	}
	// The same identifier: one account, and sign-in reaches it.
	for _, same := range []string{"\u212Aate@example.com", "kate@EXAMPLE.com", "ｋａｔｅ@example.com"} {
		if _, err := svc.CreateUser(ctx, same, pw, Device{}); !errors.Is(err, ErrEmailTaken) {
			t.Errorf("CreateUser(%+q) = %v, want ErrEmailTaken", same, err)
		}
		tok, err := login(ctx, svc, same, pw)
		if err != nil || tok.UserID != u.ID {
			t.Errorf("login as %+q: %v, want kate's account", same, err)
		}
	}
	// NFD and NFC: one account.
	rene, err := svc.CreateUser(ctx, "ren\u00e9@example.com", pw, Device{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateUser(ctx, "rene\u0301@example.com", pw, Device{}); !errors.Is(err, ErrEmailTaken) {
		t.Errorf("NFD duplicate of an NFC account: %v, want ErrEmailTaken", err)
	}
	if tok, err := login(ctx, svc, "rene\u0301@example.com", pw); err != nil || tok.UserID != rene.ID {
		t.Errorf("login in NFD: %v, want rene's account", err)
	}
	// Look-alikes are refused, with the reason, and never sign in.
	for _, bad := range []string{"ka\u200Bte@example.com", "ka\u00ADte@example.com", "\u202Eetak@example.com", "k\u0131te@example.com", "k\u0430te@example.com"} {
		_, err := svc.CreateUser(ctx, bad, pw, Device{})
		var e *email.Error
		if !errors.Is(err, ErrInvalidEmail) || !errors.As(err, &e) {
			t.Errorf("CreateUser(%+q) = %v, want ErrInvalidEmail as an *email.Error", bad, err)
		}
		if _, err := login(ctx, svc, bad, pw); !errors.Is(err, ErrInvalidCredentials) {
			t.Errorf("login as %+q = %v, want ErrInvalidCredentials", bad, err)
		}
	}
}

// TestLoginInvalidEmailFindsNoLegacyRow: a row stored before the rules,
// in a form they refuse, is not reached by typing that form.
func TestLoginInvalidEmailFindsNoLegacyRow(t *testing.T) {
	svc, st := newService(t)
	ctx := context.Background()
	hash, err := svc.HashPassword(ctx, "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	legacy := &latch.User{ID: "u-legacy", Email: "ka\u200bte@example.com", PasswordHash: hash, CreatedAt: time.Now(), UpdatedAt: time.Now()}
	if err := st.CreateUser(ctx, legacy); err != nil {
		t.Fatal(err)
	}
	if _, err := login(ctx, svc, legacy.Email, "correct horse battery"); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("login as the legacy zero-width row = %v, want ErrInvalidCredentials", err)
	}
}

// TestThrottleCountsEverySpelling: failures under look-alike spellings of
// one address count towards that address's lockout.
func TestThrottleCountsEverySpelling(t *testing.T) {
	svc, _ := newService(t)
	useThrottle(svc, ThrottleConfig{MaxFailures: 3, Lockout: time.Hour}, time.Now)
	ctx := context.Background()
	if _, err := svc.CreateUser(ctx, "kate@example.com", "correct horse battery", Device{}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"KATE@example.com", "\u212Aate@example.com", "ｋａｔｅ@example.com"} {
		if _, err := login(ctx, svc, s, "wrong password!"); !errors.Is(err, ErrInvalidCredentials) {
			t.Fatalf("login as %+q with a wrong password: %v", s, err)
		}
	}
	if _, err := login(ctx, svc, "kate@example.com", "correct horse battery"); !errors.Is(err, ErrAccountLocked) {
		t.Fatalf("after three failures under three spellings: %v, want ErrAccountLocked", err)
	}
}

func TestCreateUserRejects(t *testing.T) {
	svc, _ := newService(t)
	ctx := context.Background()
	if _, err := svc.CreateUser(ctx, "ada@example", "correct horse battery", Device{}); !errors.Is(err, ErrInvalidEmail) {
		t.Fatalf("invalid email: %v, want ErrInvalidEmail", err)
	}
	var policy *password.PolicyError
	if _, err := svc.CreateUser(ctx, "ada@example.com", "short", Device{}); !errors.As(err, &policy) {
		t.Fatalf("weak password: %v, want a *password.PolicyError", err)
	}
	if _, err := svc.Register(ctx, "ada@example.com", "correct horse battery", Device{}); !errors.Is(err, ErrRegistrationDisabled) {
		t.Fatalf("register with registration off: %v", err)
	}
	if _, err := svc.CreateUser(ctx, "Ada@Example.com", "correct horse battery", Device{}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateUser(ctx, "ada@example.com", "another good password", Device{}); !errors.Is(err, ErrEmailTaken) {
		t.Fatalf("duplicate: %v, want ErrEmailTaken", err)
	}
}

func TestWellFormedRefreshToken(t *testing.T) {
	tok := newRefreshToken()
	if !wellFormedRefreshToken(tok) {
		t.Fatalf("a fresh token %q is not well formed", tok)
	}
	body := tok[len(RefreshTokenPrefix):]
	// 32 bytes are 43 base64 characters whose last one carries 2 unused
	// bits; a non-zero one is a non-canonical encoding of the same bytes.
	nonCanonical := RefreshTokenPrefix + body[:42] + "B"
	if body[42] == 'B' {
		nonCanonical = RefreshTokenPrefix + body[:42] + "C"
	}
	for name, s := range map[string]string{
		"empty":                "",
		"prefix only":          RefreshTokenPrefix,
		"one short":            tok[:len(tok)-1],
		"one long":             tok + "A",
		"wrong prefix":         "latch_xx_" + body,
		"upper-case prefix":    strings.ToUpper(RefreshTokenPrefix) + body,
		"no prefix, same size": strings.Repeat("A", len(tok)),
		"padding":              RefreshTokenPrefix + body[:42] + "=",
		"std alphabet":         RefreshTokenPrefix + body[:41] + "+/",
		"non-canonical":        nonCanonical,
	} {
		if wellFormedRefreshToken(s) {
			t.Errorf("%s: %q accepted", name, s)
		}
	}
}

// TestMalformedRefreshTokensNeverReachTheStore: refresh and logout reject
// what cannot be a token before any lookup.
func TestMalformedRefreshTokensNeverReachTheStore(t *testing.T) {
	svc, spy := newService(t)
	ctx := context.Background()
	tok := newRefreshToken()
	for _, s := range []string{"garbage", RefreshTokenPrefix, tok[:len(tok)-1], "latch_xx_" + tok[len(RefreshTokenPrefix):]} {
		if _, err := svc.Refresh(ctx, s, Device{}); !errors.Is(err, ErrInvalidGrant) {
			t.Fatalf("Refresh(%q) = %v, want ErrInvalidGrant", s, err)
		}
		if err := svc.LogoutRefreshToken(ctx, s, Device{}); err != nil {
			t.Fatalf("LogoutRefreshToken(%q) = %v, want nil", s, err)
		}
	}
	if n := spy.tokenLookups.Load(); n != 0 {
		t.Fatalf("%d store lookups for malformed tokens, want 0", n)
	}
	// A well-formed unknown token is looked up, and is invalid.
	if _, err := svc.Refresh(ctx, tok, Device{}); !errors.Is(err, ErrInvalidGrant) {
		t.Fatalf("unknown token: %v", err)
	}
	if n := spy.tokenLookups.Load(); n != 1 {
		t.Fatalf("%d lookups for one well-formed token, want 1", n)
	}
}

// TestRefreshOfVanishedSession: a token whose session is gone (pruned
// between the two lookups) is an invalid grant, not a server error.
func TestRefreshOfVanishedSession(t *testing.T) {
	svc, spy := newService(t)
	ctx := context.Background()
	if _, err := svc.CreateUser(ctx, "ada@example.com", "correct horse battery", Device{}); err != nil {
		t.Fatal(err)
	}
	tok, err := login(ctx, svc, "ada@example.com", "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	spy.noSessions.Store(true)
	if _, err := svc.Refresh(ctx, tok.RefreshToken, Device{}); !errors.Is(err, ErrInvalidGrant) {
		t.Fatalf("Refresh of a vanished session = %v, want ErrInvalidGrant", err)
	}
	if err := svc.LogoutRefreshToken(ctx, tok.RefreshToken, Device{}); err != nil {
		t.Fatalf("LogoutRefreshToken of a vanished session = %v, want nil (RFC 7009)", err)
	}
	if err := svc.RevokeSession(ctx, tok.UserID, tok.SessionID, Device{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("RevokeSession of a vanished session = %v, want ErrNotFound", err)
	}
}

// TestLoginUnknownEmailWaitsForTheHasher: an unknown email goes through the
// hasher exactly like a known one, so when no hash can be computed (here: a
// cancelled request; in production: saturation) both fail the same way
// instead of the unknown email answering "invalid credentials" at once.
func TestLoginUnknownEmailWaitsForTheHasher(t *testing.T) {
	svc, _ := newService(t)
	if _, err := svc.CreateUser(context.Background(), "ada@example.com", "correct horse battery", Device{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, known := login(ctx, svc, "ada@example.com", "wrong password!")
	_, unknown := login(ctx, svc, "nobody@example.com", "wrong password!")
	if !errors.Is(known, context.Canceled) {
		t.Fatalf("known email with a cancelled context: %v, want context.Canceled", known)
	}
	if !errors.Is(unknown, context.Canceled) {
		t.Fatalf("unknown email with a cancelled context: %v, want context.Canceled like a known one (VerifyDummy skipped?)", unknown)
	}
}

// TestRevokeSessionOfAnotherUser: another user's session is not found and
// stays live.
func TestRevokeSessionOfAnotherUser(t *testing.T) {
	svc, spy := newService(t)
	ctx := context.Background()
	for _, e := range []string{"ada@example.com", "grace@example.com"} {
		if _, err := svc.CreateUser(ctx, e, "correct horse battery", Device{}); err != nil {
			t.Fatal(err)
		}
	}
	a, err := login(ctx, svc, "ada@example.com", "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	g, err := login(ctx, svc, "grace@example.com", "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.RevokeSession(ctx, a.UserID, g.SessionID, Device{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("revoking another user's session: %v, want ErrNotFound", err)
	}
	if s, err := spy.Store.Session(ctx, g.SessionID); err != nil || s.Revoked() {
		t.Fatalf("another user's session was revoked: %v", err)
	}
	if _, err := svc.Refresh(ctx, g.RefreshToken, Device{}); err != nil {
		t.Fatalf("the other user's refresh token stopped working: %v", err)
	}
}
