package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/config"
	"github.com/latchauth/latch/instance"
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

// newDeployment creates a data directory the way a first start does
// (user add is the one offline command that may create one).
func newDeployment(t *testing.T, env []string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "latch-data")
	if _, _, err := run(t, "a good password\n", env, "user", "add", "--data-dir", dir, "--email", "first@example.com", "--password-stdin"); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestKeysListAndRotate(t *testing.T) {
	dir := newDeployment(t, nil)
	out, _, err := run(t, "", nil, "keys", "list", "--data-dir", dir)
	if err != nil || strings.Count(out, "\n") != 3 || !strings.Contains(out, "FAMILY") {
		t.Fatalf("keys list on a fresh dir: %q %v", out, err)
	}
	access, id := keyRows(t, out, "access"), keyRows(t, out, "id")
	if len(access) != 1 || len(id) != 1 || !strings.Contains(out, "access  EdDSA  active") || !strings.Contains(out, "id      RS256  active") {
		t.Fatalf("keys list on a fresh dir: want an active EdDSA access key and an active RS256 id key: %q", out)
	}
	// Every family rotates.
	out, _, err = run(t, "", nil, "keys", "rotate", "--data-dir", dir)
	if err != nil || !strings.Contains(out, "new EdDSA access key") || !strings.Contains(out, "new RS256 id key") {
		t.Fatalf("keys rotate: %q %v", out, err)
	}
	for _, fam := range []string{"access", "id"} {
		onlyKid(t, keyRows(t, out, fam), "pending")
		onlyKid(t, keyRows(t, out, fam), "active")
	}
	_, _, err = run(t, "", nil, "keys", "rotate", "--data-dir", dir)
	if err == nil || !strings.Contains(err.Error(), "pending") || !strings.Contains(err.Error(), "access key") || !strings.Contains(err.Error(), "id key") {
		t.Fatalf("second rotate while keys are pending: %v", err)
	}

	// --now replaces the signing keys at once (after a suspected compromise).
	dir2 := newDeployment(t, nil)
	out, _, err = run(t, "", []string{"LATCH_TOKENS_ALGORITHM=ES256"}, "keys", "rotate", "--now", "--data-dir", dir2)
	if err != nil || !strings.Contains(out, "new ES256 access key") || !strings.Contains(out, "new RS256 id key") {
		t.Fatalf("rotate --now: %q %v", out, err)
	}
	out, _, err = run(t, "", nil, "keys", "list", "--data-dir", dir2)
	if err != nil || strings.Count(out, "\n") != 5 || !strings.Contains(out, "retired") || !strings.Contains(out, "ES256") {
		t.Fatalf("keys list after rotate --now: %q %v", out, err)
	}
}

// TestKeysRotateOneFamily: --family rotates that family alone, and names
// the accepted families when it knows none.
func TestKeysRotateOneFamily(t *testing.T) {
	dir := newDeployment(t, nil)
	out, _, err := run(t, "", nil, "keys", "rotate", "--family", "id", "--data-dir", dir)
	if err != nil || !strings.Contains(out, "new RS256 id key") || strings.Contains(out, "access key") {
		t.Fatalf("rotate --family id: %q %v", out, err)
	}
	if access, id := keyRows(t, out, "access"), keyRows(t, out, "id"); len(access) != 1 || len(id) != 2 {
		t.Fatalf("after rotate --family id: access %v, id %v", access, id)
	}
	// The access family still rotates: nothing of it is pending.
	out, _, err = run(t, "", nil, "keys", "rotate", "--family", "access", "--data-dir", dir)
	if err != nil || !strings.Contains(out, "new EdDSA access key") || len(keyRows(t, out, "id")) != 2 {
		t.Fatalf("rotate --family access: %q %v", out, err)
	}
	_, _, err = run(t, "", nil, "keys", "rotate", "--family", "gateway", "--data-dir", dir)
	if err == nil || !strings.Contains(err.Error(), "no such key family") || !strings.Contains(err.Error(), "access, id") {
		t.Fatalf("rotate --family gateway: %v", err)
	}
}

// keyRows parses the table of latch keys list into kid → state, for the
// keys of family.
func keyRows(t *testing.T, out, family string) map[string]string {
	t.Helper()
	rows := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || f[0] == "KID" || strings.HasPrefix(line, "new ") || strings.HasPrefix(line, "revoked ") ||
			strings.HasPrefix(line, "remote ") || strings.HasPrefix(line, "key ") || f[1] != family {
			continue
		}
		rows[f[0]] = f[3]
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
	dir := newDeployment(t, nil)
	out, _, err := run(t, "", nil, "keys", "list", "--data-dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	stolen := onlyKid(t, keyRows(t, out, "access"), "active")
	idKid := onlyKid(t, keyRows(t, out, "id"), "active")

	out, _, err = run(t, "", nil, "keys", "revoke", "--data-dir", dir, "--", stolen)
	if err != nil || !strings.Contains(out, "revoked EdDSA access key "+stolen) || !strings.Contains(out, "new EdDSA access key") {
		t.Fatalf("keys revoke of the active key: %q %v", out, err)
	}
	rows := keyRows(t, out, "access")
	if rows[stolen] != "revoked" || len(rows) != 2 {
		t.Fatalf("after revoke: %v", rows)
	}
	fresh := onlyKid(t, rows, "active")
	// The id family is left alone.
	if id := keyRows(t, out, "id"); len(id) != 1 || id[idKid] != "active" {
		t.Fatalf("revoking the access key changed the id family: %v", id)
	}

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

	out, _, err = run(t, "", nil, "keys", "revoke", "--data-dir", dir, "--", stolen)
	if err != nil || !strings.Contains(out, "revoked already") || onlyKid(t, keyRows(t, out, "access"), "active") != fresh {
		t.Fatalf("revoking again: %q %v", out, err)
	}
	// Revoking the id key rotates the id family only.
	out, _, err = run(t, "", nil, "keys", "revoke", "--data-dir", dir, "--", idKid)
	if err != nil || !strings.Contains(out, "revoked RS256 id key "+idKid) || !strings.Contains(out, "new RS256 id key") {
		t.Fatalf("keys revoke of the id key: %q %v", out, err)
	}
	if id := keyRows(t, out, "id"); len(id) != 2 || id[idKid] != "revoked" || onlyKid(t, keyRows(t, out, "access"), "active") != fresh {
		t.Fatalf("after revoking the id key: %q", out)
	}
	if _, _, err := run(t, "", nil, "keys", "revoke", "--data-dir", dir, "-ZdD1WAZT6wPymOONAxa1QgB6rBhKjNum2xZ9y6ib0g"); err == nil || !strings.Contains(err.Error(), "goes after '--'") {
		t.Errorf("a kid that begins with '-' without '--': %v, want a hint to use --", err)
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
	dir := newDeployment(t, nil)
	out, _, err := run(t, "", nil, "keys", "rotate", "--data-dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	pending := onlyKid(t, keyRows(t, out, "access"), "pending")
	out, _, err = run(t, "", nil, "keys", "rotate", "--now", "--data-dir", dir)
	if err != nil {
		t.Fatalf("rotate --now with a pending key: %q %v", out, err)
	}
	rows := keyRows(t, out, "access")
	if rows[pending] != "revoked" || len(rows) != 3 {
		t.Fatalf("after rotate --now: %v (pending %s)", rows, pending)
	}
	active := onlyKid(t, rows, "active")
	if !strings.Contains(out, "new EdDSA access key "+active) {
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
		{nil, []string{"--issuer", "ftp://x"}, []string{"invalid setting issuer (from the flag --issuer)", "http or https"}},
		{[]string{"LATCH_ISSUER=ftp://y"}, nil, []string{"invalid setting issuer (from LATCH_ISSUER)"}},
		{[]string{"LATCH_TOKENS_ACCESS_TTL=48h"}, nil, []string{"48h must be between"}},
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
	// An unknown key in the file is refused too, by its line, with the key
	// it probably meant.
	t.Chdir(dir)
	os.WriteFile("latch.yaml", []byte("addr: 127.0.0.1:0\ntokens:\n  acess_ttl: 5m\n"), 0o600)
	want := "unknown setting tokens.acess_ttl in latch.yaml line 3; did you mean tokens.access_ttl?"
	if _, _, err := run(t, "", nil, "serve", "--config", "latch.yaml"); err == nil || err.Error() != want {
		t.Fatalf("typo in file: %v, want %q", err, want)
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

// TestReadOnlyCommandsCreateNothing: a mistyped --data-dir (or none, in a
// directory without a deployment) fails and creates nothing.
func TestReadOnlyCommandsCreateNothing(t *testing.T) {
	base := t.TempDir()
	t.Chdir(base)
	typo := filepath.Join(base, "latch-dta")
	empty := filepath.Join(base, "empty")
	if err := os.Mkdir(empty, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"keys", "list", "--data-dir", typo},
		{"keys", "rotate", "--data-dir", typo},
		{"keys", "rotate", "--now", "--data-dir", typo},
		{"client", "list", "--data-dir", typo},
		{"keys", "list"},
		{"client", "list"},
		{"keys", "list", "--data-dir", empty},
	} {
		dir := typo
		if len(args) == 2 {
			dir = "./latch-data"
		} else if args[len(args)-1] == empty {
			dir = empty
		}
		_, _, err := run(t, "", nil, args...)
		want := "no Latch data directory at " + dir + " (run latch serve first, or check --data-dir)"
		if err == nil || err.Error() != want {
			t.Errorf("%v: error %v, want %q", args, err, want)
		}
	}
	out, _, err := run(t, "", nil, "config")
	if err != nil || !strings.Contains(out, "tokens.access_ttl") {
		t.Fatalf("config: %q %v", out, err)
	}
	entries, _ := os.ReadDir(base)
	if len(entries) != 1 || entries[0].Name() != "empty" {
		t.Fatalf("read-only commands created %v", entries)
	}
	if inner, _ := os.ReadDir(empty); len(inner) != 0 {
		t.Fatalf("read-only commands wrote into an empty directory: %v", inner)
	}
}

// TestReadOnlyCommandsNeedTheKEK: a deployment whose KEK file is missing
// is not given a new one by keys list (that KEK could read no key).
func TestReadOnlyCommandsNeedTheKEK(t *testing.T) {
	dir := newDeployment(t, nil)
	if err := os.Remove(filepath.Join(dir, "kek")); err != nil {
		t.Fatal(err)
	}
	_, _, err := run(t, "", nil, "keys", "list", "--data-dir", dir)
	if err == nil || !strings.Contains(err.Error(), "no key-encryption key at") {
		t.Fatalf("keys list without a KEK: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "kek")); !os.IsNotExist(err) {
		t.Fatalf("keys list created a KEK: %v", err)
	}
}

// TestServeBusyPortCreatesNothing: serve binds its port before it creates
// the data directory, the KEK or a signing key.
func TestServeBusyPortCreatesNothing(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dir := filepath.Join(t.TempDir(), "latch-data")
	_, _, err = run(t, "", nil, "serve", "--data-dir", dir, "--addr", ln.Addr().String())
	if err == nil || !strings.Contains(err.Error(), "listen on "+ln.Addr().String()) {
		t.Fatalf("serve on a busy port: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("serve on a busy port created %s: %v", dir, err)
	}
}

// TestStoreAttrs: the start-up log names the store actually used; for
// PostgreSQL its host and database, never its password.
func TestStoreAttrs(t *testing.T) {
	cfg := config.Defaults()
	cfg.Store = "postgres://latch:s3cret-pw@db.example:5433/auth?sslmode=require&password=other-pw"
	got := fmt.Sprint(instance.StoreAttrs(cfg))
	for _, w := range []string{"store postgres", "host db.example:5433", "db auth", "user latch"} {
		if !strings.Contains(got, w) {
			t.Errorf("postgres attrs %s lack %q", got, w)
		}
	}
	for _, bad := range []string{"s3cret", "other-pw", "data_dir", "latch-data"} {
		if strings.Contains(got, bad) {
			t.Errorf("postgres attrs %s contain %q", got, bad)
		}
	}
	cfg.Store = ""
	if got := fmt.Sprint(instance.StoreAttrs(cfg)); got != "[store sqlite data_dir ./latch-data]" {
		t.Errorf("sqlite attrs %s", got)
	}
}

// TestConfigListsDurationsOneWay: `latch config` writes every default
// duration in one notation (5m, 30s, 7d), never Go's 5m0s.
func TestConfigListsDurationsOneWay(t *testing.T) {
	out, _, err := run(t, "", nil, "config")
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{"tokens.access_ttl": "5m", "tokens.refresh_idle_timeout": "7d", "tokens.refresh_grace": "30s", "keys.jwks_max_age": "15m", "login.lockout": "15m", "password.max_wait": "2s"} {
		found := false
		for line := range strings.SplitSeq(out, "\n") {
			if f := strings.Fields(line); len(f) >= 3 && f[0] == key {
				found = true
				if f[2] != want {
					t.Errorf("%s default %q, want %q", key, f[2], want)
				}
			}
		}
		if !found {
			t.Errorf("config lacks %s", key)
		}
	}
	if strings.Contains(out, "m0s") || strings.Contains(out, "h0m") {
		t.Errorf("config mixes notations:\n%s", out)
	}
}

// serving is a `latch serve` running in-process.
type serving struct {
	base string
	logs *syncBuf
	stop func()
}

func startServe(t *testing.T, env []string, args ...string) *serving {
	t.Helper()
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(t.Context())
	var out syncBuf
	logs := &syncBuf{}
	root := newRoot(strings.NewReader(""), &out, logs, env)
	root.SetArgs(append([]string{"serve", "--addr", addr}, args...))
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	s := &serving{base: "http://" + addr, logs: logs}
	waitUp(t, s.base+"/healthz", done)
	stopped := false
	s.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve returned %v", err)
		}
	}
	t.Cleanup(s.stop)
	return s
}

func (s *serving) login(t *testing.T, email, password string) int {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"email": email, "password": password})
	res, err := http.Post(s.base+"/v1/auth/login", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// TestDemoLeavesNoCredential: serve --demo keeps its user and client in a
// throw-away directory; the configured data directory is never created,
// and after the demo the password shown on its page signs in nowhere.
func TestDemoLeavesNoCredential(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "latch-data")
	demo := startServe(t, nil, "--demo", "--data-dir", dir)
	res, err := http.Get(demo.base + "/demo")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	m := regexp.MustCompile(`id="demo-password">([^<]+)<`).FindSubmatch(page)
	if m == nil {
		t.Fatalf("no demo password on the demo page:\n%s", page)
	}
	pw := string(m[1])
	if code := demo.login(t, "demo@latch.test", pw); code != 200 {
		t.Fatalf("demo login during the demo: %d", code)
	}
	scratch := regexp.MustCompile(`demo_dir=(\S+)`).FindStringSubmatch(demo.logs.String())
	if scratch == nil {
		t.Fatalf("the demo does not log its directory:\n%s", demo.logs)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("serve --demo created the configured data directory: %v", err)
	}
	demo.stop()
	if _, err := os.Stat(scratch[1]); !os.IsNotExist(err) {
		t.Fatalf("the demo directory %s survived the demo: %v", scratch[1], err)
	}

	real := startServe(t, nil, "--data-dir", dir)
	if code := real.login(t, "demo@latch.test", pw); code != 401 {
		t.Fatalf("the demo password after the demo: %d, want 401", code)
	}
	real.stop()
	out, _, err := run(t, "", nil, "client", "list", "--data-dir", dir)
	if err != nil || strings.Contains(out, "\ndemo ") {
		t.Fatalf("client list after the demo: %q %v", out, err)
	}
	if _, _, err := run(t, "another good password\n", nil, "user", "add", "--data-dir", dir, "--email", "demo@latch.test", "--password-stdin"); err != nil {
		t.Fatalf("a demo user exists after the demo: %v", err)
	}
}

// TestServeRetiresAnEarlierDemoUser: a data directory in which an earlier
// version's --demo left its user and client: the next start disarms the
// user, whose password was shown on a web page.
func TestServeRetiresAnEarlierDemoUser(t *testing.T) {
	dir := newDeployment(t, nil)
	if _, _, err := run(t, "", nil, "client", "add", "--data-dir", dir, "--id", "demo", "--public", "--delivery", "cookie"); err != nil {
		t.Fatal(err)
	}
	const pw = "demo-shown-on-a-page"
	if _, _, err := run(t, pw+"\n", nil, "user", "add", "--data-dir", dir, "--email", "demo@latch.test", "--password-stdin"); err != nil {
		t.Fatal(err)
	}
	s := startServe(t, nil, "--data-dir", dir)
	if code := s.login(t, "demo@latch.test", pw); code != 401 {
		t.Fatalf("the earlier demo password: %d, want 401", code)
	}
	if code := s.login(t, "first@example.com", "a good password"); code != 200 {
		t.Fatalf("a real user after retiring the demo: %d", code)
	}
	if !strings.Contains(s.logs.String(), "earlier `latch serve --demo`") {
		t.Errorf("no warning about the earlier demo:\n%s", s.logs)
	}
	s.stop()
	// Done once: the next start neither warns nor revokes again.
	again := startServe(t, nil, "--data-dir", dir)
	again.stop()
	if strings.Contains(again.logs.String(), "earlier `latch serve --demo`") {
		t.Errorf("the demo user was retired again at the next start:\n%s", again.logs)
	}
}

// TestServeOnPostgresLogsTheStore: on PostgreSQL the start-up log names
// the database (host and name, never the password) instead of a data
// directory that is not used, and no data directory is created.
func TestServeOnPostgresLogsTheStore(t *testing.T) {
	u, env, _, _ := postgresDeployment(t, "latch_cmd_", "pw-never-logged")
	s := startServe(t, env)
	s.stop()
	logs := s.logs.String()
	for _, w := range []string{"store=postgres", "host=" + u.Host, "db=" + strings.TrimPrefix(u.Path, "/")} {
		if !strings.Contains(logs, w) {
			t.Errorf("start-up log lacks %q:\n%s", w, logs)
		}
	}
	for _, bad := range []string{"pw-never-logged", "data_dir=", "latch-data"} {
		if strings.Contains(logs, bad) {
			t.Errorf("start-up log contains %q:\n%s", bad, logs)
		}
	}
	if entries, _ := os.ReadDir("."); len(entries) != 0 {
		t.Errorf("serve on PostgreSQL created %v in the working directory", entries)
	}
}

// TestDemoIgnoresTheConfiguredStore: --demo never opens the configured
// store or Redis (here unreachable ones): it runs on its own SQLite.
func TestDemoIgnoresTheConfiguredStore(t *testing.T) {
	dead := freeAddr(t) // nothing listens there
	env := []string{"LATCH_DATABASE_URL=postgres://latch:pw@" + dead + "/latch?connect_timeout=1", "LATCH_REDIS_URL=redis://" + dead}
	s := startServe(t, env, "--demo")
	if logs := s.logs.String(); !strings.Contains(logs, "store=sqlite") || strings.Contains(logs, "redis") {
		t.Errorf("the demo used the configured store or Redis:\n%s", logs)
	}
}
