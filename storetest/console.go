package storetest

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latchauth/latch"
)

// mustSearch returns SearchUsers(q)'s emails.
func mustSearch(t *testing.T, s latch.Store, q latch.UserQuery) []string {
	t.Helper()
	us, err := s.SearchUsers(t.Context(), q)
	if err != nil {
		t.Fatalf("SearchUsers(%+v): %v", q, err)
	}
	var emails []string
	for _, u := range us {
		emails = append(emails, u.Email)
	}
	return emails
}

// pageUsers pages through SearchUsers with the search, limit users at a
// time, and returns every email in order.
func pageUsers(t *testing.T, s latch.Store, search string, limit int) []string {
	t.Helper()
	var all []string
	q := latch.UserQuery{Search: search, Limit: limit}
	for range 100 {
		page := mustSearch(t, s, q)
		if len(page) > limit {
			t.Fatalf("SearchUsers(%+v) returned %d users, more than the limit", q, len(page))
		}
		all = append(all, page...)
		if len(page) < limit {
			return all
		}
		q.After = page[len(page)-1]
	}
	t.Fatalf("SearchUsers(%q) pages without end", search)
	return nil
}

// testConsoleUsers: SearchUsers finds users by email prefix (case folded,
// LIKE wildcards literal) or by exact ID, in email order, a page at a
// time, with a cursor that stays right when users are added between
// pages; CountUsers counts them.
func testConsoleUsers(t *testing.T, s latch.Store) {
	ctx := t.Context()
	if n, err := s.CountUsers(ctx); err != nil || n != 0 {
		t.Fatalf("CountUsers on an empty store = %d, %v; want 0", n, err)
	}
	if got := mustSearch(t, s, latch.UserQuery{Limit: 10}); len(got) != 0 {
		t.Fatalf("SearchUsers on an empty store = %q", got)
	}
	emails := []string{
		"ada@example.com", "adam@example.com", "ad@example.org", "bob@example.com",
		"a%c@example.com", "a_c@example.com", "axc@example.com", `a\c@example.com`, "abc@example.com",
		"élodie@example.fr", "émile@example.fr", "eve@example.com", "zed@example.com",
	}
	for i, e := range emails {
		u := newUser(fmt.Sprintf("u%02d", i))
		u.Email = e
		if err := s.CreateUser(ctx, u); err != nil {
			t.Fatalf("CreateUser(%s): %v", e, err)
		}
	}
	// A user whose ID reads like the start of other users' emails.
	idUser := newUser("ada")
	idUser.Email = "zz-ada-by-id@example.com"
	if err := s.CreateUser(ctx, idUser); err != nil {
		t.Fatal(err)
	}
	all := append(slices.Clone(emails), idUser.Email)
	slices.Sort(all)
	if n, err := s.CountUsers(ctx); err != nil || n != len(all) {
		t.Fatalf("CountUsers = %d, %v; want %d", n, err, len(all))
	}

	for _, tt := range []struct {
		search string
		want   []string
	}{
		{"", all},
		{"ad", []string{"ad@example.org", "ada@example.com", "adam@example.com"}},
		{"  ada ", []string{"ada@example.com", "adam@example.com", "zz-ada-by-id@example.com"}},
		{"ADA", []string{"ada@example.com", "adam@example.com"}}, // the id is exact
		{"ada@example.com", []string{"ada@example.com"}},
		{"a%", []string{"a%c@example.com"}},
		{"a_", []string{"a_c@example.com"}},
		{`a\`, []string{`a\c@example.com`}},
		{"%", nil},
		{"_", nil},
		{"é", []string{"élodie@example.fr", "émile@example.fr"}},
		{"É", []string{"élodie@example.fr", "émile@example.fr"}},
		{"u03", []string{"bob@example.com"}}, // by id
		{"U03", nil},                         // ids are exact
		{"u0", nil},                          // and not prefixes
		{"nobody", nil},
		{"\x00", nil},
		{"a\xff", nil},
		{"\U0010FFFF", nil},
	} {
		for _, limit := range []int{1, 2, 3, 100} {
			if got := pageUsers(t, s, tt.search, limit); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("search %q, %d a page: %q; want %q", tt.search, limit, got, tt.want)
			}
		}
	}
	// The user found by id appears once, also when the email matches too.
	bob := newUser("bo")
	bob.Email = "bo@example.com"
	if err := s.CreateUser(ctx, bob); err != nil {
		t.Fatal(err)
	}
	if got, want := pageUsers(t, s, "bo", 1), []string{"bo@example.com", "bob@example.com"}; !reflect.DeepEqual(got, want) {
		t.Errorf("search \"bo\" (an id and a prefix) = %q; want %q", got, want)
	}
	// Past the cursor, the user found by id shows only if it sorts after.
	if got := mustSearch(t, s, latch.UserQuery{Search: "ada", After: "zz-ada-by-id@example.com", Limit: 5}); len(got) != 0 {
		t.Errorf("search \"ada\" after the last = %q; want none", got)
	}
	if got, want := mustSearch(t, s, latch.UserQuery{Search: "ada", After: "ada@example.com", Limit: 1}), []string{"adam@example.com"}; !reflect.DeepEqual(got, want) {
		t.Errorf("search \"ada\" after ada@, 1 a page = %q; want %q", got, want)
	}
	for _, limit := range []int{0, -1} {
		if got := mustSearch(t, s, latch.UserQuery{Limit: limit}); len(got) != 0 {
			t.Errorf("limit %d: %q; want none", limit, got)
		}
	}

	// Users added before and after the cursor between two pages: the next
	// page holds what follows the cursor, with the new user after it.
	page := mustSearch(t, s, latch.UserQuery{Search: "a", Limit: 3})
	for _, e := range []string{"a0@example.com", "azz@example.com"} {
		u := newUser("new-" + e)
		u.Email = e
		if err := s.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	next := mustSearch(t, s, latch.UserQuery{Search: "a", After: page[len(page)-1], Limit: 100})
	if slices.Contains(next, "a0@example.com") || !slices.Contains(next, "azz@example.com") {
		t.Errorf("after %q, with users added: %q; want azz@ and not a0@", page[len(page)-1], next)
	}
	for _, e := range page {
		if slices.Contains(next, e) {
			t.Errorf("next page repeats %s", e)
		}
	}
	got := append(page, next...)
	if !slices.IsSorted(got) {
		t.Errorf("pages out of order: %q", got)
	}
	full := mustSearch(t, s, latch.UserQuery{Search: "a", Limit: 100})
	if want := slices.DeleteFunc(full, func(e string) bool { return e == "a0@example.com" }); !reflect.DeepEqual(got, want) {
		t.Errorf("pages across the inserts = %q; want %q", got, want)
	}
}

// consoleEvents adds the test's security log: n events cycling over
// three types, three users, three addresses, a minute apart from base.
func consoleEvents(t *testing.T, s latch.Store, n int) []latch.Event {
	t.Helper()
	types := []string{latch.EventLoginFailed, latch.EventLoginSucceeded, latch.EventRefreshReused}
	var list []latch.Event
	for i := range n {
		e := latch.Event{Type: types[i%3], At: base.Add(time.Duration(i) * time.Minute),
			UserID: fmt.Sprint("u", i%5%3), IP: fmt.Sprint("192.0.2.", i%7%3), SessionID: fmt.Sprint("s", i),
			Detail: map[string]string{"i": fmt.Sprint(i)}}
		if err := s.AddEvent(t.Context(), &e); err != nil {
			t.Fatalf("AddEvent: %v", err)
		}
		list = append(list, e)
	}
	return list
}

// matches reports whether e passes f, except for Before and Limit.
func matches(e latch.Event, f latch.EventFilter) bool {
	return (len(f.Types) == 0 || slices.Contains(f.Types, e.Type)) &&
		(f.UserID == "" || e.UserID == f.UserID) && (f.IP == "" || e.IP == f.IP) &&
		(f.From.IsZero() || !e.At.Before(f.From)) && (f.To.IsZero() || e.At.Before(f.To))
}

// pageEvents pages through FilterEvents with f, following the cursor, and
// returns the IDs in order.
func pageEvents(t *testing.T, s latch.Store, f latch.EventFilter) []int64 {
	t.Helper()
	var ids []int64
	for range 1000 {
		page, err := s.FilterEvents(t.Context(), f)
		if err != nil {
			t.Fatalf("FilterEvents(%+v): %v", f, err)
		}
		if len(page) > f.Limit {
			t.Fatalf("FilterEvents(%+v) returned %d events, more than the limit", f, len(page))
		}
		for _, e := range page {
			ids = append(ids, e.ID)
		}
		if len(page) < f.Limit {
			return ids
		}
		f.Before = page[len(page)-1].ID
	}
	t.Fatalf("FilterEvents(%+v) pages without end", f)
	return nil
}

// testConsoleEvents: FilterEvents returns the events that pass every
// filter given, newest first, a page at a time, against a reference
// filter over the whole log; with every field; with a cursor that stays
// right when events are added between pages.
func testConsoleEvents(t *testing.T, s latch.Store) {
	ctx := t.Context()
	if got, err := s.FilterEvents(ctx, latch.EventFilter{Limit: 10}); err != nil || len(got) != 0 {
		t.Fatalf("FilterEvents on an empty log = %v, %v", got, err)
	}
	events := consoleEvents(t, s, 40)
	at := func(i int) time.Time { return base.Add(time.Duration(i) * time.Minute) }
	filters := []latch.EventFilter{
		{},
		{Types: []string{latch.EventLoginFailed}},
		{Types: []string{latch.EventLoginFailed, latch.EventRefreshReused}},
		{Types: []string{latch.EventRefreshReused, latch.EventRefreshReused}},
		{Types: []string{"no_such_type"}},
		{Types: []string{"no_such_type", latch.EventLoginSucceeded}},
		{UserID: "u1"},
		{UserID: "u9"},
		{IP: "192.0.2.2"},
		{From: at(10)},
		{To: at(10)},
		{From: at(10), To: at(25)},
		{From: at(10), To: at(10)},
		{Types: []string{latch.EventLoginFailed}, UserID: "u0"},
		{Types: []string{latch.EventLoginFailed, latch.EventLoginSucceeded}, UserID: "u2", IP: "192.0.2.1"},
		{UserID: "u1", IP: "192.0.2.0", From: at(5), To: at(35)},
		{Types: []string{latch.EventRefreshReused}, IP: "192.0.2.1", From: at(3)},
		{UserID: "u1\x00"},
		{IP: "\xff"},
		{Types: []string{"\x00"}},
	}
	for _, f := range filters {
		var want []int64
		for _, e := range slices.Backward(events) {
			if matches(e, f) {
				want = append(want, e.ID)
			}
		}
		for _, limit := range []int{1, 3, 7, 100} {
			f.Limit = limit
			if got := pageEvents(t, s, f); !slices.Equal(got, want) {
				t.Errorf("FilterEvents(%+v) paged = %v; want %v", f, got, want)
			}
		}
	}
	// Every field comes back.
	got, err := s.FilterEvents(ctx, latch.EventFilter{UserID: events[7].UserID, Before: events[8].ID, Limit: 1})
	if err != nil || len(got) != 1 || !reflect.DeepEqual(got[0], events[7]) {
		t.Errorf("FilterEvents for event 7 = %+v, %v; want %+v", got, err, events[7])
	}
	for _, limit := range []int{0, -1} {
		if got, err := s.FilterEvents(ctx, latch.EventFilter{Limit: limit}); err != nil || len(got) != 0 {
			t.Errorf("limit %d: %v, %v; want none", limit, got, err)
		}
	}

	// Events added between two pages: the next page continues below the
	// cursor, as if nothing had been added.
	f := latch.EventFilter{Types: []string{latch.EventLoginFailed, latch.EventLoginSucceeded}, Limit: 5}
	before := pageEvents(t, s, latch.EventFilter{Types: f.Types, Limit: 100})
	first, err := s.FilterEvents(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	consoleEvents(t, s, 6)
	f.Before = first[len(first)-1].ID
	var ids []int64
	for _, e := range first {
		ids = append(ids, e.ID)
	}
	ids = append(ids, pageEvents(t, s, f)...)
	if !slices.Equal(ids, before) {
		t.Errorf("pages across the inserts = %v; want %v", ids, before)
	}
}

// testCountEvents: CountEvents counts per type and per bucket (At
// truncated, UTC) from since on, inclusive, leaving empty buckets out;
// with no types it counts every type; a bucket under a microsecond is an
// error.
func testCountEvents(t *testing.T, s latch.Store) {
	ctx := t.Context()
	if got, err := s.CountEvents(ctx, nil, time.Time{}, time.Minute); err != nil || len(got) != 0 {
		t.Fatalf("CountEvents on an empty log = %v, %v", got, err)
	}
	events := consoleEvents(t, s, 150) // base + 0..149 minutes: three hours
	for _, tt := range []struct {
		types  []string
		since  time.Time
		bucket time.Duration
	}{
		{nil, time.Time{}, time.Hour},
		{nil, base.Add(90 * time.Minute), time.Hour},
		{[]string{latch.EventLoginFailed}, base.Add(100 * time.Minute), time.Minute},
		{[]string{latch.EventLoginFailed, latch.EventRefreshReused}, base.Add(30 * time.Minute), 15 * time.Minute},
		{[]string{latch.EventLoginSucceeded}, base, 24 * time.Hour},
		{[]string{latch.EventLoginSucceeded}, base.Add(time.Minute), 7 * time.Minute},
		{[]string{"no_such_type"}, time.Time{}, time.Hour},
		{[]string{"\x00"}, time.Time{}, time.Hour},
		{nil, base.Add(150 * time.Minute), time.Hour},
	} {
		n := map[[2]string]int{}
		for _, e := range events {
			if e.At.Before(tt.since) || len(tt.types) > 0 && !slices.Contains(tt.types, e.Type) {
				continue
			}
			n[[2]string{e.At.Truncate(tt.bucket).UTC().Format(time.RFC3339Nano), e.Type}]++
		}
		var want []latch.Count
		for _, k := range slices.SortedFunc(maps.Keys(n), cmpKey) {
			b, _ := time.Parse(time.RFC3339Nano, k[0])
			want = append(want, latch.Count{Type: k[1], Bucket: b.UTC(), N: n[k]})
		}
		got, err := s.CountEvents(ctx, tt.types, tt.since, tt.bucket)
		if err != nil {
			t.Fatalf("CountEvents(%q, %v, %v): %v", tt.types, tt.since, tt.bucket, err)
		}
		slices.SortFunc(got, func(a, b latch.Count) int {
			if c := a.Bucket.Compare(b.Bucket); c != 0 {
				return c
			}
			return strings.Compare(a.Type, b.Type)
		})
		if !equalCounts(got, want) {
			t.Errorf("CountEvents(%q, %v, %v) = %v; want %v", tt.types, tt.since, tt.bucket, got, want)
		}
	}
	for _, b := range []time.Duration{0, -time.Minute, time.Nanosecond} {
		if _, err := s.CountEvents(ctx, nil, base, b); err == nil {
			t.Errorf("CountEvents with bucket %v: no error", b)
		}
	}
}

// cmpKey orders count keys (bucket in RFC 3339, type): by bucket, then
// type. The suite's buckets are all in the same year, so the text sorts as
// the time does.
func cmpKey(a, b [2]string) int {
	if c := strings.Compare(a[0], b[0]); c != 0 {
		return c
	}
	return strings.Compare(a[1], b[1])
}

// equalCounts compares counts with time.Time.Equal.
func equalCounts(a, b []latch.Count) bool {
	return slices.EqualFunc(a, b, func(x, y latch.Count) bool {
		return x.Type == y.Type && x.N == y.N && x.Bucket.Equal(y.Bucket) && x.Bucket.Location() == time.UTC
	})
}

// testCountLiveSessions: a session counts while neither revoked nor
// expired (ExpiresAt is its end: at ExpiresAt it no longer counts).
func testCountLiveSessions(t *testing.T, s latch.Store) {
	ctx := t.Context()
	count := func(now time.Time) int {
		t.Helper()
		n, err := s.CountLiveSessions(ctx, now)
		if err != nil {
			t.Fatalf("CountLiveSessions: %v", err)
		}
		return n
	}
	if n := count(base); n != 0 {
		t.Fatalf("CountLiveSessions on an empty store = %d", n)
	}
	mustUser(t, s, "u1")
	mustUser(t, s, "u2")
	mustSession(t, s, newSession("s1", "u1", base))                  // ends base+24h
	mustSession(t, s, newSession("s2", "u1", base.Add(time.Hour)))   // ends base+25h
	mustSession(t, s, newSession("s3", "u2", base.Add(2*time.Hour))) // revoked below
	mustSession(t, s, newSession("s4", "u2", base.Add(-time.Hour)))  // ends base+23h
	if _, err := s.RevokeSession(ctx, "s3", "logout", base.Add(3*time.Hour), latch.Cover{Until: base.Add(4 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		at   time.Time
		want int
	}{
		{base.Add(3 * time.Hour), 3},
		{base.Add(23 * time.Hour), 2},
		{base.Add(24*time.Hour - time.Microsecond), 2},
		{base.Add(24 * time.Hour), 1},
		{base.Add(25 * time.Hour), 0},
	} {
		if n := count(tt.at); n != tt.want {
			t.Errorf("CountLiveSessions at base+%v = %d; want %d", tt.at.Sub(base), n, tt.want)
		}
	}
}
