package outbox_test

import (
	"path/filepath"
	"sync"
	"testing"

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
		u := testenv.PostgresSchema(t, "latch_outbox_")
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
