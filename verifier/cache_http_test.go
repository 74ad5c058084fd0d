package verifier

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchauth/latch/verifier/revocation"
)

func TestRevocation(t *testing.T) {
	k := keys(t)
	n := testNow.Unix()
	set := revocation.NewSet()
	set.Add(
		revocation.Entry{Seq: 1, Kind: revocation.Token, Value: "jti-revoked"},
		revocation.Entry{Seq: 2, Kind: revocation.Session, Value: "sid-revoked"},
		revocation.Entry{Seq: 3, Kind: revocation.User, Value: "user-out", Cutoff: testNow.Add(-time.Minute)},
	)
	for _, cacheSize := range []int{-1, 0} {
		v := newTestVerifier(t, k.keySet(), set, cacheSize, nil)
		for _, r := range []struct {
			name  string
			token string
			want  error
		}{
			{"revoked by jti", k.good(t, "ed", "jti", `"jti-revoked"`), ErrRevoked},
			{"revoked by sid", k.good(t, "es", "sid", `"sid-revoked"`), ErrRevoked},
			{"revoked by user cutoff", k.good(t, "rs", "sub", `"user-out"`, "iat", fmt.Sprint(n-120)), ErrRevoked},
			{"user cutoff, issued after", k.good(t, "ed", "sub", `"user-out"`, "iat", fmt.Sprint(n-30)), nil},
			{"user cutoff, issued in the cutoff's second", k.good(t, "ed", "sub", `"user-out"`, "iat", fmt.Sprint(n-60)), nil},
			{"other user", k.good(t, "ed", "iat", fmt.Sprint(n-120)), nil},
		} {
			for i := 0; i < 2; i++ {
				_, err := v.Verify(r.token)
				if r.want == nil && err != nil || r.want != nil && !errors.Is(err, r.want) {
					t.Errorf("cache %d: %s: got %v, want %v", cacheSize, r.name, err, r.want)
				}
			}
		}
	}
}

func TestCachedTokenBecomesRevoked(t *testing.T) {
	k := keys(t)
	set := revocation.NewSet()
	v := newTestVerifier(t, k.keySet(), set, 0, nil)
	tok := k.good(t, "ed")
	for i := 0; i < 3; i++ {
		if _, err := v.Verify(tok); err != nil {
			t.Fatal(err)
		}
	}
	if v.cache.len() != 1 {
		t.Fatalf("token not cached: %d", v.cache.len())
	}
	set.Add(revocation.Entry{Seq: 1, Kind: revocation.Session, Value: "sid-1"})
	if _, err := v.Verify(tok); !errors.Is(err, errRevoked) {
		t.Fatalf("cached token after revocation: %v", err)
	}
}

func TestCachedTokenExpires(t *testing.T) {
	k := keys(t)
	clk := &clock{t: testNow}
	v := newTestVerifier(t, k.keySet(), nil, 0, clk.now)
	tok := k.good(t, "ed") // exp = now + 300, leeway 5 s
	if _, err := v.Verify(tok); err != nil {
		t.Fatal(err)
	}
	clk.set(testNow.Add(304 * time.Second))
	if _, err := v.Verify(tok); err != nil {
		t.Fatalf("inside leeway: %v", err)
	}
	if v.cache.len() != 1 {
		t.Fatal("not a cache hit")
	}
	clk.set(testNow.Add(305 * time.Second))
	if _, err := v.Verify(tok); !errors.Is(err, errExpired) {
		t.Fatalf("cached token past exp: %v", err)
	}
	if v.cache.len() != 0 {
		t.Fatal("expired entry kept")
	}
	// A clock going back before iat-leeway is refused too.
	tok2 := k.good(t, "ed", "jti", `"j2"`)
	clk.set(testNow)
	if _, err := v.Verify(tok2); err != nil {
		t.Fatal(err)
	}
	clk.set(testNow.Add(-16 * time.Second)) // iat = now-10, leeway 5
	if _, err := v.Verify(tok2); !errors.Is(err, errIssuedLater) {
		t.Fatalf("cached token before iat: %v", err)
	}
}

func TestCachedTokenKeyRemovedOrReplaced(t *testing.T) {
	k := keys(t)
	ks := &countingKeys{keys: map[string]Key(k.keySet())}
	v := newTestVerifier(t, ks, nil, 0, nil)
	tok := k.good(t, "ed")
	if _, err := v.Verify(tok); err != nil {
		t.Fatal(err)
	}
	before := ks.calls.Load()
	if _, err := v.Verify(tok); err != nil {
		t.Fatal(err)
	}
	if ks.calls.Load() != before+1 {
		t.Fatal("cache hit must consult the key set")
	}
	// Same kid, different key: the cached entry must not survive.
	ks.set("ed", &Key{Algorithm: "EdDSA", Public: k.edOther.Public()})
	if _, err := v.Verify(tok); !errors.Is(err, errSignature) {
		t.Fatalf("key replaced under the same kid: %v", err)
	}
	ks.set("ed", &Key{Algorithm: "EdDSA", Public: k.ed.Public()})
	if _, err := v.Verify(tok); err != nil {
		t.Fatal(err)
	}
	// Same kid and key, other algorithm binding.
	ks.set("ed", &Key{Algorithm: "ES256", Public: k.ed.Public()})
	if _, err := v.Verify(tok); !errors.Is(err, errAlgMismatch) {
		t.Fatalf("key rebound to another alg: %v", err)
	}
	ks.set("ed", &Key{Algorithm: "EdDSA", Public: k.ed.Public()})
	if _, err := v.Verify(tok); err != nil {
		t.Fatal(err)
	}
	ks.set("ed", nil)
	if _, err := v.Verify(tok); !errors.Is(err, errUnknownKid) {
		t.Fatalf("cached token whose key disappeared: %v", err)
	}
}

func TestCacheBoundedAndReturnsCopies(t *testing.T) {
	k := keys(t)
	v := newTestVerifier(t, k.keySet(), nil, 64, nil)
	for i := 0; i < 500; i++ {
		if _, err := v.Verify(k.good(t, "ed", "jti", fmt.Sprintf(`"j%d"`, i))); err != nil {
			t.Fatal(err)
		}
	}
	if l := v.cache.len(); l > 64+cacheShards || l == 0 {
		t.Fatalf("cache size %d, bound %d", l, 64)
	}
	tok := k.good(t, "ed")
	c1, _ := v.Verify(tok)
	c1.Subject = "mallory"
	c2, err := v.Verify(tok)
	if err != nil || c2.Subject != "user-1" {
		t.Fatalf("mutating returned claims changed the cache: %v %v", c2, err)
	}
}

func TestConcurrentVerify(t *testing.T) {
	k := keys(t)
	set := revocation.NewSet()
	v := newTestVerifier(t, k.keySet(), set, 16, nil)
	toks := make([]string, 40)
	for i := range toks {
		toks[i] = k.good(t, "ed", "jti", fmt.Sprintf(`"j%d"`, i))
	}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				tok := toks[(i*7+g)%len(toks)]
				if _, err := v.Verify(tok); err != nil && !errors.Is(err, ErrRevoked) {
					t.Error(err)
					return
				}
			}
		}(g)
	}
	set.Add(revocation.Entry{Seq: 1, Kind: revocation.Token, Value: "j3"})
	wg.Wait()
	if _, err := v.Verify(toks[3]); !errors.Is(err, ErrRevoked) {
		t.Fatal("revoked token accepted after concurrent use")
	}
}

func serve(h http.Handler, authz ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("GET", "/api", nil)
	for _, a := range authz {
		r.Header.Add("Authorization", a)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestMiddleware(t *testing.T) {
	k := keys(t)
	v := newTestVerifier(t, k.keySet(), nil, 0, nil)
	var seen *Claims
	h := v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen, _ = ClaimsFrom(r.Context())
		w.WriteHeader(204)
	}))
	tok := k.good(t, "ed")
	for _, c := range []struct {
		name      string
		authz     []string
		status    int
		challenge string
		code      string
	}{
		{"valid", []string{"Bearer " + tok}, 204, "", ""},
		{"scheme case-insensitive", []string{"bEARER " + tok}, 204, "", ""},
		{"missing header", nil, 401, `Bearer`, "unauthorized"},
		{"wrong scheme", []string{"Basic dXNlcjpwYXNz"}, 401, `Bearer`, "unauthorized"},
		{"token without scheme", []string{tok}, 401, `Bearer`, "unauthorized"},
		{"two tokens", []string{"Bearer " + tok + " " + tok}, 400, `Bearer error="invalid_request"`, "invalid_request"},
		{"two spaces", []string{"Bearer  " + tok}, 400, `Bearer error="invalid_request"`, "invalid_request"},
		{"empty token", []string{"Bearer "}, 400, `Bearer error="invalid_request"`, "invalid_request"},
		{"scheme only", []string{"Bearer"}, 400, `Bearer error="invalid_request"`, "invalid_request"},
		{"two headers", []string{"Bearer " + tok, "Bearer " + tok}, 400, `Bearer error="invalid_request"`, "invalid_request"},
		{"invalid token", []string{"Bearer " + tok + "x"}, 401, `Bearer error="invalid_token", error_description="`, "invalid_token"},
		{"expired token", []string{"Bearer " + k.good(t, "ed", "exp", fmt.Sprint(testNow.Unix()-60))}, 401, `Bearer error="invalid_token", error_description="the token expired"`, "invalid_token"},
	} {
		seen = nil
		w := serve(h, c.authz...)
		if w.Code != c.status {
			t.Errorf("%s: status %d, want %d", c.name, w.Code, c.status)
			continue
		}
		if c.status == 204 {
			if seen == nil || seen.Subject != "user-1" {
				t.Errorf("%s: handler did not see the claims", c.name)
			}
			continue
		}
		if seen != nil {
			t.Errorf("%s: handler called", c.name)
		}
		got := w.Header().Get("WWW-Authenticate")
		if c.challenge == "Bearer" && got != "Bearer" || !strings.HasPrefix(got, c.challenge) {
			t.Errorf("%s: WWW-Authenticate %q, want prefix %q", c.name, got, c.challenge)
		}
		if w.Header().Get("Content-Type") != "application/json" || w.Header().Get("Cache-Control") != "no-store" {
			t.Errorf("%s: headers %v", c.name, w.Header())
		}
		var body struct{ Error, Error_description string }
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Error != c.code || body.Error_description == "" {
			t.Errorf("%s: body %q", c.name, w.Body.String())
		}
		if strings.Contains(w.Body.String(), tok[:30]) || strings.Contains(got, tok[:30]) {
			t.Errorf("%s: response echoes the token", c.name)
		}
	}
}

func TestBearerToken(t *testing.T) {
	for authz, want := range map[string]string{
		"Bearer abc.def-_~+/=": "abc.def-_~+/=",
		"bearer x":             "x",
		"Bearer a=b":           "",
		"Bearer =":             "",
		"Bearer a\tb":          "",
		"Token x":              "",
		"Bearerx y":            "",
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Authorization", authz)
		got, ok := BearerToken(r)
		if got != want || ok != (want != "") {
			t.Errorf("BearerToken(%q) = %q, %v; want %q", authz, got, ok, want)
		}
	}
}

func TestRequireScope(t *testing.T) {
	k := keys(t)
	v := newTestVerifier(t, k.keySet(), nil, 0, nil)
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })
	if w := serve(v.Middleware(RequireScope("read", ok)), "Bearer "+k.good(t, "ed")); w.Code != 204 {
		t.Fatalf("scope read: %d", w.Code)
	}
	w := serve(v.Middleware(RequireScope("admin", ok)), "Bearer "+k.good(t, "ed"))
	if w.Code != 403 || w.Header().Get("WWW-Authenticate") != `Bearer error="insufficient_scope", scope="admin"` ||
		strings.TrimSpace(w.Body.String()) != `{"error":"insufficient_scope"}` || w.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("scope admin: %d %v %q", w.Code, w.Header(), w.Body.String())
	}
	// Prefix of a granted scope is not the scope.
	if w := serve(v.Middleware(RequireScope("rea", ok)), "Bearer "+k.good(t, "ed")); w.Code != 403 {
		t.Fatalf("scope rea: %d", w.Code)
	}
	// Without Middleware there are no claims.
	if w := serve(RequireScope("read", ok), "Bearer "+k.good(t, "ed")); w.Code != 401 {
		t.Fatalf("no claims: %d", w.Code)
	}
	for _, bad := range []string{"", "a b", `a"b`, `a\b`} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("RequireScope(%q) did not panic", bad)
				}
			}()
			RequireScope(bad, ok)
		}()
	}
}

// Benchmarks.

func benchTokens(b *testing.B) (map[string]string, StaticKeys) {
	k := keys(b)
	return map[string]string{"EdDSA": k.good(b, "ed"), "ES256": k.good(b, "es"), "RS256": k.good(b, "rs")}, k.keySet()
}

// BenchmarkVerify measures Verify per core: cold with the cache disabled,
// warm as a cache hit. Revocation is checked against an empty Set.
func BenchmarkVerify(b *testing.B) {
	toks, ks := benchTokens(b)
	for _, alg := range []string{"EdDSA", "ES256", "RS256"} {
		for _, mode := range []string{"cold", "warm"} {
			b.Run(alg+"/"+mode, func(b *testing.B) {
				size := -1
				if mode == "warm" {
					size = 0
				}
				v := newTestVerifier(b, ks, revocation.NewSet(), size, time.Now)
				tok := toks[alg]
				// The benchmark runs on the real clock; re-sign with times around now.
				k := keys(b)
				n := time.Now().Unix()
				tok = k.good(b, map[string]string{"EdDSA": "ed", "ES256": "es", "RS256": "rs"}[alg], "exp", fmt.Sprint(n+3600), "iat", fmt.Sprint(n-10))
				if _, err := v.Verify(tok); err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if _, err := v.Verify(tok); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkVerifyParallel measures warm hits of one hot token from every core.
func BenchmarkVerifyParallel(b *testing.B) {
	k := keys(b)
	n := time.Now().Unix()
	tok := k.good(b, "ed", "exp", fmt.Sprint(n+3600), "iat", fmt.Sprint(n-10))
	v := newTestVerifier(b, k.keySet(), revocation.NewSet(), 0, time.Now)
	if _, err := v.Verify(tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := v.Verify(tok); err != nil {
				panic(err)
			}
		}
	})
}

// BenchmarkRawVerify is the bare signature check over the same signing
// input, hashing included: the floor of a cold Verify.
func BenchmarkRawVerify(b *testing.B) {
	toks, _ := benchTokens(b)
	k := keys(b)
	split := func(tok string) (string, []byte) {
		i := strings.LastIndexByte(tok, '.')
		sig, _ := base64.RawURLEncoding.DecodeString(tok[i+1:])
		return tok[:i], sig
	}
	b.Run("Ed25519", func(b *testing.B) {
		in, sig := split(toks["EdDSA"])
		pub := k.ed.Public().(ed25519.PublicKey)
		for i := 0; i < b.N; i++ {
			if !ed25519.Verify(pub, []byte(in), sig) {
				b.Fatal("bad")
			}
		}
	})
	b.Run("ECDSAP256", func(b *testing.B) {
		in, sig := split(toks["ES256"])
		pub := k.es.Public().(*ecdsa.PublicKey)
		for i := 0; i < b.N; i++ {
			h := sha256.Sum256([]byte(in))
			r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
			if !ecdsa.Verify(pub, h[:], r, s) {
				b.Fatal("bad")
			}
		}
	})
	b.Run("RSA2048", func(b *testing.B) {
		in, sig := split(toks["RS256"])
		pub := k.rs.Public().(*rsa.PublicKey)
		for i := 0; i < b.N; i++ {
			h := sha256.Sum256([]byte(in))
			if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, h[:], sig); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkPrecheck is the cost of our own structural checks (base64,
// strict JSON scan, header and claim rules) on a typical token, without
// golang-jwt and the signature.
func BenchmarkPrecheck(b *testing.B) {
	toks, _ := benchTokens(b)
	tok := toks["EdDSA"]
	v := newTestVerifier(b, StaticKeys{}, nil, -1, nil) // unknown kid: stops right after the prechecks
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := v.Verify(tok); !errors.Is(err, errUnknownKid) {
			b.Fatal(err)
		}
	}
}

// BenchmarkScanWorstCase scans payloads of many small objects of
// maxMembers distinct names each, ASCII or long non-ASCII: the adversarial
// cost before the signature is checked.
func BenchmarkScanWorstCase(b *testing.B) {
	for name, prefix := range map[string]string{"ascii": "", "unicode": strings.Repeat("é", 8)} {
		b.Run(name, func(b *testing.B) {
			in := manyNames(prefix)
			var m [maxMembers]member
			if _, code := scanTop(in, &m); code != scanOK {
				b.Fatal(code)
			}
			b.SetBytes(int64(len(in)))
			for i := 0; i < b.N; i++ {
				scanTop(in, &m)
			}
		})
	}
}

func TestPublicEqual(t *testing.T) {
	k := keys(t)
	esCopy := *k.es.Public().(*ecdsa.PublicKey)
	rsCopy := *k.rs.Public().(*rsa.PublicKey)
	for _, c := range []struct {
		a, b any
		want bool
	}{
		{k.ed.Public(), k.ed.Public(), true},
		{k.ed.Public(), k.edOther.Public(), false},
		{k.es.Public(), k.es.Public(), true},
		{k.es.Public(), &esCopy, true},
		{k.rs.Public(), &rsCopy, true},
		{k.rs.Public(), k.es.Public(), false},
		{k.ed.Public(), []byte(k.ed.Public().(ed25519.PublicKey)), false},
		{nil, nil, false},
	} {
		if got := publicEqual(c.a, c.b); got != c.want {
			t.Errorf("publicEqual(%T, %T) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
}

// TestCachedAudienceAppend: callers served the same cached token share its
// Audience; appending to it must not write into spare capacity that the
// next caller's append overwrites (one request's audience showing up in
// another's claims, and a data race between concurrent requests).
func TestCachedAudienceAppend(t *testing.T) {
	k := keys(t)
	v := newTestVerifier(t, k.keySet(), nil, 0, nil)
	tok := k.good(t, "ed", "aud", `["a","b","`+testAud+`"]`)
	c1, err := v.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	c1.Audience = append(c1.Audience, "from request 1")
	c2, err := v.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if len(c2.Audience) != 3 {
		t.Fatalf("cached audience %q", c2.Audience)
	}
	c2.Audience = append(c2.Audience, "from request 2")
	if c1.Audience[3] != "from request 1" {
		t.Fatalf("request 1's audience became %q", c1.Audience)
	}
}
