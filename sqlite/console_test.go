package sqlite

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latchauth/latch"
)

// consoleFilters are the event filters whose statements the plan tests
// look at: each filter alone and combined, with and without a cursor.
func consoleFilters(now time.Time) []latch.EventFilter {
	hour := now.Add(-time.Hour)
	return []latch.EventFilter{
		{Limit: 50},
		{Before: 1000, Limit: 50},
		{Types: []string{latch.EventLoginFailed}, Limit: 50},
		{Types: []string{latch.EventLoginFailed, latch.EventRefreshReused}, Before: 1000, Limit: 50},
		{UserID: "u1", Limit: 50},
		{IP: "192.0.2.1", Before: 1000, Limit: 50},
		{From: hour, Limit: 50},
		{From: hour, To: now, Before: 1000, Limit: 50},
		{Types: []string{latch.EventLoginFailed}, UserID: "u1", Limit: 50},
		{Types: []string{latch.EventLoginFailed}, IP: "192.0.2.1", From: hour, Limit: 50},
		{UserID: "u1", IP: "192.0.2.1", From: hour, To: now, Limit: 50},
	}
}

// plan returns the steps of SQLite's query plan for query.
func plan(t *testing.T, s *Store, query string, args ...any) []string {
	t.Helper()
	rows, err := s.db.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+query, args...)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	var steps []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		steps = append(steps, detail)
	}
	return steps
}

// TestConsoleUsesItsIndexes: every statement of the console's lists and
// counts searches an index range (SEARCH, never a SCAN of a table or of
// a whole index), so that it stays fast at millions of events; a page
// of events or users is read in order, without sorting.
func TestConsoleUsesItsIndexes(t *testing.T) {
	s, err := Open(t.Context(), filepath.Join(t.TempDir(), "latch.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Now()
	type check struct {
		name  string
		query string
		args  []any
		sort  bool     // a sort of the rows found is expected
		index []string // the plan reads one of these indexes
	}
	var checks []check
	for _, q := range []latch.UserQuery{
		{Limit: 50}, {Search: "ada", Limit: 50}, {Search: "ada", After: "ada@example.com", Limit: 50},
		{After: "m@example.com", Limit: 50}, {Search: "\U0010FFFF", Limit: 50},
	} {
		query, args := userSearch(q.Search, q.After, q.Limit)
		checks = append(checks, check{name: "users " + q.Search + " after " + q.After, query: query, args: args,
			index: []string{"sqlite_autoindex_users_2 (email>"}})
	}
	checks = append(checks, check{name: "user by id", query: "SELECT " + userColumns + " FROM users WHERE id = ?", args: []any{"ada"},
		index: []string{"sqlite_autoindex_users_1 (id=?)"}})
	for _, f := range consoleFilters(now) {
		for _, st := range eventFilter(f) {
			// A window without user or address reads the range of
			// (at, type) and sorts what it found.
			timeOnly := f.UserID == "" && f.IP == "" && !f.From.IsZero()
			var index []string
			switch {
			case timeOnly:
				index = []string{"events_at_type (at>"}
			case f.UserID != "" || f.IP != "":
				index = []string{"events_user_id (user_id=? AND id<?)", "events_ip_id (ip=? AND id<?)"}
			case len(f.Types) > 0:
				index = []string{"events_type_id (type=? AND id<?)"}
			default:
				index = []string{"INTEGER PRIMARY KEY (rowid<?)"}
			}
			checks = append(checks, check{name: st.query, query: st.query, args: st.args, sort: timeOnly, index: index})
		}
	}
	for n := range 3 {
		args := []any{int64(60e6), int64(60e6), micros(now.Add(-time.Hour))}
		for i := range n {
			args = append(args, latch.EventLoginFailed+string(rune('a'+i)))
		}
		checks = append(checks, check{name: "count events", query: countEventsQuery(n), args: args, sort: true,
			index: []string{"COVERING INDEX events_at_type (at>?)"}})
	}
	checks = append(checks, check{name: "live sessions", query: countLiveSessions, args: []any{micros(now)},
		index: []string{"COVERING INDEX sessions_live (expires_at>?)"}})

	for _, c := range checks {
		steps := plan(t, s, c.query, c.args...)
		for _, step := range steps {
			if strings.HasPrefix(step, "SCAN") {
				t.Errorf("%s\n%s\nplan step %q scans (plan %q)", c.name, c.query, step, steps)
			}
			if strings.Contains(step, "TEMP B-TREE") && !c.sort {
				t.Errorf("%s\n%s\nplan step %q sorts (plan %q)", c.name, c.query, step, steps)
			}
		}
		if !slices.ContainsFunc(steps, func(step string) bool {
			return slices.ContainsFunc(c.index, func(index string) bool { return strings.Contains(step, index) })
		}) {
			t.Errorf("%s\n%s\nplan %q reads none of %q", c.name, c.query, steps, c.index)
		}
	}
}
