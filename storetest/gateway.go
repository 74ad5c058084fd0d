package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/latchauth/latch"
)

// RunGateway runs the conformance suite of latch.GatewaySessionStore as
// subtests of t; open returns a fresh, empty store for each.
func RunGateway(t *testing.T, open func(t *testing.T) latch.GatewaySessionStore) {
	tests := []struct {
		name string
		f    func(t *testing.T, s latch.GatewaySessionStore)
	}{
		{"GatewaySessions", testGatewaySessions},
		{"GatewayLease", testGatewayLease},
		{"GatewayLeaseConcurrent", testGatewayLeaseConcurrent},
		{"GatewayEnd", testGatewayEnd},
		{"GatewayPrune", testGatewayPrune},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.f(t, open(t))
		})
	}
}

// newGateway returns a gateway session of subject in the auth-server
// session sid, created at base and lasting a day.
func newGateway(id, subject, sid string) *latch.GatewaySession {
	return &latch.GatewaySession{
		ID: id, Subject: subject, SID: sid,
		AccessToken: []byte("sealed-access-" + id), RefreshToken: []byte("sealed-refresh-" + id), IDToken: []byte("sealed-id-" + id),
		AccessExpiresAt: base.Add(5 * time.Minute),
		CreatedAt:       base, LastSeenAt: base, ExpiresAt: base.Add(24 * time.Hour),
		Version: 1,
	}
}

func mustGateway(t *testing.T, s latch.GatewaySessionStore, g *latch.GatewaySession) {
	t.Helper()
	if err := s.CreateGatewaySession(t.Context(), g); err != nil {
		t.Fatalf("CreateGatewaySession(%s): %v", g.ID, err)
	}
}

func getGateway(t *testing.T, s latch.GatewaySessionStore, id string) *latch.GatewaySession {
	t.Helper()
	g, err := s.GatewaySession(t.Context(), id)
	if err != nil {
		t.Fatalf("GatewaySession(%s): %v", id, err)
	}
	return g
}

func testGatewaySessions(t *testing.T, s latch.GatewaySessionStore) {
	ctx := t.Context()
	g := newGateway("g1", "u1", "sso1")
	mustGateway(t, s, g)
	if got := getGateway(t, s, "g1"); !reflect.DeepEqual(got, g) {
		t.Errorf("GatewaySession = %+v, want %+v", got, g)
	}
	if err := s.CreateGatewaySession(ctx, newGateway("g1", "u2", "sso2")); !errors.Is(err, latch.ErrConflict) {
		t.Errorf("CreateGatewaySession with a taken id = %v, want ErrConflict", err)
	}
	if _, err := s.GatewaySession(ctx, "nope"); !errors.Is(err, latch.ErrNotFound) {
		t.Errorf("GatewaySession(unknown) = %v, want ErrNotFound", err)
	}

	// Touch raises LastSeenAt, never lowers it.
	if err := s.TouchGatewaySession(ctx, "g1", base.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.TouchGatewaySession(ctx, "g1", base.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if got := getGateway(t, s, "g1").LastSeenAt; !got.Equal(base.Add(time.Minute)) {
		t.Errorf("LastSeenAt = %v, want %v", got, base.Add(time.Minute))
	}
	if err := s.TouchGatewaySession(ctx, "g1", base.Add(25*time.Hour)); !errors.Is(err, latch.ErrNotFound) {
		t.Errorf("Touch after ExpiresAt = %v, want ErrNotFound", err)
	}
	if err := s.TouchGatewaySession(ctx, "nope", base); !errors.Is(err, latch.ErrNotFound) {
		t.Errorf("Touch(unknown) = %v, want ErrNotFound", err)
	}
	if err := s.EndGatewaySession(ctx, "g1", latch.GatewayEndLogout, base.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.TouchGatewaySession(ctx, "g1", base.Add(3*time.Minute)); !errors.Is(err, latch.ErrNotFound) {
		t.Errorf("Touch of an ended session = %v, want ErrNotFound", err)
	}
}

func testGatewayLease(t *testing.T, s latch.GatewaySessionStore) {
	ctx := t.Context()
	mustGateway(t, s, newGateway("g1", "u1", "sso1"))
	now := base.Add(4 * time.Minute)

	ok, err := s.AcquireGatewayRefresh(ctx, "g1", "a", 1, now, now.Add(10*time.Second))
	if err != nil || !ok {
		t.Fatalf("Acquire by a = %v, %v; want true", ok, err)
	}
	if ok, err := s.AcquireGatewayRefresh(ctx, "g1", "b", 1, now.Add(time.Second), now.Add(11*time.Second)); err != nil || ok {
		t.Errorf("Acquire by b while a holds it = %v, %v; want false", ok, err)
	}
	// a renews; b still cannot take it before the renewed lease ends.
	if ok, err := s.AcquireGatewayRefresh(ctx, "g1", "a", 1, now.Add(5*time.Second), now.Add(20*time.Second)); err != nil || !ok {
		t.Errorf("renewal by a = %v, %v; want true", ok, err)
	}
	if ok, _ := s.AcquireGatewayRefresh(ctx, "g1", "b", 1, now.Add(15*time.Second), now.Add(30*time.Second)); ok {
		t.Errorf("b took a renewed lease before it expired")
	}
	if _, err := s.CompleteGatewayRefresh(ctx, "g1", "b", latch.GatewayRefresh{AccessToken: []byte("x")}); !errors.Is(err, latch.ErrConflict) {
		t.Errorf("Complete by a non-owner = %v, want ErrConflict", err)
	}
	if _, err := s.AcquireGatewayRefresh(ctx, "nope", "a", 1, now, now.Add(time.Second)); !errors.Is(err, latch.ErrNotFound) {
		t.Errorf("Acquire(unknown) = %v, want ErrNotFound", err)
	}

	// Completing stores the tokens, raises the version, frees the lease;
	// an empty refresh or id token keeps the stored one.
	exp := now.Add(5 * time.Minute)
	v, err := s.CompleteGatewayRefresh(ctx, "g1", "a", latch.GatewayRefresh{AccessToken: []byte("access2"), AccessExpiresAt: exp})
	if err != nil || v != 2 {
		t.Fatalf("Complete = %d, %v; want 2", v, err)
	}
	g := getGateway(t, s, "g1")
	if !bytes.Equal(g.AccessToken, []byte("access2")) || !bytes.Equal(g.RefreshToken, []byte("sealed-refresh-g1")) ||
		!bytes.Equal(g.IDToken, []byte("sealed-id-g1")) || !g.AccessExpiresAt.Equal(exp) || g.Version != 2 ||
		g.LeaseOwner != "" || !g.LeaseUntil.IsZero() {
		t.Errorf("after Complete: %+v", g)
	}
	if _, err := s.CompleteGatewayRefresh(ctx, "g1", "a", latch.GatewayRefresh{AccessToken: []byte("x")}); !errors.Is(err, latch.ErrConflict) {
		t.Errorf("second Complete = %v, want ErrConflict", err)
	}
	// A waiter that saw version 1 cannot take the lease again: the
	// refresh it wanted happened.
	if ok, _ := s.AcquireGatewayRefresh(ctx, "g1", "b", 1, now, now.Add(time.Minute)); ok {
		t.Errorf("Acquire with a stale version succeeded")
	}
	// An expired lease can be taken over; the old owner cannot complete.
	if ok, _ := s.AcquireGatewayRefresh(ctx, "g1", "a", 2, now, now.Add(time.Second)); !ok {
		t.Fatal("Acquire of a free lease failed")
	}
	if ok, _ := s.AcquireGatewayRefresh(ctx, "g1", "b", 2, now.Add(time.Second), now.Add(time.Minute)); !ok {
		t.Fatal("Acquire of an expired lease failed")
	}
	if _, err := s.CompleteGatewayRefresh(ctx, "g1", "a", latch.GatewayRefresh{AccessToken: []byte("x")}); !errors.Is(err, latch.ErrConflict) {
		t.Errorf("Complete by the owner of a lease taken over = %v, want ErrConflict", err)
	}
	v, err = s.CompleteGatewayRefresh(ctx, "g1", "b", latch.GatewayRefresh{AccessToken: []byte("a3"), RefreshToken: []byte("r3"),
		IDToken: []byte("i3"), AccessExpiresAt: exp})
	if err != nil || v != 3 {
		t.Fatalf("Complete by b = %d, %v; want 3", v, err)
	}
	if g := getGateway(t, s, "g1"); string(g.RefreshToken) != "r3" || string(g.IDToken) != "i3" {
		t.Errorf("rotated tokens not stored: %q %q", g.RefreshToken, g.IDToken)
	}
	// Release gives the lease up only for its owner.
	if ok, _ := s.AcquireGatewayRefresh(ctx, "g1", "a", 3, now, now.Add(time.Minute)); !ok {
		t.Fatal("Acquire failed")
	}
	if err := s.ReleaseGatewayRefresh(ctx, "g1", "b"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.AcquireGatewayRefresh(ctx, "g1", "b", 3, now, now.Add(time.Minute)); ok {
		t.Error("a release by a non-owner freed the lease")
	}
	if err := s.ReleaseGatewayRefresh(ctx, "g1", "a"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.AcquireGatewayRefresh(ctx, "g1", "b", 3, now, now.Add(time.Minute)); !ok {
		t.Error("Acquire after the owner's release failed")
	}
	// An ended session gives no lease and takes no refresh.
	if err := s.EndGatewaySession(ctx, "g1", latch.GatewayEndLogout, now); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CompleteGatewayRefresh(ctx, "g1", "b", latch.GatewayRefresh{AccessToken: []byte("x")}); !errors.Is(err, latch.ErrConflict) {
		t.Errorf("Complete on an ended session = %v, want ErrConflict", err)
	}
	if ok, _ := s.AcquireGatewayRefresh(ctx, "g1", "b", 3, now, now.Add(time.Minute)); ok {
		t.Error("Acquire on an ended session succeeded")
	}
	// Nor does an expired one.
	mustGateway(t, s, newGateway("g2", "u1", "sso1"))
	if ok, _ := s.AcquireGatewayRefresh(ctx, "g2", "a", 1, base.Add(24*time.Hour), base.Add(25*time.Hour)); ok {
		t.Error("Acquire on an expired session succeeded")
	}
}

// testGatewayLeaseConcurrent: of many owners acquiring one lease at once,
// exactly one wins, over and over.
func testGatewayLeaseConcurrent(t *testing.T, s latch.GatewaySessionStore) {
	const rounds, owners = 10, 8
	for r := range rounds {
		id := fmt.Sprintf("g%d", r)
		mustGateway(t, s, newGateway(id, "u1", "sso1"))
		var wg sync.WaitGroup
		var mu sync.Mutex
		var winners []string
		var errs []error
		start := make(chan struct{})
		for o := range owners {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				owner := fmt.Sprintf("owner-%d", o)
				ok, err := s.AcquireGatewayRefresh(t.Context(), id, owner, 1, base, base.Add(time.Minute))
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
				}
				if ok {
					winners = append(winners, owner)
				}
			}()
		}
		close(start)
		wg.Wait()
		if len(errs) > 0 || len(winners) != 1 {
			t.Fatalf("round %d: winners %v, errors %v; want exactly one winner", r, winners, errs)
		}
		if got := getGateway(t, s, id).LeaseOwner; got != winners[0] {
			t.Errorf("round %d: lease owner %q, want the winner %q", r, got, winners[0])
		}
	}
}

func testGatewayEnd(t *testing.T, s latch.GatewaySessionStore) {
	ctx := t.Context()
	for _, g := range []*latch.GatewaySession{
		newGateway("a1", "u1", "sso1"), newGateway("a2", "u1", "sso1"), newGateway("b1", "u1", "sso2"),
		newGateway("c1", "u2", "sso3"), newGateway("c2", "u2", ""),
	} {
		mustGateway(t, s, g)
	}
	at := base.Add(time.Minute)
	ids, err := s.EndGatewaySessionsBySID(ctx, "sso1", latch.GatewayEndBackchannel, at)
	if err != nil || !reflect.DeepEqual(ids, []string{"a1", "a2"}) {
		t.Errorf("EndGatewaySessionsBySID = %v, %v; want [a1 a2]", ids, err)
	}
	if ids, err := s.EndGatewaySessionsBySID(ctx, "sso1", latch.GatewayEndBackchannel, at.Add(time.Second)); err != nil || len(ids) != 0 {
		t.Errorf("ending again = %v, %v; want none", ids, err)
	}
	if ids, err := s.EndGatewaySessionsBySID(ctx, "", latch.GatewayEndBackchannel, at); err != nil || len(ids) != 0 {
		t.Errorf("EndGatewaySessionsBySID(\"\") = %v, %v; want none", ids, err)
	}
	g := getGateway(t, s, "a1")
	if !g.EndedAt.Equal(at) || g.EndReason != latch.GatewayEndBackchannel || !g.Ended() || g.Live(at) {
		t.Errorf("a1 after end: %+v", g)
	}
	if getGateway(t, s, "b1").Ended() {
		t.Error("a session of another sid was ended")
	}
	ids, err = s.EndGatewaySessionsBySubject(ctx, "u2", latch.GatewayEndRevoked, at)
	if err != nil || !reflect.DeepEqual(ids, []string{"c1", "c2"}) {
		t.Errorf("EndGatewaySessionsBySubject = %v, %v; want [c1 c2]", ids, err)
	}
	if err := s.EndGatewaySession(ctx, "b1", latch.GatewayEndLogout, at); err != nil {
		t.Fatal(err)
	}
	// Ending an ended session changes nothing.
	if err := s.EndGatewaySession(ctx, "b1", latch.GatewayEndRefresh, at.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if g := getGateway(t, s, "b1"); !g.EndedAt.Equal(at) || g.EndReason != latch.GatewayEndLogout {
		t.Errorf("b1 ended again: %v %s", g.EndedAt, g.EndReason)
	}
	if err := s.EndGatewaySession(ctx, "nope", latch.GatewayEndLogout, at); !errors.Is(err, latch.ErrNotFound) {
		t.Errorf("EndGatewaySession(unknown) = %v, want ErrNotFound", err)
	}
}

func testGatewayPrune(t *testing.T, s latch.GatewaySessionStore) {
	ctx := t.Context()
	live, ended, expired := newGateway("live", "u", "s"), newGateway("ended", "u", "s2"), newGateway("expired", "u", "s3")
	expired.ExpiresAt = base.Add(time.Hour)
	for _, g := range []*latch.GatewaySession{live, ended, expired} {
		mustGateway(t, s, g)
	}
	if err := s.EndGatewaySession(ctx, "ended", latch.GatewayEndLogout, base.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.PruneGatewaySessions(ctx, base.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]bool{"live": true, "ended": false, "expired": false} {
		_, err := s.GatewaySession(ctx, id)
		if got := err == nil; got != want || (err != nil && !errors.Is(err, latch.ErrNotFound)) {
			t.Errorf("after prune, %s: err %v, want present %v", id, err, want)
		}
	}
}
