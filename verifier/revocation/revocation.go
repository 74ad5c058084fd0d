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
// The set is split into shards by a hash of the value, each a few maps
// behind its own RWMutex: an addition costs one map insertion in one
// shard (O(1), whatever the size of the set), and a lookup takes one
// shard's read lock, which readers share, for a map lookup. Writers
// (a sync every few hundred milliseconds) block only the readers of the
// shard they touch, for the time of one insertion.
package revocation

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
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

// cutoff is what the set remembers of a user entry.
type cutoff struct {
	sec     int64     // cutoff truncated to whole seconds, as Unix time
	at      time.Time // the cutoff as received (latest wins)
	expires time.Time // zero: never
}

// nShards is the number of shards; a power of two.
const nShards = 64

// shard holds the entries whose value hashes to it. Maps are created on
// first use. The expiry of a jti, sid or kid entry is its value (zero:
// never).
type shard struct {
	mu   sync.RWMutex
	jti  map[string]time.Time
	sid  map[string]time.Time
	kid  map[string]time.Time
	user map[string]cutoff
	_    [64]byte // keeps hot locks of neighbouring shards off one cache line
}

// Set is an in-memory revocation set. It is safe for concurrent use; its
// zero value is not usable, create one with [NewSet].
type Set struct {
	seed   maphash.Seed
	shards [nShards]shard
	n      atomic.Int64 // entries in all shards
	cursor atomic.Int64

	mu      sync.Mutex    // serialises writers (Add, Prune)
	changed chan struct{} // closed, under mu, when the cursor moves

	syncMu   sync.Mutex   // serialises Sync calls
	lastSync atomic.Int64 // UnixNano of LastSync; 0: never
	pageSize int
}

// NewSet returns an empty set with Cursor 0.
func NewSet() *Set {
	return &Set{seed: maphash.MakeSeed(), pageSize: DefaultPageSize, changed: make(chan struct{})}
}

func (s *Set) shard(v string) *shard {
	return &s.shards[maphash.String(s.seed, v)&(nShards-1)]
}

// Add applies entries to the set. It is idempotent: applying an entry again
// changes nothing. Entries of kind [Token] are keyed by jti,
// [Session] by sid, [Key] by kid and [User] by user id; for a user
// the latest Cutoff wins. When the same value is listed more than once the
// latest ExpiresAt is kept (a zero ExpiresAt means the entry never expires).
// Entries with an empty Value or an unknown Kind cover no token and are
// skipped, but their Seq still advances the cursor.
//
// Each entry costs O(1): one insertion into one shard.
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

// add inserts one entry into its shard.
func (s *Set) add(e Entry) {
	sh := s.shard(e.Value)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	var m *map[string]time.Time
	switch e.Kind {
	case Token:
		m = &sh.jti
	case Session:
		m = &sh.sid
	case Key:
		m = &sh.kid
	case User:
		c := cutoff{sec: e.Cutoff.Unix(), at: e.Cutoff, expires: e.ExpiresAt}
		cur, ok := sh.user[e.Value]
		if ok {
			if cur.at.After(c.at) {
				c.at, c.sec = cur.at, cur.sec
			}
			if !laterExpiry(c.expires, cur.expires) {
				c.expires = cur.expires
			}
		} else {
			if sh.user == nil {
				sh.user = map[string]cutoff{}
			}
			s.n.Add(1)
		}
		sh.user[e.Value] = c
		return
	default:
		return
	}
	cur, ok := (*m)[e.Value]
	if ok && !laterExpiry(e.ExpiresAt, cur) {
		return
	}
	if *m == nil {
		*m = map[string]time.Time{}
	}
	if !ok {
		s.n.Add(1)
	}
	(*m)[e.Value] = e.ExpiresAt
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
// Revoked takes a shared read lock on up to three shards and does not
// allocate.
func (s *Set) Revoked(jti, sid, sub string, iat time.Time) bool {
	if s.n.Load() == 0 {
		return false
	}
	if jti != "" && s.listed(jti, Token) {
		return true
	}
	if sid != "" && s.listed(sid, Session) {
		return true
	}
	if sub != "" {
		sh := s.shard(sub)
		sh.mu.RLock()
		c, ok := sh.user[sub]
		sh.mu.RUnlock()
		if ok && iat.Unix() < c.sec {
			return true
		}
	}
	return false
}

// KeyRevoked reports whether the signing key named kid is revoked: a token
// whose header names it must be refused, whatever its claims. An empty kid
// matches nothing. It does not allocate.
func (s *Set) KeyRevoked(kid string) bool {
	return kid != "" && s.n.Load() != 0 && s.listed(kid, Key)
}

// listed reports whether v is listed as a jti, sid or kid.
func (s *Set) listed(v string, k Kind) bool {
	sh := s.shard(v)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	var ok bool
	switch k {
	case Token:
		_, ok = sh.jti[v]
	case Session:
		_, ok = sh.sid[v]
	case Key:
		_, ok = sh.kid[v]
	}
	return ok
}

// Prune removes the entries whose ExpiresAt is at or before now and returns
// how many it removed. Entries with a zero ExpiresAt are kept. It locks one
// shard at a time.
func (s *Set) Prune(now time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	expired := func(t time.Time) bool { return !t.IsZero() && !t.After(now) }
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for _, m := range []map[string]time.Time{sh.jti, sh.sid, sh.kid} {
			for k, exp := range m {
				if expired(exp) {
					delete(m, k)
					n++
				}
			}
		}
		for k, c := range sh.user {
			if expired(c.expires) {
				delete(sh.user, k)
				n++
			}
		}
		sh.mu.Unlock()
	}
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
// clock to refuse tokens when the set is too stale.
func (s *Set) LastSync() time.Time {
	ns := s.lastSync.Load()
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// MarkSynced records that the set was known to be complete at t, without
// fetching anything: a feed that vouches for its own freshness (a stream
// heartbeat, the last page of a catch-up) makes the set as fresh as the
// feed's source was. LastSync never moves back: an older t is ignored.
func (s *Set) MarkSynced(t time.Time) {
	ns := t.UnixNano()
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
