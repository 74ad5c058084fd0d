package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/latchauth/latch"
)

// CreateAccountToken stores t and enqueues msg (if not nil) in the same
// transaction. See latch.AccountStore.
func (s *Store) CreateAccountToken(ctx context.Context, t *latch.AccountToken, msg *latch.OutboxMessage) error {
	var id int64
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var one int
		if err := tx.QueryRow(ctx, "SELECT 1 FROM users WHERE id = $1 FOR SHARE", t.UserID).Scan(&one); err != nil {
			return translate(err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO account_tokens
			(hash, purpose, user_id, email, created_at, expires_at, used_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			t.Hash, t.Purpose, t.UserID, t.Email, ts(t.CreatedAt), ts(t.ExpiresAt), ts(t.UsedAt)); err != nil {
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
		return fmt.Errorf("postgres: create %s token for user %s: %w", t.Purpose, t.UserID, err)
	}
	if msg != nil {
		msg.ID = id
	}
	return nil
}

// ConsumeAccountToken marks an unused, unexpired token of the purpose used
// in one conditional UPDATE: a concurrent consumer waits on the row lock
// and then finds used_at set. See latch.AccountStore.
func (s *Store) ConsumeAccountToken(ctx context.Context, hash []byte, purpose string, at time.Time) (*latch.AccountToken, error) {
	var t latch.AccountToken
	err := s.pool.QueryRow(ctx, `UPDATE account_tokens SET used_at = $1
		WHERE hash = $2 AND purpose = $3 AND used_at IS NULL AND expires_at > $1
		RETURNING hash, purpose, user_id, email, created_at, expires_at, used_at`,
		ts(at), hash, purpose).
		Scan(&t.Hash, &t.Purpose, &t.UserID, &t.Email, (*nullTime)(&t.CreatedAt), (*nullTime)(&t.ExpiresAt), (*nullTime)(&t.UsedAt))
	if err != nil {
		return nil, fmt.Errorf("postgres: consume %s token: %w", purpose, translate(err))
	}
	return &t, nil
}

// AccountToken returns the usable token with the hash and purpose without
// spending it. See latch.AccountStore.
func (s *Store) AccountToken(ctx context.Context, hash []byte, purpose string, at time.Time) (*latch.AccountToken, error) {
	var t latch.AccountToken
	err := s.pool.QueryRow(ctx, `SELECT hash, purpose, user_id, email, created_at, expires_at, used_at
		FROM account_tokens WHERE hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3`, hash, purpose, ts(at)).
		Scan(&t.Hash, &t.Purpose, &t.UserID, &t.Email, (*nullTime)(&t.CreatedAt), (*nullTime)(&t.ExpiresAt), (*nullTime)(&t.UsedAt))
	if err != nil {
		return nil, fmt.Errorf("postgres: %s token: %w", purpose, translate(err))
	}
	return &t, nil
}

// RetireAccountTokens marks the user's unused tokens of the purpose used.
// See latch.AccountStore.
func (s *Store) RetireAccountTokens(ctx context.Context, userID, purpose string, at time.Time) (int, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE account_tokens SET used_at = $1
		WHERE user_id = $2 AND purpose = $3 AND used_at IS NULL`, ts(at), userID, purpose)
	if err != nil {
		return 0, fmt.Errorf("postgres: retire %s tokens of user %s: %w", purpose, userID, err)
	}
	return int(tag.RowsAffected()), nil
}

// VerifyEmail marks the user's email verified while it is still email.
// See latch.AccountStore.
func (s *Store) VerifyEmail(ctx context.Context, userID, email string, at time.Time) error {
	tag, err := s.pool.Exec(ctx, `UPDATE users SET email_verified_at = coalesce(email_verified_at, $1)
		WHERE id = $2 AND email = $3`, ts(at), userID, email)
	if err == nil && tag.RowsAffected() == 0 {
		err = latch.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("postgres: verify email of user %s: %w", userID, err)
	}
	return nil
}

// LockUser locks the account. See latch.AccountStore.
func (s *Store) LockUser(ctx context.Context, userID, reason string, at time.Time) error {
	if err := lockUser(ctx, s.pool, userID, reason, at); err != nil {
		return fmt.Errorf("postgres: lock user %s: %w", userID, err)
	}
	return nil
}

// lockUser is LockUser on q (RevokeUser locks in its transaction too).
func lockUser(ctx context.Context, q interface {
	Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
}, userID, reason string, at time.Time) error {
	tag, err := q.Exec(ctx, `UPDATE users SET locked_at = coalesce(locked_at, $1),
		lock_reason = CASE WHEN locked_at IS NOT NULL AND lock_reason = $4 THEN lock_reason ELSE $2 END, updated_at = $1
		WHERE id = $3`, ts(at), reason, userID, latch.LockReasonAdmin)
	if err == nil && tag.RowsAffected() == 0 {
		err = latch.ErrNotFound
	}
	return err
}

// UnlockUser lifts the lock of the account, if reason is not empty only a
// lock of that reason. See latch.AccountStore.
func (s *Store) UnlockUser(ctx context.Context, userID, reason string, at time.Time) error {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var lockedAt time.Time
		var current string
		if err := tx.QueryRow(ctx, "SELECT locked_at, lock_reason FROM users WHERE id = $1 FOR UPDATE", userID).
			Scan((*nullTime)(&lockedAt), &current); err != nil {
			return translate(err)
		}
		if lockedAt.IsZero() {
			return nil
		}
		if reason != "" && current != reason {
			return latch.ErrConflict
		}
		_, err := tx.Exec(ctx, "UPDATE users SET locked_at = NULL, lock_reason = '', updated_at = $1 WHERE id = $2",
			ts(at), userID)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: unlock user %s: %w", userID, err)
	}
	return nil
}

// DeleteUser deletes the user and, by ON DELETE CASCADE, everything that
// belongs to it. See latch.AccountStore.
func (s *Store) DeleteUser(ctx context.Context, userID string) error {
	tag, err := s.pool.Exec(ctx, "DELETE FROM users WHERE id = $1", userID)
	if err == nil && tag.RowsAffected() == 0 {
		err = latch.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("postgres: delete user %s: %w", userID, err)
	}
	return nil
}
