package protect

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/auth"
	"github.com/latchauth/latch/risk"
	"github.com/latchauth/latch/sqlite"
)

// places is a fake Locator: a Place per IP.
type places map[string]latch.Place

func (p places) Lookup(ip string) latch.Place { return p[ip] }

var (
	seoul  = latch.Place{Country: "KR", City: "Seoul", Lat: 37.57, Lon: 126.98, AccuracyKm: 20, Located: true, ASN: 4766}
	busan  = latch.Place{Country: "KR", City: "Busan", Lat: 35.18, Lon: 129.08, AccuracyKm: 20, Located: true, ASN: 4766}
	berlin = latch.Place{Country: "DE", City: "Berlin", Lat: 52.52, Lon: 13.40, AccuracyKm: 20, Located: true, ASN: 3320}
)

// recorder is an Evaluator that records the signals and answers with a
// fixed action (AlertPolicy's when empty).
type recorder struct {
	last   risk.Signals
	action risk.Action
}

func (r *recorder) Evaluate(s risk.Signals) risk.Decision {
	r.last = s
	if r.action != "" {
		return risk.Decision{Action: r.action, Score: 90, Reasons: []risk.Reason{{Code: "test", Weight: 90}}}
	}
	return AlertPolicy{}.Evaluate(s)
}

// countingStore counts the writes of device uses.
type countingStore struct {
	latch.Store
	records atomic.Int64
}

func (c *countingStore) RecordDeviceUse(ctx context.Context, d *latch.Device) error {
	c.records.Add(1)
	return c.Store.RecordDeviceUse(ctx, d)
}

type fixture struct {
	t     testing.TB
	store *countingStore
	guard *SignIn
	risk  *recorder
	now   time.Time
	user  string
}

func newFixture(t testing.TB, cfg SignInConfig) *fixture {
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "latch.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &fixture{t: t, store: &countingStore{Store: st}, risk: &recorder{}, now: time.Date(2031, 3, 14, 9, 0, 0, 0, time.UTC), user: "u1"}
	if err := st.CreateUser(t.Context(), &latch.User{ID: f.user, Email: "nora@example.com", PasswordHash: "x", CreatedAt: f.now, UpdatedAt: f.now}); err != nil {
		t.Fatal(err)
	}
	f.guard, err = NewSignIn(cfg, SignInDeps{Store: f.store, Risk: f.risk,
		Locator: places{"192.0.2.1": seoul, "192.0.2.2": busan, "198.51.100.1": berlin},
		Now:     func() time.Time { return f.now }})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

const chrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"

// signIn screens a sign-in and, if it may go on, runs Created as auth
// does once the session exists. It returns the screening and its error.
func (f *fixture) signIn(d auth.Device) (*auth.Screening, error) {
	f.t.Helper()
	sc, err := f.guard.ScreenSignIn(f.t.Context(), &auth.Authentication{UserID: f.user, Time: f.now}, "latch", d)
	if err == nil && sc.Created != nil {
		sc.Created(f.t.Context(), &auth.Tokens{SessionID: "s"})
	}
	f.guard.Wait()
	f.now = f.now.Add(time.Hour)
	return sc, err
}

func alerted(sc *auth.Screening) bool { return sc != nil && len(sc.Outbox) == 1 }

// TestSignInSignals: the first sign-in of an account alerts no one; the
// same device from another address (even another city) is not new; a
// new device, and a new country, alert; the previous use is the latest
// device's.
func TestSignInSignals(t *testing.T) {
	f := newFixture(t, SignInConfig{})
	a := auth.Device{IP: "192.0.2.1", UserAgent: chrome, DeviceID: "aaaaaaaaaaaaaaaaaaaaaaaaaa"}
	if sc, err := f.signIn(a); err != nil || alerted(sc) {
		t.Fatalf("first sign-in: %v, alerted %v", err, alerted(sc))
	}
	moved := a
	moved.IP = "192.0.2.2"
	sc, err := f.signIn(moved)
	if err != nil || alerted(sc) || f.risk.last.NewDevice || f.risk.last.NewCountry || f.risk.last.NewASN {
		t.Fatalf("same device, new address: %v, alerted %v, signals %+v", err, alerted(sc), f.risk.last)
	}
	if f.risk.last.PrevLat != seoul.Lat || f.risk.last.PrevAt.IsZero() || f.risk.last.Lat != busan.Lat {
		t.Errorf("travel signals %+v: want the previous use in Seoul, this one in Busan", f.risk.last)
	}

	fresh := auth.Device{IP: "192.0.2.1", UserAgent: chrome, DeviceID: "bbbbbbbbbbbbbbbbbbbbbbbbbb"}
	sc, err = f.signIn(fresh)
	if err != nil || !alerted(sc) || !f.risk.last.NewDevice || f.risk.last.NewCountry {
		t.Fatalf("new device: %v, alerted %v, signals %+v", err, alerted(sc), f.risk.last)
	}
	abroad := a
	abroad.IP = "198.51.100.1"
	sc, err = f.signIn(abroad)
	if err != nil || !alerted(sc) || f.risk.last.NewDevice || !f.risk.last.NewCountry || !f.risk.last.NewASN {
		t.Fatalf("known device abroad: %v, alerted %v, signals %+v", err, alerted(sc), f.risk.last)
	}
	sc, _ = f.signIn(abroad)
	if alerted(sc) {
		t.Error("the second sign-in from Germany alerted again")
	}

	// A cookie-less client is known by family among cookie-less devices
	// only: a browser that lost its cookie is new.
	cli := auth.Device{IP: "192.0.2.1", UserAgent: "curl/8.5.0"}
	if sc, _ := f.signIn(cli); !alerted(sc) {
		t.Error("a new command-line client did not alert")
	}
	cli.UserAgent = "curl/8.6.0"
	if sc, _ := f.signIn(cli); alerted(sc) {
		t.Error("the same command-line client, updated, alerted")
	}
	if sc, _ := f.signIn(auth.Device{IP: "192.0.2.1", UserAgent: chrome}); !alerted(sc) {
		t.Error("a browser without its cookie, same family as a known one, passed as known")
	}
}

// TestSignInAlertEmail: the alert's email says when, where, browser and
// OS and carries two links to one stored alert; its event names both.
func TestSignInAlertEmail(t *testing.T) {
	f := newFixture(t, SignInConfig{})
	f.signIn(auth.Device{IP: "192.0.2.1", UserAgent: chrome, DeviceID: "aaaaaaaaaaaaaaaaaaaaaaaaaa"})
	sc, err := f.guard.ScreenSignIn(t.Context(), &auth.Authentication{UserID: f.user}, "latch",
		auth.Device{IP: "198.51.100.1", UserAgent: chrome, DeviceID: "bbbbbbbbbbbbbbbbbbbbbbbbbb"})
	if err != nil || !alerted(sc) {
		t.Fatalf("ScreenSignIn: %v", err)
	}
	m, err := latch.ParseEmailMessage(sc.Outbox[0].Payload)
	if err != nil {
		t.Fatal(err)
	}
	if m.To != "nora@example.com" || m.Template != TemplateNewDevice || m.Data["where"] != "Berlin, DE" ||
		m.Data["browser"] != "Chrome 120" || m.Data["os"] != "Linux" || !strings.HasSuffix(m.Data["when"], "UTC") {
		t.Errorf("email %+v", m)
	}
	if !strings.HasPrefix(m.Data["me_link"], "/alert#id=al_") || !strings.HasPrefix(m.Data["not_me_link"], "/alert#id=al_") {
		t.Errorf("links %q %q", m.Data["me_link"], m.Data["not_me_link"])
	}
	alerts, _ := f.store.SignInAlerts(t.Context(), f.user, 10)
	if len(alerts) != 1 || alerts[0].City != "Berlin" || !alerts[0].ExpiresAt.Equal(alerts[0].CreatedAt.Add(7*24*time.Hour)) {
		t.Fatalf("stored alerts %+v", alerts)
	}
	sc.Created(t.Context(), &auth.Tokens{SessionID: "s9"})
	evs, _ := f.store.EventsByUser(t.Context(), f.user, 10)
	if len(evs) != 1 || evs[0].Type != latch.EventNewDeviceSignIn || evs[0].SessionID != "s9" ||
		evs[0].Detail["alert_id"] != alerts[0].ID || evs[0].Detail["device_id"] != alerts[0].DeviceID ||
		!strings.Contains(evs[0].Detail["signals"], `"country":"DE"`) {
		t.Errorf("events %+v", evs)
	}
}

// TestSignInDecisions: deny refuses with ErrRiskDenied and a risk_denied
// event; challenge asks for one (when a challenger exists) and records
// risk_challenged; without a challenger, or once challenged, the sign-in
// goes on.
func TestSignInDecisions(t *testing.T) {
	f := newFixture(t, SignInConfig{CanChallenge: true})
	d := auth.Device{IP: "198.51.100.1", UserAgent: chrome, DeviceID: "aaaaaaaaaaaaaaaaaaaaaaaaaa"}
	f.risk.action = risk.Deny
	if _, err := f.signIn(d); !errors.Is(err, auth.ErrRiskDenied) {
		t.Fatalf("deny: %v", err)
	}
	f.risk.action = risk.Challenge
	if _, err := f.signIn(d); !errors.Is(err, auth.ErrChallenge) {
		t.Fatalf("challenge: %v", err)
	}
	sc, err := f.guard.ScreenSignIn(t.Context(), &auth.Authentication{UserID: f.user, Challenged: true}, "latch", d)
	if err != nil || alerted(sc) {
		t.Fatalf("challenged already: %v, alerted %v", err, alerted(sc))
	}
	evs, _ := f.store.EventsByUser(t.Context(), f.user, 10)
	types := map[string]latch.Event{}
	for _, e := range evs {
		types[e.Type] = e
	}
	if e, ok := types[latch.EventRiskDenied]; !ok || e.Detail["reasons"] != "test" || e.Detail["signals"] == "" || e.Detail["action"] != "deny" {
		t.Errorf("risk_denied event %+v", e)
	}
	if _, ok := types[latch.EventRiskChallenged]; !ok {
		t.Error("no risk_challenged event")
	}
	if devs, _ := f.store.Devices(t.Context(), f.user); len(devs) != 0 {
		t.Errorf("a refused sign-in recorded a device: %+v", devs)
	}

	g := newFixture(t, SignInConfig{})
	g.risk.action = risk.Challenge
	if sc, err := g.signIn(d); err != nil || !alerted(sc) {
		t.Errorf("challenge without a challenger: %v, alerted %v; want a notification", err, alerted(sc))
	}
}

// TestSignInKnownDeviceNoWrite: a known device signing in again from the
// same address soon after costs no write.
func TestSignInKnownDeviceNoWrite(t *testing.T) {
	f := newFixture(t, SignInConfig{})
	d := auth.Device{IP: "192.0.2.1", UserAgent: chrome, DeviceID: "aaaaaaaaaaaaaaaaaaaaaaaaaa"}
	f.signIn(d)
	f.now = f.now.Add(-time.Hour + time.Minute) // one minute after the first
	f.signIn(d)
	if n := f.store.records.Load(); n != 1 {
		t.Errorf("%d device writes for two sign-ins a minute apart; want 1", n)
	}
	f.now = f.now.Add(time.Hour)
	f.signIn(d)
	if n := f.store.records.Load(); n != 2 {
		t.Errorf("%d device writes after an hour; want 2", n)
	}
}

// BenchmarkScreenSignIn measures what the guard adds to a sign-in's
// answer on SQLite: a known device seen again at once (two indexed reads,
// no write), and one seen again after touchEvery (two reads; its touch is
// written after the answer, outside the timer).
func BenchmarkScreenSignIn(b *testing.B) {
	for _, c := range []struct {
		name string
		step time.Duration
	}{{"known-recent", time.Second}, {"known-write", touchEvery + time.Second}} {
		b.Run(c.name, func(b *testing.B) {
			f := newFixture(b, SignInConfig{})
			d := auth.Device{IP: "192.0.2.1", UserAgent: chrome, DeviceID: "aaaaaaaaaaaaaaaaaaaaaaaaaa"}
			f.signIn(d)
			b.ReportAllocs()
			for b.Loop() {
				sc, err := f.guard.ScreenSignIn(b.Context(), &auth.Authentication{UserID: f.user}, "latch", d)
				if err != nil || alerted(sc) {
					b.Fatalf("ScreenSignIn: %v, alerted %v", err, alerted(sc))
				}
				if sc.Created != nil {
					sc.Created(b.Context(), &auth.Tokens{SessionID: "s"})
				}
				// What the sign-in's answer waits for ends here; the
				// touch written after it is not counted.
				b.StopTimer()
				f.guard.Wait()
				f.now = f.now.Add(c.step)
				b.StartTimer()
			}
			b.StopTimer()
			f.guard.Wait()
		})
	}
}
