// Package admin is what the admin API does: operations on other users'
// accounts for a confidential client that holds the admin scope, each
// recorded as a security event naming that client. The first ones close
// the loop of the webhooks: a receiver that judges a sign-in hostile
// revokes the user's sessions, or one session, through them.
package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/auth"
)

// Scope is the OAuth scope a client's access token must carry to use the
// admin API (latch client add --id ops --generate-secret --scopes admin).
const Scope = "admin"

// Reason is the revocation reason recorded on what the admin API revokes.
const Reason = "admin_api"

// MaxNote is the longest note a caller may give with a revocation.
const MaxNote = 200

// Errors of the Service.
var (
	// ErrNotFound: no user or session has the id.
	ErrNotFound = errors.New("admin: not found")
	// ErrBadNote: the note is too long or holds control characters.
	ErrBadNote = fmt.Errorf("admin: the reason must be at most %d printable characters", MaxNote)
)

// Deps are the collaborators of a Service.
type Deps struct {
	Auth *auth.Service
	// Events records the admin_revoked events.
	Events latch.EventStore
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log receives failures to record an event; nil means slog.Default().
	Log *slog.Logger
}

// Service performs the admin operations.
type Service struct {
	auth   *auth.Service
	events latch.EventStore
	now    func() time.Time
	log    *slog.Logger
}

// New returns a Service.
func New(d Deps) (*Service, error) {
	if d.Auth == nil || d.Events == nil {
		return nil, errors.New("admin: the auth service and an event store are required")
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
	return &Service{auth: d.Auth, events: d.Events, now: d.Now, log: d.Log}, nil
}

// Caller is who asks: an administrator (AdminID, the console) or an
// admin client (ClientID, a script), and the request's device.
type Caller struct {
	ClientID string
	// AdminID is the administrator's user id when the console asks.
	AdminID string
	// SessionID is the console session's id when the console asks.
	SessionID string
	Device    auth.Device
}

// checkNote accepts an empty note or up to MaxNote printable characters.
func checkNote(note string) error {
	if !utf8.ValidString(note) || utf8.RuneCountInString(note) > MaxNote {
		return ErrBadNote
	}
	for _, r := range note {
		if !unicode.IsPrint(r) {
			return ErrBadNote
		}
	}
	return nil
}

// RevokeUser revokes every session of the user and sets the user's
// cutoff (every access token issued before now is refused), as logging
// out everywhere does, with the reason Reason; note is the caller's own
// explanation, recorded in the admin_revoked event. ErrNotFound if there
// is no such user.
func (s *Service) RevokeUser(ctx context.Context, by Caller, userID, note string) error {
	if err := checkNote(note); err != nil {
		return err
	}
	if _, err := s.auth.User(ctx, userID); errors.Is(err, auth.ErrNotFound) {
		return ErrNotFound
	} else if err != nil {
		return err
	}
	if err := s.auth.RevokeUser(ctx, userID, Reason, by.Device); err != nil {
		return err
	}
	s.record(ctx, by, "user", userID, "", note)
	return nil
}

// RevokeSession revokes one session, whatever its user, with the reason
// Reason, and returns its user. Revoking a revoked session is no error
// (and is recorded all the same). ErrNotFound if there is no such
// session.
func (s *Service) RevokeSession(ctx context.Context, by Caller, sessionID, note string) (string, error) {
	if err := checkNote(note); err != nil {
		return "", err
	}
	userID, err := s.auth.RevokeSessionByID(ctx, sessionID, Reason, by.Device)
	if errors.Is(err, auth.ErrNotFound) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", err
	}
	s.record(ctx, by, "session", userID, sessionID, note)
	return userID, nil
}

// record appends the admin_revoked event. The revocation is done: a
// failure here is logged, not returned.
func (s *Service) record(ctx context.Context, by Caller, target, userID, sessionID, note string) {
	detail := map[string]string{"target": target}
	if by.AdminID != "" {
		detail["admin"] = by.AdminID
	}
	if note != "" {
		detail["reason"] = note
	}
	e := &latch.Event{Type: latch.EventAdminRevoked, At: s.now().UTC().Truncate(time.Microsecond), UserID: userID,
		SessionID: sessionID, ClientID: by.ClientID, IP: cut(by.Device.IP, auth.MaxIPLen), UserAgent: cut(by.Device.UserAgent, auth.MaxUserAgentLen),
		Detail: detail}
	if err := s.events.AddEvent(context.WithoutCancel(ctx), e); err != nil {
		s.log.Error("recording security event failed", "type", e.Type, "err", err)
	}
}

// cut shortens s to at most n bytes, at a character boundary.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
