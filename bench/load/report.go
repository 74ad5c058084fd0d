package main

import (
	"cmp"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

func sortedKeys[K cmp.Ordered, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// scenarioTitles name the scenarios in the report.
var scenarioTitles = map[string]string{
	"refresh":            "Refresh: `POST /v1/auth/refresh`, each worker rotating its own session",
	"client_credentials": "Client credentials: `POST /oauth2/token` (`grant_type=client_credentials`, HTTP Basic)",
	"login":              "Password login: `POST /v1/auth/login` (argon2id m=19456 KiB t=2 p=1)",
}

// report renders results/load.md.
func report(o options, m machine, results []*topoResult) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }

	p("# Load benchmark\n\n")
	p("Written by `bench/load` (`cd bench && go run ./load`); raw figures per topology in `load-*.txt` beside this file.\n")
	p("Real `latch serve` processes on 127.0.0.1, driven over HTTP/1.1 keep-alive by a closed-loop load generator:\n")
	p("each of N workers sends its next request as soon as the previous one is answered.\n\n")
	p("| | |\n|---|---|\n")
	p("| date | %s |\n", m.date)
	p("| machine | %s, %d CPUs (nproc), Linux %s |\n", m.cpu, m.nproc, m.kernel)
	p("| Go | %s |\n", m.goVersion)
	p("| latch | %s (default configuration: EdDSA, argon2id with one hash per CPU at a time) |\n", m.latchVersion)
	if needsPG(o.topologies) {
		p("| PostgreSQL | %s on the same machine (shared server, a schema of the run's own; default pgx pool: 4 connections per instance) |\n", m.pgVersion)
		p("| Redis | %s, a private server on the same machine (fan-out only) |\n", m.redisVersion)
	}
	p("| runs | %s warm-up, then %s measured; %s workers for refresh and client credentials, %d for login; %d propagation rounds polling every %s |\n",
		o.warmup, o.duration, joinInts(o.workers), o.loginWorkers, o.rounds, o.poll)
	p("| load average (1/5/15 min) | %s at the start, %s at the end; 1-minute figure before each run in the tables (it includes the benchmark's own preceding runs; the *other* column of the CPU table is the better measure of foreign work) |\n", m.loadStart, m.loadEnd)
	if m.waited != "" {
		p("| waiting | %s |\n", m.waited)
	}
	p("| command | `go run ./load %s` |\n\n", strings.Join(os.Args[1:], " "))

	p("**Read these figures with the machine in mind.** The load generator runs on the same %d cores as the servers "+
		"(and, for the PostgreSQL topologies, PostgreSQL and Redis too), so the requests per wall-clock second are what "+
		"the whole machine sustains with the client included, not a server's capacity. The *per latch-CPU-second* column divides "+
		"the successful requests by the CPU time (user + system, from `/proc/PID/stat`) the Latch processes used over the "+
		"measured window: that is the figure comparable with the peers' \"per vCPU\" sizing, which also counts the server "+
		"alone and puts the database on its own hardware. *Per stack-CPU-second* adds the run's PostgreSQL backends and "+
		"the Redis server. The CPU table below shows where the cores went, the load generator and other work on the machine included.\n\n", m.nproc)

	p("## Beside the peers' published figures\n\n")
	p("Peers' figures as quoted in DESIGN.md §9: Keycloak's sizing guide (per vCPU: 15 password logins/s, 120–200 client-credentials grants/s, 120 refreshes/s) and a user report for Hydra (`/oauth2/token` p50 about 80 ms). ")
	p("Latch: the best run of each topology (its worker count in brackets), as requests per Latch CPU-second, then requests per wall second on this %d-CPU machine.\n\n", m.nproc)
	p("| operation | peers (DESIGN.md §9) |")
	for _, r := range results {
		p(" Latch, %s |", r.topo.title)
	}
	p("\n|---|---|%s\n", strings.Repeat("---:|", len(results)))
	peerRow := func(scenario, label, peer string) {
		p("| %s | %s |", label, peer)
		for _, r := range results {
			s := best(r, scenario)
			if s == nil {
				p(" – |")
				continue
			}
			p(" **%.0f**/CPU-s (%.0f/s, %d workers) |", s.perCPU(s.cpu.latch), s.rps(), s.workers)
		}
		p("\n")
	}
	peerRow("login", "password logins", "Keycloak: 15/s per vCPU")
	peerRow("client_credentials", "client-credentials grants", "Keycloak: 120–200/s per vCPU")
	peerRow("refresh", "refreshes", "Keycloak: 120/s per vCPU")
	p("| `/oauth2/token` p50 latency | Hydra: about 80 ms (user report, load unknown) |")
	for _, r := range results {
		var parts []string
		for _, s := range r.runs {
			if s.scenario == "client_credentials" {
				parts = append(parts, fmt.Sprintf("%s at %d workers", ms(s.pct(50)), s.workers))
			}
		}
		if len(parts) == 0 {
			p(" – |")
		} else {
			p(" %s |", strings.Join(parts, "; "))
		}
	}
	p("\n\n")

	for _, sc := range []string{"refresh", "client_credentials", "login"} {
		if !has(o.scenarios, sc) {
			continue
		}
		p("## %s\n\n", scenarioTitles[sc])
		p("| topology | workers | req/s | req per latch-CPU-s | req per stack-CPU-s | p50 | p90 | p99 | max | errors | load avg before |\n")
		p("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|\n")
		for _, r := range results {
			for _, s := range r.runs {
				if s.scenario != sc {
					continue
				}
				errs := "0"
				if s.errors > 0 {
					errs = fmt.Sprintf("**%d** (%s)", s.errors, statusList(s.byStatus))
				}
				p("| %s | %d | %.0f | %.0f | %.0f | %s | %s | %s | %s | %s | %s |\n",
					r.topo.title, s.workers, s.rps(), s.perCPU(s.cpu.latch), s.perCPU(s.cpu.stack()),
					ms(s.pct(50)), ms(s.pct(90)), ms(s.pct(99)), ms(s.pct(100)), errs, first(s.load))
			}
		}
		p("\n")
	}

	p("## Where the CPU went\n\n")
	p("Average cores busy over each measured window (CPU-seconds ÷ wall seconds; the machine has %d). "+
		"*Other* is the machine's busy time not accounted for by the run's processes: other users' work above all "+
		"(compare the runs with each other), then kernel threads (loopback networking, block I/O and journal commits for the stores' fsyncs) and PostgreSQL's background processes.\n\n", m.nproc)
	p("| scenario | topology | workers | latch | PostgreSQL backends | Redis | load generator | other | machine busy |\n")
	p("|---|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range results {
		for _, s := range r.runs {
			u := s.cpu
			c := func(d time.Duration) string { return fmt.Sprintf("%.2f", d.Seconds()/u.wall.Seconds()) }
			pg, rd := "–", "–"
			if r.topo.postgres {
				pg, rd = c(u.pg), c(u.redis)
			}
			p("| %s | %s | %d | %s | %s | %s | %s | %s | %s |\n", s.scenario, r.topo.name, s.workers,
				c(u.latch), pg, rd, c(u.self), c(u.other), c(u.machineBusy))
		}
	}
	p("\n")

	if has(o.scenarios, "propagation") {
		p("## Revocation propagation across instances\n\n")
		p("Each round signs in through instance A, checks the access token is accepted on C, logs the session out through "+
			"instance B (`POST /v1/auth/logout` with the bearer token) and polls `GET /v1/me` on C every %s until it answers 401; "+
			"roles rotate over the three instances. *After the 204*: from B's answer to C's first 401 — how long a logged-out "+
			"token stays usable elsewhere. *After sending*: from sending the logout. Resolution is one poll (interval plus a request, "+
			"about a millisecond). Instances learn of revocations through Redis pub/sub, then read the store; without Redis they "+
			"poll the store every 500 ms.\n\n", o.poll)
		p("| topology | rounds | median after the 204 | p99 | max | median after sending | p99 | already 401 at the first poll | failures | load avg before |\n")
		p("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, r := range results {
			ps := r.prop
			if ps == nil || len(ps.afterAck) == 0 {
				continue
			}
			p("| %s | %d | %s | %s | %s | %s | %s | %d of %d | %d | %s |\n", r.topo.title, len(ps.afterAck),
				ms(percentile(ps.afterAck, 50)), ms(percentile(ps.afterAck, 99)), ms(percentile(ps.afterAck, 100)),
				ms(percentile(ps.afterSend, 50)), ms(percentile(ps.afterSend, 99)),
				ps.immediate, len(ps.afterAck), len(ps.failures), first(ps.load))
		}
		p("\n")
	}

	p("## Errors and server log\n\n")
	anyProblem := false
	for _, r := range results {
		for _, s := range r.runs {
			if s.errors > 0 || s.warmupErrs > 0 {
				anyProblem = true
				p("- %s, %s, %d workers: %d errors in the window (%s), %d outside it; samples in `load-%s.txt`\n",
					s.scenario, r.topo.name, s.workers, s.errors, statusList(s.byStatus), s.warmupErrs, r.topo.name)
			}
		}
		if r.prop != nil && len(r.prop.failures) > 0 {
			anyProblem = true
			p("- propagation, %s: %d failed rounds; see `load-%s.txt`\n", r.topo.name, len(r.prop.failures), r.topo.name)
		}
		if len(r.problems) > 0 {
			anyProblem = true
			p("- %s: the servers logged %d warnings or errors; see `load-%s.txt`\n", r.topo.name, len(r.problems), r.topo.name)
		}
	}
	if !anyProblem {
		p("No request failed and no server logged a warning or an error.\n")
	}
	p("\nLoad generator: Go %s, GOMAXPROCS %d, one `http.Transport` with `MaxIdleConnsPerHost` = workers; "+
		"requests are spread round-robin over the instances; latency is measured from sending the request to reading the whole response.\n", runtime.Version(), runtime.GOMAXPROCS(0))
	return b.String()
}

// best is the run of scenario with the most requests per Latch CPU-second.
func best(r *topoResult, scenario string) *stats {
	var out *stats
	for _, s := range r.runs {
		if s.scenario == scenario && (out == nil || s.perCPU(s.cpu.latch) > out.perCPU(out.cpu.latch)) {
			out = s
		}
	}
	return out
}

func first(load string) string {
	f := strings.Fields(load)
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

func joinInts(xs []int) string {
	var s []string
	for _, x := range xs {
		s = append(s, fmt.Sprint(x))
	}
	return strings.Join(s, " and ")
}
