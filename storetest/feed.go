package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/latchauth/latch"
)

func testRevocations(t *testing.T, s latch.Store) {
	ctx := t.Context()
	now := base.Add(time.Hour)
	entries := []latch.Revocation{
		{Kind: latch.RevokeToken, Value: "jti-1", CreatedAt: base, ExpiresAt: now.Add(5 * time.Minute)},
		{Kind: latch.RevokeSession, Value: "sid-1", CreatedAt: base, ExpiresAt: now.Add(-time.Minute)}, // expired at now
		{Kind: latch.RevokeUser, Value: "alice", Cutoff: base, CreatedAt: base, ExpiresAt: now.Add(5 * time.Minute)},
		{Kind: latch.RevokeToken, Value: "jti-2", CreatedAt: base, ExpiresAt: now}, // expires at now
		{Kind: latch.RevokeSession, Value: "sid-2", CreatedAt: base, ExpiresAt: now.Add(10 * time.Minute)},
		{Kind: latch.RevokeToken, Value: "jti-3", CreatedAt: base, ExpiresAt: now.Add(time.Minute)},
	}
	var last int64
	for i := range entries {
		seq, err := s.AddRevocation(ctx, &entries[i])
		if err != nil {
			t.Fatalf("AddRevocation: %v", err)
		}
		if seq <= last {
			t.Fatalf("AddRevocation returned Seq %d after %d, want increasing", seq, last)
		}
		entries[i].Seq = seq
		last = seq
	}
	live := []latch.Revocation{entries[0], entries[2], entries[4], entries[5]}

	got := mustRevocations(t, s, 0, now)
	if len(got) != len(live) {
		t.Fatalf("RevocationsAfter(0) returned %d entries, want %d (the unexpired ones): %+v", len(got), len(live), got)
	}
	for i := range live {
		checkEqual(t, fmt.Sprintf("RevocationsAfter(0)[%d]", i), got[i], live[i])
	}

	// Before anything expired, every entry is in the feed.
	if got := mustRevocations(t, s, 0, base); len(got) != len(entries) {
		t.Errorf("RevocationsAfter(0) at base returned %d entries, want %d", len(got), len(entries))
	}

	// Paging with a cursor and a limit.
	var paged []int64
	cursor := int64(0)
	for range 10 {
		page, err := s.RevocationsAfter(ctx, cursor, now, 2)
		if err != nil {
			t.Fatalf("RevocationsAfter(%d, limit 2): %v", cursor, err)
		}
		if len(page) > 2 {
			t.Fatalf("RevocationsAfter(limit 2) returned %d entries", len(page))
		}
		if len(page) == 0 {
			break
		}
		for _, r := range page {
			paged = append(paged, r.Seq)
		}
		cursor = page[len(page)-1].Seq
	}
	want := []int64{live[0].Seq, live[1].Seq, live[2].Seq, live[3].Seq}
	if !slices.Equal(paged, want) {
		t.Errorf("paging through the feed gave seqs %v, want %v", paged, want)
	}
	got = mustRevocations(t, s, entries[2].Seq, now)
	if len(got) != 2 || got[0].Seq != entries[4].Seq || got[1].Seq != entries[5].Seq {
		t.Errorf("RevocationsAfter(%d) = %+v, want entries %d and %d", entries[2].Seq, got, entries[4].Seq, entries[5].Seq)
	}
	if got := mustRevocations(t, s, last, base); len(got) != 0 {
		t.Errorf("RevocationsAfter(last) returned %d entries, want none", len(got))
	}

	// Seq keeps increasing after the newest entries were pruned.
	if err := s.Prune(ctx, now.Add(time.Hour), 24*time.Hour); err != nil {
		t.Fatalf("Prune: %v", err)
	}
	if got := mustRevocations(t, s, 0, base); len(got) != 0 {
		t.Fatalf("Prune left %d expired entries", len(got))
	}
	r := latch.Revocation{Kind: latch.RevokeToken, Value: "jti-4", CreatedAt: now, ExpiresAt: now.Add(2 * time.Hour)}
	seq, err := s.AddRevocation(ctx, &r)
	if err != nil {
		t.Fatalf("AddRevocation after Prune: %v", err)
	}
	if seq <= last {
		t.Errorf("Seq after pruning the feed = %d, want > %d (never reused)", seq, last)
	}
}

func testEvents(t *testing.T, s latch.Store) {
	ctx := t.Context()
	events := []latch.Event{
		{Type: latch.EventLoginSucceeded, At: base, UserID: "alice", SessionID: "s1", ClientID: "web",
			IP: "192.0.2.7", UserAgent: "Firefox"},
		{Type: latch.EventLoginFailed, At: base.Add(time.Minute), UserID: "bob", IP: "198.51.100.1"},
		{Type: latch.EventRefreshReused, At: base.Add(2 * time.Minute), UserID: "alice", SessionID: "s1",
			ClientID: "web", IP: "203.0.113.9", UserAgent: "curl/8.0",
			Detail: map[string]string{"other_ip": "192.0.2.7", "other_user_agent": "Firefox", "note": `quotes " and ünïcode`}},
		{Type: latch.EventSessionRevoked, At: base.Add(3 * time.Minute), UserID: "alice", SessionID: "s1"},
	}
	ids := map[int64]bool{}
	for i := range events {
		if err := s.AddEvent(ctx, &events[i]); err != nil {
			t.Fatalf("AddEvent: %v", err)
		}
		if events[i].ID == 0 || ids[events[i].ID] {
			t.Errorf("AddEvent set ID %d, want a new non-zero ID", events[i].ID)
		}
		ids[events[i].ID] = true
	}

	got, err := s.EventsByUser(ctx, "alice", 10)
	if err != nil {
		t.Fatalf("EventsByUser: %v", err)
	}
	want := []latch.Event{events[3], events[2], events[0]}
	if len(got) != len(want) {
		t.Fatalf("EventsByUser returned %d events, want %d", len(got), len(want))
	}
	for i := range want {
		checkEqual(t, fmt.Sprintf("EventsByUser[%d]", i), got[i], want[i])
	}

	got, err = s.EventsByUser(ctx, "alice", 2)
	if err != nil {
		t.Fatalf("EventsByUser(limit 2): %v", err)
	}
	if len(got) != 2 || got[0].ID != events[3].ID || got[1].ID != events[2].ID {
		t.Errorf("EventsByUser(limit 2) = %+v, want the two newest", got)
	}
	if got, err := s.EventsByUser(ctx, "carol", 10); err != nil || len(got) != 0 {
		t.Errorf("EventsByUser(no events) = %d events, %v; want none", len(got), err)
	}
	// Events: the log in pages by ID, filtered by type and time.
	ids = map[int64]bool{}
	for _, tc := range []struct {
		name string
		q    latch.EventQuery
		want []latch.Event
	}{
		{"all", latch.EventQuery{Limit: 10}, events},
		{"page", latch.EventQuery{Limit: 2}, events[:2]},
		{"next page", latch.EventQuery{AfterID: events[1].ID, Limit: 2}, events[2:]},
		{"types", latch.EventQuery{Types: []string{latch.EventRefreshReused, latch.EventLoginFailed}, Limit: 10}, []latch.Event{events[1], events[2]}},
		{"one type", latch.EventQuery{Types: []string{latch.EventSessionRevoked}, Limit: 10}, events[3:]},
		{"since", latch.EventQuery{Since: base.Add(2 * time.Minute), Limit: 10}, events[2:]},
		{"since and type", latch.EventQuery{Since: base.Add(time.Minute + time.Second), Types: []string{latch.EventLoginFailed, latch.EventSessionRevoked}, Limit: 10}, events[3:]},
		{"no such type", latch.EventQuery{Types: []string{"nothing"}, Limit: 10}, nil},
		{"no limit", latch.EventQuery{}, nil},
	} {
		got, err := s.Events(ctx, tc.q)
		if err != nil {
			t.Fatalf("Events(%s): %v", tc.name, err)
		}
		if len(got) != len(tc.want) {
			t.Errorf("Events(%s) returned %d events, want %d", tc.name, len(got), len(tc.want))
			continue
		}
		for i := range tc.want {
			checkEqual(t, fmt.Sprintf("Events(%s)[%d]", tc.name, i), got[i], tc.want[i])
		}
	}
}

// testRevocationHead: the head is the highest seq ever assigned, and
// pruning every entry does not lower it.
func testRevocationHead(t *testing.T, s latch.Store) {
	ctx := t.Context()
	head := func() int64 {
		t.Helper()
		h, err := s.RevocationHead(ctx)
		if err != nil {
			t.Fatalf("RevocationHead: %v", err)
		}
		return h
	}
	if h := head(); h != 0 {
		t.Fatalf("RevocationHead of an empty feed = %d, want 0", h)
	}
	var last int64
	for i := range 3 {
		r := &latch.Revocation{Kind: latch.RevokeToken, Value: fmt.Sprintf("jti-%d", i), CreatedAt: base, ExpiresAt: base.Add(time.Minute)}
		seq, err := s.AddRevocation(ctx, r)
		if err != nil {
			t.Fatalf("AddRevocation: %v", err)
		}
		last = seq
	}
	if h := head(); h != last {
		t.Fatalf("RevocationHead = %d, want %d (the last seq)", h, last)
	}
	if err := s.Prune(ctx, base.Add(time.Hour), time.Hour); err != nil {
		t.Fatalf("Prune: %v", err)
	}
	if got := mustRevocations(t, s, 0, base); len(got) != 0 {
		t.Fatalf("feed after Prune = %+v, want empty", got)
	}
	if h := head(); h != last {
		t.Fatalf("RevocationHead after pruning every entry = %d, want %d", h, last)
	}
}
