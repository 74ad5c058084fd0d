package auth

import (
	"context"
	"errors"

	"github.com/latchauth/latch"
)

// ErrRiskDenied: a guard refused the sign-in or refresh (an IP or country
// rule, or a risk score at the deny or revoke level). The server answers
// 403 access_denied.
var ErrRiskDenied = errors.New("sign-in from this location is not allowed")

// ErrChallenge is what a SignInGuard returns to ask for a step-up
// challenge (a code sent by email) before the session is created. SignIn
// then begins one with the Challenger and returns a *ChallengeRequired.
var ErrChallenge = errors.New("a challenge is required")

// ChallengeRequired is SignIn's answer when the sign-in must be completed
// with a code sent to the user (Challenger.Begin made it).
type ChallengeRequired struct {
	// ID names the challenge; the client sends it back with the code.
	ID string
}

func (e *ChallengeRequired) Error() string { return "a code was sent by email: challenge " + e.ID }

// Unwrap lets errors.Is match ErrChallenge.
func (e *ChallengeRequired) Unwrap() error { return ErrChallenge }

// SignInGuard screens a sign-in whose credentials were accepted, before
// its session is created (package protect implements it with package
// risk). It returns the Screening to go on with, or an error: one
// matching ErrRiskDenied refuses the sign-in, ErrChallenge asks for a
// challenge, anything else is a server error.
type SignInGuard interface {
	ScreenSignIn(ctx context.Context, a *Authentication, clientID string, d Device) (*Screening, error)
}

// Screening is a guard's word on a sign-in that may go on.
type Screening struct {
	// Outbox holds messages to enqueue in the transaction that creates
	// the session (a new-device alert): both happen or neither.
	Outbox []*latch.OutboxMessage
	// Created, if not nil, is called with the new session once it
	// exists (to record the device and the decision's event).
	Created func(ctx context.Context, sess *Tokens)
	// Detail, if not empty, is added to the sign-in's login_succeeded
	// event: an allowed decision's signals and score, so that the log
	// holds every sign-in's decision (latch risk replay reads it).
	Detail map[string]string
}

// RefreshGuard screens a refresh of a live session before it rotates.
// nil lets it through; an error matching ErrRiskDenied refuses it (the
// guard revokes the session itself when its decision says so).
type RefreshGuard interface {
	ScreenRefresh(ctx context.Context, sess *latch.Session, d Device) error
}

// Challenger begins a step-up challenge for an accepted sign-in (package
// challenge implements it): it records the pending sign-in, sends the
// code, and returns the challenge's ID.
type Challenger interface {
	Begin(ctx context.Context, a *Authentication, clientID string, d Device) (string, error)
}

// KnownDevices tells whether a device (Device.DeviceID) is one the user
// signed in from before and did not forget (package device implements
// it). Sign-in throttling spares the owner on a known device from a lock
// that strangers caused.
type KnownDevices interface {
	Known(ctx context.Context, userID, deviceID string) (bool, error)
}

// Guards are the optional screens of a Service; set them with SetGuards
// before serving.
type Guards struct {
	SignIn     SignInGuard
	Refresh    RefreshGuard
	Challenger Challenger
	Devices    KnownDevices
}

// SetGuards installs the guards. Call it before the service serves
// requests.
func (s *Service) SetGuards(g Guards) { s.guards = g }
