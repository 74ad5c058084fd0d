// Package postgres implements latch.Store on PostgreSQL, using the pgx v5
// connection pool. Any number of Latch instances may share one database:
// every conditional write is decided by the database, never by a read
// followed by a write in the program.
//
// # Connection
//
// Open takes a PostgreSQL connection URL or keyword/value string, as
// understood by pgxpool.ParseConfig: pool_max_conns and the other pool_
// parameters size the pool (by default the greater of 4 and the number of
// CPUs), and any parameter pgx does not know is sent to the server as a
// run-time parameter: search_path=latch puts the tables in schema latch.
// The URL may hold a password, so it never appears in an error message.
//
// # Schema
//
// The schema is versioned by the migrations embedded in the package
// (migrations/NNNN_description.sql) and recorded in the table
// schema_migrations. Open applies the pending ones; OpenWith with
// Options.Migrate false only checks that the schema is current, and Migrate
// applies them without opening a store, for a "latch migrate" command run
// before the servers start. All pending migrations are applied in one
// transaction that first takes a transaction-level advisory lock keyed on
// the schema, so that instances starting at once apply each migration
// exactly once. A database whose schema is newer than this program is
// refused.
//
// # Times
//
// Times are stored as timestamptz, at the microsecond precision of
// PostgreSQL (finer precision is truncated), and returned in UTC. The zero
// time.Time is stored as NULL and stands for an unset time (a session never
// rotated or revoked, a key without NotAfter); columns the domain always
// sets are NOT NULL, so storing the zero time there fails.
//
// # Concurrency
//
//   - Rotate is a single statement: a conditional UPDATE of the session
//     (WHERE generation = FromGeneration AND revoked_at IS NULL) that feeds
//     the INSERT of the new token hash. PostgreSQL re-checks the condition
//     of a row that a concurrent transaction changed, so of many rotations
//     from one generation, from any number of instances, exactly one
//     applies; the others find no row and return latch.ErrConflict.
//   - RotateKeys takes a transaction-level advisory lock on the ring before
//     it looks at the newest key, so that of many concurrent rotations
//     exactly one wins, also on an empty ring, where there is no row that
//     SELECT ... FOR UPDATE could lock.
//   - The revocation feed orders entries by seq, an identity column.
//     Sequence numbers are handed out at insert but become visible at
//     commit, so without care a transaction holding seq N-1 could commit
//     after another holding N, and a reader that had already moved its
//     cursor to N would never see N-1. Every transaction that appends to the
//     feed therefore takes a transaction-level advisory lock on the feed
//     just before its first insert and holds it until it commits: appends
//     take their numbers and commit one transaction after the other, in
//     seq order, and since PostgreSQL makes a commit visible before it
//     releases the transaction's locks, every entry below a visible seq is
//     visible too (or was rolled back). The price is that appends to the
//     feed commit one at a time; revocations are rare next to refreshes.
//     The lock is taken last, after the session rows are updated, and
//     nothing waits on a row while holding it, so it cannot deadlock with
//     row locks.
//
// Advisory locks are keyed on the object they protect (the OID of the
// schema, of the revocations or the signing_keys table), so that several
// Latch deployments in different schemas of one database do not contend.
//
// Transactions run at READ COMMITTED. The multi-statement transactions and
// Rotate are retried a few times if they fail with a deadlock (Prune and a
// revocation may lock the same sessions in different orders) or a
// serialization failure (possible in Rotate if the database's default
// isolation level was raised).

package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/latchauth/latch"
)

// Store is a latch.Store backed by a PostgreSQL database. It is safe for
// concurrent use, also by other processes using the same database.
type Store struct {
	pool *pgxpool.Pool
}

var _ latch.Store = (*Store)(nil)

// Options configure OpenWith.
type Options struct {
	// Migrate applies the pending schema migrations at open, as Open does.
	// When false, OpenWith changes nothing and fails unless the schema is
	// exactly at the version of this program: run Migrate first.
	Migrate bool
}

// Open connects to the PostgreSQL database at url and applies the schema
// migrations it has not seen yet. It is OpenWith with Options{Migrate:
// true}.
func Open(ctx context.Context, url string) (*Store, error) {
	return OpenWith(ctx, url, Options{Migrate: true})
}

// OpenWith connects to the PostgreSQL database at url, checks that it
// answers, and then migrates its schema or checks that the schema is
// current, as o says.
func OpenWith(ctx context.Context, url string, o Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", urlError{err})
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	if o.Migrate {
		_, err = migrate(ctx, pool)
	} else {
		err = checkVersion(ctx, pool)
	}
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	return &Store{pool: pool}, nil
}

// urlError reports a connection string that could not be parsed without
// repeating it: it may hold a password. The parser's error stays in the
// chain for errors.As.
type urlError struct{ err error }

func (e urlError) Error() string {
	return "invalid connection URL (not shown: it may hold a password)"
}

func (e urlError) Unwrap() error { return e.err }

// Ping reports whether the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: ping: %w", err)
	}
	return nil
}

// Close closes the pool, waiting for the connections in use to be
// released. It always returns nil and may be called more than once.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// Prune deletes, in one transaction, the revocation entries expired at now,
// the keys whose NotAfter is set and not after now, the sessions whose
// ExpiresAt is not after now together with their refresh token hashes, the
// events older than now minus keepEvents, the outbox messages delivered or
// failed before then, the authorization codes whose ExpiresAt is not after
// now, the SSO sessions whose ExpiresAt is not after now or that were
// ended at or before now, together with their recorded clients, and the
// account tokens expired at now.
func (s *Store) Prune(ctx context.Context, now time.Time, keepEvents time.Duration) error {
	n, kept := ts(now), ts(now.Add(-keepEvents))
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		for _, q := range []struct {
			sql string
			arg pgtype.Timestamptz
		}{
			{"DELETE FROM revocations WHERE expires_at <= $1", n},
			{"DELETE FROM signing_keys WHERE not_after <= $1", n},
			// refresh_tokens go with their session (ON DELETE CASCADE).
			{"DELETE FROM sessions WHERE expires_at <= $1", n},
			{"DELETE FROM events WHERE at < $1", kept},
			{"DELETE FROM outbox WHERE delivered_at < $1 OR failed_at < $1", kept},
			{"DELETE FROM authorization_codes WHERE expires_at <= $1", n},
			// sso_clients go with their SSO session (ON DELETE CASCADE).
			{"DELETE FROM sso_sessions WHERE expires_at <= $1 OR revoked_at <= $1", n},
			{"DELETE FROM account_tokens WHERE expires_at <= $1", n},
			{"DELETE FROM challenges WHERE expires_at <= $1", n},
			{"DELETE FROM setup_tokens WHERE expires_at <= $1", n},
		} {
			if _, err := tx.Exec(ctx, q.sql, q.arg); err != nil {
				return err
			}
		}
		// Sign-in alerts stay as history as long as events do; a device
		// unseen for longer than its cookie lives is forgotten.
		if _, err := tx.Exec(ctx, "DELETE FROM sign_in_alerts WHERE expires_at < $1", kept); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "DELETE FROM devices WHERE last_seen_at < $1", ts(now.Add(-latch.DeviceRetention)))
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: prune: %w", err)
	}
	return nil
}

// Advisory lock classes: the first key of pg_advisory_xact_lock(int, int);
// the second is the OID of the protected object. "LTC" and a number.
const (
	lockMigrate = 0x4c544301
	lockFeed    = 0x4c544302
	lockRing    = 0x4c544303
)

// lockFeedSQL takes the feed lock; see the package documentation.
const lockFeedSQL = "SELECT pg_advisory_xact_lock($1, 'revocations'::regclass::oid::int4)"

// takeFeedLock takes the feed lock in tx. Call it right before the first
// insert into revocations, after any row locks the transaction needs.
func takeFeedLock(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, lockFeedSQL, lockFeed)
	return err
}

// maxAttempts bounds the attempts of a transaction that fails with a
// serialization failure or a deadlock.
const maxAttempts = 5

// retry runs fn until it succeeds, fails with an error that a new attempt
// cannot cure, or has run maxAttempts times.
func retry(ctx context.Context, fn func() error) error {
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || attempt == maxAttempts || !retryable(err) || ctx.Err() != nil {
			return err
		}
		time.Sleep(time.Duration(attempt) * time.Millisecond)
	}
}

// retryable reports whether err is a serialization failure or a deadlock.
func retryable(err error) bool {
	var e *pgconn.PgError
	if !errors.As(err, &e) {
		return false
	}
	return e.Code == "40001" || e.Code == "40P01"
}

// inTx runs fn in a READ COMMITTED transaction and commits it if fn
// returns nil, retrying as retry does. fn must not keep state from one
// attempt to the next.
func (s *Store) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	return retry(ctx, func() error {
		return pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, fn)
	})
}

// ts encodes t for storage: NULL for the zero time. pgx truncates to
// microseconds.
func ts(t time.Time) pgtype.Timestamptz {
	if t.IsZero() {
		return pgtype.Timestamptz{}
	}
	return pgtype.Timestamptz{Time: t, Valid: true}
}

// nullTime scans a timestamptz into a time.Time: NULL as the zero time,
// any other value in UTC. Use it as (*nullTime)(&t).
type nullTime time.Time

// ScanTimestamptz implements pgtype.TimestamptzScanner.
func (t *nullTime) ScanTimestamptz(v pgtype.Timestamptz) error {
	switch {
	case !v.Valid:
		*t = nullTime{}
	case v.InfinityModifier != pgtype.Finite:
		return fmt.Errorf("time column holds %s", v.InfinityModifier)
	default:
		*t = nullTime(v.Time.UTC())
	}
	return nil
}

// translate maps a uniqueness violation to latch.ErrConflict and a missing
// row to latch.ErrNotFound, keeping the original error in the chain.
func translate(err error) error {
	var e *pgconn.PgError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &e) && e.Code == "23505": // unique_violation
		return fmt.Errorf("%w: %w", latch.ErrConflict, err)
	case errors.Is(err, pgx.ErrNoRows):
		return latch.ErrNotFound
	}
	return err
}

// nilIfEmpty returns b, or nil if b is empty, so that an empty byte slice
// is stored as NULL.
func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}
