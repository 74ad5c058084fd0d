package instance_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchauth/latch/auth"
	"github.com/latchauth/latch/config"
	"github.com/latchauth/latch/instance"
	"github.com/latchauth/latch/internal/testenv"
)

// harness is one wired Latch instance behind a real HTTP server, on a real
// SQLite database in a temporary directory.
type harness struct {
	t     testing.TB
	dir   string
	cfg   config.Config
	clock *testenv.Clock
	in    *instance.Instance
	srv   *httptest.Server
	logs  *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testConfig is the default configuration on a fresh data directory.
func testConfig(t testing.TB, dir string, mutate func(*config.Config)) config.Config {
	t.Helper()
	cfg := config.Defaults()
	cfg.DataDir = dir
	cfg.Issuer = "http://latch.test"
	// Tests move the clock by days without a follower running; the
	// fail-safe policy has its own test (TestStaleRevocationData).
	cfg.Revocation.MaxStale = 0
	if mutate != nil {
		mutate(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg
}

// start opens an instance on dir (a new temporary directory when empty).
func start(t testing.TB, dir string, mutate func(*config.Config)) *harness {
	t.Helper()
	if dir == "" {
		dir = filepath.Join(t.TempDir(), "latch-data")
	}
	return startAt(t, dir, time.Now().UTC(), mutate)
}

// startAt is start with the instance clock set to at, for a second
// instance that comes up later on the same data directory.
func startAt(t testing.TB, dir string, at time.Time, mutate func(*config.Config)) *harness {
	t.Helper()
	h := &harness{t: t, dir: dir, clock: testenv.NewClock(at), logs: &syncBuffer{}}
	h.cfg = testConfig(t, dir, mutate)
	in, err := instance.Open(t.Context(), h.cfg, instance.Options{
		Log: slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now: h.clock.Now,
	})
	if err != nil {
		t.Fatalf("open instance: %v", err)
	}
	h.in = in
	h.srv = httptest.NewServer(in.Server)
	t.Cleanup(h.close)
	return h
}

func (h *harness) close() {
	if h.srv != nil {
		h.srv.Close()
		h.srv = nil
	}
	if h.in != nil {
		h.in.Close()
		h.in = nil
	}
	if out := h.logs.String(); h.t.Failed() && out != "" {
		h.t.Logf("server log:\n%s", out)
	}
}

// addUser creates a user through the service, as `latch user add` does.
func (h *harness) addUser(email, pw string) string {
	h.t.Helper()
	u, err := h.in.Auth.CreateUser(context.Background(), email, pw, auth.Device{})
	if err != nil {
		h.t.Fatalf("create user %s: %v", email, err)
	}
	return u.ID
}

// response is a decoded answer.
type response struct {
	code   int
	header http.Header
	raw    []byte
	body   map[string]any
}

func (r response) str(k string) string {
	s, _ := r.body[k].(string)
	return s
}

// do sends a request; hdr is a list of name, value pairs. A body is sent
// as application/json unless hdr sets Content-Type.
func (h *harness) do(method, path, body string, hdr ...string) response {
	h.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, h.srv.URL+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	r := response{code: res.StatusCode, header: res.Header, raw: raw}
	if len(raw) > 0 && strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &r.body); err != nil {
			h.t.Fatalf("%s %s: body is not a JSON object: %v: %s", method, path, err, raw)
		}
	}
	return r
}

func jsonBody(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// login signs in and returns the token response, failing the test on any
// other answer.
func (h *harness) login(email, pw string, hdr ...string) response {
	h.t.Helper()
	r := h.do("POST", "/v1/auth/login", jsonBody(map[string]string{"email": email, "password": pw}), hdr...)
	if r.code != http.StatusOK {
		h.t.Fatalf("login %s: %d %s", email, r.code, r.raw)
	}
	return r
}

func (h *harness) refresh(tok string) response {
	h.t.Helper()
	return h.do("POST", "/v1/auth/refresh", jsonBody(map[string]string{"refresh_token": tok}))
}

func bearer(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

// expect fails unless r has the status code and, if errCode is set, the
// JSON error code.
func expect(t *testing.T, what string, r response, code int, errCode string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("%s: status %d, want %d: %s", what, r.code, code, r.raw)
	}
	if errCode != "" && r.str("error") != errCode {
		t.Fatalf("%s: error %q, want %q: %s", what, r.str("error"), errCode, r.raw)
	}
}

// segment decodes one part of a compact JWS.
func segment(t *testing.T, tok string, i int) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		t.Fatalf("token part %d: %v", i, err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("token part %d: %v", i, err)
	}
	return m
}
