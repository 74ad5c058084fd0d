package cluster_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// TestKillInstanceDuringRefreshStorm kills instances with SIGKILL while 20
// clients refresh their sessions through all three, restarts one, and
// checks that no session was lost or forked: every client still holds
// exactly the latest token of its session, which moves forward once, and
// a retry of it yields the same successor.
func TestKillInstanceDuringRefreshStorm(t *testing.T) {
	c := newCluster(t, options{})
	c.addUser(email, password)
	n1, n2, n3 := c.nodes[0], c.nodes[1], c.nodes[2]

	s := newStorm(c, 20, c.nodes)
	s.dropRate = 0.05
	s.start()
	stopped := false
	defer func() {
		if !stopped {
			s.halt()
		}
	}()

	s.waitSuccesses(150, 20*time.Second)
	n2.kill()
	t.Logf("%s killed (SIGKILL) after %d refreshes", n2.name, s.successes.Load())
	s.waitSuccesses(150, 20*time.Second)
	// The killed instance comes back on the same address and data
	// directory, and takes its share of the traffic again.
	if err := c.launch(n2); err != nil {
		t.Fatal(err)
	}
	s.waitSuccesses(150, 20*time.Second)
	n3.kill()
	t.Logf("%s restarted, then %s killed after %d refreshes", n2.name, n3.name, s.successes.Load())
	s.waitSuccesses(150, 20*time.Second)
	s.halt()
	stopped = true

	alive := []*node{n1, n2}
	s.verify(alive)
	if s.connErrors.Load() == 0 {
		t.Errorf("no client saw a connection error: the kills hit nothing")
	}
	o := outcomesOf(c, alive)
	t.Logf("refresh outcomes on the surviving processes: %v", o)
	if o["reused"] != 0 || o["error"] != 0 {
		t.Errorf("surviving instances counted reuse or errors: %v", o)
	}
	if o["grace"] == 0 {
		t.Errorf("no retry was answered from the grace window: the lost-answer path was not exercised")
	}
	c.no500s(alive...)
}

func outcomesOf(c *cluster, nodes []*node) outcomes {
	o := outcomes{}
	for _, name := range []string{"rotated", "grace", "reused", "revoked", "invalid", "expired", "error"} {
		o[name] = c.sumMetric(nodes, "latch_refreshes_total", `outcome="`+name+`"`)
	}
	return o
}

// redisSubscribers counts the subscribers of the fan-out channel.
func redisSubscribers(t *testing.T, rc *goredis.Client) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	m, err := rc.PubSubNumSub(ctx, "latch:events").Result()
	if err != nil {
		return -1
	}
	return m["latch:events"]
}

func waitSubscribers(t *testing.T, rc *goredis.Client, want int64, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		got := redisSubscribers(t, rc)
		if got == want {
			return time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("%d subscribers on latch:events after %v, want %d", got, within, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// readiness polls /readyz on n until check reports want, and returns the
// last answer.
func (c *cluster) waitReadiness(n *node, code int, check, want string, within time.Duration) reply {
	c.t.Helper()
	start := time.Now()
	for {
		r := c.must(n, "GET", "/readyz", nil)
		checks, _ := r.body["checks"].(map[string]any)
		if r.code == code && checks[check] == want {
			return r
		}
		if r.took > 3*time.Second {
			c.t.Errorf("/readyz on %s took %v", n.name, r.took)
		}
		if time.Since(start) > within {
			c.t.Fatalf("/readyz on %s: %s after %v; want %d with %s %q", n.name, r, within, code, check, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRedisRestart kills the private Redis under a running cluster and
// starts it again on the same port: revocations made while it is down
// reach every instance by polling the store within a second, the
// instances report Redis as degraded but stay ready, and afterwards they
// resubscribe by themselves and fan-out resumes. No revocation is lost.
func TestRedisRestart(t *testing.T) {
	c := newCluster(t, options{})
	c.addUser(email, password)
	rc := goredis.NewClient(&goredis.Options{Addr: strings.TrimPrefix(strings.TrimSuffix(c.redis.url(), "/0"), "redis://"), MaxRetries: -1})
	defer rc.Close()
	waitSubscribers(t, rc, 3, 10*time.Second)

	// revoked collects every access token whose session was revoked; at
	// the end every instance must still refuse all of them.
	var revoked []string
	// logoutRound logs in on a, logs out on b and checks every instance
	// enforces it within the bound; it returns the propagation delays.
	logoutRound := func(a, b *node) []time.Duration {
		t.Helper()
		tok := c.login(a)
		r := c.must(b, "POST", "/v1/auth/logout", nil, bearer(tok.access)...)
		if r.code != http.StatusNoContent {
			t.Fatalf("logout on %s: %s", b.name, r)
		}
		if r.took > time.Second {
			t.Errorf("logout on %s took %v", b.name, r.took)
		}
		at := time.Now()
		revoked = append(revoked, tok.access)
		var lat []time.Duration
		for _, n := range c.nodes {
			if n != b {
				lat = append(lat, c.waitRejected(n, tok.access, at, propagationBound))
			}
		}
		return lat
	}
	summary := func(what string, lat []time.Duration) {
		slices.Sort(lat)
		t.Logf("%s: %d samples, median %v, max %v", what, len(lat), lat[len(lat)/2].Round(time.Microsecond), lat[len(lat)-1].Round(time.Microsecond))
	}

	var before []time.Duration
	for i := range 3 {
		before = append(before, logoutRound(c.nodes[i], c.nodes[(i+1)%3])...)
	}
	summary("propagation with Redis", before)

	c.redis.kill()
	down := time.Now()
	for _, n := range c.nodes {
		r := c.waitReadiness(n, http.StatusOK, "redis", "unreachable", 5*time.Second)
		if r.str("status") != "degraded" {
			t.Errorf("/readyz on %s with Redis down: %s, want status degraded", n.name, r)
		}
	}
	// An instance (re)started while Redis is down starts without it
	// (degraded, polling) and must pick the fan-out up later by itself.
	n3 := c.nodes[2]
	n3.kill()
	if err := c.launch(n3); err != nil {
		t.Fatal(err)
	}
	if r := c.waitReadiness(n3, http.StatusOK, "redis", "unreachable", 5*time.Second); r.str("status") != "degraded" {
		t.Errorf("/readyz on %s started without Redis: %s", n3.name, r)
	}
	var during []time.Duration
	for i := range 6 {
		during = append(during, logoutRound(c.nodes[i%3], c.nodes[(i+1)%3])...)
	}
	// A user-wide revocation (sign out everywhere) while Redis is down.
	x, y := c.login(c.nodes[0]), c.login(c.nodes[1])
	if r := c.must(c.nodes[2], "POST", "/v1/auth/logout-all", nil, bearer(x.access)...); r.code != http.StatusNoContent {
		t.Fatalf("logout-all: %s", r)
	}
	at := time.Now()
	revoked = append(revoked, x.access, y.access)
	for _, n := range c.nodes {
		during = append(during, c.waitRejected(n, x.access, at, propagationBound), c.waitRejected(n, y.access, at, propagationBound))
	}
	summary("propagation with Redis down (polling)", during)

	if err := c.redis.start(); err != nil {
		t.Fatal(err)
	}
	t.Logf("Redis down for %v, restarted on the same port", time.Since(down).Round(time.Millisecond))
	back := waitSubscribers(t, rc, 3, 15*time.Second)
	t.Logf("all 3 instances resubscribed %v after the restart", back.Round(time.Millisecond))
	for _, n := range c.nodes {
		c.waitReadiness(n, http.StatusOK, "redis", "ok", 10*time.Second)
		if n != n3 && !strings.Contains(n.log.String(), "redis fan-out is back") {
			t.Errorf("%s did not log that it caught up after Redis came back", n.name)
		}
	}

	// Fan-out resumed: every instance publishes a poke when it revokes,
	// and the others enforce it.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sub := rc.Subscribe(ctx, "latch:events")
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	msgs := sub.Channel()
	var after []time.Duration
	for i := range 3 {
		b := c.nodes[(i+1)%3]
		after = append(after, logoutRound(c.nodes[i], b)...)
		select {
		case m := <-msgs:
			if m.Payload != "revocations" {
				t.Errorf("poke after a logout on %s: %q", b.name, m.Payload)
			}
		case <-time.After(2 * time.Second):
			t.Errorf("no poke on latch:events after a logout on %s: fan-out did not resume", b.name)
		}
	}
	summary("propagation after the restart", after)

	// No revocation lost, anywhere.
	for _, n := range c.nodes {
		for i, at := range revoked {
			if r := c.me(n, at); r.code != http.StatusUnauthorized {
				t.Errorf("%s accepts revoked access token #%d: %s", n.name, i, r)
			}
		}
		if !n.running() {
			t.Errorf("%s died", n.name)
		}
	}
	c.no500s()
}

// tcpProxy forwards TCP connections to a target. stop closes every
// forwarded connection and the listener (new connections are refused);
// start listens again on the same address.
type tcpProxy struct {
	target, addr string
	wg           sync.WaitGroup
	mu           sync.Mutex
	ln           net.Listener // nil while stopped
	conns        map[net.Conn]bool
	isFrozen     bool
}

// freeze is a network partition: bytes stop flowing both ways, but no
// connection is closed, and new connections are accepted and never
// answered.
func (p *tcpProxy) freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.isFrozen = true
}

func (p *tcpProxy) frozenNow() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.isFrozen
}

// forward copies src to dst until either fails; while the proxy is frozen
// it swallows what it reads.
func (p *tcpProxy) forward(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !p.frozenNow() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func startProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{target: target, addr: ln.Addr().String(), ln: ln, conns: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.serve(ln)
	t.Cleanup(func() { p.stop(); p.wg.Wait() })
	return p
}

func (p *tcpProxy) serve(ln net.Listener) {
	defer p.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go p.pipe(ln, c)
	}
}

func (p *tcpProxy) pipe(ln net.Listener, c net.Conn) {
	defer p.wg.Done()
	if p.frozenNow() {
		// Accepted, never answered.
		p.mu.Lock()
		p.conns[c] = true
		p.mu.Unlock()
		io.Copy(io.Discard, c)
		c.Close()
		return
	}
	up, err := net.DialTimeout("tcp", p.target, 2*time.Second)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if p.ln != ln { // stopped meanwhile
		p.mu.Unlock()
		c.Close()
		up.Close()
		return
	}
	p.conns[c], p.conns[up] = true, true
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { p.forward(up, c); done <- struct{}{} }()
	go func() { p.forward(c, up); done <- struct{}{} }()
	<-done
	c.Close()
	up.Close()
	<-done
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	p.mu.Unlock()
}

// stop is "PostgreSQL is down": every connection through the proxy is
// closed and new ones are refused.
func (p *tcpProxy) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
}

// start is "PostgreSQL is back".
func (p *tcpProxy) start(t *testing.T) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.isFrozen = false
	if p.ln != nil {
		return
	}
	var err error
	for deadline := time.Now().Add(5 * time.Second); ; {
		p.ln, err = net.Listen("tcp", p.addr)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("proxy cannot listen again on %s: %v", p.addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.wg.Add(1)
	go p.serve(p.ln)
}

// postgresHostPort is the address of the test database.
func postgresHostPort(t *testing.T) string {
	t.Helper()
	u, err := url.Parse(postgresBase())
	if err != nil {
		t.Fatalf("LATCH_TEST_POSTGRES_URL must be a URL")
	}
	host, port := u.Hostname(), u.Port()
	if host == "" {
		host = "127.0.0.1"
	}
	if port == "" {
		port = "5432"
	}
	return net.JoinHostPort(host, port)
}

// expectUnavailable checks a 503 temporarily_unavailable with Retry-After,
// answered within bound.
func expectUnavailable(t *testing.T, what string, r reply, bound time.Duration) {
	t.Helper()
	if r.code != http.StatusServiceUnavailable || r.str("error") != "temporarily_unavailable" || r.header.Get("Retry-After") == "" {
		t.Errorf("%s with PostgreSQL down: %s (Retry-After %q), want 503 temporarily_unavailable with Retry-After", what, r, r.header.Get("Retry-After"))
	}
	if r.took > bound {
		t.Errorf("%s with PostgreSQL down took %v, want at most %v", what, r.took.Round(time.Millisecond), bound)
	}
}

// TestPostgresOutage puts a TCP proxy between the instances and
// PostgreSQL, "stops" the database (every connection cut, new ones
// refused) while clients refresh, and "starts" it again. During the
// outage every endpoint that needs the store answers 503 with Retry-After
// within a few seconds (never 500, never a hang), /readyz says the store
// is unreachable, and access tokens still verify against the in-memory
// revocation set. Afterwards the same processes recover fully: login,
// refresh and logout work, and no client session was lost or forked.
func TestPostgresOutage(t *testing.T) {
	const bound = 5 * time.Second // the longest any answer may take
	proxy := startProxy(t, postgresHostPort(t))
	c := newCluster(t, options{postgresAddr: proxy.addr})
	c.addUser(email, password)

	// A session logged out before the outage: its token must stay refused.
	gone := c.login(c.nodes[0])
	if r := c.must(c.nodes[1], "POST", "/v1/auth/logout", nil, bearer(gone.access)...); r.code != http.StatusNoContent {
		t.Fatalf("logout: %s", r)
	}
	for _, n := range c.nodes {
		c.waitRejected(n, gone.access, time.Now(), propagationBound)
	}
	live := c.login(c.nodes[2])

	s := newStorm(c, 6, c.nodes)
	s.pause = 20 * time.Millisecond
	s.maxRequest = bound
	s.start()
	stopped := false
	defer func() {
		if !stopped {
			s.halt()
		}
	}()
	s.waitSuccesses(60, 20*time.Second)

	proxy.stop()
	down := time.Now()
	for _, n := range c.nodes {
		r := c.waitReadiness(n, http.StatusServiceUnavailable, "store", "unreachable", 5*time.Second)
		if r.str("status") != "unavailable" {
			t.Errorf("/readyz on %s: %s", n.name, r)
		}
	}
	t.Logf("every instance not ready %v after the database went away", time.Since(down).Round(time.Millisecond))
	for _, n := range c.nodes {
		expectUnavailable(t, n.name+" login", c.must(n, "POST", "/v1/auth/login", map[string]string{"email": email, "password": password}), bound)
		r, err := c.refresh(n, live.refresh)
		if err != nil {
			t.Fatal(err)
		}
		expectUnavailable(t, n.name+" refresh", r, bound)
		expectUnavailable(t, n.name+" logout", c.must(n, "POST", "/v1/auth/logout", nil, bearer(live.access)...), bound)
		expectUnavailable(t, n.name+" sessions", c.must(n, "GET", "/v1/sessions", nil, bearer(live.access)...), bound)
		// /v1/me verifies the token (in memory) before it reads the
		// account: a valid token gets as far as the store (503), a
		// revoked or forged one is refused without it (401).
		expectUnavailable(t, n.name+" /v1/me with a valid token", c.me(n, live.access), bound)
		if r := c.me(n, gone.access); r.code != http.StatusUnauthorized {
			t.Errorf("%s: token revoked before the outage: %s, want 401", n.name, r)
		}
		if r := c.me(n, live.access[:len(live.access)-4]+"AAAA"); r.code != http.StatusUnauthorized {
			t.Errorf("%s: forged token: %s, want 401", n.name, r)
		}
		if r := c.must(n, "GET", "/healthz", nil); r.code != http.StatusOK {
			t.Errorf("%s /healthz: %s", n.name, r)
		}
		if r := c.must(n, "GET", "/.well-known/jwks.json", nil); r.code != http.StatusOK {
			t.Errorf("%s JWKS: %d", n.name, r.code)
		}
	}
	// Keep the database away long enough for every client to meet it.
	for time.Since(down) < 3*time.Second {
		time.Sleep(50 * time.Millisecond)
	}
	unavailable := s.unavailable.Load()
	if unavailable == 0 {
		t.Errorf("no storm client met the outage")
	}

	proxy.start(t)
	up := time.Now()
	for _, n := range c.nodes {
		c.waitReadiness(n, http.StatusOK, "store", "ok", 10*time.Second)
	}
	t.Logf("database down %v; every instance ready again %v after it came back", up.Sub(down).Round(time.Millisecond), time.Since(up).Round(time.Millisecond))
	// Every client moves forward again.
	base := make([]int64, len(s.clients))
	for i, cl := range s.clients {
		base[i] = cl.successes.Load()
	}
	for i, cl := range s.clients {
		for cl.successes.Load() <= base[i] {
			if time.Since(up) > 15*time.Second {
				t.Fatalf("client %d made no refresh in 15 s after the database came back; failures: %v", i, s.failureList())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	s.halt()
	stopped = true
	s.verify(c.nodes)

	// Full recovery, without restarting anything: the token whose refresh
	// failed during the outage still refreshes, and login, refresh and
	// logout work through every instance.
	next := c.mustRefresh(c.nodes[0], live.refresh)
	if next.session != live.session {
		t.Fatalf("refresh after the outage: session %s, want %s", next.session, live.session)
	}
	for i := range 3 {
		a, b, d := c.nodes[i], c.nodes[(i+1)%3], c.nodes[(i+2)%3]
		tok := c.mustRefresh(b, c.login(a).refresh)
		if r := c.must(d, "POST", "/v1/auth/logout", nil, bearer(tok.access)...); r.code != http.StatusNoContent {
			t.Fatalf("logout on %s after the outage: %s", d.name, r)
		}
		at := time.Now()
		for _, n := range c.nodes {
			c.waitRejected(n, tok.access, at, propagationBound)
		}
	}
	for _, n := range c.nodes {
		if n.starts != 1 || !n.running() {
			t.Errorf("%s was restarted or died", n.name)
		}
	}
	t.Logf("503 answers to the storm during the outage: %d", unavailable)
	c.no500s()
}

// TestPostgresPartition is the outage PostgreSQL does not announce: the
// network between the instances and the database goes silent (a partition,
// a host that died without resetting its connections, a frozen server).
// Bytes stop flowing, no connection is closed, new ones are accepted and
// never answered. Requests must still answer 503 within a few seconds.
//
// Every request runs under server.RequestTimeout (5 s), so a store call on
// a pooled connection that never answers ends in a 503; /readyz checks its
// dependencies in parallel, each with its own deadline, so a silent store
// does not make Redis look down.
func TestPostgresPartition(t *testing.T) {
	const bound = 7 * time.Second
	proxy := startProxy(t, postgresHostPort(t))
	c := newCluster(t, options{postgresAddr: proxy.addr, nodes: 1})
	c.addUser(email, password)
	n := c.nodes[0]
	live := c.login(n)

	proxy.freeze()
	var wg sync.WaitGroup
	check := func(what string, do func() (reply, error)) {
		wg.Go(func() {
			r, err := do()
			if err != nil {
				t.Errorf("%s with PostgreSQL silent: no answer after %v: %v", what, r.took.Round(time.Millisecond), err)
				return
			}
			expectUnavailable(t, what, r, bound)
		})
	}
	check("refresh", func() (reply, error) { return c.refresh(n, live.refresh) })
	check("logout", func() (reply, error) { return c.do(n, "POST", "/v1/auth/logout", nil, bearer(live.access)...) })
	check("/v1/me", func() (reply, error) { return c.do(n, "GET", "/v1/me", nil, bearer(live.access)...) })
	check("/v1/sessions", func() (reply, error) { return c.do(n, "GET", "/v1/sessions", nil, bearer(live.access)...) })
	check("login", func() (reply, error) {
		return c.do(n, "POST", "/v1/auth/login", map[string]string{"email": email, "password": password})
	})
	wg.Wait()
	r := c.must(n, "GET", "/readyz", nil)
	checks, _ := r.body["checks"].(map[string]any)
	if r.code != http.StatusServiceUnavailable || checks["store"] != "unreachable" || checks["redis"] != "ok" || r.took > 3*time.Second {
		t.Errorf("/readyz with PostgreSQL silent and Redis up: %s after %v; want 503, store unreachable, redis ok, within 3 s", r, r.took.Round(time.Millisecond))
	}

	// The partition heals (cut what is stuck, then forward again): the
	// same process recovers.
	proxy.stop()
	proxy.start(t)
	c.waitReadiness(n, http.StatusOK, "store", "ok", 10*time.Second)
	c.login(n)
}
