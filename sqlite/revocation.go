package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/latchauth/latch"
)

// AddRevocation appends r to the feed, sets r.Seq and returns it. The
// sequence is strictly increasing and never reuses a number, not even one
// whose entry was pruned.
func (s *Store) AddRevocation(ctx context.Context, r *latch.Revocation) (int64, error) {
	var seq int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		seq, err = addRevocation(ctx, tx, r)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: add revocation %s %s: %w", r.Kind, r.Value, err)
	}
	r.Seq = seq
	return seq, nil
}

// addRevocation appends r to the feed inside tx and returns its Seq.
func addRevocation(ctx context.Context, tx *sql.Tx, r *latch.Revocation) (int64, error) {
	var seq int64
	err := tx.QueryRowContext(ctx, `INSERT INTO revocations (kind, value, cutoff, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?) RETURNING seq`,
		string(r.Kind), r.Value, micros(r.Cutoff), micros(r.CreatedAt), micros(r.ExpiresAt)).Scan(&seq)
	return seq, err
}

// RevocationsAfter returns up to limit entries with Seq greater than after
// whose ExpiresAt is after now, in ascending Seq. A limit of zero or less
// returns no entries.
func (s *Store) RevocationsAfter(ctx context.Context, after int64, now time.Time, limit int) ([]latch.Revocation, error) {
	if limit <= 0 {
		return nil, nil
	}
	rows, err := s.db.QueryContext(ctx, `SELECT seq, kind, value, cutoff, created_at, expires_at
		FROM revocations WHERE seq > ? AND expires_at > ? ORDER BY seq LIMIT ?`,
		after, micros(now), limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: revocations after %d: %w", after, err)
	}
	defer rows.Close()
	var list []latch.Revocation
	for rows.Next() {
		var r latch.Revocation
		var kind string
		if err := rows.Scan(&r.Seq, &kind, &r.Value, scanTime(&r.Cutoff), scanTime(&r.CreatedAt), scanTime(&r.ExpiresAt)); err != nil {
			return nil, fmt.Errorf("sqlite: revocations after %d: %w", after, err)
		}
		r.Kind = latch.RevocationKind(kind)
		list = append(list, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: revocations after %d: %w", after, err)
	}
	return list, nil
}

// RevocationHead returns the highest Seq ever assigned: the AUTOINCREMENT
// counter, which pruning does not lower.
func (s *Store) RevocationHead(ctx context.Context) (int64, error) {
	var head int64
	err := s.db.QueryRowContext(ctx,
		`SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'revocations'), 0)`).Scan(&head)
	if err != nil {
		return 0, fmt.Errorf("sqlite: revocation head: %w", err)
	}
	return head, nil
}
