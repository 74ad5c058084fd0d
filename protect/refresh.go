package protect

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/auth"
	"github.com/latchauth/latch/risk"
)

// Recorder appends security events; latch.EventStore is one.
type Recorder interface {
	AddEvent(ctx context.Context, e *latch.Event) error
}

// RevokeFunc revokes one session of a user, recording reason (instance
// wires auth.Service's revocation, which also feeds the revocation list).
type RevokeFunc func(ctx context.Context, userID, sessionID, reason string) error

// RefreshGuard screens refreshes: it compares the request with the
// session's sign-in (address, network, country, browser; impossible travel
// since the sign-in) and applies the IP and country rules. It implements
// auth.RefreshGuard.
type RefreshGuard struct {
	engine *risk.Engine
	loc    latch.Locator
	events Recorder
	revoke RevokeFunc
	log    *slog.Logger
	clock  func() time.Time
	// notified remembers the notify decisions recorded lately, so that
	// a session refreshing every few minutes from the same changed
	// place records one risk_notified an hour, not one a refresh.
	notified recent
}

// recent is a bounded set of keys with the time each was last added.
type recent struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

// notifyEvery is how often one session's same notify decision is
// recorded; recentMax bounds the memory it takes.
const (
	notifyEvery = time.Hour
	recentMax   = 10000
)

// fresh tells whether key was not added within notifyEvery of now, and
// adds it.
func (r *recent) fresh(key string, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if at, ok := r.seen[key]; ok && now.Sub(at) < notifyEvery && now.Sub(at) >= 0 {
		return false
	}
	if r.seen == nil || len(r.seen) >= recentMax {
		r.seen = make(map[string]time.Time)
	}
	r.seen[key] = now
	return true
}

// RefreshOptions are the optional parts of a RefreshGuard.
type RefreshOptions struct {
	// Log receives failures to record an event; default slog.Default().
	Log *slog.Logger
	// Clock is the time of an attempt; default time.Now.
	Clock func() time.Time
}

// NewRefreshGuard returns a guard deciding with engine, placing addresses
// with loc (nil: no geo-IP), recording decisions in events and revoking
// sessions with revoke.
func NewRefreshGuard(engine *risk.Engine, loc latch.Locator, events Recorder, revoke RevokeFunc, opts RefreshOptions) *RefreshGuard {
	g := &RefreshGuard{engine: engine, loc: loc, events: events, revoke: revoke, log: opts.Log, clock: opts.Clock}
	if g.log == nil {
		g.log = slog.Default()
	}
	if g.clock == nil {
		g.clock = time.Now
	}
	return g
}

// RevokeReason is recorded on a session a refresh decision revoked.
const RevokeReason = "risk_revoked"

// ScreenRefresh decides on a refresh of sess by d: nil lets it through
// (recording a notify decision, once an hour per session and reasons on
// this instance), auth.ErrRiskDenied refuses it, after revoking the
// session when the decision says so. Every deny and revoke is recorded.
func (g *RefreshGuard) ScreenRefresh(ctx context.Context, sess *latch.Session, d auth.Device) error {
	s := g.Signals(sess, d)
	dec := g.engine.Evaluate(s)
	if dec.Action == risk.Allow {
		return nil
	}
	if dec.Action == risk.Notify && !g.notified.fresh(sess.ID+" "+codes(dec), s.At) {
		return nil
	}
	typ := latch.EventRiskNotified
	switch dec.Action {
	case risk.Deny:
		typ = latch.EventRiskDenied
	case risk.Revoke:
		typ = latch.EventRiskRevoked
	}
	g.record(ctx, &latch.Event{
		Type: typ, At: s.At, UserID: sess.UserID, SessionID: sess.ID, ClientID: sess.ClientID,
		IP: bound(d.IP, auth.MaxIPLen), UserAgent: bound(d.UserAgent, auth.MaxUserAgentLen),
		Detail: risk.EventDetail(s, dec),
	})
	switch dec.Action {
	case risk.Revoke:
		if err := g.revoke(context.WithoutCancel(ctx), sess.UserID, sess.ID, RevokeReason); err != nil {
			return fmt.Errorf("protect: revoke session %s: %w", sess.ID, err)
		}
		return auth.ErrRiskDenied
	case risk.Deny, risk.Challenge:
		// A refresh cannot answer a challenge: it is refused.
		return auth.ErrRiskDenied
	}
	return nil
}

// Signals are what the guard knows of a refresh of sess by d.
func (g *RefreshGuard) Signals(sess *latch.Session, d auth.Device) risk.Signals {
	s := risk.Signals{Kind: risk.KindRefresh, At: g.clock(), IP: d.IP}
	if g.loc != nil {
		here := g.loc.Lookup(d.IP)
		s.Country, s.City, s.ASN = here.Country, here.City, here.ASN
		if here.Located {
			s.Lat, s.Lon, s.AccuracyKm = here.Lat, here.Lon, here.AccuracyKm
		}
		if d.IP != sess.IP && sess.IP != "" {
			// The session records only where it signed in: travel is
			// measured from there, over the time since.
			was := g.loc.Lookup(sess.IP)
			s.ASNChanged = here.ASN != 0 && was.ASN != 0 && here.ASN != was.ASN
			s.CountryChanged = here.Country != "" && was.Country != "" && here.Country != was.Country
			if was.Located {
				s.PrevAt = sess.CreatedAt
				s.PrevLat, s.PrevLon, s.PrevAccuracyKm = was.Lat, was.Lon, was.AccuracyKm
			}
		}
	}
	s.IPChanged = d.IP != "" && sess.IP != "" && d.IP != sess.IP
	s.UserAgentChanged = d.UserAgent != "" && sess.UserAgent != "" && !sameBrowser(d.UserAgent, sess.UserAgent)
	return s
}

// codes are the reason codes of d, comma-separated.
func codes(d risk.Decision) string {
	var b strings.Builder
	for i, r := range d.Reasons {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(r.Code)
	}
	return b.String()
}

func (g *RefreshGuard) record(ctx context.Context, e *latch.Event) {
	if err := g.events.AddEvent(context.WithoutCancel(ctx), e); err != nil {
		g.log.Error("recording a risk decision failed", "type", e.Type, "session", e.SessionID, "err", err)
	}
}

// sameBrowser compares two user agents ignoring digits, so that a
// browser's update (Chrome/130 to Chrome/131) is not a new browser. It
// allocates nothing.
func sameBrowser(a, b string) bool {
	i, j := 0, 0
	for {
		for i < len(a) && isDigit(a[i]) {
			i++
		}
		for j < len(b) && isDigit(b[j]) {
			j++
		}
		if i == len(a) || j == len(b) {
			return i == len(a) && j == len(b)
		}
		if a[i] != b[j] {
			return false
		}
		i++
		j++
	}
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func bound(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

var _ auth.RefreshGuard = (*RefreshGuard)(nil)
