// Command load is Latch's load benchmark (not a test): it starts real
// Latch processes on 127.0.0.1 in three topologies — SQLite with one
// instance, PostgreSQL + Redis with one instance, and PostgreSQL + Redis
// with three instances — and drives them with a closed-loop load generator
// in this process:
//
//   - refresh: POST /v1/auth/refresh, each worker rotating its own
//     session's refresh token;
//   - client_credentials: POST /oauth2/token with HTTP Basic client
//     authentication;
//   - login: POST /v1/auth/login (argon2id-bound by design);
//   - propagation (three instances): sign in through A, log out through B,
//     poll GET /v1/me on C every millisecond until it answers 401.
//
// For each run it reports throughput, latency percentiles, errors and the
// CPU time the server processes used, and writes results/load.md (the
// tables, beside the peers' published figures) and results/load-TOPO.txt
// (the raw figures of each topology).
//
// Run it from the bench module:
//
//	cd bench && go run ./load                       # everything, about 8 minutes
//	go run ./load -duration 3s -warmup 1s -rounds 10 -out /tmp/smoke
//	go run ./load -topologies pg3 -scenarios propagation
//
// With -experiment code-exchange it measures instead the OpenID Connect
// authorization_code grant at the token endpoint beside client_credentials,
// in -repeats interleaved rounds on one instance per topology, and writes
// results/oidc-code-exchange.md (oidc.go says how the codes are minted):
//
//	go run ./load -experiment code-exchange -topologies sqlite,pg1 -workers 16 -repeats 5 -duration 10s -warmup 2s
//
// It needs psql and a PostgreSQL server at -pg (a schema of its own is
// created and dropped) and redis-server on the PATH (a private server on a
// free port is started and stopped). Everything it starts is stopped and
// removed on exit, Ctrl-C included.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// options are the command-line settings.
type options struct {
	topologies   []string
	scenarios    []string
	workers      []int
	loginWorkers int
	duration     time.Duration
	warmup       time.Duration
	pause        time.Duration
	rounds       int
	poll         time.Duration
	pg           string
	out          string
	repo         string
	maxLoad      float64
	maxWait      time.Duration
	bin          string
	// experiment is "load" (the scenarios above, results/load.md) or
	// "code-exchange" (oidc.go: results/oidc-code-exchange.md).
	experiment string
	repeats    int
	// The gateway experiment (gateway.go): a prebuilt oauth2-proxy, extra
	// oauth2-proxy flags, extra NAME=VALUE settings of latch gateway.
	o2pBin  string
	o2pArgs []string
	gwEnv   string
	// upstreamDelay and upstreamWork make the gateway experiment's
	// upstream model an application: it waits upstreamDelay (I/O, such as
	// a database query) and spins upstreamWork of CPU before answering.
	upstreamDelay time.Duration
	upstreamWork  time.Duration
}

func main() {
	if addr := os.Getenv(upstreamEnv); addr != "" {
		delay, work := upstreamFromEnv()
		serveUpstream(addr, delay, work) // the gateway experiment's upstream
		return
	}
	if spec := os.Getenv(bareProxyEnv); spec != "" {
		serveBareProxy(spec) // and its bare reverse proxy
		return
	}
	var o options
	var o2pArgs string
	var topos, scens, workers string
	flag.StringVar(&topos, "topologies", "sqlite,pg1,pg3", "topologies to run: sqlite, pg1 (PostgreSQL + Redis, 1 instance), pg3 (3 instances)")
	flag.StringVar(&scens, "scenarios", "refresh,client_credentials,login,propagation", "scenarios to run (propagation needs 3 instances)")
	flag.StringVar(&workers, "workers", "16,64", "concurrent workers of the refresh and client_credentials runs, comma-separated")
	flag.IntVar(&o.loginWorkers, "login-workers", 4, "concurrent workers of the login run")
	flag.DurationVar(&o.duration, "duration", 20*time.Second, "measured time of each run")
	flag.DurationVar(&o.warmup, "warmup", 3*time.Second, "unmeasured warm-up before each run")
	flag.DurationVar(&o.pause, "pause", 2*time.Second, "idle time between runs")
	flag.IntVar(&o.rounds, "rounds", 100, "rounds of the propagation scenario")
	flag.DurationVar(&o.poll, "poll", time.Millisecond, "poll interval of the propagation scenario")
	flag.StringVar(&o.pg, "pg", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "PostgreSQL database for the pg topologies (a schema is created and dropped)")
	flag.StringVar(&o.out, "out", "results", "directory for load.md and load-TOPO.txt")
	flag.StringVar(&o.repo, "repo", "..", "root of the latch repository (the main module)")
	flag.Float64Var(&o.maxLoad, "max-load", 0, "if > 0, wait (up to -max-wait) until the 1-minute load average is below this before starting")
	flag.DurationVar(&o.maxWait, "max-wait", 10*time.Minute, "longest wait for -max-load")
	flag.StringVar(&o.bin, "bin", "", "use this latch binary instead of building -repo/cmd/latch")
	flag.StringVar(&o.experiment, "experiment", "load", "load (the -scenarios, results/load.md), code-exchange (the authorization_code grant beside client_credentials, -repeats interleaved rounds, results/oidc-code-exchange.md) or gateway (latch gateway and oauth2-proxy beside direct, -repeats interleaved rounds with the first -workers, results/gateway.md)")
	flag.StringVar(&o.o2pBin, "oauth2-proxy", "", "gateway experiment: use this oauth2-proxy binary instead of building the bench module's tool")
	flag.StringVar(&o2pArgs, "oauth2-proxy-args", "", "gateway experiment: extra oauth2-proxy flags, space-separated")
	flag.StringVar(&o.gwEnv, "gateway-env", "", "gateway experiment: extra NAME=VALUE settings for latch gateway, comma-separated")
	flag.DurationVar(&o.upstreamDelay, "upstream-delay", 0, "gateway experiment: the upstream waits this long before answering each request (an I/O-bound handler, such as a database query); the results go to gateway-upstream.md")
	flag.DurationVar(&o.upstreamWork, "upstream-work", 0, "gateway experiment: the upstream spins this much CPU (wall-clock time on a running thread) before answering each request; the results go to gateway-upstream.md")
	flag.IntVar(&o.repeats, "repeats", 5, "interleaved rounds of the code-exchange experiment (its figures are their medians)")
	flag.Parse()
	o.topologies = split(topos)
	o.scenarios = split(scens)
	o.o2pArgs = strings.Fields(o2pArgs)
	for _, t := range o.topologies {
		if _, ok := topologies[t]; !ok {
			fatalf("unknown topology %q (sqlite, pg1, pg3)", t)
		}
	}
	if o.experiment != "load" && o.experiment != "code-exchange" && o.experiment != "gateway" {
		fatalf("unknown experiment %q (load, code-exchange, gateway)", o.experiment)
	}
	if o.upstreamDelay < 0 || o.upstreamWork < 0 {
		fatalf("bad -upstream-delay or -upstream-work: negative")
	}
	if o.repeats < 1 {
		fatalf("bad -repeats %d", o.repeats)
	}
	for _, s := range o.scenarios {
		switch s {
		case "refresh", "client_credentials", "login", "propagation":
		default:
			fatalf("unknown scenario %q", s)
		}
	}
	for _, w := range split(workers) {
		n, err := strconv.Atoi(w)
		if err != nil || n < 1 {
			fatalf("bad -workers %q", workers)
		}
		o.workers = append(o.workers, n)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, o)
	stop()
	if errors.Is(err, context.Canceled) {
		fatalf("interrupted; everything it started has been stopped and removed")
	}
	if err != nil {
		fatalf("%v", err)
	}
}

func split(s string) []string {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "load: "+format+"\n", args...)
	os.Exit(1)
}

func has(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// topoResult is everything measured on one topology.
type topoResult struct {
	topo     topology
	runs     []*stats
	prop     *propStats
	problems []string // logged warnings/errors, dead processes
}

// machine describes where the benchmark ran.
type machine struct {
	date, goVersion, cpu, kernel, pgVersion, redisVersion, latchVersion string
	nproc                                                               int
	loadStart, loadEnd                                                  string
	waited                                                              string
	o2pVersion, gwCookie, o2pCookie                                     string // the gateway experiment
}

func run(ctx context.Context, o options) error {
	logf := func(format string, args ...any) {
		fmt.Printf("%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "latch-load-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	bin := o.bin
	if bin == "" {
		bin = filepath.Join(work, "latch")
		logf("building latch from %s", o.repo)
		build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/latch")
		build.Dir = o.repo
		if out, err := build.CombinedOutput(); err != nil {
			return fmt.Errorf("go build ./cmd/latch: %v\n%s", err, out)
		}
	} else if bin, err = filepath.Abs(bin); err != nil {
		return err
	}

	m := machine{
		goVersion: runtime.Version(), cpu: cpuModel(), nproc: runtime.NumCPU(), kernel: kernel(),
		latchVersion: latchVersion(ctx, o, bin),
		redisVersion: cmdOut(ctx, "redis-server", "--version"),
	}
	if needsPG(o.topologies) {
		v, err := psql(ctx, o.pg, "SHOW server_version")
		if err != nil {
			return fmt.Errorf("PostgreSQL at -pg: %w", err)
		}
		m.pgVersion = v
	}

	if o.maxLoad > 0 {
		t0 := time.Now()
		for loadAvg1() >= o.maxLoad && time.Since(t0) < o.maxWait {
			logf("load average %s; waiting for the 1-minute figure to fall below %.2f", loadAvg(), o.maxLoad)
			if err := wait(ctx, 30*time.Second); err != nil {
				return err
			}
		}
		m.waited = fmt.Sprintf("waited %s for the 1-minute load average to fall below %.2f (it was %s at the start)",
			time.Since(t0).Round(time.Second), o.maxLoad, loadAvg())
		logf("%s", m.waited)
	}
	m.date = time.Now().UTC().Format("2006-01-02 15:04 UTC")
	m.loadStart = loadAvg()
	if o.experiment == "code-exchange" {
		return codeExchangeExperiment(ctx, o, m, bin, work, logf)
	}
	if o.experiment == "gateway" {
		return gatewayExperiment(ctx, o, m, bin, work, logf)
	}

	var results []*topoResult
	for _, name := range o.topologies {
		r, err := runTopology(ctx, o, topologies[name], bin, work, logf)
		if r != nil {
			results = append(results, r)
			if werr := writeRaw(o, m, r); werr != nil {
				logf("warning: %v", werr)
			}
		}
		if err != nil {
			return err
		}
	}
	m.loadEnd = loadAvg()
	path := filepath.Join(o.out, "load.md")
	if err := os.WriteFile(path, []byte(report(o, m, results)), 0o644); err != nil {
		return err
	}
	logf("wrote %s", path)
	return nil
}

// latchVersion names the binary under test: its own version and, when it
// was built here, the repository's commit and uncommitted changes.
func latchVersion(ctx context.Context, o options, bin string) string {
	v := cmdOut(ctx, bin, "version")
	if o.bin != "" {
		return v + " (prebuilt " + o.bin + ")"
	}
	if rev := cmdOut(ctx, "git", "-C", o.repo, "rev-parse", "--short", "HEAD"); rev != "?" {
		v += ", built from commit " + rev
		if st := cmdOut(ctx, "git", "-C", o.repo, "status", "--porcelain", "--untracked-files=no"); st != "?" && st != "" {
			v += fmt.Sprintf(" plus uncommitted changes to %d files", len(strings.Split(st, "\n")))
		}
	}
	return v
}

func needsPG(ts []string) bool {
	for _, t := range ts {
		if topologies[t].postgres {
			return true
		}
	}
	return false
}

func cmdOut(ctx context.Context, name string, args ...string) string {
	out, err := exec.CommandContext(ctx, name, args...).Output()
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(out))
}

// runTopology starts one topology, runs the scenarios on it and stops it.
func runTopology(ctx context.Context, o options, t topology, bin, work string, logf func(string, ...any)) (*topoResult, error) {
	logf("== %s", t.title)
	c, err := startCluster(ctx, t, bin, work, o.pg, nil, logf)
	if err != nil {
		return nil, err
	}
	defer c.close()
	res := &topoResult{topo: t}
	defer func() {
		res.problems = append(res.problems, c.logProblems()...)
	}()
	maxW := 0
	for _, w := range o.workers {
		maxW = max(maxW, w)
	}
	hc := newClient(max(maxW, o.loginWorkers))
	defer hc.CloseIdleConnections()
	tg := &target{bases: c.bases}

	check := func() error {
		if d := c.dead(); len(d) > 0 {
			res.problems = append(res.problems, "exited during the run: "+strings.Join(d, "; "))
			return fmt.Errorf("%s: processes exited: %s", t.name, strings.Join(d, "; "))
		}
		return nil
	}
	record := func(s *stats, scenario string, load string) {
		s.scenario, s.topology, s.load = scenario, t.name, load
		res.runs = append(res.runs, s)
		logf("%-18s %-6s w=%-3d %8.0f req/s  %7.0f req/latch-CPU-s  p50 %s  p99 %s  max %s  errors %d (%s)",
			scenario, t.name, s.workers, s.rps(), s.perCPU(s.cpu.latch), ms(s.pct(50)), ms(s.pct(99)), ms(s.pct(100)), s.errors, statusList(s.byStatus))
	}
	pause := func() error { return wait(ctx, o.pause) }

	if has(o.scenarios, "refresh") {
		logf("signing in %d sessions", maxW)
		ss, err := newSessions(ctx, hc, tg, maxW)
		if err != nil {
			return res, fmt.Errorf("sign in the workers' sessions: %w", err)
		}
		for _, w := range o.workers {
			if err := pause(); err != nil {
				return res, err
			}
			load := loadAvg()
			s, err := closedLoop(ctx, c, w, o.warmup, o.duration, refreshOp(hc, tg, ss))
			if err != nil {
				return res, err
			}
			record(s, "refresh", load)
			if err := check(); err != nil {
				return res, err
			}
		}
	}
	if has(o.scenarios, "client_credentials") {
		for _, w := range o.workers {
			if err := pause(); err != nil {
				return res, err
			}
			load := loadAvg()
			s, err := closedLoop(ctx, c, w, o.warmup, o.duration, clientCredentialsOp(hc, tg))
			if err != nil {
				return res, err
			}
			record(s, "client_credentials", load)
			if err := check(); err != nil {
				return res, err
			}
		}
	}
	if has(o.scenarios, "login") {
		if err := pause(); err != nil {
			return res, err
		}
		load := loadAvg()
		s, err := closedLoop(ctx, c, o.loginWorkers, o.warmup, o.duration, loginOp(hc, tg))
		if err != nil {
			return res, err
		}
		record(s, "login", load)
		if err := check(); err != nil {
			return res, err
		}
	}
	if has(o.scenarios, "propagation") && t.instances >= 3 {
		if err := pause(); err != nil {
			return res, err
		}
		load := loadAvg()
		ps, err := propagation(ctx, hc, c.bases, o.rounds, o.poll)
		if ps != nil {
			ps.load = load
			res.prop = ps
			if len(ps.afterAck) > 0 {
				logf("propagation        %-6s %d rounds: after the 204 median %s p99 %s max %s; %d/%d already 401 at the first poll; failures %d",
					t.name, len(ps.afterAck), ms(percentile(ps.afterAck, 50)), ms(percentile(ps.afterAck, 99)), ms(percentile(ps.afterAck, 100)),
					ps.immediate, len(ps.afterAck), len(ps.failures))
			}
		}
		if err != nil && !errors.Is(err, context.Canceled) {
			res.problems = append(res.problems, "propagation: "+err.Error())
		} else if err != nil {
			return res, err
		}
		if err := check(); err != nil {
			return res, err
		}
	}
	return res, nil
}

func ms(d time.Duration) string {
	f := float64(d) / float64(time.Millisecond)
	switch {
	case f >= 100:
		return fmt.Sprintf("%.0f ms", f)
	case f >= 10:
		return fmt.Sprintf("%.1f ms", f)
	default:
		return fmt.Sprintf("%.2f ms", f)
	}
}

// writeRaw writes the raw figures of one topology to OUT/load-TOPO.txt.
func writeRaw(o options, m machine, r *topoResult) error {
	path := filepath.Join(o.out, "load-"+r.topo.name+".txt")
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	raw(f, o, m, r)
	return f.Close()
}

func raw(w io.Writer, o options, m machine, r *topoResult) {
	fmt.Fprintf(w, "latch load benchmark: %s\n", r.topo.title)
	fmt.Fprintf(w, "date %s; %s; %s; latch %s; %d CPUs (%s); kernel %s\n", m.date, m.goVersion, m.cpu, m.latchVersion, m.nproc, m.cpu, m.kernel)
	if r.topo.postgres {
		fmt.Fprintf(w, "PostgreSQL %s (shared server, own schema); %s (private server)\n", m.pgVersion, m.redisVersion)
	}
	fmt.Fprintf(w, "command: go run ./load %s\n", strings.Join(os.Args[1:], " "))
	fmt.Fprintf(w, "warm-up %s, measured %s per run; load generator in the same machine (GOMAXPROCS %d)\n\n", o.warmup, o.duration, runtime.GOMAXPROCS(0))
	for _, s := range r.runs {
		u := s.cpu
		fmt.Fprintf(w, "%s workers=%d load_before=%q\n", s.scenario, s.workers, s.load)
		fmt.Fprintf(w, "  ok=%d errors=%d (%s) errors_outside_window=%d wall=%.3fs rps=%.1f\n", s.n, s.errors, statusList(s.byStatus), s.warmupErrs, s.wall.Seconds(), s.rps())
		fmt.Fprintf(w, "  latency mean=%s p50=%s p90=%s p99=%s p99.9=%s max=%s min=%s\n",
			ms(mean(s.lat)), ms(s.pct(50)), ms(s.pct(90)), ms(s.pct(99)), ms(s.pct(99.9)), ms(s.pct(100)), ms(percentile(s.lat, 0)))
		fmt.Fprintf(w, "  cpu_seconds latch=%.2f postgres=%.2f (%d backends) redis=%.2f loadgen=%.2f other=%.2f machine_busy=%.2f of %.2f\n",
			u.latch.Seconds(), u.pg.Seconds(), u.pgBackends, u.redis.Seconds(), u.self.Seconds(), u.other.Seconds(), u.machineBusy.Seconds(), u.machineTotal.Seconds())
		fmt.Fprintf(w, "  req_per_latch_cpu_s=%.1f req_per_stack_cpu_s=%.1f\n", s.perCPU(u.latch), s.perCPU(u.stack()))
		fmt.Fprintf(w, "  per second (ok/slowest ms/errors):")
		for i := range s.perSec {
			b := &s.perSec[i]
			if b.n.Load()+b.err.Load() == 0 {
				continue
			}
			fmt.Fprintf(w, " %d/%.0f/%d", b.n.Load(), float64(b.max.Load())/1e6, b.err.Load())
		}
		fmt.Fprintln(w)
		for _, e := range s.samples {
			fmt.Fprintf(w, "  error sample: %s\n", e)
		}
		fmt.Fprintln(w)
	}
	if p := r.prop; p != nil {
		fmt.Fprintf(w, "propagation rounds=%d completed=%d load_before=%q poll=%s\n", p.rounds, len(p.afterAck), p.load, o.poll)
		if len(p.afterAck) > 0 {
			fmt.Fprintf(w, "  after_204  median=%s p90=%s p99=%s max=%s min=%s\n", ms(percentile(p.afterAck, 50)), ms(percentile(p.afterAck, 90)), ms(percentile(p.afterAck, 99)), ms(percentile(p.afterAck, 100)), ms(percentile(p.afterAck, 0)))
			fmt.Fprintf(w, "  after_send median=%s p90=%s p99=%s max=%s\n", ms(percentile(p.afterSend, 50)), ms(percentile(p.afterSend, 90)), ms(percentile(p.afterSend, 99)), ms(percentile(p.afterSend, 100)))
			fmt.Fprintf(w, "  logout     median=%s p99=%s max=%s\n", ms(percentile(p.logout, 50)), ms(percentile(p.logout, 99)), ms(percentile(p.logout, 100)))
			fmt.Fprintf(w, "  already 401 at the first poll: %d of %d\n", p.immediate, len(p.afterAck))
			fmt.Fprintf(w, "  polls per round: %v\n", p.polls)
			fmt.Fprintf(w, "  after_204 sorted (ms):")
			for _, d := range p.afterAck {
				fmt.Fprintf(w, " %.2f", float64(d)/1e6)
			}
			fmt.Fprintln(w)
		}
		for _, f := range p.failures {
			fmt.Fprintf(w, "  failure: %s\n", f)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "server warnings/errors logged: %d\n", len(r.problems))
	for i, p := range r.problems {
		if i == 50 {
			fmt.Fprintf(w, "  … %d more\n", len(r.problems)-50)
			break
		}
		fmt.Fprintf(w, "  %s\n", p)
	}
}

func mean(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	var t time.Duration
	for _, d := range ds {
		t += d
	}
	return t / time.Duration(len(ds))
}

// statusList formats error counts by status: "503×4, transport×1".
func statusList(m map[int]int) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for _, k := range sortedKeys(m) {
		name := strconv.Itoa(k)
		if k == 0 {
			name = "transport"
		}
		parts = append(parts, fmt.Sprintf("%s×%d", name, m[k]))
	}
	return strings.Join(parts, ", ")
}
