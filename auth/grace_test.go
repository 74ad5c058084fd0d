package auth

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/latchauth/latch"
)

// TestReuseRevokesAfterClientLeft: the client hangs up (its request
// context is cancelled) right when the reuse is detected; the session is
// revoked all the same, and the revocation reaches the in-memory set.
func TestReuseRevokesAfterClientLeft(t *testing.T) {
	svc, spy := newService(t)
	ctx := context.Background()
	if _, err := svc.CreateUser(ctx, "ada@example.com", "correct horse battery", Device{}); err != nil {
		t.Fatal(err)
	}
	t1, err := login(ctx, svc, "ada@example.com", "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	t2, err := svc.Refresh(ctx, t1.RefreshToken, Device{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Refresh(ctx, t2.RefreshToken, Device{}); err != nil {
		t.Fatal(err)
	}
	// t1 is two generations old: reuse. The client leaves as soon as the
	// session has been read, before anything is revoked.
	rctx, cancel := context.WithCancel(ctx)
	spy.afterSession = cancel
	if _, err := svc.Refresh(rctx, t1.RefreshToken, Device{}); !errors.Is(err, ErrInvalidGrant) {
		t.Fatalf("reuse = %v, want ErrInvalidGrant", err)
	}
	spy.afterSession = nil
	if rctx.Err() == nil {
		t.Fatal("the request context was not cancelled: the test proves nothing")
	}
	sess, err := spy.Store.Session(ctx, t1.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	if !sess.Revoked() || sess.RevokeReason != latch.EventRefreshReused {
		t.Fatalf("session after reuse with a cancelled request: revoked %v (%q), want revoked for reuse", sess.Revoked(), sess.RevokeReason)
	}
	if !svc.revs.Revoked("", sess.ID, t1.UserID, time.Now()) {
		t.Fatal("the revocation did not reach the in-memory set")
	}
}

// TestNetwork: the grace rule's notion of one network.
func TestNetwork(t *testing.T) {
	for _, tc := range []struct{ a, b string }{
		{"203.0.113.5", "203.0.113.250"},
		{"::ffff:203.0.113.5", "203.0.113.9"},
		{"2001:db8:1:2::1", "2001:db8:1:2:ffff::7"},
		{"2001:db8:1:2::1%eth0", "2001:db8:1:2::2"},
	} {
		if network(tc.a) != network(tc.b) {
			t.Errorf("%s and %s are in one network, got %s and %s", tc.a, tc.b, network(tc.a), network(tc.b))
		}
	}
	for _, tc := range []struct{ a, b string }{
		{"203.0.113.5", "203.0.114.5"},
		{"2001:db8:1:2::1", "2001:db8:1:3::1"},
		{"not an address", "203.0.113.5"},
		{"", "0.0.0.0"},
	} {
		if network(tc.a) == network(tc.b) {
			t.Errorf("%s and %s are in different networks, both %s", tc.a, tc.b, network(tc.a))
		}
	}
}

// TestGraceRule: only the rotating device, and after the burst only
// Replays times.
func TestGraceRule(t *testing.T) {
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	dev := []byte("device-a")
	g := GraceRule{Burst: 2 * time.Second, Replays: 2}
	for _, tc := range []struct {
		what      string
		recorded  []byte
		presented []byte
		replays   int
		now       time.Time
		why       string
		counted   bool
	}{
		{"same device in the burst", dev, dev, 0, at.Add(time.Second), "", false},
		{"same device in the burst after the limit", dev, dev, 2, at.Add(2 * time.Second), "", false},
		{"same device after the burst", dev, dev, 1, at.Add(3 * time.Second), "", true},
		{"same device past the limit", dev, dev, 2, at.Add(3 * time.Second), "replays_exhausted", false},
		{"other device in the burst", dev, []byte("device-b"), 0, at, "other_device", false},
		{"no device recorded", nil, dev, 0, at, "other_device", false},
		{"no device recorded nor presented", nil, nil, 0, at, "other_device", false},
	} {
		sess := &latch.Session{ID: "s", Generation: 2, RotatedAt: at, RotatedBy: tc.recorded, GraceReplays: tc.replays}
		r, why := g.Allows(sess, tc.presented, tc.now)
		if why != tc.why || (why == "" && (r.Counted != tc.counted || r.Limit != 2 || r.Generation != 2 || r.SessionID != "s")) {
			t.Errorf("%s: %+v %q, want counted %v, reason %q", tc.what, r, why, tc.counted, tc.why)
		}
	}
}
