package instance_test

import (
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/latchauth/latch/config"
	"github.com/latchauth/latch/instance"
)

// TestEveryAcceptedConfigStarts: each end of every range that config
// validation accepts also starts an instance. tokens.access_ttl 24h with
// the default leeway used to pass validation and then be refused by the
// key ring (token lifetime above 24h).
func TestEveryAcceptedConfigStarts(t *testing.T) {
	d := func(x time.Duration) config.Duration { return config.Duration(x) }
	cases := []struct {
		name string
		set  func(c *config.Config)
	}{
		{"access_ttl 24h, default leeway", func(c *config.Config) { c.Tokens.AccessTTL = d(24 * time.Hour) }},
		{"access_ttl 24h, leeway 30s, longest jitter", func(c *config.Config) {
			c.Tokens.AccessTTL, c.Tokens.Leeway = d(24*time.Hour), d(30*time.Second)
			c.Tokens.AccessJitter = d(12*time.Hour - time.Nanosecond)
		}},
		{"access_ttl 10s, leeway 0", func(c *config.Config) { c.Tokens.AccessTTL, c.Tokens.Leeway = d(10*time.Second), 0 }},
		{"refresh limits at their minimum, grace 0", func(c *config.Config) {
			c.Tokens.RefreshIdleTimeout, c.Tokens.RefreshAbsoluteTTL, c.Tokens.RefreshGrace = d(time.Minute), d(time.Minute), 0
		}},
		{"refresh grace 5m", func(c *config.Config) { c.Tokens.RefreshGrace = d(5 * time.Minute) }},
		{"rotation_period 1h, jwks_max_age 0", func(c *config.Config) { c.Keys.RotationPeriod, c.Keys.JWKSMaxAge = d(time.Hour), 0 }},
		{"jwks_max_age 24h, shortest rotation", func(c *config.Config) {
			c.Keys.JWKSMaxAge, c.Keys.RotationPeriod = d(24*time.Hour), d(24*time.Hour+10*time.Minute+time.Second)
		}},
		{"ES256", func(c *config.Config) { c.Tokens.Algorithm = "ES256" }},
		{"RS256", func(c *config.Config) { c.Tokens.Algorithm = "RS256" }},
		{"max_stale 5s", func(c *config.Config) { c.Revocation.MaxStale = d(5 * time.Second) }},
		{"max_stale 1h, fail open", func(c *config.Config) { c.Revocation.MaxStale, c.Revocation.FailOpen = d(time.Hour), true }},
		{"throttles off", func(c *config.Config) { c.Login.RatePerIP, c.Login.MaxFailures, c.Login.AccountMaxFailures = 0, 0, 0 }},
		{"throttles at their maximum", func(c *config.Config) {
			c.Login.RatePerIP, c.Login.MaxFailures, c.Login.Lockout = 100000, 1000, d(24*time.Hour)
			c.Login.AccountMaxFailures, c.Login.AccountWindow = 100000, d(7*24*time.Hour)
		}},
		{"password limits at their maximum", func(c *config.Config) {
			c.Password.MaxConcurrent, c.Password.MaxWait = 1024, d(time.Minute)
		}},
		{"password wait 0", func(c *config.Config) { c.Password.MaxWait = 0 }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t, filepath.Join(t.TempDir(), "latch-data"), tc.set)
			in, err := instance.Open(t.Context(), cfg, instance.Options{Log: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatalf("validation accepted the configuration but the instance refused to start: %v", err)
			}
			in.Close()
		})
	}
}
