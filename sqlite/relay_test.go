package sqlite

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latchauth/latch"
)

// TestRelayUsesItsIndex: every statement of the relay reads the partial
// index of unpublished events (or rows by id), never a range of all
// events, so that polling stays cheap with millions of events kept.
func TestRelayUsesItsIndex(t *testing.T) {
	s, err := Open(t.Context(), filepath.Join(t.TempDir(), "latch.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, q := range []string{relayProbe, relaySweep, relaySelect, "UPDATE events SET published = 1 WHERE id = ?"} {
		rows, err := s.db.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+q, 1, 1)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		for _, step := range plan {
			if strings.Contains(step, "events") && !strings.Contains(step, "events_unpublished") && !strings.Contains(step, "PRIMARY KEY") {
				t.Errorf("%s\nplan step %q reads events without the relay's index (plan %q)", q, step, plan)
			}
		}
	}
}

// BenchmarkRelayIdle: one poll of the relay that finds nothing to
// publish, among 300 000 published events, against a Ping of the same
// store (the floor of any read).
func BenchmarkRelayIdle(b *testing.B) {
	s, err := Open(b.Context(), filepath.Join(b.TempDir(), "latch.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if _, err := s.w.ExecContext(b.Context(), `WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 300000)
		INSERT INTO events (type, at, user_id, session_id, client_id, ip, user_agent, published)
		SELECT 'login_failed', n, 'u' || n, '', '', '192.0.2.1', '', 1 FROM g`); err != nil {
		b.Fatal(err)
	}
	route := func(latch.Event) ([]latch.OutboxMessage, error) { return nil, nil }
	b.Run("ping", func(b *testing.B) {
		for b.Loop() {
			if err := s.Ping(b.Context()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("relay", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.PublishEvents(b.Context(), time.Time{}, 100, route); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("sweep", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.PublishEvents(b.Context(), time.Unix(0, 0).Add(time.Hour), 1000, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}
