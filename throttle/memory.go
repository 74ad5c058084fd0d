package throttle

import (
	"context"
	"slices"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// maxTracked bounds the memory of a Memory state: past it, the idlest
// entries are forgotten (an attacker rotating addresses gains nothing a
// per-address limit could have stopped anyway). A running lock is never
// forgotten early.
const maxTracked = 100_000

// Memory is a State in this process's memory: each instance throttles on
// its own. It never fails.
type Memory struct {
	now func() time.Time

	mu       sync.Mutex
	budgets  map[string]*budget
	counters map[string]*counter
	marks    map[string]time.Time // locks and marks: until when
}

type budget struct {
	lim  *rate.Limiter
	seen time.Time
}

type counter struct {
	n       int
	expires time.Time
}

// NewMemory returns an empty Memory state reading the time from now (nil
// means time.Now).
func NewMemory(now func() time.Time) *Memory {
	if now == nil {
		now = time.Now
	}
	return &Memory{now: now, budgets: map[string]*budget{}, counters: map[string]*counter{}, marks: map[string]time.Time{}}
}

// Take implements State.
func (m *Memory) Take(_ context.Context, key string, perMinute int) (time.Duration, error) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	b := m.budgets[key]
	if b == nil {
		if len(m.budgets) >= maxTracked {
			evictIdle(m.budgets, func(b *budget) time.Time { return b.seen }, nil)
		}
		b = &budget{lim: rate.NewLimiter(rate.Every(time.Minute/time.Duration(perMinute)), perMinute)}
		m.budgets[key] = b
	}
	b.seen = now
	r := b.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return d, nil
	}
	return 0, nil
}

// Fail implements State.
func (m *Memory) Fail(_ context.Context, f Failure) (int, error) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.counters[f.Counter]
	if c == nil || !now.Before(c.expires) {
		if c == nil && len(m.counters) >= maxTracked {
			evictCounters(m.counters, now)
		}
		c = &counter{expires: now.Add(f.Window)}
		m.counters[f.Counter] = c
	}
	c.n++
	if f.Max > 0 && c.n >= f.Max {
		m.setMark(f.Lock, now.Add(f.Lockout), now)
	}
	return c.n, nil
}

// setMark sets key until; m.mu is held.
func (m *Memory) setMark(key string, until, now time.Time) {
	if _, ok := m.marks[key]; !ok && len(m.marks) >= maxTracked {
		for k, u := range m.marks {
			if !now.Before(u) {
				delete(m.marks, k)
			}
		}
		// Every mark still running stays: each cost an attacker
		// MaxFailures password hashes.
	}
	m.marks[key] = until
}

// Locked implements State.
func (m *Memory) Locked(_ context.Context, keys ...string) (time.Duration, error) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	var d time.Duration
	for _, key := range keys {
		until, ok := m.marks[key]
		if !ok {
			continue
		}
		if !now.Before(until) {
			delete(m.marks, key)
			continue
		}
		d = max(d, until.Sub(now))
	}
	return d, nil
}

// Count implements State.
func (m *Memory) Count(_ context.Context, key string) (int, error) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if c := m.counters[key]; c != nil && now.Before(c.expires) {
		return c.n, nil
	}
	return 0, nil
}

// Mark implements State.
func (m *Memory) Mark(_ context.Context, key string, ttl time.Duration) (bool, error) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if until, ok := m.marks[key]; ok && now.Before(until) {
		return false, nil
	}
	m.setMark(key, now.Add(ttl), now)
	return true, nil
}

// Clear implements State.
func (m *Memory) Clear(_ context.Context, keys ...string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range keys {
		delete(m.counters, k)
		delete(m.marks, k)
		delete(m.budgets, k)
	}
	return nil
}

// Len returns how many entries the state holds (tests check its bound).
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.budgets) + len(m.counters) + len(m.marks)
}

// evictCounters makes room in a full map of counters: the expired ones
// go first, then a tenth of the map with the fewest counts. The fewest,
// not the oldest: the account-wide count of an account under attack is
// old and high, while a flood of cheap entries (a reset request for each
// of many emails, from many addresses) is new and low; dropping the
// oldest would let such a flood reset the count and lift the
// account-wide limit.
func evictCounters(m map[string]*counter, now time.Time) {
	for k, c := range m {
		if !now.Before(c.expires) {
			delete(m, k)
		}
	}
	drop := len(m) - maxTracked*9/10
	if drop <= 0 {
		return
	}
	perCount := map[int]int{}
	for _, c := range m {
		perCount[c.n]++
	}
	counts := make([]int, 0, len(perCount))
	for n := range perCount {
		counts = append(counts, n)
	}
	slices.Sort(counts)
	upTo, covered := 0, 0
	for _, n := range counts {
		upTo, covered = n, covered+perCount[n]
		if covered >= drop {
			break
		}
	}
	for k, c := range m {
		if drop == 0 {
			break
		}
		if c.n <= upTo {
			delete(m, k)
			drop--
		}
	}
}

// evictIdle drops the least recently seen tenth of m, except the entries
// keep (if not nil) holds on to.
func evictIdle[E any](m map[string]E, seen func(E) time.Time, keep func(E) bool) {
	var cutoff time.Time
	n := 0
	for _, e := range m { // a sample is enough to find a reasonable cutoff
		if s := seen(e); cutoff.IsZero() || s.After(cutoff) {
			cutoff = s
		}
		if n++; n == 64 {
			break
		}
	}
	drop := len(m) / 10
	for k, e := range m {
		if drop == 0 {
			break
		}
		if seen(e).Before(cutoff) && (keep == nil || !keep(e)) {
			delete(m, k)
			drop--
		}
	}
}
