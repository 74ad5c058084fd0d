package revocation

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func TestRevokedByKind(t *testing.T) {
	s := NewSet()
	cut := t0.Add(700 * time.Millisecond) // 12:00:00.700
	s.Add(
		Entry{Seq: 1, Kind: Token, Value: "jti-1", ExpiresAt: t0.Add(time.Hour)},
		Entry{Seq: 2, Kind: Session, Value: "sid-1", ExpiresAt: t0.Add(time.Hour)},
		Entry{Seq: 3, Kind: User, Value: "alice", Cutoff: cut, ExpiresAt: t0.Add(time.Hour)},
	)
	cases := []struct {
		name          string
		jti, sid, sub string
		iat           time.Time
		want          bool
	}{
		{"jti listed", "jti-1", "sid-x", "bob", t0, true},
		{"sid listed", "jti-x", "sid-1", "bob", t0, true},
		{"user cutoff, iat a second before", "jti-x", "sid-x", "alice", t0.Add(-time.Second), true},
		{"user cutoff, iat long before", "jti-x", "sid-x", "alice", t0.Add(-time.Hour), true},
		{"user cutoff, missing iat", "jti-x", "sid-x", "alice", time.Time{}, true},
		{"user cutoff, iat in the cutoff's second", "jti-x", "sid-x", "alice", t0, false},
		{"user cutoff, iat after", "jti-x", "sid-x", "alice", t0.Add(time.Second), false},
		{"other user", "jti-x", "sid-x", "bob", t0.Add(-time.Hour), false},
		{"nothing listed", "jti-2", "sid-2", "carol", t0, false},
		{"jti is not a sid", "sid-1", "", "", t0, false},
		{"sid is not a jti", "", "jti-1", "", t0, false},
		{"user id is not a sid", "", "alice", "", t0, false},
		{"empty everything", "", "", "", t0, false},
	}
	for _, c := range cases {
		if got := s.Revoked(c.jti, c.sid, c.sub, c.iat); got != c.want {
			t.Errorf("%s: Revoked(%q, %q, %q, %v) = %v, want %v", c.name, c.jti, c.sid, c.sub, c.iat, got, c.want)
		}
	}
	if s.Len() != 3 || s.Cursor() != 3 {
		t.Fatalf("Len %d Cursor %d, want 3 3", s.Len(), s.Cursor())
	}
}

// TestCutoffSecondBoundary pins the truncation rule: a sub-second cutoff
// covers tokens issued in earlier seconds only; the same-second token
// issued before the cutoff is caught by its session's sid entry, which the
// server always writes alongside the cutoff.
func TestCutoffSecondBoundary(t *testing.T) {
	s := NewSet()
	s.Add(Entry{Seq: 1, Kind: User, Value: "alice", Cutoff: t0.Add(999 * time.Millisecond)})
	if s.Revoked("", "", "alice", t0) {
		t.Fatal("iat in the cutoff's second must not be revoked by the cutoff (truncation)")
	}
	if !s.Revoked("", "", "alice", t0.Add(-time.Second)) {
		t.Fatal("iat in the previous second must be revoked")
	}
	// Sub-second iat (not produced by JWTs) compares by whole seconds too.
	if s.Revoked("", "", "alice", t0.Add(500*time.Millisecond)) {
		t.Fatal("sub-second iat in the cutoff's second must not be revoked")
	}
	s.Add(Entry{Seq: 2, Kind: Session, Value: "sess", ExpiresAt: t0.Add(time.Hour)})
	if !s.Revoked("j", "sess", "alice", t0) {
		t.Fatal("the same-second token of a revoked session must be revoked by sid")
	}
}

func TestAddIdempotentAndLatestCutoffWins(t *testing.T) {
	s := NewSet()
	a := Entry{Seq: 5, Kind: User, Value: "alice", Cutoff: t0, ExpiresAt: t0.Add(5 * time.Minute)}
	b := Entry{Seq: 6, Kind: User, Value: "alice", Cutoff: t0.Add(time.Minute), ExpiresAt: t0.Add(6 * time.Minute)}
	j := Entry{Seq: 7, Kind: Token, Value: "j", ExpiresAt: t0.Add(time.Minute)}
	s.Add(a, j)
	s.Add(a, j)
	if s.Len() != 2 || s.Cursor() != 7 {
		t.Fatalf("after duplicate adds: Len %d Cursor %d", s.Len(), s.Cursor())
	}
	s.Add(b)
	// Re-adding the older cutoff (out of order) must not move it back.
	s.Add(a)
	if !s.Revoked("", "", "alice", t0.Add(30*time.Second)) {
		t.Fatal("latest cutoff must win")
	}
	if s.Len() != 2 {
		t.Fatalf("Len %d, want 2", s.Len())
	}
	// The later expiry is kept: prune at 5m30s keeps alice's cutoff.
	if n := s.Prune(t0.Add(5*time.Minute + 30*time.Second)); n != 1 { // only j
		t.Fatalf("Prune removed %d, want 1", n)
	}
	if !s.Revoked("", "", "alice", t0.Add(30*time.Second)) {
		t.Fatal("cutoff pruned too early")
	}
	// A lower Seq does not move the cursor back.
	s.Add(Entry{Seq: 1, Kind: Token, Value: "k"})
	if s.Cursor() != 7 {
		t.Fatalf("Cursor %d, want 7", s.Cursor())
	}
}

func TestAddSkipsEmptyAndUnknown(t *testing.T) {
	s := NewSet()
	s.Add(
		Entry{Seq: 1, Kind: Session, Value: ""},
		Entry{Seq: 2, Kind: "future-kind", Value: "x"},
	)
	if s.Len() != 0 {
		t.Fatalf("Len %d, want 0", s.Len())
	}
	if s.Cursor() != 2 {
		t.Fatalf("Cursor %d, want 2", s.Cursor())
	}
	if s.Revoked("", "", "", t0) || s.Revoked("x", "x", "x", t0) {
		t.Fatal("empty or unknown entries must cover nothing")
	}
}

func TestExpiryExtendedByLaterEntry(t *testing.T) {
	s := NewSet()
	s.Add(Entry{Seq: 1, Kind: Session, Value: "s", ExpiresAt: t0.Add(time.Minute)})
	s.Add(Entry{Seq: 2, Kind: Session, Value: "s", ExpiresAt: t0.Add(time.Hour)})
	s.Add(Entry{Seq: 3, Kind: Session, Value: "s", ExpiresAt: t0.Add(2 * time.Minute)})
	if n := s.Prune(t0.Add(30 * time.Minute)); n != 0 {
		t.Fatalf("Prune removed %d, want 0 (latest expiry kept)", n)
	}
	if !s.Revoked("", "s", "", t0) {
		t.Fatal("session must still be revoked")
	}
}

func TestPrune(t *testing.T) {
	s := NewSet()
	s.Add(
		Entry{Seq: 1, Kind: Token, Value: "j1", ExpiresAt: t0},
		Entry{Seq: 2, Kind: Token, Value: "j2", ExpiresAt: t0.Add(time.Second)},
		Entry{Seq: 3, Kind: Session, Value: "s1", ExpiresAt: t0.Add(-time.Second)},
		Entry{Seq: 4, Kind: Session, Value: "s2"}, // never expires
		Entry{Seq: 5, Kind: User, Value: "u1", Cutoff: t0, ExpiresAt: t0},
		Entry{Seq: 6, Kind: User, Value: "u2", Cutoff: t0, ExpiresAt: t0.Add(time.Hour)},
	)
	if n := s.Prune(t0); n != 3 {
		t.Fatalf("Prune removed %d, want 3 (expiry at or before now)", n)
	}
	if s.Len() != 3 {
		t.Fatalf("Len %d, want 3", s.Len())
	}
	for _, c := range []struct {
		jti, sid, sub string
		want          bool
	}{
		{"j1", "", "", false}, {"j2", "", "", true},
		{"", "s1", "", false}, {"", "s2", "", true},
		{"", "", "u1", false}, {"", "", "u2", true},
	} {
		if got := s.Revoked(c.jti, c.sid, c.sub, t0.Add(-time.Minute)); got != c.want {
			t.Errorf("after prune Revoked(%q,%q,%q) = %v, want %v", c.jti, c.sid, c.sub, got, c.want)
		}
	}
	if n := s.Prune(t0); n != 0 {
		t.Fatalf("second Prune removed %d", n)
	}
	if s.Cursor() != 6 {
		t.Fatalf("Prune moved the cursor: %d", s.Cursor())
	}
}

// fakeFeed is an in-memory Feed with the semantics of RevocationStore.
type fakeFeed struct {
	mu      sync.Mutex
	entries []Entry
	calls   []int64 // after of every call
	limits  []int
	failAt  int // fail on this call number (1-based); 0 never
	err     error
	hook    func(call int)
}

func (f *fakeFeed) append(r Entry) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r.Seq = int64(len(f.entries) + 1)
	f.entries = append(f.entries, r)
}

func (f *fakeFeed) RevocationsAfter(ctx context.Context, after int64, now time.Time, limit int) ([]Entry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, after)
	f.limits = append(f.limits, limit)
	call := len(f.calls)
	if f.hook != nil {
		f.hook(call)
	}
	if f.failAt == call {
		return nil, f.err
	}
	var out []Entry
	for _, e := range f.entries {
		if e.Seq > after && (e.ExpiresAt.IsZero() || e.ExpiresAt.After(now)) {
			out = append(out, e)
			if len(out) == limit {
				break
			}
		}
	}
	return out, nil
}

func (f *fakeFeed) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

func TestSyncPagesUntilExhausted(t *testing.T) {
	f := &fakeFeed{}
	for i := 0; i < 2500; i++ {
		f.append(Entry{Kind: Token, Value: fmt.Sprint("j", i), ExpiresAt: t0.Add(time.Hour)})
	}
	// Expired at now: not returned by the feed.
	f.append(Entry{Kind: Token, Value: "old", ExpiresAt: t0.Add(-time.Second)})
	s := NewSet()
	if !s.LastSync().IsZero() {
		t.Fatal("LastSync before any sync must be zero")
	}
	n, err := s.Sync(context.Background(), f, t0)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2500 || s.Len() != 2500 {
		t.Fatalf("Sync got %d, Len %d; want 2500", n, s.Len())
	}
	if want := []int64{0, 1000, 2000}; fmt.Sprint(f.calls) != fmt.Sprint(want) {
		t.Fatalf("feed calls after=%v, want %v", f.calls, want)
	}
	if f.limits[0] != DefaultPageSize {
		t.Fatalf("limit %d, want %d", f.limits[0], DefaultPageSize)
	}
	if s.Cursor() != 2500 {
		t.Fatalf("Cursor %d", s.Cursor())
	}
	if !s.LastSync().Equal(t0) {
		t.Fatalf("LastSync %v, want %v", s.LastSync(), t0)
	}
	if !s.Revoked("j2499", "", "", t0) || s.Revoked("old", "", "", t0) {
		t.Fatal("wrong content after sync")
	}
	// Incremental: only new entries are fetched.
	f.append(Entry{Kind: Session, Value: "s", ExpiresAt: t0.Add(time.Hour)})
	f.calls = nil
	n, err = s.Sync(context.Background(), f, t0.Add(time.Second))
	if err != nil || n != 1 {
		t.Fatalf("incremental Sync = %d, %v", n, err)
	}
	if fmt.Sprint(f.calls) != "[2500]" { // the expired entry 2501 was never seen
		t.Fatalf("incremental calls %v, want [2500]", f.calls)
	}
	if !s.Revoked("", "s", "", t0) {
		t.Fatal("new entry not applied")
	}
}

func TestSyncExactMultipleOfPage(t *testing.T) {
	f := &fakeFeed{}
	for i := 0; i < 2000; i++ {
		f.append(Entry{Kind: Token, Value: fmt.Sprint("j", i)})
	}
	s := NewSet()
	n, err := s.Sync(context.Background(), f, t0)
	if err != nil || n != 2000 {
		t.Fatalf("Sync = %d, %v", n, err)
	}
	if fmt.Sprint(f.calls) != "[0 1000 2000]" {
		t.Fatalf("calls %v", f.calls)
	}
}

func TestSyncErrorKeepsProgressAndLastSync(t *testing.T) {
	f := &fakeFeed{failAt: 2, err: errors.New("database is down")}
	for i := 0; i < 1500; i++ {
		f.append(Entry{Kind: Token, Value: fmt.Sprint("j", i)})
	}
	s := NewSet()
	n, err := s.Sync(context.Background(), f, t0)
	if err == nil || !errors.Is(err, f.err) {
		t.Fatalf("want wrapped feed error, got %v", err)
	}
	if n != 1000 || s.Cursor() != 1000 {
		t.Fatalf("first page must stay applied: n %d cursor %d", n, s.Cursor())
	}
	if !s.LastSync().IsZero() {
		t.Fatal("failed sync must not set LastSync")
	}
	n, err = s.Sync(context.Background(), f, t0.Add(time.Second))
	if err != nil || n != 500 || s.Len() != 1500 {
		t.Fatalf("retry Sync = %d, %v, Len %d", n, err, s.Len())
	}
	if !s.LastSync().Equal(t0.Add(time.Second)) {
		t.Fatal("LastSync not set after success")
	}
}

// stuckFeed always returns a full page of the same entries.
type stuckFeed struct{}

func (stuckFeed) RevocationsAfter(ctx context.Context, after int64, now time.Time, limit int) ([]Entry, error) {
	out := make([]Entry, limit)
	for i := range out {
		out[i] = Entry{Seq: 1, Kind: Token, Value: "x"}
	}
	return out, nil
}

func TestSyncDetectsNoProgress(t *testing.T) {
	s := NewSet()
	s.Add(Entry{Seq: 5})
	_, err := s.Sync(context.Background(), stuckFeed{}, t0)
	if !errors.Is(err, errNoProgress) {
		t.Fatalf("want errNoProgress, got %v", err)
	}
}

func TestSyncContextCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f := &fakeFeed{}
	f.append(Entry{Kind: Token, Value: "j"})
	_, err := NewSet().Sync(ctx, f, t0)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("want context.Canceled, got %v", err)
	}
	if f.callCount() != 0 {
		t.Fatal("feed called with a canceled context")
	}
}

func TestFollow(t *testing.T) {
	f := &fakeFeed{}
	f.append(Entry{Kind: Token, Value: "first", ExpiresAt: time.Now().Add(time.Hour)})
	// An entry that is already expired by the wall clock is pruned by Follow
	// even though the set got it (added directly, bypassing the feed filter).
	s := NewSet()
	s.Add(Entry{Kind: Token, Value: "stale", ExpiresAt: time.Now().Add(-time.Minute)})
	f.failAt = 2
	f.err = errors.New("boom")
	var errs atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Follow(ctx, f, 5*time.Millisecond, nil, func(err error) {
			if errors.Is(err, f.err) {
				errs.Add(1)
			}
		})
	}()
	deadline := time.Now().Add(5 * time.Second)
	for !s.Revoked("first", "", "", time.Now()) || s.Revoked("stale", "", "", time.Now()) {
		if time.Now().After(deadline) {
			t.Fatal("Follow did not sync and prune")
		}
		time.Sleep(time.Millisecond)
	}
	f.append(Entry{Kind: Session, Value: "later", ExpiresAt: time.Now().Add(time.Hour)})
	for !s.Revoked("", "later", "", time.Now()) {
		if time.Now().After(deadline) {
			t.Fatal("Follow did not pick up a later entry")
		}
		time.Sleep(time.Millisecond)
	}
	for errs.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("onErr not called")
		}
		time.Sleep(time.Millisecond)
	}
	if s.LastSync().IsZero() {
		t.Fatal("LastSync not set by Follow")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Follow did not return after cancel")
	}
	calls := f.callCount()
	time.Sleep(20 * time.Millisecond)
	if f.callCount() != calls {
		t.Fatal("Follow kept calling the feed after returning")
	}
}

func TestFollowRejectsBadInterval(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("want panic on zero interval")
		}
	}()
	NewSet().Follow(context.Background(), &fakeFeed{}, 0, nil, nil)
}

// TestConcurrent runs readers against writers under -race.
func TestConcurrent(t *testing.T) {
	s := NewSet()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				s.Revoked("j10", "s10", "u10", t0)
				_ = s.Len()
				_ = s.Cursor()
			}
		}()
	}
	for i := 1; i <= 2000; i++ {
		s.Add(Entry{Seq: int64(i), Kind: Token, Value: fmt.Sprint("j", i), ExpiresAt: t0.Add(time.Duration(i) * time.Second)})
		if i%100 == 0 {
			s.Prune(t0.Add(time.Duration(i/2) * time.Second))
		}
	}
	close(stop)
	wg.Wait()
	if s.Cursor() != 2000 {
		t.Fatalf("Cursor %d", s.Cursor())
	}
	// Entries 1..1000 expired at the last prune (t0+1000s).
	if s.Len() != 1000 {
		t.Fatalf("Len %d, want 1000", s.Len())
	}
}

// rwSet is the simplest design (one RWMutex over maps) kept here only to
// benchmark against the Set.
type rwSet struct {
	mu   sync.RWMutex
	jti  map[string]struct{}
	sid  map[string]struct{}
	user map[string]int64
}

func (s *rwSet) Revoked(jti, sid, sub string, iat time.Time) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if _, ok := s.jti[jti]; ok {
		return true
	}
	if _, ok := s.sid[sid]; ok {
		return true
	}
	if c, ok := s.user[sub]; ok && iat.Unix() < c {
		return true
	}
	return false
}

type revokedChecker interface {
	Revoked(jti, sid, sub string, iat time.Time) bool
}

// BenchmarkRevoked measures the request-path lookup under parallel load
// with 10 000 entries of each kind, for a token that is not revoked (the
// common case) and for one revoked by user cutoff (all three lookups).
func BenchmarkRevoked(b *testing.B) {
	const n = 10000
	s := NewSet()
	rw := &rwSet{jti: map[string]struct{}{}, sid: map[string]struct{}{}, user: map[string]int64{}}
	var entries []Entry
	for i := 0; i < n; i++ {
		entries = append(entries,
			Entry{Seq: int64(3*i + 1), Kind: Token, Value: fmt.Sprintf("jti-%016x", i)},
			Entry{Seq: int64(3*i + 2), Kind: Session, Value: fmt.Sprintf("sid-%016x", i)},
			Entry{Seq: int64(3*i + 3), Kind: User, Value: fmt.Sprintf("usr-%016x", i), Cutoff: t0},
		)
		rw.jti[fmt.Sprintf("jti-%016x", i)] = struct{}{}
		rw.sid[fmt.Sprintf("sid-%016x", i)] = struct{}{}
		rw.user[fmt.Sprintf("usr-%016x", i)] = t0.Unix()
	}
	s.Add(entries...)
	impls := []struct {
		name string
		set  revokedChecker
	}{{"set", s}, {"rwmutex", rw}}
	lookups := []struct {
		name          string
		jti, sid, sub string
		want          bool
	}{
		{"miss", "019a7b2c-0000-7000-8000-00000000abcd", "019a7b2c-0000-7000-8000-00000000dcba", "019a7b2c-0000-7000-8000-000000001234", false},
		{"user-hit", "019a7b2c-0000-7000-8000-00000000abcd", "019a7b2c-0000-7000-8000-00000000dcba", fmt.Sprintf("usr-%016x", 77), true},
	}
	for _, impl := range impls {
		for _, l := range lookups {
			b.Run(impl.name+"/"+l.name, func(b *testing.B) {
				iat := t0.Add(-time.Minute)
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if impl.set.Revoked(l.jti, l.sid, l.sub, iat) != l.want {
							panic("wrong answer")
						}
					}
				})
			})
		}
	}
}

func TestChanged(t *testing.T) {
	s := NewSet()
	ch := s.Changed()
	select {
	case <-ch:
		t.Fatal("closed before any change")
	default:
	}
	s.Add(Entry{Seq: 1, Kind: Session, Value: "a", ExpiresAt: time.Now().Add(time.Hour)})
	select {
	case <-ch:
	default:
		t.Fatal("not closed after the cursor moved")
	}
	next := s.Changed()
	s.Add(Entry{Seq: 1, Kind: Session, Value: "a", ExpiresAt: time.Now().Add(time.Hour)})
	select {
	case <-next:
		t.Fatal("closed although the cursor did not move")
	default:
	}
}

func TestKeyKind(t *testing.T) {
	s := NewSet()
	s.Add(Entry{Seq: 1, Kind: Key, Value: "kid-1", ExpiresAt: t0.Add(time.Minute)},
		Entry{Seq: 2, Kind: Session, Value: "kid-2", ExpiresAt: t0.Add(time.Hour)})
	if !s.KeyRevoked("kid-1") {
		t.Fatal("listed kid not revoked")
	}
	if s.KeyRevoked("kid-2") || s.KeyRevoked("") || s.KeyRevoked("other") {
		t.Fatal("a kid that is not listed as a key is revoked")
	}
	if s.Revoked("kid-1", "", "kid-1", t0) {
		t.Fatal("a kid entry revokes by jti or user")
	}
	if n := s.Prune(t0.Add(time.Minute)); n != 1 || s.KeyRevoked("kid-1") || s.Len() != 1 {
		t.Fatalf("Prune removed %d, KeyRevoked %v, Len %d", n, s.KeyRevoked("kid-1"), s.Len())
	}
}

// TestLookupsDoNotAllocate: Revoked and KeyRevoked run on every request.
func TestLookupsDoNotAllocate(t *testing.T) {
	s := NewSet()
	s.Add(fill(3000, 0)...)
	s.Add(Entry{Seq: 5000, Kind: Key, Value: "kid-1"})
	hitSid, hitUser := fmt.Sprintf("%s-%016x", Session, 1), fmt.Sprintf("%s-%016x", User, 2)
	if n := testing.AllocsPerRun(100, func() {
		if s.Revoked("nope", "nope", "nope", t0) || !s.Revoked("nope", hitSid, "", t0) || !s.Revoked("", "", hitUser, t0.Add(-time.Hour)) ||
			!s.KeyRevoked("kid-1") || s.KeyRevoked("kid-2") {
			panic("wrong answer")
		}
	}); n != 0 {
		t.Fatalf("lookups allocate %v times", n)
	}
}

// TestPruneKeepsTrackOfNextExpiry: Prune skips work until the earliest
// expiry, and still finds every later one.
func TestPruneKeepsTrackOfNextExpiry(t *testing.T) {
	s := NewSet()
	for i := range 10 {
		s.Add(Entry{Seq: int64(i + 1), Kind: Session, Value: fmt.Sprint("s", i), ExpiresAt: t0.Add(time.Duration(i+1) * time.Minute)})
	}
	s.Add(Entry{Seq: 11, Kind: User, Value: "u", Cutoff: t0, ExpiresAt: t0.Add(90 * time.Second)},
		Entry{Seq: 12, Kind: Token, Value: "forever"})
	for i, want := range []int{0, 1, 2, 0, 1} { // at t0, +1m, +2m, +2m30s, +3m
		now := []time.Time{t0, t0.Add(time.Minute), t0.Add(2 * time.Minute), t0.Add(150 * time.Second), t0.Add(3 * time.Minute)}[i]
		if n := s.Prune(now); n != want {
			t.Fatalf("Prune(%v) = %d, want %d", now.Sub(t0), n, want)
		}
	}
	if s.Len() != 8 || !s.Revoked("forever", "", "", t0) || s.Revoked("", "s2", "", t0) || !s.Revoked("", "s3", "", t0) {
		t.Fatalf("after pruning: Len %d", s.Len())
	}
}

// TestLastSyncIsMonotonic: LastSync keeps the monotonic clock reading of
// the time it was given, so a verifier comparing it with time.Now
// measures elapsed time: a wall clock stepped back (an NTP correction, a
// restored VM) cannot make a stale set look fresh for the size of the
// step, as a LastSync rebuilt from Unix nanoseconds did. A time without a
// reading (a test clock) is kept as given.
func TestLastSyncIsMonotonic(t *testing.T) {
	s := NewSet()
	if !s.LastSync().IsZero() {
		t.Fatalf("LastSync of a new set = %v, want zero", s.LastSync())
	}
	now := time.Now()
	s.MarkSynced(now)
	if last := s.LastSync(); !strings.Contains(last.String(), " m=") || !last.Equal(now) {
		t.Fatalf("LastSync = %v after MarkSynced(%v): want the same instant, with its monotonic reading", last, now)
	}
	at := time.Date(2031, time.March, 14, 15, 9, 26, 535897000, time.UTC)
	s = NewSet()
	s.MarkSynced(at)
	if last := s.LastSync(); !last.Equal(at) {
		t.Fatalf("LastSync = %v after MarkSynced(%v)", last, at)
	}
	s.MarkSynced(at.Add(-time.Second))
	if last := s.LastSync(); !last.Equal(at) {
		t.Fatalf("LastSync moved back to %v", last)
	}
}
