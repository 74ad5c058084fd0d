package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/latchauth/latch"
)

// CreateUser stores u. It returns an error matching latch.ErrConflict if
// the id or the email is taken.
func (s *Store) CreateUser(ctx context.Context, u *latch.User) error {
	_, err := s.w.ExecContext(ctx,
		"INSERT INTO users (id, email, password_hash, created_at, updated_at, role) VALUES (?, ?, ?, ?, ?, ?)",
		u.ID, u.Email, u.PasswordHash, micros(u.CreatedAt), micros(u.UpdatedAt), u.Role)
	if err != nil {
		return fmt.Errorf("sqlite: create user %s: %w", u.ID, translate(err))
	}
	return nil
}

// UserByID returns the user with the id, or an error matching
// latch.ErrNotFound.
func (s *Store) UserByID(ctx context.Context, id string) (*latch.User, error) {
	u, err := s.user(ctx, "id", id)
	if err != nil {
		return nil, fmt.Errorf("sqlite: user %s: %w", id, err)
	}
	return u, nil
}

// UserByEmail returns the user with the normalised email, or an error
// matching latch.ErrNotFound. The comparison is exact.
func (s *Store) UserByEmail(ctx context.Context, email string) (*latch.User, error) {
	u, err := s.user(ctx, "email", email)
	if err != nil {
		return nil, fmt.Errorf("sqlite: user by email %q: %w", email, err)
	}
	return u, nil
}

// userColumns are the columns userFields scans, in order.
const userColumns = "id, email, password_hash, created_at, updated_at, email_verified_at, locked_at, lock_reason, role"

// userFields are the scan destinations of userColumns in u.
func userFields(u *latch.User) []any {
	return []any{&u.ID, &u.Email, &u.PasswordHash, scanTime(&u.CreatedAt), scanTime(&u.UpdatedAt),
		scanTime(&u.EmailVerifiedAt), scanTime(&u.LockedAt), &u.LockReason, &u.Role}
}

// user returns the user whose column (id or email) equals value.
func (s *Store) user(ctx context.Context, column, value string) (*latch.User, error) {
	var u latch.User
	err := s.db.QueryRowContext(ctx,
		"SELECT "+userColumns+" FROM users WHERE "+column+" = ?", value).
		Scan(userFields(&u)...)
	if err != nil {
		return nil, translate(err)
	}
	return &u, nil
}

// SetPasswordHash replaces a user's password hash and sets UpdatedAt to at.
// It returns an error matching latch.ErrNotFound if there is no such user.
func (s *Store) SetPasswordHash(ctx context.Context, userID, hash string, at time.Time) error {
	res, err := s.w.ExecContext(ctx,
		"UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?", hash, micros(at), userID)
	if err == nil {
		err = mustAffect(res)
	}
	if err != nil {
		return fmt.Errorf("sqlite: set password hash of user %s: %w", userID, err)
	}
	return nil
}

// Users returns up to limit users whose ids sort after after, by id.
func (s *Store) Users(ctx context.Context, after string, limit int) ([]*latch.User, error) {
	rows, err := s.db.QueryContext(ctx,
		"SELECT "+userColumns+" FROM users WHERE id > ? ORDER BY id LIMIT ?", after, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: users after %q: %w", after, translate(err))
	}
	defer rows.Close()
	var us []*latch.User
	for rows.Next() {
		var u latch.User
		if err := rows.Scan(userFields(&u)...); err != nil {
			return nil, fmt.Errorf("sqlite: users after %q: %w", after, err)
		}
		us = append(us, &u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: users after %q: %w", after, err)
	}
	return us, nil
}

// SetEmail changes a user's email from from to to, only while it is still
// from. It returns an error matching latch.ErrNotFound if no user has that
// id and email, or latch.ErrConflict if another user has to.
func (s *Store) SetEmail(ctx context.Context, userID, from, to string, at time.Time) error {
	res, err := s.w.ExecContext(ctx,
		"UPDATE users SET email = ?, updated_at = ?, email_verified_at = 0 WHERE id = ? AND email = ?", to, micros(at), userID, from)
	if err == nil {
		err = mustAffect(res)
	}
	if err != nil {
		return fmt.Errorf("sqlite: set email of user %s: %w", userID, translate(err))
	}
	return nil
}
