package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchauth/latch"
)

// CreateChallenge stores c and enqueues msg in the same transaction, after
// counting the user's recent challenges under a lock of the user's row
// (FOR NO KEY UPDATE): concurrent creations for one user, from any
// instance, are counted one after the other, so the limit holds. See
// latch.ChallengeStore.
func (s *Store) CreateChallenge(ctx context.Context, c *latch.Challenge, msg *latch.OutboxMessage, limit int, since time.Time) error {
	var id int64
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var one int
		if err := tx.QueryRow(ctx, "SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE", c.UserID).Scan(&one); err != nil {
			return translate(err)
		}
		var n int
		if err := tx.QueryRow(ctx, "SELECT count(*) FROM challenges WHERE user_id = $1 AND created_at > $2",
			c.UserID, ts(since)).Scan(&n); err != nil {
			return err
		}
		if n >= limit {
			return latch.ErrChallengeLimit
		}
		if _, err := tx.Exec(ctx, `INSERT INTO challenges (id_hash, user_id, client_id, auth_time, amr,
			ip, user_agent, device_id, code_mac, attempts, created_at, expires_at, used_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
			c.IDHash, c.UserID, c.ClientID, ts(c.AuthTime), strings.Join(c.AMR, " "),
			c.IP, c.UserAgent, c.DeviceID, c.CodeMAC, c.Attempts, ts(c.CreatedAt), ts(c.ExpiresAt), ts(c.UsedAt)); err != nil {
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
		return fmt.Errorf("postgres: create challenge for user %s: %w", c.UserID, err)
	}
	if msg != nil {
		msg.ID = id
	}
	return nil
}

const challengeColumns = `id_hash, user_id, client_id, auth_time, amr, ip, user_agent, device_id,
	code_mac, attempts, created_at, expires_at, used_at`

func scanChallenge(row pgx.Row) (*latch.Challenge, error) {
	var c latch.Challenge
	var amr string
	if err := row.Scan(&c.IDHash, &c.UserID, &c.ClientID, (*nullTime)(&c.AuthTime), &amr, &c.IP, &c.UserAgent, &c.DeviceID,
		&c.CodeMAC, &c.Attempts, (*nullTime)(&c.CreatedAt), (*nullTime)(&c.ExpiresAt), (*nullTime)(&c.UsedAt)); err != nil {
		return nil, translate(err)
	}
	c.AMR = strings.Fields(amr)
	return &c, nil
}

// Challenge returns the challenge whatever its state. See
// latch.ChallengeStore.
func (s *Store) Challenge(ctx context.Context, idHash []byte) (*latch.Challenge, error) {
	c, err := scanChallenge(s.pool.QueryRow(ctx, "SELECT "+challengeColumns+" FROM challenges WHERE id_hash = $1", idHash))
	if err != nil {
		return nil, fmt.Errorf("postgres: challenge: %w", err)
	}
	return c, nil
}

// ConsumeChallenge marks a live challenge with the code MAC used in one
// conditional UPDATE: a concurrent consumer waits on the row lock and then
// finds used_at set. See latch.ChallengeStore.
func (s *Store) ConsumeChallenge(ctx context.Context, idHash, codeMAC []byte, at time.Time, maxAttempts int) (*latch.Challenge, error) {
	c, err := scanChallenge(s.pool.QueryRow(ctx, `UPDATE challenges SET used_at = $1
		WHERE id_hash = $2 AND code_mac = $3 AND used_at IS NULL AND expires_at > $1 AND attempts < $4
		RETURNING `+challengeColumns, ts(at), idHash, codeMAC, maxAttempts))
	if err != nil {
		return nil, fmt.Errorf("postgres: consume challenge: %w", err)
	}
	return c, nil
}

// FailChallenge counts a wrong attempt in one conditional UPDATE. See
// latch.ChallengeStore.
func (s *Store) FailChallenge(ctx context.Context, idHash []byte, at time.Time, maxAttempts int) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `UPDATE challenges SET attempts = attempts + 1
		WHERE id_hash = $1 AND used_at IS NULL AND expires_at > $2 AND attempts < $3
		RETURNING attempts`, idHash, ts(at), maxAttempts).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("postgres: fail challenge: %w", translate(err))
	}
	return n, nil
}
