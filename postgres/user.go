package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/latchauth/latch"
)

// CreateUser stores u. It returns an error matching latch.ErrConflict if
// the id or the email is taken.
func (s *Store) CreateUser(ctx context.Context, u *latch.User) error {
	_, err := s.pool.Exec(ctx,
		"INSERT INTO users (id, email, password_hash, created_at, updated_at) VALUES ($1, $2, $3, $4, $5)",
		u.ID, u.Email, u.PasswordHash, ts(u.CreatedAt), ts(u.UpdatedAt))
	if err != nil {
		return fmt.Errorf("postgres: create user %s: %w", u.ID, translate(err))
	}
	return nil
}

// UserByID returns the user with the id, or an error matching
// latch.ErrNotFound.
func (s *Store) UserByID(ctx context.Context, id string) (*latch.User, error) {
	u, err := s.user(ctx, "id", id)
	if err != nil {
		return nil, fmt.Errorf("postgres: user %s: %w", id, err)
	}
	return u, nil
}

// UserByEmail returns the user with the normalised email, or an error
// matching latch.ErrNotFound. The comparison is exact.
func (s *Store) UserByEmail(ctx context.Context, email string) (*latch.User, error) {
	u, err := s.user(ctx, "email", email)
	if err != nil {
		return nil, fmt.Errorf("postgres: user by email %q: %w", email, err)
	}
	return u, nil
}

// user returns the user whose column (id or email) equals value.
func (s *Store) user(ctx context.Context, column, value string) (*latch.User, error) {
	var u latch.User
	err := s.pool.QueryRow(ctx,
		"SELECT id, email, password_hash, created_at, updated_at FROM users WHERE "+column+" = $1", value).
		Scan(&u.ID, &u.Email, &u.PasswordHash, (*nullTime)(&u.CreatedAt), (*nullTime)(&u.UpdatedAt))
	if err != nil {
		return nil, translate(err)
	}
	return &u, nil
}

// SetPasswordHash replaces a user's password hash and sets UpdatedAt to at.
// It returns an error matching latch.ErrNotFound if there is no such user.
func (s *Store) SetPasswordHash(ctx context.Context, userID, hash string, at time.Time) error {
	tag, err := s.pool.Exec(ctx,
		"UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3", hash, ts(at), userID)
	if err == nil && tag.RowsAffected() == 0 {
		err = latch.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("postgres: set password hash of user %s: %w", userID, err)
	}
	return nil
}
