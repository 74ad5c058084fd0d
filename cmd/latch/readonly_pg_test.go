package main

import (
	"context"
	"crypto/rand"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchauth/latch/internal/testenv"
)

// TestReadOnlyCommandsCreateNothingOnPostgres: pointed at a database (or
// search_path) without a Latch schema, keys list, keys rotate and client
// list fail and create nothing: no tables, no signing key. Before, they
// migrated the empty schema into a new deployment.
func TestReadOnlyCommandsCreateNothingOnPostgres(t *testing.T) {
	_, env, conn, schema := postgresDeployment(t, "latch_ro_", "")
	ctx := t.Context()
	for _, args := range [][]string{{"keys", "list"}, {"client", "list"}, {"keys", "rotate"}, {"keys", "rotate", "--now"}} {
		_, _, err := run(t, "", env, args...)
		if err == nil || !strings.Contains(err.Error(), "no Latch deployment here") {
			t.Errorf("%v on an empty schema: error %v, want one saying there is no deployment", args, err)
		}
	}
	var tables int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1", schema).Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if tables != 0 {
		t.Fatalf("read-only commands created %d tables in an empty schema", tables)
	}
	if entries, _ := os.ReadDir("."); len(entries) != 0 {
		t.Fatalf("read-only commands on PostgreSQL created %v", entries)
	}
}

// postgresDeployment makes a schema of its own in the test database (or
// ends the test: a skip on a developer machine, a failure in CI) and
// returns the database URL with that search_path (and password, if not
// empty), the environment of a deployment on it with a fresh KEK, the
// connection and the schema. The schema is dropped at the end.
func postgresDeployment(t *testing.T, prefix, password string) (*url.URL, []string, *pgx.Conn, string) {
	t.Helper()
	base := os.Getenv("LATCH_TEST_POSTGRES_URL")
	if base == "" {
		base = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		testenv.Unavailable(t, testenv.Postgres, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	schema := prefix + strings.ToLower(rand.Text()[:16])
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE") })
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	if password != "" {
		u.User = url.UserPassword(u.User.Username(), password)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()

	t.Chdir(t.TempDir())
	kek, _, err := run(t, "", nil, "kek", "generate")
	if err != nil {
		t.Fatal(err)
	}
	return u, []string{"LATCH_DATABASE_URL=" + u.String(), "LATCH_KEK=" + strings.TrimSpace(kek)}, conn, schema
}
