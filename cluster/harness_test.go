package cluster_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/internal/testenv"
	"github.com/latchauth/latch/postgres"
)

// latchBin is the latch binary under test, built once by TestMain without
// the race detector (only the test process has it).
var latchBin string

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "latch-cluster-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "cluster tests:", err)
		os.Exit(1)
	}
	latchBin = filepath.Join(dir, "latch")
	root, err := filepath.Abs("..")
	if err != nil {
		fmt.Fprintln(os.Stderr, "cluster tests:", err)
		os.Exit(1)
	}
	start := time.Now()
	build := exec.Command("go", "build", "-o", latchBin, "./cmd/latch")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "cluster tests: go build ./cmd/latch: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	if testing.Verbose() {
		fmt.Printf("built %s in %v\n", latchBin, time.Since(start).Round(time.Millisecond))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// ---------------------------------------------------------------- PostgreSQL

const defaultPostgresURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

func postgresBase() string {
	if u := os.Getenv("LATCH_TEST_POSTGRES_URL"); u != "" {
		return u
	}
	return defaultPostgresURL
}

// newSchema creates a schema for t in the test database, dropped when t
// ends (after the processes using it, which are registered later and so
// cleaned up first). It ends the test as testenv says if PostgreSQL is
// unreachable.
func newSchema(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, postgresBase())
	if err != nil {
		testenv.Unavailable(t, testenv.Postgres, err)
	}
	defer conn.Close(context.Background())
	schema := "latch_cluster_" + strings.ToLower(rand.Text()[:16])
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, postgresBase())
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return schema
}

// schemaURL is the test database URL with search_path set to schema, a
// 2 s connect timeout, and, if hostPort is not empty, that address instead
// of the database's (a proxy).
func schemaURL(t *testing.T, schema, hostPort string) string {
	t.Helper()
	u, err := url.Parse(postgresBase())
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("LATCH_TEST_POSTGRES_URL must be a postgres:// URL for the cluster tests (latch serve takes only URLs)")
	}
	q := u.Query()
	q.Set("search_path", schema)
	q.Set("connect_timeout", "2")
	u.RawQuery = q.Encode()
	if hostPort != "" {
		u.Host = hostPort
	}
	return u.String()
}

// ---------------------------------------------------------------- Redis

// redisServer is a private redis-server on a port of its own, which a test
// may kill and start again on the same port.
type redisServer struct {
	t    *testing.T
	bin  string
	port int
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// startRedis starts a private redis-server, killed when t ends. A missing
// redis-server binary counts as Redis being unavailable.
func startRedis(t *testing.T) *redisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		testenv.Unavailable(t, testenv.Redis, err)
	}
	r := &redisServer{t: t, bin: bin}
	t.Cleanup(r.kill)
	for attempt := 0; ; attempt++ {
		r.port = freePort(t)
		err := r.start()
		if err == nil {
			return r
		}
		if attempt == 2 {
			testenv.Unavailable(t, testenv.Redis, err)
		}
	}
}

func (r *redisServer) url() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", r.port) }

// start runs redis-server on r.port and waits until it accepts connections.
func (r *redisServer) start() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out syncBuffer
	cmd := exec.Command(r.bin, "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--protected-mode", "no")
	cmd.Stdout, cmd.Stderr = &out, &out
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	r.cmd, r.done = cmd, done
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", r.port), time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("redis-server exited at start: %s", out.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-done
			return fmt.Errorf("redis-server did not listen on %d: %s", r.port, out.String())
		}
	}
}

// kill stops redis-server with SIGKILL and waits for it to be gone.
func (r *redisServer) kill() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return
	}
	r.cmd.Process.Kill()
	<-r.done
	r.cmd = nil
}

// ---------------------------------------------------------------- processes

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
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

// tail returns at most the last n bytes of s.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// node is one `latch serve` process.
type node struct {
	name    string
	addr    string // fixed for the node's life, restarts included
	base    string // http://addr
	dataDir string
	log     syncBuffer

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	// starts counts the processes run for this node.
	starts int
}

// running reports whether the node's process is alive.
func (n *node) running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return false
	}
	select {
	case <-n.done:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL (kill -9) and waits for the process to be gone.
func (n *node) kill() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return
	}
	n.cmd.Process.Kill()
	<-n.done
	n.cmd = nil
}

// options shape a cluster.
type options struct {
	nodes int
	// env adds LATCH_* settings shared by every node (e.g.
	// LATCH_TOKENS_REFRESH_GRACE).
	env map[string]string
	// postgresAddr, if set, is the host:port the nodes use for
	// PostgreSQL instead of the database's own (a proxy).
	postgresAddr string
	// localIssuer makes the issuer http://localhost:PORT of the first
	// node instead of the fixed test issuer, so that a browser can follow
	// redirects to it (and its cookies get their __Host- prefix, which
	// browsers accept on localhost).
	localIssuer bool
}

// cluster is a set of `latch serve` processes sharing one schema, one
// private Redis, one KEK and one issuer.
type cluster struct {
	t        *testing.T
	schema   string
	redis    *redisServer
	env      map[string]string
	nodes    []*node
	http     *http.Client
	storeURL string // the database as the test itself reaches it (no proxy)
	store    *storeHolder
}

// storeHolder is the test's own connection to the shared store, opened on
// first use and shared by a cluster's copies for subtests.
type storeHolder struct {
	once  sync.Once
	store *postgres.Store
	err   error
}

const (
	issuer   = "http://latch.cluster.test"
	email    = "ada@example.com"
	password = "correct horse battery staple"
)

// newCluster starts o.nodes instances at once (they race to migrate the
// empty schema and create the key ring) and waits until each is ready.
func newCluster(t *testing.T, o options) *cluster {
	t.Helper()
	if o.nodes == 0 {
		o.nodes = 3
	}
	schema := newSchema(t)
	c := &cluster{
		t: t, schema: schema, redis: startRedis(t),
		storeURL: schemaURL(t, schema, ""),
		store:    &storeHolder{},
		http: &http.Client{
			Timeout: 15 * time.Second,
			Transport: &http.Transport{
				DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
				MaxIdleConnsPerHost: 256,
				DisableCompression:  true,
			},
		},
	}
	t.Cleanup(c.http.CloseIdleConnections)
	c.env = map[string]string{
		"LATCH_DATABASE_URL": schemaURL(t, schema, o.postgresAddr),
		"LATCH_REDIS_URL":    c.redis.url(),
		"LATCH_KEK":          c.generateKEK(),
		"LATCH_ISSUER":       issuer,
		"LATCH_LOG_LEVEL":    "info",
	}
	for k, v := range o.env {
		c.env[k] = v
	}
	for i := range o.nodes {
		n := &node{
			name:    fmt.Sprintf("node%d", i+1),
			addr:    fmt.Sprintf("127.0.0.1:%d", freePort(t)),
			dataDir: filepath.Join(t.TempDir(), fmt.Sprintf("node%d", i+1)),
		}
		n.base = "http://" + n.addr
		c.nodes = append(c.nodes, n)
	}
	if o.localIssuer {
		_, port, _ := strings.Cut(c.nodes[0].addr, ":")
		c.env["LATCH_ISSUER"] = "http://localhost:" + port
	}
	t.Cleanup(func() {
		for _, n := range c.nodes {
			n.kill()
		}
		if c.store.store != nil {
			c.store.store.Close()
		}
		for _, n := range c.nodes {
			logs := n.log.String()
			if strings.Contains(logs, "panic") {
				t.Errorf("%s logged a panic:\n%s", n.name, tail(logs, 8000))
			} else if t.Failed() {
				t.Logf("---- log of %s (last 6 KB) ----\n%s", n.name, tail(logs, 6000))
			}
		}
	})
	errs := make(chan error, len(c.nodes))
	for _, n := range c.nodes {
		go func() { errs <- c.launch(n) }()
	}
	for range c.nodes {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// environ is the environment of a latch process: the test's own without
// any LATCH_* variable (latch refuses unknown ones, such as
// LATCH_TEST_POSTGRES_URL), plus the cluster's settings.
func (c *cluster) environ() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LATCH_") {
			env = append(env, kv)
		}
	}
	for k, v := range c.env {
		env = append(env, k+"="+v)
	}
	return env
}

// generateKEK runs `latch kek generate`.
func (c *cluster) generateKEK() string {
	c.t.Helper()
	out, err := exec.Command(latchBin, "kek", "generate").Output()
	if err != nil {
		c.t.Fatalf("latch kek generate: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// launch starts the node's process and waits for /readyz to answer 200.
func (c *cluster) launch(n *node) error {
	cmd := exec.Command(latchBin, "serve", "--addr", n.addr, "--data-dir", n.dataDir)
	cmd.Env = c.environ()
	cmd.Stdout, cmd.Stderr = &n.log, &n.log
	dieWithParent(cmd)
	n.mu.Lock()
	if n.cmd != nil {
		n.mu.Unlock()
		return fmt.Errorf("%s is running already", n.name)
	}
	n.starts++
	fmt.Fprintf(&n.log, "==== start #%d of %s at %s ====\n", n.starts, n.name, time.Now().Format(time.RFC3339Nano))
	if err := cmd.Start(); err != nil {
		n.mu.Unlock()
		return fmt.Errorf("start %s: %w", n.name, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	n.cmd, n.done = cmd, done
	n.mu.Unlock()

	deadline := time.Now().Add(30 * time.Second)
	for {
		r, err := c.do(n, "GET", "/readyz", nil)
		if err == nil && r.code == http.StatusOK {
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("%s exited before it was ready (%v):\n%s", n.name, cmd.ProcessState, tail(n.log.String(), 4000))
		case <-time.After(25 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready within 30 s (last: %v %d %s):\n%s", n.name, err, r.code, r.raw, tail(n.log.String(), 4000))
		}
	}
}

// run runs a latch command (not serve) with the cluster's environment.
func (c *cluster) run(stdin string, args ...string) (string, error) {
	cmd := exec.Command(latchBin, args...)
	cmd.Env = c.environ()
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// addUser creates a user with `latch user add` against the shared store.
func (c *cluster) addUser(email, pw string) {
	c.t.Helper()
	out, err := c.run(pw+"\n", "user", "add", "--data-dir", filepath.Join(c.t.TempDir(), "cli"), "--email", email, "--password-stdin")
	if err != nil || !strings.Contains(out, "created user") {
		c.t.Fatalf("latch user add: %v\n%s", err, out)
	}
}

// openStore is the shared store, opened by the test itself (directly, not
// through any proxy).
func (c *cluster) openStore() *postgres.Store {
	c.t.Helper()
	h := c.store
	h.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		h.store, h.err = postgres.Open(ctx, c.storeURL)
	})
	if h.err != nil {
		c.t.Fatalf("open the shared store: %v", h.err)
	}
	return h.store
}

// session reads a session from the shared store.
func (c *cluster) session(id string) *latch.Session {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := c.openStore().Session(ctx, id)
	if err != nil {
		c.t.Fatalf("session %s: %v", id, err)
	}
	return s
}

// tokenGenerations counts the refresh tokens stored per generation of a
// session: a forked session would hold two tokens of one generation.
func (c *cluster) tokenGenerations(sessionID string) map[int]int {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.storeURL)
	if err != nil {
		c.t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, "SELECT generation, count(*) FROM refresh_tokens WHERE session_id = $1 GROUP BY generation", sessionID)
	if err != nil {
		c.t.Fatal(err)
	}
	out := map[int]int{}
	for rows.Next() {
		var g, n int
		if err := rows.Scan(&g, &n); err != nil {
			c.t.Fatal(err)
		}
		out[g] = n
	}
	if err := rows.Err(); err != nil {
		c.t.Fatal(err)
	}
	return out
}

// ---------------------------------------------------------------- HTTP

type reply struct {
	code   int
	header http.Header
	raw    []byte
	body   map[string]any
	took   time.Duration
}

func (r reply) str(k string) string {
	s, _ := r.body[k].(string)
	return s
}

func (r reply) String() string {
	return fmt.Sprintf("%d %s", r.code, bytes.TrimSpace(r.raw))
}

// do sends a request to n; body, if not nil, is sent as JSON; hdr is a list
// of name, value pairs. An error is a transport error (refused, reset,
// timeout); any HTTP answer is a reply. Safe from any goroutine.
func (c *cluster) do(n *node, method, path string, body any, hdr ...string) (reply, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return reply{}, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, n.base+path, rd)
	if err != nil {
		return reply{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	start := time.Now()
	res, err := c.http.Do(req)
	if err != nil {
		return reply{took: time.Since(start)}, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	r := reply{code: res.StatusCode, header: res.Header, raw: raw, took: time.Since(start)}
	if err != nil {
		return r, err
	}
	if len(raw) > 0 && strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &r.body); err != nil {
			return r, fmt.Errorf("%s %s on %s: body is not JSON: %v: %q", method, path, n.name, err, raw)
		}
	}
	return r, nil
}

// must is do that ends the test on a transport error. Main goroutine only.
func (c *cluster) must(n *node, method, path string, body any, hdr ...string) reply {
	c.t.Helper()
	r, err := c.do(n, method, path, body, hdr...)
	if err != nil {
		c.t.Fatalf("%s %s on %s: %v", method, path, n.name, err)
	}
	return r
}

func bearer(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

type tokens struct {
	access, refresh, session string
}

func tokensOf(r reply) tokens {
	return tokens{access: r.str("access_token"), refresh: r.str("refresh_token"), session: r.str("session_id")}
}

func (c *cluster) login(n *node) tokens {
	c.t.Helper()
	r := c.must(n, "POST", "/v1/auth/login", map[string]string{"email": email, "password": password})
	if r.code != http.StatusOK {
		c.t.Fatalf("login on %s: %s", n.name, r)
	}
	return tokensOf(r)
}

func (c *cluster) refresh(n *node, rt string) (reply, error) {
	return c.do(n, "POST", "/v1/auth/refresh", map[string]string{"refresh_token": rt})
}

func (c *cluster) mustRefresh(n *node, rt string) tokens {
	c.t.Helper()
	r, err := c.refresh(n, rt)
	if err != nil {
		c.t.Fatalf("refresh on %s: %v", n.name, err)
	}
	if r.code != http.StatusOK {
		c.t.Fatalf("refresh on %s: %s", n.name, r)
	}
	return tokensOf(r)
}

// me answers GET /v1/me with the access token on n.
func (c *cluster) me(n *node, at string) reply {
	c.t.Helper()
	return c.must(n, "GET", "/v1/me", nil, bearer(at)...)
}

// waitRejected polls /v1/me on n until the access token is refused (401)
// and returns how long that took; it fails the test after within.
func (c *cluster) waitRejected(n *node, at string, since time.Time, within time.Duration) time.Duration {
	c.t.Helper()
	for {
		r := c.me(n, at)
		if r.code == http.StatusUnauthorized {
			return time.Since(since)
		}
		if r.code != http.StatusOK {
			c.t.Fatalf("/v1/me on %s while waiting for a revocation: %s", n.name, r)
		}
		if time.Since(since) > within {
			c.t.Fatalf("%s still accepts a revoked access token %v after the revocation (bound %v)", n.name, time.Since(since).Round(time.Millisecond), within)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// metrics reads n's /metrics into series → value, the series written as
// in the exposition ("name{label=\"v\",...}").
func (c *cluster) metrics(n *node) map[string]float64 {
	c.t.Helper()
	r := c.must(n, "GET", "/metrics", nil)
	if r.code != http.StatusOK {
		c.t.Fatalf("/metrics on %s: %d", n.name, r.code)
	}
	out := map[string]float64{}
	for line := range strings.SplitSeq(string(r.raw), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		out[line[:i]] = v
	}
	return out
}

// sumMetric adds the series of name whose labels contain every one of
// labels (`outcome="grace"`) over the given nodes.
func (c *cluster) sumMetric(nodes []*node, name string, labels ...string) float64 {
	c.t.Helper()
	var sum float64
	for _, n := range nodes {
	series:
		for k, v := range c.metrics(n) {
			if k != name && !strings.HasPrefix(k, name+"{") {
				continue
			}
			for _, l := range labels {
				if !strings.Contains(k, l) {
					continue series
				}
			}
			sum += v
		}
	}
	return sum
}

// no500s fails the test if any node answered a 500.
func (c *cluster) no500s(nodes ...*node) {
	c.t.Helper()
	if len(nodes) == 0 {
		nodes = c.nodes
	}
	for _, n := range nodes {
		for k, v := range c.metrics(n) {
			if strings.HasPrefix(k, "latch_http_requests_total{") && strings.Contains(k, `code="5`) && !strings.Contains(k, `code="503"`) && v > 0 {
				c.t.Errorf("%s: %s = %v", n.name, k, v)
			}
		}
	}
}

// isConnError reports whether err is a transport failure (as opposed to an
// HTTP answer), which a client may retry on another instance.
func isConnError(err error) bool {
	var ne net.Error
	return err != nil && (errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "connection refused") ||
		strings.Contains(err.Error(), "EOF"))
}
