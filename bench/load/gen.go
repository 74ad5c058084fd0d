package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// newClient returns an HTTP client whose pool keeps a connection per
// worker and instance, so connection setup is not measured.
func newClient(workers int) *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        0, // no limit
			MaxIdleConnsPerHost: workers,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
			ForceAttemptHTTP2:   false,
		},
	}
}

// outcome of one request: ok, or the HTTP status (0 for a transport
// error) and a short description.
type outcome struct {
	ok     bool
	status int
	detail string
}

// do sends req and reads the whole body.
func do(hc *http.Client, req *http.Request) (int, []byte, error) {
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, body, err
}

func failure(status int, body []byte, err error) outcome {
	if err != nil {
		return outcome{status: status, detail: err.Error()}
	}
	d := strings.TrimSpace(string(body))
	if len(d) > 200 {
		d = d[:200]
	}
	return outcome{status: status, detail: d}
}

// tokens is the part of a token response the benchmark reads.
type tokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	SessionID    string `json:"session_id"`
}

// target is the topology as the load generator sees it: its instances,
// spread round-robin.
type target struct {
	bases []string
	next  atomic.Uint64
}

func (t *target) pick() string {
	return t.bases[int(t.next.Add(1)-1)%len(t.bases)]
}

func jsonPost(ctx context.Context, u string, body any) *http.Request {
	b, _ := json.Marshal(body)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	return req
}

// login signs the user in at base, retrying 503 (hashing saturated) a
// few times.
func login(ctx context.Context, hc *http.Client, base string) (*tokens, error) {
	var last error
	for range 20 {
		st, body, err := do(hc, jsonPost(ctx, base+"/v1/auth/login", map[string]string{"email": userEmail, "password": userPassword}))
		switch {
		case err != nil:
			last = err
		case st == http.StatusOK:
			var t tokens
			if err := json.Unmarshal(body, &t); err != nil || t.RefreshToken == "" {
				return nil, fmt.Errorf("login: bad response %q", body)
			}
			return &t, nil
		case st == http.StatusServiceUnavailable:
			last = fmt.Errorf("login: 503 %s", body)
		default:
			return nil, fmt.Errorf("login: %d %s", st, body)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil, last
}

// sessions are the workers' sessions: the current refresh token of each.
type sessions struct {
	rt []string
}

// newSessions signs in n sessions, spread over the instances, two at a
// time per instance (argon2id is the cost).
func newSessions(ctx context.Context, hc *http.Client, tg *target, n int) (*sessions, error) {
	s := &sessions{rt: make([]string, n)}
	sem := make(chan struct{}, 2*len(tg.bases))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			t, err := login(ctx, hc, tg.pick())
			if err != nil {
				mu.Lock()
				first = firstErr(first, err)
				mu.Unlock()
				return
			}
			s.rt[i] = t.RefreshToken
		})
	}
	wg.Wait()
	return s, first
}

func firstErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// cpuSnap is the CPU use of everything involved, at one moment.
type cpuSnap struct {
	at         time.Time
	latch      time.Duration
	redis      time.Duration
	pg         map[int]time.Duration // per backend PID
	self       time.Duration
	busy, tot  time.Duration
	latchError error
}

// snapshot reads the CPU times of the cluster's processes and of the
// machine. pgPIDs are the PostgreSQL backends to read.
func snapshot(c *cluster, pgPIDs []int) cpuSnap {
	s := cpuSnap{at: time.Now(), pg: map[int]time.Duration{}}
	for _, p := range c.latch {
		d, err := procCPU(p.pid())
		if err != nil && s.latchError == nil {
			s.latchError = err
		}
		s.latch += d
	}
	if c.redis != nil {
		s.redis, _ = procCPU(c.redis.pid())
	}
	for _, pid := range pgPIDs {
		if d, err := procCPU(pid); err == nil {
			s.pg[pid] = d
		}
	}
	s.self, _ = procCPU(os.Getpid())
	s.busy, s.tot = machineCPU()
	return s
}

// cpuUse is CPU time spent over a measurement window.
type cpuUse struct {
	wall                          time.Duration
	latch, pg, redis, self, other time.Duration
	machineBusy, machineTotal     time.Duration
	pgBackends                    int
}

func (u cpuUse) stack() time.Duration { return u.latch + u.pg + u.redis }

// stats are the figures of one scenario run.
type stats struct {
	scenario   string
	topology   string
	workers    int
	load       string // load average before
	n, errors  int
	wall       time.Duration
	lat        []time.Duration // sorted, successful requests only
	byStatus   map[int]int
	samples    []string
	cpu        cpuUse
	warmupErrs int
	// perSec are the completions and the slowest request of each second
	// of the window: stalls show as a dip and a spike.
	perSec []secBucket
}

// secBucket is one second of a run's timeline.
type secBucket struct {
	n   atomic.Int64
	max atomic.Int64 // nanoseconds
	err atomic.Int64
}

func (b *secBucket) add(lat time.Duration, ok bool) {
	if !ok {
		b.err.Add(1)
		return
	}
	b.n.Add(1)
	for {
		m := b.max.Load()
		if int64(lat) <= m || b.max.CompareAndSwap(m, int64(lat)) {
			return
		}
	}
}

func (s *stats) rps() float64 { return float64(s.n) / s.wall.Seconds() }

// perCPU is successful requests per CPU-second of d.
func (s *stats) perCPU(d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(s.n) / d.Seconds()
}

func (s *stats) pct(p float64) time.Duration {
	return percentile(s.lat, p)
}

// percentile is the nearest-rank p-th percentile of sorted ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	i := int(p/100*float64(len(ds))+0.5) - 1
	return ds[min(max(i, 0), len(ds)-1)]
}

// closedLoop runs workers that each call op in a loop: a warm-up, then the
// measured window. Only requests that complete inside the window count.
func closedLoop(ctx context.Context, c *cluster, workers int, warmup, dur time.Duration, op func(ctx context.Context, w int) outcome) (*stats, error) {
	begin := time.Now()
	start := begin.Add(warmup)
	end := start.Add(dur)
	type workerOut struct {
		lat        []time.Duration
		errs       int
		warmupErrs int
		byStatus   map[int]int
		samples    []string
	}
	outs := make([]workerOut, workers)
	secs := make([]secBucket, int(dur/time.Second)+1)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			o := &outs[w]
			o.byStatus = map[int]int{}
			o.lat = make([]time.Duration, 0, 4096)
			for wctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(end) {
					return
				}
				r := op(wctx, w)
				t1 := time.Now()
				if wctx.Err() != nil {
					return
				}
				in := !t1.Before(start) && t1.Before(end)
				if in {
					secs[int(t1.Sub(start)/time.Second)].add(t1.Sub(t0), r.ok)
				}
				if r.ok {
					if in {
						o.lat = append(o.lat, t1.Sub(t0))
					}
					continue
				}
				if !in {
					o.warmupErrs++
					continue
				}
				o.errs++
				o.byStatus[r.status]++
				if len(o.samples) < 3 {
					o.samples = append(o.samples, fmt.Sprintf("%s status %d: %s", t1.Format("15:04:05.000"), r.status, r.detail))
				}
			}
		})
	}

	// The CPU sampler: just before the window and at its end.
	var before, after cpuSnap
	var pids []int
	sampler := make(chan struct{})
	go func() {
		defer close(sampler)
		// Find the PostgreSQL backends during the warm-up, when the pools
		// have grown.
		if wait(wctx, time.Until(start.Add(-300*time.Millisecond))) != nil {
			return
		}
		pids = c.pgBackends(wctx)
		if wait(wctx, time.Until(start)) != nil {
			return
		}
		before = snapshot(c, pids)
		if wait(wctx, time.Until(end)) != nil {
			return
		}
		after = snapshot(c, pids)
		// Backends that appeared during the window: all their time counts.
		for _, pid := range c.pgBackends(context.Background()) {
			if !slices.Contains(pids, pid) {
				if d, err := procCPU(pid); err == nil {
					after.pg[pid] = d
				}
			}
		}
	}()
	wg.Wait()
	<-sampler
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s := &stats{workers: workers, byStatus: map[int]int{}, perSec: secs}
	for _, o := range outs {
		s.lat = append(s.lat, o.lat...)
		s.errors += o.errs
		s.warmupErrs += o.warmupErrs
		for k, v := range o.byStatus {
			s.byStatus[k] += v
		}
		s.samples = append(s.samples, o.samples...)
	}
	if len(s.samples) > 10 {
		s.samples = s.samples[:10]
	}
	slices.Sort(s.lat)
	s.n = len(s.lat)
	s.wall = after.at.Sub(before.at)
	u := cpuUse{wall: s.wall}
	u.latch = after.latch - before.latch
	u.redis = after.redis - before.redis
	for pid, d := range after.pg {
		u.pg += d - before.pg[pid]
		u.pgBackends++
	}
	u.self = after.self - before.self
	u.machineBusy = after.busy - before.busy
	u.machineTotal = after.tot - before.tot
	u.other = max(0, u.machineBusy-u.latch-u.pg-u.redis-u.self)
	s.cpu = u
	if before.latchError != nil {
		return s, fmt.Errorf("reading the instances' CPU time: %w", before.latchError)
	}
	return s, nil
}

// wait sleeps for d or until ctx ends.
func wait(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// refreshOp rotates each worker's own refresh token. A 401 means the
// session is gone (it should never be): the worker signs in again. On a
// 5xx or transport error the old token is kept; the grace window makes
// presenting it again safe.
func refreshOp(hc *http.Client, tg *target, ss *sessions) func(ctx context.Context, w int) outcome {
	return func(ctx context.Context, w int) outcome {
		base := tg.pick()
		st, body, err := do(hc, jsonPost(ctx, base+"/v1/auth/refresh", map[string]string{"refresh_token": ss.rt[w]}))
		if err != nil || st != http.StatusOK {
			out := failure(st, body, err)
			if st == http.StatusUnauthorized && ctx.Err() == nil {
				if t, lerr := login(ctx, hc, tg.pick()); lerr == nil {
					ss.rt[w] = t.RefreshToken
				}
			}
			return out
		}
		var t tokens
		if err := json.Unmarshal(body, &t); err != nil || t.RefreshToken == "" || t.AccessToken == "" {
			return outcome{status: st, detail: "bad token response: " + string(body)}
		}
		ss.rt[w] = t.RefreshToken
		return outcome{ok: true}
	}
}

// clientCredentialsOp asks /oauth2/token for a client_credentials token
// with HTTP Basic client authentication.
func clientCredentialsOp(hc *http.Client, tg *target) func(ctx context.Context, w int) outcome {
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(clientID)+":"+url.QueryEscape(clientSecret)))
	form := []byte("grant_type=client_credentials")
	return func(ctx context.Context, w int) outcome {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, tg.pick()+"/oauth2/token", bytes.NewReader(form))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", auth)
		st, body, err := do(hc, req)
		if err != nil || st != http.StatusOK {
			return failure(st, body, err)
		}
		if !bytes.Contains(body, []byte(`"access_token"`)) {
			return outcome{status: st, detail: "bad token response: " + string(body)}
		}
		return outcome{ok: true}
	}
}

// loginOp signs the user in with the password.
func loginOp(hc *http.Client, tg *target) func(ctx context.Context, w int) outcome {
	body, _ := json.Marshal(map[string]string{"email": userEmail, "password": userPassword})
	return func(ctx context.Context, w int) outcome {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, tg.pick()+"/v1/auth/login", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		st, b, err := do(hc, req)
		if err != nil || st != http.StatusOK {
			return failure(st, b, err)
		}
		if !bytes.Contains(b, []byte(`"refresh_token"`)) {
			return outcome{status: st, detail: "bad token response: " + string(b)}
		}
		return outcome{ok: true}
	}
}

// propStats are the figures of the revocation-propagation scenario.
type propStats struct {
	load      string
	rounds    int
	afterAck  []time.Duration // first 401 on C minus the 204 from B, sorted
	afterSend []time.Duration // first 401 on C minus sending the logout to B, sorted
	logout    []time.Duration // the logout request itself, sorted
	immediate int             // rounds whose first poll after the 204 was already 401
	polls     []int
	failures  []string
}

// propagation measures how long a token stays usable on instance C after
// its session was logged out through instance B (signed in through A).
// The roles rotate over the instances each round.
func propagation(ctx context.Context, hc *http.Client, bases []string, rounds int, poll time.Duration) (*propStats, error) {
	n := len(bases)
	ps := &propStats{rounds: rounds}
	me := func(base, at string) (int, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/me", nil)
		req.Header.Set("Authorization", "Bearer "+at)
		st, _, err := do(hc, req)
		return st, err
	}
	for i := range rounds {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		a, b, c := bases[i%n], bases[(i+1)%n], bases[(i+2)%n]
		t, err := login(ctx, hc, a)
		if err != nil {
			return nil, err
		}
		if st, err := me(c, t.AccessToken); err != nil || st != http.StatusOK {
			ps.failures = append(ps.failures, fmt.Sprintf("round %d: fresh token not accepted on C: %d %v", i, st, err))
			continue
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, b+"/v1/auth/logout", nil)
		req.Header.Set("Authorization", "Bearer "+t.AccessToken)
		t0 := time.Now()
		st, body, err := do(hc, req)
		t1 := time.Now()
		if err != nil || st != http.StatusNoContent {
			ps.failures = append(ps.failures, fmt.Sprintf("round %d: logout on B: %d %s %v", i, st, body, err))
			continue
		}
		polls := 0
		deadline := t1.Add(5 * time.Second)
		for {
			polls++
			st, err := me(c, t.AccessToken)
			t2 := time.Now()
			if err == nil && st == http.StatusUnauthorized {
				ps.afterAck = append(ps.afterAck, t2.Sub(t1))
				ps.afterSend = append(ps.afterSend, t2.Sub(t0))
				ps.logout = append(ps.logout, t1.Sub(t0))
				ps.polls = append(ps.polls, polls)
				if polls == 1 {
					ps.immediate++
				}
				break
			}
			if err != nil || st != http.StatusOK {
				ps.failures = append(ps.failures, fmt.Sprintf("round %d: poll of C: %d %v", i, st, err))
				break
			}
			if t2.After(deadline) {
				ps.failures = append(ps.failures, fmt.Sprintf("round %d: token still accepted on C 5 s after the logout", i))
				break
			}
			if err := wait(ctx, poll); err != nil {
				return nil, err
			}
		}
	}
	slices.Sort(ps.afterAck)
	slices.Sort(ps.afterSend)
	slices.Sort(ps.logout)
	if len(ps.afterAck) == 0 {
		return ps, errors.New("no round completed")
	}
	return ps, nil
}
