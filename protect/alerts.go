package protect

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/account"
	"github.com/latchauth/latch/auth"
	"github.com/latchauth/latch/secret"
)

// ErrInvalidLink: an alert link that is malformed, unknown, expired,
// answered already (through either of its links), or whose token belongs
// to another alert.
var ErrInvalidLink = errors.New("the link is invalid, expired, already used, or not for this alert")

// AlertsDeps are the collaborators of Alerts.
type AlertsDeps struct {
	Store latch.Store
	// Auth revokes the user's sessions; Account locks the account and
	// emails the reset link.
	Auth    *auth.Service
	Account *account.Service
	Log     *slog.Logger
	Now     func() time.Time // nil means time.Now
}

// Alerts answers sign-in alerts: "yes, it was me" confirms the device;
// "this wasn't me" signs the user out everywhere and locks the account
// until a password reset.
type Alerts struct {
	store   latch.Store
	auth    *auth.Service
	account *account.Service
	log     *slog.Logger
	now     func() time.Time
}

// NewAlerts returns the alert answering service.
func NewAlerts(d AlertsDeps) (*Alerts, error) {
	if d.Store == nil || d.Auth == nil || d.Account == nil {
		return nil, errors.New("protect: alerts need a store and the auth and account services")
	}
	a := &Alerts{store: d.Store, auth: d.Auth, account: d.Account, log: d.Log, now: d.Now}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.now == nil {
		a.now = time.Now
	}
	return a, nil
}

func (s *Alerts) clock() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// Peek returns the alert a link names and the answer the link gives
// (latch.AlertAnswerMe or latch.AlertAnswerNotMe), without acting: the
// confirm page shows it. ErrInvalidLink for a link that cannot be used.
func (s *Alerts) Peek(ctx context.Context, alertID, token string) (*latch.SignInAlert, string, error) {
	if !wellFormed(token) || alertID == "" {
		return nil, "", ErrInvalidLink
	}
	a, answer, err := s.store.SignInAlert(ctx, secret.HashToken(token), s.clock())
	if errors.Is(err, latch.ErrNotFound) {
		return nil, "", ErrInvalidLink
	}
	if err != nil {
		return nil, "", fmt.Errorf("protect: read sign-in alert: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(a.ID), []byte(alertID)) != 1 {
		return nil, "", ErrInvalidLink // a token of another alert (and maybe another user)
	}
	return a, answer, nil
}

// Answer acts on an alert link (the /alert page's button: POST
// /v1/alerts/answer) and returns the answered alert. Of concurrent
// answers to one alert, through either link, one acts; the others get
// ErrInvalidLink.
//
// "Yes, it was me" marks the alert's device confirmed. "This wasn't me",
// in this order: locks the account (latch.LockReasonResetRequired: a
// password reset lifts it), revokes every session of the user with a
// user cutoff (every access token is refused within the revocation
// bound) and ends its SSO sessions, forgets the intruder's devices (see
// forgetIntruder: they must not count as the owner's), answers the alert, emails a reset link, and records a
// not_me event. The lock comes first: at no moment is the account
// unlocked with the intruder's tokens alive, and a sign-in racing the
// lock is refused by the store (CreateSession) or revoked with the rest.
func (s *Alerts) Answer(ctx context.Context, alertID, token string, c auth.Device) (*latch.SignInAlert, error) {
	a, answer, err := s.Peek(ctx, alertID, token)
	if err != nil {
		return nil, err
	}
	if answer == latch.AlertAnswerNotMe {
		if err := s.account.Lock(ctx, a.UserID, latch.LockReasonResetRequired, c); err != nil {
			return nil, fmt.Errorf("protect: lock after not-me: %w", err)
		}
		if err := s.forgetIntruder(ctx, a); err != nil {
			return nil, err
		}
	}
	got, err := s.store.AnswerSignInAlert(ctx, secret.HashToken(token), s.clock())
	if errors.Is(err, latch.ErrNotFound) {
		return nil, ErrInvalidLink
	}
	if err != nil {
		return nil, fmt.Errorf("protect: answer sign-in alert: %w", err)
	}
	detail := map[string]string{"alert_id": got.ID, "device_id": got.DeviceID}
	if got.Answer == latch.AlertAnswerMe {
		s.event(ctx, &latch.Event{Type: latch.EventDeviceConfirmed, UserID: got.UserID, IP: c.IP, UserAgent: c.UserAgent, Detail: detail})
		return got, nil
	}
	u, err := s.store.UserByID(ctx, got.UserID)
	if err != nil {
		return nil, fmt.Errorf("protect: load user: %w", err)
	}
	if err := s.account.SendReset(ctx, u, "not_me"); err != nil {
		// The account is locked and signed out; the owner can still ask
		// for a reset link on the sign-in page.
		s.log.Error("enqueue reset email after not-me failed", "user_id", u.ID, "err", err)
	}
	s.event(ctx, &latch.Event{Type: latch.EventNotMe, UserID: got.UserID, IP: c.IP, UserAgent: c.UserAgent, Detail: detail})
	return got, nil
}

// forgetIntruder forgets the reported device and every other device of
// the user, not confirmed by the owner ("yes, it was me"), that was first
// seen after that sign-in or has an unanswered alert: an intruder with the
// password may have signed in from more than one browser, and a device left known would spare it the
// next alert and the account-wide lockout.
func (s *Alerts) forgetIntruder(ctx context.Context, a *latch.SignInAlert) error {
	devs, err := s.store.Devices(ctx, a.UserID)
	if err != nil {
		return fmt.Errorf("protect: devices after not-me: %w", err)
	}
	// The devices of alerts still unanswered are suspects too, whenever
	// they came: the owner answered one of the intruder's alerts.
	alerts, err := s.store.SignInAlerts(ctx, a.UserID, 100)
	if err != nil {
		return fmt.Errorf("protect: alerts after not-me: %w", err)
	}
	pending := map[string]bool{a.DeviceID: true}
	for _, o := range alerts {
		if o.Answer == "" {
			pending[o.DeviceID] = true
		}
	}
	for _, d := range devs {
		if !d.ConfirmedAt.IsZero() && d.ID != a.DeviceID {
			continue
		}
		if !pending[d.ID] && !d.CreatedAt.After(a.CreatedAt) {
			continue
		}
		if err := s.store.ForgetDevice(ctx, a.UserID, d.ID); err != nil && !errors.Is(err, latch.ErrNotFound) {
			return fmt.Errorf("protect: forget the intruder's device: %w", err)
		}
	}
	return nil
}

// Recent returns the user's latest alerts, newest first.
func (s *Alerts) Recent(ctx context.Context, userID string, limit int) ([]*latch.SignInAlert, error) {
	list, err := s.store.SignInAlerts(ctx, userID, limit)
	if err != nil {
		return nil, fmt.Errorf("protect: sign-in alerts: %w", err)
	}
	return list, nil
}

func (s *Alerts) event(ctx context.Context, e *latch.Event) {
	e.At = s.clock()
	if err := s.store.AddEvent(ctx, e); err != nil {
		s.log.Warn("recording security event failed", "type", e.Type, "err", err)
	}
}
