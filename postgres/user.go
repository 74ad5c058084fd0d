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
		"INSERT INTO users (id, email, password_hash, created_at, updated_at, role) VALUES ($1, $2, $3, $4, $5, $6)",
		u.ID, u.Email, u.PasswordHash, ts(u.CreatedAt), ts(u.UpdatedAt), u.Role)
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

// userColumns are the columns userFields scans, in order.
const userColumns = "id, email, password_hash, created_at, updated_at, email_verified_at, locked_at, lock_reason, role"

// userFields are the scan destinations of userColumns in u.
func userFields(u *latch.User) []any {
	return []any{&u.ID, &u.Email, &u.PasswordHash, (*nullTime)(&u.CreatedAt), (*nullTime)(&u.UpdatedAt),
		(*nullTime)(&u.EmailVerifiedAt), (*nullTime)(&u.LockedAt), &u.LockReason, &u.Role}
}

// user returns the user whose column (id or email) equals value.
func (s *Store) user(ctx context.Context, column, value string) (*latch.User, error) {
	var u latch.User
	err := s.pool.QueryRow(ctx,
		"SELECT "+userColumns+" FROM users WHERE "+column+" = $1", value).
		Scan(userFields(&u)...)
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

// Users returns up to limit users whose ids sort after after, by id (the
// column's collation is "C": byte order).
func (s *Store) Users(ctx context.Context, after string, limit int) ([]*latch.User, error) {
	rows, err := s.pool.Query(ctx,
		"SELECT "+userColumns+" FROM users WHERE id > $1 ORDER BY id LIMIT $2", after, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: users after %q: %w", after, translate(err))
	}
	defer rows.Close()
	var us []*latch.User
	for rows.Next() {
		var u latch.User
		if err := rows.Scan(userFields(&u)...); err != nil {
			return nil, fmt.Errorf("postgres: users after %q: %w", after, err)
		}
		us = append(us, &u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: users after %q: %w", after, translate(err))
	}
	return us, nil
}

// SetEmail changes a user's email from from to to, only while it is still
// from. It returns an error matching latch.ErrNotFound if no user has that
// id and email, or latch.ErrConflict if another user has to.
func (s *Store) SetEmail(ctx context.Context, userID, from, to string, at time.Time) error {
	tag, err := s.pool.Exec(ctx,
		"UPDATE users SET email = $1, updated_at = $2, email_verified_at = NULL WHERE id = $3 AND email = $4", to, ts(at), userID, from)
	if err == nil && tag.RowsAffected() == 0 {
		err = latch.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("postgres: set email of user %s: %w", userID, translate(err))
	}
	return nil
}
