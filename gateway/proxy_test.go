package gateway

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchauth/latch/verifier"
	"github.com/latchauth/latch/verifier/revocation"
)

// fakeTimers replaces the route timeouts: the test fires them.
type fakeTimers struct {
	mu     sync.Mutex
	timers []*fakeTimer
	made   chan struct{}
}

type fakeTimer struct {
	mu      sync.Mutex
	f       func()
	stopped bool
}

func (t *fakeTimer) Stop() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	was := !t.stopped
	t.stopped = true
	return was
}

// fire runs the timeout unless it was stopped, as a real timer would.
func (t *fakeTimer) fire() {
	t.mu.Lock()
	stopped := t.stopped
	t.stopped = true
	t.mu.Unlock()
	if !stopped {
		t.f()
	}
}

func installFakeTimers(g *Gateway) *fakeTimers {
	ft := &fakeTimers{made: make(chan struct{}, 100)}
	g.afterFunc = func(_ time.Duration, f func()) stopper {
		t := &fakeTimer{f: f}
		ft.mu.Lock()
		ft.timers = append(ft.timers, t)
		ft.mu.Unlock()
		ft.made <- struct{}{}
		return t
	}
	return ft
}

func (ft *fakeTimers) last(t *testing.T) *fakeTimer {
	t.Helper()
	ft.mu.Lock()
	defer ft.mu.Unlock()
	if len(ft.timers) == 0 {
		t.Fatal("no route timeout was started")
	}
	return ft.timers[len(ft.timers)-1]
}

// wait receives from ch or fails after a generous deadline.
func wait[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(20 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// wsUpstream completes a WebSocket handshake and then echoes raw bytes.
func wsUpstream(t *testing.T) string {
	s := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			http.Error(w, "want an upgrade", 400)
			return
		}
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		fmt.Fprintf(rw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: x\r\n\r\n")
		rw.Flush()
		buf := make([]byte, 1024)
		for {
			n, err := rw.Read(buf)
			if err != nil {
				return
			}
			conn.Write(buf[:n])
		}
	})
	return s.URL
}

func TestWebSocketEcho(t *testing.T) {
	h := newHarness(t, []Route{{Path: "/ws/", Upstream: wsUpstream(t), Auth: AuthToken, Timeout: Duration(time.Minute)}})
	timers := installFakeTimers(h.gw)
	tok := h.auth.token("")
	conn, err := net.Dial("tcp", strings.TrimPrefix(h.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	fmt.Fprintf(conn, "GET /ws/chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer %s\r\n\r\n", tok)
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d, want 101", res.StatusCode)
	}
	// The route timeout elapses now: an upgraded connection outlives it.
	timers.last(t).fire()
	for i := range 3 {
		msg := fmt.Sprintf("hello %d", i)
		if _, err := conn.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(br, got); err != nil {
			t.Fatalf("echo %d: %v", i, err)
		}
		if string(got) != msg {
			t.Fatalf("echo %q, want %q", got, msg)
		}
	}
}

func TestWebSocketNeedsAuth(t *testing.T) {
	h := newHarness(t, []Route{{Path: "/ws/", Upstream: wsUpstream(t), Auth: AuthToken}})
	res := h.do("GET", "/ws/chat", nil, "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Origin: "+h.url)
	if res.StatusCode != 401 {
		t.Fatalf("status %d, want 401", res.StatusCode)
	}
}

func TestServerSentEventsIncremental(t *testing.T) {
	next := make(chan struct{})
	up := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: one\n\n")
		http.NewResponseController(w).Flush()
		select {
		case <-next:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "data: two\n\n")
	})
	h := newHarness(t, []Route{{Path: "/events", Upstream: up.URL, Auth: AuthNone}})
	timers := installFakeTimers(h.gw)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", h.url+"/events", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	br := bufio.NewReader(res.Body)
	// The first event arrives while the upstream still holds the second:
	// nothing is buffered.
	if line, err := br.ReadString('\n'); err != nil || line != "data: one\n" {
		t.Fatalf("first event: %q, %v", line, err)
	}
	timers.last(t).fire() // the route timeout does not cut an event stream
	close(next)
	br.ReadString('\n')
	if line, err := br.ReadString('\n'); err != nil || line != "data: two\n" {
		t.Fatalf("second event: %q, %v", line, err)
	}
}

func TestUploadStreamedWithBoundedMemory(t *testing.T) {
	const total = 50 << 20
	const chunk = 64 << 10
	first := make(chan struct{})
	got := make(chan int64, 1)
	up := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 1<<20)
		n, err := io.ReadFull(r.Body, buf)
		if err != nil {
			got <- int64(n)
			return
		}
		close(first)                                                       // 1 MB arrived; the client has not sent the rest yet
		rest, _ := io.CopyBuffer(io.Discard, r.Body, make([]byte, 16<<10)) // a slow, small reader
		got <- int64(n) + rest
		w.WriteHeader(http.StatusNoContent)
	})
	h := newHarness(t, []Route{{Path: "/upload", Upstream: up.URL, Auth: AuthNone}})
	pr, pw := io.Pipe()
	req, _ := http.NewRequest("POST", h.url+"/upload", pr)
	done := make(chan *http.Response, 1)
	go func() {
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			pr.CloseWithError(err)
			done <- nil
			return
		}
		done <- res
	}()
	buf := make([]byte, chunk)
	write := func(n int) {
		for ; n > 0; n -= chunk {
			if _, err := pw.Write(buf); err != nil {
				t.Fatal(err)
			}
		}
	}
	write(1 << 20)
	wait(t, first, "the upstream to receive the first megabyte before the rest is sent")

	var before, mid runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	write(40 << 20)
	runtime.GC()
	runtime.ReadMemStats(&mid)
	write(total - 41<<20)
	pw.Close()
	if n := wait(t, got, "the upload to end"); n != total {
		t.Fatalf("upstream received %d bytes, want %d", n, total)
	}
	res := wait(t, done, "the response")
	if res == nil || res.StatusCode != http.StatusNoContent {
		t.Fatalf("response %v", res)
	}
	res.Body.Close()
	if grew := int64(mid.HeapInuse) - int64(before.HeapInuse); grew > 16<<20 {
		t.Errorf("heap grew by %d MB while 40 MB passed through: the body is buffered", grew>>20)
	}
}

func TestUpstreamDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + l.Addr().String()
	l.Close()
	h := newHarness(t, []Route{{Path: "/", Upstream: dead, Auth: AuthNone}})
	res := h.do("GET", "/x", nil)
	body := readAll(t, res)
	if res.StatusCode != 502 || !strings.Contains(body, `"error":"bad_gateway"`) {
		t.Fatalf("got %d %s, want 502 bad_gateway", res.StatusCode, body)
	}
	if strings.Contains(body, "127.0.0.1") || strings.Contains(body, "refused") || strings.Contains(body, "dial") {
		t.Errorf("the 502 reveals the upstream: %s", body)
	}
}

func TestRouteTimeout(t *testing.T) {
	arrived := make(chan struct{}, 1)
	up := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-r.Context().Done()
	})
	h := newHarness(t, []Route{{Path: "/", Upstream: up.URL, Auth: AuthNone}})
	timers := installFakeTimers(h.gw)
	resc := make(chan *http.Response, 1)
	go func() {
		res, err := http.Get(h.url + "/slow")
		if err != nil {
			resc <- nil
			return
		}
		resc <- res
	}()
	wait(t, arrived, "the request upstream")
	timers.last(t).fire()
	res := wait(t, resc, "the answer")
	if res == nil {
		t.Fatal("no response")
	}
	defer res.Body.Close()
	if status, code := errorOf(t, res); status != 504 || code != "gateway_timeout" {
		t.Errorf("got %d %s, want 504 gateway_timeout", status, code)
	}
}

func TestRoutingAndStripPrefix(t *testing.T) {
	up := echoUpstream(t)
	h := newHarness(t, []Route{
		{Path: "/api/orders/", Upstream: up.URL + "/v1", Auth: AuthNone, StripPrefix: true},
		{Path: "/api", Upstream: up.URL, Auth: AuthNone},
		{Path: "/docs/", Upstream: up.URL + "/base/", Auth: AuthNone},
	})
	for _, tc := range []struct{ path, want string }{
		{"/api/orders/42", "/v1/42"},
		{"/api/orders/", "/v1/"},
		{"/api/orders", "/v1/"},
		{"/api/other", "/api/other"},
		{"/api", "/api"},
		{"/docs/a", "/base/docs/a"},
	} {
		e := echoOf(t, h.do("GET", tc.path, nil))
		if e.Path != tc.want {
			t.Errorf("%s reached the upstream as %s, want %s", tc.path, e.Path, tc.want)
		}
	}
	if e := echoOf(t, h.do("GET", "/api/orders/a%2Fb", nil)); e.Raw != "/v1/a%2Fb" {
		t.Errorf("encoded path reached the upstream as %q", e.Raw)
	}
	for _, p := range []string{"/apix", "/", "/doc"} {
		if status, code := errorOf(t, h.do("GET", p, nil)); status != 404 || code != "not_found" {
			t.Errorf("%s: %d %s, want 404", p, status, code)
		}
	}
}

func TestTokenRouteWithoutSessions(t *testing.T) {
	up := echoUpstream(t)
	h := newHarness(t, []Route{{Path: "/", Upstream: up.URL, Auth: AuthToken}}, func(_ *Config, d *Deps) { d.Sessions = nil })
	res := h.do("GET", "/x", nil, "Cookie: "+DefaultCookie+"=whatever")
	if status, code := errorOf(t, res); status != 401 || code != "unauthorized" {
		t.Errorf("got %d %s, want 401 unauthorized", status, code)
	}
	if res.Header.Get("WWW-Authenticate") != "Bearer" {
		t.Errorf("WWW-Authenticate %q", res.Header.Get("WWW-Authenticate"))
	}
	if h.do("GET", "/auth/login", nil).StatusCode != 404 {
		t.Error("/auth/ answered without sessions")
	}
}

func TestIdentityAssertion(t *testing.T) {
	up := echoUpstream(t)
	h := newHarness(t, []Route{idRoute("/api/", up.URL, AuthToken)})
	e := echoOf(t, h.do("GET", "/api/x", nil, "Authorization: Bearer "+h.auth.token("orders:read")))
	a := e.Header.Get(HeaderAssertion)
	parts := strings.Split(a, ".")
	if len(parts) != 3 {
		t.Fatalf("assertion %q", a)
	}
	// Verify with the key the gateway publishes.
	var set struct {
		Keys []struct{ Kid, X, Crv string }
	}
	if err := json.Unmarshal([]byte(readAll(t, h.do("GET", "/.well-known/jwks.json", nil))), &set); err != nil || len(set.Keys) != 1 {
		t.Fatalf("jwks: %v %v", err, set)
	}
	pub, _ := base64.RawURLEncoding.DecodeString(set.Keys[0].X)
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	if !ed25519.Verify(pub, []byte(parts[0]+"."+parts[1]), sig) {
		t.Fatal("the assertion does not verify with the published key")
	}
	var hdr map[string]string
	hb, _ := base64.RawURLEncoding.DecodeString(parts[0])
	json.Unmarshal(hb, &hdr)
	if hdr["typ"] != AssertionType || hdr["alg"] != "EdDSA" || hdr["kid"] != set.Keys[0].Kid {
		t.Errorf("header %v", hdr)
	}
	var c Assertion
	cb, _ := base64.RawURLEncoding.DecodeString(parts[1])
	if err := json.Unmarshal(cb, &c); err != nil {
		t.Fatal(err)
	}
	if c.Issuer != h.url || c.Audience != up.URL || c.Subject != "alice" || c.SessionID != "sid-1" || c.Scope != "orders:read" || c.ID == "" || c.Expiry-c.IssuedAt != 60 {
		t.Errorf("claims %+v", c)
	}
}

func TestOwnEndpoints(t *testing.T) {
	up := echoUpstream(t)
	ready := errors.New("down")
	var mu sync.Mutex
	h := newHarness(t, []Route{{Path: "/", Upstream: up.URL, Auth: AuthToken}}, func(_ *Config, d *Deps) {
		d.Ready = []ReadyCheck{{Name: "sessions", Check: func(context.Context) error {
			mu.Lock()
			defer mu.Unlock()
			return ready
		}}}
	})
	if res := h.do("GET", "/healthz", nil); res.StatusCode != 200 {
		t.Errorf("/healthz %d", res.StatusCode)
	}
	res := h.do("GET", "/readyz", nil)
	if body := readAll(t, res); res.StatusCode != 503 || !strings.Contains(body, "sessions") {
		t.Errorf("/readyz with the store down: %d %s", res.StatusCode, body)
	}
	mu.Lock()
	ready = nil
	mu.Unlock()
	if res := h.do("GET", "/readyz", nil); res.StatusCode != 200 {
		t.Errorf("/readyz %d", res.StatusCode)
	}
	h.do("GET", "/x", nil) // a 401 to count
	echoOf(t, h.do("GET", "/x", nil, "Authorization: Bearer "+h.auth.token("")))
	body := readAll(t, h.do("GET", "/metrics", nil))
	for _, want := range []string{
		`latch_gateway_requests_total{code="200",route="/"} 1`,
		`latch_gateway_requests_total{code="401",route="/"} 1`,
		`latch_gateway_auth_failures_total{reason="no_session",route="/"} 1`,
		`latch_gateway_upstream_duration_seconds_count{route="/"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestReadyzStaleRevocations(t *testing.T) {
	up := echoUpstream(t)
	a := newAuthority(t)
	set := revocation.NewSet() // never synced: stale
	v, err := verifier.New(verifier.Config{
		Issuer: testIssuer, Audience: testIssuer,
		Keys:        verifier.StaticKeys{"k1": {Algorithm: "EdDSA", Public: a.key.Public()}},
		Revocations: set, Freshness: set,
	})
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, []Route{{Path: "/", Upstream: up.URL, Auth: AuthToken}}, func(_ *Config, d *Deps) { d.Verifier = v })
	if res := h.do("GET", "/readyz", nil); res.StatusCode != 503 {
		t.Errorf("/readyz with stale revocations: %d", res.StatusCode)
	}
	set.MarkSynced(time.Now())
	if res := h.do("GET", "/readyz", nil); res.StatusCode != 200 {
		t.Errorf("/readyz with fresh revocations: %d", res.StatusCode)
	}
}

// A WebSocket handshake authenticated by the session cookie must come
// from the gateway's own origin (cross-site WebSocket hijacking).
func TestWebSocketSessionOrigin(t *testing.T) {
	h := newHarness(t, []Route{{Path: "/ws/", Upstream: wsUpstream(t), Auth: AuthSession}})
	h.sessions.tokens["c1"] = h.auth.token("")
	ws := []string{"Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Cookie: " + DefaultCookie + "=c1"}
	for _, origin := range []string{"https://evil.example", "null", ""} {
		hdr := ws
		if origin != "" {
			hdr = append(append([]string(nil), ws...), "Origin: "+origin)
		}
		if status, code := errorOf(t, h.do("GET", "/ws/chat", nil, hdr...)); status != 403 || code != "csrf_failed" {
			t.Errorf("Origin %q: %d %s, want 403 csrf_failed", origin, status, code)
		}
	}
	res := h.do("GET", "/ws/chat", nil, append(ws, "Origin: "+h.url)...)
	if res.StatusCode != http.StatusSwitchingProtocols {
		t.Errorf("same-origin handshake: %d, want 101", res.StatusCode)
	}
}
