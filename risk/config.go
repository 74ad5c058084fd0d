package risk

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// Config is the configuration of an Engine, read from the risk: section of
// the Latch configuration (keys risk.*). The zero value of a weight or a
// level turns it off; Defaults gives the shipped values.
type Config struct {
	// NewDevice is what a sign-in from a new device, or from a country
	// the account has not used, asks for at least.
	NewDevice Action `yaml:"new_device" doc:"what a sign-in from a new device or a new country asks for at least: notify (an alert email), challenge (a code by email before the session) or allow"`
	Countries struct {
		Allow []string `yaml:"allow" doc:"ISO 3166 country codes sign-ins and refreshes may come from (with a list, only those; needs geoip.city_db)"`
		Deny  []string `yaml:"deny" doc:"ISO 3166 country codes whose sign-ins and refreshes are refused (needs geoip.city_db)"`
	} `yaml:"countries"`
	IP struct {
		Allow []string `yaml:"allow" doc:"CIDRs sign-ins and refreshes may come from (with a list, only those)"`
		Deny  []string `yaml:"deny" doc:"CIDRs whose sign-ins and refreshes are refused"`
	} `yaml:"ip"`
	Travel struct {
		MaxSpeedKmh int `yaml:"max_speed_kmh" doc:"two uses of an account farther apart than this speed allows are impossible travel"`
		ToleranceKm int `yaml:"tolerance_km" doc:"distance forgiven beyond both geo-IP accuracy radii before travel counts"`
	} `yaml:"travel"`
	Weights Weights `yaml:"weights"`
	SignIn  struct {
		Notify    int `yaml:"notify" doc:"score from which a sign-in alerts the user; 0 never"`
		Challenge int `yaml:"challenge" doc:"score from which a sign-in asks for an emailed code; 0 never"`
		Deny      int `yaml:"deny" doc:"score from which a sign-in is refused; 0 never"`
	} `yaml:"sign_in"`
	Refresh struct {
		Notify int `yaml:"notify" doc:"score from which a refresh is recorded as a security event; 0 never"`
		Deny   int `yaml:"deny" doc:"score from which a refresh is refused; 0 never"`
		Revoke int `yaml:"revoke" doc:"score from which a refresh is refused and its session revoked; 0 never"`
	} `yaml:"refresh"`
}

// Weights are the points each signal adds to a score.
type Weights struct {
	NewDevice        int `yaml:"new_device" doc:"sign-in from a device the account has not used"`
	NewCountry       int `yaml:"new_country" doc:"sign-in from a country the account has not used (needs geoip.city_db)"`
	NewASN           int `yaml:"new_asn" doc:"sign-in from a network (ASN) the account has not used (needs geoip.asn_db)"`
	ImpossibleTravel int `yaml:"impossible_travel" doc:"sign-in or refresh too far from the previous use for the time between (needs geoip.city_db)"`
	Failure          int `yaml:"failure" doc:"per failed sign-in of the account in the last hour"`
	FailureCap       int `yaml:"failure_cap" doc:"most points failed sign-ins add together"`
	IPChange         int `yaml:"ip_change" doc:"refresh from an IP other than the session's sign-in"`
	ASNChange        int `yaml:"asn_change" doc:"refresh from a network (ASN) other than the session's sign-in (needs geoip.asn_db)"`
	CountryChange    int `yaml:"country_change" doc:"refresh from a country other than the session's sign-in (needs geoip.city_db)"`
	UserAgentChange  int `yaml:"user_agent_change" doc:"refresh from a browser other than the session's sign-in (version numbers ignored)"`
}

// Defaults returns the shipped configuration: no rules, an alert for a
// new device or country, a challenge for a sign-in that adds impossible
// travel to a new device, and a revoked session for a refresh from across
// the world minutes after its sign-in.
func Defaults() Config {
	var c Config
	c.NewDevice = Notify
	c.Travel.MaxSpeedKmh = 1000
	c.Travel.ToleranceKm = 100
	c.Weights = Weights{
		NewDevice: 20, NewCountry: 30, NewASN: 10, ImpossibleTravel: 60,
		Failure: 5, FailureCap: 25,
		IPChange: 5, ASNChange: 10, CountryChange: 30, UserAgentChange: 40,
	}
	c.SignIn.Notify, c.SignIn.Challenge, c.SignIn.Deny = 20, 70, 0
	c.Refresh.Notify, c.Refresh.Deny, c.Refresh.Revoke = 50, 0, 100
	return c
}

// SettingError is a problem with one setting, named by its key as written
// in the configuration ("risk.countries.deny[2]").
type SettingError struct {
	Key     string
	Problem string
}

func (e *SettingError) Error() string { return e.Key + ": " + e.Problem }

// Setting is the key of the setting itself, without a list index
// ("risk.countries.deny" for "risk.countries.deny[2]").
func (e *SettingError) Setting() string {
	k, _, _ := strings.Cut(e.Key, "[")
	return k
}

// Validate checks c; its error joins one *SettingError per problem.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, &SettingError{Key: key, Problem: fmt.Sprintf(format, a...)})
	}
	switch c.NewDevice {
	case Notify, Challenge, Allow:
	default:
		bad("risk.new_device", "%q is not one of notify, challenge, allow", c.NewDevice)
	}
	countries := func(key string, list []string) {
		for i, cc := range list {
			if !IsCountry(cc) {
				bad(fmt.Sprintf("%s[%d]", key, i), "%q is not an ISO 3166 country code (two capital letters, such as KR or DE)", cc)
			}
		}
	}
	countries("risk.countries.allow", c.Countries.Allow)
	countries("risk.countries.deny", c.Countries.Deny)
	cidrs := func(key string, list []string) {
		for i, p := range list {
			if _, err := parsePrefix(p); err != nil {
				bad(fmt.Sprintf("%s[%d]", key, i), "%q is not a CIDR such as 203.0.113.0/24 or an address", p)
			}
		}
	}
	cidrs("risk.ip.allow", c.IP.Allow)
	cidrs("risk.ip.deny", c.IP.Deny)
	if c.Travel.MaxSpeedKmh < 100 || c.Travel.MaxSpeedKmh > 100000 {
		bad("risk.travel.max_speed_kmh", "%d must be between 100 and 100000", c.Travel.MaxSpeedKmh)
	}
	if c.Travel.ToleranceKm < 0 || c.Travel.ToleranceKm > 20000 {
		bad("risk.travel.tolerance_km", "%d must be between 0 and 20000", c.Travel.ToleranceKm)
	}
	for _, w := range []struct {
		key string
		v   int
	}{
		{"new_device", c.Weights.NewDevice}, {"new_country", c.Weights.NewCountry}, {"new_asn", c.Weights.NewASN},
		{"impossible_travel", c.Weights.ImpossibleTravel}, {"failure", c.Weights.Failure}, {"failure_cap", c.Weights.FailureCap},
		{"ip_change", c.Weights.IPChange}, {"asn_change", c.Weights.ASNChange},
		{"country_change", c.Weights.CountryChange}, {"user_agent_change", c.Weights.UserAgentChange},
	} {
		if w.v < 0 || w.v > 1000 {
			bad("risk.weights."+w.key, "%d must be between 0 and 1000", w.v)
		}
	}
	levels := func(prefix string, names []string, values []int) {
		last, lastName := 0, ""
		for i, v := range values {
			key := prefix + names[i]
			switch {
			case v < 0 || v > 10000:
				bad(key, "%d must be between 0 (never) and 10000", v)
			case v > 0 && v <= last:
				bad(key, "%d must be above %s%s (%d): levels rise with the score", v, prefix, lastName, last)
			case v > 0:
				last, lastName = v, names[i]
			}
		}
	}
	levels("risk.sign_in.", []string{"notify", "challenge", "deny"}, []int{c.SignIn.Notify, c.SignIn.Challenge, c.SignIn.Deny})
	levels("risk.refresh.", []string{"notify", "deny", "revoke"}, []int{c.Refresh.Notify, c.Refresh.Deny, c.Refresh.Revoke})
	return errors.Join(errs...)
}

// HasRules tells whether any country or IP rule is configured.
func (c *Config) HasRules() bool {
	return c.HasCountryRules() || len(c.IP.Allow) > 0 || len(c.IP.Deny) > 0
}

// HasCountryRules tells whether a country rule is configured: it needs a
// geo-IP City database to ever match.
func (c *Config) HasCountryRules() bool {
	return len(c.Countries.Allow) > 0 || len(c.Countries.Deny) > 0
}

// parsePrefix reads a CIDR, or a single address as its own prefix.
func parsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return p, err
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap().WithZone("")
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// IsCountry tells whether cc is an ISO 3166-1 alpha-2 code in use (with
// XK, which geo-IP databases use for Kosovo).
func IsCountry(cc string) bool {
	if len(cc) != 2 || cc[0] < 'A' || cc[0] > 'Z' || cc[1] < 'A' || cc[1] > 'Z' {
		return false
	}
	for i := 0; i+1 < len(isoCountries); i += 3 {
		if isoCountries[i] == cc[0] && isoCountries[i+1] == cc[1] {
			return true
		}
	}
	return false
}

const isoCountries = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ " +
	"BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ " +
	"CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ " +
	"DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR " +
	"GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY " +
	"HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP " +
	"KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY " +
	"MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ " +
	"NA NC NE NF NG NI NL NO NP NR NU NZ OM " +
	"PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW " +
	"SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ " +
	"TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ " +
	"UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS XK YE YT ZA ZM ZW "
