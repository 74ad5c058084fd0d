package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// valid returns the defaults on a data directory: a configuration that
// Validate accepts, which each case below changes in one setting.
func valid() Config {
	c := Defaults()
	c.DataDir = "/var/lib/latch"
	return c
}

func dur(d time.Duration) Duration { return Duration(d) }

// TestValidateRejects: every setting out of its range is refused, and the
// error names the setting and its environment variable.
func TestValidateRejects(t *testing.T) {
	cases := []struct {
		name string
		key  string
		set  func(c *Config)
	}{
		{"addr not host:port", "addr", func(c *Config) { c.Addr = "nonsense" }},
		{"addr port too big", "addr", func(c *Config) { c.Addr = "127.0.0.1:65536" }},
		{"addr port not a number", "addr", func(c *Config) { c.Addr = "127.0.0.1:http" }},
		{"data_dir empty", "data_dir", func(c *Config) { c.DataDir = "" }},
		{"issuer ftp", "issuer", func(c *Config) { c.Issuer = "ftp://latch.example" }},
		{"issuer no scheme", "issuer", func(c *Config) { c.Issuer = "latch.example" }},
		{"issuer no host", "issuer", func(c *Config) { c.Issuer = "https://" }},
		{"issuer with query", "issuer", func(c *Config) { c.Issuer = "https://latch.example/?tenant=a" }},
		{"issuer with fragment", "issuer", func(c *Config) { c.Issuer = "https://latch.example/#x" }},
		// Metadata lives at the root; a path would advertise URLs nobody serves.
		{"issuer with path", "issuer", func(c *Config) { c.Issuer = "https://auth.example/latch" }},
		{"store not postgres", "store", func(c *Config) { c.Store = "mysql://db/latch" }},
		{"redis not a redis URL", "redis", func(c *Config) { c.Redis = "http://cache:6379" }},
		{"client_id empty", "client_id", func(c *Config) { c.ClientID = "" }},
		{"trusted proxy without prefix length", "trusted_proxies", func(c *Config) { c.TrustedProxies = []string{"10.0.0.0/8", "10.1.2.3"} }},
		{"trusted proxy garbage", "trusted_proxies", func(c *Config) { c.TrustedProxies = []string{"everyone"} }},
		{"algorithm HS256", "tokens.algorithm", func(c *Config) { c.Tokens.Algorithm = "HS256" }},
		{"algorithm none", "tokens.algorithm", func(c *Config) { c.Tokens.Algorithm = "none" }},
		{"algorithm lower case", "tokens.algorithm", func(c *Config) { c.Tokens.Algorithm = "eddsa" }},
		{"access_ttl below 10s", "tokens.access_ttl", func(c *Config) { c.Tokens.AccessTTL = dur(10*time.Second - time.Nanosecond) }},
		{"access_ttl zero", "tokens.access_ttl", func(c *Config) { c.Tokens.AccessTTL = 0 }},
		{"access_ttl above 24h", "tokens.access_ttl", func(c *Config) { c.Tokens.AccessTTL = dur(24*time.Hour + time.Nanosecond) }},
		{"access_jitter negative", "tokens.access_jitter", func(c *Config) { c.Tokens.AccessJitter = dur(-time.Second) }},
		{"access_jitter half of ttl", "tokens.access_jitter", func(c *Config) { c.Tokens.AccessJitter = dur(150 * time.Second) }},
		{"refresh_idle_timeout below 1m", "tokens.refresh_idle_timeout", func(c *Config) { c.Tokens.RefreshIdleTimeout = dur(time.Minute - time.Nanosecond) }},
		{"refresh_absolute_ttl below 1m", "tokens.refresh_absolute_ttl", func(c *Config) { c.Tokens.RefreshAbsoluteTTL = dur(time.Minute - time.Nanosecond) }},
		{"refresh_grace negative", "tokens.refresh_grace", func(c *Config) { c.Tokens.RefreshGrace = dur(-time.Nanosecond) }},
		{"refresh_grace above 5m", "tokens.refresh_grace", func(c *Config) { c.Tokens.RefreshGrace = dur(5*time.Minute + time.Nanosecond) }},
		{"refresh_grace_replays negative", "tokens.refresh_grace_replays", func(c *Config) { c.Tokens.GraceReplays = -1 }},
		{"refresh_grace_replays above 10", "tokens.refresh_grace_replays", func(c *Config) { c.Tokens.GraceReplays = 11 }},
		{"leeway negative", "tokens.leeway", func(c *Config) { c.Tokens.Leeway = dur(-time.Nanosecond) }},
		{"leeway above 30s", "tokens.leeway", func(c *Config) { c.Tokens.Leeway = dur(30*time.Second + time.Nanosecond) }},
		{"rotation_period below 1h", "keys.rotation_period", func(c *Config) {
			c.Keys.RotationPeriod = dur(time.Hour - time.Nanosecond)
			c.Keys.JWKSMaxAge = 0
		}},
		{"jwks_max_age negative", "keys.jwks_max_age", func(c *Config) { c.Keys.JWKSMaxAge = dur(-time.Nanosecond) }},
		{"jwks_max_age above 24h", "keys.jwks_max_age", func(c *Config) { c.Keys.JWKSMaxAge = dur(24*time.Hour + time.Nanosecond) }},
		{"rotation_period equal to jwks_max_age + 10m", "keys.rotation_period", func(c *Config) {
			c.Keys.RotationPeriod = dur(2 * time.Hour)
			c.Keys.JWKSMaxAge = dur(110 * time.Minute)
		}},
		{"rotation_period shorter than jwks_max_age + 10m", "keys.rotation_period", func(c *Config) {
			c.Keys.RotationPeriod = dur(2 * time.Hour)
			c.Keys.JWKSMaxAge = dur(115 * time.Minute)
		}},
		{"max_concurrent negative", "password.max_concurrent", func(c *Config) { c.Password.MaxConcurrent = -1 }},
		{"max_concurrent above 1024", "password.max_concurrent", func(c *Config) { c.Password.MaxConcurrent = 1025 }},
		{"max_wait negative", "password.max_wait", func(c *Config) { c.Password.MaxWait = dur(-time.Nanosecond) }},
		{"max_wait above 1m", "password.max_wait", func(c *Config) { c.Password.MaxWait = dur(time.Minute + time.Nanosecond) }},
		// A wildcard would be silently matched against nothing: refuse it.
		{"cors origin *", "cors.allowed_origins", func(c *Config) { c.CORS.AllowedOrigins = []string{"*"} }},
		{"cors wildcard subdomain without scheme", "cors.allowed_origins", func(c *Config) { c.CORS.AllowedOrigins = []string{"*.example.com"} }},
		{"cors wildcard host", "cors.allowed_origins", func(c *Config) { c.CORS.AllowedOrigins = []string{"https://app.example", "https://*.x"} }},
		{"cors wildcard port", "cors.allowed_origins", func(c *Config) { c.CORS.AllowedOrigins = []string{"https://app.example:*"} }},
		{"metrics.addr not host:port", "metrics.addr", func(c *Config) { c.Metrics.Addr = "9090" }},
		{"metrics.addr port too big", "metrics.addr", func(c *Config) { c.Metrics.Addr = "127.0.0.1:70000" }},
		{"metrics.addr is addr", "metrics.addr", func(c *Config) { c.Metrics.Addr = c.Addr }},
		{"metrics.token too short", "metrics.token", func(c *Config) { c.Metrics.Token = strings.Repeat("x", MinMetricsToken-1) }},
		{"redis_prefix empty", "redis_prefix", func(c *Config) { c.RedisPrefix = "" }},
		{"redis_prefix with a space", "redis_prefix", func(c *Config) { c.RedisPrefix = "my latch" }},
		{"redis_prefix with a wildcard", "redis_prefix", func(c *Config) { c.RedisPrefix = "latch*" }},
		{"redis_prefix too long", "redis_prefix", func(c *Config) { c.RedisPrefix = strings.Repeat("p", 65) }},
		{"log level unknown", "log.level", func(c *Config) { c.Log.Level = "trace" }},
		{"log format unknown", "log.format", func(c *Config) { c.Log.Format = "xml" }},
		{"smtp_url http", "mail.smtp_url", func(c *Config) { c.Mail.SMTPURL = "http://mx.example.com" }},
		{"smtp_url no host", "mail.smtp_url", func(c *Config) { c.Mail.SMTPURL = "smtp://" }},
		{"smtp_url starttls on", "mail.smtp_url", func(c *Config) { c.Mail.SMTPURL = "smtp://mx.example.com?starttls=on" }},
		{"smtps with starttls=off", "mail.smtp_url", func(c *Config) { c.Mail.SMTPURL = "smtps://mx.example.com?starttls=off" }},
		{"mail.from not an address", "mail.from", func(c *Config) { c.Mail.From = "Latch" }},
		{"mail.from two addresses", "mail.from", func(c *Config) { c.Mail.From = "a@example.com, b@example.com" }},
		{"mail.from header injection", "mail.from", func(c *Config) { c.Mail.From = "a@example.com\r\nBcc: b@example.com" }},
		{"account_max_failures negative", "login.account_max_failures", func(c *Config) { c.Login.AccountMaxFailures = -1 }},
		{"account_max_failures above 100000", "login.account_max_failures", func(c *Config) { c.Login.AccountMaxFailures = 100001 }},
		{"account_max_failures not above max_failures", "login.account_max_failures", func(c *Config) { c.Login.AccountMaxFailures = c.Login.MaxFailures }},
		{"account_window below 1m", "login.account_window", func(c *Config) { c.Login.AccountWindow = dur(time.Minute - time.Nanosecond) }},
		{"account_window above 168h", "login.account_window", func(c *Config) { c.Login.AccountWindow = dur(7*24*time.Hour + time.Nanosecond) }},
		{"lockout zero with only the account-wide lock", "login.lockout", func(c *Config) { c.Login.MaxFailures, c.Login.Lockout = 0, 0 }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := valid()
			tc.set(&c)
			err := c.Validate()
			if err == nil {
				t.Fatalf("Validate accepted %s", tc.name)
			}
			want := "invalid setting " + tc.key + " (" + EnvName(tc.key) + ")"
			if !strings.Contains(err.Error(), want) {
				t.Fatalf("error %q does not name %q", err, want)
			}
		})
	}
}

// TestValidateAccepts: the inclusive ends of every range are accepted, so
// that the rejections above are exactly at the documented bounds.
func TestValidateAccepts(t *testing.T) {
	cases := []struct {
		name string
		set  func(c *Config)
	}{
		{"defaults", func(c *Config) {}},
		{"account-wide lock off", func(c *Config) { c.Login.AccountMaxFailures = 0 }},
		{"account_window 1m", func(c *Config) { c.Login.AccountWindow = dur(time.Minute) }},
		{"account_window 168h", func(c *Config) { c.Login.AccountWindow = dur(7 * 24 * time.Hour) }},
		{"account_max_failures just above max_failures", func(c *Config) { c.Login.AccountMaxFailures = c.Login.MaxFailures + 1 }},
		{"every lock off, no lockout", func(c *Config) { c.Login.MaxFailures, c.Login.AccountMaxFailures, c.Login.Lockout = 0, 0, 0 }},
		{"port 65535", func(c *Config) { c.Addr = "127.0.0.1:65535" }},
		{"port 0 on all interfaces", func(c *Config) { c.Addr = ":0" }},
		{"https issuer with a trailing slash", func(c *Config) { c.Issuer = "https://auth.example/" }},
		{"trusted proxies", func(c *Config) { c.TrustedProxies = []string{"10.0.0.0/8", "fd00::/8", "192.0.2.1/32"} }},
		{"ES256", func(c *Config) { c.Tokens.Algorithm = "ES256" }},
		{"RS256", func(c *Config) { c.Tokens.Algorithm = "RS256" }},
		{"access_ttl 10s", func(c *Config) { c.Tokens.AccessTTL = dur(10 * time.Second) }},
		{"access_ttl 24h", func(c *Config) { c.Tokens.AccessTTL = dur(24 * time.Hour) }},
		{"access_jitter just under half", func(c *Config) { c.Tokens.AccessJitter = dur(150*time.Second - time.Nanosecond) }},
		{"refresh_idle_timeout 1m", func(c *Config) { c.Tokens.RefreshIdleTimeout = dur(time.Minute) }},
		{"refresh_absolute_ttl 1m", func(c *Config) { c.Tokens.RefreshAbsoluteTTL = dur(time.Minute) }},
		{"refresh_grace 0", func(c *Config) { c.Tokens.RefreshGrace = 0 }},
		{"refresh_grace 5m", func(c *Config) { c.Tokens.RefreshGrace = dur(5 * time.Minute) }},
		{"refresh_grace_replays 0", func(c *Config) { c.Tokens.GraceReplays = 0 }},
		{"refresh_grace_replays 10", func(c *Config) { c.Tokens.GraceReplays = 10 }},
		{"leeway 0", func(c *Config) { c.Tokens.Leeway = 0 }},
		{"leeway 30s", func(c *Config) { c.Tokens.Leeway = dur(30 * time.Second) }},
		{"rotation_period 1h", func(c *Config) { c.Keys.RotationPeriod = dur(time.Hour); c.Keys.JWKSMaxAge = 0 }},
		{"rotation_period just over jwks_max_age + 10m", func(c *Config) {
			c.Keys.RotationPeriod = dur(2 * time.Hour)
			c.Keys.JWKSMaxAge = dur(110*time.Minute - time.Nanosecond)
		}},
		{"jwks_max_age 0", func(c *Config) { c.Keys.JWKSMaxAge = 0 }},
		{"jwks_max_age 24h", func(c *Config) { c.Keys.JWKSMaxAge = dur(24 * time.Hour) }},
		{"max_concurrent 0", func(c *Config) { c.Password.MaxConcurrent = 0 }},
		{"max_concurrent 1024", func(c *Config) { c.Password.MaxConcurrent = 1024 }},
		{"max_wait 0", func(c *Config) { c.Password.MaxWait = 0 }},
		{"max_wait 1m", func(c *Config) { c.Password.MaxWait = dur(time.Minute) }},
		{"cors origins", func(c *Config) { c.CORS.AllowedOrigins = []string{"https://app.example", "http://localhost:3000/"} }},
		{"metrics listener", func(c *Config) { c.Metrics.Addr = "127.0.0.1:9090" }},
		{"metrics listener on a random port", func(c *Config) { c.Addr, c.Metrics.Addr = "127.0.0.1:0", "127.0.0.1:0" }},
		{"metrics token", func(c *Config) { c.Metrics.Token = "3f9c1b7a2e8d4f60a5b9c3e7d1f2a8b4c6e0d9f7a1b3c5e7" }},
		{"redis_prefix", func(c *Config) { c.RedisPrefix = "prod-eu.latch:v2_" + strings.Repeat("p", 47) }},
		{"log debug json", func(c *Config) { c.Log.Level, c.Log.Format = "debug", "json" }},
		{"log warn", func(c *Config) { c.Log.Level = "warn" }},
		{"log error", func(c *Config) { c.Log.Level = "error" }},
		{"smtp_url STARTTLS with credentials", func(c *Config) { c.Mail.SMTPURL = "smtp://u%40x:p%3Aw@mx.example.com:587" }},
		{"smtp_url implicit TLS", func(c *Config) { c.Mail.SMTPURL = "smtps://mx.example.com" }},
		{"smtp_url local sink", func(c *Config) { c.Mail.SMTPURL = "smtp://127.0.0.1:1025?starttls=off" }},
		{"mail.from bare address", func(c *Config) { c.Mail.From = "security@example.com" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := valid()
			tc.set(&c)
			if err := c.Validate(); err != nil {
				t.Fatalf("Validate rejected %s: %v", tc.name, err)
			}
		})
	}
}

// TestValidateDerivedDefaults: issuer, audience and KEK file are filled in.
func TestValidateDerivedDefaults(t *testing.T) {
	c := valid()
	c.Addr = "0.0.0.0:9000"
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Issuer != "http://localhost:9000" || c.Audience != c.Issuer {
		t.Fatalf("issuer %q audience %q", c.Issuer, c.Audience)
	}
	if c.KEKFile != filepath.Join("/var/lib/latch", "kek") {
		t.Fatalf("kek file %q", c.KEKFile)
	}
}

// TestLoadRejects: values that cannot be parsed, and keys that do not
// exist, are errors rather than silently ignored.
func TestLoadRejects(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name      string
		file      string
		env       []string
		overrides map[string]Flag
		want      string
	}{
		{"unknown yaml key", "tokens:\n  algorithim: EdDSA\n", nil, nil, "algorithim"},
		{"bad yaml duration", "tokens:\n  access_ttl: soon\n", nil, nil, "invalid duration"},
		{"unknown env", "", []string{"LATCH_TOKEN_ACCESS_TTL=5m"}, nil, "LATCH_TOKEN_ACCESS_TTL"},
		{"bad bool", "", []string{"LATCH_REGISTRATION=yes please"}, nil, "registration"},
		{"bad int", "", []string{"LATCH_PASSWORD_MAX_CONCURRENT=four"}, nil, "password.max_concurrent"},
		{"bad day count", "", []string{"LATCH_TOKENS_REFRESH_ABSOLUTE_TTL=-3d"}, nil, "tokens.refresh_absolute_ttl"},
		{"day count overflow", "", []string{"LATCH_TOKENS_REFRESH_ABSOLUTE_TTL=70000d"}, nil, "tokens.refresh_absolute_ttl"},
		{"fractional days", "", []string{"LATCH_TOKENS_REFRESH_ABSOLUTE_TTL=1.5d"}, nil, "tokens.refresh_absolute_ttl"},
		{"bad flag value", "", nil, map[string]Flag{"tokens.leeway": {"--leeway", "a bit"}}, "tokens.leeway"},
		{"flag out of range", "", nil, map[string]Flag{"tokens.leeway": {"--leeway", "31s"}}, "tokens.leeway"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := ""
			if tc.file != "" {
				path = filepath.Join(dir, "c"+string(rune('a'+i))+".yaml")
				if err := os.WriteFile(path, []byte(tc.file), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			_, err := Load(path, tc.env, tc.overrides)
			if err == nil {
				t.Fatalf("Load accepted %s", tc.name)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q lacks %q", err, tc.want)
			}
		})
	}
	// The variables that are not settings are not errors.
	if _, err := Load("", []string{"LATCH_CONFIG=/etc/latch.yaml", "LATCH_TEST_REQUIRE=postgres", "PATH=/bin"}, nil); err != nil {
		t.Fatalf("ignored variables refused: %v", err)
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"30d": 30 * 24 * time.Hour, " 90s ": 90 * time.Second, "0d": 0} {
		got, err := ParseDuration(in)
		if err != nil || got.D() != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "d", "x d", "-1d", "1.5d", "65536d", "forever", "5"} {
		if _, err := ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) accepted", in)
		}
	}
}

// TestLoadNamesTheSource: every error names the setting as the user wrote
// it and where: the file and line, the variable, or the flag; a typo comes
// with the key it probably meant; values are echoed as written.
func TestLoadNamesTheSource(t *testing.T) {
	dir := t.TempDir()
	file := func(name, text string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	cases := []struct {
		name   string
		path   string
		env    []string
		flags  map[string]Flag
		want   []string
		refuse []string
	}{
		{"yaml typo", file("typo.yaml", "addr: 127.0.0.1:8080\ntokens:\n  acess_ttl: 5m\n"), nil, nil,
			[]string{"unknown setting tokens.acess_ttl in " + filepath.Join(dir, "typo.yaml") + " line 3; did you mean tokens.access_ttl?"},
			[]string{"config.Config", "struct"}},
		{"yaml unknown section", file("section.yaml", "token:\n  access_ttl: 5m\n"), nil, nil,
			[]string{"unknown setting token.access_ttl", "line 2", "did you mean tokens.access_ttl?"}, nil},
		{"yaml far from any key", file("far.yaml", "colour: blue\n"), nil, nil,
			[]string{"unknown setting colour", "line 1"}, []string{"did you mean"}},
		{"yaml bad value", file("bad.yaml", "\n\ntokens:\n  leeway: a while\n"), nil, nil,
			[]string{"invalid setting tokens.leeway (from " + filepath.Join(dir, "bad.yaml") + " line 4)", `"a while"`}, nil},
		{"yaml out of range echoes 48h", file("ttl.yaml", "tokens:\n  access_ttl: 48h\n"), nil, nil,
			[]string{"invalid setting tokens.access_ttl (from " + filepath.Join(dir, "ttl.yaml") + " line 2): 48h must be between 10s and 24h"},
			[]string{"2d", "LATCH_TOKENS_ACCESS_TTL"}},
		{"yaml section given a value", file("flat.yaml", "tokens: 5m\n"), nil, nil,
			[]string{"tokens must be a mapping", "line 1"}, nil},
		{"yaml setting given a mapping", file("deep.yaml", "issuer:\n  url: x\n"), nil, nil,
			[]string{"invalid setting issuer", "line 1", "single value"}, nil},
		{"yaml duplicate key", file("dup.yaml", "addr: 127.0.0.1:1\naddr: 127.0.0.1:2\n"), nil, nil,
			[]string{"addr appears twice", "lines 1 and 2"}, nil},
		{"kek in the file blamed on the file, never echoed", file("kek.yaml", "kek: c2VjcmV0LWJ1dC1zaG9ydA==\n"), nil, nil,
			[]string{"invalid setting kek (from " + filepath.Join(dir, "kek.yaml") + " line 1)", "decodes to 16 bytes"},
			[]string{"LATCH_KEK", "c2VjcmV0LWJ1dC1zaG9ydA"}},
		{"patterned metrics token", "", []string{"LATCH_METRICS_TOKEN=" + strings.Repeat("A", 56)}, nil,
			[]string{"invalid setting metrics.token (from LATCH_METRICS_TOKEN)", "bits of randomness"}, []string{strings.Repeat("A", 56)}},
		{"flag blamed on the flag", "", nil, map[string]Flag{"issuer": {"--issuer", "ftp://x"}},
			[]string{"invalid setting issuer (from the flag --issuer)", `"ftp://x"`}, []string{"LATCH_ISSUER"}},
		{"variable blamed on the variable", "", []string{"LATCH_ISSUER=ftp://x"}, nil,
			[]string{"invalid setting issuer (from LATCH_ISSUER)"}, nil},
		{"flag beats a valid variable", "", []string{"LATCH_TOKENS_LEEWAY=1s"}, map[string]Flag{"tokens.leeway": {"--leeway", "90s"}},
			[]string{"invalid setting tokens.leeway (from the flag --leeway): 90s must be"}, []string{"1m30s"}},
		{"variable echoes as written", "", []string{"LATCH_TOKENS_REFRESH_GRACE=360s"}, nil,
			[]string{"invalid setting tokens.refresh_grace (from LATCH_TOKENS_REFRESH_GRACE): 360s must be"}, []string{"6m"}},
		{"variable typo suggests", "", []string{"LATCH_TOKENS_ACESS_TTL=5m"}, nil,
			[]string{"unknown setting LATCH_TOKENS_ACESS_TTL in the environment; did you mean LATCH_TOKENS_ACCESS_TTL?"}, nil},
		{"alias named", "", []string{"LATCH_DATABASE_URL=mysql://x"}, nil,
			[]string{"invalid setting store (from LATCH_DATABASE_URL)"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(tc.path, tc.env, tc.flags)
			if err == nil {
				t.Fatal("Load accepted it")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			for _, r := range tc.refuse {
				if strings.Contains(err.Error(), r) {
					t.Errorf("error %q contains %q", err, r)
				}
			}
		})
	}
}

// TestLoadFile: a file sets every kind of value, lists as YAML sequences,
// and a key without a value keeps its default.
func TestLoadFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "latch.yaml")
	text := "addr: 127.0.0.1:9001\nregistration: true\nissuer:\ntrusted_proxies:\n  - 10.0.0.0/8\n  - fd00::/8\n" +
		"tokens:\n  access_ttl: 90s\n  refresh_absolute_ttl: 14d\nlogin:\n  rate_per_ip: 7\n"
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:9001" || !c.Registration || c.Issuer != "http://127.0.0.1:9001" ||
		strings.Join(c.TrustedProxies, " ") != "10.0.0.0/8 fd00::/8" || c.Tokens.AccessTTL.D() != 90*time.Second ||
		c.Tokens.RefreshAbsoluteTTL.D() != 14*24*time.Hour || c.Login.RatePerIP != 7 {
		t.Fatalf("loaded %+v", c)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml"), nil, nil); err == nil {
		t.Fatal("a missing file was accepted")
	}
	empty := filepath.Join(t.TempDir(), "empty.yaml")
	os.WriteFile(empty, nil, 0o600)
	if _, err := Load(empty, nil, nil); err != nil {
		t.Fatalf("empty file: %v", err)
	}
}

// TestDurationString: one readable notation, which ParseDuration reads back.
func TestDurationString(t *testing.T) {
	for d, want := range map[time.Duration]string{
		5 * time.Minute: "5m", 30 * time.Second: "30s", 7 * 24 * time.Hour: "7d", 90 * time.Minute: "1h30m",
		time.Hour: "1h", 36 * time.Hour: "36h", 1500 * time.Millisecond: "1.5s", 500 * time.Millisecond: "500ms",
		0: "0s", 61 * time.Second: "1m1s", time.Hour + time.Second: "1h0m1s",
	} {
		got := Duration(d).String()
		if got != want {
			t.Errorf("Duration(%v) = %q, want %q", d, got, want)
		}
		back, err := ParseDuration(got)
		if err != nil || back.D() != d {
			t.Errorf("ParseDuration(%q) = %v, %v", got, back, err)
		}
	}
}

// TestMailSettings: the sender defaults to no-reply at the issuer's host,
// and an smtp_url refused from the environment names the variable without
// echoing the password.
func TestMailSettings(t *testing.T) {
	c := valid()
	c.Issuer = "https://auth.example.com:8443"
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Mail.From != "Latch <no-reply@auth.example.com>" {
		t.Errorf("mail.from %q", c.Mail.From)
	}
	for iss, want := range map[string]string{
		"http://[::1]:8080":     "Latch <no-reply@[::1]>",
		"http://127.0.0.1:8080": "Latch <no-reply@[127.0.0.1]>",
		"http://localhost:8080": "Latch <no-reply@localhost>",
	} {
		c := valid()
		c.Issuer = iss
		if err := c.Validate(); err != nil || c.Mail.From != want {
			t.Errorf("issuer %s: mail.from %q (%v), want %q", iss, c.Mail.From, err, want)
		}
	}
	_, err := Load("", []string{"LATCH_DATA_DIR=/var/lib/latch", "LATCH_MAIL_SMTP_URL=smtp://kate:hunter2-sekrit@mx.example.com?tls=skip"}, nil)
	if err == nil || !strings.Contains(err.Error(), "mail.smtp_url (from LATCH_MAIL_SMTP_URL)") || strings.Contains(err.Error(), "hunter2-sekrit") {
		t.Fatalf("error %v: want it to name LATCH_MAIL_SMTP_URL and hide the password", err)
	}
	var f reflect.StructField
	Walk(&c, func(key string, _ reflect.Value, sf reflect.StructField) {
		if key == "mail.smtp_url" {
			f = sf
		}
	})
	if f.Tag.Get("secret") != "true" {
		t.Error("mail.smtp_url is not marked secret")
	}
}
