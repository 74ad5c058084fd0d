package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/latchauth/latch"
)

// CreateChallenge stores c and enqueues msg in the same transaction of the
// single writer, after counting the user's recent challenges: concurrent
// creations are serialised, so the limit holds. See latch.ChallengeStore.
func (s *Store) CreateChallenge(ctx context.Context, c *latch.Challenge, msg *latch.OutboxMessage, limit int, since time.Time) error {
	var id int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var one int
		if err := tx.QueryRowContext(ctx, "SELECT 1 FROM users WHERE id = ?", c.UserID).Scan(&one); err != nil {
			return translate(err)
		}
		var n int
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM challenges WHERE user_id = ? AND created_at > ?",
			c.UserID, micros(since)).Scan(&n); err != nil {
			return err
		}
		if n >= limit {
			return latch.ErrChallengeLimit
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO challenges (id_hash, user_id, client_id, auth_time, amr,
			ip, user_agent, device_id, code_mac, attempts, created_at, expires_at, used_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			c.IDHash, c.UserID, c.ClientID, micros(c.AuthTime), strings.Join(c.AMR, " "),
			c.IP, c.UserAgent, c.DeviceID, c.CodeMAC, c.Attempts, micros(c.CreatedAt), micros(c.ExpiresAt), micros(c.UsedAt)); err != nil {
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
		return fmt.Errorf("sqlite: create challenge for user %s: %w", c.UserID, err)
	}
	if msg != nil {
		msg.ID = id
	}
	return nil
}

const challengeColumns = `id_hash, user_id, client_id, auth_time, amr, ip, user_agent, device_id,
	code_mac, attempts, created_at, expires_at, used_at`

func scanChallenge(row interface{ Scan(...any) error }) (*latch.Challenge, error) {
	var c latch.Challenge
	var amr string
	if err := row.Scan(&c.IDHash, &c.UserID, &c.ClientID, scanTime(&c.AuthTime), &amr, &c.IP, &c.UserAgent, &c.DeviceID,
		&c.CodeMAC, &c.Attempts, scanTime(&c.CreatedAt), scanTime(&c.ExpiresAt), scanTime(&c.UsedAt)); err != nil {
		return nil, translate(err)
	}
	c.AMR = strings.Fields(amr)
	return &c, nil
}

// Challenge returns the challenge whatever its state. See
// latch.ChallengeStore.
func (s *Store) Challenge(ctx context.Context, idHash []byte) (*latch.Challenge, error) {
	c, err := scanChallenge(s.db.QueryRowContext(ctx, "SELECT "+challengeColumns+" FROM challenges WHERE id_hash = ?", idHash))
	if err != nil {
		return nil, fmt.Errorf("sqlite: challenge: %w", err)
	}
	return c, nil
}

// ConsumeChallenge marks a live challenge with the code MAC used in one
// conditional UPDATE. See latch.ChallengeStore.
func (s *Store) ConsumeChallenge(ctx context.Context, idHash, codeMAC []byte, at time.Time, maxAttempts int) (*latch.Challenge, error) {
	var c *latch.Challenge
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		c, err = scanChallenge(tx.QueryRowContext(ctx, `UPDATE challenges SET used_at = ?1
			WHERE id_hash = ?2 AND code_mac = ?3 AND used_at = 0 AND expires_at > ?1 AND attempts < ?4
			RETURNING `+challengeColumns, micros(at), idHash, codeMAC, maxAttempts))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: consume challenge: %w", err)
	}
	return c, nil
}

// FailChallenge counts a wrong attempt in one conditional UPDATE. See
// latch.ChallengeStore.
func (s *Store) FailChallenge(ctx context.Context, idHash []byte, at time.Time, maxAttempts int) (int, error) {
	var n int
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		return translate(tx.QueryRowContext(ctx, `UPDATE challenges SET attempts = attempts + 1
			WHERE id_hash = ?1 AND used_at = 0 AND expires_at > ?2 AND attempts < ?3
			RETURNING attempts`, idHash, micros(at), maxAttempts).Scan(&n))
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: fail challenge: %w", err)
	}
	return n, nil
}
