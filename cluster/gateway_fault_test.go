//go:build linux

package cluster_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	goredis "github.com/redis/go-redis/v9"
)

// pid is the id of n's process (0 if none).
func (n *node) pid() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return 0
	}
	return n.cmd.Process.Pid
}

// TestGatewayKillDuringRefreshStorm: two gateways share one PostgreSQL
// session store and one Redis; 16 browser sessions whose access tokens
// are due for refresh every 2 s are hammered through both at once (so
// both want to refresh each session). One gateway is killed with SIGKILL
// in the middle of refreshes, at the worst moment, for certain: the proxy
// in front of the auth server holds back the answers to that gateway's
// refreshes, and the kill comes once a session used only through it has
// its lease in the store and the auth server has answered one of them —
// a refresh token rotated at the auth server whose successor the gateway
// never stored. The other gateway carries on: every request to it is answered 200 (a session whose lease
// the dead one held is served with its still-valid token while the lease
// runs out), it takes the orphaned leases over once they expire, and
// afterwards every session works through it. No session is lost (none
// ended, each keeps its auth-server session) or forked (the auth server
// counted no refresh-token reuse, and holds one refresh token per
// generation of each session).
func TestGatewayKillDuringRefreshStorm(t *testing.T) {
	r := newGatewayRig(t, gwOptions{redis: true})
	a, b := r.gws[0], r.gws[1]
	sessions := r.signInMany(16)
	// probe is used only through a, so that the lease of its refresh
	// is a's.
	probe := r.signIn(a)
	probe.i = len(sessions)

	l := r.startLoad(sessions, 8*time.Second)
	defer l.halt()
	both := []*node{a, b}
	waitFor(t, "refreshes on both gateways", 30*time.Second, func() bool {
		return l.failed() || r.refreshes("ok", a) >= 8 && r.refreshes("ok", b) >= 8
	})
	if l.failed() {
		l.halt()
		t.FailNow()
	}
	waits := r.refreshes("waited", both...)
	t.Logf("before the kill: %v refreshes by %s, %v by %s, %v waits for another's", r.refreshes("ok", a), a.name,
		r.refreshes("ok", b), b.name, waits)
	if waits == 0 {
		t.Errorf("no request waited for another's refresh: the gateways never contended for a session")
	}

	// The probe's token is due (it was last refreshed at sign-in).
	waitFor(t, "the probe's refresh being due", 30*time.Second, func() bool {
		var due bool
		r.query("SELECT access_expires_at < now() + $1::interval - interval '200 milliseconds' FROM gateway_sessions WHERE id = $2",
			[]any{gwRefreshBefore, probe.id}, &due)
		return due
	})
	// From now on the auth server's answers to a's refreshes are held:
	// it rotates the refresh tokens, a never learns the new ones. The
	// probe's refresh starts on a; a is killed once the probe's lease is
	// in the store and the auth server has answered one of a's held
	// refreshes.
	r.issuer.hold(a.pid())
	_, probeVersion := r.lease(probe)
	go r.do(a, probe) // killed in flight
	var owner string
	waitFor(t, "the probe's refresh lease on "+a.name+" and an answered refresh held from it", 15*time.Second, func() bool {
		owner, _ = r.lease(probe)
		return owner != "" && r.issuer.answered.Load() > 0
	})
	l.markDead(a)
	a.kill()
	killedAt := time.Now()
	prefix := owner[:strings.LastIndexByte(owner, '-')+1]
	var orphans []string
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rows, err := r.openDB(ctx).Query(ctx, "SELECT id FROM gateway_sessions WHERE starts_with(lease_owner, $1)", prefix)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		orphans = append(orphans, id)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s killed (SIGKILL) holding %d refresh lease(s), the probe's included; %d of its refreshes were in flight, %d answered by the auth server and lost",
		a.name, len(orphans), r.issuer.held.Load(), r.issuer.answered.Load())
	okAtKill := map[*gwSession]int64{}
	for _, s := range sessions {
		okAtKill[s] = s.ok.Load()
	}

	// The probe's orphaned lease expires and b takes it over; meanwhile
	// b serves the probe with its current token, never an error.
	took := waitFor(t, "b taking the probe's lease over", 30*time.Second, func() bool {
		if got := r.get(b, probe); got.code != http.StatusOK || got.str("sid") != probe.sid {
			t.Fatalf("the probe on %s while %s's lease runs out: %s", b.name, a.name, got)
		}
		owner, v := r.lease(probe)
		return v > probeVersion && !strings.HasPrefix(owner, prefix)
	})
	t.Logf("the probe's lease was taken over and its session refreshed by %s %v after the kill", b.name, took.Round(time.Millisecond))
	waitFor(t, "every orphaned lease released", 30*time.Second, func() bool {
		var n int
		r.query("SELECT count(*) FROM gateway_sessions WHERE starts_with(lease_owner, $1)", []any{prefix}, &n)
		return n == 0
	})
	// The storm goes on through b alone: every session refreshed again.
	okB := r.refreshes("ok", b)
	waitFor(t, "refreshes on the survivor", 30*time.Second, func() bool {
		return l.failed() || r.refreshes("ok", b) >= okB+float64(len(sessions))
	})
	l.waitOK(int64(4*len(sessions)), 30*time.Second)
	l.halt()
	if l.connErrors.Load() == 0 {
		t.Errorf("no request hit the dead gateway: the kill was not exercised")
	}
	for _, s := range sessions {
		if s.ok.Load() <= okAtKill[s] {
			t.Errorf("session %d had no answer after the kill", s.i)
		}
	}
	t.Logf("the survivor took %v refreshes after the kill (%v in all, %v waits, %v lost leases), killed %v ago",
		r.refreshes("ok", b)-okB, r.refreshes("ok", b), r.refreshes("waited", b), r.refreshes("lost", b), time.Since(killedAt).Round(time.Millisecond))

	all := append(slices.Clone(sessions), probe)
	r.mustWork(all, b)
	r.noSessionEnded()
	if ended := r.c.sumMetric([]*node{b}, "latch_gateway_sessions_ended_total"); ended != 0 {
		t.Errorf("%s ended %v session(s)", b.name, ended)
	}
	// No fork at the auth server.
	o := outcomesOf(r.c, []*node{r.latch})
	t.Logf("refresh outcomes at the auth server: %v", o)
	if o["reused"] != 0 || o["revoked"] != 0 || o["invalid"] != 0 || o["rotated"] == 0 {
		t.Errorf("refresh outcomes at the auth server: %v, want rotations and grace replays only", o)
	}
	// An "error" there is a refresh request of the dead gateway cut
	// mid-way (the client went away; nothing was rotated): at most one
	// per lease it held, and never an error of the server's own, which it
	// would log.
	if o["error"] > float64(len(orphans)) || strings.Contains(r.latch.log.String(), "request failed") {
		t.Errorf("the auth server failed refreshes: %v errors for %d leases held by the dead gateway", o["error"], len(orphans))
	}
	// The refreshes whose answers the dead gateway never stored were
	// redone by the survivor with the same refresh token, and answered
	// from the grace window with the same successor: not a fork.
	if o["grace"] < 1 {
		t.Errorf("the auth server answered no refresh from its grace window: the survivor did not redo a refresh the dead gateway had lost")
	}
	if n := r.c.sumMetric([]*node{r.latch}, "latch_refresh_reuse_detections_total"); n != 0 {
		t.Errorf("the auth server detected refresh-token reuse %v time(s)", n)
	}
	for _, s := range all {
		gens := r.c.tokenGenerations(s.sid)
		if len(gens) < 2 {
			t.Errorf("session %d: auth-server session %s has %d refresh token generation(s): it was not refreshed", s.i, s.sid, len(gens))
		}
		for g, n := range gens {
			if n != 1 {
				t.Errorf("session %d forked: %d refresh tokens of generation %d", s.i, n, g)
			}
		}
	}
	r.c.no500s(r.latch)
}

// openDB connects to the session store (directly), closed when the test
// ends.
func (r *gwRig) openDB(ctx context.Context) *pgx.Conn {
	r.t.Helper()
	conn, err := pgx.Connect(ctx, r.db)
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// subscribers counts the subscribers of channel.
func subscribers(rc *goredis.Client, channel string) int64 {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	m, err := rc.PubSubNumSub(ctx, channel).Result()
	if err != nil {
		return -1
	}
	return m[channel]
}

// gwChannel is the gateways' fan-out channel.
const gwChannel = "latch-gateway:events"

// waitPoke waits for a refresh poke on sub.
func waitPoke(t *testing.T, msgs <-chan *goredis.Message, within time.Duration) {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case m := <-msgs:
			if strings.HasPrefix(m.Payload, "gw-refreshed:") {
				return
			}
		case <-deadline:
			t.Fatalf("no refresh poke on %s within %v", gwChannel, within)
		}
	}
}

// TestGatewayRedisRestart kills the gateways' private Redis under load
// and starts it again on the same port. Sessions survive: every request
// through either gateway is answered 200 before, during and after, and
// sessions keep being refreshed while Redis is down (waiters poll the
// store). /readyz stays ready. The gateways pick Redis up again by
// themselves: both resubscribe to the fan-out and refreshes are announced
// on it again.
func TestGatewayRedisRestart(t *testing.T) {
	r := newGatewayRig(t, gwOptions{redis: true})
	sessions := r.signInMany(8)
	rc := goredis.NewClient(&goredis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", r.redis.port), MaxRetries: -1})
	defer rc.Close()
	waitFor(t, "both gateways subscribed to "+gwChannel, 10*time.Second, func() bool { return subscribers(rc, gwChannel) == 2 })
	sub := rc.Subscribe(t.Context(), gwChannel)
	if _, err := sub.Receive(t.Context()); err != nil {
		t.Fatal(err)
	}
	l := r.startLoad(sessions, 8*time.Second)
	defer l.halt()
	waitPoke(t, sub.Channel(), 15*time.Second)
	sub.Close()

	r.redis.kill()
	down := time.Now()
	okBefore := r.refreshes("ok", r.gws...)
	// Every session is refreshed again with Redis down.
	waitFor(t, "refreshes with Redis down", 30*time.Second, func() bool {
		return l.failed() || r.refreshes("ok", r.gws...) >= okBefore+float64(2*len(sessions))
	})
	for _, n := range r.gws {
		if got := r.c.must(n, "GET", "/readyz", nil); got.code != http.StatusOK {
			t.Errorf("/readyz on %s with Redis down: %s", n.name, got)
		}
	}
	okDown := r.refreshes("ok", r.gws...) - okBefore
	if err := r.redis.start(); err != nil {
		t.Fatal(err)
	}
	t.Logf("Redis down for %v, %v refreshes meanwhile; restarted on the same port", time.Since(down).Round(time.Millisecond), okDown)
	back := waitFor(t, "both gateways resubscribed", 20*time.Second, func() bool { return subscribers(rc, gwChannel) == 2 })
	t.Logf("both gateways resubscribed %v after the restart", back.Round(time.Millisecond))
	sub = rc.Subscribe(t.Context(), gwChannel)
	defer sub.Close()
	if _, err := sub.Receive(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitPoke(t, sub.Channel(), 15*time.Second)
	l.waitOK(int64(4*len(sessions)), 30*time.Second)
	l.halt()
	r.mustWork(sessions, r.gws...)
	r.noSessionEnded()
	for _, n := range r.gws {
		if n.starts != 1 || !n.running() {
			t.Errorf("%s was restarted or died", n.name)
		}
	}
}

// TestGatewayPostgresOutage puts a TCP proxy between the gateways and
// PostgreSQL and cuts it (every connection closed, new ones refused):
// session requests through either gateway answer 503 JSON with
// Retry-After within a bound — not 401, not a redirect to sign-in, not a
// hang, and the session cookie is left alone — and /readyz says not
// ready. Once the proxy is back, the same processes recover by
// themselves and every session is still valid.
func TestGatewayPostgresOutage(t *testing.T) {
	const bound = 5 * time.Second
	proxy := startProxy(t, postgresHostPort(t))
	r := newGatewayRig(t, gwOptions{postgresAddr: proxy.addr, redis: true})
	sessions := r.signInMany(4)
	r.mustWork(sessions, r.gws...)

	proxy.stop()
	down := time.Now()
	// Every session's access token becomes due for refresh during the
	// outage (the test reads the store directly).
	waitFor(t, "every session due for refresh", 20*time.Second, func() bool {
		var n int
		r.query("SELECT count(*) FROM gateway_sessions WHERE access_expires_at > now() + $1::interval", []any{gwRefreshBefore}, &n)
		return n == 0
	})
	for _, n := range r.gws {
		for _, s := range sessions {
			for _, h := range [][]string{
				nil, // XHR
				{"Accept", "text/html", "Sec-Fetch-Mode", "navigate"}, // a navigation
			} {
				got, err := r.do(n, s, h...)
				if err != nil {
					t.Fatalf("session %d on %s with PostgreSQL down: %v", s.i, n.name, err)
				}
				what := fmt.Sprintf("session %d on %s (%v)", s.i, n.name, h)
				expectUnavailable(t, what, got, bound)
				for _, c := range got.header.Values("Set-Cookie") {
					if strings.HasPrefix(c, gwCookie+"=") {
						t.Errorf("%s with PostgreSQL down touched the session cookie: %s", what, c)
					}
				}
			}
		}
		got := r.c.must(n, "GET", "/auth/session", nil, "Cookie", gwCookie+"="+sessions[0].cookie)
		if got.code != http.StatusServiceUnavailable {
			t.Errorf("/auth/session on %s with PostgreSQL down: %s, want 503 (not signed out)", n.name, got)
		}
		ready := r.c.must(n, "GET", "/readyz", nil)
		if ready.code != http.StatusServiceUnavailable || !strings.Contains(string(ready.raw), "session store") {
			t.Errorf("/readyz on %s with PostgreSQL down: %s, want 503 naming the session store", n.name, ready)
		}
		if ready.took > bound {
			t.Errorf("/readyz on %s with PostgreSQL down took %v", n.name, ready.took.Round(time.Millisecond))
		}
	}
	// A little later (the pools have noticed) it is still 503, not a
	// sign-out, and still bounded.
	for _, n := range r.gws {
		expectUnavailable(t, "a later request on "+n.name, r.get(n, sessions[1]), bound)
	}

	proxy.start(t)
	t.Logf("PostgreSQL cut for %v", time.Since(down).Round(time.Millisecond))
	for _, n := range r.gws {
		took := waitFor(t, n.name+" ready again", 20*time.Second, func() bool {
			return r.c.must(n, "GET", "/readyz", nil).code == http.StatusOK
		})
		t.Logf("%s ready %v after the proxy came back", n.name, took.Round(time.Millisecond))
	}
	r.mustWork(sessions, r.gws...)
	// Refreshes work again (the tokens are due every 2 s), and so does
	// signing in.
	ok := r.refreshes("ok", r.gws...)
	waitFor(t, "refreshes after the outage", 20*time.Second, func() bool {
		r.mustWork(sessions, r.gws...)
		return r.refreshes("ok", r.gws...) >= ok+float64(len(sessions))
	})
	r.mustWork([]*gwSession{r.signIn(r.gws[1])}, r.gws...)
	r.noSessionEnded()
	for _, n := range r.gws {
		if n.starts != 1 || !n.running() {
			t.Errorf("%s was restarted or died", n.name)
		}
	}
}

// TestGatewayPostgresPartition is the outage PostgreSQL does not
// announce: the network between the gateways and the session store goes
// silent (bytes stop flowing, no connection is closed, new ones are
// accepted and never answered). Session requests must still answer 503
// JSON within a bound, and /readyz not ready, rather than hang; once the
// partition heals, the same processes recover.
func TestGatewayPostgresPartition(t *testing.T) {
	const bound = 7 * time.Second
	// rowCacheBound is how long a gateway may keep answering from the
	// session rows it cached before the partition (bff's 500 ms row
	// cache, with room for a loaded machine).
	const rowCacheBound = 3 * time.Second
	proxy := startProxy(t, postgresHostPort(t))
	r := newGatewayRig(t, gwOptions{postgresAddr: proxy.addr})
	sessions := r.signInMany(2)
	r.mustWork(sessions, r.gws...)

	proxy.freeze()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var slowest time.Duration
	for _, n := range r.gws {
		for _, s := range sessions {
			wg.Go(func() {
				// A row the gateway read within its row cache's lifetime
				// (500 ms) still serves: answers turn to 503 once it
				// lapses, and must within rowCacheBound.
				began := time.Now()
				got, err := r.do(n, s)
				for err == nil && got.code == http.StatusOK && time.Since(began) < rowCacheBound {
					got, err = r.do(n, s)
				}
				mu.Lock()
				slowest = max(slowest, got.took)
				mu.Unlock()
				if err != nil {
					t.Errorf("session %d on %s with PostgreSQL silent: no answer after %v: %v", s.i, n.name, got.took.Round(time.Millisecond), err)
					return
				}
				expectUnavailable(t, fmt.Sprintf("session %d on %s", s.i, n.name), got, bound)
			})
		}
		wg.Go(func() {
			got, err := r.c.do(n, "GET", "/readyz", nil)
			if err != nil || got.code != http.StatusServiceUnavailable || got.took > 3*time.Second {
				t.Errorf("/readyz on %s with PostgreSQL silent: %s %v after %v, want 503 within 3 s", n.name, got, err, got.took.Round(time.Millisecond))
			}
		})
	}
	wg.Wait()
	t.Logf("session requests with PostgreSQL silent answered within %v", slowest.Round(time.Millisecond))

	proxy.stop()
	proxy.start(t)
	for _, n := range r.gws {
		waitFor(t, n.name+" ready again", 20*time.Second, func() bool {
			return r.c.must(n, "GET", "/readyz", nil).code == http.StatusOK
		})
	}
	r.mustWork(sessions, r.gws...)
	r.noSessionEnded()
}
