package protect

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/auth"
	"github.com/latchauth/latch/device"
	"github.com/latchauth/latch/risk"
	"github.com/latchauth/latch/secret"
)

// Evaluator scores an attempt (risk.Engine implements it).
type Evaluator interface {
	Evaluate(risk.Signals) risk.Decision
}

// AlertPolicy is the Evaluator of a server without risk configuration:
// a new device or a new country notifies the user, anything else is
// allowed. It never denies or challenges.
type AlertPolicy struct{}

// Evaluate implements Evaluator.
func (AlertPolicy) Evaluate(s risk.Signals) risk.Decision {
	var d risk.Decision
	if s.NewDevice {
		d.Reasons = append(d.Reasons, risk.Reason{Code: "new_device", Weight: 1})
	}
	if s.NewCountry {
		d.Reasons = append(d.Reasons, risk.Reason{Code: "new_country", Weight: 1})
	}
	d.Score = len(d.Reasons)
	d.Action = risk.Allow
	if d.Score > 0 {
		d.Action = risk.Notify
	}
	return d
}

// AlertTTL is how long the links of a sign-in alert work.
const AlertTTL = 7 * 24 * time.Hour

// AlertTokenPrefix begins the tokens of sign-in alert links, so that
// secret scanners can find leaked ones.
const AlertTokenPrefix = "latch_al_"

// TemplateNewDevice is the mail template of a sign-in alert.
const TemplateNewDevice = "new_device"

// touchEvery: a known device seen again from the same address within this
// long is not written again (its last-seen time is this coarse), so that
// the usual sign-in costs two indexed reads and no write.
const touchEvery = 10 * time.Minute

// SignInConfig configures a SignIn guard.
type SignInConfig struct {
	// CanChallenge says whether a step-up challenger is installed; without
	// one, a challenge decision is handled as a notification.
	CanChallenge bool
	// AlertTTL is how long alert links work; 0 means AlertTTL.
	AlertTTL time.Duration
}

// SignInDeps are the collaborators of a SignIn guard.
type SignInDeps struct {
	Store latch.Store
	// Risk decides; nil means AlertPolicy.
	Risk Evaluator
	// Locator places addresses; nil means no geo-IP (every Place empty).
	Locator latch.Locator
	// Failures, if not nil, returns the account's recent failed
	// sign-ins (the sign-in throttle's count, by canonical email): the
	// failed-attempt signal.
	Failures func(ctx context.Context, email string) int
	Log      *slog.Logger
	Now      func() time.Time // nil means time.Now
}

// SignIn screens sign-ins (it implements auth.SignInGuard): it gathers
// the signals of an attempt (a new device, a new country or network, the
// previous use for travel) in two indexed reads made at once, asks the
// risk evaluator, and acts: deny, challenge, or let the sign-in through,
// with an alert email enqueued with the session when the decision is to
// notify.
type SignIn struct {
	cfg      SignInConfig
	store    latch.Store
	risk     Evaluator
	geo      latch.Locator
	failures func(ctx context.Context, email string) int
	log      *slog.Logger
	now      func() time.Time

	// Touches of known devices are written after the answer (see
	// touch); a user's next screening waits for its own.
	mu       sync.Mutex
	inflight map[string]chan struct{}
	touches  sync.WaitGroup
}

var _ auth.SignInGuard = (*SignIn)(nil)

// NewSignIn returns a sign-in guard.
func NewSignIn(cfg SignInConfig, d SignInDeps) (*SignIn, error) {
	if d.Store == nil {
		return nil, errors.New("protect: a store is required")
	}
	if cfg.AlertTTL <= 0 {
		cfg.AlertTTL = AlertTTL
	}
	g := &SignIn{cfg: cfg, store: d.Store, risk: d.Risk, geo: d.Locator, failures: d.Failures, log: d.Log, now: d.Now,
		inflight: map[string]chan struct{}{}}
	if g.risk == nil {
		g.risk = AlertPolicy{}
	}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	if g.now == nil {
		g.now = time.Now
	}
	return g, nil
}

func (g *SignIn) clock() time.Time { return g.now().UTC().Truncate(time.Microsecond) }

// ScreenSignIn implements auth.SignInGuard.
func (g *SignIn) ScreenSignIn(ctx context.Context, a *auth.Authentication, clientID string, d auth.Device) (*auth.Screening, error) {
	if err := g.settled(ctx, a.UserID); err != nil {
		return nil, err
	}
	now := g.clock()
	// The two reads run side by side (and the geo-IP lookup meanwhile):
	// on PostgreSQL each is a round trip of about 0.1 ms, and one after
	// the other they came to over 1 % of a sign-in's password hash
	// (BenchmarkSignInRisk in instance).
	var (
		places    *latch.Places
		placesErr error
		read      = make(chan struct{})
	)
	go func() {
		defer close(read)
		places, placesErr = g.store.Places(ctx, a.UserID)
	}()
	var place latch.Place
	if g.geo != nil && d.IP != "" {
		place = g.geo.Lookup(d.IP)
	}
	devs, err := g.store.Devices(ctx, a.UserID)
	<-read
	if err != nil {
		return nil, fmt.Errorf("protect: devices: %w", err)
	}
	if placesErr != nil {
		return nil, fmt.Errorf("protect: places: %w", placesErr)
	}
	known := device.Recognize(devs, d)
	sig := risk.Signals{
		Kind: risk.KindSignIn, At: now, IP: d.IP,
		Country: place.Country, City: place.City, ASN: place.ASN,
		// The first device and place of an account are not news: the
		// sign-in after registration alerts no one.
		NewDevice:  known == nil && len(devs) > 0,
		NewCountry: place.Country != "" && len(places.Countries) > 0 && !slices.Contains(places.Countries, place.Country),
		NewASN:     place.ASN != 0 && len(places.ASNs) > 0 && !slices.Contains(places.ASNs, place.ASN),
	}
	if place.Located {
		sig.Lat, sig.Lon, sig.AccuracyKm = place.Lat, place.Lon, place.AccuracyKm
	}
	if g.failures != nil && a.Email != "" {
		sig.RecentFailures = g.failures(ctx, a.Email)
	}
	// The previous use, for impossible travel: the device seen last.
	for _, prev := range devs {
		if prev.LastPlace.Located {
			sig.PrevAt, sig.PrevLat, sig.PrevLon, sig.PrevAccuracyKm = prev.LastSeenAt, prev.LastPlace.Lat, prev.LastPlace.Lon, prev.LastPlace.AccuracyKm
		}
		break
	}
	dec := g.risk.Evaluate(sig)

	dev := g.deviceRecord(known, a.UserID, d, place, now)
	action := dec.Action
	if action == risk.Challenge && (a.Challenged || !g.cfg.CanChallenge) {
		// The code was answered (the email is proven), or nobody can
		// ask for one: the user is told instead.
		action = risk.Notify
		if a.Challenged {
			action = risk.Allow
		}
	}
	switch action {
	case risk.Deny, risk.Revoke:
		g.event(ctx, latch.EventRiskDenied, a.UserID, "", clientID, d, dec, sig, nil)
		return nil, auth.ErrRiskDenied
	case risk.Challenge:
		g.event(ctx, latch.EventRiskChallenged, a.UserID, "", clientID, d, dec, sig, nil)
		return nil, auth.ErrChallenge
	case risk.Notify:
		return g.notify(ctx, a.UserID, clientID, d, dev, dec, sig)
	}
	// An allowed sign-in's decision rides on its login_succeeded event.
	detail := allowedDetail(sig, dec)
	if known != nil && known.LastIP == d.IP && now.Sub(known.LastSeenAt) < touchEvery &&
		(known.CookieID != "" || d.DeviceID == "") {
		return &auth.Screening{Detail: detail}, nil // nothing new to write
	}
	if known != nil {
		return &auth.Screening{Detail: detail, Created: func(context.Context, *auth.Tokens) { g.touch(dev) }}, nil
	}
	return &auth.Screening{Detail: detail, Created: func(ctx context.Context, _ *auth.Tokens) { g.record(ctx, dev) }}, nil
}

// allowedDetail is the detail an allowed decision adds to the sign-in's
// login_succeeded event (risk.EventDetail), or nil if a value would be
// longer than an event keeps (auth.MaxDetailValueLen): a cut JSON value
// would not replay.
func allowedDetail(sig risk.Signals, dec risk.Decision) map[string]string {
	d := risk.EventDetail(sig, dec)
	for _, v := range d {
		if len(v) > auth.MaxDetailValueLen {
			return nil
		}
	}
	return d
}

// touchTimeout bounds a touch written after the answer.
const touchTimeout = 5 * time.Second

// touchDelay is how long a touch waits before it is written: long enough
// for the sign-in's answer (tokens, cookies) to be on its way, so that
// the write does not take the CPU from it. Begun at once, the touch took
// about 0.15 ms from the answer on SQLite (BenchmarkSignInRisk in
// instance: a known device with a touch due against one without).
const touchDelay = 10 * time.Millisecond

// touch records the use of a known device after the sign-in's answer
// (touchDelay after its screening): on SQLite with synchronous=FULL a
// commit costs about half a millisecond, which would be over 1 % of a
// sign-in. A new device is recorded before
// the answer (it decides the next sign-in's alert); a known device's
// touch only moves its last use, so losing one to a crash costs nothing
// but accuracy. The user's next screening on this instance waits for it.
func (g *SignIn) touch(dev *latch.Device) {
	done := make(chan struct{})
	g.mu.Lock()
	prev := g.inflight[dev.UserID]
	g.inflight[dev.UserID] = done
	g.mu.Unlock()
	g.touches.Add(1)
	go func() {
		defer g.touches.Done()
		if prev != nil {
			<-prev
		}
		time.Sleep(touchDelay)
		ctx, cancel := context.WithTimeout(context.Background(), touchTimeout)
		g.record(ctx, dev)
		cancel()
		g.mu.Lock()
		if g.inflight[dev.UserID] == done {
			delete(g.inflight, dev.UserID)
		}
		g.mu.Unlock()
		close(done)
	}()
}

// settled waits for the user's touch in flight, if any.
func (g *SignIn) settled(ctx context.Context, userID string) error {
	g.mu.Lock()
	ch := g.inflight[userID]
	g.mu.Unlock()
	if ch == nil {
		return nil
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Wait waits for the touches in flight (call it before closing the
// store).
func (g *SignIn) Wait() { g.touches.Wait() }

// deviceRecord is the device row a sign-in leaves: the known one seen
// again, or a new one.
func (g *SignIn) deviceRecord(known *latch.Device, userID string, d auth.Device, place latch.Place, now time.Time) *latch.Device {
	var dev latch.Device
	if known != nil {
		dev = *known
	} else {
		dev = latch.Device{ID: device.NewID(), UserID: userID, Family: device.Family(d.UserAgent), CreatedAt: now}
	}
	dev.Browser, dev.OS = device.Describe(d.UserAgent)
	if dev.CookieID == "" {
		dev.CookieID = d.DeviceID
	}
	dev.LastSeenAt, dev.LastIP, dev.LastPlace = now, d.IP, place
	return &dev
}

func (g *SignIn) record(ctx context.Context, dev *latch.Device) {
	if err := g.store.RecordDeviceUse(ctx, dev); err != nil {
		g.log.Warn("recording device use failed", "user_id", dev.UserID, "err", err)
	}
}

// notify stores the alert with its two links, and returns the screening
// that enqueues its email with the session and, once the session exists,
// records the device and the new_device_sign_in event.
func (g *SignIn) notify(ctx context.Context, userID, clientID string, d auth.Device, dev *latch.Device, dec risk.Decision, sig risk.Signals) (*auth.Screening, error) {
	u, err := g.store.UserByID(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("protect: load user: %w", err)
	}
	now := dev.LastSeenAt
	me, meHash := newAlertToken()
	notMe, notMeHash := newAlertToken()
	alert := &latch.SignInAlert{
		ID: newAlertID(), UserID: userID, DeviceID: dev.ID, MeHash: meHash, NotMeHash: notMeHash,
		CreatedAt: now, ExpiresAt: now.Add(g.cfg.AlertTTL),
		IP: d.IP, Country: dev.LastPlace.Country, City: dev.LastPlace.City, Browser: dev.Browser, OS: dev.OS,
	}
	if err := g.store.CreateSignInAlert(ctx, alert); err != nil {
		return nil, fmt.Errorf("protect: create sign-in alert: %w", err)
	}
	msg := &latch.OutboxMessage{Kind: latch.OutboxEmail, CreatedAt: now, NotBefore: now,
		Payload: latch.EmailMessage{To: u.Email, Template: TemplateNewDevice, Data: map[string]string{
			"when":        now.Format("Monday, 2 January 2006, 15:04 MST"),
			"where":       Where(dev.LastPlace, d.IP),
			"ip":          orUnknown(d.IP),
			"browser":     orUnknown(dev.Browser),
			"os":          orUnknown(dev.OS),
			"me_link":     AlertLink(alert.ID, me),
			"not_me_link": AlertLink(alert.ID, notMe),
			"expires_in":  humanDays(g.cfg.AlertTTL),
		}}.Payload()}
	return &auth.Screening{
		Outbox: []*latch.OutboxMessage{msg},
		Created: func(ctx context.Context, t *auth.Tokens) {
			g.record(ctx, dev)
			g.event(ctx, latch.EventNewDeviceSignIn, userID, t.SessionID, clientID, d, dec, sig,
				map[string]string{"alert_id": alert.ID, "device_id": dev.ID})
		},
	}, nil
}

// event records a decision other than allow, with its reasons and the
// signals it was made from (for latch risk replay).
func (g *SignIn) event(ctx context.Context, typ, userID, sessionID, clientID string, d auth.Device, dec risk.Decision, sig risk.Signals, extra map[string]string) {
	detail := risk.EventDetail(sig, dec) // the format latch risk replay reads
	for k, v := range extra {
		detail[k] = v
	}
	e := &latch.Event{Type: typ, At: g.clock(), UserID: userID, SessionID: sessionID, ClientID: clientID,
		IP: d.IP, UserAgent: d.UserAgent, Detail: detail}
	if err := g.store.AddEvent(ctx, e); err != nil {
		g.log.Warn("recording security event failed", "type", typ, "err", err)
	}
}

// AlertLink is the path of an alert link: /alert#id=…&t=…, the alert's
// id and the link's token in the URL fragment, which no server, proxy log
// or Referer sees (as /verify, /reset and /unlock links). The page it
// opens reads the fragment, asks, and acts only on its button's POST.
func AlertLink(alertID, token string) string {
	return "/alert#" + url.Values{"id": {alertID}, "t": {token}}.Encode()
}

// Where says where a sign-in came from for people: the city and country
// when geo-IP knows them, the IP address otherwise.
func Where(p latch.Place, ip string) string {
	switch {
	case p.City != "" && p.Country != "":
		return p.City + ", " + p.Country
	case p.Country != "":
		return p.Country
	}
	return orUnknown(ip) + " (no location known)"
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

func humanDays(d time.Duration) string {
	if d >= 48*time.Hour && d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%d days", d/(24*time.Hour))
	}
	return strings.TrimSuffix(d.Round(time.Minute).String(), "0s")
}

// newAlertToken returns a fresh link token and its SHA-256.
func newAlertToken() (string, []byte) { return secret.NewToken(AlertTokenPrefix) }

// wellFormed reports whether t could be an alert token; anything else is
// refused before the store is asked.
func wellFormed(t string) bool { return secret.TokenShaped(t, AlertTokenPrefix) }

func newAlertID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return "al_" + base64.RawURLEncoding.EncodeToString(b)
}
