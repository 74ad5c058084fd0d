// Package throttle is Latch's sign-in throttling policy: a budget of
// password attempts per address, failures counted per account and source
// (the client's address prefix, or a known device), and an account-wide
// threshold across sources whose lock spares the owner's known devices
// and sends the owner an unlock link.
//
// The counters live in a State: in memory per instance (NewMemory), or
// shared by every instance in Redis (package redis), so that instances
// throttle as one. Fallback puts the memory state behind a shared one for
// when the shared one does not answer.
//
// Why per source: a lock that strangers can put on an account from
// anywhere is a weapon (ten wrong passwords lock the owner out, renewable
// every Lockout). Counted per (account, source), a stranger's failures
// lock only the stranger's own source out of that account. A stranger
// with many addresses is bounded by the account-wide threshold, whose
// lock the owner on a known device never meets.
package throttle

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"
)

// ErrRateLimited: too many sign-in attempts from one address.
// ErrAccountLocked: too many failed sign-ins for one account from this
// source, or from everywhere. Both come as an *Error that says when to
// retry.
var (
	ErrRateLimited   = errors.New("too many sign-in attempts")
	ErrAccountLocked = errors.New("account temporarily locked")
)

// Error is a refused sign-in and when it may be tried again.
type Error struct {
	Kind       error // ErrRateLimited or ErrAccountLocked
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	return fmt.Sprintf("%v; retry in %v", e.Kind, e.RetryAfter.Round(time.Second))
}

// Unwrap lets errors.Is match the kind.
func (e *Error) Unwrap() error { return e.Kind }

// Config bounds sign-in attempts. Zero values disable a limit.
type Config struct {
	// PerIPPerMinute is the sustained rate of password attempts (sign-ins
	// and registrations, which cost the same hash) from one address, with
	// a burst of the same size. An IPv6 address counts as its /64, the
	// smallest network a single subscriber is usually given; an
	// IPv4-mapped IPv6 address counts as the IPv4 address.
	PerIPPerMinute int
	// MaxFailures failed sign-ins for one account from one source (an
	// address as PerIPPerMinute counts it, or a known device) within
	// Lockout lock that source out of that account for Lockout. Unknown
	// emails are counted and locked exactly like real ones, so a lock
	// says nothing about whether an account exists.
	MaxFailures int
	Lockout     time.Duration
	// AccountMaxFailures failed sign-ins for one account from any
	// sources within AccountWindow lock the account for Lockout for
	// every source but the owner's known devices, and mail the owner an
	// unlock link (at most once per AccountWindow). While failures go on
	// past the threshold the lock is renewed.
	AccountMaxFailures int
	AccountWindow      time.Duration
}

// DefaultAccountWindow is the account-wide window when Config leaves it
// zero; DefaultLockout the lockout.
const (
	DefaultAccountWindow = time.Hour
	DefaultLockout       = 15 * time.Minute
)

// State keeps the throttle's counters. Keys are made by the Policy
// (short, no personal data: accounts appear as digests); an
// implementation may prefix them. Every method is safe for concurrent
// use, and every change is atomic: of concurrent Fail calls that reach
// Max, exactly one reports it.
type State interface {
	// Take spends one attempt from key's budget of perMinute attempts a
	// minute (with a burst of perMinute) and returns 0, or, when the
	// budget is spent, how long until an attempt is admitted (spending
	// nothing).
	Take(ctx context.Context, key string, perMinute int) (time.Duration, error)
	// Fail counts one failure under f.Counter, whose count lives for
	// f.Window from its first failure. At f.Max or more it locks f.Lock
	// for f.Lockout. It returns the new count.
	Fail(ctx context.Context, f Failure) (int, error)
	// Locked returns how much longer the longest-locked of keys is
	// locked; 0 if none is. One round trip for all of them.
	Locked(ctx context.Context, keys ...string) (time.Duration, error)
	// Count returns the count of a counter (0 if it has none or it
	// expired).
	Count(ctx context.Context, key string) (int, error)
	// Mark sets key for ttl unless it is set, and reports whether this
	// call set it.
	Mark(ctx context.Context, key string, ttl time.Duration) (bool, error)
	// Clear removes keys (counters, locks or marks).
	Clear(ctx context.Context, keys ...string) error
}

// Failure is one failed attempt as State.Fail counts it.
type Failure struct {
	Counter string
	Window  time.Duration
	Max     int
	Lock    string
	Lockout time.Duration
}

// Attempt is a password attempt for an account.
type Attempt struct {
	// Account is the canonical email (or a digest of an address the
	// rules refuse): unknown accounts are counted like real ones.
	Account string
	// IP is the client's address (from trusted_proxies).
	IP string
	// KnownDevice is the device-cookie id when the device is one the
	// account's owner signed in from before; empty otherwise.
	KnownDevice string
}

// Policy applies Config over a State: it is the sign-in throttle.
type Policy struct {
	cfg      Config
	state    State
	log      *slog.Logger
	onLocked func(ctx context.Context, account string)
}

// Options are the Policy's optional collaborators.
type Options struct {
	// OnAccountLocked, if not nil, is called when an account reaches
	// AccountMaxFailures, at most once per account and AccountWindow
	// across every instance sharing the State: it has the owner mailed
	// an unlock link. It is called for unknown emails too, and must do
	// the same work for them (record a request in the durable outbox,
	// see package account), so that the answer takes as long either
	// way. It runs before the failed attempt is answered, with a context
	// the client's leaving does not cancel.
	OnAccountLocked func(ctx context.Context, account string)
	Log             *slog.Logger
}

// New returns a Policy over st. A zero AccountWindow or Lockout means
// DefaultAccountWindow or DefaultLockout.
func New(cfg Config, st State, o Options) *Policy {
	if cfg.AccountWindow <= 0 {
		cfg.AccountWindow = DefaultAccountWindow
	}
	if cfg.Lockout <= 0 {
		cfg.Lockout = DefaultLockout
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	return &Policy{cfg: cfg, state: st, log: o.Log, onLocked: o.OnAccountLocked}
}

// Config returns the throttle's configuration, defaults applied.
func (t *Policy) Config() Config { return t.cfg }

// SetOnAccountLocked sets Options.OnAccountLocked; call it before the
// throttle is used (the account lifecycle that mails the link is built
// after the sign-in service that counts).
func (t *Policy) SetOnAccountLocked(fn func(ctx context.Context, account string)) { t.onLocked = fn }

// AllowAddress spends one attempt from ip's budget, or returns an *Error
// of kind ErrRateLimited. Registration and password-reset requests spend
// from it too.
func (t *Policy) AllowAddress(ctx context.Context, ip string) error {
	if t.cfg.PerIPPerMinute <= 0 || ip == "" {
		return nil
	}
	d, err := t.state.Take(ctx, "addr:"+AddressKey(ip), t.cfg.PerIPPerMinute)
	if err != nil {
		// The state said nothing usable (even the fallback failed):
		// refuse rather than admit unthrottled.
		t.log.Error("sign-in throttle unavailable; refusing the attempt", "err", err)
		return &Error{Kind: ErrRateLimited, RetryAfter: time.Second}
	}
	if d > 0 {
		return &Error{Kind: ErrRateLimited, RetryAfter: d}
	}
	return nil
}

// Allow admits a password attempt, or returns an *Error: the address's
// budget is spent (ErrRateLimited), the attempt's source is locked out of
// the account, or the account is locked for everyone but its known
// devices (ErrAccountLocked).
func (t *Policy) Allow(ctx context.Context, a Attempt) error {
	if err := t.AllowAddress(ctx, a.IP); err != nil {
		return err
	}
	return t.Locked(ctx, a)
}

// Locked is Allow without the address's budget (for a caller that spent
// from it already, with AllowAddress): an *Error of kind ErrAccountLocked
// if the attempt's source is locked out of the account, or the account is
// locked for everyone but its known devices; nil otherwise.
func (t *Policy) Locked(ctx context.Context, a Attempt) error {
	acct := accountKey(a.Account)
	keys := []string{}
	if t.cfg.MaxFailures > 0 {
		keys = append(keys, sourceLock(acct, a))
	}
	if t.cfg.AccountMaxFailures > 0 && a.KnownDevice == "" {
		keys = append(keys, accountLock(acct))
	}
	if len(keys) == 0 {
		return nil
	}
	wait, err := t.state.Locked(ctx, keys...)
	if err != nil {
		t.log.Error("sign-in throttle unavailable; refusing the attempt", "err", err)
		return &Error{Kind: ErrAccountLocked, RetryAfter: time.Second}
	}
	if wait > 0 {
		return &Error{Kind: ErrAccountLocked, RetryAfter: wait}
	}
	return nil
}

// Failed counts a failed attempt: for its source, and for the account.
func (t *Policy) Failed(ctx context.Context, a Attempt) {
	acct := accountKey(a.Account)
	if t.cfg.MaxFailures > 0 {
		src := source(a)
		if _, err := t.state.Fail(ctx, Failure{
			Counter: "fail:{" + acct + "}:" + src, Window: t.cfg.Lockout, Max: t.cfg.MaxFailures,
			Lock: sourceLock(acct, a), Lockout: t.cfg.Lockout,
		}); err != nil {
			t.log.Error("sign-in throttle: count a failure", "err", err)
		}
	}
	if t.cfg.AccountMaxFailures <= 0 {
		return
	}
	n, err := t.state.Fail(ctx, Failure{
		Counter: accountCounter(acct), Window: t.cfg.AccountWindow, Max: t.cfg.AccountMaxFailures,
		Lock: accountLock(acct), Lockout: t.cfg.Lockout,
	})
	if err != nil {
		t.log.Error("sign-in throttle: count a failure", "err", err)
		return
	}
	if n < t.cfg.AccountMaxFailures || t.onLocked == nil {
		return
	}
	// One email per account and window, however many instances and
	// failures: the first to set the mark sends it.
	first, err := t.state.Mark(ctx, "mail:{"+acct+"}", t.cfg.AccountWindow)
	if err != nil || !first {
		return
	}
	t.onLocked(context.WithoutCancel(ctx), a.Account)
}

// Succeeded forgets the failures of the attempt's source for its account.
// The account-wide count stays: the owner signing in does not erase a
// stranger's attack (risk scoring reads it, RecentFailures).
func (t *Policy) Succeeded(ctx context.Context, a Attempt) {
	if t.cfg.MaxFailures <= 0 {
		return
	}
	acct := accountKey(a.Account)
	if err := t.state.Clear(ctx, "fail:{"+acct+"}:"+source(a)); err != nil {
		t.log.Error("sign-in throttle: clear failures", "err", err)
	}
}

// MailLimit bounds the emails that strangers can have sent to one
// account (reset links, verification links): PerSource per Window from one
// address (AddressKey) or known device, and PerAccount per Window from
// all of them together.
type MailLimit struct {
	PerSource  int
	PerAccount int
	Window     time.Duration
}

// AllowMail admits one request for an email to account from the
// attempt's source, or returns an *Error of kind ErrRateLimited. Counting
// per source first means that a stranger who spends their own budget does
// not stop the owner, from their own address, getting a reset link;
// PerAccount bounds what many addresses together can send. Unknown
// accounts are counted like real ones. The counts live in the State, so
// instances sharing a Redis count as one.
func (t *Policy) AllowMail(ctx context.Context, a Attempt, m MailLimit) error {
	acct := accountKey(a.Account)
	srcLock, acctLock := "mail-lock:{"+acct+"}:"+source(a), "mail-lock:{"+acct+"}"
	wait, err := t.state.Locked(ctx, srcLock, acctLock)
	if err != nil {
		t.log.Error("mail throttle unavailable; refusing the request", "err", err)
		return &Error{Kind: ErrRateLimited, RetryAfter: time.Second}
	}
	if wait > 0 {
		return &Error{Kind: ErrRateLimited, RetryAfter: wait}
	}
	for _, f := range []Failure{
		{Counter: "mails:{" + acct + "}:" + source(a), Window: m.Window, Max: m.PerSource, Lock: srcLock, Lockout: m.Window},
		{Counter: "mails:{" + acct + "}", Window: m.Window, Max: m.PerAccount, Lock: acctLock, Lockout: m.Window},
	} {
		if f.Max <= 0 {
			continue
		}
		if _, err := t.state.Fail(ctx, f); err != nil {
			t.log.Error("mail throttle: count a request", "err", err)
		}
	}
	return nil
}

// RecentFailures returns how many failed sign-ins the account had from
// any source within the current AccountWindow (a risk signal); 0 when
// the state does not answer.
func (t *Policy) RecentFailures(ctx context.Context, account string) int {
	n, err := t.state.Count(ctx, accountCounter(accountKey(account)))
	if err != nil {
		return 0
	}
	return n
}

// Unlock lifts the account-wide lock of account and restarts its count
// (the owner followed the unlock link). Locks of single sources stay:
// they hold only the sources that failed.
func (t *Policy) Unlock(ctx context.Context, account string) error {
	acct := accountKey(account)
	if err := t.state.Clear(ctx, accountLock(acct), accountCounter(acct)); err != nil {
		return fmt.Errorf("throttle: unlock: %w", err)
	}
	return nil
}

// accountKey is an account as keys name it: a digest of fixed size, so
// that no email is written into a shared store's key space and a long
// refused address costs no more than a short one.
func accountKey(account string) string {
	sum := sha256.Sum256([]byte(account))
	return base64.RawURLEncoding.EncodeToString(sum[:18])
}

// source is where an attempt comes from, as failures are counted: a
// known device by its id, anything else by its address (AddressKey).
func source(a Attempt) string {
	if a.KnownDevice != "" {
		sum := sha256.Sum256([]byte(a.KnownDevice))
		return "dev:" + base64.RawURLEncoding.EncodeToString(sum[:12])
	}
	return "ip:" + AddressKey(a.IP)
}

// The keys: hash-tagged by account ({…}), so that a Redis cluster keeps
// an account's keys in one slot.
func sourceLock(acct string, a Attempt) string { return "lock:{" + acct + "}:" + source(a) }
func accountLock(acct string) string           { return "lock:{" + acct + "}" }
func accountCounter(acct string) string        { return "fail:{" + acct + "}" }

// AddressKey is what the per-address budget and the per-source failures
// are kept by: an IPv4 address as it is (also when written IPv4-mapped,
// ::ffff:192.0.2.1), an IPv6 address as its /64, since one subscriber
// usually holds a whole /64 and could otherwise rotate through 2^64
// budgets. Anything that does not parse is its own key (bounded in
// length).
//
// IPv4 is not widened to its /24: neighbours in one /24 (a carrier's NAT
// pool, a cloud range, a campus) are unrelated people, and widening
// would let a stranger there lock the owner out. The many addresses a
// stranger may hold are bounded by the account-wide threshold instead.
func AddressKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		if len(ip) > 64 {
			sum := sha256.Sum256([]byte(ip))
			return "bad:" + base64.RawURLEncoding.EncodeToString(sum[:12])
		}
		return ip
	}
	a = a.Unmap()
	if a.Is4() {
		return a.String()
	}
	p, _ := a.WithZone("").Prefix(64)
	return p.String()
}
