// Package config reads the configuration of a Latch server from defaults,
// a YAML file, LATCH_* environment variables and command-line flags.
package config

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
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
		Leeway             Duration `yaml:"leeway" doc:"clock skew tolerated when verifying (at most 30s)"`
	} `yaml:"tokens"`
	Keys struct {
		RotationPeriod Duration `yaml:"rotation_period" doc:"how long a signing key signs before the next one takes over"`
		JWKSMaxAge     Duration `yaml:"jwks_max_age" doc:"Cache-Control max-age of the JWKS"`
	} `yaml:"keys"`
	Login struct {
		RatePerIP   int      `yaml:"rate_per_ip" doc:"sign-in attempts per minute from one IP address; 0 disables"`
		MaxFailures int      `yaml:"max_failures" doc:"consecutive failed sign-ins that lock an email; 0 disables"`
		Lockout     Duration `yaml:"lockout" doc:"how long a locked email stays locked"`
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
	Log struct {
		Level  string `yaml:"level" doc:"debug, info, warn or error"`
		Format string `yaml:"format" doc:"text or json"`
	} `yaml:"log"`
}

// Duration is a time.Duration written as "90s", "5m", "12h" or "30d".
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String writes whole days as "30d" and anything else as Go does.
func (d Duration) String() string {
	t := time.Duration(d)
	if t != 0 && t%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", t/(24*time.Hour))
	}
	return t.String()
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
	c.Tokens.Leeway = Duration(5 * time.Second)
	c.Keys.RotationPeriod = Duration(30 * 24 * time.Hour)
	c.Keys.JWKSMaxAge = Duration(15 * time.Minute)
	c.Password.MaxWait = Duration(2 * time.Second)
	c.Revocation.MaxStale = Duration(time.Minute)
	c.Revocation.MaxStreamsPerClient = 4
	c.Login.RatePerIP = 30
	c.Login.MaxFailures = 10
	c.Login.Lockout = Duration(15 * time.Minute)
	c.Log.Level = "info"
	c.Log.Format = "text"
	return c
}

// Load builds the configuration from the defaults, the YAML file at path
// (if not empty), the LATCH_* variables of environ (as os.Environ gives
// them), and finally overrides (dotted key → value, from flags). It fills
// derived defaults and validates the result; every error names the
// setting and the values it accepts.
func Load(path string, environ []string, overrides map[string]string) (Config, error) {
	c := Defaults()
	if path != "" {
		f, err := os.Open(path)
		if err != nil {
			return c, fmt.Errorf("config file: %w", err)
		}
		dec := yaml.NewDecoder(f)
		dec.KnownFields(true)
		err = dec.Decode(&c)
		f.Close()
		if err != nil && !errors.Is(err, io.EOF) {
			return c, fmt.Errorf("config file %s: %w", path, err)
		}
	}
	env := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "LATCH_") && !strings.HasPrefix(k, "LATCH_TEST_") {
			env[k] = v
		}
	}
	var errs []error
	known := map[string]bool{}
	Walk(&c, func(key string, f reflect.Value, sf reflect.StructField) {
		name := EnvName(key)
		known[name] = true
		// An alias (LATCH_DATABASE_URL for store) yields to the key's own
		// variable.
		if alias := sf.Tag.Get("env"); alias != "" {
			known[alias] = true
			if v, ok := env[alias]; ok {
				if _, own := env[name]; !own {
					if err := setValue(f, v); err != nil {
						errs = append(errs, fmt.Errorf("invalid setting %s (from %s): %w", key, alias, err))
					}
				}
			}
		}
		if v, ok := env[name]; ok {
			if err := setValue(f, v); err != nil {
				errs = append(errs, fmt.Errorf("invalid setting %s (from %s): %w", key, name, err))
			}
		}
		if v, ok := overrides[key]; ok {
			if err := setValue(f, v); err != nil {
				errs = append(errs, fmt.Errorf("invalid setting %s (from its flag): %w", key, err))
			}
		}
	})
	for name := range env {
		if !known[name] && !ignoredEnv[name] {
			errs = append(errs, fmt.Errorf("unknown setting %s in the environment (see `latch config` for the accepted keys)", name))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return c, err
	}
	return c, c.Validate()
}

// ignoredEnv are LATCH_ variables that are not configuration keys (the
// test harness's LATCH_TEST_* are skipped as a family).
var ignoredEnv = map[string]bool{"LATCH_TEST_REQUIRE": true, "LATCH_CONFIG": true}

// EnvName is the environment variable of a dotted key.
func EnvName(key string) string {
	return "LATCH_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
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

func setValue(f reflect.Value, s string) error {
	switch f.Interface().(type) {
	case Duration:
		d, err := ParseDuration(s)
		if err != nil {
			return err
		}
		f.Set(reflect.ValueOf(d))
	case string:
		f.SetString(s)
	case bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("%q is not a boolean (use true or false)", s)
		}
		f.SetBool(b)
	case int:
		n, err := strconv.Atoi(s)
		if err != nil {
			return fmt.Errorf("%q is not a whole number", s)
		}
		f.SetInt(int64(n))
	case []string:
		var list []string
		for p := range strings.SplitSeq(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				list = append(list, p)
			}
		}
		f.Set(reflect.ValueOf(list))
	default:
		return fmt.Errorf("unsupported setting type %s", f.Type())
	}
	return nil
}

// Postgres reports whether the store is PostgreSQL.
func (c *Config) Postgres() bool {
	return strings.HasPrefix(c.Store, "postgres://") || strings.HasPrefix(c.Store, "postgresql://")
}

// Validate fills derived defaults (issuer, audience, KEK file) and checks
// every setting, naming the setting and the accepted values in each error.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, fmt.Errorf("invalid setting %s (%s): %s", key, EnvName(key), fmt.Sprintf(format, a...)))
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
	if c.KEKFile == "" {
		c.KEKFile = c.DataDir + string(os.PathSeparator) + "kek"
	}
	for _, o := range c.CORS.AllowedOrigins {
		if u, err := url.Parse(o); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || o == "*" {
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
		bad("tokens.access_ttl", "%s must be between 10s and 24h", t.AccessTTL)
	}
	if t.AccessJitter < 0 || t.AccessJitter.D() >= t.AccessTTL.D()/2 {
		bad("tokens.access_jitter", "%s must be at least 0 and less than half of tokens.access_ttl", t.AccessJitter)
	}
	if t.RefreshIdleTimeout.D() < time.Minute {
		bad("tokens.refresh_idle_timeout", "%s must be at least 1m", t.RefreshIdleTimeout)
	}
	if t.RefreshAbsoluteTTL.D() < time.Minute {
		bad("tokens.refresh_absolute_ttl", "%s must be at least 1m", t.RefreshAbsoluteTTL)
	}
	if t.RefreshGrace < 0 || t.RefreshGrace.D() > 5*time.Minute {
		bad("tokens.refresh_grace", "%s must be between 0 (disabled) and 5m", t.RefreshGrace)
	}
	if t.Leeway < 0 || t.Leeway.D() > 30*time.Second {
		bad("tokens.leeway", "%s must be between 0 and 30s", t.Leeway)
	}
	if c.Keys.RotationPeriod.D() < time.Hour {
		bad("keys.rotation_period", "%s must be at least 1h", c.Keys.RotationPeriod)
	}
	if c.Keys.JWKSMaxAge < 0 || c.Keys.JWKSMaxAge.D() > 24*time.Hour {
		bad("keys.jwks_max_age", "%s must be between 0 and 24h", c.Keys.JWKSMaxAge)
	}
	if c.Keys.RotationPeriod.D() <= c.Keys.JWKSMaxAge.D()+10*time.Minute {
		bad("keys.rotation_period", "%s must be longer than keys.jwks_max_age + 10m, the time a new key is published before it signs", c.Keys.RotationPeriod)
	}
	if c.Revocation.MaxStale != 0 && (c.Revocation.MaxStale.D() < 5*time.Second || c.Revocation.MaxStale.D() > time.Hour) {
		bad("revocation.max_stale", "%s must be 0 (policy off) or between 5s and 1h", c.Revocation.MaxStale)
	}
	if c.Revocation.MaxStreamsPerClient < 1 || c.Revocation.MaxStreamsPerClient > 1000 {
		bad("revocation.max_streams_per_client", "%d must be between 1 and 1000", c.Revocation.MaxStreamsPerClient)
	}
	if c.Login.RatePerIP < 0 || c.Login.RatePerIP > 100000 {
		bad("login.rate_per_ip", "%d must be between 0 (off) and 100000", c.Login.RatePerIP)
	}
	if c.Login.MaxFailures < 0 || c.Login.MaxFailures > 1000 {
		bad("login.max_failures", "%d must be between 0 (off) and 1000", c.Login.MaxFailures)
	}
	if c.Login.MaxFailures > 0 && (c.Login.Lockout.D() < time.Second || c.Login.Lockout.D() > 24*time.Hour) {
		bad("login.lockout", "%s must be between 1s and 24h", c.Login.Lockout)
	}
	if c.Password.MaxConcurrent < 0 || c.Password.MaxConcurrent > 1024 {
		bad("password.max_concurrent", "%d must be between 0 (one per CPU) and 1024", c.Password.MaxConcurrent)
	}
	if c.Password.MaxWait < 0 || c.Password.MaxWait.D() > time.Minute {
		bad("password.max_wait", "%s must be between 0 and 1m", c.Password.MaxWait)
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
