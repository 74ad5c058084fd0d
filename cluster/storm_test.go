package cluster_test

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// storm is a set of clients, each owning one session and refreshing it in
// a loop through a random instance, as a real client behind a load
// balancer without health checks would. A client that gets no answer (the
// connection was refused or died mid-request), or a 503, retries the SAME
// token on another instance; a client that got an answer uses the token in
// it. Some answers are thrown away on purpose (a response lost on the
// way back), so the retry of a committed rotation is exercised every run.
type storm struct {
	c       *cluster
	clients []*stormClient
	// targets are the instances clients pick from; a dead one stays in
	// the list, as it would behind a load balancer.
	targets []*node
	// dropRate is the share of answers the clients pretend were lost.
	dropRate float64
	// pause between a client's refreshes.
	pause time.Duration
	// maxRequest bounds one request: a longer one fails the storm.
	maxRequest time.Duration

	stop chan struct{}
	wg   sync.WaitGroup

	successes, connErrors, unavailable, dropped atomic.Int64
	// missingRetryAfter counts 503 answers without Retry-After.
	missingRetryAfter atomic.Int64

	mu       sync.Mutex
	failures []string
	slowest  time.Duration
	codes    map[int]int
}

type stormClient struct {
	id      int
	session string
	// chain is every refresh token the client was given, oldest first:
	// chain[0] from the login, chain[i] the answer to presenting
	// chain[i-1].
	chain []string
	// access is the access token of the latest answer.
	access    string
	successes atomic.Int64
}

// newStorm logs n sessions in (round-robin over the running instances).
func newStorm(c *cluster, n int, targets []*node) *storm {
	c.t.Helper()
	s := &storm{c: c, targets: targets, stop: make(chan struct{}), codes: map[int]int{},
		maxRequest: 5 * time.Second, pause: 2 * time.Millisecond}
	for i := range n {
		tok := c.login(targets[i%len(targets)])
		s.clients = append(s.clients, &stormClient{id: i, session: tok.session, chain: []string{tok.refresh}, access: tok.access})
	}
	return s
}

func (s *storm) fail(format string, a ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = append(s.failures, fmt.Sprintf(format, a...))
}

// start runs the clients until halt.
func (s *storm) start() {
	for _, cl := range s.clients {
		s.wg.Go(func() { s.run(cl) })
	}
}

func (s *storm) halt() {
	close(s.stop)
	s.wg.Wait()
}

func (s *storm) stopped() bool {
	select {
	case <-s.stop:
		return true
	default:
		return false
	}
}

func (s *storm) run(cl *stormClient) {
	for !s.stopped() {
		if !s.step(cl) {
			return
		}
		time.Sleep(s.pause)
	}
}

// step refreshes the client's latest token once, retrying the same token
// on other instances until one answers. It reports false after a failure
// that ends the client.
func (s *storm) step(cl *stormClient) bool {
	tok := cl.chain[len(cl.chain)-1]
	first := rand.IntN(len(s.targets))
	for attempt := 0; attempt < 100; attempt++ {
		n := s.targets[(first+attempt)%len(s.targets)]
		r, err := s.c.refresh(n, tok)
		if r.took > s.maxRequest {
			s.fail("client %d: refresh on %s took %v (bound %v)", cl.id, n.name, r.took.Round(time.Millisecond), s.maxRequest)
		}
		s.mu.Lock()
		s.slowest = max(s.slowest, r.took)
		if err == nil {
			s.codes[r.code]++
		}
		s.mu.Unlock()
		switch {
		case err != nil && isConnError(err):
			s.connErrors.Add(1)
			time.Sleep(5 * time.Millisecond)
			continue
		case err != nil:
			s.fail("client %d: refresh on %s: %v", cl.id, n.name, err)
			return false
		case r.code == http.StatusServiceUnavailable:
			s.unavailable.Add(1)
			if r.header.Get("Retry-After") == "" {
				s.missingRetryAfter.Add(1)
			}
			time.Sleep(50 * time.Millisecond)
			continue
		case r.code != http.StatusOK:
			s.fail("client %d (session %s, token #%d): refresh on %s: %s — the session is lost", cl.id, cl.session, len(cl.chain)-1, n.name, r)
			return false
		}
		if sid := r.str("session_id"); sid != cl.session {
			s.fail("client %d: refresh answered session %s, want %s", cl.id, sid, cl.session)
			return false
		}
		next := r.str("refresh_token")
		if next == "" || slices.Contains(cl.chain, next) {
			s.fail("client %d: refresh on %s returned a token it had already (or none)", cl.id, n.name)
			return false
		}
		if rand.Float64() < s.dropRate && !s.stopped() {
			// The answer is "lost": retry the same token elsewhere.
			s.dropped.Add(1)
			continue
		}
		cl.chain = append(cl.chain, next)
		cl.access = r.str("access_token")
		cl.successes.Add(1)
		s.successes.Add(1)
		return true
	}
	s.fail("client %d: no instance answered after 100 attempts", cl.id)
	return false
}

// waitSuccesses waits until the storm has made n more successful
// refreshes, or fails the test after within.
func (s *storm) waitSuccesses(n int64, within time.Duration) {
	s.c.t.Helper()
	want := s.successes.Load() + n
	deadline := time.Now().Add(within)
	for s.successes.Load() < want {
		if f := s.failureList(); len(f) > 0 {
			s.c.t.Fatalf("the storm failed: %v", f)
		}
		if time.Now().After(deadline) {
			s.c.t.Fatalf("the storm made %d of %d refreshes in %v; failures: %v", s.successes.Load()-(want-n), n, within, s.failureList())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (s *storm) failureList() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.failures)
}

// verify checks, after halt, that every session can still move forward
// exactly once: the store holds exactly the generations the client saw
// (no rotation lost, none the client does not know of), one token per
// generation, the session is live, its latest token refreshes through one
// instance, and presented again through another (a retry inside the grace
// window) yields the identical successor.
func (s *storm) verify(via []*node) {
	t := s.c.t
	t.Helper()
	for _, f := range s.failureList() {
		t.Error(f)
	}
	for _, cl := range s.clients {
		sess := s.c.session(cl.session)
		if sess.Revoked() {
			t.Errorf("client %d: session %s revoked (%s)", cl.id, cl.session, sess.RevokeReason)
			continue
		}
		if sess.Generation != int64(len(cl.chain)) {
			t.Errorf("client %d: session at generation %d in the store, but the client holds %d tokens: a rotation was lost or forked", cl.id, sess.Generation, len(cl.chain))
			continue
		}
		gens := s.c.tokenGenerations(cl.session)
		if len(gens) != len(cl.chain) {
			t.Errorf("client %d: %d generations of refresh tokens stored, want %d", cl.id, len(gens), len(cl.chain))
		}
		for g, n := range gens {
			if n != 1 {
				t.Errorf("client %d: %d refresh tokens of generation %d", cl.id, n, g)
			}
		}
		a, b := via[cl.id%len(via)], via[(cl.id+1)%len(via)]
		latest := cl.chain[len(cl.chain)-1]
		next := s.c.mustRefresh(a, latest)
		if again := s.c.mustRefresh(b, latest); again.refresh != next.refresh {
			t.Errorf("client %d: the latest token yielded two different successors (on %s and %s): the session forked", cl.id, a.name, b.name)
		}
		if g := s.c.session(cl.session).Generation; g != int64(len(cl.chain)+1) {
			t.Errorf("client %d: generation %d after one more refresh, want %d", cl.id, g, len(cl.chain)+1)
		}
		for _, n := range via {
			if r := s.c.me(n, next.access); r.code != http.StatusOK {
				t.Errorf("client %d: access token refused by %s: %s", cl.id, n.name, r)
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t.Logf("storm: %d refreshes by %d clients, %d answers dropped on purpose, %d connection errors, %d × 503 (%d without Retry-After), slowest request %v, codes %v",
		s.successes.Load(), len(s.clients), s.dropped.Load(), s.connErrors.Load(), s.unavailable.Load(), s.missingRetryAfter.Load(), s.slowest.Round(time.Millisecond), s.codes)
	if n := s.missingRetryAfter.Load(); n > 0 {
		t.Errorf("%d answers 503 without Retry-After", n)
	}
}
