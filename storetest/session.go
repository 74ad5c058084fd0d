package storetest

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/latchauth/latch"
)

// rotation returns the rotation of session id from generation from, with
// the token "<id>/<from+1>".
func rotation(id string, from int64, at time.Time) latch.Rotation {
	next := fmt.Sprintf("%s/%d", id, from+1)
	return latch.Rotation{
		SessionID:      id,
		FromGeneration: from,
		NewHash:        hash(next),
		Successor:      []byte("sealed:" + next),
		At:             at,
		RotatedBy:      []byte("device:" + next),
		// The access token issued with it lives 5 minutes.
		AccessExpiresAt: at.Add(5 * time.Minute),
	}
}

func testSessions(t *testing.T, s latch.Store) {
	ctx := t.Context()
	mustUser(t, s, "alice")
	sess := newSession("s1", "alice", base)
	mustSession(t, s, sess)

	checkEqual(t, "Session", mustGetSession(t, s, "s1"), sess)
	if sess.Revoked() {
		t.Error("new session is revoked")
	}

	rt, err := s.RefreshToken(ctx, hash("s1/1"))
	if err != nil {
		t.Fatalf("RefreshToken: %v", err)
	}
	checkEqual(t, "RefreshToken", rt, &latch.RefreshToken{
		Hash: hash("s1/1"), SessionID: "s1", Generation: 1, CreatedAt: base,
	})

	_, err = s.Session(ctx, "nope")
	wantErr(t, "Session(unknown)", err, latch.ErrNotFound)
	_, err = s.RefreshToken(ctx, hash("nope"))
	wantErr(t, "RefreshToken(unknown)", err, latch.ErrNotFound)

	dup := newSession("s1", "alice", base)
	err = s.CreateSession(ctx, dup, hash("other"))
	wantErr(t, "CreateSession(duplicate id)", err, latch.ErrConflict)
	if _, err := s.RefreshToken(ctx, hash("other")); !errors.Is(err, latch.ErrNotFound) {
		t.Errorf("token of a rejected session was stored: RefreshToken error %v", err)
	}
}

func testRotate(t *testing.T, s latch.Store) {
	ctx := t.Context()
	mustUser(t, s, "alice")
	sess := newSession("s1", "alice", base)
	mustSession(t, s, sess)
	mustSession(t, s, newSession("s2", "alice", base))

	want := *sess
	for gen := int64(1); gen <= 3; gen++ {
		r := rotation("s1", gen, base.Add(time.Duration(gen)*time.Minute))
		if err := s.Rotate(ctx, r); err != nil {
			t.Fatalf("Rotate from %d: %v", gen, err)
		}
		want.Generation = gen + 1
		want.Successor = r.Successor
		want.RotatedAt = r.At
		want.LastUsedAt = r.At
		want.RotatedBy = r.RotatedBy
		want.AccessExpiresAt = r.AccessExpiresAt
		checkEqual(t, fmt.Sprintf("Session after rotation from %d", gen), mustGetSession(t, s, "s1"), &want)

		rt, err := s.RefreshToken(ctx, r.NewHash)
		if err != nil {
			t.Fatalf("RefreshToken(new) after rotation from %d: %v", gen, err)
		}
		checkEqual(t, "new RefreshToken", rt, &latch.RefreshToken{
			Hash: r.NewHash, SessionID: "s1", Generation: gen + 1, CreatedAt: r.At,
		})
	}
	// Every older token is still known, with its own generation.
	for gen := int64(1); gen <= 4; gen++ {
		rt, err := s.RefreshToken(ctx, hash(fmt.Sprintf("s1/%d", gen)))
		if err != nil {
			t.Fatalf("RefreshToken of generation %d: %v", gen, err)
		}
		if rt.SessionID != "s1" || rt.Generation != gen {
			t.Errorf("RefreshToken of generation %d = session %s generation %d", gen, rt.SessionID, rt.Generation)
		}
	}
	// The other session did not move.
	checkEqual(t, "other session", mustGetSession(t, s, "s2"), newSession("s2", "alice", base))

	err := s.Rotate(ctx, rotation("nope", 1, base))
	if !errors.Is(err, latch.ErrNotFound) && !errors.Is(err, latch.ErrConflict) {
		t.Errorf("Rotate(unknown session): error %v, want ErrNotFound or ErrConflict", err)
	}
}

func testRotateStale(t *testing.T, s latch.Store) {
	ctx := t.Context()
	mustUser(t, s, "alice")
	mustSession(t, s, newSession("s1", "alice", base))
	if err := s.Rotate(ctx, rotation("s1", 1, base.Add(time.Minute))); err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	before := mustGetSession(t, s, "s1")

	for _, from := range []int64{1, 3, 0} {
		r := rotation("s1", from, base.Add(time.Hour))
		r.NewHash = hash(fmt.Sprintf("stale from %d", from))
		wantErr(t, fmt.Sprintf("Rotate from %d at generation 2", from), s.Rotate(ctx, r), latch.ErrConflict)
		if _, err := s.RefreshToken(ctx, r.NewHash); !errors.Is(err, latch.ErrNotFound) {
			t.Errorf("token of a rejected rotation from %d was stored: RefreshToken error %v", from, err)
		}
	}
	checkEqual(t, "Session after rejected rotations", mustGetSession(t, s, "s1"), before)
}

func testRotateRevoked(t *testing.T, s latch.Store) {
	ctx := t.Context()
	mustUser(t, s, "alice")
	mustSession(t, s, newSession("s1", "alice", base))
	if _, err := s.RevokeSession(ctx, "s1", "logout", base.Add(time.Minute), latch.Cover{Until: base.Add(6 * time.Minute)}); err != nil {
		t.Fatalf("RevokeSession: %v", err)
	}
	before := mustGetSession(t, s, "s1")

	r := rotation("s1", 1, base.Add(2*time.Minute))
	wantErr(t, "Rotate of a revoked session", s.Rotate(ctx, r), latch.ErrConflict)
	if _, err := s.RefreshToken(ctx, r.NewHash); !errors.Is(err, latch.ErrNotFound) {
		t.Errorf("token of a rejected rotation was stored: RefreshToken error %v", err)
	}
	checkEqual(t, "Session after rejected rotation", mustGetSession(t, s, "s1"), before)
}

// testRotateConcurrent races many rotations from the same generation: one
// must win, the others must conflict, and only the winner's token may exist.
func testRotateConcurrent(t *testing.T, s latch.Store) {
	const n = 50
	ctx := t.Context()
	mustUser(t, s, "alice")
	mustSession(t, s, newSession("s1", "alice", base))

	errs := make([]error, n)
	start := make(chan struct{})
	done := make(chan struct{})
	for i := range n {
		go func() {
			defer func() { done <- struct{}{} }()
			r := rotation("s1", 1, base.Add(time.Duration(i+1)*time.Second))
			r.NewHash = hash(fmt.Sprintf("racer %d", i))
			<-start
			errs[i] = s.Rotate(ctx, r)
		}()
	}
	close(start)
	for range n {
		<-done
	}

	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("rotations %d and %d both succeeded", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, latch.ErrConflict):
			t.Errorf("rotation %d: error %v, want nil or ErrConflict", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no rotation succeeded")
	}
	sess := mustGetSession(t, s, "s1")
	if sess.Generation != 2 {
		t.Errorf("Generation = %d, want 2", sess.Generation)
	}
	if want := base.Add(time.Duration(winner+1) * time.Second); !sess.RotatedAt.Equal(want) {
		t.Errorf("RotatedAt = %v, want the winner's %v", sess.RotatedAt, want)
	}
	for i := range n {
		rt, err := s.RefreshToken(ctx, hash(fmt.Sprintf("racer %d", i)))
		switch {
		case i == winner && err != nil:
			t.Errorf("winner's token: %v", err)
		case i == winner && rt.Generation != 2:
			t.Errorf("winner's token has generation %d, want 2", rt.Generation)
		case i != winner && !errors.Is(err, latch.ErrNotFound):
			t.Errorf("loser %d's token: error %v, want ErrNotFound", i, err)
		}
	}
}

// testRotateChainConcurrent has several clients rotate one session over and
// over from whatever generation they last saw; every success must advance
// the generation by exactly one.
func testRotateChainConcurrent(t *testing.T, s latch.Store) {
	const clients, attempts = 4, 10
	ctx := t.Context()
	mustUser(t, s, "alice")
	mustSession(t, s, newSession("s1", "alice", base))

	wins := make([][]int64, clients) // generations each client rotated to
	errc := make(chan error, clients)
	for c := range clients {
		go func() {
			for a := range attempts {
				sess, err := s.Session(ctx, "s1")
				if err != nil {
					errc <- err
					return
				}
				r := rotation("s1", sess.Generation, base.Add(time.Duration(a)*time.Second))
				r.NewHash = hash(fmt.Sprintf("client %d attempt %d", c, a))
				switch err := s.Rotate(ctx, r); {
				case err == nil:
					wins[c] = append(wins[c], sess.Generation+1)
				case !errors.Is(err, latch.ErrConflict):
					errc <- fmt.Errorf("client %d attempt %d: %w", c, a, err)
					return
				}
			}
			errc <- nil
		}()
	}
	for range clients {
		if err := <-errc; err != nil {
			t.Error(err)
		}
	}

	var gens []int64
	for _, w := range wins {
		gens = append(gens, w...)
	}
	slices.Sort(gens)
	for i, g := range gens {
		if g != int64(i+2) {
			t.Fatalf("generations rotated to = %v, want 2, 3, ... each once", gens)
		}
	}
	if len(gens) == 0 {
		t.Fatal("no rotation succeeded")
	}
	sess := mustGetSession(t, s, "s1")
	if want := int64(len(gens) + 1); sess.Generation != want {
		t.Errorf("Generation = %d after %d rotations, want %d", sess.Generation, len(gens), want)
	}
	for c := range clients {
		for a := range attempts {
			rt, err := s.RefreshToken(ctx, hash(fmt.Sprintf("client %d attempt %d", c, a)))
			if errors.Is(err, latch.ErrNotFound) {
				continue
			}
			if err != nil {
				t.Fatalf("RefreshToken: %v", err)
			}
			if !slices.Contains(wins[c], rt.Generation) {
				t.Errorf("client %d attempt %d: token of generation %d stored for a rotation that was not reported as won",
					c, a, rt.Generation)
			}
		}
	}
}

func testClearSuccessors(t *testing.T, s latch.Store) {
	ctx := t.Context()
	mustUser(t, s, "alice")
	mustSession(t, s, newSession("early", "alice", base))
	mustSession(t, s, newSession("late", "alice", base))
	mustSession(t, s, newSession("never", "alice", base))
	if err := s.Rotate(ctx, rotation("early", 1, base.Add(time.Minute))); err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	if err := s.Rotate(ctx, rotation("late", 1, base.Add(time.Hour))); err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	early, late, never := mustGetSession(t, s, "early"), mustGetSession(t, s, "late"), mustGetSession(t, s, "never")
	if len(early.Successor) == 0 || len(late.Successor) == 0 {
		t.Fatal("Successor is empty after Rotate")
	}
	n, err := s.ClearSuccessors(ctx, base.Add(30*time.Minute))
	if err != nil {
		t.Fatalf("ClearSuccessors: %v", err)
	}
	if n != 1 {
		t.Errorf("ClearSuccessors cleared %d sessions, want 1", n)
	}
	early.Successor = nil
	checkEqual(t, "rotated before the cutoff", mustGetSession(t, s, "early"), early)
	checkEqual(t, "rotated after the cutoff", mustGetSession(t, s, "late"), late)
	checkEqual(t, "never rotated", mustGetSession(t, s, "never"), never)
	if n, err := s.ClearSuccessors(ctx, base.Add(30*time.Minute)); err != nil || n != 0 {
		t.Errorf("second ClearSuccessors = %d, %v; want 0, nil", n, err)
	}
}

func testSessionsByUser(t *testing.T, s latch.Store) {
	ctx := t.Context()
	mustUser(t, s, "alice")
	mustUser(t, s, "bob")
	now := base.Add(48 * time.Hour)

	old := newSession("old", "alice", base.Add(time.Hour))
	old.ExpiresAt = now.Add(time.Hour)
	recent := newSession("recent", "alice", base.Add(2*time.Hour))
	recent.ExpiresAt = now.Add(time.Hour)
	revoked := newSession("revoked", "alice", base.Add(3*time.Hour))
	revoked.ExpiresAt = now.Add(time.Hour)
	expired := newSession("expired", "alice", base.Add(4*time.Hour))
	expired.ExpiresAt = now.Add(-time.Second)
	bobs := newSession("bobs", "bob", base.Add(5*time.Hour))
	bobs.ExpiresAt = now.Add(time.Hour)
	for _, sess := range []*latch.Session{recent, old, revoked, expired, bobs} {
		mustSession(t, s, sess)
	}
	if _, err := s.RevokeSession(ctx, "revoked", "logout", base.Add(5*time.Hour), latch.Cover{Until: base.Add(6 * time.Hour)}); err != nil {
		t.Fatalf("RevokeSession: %v", err)
	}

	list, err := s.SessionsByUser(ctx, "alice", now)
	if err != nil {
		t.Fatalf("SessionsByUser: %v", err)
	}
	var ids []string
	for _, sess := range list {
		ids = append(ids, sess.ID)
	}
	if want := []string{"recent", "old"}; !slices.Equal(ids, want) {
		t.Fatalf("SessionsByUser = %v, want %v", ids, want)
	}
	checkEqual(t, "SessionsByUser[0]", list[0], recent)
	checkEqual(t, "SessionsByUser[1]", list[1], old)

	// Before "expired" expired it was live.
	list, err = s.SessionsByUser(ctx, "alice", expired.ExpiresAt.Add(-time.Minute))
	if err != nil {
		t.Fatalf("SessionsByUser: %v", err)
	}
	if len(list) != 3 || list[0].ID != "expired" {
		t.Errorf("SessionsByUser before expiry returned %d sessions, want 3 with %q first", len(list), "expired")
	}

	list, err = s.SessionsByUser(ctx, "carol", now)
	if err != nil || len(list) != 0 {
		t.Errorf("SessionsByUser(no sessions) = %d sessions, %v; want none", len(list), err)
	}
}

func testRevokeSession(t *testing.T, s latch.Store) {
	ctx := t.Context()
	mustUser(t, s, "alice")
	mustSession(t, s, newSession("s1", "alice", base))
	mustSession(t, s, newSession("s2", "alice", base))
	at, exp := base.Add(time.Hour), base.Add(time.Hour+5*time.Minute)

	ok, err := s.RevokeSession(ctx, "s1", "logout", at, latch.Cover{Until: exp})
	if err != nil || !ok {
		t.Fatalf("RevokeSession = %t, %v; want true, nil", ok, err)
	}
	sess := mustGetSession(t, s, "s1")
	if !sess.Revoked() || !sess.RevokedAt.Equal(at) || sess.RevokeReason != "logout" {
		t.Errorf("revoked session has RevokedAt %v, RevokeReason %q; want %v, %q", sess.RevokedAt, sess.RevokeReason, at, "logout")
	}
	if other := mustGetSession(t, s, "s2"); other.Revoked() {
		t.Error("RevokeSession revoked another session")
	}

	feed := mustRevocations(t, s, 0, at)
	if len(feed) != 1 {
		t.Fatalf("feed has %d entries after RevokeSession, want 1: %+v", len(feed), feed)
	}
	want := latch.Revocation{Seq: feed[0].Seq, Kind: latch.RevokeSession, Value: "s1", CreatedAt: at, ExpiresAt: exp}
	checkEqual(t, "feed entry", feed[0], want)
	if feed[0].Seq <= 0 {
		t.Errorf("Seq = %d, want > 0", feed[0].Seq)
	}

	ok, err = s.RevokeSession(ctx, "s1", "again", at.Add(time.Minute), latch.Cover{Until: exp.Add(time.Minute)})
	if err != nil || ok {
		t.Fatalf("second RevokeSession = %t, %v; want false, nil", ok, err)
	}
	if got := mustRevocations(t, s, 0, at); len(got) != 1 {
		t.Errorf("feed has %d entries after a second RevokeSession, want 1", len(got))
	}
	checkEqual(t, "session after a second RevokeSession", mustGetSession(t, s, "s1"), sess)
}

func testRevokeUser(t *testing.T, s latch.Store) {
	ctx := t.Context()
	mustUser(t, s, "alice")
	mustUser(t, s, "bob")
	mustUser(t, s, "carol")
	for _, sess := range []*latch.Session{
		newSession("a1", "alice", base),
		newSession("a2", "alice", base.Add(time.Minute)),
		newSession("a3", "alice", base.Add(2*time.Minute)),
		newSession("b1", "bob", base),
	} {
		mustSession(t, s, sess)
	}
	early := base.Add(10 * time.Minute)
	if _, err := s.RevokeSession(ctx, "a3", "logout", early, latch.Cover{Until: early.Add(5 * time.Minute)}); err != nil {
		t.Fatalf("RevokeSession: %v", err)
	}
	cursor := mustRevocations(t, s, 0, early)[0].Seq

	at, exp := base.Add(time.Hour), base.Add(time.Hour+5*time.Minute)
	ids, err := s.RevokeUser(ctx, "alice", "password_changed", at, latch.Cover{Until: exp}, "")
	if err != nil {
		t.Fatalf("RevokeUser: %v", err)
	}
	slices.Sort(ids)
	if want := []string{"a1", "a2"}; !slices.Equal(ids, want) {
		t.Errorf("RevokeUser = %v, want %v", ids, want)
	}
	for _, id := range []string{"a1", "a2"} {
		sess := mustGetSession(t, s, id)
		if !sess.RevokedAt.Equal(at) || sess.RevokeReason != "password_changed" {
			t.Errorf("%s: RevokedAt %v, RevokeReason %q; want %v, %q", id, sess.RevokedAt, sess.RevokeReason, at, "password_changed")
		}
	}
	if sess := mustGetSession(t, s, "a3"); !sess.RevokedAt.Equal(early) || sess.RevokeReason != "logout" {
		t.Errorf("a3, revoked before: RevokedAt %v, RevokeReason %q; want %v, %q", sess.RevokedAt, sess.RevokeReason, early, "logout")
	}
	if mustGetSession(t, s, "b1").Revoked() {
		t.Error("RevokeUser revoked another user's session")
	}
	if list, err := s.SessionsByUser(ctx, "alice", at); err != nil || len(list) != 0 {
		t.Errorf("SessionsByUser after RevokeUser = %d sessions, %v; want none", len(list), err)
	}

	feed := mustRevocations(t, s, cursor, at)
	var got []latch.Revocation
	for _, r := range feed {
		r.Seq = 0
		got = append(got, r)
	}
	slices.SortFunc(got, func(a, b latch.Revocation) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Value, b.Value))
	})
	want := []latch.Revocation{
		{Kind: latch.RevokeSession, Value: "a1", CreatedAt: at, ExpiresAt: exp},
		{Kind: latch.RevokeSession, Value: "a2", CreatedAt: at, ExpiresAt: exp},
		{Kind: latch.RevokeUser, Value: "alice", Cutoff: at, CreatedAt: at, ExpiresAt: exp},
	}
	if len(got) != len(want) {
		t.Fatalf("RevokeUser appended %d entries, want %d: %+v", len(got), len(want), feed)
	}
	for i := range want {
		checkEqual(t, fmt.Sprintf("appended entry %d", i), got[i], want[i])
	}

	// A user without live sessions still gets the cutoff entry.
	cursor = feed[len(feed)-1].Seq
	ids, err = s.RevokeUser(ctx, "carol", "admin", at, latch.Cover{Until: exp}, "")
	if err != nil || len(ids) != 0 {
		t.Fatalf("RevokeUser(no sessions) = %v, %v; want none, nil", ids, err)
	}
	feed = mustRevocations(t, s, cursor, at)
	if len(feed) != 1 {
		t.Fatalf("RevokeUser(no sessions) appended %d entries, want 1", len(feed))
	}
	checkEqual(t, "cutoff entry", feed[0],
		latch.Revocation{Seq: feed[0].Seq, Kind: latch.RevokeUser, Value: "carol", Cutoff: at, CreatedAt: at, ExpiresAt: exp})
}

// testRevokeCoversLongerTokens: a revocation entry lives until the latest
// access token issued from the sessions it covers has expired (plus the
// margin), even when that is later than the caller's Until — a token
// issued under a longer lifetime than today's configuration.
func testRevokeCoversLongerTokens(t *testing.T, s latch.Store) {
	ctx := t.Context()
	mustUser(t, s, "alice")
	mustUser(t, s, "bob")
	long := newSession("long", "alice", base)
	long.AccessExpiresAt = base.Add(12 * time.Hour) // signed in under a 12h lifetime
	mustSession(t, s, long)
	short := newSession("short", "alice", base)
	short.AccessExpiresAt = base.Add(time.Minute)
	mustSession(t, s, short)

	// A rotation with a shorter token never lowers the recorded expiry.
	r := rotation("long", 1, base.Add(time.Minute))
	if err := s.Rotate(ctx, r); err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	if got := mustGetSession(t, s, "long").AccessExpiresAt; !got.Equal(long.AccessExpiresAt) {
		t.Errorf("AccessExpiresAt after a rotation with a shorter token = %v, want %v kept", got, long.AccessExpiresAt)
	}

	at := base.Add(2 * time.Minute)
	cover := latch.Cover{Until: at.Add(15 * time.Second), Margin: 6 * time.Second}
	cursor := int64(0)
	for _, tc := range []struct {
		id   string
		want time.Time
	}{
		{"long", long.AccessExpiresAt.Add(6 * time.Second)},
		{"short", cover.Until}, // its token expired before Until
	} {
		if ok, err := s.RevokeSession(ctx, tc.id, "logout", at, cover); err != nil || !ok {
			t.Fatalf("RevokeSession(%s) = %t, %v", tc.id, ok, err)
		}
		feed := mustRevocations(t, s, cursor, at)
		if len(feed) != 1 {
			t.Fatalf("RevokeSession(%s) appended %d entries, want 1", tc.id, len(feed))
		}
		if !feed[0].ExpiresAt.Equal(tc.want) {
			t.Errorf("entry for %s expires at %v, want %v", tc.id, feed[0].ExpiresAt, tc.want)
		}
		cursor = feed[0].Seq
	}

	// RevokeUser: the cutoff covers the tokens of every stored session of
	// the user — revoked and expired ones too — and each session entry its
	// own.
	old := newSession("b-revoked", "bob", base)
	old.AccessExpiresAt = base.Add(20 * time.Hour)
	gone := newSession("b-expired", "bob", base)
	gone.ExpiresAt = base.Add(30 * time.Minute)
	gone.AccessExpiresAt = base.Add(30 * time.Minute)
	live := newSession("b-live", "bob", base)
	live.AccessExpiresAt = base.Add(3 * time.Hour)
	other := newSession("b-short", "bob", base)
	for _, sess := range []*latch.Session{old, gone, live, other} {
		mustSession(t, s, sess)
	}
	if _, err := s.RevokeSession(ctx, "b-revoked", "logout", base.Add(time.Minute), latch.Cover{Until: base.Add(2 * time.Minute)}); err != nil {
		t.Fatalf("RevokeSession: %v", err)
	}
	cursor = mustRevocations(t, s, cursor, base)[0].Seq
	at = base.Add(time.Hour)
	cover = latch.Cover{Until: at.Add(15 * time.Second), Margin: 6 * time.Second}
	ids, err := s.RevokeUser(ctx, "bob", "logout_all", at, cover, "")
	if err != nil {
		t.Fatalf("RevokeUser: %v", err)
	}
	slices.Sort(ids)
	if want := []string{"b-live", "b-short"}; !slices.Equal(ids, want) {
		t.Errorf("RevokeUser = %v, want %v", ids, want)
	}
	want := map[string]time.Time{
		"user:bob":    old.AccessExpiresAt.Add(6 * time.Second),
		"sid:b-live":  live.AccessExpiresAt.Add(6 * time.Second),
		"sid:b-short": cover.Until,
	}
	feed := mustRevocations(t, s, cursor, at)
	if len(feed) != len(want) {
		t.Fatalf("RevokeUser appended %d entries, want %d: %+v", len(feed), len(want), feed)
	}
	for _, e := range feed {
		k := string(e.Kind) + ":" + e.Value
		if w, ok := want[k]; !ok || !e.ExpiresAt.Equal(w) {
			t.Errorf("entry %s expires at %v, want %v", k, e.ExpiresAt, w)
		}
	}
}

// testReplayGrace: ReplayGrace counts replays up to the limit, only at the
// session's generation and while it is live, raises AccessExpiresAt, and
// Rotate resets the count.
func testReplayGrace(t *testing.T, s latch.Store) {
	ctx := t.Context()
	mustUser(t, s, "alice")
	mustSession(t, s, newSession("s1", "alice", base))
	r := rotation("s1", 1, base.Add(time.Minute))
	if err := s.Rotate(ctx, r); err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	replay := func(counted bool, limit int, exp time.Time) (int, error) {
		return s.ReplayGrace(ctx, latch.GraceReplay{SessionID: "s1", Generation: 2, Counted: counted, Limit: limit, AccessExpiresAt: exp})
	}
	later := r.AccessExpiresAt.Add(2 * time.Second)
	if n, err := replay(true, 2, later); err != nil || n != 1 {
		t.Fatalf("first counted replay = %d, %v; want 1, nil", n, err)
	}
	sess := mustGetSession(t, s, "s1")
	if sess.GraceReplays != 1 || !sess.AccessExpiresAt.Equal(later) {
		t.Errorf("after a replay: GraceReplays %d, AccessExpiresAt %v; want 1, %v", sess.GraceReplays, sess.AccessExpiresAt, later)
	}
	// An uncounted replay (the burst of the rotation) only raises the expiry.
	if n, err := replay(false, 0, later.Add(time.Second)); err != nil || n != 1 {
		t.Fatalf("uncounted replay = %d, %v; want 1, nil", n, err)
	}
	if n, err := replay(true, 2, r.AccessExpiresAt); err != nil || n != 2 {
		t.Fatalf("second counted replay = %d, %v; want 2, nil", n, err)
	}
	if got := mustGetSession(t, s, "s1").AccessExpiresAt; !got.Equal(later.Add(time.Second)) {
		t.Errorf("AccessExpiresAt = %v, want %v (never lowered)", got, later.Add(time.Second))
	}
	before := mustGetSession(t, s, "s1")
	_, err := replay(true, 2, later.Add(time.Hour))
	wantErr(t, "counted replay past the limit", err, latch.ErrConflict)
	_, err = s.ReplayGrace(ctx, latch.GraceReplay{SessionID: "s1", Generation: 1, AccessExpiresAt: later.Add(time.Hour)})
	wantErr(t, "replay at another generation", err, latch.ErrConflict)
	_, err = s.ReplayGrace(ctx, latch.GraceReplay{SessionID: "nope", Generation: 2})
	wantErr(t, "replay of an unknown session", err, latch.ErrConflict)
	checkEqual(t, "session after refused replays", mustGetSession(t, s, "s1"), before)

	// The next rotation starts a new count.
	r = rotation("s1", 2, base.Add(2*time.Minute))
	if err := s.Rotate(ctx, r); err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	if sess := mustGetSession(t, s, "s1"); sess.GraceReplays != 0 || string(sess.RotatedBy) != string(r.RotatedBy) {
		t.Errorf("after a rotation: GraceReplays %d, RotatedBy %q; want 0, %q", sess.GraceReplays, sess.RotatedBy, r.RotatedBy)
	}
	_, err = s.ReplayGrace(ctx, latch.GraceReplay{SessionID: "s1", Generation: 3, Counted: true, Limit: 0})
	wantErr(t, "counted replay with limit 0", err, latch.ErrConflict)

	if _, err := s.RevokeSession(ctx, "s1", "logout", base.Add(3*time.Minute), latch.Cover{Until: base.Add(time.Hour)}); err != nil {
		t.Fatalf("RevokeSession: %v", err)
	}
	_, err = s.ReplayGrace(ctx, latch.GraceReplay{SessionID: "s1", Generation: 3})
	wantErr(t, "replay of a revoked session", err, latch.ErrConflict)
}

// testReplayGraceConcurrent: of many concurrent counted replays with limit
// 3, exactly three apply.
func testReplayGraceConcurrent(t *testing.T, s latch.Store) {
	ctx := t.Context()
	mustUser(t, s, "alice")
	mustSession(t, s, newSession("s1", "alice", base))
	if err := s.Rotate(ctx, rotation("s1", 1, base.Add(time.Minute))); err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	const n, limit = 16, 3
	var wg sync.WaitGroup
	counts := make([]int, n)
	errs := make([]error, n)
	gate := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-gate
			counts[i], errs[i] = s.ReplayGrace(ctx, latch.GraceReplay{SessionID: "s1", Generation: 2, Counted: true, Limit: limit})
		})
	}
	close(gate)
	wg.Wait()
	seen := map[int]bool{}
	for i, err := range errs {
		switch {
		case err == nil:
			if seen[counts[i]] {
				t.Errorf("two replays both got count %d", counts[i])
			}
			seen[counts[i]] = true
		case !errors.Is(err, latch.ErrConflict):
			t.Errorf("replay %d: %v", i, err)
		}
	}
	if len(seen) != limit || !seen[1] || !seen[2] || !seen[3] {
		t.Errorf("applied replays got counts %v, want exactly 1, 2, 3", seen)
	}
	if got := mustGetSession(t, s, "s1").GraceReplays; got != limit {
		t.Errorf("GraceReplays = %d, want %d", got, limit)
	}
}

// testRevokeUserAndLock: RevokeUser with a lock reason locks the user and
// revokes its sessions in one transaction; an unknown user changes
// nothing, and the lock follows LockUser's rules (an operator's lock
// keeps its reason).
func testRevokeUserAndLock(t *testing.T, s latch.Store) {
	ctx := t.Context()
	mustUser(t, s, "alice")
	mustUser(t, s, "bob")
	mustSession(t, s, newSession("a1", "alice", base))
	mustSession(t, s, newSession("b1", "bob", base))
	at := base.Add(time.Minute)
	cover := latch.Cover{Until: at.Add(time.Hour)}
	ids, err := s.RevokeUser(ctx, "alice", "account_locked", at, cover, latch.LockReasonResetRequired)
	if err != nil || len(ids) != 1 || ids[0] != "a1" {
		t.Fatalf("RevokeUser with lock = %v, %v; want [a1]", ids, err)
	}
	u, err := s.UserByID(ctx, "alice")
	if err != nil || !u.LockedAt.Equal(at) || u.LockReason != latch.LockReasonResetRequired {
		t.Fatalf("after RevokeUser with lock: %+v, %v; want locked at %v for reset_required", u, err, at)
	}
	if sess, _ := s.Session(ctx, "a1"); sess == nil || !sess.Revoked() {
		t.Fatalf("alice's session not revoked: %+v", sess)
	}
	// Without a lock reason nothing is locked.
	if _, err := s.RevokeUser(ctx, "bob", "logout_all", at, cover, ""); err != nil {
		t.Fatal(err)
	}
	if b, _ := s.UserByID(ctx, "bob"); b == nil || b.Locked() {
		t.Fatalf("RevokeUser without lock locked bob: %+v", b)
	}
	// An operator's lock is not replaced by one a reset may lift.
	if err := s.LockUser(ctx, "bob", latch.LockReasonAdmin, at); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RevokeUser(ctx, "bob", "account_locked", at.Add(time.Minute), cover, latch.LockReasonResetRequired); err != nil {
		t.Fatal(err)
	}
	if b, _ := s.UserByID(ctx, "bob"); b == nil || b.LockReason != latch.LockReasonAdmin || !b.LockedAt.Equal(at) {
		t.Fatalf("bob after a reset_required lock over an admin one: %+v", b)
	}
	// An unknown user: ErrNotFound, and no revocation entry written.
	before, err := s.RevocationHead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.RevokeUser(ctx, "nobody", "account_locked", at, cover, latch.LockReasonAdmin)
	wantErr(t, "RevokeUser(unknown, lock)", err, latch.ErrNotFound)
	after, err := s.RevocationHead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after != before {
		t.Fatalf("a refused lock wrote revocations: head %d before, %d after", before, after)
	}
}
