package revocation

import (
	"fmt"
	"maps"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// cowSet is the copy-on-write design the Set had before (every addition
// cloned the map it changed), kept only as the baseline of the benchmarks
// below, run side by side with the Set.
type cowSet struct {
	mu   sync.Mutex
	snap atomic.Pointer[cowSnapshot]
}

type cowSnapshot struct {
	jti, sid map[string]time.Time
	user     map[string]cutoff
}

func newCowSet() *cowSet {
	s := &cowSet{}
	s.snap.Store(&cowSnapshot{jti: map[string]time.Time{}, sid: map[string]time.Time{}, user: map[string]cutoff{}})
	return s
}

func (s *cowSet) Add(entries ...Entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.snap.Load()
	next := *old
	var cloned [3]bool
	for _, e := range entries {
		switch e.Kind {
		case Token, Session:
			m, i := &next.jti, 0
			if e.Kind == Session {
				m, i = &next.sid, 1
			}
			if !cloned[i] {
				*m = maps.Clone(*m)
				cloned[i] = true
			}
			(*m)[e.Value] = e.ExpiresAt
		case User:
			if !cloned[2] {
				next.user = maps.Clone(next.user)
				cloned[2] = true
			}
			next.user[e.Value] = cutoff{sec: e.Cutoff.Unix(), at: e.Cutoff, expires: e.ExpiresAt}
		}
	}
	s.snap.Store(&next)
}

func (s *cowSet) Revoked(jti, sid, sub string, iat time.Time) bool {
	snap := s.snap.Load()
	if _, ok := snap.jti[jti]; ok && jti != "" {
		return true
	}
	if _, ok := snap.sid[sid]; ok && sid != "" {
		return true
	}
	c, ok := snap.user[sub]
	return ok && sub != "" && iat.Unix() < c.sec
}

func (s *cowSet) Prune(now time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.snap.Load()
	expired := func(t time.Time) bool { return !t.IsZero() && !t.After(now) }
	n := 0
	prune := func(m map[string]time.Time) map[string]time.Time {
		count := 0
		for _, e := range m {
			if expired(e) {
				count++
			}
		}
		if count == 0 {
			return m
		}
		n += count
		out := make(map[string]time.Time, len(m)-count)
		for k, e := range m {
			if !expired(e) {
				out[k] = e
			}
		}
		return out
	}
	next := &cowSnapshot{jti: prune(old.jti), sid: prune(old.sid), user: old.user}
	count := 0
	for _, c := range old.user {
		if expired(c.expires) {
			count++
		}
	}
	if count > 0 {
		n += count
		next.user = make(map[string]cutoff, len(old.user)-count)
		for k, c := range old.user {
			if !expired(c.expires) {
				next.user[k] = c
			}
		}
	}
	if n > 0 {
		s.snap.Store(next)
	}
	return n
}

// benchSet is what the benchmarks exercise.
type benchSet interface {
	Add(...Entry)
	Revoked(jti, sid, sub string, iat time.Time) bool
	Prune(time.Time) int
}

// million is the size of the set in the benchmarks.
const million = 1_000_000

// fill returns entries for a set of n: a third each of jti, sid and user
// entries, expiring an hour after t0 (the first expireFirst at t0).
func fill(n, expireFirst int) []Entry {
	es := make([]Entry, n)
	kinds := [3]Kind{Token, Session, User}
	for i := range es {
		exp := t0.Add(time.Hour)
		if i < expireFirst {
			exp = t0
		}
		es[i] = Entry{Seq: int64(i + 1), Kind: kinds[i%3], Value: fmt.Sprintf("%s-%016x", kinds[i%3], i), Cutoff: t0, ExpiresAt: exp}
	}
	return es
}

var benchImpls = []struct {
	name string
	new  func() benchSet
}{
	{"set", func() benchSet { return NewSet() }},
	{"cow", func() benchSet { return newCowSet() }},
}

// BenchmarkAdd1e6 adds one entry (the common sync: a logout) to a set
// that already holds 10^6.
func BenchmarkAdd1e6(b *testing.B) {
	base := fill(million, 0)
	for _, impl := range benchImpls {
		b.Run(impl.name, func(b *testing.B) {
			s := impl.new()
			s.Add(base...)
			runtime.GC()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				s.Add(Entry{Seq: int64(million + i + 1), Kind: Session, Value: fmt.Sprintf("new-%016x", i), ExpiresAt: t0.Add(time.Hour)})
			}
		})
	}
}

// BenchmarkRevoked1e6 is the request-path lookup on a set of 10^6
// entries, under parallel load: a token that is not revoked (the common
// case, all three lookups) and one revoked by its sid.
func BenchmarkRevoked1e6(b *testing.B) {
	base := fill(million, 0)
	for _, impl := range benchImpls {
		s := impl.new()
		s.Add(base...)
		for _, l := range []struct {
			name          string
			jti, sid, sub string
			want          bool
		}{
			{"miss", "019a7b2c-0000-7000-8000-00000000abcd", "019a7b2c-0000-7000-8000-00000000dcba", "019a7b2c-0000-7000-8000-000000001234", false},
			{"sid-hit", "019a7b2c-0000-7000-8000-00000000abcd", fmt.Sprintf("%s-%016x", Session, 4), "nobody", true},
		} {
			b.Run(impl.name+"/"+l.name, func(b *testing.B) {
				iat := t0.Add(-time.Minute)
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if s.Revoked(l.jti, l.sid, l.sub, iat) != l.want {
							panic("wrong answer")
						}
					}
				})
			})
		}
	}
}

// BenchmarkPrune1e6 prunes a set of 10^6 entries: when nothing has
// expired (most rounds), and when 1 % has (10^4 entries, refilled between
// rounds outside the timer).
func BenchmarkPrune1e6(b *testing.B) {
	base := fill(million, 0)
	expiring := fill(million/100, million/100)
	for i := range expiring {
		expiring[i].Value = "exp-" + expiring[i].Value
	}
	for _, impl := range benchImpls {
		s := impl.new()
		s.Add(base...)
		b.Run(impl.name+"/none", func(b *testing.B) {
			for b.Loop() {
				if s.Prune(t0.Add(time.Minute)) != 0 {
					panic("pruned")
				}
			}
		})
		b.Run(impl.name+"/1pct", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				s.Add(expiring...)
				b.StartTimer()
				if n := s.Prune(t0.Add(time.Minute)); n != len(expiring) {
					panic(fmt.Sprintf("pruned %d", n))
				}
			}
		})
	}
}
