package postgres

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latchauth/latch"
)

// seedConsole fills the store with users users (one session each) and
// events events over the last 30 days, of ten types, a thousand users and
// as many addresses, and analyzes the tables, as the planner would see a
// deployment.
func seedConsole(t testing.TB, s *Store, users, events int) {
	t.Helper()
	ctx := t.Context()
	for _, q := range []string{
		`INSERT INTO users (id, email, password_hash, created_at, updated_at)
			SELECT 'u' || g, 'user' || g || '@example.com', '', now(), now() FROM generate_series(1, $1) g`,
		`INSERT INTO sessions (id, user_id, client_id, user_agent, ip, created_at, auth_time, last_used_at, expires_at, generation, revoked_at)
			SELECT 's' || g, 'u' || g, 'web', '', '192.0.2.1', now(), now(), now(), now() + (g % 48 - 24) * interval '1 hour', 1,
				CASE WHEN g % 10 = 0 THEN now() END
			FROM generate_series(1, $1) g`,
	} {
		if _, err := s.pool.Exec(ctx, q, users); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.pool.Exec(ctx, `INSERT INTO events (type, at, user_id, session_id, client_id, ip, user_agent, published)
		SELECT (ARRAY['login_succeeded', 'login_succeeded', 'login_succeeded', 'login_failed', 'login_failed',
				'token_refreshed', 'token_refreshed', 'session_revoked', 'refresh_token_reused', 'user_created'])[g % 10 + 1],
			now() - ($1 - g) * (interval '30 days' / $1), 'u' || (g * 7919 % 1000), '', 'web',
			'198.51.100.' || (g * 104729 % 1000), '', true
		FROM generate_series(1::bigint, $1) g`, events); err != nil {
		t.Fatal(err)
	}
	if _, err := s.pool.Exec(ctx, "ANALYZE users, sessions, events"); err != nil {
		t.Fatal(err)
	}
}

// TestConsoleUsesItsIndexes: with 100 000 events and 10 000 users, every
// statement of the console's lists and counts reads an index of its
// table, never the whole table, and the index meant for it. (The
// planner's choice at millions is the same, only more so.)
func TestConsoleUsesItsIndexes(t *testing.T) {
	s := open(t, newSchema(t))
	seedConsole(t, s, 10000, 100000)
	now := time.Now()
	hour := now.Add(-time.Hour)
	type check struct {
		name  string
		query string
		args  []any
		index []string // the plan reads one of these indexes
	}
	var checks []check
	for _, q := range []latch.UserQuery{
		{Limit: 50}, {Search: "user12", Limit: 50}, {Search: "user12", After: "user1234@example.com", Limit: 50},
		{After: "user5@example.com", Limit: 50},
	} {
		query, args := userSearch(q.Search, q.After, q.Limit)
		checks = append(checks, check{"users " + q.Search + " after " + q.After, query, args, []string{"users_email_key"}})
	}
	checks = append(checks, check{"user by id", "SELECT " + userColumns + " FROM users WHERE id = $1", []any{"u12"}, []string{"users_pkey"}})
	for _, f := range []latch.EventFilter{
		{Limit: 50},
		{Before: 1000, Limit: 50},
		{Types: []string{latch.EventLoginFailed}, Limit: 50},
		{Types: []string{latch.EventLoginFailed, latch.EventRefreshReused}, Before: 50000, Limit: 50},
		{UserID: "u1", Limit: 50},
		{IP: "198.51.100.7", Before: 50000, Limit: 50},
		{From: hour, Limit: 50},
		{From: hour, To: now, Before: 99990, Limit: 50},
		{Types: []string{latch.EventLoginFailed}, UserID: "u1", Limit: 50},
		{Types: []string{latch.EventLoginFailed}, IP: "198.51.100.7", From: hour, Limit: 50},
		{UserID: "u1", IP: "198.51.100.7", From: hour, To: now, Limit: 50},
	} {
		var index []string
		switch {
		case f.UserID != "" || f.IP != "":
			index = []string{"events_user_id", "events_ip_id", "events_user"}
		case !f.From.IsZero():
			index = []string{"events_at_type", "events_pkey"}
		case len(f.Types) > 0:
			// A common type's newest events are as quickly found
			// in id order.
			index = []string{"events_type_id", "events_pkey"}
		default:
			index = []string{"events_pkey"}
		}
		for _, st := range eventFilter(f) {
			checks = append(checks, check{st.query, st.query, st.args, index})
		}
	}
	for _, tt := range []struct {
		since time.Time
		types []string
	}{{hour, nil}, {now.Add(-24 * time.Hour), nil}, {hour, []string{latch.EventLoginFailed, latch.EventRefreshReused}}} {
		args := []any{int64(60e6), ts(tt.since)}
		if tt.types != nil {
			args = append(args, tt.types)
		}
		checks = append(checks, check{"count events", countEventsQuery(true, tt.types != nil), args, []string{"events_at_type"}})
	}
	checks = append(checks, check{"live sessions", countLiveSessions, []any{ts(now)}, []string{"sessions_live"}})

	for _, c := range checks {
		rows, err := s.pool.Query(t.Context(), "EXPLAIN "+c.query, c.args...)
		if err != nil {
			t.Fatalf("%s: %v", c.query, err)
		}
		var plan []string
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, line)
		}
		rows.Close()
		text := strings.Join(plan, "\n")
		if strings.Contains(text, "Seq Scan") || !slices.ContainsFunc(c.index, func(i string) bool { return strings.Contains(text, " "+i) }) {
			t.Errorf("%s\n%s\nplan does not read %q:\n%s", c.name, c.query, c.index, text)
		}
	}
}
