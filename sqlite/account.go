package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/latchauth/latch"
)

// CreateAccountToken stores t and enqueues msg (if not nil) in the same
// transaction. See latch.AccountStore.
func (s *Store) CreateAccountToken(ctx context.Context, t *latch.AccountToken, msg *latch.OutboxMessage) error {
	var id int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var one int
		if err := tx.QueryRowContext(ctx, "SELECT 1 FROM users WHERE id = ?", t.UserID).Scan(&one); err != nil {
			return translate(err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO account_tokens
			(hash, purpose, user_id, email, created_at, expires_at, used_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			t.Hash, t.Purpose, t.UserID, t.Email, micros(t.CreatedAt), micros(t.ExpiresAt), micros(t.UsedAt)); err != nil {
			return translate(err)
		}
		if msg == nil {
			return nil
		}
		m := *msg
		if err := enqueue(ctx, tx, &m); err != nil {
			return err
		}
		id = m.ID
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: create %s token for user %s: %w", t.Purpose, t.UserID, err)
	}
	if msg != nil {
		msg.ID = id
	}
	return nil
}

// ConsumeAccountToken marks an unused, unexpired token of the purpose used
// in one conditional UPDATE. See latch.AccountStore.
func (s *Store) ConsumeAccountToken(ctx context.Context, hash []byte, purpose string, at time.Time) (*latch.AccountToken, error) {
	var t latch.AccountToken
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `UPDATE account_tokens SET used_at = ?
			WHERE hash = ? AND purpose = ? AND used_at = 0 AND expires_at > ?
			RETURNING hash, purpose, user_id, email, created_at, expires_at, used_at`,
			micros(at), hash, purpose, micros(at)).
			Scan(&t.Hash, &t.Purpose, &t.UserID, &t.Email, scanTime(&t.CreatedAt), scanTime(&t.ExpiresAt), scanTime(&t.UsedAt))
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: consume %s token: %w", purpose, translate(err))
	}
	return &t, nil
}

// AccountToken returns the usable token with the hash and purpose without
// spending it. See latch.AccountStore.
func (s *Store) AccountToken(ctx context.Context, hash []byte, purpose string, at time.Time) (*latch.AccountToken, error) {
	var t latch.AccountToken
	err := s.db.QueryRowContext(ctx, `SELECT hash, purpose, user_id, email, created_at, expires_at, used_at
		FROM account_tokens WHERE hash = ? AND purpose = ? AND used_at = 0 AND expires_at > ?`, hash, purpose, micros(at)).
		Scan(&t.Hash, &t.Purpose, &t.UserID, &t.Email, scanTime(&t.CreatedAt), scanTime(&t.ExpiresAt), scanTime(&t.UsedAt))
	if err != nil {
		return nil, fmt.Errorf("sqlite: %s token: %w", purpose, translate(err))
	}
	return &t, nil
}

// RetireAccountTokens marks the user's unused tokens of the purpose used.
// See latch.AccountStore.
func (s *Store) RetireAccountTokens(ctx context.Context, userID, purpose string, at time.Time) (int, error) {
	res, err := s.w.ExecContext(ctx, `UPDATE account_tokens SET used_at = ?
		WHERE user_id = ? AND purpose = ? AND used_at = 0`, micros(at), userID, purpose)
	if err != nil {
		return 0, fmt.Errorf("sqlite: retire %s tokens of user %s: %w", purpose, userID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("sqlite: retire %s tokens of user %s: %w", purpose, userID, err)
	}
	return int(n), nil
}

// VerifyEmail marks the user's email verified while it is still email.
// See latch.AccountStore.
func (s *Store) VerifyEmail(ctx context.Context, userID, email string, at time.Time) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE users
			SET email_verified_at = CASE WHEN email_verified_at = 0 THEN ? ELSE email_verified_at END
			WHERE id = ? AND email = ?`, micros(at), userID, email)
		if err != nil {
			return err
		}
		return mustAffect(res)
	})
	if err != nil {
		return fmt.Errorf("sqlite: verify email of user %s: %w", userID, err)
	}
	return nil
}

// LockUser locks the account. See latch.AccountStore.
func (s *Store) LockUser(ctx context.Context, userID, reason string, at time.Time) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error { return lockUser(ctx, tx, userID, reason, at) })
	if err != nil {
		return fmt.Errorf("sqlite: lock user %s: %w", userID, err)
	}
	return nil
}

// lockUser is LockUser in tx (RevokeUser locks in its transaction too).
func lockUser(ctx context.Context, tx *sql.Tx, userID, reason string, at time.Time) error {
	res, err := tx.ExecContext(ctx, `UPDATE users
		SET locked_at = CASE WHEN locked_at = 0 THEN ? ELSE locked_at END,
			lock_reason = CASE WHEN locked_at <> 0 AND lock_reason = ? THEN lock_reason ELSE ? END,
			updated_at = ?
		WHERE id = ?`, micros(at), latch.LockReasonAdmin, reason, micros(at), userID)
	if err != nil {
		return err
	}
	return mustAffect(res)
}

// UnlockUser lifts the lock of the account, if reason is not empty only a
// lock of that reason. See latch.AccountStore.
func (s *Store) UnlockUser(ctx context.Context, userID, reason string, at time.Time) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var lockedAt int64
		var current string
		if err := tx.QueryRowContext(ctx, "SELECT locked_at, lock_reason FROM users WHERE id = ?", userID).
			Scan(&lockedAt, &current); err != nil {
			return translate(err)
		}
		if lockedAt == 0 {
			return nil
		}
		if reason != "" && current != reason {
			return latch.ErrConflict
		}
		_, err := tx.ExecContext(ctx, "UPDATE users SET locked_at = 0, lock_reason = '', updated_at = ? WHERE id = ?",
			micros(at), userID)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: unlock user %s: %w", userID, err)
	}
	return nil
}

// DeleteUser deletes the user and, by ON DELETE CASCADE, everything that
// belongs to it. See latch.AccountStore.
func (s *Store) DeleteUser(ctx context.Context, userID string) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "DELETE FROM users WHERE id = ?", userID)
		if err != nil {
			return err
		}
		return mustAffect(res)
	})
	if err != nil {
		return fmt.Errorf("sqlite: delete user %s: %w", userID, err)
	}
	return nil
}
