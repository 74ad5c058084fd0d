package verifier

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func sha384Sum(s string) []byte {
	h := sha512.Sum384([]byte(s))
	return h[:]
}

// TestNumericDateRange: validly signed tokens whose exp, iat, nbf or
// auth_time is out of range or not a plain number of seconds are refused
// (they used to overflow and be accepted), whatever the algorithm.
func TestNumericDateRange(t *testing.T) {
	k := keys(t)
	n := testNow.Unix()
	bad := []string{
		"1e300", "9.2e18", "9200000000000000000", "9223372036854775807", "18446744073709551616",
		"1.8e9", "1800000000e0", "1E9", "-1", "-0", "0", "0.5", "253402300800",
		fmt.Sprintf("%d.1234567890", n), // 10 fractional digits
	}
	for _, claim := range []string{"exp", "iat", "nbf", "auth_time"} {
		for _, kid := range []string{"ed", "es", "rs"} {
			for _, form := range bad {
				tok := k.good(t, kid, claim, form)
				for _, cacheSize := range []int{-1, 0} {
					v := newTestVerifier(t, k.keySet(), nil, cacheSize, nil)
					if _, err := v.Verify(tok); !errors.Is(err, errDateRange) {
						t.Errorf("%s %s = %s: %v, want errDateRange", kid, claim, form, err)
					}
				}
			}
		}
	}
	// Accepted: fractions of up to 9 digits (dropped: dates are whole
	// seconds, as golang-jwt read them), and dates up to 9999-12-31.
	v := newTestVerifier(t, k.keySet(), nil, -1, nil)
	c, err := v.Verify(k.good(t, "es",
		"exp", fmt.Sprintf("%d.999999999", n+300), "iat", fmt.Sprintf("%d.5", n-10),
		"nbf", fmt.Sprintf("%d.0", n-10), "auth_time", "253402300799"))
	if err != nil {
		t.Fatal(err)
	}
	if c.ExpiresAt.Unix() != n+300 || c.IssuedAt.Unix() != n-10 || c.NotBefore.Unix() != n-10 ||
		!c.AuthTime.Equal(time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)) {
		t.Fatalf("dates %v %v %v %v", c.ExpiresAt, c.IssuedAt, c.NotBefore, c.AuthTime)
	}
}

// TestHighS: an ES256 signature (r, s) has a twin (r, n−s) that
// crypto/ecdsa accepts; Verify accepts only the low-S one, so that a token
// has one valid encoding.
func TestHighS(t *testing.T) {
	k := keys(t)
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		alg  string
		priv *ecdsa.PrivateKey
	}{{"ES256", k.es}, {"ES384", p384}} {
		ks := StaticKeys{"k": {Algorithm: c.alg, Public: &c.priv.PublicKey}}
		tok := sign(t, c.alg, c.priv, header(c.alg, "k"), payload()) // low S
		i := strings.LastIndexByte(tok, '.')
		sig, err := base64.RawURLEncoding.DecodeString(tok[i+1:])
		if err != nil {
			t.Fatal(err)
		}
		twin := highS(c.priv.Curve, sig)
		size := len(sig) / 2
		// The twin is a valid signature for crypto/ecdsa.
		digest := sha256Sum(tok[:i])
		if c.alg == "ES384" {
			digest = sha384Sum(tok[:i])
		}
		if !ecdsa.Verify(&c.priv.PublicKey, digest, new(big.Int).SetBytes(twin[:size]), new(big.Int).SetBytes(twin[size:])) {
			t.Fatalf("%s: the high-S twin does not verify with crypto/ecdsa", c.alg)
		}
		highTok := tok[:i+1] + base64.RawURLEncoding.EncodeToString(twin)
		for _, cacheSize := range []int{-1, 0} {
			v := newTestVerifier(t, ks, nil, cacheSize, nil)
			if _, err := v.Verify(highTok); !errors.Is(err, errHighS) {
				t.Errorf("%s cache %d: high S: %v, want errHighS", c.alg, cacheSize, err)
			}
			if _, err := v.Verify(tok); err != nil {
				t.Errorf("%s cache %d: low S: %v", c.alg, cacheSize, err)
			}
			if _, err := v.Verify(highTok); !errors.Is(err, errHighS) { // not served from the cache
				t.Errorf("%s cache %d: high S after low S: %v, want errHighS", c.alg, cacheSize, err)
			}
		}
	}
}

// TestMaxTokenLifetime: a token whose exp − iat exceeds the issuer's
// longest lifetime is refused, even while it is otherwise valid, so that it
// cannot outlive the revocation entries covering it.
func TestMaxTokenLifetime(t *testing.T) {
	k := keys(t)
	iat := testNow.Unix() - 10
	life := func(kid string, d int64) string {
		return k.good(t, kid, "iat", fmt.Sprint(iat), "exp", fmt.Sprint(iat+d))
	}
	for _, c := range []struct {
		max      time.Duration
		longest  int64
		tooLong  int64
		muchMore int64
	}{
		{0, 86400, 86401, 10 * 365 * 86400}, // DefaultMaxTokenLifetime
		{5 * time.Minute, 300, 301, 12 * 3600},
	} {
		v, err := New(Config{Issuer: testIss, Audience: testAud, Keys: k.keySet(), Now: func() time.Time { return testNow }, MaxTokenLifetime: c.max})
		if err != nil {
			t.Fatal(err)
		}
		for _, kid := range []string{"ed", "es", "rs"} {
			if _, err := v.Verify(life(kid, c.longest)); err != nil {
				t.Errorf("max %v, %s: lifetime %d s refused: %v", c.max, kid, c.longest, err)
			}
			for _, d := range []int64{c.tooLong, c.muchMore} {
				if _, err := v.Verify(life(kid, d)); !errors.Is(err, errLifetime) || !errors.Is(err, ErrClaims) {
					t.Errorf("max %v, %s: lifetime %d s: %v, want errLifetime", c.max, kid, d, err)
				}
			}
		}
	}
	for _, bad := range []time.Duration{-time.Second, time.Millisecond} {
		if _, err := New(Config{Issuer: testIss, Audience: testAud, Keys: k.keySet(), MaxTokenLifetime: bad}); err == nil {
			t.Errorf("MaxTokenLifetime %v accepted", bad)
		}
	}
}

// TestStringClaimsDecoded: string claims with escapes decode exactly as
// encoding/json decodes them (issuers such as PHP's json_encode escape
// "/"; scopes and subjects may hold any Unicode).
func TestStringClaimsDecoded(t *testing.T) {
	k := keys(t)
	v := newTestVerifier(t, k.keySet(), nil, -1, nil)
	escIss := `"` + strings.ReplaceAll(testIss, "/", `\/`) + `"`
	escAud := `["x","` + strings.ReplaceAll(testAud, "/", `\/`) + `"]`
	sub := `"\u0075ser-1 \"q\" \\ \/ \b\f\n\r\t \u00e9 \ud83d\ude00 \ud800 \udc00x \ud800\u0041 \u0000"`
	scope := `"read write café \ud83d\ude00"`
	c, err := v.Verify(k.good(t, "ed", "iss", escIss, "aud", escAud, "sub", sub, "scope", scope, "sid", `"s\/1"`, "jti", `"j"`, "client_id", `"c\u0069d"`))
	if err != nil {
		t.Fatal(err)
	}
	var want struct {
		Sub, Scope string
		Aud        []string
	}
	if err := json.Unmarshal([]byte(`{"sub":`+sub+`,"scope":`+scope+`,"aud":`+escAud+`}`), &want); err != nil {
		t.Fatal(err)
	}
	if c.Issuer != testIss || c.Subject != want.Sub || c.Scope != want.Scope || c.SessionID != "s/1" || c.ID != "j" || c.ClientID != "cid" ||
		len(c.Audience) != 2 || c.Audience[1] != want.Aud[1] {
		t.Fatalf("claims %+v", c)
	}
	if !c.HasScope("café") {
		t.Fatal("HasScope on a decoded scope")
	}
	// An escaped issuer or audience that decodes to another value is
	// still refused.
	if _, err := v.Verify(k.good(t, "ed", "iss", `"https:\/\/auth.example.co\u006d/"`)); !errors.Is(err, errIssuer) {
		t.Fatalf("escaped wrong issuer: %v", err)
	}
	if _, err := v.Verify(k.good(t, "ed", "aud", `"https:\/\/api.example.co\u004d"`)); !errors.Is(err, errAudience) {
		t.Fatalf("escaped wrong audience: %v", err)
	}
}

// FuzzJSONString: whatever the scanner accepts as a string decodes as
// encoding/json decodes it.
func FuzzJSONString(f *testing.F) {
	for _, s := range []string{`"a"`, `"\u00e9"`, `"\ud83d\ude00"`, `"\ud800"`, `"\ud800\u0041"`, `"\udc00\ud800"`, `"\\\"\/\b\f\n\r\t"`, `"é😀"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, lit string) {
		s := scanner{b: []byte(lit)}
		if len(lit) == 0 || lit[0] != '"' {
			return
		}
		if _, _, ok := s.str(); !ok || s.i != len(lit) || !utf8.ValidString(lit) {
			return
		}
		var want string
		if err := json.Unmarshal([]byte(lit), &want); err != nil {
			t.Fatalf("scanner accepted %q, encoding/json refuses it: %v", lit, err)
		}
		if got := jsonString([]byte(lit)); got != want {
			t.Fatalf("jsonString(%q) = %q, encoding/json gives %q", lit, got, want)
		}
		if !equalString([]byte(lit), want) {
			t.Fatalf("equalString(%q, %q) is false", lit, want)
		}
	})
}

// TestHeaderRemembered: the header of the last verified token is not
// checked again, but everything else is, a different header is checked in
// full, and a header is remembered only from a token that verified.
func TestHeaderRemembered(t *testing.T) {
	k := keys(t)
	v := newTestVerifier(t, k.keySet(), nil, -1, nil)
	if v.lastHeader.Load() != nil {
		t.Fatal("a header is remembered before any token")
	}
	// Refused tokens leave nothing behind.
	critH := `{"alg":"EdDSA","kid":"ed","typ":"at+jwt","crit":["exp"]}`
	if _, err := v.Verify(sign(t, "EdDSA", k.ed, critH, payload())); !errors.Is(err, errCrit) {
		t.Fatal(err)
	}
	if _, err := v.Verify(k.good(t, "ed", "exp", "1")); !errors.Is(err, errExpired) {
		t.Fatal(err)
	}
	if v.lastHeader.Load() != nil {
		t.Fatal("a header was remembered from a refused token")
	}
	good := k.good(t, "ed")
	if _, err := v.Verify(good); err != nil {
		t.Fatal(err)
	}
	if h := v.lastHeader.Load(); h == nil || h.seg != segs(good)[0] || h.alg != "EdDSA" || h.kid != "ed" {
		t.Fatalf("remembered %+v", h)
	}
	// Same header: the signature and claims are still checked.
	forged := segs(good)[0] + "." + segs(good)[1] + "." + segs(sign(t, "EdDSA", k.edOther, header("EdDSA", "ed"), payload()))[2]
	if _, err := v.Verify(forged); !errors.Is(err, errSignature) {
		t.Fatalf("other key's signature under a remembered header: %v", err)
	}
	if _, err := v.Verify(k.good(t, "ed", "aud", `"other"`)); !errors.Is(err, errAudience) {
		t.Fatalf("wrong audience under a remembered header: %v", err)
	}
	// Another header is checked in full, and then remembered.
	if _, err := v.Verify(sign(t, "EdDSA", k.ed, critH, payload())); !errors.Is(err, errCrit) {
		t.Fatal(err)
	}
	es := k.good(t, "es")
	if _, err := v.Verify(es); err != nil {
		t.Fatal(err)
	}
	if h := v.lastHeader.Load(); h.seg != segs(es)[0] || h.alg != "ES256" || h.kid != "es" {
		t.Fatalf("remembered %+v", h)
	}
	if _, err := v.Verify(good); err != nil {
		t.Fatal(err)
	}
}

// TestHasScopeSplitsOnSpaceOnly: the scope claim is split on U+0020 alone
// (RFC 6749 §3.3), as the server and other resource servers split it; a
// scope holding a tab, a line break or a no-break space is one scope, so
// "read\u00a0admin" does not grant admin.
func TestHasScopeSplitsOnSpaceOnly(t *testing.T) {
	k := keys(t)
	v := newTestVerifier(t, k.keySet(), nil, -1, nil)
	for _, raw := range []string{`"read\tadmin"`, `"read\nadmin"`, `"read\u00a0admin"`, `"read\u2028admin"`, `"read\u0085admin"`, "\"read\u3000admin\""} {
		c, err := v.Verify(k.good(t, "ed", "scope", raw))
		if err != nil {
			t.Fatal(err)
		}
		if c.HasScope("admin") || c.HasScope("read") {
			t.Errorf("scope %s: split on a character other than U+0020", raw)
		}
	}
	c, err := v.Verify(k.good(t, "ed", "scope", `"read  admin "`))
	if err != nil {
		t.Fatal(err)
	}
	if !c.HasScope("read") || !c.HasScope("admin") || c.HasScope("") {
		t.Errorf("scope %q", c.Scope)
	}
}
