package storetest

import (
	"testing"
	"time"

	"github.com/latchauth/latch"
)

func testPrune(t *testing.T, s latch.Store) {
	ctx := t.Context()
	now := base.Add(72 * time.Hour)
	mustUser(t, s, "alice")

	// Revocations: one expired, one live.
	for _, r := range []latch.Revocation{
		{Kind: latch.RevokeToken, Value: "gone", CreatedAt: base, ExpiresAt: now.Add(-time.Second)},
		{Kind: latch.RevokeToken, Value: "kept", CreatedAt: base, ExpiresAt: now.Add(time.Minute)},
	} {
		if _, err := s.AddRevocation(ctx, &r); err != nil {
			t.Fatalf("AddRevocation: %v", err)
		}
	}

	// Keys: k1 past NotAfter, k2 retired but still published, k3 active.
	k1, k2, k3 := key("k1", base), key("k2", base.Add(time.Hour)), key("k3", base.Add(2*time.Hour))
	k1.NotAfter = now.Add(-time.Second)
	k2.NotAfter = now.Add(time.Hour)
	for _, r := range []latch.KeyRotation{
		{New: k1},
		{New: k2, Previous: "k1", PreviousNotAfter: k1.NotAfter},
		{New: k3, Previous: "k2", PreviousNotAfter: k2.NotAfter},
	} {
		if err := s.RotateKeys(ctx, r); err != nil {
			t.Fatalf("RotateKeys: %v", err)
		}
	}

	// Sessions: one expired (with two tokens), one live, one revoked but
	// not expired.
	expired := newSession("expired", "alice", base)
	expired.ExpiresAt = now.Add(-time.Second)
	live := newSession("live", "alice", base.Add(time.Hour))
	live.ExpiresAt = now.Add(time.Hour)
	revoked := newSession("revoked", "alice", base.Add(2*time.Hour))
	revoked.ExpiresAt = now.Add(time.Hour)
	for _, sess := range []*latch.Session{expired, live, revoked} {
		mustSession(t, s, sess)
	}
	if err := s.Rotate(ctx, rotation("expired", 1, base.Add(time.Minute))); err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	if _, err := s.RevokeSession(ctx, "revoked", "logout", now.Add(-2*time.Hour), latch.Cover{Until: now.Add(-time.Hour)}); err != nil {
		t.Fatalf("RevokeSession: %v", err)
	}

	// Events: one older than the window, one inside it.
	for _, e := range []latch.Event{
		{Type: latch.EventLoginSucceeded, At: now.Add(-25 * time.Hour), UserID: "alice"},
		{Type: latch.EventLoginSucceeded, At: now.Add(-23 * time.Hour), UserID: "alice"},
	} {
		if err := s.AddEvent(ctx, &e); err != nil {
			t.Fatalf("AddEvent: %v", err)
		}
	}

	if err := s.Prune(ctx, now, 24*time.Hour); err != nil {
		t.Fatalf("Prune: %v", err)
	}

	feed := mustRevocations(t, s, 0, base)
	if len(feed) != 1 || feed[0].Value != "kept" {
		t.Errorf("feed after Prune = %+v, want only %q", feed, "kept")
	}

	keys := mustKeys(t, s)
	if len(keys) != 2 {
		t.Fatalf("Prune left %d keys, want 2 (k2, k3)", len(keys))
	}
	checkEqual(t, "Keys[0] after Prune", keys[0], k2)
	checkEqual(t, "Keys[1] after Prune", keys[1], k3)

	_, err := s.Session(ctx, "expired")
	wantErr(t, "Session(expired) after Prune", err, latch.ErrNotFound)
	for _, h := range [][]byte{hash("expired/1"), hash("expired/2")} {
		_, err := s.RefreshToken(ctx, h)
		wantErr(t, "RefreshToken of an expired session after Prune", err, latch.ErrNotFound)
	}
	checkEqual(t, "live session after Prune", mustGetSession(t, s, "live"), live)
	if _, err := s.RefreshToken(ctx, hash("live/1")); err != nil {
		t.Errorf("RefreshToken of a live session after Prune: %v", err)
	}
	if sess := mustGetSession(t, s, "revoked"); !sess.Revoked() {
		t.Error("revoked session lost its revocation")
	}
	if _, err := s.RefreshToken(ctx, hash("revoked/1")); err != nil {
		t.Errorf("RefreshToken of a revoked, unexpired session after Prune: %v", err)
	}

	events, err := s.EventsByUser(ctx, "alice", 10)
	if err != nil {
		t.Fatalf("EventsByUser: %v", err)
	}
	if len(events) != 1 || !events[0].At.Equal(now.Add(-23*time.Hour)) {
		t.Errorf("events after Prune = %+v, want only the one at %v", events, now.Add(-23*time.Hour))
	}

	if _, err := s.UserByID(ctx, "alice"); err != nil {
		t.Errorf("Prune removed a user: %v", err)
	}
}
