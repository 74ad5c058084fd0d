package protect_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/auth"
	"github.com/latchauth/latch/protect"
	"github.com/latchauth/latch/risk"
)

var t0 = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

// places is a Locator over a map.
type places map[string]latch.Place

func (p places) Lookup(ip string) latch.Place { return p[ip] }

var world = places{
	"203.0.113.1":  {Country: "KR", City: "Seoul", Lat: 37.5665, Lon: 126.978, AccuracyKm: 20, Located: true, ASN: 4766},
	"203.0.113.2":  {Country: "KR", City: "Seoul", Lat: 37.5665, Lon: 126.978, AccuracyKm: 20, Located: true, ASN: 4766},
	"203.0.113.99": {Country: "KR", City: "Seoul", Lat: 37.5665, Lon: 126.978, AccuracyKm: 20, Located: true, ASN: 9318},
	"198.51.100.1": {Country: "DE", City: "Berlin", Lat: 52.52, Lon: 13.405, AccuracyKm: 50, Located: true, ASN: 3320},
	"192.0.2.1":    {Country: "KP", ASN: 131279},
}

// events is an EventStore in memory.
type events struct {
	mu   sync.Mutex
	list []latch.Event
}

func (e *events) AddEvent(_ context.Context, ev *latch.Event) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.list = append(e.list, *ev)
	return nil
}

type revoked struct{ userID, sessionID, reason string }

type fixture struct {
	guard   *protect.RefreshGuard
	events  *events
	revoked []revoked
	now     time.Time
}

func newFixture(t *testing.T, edit func(*risk.Config)) *fixture {
	t.Helper()
	c := risk.Defaults()
	if edit != nil {
		edit(&c)
	}
	e, err := risk.New(c)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{events: &events{}, now: t0}
	f.guard = protect.NewRefreshGuard(e, world, f.events,
		func(_ context.Context, userID, sessionID, reason string) error {
			f.revoked = append(f.revoked, revoked{userID, sessionID, reason})
			return nil
		},
		protect.RefreshOptions{Clock: func() time.Time { return f.now }})
	return f
}

const chrome130 = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36"

// session signed in from Seoul an hour before t0.
func session() *latch.Session {
	return &latch.Session{ID: "s1", UserID: "u1", ClientID: "latch", IP: "203.0.113.1", UserAgent: chrome130,
		CreatedAt: t0.Add(-time.Hour), LastUsedAt: t0.Add(-time.Minute)}
}

func TestRefreshAllowed(t *testing.T) {
	f := newFixture(t, nil)
	for _, d := range []auth.Device{
		{IP: "203.0.113.1", UserAgent: chrome130},
		{IP: "203.0.113.2", UserAgent: chrome130}, // another address of the same network
		{IP: "203.0.113.1", UserAgent: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"}, // an update
		{IP: "", UserAgent: ""},
	} {
		if err := f.guard.ScreenRefresh(t.Context(), session(), d); err != nil {
			t.Errorf("%+v: %v", d, err)
		}
	}
	if len(f.events.list) != 0 || len(f.revoked) != 0 {
		t.Errorf("events %+v, revoked %+v", f.events.list, f.revoked)
	}
}

func TestRefreshCountryDenied(t *testing.T) {
	f := newFixture(t, func(c *risk.Config) { c.Countries.Deny = []string{"KP"} })
	err := f.guard.ScreenRefresh(t.Context(), session(), auth.Device{IP: "192.0.2.1", UserAgent: chrome130})
	if !errors.Is(err, auth.ErrRiskDenied) {
		t.Fatalf("refresh from a denied country: %v", err)
	}
	if len(f.revoked) != 0 {
		t.Errorf("a deny revoked: %+v", f.revoked)
	}
	e := onlyEvent(t, f, latch.EventRiskDenied)
	s, d, err := risk.ParseEventDetail(e.Detail)
	if err != nil || s.Country != "KP" || s.Kind != risk.KindRefresh || d.Action != risk.Deny || e.Detail[risk.DetailReasons] != risk.ReasonCountryDenied {
		t.Errorf("detail %+v: %+v %+v %v", e.Detail, s, d, err)
	}
	if e.UserID != "u1" || e.SessionID != "s1" || e.IP != "192.0.2.1" {
		t.Errorf("event %+v", e)
	}
}

func TestRefreshIPDenied(t *testing.T) {
	f := newFixture(t, func(c *risk.Config) { c.IP.Allow = []string{"203.0.113.0/24"} })
	if err := f.guard.ScreenRefresh(t.Context(), session(), auth.Device{IP: "198.51.100.1", UserAgent: chrome130}); !errors.Is(err, auth.ErrRiskDenied) {
		t.Fatalf("refresh from outside risk.ip.allow: %v", err)
	}
	onlyEvent(t, f, latch.EventRiskDenied)
	if err := f.guard.ScreenRefresh(t.Context(), session(), auth.Device{IP: "203.0.113.99", UserAgent: chrome130}); err != nil {
		t.Fatalf("refresh from inside risk.ip.allow: %v", err)
	}
}

// TestRefreshRevokes: a refresh from Berlin an hour after a sign-in in
// Seoul is impossible travel on top of a new address, network and
// country: the session is revoked and the refresh refused.
func TestRefreshRevokes(t *testing.T) {
	f := newFixture(t, nil)
	err := f.guard.ScreenRefresh(t.Context(), session(), auth.Device{IP: "198.51.100.1", UserAgent: chrome130})
	if !errors.Is(err, auth.ErrRiskDenied) {
		t.Fatalf("refresh from Berlin: %v", err)
	}
	if len(f.revoked) != 1 || f.revoked[0] != (revoked{"u1", "s1", protect.RevokeReason}) {
		t.Fatalf("revoked %+v", f.revoked)
	}
	e := onlyEvent(t, f, latch.EventRiskRevoked)
	s, d, err := risk.ParseEventDetail(e.Detail)
	if err != nil || !s.IPChanged || !s.ASNChanged || !s.CountryChanged || s.UserAgentChanged || !s.PrevAt.Equal(t0.Add(-time.Hour)) ||
		d.Action != risk.Revoke {
		t.Errorf("signals %+v decision %+v %v", s, d, err)
	}
	// A day after the sign-in the same trip is possible: no revocation.
	f = newFixture(t, nil)
	f.now = t0.Add(23 * time.Hour)
	if err := f.guard.ScreenRefresh(t.Context(), session(), auth.Device{IP: "198.51.100.1", UserAgent: chrome130}); err != nil {
		t.Fatalf("refresh from Berlin a day later: %v", err)
	}
	if len(f.revoked) != 0 {
		t.Errorf("revoked %+v", f.revoked)
	}
	// A failing revocation fails the refresh, not silently.
	f = newFixture(t, nil)
	broken := errors.New("store down")
	c := risk.Defaults()
	eng, _ := risk.New(c)
	g := protect.NewRefreshGuard(eng, world, f.events, func(context.Context, string, string, string) error { return broken },
		protect.RefreshOptions{Clock: func() time.Time { return t0 }})
	if err := g.ScreenRefresh(t.Context(), session(), auth.Device{IP: "198.51.100.1", UserAgent: chrome130}); !errors.Is(err, broken) {
		t.Errorf("revocation failed: %v", err)
	}
}

func TestRefreshNotifies(t *testing.T) {
	f := newFixture(t, nil)
	// Another browser on another network: 40 + 10 + 5, at notify (50).
	err := f.guard.ScreenRefresh(t.Context(), session(), auth.Device{IP: "203.0.113.99", UserAgent: "curl/8.5.0"})
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	e := onlyEvent(t, f, latch.EventRiskNotified)
	if e.Detail[risk.DetailReasons] != "ip_changed,asn_changed,user_agent_changed" || e.Detail[risk.DetailScore] != "55" {
		t.Errorf("detail %+v", e.Detail)
	}
	// The next refreshes of the hour with the same reasons are not
	// recorded again; another session's are, and so is the same session's
	// after the hour.
	dev := auth.Device{IP: "203.0.113.99", UserAgent: "curl/8.5.0"}
	f.now = t0.Add(59 * time.Minute)
	f.guard.ScreenRefresh(t.Context(), session(), dev)
	if len(f.events.list) != 1 {
		t.Fatalf("the same notice within the hour recorded again: %+v", f.events.list)
	}
	other := session()
	other.ID = "s2"
	f.guard.ScreenRefresh(t.Context(), other, dev)
	f.now = t0.Add(61 * time.Minute)
	f.guard.ScreenRefresh(t.Context(), session(), dev)
	if len(f.events.list) != 3 || f.events.list[1].SessionID != "s2" || f.events.list[2].SessionID != "s1" {
		t.Fatalf("events %+v", f.events.list)
	}
}

// TestRefreshDenyAlwaysRecorded: the once-an-hour bound is for notices
// only; every refused refresh is recorded.
func TestRefreshDenyAlwaysRecorded(t *testing.T) {
	f := newFixture(t, func(c *risk.Config) { c.Countries.Deny = []string{"KP"} })
	for range 3 {
		if err := f.guard.ScreenRefresh(t.Context(), session(), auth.Device{IP: "192.0.2.1", UserAgent: chrome130}); !errors.Is(err, auth.ErrRiskDenied) {
			t.Fatal(err)
		}
	}
	if len(f.events.list) != 3 {
		t.Fatalf("events %+v", f.events.list)
	}
}

// TestRefreshWithoutLocator: without geo-IP only the rules on addresses,
// the address and the browser count.
func TestRefreshWithoutLocator(t *testing.T) {
	c := risk.Defaults()
	c.IP.Deny = []string{"198.51.100.0/24"}
	eng, err := risk.New(c)
	if err != nil {
		t.Fatal(err)
	}
	ev := &events{}
	g := protect.NewRefreshGuard(eng, nil, ev, nil, protect.RefreshOptions{})
	if err := g.ScreenRefresh(t.Context(), session(), auth.Device{IP: "198.51.100.1", UserAgent: chrome130}); !errors.Is(err, auth.ErrRiskDenied) {
		t.Fatalf("denied address: %v", err)
	}
	s := g.Signals(session(), auth.Device{IP: "203.0.113.99", UserAgent: "curl/8"})
	if !s.IPChanged || !s.UserAgentChanged || s.Country != "" || s.ASNChanged || !s.PrevAt.IsZero() {
		t.Errorf("signals %+v", s)
	}
}

func onlyEvent(t *testing.T, f *fixture, typ string) latch.Event {
	t.Helper()
	if len(f.events.list) != 1 || f.events.list[0].Type != typ {
		t.Fatalf("events %+v, want one %s", f.events.list, typ)
	}
	return f.events.list[0]
}

func BenchmarkScreenRefresh(b *testing.B) {
	c := risk.Defaults()
	c.IP.Deny = []string{"192.0.2.0/24"}
	eng, _ := risk.New(c)
	g := protect.NewRefreshGuard(eng, world, &events{}, nil, protect.RefreshOptions{})
	sess := session()
	d := auth.Device{IP: "203.0.113.1", UserAgent: chrome130}
	b.ReportAllocs()
	for b.Loop() {
		if err := g.ScreenRefresh(context.Background(), sess, d); err != nil {
			b.Fatal(err)
		}
	}
}
