package cluster_test

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/latchauth/latch"
)

// propagationBound is how soon every instance must enforce a revocation
// made through another one.
const propagationBound = time.Second

// TestMultiInstance runs three `latch serve` processes on one PostgreSQL
// schema and one Redis, and checks that they behave as one server: tokens
// issued by one are honoured by the others, a logout through one is
// enforced by all within a second, concurrent refreshes of one token
// through all of them never fork the session, and reuse is detected
// whichever instance sees it.
func TestMultiInstance(t *testing.T) {
	const grace = 2 * time.Second
	c := newCluster(t, options{env: map[string]string{"LATCH_TOKENS_REFRESH_GRACE": grace.String()}})
	c.addUser(email, password)
	n1, n2, n3 := c.nodes[0], c.nodes[1], c.nodes[2]

	t.Run("LoginRefreshLogoutAcrossInstances", func(t *testing.T) {
		c := c.with(t)
		var lat []time.Duration
		for round := range 5 {
			// Rotate the roles so that every instance logs in, refreshes,
			// logs out and enforces in turn.
			a, b, d := c.nodes[round%3], c.nodes[(round+1)%3], c.nodes[(round+2)%3]
			first := c.login(a)
			for _, n := range c.nodes {
				if r := c.me(n, first.access); r.code != http.StatusOK {
					t.Fatalf("round %d: token issued by %s refused by %s: %s", round, a.name, n.name, r)
				}
			}
			second := c.mustRefresh(b, first.refresh)
			if second.session != first.session || second.refresh == first.refresh {
				t.Fatalf("round %d: refresh on %s: session %s→%s, refresh token changed: %v", round, b.name, first.session, second.session, second.refresh != first.refresh)
			}
			for _, n := range c.nodes {
				if r := c.me(n, second.access); r.code != http.StatusOK {
					t.Fatalf("round %d: token issued by %s refused by %s: %s", round, b.name, n.name, r)
				}
			}
			r := c.must(d, "POST", "/v1/auth/logout", nil, bearer(second.access)...)
			if r.code != http.StatusNoContent {
				t.Fatalf("round %d: logout on %s: %s", round, d.name, r)
			}
			at := time.Now()
			// The instance that logged in must refuse the session's first
			// access token, and every instance the latest one.
			lat = append(lat, c.waitRejected(a, first.access, at, propagationBound))
			for _, n := range []*node{b, d} {
				lat = append(lat, c.waitRejected(n, second.access, at, propagationBound))
			}
			for _, n := range c.nodes {
				if r, _ := c.refresh(n, second.refresh); r.code != http.StatusUnauthorized {
					t.Fatalf("round %d: refresh token of a logged-out session on %s: %s", round, n.name, r)
				}
			}
		}
		slices.Sort(lat)
		t.Logf("logout → 401 on the other instances, %d samples: min %v, median %v, max %v",
			len(lat), lat[0].Round(time.Microsecond), lat[len(lat)/2].Round(time.Microsecond), lat[len(lat)-1].Round(time.Microsecond))
	})

	t.Run("ConcurrentRefreshOfOneToken", func(t *testing.T) {
		c := c.with(t)
		before := c.refreshOutcomes()
		tok := c.login(n1)
		const clients = 200
		type result struct {
			r   reply
			err error
		}
		results := make([]result, clients)
		startGun := make(chan struct{})
		var wg sync.WaitGroup
		for i := range clients {
			wg.Go(func() {
				<-startGun
				r, err := c.refresh(c.nodes[i%3], tok.refresh)
				results[i] = result{r, err}
			})
		}
		began := time.Now()
		close(startGun)
		wg.Wait()
		took := time.Since(began)

		successors := map[string]int{}
		codes := map[int]int{}
		var slowest time.Duration
		for i, res := range results {
			if res.err != nil {
				t.Fatalf("refresh #%d on %s: %v", i, c.nodes[i%3].name, res.err)
			}
			codes[res.r.code]++
			slowest = max(slowest, res.r.took)
			if res.r.code != http.StatusOK {
				continue
			}
			if sid := res.r.str("session_id"); sid != tok.session {
				t.Errorf("refresh #%d answered session %s, want %s", i, sid, tok.session)
			}
			successors[res.r.str("refresh_token")]++
		}
		t.Logf("%d concurrent refreshes of one token over 3 instances in %v (slowest %v): codes %v, %d distinct successors",
			clients, took.Round(time.Millisecond), slowest.Round(time.Millisecond), codes, len(successors))
		if codes[http.StatusOK] != clients {
			t.Fatalf("not every refresh succeeded: %v (grace is %v; a refresh answered after the window counts as reuse)", codes, grace)
		}
		if len(successors) != 1 {
			t.Fatalf("%d distinct successors of one token, want exactly 1: %v", len(successors), successors)
		}
		var next string
		for s := range successors {
			next = s
		}

		// In the store: one rotation, one token per generation.
		sess := c.session(tok.session)
		if sess.Generation != 2 || sess.Revoked() {
			t.Fatalf("session after the storm: generation %d, revoked %v; want generation 2, live", sess.Generation, sess.Revoked())
		}
		if g := c.tokenGenerations(tok.session); len(g) != 2 || g[1] != 1 || g[2] != 1 {
			t.Fatalf("refresh tokens per generation = %v, want map[1:1 2:1]", g)
		}
		delta := c.refreshOutcomes().minus(before)
		if delta["rotated"] != 1 || delta["grace"] != clients-1 || delta["reused"] != 0 {
			t.Errorf("refresh outcomes over the cluster = %v, want rotated 1, grace %d, reused 0", delta, clients-1)
		}

		// The successor refreshes once, forward.
		third := c.mustRefresh(n3, next)
		if third.refresh == next || third.session != tok.session {
			t.Fatalf("successor's refresh: %+v", third)
		}
		if g := c.session(tok.session).Generation; g != 3 {
			t.Fatalf("generation after the successor's refresh = %d, want 3", g)
		}
		// The original token is two generations behind: reuse, whatever
		// the grace window, and the whole session dies everywhere.
		if r, _ := c.refresh(n1, tok.refresh); r.code != http.StatusUnauthorized || r.str("error") != "invalid_grant" {
			t.Fatalf("original token two generations back on %s: %s, want 401 invalid_grant", n1.name, r)
		}
		if r, _ := c.refresh(n2, third.refresh); r.code != http.StatusUnauthorized {
			t.Fatalf("latest token of a session killed for reuse on %s: %s, want 401", n2.name, r)
		}
		at := time.Now()
		for _, n := range c.nodes {
			c.waitRejected(n, third.access, at, propagationBound)
		}
		c.no500s()
	})

	t.Run("ReuseDetectedAcrossInstances", func(t *testing.T) {
		c := c.with(t)
		a := c.login(n1)
		sub := c.me(n1, a.access).str("sub")
		b := c.mustRefresh(n1, a.refresh)
		// Inside the window the previous token yields the same successor,
		// on any instance.
		if again := c.mustRefresh(n2, a.refresh); again.refresh != b.refresh {
			t.Fatalf("previous token inside the grace window on %s yielded another successor", n2.name)
		}
		rotated := c.session(a.session).RotatedAt
		// Move past the window (the only wait in this test: the window is
		// measured on the server's clock, which is this machine's).
		if d := time.Until(rotated.Add(grace + 200*time.Millisecond)); d > 0 {
			time.Sleep(d)
		}
		r, _ := c.refresh(n2, a.refresh)
		if r.code != http.StatusUnauthorized || r.str("error") != "invalid_grant" {
			t.Fatalf("previous token after the grace window on %s: %s, want 401 invalid_grant", n2.name, r)
		}
		at := time.Now()
		if r, _ := c.refresh(n3, b.refresh); r.code != http.StatusUnauthorized {
			t.Fatalf("successor after reuse was detected, on %s: %s, want 401 (session revoked)", n3.name, r)
		}
		for _, n := range c.nodes {
			c.waitRejected(n, b.access, at, propagationBound)
		}
		sess := c.session(a.session)
		if !sess.Revoked() || sess.RevokeReason != latch.EventRefreshReused {
			t.Fatalf("session after reuse: revoked %v, reason %q", sess.Revoked(), sess.RevokeReason)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		events, err := c.openStore().EventsByUser(ctx, sub, 50)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, e := range events {
			if e.Type == latch.EventRefreshReused && e.SessionID == a.session {
				found = true
			}
		}
		if !found {
			t.Errorf("no %s event for session %s", latch.EventRefreshReused, a.session)
		}
	})
}

// with returns a copy of c reporting to t (a subtest).
func (c *cluster) with(t *testing.T) *cluster {
	return &cluster{
		t: t, schema: c.schema, redis: c.redis, env: c.env, nodes: c.nodes, http: c.http,
		storeURL: c.storeURL, store: c.store,
	}
}

// outcomes are refresh counts by outcome, summed over the cluster.
type outcomes map[string]float64

func (c *cluster) refreshOutcomes() outcomes {
	c.t.Helper()
	o := outcomes{}
	for _, name := range []string{"rotated", "grace", "reused", "revoked", "invalid", "expired", "error"} {
		o[name] = c.sumMetric(c.nodes, "latch_refreshes_total", `outcome="`+name+`"`)
	}
	return o
}

func (o outcomes) minus(p outcomes) outcomes {
	d := outcomes{}
	for k, v := range o {
		d[k] = v - p[k]
	}
	return d
}
