package sqlite

import (
	"path/filepath"
	"strings"
	"testing"
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
