// Package interop_test runs clients that nobody here wrote against a real
// Latch: the npm packages jose (JWT verification through the JWKS, across
// key rotations), oauth4webapi and openid-client (discovery, the token
// endpoint, revocation, introspection, refresh) — and, as relying parties
// of the OpenID Connect code flow driven through Latch's pages in headless
// Chromium, github.com/coreos/go-oidc/v3 with golang.org/x/oauth2
// (oidc_test.go) and openid-client (js/oidc.test.mjs). The JavaScript side
// lives in js/; `npm ci` there installs the pinned versions from its lock
// file. Without node or js/node_modules the node tests skip, and without
// Chromium the browser tests skip, unless LATCH_TEST_REQUIRE names "node"
// or "browser", which makes them fail.
package interop_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchauth/latch/auth"
	"github.com/latchauth/latch/config"
	"github.com/latchauth/latch/instance"
	"github.com/latchauth/latch/internal/testenv"
)

const (
	// nodeService is the LATCH_TEST_REQUIRE name of these tests' runtime.
	nodeService = testenv.Node
	jsDir       = "js"
	nodeTimeout = 3 * time.Minute

	userEmail    = "ada@example.com"
	userPassword = "correct horse battery staple"
	svcID        = "svc"
	svcSecret    = "svc-9MW4cSa3ybPraKFZIhjkjGlZCuZjAASFf0D_Y54nB1o" // random: weak secrets are refused
	appID        = "app"
	// audience differs from the issuer so that a verifier which confuses
	// the two fails.
	audience = "https://api.interop.test"
)

// latch is one Latch instance behind a real HTTP server whose URL is the
// issuer, so that discovery and the JWKS URL resolve to it.
type latch struct {
	t      *testing.T
	in     *instance.Instance
	srv    *httptest.Server
	issuer string
	// offset is added to the wall clock to make the instance's clock.
	offset atomic.Int64
	logs   *syncBuffer
}

// start opens an instance with the given signing algorithm, a user, a
// confidential client (svc, scopes read and write) and a public client
// (app).
func start(t *testing.T, alg string) *latch {
	t.Helper()
	l := &latch{t: t, logs: &syncBuffer{}}
	// The listener comes first: the issuer must be the URL clients fetch.
	l.srv = httptest.NewUnstartedServer(http.NotFoundHandler())
	l.issuer = "http://" + l.srv.Listener.Addr().String()

	cfg := config.Defaults()
	cfg.DataDir = filepath.Join(t.TempDir(), "latch-data")
	cfg.Addr = l.srv.Listener.Addr().String()
	cfg.Issuer = l.issuer
	cfg.Audience = audience
	cfg.Tokens.Algorithm = alg
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	in, err := instance.Open(t.Context(), cfg, instance.Options{
		Log: slog.New(slog.NewTextHandler(l.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now: func() time.Time { return time.Now().Add(time.Duration(l.offset.Load())) },
	})
	if err != nil {
		t.Fatalf("open instance: %v", err)
	}
	l.in = in
	l.srv.Config.Handler = in.Server
	l.srv.Start()
	t.Cleanup(func() {
		l.srv.Close()
		in.Close()
		if t.Failed() {
			t.Logf("server log:\n%s", l.logs.String())
		}
	})

	ctx := t.Context()
	if _, err := in.Auth.CreateUser(ctx, userEmail, userPassword, auth.Device{}); err != nil {
		t.Fatalf("create user: %v", err)
	}
	if _, err := in.Auth.CreateClient(ctx, auth.NewClient{ID: svcID, Secret: svcSecret, Scopes: []string{"read", "write"}}); err != nil {
		t.Fatalf("create client %s: %v", svcID, err)
	}
	if _, err := in.Auth.CreateClient(ctx, auth.NewClient{ID: appID, Public: true}); err != nil {
		t.Fatalf("create client %s: %v", appID, err)
	}
	return l
}

// tokens is the token response of POST /v1/auth/login.
type tokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	SessionID    string `json:"session_id"`
}

// login signs the user in through the HTTP API for the public client, as a
// first-party app does.
func (l *latch) login() (tokens, []byte, error) {
	body, _ := json.Marshal(map[string]string{"email": userEmail, "password": userPassword, "client_id": appID})
	res, err := l.srv.Client().Post(l.issuer+"/v1/auth/login", "application/json", bytes.NewReader(body))
	if err != nil {
		return tokens{}, nil, err
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		return tokens{}, raw, fmt.Errorf("login: %d %s", res.StatusCode, raw)
	}
	var tok tokens
	if err := json.Unmarshal(raw, &tok); err != nil || tok.AccessToken == "" || tok.RefreshToken == "" {
		return tokens{}, raw, fmt.Errorf("login: unexpected answer %s (%v)", raw, err)
	}
	return tok, raw, nil
}

func (l *latch) mustLogin() tokens {
	l.t.Helper()
	tok, _, err := l.login()
	if err != nil {
		l.t.Fatal(err)
	}
	return tok
}

// env is what every JavaScript test reads.
func (l *latch) env(alg string) map[string]string {
	return map[string]string{
		"LATCH_ISSUER":           l.issuer,
		"LATCH_AUDIENCE":         audience,
		"LATCH_ALG":              alg,
		"LATCH_CLIENT_ID":        svcID,
		"LATCH_CLIENT_SECRET":    svcSecret,
		"LATCH_PUBLIC_CLIENT_ID": appID,
	}
}

// TestJose: jose verifies Latch access tokens through the JWKS, for every
// signing algorithm, with a token signed before an immediate key rotation
// and one signed after it.
func TestJose(t *testing.T) {
	requireNode(t)
	for _, alg := range []string{"EdDSA", "ES256", "RS256"} {
		t.Run(alg, func(t *testing.T) {
			l := start(t, alg)
			before := l.mustLogin()
			next, err := l.in.Ring.Rotate(t.Context(), true)
			if err != nil {
				t.Fatalf("rotate: %v", err)
			}
			after := l.mustLogin()
			if k := kidOf(t, after.AccessToken); k != next.ID || k == kidOf(t, before.AccessToken) {
				t.Fatalf("kid before the rotation %s, after %s, want the new key %s", kidOf(t, before.AccessToken), k, next.ID)
			}
			env := l.env(alg)
			env["LATCH_TOKEN"] = before.AccessToken
			env["LATCH_TOKEN_SID"] = before.SessionID
			env["LATCH_TOKEN_NEW"] = after.AccessToken
			runNode(t, env, "jose.test.mjs")
		})
	}
}

// TestOAuthClients: oauth4webapi and openid-client discover Latch, get
// tokens with client_credentials (client_secret_basic and
// client_secret_post), introspect and revoke them, and refresh a public
// client's refresh token.
func TestOAuthClients(t *testing.T) {
	requireNode(t)
	l := start(t, "EdDSA")
	env := l.env("EdDSA")
	// One refresh token per library: each refresh rotates it.
	env["LATCH_REFRESH_TOKEN"] = l.mustLogin().RefreshToken
	env["LATCH_REFRESH_TOKEN_2"] = l.mustLogin().RefreshToken
	runNode(t, env, "oauth.test.mjs")
}

// TestJWKSCacheAcrossScheduledRotation: a jose JWKS cache filled before a
// scheduled rotation's key starts signing verifies that key's tokens
// without fetching the JWKS again — the new key was published in advance.
// The JavaScript side drives the steps through a control server.
func TestJWKSCacheAcrossScheduledRotation(t *testing.T) {
	requireNode(t)
	l := start(t, "EdDSA")
	env := l.env("EdDSA")
	env["LATCH_TOKEN"] = l.mustLogin().AccessToken
	env["LATCH_CONTROL"] = l.control(t)
	runNode(t, env, "rotation.test.mjs")
}

// control serves the steps the rotation test drives, on its own server
// (not on Latch's origin):
//
//	POST /rotate           start a scheduled rotation → {"kid","not_before"} (Unix seconds)
//	POST /advance?seconds= move the instance's clock forward → {"now"}
//	POST /login            sign in → the login token response, plus "now"
func (l *latch) control(t *testing.T) string {
	mux := http.NewServeMux()
	reply := func(w http.ResponseWriter, v map[string]any) {
		v["now"] = time.Now().Add(time.Duration(l.offset.Load())).Unix()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(v)
	}
	fail := func(w http.ResponseWriter, err error) {
		t.Errorf("control: %v", err)
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
	mux.HandleFunc("POST /rotate", func(w http.ResponseWriter, r *http.Request) {
		k, err := l.in.Ring.Rotate(r.Context(), false)
		if err != nil {
			fail(w, err)
			return
		}
		reply(w, map[string]any{"kid": k.ID, "not_before": k.NotBefore.Unix()})
	})
	mux.HandleFunc("POST /advance", func(w http.ResponseWriter, r *http.Request) {
		d, err := time.ParseDuration(r.URL.Query().Get("seconds") + "s")
		if err != nil || d <= 0 {
			fail(w, fmt.Errorf("advance: bad seconds %q", r.URL.Query().Get("seconds")))
			return
		}
		l.offset.Add(int64(d))
		reply(w, map[string]any{})
	})
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		_, raw, err := l.login()
		if err != nil {
			fail(w, err)
			return
		}
		var v map[string]any
		json.Unmarshal(raw, &v)
		reply(w, v)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

func kidOf(t *testing.T, tok string) string {
	t.Helper()
	h, _, _ := strings.Cut(tok, ".")
	raw, err := base64.RawURLEncoding.DecodeString(h)
	var hdr struct{ Kid string }
	if err == nil {
		err = json.Unmarshal(raw, &hdr)
	}
	if err != nil {
		t.Fatalf("token header: %v", err)
	}
	return hdr.Kid
}

// requireNode ends the test unless node and the pinned packages in
// js/node_modules are there (`npm ci` in interop/js installs them).
func requireNode(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		testenv.Unavailable(t, nodeService, err)
	}
	var pkg struct {
		DevDependencies map[string]string `json:"devDependencies"`
	}
	raw, err := os.ReadFile(filepath.Join(jsDir, "package.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &pkg); err != nil {
		t.Fatalf("js/package.json: %v", err)
	}
	for name, want := range pkg.DevDependencies {
		var got struct{ Version string }
		raw, err := os.ReadFile(filepath.Join(jsDir, "node_modules", name, "package.json"))
		if err == nil {
			err = json.Unmarshal(raw, &got)
		}
		if err == nil && got.Version != want {
			err = fmt.Errorf("%s %s is installed, package.json pins %s", name, got.Version, want)
		}
		if err != nil {
			testenv.Unavailable(t, nodeService, fmt.Errorf("%w (run `npm ci` in interop/js)", err))
		}
	}
}

// runNode runs the JavaScript test files under node's test runner in js/,
// with env added to the environment, logging its output, and fails the
// test if node fails.
func runNode(t *testing.T, env map[string]string, files ...string) {
	t.Helper()
	startNode(t, env, files...).wait()
}

// nodeRun is a node process started by startNode.
type nodeRun struct {
	t     *testing.T
	files []string
	ctx   context.Context
	start time.Time
	out   *lineLogger
	// done is closed when the process has exited; err is then its result.
	done chan struct{}
	err  error
}

// startNode starts node's test runner on files in js/, with env added to
// the environment and its output logged. The test's end stops the
// process if it is still running.
func startNode(t *testing.T, env map[string]string, files ...string) *nodeRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), nodeTimeout)
	args := append([]string{"--test", "--test-reporter=spec"}, files...)
	cmd := exec.CommandContext(ctx, "node", args...)
	cmd.Dir = jsDir
	cmd.Env = append(os.Environ(), "NO_COLOR=1", "NODE_NO_WARNINGS=1")
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	n := &nodeRun{t: t, files: files, ctx: ctx, start: time.Now(), out: &lineLogger{t: t}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = n.out, n.out
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		testenv.Unavailable(t, nodeService, err)
	}
	go func() {
		n.err = cmd.Wait()
		n.out.flush()
		close(n.done)
	}()
	t.Cleanup(func() {
		cancel()
		<-n.done
	})
	return n
}

// wait waits for node to exit and fails the test if it failed.
func (n *nodeRun) wait() {
	n.t.Helper()
	<-n.done
	var exit *exec.ExitError
	switch {
	case n.err == nil:
	case n.ctx.Err() != nil:
		n.t.Fatalf("node %s: no result within %s", strings.Join(n.files, " "), nodeTimeout)
	case errors.As(n.err, &exit):
		n.t.Fatalf("node %s failed (%v) after %s; its output is above", strings.Join(n.files, " "), n.err, time.Since(n.start).Round(time.Millisecond))
	default:
		testenv.Unavailable(n.t, nodeService, n.err)
	}
}

// lineLogger passes a process's output to t.Log line by line.
type lineLogger struct {
	t   *testing.T
	mu  sync.Mutex
	buf []byte
}

func (w *lineLogger) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.t.Log(string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
	return len(p), nil
}

func (w *lineLogger) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.t.Log(string(w.buf))
		w.buf = nil
	}
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
