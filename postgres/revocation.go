package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/latchauth/latch"
)

// AddRevocation appends r to the feed, sets r.Seq and returns it. The
// sequence is strictly increasing and never reuses a number, not even one
// whose entry was pruned; and entries become visible in the order of their
// Seq (see the package documentation), so a reader following the feed
// with a cursor misses none.
func (s *Store) AddRevocation(ctx context.Context, r *latch.Revocation) (int64, error) {
	var seq int64
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if err := takeFeedLock(ctx, tx); err != nil {
			return err
		}
		var err error
		seq, err = addRevocation(ctx, tx, r)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: add revocation %s %s: %w", r.Kind, r.Value, err)
	}
	r.Seq = seq
	return seq, nil
}

// testHookFeedInsert, if set, runs after each insert into the feed, before
// the transaction commits: tests widen the window in which an uncommitted
// seq exists.
var testHookFeedInsert func()

// addRevocation appends r to the feed inside tx, which must hold the feed
// lock, and returns its Seq.
func addRevocation(ctx context.Context, tx pgx.Tx, r *latch.Revocation) (int64, error) {
	var seq int64
	err := tx.QueryRow(ctx, `INSERT INTO revocations (kind, value, cutoff, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5) RETURNING seq`,
		string(r.Kind), r.Value, ts(r.Cutoff), ts(r.CreatedAt), ts(r.ExpiresAt)).Scan(&seq)
	if err == nil && testHookFeedInsert != nil {
		testHookFeedInsert()
	}
	return seq, err
}

// RevocationsAfter returns up to limit entries with Seq greater than after
// whose ExpiresAt is after now, in ascending Seq. A limit of zero or less
// returns no entries.
func (s *Store) RevocationsAfter(ctx context.Context, after int64, now time.Time, limit int) ([]latch.Revocation, error) {
	if limit <= 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT seq, kind, value, cutoff, created_at, expires_at
		FROM revocations WHERE seq > $1 AND expires_at > $2 ORDER BY seq LIMIT $3`,
		after, ts(now), limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: revocations after %d: %w", after, err)
	}
	defer rows.Close()
	var list []latch.Revocation
	for rows.Next() {
		var r latch.Revocation
		var kind string
		if err := rows.Scan(&r.Seq, &kind, &r.Value,
			(*nullTime)(&r.Cutoff), (*nullTime)(&r.CreatedAt), (*nullTime)(&r.ExpiresAt)); err != nil {
			return nil, fmt.Errorf("postgres: revocations after %d: %w", after, err)
		}
		r.Kind = latch.RevocationKind(kind)
		list = append(list, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: revocations after %d: %w", after, err)
	}
	return list, nil
}

// RevocationHead returns the highest Seq ever assigned: the last value of
// the identity sequence, which pruning does not lower (and which moves
// before the commit, so it is never below a seq a reader has seen).
func (s *Store) RevocationHead(ctx context.Context) (int64, error) {
	var head int64
	err := s.pool.QueryRow(ctx,
		`SELECT COALESCE(pg_sequence_last_value(pg_get_serial_sequence('revocations', 'seq')::regclass), 0)`).Scan(&head)
	if err != nil {
		return 0, fmt.Errorf("postgres: revocation head: %w", err)
	}
	return head, nil
}
