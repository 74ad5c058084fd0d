package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestGatewayCheck(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte(`issuer: http://127.0.0.1:8080
client_id: gw
routes:
  - path: /api/
    upstream: http://127.0.0.1:9001
    auth: token
    scopes: [orders:read]
  - path: /
    upstream: http://127.0.0.1:3000
    auth: none
`), 0o600)
	out, _, err := run(t, "", []string{"LATCH_GATEWAY_CLIENT_SECRET=s"}, "gateway", "--config", good, "--check")
	if err != nil || out != "ok\n" {
		t.Fatalf("good file: %q %v", out, err)
	}

	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte(`issuer: ftp://x
routes:
  - path: /api/
    upstream: nope
    auth: jwt
    scopes: [a]
  - path: /api/
    upstrem: http://127.0.0.1:1
    auth: none
    scopes: [b]
`), 0o600)
	out, _, err = run(t, "", nil, "gateway", "--config", bad, "--check")
	if err == nil {
		t.Fatal("a bad file passed --check")
	}
	for _, want := range []string{
		"issuer: \"ftp://x\" is not an http(s) URL",
		"routes[0].upstream: \"nope\" is not an http(s) URL",
		"routes[0].auth: \"jwt\" is not one of token, session, none",
		"routes[1].upstrem: unknown key; did you mean upstream?",
		"routes[1].path: \"/api/\" is also the path of routes[0]",
		"routes[1].scopes: a route with auth: none checks no scopes",
		"routes[1].upstream: missing",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("--check output lacks %q:\n%s", want, out)
		}
	}
	if _, _, err := run(t, "", nil, "gateway", "--check"); err == nil || !strings.Contains(err.Error(), "--config") {
		t.Errorf("no --config: %v", err)
	}
}

func TestGatewayRuns(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "upstream "+r.URL.Path+" user="+r.Header.Get("X-Forwarded-User"))
	}))
	defer up.Close()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "gw.yaml")
	os.WriteFile(cfgPath, []byte("addr: 127.0.0.1:0\ndata_dir: "+filepath.Join(dir, "data")+"\nroutes:\n  - path: /\n    upstream: "+up.URL+"\n    auth: none\n"), 0o600)

	base, out, stop := startGateway(t, cfgPath, nil)
	if !strings.Contains(out.String(), "PATH") || !strings.Contains(out.String(), up.URL) {
		t.Errorf("no routes table:\n%s", out.String())
	}
	req, _ := http.NewRequest("GET", base+"/hello", nil)
	req.Header.Set("X-Forwarded-User", "mallory")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(b) != "upstream /hello user=" {
		t.Errorf("through the gateway: %q", b)
	}
	stop()
}

// startGateway runs `latch gateway --config cfgPath` in-process and
// returns its URL, its output and a function that stops it.
func startGateway(t *testing.T, cfgPath string, env []string) (string, *syncBuf, func()) {
	t.Helper()
	var out, errb syncBuf
	root := newRoot(strings.NewReader(""), &out, &errb, env)
	root.SetArgs([]string{"gateway", "--config", cfgPath})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	re := regexp.MustCompile(`listening on (http://127\.0\.0\.1:\d+)`)
	var base string
	for deadline := time.Now().Add(30 * time.Second); base == ""; {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			base = m[1]
			break
		}
		select {
		case err := <-done:
			t.Fatalf("gateway exited: %v\n%s%s", err, out.String(), errb.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway did not start:\n%s", out.String())
		}
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("gateway stopped with %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("gateway did not stop")
		}
	}
	t.Cleanup(stop)
	return base, &out, stop
}

// TestGatewayEndToEnd: the gateway in front of a real Latch server checks
// bearer tokens with the server's keys and revocation feed, read with its
// own client (--can read-revocations); a logout at the server reaches it.
func TestGatewayEndToEnd(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if _, _, err := run(t, "a good password\n", nil, "user", "add", "--data-dir", dir, "--email", "ada@example.com", "--password-stdin"); err != nil {
		t.Fatal(err)
	}
	out, _, err := run(t, "", nil, "client", "add", "--data-dir", dir, "--id", "gw", "--generate-secret", "--can", "read-revocations")
	m := regexp.MustCompile(`client secret \(shown once, store it now\): (\S+)`).FindStringSubmatch(out)
	if err != nil || m == nil {
		t.Fatalf("client add: %q %v", out, err)
	}
	srv := startServe(t, nil, "--data-dir", dir)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "user="+r.Header.Get("X-Latch-User")+" assertion="+strconv.FormatBool(r.Header.Get("X-Latch-Assertion") != ""))
	}))
	defer up.Close()
	cfgPath := filepath.Join(t.TempDir(), "gw.yaml")
	os.WriteFile(cfgPath, []byte("addr: 127.0.0.1:0\nissuer: "+srv.base+"\nclient_id: gw\ndata_dir: "+filepath.Join(t.TempDir(), "gwdata")+
		"\nroutes:\n  - path: /api/\n    upstream: "+up.URL+"\n    auth: token\n    identity: {headers: true, assertion: true}\n"), 0o600)
	base, _, _ := startGateway(t, cfgPath, []string{"LATCH_GATEWAY_CLIENT_SECRET=" + m[1]})

	body, _ := json.Marshal(map[string]string{"email": "ada@example.com", "password": "a good password"})
	res, err := http.Post(srv.base+"/v1/auth/login", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	json.NewDecoder(res.Body).Decode(&tok)
	res.Body.Close()
	if tok.AccessToken == "" {
		t.Fatalf("login: %d", res.StatusCode)
	}
	get := func() (int, string) {
		req, _ := http.NewRequest("GET", base+"/api/x", nil)
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if code, b := get(); code != 200 || !strings.HasPrefix(b, "user=u_") || !strings.HasSuffix(b, "assertion=true") {
		t.Fatalf("with a fresh token: %d %s", code, b)
	}
	req, _ := http.NewRequest("POST", srv.base+"/v1/auth/logout", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != http.StatusNoContent {
		t.Fatalf("logout: %v %v", res, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, b := get()
		if code == 401 && strings.Contains(b, "revoked") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the logout did not reach the gateway: %d %s", code, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
