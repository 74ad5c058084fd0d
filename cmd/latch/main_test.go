package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/sqlite"
)

// run executes the latch command line in-process.
func run(t *testing.T, stdin string, env []string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	root := newRoot(strings.NewReader(stdin), &out, &errb, env)
	root.SetArgs(args)
	err = root.ExecuteContext(t.Context())
	return out.String(), errb.String(), err
}

func TestVersionAndHelp(t *testing.T) {
	out, _, err := run(t, "", nil, "version")
	if err != nil || !strings.HasPrefix(out, "latch ") {
		t.Fatalf("version: %q %v", out, err)
	}
	for _, args := range [][]string{{"--help"}, {"serve", "--help"}, {"user", "add", "--help"}, {"keys", "list", "--help"}, {"keys", "rotate", "--help"}} {
		out, _, err := run(t, "", nil, args...)
		if err != nil || !strings.Contains(out, "Usage:") {
			t.Fatalf("%v: %q %v", args, out, err)
		}
	}
	out, _, _ = run(t, "", nil, "serve", "--help")
	for _, flag := range []string{"--config", "--data-dir", "--addr", "--issuer"} {
		if !strings.Contains(out, flag) {
			t.Errorf("serve --help lacks %s", flag)
		}
	}
}

func TestUserAdd(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	out, _, err := run(t, "a good password\n", nil, "user", "add", "--data-dir", dir, "--email", "Ada@Example.com", "--password-stdin")
	if err != nil || !strings.Contains(out, "created user u_") || !strings.Contains(out, "ada@example.com") {
		t.Fatalf("user add: %q %v", out, err)
	}
	_, _, err = run(t, "a good password\n", nil, "user", "add", "--data-dir", dir, "--email", "ada@example.com", "--password-stdin")
	if err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("duplicate: %v", err)
	}
	_, _, err = run(t, "short\n", nil, "user", "add", "--data-dir", dir, "--email", "bob@example.com", "--password-stdin")
	if err == nil || !strings.Contains(err.Error(), "password rejected") {
		t.Fatalf("weak password: %v", err)
	}
	_, _, err = run(t, "a good password\n", nil, "user", "add", "--data-dir", dir, "--email", "bob@example.com")
	if err == nil || !strings.Contains(err.Error(), "--password-stdin") {
		t.Fatalf("without --password-stdin: %v", err)
	}
	_, _, err = run(t, "", nil, "user", "add", "--data-dir", dir, "--email", "bob@example.com", "--password-stdin")
	if err == nil || !strings.Contains(err.Error(), "empty") {
		t.Fatalf("empty stdin: %v", err)
	}
}

func TestKeysListAndRotate(t *testing.T) {
	dir := t.TempDir()
	out, _, err := run(t, "", nil, "keys", "list", "--data-dir", dir)
	if err != nil || strings.Count(out, "\n") != 2 || !strings.Contains(out, "active") || !strings.Contains(out, "EdDSA") {
		t.Fatalf("keys list on a fresh dir: %q %v", out, err)
	}
	out, _, err = run(t, "", nil, "keys", "rotate", "--data-dir", dir)
	if err != nil || !strings.Contains(out, "pending") || !strings.Contains(out, "active") {
		t.Fatalf("keys rotate: %q %v", out, err)
	}
	_, _, err = run(t, "", nil, "keys", "rotate", "--data-dir", dir)
	if err == nil || !strings.Contains(err.Error(), "pending") {
		t.Fatalf("second rotate while one is pending: %v", err)
	}

	// --now replaces the signing key at once (after a suspected compromise).
	dir2 := t.TempDir()
	if _, _, err := run(t, "", nil, "keys", "list", "--data-dir", dir2); err != nil {
		t.Fatal(err)
	}
	out, _, err = run(t, "", []string{"LATCH_TOKENS_ALGORITHM=ES256"}, "keys", "rotate", "--now", "--data-dir", dir2)
	if err != nil || !strings.Contains(out, "new ES256 key") {
		t.Fatalf("rotate --now: %q %v", out, err)
	}
	out, _, err = run(t, "", nil, "keys", "list", "--data-dir", dir2)
	if err != nil || strings.Count(out, "\n") != 3 || !strings.Contains(out, "retired") || !strings.Contains(out, "ES256") {
		t.Fatalf("keys list after rotate --now: %q %v", out, err)
	}
}

// keyRows parses the table of latch keys list into kid → state.
func keyRows(t *testing.T, out string) map[string]string {
	t.Helper()
	rows := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || f[0] == "KID" || strings.HasPrefix(line, "new ") || strings.HasPrefix(line, "revoked ") ||
			strings.HasPrefix(line, "remote ") || strings.HasPrefix(line, "key ") {
			continue
		}
		rows[f[0]] = f[2]
	}
	return rows
}

// onlyKid returns the one kid of rows in state.
func onlyKid(t *testing.T, rows map[string]string, state string) string {
	t.Helper()
	var kids []string
	for kid, s := range rows {
		if s == state {
			kids = append(kids, kid)
		}
	}
	if len(kids) != 1 {
		t.Fatalf("want one %s key, have %v", state, rows)
	}
	return kids[0]
}

func TestKeysRevoke(t *testing.T) {
	dir := t.TempDir()
	out, _, err := run(t, "", nil, "keys", "list", "--data-dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	stolen := onlyKid(t, keyRows(t, out), "active")

	out, _, err = run(t, "", nil, "keys", "revoke", stolen, "--data-dir", dir)
	if err != nil || !strings.Contains(out, "revoked EdDSA key "+stolen) || !strings.Contains(out, "signs from now") {
		t.Fatalf("keys revoke of the active key: %q %v", out, err)
	}
	rows := keyRows(t, out)
	if rows[stolen] != "revoked" || len(rows) != 2 {
		t.Fatalf("after revoke: %v", rows)
	}
	fresh := onlyKid(t, rows, "active")

	// The revocation is on the feed, and in the security log.
	st, err := sqlite.Open(t.Context(), filepath.Join(dir, "latch.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	feed, err := st.RevocationsAfter(t.Context(), 0, time.Now(), 100)
	if err != nil || len(feed) != 1 || feed[0].Kind != latch.RevokeKey || feed[0].Value != stolen ||
		feed[0].ExpiresAt.Before(time.Now().Add(10*time.Minute)) {
		t.Fatalf("feed after revoke: %+v %v", feed, err)
	}

	out, _, err = run(t, "", nil, "keys", "revoke", stolen, "--data-dir", dir)
	if err != nil || !strings.Contains(out, "revoked already") || onlyKid(t, keyRows(t, out), "active") != fresh {
		t.Fatalf("revoking again: %q %v", out, err)
	}
	if _, _, err := run(t, "", nil, "keys", "revoke", "not-a-kid", "--data-dir", dir); err == nil || !strings.Contains(err.Error(), "no such key") {
		t.Fatalf("revoke of an unknown kid: %v", err)
	}
	if _, _, err := run(t, "", nil, "keys", "revoke", "--data-dir", dir); err == nil {
		t.Fatal("revoke without a kid succeeded")
	}
}

// TestKeysRotateNowWithPending: rotate --now works while a scheduled
// rotation is pending, and the pending key never signs.
func TestKeysRotateNowWithPending(t *testing.T) {
	dir := t.TempDir()
	out, _, err := run(t, "", nil, "keys", "rotate", "--data-dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	pending := onlyKid(t, keyRows(t, out), "pending")
	out, _, err = run(t, "", nil, "keys", "rotate", "--now", "--data-dir", dir)
	if err != nil {
		t.Fatalf("rotate --now with a pending key: %q %v", out, err)
	}
	rows := keyRows(t, out)
	if rows[pending] != "revoked" || len(rows) != 3 {
		t.Fatalf("after rotate --now: %v (pending %s)", rows, pending)
	}
	active := onlyKid(t, rows, "active")
	if !strings.Contains(out, "new EdDSA key "+active) {
		t.Fatalf("rotate --now output: %q", out)
	}
}

func TestConfigErrorsNameTheSetting(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		env  []string
		args []string
		want []string
	}{
		{[]string{"LATCH_TOKENS_ALGORITHM=HS256"}, nil, []string{"tokens.algorithm", "LATCH_TOKENS_ALGORITHM", "EdDSA, ES256, RS256"}},
		{[]string{"LATCH_TOKENS_ACCESS_TTL=forever"}, nil, []string{"tokens.access_ttl", "invalid duration"}},
		{nil, []string{"--addr", "nonsense"}, []string{"addr", "HOST:PORT"}},
		{nil, []string{"--issuer", "ftp://x"}, []string{"issuer", "http or https"}},
		{[]string{"LATCH_NOT_A_SETTING=1"}, nil, []string{"LATCH_NOT_A_SETTING", "unknown setting"}},
		{[]string{"LATCH_TOKENS_LEEWAY=1m"}, nil, []string{"tokens.leeway", "30s"}},
	}
	for _, c := range cases {
		args := append([]string{"serve", "--data-dir", dir}, c.args...)
		_, _, err := run(t, "", c.env, args...)
		if err == nil {
			t.Fatalf("%v %v: serve started", c.env, c.args)
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v %v: error %q lacks %q", c.env, c.args, err, w)
			}
		}
	}
	// An unknown key in the file is refused too.
	f := filepath.Join(dir, "latch.yaml")
	os.WriteFile(f, []byte("tokens:\n  algorithim: EdDSA\n"), 0o600)
	if _, _, err := run(t, "", nil, "serve", "--config", f); err == nil || !strings.Contains(err.Error(), "algorithim") {
		t.Fatalf("typo in file: %v", err)
	}
}

func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "latch.yaml")
	os.WriteFile(f, []byte("addr: 127.0.0.1:7001\nissuer: https://file.example\ntokens:\n  access_ttl: 2m\n  refresh_grace: 10s\n"), 0o600)
	var fl configFlags
	cmd := &cobra.Command{Use: "serve"}
	fl.register(cmd.Flags(), true)
	if err := cmd.ParseFlags([]string{"--config", f, "--addr", "127.0.0.1:7003"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := fl.load(cmd, []string{"LATCH_ADDR=127.0.0.1:7002", "LATCH_TOKENS_ACCESS_TTL=3m"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != "127.0.0.1:7003" {
		t.Errorf("addr = %s, want the flag's", cfg.Addr)
	}
	if cfg.Tokens.AccessTTL.D() != 3*time.Minute {
		t.Errorf("access_ttl = %s, want the environment's", cfg.Tokens.AccessTTL)
	}
	if cfg.Tokens.RefreshGrace.D() != 10*time.Second || cfg.Issuer != "https://file.example" {
		t.Errorf("grace %s issuer %s, want the file's", cfg.Tokens.RefreshGrace, cfg.Issuer)
	}
	if cfg.Tokens.RefreshIdleTimeout.D() != 7*24*time.Hour {
		t.Errorf("idle timeout = %s, want the default", cfg.Tokens.RefreshIdleTimeout)
	}
}

// TestServe starts `latch serve` on a free port and walks the README's
// curl example against it.
func TestServe(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "latch-data")
	_, stderr, err := run(t, "a good password\n", nil, "user", "add", "--data-dir", dir, "--email", "ada@example.com", "--password-stdin")
	if err != nil {
		t.Fatal(err)
	}
	// The first command on a new data directory creates the KEK and says so.
	if !strings.Contains(stderr, "key-encryption key") || !strings.Contains(stderr, "LATCH_KEK") {
		t.Errorf("no KEK warning on first use:\n%s", stderr)
	}
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(t.Context())
	var out, errb syncBuf
	root := newRoot(strings.NewReader(""), &out, &errb, nil)
	root.SetArgs([]string{"serve", "--data-dir", dir, "--addr", addr})
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	base := "http://" + addr
	waitUp(t, base+"/healthz", done)

	res, err := http.Post(base+"/v1/auth/login", "application/json", strings.NewReader(`{"email":"ada@example.com","password":"a good password"}`))
	if err != nil {
		t.Fatal(err)
	}
	var tok map[string]any
	json.NewDecoder(res.Body).Decode(&tok)
	res.Body.Close()
	if res.StatusCode != 200 || tok["access_token"] == nil {
		t.Fatalf("login: %d %v", res.StatusCode, tok)
	}
	req, _ := http.NewRequest("GET", base+"/v1/me", nil)
	req.Header.Set("Authorization", "Bearer "+tok["access_token"].(string))
	res, err = http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("me: %v %v", res, err)
	}
	res.Body.Close()

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve returned %v", err)
	}
	logs := errb.String()
	for _, want := range []string{"latch is listening", "issuer=http://" + addr, "/.well-known/jwks.json", "latch user add"} {
		if !strings.Contains(logs, want) {
			t.Errorf("serve log lacks %q:\n%s", want, logs)
		}
	}
	if strings.Contains(logs, "a good password") || strings.Contains(logs, tok["refresh_token"].(string)) {
		t.Fatal("a secret reached the log")
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitUp(t *testing.T, url string, done <-chan error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			t.Fatalf("serve exited early: %v", err)
		default:
		}
		if res, err := http.Get(url); err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s did not come up", url)
}
