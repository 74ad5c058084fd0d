package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Fixed identities of every topology.
const (
	userEmail    = "load@example.com"
	userPassword = "load benchmark password 2026"
	clientID     = "load-svc"
	issuer       = "http://latch-load.test"
)

// clientSecret is generated per run (confidential clients need 32+ chars).
var clientSecret = "load-secret-" + strings.ToLower(rand.Text())

// topology describes one deployment under test.
type topology struct {
	name      string // sqlite, pg1, pg3
	title     string
	postgres  bool
	instances int
}

var topologies = map[string]topology{
	"sqlite": {name: "sqlite", title: "SQLite, 1 instance", instances: 1},
	"pg1":    {name: "pg1", title: "PostgreSQL + Redis, 1 instance", postgres: true, instances: 1},
	"pg3":    {name: "pg3", title: "PostgreSQL + Redis, 3 instances", postgres: true, instances: 3},
}

// proc is a child process started by the benchmark.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM, waits up to 10 s, then kills.
func (p *proc) stop() {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// startProc starts a long-running child with its output in logPath. The
// child is sent SIGTERM if this process dies first.
func startProc(name string, env []string, logPath string, argv ...string) (*proc, error) {
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = lf, lf
	// Its own process group: a Ctrl-C in the terminal reaches only us, and
	// we stop the children in order. Pdeathsig covers our abrupt death.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		lf.Close()
		close(p.done)
	}()
	return p, nil
}

// cluster is a running topology.
type cluster struct {
	topo     topology
	dir      string
	dataDir  string // the instances' --data-dir
	bin      string
	env      []string // the children's environment
	pgURL    string   // with search_path and application_name; "" for SQLite
	appName  string
	schema   string
	adminURL string
	latch    []*proc
	redis    *proc
	bases    []string // http://127.0.0.1:PORT of each instance
	cleanups []func()
	mu       sync.Mutex
}

func (c *cluster) defer_(f func()) {
	c.mu.Lock()
	c.cleanups = append(c.cleanups, f)
	c.mu.Unlock()
}

// close stops everything the cluster started, in reverse order. It is
// safe to call more than once.
func (c *cluster) close() {
	c.mu.Lock()
	fs := c.cleanups
	c.cleanups = nil
	c.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}

// freePort asks the kernel for a free loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// baseEnv is our environment without any LATCH_ variable, so a developer's
// own settings do not leak into the topology.
func baseEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LATCH_") {
			env = append(env, kv)
		}
	}
	return env
}

// psql runs one SQL command against url.
func psql(ctx context.Context, url, sql string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "psql", url, "-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1", "-c", sql)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("psql %q: %v: %s", sql, err, strings.TrimSpace(errb.String()))
	}
	return strings.TrimSpace(out.String()), nil
}

// run runs a latch command to completion with stdin.
func (c *cluster) run(ctx context.Context, stdin string, args ...string) error {
	cmd := exec.CommandContext(ctx, c.bin, args...)
	cmd.Env = c.env
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("latch %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// startCluster brings a topology up: store, Redis, the user, the client and
// the instances, each ready. On error everything started is stopped.
// extra adds LATCH_* settings to the instances' environment.
func startCluster(ctx context.Context, t topology, bin, workDir, adminURL string, extra []string, logf func(string, ...any)) (c *cluster, err error) {
	c = &cluster{topo: t, bin: bin, adminURL: adminURL}
	defer func() {
		if err != nil {
			c.close()
			c = nil
		}
	}()
	c.dir, err = os.MkdirTemp(workDir, t.name+"-")
	c.dataDir = filepath.Join(c.dir, "data")
	if err != nil {
		return nil, err
	}
	var kb [32]byte
	_, _ = rand.Read(kb[:])
	c.env = append(baseEnv(),
		"LATCH_KEK="+base64.StdEncoding.EncodeToString(kb[:]),
		"LATCH_ISSUER="+issuer,
		"LATCH_LOG_FORMAT=text",
		// The load generator signs many sessions in from one address;
		// the sign-in throttles would measure themselves, not Latch.
		"LATCH_LOGIN_RATE_PER_IP=0",
		"LATCH_LOGIN_MAX_FAILURES=0",
	)
	c.env = append(c.env, extra...)
	dataDir := c.dataDir
	if t.postgres {
		suffix := strings.ToLower(rand.Text()[:12])
		c.schema = "latch_load_" + suffix
		c.appName = "latch-load-" + suffix
		if _, err := psql(ctx, adminURL, "CREATE SCHEMA "+c.schema); err != nil {
			return nil, err
		}
		logf("created schema %s", c.schema)
		c.defer_(func() {
			if _, err := psql(context.Background(), adminURL, "DROP SCHEMA "+c.schema+" CASCADE"); err != nil {
				logf("warning: drop schema %s: %v", c.schema, err)
			} else {
				logf("dropped schema %s", c.schema)
			}
		})
		u, err := url.Parse(adminURL)
		if err != nil {
			return nil, fmt.Errorf("-pg: %w", err)
		}
		q := u.Query()
		q.Set("search_path", c.schema)
		q.Set("application_name", c.appName)
		u.RawQuery = q.Encode()
		c.pgURL = u.String()

		port, err := freePort()
		if err != nil {
			return nil, err
		}
		redisPath, err := exec.LookPath("redis-server")
		if err != nil {
			return nil, fmt.Errorf("redis-server not found: %w", err)
		}
		c.redis, err = startProc("redis", baseEnv(), filepath.Join(c.dir, "redis.log"), redisPath,
			"--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no")
		if err != nil {
			return nil, err
		}
		c.defer_(c.redis.stop)
		if err := waitTCP(ctx, fmt.Sprintf("127.0.0.1:%d", port), c.redis); err != nil {
			return nil, fmt.Errorf("redis: %w", err)
		}
		logf("redis-server pid %d on port %d", c.redis.pid(), port)
		c.env = append(c.env, "LATCH_DATABASE_URL="+c.pgURL, fmt.Sprintf("LATCH_REDIS_URL=redis://127.0.0.1:%d", port))
	}
	c.defer_(func() { os.RemoveAll(c.dir) })

	// The first command creates the store (migrating PostgreSQL), the key
	// ring and, for SQLite, the database; the instances start on it.
	if err := c.run(ctx, userPassword+"\n", "user", "add", "--data-dir", dataDir, "--email", userEmail, "--password-stdin"); err != nil {
		return nil, err
	}
	if err := c.run(ctx, clientSecret+"\n", "client", "add", "--data-dir", dataDir, "--id", clientID, "--secret-stdin"); err != nil {
		return nil, err
	}
	for i := range t.instances {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		p, err := startProc(fmt.Sprintf("latch-%d", i), c.env, filepath.Join(c.dir, fmt.Sprintf("latch-%d.log", i)),
			c.bin, "serve", "--addr", addr, "--data-dir", dataDir)
		if err != nil {
			return nil, err
		}
		c.latch = append(c.latch, p)
		c.defer_(p.stop)
		c.bases = append(c.bases, "http://"+addr)
	}
	for i, base := range c.bases {
		if err := waitReady(ctx, base, c.latch[i]); err != nil {
			return nil, fmt.Errorf("instance %d: %w\n%s", i, err, tail(c.latch[i].log, 20))
		}
		logf("latch instance %d pid %d at %s", i, c.latch[i].pid(), base)
	}
	return c, nil
}

// waitTCP waits until addr accepts connections.
func waitTCP(ctx context.Context, addr string, p *proc) error {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if p.exited() {
			return fmt.Errorf("exited: %v", p.err)
		}
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			conn.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return errors.New("not listening after 15 s")
}

// waitReady waits until base/readyz answers 200.
func waitReady(ctx context.Context, base string, p *proc) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if p.exited() {
			return fmt.Errorf("exited: %v", p.err)
		}
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return errors.New("not ready after 30 s")
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// pgBackends returns the PIDs of this cluster's PostgreSQL backends.
func (c *cluster) pgBackends(ctx context.Context) []int {
	if c.appName == "" {
		return nil
	}
	out, err := psql(ctx, c.adminURL, "SELECT pid FROM pg_stat_activity WHERE application_name = '"+c.appName+"'")
	if err != nil {
		return nil
	}
	var pids []int
	for f := range strings.FieldsSeq(out) {
		var pid int
		if _, err := fmt.Sscan(f, &pid); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// dead returns the instances or the Redis server that have exited.
func (c *cluster) dead() []string {
	var out []string
	for _, p := range c.latch {
		if p.exited() {
			out = append(out, fmt.Sprintf("%s (pid %d): %v", p.name, p.pid(), p.err))
		}
	}
	if c.redis != nil && c.redis.exited() {
		out = append(out, fmt.Sprintf("redis (pid %d): %v", c.redis.pid(), c.redis.err))
	}
	return out
}

// logProblems returns the WARN and ERROR lines the instances logged.
func (c *cluster) logProblems() []string {
	var out []string
	for _, p := range c.latch {
		b, _ := os.ReadFile(p.log)
		for line := range strings.SplitSeq(string(b), "\n") {
			if strings.Contains(line, "level=ERROR") || strings.Contains(line, "level=WARN") || strings.Contains(line, "panic") {
				out = append(out, p.name+": "+line)
			}
		}
	}
	return out
}
