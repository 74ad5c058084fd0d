package instance_test

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/config"
	"github.com/latchauth/latch/geoip"
	"github.com/latchauth/latch/geoip/geoiptest"
	"github.com/latchauth/latch/internal/testenv"
	"github.com/latchauth/latch/password"
	"github.com/latchauth/latch/risk"
)

// BenchmarkSignInRisk answers issue 11's question "what does risk
// evaluation add to a sign-in?" on SQLite and PostgreSQL. Each b.N is one
// round of five timed things, in an order that rotates from round to
// round, so that a burst of load on this shared machine hits every arm:
//
//   - hash: one argon2id verification of the user's password alone
//     (password.Hasher with the default parameters and concurrency
//     bound), the floor of any password sign-in;
//   - off: a JSON sign-in (POST /v1/auth/login through the real HTTP
//     server) with the sign-in guard and the known-device check taken off
//     (Instance.ProtectionOff, a test-only hook): the sign-in as it was
//     before account protection;
//   - known: the same with everything on (geo-IP City and ASN databases,
//     country and IP rules, the risk engine), from the browser's known
//     device cookie, 11 minutes after its last sign-in so that a touch
//     of the device is due (written after the answer, awaited untimed);
//   - new: everything on, a sign-in without the device cookie of a user
//     whose only device holds one (a fresh user each round): a new
//     device, so an alert is stored and its email enqueued with the
//     session, and the device and the event are recorded.
//
// Sign-ins run one at a time, so no hash waits for a slot. It reports
// the medians and 95th percentiles of each, the median of the paired
// per-round differences (known−off, new−off) and those as a percentage
// of the hash's median: the goal is known−off under 1 %. The
// parts of the guard (the three store reads, the geo-IP lookup and the
// evaluation) are timed alone in the same rounds.
//
//	go test ./instance -run '^$' -bench SignInRisk -benchtime 300x -timeout 30m
func BenchmarkSignInRisk(b *testing.B) {
	for _, store := range []string{"sqlite", "postgres"} {
		b.Run(store, func(b *testing.B) { benchSignInRisk(b, store) })
	}
}

func benchSignInRisk(b *testing.B, store string) {
	city, asn := geoiptest.Write(b, b.TempDir(), geoWorld)
	open := func(reps int) *riskBench {
		var storeURL string
		kek := make([]byte, 32)
		if store == "postgres" {
			storeURL = testenv.PostgresSchema(b, "latch_bench_")
			rand.Read(kek)
		}
		h := start(b, "", func(c *config.Config) {
			c.Login.RatePerIP = 0
			c.GeoIP.CityDB, c.GeoIP.ASNDB = city, asn
			c.Risk.Countries.Deny = []string{"KP"}
			c.Risk.IP.Deny = []string{"203.0.113.0/24"}
			if storeURL != "" {
				c.Store, c.KEK = storeURL, base64.StdEncoding.EncodeToString(kek)
			}
		})
		return newRiskBench(b, h, store, reps)
	}
	full := open(1)
	// The bare instance hashes with argon2id at 64 KiB and one pass
	// (about 0.1 ms): its sign-ins are everything but the hash, so the
	// guard's cost is not lost in the hash's jitter, and they are cheap
	// enough to take bareReps of each kind per round. DefaultParams is
	// what Open builds the hasher from; it is put back at once.
	real := password.DefaultParams
	password.DefaultParams = password.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
	bare := open(bareReps)
	password.DefaultParams = real
	hasher, err := password.NewHasher(real, full.h.cfg.Password.MaxConcurrent, full.h.cfg.Password.MaxWait.D())
	if err != nil {
		b.Fatal(err)
	}
	geo, err := geoip.Open(city, asn)
	if err != nil {
		b.Fatal(err)
	}
	defer geo.Close()
	engine, err := risk.New(full.h.cfg.Risk)
	if err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()

	var (
		hash                          []time.Duration
		knownRead, devRead, placeRead []time.Duration
		lookup, evaluate              []time.Duration
	)
	load := [2]string{loadavg()}
	round := 0
	arms := []func(){
		func() {
			t0 := time.Now()
			if ok, _, err := hasher.Verify(ctx, riskPass, full.hash); err != nil || !ok {
				b.Fatalf("hash: %v %v", ok, err)
			}
			hash = append(hash, time.Since(t0))
		},
		func() { full.round(round) },
		func() { bare.round(round) },
		func() { // the guard's parts alone, on the full instance's store
			st, ada := full.h.in.Store, full.ada
			t0 := time.Now()
			if ok, err := st.DeviceKnown(ctx, ada, full.devID); err != nil || !ok {
				b.Fatalf("DeviceKnown: %v %v", ok, err)
			}
			t1 := time.Now()
			devs, err := st.Devices(ctx, ada)
			if err != nil || len(devs) != 1 {
				b.Fatalf("Devices: %d, %v", len(devs), err)
			}
			t2 := time.Now()
			if _, err := st.Places(ctx, ada); err != nil {
				b.Fatal(err)
			}
			t3 := time.Now()
			place := geo.Lookup("127.0.0.1")
			t4 := time.Now()
			dec := engine.Evaluate(risk.Signals{Kind: risk.KindSignIn, At: t4, IP: "127.0.0.1",
				Country: place.Country, City: place.City, ASN: place.ASN,
				Lat: place.Lat, Lon: place.Lon, AccuracyKm: place.AccuracyKm,
				PrevAt: devs[0].LastSeenAt, PrevLat: devs[0].LastPlace.Lat, PrevLon: devs[0].LastPlace.Lon,
				PrevAccuracyKm: devs[0].LastPlace.AccuracyKm})
			t5 := time.Now()
			if dec.Action != risk.Allow {
				b.Fatalf("the known device's evaluation: %+v", dec)
			}
			knownRead = append(knownRead, t1.Sub(t0))
			devRead = append(devRead, t2.Sub(t1))
			placeRead = append(placeRead, t3.Sub(t2))
			lookup = append(lookup, t4.Sub(t3))
			evaluate = append(evaluate, t5.Sub(t4))
		},
	}
	for b.Loop() {
		for i := range arms {
			arms[(i+round)%len(arms)]()
		}
		round++
	}
	b.StopTimer()
	load[1] = loadavg()
	hm := median(hash)
	pct := func(d time.Duration) float64 { return 100 * float64(d) / float64(hm) }
	us := func(d time.Duration) float64 { return float64(d) / 1e3 }
	b.ReportMetric(float64(hm)/1e6, "ms/hash")
	b.ReportMetric(pct(median(bare.dKnown)), "%known−off/hash")
	b.ReportMetric(pct(median(bare.dNew)), "%new−off/hash")
	b.ReportMetric(pct(median(full.dKnown)), "%full-known−off/hash")
	var sum strings.Builder
	fmt.Fprintf(&sum, "%s, %d rounds (%d bare-hash sign-ins of each kind), GOMAXPROCS %d, load average %s → %s\n",
		store, len(hash), len(bare.off), runtime.GOMAXPROCS(0), load[0], load[1])
	fmt.Fprintf(&sum, "%-34s %11s %11s\n", "", "median", "p95")
	for _, r := range []struct {
		name string
		ds   []time.Duration
	}{
		{"hash alone (argon2id, default)", hash},
		{"sign-in, off", full.off}, {"sign-in, known device", full.known}, {"sign-in, new device", full.fresh},
		{"known − off (paired)", full.dKnown}, {"new − off (paired)", full.dNew},
		{"bare hash: sign-in, off", bare.off}, {"bare hash: known device", bare.known},
		{"bare hash: known, no touch due", bare.recent}, {"bare hash: new device", bare.fresh},
		{"bare hash: known − off (paired)", bare.dKnown}, {"bare hash: recent − off (paired)", bare.dRecent},
		{"bare hash: new − off (paired)", bare.dNew},
		{"part: DeviceKnown read", knownRead}, {"part: Devices read", devRead}, {"part: Places read", placeRead},
		{"part: geo-IP lookup", lookup}, {"part: risk evaluate", evaluate},
	} {
		fmt.Fprintf(&sum, "%-34s %9.1fµs %9.1fµs\n", r.name, us(median(r.ds)), us(quantile(r.ds, 0.95)))
	}
	fmt.Fprintf(&sum, "of the hash: bare known − off %.2f %%, recent − off %.2f %%, new − off %.2f %%; full known − off %.2f %%, new − off %.2f %%\n",
		pct(median(bare.dKnown)), pct(median(bare.dRecent)), pct(median(bare.dNew)), pct(median(full.dKnown)), pct(median(full.dNew)))
	parts := median(knownRead) + median(devRead) + median(placeRead) + median(lookup) + median(evaluate)
	fmt.Fprintf(&sum, "parts (three reads, lookup, evaluate): %.1fµs = %.2f %% of the hash\n", us(parts), pct(parts))
	// Printed rather than logged: a benchmark's log is cut at ten lines.
	fmt.Print(sum.String())
}

// bareReps is the number of sign-ins of each kind per round on the
// bare-hash instance.
const bareReps = 8

const riskPass = "correct horse battery staple 11"

// riskBench is one instance of BenchmarkSignInRisk with its user, ada,
// signed in once from a browser, and what its rounds measured.
type riskBench struct {
	b                            *testing.B
	h                            *harness
	store                        string
	reps                         int // sign-ins of each kind per round
	ada, email, hash, dev, devID string

	off, known, recent, fresh []time.Duration
	dKnown, dRecent, dNew     []time.Duration
}

func newRiskBench(b *testing.B, h *harness, store string, reps int) *riskBench {
	r := &riskBench{b: b, h: h, store: store, reps: reps, email: "ada-risk@example.com"}
	r.ada = h.addUser(r.email, riskPass)
	u, err := h.in.Store.UserByID(b.Context(), r.ada)
	if err != nil {
		b.Fatal(err)
	}
	r.hash = u.PasswordHash
	r.dev = r.signIn(r.email, "")
	h.in.WaitTouches()
	r.devID = deviceID(r.dev)
	return r
}

// signIn signs email in from Chrome with the device cookie dev (none
// when empty) and returns the device cookie of the answer.
func (r *riskBench) signIn(email, dev string) string {
	hdr := []string{"User-Agent", chromeUA, "Sec-Fetch-Site", "same-origin"}
	if dev != "" {
		hdr = append(hdr, "Cookie", "latch_device="+dev)
	}
	res := r.h.do("POST", "/v1/auth/login", jsonBody(map[string]string{"email": email, "password": riskPass}), hdr...)
	if res.code != http.StatusOK {
		r.b.Fatalf("sign-in %s: %d %s", email, res.code, res.raw)
	}
	for _, c := range (&http.Response{Header: res.header}).Cookies() {
		if c.Name == "latch_device" {
			return c.Value
		}
	}
	return dev
}

// round times, reps times, a sign-in with protection off, from ada's
// known device (a touch due, then at once again), and from a new device
// of a fresh user, in an order that rotates.
func (r *riskBench) round(n int) {
	for k := range r.reps {
		r.once(n*r.reps + k)
	}
}

func (r *riskBench) once(n int) {
	b, h, ctx := r.b, r.h, r.b.Context()
	// Untimed: this round's new-device user, whose one device is a
	// browser with a cookie; the clock moved so that ada's touch is due.
	b.StopTimer()
	email := fmt.Sprintf("new-%d-%s@example.com", n, r.store)
	nu := h.addUser(email, riskPass)
	r.signIn(email, "")
	h.in.WaitTouches()
	h.clock.Advance(11 * time.Minute)
	b.StartTimer()
	time1 := func(f func()) time.Duration {
		t0 := time.Now()
		f()
		return time.Since(t0)
	}
	var off, known, recent, fresh time.Duration
	steps := []func(){
		func() {
			h.in.ProtectionOff()
			off = time1(func() { r.signIn(r.email, r.dev) })
			h.in.ProtectionOn()
		},
		func() {
			known = time1(func() { r.signIn(r.email, r.dev) })
			h.in.WaitTouches() // the touch written after the answer
			recent = time1(func() { r.signIn(r.email, r.dev) })
		},
		func() {
			fresh = time1(func() { r.signIn(email, "") })
			h.in.WaitTouches()
		},
	}
	for i := range steps {
		steps[(i+n)%len(steps)]()
	}
	r.off, r.known, r.recent, r.fresh = append(r.off, off), append(r.known, known), append(r.recent, recent), append(r.fresh, fresh)
	r.dKnown, r.dRecent, r.dNew = append(r.dKnown, known-off), append(r.dRecent, recent-off), append(r.dNew, fresh-off)
	// Untimed: the new device was recorded and alerted, and ada still
	// has one device (the known device alerted nobody).
	b.StopTimer()
	if devs, err := h.in.Store.Devices(ctx, nu); err != nil || len(devs) != 2 {
		b.Fatalf("the new-device sign-in left %d devices (%v); want 2", len(devs), err)
	}
	if !hasEvent(b, h, nu, latch.EventNewDeviceSignIn) || hasEvent(b, h, r.ada, latch.EventNewDeviceSignIn) {
		b.Fatal("want a new_device_sign_in event for the new device and none for the known one")
	}
	b.StartTimer()
}

// hasEvent tells whether userID has an event of type typ.
func hasEvent(b *testing.B, h *harness, userID, typ string) bool {
	list, err := h.in.Store.EventsByUser(b.Context(), userID, 100)
	if err != nil {
		b.Fatal(err)
	}
	return slices.ContainsFunc(list, func(e latch.Event) bool { return e.Type == typ })
}

// quantile is the q-quantile of ds (nearest rank).
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

// loadavg is the machine's load average over 1, 5 and 15 minutes.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
