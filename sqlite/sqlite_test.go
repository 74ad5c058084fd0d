package sqlite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/storetest"
)

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) latch.Store {
		return openTemp(t)
	})
}

// openTemp opens a store on a new file in t's temporary directory.
func openTemp(t *testing.T) *Store {
	t.Helper()
	return openFile(t, filepath.Join(t.TempDir(), "latch.db"))
}

// openFile opens the store at path and closes it when t ends.
func openFile(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var t0 = time.Date(2030, time.January, 2, 3, 4, 5, 678901000, time.UTC)

func TestPragmas(t *testing.T) {
	s := openTemp(t)
	ctx := t.Context()
	// Pin several connections at once so that the pragmas are checked on
	// more than the first connection of the pool.
	var conns []interface{ Close() error }
	for i := range maxConns {
		c, err := s.db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		for _, p := range []struct {
			pragma string
			want   string
		}{
			{"journal_mode", "wal"},
			{"synchronous", "2"}, // FULL
			{"foreign_keys", "1"},
			{"busy_timeout", "5000"},
		} {
			var got string
			if err := c.QueryRowContext(ctx, "PRAGMA "+p.pragma).Scan(&got); err != nil {
				t.Fatalf("connection %d: PRAGMA %s: %v", i, p.pragma, err)
			}
			if got != p.want {
				t.Errorf("connection %d: PRAGMA %s = %s, want %s", i, p.pragma, got, p.want)
			}
		}
	}
	for _, c := range conns {
		c.Close()
	}
}

func TestTimePrecision(t *testing.T) {
	// Stored times keep microseconds, drop nanoseconds and come back in UTC.
	s := openTemp(t)
	ctx := t.Context()
	created := time.Date(2030, time.January, 2, 3, 4, 5, 678901234, time.FixedZone("CET", 3600))
	u := &latch.User{ID: "u", Email: "u@example.com", PasswordHash: "h", CreatedAt: created, UpdatedAt: created}
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	got, err := s.UserByID(ctx, "u")
	if err != nil {
		t.Fatal(err)
	}
	if want := created.Truncate(time.Microsecond); !got.CreatedAt.Equal(want) {
		t.Errorf("CreatedAt = %v, want %v", got.CreatedAt, want)
	}
	if got.CreatedAt.Location() != time.UTC {
		t.Errorf("CreatedAt is in %v, want UTC", got.CreatedAt.Location())
	}
}

func TestFileMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "latch.db")
	s := openFile(t, path)
	u := &latch.User{ID: "u", Email: "u@example.com", PasswordHash: "h", CreatedAt: t0, UpdatedAt: t0}
	if err := s.CreateUser(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if mode := fi.Mode().Perm(); mode != 0o600 {
			t.Errorf("%s has mode %v, want 0600", filepath.Base(name), mode)
		}
	}
}

func TestPersistence(t *testing.T) {
	path := filepath.Join(t.TempDir(), "latch.db")
	ctx := t.Context()

	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	u := &latch.User{ID: "alice", Email: "alice@example.com", PasswordHash: "h", CreatedAt: t0, UpdatedAt: t0}
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	sess := &latch.Session{ID: "s1", UserID: "alice", CreatedAt: t0, AuthTime: t0, LastUsedAt: t0,
		ExpiresAt: t0.Add(24 * time.Hour), Generation: 1}
	if err := s.CreateSession(ctx, sess, []byte("hash-1")); err != nil {
		t.Fatal(err)
	}
	if err := s.Rotate(ctx, latch.Rotation{SessionID: "s1", FromGeneration: 1, NewHash: []byte("hash-2"),
		Successor: []byte("sealed"), At: t0.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.RevokeSession(ctx, "s1", "logout", t0.Add(2*time.Minute), latch.Cover{Until: t0.Add(45 * time.Minute)}); err != nil || !ok {
		t.Fatalf("RevokeSession = %t, %v", ok, err)
	}
	jti := &latch.Revocation{Kind: latch.RevokeToken, Value: "jti-1", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	last, err := s.AddRevocation(ctx, jti)
	if err != nil {
		t.Fatal(err)
	}
	// Prune the newest entry too: its Seq must not be handed out again.
	short := &latch.Revocation{Kind: latch.RevokeToken, Value: "jti-short", CreatedAt: t0, ExpiresAt: t0.Add(10 * time.Minute)}
	if last, err = s.AddRevocation(ctx, short); err != nil {
		t.Fatal(err)
	}
	if err := s.Prune(ctx, t0.Add(30*time.Minute), time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openFile(t, path)
	got, err := s.Session(ctx, "s1")
	if err != nil {
		t.Fatalf("Session after reopen: %v", err)
	}
	if got.Generation != 2 || !got.RevokedAt.Equal(t0.Add(2*time.Minute)) || got.RevokeReason != "logout" ||
		string(got.Successor) != "sealed" {
		t.Errorf("Session after reopen = %+v", got)
	}
	if rt, err := s.RefreshToken(ctx, []byte("hash-1")); err != nil || rt.Generation != 1 {
		t.Errorf("RefreshToken(hash-1) after reopen = %+v, %v", rt, err)
	}
	if _, err := s.UserByEmail(ctx, "alice@example.com"); err != nil {
		t.Errorf("UserByEmail after reopen: %v", err)
	}
	feed, err := s.RevocationsAfter(ctx, 0, t0.Add(3*time.Minute), 100)
	if err != nil {
		t.Fatal(err)
	}
	var values []string
	for _, r := range feed {
		values = append(values, r.Value)
	}
	if strings.Join(values, ",") != "s1,jti-1" {
		t.Errorf("feed after reopen = %v, want [s1 jti-1]", values)
	}
	seq, err := s.AddRevocation(ctx, &latch.Revocation{Kind: latch.RevokeToken, Value: "jti-2", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if seq <= last {
		t.Errorf("Seq after reopen = %d, want > %d", seq, last)
	}
}

func TestMigrationsIdempotent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "latch.db")
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		s, err := Open(t.Context(), path)
		if err != nil {
			t.Fatalf("Open #%d: %v", i+1, err)
		}
		var n, latest int
		err = s.db.QueryRowContext(t.Context(), "SELECT count(*), max(version) FROM schema_migrations").Scan(&n, &latest)
		s.Close()
		if err != nil {
			t.Fatal(err)
		}
		if n != len(ms) || latest != ms[len(ms)-1].version {
			t.Errorf("Open #%d: schema_migrations has %d rows up to version %d, want %d up to %d",
				i+1, n, latest, len(ms), ms[len(ms)-1].version)
		}
	}
}

func TestMigrationsConcurrentOpen(t *testing.T) {
	// Processes starting together on a new file apply each migration once.
	path := filepath.Join(t.TempDir(), "latch.db")
	const n = 4
	var wg sync.WaitGroup
	errs := make([]error, n)
	stores := make([]*Store, n)
	for i := range n {
		wg.Go(func() {
			stores[i], errs[i] = Open(t.Context(), path)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Open #%d: %v", i, err)
			continue
		}
		stores[i].Close()
	}
	s := openFile(t, path)
	ms, _ := migrations()
	var count int
	if err := s.db.QueryRowContext(t.Context(), "SELECT count(*) FROM schema_migrations").Scan(&count); err != nil {
		t.Fatal(err)
	}
	if count != len(ms) {
		t.Errorf("schema_migrations has %d rows, want %d", count, len(ms))
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "latch.db")
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.ExecContext(t.Context(),
		"INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, '9999_future.sql', 0)"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(t.Context(), path)
	if err == nil {
		s.Close()
		t.Fatal("Open of a database with a newer schema succeeded")
	}
	if !strings.Contains(err.Error(), "newer") {
		t.Errorf("Open error = %v, want one about a newer schema", err)
	}
}

// TestTwoHandles plays the CLI and the server: two stores on one file write
// at the same time and see each other's writes.
func TestTwoHandles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "latch.db")
	server, cli := openFile(t, path), openFile(t, path)
	ctx := t.Context()

	const workers, ops = 4, 20
	var wg sync.WaitGroup
	errc := make(chan error, 2*workers*ops)
	for h, s := range []*Store{server, cli} {
		for w := range workers {
			wg.Go(func() {
				for i := range ops {
					id := fmt.Sprintf("h%d-w%d-%d", h, w, i)
					at := t0.Add(time.Duration(i) * time.Second)
					u := &latch.User{ID: id, Email: id + "@example.com", PasswordHash: "h", CreatedAt: at, UpdatedAt: at}
					if err := s.CreateUser(ctx, u); err != nil {
						errc <- err
						return
					}
					sess := &latch.Session{ID: id, UserID: id, CreatedAt: at, AuthTime: at, LastUsedAt: at,
						ExpiresAt: at.Add(time.Hour), Generation: 1}
					if err := s.CreateSession(ctx, sess, []byte(id+"/1")); err != nil {
						errc <- err
						return
					}
					if err := s.Rotate(ctx, latch.Rotation{SessionID: id, FromGeneration: 1,
						NewHash: []byte(id + "/2"), At: at}); err != nil {
						errc <- err
						return
					}
					if _, err := s.AddRevocation(ctx, &latch.Revocation{Kind: latch.RevokeToken, Value: id,
						CreatedAt: at, ExpiresAt: at.Add(time.Hour)}); err != nil {
						errc <- err
						return
					}
					if err := s.AddEvent(ctx, &latch.Event{Type: latch.EventUserCreated, At: at, UserID: id}); err != nil {
						errc <- err
						return
					}
				}
			})
		}
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}

	// Each handle sees the other's writes.
	for h, s := range []*Store{server, cli} {
		other := fmt.Sprintf("h%d-w0-0", 1-h)
		if _, err := s.UserByID(ctx, other); err != nil {
			t.Errorf("handle %d: UserByID(%s): %v", h, other, err)
		}
		feed, err := s.RevocationsAfter(ctx, 0, t0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(feed) != 2*workers*ops {
			t.Errorf("handle %d sees %d revocations, want %d", h, len(feed), 2*workers*ops)
		}
		for i := 1; i < len(feed); i++ {
			if feed[i].Seq <= feed[i-1].Seq {
				t.Fatalf("feed out of order at %d: %d after %d", i, feed[i].Seq, feed[i-1].Seq)
			}
		}
	}
}

func TestErrorsWrapped(t *testing.T) {
	s := openTemp(t)
	ctx := t.Context()
	_, err := s.Session(ctx, "missing")
	if !errors.Is(err, latch.ErrNotFound) || !strings.HasPrefix(err.Error(), "sqlite: session missing") {
		t.Errorf("Session(missing) error = %v", err)
	}
	err = s.SetPasswordHash(ctx, "missing", "h", t0)
	if !errors.Is(err, latch.ErrNotFound) {
		t.Errorf("SetPasswordHash(missing) error = %v, want ErrNotFound", err)
	}
	_, err = s.RevokeSession(ctx, "missing", "x", t0, latch.Cover{Until: t0})
	if !errors.Is(err, latch.ErrNotFound) {
		t.Errorf("RevokeSession(missing) error = %v, want ErrNotFound", err)
	}
	err = s.Rotate(ctx, latch.Rotation{SessionID: "missing", FromGeneration: 1, NewHash: []byte("h"), At: t0})
	if !errors.Is(err, latch.ErrConflict) {
		t.Errorf("Rotate(missing) error = %v, want ErrConflict", err)
	}
}

func TestOpenCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if s, err := Open(ctx, filepath.Join(t.TempDir(), "latch.db")); err == nil {
		s.Close()
		t.Error("Open with a canceled context succeeded")
	}
}

// TestMigrationGrantsFeedToExistingClients: upgrading to migration 0005
// keeps every existing confidential client able to read the revocation
// feed (as before), and gives public clients nothing.
func TestMigrationGrantsFeedToExistingClients(t *testing.T) {
	path := filepath.Join(t.TempDir(), "latch.db")
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	// Back to the schema before 0005, with clients registered then.
	for _, q := range append(slices.Clone(undo0009),
		"ALTER TABLE clients DROP COLUMN permissions",
		// 0006 and 0008 go too, so that they apply again after 0005.
		"DROP INDEX signing_keys_family",
		"ALTER TABLE signing_keys DROP COLUMN family",
		"ALTER TABLE signing_keys DROP COLUMN revoked_at",
		"DROP TABLE key_ring_version",
		"DELETE FROM schema_migrations WHERE version >= 5",
		"INSERT INTO clients (id, secret_hash, scopes, audience, delivery, created_at) VALUES ('svc', 'sha256:x', '', '', 'bearer', 0), ('app', '', '', '', 'cookie', 0)",
	) {
		if _, err := s.db.ExecContext(t.Context(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	s.Close()
	s, err = Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	svc, err := s.Client(t.Context(), "svc")
	if err != nil || !svc.Can(latch.PermissionReadRevocations) {
		t.Fatalf("existing confidential client after the upgrade: %+v, %v; want read-revocations", svc, err)
	}
	app, err := s.Client(t.Context(), "app")
	if err != nil || app.Permissions != nil {
		t.Fatalf("existing public client after the upgrade: %+v, %v; want no permission", app, err)
	}
}

func TestGatewaySessionStore(t *testing.T) {
	storetest.RunGateway(t, func(t *testing.T) latch.GatewaySessionStore {
		return openTemp(t)
	})
}
