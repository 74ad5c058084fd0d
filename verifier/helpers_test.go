package verifier

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Test keys, generated with crypto/rand once per test binary.
type testKeys struct {
	ed, edOther ed25519.PrivateKey
	es          *ecdsa.PrivateKey
	rs          *rsa.PrivateKey
}

var (
	keysOnce sync.Once
	tkeys    testKeys
)

func keys(t testing.TB) *testKeys {
	keysOnce.Do(func() {
		var err error
		must := func(e error) {
			if e != nil {
				panic(e)
			}
		}
		_, tkeys.ed, err = ed25519.GenerateKey(rand.Reader)
		must(err)
		_, tkeys.edOther, err = ed25519.GenerateKey(rand.Reader)
		must(err)
		tkeys.es, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		must(err)
		tkeys.rs, err = rsa.GenerateKey(rand.Reader, 2048)
		must(err)
	})
	return &tkeys
}

// keySet returns the key set used by most tests: kids ed, es, rs.
func (k *testKeys) keySet() StaticKeys {
	return StaticKeys{
		"ed": {Algorithm: "EdDSA", Public: k.ed.Public()},
		"es": {Algorithm: "ES256", Public: k.es.Public()},
		"rs": {Algorithm: "RS256", Public: k.rs.Public()},
	}
}

// countingKeys wraps a KeySet and counts lookups; the set can be changed
// while in use.
type countingKeys struct {
	mu    sync.RWMutex
	keys  map[string]Key
	calls atomic.Int64
}

func (c *countingKeys) Key(kid string) (Key, bool) {
	c.calls.Add(1)
	c.mu.RLock()
	defer c.mu.RUnlock()
	k, ok := c.keys[kid]
	return k, ok
}

func (c *countingKeys) set(kid string, k *Key) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if k == nil {
		delete(c.keys, kid)
	} else {
		c.keys[kid] = *k
	}
}

const (
	testIss = "https://auth.example.com"
	testAud = "https://api.example.com"
)

// testNow is the fixed clock of the tests.
var testNow = time.Unix(1_800_000_000, 0)

func enc(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// header returns a JSON header with the given alg and kid and typ at+jwt.
func header(alg, kid string) string {
	return fmt.Sprintf(`{"alg":%q,"kid":%q,"typ":"at+jwt"}`, alg, kid)
}

// claim is one member of a JSON object, with a raw JSON value.
type claim struct{ name, raw string }

func defaultClaims() []claim {
	n := testNow.Unix()
	return []claim{
		{"iss", `"` + testIss + `"`},
		{"sub", `"user-1"`},
		{"aud", `"` + testAud + `"`},
		{"exp", fmt.Sprint(n + 300)},
		{"iat", fmt.Sprint(n - 10)},
		{"jti", `"jti-1"`},
		{"sid", `"sid-1"`},
		{"client_id", `"web"`},
		{"scope", `"read write"`},
		{"auth_time", fmt.Sprint(n - 100)},
	}
}

// payload builds claims JSON from defaultClaims with overrides: set replaces
// (or appends) members by name with raw JSON values; a raw value "-"
// deletes the member.
func payload(set ...string) string {
	cs := defaultClaims()
	for i := 0; i+1 < len(set); i += 2 {
		name, raw := set[i], set[i+1]
		found := false
		for j := range cs {
			if cs[j].name == name {
				cs[j].raw = raw
				found = true
			}
		}
		if !found {
			cs = append(cs, claim{name, raw})
		}
	}
	var b strings.Builder
	b.WriteByte('{')
	first := true
	for _, c := range cs {
		if c.raw == "-" {
			continue
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		fmt.Fprintf(&b, "%q:%s", c.name, c.raw)
	}
	b.WriteByte('}')
	return b.String()
}

// signRaw signs the exact base64url segments h.p with alg and key.
func signRaw(t testing.TB, alg string, key any, h, p string) string {
	t.Helper()
	m := jwt.GetSigningMethod(alg)
	if m == nil {
		t.Fatalf("no signing method %s", alg)
	}
	sig, err := m.Sign(h+"."+p, key)
	if err != nil {
		t.Fatalf("sign %s: %v", alg, err)
	}
	if priv, ok := key.(*ecdsa.PrivateKey); ok {
		lowS(priv.Curve, sig) // as Latch signs; Verify refuses high S
	}
	return h + "." + p + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// lowS turns the JWS ECDSA signature r||s into its low-S form (s ≤ n/2) in
// place, and reports whether it changed it.
func lowS(c elliptic.Curve, sig []byte) bool {
	size := len(sig) / 2
	n := c.Params().N
	s := new(big.Int).SetBytes(sig[size:])
	if s.Cmp(new(big.Int).Rsh(n, 1)) <= 0 {
		return false
	}
	s.Sub(n, s).FillBytes(sig[size:])
	return true
}

// highS turns a JWS ECDSA signature r||s into r||(n−s): the same signature
// in its other, high-S form if s was low.
func highS(c elliptic.Curve, sig []byte) []byte {
	size := len(sig) / 2
	out := append([]byte(nil), sig...)
	s := new(big.Int).SetBytes(sig[size:])
	s.Sub(c.Params().N, s).FillBytes(out[size:])
	return out
}

// sign encodes header and claims JSON and signs them.
func sign(t testing.TB, alg string, key any, headerJSON, claimsJSON string) string {
	t.Helper()
	return signRaw(t, alg, key, enc(headerJSON), enc(claimsJSON))
}

// privFor returns the private key and alg of a kid of keySet.
func (k *testKeys) privFor(kid string) (string, crypto.Signer) {
	switch kid {
	case "ed":
		return "EdDSA", k.ed
	case "es":
		return "ES256", k.es
	case "rs":
		return "RS256", k.rs
	}
	panic("unknown kid " + kid)
}

// good returns a valid token for kid with claim overrides.
func (k *testKeys) good(t testing.TB, kid string, set ...string) string {
	alg, priv := k.privFor(kid)
	return sign(t, alg, priv, header(alg, kid), payload(set...))
}

func newTestVerifier(t testing.TB, ks KeySet, rev Revocations, cacheSize int, now func() time.Time) *Verifier {
	t.Helper()
	if now == nil {
		now = func() time.Time { return testNow }
	}
	v, err := New(Config{Issuer: testIss, Audience: testAud, Keys: ks, Revocations: rev, CacheSize: cacheSize, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}
