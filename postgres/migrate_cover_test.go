package postgres

import (
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
	url := newSchema(t)
	s, err := Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	// Back to the schema before 0004, with two sessions of that time.
	for _, q := range append(slices.Clone(undo0009),
		"ALTER TABLE sessions DROP COLUMN access_expires_at, DROP COLUMN rotated_by, DROP COLUMN grace_replays",
		// Later migrations go too, so that they apply again after 0004.
		"ALTER TABLE clients DROP COLUMN permissions",
		"DROP INDEX signing_keys_family",
		"ALTER TABLE signing_keys DROP COLUMN family",
		"ALTER TABLE signing_keys DROP COLUMN revoked_at",
		"DROP TABLE key_ring_version",
		"DELETE FROM schema_migrations WHERE version >= 4",
		"INSERT INTO users (id, email, password_hash, created_at, updated_at) VALUES ('u', 'u@example.com', 'x', now(), now())",
	) {
		if _, err := s.pool.Exec(t.Context(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	for id, expires := range map[string]time.Time{"long": t0.Add(30 * 24 * time.Hour), "ending": t0.Add(time.Hour)} {
		if _, err := s.pool.Exec(t.Context(), `INSERT INTO sessions (id, user_id, client_id, user_agent, ip,
			created_at, auth_time, last_used_at, expires_at, generation) VALUES ($1, 'u', 'latch', '', '', $2, $2, $2, $3, 1)`,
			id, t0, expires); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()

	s = open(t, url)
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
	"DROP INDEX events_type_id, events_user_id, events_ip_id, sessions_live, events_at_type", // 0016
	"CREATE INDEX events_at ON events (at)",
	"DROP TABLE challenges",         // 0015
	"DROP INDEX events_unpublished", // 0014
	"ALTER TABLE events DROP COLUMN published",
	"DROP TABLE sign_in_alerts, account_places, devices", // 0013
	"DROP TABLE account_tokens",                          // 0012
	"ALTER TABLE users DROP COLUMN email_verified_at, DROP COLUMN locked_at, DROP COLUMN lock_reason",
	"ALTER TABLE clients DROP COLUMN name", // 0011
	"DROP TABLE gateway_sessions",          // 0010
	"DROP TABLE outbox, consents, authorization_codes, sso_clients, sso_sessions",
	"ALTER TABLE sessions DROP COLUMN sso_session_id, DROP COLUMN scope",
	`ALTER TABLE clients DROP COLUMN redirect_uris, DROP COLUMN post_logout_redirect_uris,
		DROP COLUMN backchannel_logout_uri, DROP COLUMN first_party, DROP COLUMN id_token_alg`,
}

// TestMigrationPublishesPastEvents: events recorded before migration 0014
// are history, published already, so that the first webhook configured
// after the upgrade is not sent the whole security log; events recorded
// after it are published by the relay.
func TestMigrationPublishesPastEvents(t *testing.T) {
	url := newSchema(t)
	s, err := Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"DROP TABLE setup_tokens", // 0017, 0016 and 0015 go too, so that 0014 applies again
		"DROP INDEX users_role",
		"ALTER TABLE users DROP COLUMN role",
		"DROP INDEX events_type_id, events_user_id, events_ip_id, sessions_live, events_at_type",
		"CREATE INDEX events_at ON events (at)",
		"DROP TABLE challenges",
		"DROP INDEX events_unpublished",
		"ALTER TABLE events DROP COLUMN published",
		"DELETE FROM schema_migrations WHERE version >= 14",
	} {
		if _, err := s.pool.Exec(t.Context(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := s.AddEvent(t.Context(), &latch.Event{Type: latch.EventLoginFailed, At: t0}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s = open(t, url)
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
