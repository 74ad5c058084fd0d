package main

// The code-exchange experiment: what the authorization_code grant costs at
// the token endpoint, beside client_credentials measured on the same
// instance in the same run.
//
// Every exchange needs a code nobody has redeemed. The codes are minted
// before each measured run through the real authorization endpoint — GET
// /oauth2/authorize with the SSO cookie of a browser that signed in on
// Latch's own sign-in API — so that each is exactly what an RP receives:
// stored by the instance under test, bound to the client, the redirect
// URI, a PKCE S256 challenge and a nonce. Minting is not timed. The timed
// requests are POST /oauth2/token, grant_type=authorization_code, with
// client_secret_basic, redirect_uri and code_verifier, answered with an
// access token, a refresh token (the RP is first-party) and an RS256
// id_token: everything an RP's callback costs the provider.

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
)

// The relying party of the experiment.
const (
	rpID       = "load-rp"
	rpRedirect = "https://rp.latch-load.test/cb"
	// rpVerifier is the PKCE verifier of every minted code: the exchange
	// checks it against the code's S256 challenge.
	rpVerifier = "load-benchmark-pkce-verifier-0123456789-abcdefghijklmnop"
)

// codeTTL is the codes' lifetime in the experiment (the most codes.ttl
// allows): a code minted before the warm-up must still be valid at the end
// of the window. The lifetime is a column of the row; it costs nothing.
const codeTTL = "10m"

// codeBank holds each worker's unredeemed codes. Worker w redeems only
// codes minted under its own SSO session, so workers share no row but the
// client's.
type codeBank struct {
	codes [][]string
	next  []int
}

func (b *codeBank) take(w int) (string, bool) {
	if b.next[w] >= len(b.codes[w]) {
		return "", false
	}
	c := b.codes[w][b.next[w]]
	b.next[w]++
	return c, true
}

// ssoBrowsers signs n browsers in on Latch's sign-in API (the account
// client) and returns each one's SSO cookie.
func ssoBrowsers(ctx context.Context, hc *http.Client, base string, n int) ([]*http.Cookie, error) {
	out := make([]*http.Cookie, n)
	for i := range n {
		req := jsonPost(ctx, base+"/v1/auth/login", map[string]string{"email": userEmail, "password": userPassword, "client_id": "latch-account"})
		resp, err := hc.Do(req)
		if err != nil {
			return nil, err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("sign-in for the SSO session: %d", resp.StatusCode)
		}
		for _, ck := range resp.Cookies() {
			if strings.HasSuffix(ck.Name, "latch_sso") {
				out[i] = ck
			}
		}
		if out[i] == nil {
			return nil, fmt.Errorf("sign-in set no SSO cookie")
		}
	}
	return out, nil
}

// mintCodes asks the authorization endpoint for per codes under each SSO
// cookie, the browsers in parallel.
func mintCodes(ctx context.Context, hc *http.Client, base string, cookies []*http.Cookie, per int) (*codeBank, error) {
	sum := sha256.Sum256([]byte(rpVerifier))
	q := url.Values{"client_id": {rpID}, "redirect_uri": {rpRedirect}, "response_type": {"code"}, "scope": {"openid"},
		"state": {"load"}, "nonce": {"load-nonce"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}
	authorize := base + "/oauth2/authorize?" + q.Encode()
	bank := &codeBank{codes: make([][]string, len(cookies)), next: make([]int, len(cookies))}
	var wg sync.WaitGroup
	errs := make([]error, len(cookies))
	for w, ck := range cookies {
		wg.Go(func() {
			codes := make([]string, 0, per)
			for len(codes) < per && ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, authorize, nil)
				req.AddCookie(ck)
				resp, err := hc.Transport.RoundTrip(req) // no redirect following
				if err != nil {
					errs[w] = err
					return
				}
				resp.Body.Close()
				loc, _ := url.Parse(resp.Header.Get("Location"))
				if resp.StatusCode != http.StatusSeeOther || loc == nil || loc.Query().Get("code") == "" {
					errs[w] = fmt.Errorf("authorize: %d %q", resp.StatusCode, resp.Header.Get("Location"))
					return
				}
				codes = append(codes, loc.Query().Get("code"))
			}
			bank.codes[w] = codes
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return bank, ctx.Err()
}

// codeExchangeOp redeems the worker's next code at the token endpoint.
func codeExchangeOp(hc *http.Client, base string, bank *codeBank) func(ctx context.Context, w int) outcome {
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(rpID)+":"+url.QueryEscape(clientSecret)))
	return func(ctx context.Context, w int) outcome {
		code, ok := bank.take(w)
		if !ok {
			return outcome{status: -1, detail: "out of pre-minted codes"}
		}
		form := "grant_type=authorization_code&code=" + url.QueryEscape(code) +
			"&redirect_uri=" + url.QueryEscape(rpRedirect) + "&code_verifier=" + rpVerifier
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/oauth2/token", strings.NewReader(form))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", auth)
		st, body, err := do(hc, req)
		if err != nil || st != http.StatusOK {
			return failure(st, body, err)
		}
		var t struct {
			AccessToken  string `json:"access_token"`
			RefreshToken string `json:"refresh_token"`
			IDToken      string `json:"id_token"`
		}
		if err := json.Unmarshal(body, &t); err != nil || t.AccessToken == "" || t.RefreshToken == "" || t.IDToken == "" {
			return outcome{status: st, detail: "bad token response: " + string(body)}
		}
		return outcome{ok: true}
	}
}

// exchangeRound is one interleaved round: client_credentials, then the
// code exchange, with the same workers on the same instance.
type exchangeRound struct {
	cc, code *stats
	minted   int
	mintTook time.Duration
}

// exchangeTopo is the experiment's result on one topology.
type exchangeTopo struct {
	topo     topology
	workers  int
	rounds   []exchangeRound
	problems []string
}

// codeExchangeExperiment runs the experiment on each of o.topologies with
// one instance (sqlite, pg1) and writes OUT/oidc-code-exchange.md.
func codeExchangeExperiment(ctx context.Context, o options, m machine, bin, work string, logf func(string, ...any)) error {
	var results []*exchangeTopo
	for _, name := range o.topologies {
		t := topologies[name]
		if t.instances != 1 {
			return fmt.Errorf("the code-exchange experiment runs on one instance (sqlite, pg1), not %s", name)
		}
		for _, w := range o.workers {
			r, err := exchangeTopology(ctx, o, t, w, bin, work, logf)
			if r != nil {
				results = append(results, r)
			}
			if err != nil {
				return err
			}
		}
	}
	m.loadEnd = loadAvg()
	path := filepath.Join(o.out, "oidc-code-exchange.md")
	if err := os.WriteFile(path, []byte(exchangeReport(o, m, results)), 0o644); err != nil {
		return err
	}
	logf("wrote %s", path)
	return nil
}

func exchangeTopology(ctx context.Context, o options, t topology, workers int, bin, work string, logf func(string, ...any)) (*exchangeTopo, error) {
	logf("== %s, %d workers: client_credentials and authorization_code, %d interleaved rounds", t.title, workers, o.repeats)
	c, err := startCluster(ctx, t, bin, work, o.pg, []string{"LATCH_CODES_TTL=" + codeTTL}, logf)
	if err != nil {
		return nil, err
	}
	defer c.close()
	res := &exchangeTopo{topo: t, workers: workers}
	defer func() { res.problems = append(res.problems, c.logProblems()...) }()
	if err := c.run(ctx, clientSecret+"\n", "client", "add", "--data-dir", c.dataDir, "--id", rpID, "--secret-stdin",
		"--redirect-uri", rpRedirect, "--first-party"); err != nil {
		return res, err
	}
	hc := newClient(workers)
	defer hc.CloseIdleConnections()
	base := c.bases[0]
	tg := &target{bases: c.bases}
	cookies, err := ssoBrowsers(ctx, hc, base, workers)
	if err != nil {
		return res, err
	}
	// Enough codes for the warm-up and the window at 1.5 times the fastest
	// exchange rate seen so far (a guess for the first round; a worker that
	// runs out counts errors, which the report shows).
	rate := 600.0
	for round := range o.repeats {
		var r exchangeRound
		if err := wait(ctx, o.pause); err != nil {
			return res, err
		}
		load := loadAvg()
		s, err := closedLoop(ctx, c, workers, o.warmup, o.duration, clientCredentialsOp(hc, tg))
		if err != nil {
			return res, err
		}
		s.scenario, s.topology, s.load = "client_credentials", t.name, load
		r.cc = s
		logRun(logf, round, s)

		per := int(1.5*rate*(o.warmup+o.duration).Seconds())/workers + 1
		t0 := time.Now()
		bank, err := mintCodes(ctx, hc, base, cookies, per)
		if err != nil {
			return res, fmt.Errorf("mint codes: %w", err)
		}
		r.minted, r.mintTook = per*workers, time.Since(t0)
		logf("minted %d codes through /oauth2/authorize in %s", r.minted, r.mintTook.Round(time.Millisecond))
		if err := wait(ctx, o.pause); err != nil {
			return res, err
		}
		load = loadAvg()
		s, err = closedLoop(ctx, c, workers, o.warmup, o.duration, codeExchangeOp(hc, base, bank))
		if err != nil {
			return res, err
		}
		s.scenario, s.topology, s.load = "authorization_code", t.name, load
		r.code = s
		logRun(logf, round, s)
		if n := s.byStatus[-1]; n > 0 {
			res.problems = append(res.problems, fmt.Sprintf("round %d ran out of codes (%d requests had none)", round+1, n))
		}
		if round == 0 {
			rate = s.rps()
		} else {
			rate = max(rate, s.rps())
		}
		res.rounds = append(res.rounds, r)
		if d := c.dead(); len(d) > 0 {
			return res, fmt.Errorf("processes exited: %s", strings.Join(d, "; "))
		}
	}
	return res, nil
}

func logRun(logf func(string, ...any), round int, s *stats) {
	logf("round %d %-18s %-6s w=%-3d %8.0f req/s  %7.0f req/latch-CPU-s  p50 %s  p99 %s  max %s  errors %d (%s)",
		round+1, s.scenario, s.topology, s.workers, s.rps(), s.perCPU(s.cpu.latch), ms(s.pct(50)), ms(s.pct(99)), ms(s.pct(100)), s.errors, statusList(s.byStatus))
}

// median of xs (the mean of the middle two for an even count).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// figures are the medians over the rounds of one grant on one topology.
type figures struct {
	rps, perCPU, p50, p99, ratio, ratioCPU float64 // latencies in ms
	min, max                               float64
	errors                                 int
}

func summarize(rounds []exchangeRound, pick func(exchangeRound) *stats) figures {
	var rps, cpu, p50, p99, ratio, ratioCPU []float64
	var f figures
	for _, r := range rounds {
		s := pick(r)
		rps = append(rps, s.rps())
		cpu = append(cpu, s.perCPU(s.cpu.latch))
		p50 = append(p50, msf(s.pct(50)))
		p99 = append(p99, msf(s.pct(99)))
		ratio = append(ratio, s.rps()/r.cc.rps())
		ratioCPU = append(ratioCPU, s.perCPU(s.cpu.latch)/r.cc.perCPU(r.cc.cpu.latch))
		f.errors += s.errors
	}
	f.rps, f.perCPU, f.p50, f.p99, f.ratio, f.ratioCPU = median(rps), median(cpu), median(p50), median(p99), median(ratio), median(ratioCPU)
	f.min, f.max = slices.Min(rps), slices.Max(rps)
	return f
}

func msf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// exchangeReport renders results/oidc-code-exchange.md.
func exchangeReport(o options, m machine, results []*exchangeTopo) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("# Authorization code exchange vs client credentials\n\n")
	p("Written by `bench/load`: `cd bench && go run ./load %s`.\n", strings.Join(os.Args[1:], " "))
	p("One real `latch serve` process per store on 127.0.0.1, driven over HTTP/1.1 keep-alive by a closed-loop load generator ")
	p("in the same machine; in each of %d rounds, `client_credentials` runs first and the code exchange right after, on the same instance ", o.repeats)
	p("with the same workers (%s warm-up, %s measured each). Every figure is the **median over the rounds**; the ratio is the median of the rounds' own ratios (paired, so a burst of other work on the machine moves both sides).\n\n", o.warmup, o.duration)
	p("| | |\n|---|---|\n")
	p("| date | %s |\n", m.date)
	p("| machine | %s, %d CPUs (nproc), Linux %s |\n", m.cpu, m.nproc, m.kernel)
	p("| Go | %s |\n", m.goVersion)
	p("| latch | %s (default configuration: EdDSA access tokens, RS256 id_tokens; `codes.ttl` 10m so that pre-minted codes outlive the run) |\n", m.latchVersion)
	if m.pgVersion != "" {
		p("| PostgreSQL | %s on the same machine (shared server, a schema of the run's own; default pgx pool) + Redis %s, private |\n", m.pgVersion, m.redisVersion)
	}
	p("| load average (1/5/15 min) | %s at the start, %s at the end |\n", m.loadStart, m.loadEnd)
	if m.waited != "" {
		p("| waiting | %s |\n", m.waited)
	}
	p("| load generator | GOMAXPROCS %d, in the same machine |\n\n", runtime.GOMAXPROCS(0))

	p("| store | workers | grant | req/s | req per latch-CPU-s | p50 | p99 | ratio to client_credentials (req/s) | (per CPU-s) | req/s min–max over rounds | errors |\n")
	p("|---|---:|---|---:|---:|---:|---:|---:|---:|---|---:|\n")
	for _, r := range results {
		if len(r.rounds) == 0 {
			continue
		}
		for _, g := range []struct {
			name string
			pick func(exchangeRound) *stats
		}{{"client_credentials", func(x exchangeRound) *stats { return x.cc }}, {"authorization_code", func(x exchangeRound) *stats { return x.code }}} {
			f := summarize(r.rounds, g.pick)
			p("| %s | %d | `%s` | %.0f | %.0f | %.2f ms | %.2f ms | %.2f× | %.2f× | %.0f–%.0f | %d |\n",
				r.topo.title, r.workers, g.name, f.rps, f.perCPU, f.p50, f.p99, f.ratio, f.ratioCPU, f.min, f.max, f.errors)
		}
	}
	p("\n**What is timed.** `client_credentials`: `POST /oauth2/token` with HTTP Basic client authentication, answered with an access token; no store write. ")
	p("`authorization_code`: `POST /oauth2/token` with `grant_type=authorization_code`, `code`, `redirect_uri`, a PKCE `code_verifier` and HTTP Basic client authentication, ")
	p("answered with an access token, a refresh token and an RS256 id_token: the code is spent (a conditional update), the client is recorded in the SSO session, ")
	p("a session with its refresh token is created and tied to the code (for replay revocation), and two JWTs are signed (EdDSA and RSA-2048). ")
	p("Each code was minted before the run through the real `GET /oauth2/authorize` (a first-party RP, `scope=openid`, S256 challenge, nonce), ")
	p("with the SSO cookie of one of %d browsers signed in through `POST /v1/auth/login` (`client_id=latch-account`); each worker redeems the codes of its own SSO session. ", workersOf(results))
	p("Minting is not timed. A worker with no code left would count an error (`out of pre-minted codes`); codes are minted for 1.5× the fastest rate seen.\n\n")
	p("**Read these figures with the machine in mind.** Two cores are shared by the server, the load generator, PostgreSQL and other sessions' work; ")
	p("requests per wall second are what the whole machine sustains, not a server's capacity; the per latch-CPU-second column and the ratios are the sturdier figures. ")
	p("The load average is in the table above and before every run below.\n\n")

	p("## Rounds\n\n")
	p("| store | round | grant | req/s | req per latch-CPU-s | p50 | p99 | max | errors | load avg before | codes minted (time) |\n")
	p("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, r := range results {
		for i, x := range r.rounds {
			for _, s := range []*stats{x.cc, x.code} {
				mint := ""
				if s == x.code {
					mint = fmt.Sprintf("%d (%s)", x.minted, x.mintTook.Round(100*time.Millisecond))
				}
				p("| %s | %d | `%s` | %.0f | %.0f | %s | %s | %s | %d %s | %s | %s |\n", r.topo.name, i+1, s.scenario, s.rps(), s.perCPU(s.cpu.latch),
					ms(s.pct(50)), ms(s.pct(99)), ms(s.pct(100)), s.errors, errNote(s), first(s.load), mint)
			}
		}
	}
	var problems []string
	for _, r := range results {
		for _, pr := range r.problems {
			problems = append(problems, r.topo.name+": "+pr)
		}
	}
	p("\nServer warnings/errors logged and other problems: %d\n", len(problems))
	for i, pr := range problems {
		if i == 20 {
			p("- … %d more\n", len(problems)-20)
			break
		}
		p("- %s\n", strings.ReplaceAll(pr, "|", "\\|"))
	}
	return b.String()
}

func errNote(s *stats) string {
	if s.errors == 0 {
		return ""
	}
	return "(" + statusList(s.byStatus) + ")"
}

func workersOf(results []*exchangeTopo) int {
	for _, r := range results {
		return r.workers
	}
	return 0
}
