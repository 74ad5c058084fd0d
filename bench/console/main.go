// Command console measures the admin console's queries (latch.ConsoleStore)
// at scale: it seeds a fresh SQLite database and a fresh PostgreSQL schema
// with 100 000 users (one session each) and 1 000 000 security events over
// 30 days, by bulk SQL, then times each query many times with varied
// arguments and prints p50, p95 and p99 as a Markdown table.
//
//	cd bench && go run ./console                        # both stores, the full seed
//	go run ./console -stores sqlite -users 10000 -events 100000 -samples 100
package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/latchauth/latch"
	"github.com/latchauth/latch/postgres"
	"github.com/latchauth/latch/sqlite"
)

var (
	stores  = flag.String("stores", "sqlite,postgres", "stores to measure, comma-separated")
	users   = flag.Int("users", 100000, "users (and sessions) to seed")
	events  = flag.Int("events", 1000000, "events to seed, over the last 30 days")
	samples = flag.Int("samples", 300, "timed calls of each query")
	pgURL   = flag.String("postgres", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "PostgreSQL database (a schema of the run's own is created and dropped)")
	limit   = flag.Int("limit", 50, "page size")
)

// names are the first letters of the seeded emails: a prefix search of
// three letters matches about 1/26 of the users.
var names = []string{"ada", "bob", "cyd", "dee", "eve", "fay", "gus", "hal", "ivy", "jon", "kim", "lou", "max",
	"ned", "oda", "pam", "quin", "ray", "sue", "tom", "uma", "val", "wes", "xia", "yul", "zoe"}

// types are the seeded event types, by weight.
var types = []string{"login_succeeded", "login_succeeded", "login_succeeded", "login_failed", "login_failed",
	"token_refreshed", "token_refreshed", "session_revoked", "refresh_token_reused", "user_created"}

func main() {
	flag.Parse()
	log.SetFlags(0)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	fmt.Printf("| | |\n|---|---|\n| date | %s |\n| machine | %d CPUs, %s |\n| Go | %s |\n| seed | %d users, %d sessions, %d events over 30 days |\n| samples | %d per query, page of %d |\n| load average | %s at the start |\n\n",
		now.Format("2006-01-02 15:04 UTC"), runtime.NumCPU(), cpuModel(), runtime.Version(), *users, *users, *events, *samples, *limit, loadavg())
	fmt.Println("| store | query | p50 | p95 | p99 | max | rows (median) |")
	fmt.Println("|---|---|---:|---:|---:|---:|---:|")
	for _, name := range strings.Split(*stores, ",") {
		var st latch.Store
		var cleanup func()
		t0 := time.Now()
		switch name {
		case "sqlite":
			st, cleanup = seedSQLite(ctx, now)
		case "postgres":
			st, cleanup = seedPostgres(ctx, now)
		default:
			log.Fatalf("unknown store %q", name)
		}
		log.Printf("%s: seeded in %v", name, time.Since(t0).Round(time.Second))
		measure(ctx, name, st, now)
		st.Close()
		cleanup()
	}
	fmt.Printf("\nload average at the end: %s\n", loadavg())
}

// query is one timed query: run returns how many rows it read.
type query struct {
	name string
	run  func(ctx context.Context, r *rand.Rand) (int, error)
}

func measure(ctx context.Context, store string, st latch.Store, now time.Time) {
	day := 24 * time.Hour
	span := 30 * day
	randUser := func(r *rand.Rand) string { return fmt.Sprint("u", r.IntN(*users)) }
	randIP := func(r *rand.Rand) string {
		n := r.IntN(10000)
		return fmt.Sprintf("10.%d.%d.%d", n/65536, n/256%256, n%256)
	}
	randTime := func(r *rand.Rand) time.Time { return now.Add(-time.Duration(r.Int64N(int64(span - day)))) }
	prefix := func(r *rand.Rand) string { return names[r.IntN(len(names))] }
	page := func(ctx context.Context, f latch.EventFilter) (int, error) {
		list, err := st.FilterEvents(ctx, f)
		return len(list), err
	}
	// cursor returns the Before of the second page of f.
	cursor := func(ctx context.Context, f latch.EventFilter) int64 {
		list, err := st.FilterEvents(ctx, f)
		if err != nil || len(list) == 0 {
			return 0
		}
		return list[len(list)-1].ID
	}
	queries := []query{
		{"users: first page", func(ctx context.Context, r *rand.Rand) (int, error) {
			list, err := st.SearchUsers(ctx, latch.UserQuery{Limit: *limit})
			return len(list), err
		}},
		{"users: search by email prefix (3 letters)", func(ctx context.Context, r *rand.Rand) (int, error) {
			list, err := st.SearchUsers(ctx, latch.UserQuery{Search: prefix(r), Limit: *limit})
			return len(list), err
		}},
		{"users: search by longer prefix (few matches)", func(ctx context.Context, r *rand.Rand) (int, error) {
			list, err := st.SearchUsers(ctx, latch.UserQuery{Search: fmt.Sprintf("%s%d", prefix(r), r.IntN(1000)), Limit: *limit})
			return len(list), err
		}},
		{"users: search by id", func(ctx context.Context, r *rand.Rand) (int, error) {
			list, err := st.SearchUsers(ctx, latch.UserQuery{Search: randUser(r), Limit: *limit})
			return len(list), err
		}},
		{"users: next page (cursor)", func(ctx context.Context, r *rand.Rand) (int, error) {
			p := prefix(r)
			list, err := st.SearchUsers(ctx, latch.UserQuery{Search: p, After: fmt.Sprintf("%s%d", p, r.IntN(100000)), Limit: *limit})
			return len(list), err
		}},
		{"users: count", func(ctx context.Context, r *rand.Rand) (int, error) {
			_, err := st.CountUsers(ctx)
			return 1, err
		}},
		{"events: newest", func(ctx context.Context, r *rand.Rand) (int, error) {
			return page(ctx, latch.EventFilter{Limit: *limit})
		}},
		{"events: by type (common)", func(ctx context.Context, r *rand.Rand) (int, error) {
			return page(ctx, latch.EventFilter{Types: []string{"login_failed"}, Limit: *limit})
		}},
		{"events: by type (rare, 10 %)", func(ctx context.Context, r *rand.Rand) (int, error) {
			return page(ctx, latch.EventFilter{Types: []string{"refresh_token_reused"}, Before: int64(r.IntN(*events)) + 1, Limit: *limit})
		}},
		{"events: by two types", func(ctx context.Context, r *rand.Rand) (int, error) {
			return page(ctx, latch.EventFilter{Types: []string{"refresh_token_reused", "session_revoked"}, Limit: *limit})
		}},
		{"events: by user", func(ctx context.Context, r *rand.Rand) (int, error) {
			return page(ctx, latch.EventFilter{UserID: randUser(r), Limit: *limit})
		}},
		{"events: by IP", func(ctx context.Context, r *rand.Rand) (int, error) {
			return page(ctx, latch.EventFilter{IP: randIP(r), Limit: *limit})
		}},
		{"events: 1 h window", func(ctx context.Context, r *rand.Rand) (int, error) {
			from := randTime(r)
			return page(ctx, latch.EventFilter{From: from, To: from.Add(time.Hour), Limit: *limit})
		}},
		{"events: 1 day window", func(ctx context.Context, r *rand.Rand) (int, error) {
			from := randTime(r)
			return page(ctx, latch.EventFilter{From: from, To: from.Add(day), Limit: *limit})
		}},
		{"events: type + 1 day window", func(ctx context.Context, r *rand.Rand) (int, error) {
			from := randTime(r)
			return page(ctx, latch.EventFilter{Types: []string{"login_failed"}, From: from, To: from.Add(day), Limit: *limit})
		}},
		{"events: user + type", func(ctx context.Context, r *rand.Rand) (int, error) {
			return page(ctx, latch.EventFilter{UserID: randUser(r), Types: []string{"login_succeeded"}, Limit: *limit})
		}},
		{"events: next page (cursor of page 1)", func(ctx context.Context, r *rand.Rand) (int, error) {
			return page(ctx, latch.EventFilter{Before: cursor(ctx, latch.EventFilter{Limit: *limit}), Limit: *limit})
		}},
		{"events: deep page (random cursor)", func(ctx context.Context, r *rand.Rand) (int, error) {
			return page(ctx, latch.EventFilter{Before: int64(r.IntN(*events)) + 1, Limit: *limit})
		}},
		{"count events: last hour, per minute", func(ctx context.Context, r *rand.Rand) (int, error) {
			list, err := st.CountEvents(ctx, nil, now.Add(-time.Hour), time.Minute)
			return len(list), err
		}},
		{"count events: last day, per hour", func(ctx context.Context, r *rand.Rand) (int, error) {
			list, err := st.CountEvents(ctx, nil, now.Add(-day), time.Hour)
			return len(list), err
		}},
		{"count live sessions", func(ctx context.Context, r *rand.Rand) (int, error) {
			n, err := st.CountLiveSessions(ctx, now)
			return n, err
		}},
	}
	for _, q := range queries {
		r := rand.New(rand.NewPCG(1, 2))
		for range 5 { // warm the statement cache and the pages
			if _, err := q.run(ctx, r); err != nil {
				log.Fatalf("%s: %s: %v", store, q.name, err)
			}
		}
		d := make([]time.Duration, *samples)
		rows := make([]int, *samples)
		for i := range d {
			t := time.Now()
			n, err := q.run(ctx, r)
			d[i] = time.Since(t)
			if err != nil {
				log.Fatalf("%s: %s: %v", store, q.name, err)
			}
			rows[i] = n
		}
		slices.Sort(d)
		slices.Sort(rows)
		fmt.Printf("| %s | %s | %s | %s | %s | %s | %d |\n", store, q.name, ms(pct(d, 50)), ms(pct(d, 95)), ms(pct(d, 99)), ms(d[len(d)-1]), rows[len(rows)/2])
	}
}

func pct(d []time.Duration, p int) time.Duration { return d[(len(d)-1)*p/100] }

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/1e6) }

// seedSQLite opens (and so migrates) a fresh database in a temporary
// directory and fills it through a second connection, in one transaction.
func seedSQLite(ctx context.Context, now time.Time) (latch.Store, func()) {
	dir, err := os.MkdirTemp("", "latch-console-bench")
	if err != nil {
		log.Fatal(err)
	}
	path := filepath.Join(dir, "latch.db")
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		log.Fatal(err)
	}
	st.Close()
	db, err := sql.Open("sqlite", path+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)")
	if err != nil {
		log.Fatal(err)
	}
	nowUs := now.UnixMicro()
	spanUs := (30 * 24 * time.Hour).Microseconds()
	for _, q := range []string{
		"PRAGMA synchronous = OFF",
		"BEGIN",
		fmt.Sprintf(`WITH RECURSIVE g(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM g WHERE n < %d)
			INSERT INTO users (id, email, password_hash, created_at, updated_at)
			SELECT 'u' || n, %s || n || '@example.com', '', %d, %d FROM g`, *users-1, sqliteNames("n"), nowUs, nowUs),
		fmt.Sprintf(`WITH RECURSIVE g(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM g WHERE n < %d)
			INSERT INTO sessions (id, user_id, client_id, user_agent, ip, created_at, auth_time, last_used_at, expires_at, generation, revoked_at)
			SELECT 's' || n, 'u' || n, 'web', '', '10.0.0.1', %d, %d, %d, %d + (n %% 48 - 24) * 3600000000, 1,
				CASE WHEN n %% 10 = 0 THEN %d ELSE 0 END FROM g`, *users-1, nowUs, nowUs, nowUs, nowUs, nowUs),
		fmt.Sprintf(`WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < %d)
			INSERT INTO events (type, at, user_id, session_id, client_id, ip, user_agent, published)
			SELECT %s, %d - (%d - n) * %d / %d, 'u' || (n * 7919 %% %d), '', 'web',
				'10.' || (n * 104729 %% 10000 / 65536) || '.' || (n * 104729 %% 10000 / 256 %% 256) || '.' || (n * 104729 %% 10000 %% 256), '', 1 FROM g`,
			*events, sqliteTypes("n"), nowUs, *events, spanUs, *events, *users),
		"COMMIT",
		// No ANALYZE: Latch never runs it, so a deployment's planner has
		// no statistics; the plans are those TestConsoleUsesItsIndexes
		// checks.
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			log.Fatalf("seed sqlite: %v\n%s", err, q)
		}
	}
	db.Close()
	st, err = sqlite.Open(ctx, path)
	if err != nil {
		log.Fatal(err)
	}
	return st, func() { os.RemoveAll(dir) }
}

// sqliteNames is an SQL expression picking names[n % len(names)].
func sqliteNames(n string) string {
	return "(CASE " + n + " % " + fmt.Sprint(len(names)) + caseList(names) + " END)"
}

func sqliteTypes(n string) string {
	return "(CASE " + n + " % " + fmt.Sprint(len(types)) + caseList(types) + " END)"
}

func caseList(list []string) string {
	var b strings.Builder
	for i, s := range list {
		fmt.Fprintf(&b, " WHEN %d THEN '%s'", i, s)
	}
	return b.String()
}

// seedPostgres opens (and so migrates) a fresh schema and fills it with
// generate_series, then vacuums and analyzes the tables.
func seedPostgres(ctx context.Context, now time.Time) (latch.Store, func()) {
	conn, err := pgx.Connect(ctx, *pgURL)
	if err != nil {
		log.Fatal(err)
	}
	schema := fmt.Sprintf("latch_console_bench_%d", time.Now().UnixNano())
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		log.Fatal(err)
	}
	cleanup := func() {
		if _, err := conn.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			log.Print(err)
		}
		conn.Close(context.Background())
	}
	sep := "?"
	if strings.Contains(*pgURL, "?") {
		sep = "&"
	}
	url := *pgURL + sep + "search_path=" + schema
	st, err := postgres.Open(ctx, url)
	if err != nil {
		cleanup()
		log.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "SET search_path = "+schema); err != nil {
		log.Fatal(err)
	}
	arr := func(list []string) string { return "(ARRAY['" + strings.Join(list, "','") + "'])" }
	for _, q := range []string{
		fmt.Sprintf(`INSERT INTO users (id, email, password_hash, created_at, updated_at)
			SELECT 'u' || n, %s[n %% %d + 1] || n || '@example.com', '', $1::timestamptz, $1 FROM generate_series(0, %d) n`, arr(names), len(names), *users-1),
		fmt.Sprintf(`INSERT INTO sessions (id, user_id, client_id, user_agent, ip, created_at, auth_time, last_used_at, expires_at, generation, revoked_at)
			SELECT 's' || n, 'u' || n, 'web', '', '10.0.0.1', $1::timestamptz, $1, $1, $1 + (n %% 48 - 24) * interval '1 hour', 1,
				CASE WHEN n %% 10 = 0 THEN $1 END FROM generate_series(0, %d) n`, *users-1),
		fmt.Sprintf(`INSERT INTO events (type, at, user_id, session_id, client_id, ip, user_agent, published)
			SELECT %s[n %% %d + 1], $1::timestamptz - (%d - n) * (interval '30 days' / %d), 'u' || (n * 7919 %% %d), '', 'web',
				'10.' || (n * 104729 %% 10000 / 65536) || '.' || (n * 104729 %% 10000 / 256 %% 256) || '.' || (n * 104729 %% 10000 %% 256), '', true
			FROM generate_series(1::bigint, %d) n`, arr(types), len(types), *events, *events, *users, *events),
	} {
		if _, err := conn.Exec(ctx, q, now); err != nil {
			log.Fatalf("seed postgres: %v\n%s", err, q)
		}
	}
	for _, q := range []string{"VACUUM ANALYZE users", "VACUUM ANALYZE sessions", "VACUUM ANALYZE events"} {
		if _, err := conn.Exec(ctx, q); err != nil {
			log.Fatal(err)
		}
	}
	return st, cleanup
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(b), "\n") {
		if name, ok := strings.CutPrefix(line, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(name), ":"))
		}
	}
	return runtime.GOARCH
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
