package auth

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// ErrRateLimited: too many sign-in attempts from one address.
// ErrAccountLocked: too many failed sign-ins for one email. Both come as a
// *ThrottleError that says when to retry.
var (
	ErrRateLimited   = errors.New("too many sign-in attempts")
	ErrAccountLocked = errors.New("account temporarily locked")
)

// ThrottleError is a refused sign-in and when it may be tried again.
type ThrottleError struct {
	Kind       error // ErrRateLimited or ErrAccountLocked
	RetryAfter time.Duration
}

func (e *ThrottleError) Error() string {
	return fmt.Sprintf("%v; retry in %v", e.Kind, e.RetryAfter.Round(time.Second))
}

// Unwrap lets errors.Is match the kind.
func (e *ThrottleError) Unwrap() error { return e.Kind }

// ThrottleConfig bounds sign-in attempts. Zero values disable a limit.
type ThrottleConfig struct {
	// PerIPPerMinute is the sustained rate of password attempts (sign-ins
	// and registrations, which cost the same hash) from one address, with
	// a burst of the same size. An IPv6 address counts as its /64, the
	// smallest network a single subscriber is usually given; an
	// IPv4-mapped IPv6 address counts as the IPv4 address.
	PerIPPerMinute int
	// MaxFailures consecutive failed sign-ins for one email lock it for
	// Lockout. Unknown emails are counted and locked exactly like real
	// ones, so a lock says nothing about whether an account exists.
	MaxFailures int
	Lockout     time.Duration
}

// maxTracked bounds the memory of the throttle: past it, the idlest
// entries are forgotten (an attacker rotating addresses gains nothing a
// per-address limit could have stopped anyway).
const maxTracked = 100_000

// throttle keeps the counters in memory, per instance.
type throttle struct {
	cfg ThrottleConfig
	now func() time.Time

	mu       sync.Mutex
	ips      map[string]*ipEntry
	failures map[string]*failEntry
}

type ipEntry struct {
	lim  *rate.Limiter
	seen time.Time
}

type failEntry struct {
	n           int
	lockedUntil time.Time
	seen        time.Time
}

func newThrottle(cfg ThrottleConfig, now func() time.Time) *throttle {
	return &throttle{cfg: cfg, now: now, ips: map[string]*ipEntry{}, failures: map[string]*failEntry{}}
}

// allow admits a sign-in attempt for email from ip, or says why not.
func (t *throttle) allow(ip, email string) error {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if f := t.failures[email]; f != nil && now.Before(f.lockedUntil) {
		return &ThrottleError{Kind: ErrAccountLocked, RetryAfter: f.lockedUntil.Sub(now)}
	}
	return t.allowAddress(ip, now)
}

// allowFrom admits a password attempt that names no account (a
// registration) from ip, or says why not. It draws on the same budget per
// address as sign-in.
func (t *throttle) allowFrom(ip string) error {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.allowAddress(ip, now)
}

// AllowAddress admits one attempt from ip against the per-address budget
// that sign-in and registration draw on (ThrottleConfig.PerIPPerMinute),
// or returns a *ThrottleError of kind ErrRateLimited. Other flows that
// can be abused from one address (a password-reset request) spend from
// the same budget.
func (s *Service) AllowAddress(ip string) error { return s.throttle.allowFrom(ip) }

// allowAddress takes one attempt from the budget of ip's network; t.mu is
// held.
func (t *throttle) allowAddress(ip string, now time.Time) error {
	if t.cfg.PerIPPerMinute <= 0 || ip == "" {
		return nil
	}
	key := addressKey(ip)
	e := t.ips[key]
	if e == nil {
		if len(t.ips) >= maxTracked {
			evictIdle(t.ips, func(e *ipEntry) time.Time { return e.seen }, nil)
		}
		e = &ipEntry{lim: rate.NewLimiter(rate.Every(time.Minute/time.Duration(t.cfg.PerIPPerMinute)), t.cfg.PerIPPerMinute)}
		t.ips[key] = e
	}
	e.seen = now
	r := e.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return &ThrottleError{Kind: ErrRateLimited, RetryAfter: d}
	}
	return nil
}

// addressKey is what the per-address budget is kept by: an IPv4 address
// as it is (also when written IPv4-mapped, ::ffff:192.0.2.1), an IPv6
// address as its /64, since one subscriber usually holds a whole /64 and
// could otherwise rotate through 2^64 budgets. Anything that does not
// parse is its own key.
func addressKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap()
	if a.Is4() {
		return a.String()
	}
	p, _ := a.WithZone("").Prefix(64)
	return p.String()
}

// failed counts a failed sign-in for email and locks it at the limit.
func (t *throttle) failed(email string) {
	if t.cfg.MaxFailures <= 0 {
		return
	}
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.failures[email]
	if f == nil {
		if len(t.failures) >= maxTracked {
			// A lock is never forgotten early: otherwise failed
			// sign-ins for other addresses would lift it.
			evictIdle(t.failures, func(f *failEntry) time.Time { return f.seen },
				func(f *failEntry) bool { return now.Before(f.lockedUntil) })
		}
		f = &failEntry{}
		t.failures[email] = f
	}
	f.seen = now
	f.n++
	if f.n >= t.cfg.MaxFailures {
		f.lockedUntil, f.n = now.Add(t.cfg.Lockout), 0
	}
}

// succeeded forgets the failures of email.
func (t *throttle) succeeded(email string) {
	t.mu.Lock()
	delete(t.failures, email)
	t.mu.Unlock()
}

// evictIdle drops the least recently seen tenth of m, except the entries
// keep (if not nil) holds on to. If only those are left the map grows past
// its bound: each locked entry cost an attacker MaxFailures password hashes.
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
