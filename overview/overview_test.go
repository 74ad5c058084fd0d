package overview

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/auth"
	"github.com/latchauth/latch/keys"
	"github.com/latchauth/latch/sqlite"
	"github.com/latchauth/latch/stats"
	"github.com/prometheus/client_golang/prometheus"
)

var now = time.Date(2031, 3, 14, 15, 9, 26, 0, time.UTC)

type ring []keys.Info

func (r ring) List() []keys.Info { return r }

type pinger struct{ err error }

func (p pinger) Ping(context.Context) error { return p.err }

func open(t *testing.T) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "latch.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestCollect: every figure, from a real store, a ring, followers, the
// stats of the service's own counters and a Redis that is down.
func TestCollect(t *testing.T) {
	st := open(t)
	ctx := t.Context()
	for _, id := range []string{"u1", "u2", "u3"} {
		if err := st.CreateUser(ctx, &latch.User{ID: id, Email: id + "@example.com", CreatedAt: now, UpdatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	for i, exp := range []time.Duration{time.Hour, time.Hour, -time.Minute} { // the last one has expired
		sess := &latch.Session{ID: string(rune('a' + i)), UserID: "u1", ClientID: "web", CreatedAt: now.Add(-2 * time.Hour),
			AuthTime: now.Add(-2 * time.Hour), LastUsedAt: now, ExpiresAt: now.Add(exp), Generation: 1}
		if err := st.CreateSession(ctx, sess, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range []latch.Event{
		{Type: latch.EventLoginFailed, At: now.Add(-2 * time.Minute)},
		{Type: latch.EventLoginFailed, At: now.Add(-2 * time.Minute)},
		{Type: latch.EventLoginFailed, At: now.Add(-3 * time.Hour)},
		{Type: latch.EventRefreshReused, At: now.Add(-30 * time.Minute)},
		{Type: latch.EventLoginSucceeded, At: now.Add(-25 * time.Hour)}, // beyond the day
	} {
		if err := st.AddEvent(ctx, &e); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.RevokeSession(ctx, "b", "logout", now, latch.Cover{Until: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	head, err := st.RevocationHead(ctx)
	if err != nil || head == 0 {
		t.Fatalf("RevocationHead = %d, %v", head, err)
	}

	reg := prometheus.NewRegistry()
	m := auth.NewMetrics(reg)
	rec := stats.New(reg, func() time.Time { return now })
	m.Logins.WithLabelValues("success").Add(4)
	if err := rec.Sample(); err != nil {
		t.Fatal(err)
	}

	o := New(Source{
		Store: st,
		Ring: ring{{ID: "old", Family: keys.FamilyAccess, State: keys.StateRetired, CreatedAt: now.Add(-48 * time.Hour)},
			{ID: "id", Family: keys.FamilyID, State: keys.StateActive, CreatedAt: now.Add(-time.Hour)},
			{ID: "new", Family: keys.FamilyAccess, State: keys.StateActive, CreatedAt: now.Add(-time.Hour)}},
		Followers: func() []Follower {
			return []Follower{{ClientID: "api", Cursor: head, SyncedAt: now.Add(-3 * time.Second)},
				{ClientID: "late", Cursor: head - 1}}
		},
		Stats: rec,
		Redis: pinger{errors.New("connection refused")},
		Now:   func() time.Time { return now },
	}).Collect(ctx)
	if len(o.Errors) != 0 {
		t.Fatalf("Errors: %q", o.Errors)
	}
	if o.Users != 3 || o.LiveSessions != 1 { // one expired, one revoked
		t.Errorf("Users %d, LiveSessions %d; want 3, 1", o.Users, o.LiveSessions)
	}
	want := map[string][2]int{latch.EventLoginFailed: {2, 3}, latch.EventRefreshReused: {1, 1}}
	if len(o.Events) != len(want) || o.Events[0].Type != latch.EventLoginFailed {
		t.Fatalf("Events: %+v", o.Events)
	}
	for _, e := range o.Events {
		if w := want[e.Type]; e.LastHour != w[0] || e.LastDay != w[1] || len(e.PerMinute) != 60 || len(e.PerHour) != 24 {
			t.Errorf("%s: hour %d, day %d, %d and %d points; want %v, 60 and 24", e.Type, e.LastHour, e.LastDay, len(e.PerMinute), len(e.PerHour), w)
		}
		var sum float64
		for _, p := range e.PerMinute {
			sum += p.Value
		}
		if int(sum) != e.LastHour || !e.PerMinute[59].At.Equal(now.Truncate(time.Minute)) {
			t.Errorf("%s: per-minute points sum to %v, last at %v", e.Type, sum, e.PerMinute[59].At)
		}
	}
	if e := o.Events[0]; e.PerMinute[57].Value != 2 {
		t.Errorf("two sign-in failures two minutes ago: %v", e.PerMinute[57])
	}
	if o.Feed.Head != head || len(o.Feed.Followers) != 2 ||
		o.Feed.Followers[0].Behind != 0 || o.Feed.Followers[0].Age != 3*time.Second ||
		o.Feed.Followers[1].Behind != 1 || o.Feed.Followers[1].Age != 0 {
		t.Errorf("Feed: %+v", o.Feed)
	}
	if ids := []string{o.Keys[0].ID, o.Keys[1].ID, o.Keys[2].ID}; strings.Join(ids, ",") != "new,old,id" {
		t.Errorf("Keys in order %q; want by family, newest first", ids)
	}
	if len(o.Health) != 2 || !o.Health[0].OK || o.Health[1].OK || !o.Health[1].Configured || o.Health[1].Error != "connection refused" {
		t.Errorf("Health: %+v", o.Health)
	}
	var found bool
	for _, s := range o.Activity {
		if s.Name == `latch_logins_total{outcome="success"}` {
			found = s.Family == "latch_logins_total" && s.Labels == `outcome="success"` && s.LastHour == 4 && s.LastDay == 4 &&
				len(s.PerMinute) == 60 && len(s.PerQuarter) == 96
		}
	}
	if !found {
		t.Errorf("Activity lacks the sign-ins: %+v", o.Activity)
	}
}

// TestCollectStoreDown: with the store closed, Collect still returns,
// says what it could not read, and reports the store unhealthy; without
// Redis, Redis is reported as not configured.
func TestCollectStoreDown(t *testing.T) {
	st := open(t)
	st.Close()
	o := New(Source{Store: st, Now: func() time.Time { return now }, Followers: func() []Follower { return nil }}).Collect(t.Context())
	if len(o.Errors) != 4 {
		t.Errorf("Errors: %q; want users, live sessions, events and the feed", o.Errors)
	}
	if o.Health[0].OK || o.Health[0].Error == "" || o.Health[1].Configured {
		t.Errorf("Health: %+v", o.Health)
	}
}

// TestDayCached: the hours that are over (and settled) are counted once:
// an event added later to such an hour is not counted again, one added
// to the current hour is, and the day slides with the clock.
func TestDayCached(t *testing.T) {
	st := open(t)
	ctx := t.Context()
	at := now
	c := New(Source{Store: st, Now: func() time.Time { return at }})
	addEvent := func(when time.Time) {
		t.Helper()
		if err := st.AddEvent(ctx, &latch.Event{Type: latch.EventLoginFailed, At: when}); err != nil {
			t.Fatal(err)
		}
	}
	day := func() int {
		t.Helper()
		o := c.Collect(ctx)
		if len(o.Errors) > 0 {
			t.Fatal(o.Errors)
		}
		if len(o.Events) == 0 {
			return 0
		}
		var sum float64
		for _, p := range o.Events[0].PerHour {
			sum += p.Value
		}
		if int(sum) != o.Events[0].LastDay {
			t.Fatalf("per-hour points sum to %v, LastDay %d", sum, o.Events[0].LastDay)
		}
		return o.Events[0].LastDay
	}
	addEvent(now.Add(-5 * time.Hour))
	addEvent(now.Add(-30 * time.Minute))
	if n := day(); n != 2 {
		t.Fatalf("day = %d; want 2", n)
	}
	addEvent(now.Add(-5 * time.Hour)) // a final hour: cached
	addEvent(now.Add(-time.Minute))   // the current hour: counted
	if n := day(); n != 3 {
		t.Errorf("day after two more = %d; want 3 (the final hour cached)", n)
	}
	at = now.Add(20 * time.Hour) // the hour five hours before now leaves the day
	if n := day(); n != 2 {
		t.Errorf("20 hours later: day = %d; want 2", n)
	}
}
