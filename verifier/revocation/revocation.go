// Package revocation keeps the in-memory revocation set that every verifier
// consults on every request.
//
// A [Set] holds three kinds of entries (see [Kind]): revoked
// access tokens by jti, revoked sessions by sid, and per-user cutoffs ("every
// token of this user issued before T"). Lookups never do I/O: the set is
// filled from a durable, ordered feed ([Feed], satisfied by
// a Latch store) by [Set.Sync], typically in a background loop run
// by [Set.Follow].
//
// Reads are lock-free: the set is an immutable snapshot behind an atomic
// pointer, replaced (copy on write) when entries are added or pruned. Writes
// are rare (a sync every few seconds) and the set is small because every
// entry expires once no token it covers can still be valid.
package revocation

import (
	"context"
	"errors"
	"fmt"
	"maps"
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

// entry is what the set remembers of a jti or sid entry.
type entry struct {
	expires time.Time // zero: never
}

// cutoff is what the set remembers of a user entry.
type cutoff struct {
	sec     int64     // cutoff truncated to whole seconds, as Unix time
	at      time.Time // the cutoff as received (latest wins)
	expires time.Time // zero: never
}

// snapshot is an immutable state of the set. Readers load it atomically
// and never lock; writers build a new one under Set.mu.
type snapshot struct {
	jti    map[string]entry
	sid    map[string]entry
	user   map[string]cutoff
	cursor int64
}

func (s *snapshot) len() int { return len(s.jti) + len(s.sid) + len(s.user) }

// Set is an in-memory revocation set. It is safe for concurrent use; its
// zero value is not usable, create one with [NewSet].
type Set struct {
	snap    atomic.Pointer[snapshot]
	mu      sync.Mutex    // serialises writers (Add, Prune)
	changed chan struct{} // closed, under mu, when the cursor moves

	syncMu   sync.Mutex // serialises Sync calls
	lastSync atomic.Pointer[time.Time]
	pageSize int
}

// NewSet returns an empty set with Cursor 0.
func NewSet() *Set {
	s := &Set{pageSize: DefaultPageSize, changed: make(chan struct{})}
	s.snap.Store(&snapshot{
		jti:  map[string]entry{},
		sid:  map[string]entry{},
		user: map[string]cutoff{},
	})
	return s
}

// Add applies entries to the set. It is idempotent: applying an entry again
// changes nothing. Entries of kind [Token] are keyed by jti,
// [Session] by sid and [User] by user id; for a user
// the latest Cutoff wins. When the same value is listed more than once the
// latest ExpiresAt is kept (a zero ExpiresAt means the entry never expires).
// Entries with an empty Value or an unknown Kind cover no token and are
// skipped, but their Seq still advances the cursor.
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
	old := s.snap.Load()
	next := &snapshot{jti: old.jti, sid: old.sid, user: old.user, cursor: old.cursor}
	var cloned [3]bool // copy a map only when it is about to change
	for _, e := range entries {
		if e.Seq > next.cursor {
			next.cursor = e.Seq
		}
		if e.Value == "" {
			continue
		}
		switch e.Kind {
		case Token, Session:
			m, i := next.jti, 0
			if e.Kind == Session {
				m, i = next.sid, 1
			}
			cur, ok := m[e.Value]
			if ok && !laterExpiry(e.ExpiresAt, cur.expires) {
				continue
			}
			if !cloned[i] {
				m = maps.Clone(m)
				if i == 0 {
					next.jti = m
				} else {
					next.sid = m
				}
				cloned[i] = true
			}
			m[e.Value] = entry{expires: e.ExpiresAt}
		case User:
			c := cutoff{sec: e.Cutoff.Unix(), at: e.Cutoff, expires: e.ExpiresAt}
			if cur, ok := next.user[e.Value]; ok {
				if cur.at.After(c.at) {
					c.at, c.sec = cur.at, cur.sec
				}
				if !laterExpiry(c.expires, cur.expires) {
					c.expires = cur.expires
				}
				if c == cur {
					continue
				}
			}
			if !cloned[2] {
				next.user = maps.Clone(next.user)
				cloned[2] = true
			}
			next.user[e.Value] = c
		}
	}
	s.snap.Store(next)
	if next.cursor != old.cursor {
		close(s.changed)
		s.changed = make(chan struct{})
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
// Revoked does not lock or allocate.
func (s *Set) Revoked(jti, sid, sub string, iat time.Time) bool {
	snap := s.snap.Load()
	if jti != "" && len(snap.jti) != 0 {
		if _, ok := snap.jti[jti]; ok {
			return true
		}
	}
	if sid != "" && len(snap.sid) != 0 {
		if _, ok := snap.sid[sid]; ok {
			return true
		}
	}
	if sub != "" && len(snap.user) != 0 {
		if c, ok := snap.user[sub]; ok && iat.Unix() < c.sec {
			return true
		}
	}
	return false
}

// Prune removes the entries whose ExpiresAt is at or before now and returns
// how many it removed. Entries with a zero ExpiresAt are kept.
func (s *Set) Prune(now time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.snap.Load()
	expired := func(t time.Time) bool { return !t.IsZero() && !t.After(now) }
	n := 0
	next := &snapshot{jti: old.jti, sid: old.sid, user: old.user, cursor: old.cursor}
	pruneEntries := func(m map[string]entry) map[string]entry {
		count := 0
		for _, e := range m {
			if expired(e.expires) {
				count++
			}
		}
		if count == 0 {
			return m
		}
		n += count
		out := make(map[string]entry, len(m)-count)
		for k, e := range m {
			if !expired(e.expires) {
				out[k] = e
			}
		}
		return out
	}
	next.jti = pruneEntries(old.jti)
	next.sid = pruneEntries(old.sid)
	count := 0
	for _, c := range old.user {
		if expired(c.expires) {
			count++
		}
	}
	if count > 0 {
		n += count
		out := make(map[string]cutoff, len(old.user)-count)
		for k, c := range old.user {
			if !expired(c.expires) {
				out[k] = c
			}
		}
		next.user = out
	}
	if n > 0 {
		s.snap.Store(next)
	}
	return n
}

// Cursor returns the highest Seq the set has seen, 0 if none.
func (s *Set) Cursor() int64 { return s.snap.Load().cursor }

// Len returns the number of entries in the set: listed jtis, listed sids and
// users with a cutoff.
func (s *Set) Len() int { return s.snap.Load().len() }

// LastSync returns the now of the last Sync that completed without error, or
// the zero time if none did. A fail-closed policy can compare it with the
// clock to refuse tokens when the set is too stale.
func (s *Set) LastSync() time.Time {
	if t := s.lastSync.Load(); t != nil {
		return *t
	}
	return time.Time{}
}

// MarkSynced records now as LastSync without fetching anything: a live
// feed that proves nothing was missed (a stream heartbeat, an empty page)
// makes the set as fresh as a Sync would.
func (s *Set) MarkSynced(now time.Time) {
	t := now
	s.lastSync.Store(&t)
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
	t := now
	s.lastSync.Store(&t)
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
