package sqlite

import (
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/latchauth/latch"
)

// TestMigrationCoversExistingSessions: sessions created before migration
// 0004 get the latest access-token expiry they can have (last use + 24h 5m,
// the longest lifetime and grace allowed, capped by the session's end), so
// revoking them after the upgrade still outlives their tokens.
func TestMigrationCoversExistingSessions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "latch.db")
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	// Back to the schema before 0004, with two sessions of that time.
	t0 := time.Date(2030, 5, 6, 7, 8, 9, 0, time.UTC)
	for _, q := range append(slices.Clone(undo0009),
		"ALTER TABLE sessions DROP COLUMN access_expires_at",
		"ALTER TABLE sessions DROP COLUMN rotated_by",
		"ALTER TABLE sessions DROP COLUMN grace_replays",
		// Later migrations go too, so that they apply again after 0004.
		"ALTER TABLE clients DROP COLUMN permissions",
		"DROP INDEX signing_keys_family",
		"ALTER TABLE signing_keys DROP COLUMN family",
		"ALTER TABLE signing_keys DROP COLUMN revoked_at",
		"DROP TABLE key_ring_version",
		"DELETE FROM schema_migrations WHERE version >= 4",
		"INSERT INTO users (id, email, password_hash, created_at, updated_at) VALUES ('u', 'u@example.com', 'x', 1, 1)",
	) {
		if _, err := s.w.ExecContext(t.Context(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	for _, row := range []struct {
		id       string
		lastUsed time.Time
		expires  time.Time
	}{
		{"long", t0, t0.Add(30 * 24 * time.Hour)},
		{"ending", t0, t0.Add(time.Hour)},
	} {
		if _, err := s.w.ExecContext(t.Context(), `INSERT INTO sessions (id, user_id, client_id, user_agent, ip,
			created_at, auth_time, last_used_at, expires_at, generation) VALUES (?, 'u', 'latch', '', '', ?, ?, ?, ?, 1)`,
			row.id, micros(t0), micros(t0), micros(row.lastUsed), micros(row.expires)); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()

	s, err = Open(t.Context(), path)
	if err != nil {
		t.Fatalf("reopen after the downgrade: %v", err)
	}
	defer s.Close()
	for id, want := range map[string]time.Time{
		"long":   t0.Add(24*time.Hour + 5*time.Minute),
		"ending": t0.Add(time.Hour),
	} {
		sess, err := s.Session(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if !sess.AccessExpiresAt.Equal(want) || sess.GraceReplays != 0 || sess.RotatedBy != nil {
			t.Errorf("%s after migration: AccessExpiresAt %v, GraceReplays %d, RotatedBy %x; want %v, 0, nil",
				id, sess.AccessExpiresAt, sess.GraceReplays, sess.RotatedBy, want)
		}
	}
}

// undo0009 takes the schema back before migration 0009 (undoing 0016
// to 0010 first), for the tests that downgrade to an older schema and upgrade
// again.
var undo0009 = []string{
	"DROP TABLE setup_tokens", // 0017
	"DROP INDEX users_role",
	"ALTER TABLE users DROP COLUMN role",
	"DROP INDEX events_type_id", // 0016
	"DROP INDEX events_user_id",
	"DROP INDEX events_ip_id",
	"DROP INDEX sessions_live",
	"DROP INDEX events_at_type",
	"CREATE INDEX events_at ON events (at)",
	"DROP TABLE challenges",         // 0015
	"DROP INDEX events_unpublished", // 0014
	"ALTER TABLE events DROP COLUMN published",
	"DROP TABLE sign_in_alerts", // 0013
	"DROP TABLE account_places",
	"DROP TABLE devices",
	"DROP TABLE account_tokens", // 0012
	"ALTER TABLE users DROP COLUMN email_verified_at",
	"ALTER TABLE users DROP COLUMN locked_at",
	"ALTER TABLE users DROP COLUMN lock_reason",
	"ALTER TABLE clients DROP COLUMN name", // 0011
	"DROP TABLE gateway_sessions",          // 0010
	"DROP TABLE outbox",
	"DROP TABLE consents",
	"DROP TABLE authorization_codes",
	"DROP TABLE sso_clients",
	"DROP TABLE sso_sessions",
	"DROP INDEX sessions_sso",
	"ALTER TABLE sessions DROP COLUMN sso_session_id",
	"ALTER TABLE sessions DROP COLUMN scope",
	"ALTER TABLE clients DROP COLUMN redirect_uris",
	"ALTER TABLE clients DROP COLUMN post_logout_redirect_uris",
	"ALTER TABLE clients DROP COLUMN backchannel_logout_uri",
	"ALTER TABLE clients DROP COLUMN first_party",
	"ALTER TABLE clients DROP COLUMN id_token_alg",
}

// TestMigrationPublishesPastEvents: events recorded before migration 0014
// are history, published already, so that the first webhook configured
// after the upgrade is not sent the whole security log; events recorded
// after it are published by the relay.
func TestMigrationPublishesPastEvents(t *testing.T) {
	path := filepath.Join(t.TempDir(), "latch.db")
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"DROP TABLE setup_tokens", // 0017, 0016 and 0015 go too, so that 0014 applies again
		"DROP INDEX users_role",
		"ALTER TABLE users DROP COLUMN role",
		"DROP INDEX events_type_id",
		"DROP INDEX events_user_id",
		"DROP INDEX events_ip_id",
		"DROP INDEX sessions_live",
		"DROP INDEX events_at_type",
		"CREATE INDEX events_at ON events (at)",
		"DROP TABLE challenges",
		"DROP INDEX events_unpublished",
		"ALTER TABLE events DROP COLUMN published",
		"DELETE FROM schema_migrations WHERE version >= 14",
	} {
		if _, err := s.w.ExecContext(t.Context(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	t0 := time.Date(2030, 5, 6, 7, 8, 9, 0, time.UTC)
	if err := s.AddEvent(t.Context(), &latch.Event{Type: latch.EventLoginFailed, At: t0}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s, err = Open(t.Context(), path)
	if err != nil {
		t.Fatalf("reopen after the downgrade: %v", err)
	}
	defer s.Close()
	fresh := latch.Event{Type: latch.EventLoginFailed, At: t0}
	if err := s.AddEvent(t.Context(), &fresh); err != nil {
		t.Fatal(err)
	}
	var routed []int64
	n, err := s.PublishEvents(t.Context(), time.Time{}, 10, func(e latch.Event) ([]latch.OutboxMessage, error) {
		routed = append(routed, e.ID)
		return nil, nil
	})
	if err != nil || n != 1 || routed[len(routed)-1] != fresh.ID {
		t.Fatalf("PublishEvents after the upgrade = %d, %v, routed %v; want the new event %d alone", n, err, routed, fresh.ID)
	}
}
