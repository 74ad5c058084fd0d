package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchauth/latch"
)

// firstAdminLock is the transaction-level advisory lock that serialises
// CreateFirstAdmin across instances: under READ COMMITTED, two
// transactions spending two different setup tokens would otherwise both
// see no administrator and both create one.
const firstAdminLock = 0x6c61746368_0017 // "latch", migration 0017

// SetRole sets the role of a user. See latch.AdminStore.
func (s *Store) SetRole(ctx context.Context, userID, role string, at time.Time) error {
	tag, err := s.pool.Exec(ctx, "UPDATE users SET role = $1, updated_at = $2 WHERE id = $3", role, ts(at), userID)
	if err == nil && tag.RowsAffected() == 0 {
		err = latch.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("postgres: set role of user %s: %w", userID, err)
	}
	return nil
}

// CountAdmins returns how many users are administrators.
func (s *Store) CountAdmins(ctx context.Context) (int, error) {
	var n int
	if err := s.pool.QueryRow(ctx, "SELECT count(*) FROM users WHERE role = $1", latch.RoleAdmin).Scan(&n); err != nil {
		return 0, fmt.Errorf("postgres: count admins: %w", err)
	}
	return n, nil
}

// CreateSetupToken stores a setup token. See latch.AdminStore.
func (s *Store) CreateSetupToken(ctx context.Context, t *latch.SetupToken) error {
	_, err := s.pool.Exec(ctx, "INSERT INTO setup_tokens (hash, created_at, expires_at, used_at) VALUES ($1, $2, $3, $4)",
		t.Hash, ts(t.CreatedAt), ts(t.ExpiresAt), ts(t.UsedAt))
	if err != nil {
		return fmt.Errorf("postgres: create setup token: %w", translate(err))
	}
	return nil
}

// CreateFirstAdmin spends a setup token and creates the first
// administrator in one transaction, under an advisory lock that
// serialises it with every other instance's. See latch.AdminStore.
func (s *Store) CreateFirstAdmin(ctx context.Context, hash []byte, at time.Time, u *latch.User) error {
	u.Role = latch.RoleAdmin
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(firstAdminLock)); err != nil {
			return err
		}
		var admins int
		if err := tx.QueryRow(ctx, "SELECT count(*) FROM users WHERE role = $1", latch.RoleAdmin).Scan(&admins); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, "UPDATE setup_tokens SET used_at = $1 WHERE hash = $2 AND used_at IS NULL AND expires_at > $1",
			ts(at), hash)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return latch.ErrNotFound
		}
		if admins > 0 {
			return latch.ErrAdminExists
		}
		_, err = tx.Exec(ctx,
			"INSERT INTO users (id, email, password_hash, created_at, updated_at, role) VALUES ($1, $2, $3, $4, $5, $6)",
			u.ID, u.Email, u.PasswordHash, ts(u.CreatedAt), ts(u.UpdatedAt), u.Role)
		return translate(err)
	})
	if err != nil {
		return fmt.Errorf("postgres: create first admin: %w", err)
	}
	return nil
}
