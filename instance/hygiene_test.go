package instance_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latchauth/latch/config"
	"github.com/latchauth/latch/instance"
	"github.com/latchauth/latch/internal/testenv"
)

// TestHSTS: with an https issuer every response, errors included, tells
// browsers to use https only; with an http issuer none does.
func TestHSTS(t *testing.T) {
	secure := start(t, "", func(c *config.Config) { c.Issuer = "https://latch.test" })
	for _, path := range []string{"/healthz", "/.well-known/jwks.json", "/no-such-page", "/v1/me"} {
		r := secure.do("GET", path, "")
		if got := r.header.Get("Strict-Transport-Security"); got != "max-age=63072000; includeSubDomains" {
			t.Errorf("https issuer, GET %s (%d): Strict-Transport-Security %q", path, r.code, got)
		}
	}
	plain := start(t, "", nil)
	for _, path := range []string{"/healthz", "/no-such-page"} {
		if got := plain.do("GET", path, "").header.Get("Strict-Transport-Security"); got != "" {
			t.Errorf("http issuer, GET %s: Strict-Transport-Security %q", path, got)
		}
	}
}

// TestCleartextIssuerWarning: an http issuer on a host other than the
// loopback is warned about at start; loopback and https issuers are not.
func TestCleartextIssuerWarning(t *testing.T) {
	const warning = "travel in cleartext"
	for issuer, warn := range map[string]bool{
		"http://latch.test":         true,
		"http://192.0.2.10:8080":    true,
		"http://[2001:db8::1]:8080": true,
		"http://127.0.0.1:8080":     false,
		"http://localhost:8080":     false,
		"http://app.localhost:8080": false,
		"http://[::1]:8080":         false,
		"https://latch.test":        false,
		"https://192.0.2.10:8443":   false,
	} {
		t.Run(issuer, func(t *testing.T) {
			h := start(t, "", func(c *config.Config) { c.Issuer = issuer })
			logs := h.logs.String()
			// The key-encryption key warning comes later in the start:
			// the warning had its chance.
			if !strings.Contains(logs, "generated a new key-encryption key") {
				t.Fatalf("start-up log incomplete:\n%s", logs)
			}
			if got := strings.Contains(logs, warning); got != warn {
				t.Fatalf("issuer %s: warned %v, want %v:\n%s", issuer, got, warn, logs)
			}
		})
	}
}

// TestCleartextListenerWarning: a listener reachable from beyond the
// loopback over http is warned about even when the issuer it derives
// names localhost (addr 0.0.0.0:8080 gives http://localhost:8080), and a
// demo on it is warned about too: its page shows a working password.
func TestCleartextListenerWarning(t *testing.T) {
	for _, c := range []struct {
		addr, issuer string
		demo, warn   bool
	}{
		{"0.0.0.0:8080", "", false, true},
		{":8080", "", false, true},
		{"[::]:8080", "", true, true},
		{"192.0.2.10:8080", "", true, true},
		{"127.0.0.1:8080", "", true, false},
		{"[::1]:8080", "", false, false},
		{"0.0.0.0:8080", "https://latch.test", false, false},
	} {
		t.Run(c.addr+" "+c.issuer, func(t *testing.T) {
			cfg := testConfig(t, filepath.Join(t.TempDir(), "latch-data"), func(cf *config.Config) {
				cf.Addr, cf.Issuer = c.addr, c.issuer
			})
			var logs syncBuffer
			in, err := instance.Open(t.Context(), cfg, instance.Options{Log: slog.New(slog.NewTextHandler(&logs, nil)), Demo: c.demo})
			if err != nil {
				t.Fatal(err)
			}
			in.Close()
			out := logs.String()
			if got := strings.Contains(out, "travel in cleartext"); got != c.warn {
				t.Errorf("addr %s, issuer %s: cleartext warning %v, want %v:\n%s", c.addr, cfg.Issuer, got, c.warn, out)
			}
			if got := strings.Contains(out, "demo: listening beyond the loopback"); got != (c.warn && c.demo) {
				t.Errorf("addr %s, demo %v: demo warning %v, want %v:\n%s", c.addr, c.demo, got, c.warn && c.demo, out)
			}
		})
	}
}

const metricsToken = "7f3a9c0e5b21d84f6e9a0c3b7d52e18f4a6c9b0d3e7f2a15"

// TestMetricsToken: with metrics.token set, /metrics answers only a
// request bearing exactly that token.
func TestMetricsToken(t *testing.T) {
	open := start(t, "", nil)
	expect(t, "metrics without a token configured", open.do("GET", "/metrics", ""), 200, "")

	h := start(t, "", func(c *config.Config) { c.Metrics.Token = metricsToken })
	for name, hdr := range map[string][]string{
		"no Authorization":  nil,
		"wrong token":       bearer(strings.ToUpper(metricsToken)),
		"token prefix":      bearer(metricsToken[:len(metricsToken)-1]),
		"token with a tail": bearer(metricsToken + "x"),
		"basic scheme":      {"Authorization", "Basic " + metricsToken},
		"empty bearer":      {"Authorization", "Bearer "},
	} {
		r := h.do("GET", "/metrics", "", hdr...)
		expect(t, name, r, 401, "invalid_token")
		if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: WWW-Authenticate %q", name, r.header.Get("WWW-Authenticate"))
		}
	}
	r := h.do("GET", "/metrics", "", bearer(metricsToken)...)
	expect(t, "the right token", r, 200, "")
	if !strings.Contains(string(r.raw), "latch_stale_accepted_total") {
		t.Fatalf("metrics body lacks latch_stale_accepted_total:\n%.300s", r.raw)
	}
}

// TestMetricsOwnListener: with metrics.addr set, /metrics is served there
// (behind the token, when one is set) and no longer on the main listener.
func TestMetricsOwnListener(t *testing.T) {
	cfg := testConfig(t, filepath.Join(t.TempDir(), "latch-data"), func(c *config.Config) {
		c.Addr, c.Metrics.Addr, c.Metrics.Token = "127.0.0.1:0", "127.0.0.1:0", metricsToken
	})
	in, err := instance.Open(t.Context(), cfg, instance.Options{Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	ctx, cancel := context.WithCancel(t.Context())
	ready := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- in.ListenAndServe(ctx, func(a net.Addr) { ready <- a }) }()
	var main net.Addr
	select {
	case main = <-ready:
	case err := <-done:
		t.Fatalf("ListenAndServe: %v", err)
	}
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ListenAndServe: %v", err)
		}
	}()
	metrics := in.MetricsAddr()
	if metrics == nil || metrics.String() == main.String() {
		t.Fatalf("metrics listener %v, main %v", metrics, main)
	}
	get := func(addr net.Addr, path, token string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+addr.String()+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if code, _ := get(main, "/healthz", ""); code != 200 {
		t.Fatalf("main listener /healthz: %d", code)
	}
	if code, _ := get(main, "/metrics", metricsToken); code != 404 {
		t.Errorf("main listener /metrics: %d, want 404", code)
	}
	if code, _ := get(metrics, "/metrics", ""); code != 401 {
		t.Errorf("metrics listener without the token: %d, want 401", code)
	}
	if code, body := get(metrics, "/metrics", metricsToken); code != 200 || !strings.Contains(body, "latch_stale_accepted_total") {
		t.Errorf("metrics listener with the token: %d %.200s", code, body)
	}
	if code, _ := get(metrics, "/healthz", metricsToken); code != 404 {
		t.Errorf("metrics listener /healthz: %d, want 404 (it serves only /metrics)", code)
	}
	// The metrics listener has the main one's bounds: 256 KB of headers
	// (the default bound is 1 MB) are refused on both.
	for name, addr := range map[string]net.Addr{"main": main, "metrics": metrics} {
		req, _ := http.NewRequest("GET", "http://"+addr.String()+"/metrics", nil)
		req.Header.Set("X-Big", strings.Repeat("a", 256<<10))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("%s listener, 256 KB of headers: %d, want 431", name, res.StatusCode)
		}
	}
}

// TestRedisPrefixWired: redis_prefix names the channel the instance's
// fan-out uses (the redis package's tests show that distinct prefixes do
// not hear each other).
func TestRedisPrefixWired(t *testing.T) {
	cfg := testConfig(t, filepath.Join(t.TempDir(), "latch-data"), func(c *config.Config) {
		c.Redis, c.RedisPrefix = "redis://127.0.0.1:6379/0", "blue-deployment"
	})
	in, err := instance.Open(t.Context(), cfg, instance.Options{Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if err := in.Fanout.Ping(t.Context()); err != nil {
		testenv.Unavailable(t, testenv.Redis, err)
	}
	if got := in.Fanout.Channel(); got != "blue-deployment:events" {
		t.Fatalf("fan-out channel %q, want blue-deployment:events", got)
	}
}
