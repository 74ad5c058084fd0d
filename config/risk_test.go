package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latchauth/latch/risk"
)

// TestRiskSettings: the risk and geoip sections load from YAML and the
// environment, and every problem names the key as written, with the index
// of a bad list item and the line of its list.
func TestRiskSettings(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "latch.yaml")
	text := "geoip:\n  city_db: /srv/geo/city.mmdb\n  asn_db: /srv/geo/asn.mmdb\nrisk:\n  new_device: challenge\n" +
		"  countries:\n    deny: [KP, RU]\n  ip:\n    allow:\n      - 10.0.0.0/8\n      - 192.0.2.7\n" +
		"  travel:\n    max_speed_kmh: 900\n  weights:\n    user_agent_change: 0\n  refresh:\n    revoke: 120\n"
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path, []string{"LATCH_RISK_SIGN_IN_DENY=150"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := c.Risk
	if c.GeoIP.CityDB != "/srv/geo/city.mmdb" || c.GeoIP.ASNDB != "/srv/geo/asn.mmdb" || r.NewDevice != risk.Challenge ||
		strings.Join(r.Countries.Deny, " ") != "KP RU" || strings.Join(r.IP.Allow, " ") != "10.0.0.0/8 192.0.2.7" ||
		r.Travel.MaxSpeedKmh != 900 || r.Weights.UserAgentChange != 0 || r.Refresh.Revoke != 120 || r.SignIn.Deny != 150 ||
		r.Weights.NewDevice != risk.Defaults().Weights.NewDevice {
		t.Fatalf("loaded %+v %+v", c.GeoIP, r)
	}

	bad := filepath.Join(dir, "bad.yaml")
	text = "geoip:\n  city_db: /srv/geo/city.mmdb\nrisk:\n  countries:\n    deny: [KP, kr, XX]\n  new_device: block\n  ip:\n    deny: [example.com]\n"
	if err := os.WriteFile(bad, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(bad, nil, nil)
	for _, w := range []string{
		`invalid setting risk.countries.deny[1] (from ` + bad + ` line 5): "kr" is not an ISO 3166 country code`,
		`invalid setting risk.countries.deny[2] (from ` + bad + ` line 5): "XX" is not an ISO 3166 country code`,
		`invalid setting risk.new_device (from ` + bad + ` line 6): "block" is not one of notify, challenge, allow`,
		`invalid setting risk.ip.deny[0] (from ` + bad + ` line 8): "example.com" is not a CIDR`,
	} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v lacks %q", err, w)
		}
	}
	if err != nil && strings.Contains(err.Error(), `"KP"`) {
		t.Errorf("KP refused: %v", err)
	}
	_, err = Load("", []string{"LATCH_RISK_SIGN_IN_NOTIFY=90"}, nil)
	if err == nil || !strings.Contains(err.Error(), "invalid setting risk.sign_in.challenge (LATCH_RISK_SIGN_IN_CHALLENGE): 70 must be above risk.sign_in.notify (90)") {
		t.Errorf("levels out of order: %v", err)
	}
}

// TestCountryRulesNeedCityDB: a country rule without a City database
// could never match, so it is a configuration error naming both settings.
func TestCountryRulesNeedCityDB(t *testing.T) {
	for _, env := range [][]string{
		{"LATCH_RISK_COUNTRIES_DENY=KP"},
		{"LATCH_RISK_COUNTRIES_ALLOW=KR,JP", "LATCH_GEOIP_ASN_DB=/srv/asn.mmdb"},
	} {
		_, err := Load("", env, nil)
		name, _, _ := strings.Cut(env[0], "=")
		want := "invalid setting " + strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(name, "LATCH_"), "_", ".")) +
			" (from " + name + "): country rules need geoip.city_db"
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: %v", env, err)
		}
	}
	if _, err := Load("", []string{"LATCH_RISK_COUNTRIES_DENY=KP", "LATCH_GEOIP_CITY_DB=/srv/city.mmdb"}, nil); err != nil {
		t.Errorf("with a city database: %v", err)
	}
	if _, err := Load("", []string{"LATCH_RISK_IP_DENY=203.0.113.0/24"}, nil); err != nil {
		t.Errorf("IP rules need no database: %v", err)
	}
}
