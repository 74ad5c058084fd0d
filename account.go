package latch

import (
	"context"
	"time"
)

// Purposes of account tokens.
const (
	// PurposeVerifyEmail: the token proves that its holder receives mail
	// at the address it was issued for.
	PurposeVerifyEmail = "verify_email"
	// PurposeResetPassword: the token lets its holder set a new password.
	PurposeResetPassword = "reset_password"
	// PurposeUnlockSignIn: the token lifts the account-wide sign-in lock
	// that failed sign-ins from many addresses put on the account (see
	// package throttle).
	PurposeUnlockSignIn = "unlock_sign_in"
)

// Lock reasons. A password reset unlocks an account only if its reason
// is LockReasonResetRequired (see package account); every other lock is
// lifted by an operator only.
const (
	// LockReasonAdmin: an operator locked the account (latch user lock).
	LockReasonAdmin = "admin"
	// LockReasonResetRequired: the account is locked until its owner
	// resets the password (for example after "this wasn't me").
	LockReasonResetRequired = "reset_required"
)

// Event types of the account lifecycle.
const (
	EventEmailVerified   = "email_verified"
	EventPasswordReset   = "password_reset"
	EventPasswordChanged = "password_changed"
	EventAccountLocked   = "account_locked"
	EventAccountUnlocked = "account_unlocked"
	EventUserDeleted     = "user_deleted"
	// EventResetRequested: a reset link was sent (or made for support
	// staff: Detail "by": "cli").
	EventResetRequested = "password_reset_requested"
	// EventSignInLocked: failed sign-ins from many addresses locked the
	// account for everyone but its known devices, and the owner was sent
	// an unlock link. EventSignInUnlocked: the owner used it.
	EventSignInLocked   = "sign_in_locked"
	EventSignInUnlocked = "sign_in_unlocked"
)

// AccountToken is a single-use token mailed to a user (an email
// verification or a password reset link), stored only as the SHA-256 of
// the token.
type AccountToken struct {
	Hash    []byte
	Purpose string // PurposeVerifyEmail, PurposeResetPassword or PurposeUnlockSignIn
	UserID  string
	// Email is the address the token was sent to: a verification proves
	// that address only, and is void once the user's email changed.
	Email     string
	CreatedAt time.Time
	ExpiresAt time.Time
	// UsedAt is when the token was consumed; zero while it was not.
	UsedAt time.Time
}

// AccountStore keeps account tokens and the account states they change.
type AccountStore interface {
	// CreateAccountToken stores t and, if msg is not nil, enqueues msg in
	// the outbox in the same transaction (the email carrying the token),
	// setting msg.ID. ErrNotFound if the user does not exist; ErrConflict
	// if the hash is taken.
	CreateAccountToken(ctx context.Context, t *AccountToken, msg *OutboxMessage) error
	// ConsumeAccountToken marks the token with the hash and purpose used
	// at at and returns it, in one conditional statement: of concurrent
	// consumers exactly one succeeds. ErrNotFound if no such token exists,
	// it has another purpose, it was used, or it expired at or before at.
	ConsumeAccountToken(ctx context.Context, hash []byte, purpose string, at time.Time) (*AccountToken, error)
	// AccountToken returns the token with the hash and purpose that is
	// usable at at (neither used nor expired) without spending it, so that
	// a request can be checked before its link is spent; ErrNotFound
	// otherwise.
	AccountToken(ctx context.Context, hash []byte, purpose string, at time.Time) (*AccountToken, error)
	// RetireAccountTokens marks every unused token of the user with the
	// purpose used at at (a reset or a change of password ends every other
	// reset link) and reports how many it retired.
	RetireAccountTokens(ctx context.Context, userID, purpose string, at time.Time) (int, error)
	// VerifyEmail sets EmailVerifiedAt of the user to at, only while the
	// user's email is still email (ErrNotFound otherwise). A verified
	// address keeps its first EmailVerifiedAt.
	VerifyEmail(ctx context.Context, userID, email string, at time.Time) error
	// LockUser sets LockedAt (at) and LockReason of the user; a locked
	// user keeps its first LockedAt, and takes the new reason unless it
	// is locked by an operator (LockReasonAdmin): a lock that a reset may
	// lift never replaces one it may not. ErrNotFound if there is no such
	// user.
	LockUser(ctx context.Context, userID, reason string, at time.Time) error
	// UnlockUser clears LockedAt and LockReason. If reason is not empty,
	// only a lock with that reason is lifted: ErrConflict if the user is
	// locked for another reason. Unlocking an unlocked user does nothing.
	// ErrNotFound if there is no such user.
	UnlockUser(ctx context.Context, userID, reason string, at time.Time) error
	// DeleteUser deletes the user with its sessions, refresh tokens, SSO
	// sessions, codes, consents and account tokens. It writes no
	// revocation entry: revoke the user first (SessionStore.RevokeUser).
	// ErrNotFound if there is no such user.
	DeleteUser(ctx context.Context, userID string) error
}
