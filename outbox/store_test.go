package outbox_test

import (
	"context"
	"crypto/rand"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/latchauth/latch"
	"github.com/latchauth/latch/internal/testenv"
	"github.com/latchauth/latch/postgres"
	"github.com/latchauth/latch/sqlite"
)

// backends runs f as a subtest on a new SQLite store and on a new
// PostgreSQL schema (skipped, or failed under LATCH_TEST_REQUIRE=postgres,
// where PostgreSQL is unreachable).
func backends(t *testing.T, f func(t *testing.T, open func(t *testing.T) latch.Store)) {
	t.Run("sqlite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "latch.db")
		var once sync.Once
		var st latch.Store
		f(t, func(t *testing.T) latch.Store {
			// One store per test: a second open returns the same one,
			// as a second instance would share the database.
			once.Do(func() { st = openSQLite(t, path) })
			return st
		})
	})
	t.Run("postgres", func(t *testing.T) {
		u := newSchema(t)
		f(t, func(t *testing.T) latch.Store { return openPostgres(t, u) })
	})
}

func openSQLite(t *testing.T, path string) latch.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func openPostgres(t *testing.T, u string) latch.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), u)
	if err != nil {
		t.Fatalf("postgres.Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// postgresURL is the test database.
func postgresURL() string {
	if u := os.Getenv("LATCH_TEST_POSTGRES_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// newSchema creates a schema for t, dropped when t ends, and returns the
// database URL with it as search_path.
func newSchema(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, postgresURL())
	if err != nil {
		testenv.Unavailable(t, testenv.Postgres, err)
	}
	defer conn.Close(context.Background())
	schema := "latch_outbox_" + strings.ToLower(rand.Text()[:16])
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, postgresURL())
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(postgresURL())
	if err != nil {
		t.Fatalf("LATCH_TEST_POSTGRES_URL must be a postgres:// URL")
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
