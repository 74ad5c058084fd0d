package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// migrationFS holds the schema migrations, one file per version, named
// NNNN_description.sql and applied in the order of NNNN. A migration must
// not contain BEGIN or COMMIT: it runs inside the migration transaction.
//
//go:embed migrations/*.sql
var migrationFS embed.FS

// A migration is one versioned schema change.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the embedded migrations in ascending version.
func migrations() ([]migration, error) {
	// fs.ReadDir returns the entries sorted by name; the names start with
	// zero-padded versions.
	entries, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range entries {
		name := e.Name()
		prefix, _, ok := strings.Cut(name, "_")
		version, err := strconv.Atoi(prefix)
		if !ok || err != nil || version <= 0 {
			return nil, fmt.Errorf("migration %s: name must start with a positive version and '_'", name)
		}
		if len(ms) > 0 && ms[len(ms)-1].version >= version {
			return nil, fmt.Errorf("migration %s: version %d repeats or is out of order", name, version)
		}
		b, err := migrationFS.ReadFile(path.Join("migrations", name))
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: version, name: name, sql: string(b)})
	}
	if len(ms) == 0 {
		return nil, errors.New("no migrations embedded")
	}
	return ms, nil
}

// Migrate applies to the database at url the schema migrations it has not
// recorded yet, as Open does, and returns the names of those it applied
// (none if the schema was current). It uses a single connection, closed
// before it returns. A database whose schema is newer than this program is
// refused.
func Migrate(ctx context.Context, url string) (applied []string, err error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: migrate: %w", urlError{err})
	}
	conn, err := pgx.ConnectConfig(ctx, cfg.ConnConfig)
	if err != nil {
		return nil, fmt.Errorf("postgres: migrate: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	applied, err = migrate(ctx, conn)
	if err != nil {
		return nil, fmt.Errorf("postgres: migrate: %w", err)
	}
	return applied, nil
}

// migrationsTable creates the table that records the applied migrations.
const migrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    integer     PRIMARY KEY,
	name       text        NOT NULL,
	applied_at timestamptz NOT NULL DEFAULT now()
)`

// migrate applies, in one transaction, the migrations that db has not
// recorded in schema_migrations, and returns their names. The transaction
// first takes an advisory lock keyed on the schema the tables are created
// in (the first existing schema of the search path), so that of several
// instances starting at once one applies the migrations and the others,
// once it committed, find nothing left to do.
func migrate(ctx context.Context, db interface {
	BeginTx(context.Context, pgx.TxOptions) (pgx.Tx, error)
}) ([]string, error) {
	ms, err := migrations()
	if err != nil {
		return nil, err
	}
	var applied []string
	err = retry(ctx, func() error {
		applied = nil
		return pgx.BeginTxFunc(ctx, db, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
			var schema *string
			if err := tx.QueryRow(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
				return err
			}
			if schema == nil {
				return errors.New("no schema of the search_path exists to create the tables in")
			}
			if _, err := tx.Exec(ctx,
				"SELECT pg_advisory_xact_lock($1, oid::int4) FROM pg_namespace WHERE nspname = $2",
				lockMigrate, *schema); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, migrationsTable); err != nil {
				return err
			}
			latest, err := schemaVersion(ctx, tx)
			if err != nil {
				return err
			}
			if known := ms[len(ms)-1].version; latest > known {
				return fmt.Errorf("database schema version %d is newer than this program's %d", latest, known)
			}
			for _, m := range ms {
				if m.version <= latest {
					continue
				}
				if _, err := tx.Exec(ctx, m.sql); err != nil {
					return fmt.Errorf("%s: %w", m.name, err)
				}
				if _, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
					m.version, m.name); err != nil {
					return fmt.Errorf("%s: %w", m.name, err)
				}
				applied = append(applied, m.name)
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return applied, nil
}

// schemaVersion returns the newest version recorded in schema_migrations,
// or 0 if none is.
func schemaVersion(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) (int, error) {
	var v int
	err := q.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM schema_migrations").Scan(&v)
	return v, err
}

// checkVersion returns an error unless the schema is exactly at the newest
// embedded version.
func checkVersion(ctx context.Context, pool *pgxpool.Pool) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	known := ms[len(ms)-1].version
	var exists bool
	if err := pool.QueryRow(ctx, "SELECT to_regclass('schema_migrations') IS NOT NULL").Scan(&exists); err != nil {
		return err
	}
	if !exists {
		return fmt.Errorf("database has no schema (want version %d): run the migrations", known)
	}
	latest, err := schemaVersion(ctx, pool)
	if err != nil {
		return err
	}
	switch {
	case latest > known:
		return fmt.Errorf("database schema version %d is newer than this program's %d", latest, known)
	case latest < known:
		return fmt.Errorf("database schema version %d is older than this program's %d: run the migrations", latest, known)
	}
	return nil
}
