package instance_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/config"
	"github.com/latchauth/latch/geoip/geoiptest"
	"github.com/latchauth/latch/instance"
	"github.com/latchauth/latch/protect"
	"github.com/latchauth/latch/risk"
)

// geoWorld places the test server's peer (127.0.0.1) in Seoul, a range in
// North Korea and one in Berlin.
var geoWorld = []geoiptest.Record{
	{Network: "127.0.0.0/8", Country: "KR", City: "Seoul", Lat: 37.5665, Lon: 126.978, AccuracyKm: 20, Located: true, ASN: 4766, ASOrg: "Korea Telecom"},
	{Network: "203.0.113.0/24", Country: "KP", City: "Pyongyang", Lat: 39.0392, Lon: 125.7625, AccuracyKm: 50, Located: true, ASN: 131279, ASOrg: "Star JV"},
	{Network: "198.51.100.0/24", Country: "DE", City: "Berlin", Lat: 52.52, Lon: 13.405, AccuracyKm: 50, Located: true, ASN: 3320, ASOrg: "Deutsche Telekom AG"},
}

// startGeo starts an instance with geo-IP databases built for the test.
func startGeo(t testing.TB, mutate func(*config.Config)) *harness {
	t.Helper()
	city, asn := geoiptest.Write(t, t.TempDir(), geoWorld)
	return start(t, "", func(c *config.Config) {
		c.GeoIP.CityDB, c.GeoIP.ASNDB = city, asn
		if mutate != nil {
			mutate(c)
		}
	})
}

const deniedBody = `{"error":"access_denied","error_description":"sign-in from this location is not allowed"}`

func expectDenied(t *testing.T, what string, r response) {
	t.Helper()
	if r.code != http.StatusForbidden || strings.TrimSpace(string(r.raw)) != deniedBody {
		t.Fatalf("%s: %d %s, want 403 %s", what, r.code, r.raw, deniedBody)
	}
}

// riskEvents returns the user's events of the risk types, newest first.
func (h *harness) riskEvents(userID string) []latch.Event {
	h.t.Helper()
	list, err := h.in.Store.EventsByUser(context.Background(), userID, 100)
	if err != nil {
		h.t.Fatal(err)
	}
	var out []latch.Event
	for _, e := range list {
		if strings.HasPrefix(e.Type, "risk_") {
			out = append(out, e)
		}
	}
	return out
}

func xff(ip string) []string { return []string{"X-Forwarded-For", ip} }

// TestRefreshCountryDenied: with risk.countries.deny, a refresh from that
// country is refused 403 access_denied and recorded, at /v1/auth/refresh
// and at /oauth2/token; a spoofed X-Forwarded-For from a peer that is not
// a trusted proxy changes nothing, while the same header from a trusted
// proxy is believed.
func TestRefreshCountryDenied(t *testing.T) {
	for _, trusted := range []bool{false, true} {
		h := startGeo(t, func(c *config.Config) {
			c.Risk.Countries.Deny = []string{"KP"}
			if trusted {
				c.TrustedProxies = []string{"127.0.0.0/8"}
			}
		})
		h.addClients()
		id := h.addUser(adaEmail, adaPass)
		tok := h.login(adaEmail, adaPass).str("refresh_token")
		r := h.do("POST", "/v1/auth/refresh", jsonBody(map[string]string{"refresh_token": tok}), xff("203.0.113.5")...)
		if !trusted {
			// The peer is 127.0.0.1 (Seoul): the header is not believed.
			expect(t, "spoofed X-Forwarded-For from an untrusted peer", r, 200, "")
			if ev := h.riskEvents(id); len(ev) != 0 {
				t.Fatalf("events %+v", ev)
			}
			continue
		}
		expectDenied(t, "refresh from KP through a trusted proxy", r)
		ev := h.riskEvents(id)
		if len(ev) != 1 || ev[0].Type != latch.EventRiskDenied || ev[0].IP != "203.0.113.5" {
			t.Fatalf("events %+v", ev)
		}
		s, d, err := risk.ParseEventDetail(ev[0].Detail)
		if err != nil || s.Country != "KP" || d.Action != risk.Deny || d.Reasons[0].Code != risk.ReasonCountryDenied {
			t.Fatalf("detail %+v: %v", ev[0].Detail, err)
		}
		// Denied, not revoked: from home the token still works.
		expect(t, "refresh from Seoul", h.refresh(tok), 200, "")

		// The OAuth token endpoint answers the same.
		login := h.do("POST", "/v1/auth/login", jsonBody(map[string]string{"email": adaEmail, "password": adaPass, "client_id": "app"}))
		expect(t, "login for app", login, 200, "")
		grant := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {login.str("refresh_token")}, "client_id": {"app"}}
		expectDenied(t, "/oauth2/token refresh from KP", h.form("/oauth2/token", grant, xff("203.0.113.5")...))
		expect(t, "/oauth2/token refresh from Seoul", h.form("/oauth2/token", grant), 200, "")
	}
}

// TestRefreshIPRules: risk.ip.deny refuses the listed addresses;
// risk.ip.allow refuses every other one.
func TestRefreshIPRules(t *testing.T) {
	h := startGeo(t, func(c *config.Config) {
		c.TrustedProxies = []string{"127.0.0.0/8"}
		c.Risk.IP.Deny = []string{"192.0.2.0/24"}
	})
	h.addUser(adaEmail, adaPass)
	tok := h.login(adaEmail, adaPass).str("refresh_token")
	expectDenied(t, "refresh from risk.ip.deny", h.do("POST", "/v1/auth/refresh", jsonBody(map[string]string{"refresh_token": tok}), xff("192.0.2.9")...))
	expect(t, "refresh from elsewhere", h.do("POST", "/v1/auth/refresh", jsonBody(map[string]string{"refresh_token": tok}), xff("127.0.0.2")...), 200, "")

	// No geo-IP database needed for IP rules.
	h = start(t, "", func(c *config.Config) {
		c.TrustedProxies = []string{"127.0.0.0/8"}
		c.Risk.IP.Allow = []string{"127.0.0.0/8"}
	})
	h.addUser(adaEmail, adaPass)
	tok = h.login(adaEmail, adaPass).str("refresh_token")
	expectDenied(t, "refresh from outside risk.ip.allow", h.do("POST", "/v1/auth/refresh", jsonBody(map[string]string{"refresh_token": tok}), xff("198.51.100.1")...))
	expect(t, "refresh from inside risk.ip.allow", h.refresh(tok), 200, "")
}

// TestRefreshImpossibleTravelRevokes: a refresh from Berlin moments after
// a sign-in in Seoul revokes the session: refused, and the token is dead
// from Seoul too.
func TestRefreshImpossibleTravelRevokes(t *testing.T) {
	h := startGeo(t, func(c *config.Config) { c.TrustedProxies = []string{"127.0.0.0/8"} })
	id := h.addUser(adaEmail, adaPass)
	login := h.login(adaEmail, adaPass)
	tok := login.str("refresh_token")
	expectDenied(t, "refresh from Berlin", h.do("POST", "/v1/auth/refresh", jsonBody(map[string]string{"refresh_token": tok}), xff("198.51.100.1")...))
	expect(t, "refresh from Seoul after the revocation", h.refresh(tok), 401, "invalid_grant")
	sess, err := h.in.Store.Session(context.Background(), segment(t, login.str("access_token"), 1)["sid"].(string))
	if err != nil {
		t.Fatal(err)
	}
	if !sess.Revoked() || sess.RevokeReason != protect.RevokeReason {
		t.Fatalf("session %+v", sess)
	}
	ev := h.riskEvents(id)
	if len(ev) != 1 || ev[0].Type != latch.EventRiskRevoked || !strings.Contains(ev[0].Detail[risk.DetailReasons], risk.ReasonImpossibleTravel) {
		t.Fatalf("events %+v", ev)
	}
}

// TestGeoIPAbsentSaysSo: without geoip.city_db the start log names the
// setting and what is off; with a broken one the instance does not start.
func TestGeoIPAbsentSaysSo(t *testing.T) {
	h := start(t, "", nil)
	if out := h.logs.String(); !strings.Contains(out, "no geoip.city_db; country rules") {
		t.Fatalf("start log lacks the geoip.city_db notice:\n%s", out)
	}
	h = startGeo(t, nil)
	if out := h.logs.String(); strings.Contains(out, "no geoip.city_db") {
		t.Fatalf("start log with a database:\n%s", out)
	}
	cfg := testConfig(t, filepath.Join(t.TempDir(), "d"), func(c *config.Config) { c.GeoIP.CityDB = filepath.Join(t.TempDir(), "missing.mmdb") })
	in, err := instance.Open(t.Context(), cfg, instance.Options{Log: slog.New(slog.DiscardHandler)})
	if err == nil {
		in.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "geoip.city_db") {
		t.Fatalf("missing database: %v", err)
	}
}

// BenchmarkRefreshGuard: a refresh over HTTP without any rule or geo-IP
// database (no guard installed) and with both (the guard looks up the
// address, applies a country and an IP rule and scores), in one run.
func BenchmarkRefreshGuard(b *testing.B) {
	for _, tc := range []struct {
		name   string
		mutate func(*config.Config)
		geo    bool
	}{
		{"off", nil, false},
		{"on", func(c *config.Config) {
			c.Risk.Countries.Deny = []string{"KP"}
			c.Risk.IP.Deny = []string{"192.0.2.0/24"}
		}, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var h *harness
			if tc.geo {
				h = startGeo(b, tc.mutate)
			} else {
				h = start(b, "", tc.mutate)
			}
			h.addUser(adaEmail, adaPass)
			tok := h.login(adaEmail, adaPass).str("refresh_token")
			b.ReportAllocs()
			for b.Loop() {
				r := h.refresh(tok)
				if r.code != http.StatusOK {
					b.Fatalf("refresh: %d %s", r.code, r.raw)
				}
				tok = r.str("refresh_token")
			}
		})
	}
}

// TestSignInLocationDenied: the sign-in side of the rules, through HTTP.
// With risk.countries.deny a sign-in from that country, and with
// risk.ip.deny one from a listed address, gets 403 access_denied (after
// the right password: no session, a risk_denied event with its reasons);
// a spoofed X-Forwarded-For from an untrusted peer is not believed.
func TestSignInLocationDenied(t *testing.T) {
	login := func(h *harness, ip string) response {
		return h.do("POST", "/v1/auth/login", jsonBody(map[string]string{"email": adaEmail, "password": adaPass}), xff(ip)...)
	}
	untrusted := startGeo(t, func(c *config.Config) { c.Risk.Countries.Deny = []string{"KP"} })
	untrusted.addUser(adaEmail, adaPass)
	expect(t, "spoofed X-Forwarded-For from an untrusted peer", login(untrusted, "203.0.113.5"), 200, "")

	h := startGeo(t, func(c *config.Config) {
		c.TrustedProxies = []string{"127.0.0.0/8"}
		c.Risk.Countries.Deny = []string{"KP"}
		c.Risk.IP.Deny = []string{"192.0.2.0/24"}
	})
	id := h.addUser(adaEmail, adaPass)
	for _, c := range []struct{ ip, reason string }{{"203.0.113.5", risk.ReasonCountryDenied}, {"192.0.2.9", risk.ReasonIPDenied}} {
		expectDenied(t, "sign-in from "+c.ip, login(h, c.ip))
		ev := h.riskEvents(id)
		if len(ev) == 0 || ev[0].Type != latch.EventRiskDenied || ev[0].IP != c.ip {
			t.Fatalf("events after the sign-in from %s: %+v", c.ip, ev)
		}
		if _, d, err := risk.ParseEventDetail(ev[0].Detail); err != nil || d.Action != risk.Deny || len(d.Reasons) == 0 || d.Reasons[0].Code != c.reason {
			t.Fatalf("decision for %s: %+v %v", c.ip, d, err)
		}
	}
	if ss, err := h.in.Store.SessionsByUser(context.Background(), id, h.clock.Now()); err != nil || len(ss) != 0 {
		t.Fatalf("a denied sign-in left sessions: %d %v", len(ss), err)
	}
	expect(t, "sign-in from Seoul", login(h, "127.0.0.2"), 200, "")
}
