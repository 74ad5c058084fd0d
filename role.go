package latch

import (
	"context"
	"errors"
	"time"
)

// ErrAdminExists means an administrator exists already: a setup token is
// void (AdminStore.CreateFirstAdmin).
var ErrAdminExists = errors.New("an administrator exists")

// RoleAdmin is the role of an administrator (User.Role): the admin console
// and the admin API under /admin are theirs.
const RoleAdmin = "admin"

// Event types of administration.
const (
	// EventAdminCreated: an administrator was created (the setup page or
	// `latch admin create`). Detail "by": "setup" or "cli".
	EventAdminCreated = "admin_created"
	// EventAdminAction: an administrator (UserID is the admin, or
	// ClientID an admin client) did something through the admin API.
	// Detail: "action", "target" and what the action adds.
	EventAdminAction = "admin_action"
)

// SetupToken is the one-time token of the first administrator's setup
// link, stored only as the SHA-256 of the token.
type SetupToken struct {
	Hash      []byte
	CreatedAt time.Time
	ExpiresAt time.Time
	// UsedAt is when the token created the first administrator; zero
	// while it did not.
	UsedAt time.Time
}

// AdminStore keeps the administrators' role and the setup tokens that
// create the first one.
type AdminStore interface {
	// SetRole sets the role of a user (RoleAdmin or ""); ErrNotFound if
	// there is no such user.
	SetRole(ctx context.Context, userID, role string, at time.Time) error
	// CountAdmins returns how many users hold RoleAdmin.
	CountAdmins(ctx context.Context) (int, error)
	// CreateSetupToken stores t; ErrConflict if the hash is taken.
	CreateSetupToken(ctx context.Context, t *SetupToken) error
	// CreateFirstAdmin spends the setup token with the hash and creates u
	// (its Role set to RoleAdmin) in one transaction, only if the token is
	// unused and unexpired at at AND no administrator exists yet, checked
	// in that transaction so that of many instances (each with a token of
	// its own) one administrator only is ever created this way:
	// ErrNotFound if the token is unknown, used or expired,
	// ErrAdminExists if an administrator exists (the token is void),
	// ErrConflict if u's email is taken; nothing changes then.
	CreateFirstAdmin(ctx context.Context, hash []byte, at time.Time, u *User) error
}
