package verifier

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
)

// jwksTestServer serves a configurable JWKS document and counts requests.
type jwksTestServer struct {
	*httptest.Server
	hits atomic.Int64

	mu     sync.Mutex
	body   []byte
	status int
	ctype  string
	cc     string
	age    string
	block  chan struct{} // if not nil, requests wait for it to close
}

func newJWKSServer(t testing.TB, body []byte) *jwksTestServer {
	s := &jwksTestServer{body: body, status: 200, ctype: "application/jwk-set+json", cc: "public, max-age=900"}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.mu.Lock()
		body, status, ctype, cc, age, block := s.body, s.status, s.ctype, s.cc, s.age, s.block
		s.mu.Unlock()
		if block != nil {
			select {
			case <-block:
			case <-r.Context().Done():
				return
			}
		}
		if ctype != "" {
			w.Header().Set("Content-Type", ctype)
		}
		if cc != "" {
			w.Header().Set("Cache-Control", cc)
		}
		if age != "" {
			w.Header().Set("Age", age)
		}
		w.WriteHeader(status)
		w.Write(body)
	}))
	t.Cleanup(s.Close)
	return s
}

// update changes the served response under the lock.
func (s *jwksTestServer) update(f func(s *jwksTestServer)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func (s *jwksTestServer) url() string { return s.URL + "/.well-known/jwks.json" }

// jwk returns the public JWK of pub with kid, alg and use "sig" as a map,
// for tests to alter.
func jwk(t testing.TB, key any, kid, alg string) map[string]any {
	t.Helper()
	b, err := jose.JSONWebKey{Key: key, KeyID: kid, Algorithm: alg, Use: "sig"}.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// jwksDoc renders keys, given as maps or raw JSON strings, as a JWKS.
func jwksDoc(t testing.TB, keys ...any) []byte {
	t.Helper()
	parts := make([]string, len(keys))
	for i, k := range keys {
		if s, ok := k.(string); ok {
			parts[i] = s
			continue
		}
		b, err := json.Marshal(k)
		if err != nil {
			t.Fatal(err)
		}
		parts[i] = string(b)
	}
	return []byte(`{"keys":[` + strings.Join(parts, ",") + `]}`)
}

// kidOf returns the RFC 7638 thumbprint of pub, as Latch names its keys.
func kidOf(t testing.TB, pub crypto.PublicKey) string {
	t.Helper()
	tp, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(tp)
}

// jwksSigner is a private key with its kid and algorithm.
type jwksSigner struct {
	kid, alg string
	priv     crypto.Signer
}

func newSigner(t testing.TB, alg string, priv crypto.Signer) jwksSigner {
	return jwksSigner{kid: kidOf(t, priv.Public()), alg: alg, priv: priv}
}

func newEdSigner(t testing.TB) jwksSigner {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return newSigner(t, "EdDSA", priv)
}

func (s jwksSigner) jwk(t testing.TB) map[string]any { return jwk(t, s.priv.Public(), s.kid, s.alg) }

// token signs an access token with golang-jwt, valid at the real time.
func (s jwksSigner) token(t testing.TB) string {
	t.Helper()
	now := time.Now()
	tok := jwt.NewWithClaims(jwt.GetSigningMethod(s.alg), jwt.MapClaims{
		"iss":       testIss,
		"sub":       "user-1",
		"aud":       testAud,
		"exp":       now.Add(5 * time.Minute).Unix(),
		"iat":       now.Add(-10 * time.Second).Unix(),
		"jti":       fmt.Sprintf("jti-%d", time.Now().UnixNano()),
		"client_id": "web",
	})
	tok.Header["kid"] = s.kid
	tok.Header["typ"] = "at+jwt"
	input, err := tok.SigningString()
	if err != nil {
		t.Fatal(err)
	}
	i := strings.IndexByte(input, '.')
	return signRaw(t, s.alg, s.priv, input[:i], input[i+1:]) // low S for ES256
}

// testSigners are the Ed25519, P-256 and RSA-2048 keys of the other tests.
func testSigners(t testing.TB) []jwksSigner {
	k := keys(t)
	return []jwksSigner{newSigner(t, "EdDSA", k.ed), newSigner(t, "ES256", k.es), newSigner(t, "RS256", k.rs)}
}

func quietLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

// testOpts are options for tests: no logs, no background refresh during
// the test unless changed.
func testOpts() JWKSOptions {
	return JWKSOptions{Logger: quietLog(), MaxRefresh: time.Hour}
}

func newTestJWKS(t testing.TB, url string, opts JWKSOptions) *JWKS {
	t.Helper()
	j, err := NewJWKS(context.Background(), url, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(j.Close)
	return j
}

func jwksVerifier(t testing.TB, ks KeySet) *Verifier {
	t.Helper()
	v, err := New(Config{Issuer: testIss, Audience: testAud, Keys: ks})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// eventually polls cond every few milliseconds for up to 3 s.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestJWKSHappyPath(t *testing.T) {
	signers := testSigners(t)
	var ks []any
	for _, s := range signers {
		ks = append(ks, s.jwk(t))
	}
	srv := newJWKSServer(t, jwksDoc(t, ks...))
	clk := &clock{t: testNow}
	opts := testOpts()
	opts.Now = clk.now
	j := newTestJWKS(t, srv.url(), opts)
	if j.Err() != nil || !j.LastRefresh().Equal(testNow) {
		t.Fatalf("Err %v, LastRefresh %v", j.Err(), j.LastRefresh())
	}
	if ids := j.KeyIDs(); len(ids) != 3 {
		t.Fatalf("KeyIDs %v", ids)
	}
	v := jwksVerifier(t, j)
	for _, s := range signers {
		c, err := v.Verify(s.token(t))
		if err != nil || c.Subject != "user-1" || c.ClientID != "web" {
			t.Fatalf("%s: %v %v", s.alg, c, err)
		}
		k, ok := j.Key(s.kid)
		if !ok || k.Algorithm != s.alg || !publicEqual(k.Public, s.priv.Public()) {
			t.Fatalf("%s: Key = %v %v", s.alg, k, ok)
		}
	}
	// A token whose alg differs from its key's is refused by the verifier.
	bad := signers[1]
	bad.priv, bad.alg = signers[0].priv, "EdDSA" // ES256 kid, EdDSA signature
	if _, err := v.Verify(bad.token(t)); !errors.Is(err, ErrAlgorithm) {
		t.Fatalf("alg substitution: %v", err)
	}
	if a := testing.AllocsPerRun(100, func() { j.Key(signers[0].kid) }); a != 0 {
		t.Fatalf("Key allocates %v times", a)
	}
	if srv.hits.Load() != 1 {
		t.Fatalf("%d fetches, want 1", srv.hits.Load())
	}
}

func TestJWKSCacheMaxAge(t *testing.T) {
	for _, c := range []struct {
		cc, age string
		want    time.Duration
		ok      bool
	}{
		{"public, max-age=900", "", 900 * time.Second, true},
		{"Max-Age=60", "", time.Minute, true},
		{`max-age="30"`, "", 30 * time.Second, true},
		{"public, max-age=900", "600", 300 * time.Second, true},
		{"public, max-age=900", "1000", 0, true},
		{"no-store", "", 0, true},
		{"max-age=900, no-cache", "", 0, true},
		{"public", "", 0, false},
		{"max-age=abc", "", 0, false},
		{"max-age=-1", "", 0, false},
		{"", "", 0, false},
		{"max-age=99999999999999999", "", time.Duration(1<<63-1) / time.Second * time.Second, true},
	} {
		h := http.Header{}
		if c.cc != "" {
			h.Set("Cache-Control", c.cc)
		}
		if c.age != "" {
			h.Set("Age", c.age)
		}
		got, ok := cacheMaxAge(h)
		if got != c.want || ok != c.ok {
			t.Errorf("Cache-Control %q Age %q: %v %v, want %v %v", c.cc, c.age, got, ok, c.want, c.ok)
		}
	}
}

func TestJWKSCacheControlHonoured(t *testing.T) {
	s := newEdSigner(t)
	for _, c := range []struct {
		cc, age string
		want    time.Duration
	}{
		{"public, max-age=900", "", 900 * time.Second},
		{"public, max-age=10", "", time.Minute},           // clamped to MinRefresh
		{"public, max-age=86400", "", time.Hour},          // clamped to MaxRefresh
		{"", "", time.Hour},                               // none: MaxRefresh
		{"no-store", "", time.Minute},                     // MinRefresh
		{"public, max-age=900", "300", 600 * time.Second}, // Age deducted
	} {
		srv := newJWKSServer(t, jwksDoc(t, s.jwk(t)))
		srv.update(func(ts *jwksTestServer) { ts.cc, ts.age = c.cc, c.age })
		clk := &clock{t: testNow}
		opts := testOpts()
		opts.Now, opts.MinRefresh, opts.MaxRefresh = clk.now, time.Minute, time.Hour
		j := newTestJWKS(t, srv.url(), opts)
		got := j.NextRefresh().Sub(j.LastRefresh())
		// Up to 10 % jitter, never later than asked.
		if got > c.want || got < c.want-c.want/10 {
			t.Errorf("Cache-Control %q Age %q: next refresh in %v, want %v (-10 %%)", c.cc, c.age, got, c.want)
		}
		j.Close()
	}
}

func TestJWKSBackgroundRefresh(t *testing.T) {
	a, b := newEdSigner(t), newEdSigner(t)
	srv := newJWKSServer(t, jwksDoc(t, a.jwk(t)))
	srv.update(func(ts *jwksTestServer) { ts.cc = "max-age=0" })
	opts := testOpts()
	opts.MinRefresh, opts.MaxRefresh = 20*time.Millisecond, 20*time.Millisecond
	opts.UnknownKidInterval = -1 // only the background refresh may find b
	j := newTestJWKS(t, srv.url(), opts)
	v := jwksVerifier(t, j)
	tokA, tokB := a.token(t), b.token(t)
	if _, err := v.Verify(tokA); err != nil {
		t.Fatal(err)
	}
	srv.update(func(s *jwksTestServer) { s.body = jwksDoc(t, b.jwk(t)) })
	eventually(t, "the background refresh picks up the new set", func() bool {
		_, errB := v.Verify(tokB)
		_, errA := v.Verify(tokA)
		return errB == nil && errors.Is(errA, ErrUnknownKey)
	})
	if n := srv.hits.Load(); n < 2 {
		t.Fatalf("%d fetches", n)
	}
}

func TestJWKSServesStaleOnFailure(t *testing.T) {
	s := newEdSigner(t)
	srv := newJWKSServer(t, jwksDoc(t, s.jwk(t)))
	srv.update(func(ts *jwksTestServer) { ts.cc = "max-age=0" })
	opts := testOpts()
	opts.MinRefresh, opts.MaxRefresh = 20*time.Millisecond, 20*time.Millisecond
	j := newTestJWKS(t, srv.url(), opts)
	v := jwksVerifier(t, j)
	last := j.LastRefresh()

	srv.update(func(s *jwksTestServer) { s.status = 503 })
	n := srv.hits.Load()
	eventually(t, "retries after failures", func() bool { return srv.hits.Load() >= n+3 })
	if err := j.Err(); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("Err = %v", err)
	}
	if _, err := v.Verify(s.token(t)); err != nil {
		t.Fatalf("stale key: %v", err)
	}
	if j.LastRefresh().Before(last) {
		t.Fatal("LastRefresh went back")
	}
	stale := j.LastRefresh()

	srv.update(func(s *jwksTestServer) { s.status = 200 })
	eventually(t, "recovery", func() bool { return j.Err() == nil && j.LastRefresh().After(stale) })

	// Server gone altogether.
	srv.Close()
	eventually(t, "failure recorded", func() bool { return j.Err() != nil })
	if err := j.Refresh(context.Background()); err == nil {
		t.Fatal("Refresh of a closed server succeeded")
	}
	if _, err := v.Verify(s.token(t)); err != nil {
		t.Fatalf("stale key with the server down: %v", err)
	}
}

func TestJWKSBadResponsesKeepLastGood(t *testing.T) {
	s := newEdSigner(t)
	good := jwksDoc(t, s.jwk(t))
	other := newEdSigner(t)
	big := []byte(`{"keys":[` + string(jwksDoc(t, other.jwk(t))[9:len(jwksDoc(t, other.jwk(t)))-2]) + `],"pad":"` + strings.Repeat("x", 5000) + `"}`)
	for _, c := range []struct {
		name   string
		status int
		ctype  string
		body   []byte
		chunk  bool
		errHas string
	}{
		{"500", 500, "application/json", good, false, "status 500"},
		{"404", 404, "application/json", good, false, "status 404"},
		{"HTML", 200, "text/html; charset=utf-8", []byte("<html><body>Sign in</body></html>"), false, "Content-Type"},
		{"JSON as text/plain", 200, "text/plain", good, false, "Content-Type"},
		{"no content type", 200, "", good, false, "Content-Type"},
		{"garbage", 200, "application/json", []byte("{\"keys\":[{"), false, "strict JSON"},
		{"trailing data", 200, "application/json", append(append([]byte{}, good...), "{}"...), false, "strict JSON"},
		{"duplicate member", 200, "application/json", []byte(`{"keys":[],"keys":[]}`), false, "duplicate"},
		{"array", 200, "application/json", []byte(`[]`), false, "strict JSON"},
		{"no keys", 200, "application/json", []byte(`{}`), false, `no "keys"`},
		{"null keys", 200, "application/json", []byte(`{"keys":null}`), false, `no "keys"`},
		{"empty keys", 200, "application/json", []byte(`{"keys":[]}`), false, "no keys"},
		{"oversize", 200, "application/json", big, false, "exceeds the limit"},
		{"oversize chunked", 200, "application/json", big, true, "exceeds the limit"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var serveBad atomic.Bool
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if !serveBad.Load() {
					w.Header().Set("Content-Type", "application/json")
					w.Write(good)
					return
				}
				if c.ctype != "" {
					w.Header().Set("Content-Type", c.ctype)
				} else {
					w.Header()["Content-Type"] = nil // no sniffing
				}
				w.WriteHeader(c.status)
				if c.chunk {
					for i := 0; i < len(c.body); i += 1000 {
						w.Write(c.body[i:min(i+1000, len(c.body))])
						w.(http.Flusher).Flush()
					}
					return
				}
				w.Write(c.body)
			}))
			defer srv.Close()
			opts := testOpts()
			opts.MaxBytes = 4096
			j := newTestJWKS(t, srv.URL, opts)
			serveBad.Store(true)
			err := j.Refresh(context.Background())
			if err == nil || !strings.Contains(err.Error(), c.errHas) {
				t.Fatalf("Refresh = %v, want an error containing %q", err, c.errHas)
			}
			if j.Err() != err {
				t.Fatalf("Err() = %v", j.Err())
			}
			if _, ok := j.Key(s.kid); !ok {
				t.Fatal("last good key lost")
			}
			if _, ok := j.Key(other.kid); ok {
				t.Fatal("key of a refused document installed")
			}
			// The same document at start makes NewJWKS fail.
			if _, err := NewJWKS(context.Background(), srv.URL, opts); err == nil {
				t.Fatal("NewJWKS accepted the document")
			}
		})
	}
}

func TestJWKSMaxBytesBoundary(t *testing.T) {
	s := newEdSigner(t)
	doc := jwksDoc(t, s.jwk(t))
	srv := newJWKSServer(t, doc)
	opts := testOpts()
	opts.MaxBytes = int64(len(doc))
	newTestJWKS(t, srv.url(), opts)
	opts.MaxBytes--
	if _, err := NewJWKS(context.Background(), srv.url(), opts); err == nil || !strings.Contains(err.Error(), "exceeds") {
		t.Fatalf("one byte over: %v", err)
	}
}

func TestJWKSRotation(t *testing.T) {
	a, b := newEdSigner(t), newSigner(t, "ES256", keys(t).es)
	srv := newJWKSServer(t, jwksDoc(t, a.jwk(t)))
	clk := &clock{t: testNow}
	opts := testOpts()
	opts.Now = clk.now
	j := newTestJWKS(t, srv.url(), opts)
	v := jwksVerifier(t, j)
	tokA, tokB := a.token(t), b.token(t)
	if _, err := v.Verify(tokA); err != nil {
		t.Fatal(err)
	}
	// A new key is published (an immediate rotation): the first token it
	// signed triggers a refetch, which VerifyContext (as Middleware does)
	// waits for, and verifies.
	srv.update(func(s *jwksTestServer) { s.body = jwksDoc(t, b.jwk(t), a.jwk(t)) })
	if _, err := v.VerifyContext(context.Background(), tokB); err != nil {
		t.Fatalf("token of the new key: %v", err)
	}
	if n := srv.hits.Load(); n != 2 {
		t.Fatalf("%d fetches, want 2", n)
	}
	// The old key is removed: its tokens verify until the next refresh,
	// then fail, cached or not.
	srv.update(func(s *jwksTestServer) { s.body = jwksDoc(t, b.jwk(t)) })
	if _, err := v.Verify(tokA); err != nil {
		t.Fatalf("before the refresh: %v", err)
	}
	if err := j.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(tokA); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("token of a removed key: %v", err)
	}
	if _, err := v.Verify(a.token(t)); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("fresh token of a removed key: %v", err)
	}
	if _, err := v.Verify(tokB); err != nil {
		t.Fatal(err)
	}
	// The lookups of the removed kid were rate-limited: no refetch.
	if n := srv.hits.Load(); n != 3 {
		t.Fatalf("%d fetches, want 3", n)
	}
}

func TestJWKSStableKeysAcrossRefreshes(t *testing.T) {
	signers := testSigners(t)
	srv := newJWKSServer(t, jwksDoc(t, signers[0].jwk(t), signers[1].jwk(t), signers[2].jwk(t)))
	j := newTestJWKS(t, srv.url(), testOpts())
	before := map[string]Key{}
	for _, s := range signers {
		before[s.kid], _ = j.Key(s.kid)
	}
	if err := j.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, s := range signers {
		k, _ := j.Key(s.kid)
		switch p := k.Public.(type) {
		case *ecdsa.PublicKey:
			if p != before[s.kid].Public.(*ecdsa.PublicKey) {
				t.Error("ECDSA key pointer changed across an identical refresh")
			}
		case *rsa.PublicKey:
			if p != before[s.kid].Public.(*rsa.PublicKey) {
				t.Error("RSA key pointer changed across an identical refresh")
			}
		}
	}
}

func TestJWKSUnknownKidStorm(t *testing.T) {
	s := newEdSigner(t)
	srv := newJWKSServer(t, jwksDoc(t, s.jwk(t)))
	clk := &clock{t: testNow}
	opts := testOpts()
	opts.Now = clk.now
	j := newTestJWKS(t, srv.url(), opts)
	v := jwksVerifier(t, j)
	storm := func() {
		var wg sync.WaitGroup
		for i := 0; i < 1000; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var b [12]byte
				rand.Read(b[:])
				kid := base64.RawURLEncoding.EncodeToString(b[:])
				if _, ok := j.Key(kid); ok {
					t.Error("random kid found")
				}
			}()
		}
		wg.Wait()
	}
	storm()
	eventually(t, "the storm's one refetch", func() bool { return srv.hits.Load() == 2 && j.flight.Load() == nil })
	// Through the verifier, too.
	forged := newEdSigner(t)
	for i := 0; i < 50; i++ {
		if _, err := v.Verify(forged.token(t)); !errors.Is(err, ErrUnknownKey) {
			t.Fatal(err)
		}
	}
	storm()
	if n := srv.hits.Load(); n != 2 {
		t.Fatalf("within the interval: %d fetches, want 2", n)
	}
	clk.set(testNow.Add(DefaultJWKSUnknownKidInterval - time.Nanosecond))
	storm()
	if n := srv.hits.Load(); n != 2 {
		t.Fatalf("just before the interval ends: %d fetches, want 2", n)
	}
	clk.set(testNow.Add(DefaultJWKSUnknownKidInterval))
	storm()
	eventually(t, "the next interval's one refetch", func() bool { return srv.hits.Load() == 3 && j.flight.Load() == nil })
	if n := srv.hits.Load(); n != 3 {
		t.Fatalf("next interval: %d fetches, want 3", n)
	}
	if _, err := v.Verify(s.token(t)); err != nil {
		t.Fatal(err)
	}
}

// TestVerifyUnknownKidNeverBlocks: while the JWKS server hangs, Verify of
// a token with an unknown kid returns ErrUnknownKey without waiting for the
// refetch it starts (which cannot finish before the server is released),
// known kids verify meanwhile, and concurrent unknown kids share the one
// refetch; once the server answers, the new key verifies. VerifyContext
// waits for the refetch only while its context allows.
func TestVerifyUnknownKidNeverBlocks(t *testing.T) {
	s, fresh := newEdSigner(t), newEdSigner(t)
	srv := newJWKSServer(t, jwksDoc(t, s.jwk(t)))
	opts := testOpts()
	opts.Timeout = time.Minute // the refetch outlives the test's deadlines
	j := newTestJWKS(t, srv.url(), opts)
	j.keyWait = time.Hour // only the caller's context may bound a wait
	v := jwksVerifier(t, j)

	release := make(chan struct{})
	released := false
	defer func() {
		if !released {
			close(release)
		}
	}()
	srv.update(func(ts *jwksTestServer) { ts.block, ts.body = release, jwksDoc(t, fresh.jwk(t), s.jwk(t)) })
	tokFresh, tokKnown := fresh.token(t), s.token(t)

	// Verify of unknown kids, from several goroutines: each must return
	// ErrUnknownKey while the refetch is still hanging.
	errs := make(chan error, 10)
	for i := 0; i < 10; i++ {
		go func() {
			_, err := v.Verify(tokFresh)
			errs <- err
		}()
	}
	deadline := time.After(10 * time.Second)
	for i := 0; i < 10; i++ {
		select {
		case err := <-errs:
			if !errors.Is(err, ErrUnknownKey) {
				t.Fatalf("unknown kid: %v, want ErrUnknownKey", err)
			}
		case <-deadline:
			t.Fatal("Verify of an unknown kid is waiting for the hanging JWKS server")
		}
	}
	eventually(t, "the refetch reaches the server", func() bool { return srv.hits.Load() == 2 })
	if j.flight.Load() == nil {
		t.Fatal("the refetch finished although the server hangs")
	}
	if _, err := v.Verify(tokKnown); err != nil {
		t.Fatalf("known kid while the refetch hangs: %v", err)
	}

	// VerifyContext waits for the refetch, but no longer than its context.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := v.VerifyContext(ctx, tokFresh)
		done <- err
	}()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, ErrUnknownKey) {
			t.Fatalf("VerifyContext after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("VerifyContext ignores its context")
	}
	if n := srv.hits.Load(); n != 2 {
		t.Fatalf("%d fetches, want 2: concurrent unknown kids must share one", n)
	}

	// The server answers: the background refetch installs the new key.
	close(release)
	released = true
	eventually(t, "the new key after the refetch", func() bool { _, err := v.Verify(tokFresh); return err == nil })
}

func TestJWKSRejectsKeys(t *testing.T) {
	good := newEdSigner(t)
	bad := newEdSigner(t)
	k := keys(t)
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	with := func(m map[string]any, kv ...any) map[string]any {
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(m, kv[i].(string))
			} else {
				m[kv[i].(string)] = kv[i+1]
			}
		}
		return m
	}
	privJWK := func(key any, alg string) map[string]any { return jwk(t, key, bad.kid, alg) }
	for _, c := range []struct {
		name   string
		key    any // map or raw JSON
		reason string
	}{
		{"no alg", with(bad.jwk(t), "alg", nil), "no alg"},
		{"alg HS256", with(bad.jwk(t), "alg", "HS256"), `alg "HS256" is not accepted`},
		{"alg none", with(bad.jwk(t), "alg", "none"), `alg "none" is not accepted`},
		{"alg not a string", with(bad.jwk(t), "alg", 1), "alg is not a string"},
		{"no use", with(bad.jwk(t), "use", nil), "no use"},
		{"use enc", with(bad.jwk(t), "use", "enc"), `use is "enc"`},
		{"key_ops without verify", with(bad.jwk(t), "key_ops", []string{"sign"}), `key_ops does not contain "verify"`},
		{"key_ops not an array", with(bad.jwk(t), "key_ops", "verify"), "key_ops is not an array"},
		{"Ed25519 private key", privJWK(bad.priv, "EdDSA"), "private members"},
		{"RSA private key", jwk(t, k.rs, bad.kid, "RS256"), "private members"},
		{"ECDSA private key", jwk(t, k.es, bad.kid, "ES256"), "private members"},
		{"symmetric key", map[string]any{"kty": "oct", "k": "c2VjcmV0", "kid": bad.kid, "alg": "HS256", "use": "sig"}, "private members"},
		{"RSA 1024", jwk(t, rsa1024.Public(), bad.kid, "RS256"), "RSA key of 1024 bits"},
		{"P-384 labelled ES256", jwk(t, p384.Public(), bad.kid, "ES256"), "P-384"},
		{"Ed25519 labelled RS256", jwk(t, bad.priv.Public(), bad.kid, "RS256"), "must be an RSA key"},
		{"P-256 labelled EdDSA", jwk(t, k.es.Public(), bad.kid, "EdDSA"), "must be an Ed25519 key"},
		{"RSA labelled ES256", jwk(t, k.rs.Public(), bad.kid, "ES256"), "must be an ECDSA P-256 key"},
		{"no kid", with(bad.jwk(t), "kid", nil), "no kid"},
		{"empty kid", with(bad.jwk(t), "kid", ""), "no kid"},
		{"case variant", with(bad.jwk(t), "Use", "enc"), "case variant"},
		{"case-variant private member", with(bad.jwk(t), "D", "AAAA"), "case variant"},
		{"point not on curve", with(jwk(t, k.es.Public(), bad.kid, "ES256"), "y", base64.RawURLEncoding.EncodeToString(make([]byte, 32))), "key material"},
		{"no kty", with(bad.jwk(t), "kty", nil), "key material"},
		{"not an object", `"key"`, "not a JSON object"},
		{"duplicate member", `{"kty":"OKP","crv":"Ed25519","x":"` + bad.jwk(t)["x"].(string) + `","kid":"` + bad.kid + `","alg":"EdDSA","use":"sig","use":"enc"}`, "not a JSON object"},
	} {
		t.Run(c.name, func(t *testing.T) {
			// Next to a good key, only the bad one is ignored.
			var logs bytes.Buffer
			opts := testOpts()
			opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			srv := newJWKSServer(t, jwksDoc(t, good.jwk(t), c.key))
			j := newTestJWKS(t, srv.url(), opts)
			// WaitKey: the unknown-kid refetch must be over (and done
			// logging) before the log is read.
			if _, ok := j.WaitKey(context.Background(), bad.kid); ok {
				t.Fatal("bad key accepted")
			}
			if _, ok := j.Key(good.kid); !ok || j.Err() != nil {
				t.Fatalf("good key lost: %v", j.Err())
			}
			logged := strings.ReplaceAll(logs.String(), `\"`, `"`)
			if !strings.Contains(logged, "JWKS key ignored") || !strings.Contains(logged, c.reason) {
				t.Fatalf("log %q does not give the reason %q", logs.String(), c.reason)
			}
			if strings.Contains(c.reason, "private") && !strings.Contains(logs.String(), "level=ERROR") {
				t.Fatalf("private key material not logged as an error: %q", logs.String())
			}
			// Alone, it leaves no acceptable key: the document is refused.
			srv.update(func(s *jwksTestServer) { s.body = jwksDoc(t, c.key) })
			if err := j.Refresh(context.Background()); err == nil || !strings.Contains(err.Error(), "no acceptable key") || !strings.Contains(err.Error(), c.reason) {
				t.Fatalf("document with only the bad key: %v", err)
			}
			if _, ok := j.Key(good.kid); !ok {
				t.Fatal("last good set lost")
			}
			if _, err := NewJWKS(context.Background(), srv.url(), opts); err == nil {
				t.Fatal("NewJWKS accepted a set without an acceptable key")
			}
		})
	}
}

func TestJWKSAcceptsKeyVariants(t *testing.T) {
	s := newEdSigner(t)
	for name, m := range map[string]map[string]any{
		"key_ops verify":      func() map[string]any { m := s.jwk(t); m["key_ops"] = []string{"verify"}; return m }(),
		"unknown member":      func() map[string]any { m := s.jwk(t); m["x-extra"] = true; return m }(),
		"kid not thumbprint":  jwk(t, s.priv.Public(), "key-2026-01", "EdDSA"),
		"unknown alg ignored": nil,
	} {
		t.Run(name, func(t *testing.T) {
			doc := jwksDoc(t, m)
			kid := s.kid
			if m == nil {
				// A key of an algorithm Latch does not use is ignored,
				// the others are kept (RFC 7517 §5).
				p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
				doc = jwksDoc(t, jwk(t, p384.Public(), "p384", "ES384"), s.jwk(t))
			} else if m["kid"] != s.kid {
				kid = m["kid"].(string)
			}
			srv := newJWKSServer(t, doc)
			j := newTestJWKS(t, srv.url(), testOpts())
			if _, ok := j.Key(kid); !ok {
				t.Fatal("key not accepted")
			}
		})
	}
}

func TestJWKSRejectsDocuments(t *testing.T) {
	a, b := newEdSigner(t), newEdSigner(t)
	dupKid := b.jwk(t)
	dupKid["kid"] = a.kid
	badDup := a.jwk(t)
	badDup["use"] = "enc" // a refused key still claims its kid
	for _, c := range []struct {
		name    string
		doc     []byte
		maxKeys int
		errHas  string
	}{
		{"duplicate kid", jwksDoc(t, a.jwk(t), dupKid), 0, "appears more than once"},
		{"duplicate kid, same key", jwksDoc(t, a.jwk(t), a.jwk(t)), 0, "appears more than once"},
		{"duplicate kid of a refused key", jwksDoc(t, a.jwk(t), badDup), 0, "appears more than once"},
		{"too many keys", jwksDoc(t, a.jwk(t), b.jwk(t), newEdSigner(t).jwk(t), newEdSigner(t).jwk(t)), 3, "more than the limit of 3"},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := newJWKSServer(t, jwksDoc(t, a.jwk(t)))
			opts := testOpts()
			opts.MaxKeys = c.maxKeys
			j := newTestJWKS(t, srv.url(), opts)
			srv.update(func(s *jwksTestServer) { s.body = c.doc })
			if err := j.Refresh(context.Background()); err == nil || !strings.Contains(err.Error(), c.errHas) {
				t.Fatalf("Refresh = %v, want %q", err, c.errHas)
			}
			k, ok := j.Key(a.kid)
			if !ok || !publicEqual(k.Public, a.priv.Public()) {
				t.Fatal("last good set lost")
			}
			if _, ok := j.Key(b.kid); ok {
				t.Fatal("key of a refused document installed")
			}
			if _, err := NewJWKS(context.Background(), srv.url(), opts); err == nil || !strings.Contains(err.Error(), c.errHas) {
				t.Fatalf("NewJWKS = %v", err)
			}
		})
	}
	// Exactly MaxKeys is fine.
	srv := newJWKSServer(t, jwksDoc(t, a.jwk(t), b.jwk(t)))
	opts := testOpts()
	opts.MaxKeys = 2
	newTestJWKS(t, srv.url(), opts)
}

func TestNewJWKSFails(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + l.Addr().String() + "/.well-known/jwks.json"
	l.Close()
	start := time.Now()
	if _, err := NewJWKS(context.Background(), dead, testOpts()); err == nil || !strings.Contains(err.Error(), "fetch") {
		t.Fatalf("unreachable URL: %v", err)
	}
	if time.Since(start) > 3*time.Second {
		t.Fatal("slow failure")
	}
	srv := newJWKSServer(t, jwksDoc(t, newEdSigner(t).jwk(t)))
	for _, c := range []struct {
		name string
		url  string
		opts func(*JWKSOptions)
	}{
		{"http on a remote host", "http://auth.example.com/.well-known/jwks.json", nil},
		{"other scheme", "ftp://auth.example.com/jwks.json", nil},
		{"relative", "/.well-known/jwks.json", nil},
		{"user info", "https://u:p@auth.example.com/jwks.json", nil},
		{"bad URL", "https://auth.example.com/%zz", nil},
		{"MinRefresh above MaxRefresh", srv.url(), func(o *JWKSOptions) { o.MinRefresh, o.MaxRefresh = time.Hour, time.Minute }},
		{"negative timeout", srv.url(), func(o *JWKSOptions) { o.Timeout = -1 }},
	} {
		opts := testOpts()
		if c.opts != nil {
			c.opts(&opts)
		}
		if _, err := NewJWKS(context.Background(), c.url, opts); err == nil {
			t.Errorf("%s: NewJWKS succeeded", c.name)
		}
	}
	if err := checkJWKSURL("http://auth.example.com/jwks.json", true); err != nil {
		t.Errorf("AllowInsecureHTTP: %v", err)
	}
	for _, u := range []string{"http://localhost:8080/j", "http://[::1]/j", "http://127.0.0.2/j", "https://auth.example.com/j"} {
		if err := checkJWKSURL(u, false); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
}

func TestJWKSRedirectPolicy(t *testing.T) {
	https := &http.Request{URL: mustURL(t, "https://a.example/j")}
	http1 := &http.Request{URL: mustURL(t, "http://b.example/j")}
	if checkRedirect(http1, []*http.Request{https}) == nil {
		t.Error("https to http redirect allowed")
	}
	if checkRedirect(https, []*http.Request{http1}) != nil {
		t.Error("http to https redirect refused")
	}
	if checkRedirect(https, []*http.Request{https, https, https}) == nil {
		t.Error("fourth redirect allowed")
	}
}

func mustURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestJWKSSkipInitialFetch(t *testing.T) {
	s := newEdSigner(t)
	srv := newJWKSServer(t, jwksDoc(t, s.jwk(t)))
	srv.update(func(ts *jwksTestServer) { ts.status = 503 })
	opts := testOpts()
	opts.SkipInitialFetch = true
	opts.MinRefresh = 20 * time.Millisecond
	opts.Timeout = 200 * time.Millisecond
	j := newTestJWKS(t, srv.url(), opts)
	eventually(t, "the first background fetch fails", func() bool { return j.Err() != nil })
	if _, ok := j.Key(s.kid); ok || !j.LastRefresh().IsZero() {
		t.Fatal("a key without a successful fetch")
	}
	srv.update(func(s *jwksTestServer) { s.status = 200 })
	eventually(t, "the retry succeeds", func() bool { return j.Err() == nil && !j.LastRefresh().IsZero() })
	if _, err := jwksVerifier(t, j).Verify(s.token(t)); err != nil {
		t.Fatal(err)
	}
}

func TestJWKSCloseStopsRefreshing(t *testing.T) {
	for _, how := range []string{"Close", "context"} {
		t.Run(how, func(t *testing.T) {
			s := newEdSigner(t)
			srv := newJWKSServer(t, jwksDoc(t, s.jwk(t)))
			srv.update(func(ts *jwksTestServer) { ts.cc = "no-store" })
			opts := testOpts()
			opts.MinRefresh, opts.MaxRefresh = 10*time.Millisecond, 10*time.Millisecond
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			j, err := NewJWKS(ctx, srv.url(), opts)
			if err != nil {
				t.Fatal(err)
			}
			eventually(t, "background refreshes", func() bool { return srv.hits.Load() >= 4 })
			if how == "Close" {
				j.Close()
				j.Close() // idempotent
			} else {
				cancel()
				time.Sleep(20 * time.Millisecond) // let a fetch in flight end
			}
			n := srv.hits.Load()
			time.Sleep(100 * time.Millisecond)
			if m := srv.hits.Load(); m != n {
				t.Fatalf("%d fetches after %s", m-n, how)
			}
			// The last set is still served; nothing triggers a fetch.
			if _, ok := j.Key(s.kid); !ok {
				t.Fatal("keys gone after close")
			}
			if _, ok := j.Key("unknown"); ok {
				t.Fatal("unknown kid found")
			}
			if err := j.Refresh(context.Background()); err == nil {
				t.Fatal("Refresh after close succeeded")
			}
			if m := srv.hits.Load(); m != n {
				t.Fatalf("%d fetches after %s", m-n, how)
			}
			j.Close()
		})
	}
}

// BenchmarkJWKSKey measures a lookup of a known kid: an atomic load and a
// map lookup.
func BenchmarkJWKSKey(b *testing.B) {
	signers := testSigners(b)
	srv := newJWKSServer(b, jwksDoc(b, signers[0].jwk(b), signers[1].jwk(b), signers[2].jwk(b)))
	j := newTestJWKS(b, srv.url(), testOpts())
	kid := signers[0].kid
	b.Run("hit", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := j.Key(kid); !ok {
				b.Fatal("miss")
			}
		}
	})
	b.Run("hit-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, ok := j.Key(kid); !ok {
					panic("miss")
				}
			}
		})
	})
}
