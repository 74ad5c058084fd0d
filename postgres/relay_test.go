package postgres

import (
	"strings"
	"testing"
	"time"
)

// TestRelayUsesItsIndex: with many events, all published but a few, the
// relay's statements read the partial index of unpublished events, never
// the whole table, so that polling stays cheap with millions of events
// kept. (The events table here has 200 000 rows; the planner's choice at
// millions is the same, only more so.)
func TestRelayUsesItsIndex(t *testing.T) {
	s := open(t, newSchema(t))
	ctx := t.Context()
	if _, err := s.pool.Exec(ctx, `INSERT INTO events (type, at, user_id, session_id, client_id, ip, user_agent, published)
		SELECT 'login_failed', now() - g * interval '1 second', 'u' || g, '', '', '192.0.2.1', '', g > 10
		FROM generate_series(1, 200000) g`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.pool.Exec(ctx, "ANALYZE events"); err != nil {
		t.Fatal(err)
	}
	for _, b := range []time.Time{{}, time.Now().Add(-10 * time.Minute)} {
		for _, q := range []string{relayProbe, relaySweep, relaySelect} {
			args := []any{ts(b)}
			if q != relayProbe {
				args = append(args, 100)
			}
			rows, err := s.pool.Query(ctx, "EXPLAIN "+q, args...)
			if err != nil {
				t.Fatalf("%s: %v", q, err)
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
			if !strings.Contains(text, "events_unpublished") || strings.Contains(text, "Seq Scan on events") {
				t.Errorf("before %v: %s\nplan does not read events_unpublished alone:\n%s", b, q, text)
			}
		}
	}
}
