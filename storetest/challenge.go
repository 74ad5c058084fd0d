package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/latchauth/latch"
)

// newChallenge returns a challenge of the user named name, created at base
// and valid for 10 minutes, whose code MAC is mac(name).
func newChallenge(name, userID string) *latch.Challenge {
	return &latch.Challenge{
		IDHash: hash(name), UserID: userID, ClientID: "latch", AuthTime: base.Add(-time.Second),
		AMR: []string{"pwd"}, IP: "192.0.2.1", UserAgent: "Firefox/140", DeviceID: "dev-" + name,
		CodeMAC: hash("code " + name), CreatedAt: base, ExpiresAt: base.Add(10 * time.Minute),
	}
}

// testChallenges: a challenge is created with its email, read back whole,
// consumed once with the right code MAC only, only before it expires and
// while attempts are left; wrong attempts are counted up to the maximum.
func testChallenges(t *testing.T, s latch.Store) {
	ctx := t.Context()
	mustUser(t, s, "alice")
	since := base.Add(-10 * time.Minute)

	msg := &latch.OutboxMessage{Kind: latch.OutboxEmail, CreatedAt: base, NotBefore: base,
		Payload: latch.EmailMessage{To: "alice@example.com", Template: "challenge_code"}.Payload()}
	c := newChallenge("one", "alice")
	if err := s.CreateChallenge(ctx, c, msg, 5, since); err != nil {
		t.Fatalf("CreateChallenge: %v", err)
	}
	if msg.ID == 0 {
		t.Error("CreateChallenge did not set the enqueued message's ID")
	}
	claimed, err := s.ClaimOutbox(ctx, "test", base, base.Add(time.Minute), 10)
	if err != nil || len(claimed) != 1 || claimed[0].ID != msg.ID {
		t.Fatalf("ClaimOutbox after CreateChallenge: %v, %v; want the one email", claimed, err)
	}
	wantErr(t, "CreateChallenge(duplicate)", s.CreateChallenge(ctx, newChallenge("one", "alice"), nil, 5, since), latch.ErrConflict)
	wantErr(t, "CreateChallenge(unknown user)", s.CreateChallenge(ctx, newChallenge("x", "nobody"), nil, 5, since), latch.ErrNotFound)

	got, err := s.Challenge(ctx, c.IDHash)
	if err != nil || !reflect.DeepEqual(got, c) {
		t.Fatalf("Challenge = %+v, %v; want %+v", got, err, c)
	}
	_, err = s.Challenge(ctx, hash("unknown"))
	wantErr(t, "Challenge(unknown)", err, latch.ErrNotFound)

	at := base.Add(time.Minute)
	_, err = s.ConsumeChallenge(ctx, c.IDHash, hash("wrong"), at, 5)
	wantErr(t, "ConsumeChallenge(wrong code)", err, latch.ErrNotFound)
	_, err = s.ConsumeChallenge(ctx, c.IDHash, c.CodeMAC, c.ExpiresAt, 5)
	wantErr(t, "ConsumeChallenge(expired)", err, latch.ErrNotFound)
	if n, err := s.FailChallenge(ctx, c.IDHash, at, 5); err != nil || n != 1 {
		t.Fatalf("FailChallenge = %d, %v; want 1", n, err)
	}
	_, err = s.ConsumeChallenge(ctx, c.IDHash, c.CodeMAC, at, 1)
	wantErr(t, "ConsumeChallenge(out of attempts)", err, latch.ErrNotFound)
	used, err := s.ConsumeChallenge(ctx, c.IDHash, c.CodeMAC, at, 5)
	if err != nil || !used.UsedAt.Equal(at) || used.UserID != "alice" || used.Attempts != 1 || used.DeviceID != c.DeviceID {
		t.Fatalf("ConsumeChallenge = %+v, %v; want alice's, used at %v after 1 attempt", used, err, at)
	}
	_, err = s.ConsumeChallenge(ctx, c.IDHash, c.CodeMAC, at, 5)
	wantErr(t, "ConsumeChallenge(used)", err, latch.ErrNotFound)
	_, err = s.FailChallenge(ctx, c.IDHash, at, 5)
	wantErr(t, "FailChallenge(used)", err, latch.ErrNotFound)
	if got, err := s.Challenge(ctx, c.IDHash); err != nil || !got.UsedAt.Equal(at) {
		t.Errorf("Challenge after use = %+v, %v; want UsedAt %v", got, err, at)
	}

	// Wrong attempts stop at the maximum, and expiry ends them too.
	d := newChallenge("two", "alice")
	if err := s.CreateChallenge(ctx, d, nil, 5, since); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		if n, err := s.FailChallenge(ctx, d.IDHash, at, 3); err != nil || n != i {
			t.Fatalf("FailChallenge #%d = %d, %v", i, n, err)
		}
	}
	_, err = s.FailChallenge(ctx, d.IDHash, at, 3)
	wantErr(t, "FailChallenge(out of attempts)", err, latch.ErrNotFound)
	e := newChallenge("expiring", "alice")
	if err := s.CreateChallenge(ctx, e, nil, 5, since); err != nil {
		t.Fatal(err)
	}
	_, err = s.FailChallenge(ctx, e.IDHash, e.ExpiresAt, 5)
	wantErr(t, "FailChallenge(expired)", err, latch.ErrNotFound)
	_, err = s.FailChallenge(ctx, hash("unknown"), at, 5)
	wantErr(t, "FailChallenge(unknown)", err, latch.ErrNotFound)

	// The limit counts the user's challenges created after since, used
	// or not; other users' do not count.
	wantErr(t, "CreateChallenge(over the limit)", s.CreateChallenge(ctx, newChallenge("three", "alice"), nil, 2, since), latch.ErrChallengeLimit)
	if err := s.CreateChallenge(ctx, newChallenge("three", "alice"), nil, 2, base); err != nil {
		t.Errorf("CreateChallenge with older challenges out of the window: %v", err)
	}
	mustUser(t, s, "bob")
	if err := s.CreateChallenge(ctx, newChallenge("bob", "bob"), nil, 1, since); err != nil {
		t.Errorf("CreateChallenge for bob: %v", err)
	}
	// Nothing was enqueued by a refused creation.
	over := &latch.OutboxMessage{Kind: latch.OutboxEmail, CreatedAt: base, NotBefore: base,
		Payload: latch.EmailMessage{To: "bob@example.com", Template: "challenge_code"}.Payload()}
	wantErr(t, "CreateChallenge(bob over the limit)", s.CreateChallenge(ctx, newChallenge("bob2", "bob"), over, 1, since), latch.ErrChallengeLimit)
	if claimed, err := s.ClaimOutbox(ctx, "test", base, base.Add(time.Minute), 10); err != nil || len(claimed) != 0 {
		t.Errorf("ClaimOutbox after a refused creation: %v, %v; want nothing", claimed, err)
	}
	if _, err := s.Challenge(ctx, hash("bob2")); err == nil {
		t.Error("a refused creation stored its challenge")
	}

	// Prune removes expired challenges; deleting the user removes the rest.
	if err := s.Prune(ctx, base.Add(10*time.Minute), time.Hour); err != nil {
		t.Fatal(err)
	}
	_, err = s.Challenge(ctx, c.IDHash)
	wantErr(t, "Challenge after Prune", err, latch.ErrNotFound)
	if err := s.CreateChallenge(ctx, newChallenge("late", "alice"), nil, 5, base); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteUser(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	_, err = s.Challenge(ctx, hash("late"))
	wantErr(t, "Challenge after DeleteUser", err, latch.ErrNotFound)
}

// testChallengeConsumeConcurrent: of many concurrent consumers of one
// challenge with the right code, exactly one succeeds.
func testChallengeConsumeConcurrent(t *testing.T, s latch.Store) {
	ctx := t.Context()
	mustUser(t, s, "alice")
	c := newChallenge("race", "alice")
	if err := s.CreateChallenge(ctx, c, nil, 5, base.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	const n = 16
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := 0
	for range n {
		wg.Go(func() {
			if _, err := s.ConsumeChallenge(ctx, c.IDHash, c.CodeMAC, base.Add(time.Minute), 5); err == nil {
				mu.Lock()
				won++
				mu.Unlock()
			} else if !errors.Is(err, latch.ErrNotFound) {
				t.Errorf("ConsumeChallenge: %v", err)
			}
		})
	}
	wg.Wait()
	if won != 1 {
		t.Fatalf("%d of %d concurrent consumers succeeded, want exactly 1", won, n)
	}
}

// testChallengeFailConcurrent: concurrent wrong attempts are each counted
// once, and no more than the maximum are.
func testChallengeFailConcurrent(t *testing.T, s latch.Store) {
	ctx := t.Context()
	mustUser(t, s, "alice")
	c := newChallenge("fails", "alice")
	if err := s.CreateChallenge(ctx, c, nil, 5, base.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	const n, maxAttempts = 20, 5
	var wg sync.WaitGroup
	var mu sync.Mutex
	counted := map[int]bool{}
	for range n {
		wg.Go(func() {
			k, err := s.FailChallenge(ctx, c.IDHash, base.Add(time.Minute), maxAttempts)
			if err != nil {
				if !errors.Is(err, latch.ErrNotFound) {
					t.Errorf("FailChallenge: %v", err)
				}
				return
			}
			mu.Lock()
			if counted[k] {
				t.Errorf("attempt %d counted twice", k)
			}
			counted[k] = true
			mu.Unlock()
		})
	}
	wg.Wait()
	if len(counted) != maxAttempts {
		t.Fatalf("%d attempts counted, want %d", len(counted), maxAttempts)
	}
	if got, err := s.Challenge(ctx, c.IDHash); err != nil || got.Attempts != maxAttempts {
		t.Fatalf("Challenge = %+v, %v; want %d attempts", got, err, maxAttempts)
	}
}

// testChallengeLimitConcurrent: concurrent creations for one user never
// exceed the limit (in several rounds, each for a user of its own, since a
// race shows only now and then).
func testChallengeLimitConcurrent(t *testing.T, s latch.Store) {
	ctx := t.Context()
	const rounds, n, limit = 10, 12, 3
	for r := range rounds {
		user := fmt.Sprintf("user%d", r)
		mustUser(t, s, user)
		var wg sync.WaitGroup
		var mu sync.Mutex
		created := 0
		for i := range n {
			wg.Go(func() {
				err := s.CreateChallenge(ctx, newChallenge(fmt.Sprintf("%s-%d", user, i), user), nil, limit, base.Add(-time.Hour))
				switch {
				case err == nil:
					mu.Lock()
					created++
					mu.Unlock()
				case !errors.Is(err, latch.ErrChallengeLimit):
					t.Errorf("CreateChallenge: %v", err)
				}
			})
		}
		wg.Wait()
		if created != limit {
			t.Fatalf("round %d: %d of %d concurrent creations succeeded, want the limit %d", r, created, n, limit)
		}
	}
}
