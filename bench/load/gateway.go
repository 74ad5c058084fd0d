package main

// The gateway experiment: what an authenticating reverse proxy in front of
// an upstream costs, `latch gateway` beside oauth2-proxy, on the same
// upstream with the same load generator in the same run.
//
// One `latch serve` (SQLite) is the OpenID provider of both proxies. The
// upstream is a minimal Go HTTP server in a process of its own (this
// binary, re-executed with LATCH_BENCH_UPSTREAM set). Six modes run in
// every round, in a fixed interleaved order so that a burst of other work
// on the machine hits all of them alike:
//
//   - direct: GET straight to the upstream;
//   - latch-bearer: through `latch gateway`, an `auth: token` route, with
//     a user's access token (from a sign-in at Latch) as Bearer;
//   - latch-cookie: through `latch gateway`, an `auth: session` route, with
//     the BFF session cookie obtained by driving /auth/login → Latch's
//     authorization endpoint → /auth/callback;
//   - o2p-bearer: through oauth2-proxy (--provider=oidc against Latch,
//     --skip-jwt-bearer-tokens with Latch as an extra JWT issuer), the same
//     access token as Bearer;
//   - o2p-cookie: through oauth2-proxy with the session cookie(s) it set
//     after /oauth2/start → Latch → /oauth2/callback.
//
// Every response must be the upstream's 200 with its body, so that a proxy
// answering 401 or a sign-in page fast is an error, not a result.

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// upstreamBody is what the upstream answers to every request.
const upstreamBody = `{"ok":true,"service":"bench-upstream"}` + "\n"

// upstreamEnv names the variable that turns this binary into the upstream;
// bareProxyEnv, into the bare reverse proxy (LISTEN_ADDR,UPSTREAM_URL).
// upstreamDelayEnv and upstreamWorkEnv carry -upstream-delay and
// -upstream-work to it (time.Duration strings).
const (
	upstreamEnv      = "LATCH_BENCH_UPSTREAM"
	upstreamDelayEnv = "LATCH_BENCH_UPSTREAM_DELAY"
	upstreamWorkEnv  = "LATCH_BENCH_UPSTREAM_WORK"
	bareProxyEnv     = "LATCH_BENCH_BARE_PROXY"
)

// serveBareProxy runs the plainest Go reverse proxy: the standard
// library's httputil.ReverseProxy with its default settings (no buffer
// pool) and the transport settings of `latch gateway`
// (gateway.NewTransport), and nothing else — no authentication, no header
// rules, no metrics.
func serveBareProxy(spec string) {
	addr, upstream, _ := strings.Cut(spec, ",")
	target, err := url.Parse(upstream)
	if err != nil {
		fatalf("bare proxy: %v", err)
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 256
	t.DisableCompression = true
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.SetXForwarded()
		},
		Transport: t,
	}
	srv := &http.Server{Addr: addr, Handler: rp, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	if err := srv.ListenAndServe(); err != nil {
		fatalf("bare proxy: %v", err)
	}
}

// serveUpstream runs the benchmark's upstream on addr: the smallest useful
// HTTP server, answering 200 with a short JSON body. With delay > 0 it
// first waits that long (an I/O-bound handler: a database query, a call to
// another service), with work > 0 it then spins that long on the CPU.
func serveUpstream(addr string, delay, work time.Duration) {
	body := []byte(upstreamBody)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if delay > 0 {
			time.Sleep(delay)
		}
		if work > 0 {
			spin(work)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		_, _ = w.Write(body)
	})
	srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	if err := srv.ListenAndServe(); err != nil {
		fatalf("upstream: %v", err)
	}
}

// spinSink keeps spin's arithmetic from being optimised away.
var spinSink uint64

// spin keeps the CPU busy for d of wall-clock time (less CPU than d if the
// thread is descheduled meanwhile, as a real handler's work would be).
func spin(d time.Duration) {
	x := spinSink | 1
	for end := time.Now().Add(d); time.Now().Before(end); {
		for range 64 {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
		}
	}
	spinSink = x
}

// upstreamFromEnv returns -upstream-delay and -upstream-work as the
// upstream process received them.
func upstreamFromEnv() (delay, work time.Duration) {
	parse := func(name string) time.Duration {
		v := os.Getenv(name)
		if v == "" {
			return 0
		}
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			fatalf("upstream: bad %s=%q", name, v)
		}
		return d
	}
	return parse(upstreamDelayEnv), parse(upstreamWorkEnv)
}

// upstreamModel describes the upstream's per-request cost, "" for the
// minimal one.
func upstreamModel(o options) string {
	var parts []string
	if o.upstreamDelay > 0 {
		parts = append(parts, fmt.Sprintf("waits %s (`-upstream-delay`)", o.upstreamDelay))
	}
	if o.upstreamWork > 0 {
		parts = append(parts, fmt.Sprintf("spins %s of CPU (`-upstream-work`)", o.upstreamWork))
	}
	return strings.Join(parts, " and ")
}

// gwMode is one way of reaching the upstream.
type gwMode struct {
	name, title string
	url         string
	header      http.Header
	proc        *proc // the proxy (or the upstream, for direct) whose CPU is counted
}

// gwRound is one interleaved round: one run per mode, in order.
type gwRound struct {
	runs []*stats
}

// jar is a minimal cookie jar keyed by host:port, which, unlike
// net/http/cookiejar, also sends Secure cookies over http: every server
// here is on loopback, where browsers treat http as secure.
type jar map[string]map[string]string

func (j jar) store(u *url.URL, resp *http.Response) {
	m := j[u.Host]
	if m == nil {
		m = map[string]string{}
		j[u.Host] = m
	}
	for _, c := range resp.Cookies() {
		if c.MaxAge < 0 || c.Value == "" {
			delete(m, c.Name)
			continue
		}
		m[c.Name] = c.Value
	}
}

func (j jar) header(host string) string {
	var parts []string
	for _, k := range sortedKeys(j[host]) {
		parts = append(parts, k+"="+j[host][k])
	}
	return strings.Join(parts, "; ")
}

// browse follows redirects from start like a browser, with the cookies of
// j (updated on the way), and returns the last response's status and URL.
func browse(ctx context.Context, hc *http.Client, j jar, start string) (int, *url.URL, error) {
	u, err := url.Parse(start)
	if err != nil {
		return 0, nil, err
	}
	for range 10 {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		req.Header.Set("Accept", "text/html")
		req.Header.Set("Sec-Fetch-Mode", "navigate")
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		if c := j.header(u.Host); c != "" {
			req.Header.Set("Cookie", c)
		}
		resp, err := hc.Transport.RoundTrip(req)
		if err != nil {
			return 0, nil, err
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		j.store(u, resp)
		loc := resp.Header.Get("Location")
		if resp.StatusCode < 300 || resp.StatusCode > 399 || loc == "" {
			if resp.StatusCode >= 400 {
				return resp.StatusCode, u, fmt.Errorf("GET %s: %d %s", u, resp.StatusCode, strings.TrimSpace(string(body)))
			}
			return resp.StatusCode, u, nil
		}
		next, err := u.Parse(loc)
		if err != nil {
			return 0, nil, err
		}
		u = next
	}
	return 0, u, fmt.Errorf("too many redirects from %s", start)
}

// proxyOp sends GET m.url with m's headers and wants the upstream's answer.
func proxyOp(hc *http.Client, m *gwMode) func(ctx context.Context, w int) outcome {
	return func(ctx context.Context, w int) outcome {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, m.url, nil)
		for k, v := range m.header {
			req.Header[k] = v
		}
		st, body, err := do(hc, req)
		if err != nil || st != http.StatusOK || string(body) != upstreamBody {
			if err == nil && st == http.StatusOK {
				return outcome{status: -2, detail: "not the upstream's body: " + string(body[:min(len(body), 200)])}
			}
			return failure(st, body, err)
		}
		return outcome{ok: true}
	}
}

// gatewayExperiment runs the experiment and writes OUT/gateway.md.
func gatewayExperiment(ctx context.Context, o options, m machine, bin, work string, logf func(string, ...any)) error {
	workers := o.workers[0]
	dir, err := os.MkdirTemp(work, "gateway-")
	if err != nil {
		return err
	}
	var cleanups []func()
	defer func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}()
	start := func(name string, env []string, argv ...string) (*proc, error) {
		p, err := startProc(name, env, filepath.Join(dir, name+".log"), argv...)
		if err != nil {
			return nil, err
		}
		cleanups = append(cleanups, p.stop)
		return p, nil
	}
	ports := make([]int, 5)
	for i := range ports {
		if ports[i], err = freePort(); err != nil {
			return err
		}
	}
	upAddr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	latchBase := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	gwBase := fmt.Sprintf("http://127.0.0.1:%d", ports[2])
	o2pBase := fmt.Sprintf("http://127.0.0.1:%d", ports[3])
	bareBase := fmt.Sprintf("http://127.0.0.1:%d", ports[4])

	// The o2p binary: built from the bench module (go get -tool pins it).
	o2pBin := o.o2pBin
	if o2pBin == "" {
		o2pBin = filepath.Join(work, "oauth2-proxy")
		logf("building oauth2-proxy (the bench module's tool)")
		build := exec.CommandContext(ctx, "go", "build", "-o", o2pBin, "github.com/oauth2-proxy/oauth2-proxy/v7")
		if out, err := build.CombinedOutput(); err != nil {
			return fmt.Errorf("go build oauth2-proxy: %v\n%s", err, out)
		}
	}
	// A go build carries no release version (it says "undefined"): name
	// the module version the bench module pins.
	m.o2pVersion = cmdOut(ctx, "go", "list", "-m", "github.com/oauth2-proxy/oauth2-proxy/v7")
	if o.o2pBin != "" {
		m.o2pVersion += " (prebuilt " + o.o2pBin + ")"
	}

	// The upstream.
	self, err := os.Executable()
	if err != nil {
		return err
	}
	upEnv := append(baseEnv(), upstreamEnv+"="+upAddr, "GOMAXPROCS="+fmt.Sprint(runtime.NumCPU()),
		upstreamDelayEnv+"="+o.upstreamDelay.String(), upstreamWorkEnv+"="+o.upstreamWork.String())
	up, err := start("upstream", upEnv, self)
	if err != nil {
		return err
	}
	if err := waitTCP(ctx, upAddr, up); err != nil {
		return fmt.Errorf("upstream: %w", err)
	}
	bp, err := start("bare-proxy", append(baseEnv(), bareProxyEnv+"="+strings.TrimPrefix(bareBase, "http://")+",http://"+upAddr), self)
	if err != nil {
		return err
	}
	if err := waitTCP(ctx, strings.TrimPrefix(bareBase, "http://"), bp); err != nil {
		return fmt.Errorf("bare proxy: %w", err)
	}

	// Latch, the OpenID provider, on SQLite, its issuer its own address.
	var kb [32]byte
	_, _ = rand.Read(kb[:])
	c := &cluster{bin: bin, dataDir: filepath.Join(dir, "latch-data")}
	c.env = append(baseEnv(),
		"LATCH_KEK="+base64.StdEncoding.EncodeToString(kb[:]),
		"LATCH_ISSUER="+latchBase,
		"LATCH_LOG_FORMAT=text",
		"LATCH_LOGIN_RATE_PER_IP=0",
		"LATCH_LOGIN_MAX_FAILURES=0",
		// Access tokens outlive the run: neither proxy refreshes during it.
		"LATCH_TOKENS_ACCESS_TTL=2h",
		// oauth2-proxy verifies bearer tokens with go-oidc, which accepts
		// only the algorithms of the discovery document's
		// id_token_signing_alg_values_supported (RS256): with Latch's
		// default EdDSA access tokens it refuses every one.
		"LATCH_TOKENS_ALGORITHM=RS256",
	)
	gwSecret := "gw-secret-" + strings.ToLower(rand.Text())
	o2pSecret := "o2p-secret-" + strings.ToLower(rand.Text())
	if err := c.run(ctx, userPassword+"\n", "user", "add", "--data-dir", c.dataDir, "--email", userEmail, "--password-stdin"); err != nil {
		return err
	}
	if err := c.run(ctx, gwSecret+"\n", "client", "add", "--data-dir", c.dataDir, "--id", "gw", "--secret-stdin",
		"--can", "read-revocations", "--first-party", "--redirect-uri", gwBase+"/auth/callback"); err != nil {
		return err
	}
	if err := c.run(ctx, o2pSecret+"\n", "client", "add", "--data-dir", c.dataDir, "--id", "o2p", "--secret-stdin",
		"--first-party", "--redirect-uri", o2pBase+"/oauth2/callback"); err != nil {
		return err
	}
	lp, err := start("latch", c.env, bin, "serve", "--addr", strings.TrimPrefix(latchBase, "http://"), "--data-dir", c.dataDir)
	if err != nil {
		return err
	}
	if err := waitReady(ctx, latchBase, lp); err != nil {
		return fmt.Errorf("latch serve: %w\n%s", err, tail(lp.log, 20))
	}
	logf("latch serve pid %d at %s; upstream pid %d at %s", lp.pid(), latchBase, up.pid(), upAddr)

	// latch gateway.
	gwConf := filepath.Join(dir, "gateway.yaml")
	conf := fmt.Sprintf(`addr: %s
issuer: %s
client_id: gw
data_dir: %s
routes:
  - path: /api/
    upstream: http://%s
    auth: token
  - path: /app/
    upstream: http://%s
    auth: session
`, strings.TrimPrefix(gwBase, "http://"), latchBase, filepath.Join(dir, "gw-data"), upAddr, upAddr)
	if err := os.WriteFile(gwConf, []byte(conf), 0o600); err != nil {
		return err
	}
	gwEnv := append(baseEnv(), "LATCH_GATEWAY_CLIENT_SECRET="+gwSecret)
	if o.gwEnv != "" {
		gwEnv = append(gwEnv, strings.Split(o.gwEnv, ",")...)
	}
	gp, err := start("gateway", gwEnv, bin, "gateway", "--config", gwConf)
	if err != nil {
		return err
	}
	if err := waitReady(ctx, gwBase, gp); err != nil {
		return fmt.Errorf("latch gateway: %w\n%s", err, tail(gp.log, 20))
	}

	// oauth2-proxy.
	o2pArgs := []string{o2pBin,
		"--http-address=" + strings.TrimPrefix(o2pBase, "http://"),
		"--provider=oidc",
		"--oidc-issuer-url=" + latchBase,
		"--client-id=o2p",
		"--client-secret=" + o2pSecret,
		"--redirect-url=" + o2pBase + "/oauth2/callback",
		"--upstream=http://" + upAddr + "/",
		"--cookie-secret=" + base64.RawURLEncoding.EncodeToString(kb[:]),
		"--cookie-secure=false",
		"--email-domain=*",
		"--scope=openid",
		"--code-challenge-method=S256",
		"--skip-provider-button=true",
		"--skip-jwt-bearer-tokens=true",
		"--extra-jwt-issuers=" + latchBase + "=" + latchBase,
		"--oidc-email-claim=sub",
		"--insecure-oidc-allow-unverified-email=true",
		"--request-logging=false",
	}
	o2pArgs = append(o2pArgs, o.o2pArgs...)
	op, err := start("oauth2-proxy", baseEnv(), o2pArgs...)
	if err != nil {
		return err
	}
	if err := waitPing(ctx, o2pBase+"/ping", op); err != nil {
		return fmt.Errorf("oauth2-proxy: %w\n%s", err, tail(op.log, 20))
	}
	logf("latch gateway pid %d at %s; oauth2-proxy pid %d at %s", gp.pid(), gwBase, op.pid(), o2pBase)

	hc := newClient(workers)
	defer hc.CloseIdleConnections()

	// The bearer token: a user's access token from a sign-in at Latch.
	tok, err := login(ctx, hc, latchBase)
	if err != nil {
		return err
	}
	// The browsers: one SSO session at Latch, then each proxy's sign-in.
	ssoCookies, err := ssoBrowsers(ctx, hc, latchBase, 1)
	if err != nil {
		return err
	}
	signIn := func(startURL, proxyBase string) (string, error) {
		j := jar{}
		lu, _ := url.Parse(latchBase)
		j[lu.Host] = map[string]string{ssoCookies[0].Name: ssoCookies[0].Value}
		if _, _, err := browse(ctx, hc, j, startURL); err != nil {
			return "", err
		}
		pu, _ := url.Parse(proxyBase)
		ck := j.header(pu.Host)
		if ck == "" {
			return "", fmt.Errorf("sign-in through %s set no cookie", proxyBase)
		}
		return ck, nil
	}
	gwCookie, err := signIn(gwBase+"/auth/login?return_to=/app/", gwBase)
	if err != nil {
		return fmt.Errorf("sign in through latch gateway: %w", err)
	}
	o2pCookie, err := signIn(o2pBase+"/oauth2/start?rd=/", o2pBase)
	if err != nil {
		return fmt.Errorf("sign in through oauth2-proxy: %w", err)
	}
	bearer := http.Header{"Authorization": {"Bearer " + tok.AccessToken}}
	modes := []*gwMode{
		{name: "direct", title: "direct to the upstream", url: "http://" + upAddr + "/api/orders", proc: up},
		{name: "bare-proxy", title: "bare `httputil.ReverseProxy` (standard settings, no auth)", url: bareBase + "/api/orders", proc: bp},
		{name: "latch-bearer", title: "`latch gateway`, bearer token", url: gwBase + "/api/orders", header: bearer, proc: gp},
		{name: "latch-cookie", title: "`latch gateway`, BFF cookie session", url: gwBase + "/app/orders", header: http.Header{"Cookie": {gwCookie}}, proc: gp},
		{name: "o2p-bearer", title: "oauth2-proxy, bearer token", url: o2pBase + "/api/orders", header: bearer, proc: op},
		{name: "o2p-cookie", title: "oauth2-proxy, cookie session", url: o2pBase + "/api/orders", header: http.Header{"Cookie": {o2pCookie}}, proc: op},
	}
	// Each mode must reach the upstream before anything is timed, and the
	// proxies must refuse the same request without credentials.
	for _, md := range modes {
		if r := proxyOp(hc, md)(ctx, 0); !r.ok {
			return fmt.Errorf("%s: %d %.300s\n%s", md.name, r.status, r.detail, tail(md.proc.log, 20))
		}
		if md.name != "direct" && md.name != "bare-proxy" {
			bare := &gwMode{url: md.url}
			if r := proxyOp(hc, bare)(ctx, 0); r.ok {
				return fmt.Errorf("%s: the proxy passed a request without credentials", md.name)
			}
		}
	}
	logf("every mode reaches the upstream; the proxies refuse a request without credentials")
	logf("cookie sizes: latch gateway %d bytes, oauth2-proxy %d bytes", len(gwCookie), len(o2pCookie))
	m.gwCookie, m.o2pCookie = gwCookie, o2pCookie

	var rounds []gwRound
	for round := range o.repeats {
		var r gwRound
		for _, md := range modes {
			if err := wait(ctx, o.pause); err != nil {
				return err
			}
			load := loadAvg()
			s, err := closedLoop(ctx, &cluster{latch: []*proc{md.proc}}, workers, o.warmup, o.duration, proxyOp(hc, md))
			if err != nil {
				return err
			}
			s.scenario, s.topology, s.load = md.name, "", load
			r.runs = append(r.runs, s)
			logf("round %d %-13s w=%-3d %8.0f req/s  %7.0f req/proxy-CPU-s  p50 %s  p99 %s  max %s  errors %d (%s)",
				round+1, md.name, workers, s.rps(), s.perCPU(s.cpu.latch), ms(s.pct(50)), ms(s.pct(99)), ms(s.pct(100)), s.errors, statusList(s.byStatus))
			for _, p := range []*proc{up, bp, lp, gp, op} {
				if p.exited() {
					return fmt.Errorf("%s exited: %v\n%s", p.name, p.err, tail(p.log, 20))
				}
			}
		}
		rounds = append(rounds, r)
	}
	m.loadEnd = loadAvg()
	var problems []string
	for _, p := range []*proc{lp, gp, op} {
		b, _ := os.ReadFile(p.log)
		for line := range strings.SplitSeq(string(b), "\n") {
			if strings.Contains(line, "level=ERROR") || strings.Contains(line, "level=WARN") || strings.Contains(line, "panic") {
				problems = append(problems, p.name+": "+line)
			}
		}
	}
	name := "gateway.md"
	if upstreamModel(o) != "" {
		name = "gateway-upstream.md" // not to overwrite the minimal upstream's run
	}
	path := filepath.Join(o.out, name)
	if err := os.WriteFile(path, []byte(gatewayReport(o, m, workers, modes, rounds, problems)), 0o644); err != nil {
		return err
	}
	logf("wrote %s", path)
	return nil
}

// waitPing waits until GET u answers 200.
func waitPing(ctx context.Context, u string, p *proc) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if p.exited() {
			return fmt.Errorf("exited: %v", p.err)
		}
		if resp, err := http.Get(u); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if err := wait(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
	return fmt.Errorf("%s not answering after 30 s", u)
}

// gatewayReport renders OUT/gateway.md.
func gatewayReport(o options, m machine, workers int, modes []*gwMode, rounds []gwRound, problems []string) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("# `latch gateway` vs oauth2-proxy vs direct\n\n")
	p("Written by `bench/load`: `cd bench && go run ./load %s`.\n\n", strings.Join(os.Args[1:], " "))
	model := ""
	if um := upstreamModel(o); um != "" {
		model = "; before answering, it " + um + " per request"
	}
	p("The same upstream (a minimal Go HTTP server answering 200 with a %d-byte JSON body, in a process of its own%s) is reached six ways, ", len(upstreamBody), model)
	p("by the same closed-loop load generator with %d workers over HTTP/1.1 keep-alive (`GET`, the whole body read and compared). ", workers)
	p("In each of %d rounds the six modes run one after the other in the order below (%s warm-up, %s measured, %s pause before each), ", len(rounds), o.warmup, o.duration, o.pause)
	p("so a burst of other work on the machine hits all of them alike. Every figure is the **median over the rounds**; each ratio is the median of the rounds' own ratios to that round's direct run (paired).\n\n")
	p("| | |\n|---|---|\n")
	p("| date | %s |\n", m.date)
	p("| machine | %s, %d CPUs (nproc), Linux %s |\n", m.cpu, m.nproc, m.kernel)
	p("| Go | %s |\n", m.goVersion)
	p("| latch | %s; `latch serve` on SQLite (RS256 access tokens — oauth2-proxy's bearer check accepts only the discovery document's id_token algorithms —, 2 h lifetime so that no refresh happens during the run); `latch gateway` with its default SQLite session store, no Redis |\n", m.latchVersion)
	p("| oauth2-proxy | %s, built from the Go module proxy in the bench module (`go tool` dependency); `--provider=oidc` against the same `latch serve`, default cookie session store, `--request-logging=false` |\n", m.o2pVersion)
	p("| cookie sent | `latch gateway`: %d bytes (one cookie, an opaque id); oauth2-proxy: %d bytes |\n", len(m.gwCookie), len(m.o2pCookie))
	p("| load average (1/5/15 min) | %s at the start, %s at the end |\n", m.loadStart, m.loadEnd)
	if m.waited != "" {
		p("| waiting | %s |\n", m.waited)
	}
	p("| load generator | GOMAXPROCS %d, in the same machine as every server |\n\n", runtime.GOMAXPROCS(0))

	p("| mode | req/s | ratio to direct | p50 | ratio | p99 | ratio | req/s ratio to the bare proxy | req per proxy-CPU-s | req/s min–max over rounds | errors |\n")
	p("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|\n")
	for i, md := range modes {
		var rps, p50, p99, rr, r50, r99, rb, cpu []float64
		errs := 0
		for _, r := range rounds {
			s, d := r.runs[i], r.runs[0]
			rps = append(rps, s.rps())
			p50 = append(p50, msf(s.pct(50)))
			p99 = append(p99, msf(s.pct(99)))
			rr = append(rr, s.rps()/d.rps())
			rb = append(rb, s.rps()/r.runs[1].rps())
			r50 = append(r50, msf(s.pct(50))/msf(d.pct(50)))
			r99 = append(r99, msf(s.pct(99))/msf(d.pct(99)))
			cpu = append(cpu, s.perCPU(s.cpu.latch))
			errs += s.errors
		}
		cpuCol := fmt.Sprintf("%.0f", median(cpu))
		if i == 0 {
			cpuCol = "(upstream: " + cpuCol + ")"
		}
		bare := fmt.Sprintf("%.2f×", median(rb))
		if i == 0 {
			bare = "—"
		}
		p("| %s | %.0f | %.2f× | %.2f ms | %.2f× | %.2f ms | %.2f× | %s | %s | %.0f–%.0f | %d |\n",
			md.title, median(rps), median(rr), median(p50), median(r50), median(p99), median(r99), bare, cpuCol, slices.Min(rps), slices.Max(rps), errs)
	}
	p("\n**Read these figures with the machine in mind.** The load generator, the upstream, the proxy and other sessions' work share %d cores, ", m.nproc)
	p("so a proxy's CPU is taken from the load generator and the upstream: req/s through any proxy is what the whole machine sustains with the extra hop. ")
	p("\"req per proxy-CPU-s\" is requests per CPU-second used by the proxy process alone (the upstream's, for direct): the proxy's own efficiency, the sturdier figure for comparing proxies.\n\n")

	p("## Rounds\n\n| round | mode | req/s | req per proxy-CPU-s | p50 | p99 | max | errors | load avg before |\n|---:|---|---:|---:|---:|---:|---:|---:|---|\n")
	for i, r := range rounds {
		for j, s := range r.runs {
			p("| %d | %s | %.0f | %.0f | %s | %s | %s | %d %s | %s |\n", i+1, modes[j].name, s.rps(), s.perCPU(s.cpu.latch),
				ms(s.pct(50)), ms(s.pct(99)), ms(s.pct(100)), s.errors, errNote(s), first(s.load))
		}
	}
	p("\nWarnings/errors logged by latch serve, latch gateway and oauth2-proxy: %d\n", len(problems))
	for i, pr := range problems {
		if i == 20 {
			p("- … %d more\n", len(problems)-20)
			break
		}
		p("- %s\n", strings.ReplaceAll(pr, "|", "\\|"))
	}
	return b.String()
}
