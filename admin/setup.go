package admin

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/auth"
	"github.com/latchauth/latch/email"
	"github.com/latchauth/latch/password"
)

// SetupTTL is how long a setup link lasts.
const SetupTTL = time.Hour

// SetupPath is the path of the setup page; Setup.Issue's token goes in its
// token query parameter.
const SetupPath = "/admin/setup"

// Errors of Setup.
var (
	// ErrSetupToken: the setup token is unknown, used or expired.
	ErrSetupToken = errors.New("admin: this setup link is not valid: it was used already, has expired, or was never issued; restart latch serve for a new one, or use latch admin create")
	// ErrAdminExists: an administrator exists, so setup links are void.
	ErrAdminExists = errors.New("admin: an administrator exists already; setup links are void: sign in at /admin, or use latch admin create")
)

// SetupStore is what Setup keeps.
type SetupStore interface {
	latch.AdminStore
	latch.UserStore
	latch.EventStore
}

// Setup creates the first administrator: a new deployment logs a one-time
// link (Issue), whose page creates the first administrator (CreateFirst).
// A token is stored only as its SHA-256, is spent by its use, lasts
// SetupTTL, and is void once any administrator exists.
type Setup struct {
	store SetupStore
	auth  *auth.Service
	now   func() time.Time
}

// NewSetup returns a Setup; now nil means time.Now.
func NewSetup(st SetupStore, a *auth.Service, now func() time.Time) *Setup {
	if now == nil {
		now = time.Now
	}
	return &Setup{store: st, auth: a, now: now}
}

// Needed reports whether no administrator exists yet.
func (s *Setup) Needed(ctx context.Context) (bool, error) {
	n, err := s.store.CountAdmins(ctx)
	if err != nil {
		return false, fmt.Errorf("admin: count administrators: %w", err)
	}
	return n == 0, nil
}

// Issue stores a new setup token and returns it, or "" when an
// administrator exists already (no token is needed then).
func (s *Setup) Issue(ctx context.Context) (string, error) {
	if need, err := s.Needed(ctx); err != nil || !need {
		return "", err
	}
	var b [32]byte
	rand.Read(b[:])
	tok := base64.RawURLEncoding.EncodeToString(b[:])
	now := s.now().UTC().Truncate(time.Microsecond)
	if err := s.store.CreateSetupToken(ctx, &latch.SetupToken{Hash: setupHash(tok), CreatedAt: now, ExpiresAt: now.Add(SetupTTL)}); err != nil {
		return "", fmt.Errorf("admin: store a setup token: %w", err)
	}
	return tok, nil
}

func setupHash(tok string) []byte {
	h := sha256.Sum256([]byte("latch admin setup v1\x00" + tok))
	return h[:]
}

// CreateFirst spends a setup token to create the first administrator with
// the email and password, after the password policy. Errors:
// ErrSetupToken, ErrAdminExists, auth.ErrInvalidEmail, auth.ErrEmailTaken
// (setup creates a new account, it promotes none: the token stays
// usable), a *password.PolicyError.
func (s *Setup) CreateFirst(ctx context.Context, token, addr, pw string, dev auth.Device) (*latch.User, error) {
	if token == "" || len(token) > 128 {
		return nil, ErrSetupToken
	}
	addr, err := email.Normalize(addr)
	if err != nil {
		return nil, err
	}
	if err := password.Check(pw, addr); err != nil {
		return nil, err
	}
	hash, err := s.auth.HashPassword(ctx, pw)
	if err != nil {
		return nil, err
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	u := &latch.User{ID: auth.NewUserID(), Email: addr, PasswordHash: hash, CreatedAt: now, UpdatedAt: now}
	err = s.store.CreateFirstAdmin(ctx, setupHash(token), now, u)
	switch {
	case errors.Is(err, latch.ErrNotFound):
		return nil, ErrSetupToken
	case errors.Is(err, latch.ErrAdminExists):
		return nil, ErrAdminExists
	case errors.Is(err, latch.ErrConflict):
		return nil, auth.ErrEmailTaken
	case err != nil:
		return nil, fmt.Errorf("admin: create the first administrator: %w", err)
	}
	_ = s.store.AddEvent(context.WithoutCancel(ctx), &latch.Event{Type: latch.EventAdminCreated, At: now, UserID: u.ID,
		IP: cut(dev.IP, auth.MaxIPLen), UserAgent: cut(dev.UserAgent, auth.MaxUserAgentLen), Detail: map[string]string{"by": "setup"}})
	return u, nil
}

// Promote makes an existing user an administrator (latch admin create,
// which owns the data directory, may): the role set and an
// admin_created event recorded with by.
func Promote(ctx context.Context, st SetupStore, userID, by string, at time.Time) error {
	if err := st.SetRole(ctx, userID, latch.RoleAdmin, at); err != nil {
		return fmt.Errorf("admin: promote %s: %w", userID, err)
	}
	_ = st.AddEvent(ctx, &latch.Event{Type: latch.EventAdminCreated, At: at.UTC().Truncate(time.Microsecond), UserID: userID,
		UserAgent: "latch-cli", Detail: map[string]string{"by": by}})
	return nil
}
