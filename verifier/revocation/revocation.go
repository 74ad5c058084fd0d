// Package revocation keeps the in-memory revocation set that every verifier
// consults on every request.
//
// A [Set] holds four kinds of entries (see [Kind]): revoked
// access tokens by jti, revoked sessions by sid, per-user cutoffs ("every
// token of this user issued before T") and revoked signing keys by kid.
// Lookups never do I/O: the set is filled from a durable, ordered feed
// ([Feed], satisfied by a Latch store) by [Set.Sync], typically in a
// background loop run by [Set.Follow], or from a Latch server's feed by
// [Remote].
//
// Each kind of entry lives in a concurrent hash-trie map (sync.Map, a
// HashTrieMap since Go 1.24): a lookup is lock-free and does not
// allocate, an addition costs O(log n) in the size of the set and copies
// nothing else, and writers (a sync every few hundred milliseconds) never
// block readers. The maps take 1.7 times the memory of plain maps (156
// against 92 bytes an entry at 10^6 entries, the strings aside).
package revocation

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultPageSize is the number of entries Sync asks the feed for at a time.
const DefaultPageSize = 1000

// Feed is the ordered, durable source of revocation entries. It is satisfied
// by a Latch store and, later, by a remote feed client.
type Feed interface {
	// RevocationsAfter returns up to limit entries with Seq > after that
	// have not expired at now, in ascending Seq.
	RevocationsAfter(ctx context.Context, after int64, now time.Time, limit int) ([]Entry, error)
}

// cutoff is what the set remembers of a user entry. Stored values are
// never modified: an update stores a new one.
type cutoff struct {
	sec     int64     // cutoff truncated to whole seconds, as Unix time
	at      time.Time // the cutoff as received (latest wins)
	expires time.Time // zero: never
}

// Set is an in-memory revocation set. It is safe for concurrent use; its
// zero value is not usable, create one with [NewSet].
type Set struct {
	// jti, sid and kid map a value to its expiry (time.Time, zero:
	// never); user maps a user id to a *cutoff.
	jti, sid, kid, user sync.Map
	n                   atomic.Int64 // entries in all maps
	cursor              atomic.Int64

	mu      sync.Mutex    // serialises writers (Add, Prune)
	changed chan struct{} // closed, under mu, when the cursor moves
	next    time.Time     // under mu: no entry expires before; zero: none expires

	syncMu   sync.Mutex   // serialises Sync calls
	lastSync atomic.Int64 // LastSync as nanoseconds after clockBase; neverSynced: never
	pageSize int
}

// NewSet returns an empty set with Cursor 0.
func NewSet() *Set {
	s := &Set{pageSize: DefaultPageSize, changed: make(chan struct{})}
	s.lastSync.Store(neverSynced)
	return s
}

// clockBase is the instant freshness times are stored from. It carries
// the process's monotonic clock reading, and so does every time rebuilt
// from it: comparing LastSync with time.Now measures elapsed time even if
// the wall clock is stepped back (an NTP correction, a restored VM), which
// would otherwise make a stale set look fresh for the size of the step.
var clockBase = time.Now()

// neverSynced marks a set that never synced.
const neverSynced = math.MinInt64

// sinceBase returns t as nanoseconds after clockBase: by the monotonic
// clock if t has a reading (time.Now does), by the wall clock otherwise.
func sinceBase(t time.Time) int64 { return max(int64(t.Sub(clockBase)), neverSynced+1) }

// fromBase is the inverse of sinceBase.
func fromBase(ns int64) time.Time { return clockBase.Add(time.Duration(ns)) }

// Add applies entries to the set. It is idempotent: applying an entry again
// changes nothing. Entries of kind [Token] are keyed by jti,
// [Session] by sid, [Key] by kid and [User] by user id; for a user
// the latest Cutoff wins. When the same value is listed more than once the
// latest ExpiresAt is kept (a zero ExpiresAt means the entry never expires).
// Entries with an empty Value or an unknown Kind cover no token and are
// skipped, but their Seq still advances the cursor.
//
// Each entry costs O(log n): one insertion into one map; nothing else is
// copied.
//
// Cursor moves to the highest Seq seen. Sync asks the feed for entries after
// the cursor, so entries pushed through another channel (e.g. pub/sub fan-out)
// should trigger a Sync rather than be added directly, unless they are known
// to be contiguous with the cursor; otherwise a gap could be skipped.
func (s *Set) Add(entries ...Entry) {
	if len(entries) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.cursor.Load()
	cur := old
	for _, e := range entries {
		cur = max(cur, e.Seq)
		if e.Value != "" {
			s.add(e)
		}
	}
	if cur != old {
		s.cursor.Store(cur)
		close(s.changed)
		s.changed = make(chan struct{})
	}
}

// add inserts one entry; s.mu is held.
func (s *Set) add(e Entry) {
	var m *sync.Map
	switch e.Kind {
	case Token:
		m = &s.jti
	case Session:
		m = &s.sid
	case Key:
		m = &s.kid
	case User:
		c := &cutoff{sec: e.Cutoff.Unix(), at: e.Cutoff, expires: e.ExpiresAt}
		if v, ok := s.user.Load(e.Value); ok {
			cur := v.(*cutoff)
			if cur.at.After(c.at) {
				c.at, c.sec = cur.at, cur.sec
			}
			if !laterExpiry(c.expires, cur.expires) {
				c.expires = cur.expires
			}
			if *c == *cur {
				return
			}
		} else {
			s.n.Add(1)
		}
		s.user.Store(e.Value, c)
		s.due(c.expires)
		return
	default:
		return
	}
	if v, ok := m.Load(e.Value); ok {
		if !laterExpiry(e.ExpiresAt, v.(time.Time)) {
			return
		}
	} else {
		s.n.Add(1)
	}
	m.Store(e.Value, e.ExpiresAt)
	s.due(e.ExpiresAt)
}

// due lowers s.next to exp if exp comes first; s.mu is held.
func (s *Set) due(exp time.Time) {
	if !exp.IsZero() && (s.next.IsZero() || exp.Before(s.next)) {
		s.next = exp
	}
}

// Changed returns a channel that is closed when the cursor next moves, so
// that a waiter (a revocation stream) wakes at once instead of polling.
// Take the channel before reading the cursor, then wait on it: no move can
// slip between the two.
func (s *Set) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// laterExpiry reports whether expiry a outlasts b; zero means never.
func laterExpiry(a, b time.Time) bool {
	if b.IsZero() {
		return false
	}
	return a.IsZero() || a.After(b)
}

// Revoked reports whether an access token is revoked: its jti is listed, its
// sid is listed, or its subject has a cutoff and the token was issued before
// it. Empty jti, sid or sub match nothing.
//
// Token iat has whole-second precision while a cutoff is an instant, so the
// cutoff is truncated to the second: the token is revoked iff
// iat < cutoff.Truncate(time.Second) (compared as Unix seconds). A token
// issued in the same second as the cutoff is therefore not covered by the
// cutoff, which keeps a token issued just after "log out everywhere" (same
// second) valid. A token issued in that second but before the cutoff belongs
// to a session that was live at the cutoff, and the server writes a
// [Session] entry for each such session in the same transaction
// as the cutoff, so it is revoked by its sid. A zero iat (missing) is before
// every cutoff.
//
// Entries past their ExpiresAt that were not pruned yet still match; that is
// harmless, since no token they cover can still be valid.
//
// Revoked is lock-free and does not allocate.
func (s *Set) Revoked(jti, sid, sub string, iat time.Time) bool {
	if s.n.Load() == 0 {
		return false
	}
	if jti != "" {
		if _, ok := s.jti.Load(jti); ok {
			return true
		}
	}
	if sid != "" {
		if _, ok := s.sid.Load(sid); ok {
			return true
		}
	}
	if sub != "" {
		if v, ok := s.user.Load(sub); ok && iat.Unix() < v.(*cutoff).sec {
			return true
		}
	}
	return false
}

// KeyRevoked reports whether the signing key named kid is revoked: a token
// whose header names it must be refused, whatever its claims. An empty kid
// matches nothing. It is lock-free and does not allocate.
func (s *Set) KeyRevoked(kid string) bool {
	if kid == "" || s.n.Load() == 0 {
		return false
	}
	_, ok := s.kid.Load(kid)
	return ok
}

// Prune removes the entries whose ExpiresAt is at or before now and returns
// how many it removed. Entries with a zero ExpiresAt are kept. It costs
// nothing until the earliest expiry in the set has passed, then scans the
// set once; lookups go on meanwhile.
func (s *Set) Prune(now time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.next.IsZero() || s.next.After(now) {
		return 0
	}
	s.next = time.Time{}
	n := 0
	keep := func(exp time.Time) bool {
		if exp.IsZero() || exp.After(now) {
			s.due(exp)
			return true
		}
		n++
		return false
	}
	for _, m := range []*sync.Map{&s.jti, &s.sid, &s.kid} {
		m.Range(func(k, v any) bool {
			if !keep(v.(time.Time)) {
				m.Delete(k)
			}
			return true
		})
	}
	s.user.Range(func(k, v any) bool {
		if !keep(v.(*cutoff).expires) {
			s.user.Delete(k)
		}
		return true
	})
	s.n.Add(int64(-n))
	return n
}

// Cursor returns the highest Seq the set has seen, 0 if none.
func (s *Set) Cursor() int64 { return s.cursor.Load() }

// Len returns the number of entries in the set: listed jtis, listed sids and
// users with a cutoff, listed kids.
func (s *Set) Len() int { return int(s.n.Load()) }

// LastSync returns the now of the last Sync that completed without error, or
// the zero time if none did. A fail-closed policy can compare it with the
// clock to refuse tokens when the set is too stale. When the times given
// to Sync and MarkSynced come from time.Now, it carries a monotonic clock
// reading, so that comparing it with time.Now is immune to steps of the
// wall clock.
func (s *Set) LastSync() time.Time {
	ns := s.lastSync.Load()
	if ns == neverSynced {
		return time.Time{}
	}
	return fromBase(ns)
}

// MarkSynced records that the set was known to be complete at t, without
// fetching anything: a feed that vouches for its own freshness (a stream
// heartbeat, the last page of a catch-up) makes the set as fresh as the
// feed's source was. LastSync never moves back: an older t is ignored.
func (s *Set) MarkSynced(t time.Time) {
	ns := sinceBase(t)
	for {
		old := s.lastSync.Load()
		if old >= ns || s.lastSync.CompareAndSwap(old, ns) {
			return
		}
	}
}

// errNoProgress is returned when a feed returns entries that do not move the
// cursor, which would otherwise loop forever.
var errNoProgress = errors.New("revocation: feed returned no entry after the cursor")

// Sync pulls every entry after Cursor from f, page by page, until the feed is
// exhausted, applying each page as it arrives. now is passed to the feed
// (entries expired at now are not returned) and recorded as LastSync on
// success. It returns the number of entries received. On error the pages
// already received stay applied and Sync can simply be called again.
func (s *Set) Sync(ctx context.Context, f Feed, now time.Time) (int, error) {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	total := 0
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		after := s.Cursor()
		page, err := f.RevocationsAfter(ctx, after, now, s.pageSize)
		if err != nil {
			return total, fmt.Errorf("revocation: sync after %d: %w", after, err)
		}
		s.Add(page...)
		total += len(page)
		if len(page) < s.pageSize {
			break
		}
		if s.Cursor() <= after {
			return total, errNoProgress
		}
	}
	s.MarkSynced(now)
	return total, nil
}

// Follow keeps the set in sync with f until ctx is done: it calls Sync and
// then Prune immediately and every interval after that, passing the time
// from clock (nil means time.Now). Errors of Sync are reported to onErr
// (which may be nil) and retried at the next tick; the set keeps serving
// what it has. Follow blocks; run it in its own goroutine. every must be
// positive.
func (s *Set) Follow(ctx context.Context, f Feed, every time.Duration, clock func() time.Time, onErr func(error)) {
	if every <= 0 {
		panic("revocation: Follow interval must be positive")
	}
	if clock == nil {
		clock = time.Now
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		now := clock()
		// A feed that stops answering must not stall the follower: each
		// round gets a deadline of a few intervals.
		sctx, cancel := context.WithTimeout(ctx, max(4*every, 2*time.Second))
		_, err := s.Sync(sctx, f, now)
		cancel()
		if err != nil && onErr != nil && ctx.Err() == nil {
			onErr(err)
		}
		s.Prune(now)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
