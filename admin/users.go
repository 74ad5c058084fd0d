package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/account"
	"github.com/latchauth/latch/auth"
)

// MaxPage is the largest page the console's lists return.
const MaxPage = 200

// ErrSelf: an administrator may not lock or delete their own account
// from the console (which would lock them out mid-action).
var ErrSelf = errors.New("admin: you cannot lock or delete your own account from the console")

// UsersStore is what Users reads.
type UsersStore interface {
	latch.ConsoleStore
	latch.UserStore
	latch.EventStore
}

// Users is the console's user management: search, a user's sessions and
// events, lock, unlock, password reset, create and delete. Every change is
// recorded (admin_action) besides the events the account services record.
type Users struct {
	store   UsersStore
	auth    *auth.Service
	account *account.Service
	audit   audit
}

// NewUsers returns Users; now nil means time.Now, log nil slog.Default().
func NewUsers(st UsersStore, a *auth.Service, acc *account.Service, now func() time.Time, log *slog.Logger) *Users {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.Default()
	}
	return &Users{store: st, auth: a, account: acc, audit: audit{events: st, now: now, log: log}}
}

// Page clamps a requested page size to 1..MaxPage (default 50).
func Page(n int) int {
	switch {
	case n <= 0:
		return 50
	case n > MaxPage:
		return MaxPage
	}
	return n
}

// Search returns a page of users (ConsoleStore.SearchUsers) and the
// cursor of the next page ("" on the last).
func (s *Users) Search(ctx context.Context, search, after string, limit int) ([]latch.User, string, error) {
	limit = Page(limit)
	list, err := s.store.SearchUsers(ctx, latch.UserQuery{Search: search, After: after, Limit: limit + 1})
	if err != nil {
		return nil, "", fmt.Errorf("admin: search users: %w", err)
	}
	next := ""
	if len(list) > limit {
		list = list[:limit]
		next = list[limit-1].Email
	}
	return list, next, nil
}

// Count returns how many users exist.
func (s *Users) Count(ctx context.Context) (int, error) { return s.store.CountUsers(ctx) }

// Detail is one user as the console shows it.
type Detail struct {
	User     *latch.User
	Sessions []auth.SessionInfo
	Events   []latch.Event
}

// Get returns a user with their live sessions and latest events;
// ErrNotFound if there is no such user.
func (s *Users) Get(ctx context.Context, id string) (*Detail, error) {
	u, err := s.store.UserByID(ctx, id)
	if errors.Is(err, latch.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("admin: user: %w", err)
	}
	sess, err := s.auth.Sessions(ctx, id)
	if err != nil {
		return nil, err
	}
	ev, err := s.store.EventsByUser(ctx, id, 50)
	if err != nil {
		return nil, fmt.Errorf("admin: events of user: %w", err)
	}
	return &Detail{User: u, Sessions: sess, Events: ev}, nil
}

// Create creates a user with the email and password (auth's rules).
func (s *Users) Create(ctx context.Context, by Caller, addr, pw string) (*latch.User, error) {
	u, err := s.auth.CreateUser(ctx, addr, pw, by.Device)
	if err != nil {
		return nil, err
	}
	s.audit.record(ctx, by, "create_user", u.ID, nil)
	return u, nil
}

// Lock locks the user (an operator's lock, which only an operator lifts)
// and revokes every session.
func (s *Users) Lock(ctx context.Context, by Caller, id string) error {
	if by.AdminID == id {
		return ErrSelf
	}
	if err := s.account.Lock(ctx, id, latch.LockReasonAdmin, by.Device); err != nil {
		return notFound(err)
	}
	s.audit.record(ctx, by, "lock_user", id, nil)
	return nil
}

// Unlock lifts the user's lock, whatever its reason.
func (s *Users) Unlock(ctx context.Context, by Caller, id string) error {
	if err := s.account.Unlock(ctx, id, by.Device); err != nil {
		return notFound(err)
	}
	s.audit.record(ctx, by, "unlock_user", id, nil)
	return nil
}

// SendReset emails the user a password-reset link.
func (s *Users) SendReset(ctx context.Context, by Caller, id string) error {
	u, err := s.store.UserByID(ctx, id)
	if errors.Is(err, latch.ErrNotFound) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("admin: user: %w", err)
	}
	if err := s.account.SendReset(ctx, u, "admin"); err != nil {
		return err
	}
	s.audit.record(ctx, by, "send_password_reset", id, nil)
	return nil
}

// Delete revokes and deletes the user.
func (s *Users) Delete(ctx context.Context, by Caller, id string) error {
	if by.AdminID == id {
		return ErrSelf
	}
	if err := s.account.Delete(ctx, id, by.Device); err != nil {
		return notFound(err)
	}
	s.audit.record(ctx, by, "delete_user", id, nil)
	return nil
}

// notFound maps the account service's ErrNotFound to ours.
func notFound(err error) error {
	if errors.Is(err, account.ErrNotFound) {
		return ErrNotFound
	}
	return err
}
