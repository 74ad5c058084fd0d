// Package config reads the configuration of a Latch server from defaults,
// a YAML file, LATCH_* environment variables and command-line flags.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/latchauth/latch/keys"
	"github.com/latchauth/latch/mail"
	"github.com/latchauth/latch/risk"
	"github.com/latchauth/latch/secret"
)

// Config is the whole configuration of `latch serve`. Every key can be set
// in the YAML file, or by the environment variable LATCH_ followed by its
// path in upper case with underscores (tokens.access_ttl is
// LATCH_TOKENS_ACCESS_TTL). Precedence: flag > environment > file > default.
type Config struct {
	Addr string `yaml:"addr" doc:"address to listen on"`
	// Store selects the durable store: empty for SQLite in DataDir, or a
	// postgres:// URL. LATCH_DATABASE_URL sets it too.
	Store string `yaml:"store" env:"LATCH_DATABASE_URL" doc:"durable store: empty for SQLite in data_dir, or a postgres:// URL (also LATCH_DATABASE_URL)"`
	// Redis is a redis:// URL for revocation fan-out between instances;
	// empty for none. LATCH_REDIS_URL sets it too.
	Redis    string `yaml:"redis" env:"LATCH_REDIS_URL" doc:"redis:// URL for fan-out between instances; empty for none (also LATCH_REDIS_URL)"`
	DataDir  string `yaml:"data_dir" doc:"directory of the SQLite database and the KEK file"`
	Issuer   string `yaml:"issuer" doc:"iss of every token; default http://ADDR"`
	Audience string `yaml:"audience" doc:"aud of access tokens; default the issuer"`
	ClientID string `yaml:"client_id" doc:"client_id of first-party sessions"`
	// KEK is the key-encryption key itself (base64, 32 bytes); meant for
	// LATCH_KEK. Without it the key is read from KEKFile.
	KEK            string   `yaml:"kek" doc:"key-encryption key, base64 of 32 bytes (use LATCH_KEK)" secret:"true"`
	KEKFile        string   `yaml:"kek_file" doc:"file holding the key-encryption key; default DATA_DIR/kek"`
	Registration   bool     `yaml:"registration" doc:"allow POST /v1/auth/register"`
	TrustedProxies []string `yaml:"trusted_proxies" doc:"CIDRs whose X-Forwarded-For is believed"`
	Tokens         struct {
		Algorithm          string   `yaml:"algorithm" doc:"signing algorithm: EdDSA, ES256 or RS256"`
		AccessTTL          Duration `yaml:"access_ttl" doc:"access-token lifetime"`
		AccessJitter       Duration `yaml:"access_jitter" doc:"shorten each access token by up to this much, at random"`
		RefreshIdleTimeout Duration `yaml:"refresh_idle_timeout" doc:"end a session unused this long"`
		RefreshAbsoluteTTL Duration `yaml:"refresh_absolute_ttl" doc:"end every session this long after sign-in"`
		RefreshGrace       Duration `yaml:"refresh_grace" doc:"previous refresh token returns the same successor this long; 0 disables"`
		GraceReplays       int      `yaml:"refresh_grace_replays" doc:"times per rotation the previous refresh token may be replayed after the first 2s (same device only); 0 to 10"`
		Leeway             Duration `yaml:"leeway" doc:"clock skew tolerated when verifying (at most 30s)"`
		IDTokenTTL         Duration `yaml:"id_token_ttl" doc:"OpenID Connect id_token lifetime (1m to 1h)"`
	} `yaml:"tokens"`
	Codes struct {
		TTL Duration `yaml:"ttl" doc:"authorization code lifetime: the cross-domain hand-off's window (10s to 10m)"`
	} `yaml:"codes"`
	Admin struct {
		SessionTTL Duration `yaml:"session_ttl" doc:"the admin console accepts a sign-in this long, then asks for the password again (5m to 12h)"`
	} `yaml:"admin"`
	Keys struct {
		RotationPeriod Duration `yaml:"rotation_period" doc:"how long a signing key signs before the next one takes over"`
		JWKSMaxAge     Duration `yaml:"jwks_max_age" doc:"Cache-Control max-age of the JWKS"`
	} `yaml:"keys"`
	Login struct {
		RatePerIP   int      `yaml:"rate_per_ip" doc:"sign-in attempts per minute from one IP address (an IPv6 address counts as its /64); 0 disables"`
		MaxFailures int      `yaml:"max_failures" doc:"failed sign-ins for one email from one address (IPv4 address, IPv6 /64) or known device, within login.lockout, that lock that address (not the account) out of that email; 0 disables"`
		Lockout     Duration `yaml:"lockout" doc:"how long a lock (of one address, or of the whole account) lasts"`
		// AccountMaxFailures bounds an attacker with many addresses: the
		// whole account locks, except for its owner's known devices.
		AccountMaxFailures int      `yaml:"account_max_failures" doc:"failed sign-ins for one email from all addresses within login.account_window that lock the account for everyone but its owner's known devices, and email the owner an unlock link; 0 disables"`
		AccountWindow      Duration `yaml:"account_window" doc:"the window login.account_max_failures is counted in (at most one unlock email per window)"`
	} `yaml:"login"`
	Cookies struct {
		Domain string `yaml:"domain" doc:"share the browser cookies with subdomains of this domain; empty: host-only __Host- cookies"`
	} `yaml:"cookies"`
	CORS struct {
		AllowedOrigins []string `yaml:"allowed_origins" doc:"origins (scheme://host[:port]) whose pages may call the API with credentials"`
	} `yaml:"cors"`
	Revocation struct {
		MaxStale Duration `yaml:"max_stale" doc:"revocation data older than this (store unreachable) triggers the fail-safe policy; 0 turns the policy off"`
		FailOpen bool     `yaml:"fail_open" doc:"past max_stale, accept tokens (counted in latch_stale_accepted_total) instead of rejecting them"`
		// MaxStreamsPerClient bounds the revocation streams one client
		// holds open at once.
		MaxStreamsPerClient int `yaml:"max_streams_per_client" doc:"revocation feed streams one client may hold open at once; more get 429"`
	} `yaml:"revocation"`
	Password struct {
		MaxConcurrent int      `yaml:"max_concurrent" doc:"password hashes computed at once; 0 means one per CPU"`
		MaxWait       Duration `yaml:"max_wait" doc:"how long a sign-in waits for a hashing slot before 503"`
	} `yaml:"password"`
	Mail struct {
		// SMTPURL is the SMTP server; it may hold a password, so it is
		// never logged or echoed (errors show it redacted).
		SMTPURL string `yaml:"smtp_url" doc:"SMTP server: smtp://user:pass@host:587 (STARTTLS required; ?starttls=off only for a local sink) or smtps://user:pass@host:465; empty: write each email as an .eml file into DATA_DIR/outbox (development)" secret:"true"`
		From    string `yaml:"from" doc:"sender of the emails; default Latch <no-reply@ISSUER_HOST>"`
	} `yaml:"mail"`
	Metrics struct {
		Addr  string `yaml:"addr" doc:"serve /metrics on this HOST:PORT instead of the main listener; empty: on the main listener"`
		Token string `yaml:"token" doc:"require Authorization: Bearer TOKEN to read /metrics (at least 32 characters); empty: none" secret:"true"`
	} `yaml:"metrics"`

	// Webhooks receive every security event, signed (package webhook).
	Webhooks []Webhook `yaml:"webhooks" doc:"receivers of the security events: a list of {id, url, secret or secret_file, events}; see docs/account-protection.md"`

	Accounts struct {
		RequireVerifiedEmail bool `yaml:"require_verified_email" doc:"refuse sign-in (answered as a wrong password, 401 invalid_credentials, so that registration reveals no account) until the user followed the link of the verification email sent at registration"`
	} `yaml:"accounts"`

	// Risk holds the IP and country rules and the weights and levels of
	// risk scoring (package risk).
	Risk risk.Config `yaml:"risk"`

	GeoIP struct {
		CityDB string `yaml:"city_db" doc:"MaxMind GeoLite2/GeoIP2 City database (.mmdb); empty: no country, city or location, so country rules, new-country, impossible-travel and country-change signals are off"`
		ASNDB  string `yaml:"asn_db" doc:"MaxMind GeoLite2/GeoIP2 ASN database (.mmdb); empty: no network, so new-ASN and ASN-change signals are off"`
	} `yaml:"geoip"`

	// RedisPrefix starts every Redis key and channel name, so that
	// deployments sharing one Redis stay apart.
	RedisPrefix string `yaml:"redis_prefix" doc:"prefix of every Redis key and pub/sub channel; give each deployment sharing a Redis its own"`

	Log struct {
		Level  string `yaml:"level" doc:"debug, info, warn or error"`
		Format string `yaml:"format" doc:"text or json"`
	} `yaml:"log"`
}

// Duration is a time.Duration written as "90s", "5m", "12h" or "30d".
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String writes the duration the way a user would: whole days as "7d",
// anything else in Go's notation without zero units ("5m", "30s",
// "1h30m", "1.5s"). ParseDuration reads every result back.
func (d Duration) String() string {
	t := time.Duration(d)
	if t != 0 && t%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", t/(24*time.Hour))
	}
	s := t.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// ParseDuration accepts Go durations plus a whole number of days ("30d").
func ParseDuration(s string) (Duration, error) {
	s = strings.TrimSpace(s)
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.ParseUint(n, 10, 16)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		return Duration(time.Duration(days) * 24 * time.Hour), nil
	}
	t, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q (use e.g. 30s, 5m, 12h, 30d)", s)
	}
	return Duration(t), nil
}

// UnmarshalYAML reads a duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseDuration(n.Value)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MarshalYAML writes the duration string.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// Defaults returns the configuration with nothing set.
func Defaults() Config {
	var c Config
	c.Addr = "127.0.0.1:8080"
	c.DataDir = "./latch-data"
	c.ClientID = "latch"
	c.Tokens.Algorithm = "EdDSA"
	c.Tokens.AccessTTL = Duration(5 * time.Minute)
	c.Tokens.RefreshIdleTimeout = Duration(7 * 24 * time.Hour)
	c.Tokens.RefreshAbsoluteTTL = Duration(30 * 24 * time.Hour)
	c.Tokens.RefreshGrace = Duration(30 * time.Second)
	c.Tokens.GraceReplays = 3
	c.Tokens.Leeway = Duration(5 * time.Second)
	c.Tokens.IDTokenTTL = Duration(time.Hour)
	c.Codes.TTL = Duration(time.Minute)
	c.Admin.SessionTTL = Duration(time.Hour)
	c.Keys.RotationPeriod = Duration(30 * 24 * time.Hour)
	c.Keys.JWKSMaxAge = Duration(15 * time.Minute)
	c.Password.MaxWait = Duration(2 * time.Second)
	c.Revocation.MaxStale = Duration(time.Minute)
	c.Revocation.MaxStreamsPerClient = 4
	c.Login.RatePerIP = 30
	c.Login.MaxFailures = 10
	c.Login.Lockout = Duration(15 * time.Minute)
	c.Login.AccountMaxFailures = 50
	c.Login.AccountWindow = Duration(time.Hour)
	c.Log.Level = "info"
	c.Log.Format = "text"
	c.RedisPrefix = "latch"
	c.Risk = risk.Defaults()
	return c
}

// Flag is a setting given on the command line.
type Flag struct {
	// Name is the flag as the user typed it, such as "--issuer"; errors
	// about the setting name it.
	Name  string
	Value string
}

// origin is where a setting's value came from: how errors name the source
// ("the flag --issuer", "LATCH_ISSUER", "latch.yaml line 3") and the value
// as the user wrote it, so that errors echo "48h", not "2d".
type origin struct {
	from, raw string
}

// Load builds the configuration from the defaults, the YAML file at path
// (if not empty), the LATCH_* variables of environ (as os.Environ gives
// them), and finally flags (dotted key → flag). It fills derived defaults
// and validates the result. Every error names the setting, where its value
// came from (the flag, the variable, or the file and line) and the values
// it accepts; unknown keys come with the closest known one.
func Load(path string, environ []string, flags map[string]Flag) (Config, error) {
	c := Defaults()
	leaves := map[string]reflect.Value{}
	var order []string
	Walk(&c, func(key string, v reflect.Value, _ reflect.StructField) {
		leaves[key] = v
		order = append(order, key)
	})
	origins := map[string]origin{}
	var errs []error
	set := func(key, raw, from string) {
		if err := setValue(leaves[key], raw); err != nil {
			errs = append(errs, fmt.Errorf("invalid setting %s (from %s): %w", key, from, err))
			return
		}
		origins[key] = origin{from: from, raw: raw}
	}
	if path != "" {
		if err := readFile(path, leaves, set, func(key string, n *yaml.Node, from func(*yaml.Node) string) []error {
			return decodeRecords(key, n, leaves[key], from, origins)
		}); err != nil {
			return c, err
		}
	}
	env := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "LATCH_") && !strings.HasPrefix(k, "LATCH_TEST_") {
			env[k] = v
		}
	}
	known, recErrs := applyRecordEnv(leaves, env, origins)
	errs = append(errs, recErrs...)
	Walk(&c, func(key string, f reflect.Value, sf reflect.StructField) {
		name := EnvName(key)
		known[name] = true
		if records(f) {
			return // applyRecordEnv
		}
		// An alias (LATCH_DATABASE_URL for store) yields to the key's own
		// variable.
		if alias := sf.Tag.Get("env"); alias != "" {
			known[alias] = true
			if v, ok := env[alias]; ok {
				if _, own := env[name]; !own {
					set(key, v, alias)
				}
			}
		}
		if v, ok := env[name]; ok {
			set(key, v, name)
		}
		if fl, ok := flags[key]; ok {
			set(key, fl.Value, "the flag "+fl.Name)
		}
	})
	var unknown []string
	for name := range env {
		if !known[name] && !ignoredEnv[name] {
			unknown = append(unknown, name)
		}
	}
	slices.Sort(unknown)
	var names []string
	for _, key := range order {
		names = append(names, EnvName(key))
	}
	for _, name := range unknown {
		errs = append(errs, fmt.Errorf("unknown setting %s in the environment%s (see `latch config` for the accepted keys)", name, Suggest(name, names)))
	}
	if err := errors.Join(errs...); err != nil {
		return c, err
	}
	return c, c.validate(origins)
}

// readFile applies the YAML file at path through set, naming each value's
// line. Unknown keys, sections given a value and settings given a section
// are errors.
func readFile(path string, leaves map[string]reflect.Value, set func(key, raw, from string),
	setRecords func(key string, n *yaml.Node, from func(*yaml.Node) string) []error) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	if len(doc.Content) == 0 {
		return nil // empty file
	}
	sections := map[string]bool{}
	var keys []string
	for key := range leaves {
		keys = append(keys, key)
		for i, r := range key {
			if r == '.' {
				sections[key[:i]] = true
			}
		}
	}
	slices.Sort(keys)
	at := func(n *yaml.Node) string { return fmt.Sprintf("%s line %d", path, n.Line) }
	var errs []error
	var walk func(prefix string, m *yaml.Node)
	walk = func(prefix string, m *yaml.Node) {
		if m.Kind != yaml.MappingNode {
			what := "the file"
			if prefix != "" {
				what = strings.TrimSuffix(prefix, ".")
			}
			errs = append(errs, fmt.Errorf("config file %s: %s must be a mapping of settings (key: value)", at(m), what))
			return
		}
		seen := map[string]int{}
		for i := 0; i+1 < len(m.Content); i += 2 {
			k, v := m.Content[i], m.Content[i+1]
			key := prefix + k.Value
			if line, dup := seen[key]; dup {
				errs = append(errs, fmt.Errorf("setting %s appears twice in %s, lines %d and %d", key, path, line, k.Line))
				continue
			}
			seen[key] = k.Line
			switch _, leaf := leaves[key]; {
			case sections[key], !leaf && v.Kind == yaml.MappingNode:
				// An unknown section's keys are reported one by one, each
				// with its closest known key.
				walk(key+".", v)
			case !leaf:
				errs = append(errs, fmt.Errorf("unknown setting %s in %s%s", key, at(k), Suggest(key, keys)))
			case v.Kind == yaml.ScalarNode && v.Tag == "!!null":
				// "key:" with no value keeps the default.
			case records(leaves[key]):
				errs = append(errs, setRecords(key, v, at)...)
			case v.Kind == yaml.ScalarNode:
				set(key, v.Value, at(k))
			case v.Kind == yaml.SequenceNode && leaves[key].Kind() == reflect.Slice:
				var items []string
				for _, it := range v.Content {
					if it.Kind != yaml.ScalarNode {
						errs = append(errs, fmt.Errorf("invalid setting %s (from %s): list items must be plain values", key, at(it)))
						return
					}
					items = append(items, it.Value)
				}
				set(key, strings.Join(items, ","), at(k))
			default:
				errs = append(errs, fmt.Errorf("invalid setting %s (from %s): must be a single value, not a list or a mapping", key, at(k)))
			}
		}
	}
	walk("", doc.Content[0])
	return errors.Join(errs...)
}

// Suggest returns "; did you mean X?" for the candidate closest to name
// (ignoring case), or "" when none is close enough to be a likely typo:
// the hint every Latch configuration error about an unknown key carries.
func Suggest(name string, candidates []string) string {
	best, bestDist := "", 0
	for _, c := range candidates {
		if d := distance(strings.ToLower(name), strings.ToLower(c)); best == "" || d < bestDist {
			best, bestDist = c, d
		}
	}
	if best == "" || bestDist > max(2, len(name)/4) {
		return ""
	}
	return "; did you mean " + best + "?"
}

// distance is the Levenshtein edit distance between a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// ignoredEnv are LATCH_ variables that are not configuration keys (the
// test harness's LATCH_TEST_* are skipped as a family).
var ignoredEnv = map[string]bool{"LATCH_TEST_REQUIRE": true, "LATCH_CONFIG": true}

// EnvName is the environment variable of a dotted key.
func EnvName(key string) string {
	key = strings.NewReplacer(".", "_", "[", "_", "]", "").Replace(key)
	return "LATCH_" + strings.ToUpper(key)
}

// Walk calls fn for every leaf setting of c with its dotted key, its value
// and its struct field (whose doc tag describes it).
func Walk(c *Config, fn func(key string, v reflect.Value, f reflect.StructField)) {
	var walk func(prefix string, v reflect.Value)
	walk = func(prefix string, v reflect.Value) {
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			key := prefix + tag
			if f.Type.Kind() == reflect.Struct {
				walk(key+".", v.Field(i))
				continue
			}
			fn(key, v.Field(i), f)
		}
	}
	walk("", reflect.ValueOf(c).Elem())
}

// setValue sets the leaf f from the text s, the same way for the file, the
// environment and flags.
func setValue(f reflect.Value, s string) error {
	if _, ok := f.Interface().(Duration); ok {
		d, err := ParseDuration(s)
		if err != nil {
			return err
		}
		f.Set(reflect.ValueOf(d))
		return nil
	}
	switch f.Kind() {
	case reflect.String:
		f.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("%q is not a boolean (use true or false)", s)
		}
		f.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, f.Type().Bits())
		if err != nil {
			return fmt.Errorf("%q is not a whole number", s)
		}
		f.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(strings.TrimSpace(s), 10, f.Type().Bits())
		if err != nil {
			return fmt.Errorf("%q is not a whole number of at least 0", s)
		}
		f.SetUint(n)
	case reflect.Slice:
		if f.Type().Elem().Kind() != reflect.String {
			return fmt.Errorf("unsupported setting type %s", f.Type())
		}
		list := reflect.MakeSlice(f.Type(), 0, 0)
		for p := range strings.SplitSeq(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				list = reflect.Append(list, reflect.ValueOf(p).Convert(f.Type().Elem()))
			}
		}
		if list.Len() == 0 {
			list = reflect.Zero(f.Type())
		}
		f.Set(list)
	default:
		return fmt.Errorf("unsupported setting type %s", f.Type())
	}
	return nil
}

// MinMetricsToken is the shortest metrics.token accepted.
const MinMetricsToken = 32

// validateMetrics checks the metrics settings: a listener of its own that
// is HOST:PORT and not the main one, a token long enough to resist
// guessing.
func (c *Config) validateMetrics(bad func(key, format string, a ...any)) {
	if a := c.Metrics.Addr; a != "" {
		_, port, err := net.SplitHostPort(a)
		if p, perr := strconv.Atoi(port); err != nil || perr != nil || p < 0 || p > 65535 {
			bad("metrics.addr", "%q is not HOST:PORT (e.g. 127.0.0.1:9090), or empty to serve /metrics on addr", a)
		} else if a == c.Addr && p != 0 {
			bad("metrics.addr", "%q is addr itself; give the metrics another port, or leave it empty", a)
		}
	}
	if t := c.Metrics.Token; t != "" && (len(t) < MinMetricsToken || secret.Bits(t) < secret.MinBits) {
		bad("metrics.token", "must be at least %d characters and about %d bits of randomness (make one with: openssl rand -hex 32), or empty for none", MinMetricsToken, secret.MinBits)
	}
}

// validateMail checks the mail settings and fills the default sender
// from the issuer. No error echoes the SMTP password.
func (c *Config) validateMail(bad func(key, format string, a ...any)) {
	if c.Mail.SMTPURL != "" {
		if _, err := mail.ParseSMTPURL(c.Mail.SMTPURL); err != nil {
			bad("mail.smtp_url", "%s", err)
		}
	}
	if c.Mail.From == "" {
		c.Mail.From = mail.DefaultFrom(c.Issuer)
	}
	if _, err := mail.ParseAddress(c.Mail.From); err != nil {
		bad("mail.from", "%q is not an email address such as \"Latch <no-reply@example.com>\"", c.Mail.From)
	}
}

func validRedisPrefix(p string) bool {
	if p == "" || len(p) > 64 {
		return false
	}
	for _, r := range p {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || strings.ContainsRune("-_.:", r)) {
			return false
		}
	}
	return true
}

// Postgres reports whether the store is PostgreSQL.
func (c *Config) Postgres() bool {
	return strings.HasPrefix(c.Store, "postgres://") || strings.HasPrefix(c.Store, "postgresql://")
}

// Validate fills derived defaults (issuer, audience, KEK file) and checks
// every setting, naming the setting, its environment variable and the
// accepted values in each error.
func (c *Config) Validate() error { return c.validate(nil) }

// validate is Validate naming, for each setting in origins, where its value
// came from and echoing it as written there.
func (c *Config) validate(origins map[string]origin) error {
	var errs []error
	bad := func(key, format string, a ...any) {
		from := EnvName(key)
		if o, ok := origins[key]; ok {
			from = "from " + o.from
		}
		errs = append(errs, fmt.Errorf("invalid setting %s (%s): %s", key, from, fmt.Sprintf(format, a...)))
	}
	// show is a value as the user wrote it, or as Latch writes it.
	show := func(key string, v any) string {
		if o, ok := origins[key]; ok {
			return strings.TrimSpace(o.raw)
		}
		return fmt.Sprint(v)
	}
	host, port, err := net.SplitHostPort(c.Addr)
	if err != nil {
		bad("addr", "%q is not HOST:PORT (e.g. 127.0.0.1:8080)", c.Addr)
	} else if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		bad("addr", "port %q must be a number from 0 to 65535", port)
	}
	if c.DataDir == "" {
		bad("data_dir", "must not be empty")
	}
	if c.Store != "" && !c.Postgres() {
		bad("store", "must be empty (SQLite in data_dir) or a postgres:// or postgresql:// URL")
	}
	if c.Redis != "" && !strings.HasPrefix(c.Redis, "redis://") && !strings.HasPrefix(c.Redis, "rediss://") {
		bad("redis", "must be empty or a redis:// or rediss:// URL")
	}
	if c.Issuer == "" && err == nil {
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "localhost"
		}
		c.Issuer = "http://" + net.JoinHostPort(host, port)
	}
	if u, err := url.Parse(c.Issuer); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		bad("issuer", "%q must be an http or https URL without query or fragment", c.Issuer)
	} else if strings.Trim(u.Path, "/") != "" {
		// Metadata and endpoints are served at the root; an issuer with a
		// path would advertise URLs (RFC 8414 §3.1) nobody answers.
		bad("issuer", "%q must have no path (serve Latch at the root of its host name)", c.Issuer)
	}
	if c.Audience == "" {
		c.Audience = c.Issuer
	}
	if c.ClientID == "" {
		bad("client_id", "must not be empty")
	}
	if c.KEK != "" {
		// Checked here rather than when the key is opened, so that the
		// error names where the setting came from. The text never
		// echoes the key.
		if _, err := keys.ParseKEK(c.KEK); err != nil {
			bad("kek", "%s", strings.TrimPrefix(err.Error(), "keys: "))
		}
	}
	if c.KEKFile == "" {
		c.KEKFile = c.DataDir + string(os.PathSeparator) + "kek"
	}
	for _, o := range c.CORS.AllowedOrigins {
		if u, err := url.Parse(o); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || strings.Contains(o, "*") {
			bad("cors.allowed_origins", "%q is not an origin such as https://app.example.com (no wildcards, no paths)", o)
		}
	}
	if d := c.Cookies.Domain; d != "" && (strings.ContainsAny(d, "/: ") || !strings.Contains(strings.Trim(d, "."), ".")) {
		bad("cookies.domain", "%q is not a domain such as example.com", d)
	}
	for _, p := range c.TrustedProxies {
		if _, err := netip.ParsePrefix(p); err != nil {
			bad("trusted_proxies", "%q is not a CIDR such as 10.0.0.0/8", p)
		}
	}
	switch c.Tokens.Algorithm {
	case "EdDSA", "ES256", "RS256":
	default:
		bad("tokens.algorithm", "%q is not supported; accepted values: EdDSA, ES256, RS256", c.Tokens.Algorithm)
	}
	t := c.Tokens
	if t.AccessTTL.D() < 10*time.Second || t.AccessTTL.D() > 24*time.Hour {
		bad("tokens.access_ttl", "%s must be between 10s and 24h", show("tokens.access_ttl", t.AccessTTL))
	}
	if t.AccessJitter < 0 || t.AccessJitter.D() >= t.AccessTTL.D()/2 {
		bad("tokens.access_jitter", "%s must be at least 0 and less than half of tokens.access_ttl", show("tokens.access_jitter", t.AccessJitter))
	}
	if t.RefreshIdleTimeout.D() < time.Minute {
		bad("tokens.refresh_idle_timeout", "%s must be at least 1m", show("tokens.refresh_idle_timeout", t.RefreshIdleTimeout))
	}
	if t.RefreshAbsoluteTTL.D() < time.Minute {
		bad("tokens.refresh_absolute_ttl", "%s must be at least 1m", show("tokens.refresh_absolute_ttl", t.RefreshAbsoluteTTL))
	}
	if t.RefreshGrace < 0 || t.RefreshGrace.D() > 5*time.Minute {
		bad("tokens.refresh_grace", "%s must be between 0 (disabled) and 5m", show("tokens.refresh_grace", t.RefreshGrace))
	}
	if t.GraceReplays < 0 || t.GraceReplays > 10 {
		bad("tokens.refresh_grace_replays", "%d must be between 0 and 10", t.GraceReplays)
	}
	if t.Leeway < 0 || t.Leeway.D() > 30*time.Second {
		bad("tokens.leeway", "%s must be between 0 and 30s", show("tokens.leeway", t.Leeway))
	}
	if t.IDTokenTTL.D() < time.Minute || t.IDTokenTTL.D() > time.Hour {
		bad("tokens.id_token_ttl", "%s must be between 1m and 1h", show("tokens.id_token_ttl", t.IDTokenTTL))
	}
	if c.Codes.TTL.D() < 10*time.Second || c.Codes.TTL.D() > 10*time.Minute {
		bad("codes.ttl", "%s must be between 10s (the seeds' hand-off) and 10m (RFC 6749 §4.1.2)", show("codes.ttl", c.Codes.TTL))
	}
	if c.Admin.SessionTTL.D() < 5*time.Minute || c.Admin.SessionTTL.D() > 12*time.Hour {
		bad("admin.session_ttl", "%s must be between 5m and 12h", show("admin.session_ttl", c.Admin.SessionTTL))
	}
	if c.Keys.RotationPeriod.D() < time.Hour {
		bad("keys.rotation_period", "%s must be at least 1h", show("keys.rotation_period", c.Keys.RotationPeriod))
	}
	if c.Keys.JWKSMaxAge < 0 || c.Keys.JWKSMaxAge.D() > 24*time.Hour {
		bad("keys.jwks_max_age", "%s must be between 0 and 24h", show("keys.jwks_max_age", c.Keys.JWKSMaxAge))
	}
	if c.Keys.RotationPeriod.D() <= c.Keys.JWKSMaxAge.D()+10*time.Minute {
		bad("keys.rotation_period", "%s must be longer than keys.jwks_max_age + 10m, the time a new key is published before it signs", show("keys.rotation_period", c.Keys.RotationPeriod))
	}
	if c.Revocation.MaxStale != 0 && (c.Revocation.MaxStale.D() < 5*time.Second || c.Revocation.MaxStale.D() > time.Hour) {
		bad("revocation.max_stale", "%s must be 0 (policy off) or between 5s and 1h", show("revocation.max_stale", c.Revocation.MaxStale))
	}
	if c.Revocation.MaxStreamsPerClient < 1 || c.Revocation.MaxStreamsPerClient > 1000 {
		bad("revocation.max_streams_per_client", "%d must be between 1 and 1000", c.Revocation.MaxStreamsPerClient)
	}
	if c.Login.RatePerIP < 0 || c.Login.RatePerIP > 100000 {
		bad("login.rate_per_ip", "%s must be between 0 (off) and 100000", show("login.rate_per_ip", c.Login.RatePerIP))
	}
	if c.Login.MaxFailures < 0 || c.Login.MaxFailures > 1000 {
		bad("login.max_failures", "%s must be between 0 (off) and 1000", show("login.max_failures", c.Login.MaxFailures))
	}
	if (c.Login.MaxFailures > 0 || c.Login.AccountMaxFailures > 0) && (c.Login.Lockout.D() < time.Second || c.Login.Lockout.D() > 24*time.Hour) {
		bad("login.lockout", "%s must be between 1s and 24h", show("login.lockout", c.Login.Lockout))
	}
	if c.Login.AccountMaxFailures < 0 || c.Login.AccountMaxFailures > 100000 {
		bad("login.account_max_failures", "%s must be between 0 (off) and 100000", show("login.account_max_failures", c.Login.AccountMaxFailures))
	} else if c.Login.AccountMaxFailures > 0 && c.Login.MaxFailures > 0 && c.Login.AccountMaxFailures <= c.Login.MaxFailures {
		bad("login.account_max_failures", "%s must be more than login.max_failures (%d): the account-wide lock is for attackers with many addresses",
			show("login.account_max_failures", c.Login.AccountMaxFailures), c.Login.MaxFailures)
	}
	if c.Login.AccountMaxFailures > 0 && (c.Login.AccountWindow.D() < time.Minute || c.Login.AccountWindow.D() > 7*24*time.Hour) {
		bad("login.account_window", "%s must be between 1m and 168h", show("login.account_window", c.Login.AccountWindow))
	}
	if c.Password.MaxConcurrent < 0 || c.Password.MaxConcurrent > 1024 {
		bad("password.max_concurrent", "%s must be between 0 (one per CPU) and 1024", show("password.max_concurrent", c.Password.MaxConcurrent))
	}
	if c.Password.MaxWait < 0 || c.Password.MaxWait.D() > time.Minute {
		bad("password.max_wait", "%s must be between 0 and 1m", show("password.max_wait", c.Password.MaxWait))
	}
	c.validateMetrics(bad)
	c.validateMail(bad)
	c.validateRisk(origins, func(err error) { errs = append(errs, err) })
	c.validateWebhooks(bad)
	if !validRedisPrefix(c.RedisPrefix) {
		bad("redis_prefix", "%q must be 1 to 64 letters, digits, '-', '_', '.' or ':'", c.RedisPrefix)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "%q is not one of debug, info, warn, error", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		bad("log.format", "%q is not one of text, json", c.Log.Format)
	}
	return errors.Join(errs...)
}

// validateRisk checks the risk and geoip settings. A list item's error
// names its index (risk.countries.deny[2]) and where the list came from.
func (c *Config) validateRisk(origins map[string]origin, fail func(error)) {
	from := func(key string) string {
		if o, ok := origins[key]; ok {
			return "from " + o.from
		}
		return EnvName(key)
	}
	var problems interface{ Unwrap() []error }
	if err := c.Risk.Validate(); errors.As(err, &problems) {
		for _, e := range problems.Unwrap() {
			var se *risk.SettingError
			if errors.As(e, &se) {
				fail(fmt.Errorf("invalid setting %s (%s): %s", se.Key, from(se.Setting()), se.Problem))
			} else {
				fail(e)
			}
		}
	} else if err != nil {
		fail(err)
	}
	if c.GeoIP.CityDB == "" {
		// A country rule could never match: refuse it rather than let it
		// look like protection.
		for _, key := range []string{"risk.countries.allow", "risk.countries.deny"} {
			list := c.Risk.Countries.Allow
			if key == "risk.countries.deny" {
				list = c.Risk.Countries.Deny
			}
			if len(list) > 0 {
				fail(fmt.Errorf("invalid setting %s (%s): country rules need geoip.city_db (a MaxMind City database); without one no address has a country and the rule could never match", key, from(key)))
			}
		}
	}
}
