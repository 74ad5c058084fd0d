package config

import (
	"os"
	"path/filepath"
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
		{"log level unknown", "log.level", func(c *Config) { c.Log.Level = "trace" }},
		{"log format unknown", "log.format", func(c *Config) { c.Log.Format = "xml" }},
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
		{"log debug json", func(c *Config) { c.Log.Level, c.Log.Format = "debug", "json" }},
		{"log warn", func(c *Config) { c.Log.Level = "warn" }},
		{"log error", func(c *Config) { c.Log.Level = "error" }},
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
		overrides map[string]string
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
		{"bad flag value", "", nil, map[string]string{"tokens.leeway": "a bit"}, "tokens.leeway"},
		{"flag out of range", "", nil, map[string]string{"tokens.leeway": "31s"}, "tokens.leeway"},
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
