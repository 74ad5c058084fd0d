package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/latchauth/latch"
)

// SetRole sets the role of a user. See latch.AdminStore.
func (s *Store) SetRole(ctx context.Context, userID, role string, at time.Time) error {
	res, err := s.w.ExecContext(ctx, "UPDATE users SET role = ?, updated_at = ? WHERE id = ?", role, micros(at), userID)
	if err == nil {
		err = mustAffect(res)
	}
	if err != nil {
		return fmt.Errorf("sqlite: set role of user %s: %w", userID, err)
	}
	return nil
}

// CountAdmins returns how many users are administrators.
func (s *Store) CountAdmins(ctx context.Context) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM users WHERE role = ?", latch.RoleAdmin).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlite: count admins: %w", err)
	}
	return n, nil
}

// CreateSetupToken stores a setup token. See latch.AdminStore.
func (s *Store) CreateSetupToken(ctx context.Context, t *latch.SetupToken) error {
	_, err := s.w.ExecContext(ctx, "INSERT INTO setup_tokens (hash, created_at, expires_at, used_at) VALUES (?, ?, ?, ?)",
		t.Hash, micros(t.CreatedAt), micros(t.ExpiresAt), micros(t.UsedAt))
	if err != nil {
		return fmt.Errorf("sqlite: create setup token: %w", translate(err))
	}
	return nil
}

// CreateFirstAdmin spends a setup token and creates the first
// administrator, in one transaction (the single writer serialises it with
// every other). See latch.AdminStore.
func (s *Store) CreateFirstAdmin(ctx context.Context, hash []byte, at time.Time, u *latch.User) error {
	u.Role = latch.RoleAdmin
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var admins int
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM users WHERE role = ?", latch.RoleAdmin).Scan(&admins); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, "UPDATE setup_tokens SET used_at = ? WHERE hash = ? AND used_at = 0 AND expires_at > ?",
			micros(at), hash, micros(at))
		if err != nil {
			return err
		}
		if err := mustAffect(res); err != nil {
			return err
		}
		if admins > 0 {
			return latch.ErrAdminExists
		}
		_, err = tx.ExecContext(ctx,
			"INSERT INTO users (id, email, password_hash, created_at, updated_at, role) VALUES (?, ?, ?, ?, ?, ?)",
			u.ID, u.Email, u.PasswordHash, micros(u.CreatedAt), micros(u.UpdatedAt), u.Role)
		return translate(err)
	})
	if err != nil {
		return fmt.Errorf("sqlite: create first admin: %w", err)
	}
	return nil
}
