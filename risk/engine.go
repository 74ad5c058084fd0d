package risk

import (
	"fmt"
	"math"
	"net/netip"
	"time"
)

// Engine scores Signals with a validated Config. It is safe for
// concurrent use.
type Engine struct {
	cfg                       Config
	ipAllow, ipDeny           []netip.Prefix
	countryAllow, countryDeny []string
}

// New validates cfg and returns its Engine.
func New(cfg Config) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	e := &Engine{cfg: cfg, countryAllow: cfg.Countries.Allow, countryDeny: cfg.Countries.Deny}
	for _, p := range cfg.IP.Allow {
		pp, _ := parsePrefix(p)
		e.ipAllow = append(e.ipAllow, pp)
	}
	for _, p := range cfg.IP.Deny {
		pp, _ := parsePrefix(p)
		e.ipDeny = append(e.ipDeny, pp)
	}
	return e, nil
}

// Config returns the engine's configuration.
func (e *Engine) Config() Config { return e.cfg }

// Reason codes.
const (
	ReasonIPDenied         = "ip_denied"
	ReasonCountryDenied    = "country_denied"
	ReasonNewDevice        = "new_device"
	ReasonNewCountry       = "new_country"
	ReasonNewASN           = "new_asn"
	ReasonImpossibleTravel = "impossible_travel"
	ReasonFailures         = "recent_failures"
	ReasonIPChanged        = "ip_changed"
	ReasonASNChanged       = "asn_changed"
	ReasonCountryChanged   = "country_changed"
	ReasonUserAgentChanged = "user_agent_changed"
)

// Severity orders actions: Allow 0, Notify 1, Challenge 2, Deny 3,
// Revoke 4; an unknown action is -1.
func (a Action) Severity() int {
	switch a {
	case Allow:
		return 0
	case Notify:
		return 1
	case Challenge:
		return 2
	case Deny:
		return 3
	case Revoke:
		return 4
	}
	return -1
}

// maxReasons bounds the reasons of one decision (every signal once).
const maxReasons = 12

// Evaluate scores s. The IP and country rules come first: a match (or a
// miss of an allow list) denies with the rule as the only reason. Then the
// weights of the signals present add up to the score, and the level it
// reaches picks the action for s.Kind; a sign-in from a new device or
// country asks at least for risk.new_device.
func (e *Engine) Evaluate(s Signals) Decision {
	var buf [maxReasons]Reason
	reasons := buf[:0]
	if r, ok := e.rules(s); ok {
		return Decision{Score: 0, Action: Deny, Reasons: []Reason{r}}
	}
	w := &e.cfg.Weights
	add := func(code string, weight int, detail string) {
		if weight > 0 {
			reasons = append(reasons, Reason{Code: code, Weight: weight, Detail: detail})
		}
	}
	if s.Kind == KindRefresh {
		if s.IPChanged {
			add(ReasonIPChanged, w.IPChange, "")
		}
		if s.ASNChanged {
			add(ReasonASNChanged, w.ASNChange, "")
		}
		if s.CountryChanged {
			add(ReasonCountryChanged, w.CountryChange, "")
		}
		if s.UserAgentChanged {
			add(ReasonUserAgentChanged, w.UserAgentChange, "")
		}
	} else {
		if s.NewDevice {
			add(ReasonNewDevice, w.NewDevice, "")
		}
		if s.NewCountry {
			add(ReasonNewCountry, w.NewCountry, "")
		}
		if s.NewASN {
			add(ReasonNewASN, w.NewASN, "")
		}
		if s.RecentFailures > 0 && w.Failure > 0 {
			points := w.Failure * min(s.RecentFailures, 1000)
			if w.FailureCap > 0 {
				points = min(points, w.FailureCap)
			}
			add(ReasonFailures, points, "")
		}
	}
	if w.ImpossibleTravel > 0 {
		if km, d, ok := e.impossibleTravel(&s); ok {
			add(ReasonImpossibleTravel, w.ImpossibleTravel, fmt.Sprintf("%.0f km in %s", km, d.Round(time.Second)))
		}
	}
	score := 0
	for _, r := range reasons {
		score += r.Weight
	}
	d := Decision{Score: score, Action: e.action(&s, score)}
	if len(reasons) > 0 {
		d.Reasons = append([]Reason(nil), reasons...)
	}
	return d
}

// action maps a score to the action of its level for s.Kind.
func (e *Engine) action(s *Signals, score int) Action {
	at := func(level int) bool { return level > 0 && score >= level }
	if s.Kind == KindRefresh {
		r := &e.cfg.Refresh
		switch {
		case at(r.Revoke):
			return Revoke
		case at(r.Deny):
			return Deny
		case at(r.Notify):
			return Notify
		}
		return Allow
	}
	c := &e.cfg.SignIn
	a := Allow
	switch {
	case at(c.Deny):
		return Deny
	case at(c.Challenge):
		a = Challenge
	case at(c.Notify):
		a = Notify
	}
	if (s.NewDevice || s.NewCountry) && e.cfg.NewDevice.Severity() > a.Severity() {
		a = e.cfg.NewDevice
	}
	return a
}

// rules applies the IP and country lists; ok if one refuses s.
func (e *Engine) rules(s Signals) (Reason, bool) {
	if len(e.ipAllow) > 0 || len(e.ipDeny) > 0 {
		addr, err := netip.ParseAddr(s.IP)
		if err != nil {
			// Without an address no allow list can be satisfied; a
			// deny list alone lets it through (it names addresses).
			if len(e.ipAllow) > 0 {
				return Reason{Code: ReasonIPDenied, Detail: "no client address, and risk.ip.allow is set"}, true
			}
		} else {
			addr = addr.Unmap().WithZone("")
			for _, p := range e.ipDeny {
				if p.Contains(addr) {
					return Reason{Code: ReasonIPDenied, Detail: "in risk.ip.deny " + p.String()}, true
				}
			}
			if len(e.ipAllow) > 0 && !containsAddr(e.ipAllow, addr) {
				return Reason{Code: ReasonIPDenied, Detail: "not in risk.ip.allow"}, true
			}
		}
	}
	if len(e.countryDeny) > 0 && s.Country != "" && contains(e.countryDeny, s.Country) {
		return Reason{Code: ReasonCountryDenied, Detail: "in risk.countries.deny " + s.Country}, true
	}
	if len(e.countryAllow) > 0 && !contains(e.countryAllow, s.Country) {
		if s.Country == "" {
			return Reason{Code: ReasonCountryDenied, Detail: "country unknown, and risk.countries.allow is set"}, true
		}
		return Reason{Code: ReasonCountryDenied, Detail: "not in risk.countries.allow " + s.Country}, true
	}
	return Reason{}, false
}

func containsAddr(list []netip.Prefix, a netip.Addr) bool {
	for _, p := range list {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// impossibleTravel tells whether s moved from its previous place faster
// than risk.travel.max_speed_kmh allows, counting only the distance beyond
// both accuracy radii and risk.travel.tolerance_km; it returns that
// distance and the time between.
func (e *Engine) impossibleTravel(s *Signals) (float64, time.Duration, bool) {
	if s.PrevAt.IsZero() || !located(s.Lat, s.Lon) || !located(s.PrevLat, s.PrevLon) {
		return 0, 0, false
	}
	km := Distance(s.PrevLat, s.PrevLon, s.Lat, s.Lon) -
		s.AccuracyKm - s.PrevAccuracyKm - float64(e.cfg.Travel.ToleranceKm)
	if km <= 0 {
		return 0, 0, false
	}
	elapsed := s.At.Sub(s.PrevAt)
	if elapsed < 0 {
		elapsed = -elapsed
	}
	if elapsed > 0 && km/elapsed.Hours() <= float64(e.cfg.Travel.MaxSpeedKmh) {
		return 0, 0, false
	}
	return km, elapsed, true
}

// located: a geo-IP database gives no place at 0°N 0°E (the Gulf of
// Guinea), so zero coordinates mean unknown.
func located(lat, lon float64) bool { return lat != 0 || lon != 0 }

// earthRadiusKm is the mean radius of the Earth.
const earthRadiusKm = 6371.0088

// Distance is the great-circle distance in kilometres between two points
// given in degrees (the haversine formula).
func Distance(lat1, lon1, lat2, lon2 float64) float64 {
	const rad = math.Pi / 180
	dLat := (lat2 - lat1) * rad
	dLon := (lon2 - lon1) * rad
	a := math.Sin(dLat/2)*math.Sin(dLat/2) +
		math.Cos(lat1*rad)*math.Cos(lat2*rad)*math.Sin(dLon/2)*math.Sin(dLon/2)
	return 2 * earthRadiusKm * math.Asin(math.Sqrt(min(1, a)))
}
