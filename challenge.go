package latch

import (
	"context"
	"errors"
	"time"
)

// ErrChallengeLimit is returned by CreateChallenge when the user already
// has as many challenges as the limit allows in the window.
var ErrChallengeLimit = errors.New("too many challenges for this user")

// EventChallengeSent: a step-up challenge was begun and its code emailed.
// EventChallengeFailed: a wrong code was entered (Detail "attempts_left").
const (
	EventChallengeSent   = "challenge_sent"
	EventChallengeFailed = "challenge_failed"
)

// Challenge is a sign-in held back until its user enters a code sent by
// email (a step-up challenge, see package challenge). The store keeps only
// the SHA-256 of its ID and a keyed MAC of its code: a copy of the
// database gives neither a usable ID nor, for a six-digit code, anything
// to search offline.
type Challenge struct {
	// IDHash is the SHA-256 of the challenge's ID (what the client holds).
	IDHash []byte
	UserID string
	// ClientID is the client the held-back sign-in is for.
	ClientID string
	// AuthTime is when the password was checked, AMR how (RFC 8176).
	AuthTime time.Time
	AMR      []string
	// IP, UserAgent and DeviceID describe the browser that signed in;
	// only that browser may complete the challenge.
	IP        string
	UserAgent string
	DeviceID  string
	// CodeMAC is the keyed MAC of the code (bound to the ID).
	CodeMAC []byte
	// Attempts counts the wrong codes entered.
	Attempts  int
	CreatedAt time.Time
	ExpiresAt time.Time
	// UsedAt is when the right code was entered; zero while it was not.
	UsedAt time.Time
}

// ChallengeStore keeps the pending step-up challenges.
type ChallengeStore interface {
	// CreateChallenge stores c and enqueues msg (the email carrying the
	// code) in the outbox in the same transaction, setting msg.ID, unless
	// the user already has limit or more challenges created after since:
	// then ErrChallengeLimit, and nothing is stored or enqueued
	// (concurrent creations for one user are counted one after the
	// other). ErrNotFound if the user does not exist; ErrConflict if the
	// ID hash is taken.
	CreateChallenge(ctx context.Context, c *Challenge, msg *OutboxMessage, limit int, since time.Time) error
	// Challenge returns the challenge with the ID hash whatever its state
	// (used, expired, out of attempts), for the caller to say which;
	// ErrNotFound if there is none.
	Challenge(ctx context.Context, idHash []byte) (*Challenge, error)
	// ConsumeChallenge marks the challenge used at at and returns it, in
	// one conditional statement, only if its CodeMAC is codeMAC, it is
	// unused, it expires after at and it has fewer than maxAttempts wrong
	// attempts: of concurrent consumers exactly one succeeds. ErrNotFound
	// otherwise.
	ConsumeChallenge(ctx context.Context, idHash, codeMAC []byte, at time.Time, maxAttempts int) (*Challenge, error)
	// FailChallenge counts one wrong attempt on an unused challenge that
	// expires after at and has fewer than maxAttempts, in one conditional
	// statement, and returns the attempts counted now. ErrNotFound if the
	// challenge is unknown, used, expired or out of attempts.
	FailChallenge(ctx context.Context, idHash []byte, at time.Time, maxAttempts int) (int, error)
}
