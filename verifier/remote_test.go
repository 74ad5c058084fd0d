package verifier

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/latchauth/latch/verifier/revocation"
)

// fakeFreshness is a settable Freshness.
type fakeFreshness struct {
	mu sync.Mutex
	t  time.Time
}

func (f *fakeFreshness) LastSync() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *fakeFreshness) set(t time.Time) {
	f.mu.Lock()
	f.t = t
	f.mu.Unlock()
}

type revokeSid string

func (r revokeSid) Revoked(jti, sid, sub string, iat time.Time) bool { return sid == string(r) }

func TestFailSafeClosedByDefault(t *testing.T) {
	k := keys(t)
	fresh := &fakeFreshness{}
	v, err := New(Config{Issuer: testIss, Audience: testAud, Keys: k.keySet(), Freshness: fresh, Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	tok := k.good(t, "ed")

	// Never synced: refused.
	if _, err := v.Verify(tok); !errors.Is(err, ErrStale) {
		t.Fatalf("never synced: %v, want ErrStale", err)
	}
	// Fresh (exactly at the bound too): accepted, and cached.
	for _, age := range []time.Duration{0, 5 * time.Second, DefaultMaxStale} {
		fresh.set(testNow.Add(-age))
		if _, err := v.Verify(tok); err != nil {
			t.Fatalf("age %v: %v", age, err)
		}
	}
	// Stale: refused, on the cache-hit path too.
	fresh.set(testNow.Add(-DefaultMaxStale - time.Millisecond))
	for i := range 2 {
		_, err := v.Verify(tok)
		if !errors.Is(err, ErrStale) {
			t.Fatalf("stale, try %d: %v, want ErrStale", i, err)
		}
		if strings.Contains(err.Error(), tok) {
			t.Fatal("error echoes the token")
		}
	}
	if v.StaleAccepted() != 0 {
		t.Fatal("fail-closed counted an acceptance")
	}
	// Through the middleware: 401 invalid_token.
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	v.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { t.Fatal("handler reached") })).ServeHTTP(rec, req)
	if rec.Code != 401 || !strings.Contains(rec.Header().Get("WWW-Authenticate"), `error="invalid_token"`) || !strings.Contains(rec.Body.String(), "stale") {
		t.Fatalf("middleware: %d %q %s", rec.Code, rec.Header().Get("WWW-Authenticate"), rec.Body)
	}
	// Fresh again: accepted again.
	fresh.set(testNow)
	if _, err := v.Verify(tok); err != nil {
		t.Fatal(err)
	}
}

func TestFailSafeRevokedWinsOverStale(t *testing.T) {
	k := keys(t)
	v, err := New(Config{Issuer: testIss, Audience: testAud, Keys: k.keySet(), Revocations: revokeSid("sid-1"),
		Freshness: &fakeFreshness{}, FailOpen: true, Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(k.good(t, "ed")); !errors.Is(err, ErrRevoked) {
		t.Fatalf("%v, want ErrRevoked", err)
	}
	if v.StaleAccepted() != 0 {
		t.Fatal("a revoked token counted as accepted")
	}
}

func TestFailSafeOpen(t *testing.T) {
	k := keys(t)
	fresh := &fakeFreshness{}
	var calls atomic.Int32
	v, err := New(Config{Issuer: testIss, Audience: testAud, Keys: k.keySet(), Freshness: fresh, MaxStale: time.Second,
		FailOpen: true, OnStale: func() { calls.Add(1) }, Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	tok := k.good(t, "ed")
	fresh.set(testNow.Add(-2 * time.Second))
	for range 3 { // cold, then cache hits
		if _, err := v.Verify(tok); err != nil {
			t.Fatalf("fail-open refused: %v", err)
		}
	}
	if v.StaleAccepted() != 3 || calls.Load() != 3 {
		t.Fatalf("StaleAccepted %d, OnStale %d, want 3", v.StaleAccepted(), calls.Load())
	}
	fresh.set(testNow)
	if _, err := v.Verify(tok); err != nil || v.StaleAccepted() != 3 {
		t.Fatalf("fresh: %v, count %d", err, v.StaleAccepted())
	}
	// Invalid tokens are refused whatever the policy.
	if _, err := v.Verify(tok + "x"); err == nil {
		t.Fatal("bad token accepted")
	}
}

func TestFailSafeConfig(t *testing.T) {
	k := keys(t)
	if _, err := New(Config{Issuer: testIss, Audience: testAud, Keys: k.keySet(), Freshness: &fakeFreshness{}, MaxStale: -1}); err == nil {
		t.Fatal("negative MaxStale accepted")
	}
	// Without Freshness there is no policy.
	v := newTestVerifier(t, k.keySet(), nil, 0, nil)
	if _, err := v.Verify(k.good(t, "ed")); err != nil {
		t.Fatal(err)
	}
}

// fakeLatch serves a JWKS and a minimal revocation feed.
type fakeLatch struct {
	*httptest.Server
	mu      sync.Mutex
	entries []string // JSON entries, seq = index+1
	down    atomic.Bool
	kill    chan struct{}
	jwks    atomic.Pointer[[]byte] // the JWKS document served
}

const remoteSecret = "remote-secret-0123456789abcdefghijklmnop"

func newFakeLatch(t *testing.T) *fakeLatch {
	k := keys(t)
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: k.ed.Public(), KeyID: "ed", Algorithm: "EdDSA", Use: "sig"}}})
	f := &fakeLatch{kill: make(chan struct{})}
	f.jwks.Store(&jwks)
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/.well-known/jwks.json" {
			w.Header().Set("Content-Type", "application/json")
			w.Write(*f.jwks.Load())
			return
		}
		if id, secret, ok := r.BasicAuth(); !ok || id != "api" || secret != remoteSecret {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(401)
			w.Write([]byte(`{"error":"invalid_client"}`))
			return
		}
		if f.down.Load() {
			http.Error(w, "down", 503)
			return
		}
		after, _ := strconv.Atoi(r.URL.Query().Get("after"))
		read := func() []string {
			f.mu.Lock()
			defer f.mu.Unlock()
			if after >= len(f.entries) {
				return nil
			}
			return append([]string(nil), f.entries[after:]...)
		}
		switch r.URL.Path {
		case "/v1/revocations":
			list := read()
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"revocations":[%s],"cursor":%d,"more":false}`, strings.Join(list, ","), after+len(list))
		case "/v1/revocations/stream":
			f.mu.Lock()
			kill := f.kill
			f.mu.Unlock()
			w.Header().Set("Content-Type", "text/event-stream")
			begun := time.Now()
			w.Write([]byte("retry: 50\n: hi\n\n"))
			w.(http.Flusher).Flush()
			for {
				for _, e := range read() {
					after++
					fmt.Fprintf(w, "id: %d\nevent: revocation\ndata: %s\n\n", after, e)
				}
				w.Write(revocation.AppendHeartbeat(nil, revocation.Heartbeat{Cursor: int64(after), Elapsed: time.Since(begun)})) // fresh: age 0
				w.(http.Flusher).Flush()
				select {
				case <-r.Context().Done():
					return
				case <-kill:
					return
				case <-time.After(10 * time.Millisecond):
				}
			}
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(func() { f.stop(); f.Close() })
	return f
}

func (f *fakeLatch) revokeSid(sid string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.entries = append(f.entries, fmt.Sprintf(`{"seq":%d,"kind":"sid","value":%q,"expires_at":%q}`,
		len(f.entries)+1, sid, time.Now().Add(time.Hour).UTC().Format(time.RFC3339Nano)))
}

// stop takes the feed down: 503 for requests, open streams dropped.
func (f *fakeLatch) stop() {
	f.down.Store(true)
	f.mu.Lock()
	select {
	case <-f.kill:
	default:
		close(f.kill)
	}
	f.mu.Unlock()
}

func nowToken(t *testing.T, sid string) string {
	n := time.Now().Unix()
	return keys(t).good(t, "ed", "iat", fmt.Sprint(n-1), "exp", fmt.Sprint(n+300), "sid", strconv.Quote(sid))
}

func TestNewRemote(t *testing.T) {
	f := newFakeLatch(t)
	f.revokeSid("old") // present before the start: must be known at once
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := RemoteConfig{Issuer: testIss, Audience: testAud, JWKSURL: f.URL + "/.well-known/jwks.json", RevocationsURL: f.URL,
		ClientID: "api", ClientSecret: remoteSecret, MaxStale: 300 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)}
	closed, err := NewRemote(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var staleCalls atomic.Int32
	cfg.FailOpen, cfg.OnStale = true, func() { staleCalls.Add(1) }
	open, err := NewRemote(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}

	if _, err := closed.Verify(nowToken(t, "old")); !errors.Is(err, ErrRevoked) {
		t.Fatalf("entry present at start: %v, want ErrRevoked", err)
	}
	tok := nowToken(t, "s1")
	if _, err := closed.Verify(tok); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	f.revokeSid("s1")
	for {
		_, err := closed.Verify(tok)
		if errors.Is(err, ErrRevoked) {
			break
		}
		if time.Since(start) > time.Second {
			t.Fatalf("not revoked within 1 s: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("revocation seen after %v", time.Since(start))

	// The feed goes down: fail-closed refuses after MaxStale, fail-open
	// accepts and counts.
	tok2 := nowToken(t, "s2")
	if _, err := closed.Verify(tok2); err != nil {
		t.Fatal(err)
	}
	f.stop()
	down := time.Now()
	for {
		_, err := closed.Verify(tok2)
		if errors.Is(err, ErrStale) {
			break
		}
		if err != nil {
			t.Fatalf("while the feed is down: %v", err)
		}
		if time.Since(down) > 2*time.Second {
			t.Fatal("still accepting 2 s after the feed went down with MaxStale 300 ms")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The stream vouched for fresh data every 10 ms until the feed
	// stopped, so the refusal comes about MaxStale (300 ms) later.
	if d := time.Since(down); d < 100*time.Millisecond {
		t.Fatalf("refused after %v, well before MaxStale", d)
	}
	t.Logf("fail-closed after %v", time.Since(down))
	// The fail-open verifier has its own set, possibly proved fresh a
	// little later: it keeps accepting, and soon counts.
	for open.StaleAccepted() == 0 {
		if _, err := open.Verify(tok2); err != nil {
			t.Fatalf("fail-open refused: %v", err)
		}
		if time.Since(down) > 2*time.Second {
			t.Fatal("fail-open acceptance not counted")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if staleCalls.Load() == 0 {
		t.Fatal("OnStale not called")
	}
}

func TestNewRemoteErrors(t *testing.T) {
	f := newFakeLatch(t)
	ctx := t.Context()
	base := RemoteConfig{Issuer: testIss, Audience: testAud, JWKSURL: f.URL + "/.well-known/jwks.json", RevocationsURL: f.URL,
		ClientID: "api", ClientSecret: remoteSecret, StartTimeout: 500 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)}

	bad := base
	bad.ClientSecret = "wrong-wrong-wrong-wrong-wrong-wrong"
	start := time.Now()
	_, err := NewRemote(ctx, bad)
	if err == nil || !strings.Contains(err.Error(), "401") || strings.Contains(err.Error(), bad.ClientSecret) {
		t.Fatalf("wrong secret: %v", err)
	}
	if time.Since(start) > 400*time.Millisecond {
		t.Fatalf("wrong secret took %v; it should fail fast", time.Since(start))
	}

	noSecret := base
	noSecret.ClientSecret = ""
	if _, err := NewRemote(ctx, noSecret); err == nil {
		t.Fatal("no secret accepted")
	}

	f.down.Store(true)
	if _, err := NewRemote(ctx, base); err == nil || !strings.Contains(err.Error(), "did not catch up") {
		t.Fatalf("feed down at start: %v", err)
	}

	insecure := base
	insecure.JWKSURL = "http://auth.example.com/.well-known/jwks.json"
	if _, err := NewRemote(ctx, insecure); err == nil {
		t.Fatal("plain http JWKS on a public host accepted")
	}
}
