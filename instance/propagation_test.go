package instance_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchauth/latch/config"
	"github.com/latchauth/latch/verifier"
)

// Revocation propagation: a logout on the auth server must be enforced by
// a separate verifier within 1 s (p99). The verifier here is
// verifier.NewRemote, fed by the revocation stream of a real in-process
// Latch over loopback HTTP.

const propagationBound = time.Second

// remoteVerifier builds a NewRemote verifier of h's tokens reading the
// feed and keys at base (h.srv.URL unless a front server is used).
func remoteVerifier(t testing.TB, h *harness, base string, mutate func(*verifier.RemoteConfig)) *verifier.Verifier {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	cfg := verifier.RemoteConfig{
		Issuer: h.cfg.Issuer, Audience: h.cfg.Audience,
		JWKSURL: base + "/.well-known/jwks.json", RevocationsURL: base,
		ClientID: "svc", ClientSecret: svcSecret,
		Logger: slog.New(slog.DiscardHandler),
	}
	if mutate != nil {
		mutate(&cfg)
	}
	v, err := verifier.NewRemote(ctx, cfg)
	if err != nil {
		t.Fatalf("NewRemote: %v", err)
	}
	return v
}

// percentile returns the p-th percentile (nearest rank) of ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(p/100*float64(len(s))+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// TestRevocationPropagation logs users out through the HTTP API and
// measures when a remote verifier (in this process, but fed only by the
// HTTP feed) starts rejecting their tokens. Each must take under 1 s.
func TestRevocationPropagation(t *testing.T) {
	h := start(t, "", nil)
	h.addClients()
	h.addUser(adaEmail, adaPass)
	v := remoteVerifier(t, h, h.srv.URL, nil)

	const rounds = 10
	var lat []time.Duration
	for i := range rounds {
		tok := h.login(adaEmail, adaPass).str("access_token")
		if _, err := v.Verify(tok); err != nil {
			t.Fatalf("round %d: fresh token refused by the remote verifier: %v", i, err)
		}
		r := h.do("POST", "/v1/auth/logout", "", bearer(tok)...)
		loggedOut := time.Now()
		expect(t, "logout", r, http.StatusNoContent, "")
		for {
			_, err := v.Verify(tok)
			if errors.Is(err, verifier.ErrRevoked) {
				break
			}
			if err != nil {
				t.Fatalf("round %d: %v, want ErrRevoked", i, err)
			}
			if d := time.Since(loggedOut); d > propagationBound {
				t.Fatalf("round %d: the remote verifier still accepts the token %v after the logout", i, d)
			}
			time.Sleep(5 * time.Millisecond)
		}
		lat = append(lat, time.Since(loggedOut))
	}
	t.Logf("logout → remote rejection over %d logouts (in-process verifier, 5 ms polling): median %.1f ms, p99 %.1f ms, max %.1f ms",
		rounds, ms(percentile(lat, 50)), ms(percentile(lat, 99)), ms(slices.Max(lat)))
}

// frontServer serves h's instance on a listener of its own that can be
// taken down: requests then get 503 and open revocation streams end.
type frontServer struct {
	*httptest.Server
	down atomic.Bool
}

func newFront(t testing.TB, h *harness, ln net.Listener) *frontServer {
	f := &frontServer{}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		h.in.Server.ServeHTTP(w, r)
	})
	if ln == nil {
		f.Server = httptest.NewServer(handler)
	} else {
		f.Server = httptest.NewUnstartedServer(handler)
		f.Listener.Close()
		f.Listener = ln
		f.Start()
	}
	t.Cleanup(func() {
		h.in.Server.CloseStreams() // else Close waits for the streams
		f.Close()
	})
	return f
}

// TestRevocationFeedDownFailSafe takes the feed down: the fail-closed
// verifier refuses valid tokens once MaxStale has passed, the fail-open
// one accepts them and counts.
func TestRevocationFeedDownFailSafe(t *testing.T) {
	h := start(t, "", nil)
	h.addClients()
	h.addUser(adaEmail, adaPass)
	front := newFront(t, h, nil)
	const maxStale = 400 * time.Millisecond
	closed := remoteVerifier(t, h, front.URL, func(c *verifier.RemoteConfig) { c.MaxStale = maxStale })
	var warnings atomic.Int32
	open := remoteVerifier(t, h, front.URL, func(c *verifier.RemoteConfig) {
		c.MaxStale, c.FailOpen, c.OnStale = maxStale, true, func() { warnings.Add(1) }
	})
	tok := h.login(adaEmail, adaPass).str("access_token")
	for _, v := range []*verifier.Verifier{closed, open} {
		if _, err := v.Verify(tok); err != nil {
			t.Fatal(err)
		}
	}
	// Quiet but healthy: still fresh well past MaxStale (the remote proves
	// freshness every MaxStale/2 while the stream is quiet).
	time.Sleep(3 * maxStale)
	if _, err := closed.Verify(tok); err != nil {
		t.Fatalf("healthy but quiet feed: %v", err)
	}

	front.down.Store(true)
	h.in.Server.CloseStreams()
	down := time.Now()
	for {
		_, err := closed.Verify(tok)
		if errors.Is(err, verifier.ErrStale) {
			break
		}
		if err != nil {
			t.Fatalf("while the feed is down: %v", err)
		}
		if time.Since(down) > maxStale+2*time.Second {
			t.Fatal("the fail-closed verifier still accepts tokens long after MaxStale")
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("fail-closed: refusing %v after the feed went down (MaxStale %v)", time.Since(down), maxStale)
	// The fail-open verifier has its own set, which may have been proved
	// fresh a little later: it keeps accepting, and soon counts.
	for open.StaleAccepted() == 0 {
		if _, err := open.Verify(tok); err != nil {
			t.Fatalf("fail-open verifier refused: %v", err)
		}
		if time.Since(down) > maxStale+2*time.Second {
			t.Fatal("fail-open acceptance not counted")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if warnings.Load() == 0 {
		t.Fatal("OnStale not called")
	}
}

// resourceServer is the example resource server running in its own
// process against h, reached at url.
type resourceServer struct {
	url string
	hc  *http.Client
}

// startResourceServer builds examples/resource-server and runs it against
// a Latch whose issuer is its own loopback URL. It returns the harness and
// the running process's URL.
func startResourceServer(tb testing.TB) (*harness, *resourceServer) {
	tb.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		tb.Skip("no go command to build the example")
	}
	bin := filepath.Join(tb.TempDir(), "resource-server")
	if runtime.GOOS == "windows" {
		bin += ".exe"
	}
	// The example is its own module, requiring only the verifier module,
	// as a resource server outside this repository would.
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = filepath.Join("..", "examples", "resource-server")
	if out, err := build.CombinedOutput(); err != nil {
		tb.Fatalf("go build ./examples/resource-server: %v\n%s", err, out)
	}

	// The issuer must be the URL the other process reaches: listen first.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	issuer := "http://" + ln.Addr().String()
	h := start(tb, "", func(c *config.Config) { c.Issuer, c.Audience = issuer, "" })
	h.addClients()
	h.addUser(adaEmail, adaPass)
	newFront(tb, h, ln)

	cmd := exec.Command(bin, "-addr", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "LATCH_ISSUER="+issuer, "LATCH_CLIENT_ID=svc", "LATCH_CLIENT_SECRET="+svcSecret)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			if _, rest, ok := strings.Cut(line, "listening on "); ok {
				a, _, _ := strings.Cut(rest, " ")
				select {
				case addr <- a:
				default:
				}
			}
			if testing.Verbose() {
				tb.Log("resource-server: " + line)
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	select {
	case a := <-addr:
		return h, &resourceServer{url: "http://" + a, hc: &http.Client{Timeout: 5 * time.Second}}
	case <-time.After(15 * time.Second):
		tb.Fatal("the example resource server did not start within 15 s")
	}
	return nil, nil
}

// hello calls GET /hello with tok and returns the status code.
func (rs *resourceServer) hello(tb testing.TB, tok string) int {
	req, _ := http.NewRequest("GET", rs.url+"/hello", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := rs.hc.Do(req)
	if err != nil {
		tb.Fatalf("GET /hello: %v", err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

// logoutToRejection logs one session out and returns the time from the
// logout response to the first 401 of the other process, polled every
// 2 ms over loopback.
func logoutToRejection(tb testing.TB, h *harness, rs *resourceServer) time.Duration {
	tok := h.login(adaEmail, adaPass).str("access_token")
	if c := rs.hello(tb, tok); c != http.StatusOK {
		tb.Fatalf("fresh token: GET /hello = %d", c)
	}
	r := h.do("POST", "/v1/auth/logout", "", bearer(tok)...)
	loggedOut := time.Now()
	if r.code != http.StatusNoContent {
		tb.Fatalf("logout: %d %s", r.code, r.raw)
	}
	for {
		switch c := rs.hello(tb, tok); c {
		case http.StatusUnauthorized:
			return time.Since(loggedOut)
		case http.StatusOK:
		default:
			tb.Fatalf("GET /hello = %d while waiting for the rejection", c)
		}
		if d := time.Since(loggedOut); d > 5*time.Second {
			tb.Fatalf("the other process still accepts the token %v after the logout", d)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestRevocationPropagationCrossProcess measures logout → first rejection
// by the example resource server running as a separate process.
func TestRevocationPropagationCrossProcess(t *testing.T) {
	h, rs := startResourceServer(t)
	const rounds = 30
	lat := make([]time.Duration, 0, rounds)
	for range rounds {
		lat = append(lat, logoutToRejection(t, h, rs))
	}
	p50, p99 := percentile(lat, 50), percentile(lat, 99)
	t.Logf("logout → rejection by a separate process over %d logouts: median %.1f ms, p99 %.1f ms, max %.1f ms",
		rounds, ms(p50), ms(p99), ms(slices.Max(lat)))
	if p99 > propagationBound {
		t.Fatalf("p99 %v exceeds %v", p99, propagationBound)
	}
}

// BenchmarkRevocationPropagation reports, for logouts on the auth server,
// the time until the example resource server in another process rejects
// the token: median and p99 in ms. The build and start happen once (b.Loop);
// each iteration is one login, one logout and the wait. Run with e.g.
// -bench RevocationPropagation -benchtime 200x for a meaningful p99.
func BenchmarkRevocationPropagation(b *testing.B) {
	h, rs := startResourceServer(b)
	var lat []time.Duration
	for b.Loop() {
		lat = append(lat, logoutToRejection(b, h, rs))
	}
	b.ReportMetric(ms(percentile(lat, 50)), "median-ms")
	b.ReportMetric(ms(percentile(lat, 99)), "p99-ms")
	b.ReportMetric(ms(slices.Max(lat)), "max-ms")
}
