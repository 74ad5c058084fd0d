//go:build linux

package cluster_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchauth/latch/auth"
)

// gwCookie is the gateway's session cookie on a loopback public URL.
const gwCookie = "__Host-latch_gw"

// Timing of the gateway rigs: access tokens live 30 s at the auth server
// and the gateways refresh them when less than 28 s is left, so that
// every session in use is refreshed about every 2 s while a token whose
// refresh is held up stays valid for long after (a refresh lease lasts
// 6 s without renewal).
const (
	gwAccessTTL     = "30s"
	gwRefreshBefore = "28s"
)

// gwRig is one `latch serve` (PostgreSQL, its own Redis; its issuer is
// its own URL, which the gateways discover), a small upstream, and `latch
// gateway` processes sharing one PostgreSQL session store (a schema of
// its own) and, optionally, a private Redis. The gateways share one public
// URL (as behind a load balancer); the test talks to each directly.
type gwRig struct {
	t     *testing.T
	c     *cluster
	latch *node
	// issuer is the auth server's URL: a proxy in front of it that can
	// hold the answers to one process's refresh requests.
	issuer *latchProxy
	secret string // the gw client's secret
	kek    string // the gateways' shared key-encryption key
	store  string // the session store as the gateways reach it
	db     string // the session store as the test reaches it
	redis  *redisServer
	public string
	gws    []*node
	// upstream counts the requests the upstream answered.
	upstream atomic.Int64
}

// gwOptions shape a gwRig.
type gwOptions struct {
	// postgresAddr, if set, is the host:port the gateways use for the
	// session store (a proxy).
	postgresAddr string
	// redis gives the gateways a private Redis.
	redis bool
}

func newGatewayRig(t *testing.T, o gwOptions) *gwRig {
	t.Helper()
	lp := startLatchProxy(t)
	c := newCluster(t, options{nodes: 1, env: map[string]string{"LATCH_TOKENS_ACCESS_TTL": gwAccessTTL, "LATCH_ISSUER": lp.base}})
	lp.setTarget(c.nodes[0].addr)
	c.addUser(email, password)
	r := &gwRig{t: t, c: c, latch: c.nodes[0], issuer: lp}
	for i := range 2 {
		n := &node{name: fmt.Sprintf("gw%d", i+1), addr: fmt.Sprintf("127.0.0.1:%d", freePort(t)),
			dataDir: filepath.Join(t.TempDir(), fmt.Sprintf("gw%d", i+1))}
		n.base = "http://" + n.addr
		r.gws = append(r.gws, n)
	}
	r.public = r.gws[0].base
	r.secret = r.addGatewayClient()
	r.kek = c.generateKEK()
	schema := newSchema(t)
	r.db, r.store = schemaURL(t, schema, ""), schemaURL(t, schema, o.postgresAddr)
	if o.redis {
		r.redis = startRedis(t)
	}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.upstream.Add(1)
		claims := map[string]any{}
		if tok, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer "); ok {
			if parts := strings.Split(tok, "."); len(parts) == 3 {
				if b, err := base64.RawURLEncoding.DecodeString(parts[1]); err == nil {
					json.Unmarshal(b, &claims)
				}
			}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"sid": claims["sid"], "jti": claims["jti"]})
	}))
	t.Cleanup(up.Close)
	for _, n := range r.gws {
		if err := os.MkdirAll(n.dataDir, 0o700); err != nil {
			t.Fatal(err)
		}
		cfg := fmt.Sprintf("addr: %s\npublic_url: %s\nissuer: %s\nclient_id: gw\ndata_dir: %s\n"+
			"session:\n  refresh_before: %s\nroutes:\n  - path: /api/\n    upstream: %s\n    auth: session\n",
			n.addr, r.public, lp.base, n.dataDir, gwRefreshBefore, up.URL)
		if err := os.WriteFile(filepath.Join(n.dataDir, "gateway.yaml"), []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, n := range r.gws {
			n.kill()
		}
		for _, n := range r.gws {
			logs := n.log.String()
			if strings.Contains(logs, "panic") {
				t.Errorf("%s logged a panic:\n%s", n.name, tail(logs, 8000))
			} else if t.Failed() {
				t.Logf("---- log of %s (last 6 KB) ----\n%s", n.name, tail(logs, 6000))
			}
		}
	})
	errs := make(chan error, len(r.gws))
	for _, n := range r.gws {
		go func() { errs <- r.launch(n) }()
	}
	for range r.gws {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	return r
}

// addGatewayClient registers the gateway's confidential client with the
// CLI, as an operator would, and returns its secret.
func (r *gwRig) addGatewayClient() string {
	r.t.Helper()
	out, err := r.c.run("", "client", "add", "--data-dir", filepath.Join(r.t.TempDir(), "cli"), "--id", "gw", "--generate-secret",
		"--redirect-uri", r.public+"/auth/callback", "--post-logout-redirect-uri", r.public+"/",
		"--backchannel-logout-uri", r.public+"/auth/backchannel-logout", "--first-party", "--can", "read-revocations")
	if err != nil {
		r.t.Fatalf("latch client add: %v\n%s", err, out)
	}
	for line := range strings.SplitSeq(out, "\n") {
		if s, ok := strings.CutPrefix(line, "client secret (shown once, store it now): "); ok {
			return strings.TrimSpace(s)
		}
	}
	r.t.Fatalf("latch client add printed no secret:\n%s", out)
	return ""
}

// environ is a gateway's environment: the test's own without any LATCH_*
// variable, plus the secret, the KEK, the store and Redis.
func (r *gwRig) environ() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LATCH_") {
			env = append(env, kv)
		}
	}
	env = append(env, "LATCH_GATEWAY_CLIENT_SECRET="+r.secret, "LATCH_GATEWAY_KEK="+r.kek, "LATCH_GATEWAY_DATABASE_URL="+r.store)
	if r.redis != nil {
		env = append(env, "LATCH_GATEWAY_REDIS_URL="+r.redis.url())
	}
	return env
}

// launch starts a gateway process and waits until /readyz answers 200.
func (r *gwRig) launch(n *node) error {
	cmd := exec.Command(latchBin, "gateway", "--config", filepath.Join(n.dataDir, "gateway.yaml"))
	cmd.Env = r.environ()
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
		res, err := r.c.do(n, "GET", "/readyz", nil)
		if err == nil && res.code == http.StatusOK {
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("%s exited before it was ready (%v):\n%s", n.name, cmd.ProcessState, tail(n.log.String(), 4000))
		case <-time.After(25 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready within 30 s (last: %v %s):\n%s", n.name, err, res, tail(n.log.String(), 4000))
		}
	}
}

// httpsJar is a cookie jar that treats every URL as https: loopback
// origins are secure contexts to browsers, so the gateway's __Host-
// (Secure) cookie rides its plain-http loopback URL, which Go's jar alone
// would refuse.
type httpsJar struct{ *cookiejar.Jar }

func asHTTPS(u *url.URL) *url.URL { c := *u; c.Scheme = "https"; return &c }

func (j httpsJar) SetCookies(u *url.URL, cs []*http.Cookie) { j.Jar.SetCookies(asHTTPS(u), cs) }
func (j httpsJar) Cookies(u *url.URL) []*http.Cookie        { return j.Jar.Cookies(asHTTPS(u)) }

// gwSession is a browser session at the gateways.
type gwSession struct {
	i      int
	cookie string // the cookie's value
	id     string // its id in the session store
	sid    string // the auth server's session behind it

	ok atomic.Int64 // requests answered 200
}

// signIn signs a new browser in at Latch and then at the gateway via,
// following the redirects by hand (the callback on via, which shares the
// public URL's host), and returns the session.
func (r *gwRig) signIn(via *node) *gwSession {
	r.t.Helper()
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: httpsJar{jar}, Timeout: 15 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	do := func(method, u string, body []byte) (*http.Response, string) {
		r.t.Helper()
		req, err := http.NewRequest(method, u, bytes.NewReader(body))
		if err != nil {
			r.t.Fatal(err)
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		res, err := hc.Do(req)
		if err != nil {
			r.t.Fatalf("sign-in: %s %s: %v", method, u, err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}
	body, _ := json.Marshal(map[string]string{"email": email, "password": password, "client_id": auth.AccountClientID})
	if res, text := do("POST", r.issuer.base+"/v1/auth/login", body); res.StatusCode != http.StatusOK {
		r.t.Fatalf("sign-in at Latch: %d %s", res.StatusCode, text)
	}
	res, text := do("GET", via.base+"/auth/login?return_to=/app", nil)
	if res.StatusCode != http.StatusFound || !strings.HasPrefix(res.Header.Get("Location"), r.issuer.base+"/oauth2/authorize?") {
		r.t.Fatalf("/auth/login on %s: %d to %q %s", via.name, res.StatusCode, res.Header.Get("Location"), text)
	}
	res, text = do("GET", res.Header.Get("Location"), nil)
	loc := res.Header.Get("Location")
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, r.public+"/auth/callback?") {
		r.t.Fatalf("authorize: %d to %q %s", res.StatusCode, loc, text)
	}
	cb, _ := url.Parse(loc)
	cb.Host = via.addr
	res, text = do("GET", cb.String(), nil)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/app" {
		r.t.Fatalf("callback on %s: %d to %q %s", via.name, res.StatusCode, res.Header.Get("Location"), text)
	}
	s := &gwSession{}
	for _, c := range res.Cookies() {
		if c.Name == gwCookie {
			s.cookie = c.Value
		}
	}
	raw, err := base64.RawURLEncoding.DecodeString(s.cookie)
	if err != nil || len(raw) != 32 {
		r.t.Fatalf("callback on %s set no well-formed %s cookie: %v", via.name, gwCookie, res.Header["Set-Cookie"])
	}
	sum := sha256.Sum256(raw)
	s.id = hex.EncodeToString(sum[:])
	a := r.get(via, s)
	if a.code != http.StatusOK || a.str("sid") == "" {
		r.t.Fatalf("first request of a new session on %s: %s", via.name, a)
	}
	s.sid = a.str("sid")
	return s
}

// signInMany signs n sessions in, alternating over the gateways.
func (r *gwRig) signInMany(n int) []*gwSession {
	r.t.Helper()
	var out []*gwSession
	for i := range n {
		s := r.signIn(r.gws[i%len(r.gws)])
		s.i = i
		out = append(out, s)
	}
	return out
}

// do sends an XHR-style request with the session's cookie to the API
// route through gateway n. Safe from any goroutine.
func (r *gwRig) do(n *node, s *gwSession, hdr ...string) (reply, error) {
	return r.c.do(n, "GET", "/api/x", nil, append([]string{"Cookie", gwCookie + "=" + s.cookie, "Accept", "application/json"}, hdr...)...)
}

// get is do that ends the test on a transport error. Main goroutine only.
func (r *gwRig) get(n *node, s *gwSession, hdr ...string) reply {
	r.t.Helper()
	a, err := r.do(n, s, hdr...)
	if err != nil {
		r.t.Fatalf("GET /api/x on %s: %v", n.name, err)
	}
	return a
}

// mustWork checks that every session works through every given gateway,
// as the same auth-server session as before.
func (r *gwRig) mustWork(sessions []*gwSession, gws ...*node) {
	r.t.Helper()
	for _, n := range gws {
		for _, s := range sessions {
			if a := r.get(n, s); a.code != http.StatusOK || a.str("sid") != s.sid {
				r.t.Errorf("session %d on %s: %s (want 200 with sid %s)", s.i, n.name, a, s.sid)
			}
		}
	}
}

// query runs a one-row query on the session store (directly, not through
// any proxy).
func (r *gwRig) query(sql string, args []any, dest ...any) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, r.db)
	if err != nil {
		r.t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if err := conn.QueryRow(ctx, sql, args...).Scan(dest...); err != nil {
		r.t.Fatalf("%s: %v", sql, err)
	}
}

// lease returns a stored session's lease owner and version.
func (r *gwRig) lease(s *gwSession) (owner string, version int64) {
	r.t.Helper()
	r.query("SELECT lease_owner, version FROM gateway_sessions WHERE id = $1", []any{s.id}, &owner, &version)
	return owner, version
}

// noSessionEnded fails the test if the store holds an ended session.
func (r *gwRig) noSessionEnded() {
	r.t.Helper()
	var n int
	var reasons string
	r.query("SELECT count(*), coalesce(string_agg(end_reason, ','), '') FROM gateway_sessions WHERE ended_at IS NOT NULL", nil, &n, &reasons)
	if n != 0 {
		r.t.Errorf("%d gateway session(s) ended: %s", n, reasons)
	}
}

// waitFor polls cond until it holds, failing the test after within.
func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// gwLoad hammers every session through the gateways concurrently: each
// session has a worker per gateway, each worker alternating between the
// gateways. An answer
// other than 200 with the session's own sid fails the test; so does a
// transport error from a gateway not marked dead (a dead one's requests
// are retried on the next gateway, as a load balancer would).
type gwLoad struct {
	r        *gwRig
	sessions []*gwSession
	bound    time.Duration // the longest a request may take
	stop     chan struct{}
	wg       sync.WaitGroup

	ok, connErrors atomic.Int64
	mu             sync.Mutex
	dead           map[*node]bool
	failures       []string
	slowest        time.Duration
}

func (r *gwRig) startLoad(sessions []*gwSession, bound time.Duration) *gwLoad {
	l := &gwLoad{r: r, sessions: sessions, bound: bound, stop: make(chan struct{}), dead: map[*node]bool{}}
	for _, s := range sessions {
		for w := range len(r.gws) {
			l.wg.Go(func() { l.run(s, s.i+w) })
		}
	}
	return l
}

// markDead says that n is gone on purpose.
func (l *gwLoad) markDead(n *node) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.dead[n] = true
}

func (l *gwLoad) isDead(n *node) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.dead[n]
}

func (l *gwLoad) fail(format string, a ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.failures) < 50 {
		l.failures = append(l.failures, fmt.Sprintf(format, a...))
	}
}

// run is one worker of session s: the session has one per gateway, so
// that both gateways want to refresh it at once.
func (l *gwLoad) run(s *gwSession, first int) {
	gws := l.r.gws
	for k := first; ; k++ {
		select {
		case <-l.stop:
			return
		default:
		}
		answered := false
		for attempt := range len(gws) {
			n := gws[(k+attempt)%len(gws)]
			a, err := l.r.do(n, s)
			l.mu.Lock()
			l.slowest = max(l.slowest, a.took)
			l.mu.Unlock()
			if a.took > l.bound {
				l.fail("session %d on %s: request took %v (bound %v)", s.i, n.name, a.took.Round(time.Millisecond), l.bound)
			}
			if err != nil {
				if isConnError(err) && l.isDead(n) {
					l.connErrors.Add(1)
					continue
				}
				l.fail("session %d on %s: %v", s.i, n.name, err)
				return
			}
			if a.code != http.StatusOK || a.str("sid") != s.sid {
				l.fail("session %d on %s: %s (want 200 with sid %s)", s.i, n.name, a, s.sid)
				return
			}
			s.ok.Add(1)
			l.ok.Add(1)
			answered = true
			break
		}
		if !answered {
			l.fail("session %d: no gateway answered", s.i)
			return
		}
	}
}

// halt stops the load and fails the test with what went wrong.
func (l *gwLoad) halt() {
	l.r.t.Helper()
	select {
	case <-l.stop:
		return
	default:
	}
	close(l.stop)
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.r.t.Logf("load: %d requests answered 200, %d refused by a dead gateway and retried, slowest %v",
		l.ok.Load(), l.connErrors.Load(), l.slowest.Round(time.Millisecond))
	for _, f := range l.failures {
		l.r.t.Error(f)
	}
}

// waitOK waits until the load has had more answers than now.
func (l *gwLoad) waitOK(more int64, within time.Duration) {
	l.r.t.Helper()
	target := l.ok.Load() + more
	waitFor(l.r.t, fmt.Sprintf("%d more answers under load", more), within, func() bool {
		return l.ok.Load() >= target || l.failed()
	})
}

func (l *gwLoad) failed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.failures) > 0
}

// refreshes sums latch_gateway_refreshes_total{outcome} over the given
// gateways.
func (r *gwRig) refreshes(outcome string, gws ...*node) float64 {
	r.t.Helper()
	return r.c.sumMetric(gws, "latch_gateway_refreshes_total", `outcome="`+outcome+`"`)
}
