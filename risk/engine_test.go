package risk_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/latchauth/latch/risk"
)

var t0 = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

// Places used below.
var (
	seoul  = [2]float64{37.5665, 126.978}
	busan  = [2]float64{35.1796, 129.0756} // about 325 km from Seoul
	berlin = [2]float64{52.52, 13.405}     // about 8130 km from Seoul
)

func engine(t testing.TB, edit func(*risk.Config)) *risk.Engine {
	t.Helper()
	c := risk.Defaults()
	if edit != nil {
		edit(&c)
	}
	e, err := risk.New(c)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func codes(d risk.Decision) string {
	var s []string
	for _, r := range d.Reasons {
		s = append(s, r.Code)
	}
	return strings.Join(s, ",")
}

func TestIPRules(t *testing.T) {
	deny := engine(t, func(c *risk.Config) { c.IP.Deny = []string{"203.0.113.0/24", "2001:db8::1"} })
	allow := engine(t, func(c *risk.Config) { c.IP.Allow = []string{"10.0.0.0/8", "192.0.2.7"} })
	for _, tc := range []struct {
		e    *risk.Engine
		kind string
		ip   string
		want risk.Action
	}{
		{deny, risk.KindSignIn, "203.0.113.9", risk.Deny},
		{deny, risk.KindRefresh, "203.0.113.9", risk.Deny},
		{deny, risk.KindSignIn, "::ffff:203.0.113.9", risk.Deny}, // v4-mapped is the same address
		{deny, risk.KindSignIn, "2001:db8::1", risk.Deny},
		{deny, risk.KindSignIn, "2001:db8::2", risk.Allow},
		{deny, risk.KindSignIn, "203.0.114.1", risk.Allow},
		{deny, risk.KindSignIn, "", risk.Allow}, // a deny list names addresses
		{allow, risk.KindSignIn, "10.1.2.3", risk.Allow},
		{allow, risk.KindRefresh, "10.1.2.3", risk.Allow},
		{allow, risk.KindSignIn, "192.0.2.7", risk.Allow},
		{allow, risk.KindSignIn, "192.0.2.8", risk.Deny},
		{allow, risk.KindRefresh, "198.51.100.1", risk.Deny},
		{allow, risk.KindSignIn, "", risk.Deny}, // no address cannot be in an allow list
		{allow, risk.KindSignIn, "garbage", risk.Deny},
	} {
		d := tc.e.Evaluate(risk.Signals{Kind: tc.kind, At: t0, IP: tc.ip})
		if d.Action != tc.want {
			t.Errorf("%s from %q: %+v, want %s", tc.kind, tc.ip, d, tc.want)
		}
		if tc.want == risk.Deny && codes(d) != risk.ReasonIPDenied {
			t.Errorf("%s from %q: reasons %q, want ip_denied", tc.kind, tc.ip, codes(d))
		}
	}
}

func TestCountryRules(t *testing.T) {
	deny := engine(t, func(c *risk.Config) { c.Countries.Deny = []string{"KP", "RU"} })
	allow := engine(t, func(c *risk.Config) { c.Countries.Allow = []string{"KR", "JP"} })
	for _, tc := range []struct {
		e       *risk.Engine
		kind    string
		country string
		want    risk.Action
	}{
		{deny, risk.KindSignIn, "RU", risk.Deny},
		{deny, risk.KindRefresh, "KP", risk.Deny},
		{deny, risk.KindSignIn, "KR", risk.Allow},
		{deny, risk.KindSignIn, "", risk.Allow},
		{allow, risk.KindSignIn, "KR", risk.Allow},
		{allow, risk.KindRefresh, "JP", risk.Allow},
		{allow, risk.KindSignIn, "DE", risk.Deny},
		{allow, risk.KindRefresh, "DE", risk.Deny},
		{allow, risk.KindSignIn, "", risk.Deny}, // unknown is not on the list
	} {
		d := tc.e.Evaluate(risk.Signals{Kind: tc.kind, At: t0, IP: "198.51.100.1", Country: tc.country})
		if d.Action != tc.want {
			t.Errorf("%s from %q: %+v, want %s", tc.kind, tc.country, d, tc.want)
		}
		if tc.want == risk.Deny && codes(d) != risk.ReasonCountryDenied {
			t.Errorf("%s from %q: reasons %q, want country_denied", tc.kind, tc.country, codes(d))
		}
	}
}

func TestRulesComeBeforeScores(t *testing.T) {
	e := engine(t, func(c *risk.Config) { c.IP.Deny = []string{"203.0.113.0/24"}; c.NewDevice = risk.Allow })
	d := e.Evaluate(risk.Signals{Kind: risk.KindSignIn, At: t0, IP: "203.0.113.1"})
	if d.Action != risk.Deny {
		t.Fatalf("%+v", d)
	}
}

func TestImpossibleTravel(t *testing.T) {
	// Only the travel weight counts, and every level of a sign-in is off
	// but notify at that weight, so the action shows whether it fired.
	e := engine(t, nil)
	dist := risk.Distance(seoul[0], seoul[1], berlin[0], berlin[1])
	if dist < 8000 || dist > 8300 {
		t.Fatalf("Seoul to Berlin %.0f km", dist)
	}
	travel := func(from, to [2]float64, elapsed time.Duration, accFrom, accTo float64) risk.Decision {
		return e.Evaluate(risk.Signals{
			Kind: risk.KindSignIn, At: t0.Add(elapsed), IP: "198.51.100.1",
			Lat: to[0], Lon: to[1], AccuracyKm: accTo,
			PrevAt: t0, PrevLat: from[0], PrevLon: from[1], PrevAccuracyKm: accFrom,
		})
	}
	fired := func(d risk.Decision) bool { return strings.Contains(codes(d), risk.ReasonImpossibleTravel) }
	// The counted distance is dist - 100 (tolerance) - both radii; at
	// 1000 km/h the boundary in hours is that distance / 1000.
	counted := dist - 100
	boundary := time.Duration(counted / 1000 * float64(time.Hour))
	if !fired(travel(seoul, berlin, boundary-time.Minute, 0, 0)) {
		t.Error("Seoul to Berlin a minute faster than 1000 km/h: not impossible travel")
	}
	if fired(travel(seoul, berlin, boundary+time.Minute, 0, 0)) {
		t.Error("Seoul to Berlin a minute slower than 1000 km/h: impossible travel")
	}
	// The accuracy radii are forgiven: 500 km each pushes the boundary
	// by an hour.
	if fired(travel(seoul, berlin, boundary-30*time.Minute, 500, 500)) {
		t.Error("travel within both accuracy radii counted")
	}
	if !fired(travel(seoul, berlin, boundary-61*time.Minute, 500, 500)) {
		t.Error("travel beyond both accuracy radii not counted")
	}
	// Close places: Seoul to Busan in one minute is within radii and
	// tolerance of 100 km each.
	if fired(travel(seoul, busan, time.Minute, 120, 120)) {
		t.Error("Seoul to Busan within the tolerance counted")
	}
	if !fired(travel(seoul, busan, time.Minute, 10, 10)) {
		t.Error("Seoul to Busan in a minute not counted")
	}
	// The tolerance is configurable.
	lenient := engine(t, func(c *risk.Config) { c.Travel.ToleranceKm = 400 })
	if d := lenient.Evaluate(risk.Signals{Kind: risk.KindSignIn, At: t0.Add(time.Minute), Lat: busan[0], Lon: busan[1],
		PrevAt: t0, PrevLat: seoul[0], PrevLon: seoul[1]}); fired(d) {
		t.Error("tolerance_km 400: Seoul to Busan counted")
	}
	// Simultaneous uses far apart are impossible.
	if !fired(travel(seoul, berlin, 0, 0, 0)) {
		t.Error("simultaneous use in Seoul and Berlin not counted")
	}
	// Unknown previous use or place: nothing to measure.
	if d := e.Evaluate(risk.Signals{Kind: risk.KindSignIn, At: t0, Lat: berlin[0], Lon: berlin[1], PrevLat: seoul[0], PrevLon: seoul[1]}); fired(d) {
		t.Error("counted without PrevAt")
	}
	if d := e.Evaluate(risk.Signals{Kind: risk.KindSignIn, At: t0, PrevAt: t0, PrevLat: seoul[0], PrevLon: seoul[1]}); fired(d) {
		t.Error("counted without a place")
	}
	// At refresh too, and it counts towards revoke there.
	d := e.Evaluate(risk.Signals{Kind: risk.KindRefresh, At: t0.Add(time.Hour), Lat: berlin[0], Lon: berlin[1],
		PrevAt: t0, PrevLat: seoul[0], PrevLon: seoul[1], IPChanged: true, ASNChanged: true, CountryChanged: true})
	if d.Action != risk.Revoke || !fired(d) {
		t.Errorf("refresh from Berlin an hour after a Seoul sign-in: %+v", d)
	}
	speedy := engine(t, func(c *risk.Config) { c.Travel.MaxSpeedKmh = 10000 })
	if d := speedy.Evaluate(risk.Signals{Kind: risk.KindSignIn, At: t0.Add(time.Hour), Lat: berlin[0], Lon: berlin[1],
		PrevAt: t0, PrevLat: seoul[0], PrevLon: seoul[1]}); fired(d) {
		t.Error("max_speed_kmh 10000: 8000 km in an hour counted")
	}
}

func TestSignInLevels(t *testing.T) {
	e := engine(t, func(c *risk.Config) { c.SignIn.Deny = 140 })
	for _, tc := range []struct {
		name string
		s    risk.Signals
		want risk.Action
		code string
	}{
		{"known device", risk.Signals{}, risk.Allow, ""},
		{"new device", risk.Signals{NewDevice: true}, risk.Notify, "new_device"},
		{"new asn only", risk.Signals{NewASN: true}, risk.Allow, "new_asn"},
		{"new country", risk.Signals{NewCountry: true}, risk.Notify, "new_country"},
		{"two failures", risk.Signals{RecentFailures: 2}, risk.Allow, "recent_failures"},
		{"many failures, capped", risk.Signals{RecentFailures: 1000}, risk.Notify, "recent_failures"},
		{"new everything", risk.Signals{NewDevice: true, NewCountry: true, NewASN: true, RecentFailures: 4}, risk.Challenge, "new_device,new_country,new_asn,recent_failures"},
		{"refresh signals do not count at sign-in", risk.Signals{IPChanged: true, UserAgentChanged: true, CountryChanged: true, ASNChanged: true}, risk.Allow, ""},
	} {
		tc.s.Kind, tc.s.At = risk.KindSignIn, t0
		d := e.Evaluate(tc.s)
		if d.Action != tc.want || codes(d) != tc.code {
			t.Errorf("%s: %+v, want %s with %q", tc.name, d, tc.want, tc.code)
		}
	}
	d := e.Evaluate(risk.Signals{Kind: risk.KindSignIn, At: t0, NewDevice: true, NewCountry: true, NewASN: true, RecentFailures: 5,
		Lat: berlin[0], Lon: berlin[1], PrevAt: t0, PrevLat: seoul[0], PrevLon: seoul[1]})
	if d.Action != risk.Deny || d.Score != 20+30+10+25+60 {
		t.Errorf("past the deny level: %+v", d)
	}
}

func TestNewDeviceFloor(t *testing.T) {
	for _, tc := range []struct {
		floor risk.Action
		s     risk.Signals
		want  risk.Action
	}{
		{risk.Challenge, risk.Signals{NewDevice: true}, risk.Challenge},
		{risk.Challenge, risk.Signals{NewCountry: true}, risk.Challenge},
		{risk.Challenge, risk.Signals{NewASN: true}, risk.Allow},
		{risk.Challenge, risk.Signals{}, risk.Allow},
		{risk.Allow, risk.Signals{NewDevice: true}, risk.Allow},
		{risk.Notify, risk.Signals{NewDevice: true}, risk.Notify},
	} {
		e := engine(t, func(c *risk.Config) {
			c.NewDevice = tc.floor
			c.SignIn.Notify, c.SignIn.Challenge = 0, 0 // only the floor acts
		})
		tc.s.Kind, tc.s.At = risk.KindSignIn, t0
		if d := e.Evaluate(tc.s); d.Action != tc.want {
			t.Errorf("new_device %s, %+v: %s, want %s", tc.floor, tc.s, d.Action, tc.want)
		}
	}
}

func TestRefreshLevels(t *testing.T) {
	e := engine(t, func(c *risk.Config) { c.Refresh.Deny = 80 })
	for _, tc := range []struct {
		s    risk.Signals
		want risk.Action
	}{
		{risk.Signals{}, risk.Allow},
		{risk.Signals{IPChanged: true}, risk.Allow},
		{risk.Signals{IPChanged: true, ASNChanged: true, CountryChanged: true}, risk.Allow},            // 45
		{risk.Signals{UserAgentChanged: true, ASNChanged: true}, risk.Notify},                          // 50
		{risk.Signals{UserAgentChanged: true, CountryChanged: true, ASNChanged: true}, risk.Deny},      // 80
		{risk.Signals{NewDevice: true, NewCountry: true, NewASN: true, RecentFailures: 9}, risk.Allow}, // sign-in signals do not count
	} {
		tc.s.Kind, tc.s.At = risk.KindRefresh, t0
		if d := e.Evaluate(tc.s); d.Action != tc.want {
			t.Errorf("%+v: %+v, want %s", tc.s, d, tc.want)
		}
	}
}

func TestValidate(t *testing.T) {
	c := risk.Defaults()
	c.NewDevice = "block"
	c.Countries.Deny = []string{"KP", "kr", "XX", "USA"}
	c.Countries.Allow = []string{"DE"}
	c.IP.Allow = []string{"10.0.0.0/8", "10.0.0.0/33"}
	c.IP.Deny = []string{"example.com"}
	c.Travel.MaxSpeedKmh = 0
	c.Travel.ToleranceKm = -1
	c.Weights.NewDevice = -5
	c.SignIn.Challenge = 10 // below notify 20
	c.Refresh.Revoke = 50   // equal to notify 50
	err := c.Validate()
	want := []string{
		`risk.new_device: "block" is not one of notify, challenge, allow`,
		`risk.countries.deny[1]: "kr" is not an ISO 3166 country code`,
		`risk.countries.deny[2]: "XX" is not an ISO 3166 country code`,
		`risk.countries.deny[3]: "USA" is not an ISO 3166 country code`,
		`risk.ip.allow[1]: "10.0.0.0/33" is not a CIDR`,
		`risk.ip.deny[0]: "example.com" is not a CIDR`,
		`risk.travel.max_speed_kmh: 0 must be between 100 and 100000`,
		`risk.travel.tolerance_km: -1 must be between 0 and 20000`,
		`risk.weights.new_device: -5 must be between 0 and 1000`,
		`risk.sign_in.challenge: 10 must be above risk.sign_in.notify (20)`,
		`risk.refresh.revoke: 50 must be above risk.refresh.notify (50)`,
	}
	if err == nil {
		t.Fatal("no error")
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
	for _, ok := range []string{"KP", "DE", "10.0.0.0/8", "[0]: \"KP\""} {
		if strings.Contains(err.Error(), `"`+ok+`" is not`) {
			t.Errorf("%s refused:\n%v", ok, err)
		}
	}
	var se *risk.SettingError
	if !errors.As(err, &se) || se.Setting() != "risk.new_device" {
		t.Errorf("first SettingError: %+v", se)
	}
	if _, err := risk.New(c); err == nil {
		t.Error("New accepted an invalid configuration")
	}
	d := risk.Defaults()
	if err := d.Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
	if d.HasRules() || d.HasCountryRules() {
		t.Error("defaults have rules")
	}
	se = &risk.SettingError{Key: "risk.countries.deny[2]"}
	if se.Setting() != "risk.countries.deny" {
		t.Error(se.Setting())
	}
}

func TestIsCountry(t *testing.T) {
	for _, cc := range []string{"KR", "DE", "US", "XK", "ZW", "AD"} {
		if !risk.IsCountry(cc) {
			t.Errorf("%s refused", cc)
		}
	}
	for _, cc := range []string{"", "K", "kr", "XX", "ZZ", "UK", "KOR", "K1", "D E"} {
		if risk.IsCountry(cc) {
			t.Errorf("%q accepted", cc)
		}
	}
}

func BenchmarkEvaluate(b *testing.B) {
	e := engine(b, func(c *risk.Config) {
		c.IP.Deny = []string{"203.0.113.0/24", "2001:db8::/32"}
		c.Countries.Deny = []string{"KP", "RU", "IR"}
	})
	b.Run("refresh-unchanged", func(b *testing.B) {
		s := risk.Signals{Kind: risk.KindRefresh, At: t0, IP: "198.51.100.7", Country: "KR", Lat: seoul[0], Lon: seoul[1]}
		b.ReportAllocs()
		for b.Loop() {
			if d := e.Evaluate(s); d.Action != risk.Allow || d.Reasons != nil {
				b.Fatal("not a bare allow")
			}
		}
	})
	b.Run("refresh-allow", func(b *testing.B) {
		s := risk.Signals{Kind: risk.KindRefresh, At: t0, IP: "198.51.100.7", Country: "KR", Lat: seoul[0], Lon: seoul[1],
			PrevAt: t0.Add(-time.Hour), PrevLat: seoul[0], PrevLon: seoul[1], IPChanged: true}
		b.ReportAllocs()
		for b.Loop() {
			if e.Evaluate(s).Action != risk.Allow {
				b.Fatal("not allowed")
			}
		}
	})
	b.Run("signin-notify", func(b *testing.B) {
		s := risk.Signals{Kind: risk.KindSignIn, At: t0, IP: "198.51.100.7", Country: "KR", NewDevice: true}
		b.ReportAllocs()
		for b.Loop() {
			e.Evaluate(s)
		}
	})
	b.Run("deny", func(b *testing.B) {
		s := risk.Signals{Kind: risk.KindSignIn, At: t0, IP: "203.0.113.7"}
		b.ReportAllocs()
		for b.Loop() {
			e.Evaluate(s)
		}
	})
}
