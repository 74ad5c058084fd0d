package admin

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/auth"
	"github.com/latchauth/latch/tag"
)

// DefaultSessionTTL is how long after signing in an admin console session
// is accepted (admin.session_ttl).
const DefaultSessionTTL = time.Hour

// ReauthWindow is how long a password confirmation (Gate.Reauth) allows
// the destructive actions.
const ReauthWindow = 5 * time.Minute

// Errors of the Gate.
var (
	// ErrForbidden: the user is no administrator (any more), or is locked.
	ErrForbidden = errors.New("admin: only an administrator may use the admin console")
	// ErrStale: the session's sign-in is older than admin.session_ttl.
	ErrStale = errors.New("admin: the admin session is too old; sign in again")
	// ErrReauth: a destructive action without a recent password
	// confirmation.
	ErrReauth = errors.New("admin: confirm your password first (POST /admin/v1/reauth)")
)

// GateStore is what the Gate reads.
type GateStore interface {
	latch.UserStore
	latch.SessionStore
}

// Gate admits administrators' console sessions: the admin role and the
// lock are read from the store on every request (a demoted or locked
// administrator loses access at once), the sign-in must be recent
// (the session's AuthTime within the session TTL), and destructive
// actions need a password confirmed within ReauthWindow, proved by a MAC
// bound to the session.
type Gate struct {
	store GateStore
	auth  *auth.Service
	mac   tag.MAC
	ttl   time.Duration
	now   func() time.Time
}

// NewGate returns a Gate. mac keys the re-authentication proofs; ttl 0
// means DefaultSessionTTL; now nil means time.Now.
func NewGate(st GateStore, a *auth.Service, mac tag.MAC, ttl time.Duration, now func() time.Time) *Gate {
	if ttl <= 0 {
		ttl = DefaultSessionTTL
	}
	if now == nil {
		now = time.Now
	}
	return &Gate{store: st, auth: a, mac: mac, ttl: ttl, now: now}
}

// SessionTTL is how long after signing in a console session is accepted.
func (g *Gate) SessionTTL() time.Duration { return g.ttl }

// Admit returns the administrator of a session: ErrForbidden if the user
// is unknown, no administrator or locked; ErrStale if the session is
// revoked, unknown, another user's, or its sign-in older than the TTL.
func (g *Gate) Admit(ctx context.Context, userID, sessionID string) (*latch.User, error) {
	u, err := g.store.UserByID(ctx, userID)
	if errors.Is(err, latch.ErrNotFound) {
		return nil, ErrForbidden
	}
	if err != nil {
		return nil, fmt.Errorf("admin: look up user: %w", err)
	}
	if !u.Admin() || u.Locked() {
		return nil, ErrForbidden
	}
	sess, err := g.store.Session(ctx, sessionID)
	if errors.Is(err, latch.ErrNotFound) {
		return nil, ErrStale
	}
	if err != nil {
		return nil, fmt.Errorf("admin: look up session: %w", err)
	}
	if sess.UserID != u.ID || sess.Revoked() || g.now().Sub(sess.AuthTime) > g.ttl {
		return nil, ErrStale
	}
	return u, nil
}

const reauthPurpose = "latch admin reauth v1"

// Reauth checks the administrator's password (throttled and recorded as
// a sign-in is) and returns the proof of it for the session, to send back
// with destructive actions (server: an HttpOnly cookie). Errors are
// auth.Authenticate's.
func (g *Gate) Reauth(ctx context.Context, u *latch.User, sessionID, pw string, dev auth.Device) (string, error) {
	a, err := g.auth.Authenticate(ctx, u.Email, pw, dev)
	if err != nil && !errors.Is(err, auth.ErrEmailNotVerified) {
		return "", err
	}
	if a != nil && a.UserID != u.ID {
		return "", auth.ErrInvalidCredentials
	}
	return g.proofFor(strconv.FormatInt(g.now().Unix(), 10), sessionID), nil
}

// proofFor is the proof of a password confirmed at at (Unix seconds) in
// the session.
func (g *Gate) proofFor(at, sessionID string) string {
	return at + "." + tag.Make(g.mac, reauthPurpose, []byte(at+"\x00"+sessionID))
}

// Reauthenticated reports whether proof is the session's, made within
// ReauthWindow.
func (g *Gate) Reauthenticated(sessionID, proof string) bool {
	at, mac, ok := strings.Cut(proof, ".")
	if !ok || len(at) > 20 || sessionID == "" {
		return false
	}
	n, err := strconv.ParseInt(at, 10, 64)
	if err != nil || !tag.Check(g.mac, reauthPurpose, []byte(at+"\x00"+sessionID), mac) {
		return false
	}
	t := time.Unix(n, 0)
	now := g.now()
	return !t.After(now.Add(time.Second)) && now.Sub(t) <= ReauthWindow
}
