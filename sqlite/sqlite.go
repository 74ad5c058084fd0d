// Package sqlite implements latch.Store on an embedded SQLite database, using
// the pure-Go driver modernc.org/sqlite.
//
// The database runs in WAL mode with synchronous=FULL, so that a committed
// transaction (a revocation above all) survives a crash of the process, of
// the operating system or a power loss. Every connection of the pool waits
// up to five seconds for a lock (busy_timeout) and starts its write
// transactions with BEGIN IMMEDIATE, which takes the write lock up front:
// writers queue on SQLite's file lock instead of failing on a lock upgrade.
// Several processes may therefore open the same file at once, as the command
// line does while the server runs.
//
// Within a process, write transactions go through one writer goroutine on
// one connection, which commits the transactions queued at the same time
// together (group commit, see writer): one BEGIN IMMEDIATE … COMMIT and one
// WAL sync for many refreshes, each still in a savepoint of its own and
// acknowledged only once its commit has succeeded. WAL checkpoints run off
// that path (see checkpointer), and every connection keeps the statements
// it executes prepared (see connector).
//
// Times are stored as integer microseconds since the Unix epoch, the
// precision of PostgreSQL, and are returned in UTC; precision below a
// microsecond is truncated. The zero time.Time is stored as 0 and stands for
// an unset time (a session that was never rotated or revoked, a key without
// NotAfter).
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net/url"
	"os"
	"time"

	"github.com/latchauth/latch"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// maxConns bounds the connection pool. SQLite admits one writer at a time;
// a few connections are enough for concurrent readers in WAL mode, and
// writers beyond them wait in the pool's queue rather than in SQLite's
// busy handler, which polls.
const maxConns = 4

// Store is a latch.Store backed by an SQLite database file. It is safe for
// concurrent use, also by other processes that open the same file.
type Store struct {
	db *sql.DB // reads: pooled, concurrent under WAL
	// w is the only connection that writes. SQLite admits one writer at a
	// time; writers of this process queue here, in order, instead of
	// sleeping in SQLite's busy handler, whose back-off (up to 100 ms a
	// retry) let the lock sit idle and gave refreshes tails of a second
	// under load. Other processes (the command line) still meet the busy
	// handler, rarely.
	w *sql.DB
	// wr runs the transactions of inTx on w, committing queued ones
	// together.
	wr *writer
	cp *checkpointer // checkpoints the WAL for wr, on db
}

var _ latch.Store = (*Store)(nil)

// Open opens the SQLite database at path, creating the file if it does not
// exist, and applies the schema migrations it has not seen yet.
//
// A new file is created with mode 0600: it holds password hashes and sealed
// private keys. SQLite gives its -wal and -shm files the same mode.
func Open(ctx context.Context, path string) (*Store, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case err == nil:
		f.Close() // an empty file is an empty database
	case !errors.Is(err, fs.ErrExist):
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	c, err := sqlite.NewConnector(dsn(path))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	db := sql.OpenDB(connector{Connector: c})
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	if err := retryBusy(ctx, func() error { return db.PingContext(ctx) }); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	if err := retryBusy(ctx, func() error { return migrate(ctx, db) }); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	// The write connection leaves checkpoints to the checkpointer.
	wc, err := sqlite.NewConnector(dsn(path) + "&_pragma=wal_autocheckpoint(0)")
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	w := sql.OpenDB(connector{Connector: wc, detach: true})
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxIdleTime(0)
	cp := newCheckpointer(db)
	return &Store{db: db, w: w, wr: newWriter(w, cp.request), cp: cp}, nil
}

// dsn returns the data source name for the database file at path. The
// pragmas are DSN parameters so that every connection of the pool gets them.
func dsn(path string) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(5000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(ON)")
	q.Set("_txlock", "immediate")
	// A file: URI, with the path escaped, so that a path containing '?',
	// '#' or '%' names the file it says.
	u := url.URL{Path: path}
	return "file:" + u.EscapedPath() + "?" + q.Encode()
}

// Ping reports whether the database answers a trivial query.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.db.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("sqlite: ping: %w", err)
	}
	return nil
}

// Close closes the database. Queries and write transactions in progress
// finish first; writes attempted afterwards fail.
func (s *Store) Close() error {
	s.wr.close()
	s.cp.close()
	werr := s.w.Close()
	if err := errors.Join(s.db.Close(), werr); err != nil {
		return fmt.Errorf("sqlite: close: %w", err)
	}
	return nil
}

// Prune deletes, in one transaction, the revocation entries expired at now,
// the keys whose NotAfter is not after now, the sessions whose ExpiresAt is
// not after now together with their refresh token hashes, the events
// older than now minus keepEvents, the outbox messages delivered or failed
// before then, the authorization codes whose ExpiresAt is not after now,
// the SSO sessions whose ExpiresAt is not after now or that were ended
// at or before now, together with their recorded clients, and the account
// tokens expired at now.
func (s *Store) Prune(ctx context.Context, now time.Time, keepEvents time.Duration) error {
	n, kept := micros(now), micros(now.Add(-keepEvents))
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		for _, q := range []struct {
			sql string
			arg int64
		}{
			{"DELETE FROM revocations WHERE expires_at <= ?", n},
			{"DELETE FROM signing_keys WHERE not_after <> 0 AND not_after <= ?", n},
			// refresh_tokens go with their session (ON DELETE CASCADE).
			{"DELETE FROM sessions WHERE expires_at <= ?", n},
			{"DELETE FROM events WHERE at < ?", kept},
			{"DELETE FROM outbox WHERE (delivered_at <> 0 AND delivered_at < ?1) OR (failed_at <> 0 AND failed_at < ?1)", kept},
			{"DELETE FROM authorization_codes WHERE expires_at <= ?", n},
			// sso_clients go with their SSO session (ON DELETE CASCADE).
			{"DELETE FROM sso_sessions WHERE expires_at <= ?1 OR (revoked_at <> 0 AND revoked_at <= ?1)", n},
			{"DELETE FROM account_tokens WHERE expires_at <= ?", n},
			{"DELETE FROM challenges WHERE expires_at <= ?", n},
			{"DELETE FROM setup_tokens WHERE expires_at <= ?", n},
		} {
			if _, err := tx.ExecContext(ctx, q.sql, q.arg); err != nil {
				return err
			}
		}
		// Sign-in alerts stay as history as long as events do; a device
		// unseen for longer than its cookie lives is forgotten.
		if _, err := tx.ExecContext(ctx, "DELETE FROM sign_in_alerts WHERE expires_at < ?", kept); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, "DELETE FROM devices WHERE last_seen_at < ?", micros(now.Add(-latch.DeviceRetention)))
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: prune: %w", err)
	}
	return nil
}

// inTx runs fn in a write transaction, which the DSN makes BEGIN IMMEDIATE,
// and returns once the transaction has committed fn's changes, or has
// failed and applied none of them. The writer may run fn in one
// transaction with other callers' functions, each in a savepoint of its
// own: fn's error, which rolls back fn's changes, is returned to this
// caller alone. See writer.do for what fn may do and how ctx is honoured.
func (s *Store) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	return s.wr.do(ctx, fn)
}

// micros encodes t for storage: microseconds since the Unix epoch, or 0 for
// the zero time.
func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

// timeScanner scans a column written by micros into a time.Time in UTC.
type timeScanner struct{ t *time.Time }

// scanTime returns a sql.Scanner that stores the scanned time in *t.
func scanTime(t *time.Time) timeScanner { return timeScanner{t} }

// Scan implements sql.Scanner.
func (s timeScanner) Scan(v any) error {
	n, ok := v.(int64)
	if !ok {
		return fmt.Errorf("time column holds %T, want int64", v)
	}
	if n == 0 {
		*s.t = time.Time{}
	} else {
		*s.t = time.UnixMicro(n).UTC()
	}
	return nil
}

// retryBusy runs fn again, for up to openBusyWait, while it fails with
// SQLITE_BUSY. Processes opening a new database file at the same moment
// race to switch it to WAL mode, and SQLite answers the loser of that race
// with SQLITE_BUSY at once, without calling its busy handler; a moment
// later the file is in WAL mode and the same call succeeds.
func retryBusy(ctx context.Context, fn func() error) error {
	deadline := time.Now().Add(openBusyWait)
	for wait := 5 * time.Millisecond; ; wait = min(2*wait, 200*time.Millisecond) {
		err := fn()
		if !busy(err) || time.Now().Add(wait).After(deadline) {
			return err
		}
		t := time.NewTimer(wait + time.Duration(rand.Int64N(int64(wait))))
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// openBusyWait bounds retryBusy: the busy_timeout of every connection.
const openBusyWait = 5 * time.Second

// busy reports whether err is SQLITE_BUSY or one of its extended codes.
func busy(err error) bool {
	var e *sqlite.Error
	return errors.As(err, &e) && e.Code()&0xff == sqlite3.SQLITE_BUSY
}

// conflict reports whether err is a violated uniqueness constraint.
func conflict(err error) bool {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.Code() {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return true
	}
	return false
}

// translate maps a uniqueness violation to latch.ErrConflict and a missing
// row to latch.ErrNotFound, keeping the original error in the chain.
func translate(err error) error {
	switch {
	case err == nil:
		return nil
	case conflict(err):
		return fmt.Errorf("%w: %w", latch.ErrConflict, err)
	case errors.Is(err, sql.ErrNoRows):
		return latch.ErrNotFound
	}
	return err
}

// mustAffect returns latch.ErrNotFound if res affected no row.
func mustAffect(res sql.Result) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return latch.ErrNotFound
	}
	return nil
}

// nilIfEmpty returns b, or nil if b is empty, so that an empty byte slice
// is stored as NULL.
func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}
