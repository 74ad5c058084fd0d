package postgres

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	mrand "math/rand/v2"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/latchauth/latch"
	"github.com/latchauth/latch/internal/testenv"
	"github.com/latchauth/latch/storetest"
)

// defaultURL is the test database when LATCH_TEST_POSTGRES_URL is unset.
const defaultURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// baseURL returns the URL of the test database.
func baseURL() string {
	if u := os.Getenv("LATCH_TEST_POSTGRES_URL"); u != "" {
		return u
	}
	return defaultURL
}

// admin connects to the test database outside any test schema, or ends the
// test as testenv says if the database is unreachable.
func admin(t *testing.T, ctx context.Context) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, baseURL())
	if err != nil {
		testenv.Unavailable(t, testenv.Postgres, err)
	}
	return conn
}

// newSchema creates a schema of its own for t, dropped when t ends, and
// returns the URL of the test database with the schema as search_path.
func newSchema(t *testing.T) string {
	t.Helper()
	conn := admin(t, t.Context())
	defer conn.Close(context.Background())
	schema := "latch_test_" + strings.ToLower(rand.Text()[:16])
	if _, err := conn.Exec(t.Context(), "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn := admin(t, ctx)
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return withSearchPath(t, baseURL(), schema)
}

// withSearchPath returns the connection string base with search_path set to
// schema, in the URL or the keyword/value form.
func withSearchPath(t *testing.T, base, schema string) string {
	t.Helper()
	if !strings.HasPrefix(base, "postgres://") && !strings.HasPrefix(base, "postgresql://") {
		return base + " search_path=" + schema
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("LATCH_TEST_POSTGRES_URL does not parse as a URL")
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// open opens a store on url and closes it when t ends.
func open(t *testing.T, url string) *Store {
	t.Helper()
	s, err := Open(t.Context(), url)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) latch.Store {
		return open(t, newSchema(t))
	})
}

var t0 = time.Date(2030, time.January, 2, 3, 4, 5, 678901000, time.UTC)

func migrationNames(t *testing.T) []string {
	t.Helper()
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range ms {
		names = append(names, m.name)
	}
	return names
}

// recorded returns the names recorded in schema_migrations, by version.
func recorded(t *testing.T, s *Store) []string {
	t.Helper()
	rows, err := s.pool.Query(t.Context(), "SELECT name FROM schema_migrations ORDER BY version")
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func TestMigrate(t *testing.T) {
	u := newSchema(t)
	ctx := t.Context()
	want := migrationNames(t)

	// Without migrations, a store that may not migrate refuses to open.
	if s, err := OpenWith(ctx, u, Options{}); err == nil {
		s.Close()
		t.Fatal("OpenWith(Migrate false) on an empty schema succeeded")
	} else if !strings.Contains(err.Error(), "run the migrations") {
		t.Errorf("OpenWith(Migrate false) on an empty schema: %v, want advice to run the migrations", err)
	}

	applied, err := Migrate(ctx, u)
	if err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	if !slices.Equal(applied, want) {
		t.Errorf("Migrate applied %v, want %v", applied, want)
	}
	for i := range 2 {
		applied, err := Migrate(ctx, u)
		if err != nil || len(applied) != 0 {
			t.Errorf("Migrate #%d again = %v, %v; want nothing applied", i+2, applied, err)
		}
	}
	s, err := OpenWith(ctx, u, Options{})
	if err != nil {
		t.Fatalf("OpenWith(Migrate false) after Migrate: %v", err)
	}
	defer s.Close()
	if got := recorded(t, s); !slices.Equal(got, want) {
		t.Errorf("schema_migrations = %v, want %v", got, want)
	}
	s2 := open(t, u) // Open migrates: nothing left to do.
	if got := recorded(t, s2); !slices.Equal(got, want) {
		t.Errorf("schema_migrations after Open = %v, want %v", got, want)
	}
}

func TestMigrateOlderSchema(t *testing.T) {
	// A schema at version 1 is migrated forward, and refused by OpenWith
	// without migrations until then.
	u := newSchema(t)
	ctx := t.Context()
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) < 2 {
		t.Fatalf("%d migrations: this test needs at least two", len(ms))
	}
	conn := admin(t, ctx)
	defer conn.Close(context.Background())
	cfg, err := pgx.ParseConfig(u)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "SET search_path = "+cfg.RuntimeParams["search_path"]); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, migrationsTable); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, ms[0].sql); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", ms[0].version, ms[0].name); err != nil {
		t.Fatal(err)
	}
	if s, err := OpenWith(ctx, u, Options{}); err == nil {
		s.Close()
		t.Fatal("OpenWith(Migrate false) on an old schema succeeded")
	} else if !strings.Contains(err.Error(), "older") {
		t.Errorf("OpenWith(Migrate false) on an old schema: %v", err)
	}
	applied, err := Migrate(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	if want := migrationNames(t)[1:]; !slices.Equal(applied, want) {
		t.Errorf("Migrate applied %v, want %v", applied, want)
	}
}

func TestMigrationsConcurrentOpen(t *testing.T) {
	// Instances starting together on an empty schema apply each migration
	// once, and all of them open.
	u := newSchema(t)
	const n = 4
	var wg sync.WaitGroup
	errs := make([]error, n)
	stores := make([]*Store, n)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			stores[i], errs[i] = Open(t.Context(), u)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Open #%d: %v", i, err)
			continue
		}
		defer stores[i].Close()
	}
	s := open(t, u)
	if got, want := recorded(t, s), migrationNames(t); !slices.Equal(got, want) {
		t.Errorf("schema_migrations = %v, want %v", got, want)
	}
	// The stores work.
	for i, st := range stores {
		if st == nil {
			continue
		}
		u := &latch.User{ID: fmt.Sprint(i), Email: fmt.Sprint(i, "@example.com"), PasswordHash: "h", CreatedAt: t0, UpdatedAt: t0}
		if err := st.CreateUser(t.Context(), u); err != nil {
			t.Errorf("store %d: CreateUser: %v", i, err)
		}
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	u := newSchema(t)
	ctx := t.Context()
	s, err := Open(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.pool.Exec(ctx,
		"INSERT INTO schema_migrations (version, name) VALUES (9999, '9999_future.sql')"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	for name, f := range map[string]func() error{
		"Open": func() error {
			s, err := Open(ctx, u)
			if err == nil {
				s.Close()
			}
			return err
		},
		"OpenWith(Migrate false)": func() error {
			s, err := OpenWith(ctx, u, Options{})
			if err == nil {
				s.Close()
			}
			return err
		},
		"Migrate": func() error {
			_, err := Migrate(ctx, u)
			return err
		},
	} {
		err := f()
		if err == nil {
			t.Errorf("%s of a database with a newer schema succeeded", name)
		} else if !strings.Contains(err.Error(), "newer") {
			t.Errorf("%s error = %v, want one about a newer schema", name, err)
		}
	}
}

func TestPersistence(t *testing.T) {
	u := newSchema(t)
	ctx := t.Context()

	s, err := Open(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	usr := &latch.User{ID: "alice", Email: "alice@example.com", PasswordHash: "h", CreatedAt: t0, UpdatedAt: t0}
	if err := s.CreateUser(ctx, usr); err != nil {
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
	if _, err := s.AddRevocation(ctx, jti); err != nil {
		t.Fatal(err)
	}
	// Prune the newest entry too: its Seq must not be handed out again.
	short := &latch.Revocation{Kind: latch.RevokeToken, Value: "jti-short", CreatedAt: t0, ExpiresAt: t0.Add(10 * time.Minute)}
	last, err := s.AddRevocation(ctx, short)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Prune(ctx, t0.Add(30*time.Minute), time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateClient(ctx, &latch.Client{ID: "web", Scopes: []string{"openid", "profile"}, CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, u)
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
	if c, err := s.Client(ctx, "web"); err != nil || !slices.Equal(c.Scopes, []string{"openid", "profile"}) {
		t.Errorf("Client after reopen = %+v, %v", c, err)
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

func TestTimes(t *testing.T) {
	// Stored times keep microseconds, drop nanoseconds and come back in
	// UTC; the zero time is NULL.
	s := open(t, newSchema(t))
	ctx := t.Context()
	at := time.Date(2030, time.June, 1, 12, 0, 0, 123456789, time.FixedZone("CEST", 2*3600))
	u := &latch.User{ID: "u", Email: "u@example.com", PasswordHash: "h", CreatedAt: at, UpdatedAt: at}
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	got, err := s.UserByID(ctx, "u")
	if err != nil {
		t.Fatal(err)
	}
	if want := at.Truncate(time.Microsecond); !got.CreatedAt.Equal(want) {
		t.Errorf("CreatedAt = %v, want %v", got.CreatedAt, want)
	}
	if got.CreatedAt.Location() != time.UTC {
		t.Errorf("CreatedAt is in %v, want UTC", got.CreatedAt.Location())
	}

	sess := &latch.Session{ID: "s", UserID: "u", CreatedAt: at, AuthTime: at, LastUsedAt: at,
		ExpiresAt: at.Add(time.Hour), Generation: 1}
	if err := s.CreateSession(ctx, sess, []byte("h1")); err != nil {
		t.Fatal(err)
	}
	var nulls bool
	if err := s.pool.QueryRow(ctx, "SELECT rotated_at IS NULL AND revoked_at IS NULL FROM sessions WHERE id = 's'").
		Scan(&nulls); err != nil {
		t.Fatal(err)
	}
	if !nulls {
		t.Error("zero RotatedAt and RevokedAt are not stored as NULL")
	}
	got2, err := s.Session(ctx, "s")
	if err != nil {
		t.Fatal(err)
	}
	if !got2.RotatedAt.IsZero() || !got2.RevokedAt.IsZero() || got2.Revoked() {
		t.Errorf("RotatedAt %v, RevokedAt %v: want zero times", got2.RotatedAt, got2.RevokedAt)
	}
}

// TestTwoInstancesRotate plays two servers sharing the database: they race
// to rotate the same session, generation after generation, and exactly one
// rotation of each generation wins.
func TestTwoInstancesRotate(t *testing.T) {
	u := newSchema(t)
	a, b := open(t, u), open(t, u)
	ctx := t.Context()
	if err := a.CreateUser(ctx, &latch.User{ID: "alice", Email: "alice@example.com", PasswordHash: "h",
		CreatedAt: t0, UpdatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if err := a.CreateSession(ctx, &latch.Session{ID: "s1", UserID: "alice", CreatedAt: t0, AuthTime: t0,
		LastUsedAt: t0, ExpiresAt: t0.Add(time.Hour), Generation: 1}, []byte("s1/1")); err != nil {
		t.Fatal(err)
	}
	const generations, racers = 10, 8
	for gen := int64(1); gen <= generations; gen++ {
		var wg sync.WaitGroup
		errs := make([]error, racers)
		start := make(chan struct{})
		for i := range racers {
			s := []*Store{a, b}[i%2]
			wg.Go(func() {
				<-start
				errs[i] = s.Rotate(ctx, latch.Rotation{SessionID: "s1", FromGeneration: gen,
					NewHash: fmt.Appendf(nil, "s1/%d/%d", gen+1, i), Successor: []byte("sealed"), At: t0})
			})
		}
		close(start)
		wg.Wait()
		wins := 0
		for i, err := range errs {
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, latch.ErrConflict):
				t.Errorf("generation %d racer %d: %v, want nil or ErrConflict", gen, i, err)
			}
		}
		if wins != 1 {
			t.Fatalf("generation %d: %d rotations won, want 1", gen, wins)
		}
		for _, s := range []*Store{a, b} {
			sess, err := s.Session(ctx, "s1")
			if err != nil {
				t.Fatal(err)
			}
			if sess.Generation != gen+1 {
				t.Fatalf("after generation %d: Generation = %d", gen, sess.Generation)
			}
		}
	}
	var n int
	if err := a.pool.QueryRow(ctx, "SELECT count(*) FROM refresh_tokens WHERE session_id = 's1'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != generations+1 {
		t.Errorf("%d refresh tokens stored, want %d", n, generations+1)
	}
}

// TestTwoInstancesRotateKeys races key rotations from two instances, on
// the empty ring and then from each newest key: exactly one per round wins.
func TestTwoInstancesRotateKeys(t *testing.T) {
	u := newSchema(t)
	a, b := open(t, u), open(t, u)
	ctx := t.Context()
	const rounds, racers = 6, 8
	previous := ""
	for round := range rounds {
		var wg sync.WaitGroup
		errs := make([]error, racers)
		start := make(chan struct{})
		for i := range racers {
			s := []*Store{a, b}[i%2]
			wg.Go(func() {
				nb := t0.Add(time.Duration(round) * time.Hour)
				k := latch.SigningKey{ID: fmt.Sprintf("k%d-%d", round, i), Algorithm: "EdDSA",
					Family: "access", Private: []byte("sealed"), Public: []byte("{}"), CreatedAt: nb, NotBefore: nb}
				<-start
				errs[i] = s.RotateKeys(ctx, latch.KeyRotation{New: k, Previous: previous,
					PreviousNotAfter: nb.Add(time.Hour)})
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Fatalf("round %d: racers %d and %d both rotated", round, winner, i)
			case err == nil:
				winner = i
			case !errors.Is(err, latch.ErrConflict):
				t.Fatalf("round %d racer %d: %v, want nil or ErrConflict", round, i, err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: no rotation won", round)
		}
		keys, err := b.Keys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) != round+1 {
			t.Fatalf("round %d: the ring has %d keys, want %d", round, len(keys), round+1)
		}
		previous = fmt.Sprintf("k%d-%d", round, winner)
		if keys[round].ID != previous {
			t.Fatalf("round %d: newest key %s, want the winner's %s", round, keys[round].ID, previous)
		}
	}
}

// TestFeedFollower hammers the feed with concurrent appends from two
// instances (AddRevocation, RevokeSession, RevokeUser) while a reader
// follows it with a cursor, as a remote verifier does: the reader must see
// every entry, in ascending Seq. A hook holds each appending transaction
// open for a moment after its insert, which without the feed lock lets a
// later seq commit before an earlier one.
func TestFeedFollower(t *testing.T) {
	u := newSchema(t)
	a, b := open(t, u), open(t, u)
	reader := open(t, u)
	ctx := t.Context()

	testHookFeedInsert = func() {
		time.Sleep(time.Duration(mrand.IntN(300)) * time.Microsecond)
	}
	t.Cleanup(func() { testHookFeedInsert = nil })

	const writers, ops = 6, 25
	exp := t0.Add(24 * time.Hour)
	for w := range writers {
		id := fmt.Sprint("user-", w)
		if err := a.CreateUser(ctx, &latch.User{ID: id, Email: id + "@example.com", PasswordHash: "h",
			CreatedAt: t0, UpdatedAt: t0}); err != nil {
			t.Fatal(err)
		}
	}

	var done atomic.Bool
	var seen []latch.Revocation
	readerErr := make(chan error, 1)
	go func() {
		cursor := int64(0)
		for {
			finished := done.Load() // read before polling: a last poll after the writers finished
			page, err := reader.RevocationsAfter(ctx, cursor, t0, 50)
			if err != nil {
				readerErr <- err
				return
			}
			for _, r := range page {
				if r.Seq <= cursor {
					readerErr <- fmt.Errorf("feed went back: seq %d after cursor %d", r.Seq, cursor)
					return
				}
				seen = append(seen, r)
				cursor = r.Seq
			}
			if len(page) == 0 && finished {
				readerErr <- nil
				return
			}
		}
	}()

	var wg sync.WaitGroup
	errc := make(chan error, writers*ops)
	for w := range writers {
		s := []*Store{a, b}[w%2]
		user := fmt.Sprint("user-", w)
		wg.Go(func() {
			for i := range ops {
				var err error
				switch i % 5 {
				case 0, 1, 2:
					_, err = s.AddRevocation(ctx, &latch.Revocation{Kind: latch.RevokeToken,
						Value: fmt.Sprintf("jti-%d-%d", w, i), CreatedAt: t0, ExpiresAt: exp})
				case 3:
					sid := fmt.Sprintf("s-%d-%d", w, i)
					err = s.CreateSession(ctx, &latch.Session{ID: sid, UserID: user, CreatedAt: t0, AuthTime: t0,
						LastUsedAt: t0, ExpiresAt: exp}, []byte(sid))
					if err == nil {
						_, err = s.RevokeSession(ctx, sid, "logout", t0, latch.Cover{Until: exp})
					}
				case 4:
					for j := range 2 {
						sid := fmt.Sprintf("s-%d-%d-%d", w, i, j)
						if err = s.CreateSession(ctx, &latch.Session{ID: sid, UserID: user, CreatedAt: t0,
							AuthTime: t0, LastUsedAt: t0, ExpiresAt: exp}, []byte(sid)); err != nil {
							break
						}
					}
					if err == nil {
						_, err = s.RevokeUser(ctx, user, "logout_all", t0, latch.Cover{Until: exp}, "")
					}
				}
				if err != nil {
					errc <- fmt.Errorf("writer %d op %d: %w", w, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	done.Store(true)
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	if err := <-readerErr; err != nil {
		t.Fatalf("reader: %v", err)
	}

	all, err := reader.RevocationsAfter(ctx, 0, t0, 100000)
	if err != nil {
		t.Fatal(err)
	}
	// 3 jti + 1 sid + (1 user + 2 sid) per 5 operations.
	if want := writers * ops / 5 * 7; len(all) != want {
		t.Errorf("feed has %d entries, want %d", len(all), want)
	}
	if len(seen) != len(all) {
		missed := map[int64]bool{}
		for _, r := range all {
			missed[r.Seq] = true
		}
		for _, r := range seen {
			delete(missed, r.Seq)
		}
		t.Fatalf("the follower saw %d of %d entries; missed seqs %v", len(seen), len(all), slices.Sorted(maps.Keys(missed)))
	}
	for i := range all {
		if seen[i].Seq != all[i].Seq || seen[i].Value != all[i].Value {
			t.Fatalf("follower entry %d = %d %s, want %d %s", i, seen[i].Seq, seen[i].Value, all[i].Seq, all[i].Value)
		}
	}
}

// TestRevokeUserConcurrent revokes one user from many goroutines and two
// instances at once, while sessions are rotated: no deadlock, every session
// revoked exactly once.
func TestRevokeUserConcurrent(t *testing.T) {
	u := newSchema(t)
	a, b := open(t, u), open(t, u)
	ctx := t.Context()
	if err := a.CreateUser(ctx, &latch.User{ID: "alice", Email: "alice@example.com", PasswordHash: "h",
		CreatedAt: t0, UpdatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	const sessions = 20
	for i := range sessions {
		sid := fmt.Sprint("s", i)
		if err := a.CreateSession(ctx, &latch.Session{ID: sid, UserID: "alice", CreatedAt: t0, AuthTime: t0,
			LastUsedAt: t0, ExpiresAt: t0.Add(time.Hour), Generation: 1}, []byte(sid)); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	revoked := map[string]int{}
	for i := range 8 {
		s := []*Store{a, b}[i%2]
		wg.Go(func() {
			var ids []string
			var err error
			if i%4 == 3 {
				sid := fmt.Sprint("s", i)
				var ok bool
				if ok, err = s.RevokeSession(ctx, sid, "logout", t0, latch.Cover{Until: t0.Add(time.Hour)}); ok {
					ids = []string{sid}
				}
			} else {
				ids, err = s.RevokeUser(ctx, "alice", "logout_all", t0, latch.Cover{Until: t0.Add(time.Hour)}, "")
			}
			if err != nil {
				t.Errorf("revoker %d: %v", i, err)
				return
			}
			mu.Lock()
			for _, id := range ids {
				revoked[id]++
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	if len(revoked) != sessions {
		t.Errorf("%d sessions revoked, want %d", len(revoked), sessions)
	}
	for id, n := range revoked {
		if n != 1 {
			t.Errorf("session %s reported revoked %d times", id, n)
		}
	}
	feed, err := a.RevocationsAfter(ctx, 0, t0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	sids := map[string]int{}
	for _, r := range feed {
		if r.Kind == latch.RevokeSession {
			sids[r.Value]++
		}
	}
	if len(sids) != sessions {
		t.Errorf("feed has sid entries for %d sessions, want %d", len(sids), sessions)
	}
	for id, n := range sids {
		if n != 1 {
			t.Errorf("feed has %d entries for session %s, want 1", n, id)
		}
	}
}

func TestErrorsWrapped(t *testing.T) {
	s := open(t, newSchema(t))
	ctx := t.Context()
	_, err := s.Session(ctx, "missing")
	if !errors.Is(err, latch.ErrNotFound) || !strings.HasPrefix(err.Error(), "postgres: session missing") {
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
	if !errors.Is(err, latch.ErrConflict) || !strings.HasPrefix(err.Error(), "postgres: rotate session missing") {
		t.Errorf("Rotate(missing) error = %v, want ErrConflict", err)
	}
	if n, err := s.ClearSuccessors(ctx, t0); err != nil || n != 0 {
		t.Errorf("ClearSuccessors(empty) = %d, %v", n, err)
	}
	u := &latch.User{ID: "u", Email: "u@example.com", PasswordHash: "h", CreatedAt: t0, UpdatedAt: t0}
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	u.ID = "v"
	err = s.CreateUser(ctx, u)
	if !errors.Is(err, latch.ErrConflict) || !strings.HasPrefix(err.Error(), "postgres: create user v") {
		t.Errorf("CreateUser(duplicate email) error = %v, want ErrConflict", err)
	}
}

func TestPasswordNotInErrors(t *testing.T) {
	// Neither a URL that does not parse nor one that does not connect
	// shows up in the error: it may hold a password.
	const secret = "s3cr3t-Pa55word"
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for _, u := range []string{
		"postgres://latch:" + secret + "@127.0.0.1:notaport/latch",
		"postgres://latch:" + secret + "@127.0.0.1:1/latch?sslmode=disable&connect_timeout=2",
		"host=127.0.0.1 port=1 user=latch password=" + secret + " dbname=latch sslmode=disable connect_timeout=2",
		"postgres://latch:" + secret + "@127.0.0.1:5432/latch?pool_max_conns=zero",
	} {
		s, err := Open(ctx, u)
		if err == nil {
			s.Close()
			t.Errorf("Open succeeded")
			continue
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("Open error shows the password: %v", err)
		}
		if !strings.HasPrefix(err.Error(), "postgres: open: ") {
			t.Errorf("Open error = %v, want the prefix postgres: open", err)
		}
		if _, err := Migrate(ctx, u); err == nil || strings.Contains(err.Error(), secret) {
			t.Errorf("Migrate error = %v", err)
		}
	}
}

func TestOpenCanceled(t *testing.T) {
	u := newSchema(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if s, err := Open(ctx, u); err == nil {
		s.Close()
		t.Error("Open with a canceled context succeeded")
	}
}

func TestClose(t *testing.T) {
	s, err := Open(t.Context(), newSchema(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := s.Ping(t.Context()); err == nil {
		t.Error("Ping after Close succeeded")
	}
}

// TestMigrationGrantsFeedToExistingClients: upgrading to migration 0005
// keeps every existing confidential client able to read the revocation
// feed (as before), and gives public clients nothing.
func TestMigrationGrantsFeedToExistingClients(t *testing.T) {
	url := newSchema(t)
	s := open(t, url)
	// Back to the schema before 0005, with clients registered then.
	for _, q := range append(slices.Clone(undo0009),
		"ALTER TABLE clients DROP COLUMN permissions",
		// 0006 and 0008 go too, so that they apply again after 0005.
		"DROP INDEX signing_keys_family",
		"ALTER TABLE signing_keys DROP COLUMN family",
		"ALTER TABLE signing_keys DROP COLUMN revoked_at",
		"DROP TABLE key_ring_version",
		"DELETE FROM schema_migrations WHERE version >= 5",
		"INSERT INTO clients (id, secret_hash, scopes, audience, delivery, created_at) VALUES ('svc', 'sha256:x', '{}', '', 'bearer', now()), ('app', '', '{}', '', 'cookie', now())",
	) {
		if _, err := s.pool.Exec(t.Context(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	s.Close()
	s = open(t, url)
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
		return open(t, newSchema(t))
	})
}
