package verifier

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestNewValidatesConfig(t *testing.T) {
	ks := StaticKeys{}
	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no issuer", Config{Audience: "a", Keys: ks}, "Issuer"},
		{"blank issuer", Config{Issuer: " ", Audience: "a", Keys: ks}, "Issuer"},
		{"no audience", Config{Issuer: "i", Keys: ks}, "Audience"},
		{"no keys", Config{Issuer: "i", Audience: "a"}, "Keys"},
		{"negative leeway", Config{Issuer: "i", Audience: "a", Keys: ks, Leeway: -time.Second}, "negative"},
		{"leeway too large", Config{Issuer: "i", Audience: "a", Keys: ks, Leeway: 31 * time.Second}, "maximum"},
	}
	for _, c := range cases {
		if _, err := New(c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want mention of %q", c.name, err, c.want)
		}
	}
	v, err := New(Config{Issuer: "i", Audience: "a", Keys: ks})
	if err != nil || v.leeway != DefaultLeeway || v.cache == nil || v.cache.perShard*cacheShards < DefaultCacheSize {
		t.Fatalf("defaults not applied: %v %+v", err, v)
	}
	v, _ = New(Config{Issuer: "i", Audience: "a", Keys: ks, CacheSize: -1, Leeway: 30 * time.Second})
	if v.cache != nil || v.leeway != 30*time.Second {
		t.Fatal("CacheSize<0 must disable the cache; 30 s leeway must be accepted")
	}
}

func TestAccepts(t *testing.T) {
	k := keys(t)
	n := testNow.Unix()
	edTyp := func(typ string) string {
		return sign(t, "EdDSA", k.ed, `{"alg":"EdDSA","kid":"ed","typ":"`+typ+`"}`, payload())
	}
	rows := []struct{ name, token string }{
		{"EdDSA", k.good(t, "ed")},
		{"ES256", k.good(t, "es")},
		{"RS256", k.good(t, "rs")},
		{"typ AT+JWT", edTyp("AT+JWT")},
		{"typ application/at+jwt", edTyp("application/at+jwt")},
		{"typ Application/At+Jwt", edTyp("Application/At+Jwt")},
		{"aud array containing ours", k.good(t, "ed", "aud", `["other","`+testAud+`"]`)},
		{"exp 4 s ago (leeway 5 s)", k.good(t, "ed", "exp", fmt.Sprint(n-4))},
		{"nbf 5 s ahead (leeway 5 s)", k.good(t, "ed", "nbf", fmt.Sprint(n+5))},
		{"iat 5 s ahead (leeway 5 s)", k.good(t, "ed", "iat", fmt.Sprint(n+5))},
		{"no sid, scope, auth_time", k.good(t, "ed", "sid", "-", "scope", "-", "auth_time", "-")},
		{"unknown header and claim", sign(t, "EdDSA", k.ed, `{"alg":"EdDSA","kid":"ed","typ":"at+jwt","x-extra":{"a":[1,2.5e3,true,null]}}`, payload("cnf", `{"jkt":"abc"}`))},
		{"whitespace in JSON", sign(t, "EdDSA", k.ed, "{ \"alg\" : \"EdDSA\" ,\n\"kid\":\"ed\",\t\"typ\":\"at+jwt\" }", payload())},
	}
	for _, cacheSize := range []int{-1, 0} {
		v := newTestVerifier(t, k.keySet(), nil, cacheSize, nil)
		for _, r := range rows {
			for i := 0; i < 2; i++ { // cold, then (with cache) warm
				c, err := v.Verify(r.token)
				if err != nil {
					t.Errorf("cache %d: %s: rejected: %v", cacheSize, r.name, err)
					continue
				}
				if c.Subject != "user-1" || c.ID != "jti-1" || c.Issuer != testIss || c.ClientID != "web" {
					t.Errorf("%s: wrong claims %+v", r.name, c)
				}
			}
		}
	}
	// The claims are fully decoded.
	v := newTestVerifier(t, k.keySet(), nil, -1, nil)
	c, err := v.Verify(k.good(t, "ed"))
	if err != nil {
		t.Fatal(err)
	}
	if c.SessionID != "sid-1" || c.Scope != "read write" || c.AuthTime == nil || c.AuthTime.Unix() != n-100 ||
		c.ExpiresAt.Unix() != n+300 || c.IssuedAt.Unix() != n-10 || len(c.Audience) != 1 || c.Audience[0] != testAud {
		t.Fatalf("claims %+v", c)
	}
	if !c.HasScope("read") || !c.HasScope("write") || c.HasScope("rea") || c.HasScope("") {
		t.Fatal("HasScope")
	}
}

// TestSizeLimitBoundary: the largest token at the limit verifies; one byte
// more is refused before parsing.
func TestSizeLimitBoundary(t *testing.T) {
	k := keys(t)
	v := newTestVerifier(t, k.keySet(), nil, -1, nil)
	var atLimit, over string
	for l := 5500; l < 6500 && (atLimit == "" || over == ""); l++ {
		tok := k.good(t, "ed", "pad", `"`+strings.Repeat("x", l)+`"`)
		switch {
		case len(tok) <= MaxTokenSize:
			atLimit = tok
		case over == "":
			over = tok
		}
	}
	if len(atLimit) < MaxTokenSize-2 || over == "" {
		t.Fatalf("could not build boundary tokens: %d %d", len(atLimit), len(over))
	}
	if _, err := v.Verify(atLimit); err != nil {
		t.Fatalf("token of %d bytes rejected: %v", len(atLimit), err)
	}
	if _, err := v.Verify(over); !errors.Is(err, errTooLarge) {
		t.Fatalf("token of %d bytes: %v, want errTooLarge", len(over), err)
	}
}

// es256Sig replaces the signature of an ES256 token with r||s.
func es256Sig(tok string, r, s *big.Int) string {
	i := strings.LastIndexByte(tok, '.')
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return tok[:i+1] + base64.RawURLEncoding.EncodeToString(sig)
}

func es256RS(t *testing.T, tok string) (*big.Int, *big.Int) {
	i := strings.LastIndexByte(tok, '.')
	sig, err := base64.RawURLEncoding.DecodeString(tok[i+1:])
	if err != nil || len(sig) != 64 {
		t.Fatal("bad ES256 signature")
	}
	return new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
}

// flipTrailingBits sets the unused low bits of the last character of seg.
func flipTrailingBits(t *testing.T, seg string) string {
	last := seg[len(seg)-1]
	idx := strings.IndexByte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", last)
	switch len(seg) % 4 {
	case 2:
		idx |= 0x0f
	case 3:
		idx |= 0x03
	default:
		t.Fatalf("segment of length %d has no trailing bits", len(seg))
	}
	return seg[:len(seg)-1] + string("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[idx])
}

func segs(tok string) []string { return strings.Split(tok, ".") }

// TestRejects is the table of refused tokens. Every row is, apart from its
// one defect, a correctly signed token, and expects the specific error of
// the check that must catch it: if that check is removed the token is
// either accepted or refused by another check with another error, and the
// row fails.
func TestRejects(t *testing.T) {
	k := keys(t)
	n := testNow.Unix()
	P := payload()
	edH := header("EdDSA", "ed")
	good := k.good(t, "ed")
	ed := func(h, p string) string { return sign(t, "EdDSA", k.ed, h, p) }
	edClaims := func(set ...string) string { return k.good(t, "ed", set...) }
	// Signs h.p with Ed25519 whatever the alg header says.
	edRawSig := func(h string) string {
		sig, _ := jwt.SigningMethodEdDSA.Sign(enc(h)+"."+enc(P), k.ed)
		return enc(h) + "." + enc(P) + "." + base64.RawURLEncoding.EncodeToString(sig)
	}
	unsigned := func(h string) string { return enc(h) + "." + enc(P) + "." }

	// Public key bytes an attacker could use as an HMAC secret.
	hmacForms := func(pub crypto.PublicKey, jwk string) map[string][]byte {
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		return map[string][]byte{
			"PEM": pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}),
			"DER": der,
			"JWK": []byte(jwk),
		}
	}

	esTok := k.good(t, "es")
	r, s := es256RS(t, esTok)
	curveN := elliptic.P256().Params().N
	allOnes := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))

	// A token whose payload segment has trailing bits (length not 0 mod 4).
	var padTok string
	for i := 0; ; i++ {
		tok := k.good(t, "ed", "x", `"`+strings.Repeat("y", i)+`"`)
		if len(segs(tok)[1])%4 >= 2 {
			padTok = tok
			break
		}
	}
	// A token containing '-' or '_' somewhere, to swap for '+' or '/'.
	var stdTok string
	for i := 0; stdTok == ""; i++ {
		tok := k.good(t, "ed", "jti", fmt.Sprintf(`"jti-%d"`, i))
		if j := strings.IndexAny(tok, "-_"); j >= 0 {
			c := map[byte]string{'-': "+", '_': "/"}[tok[j]]
			stdTok = tok[:j] + c + tok[j+1:]
		}
	}

	type row struct {
		name  string
		token string
		want  error
	}
	rows := []row{
		// Size and structure.
		{"1 MB token, correctly signed", k.good(t, "ed", "pad", `"`+strings.Repeat("A", 1<<20)+`"`), errTooLarge},
		{"empty", "", errEmpty},
		{"two segments", enc(edH) + "." + enc(P), errSegments},
		{"four segments", good + ".x", errSegments},
		{"JWE-like five segments", "a.b.c.d.e", errSegments},
		{"empty header segment", "." + segs(good)[1] + "." + segs(good)[2], errSegments},
		{"empty payload segment", segs(good)[0] + ".." + segs(good)[2], errSegments},
		{"signature stripped", segs(good)[0] + "." + segs(good)[1] + ".", errNoSignature},
		{"signature of another key", sign(t, "EdDSA", k.edOther, edH, P), errSignature},
		{"payload swapped under a signature", segs(good)[0] + "." + enc(payload("sub", `"admin"`)) + "." + segs(good)[2], errSignature},
		{"header swapped under a signature", enc(`{"alg":"EdDSA","kid":"ed","typ":"at+jwt","z":1}`) + "." + segs(good)[1] + "." + segs(good)[2], errSignature},

		// alg none and friends.
		{"alg none, no signature", unsigned(`{"alg":"none","kid":"ed","typ":"at+jwt"}`), errNoSignature},
		{"alg none, no kid, no signature", unsigned(`{"alg":"none","typ":"at+jwt"}`), errNoSignature},
		{"alg none, with signature", edRawSig(`{"alg":"none","kid":"ed","typ":"at+jwt"}`), errAlgMismatch},
		{"alg None, with signature", edRawSig(`{"alg":"None","kid":"ed","typ":"at+jwt"}`), errAlgMismatch},
		{"alg NONE, with signature", edRawSig(`{"alg":"NONE","kid":"ed","typ":"at+jwt"}`), errAlgMismatch},
		{"alg nOnE, with signature", edRawSig(`{"alg":"nOnE","kid":"ed","typ":"at+jwt"}`), errAlgMismatch},
		{"alg none, no kid, with signature", edRawSig(`{"alg":"none","typ":"at+jwt"}`), errNoKid},
		{"alg missing", edRawSig(`{"kid":"ed","typ":"at+jwt"}`), errNoAlg},
		{"alg empty", edRawSig(`{"alg":"","kid":"ed","typ":"at+jwt"}`), errNoAlg},
		{"alg eddsa (case)", edRawSig(`{"alg":"eddsa","kid":"ed","typ":"at+jwt"}`), errAlgMismatch},
		{"alg Ed25519 (other name)", edRawSig(`{"alg":"Ed25519","kid":"ed","typ":"at+jwt"}`), errAlgMismatch},
		{"alg not a string", edRawSig(`{"alg":["EdDSA"],"kid":"ed","typ":"at+jwt"}`), errHeaderJSON},

		// Algorithm substitution on the RSA key.
		{"RS256 key, header RS384", sign(t, "RS384", k.rs, header("RS384", "rs"), P), errAlgMismatch},
		{"RS256 key, header PS256", sign(t, "PS256", k.rs, header("PS256", "rs"), P), errAlgMismatch},
		{"RS256 key, header RS512", sign(t, "RS512", k.rs, header("RS512", "rs"), P), errAlgMismatch},
		{"ES256 key, header ES384", sign(t, "ES256", k.es, header("ES384", "es"), P), errAlgMismatch},
		{"EdDSA key, header ES256", sign(t, "EdDSA", k.ed, header("ES256", "ed"), P), errAlgMismatch},

		// Keys from the token are never used.
		{"embedded jwk", ed(`{"alg":"EdDSA","kid":"ed","typ":"at+jwt","jwk":{"kty":"OKP","crv":"Ed25519","x":"AAAA"}}`, P), errKeyHeader},
		{"jku", ed(`{"alg":"EdDSA","kid":"ed","typ":"at+jwt","jku":"https://evil.example/jwks"}`, P), errKeyHeader},
		{"x5u", ed(`{"alg":"EdDSA","kid":"ed","typ":"at+jwt","x5u":"https://evil.example/cert"}`, P), errKeyHeader},
		{"x5c", ed(`{"alg":"EdDSA","kid":"ed","typ":"at+jwt","x5c":["MIIB"]}`, P), errKeyHeader},
		{"JKU (case variant)", ed(`{"alg":"EdDSA","kid":"ed","typ":"at+jwt","JKU":"https://evil.example/jwks"}`, P), errHeaderCase},
		{"crit", ed(`{"alg":"EdDSA","kid":"ed","typ":"at+jwt","crit":["exp"],"exp":1}`, P), errCrit},
		{"crit empty", ed(`{"alg":"EdDSA","kid":"ed","typ":"at+jwt","crit":[]}`, P), errCrit},
		{"Crit (case variant)", ed(`{"alg":"EdDSA","kid":"ed","typ":"at+jwt","Crit":["b64"]}`, P), errHeaderCase},
		{"Alg (case variant) beside alg", ed(`{"alg":"EdDSA","kid":"ed","typ":"at+jwt","Alg":"none"}`, P), errDupHeader},

		// kid.
		{"kid missing", ed(`{"alg":"EdDSA","typ":"at+jwt"}`, P), errNoKid},
		{"kid empty", ed(`{"alg":"EdDSA","kid":"","typ":"at+jwt"}`, P), errNoKid},
		{"kid unknown", ed(header("EdDSA", "nope"), P), errUnknownKid},
		{"kid path traversal", ed(header("EdDSA", "../../etc/passwd"), P), errUnknownKid},
		{"kid SQL injection", ed(header("EdDSA", "' OR '1'='1"), P), errUnknownKid},
		{"kid of a removed key, correctly signed", sign(t, "EdDSA", k.edOther, header("EdDSA", "old"), P), errUnknownKid},
		{"kid escaped", ed(`{"alg":"EdDSA","kid":"e\u0064","typ":"at+jwt"}`, P), errHeaderJSON},
		{"kid a number", ed(`{"alg":"EdDSA","kid":7,"typ":"at+jwt"}`, P), errHeaderJSON},

		// typ.
		{"typ missing", ed(`{"alg":"EdDSA","kid":"ed"}`, P), errNoTyp},
		{"typ JWT", ed(`{"alg":"EdDSA","kid":"ed","typ":"JWT"}`, P), errType},
		{"typ at+jwt with trailing space", ed(`{"alg":"EdDSA","kid":"ed","typ":"at+jwt "}`, P), errType},
		{"typ refresh+jwt", ed(`{"alg":"EdDSA","kid":"ed","typ":"refresh+jwt"}`, P), errType},
		{"typ at+jwt2", ed(`{"alg":"EdDSA","kid":"ed","typ":"at+jwt2"}`, P), errType},
		{"typ application/jwt", ed(`{"alg":"EdDSA","kid":"ed","typ":"application/jwt"}`, P), errType},
		{"typ Cyrillic a", ed(`{"alg":"EdDSA","kid":"ed","typ":"аt+jwt"}`, P), errType},
		{"typ empty", ed(`{"alg":"EdDSA","kid":"ed","typ":""}`, P), errType},
		{"typ escaped", ed(`{"alg":"EdDSA","kid":"ed","typ":"at\u002bjwt"}`, P), errHeaderJSON},

		// Strict JSON.
		{"duplicate sub", ed(edH, `{"sub":"user-1",`+P[1:len(P)-1]+`,"sub":"admin"}`), errDupClaim},
		{"duplicate exp", ed(edH, `{"exp":1,`+P[1:]), errDupClaim},
		{"sub and SUB", ed(edH, P[:len(P)-1]+`,"SUB":"admin"}`), errDupClaim},
		{"Sub alone (case variant)", ed(edH, payload("sub", "-", "Sub", `"admin"`)), errClaimCase},
		{"EXP alone (case variant)", ed(edH, payload("exp", "-", "EXP", fmt.Sprint(n+300))), errClaimCase},
		{"escaped claim name", ed(edH, P[:len(P)-1]+`,"s\u0075b":"admin"}`), errClaimsJSON},
		{"duplicate alg header", ed(`{"alg":"none","alg":"EdDSA","kid":"ed","typ":"at+jwt"}`, P), errDupHeader},
		{"duplicate kid header", ed(`{"alg":"EdDSA","kid":"nope","kid":"ed","typ":"at+jwt"}`, P), errDupHeader},
		{"duplicate typ header", ed(`{"alg":"EdDSA","kid":"ed","typ":"JWT","typ":"at+jwt"}`, P), errDupHeader},
		{"duplicate in nested claim object", ed(edH, payload("cnf", `{"jkt":"a","jkt":"b"}`)), errDupClaim},
		{"duplicate by Unicode folding (Kelvin sign)", ed(edH, payload("kid", `"a"`, "\u212aid", `"b"`)), errDupClaim},
		{"duplicate by case, other order", ed(edH, payload("Xy", `1`, "xY", `2`)), errDupClaim},
		{"header trailing comma", ed(`{"alg":"EdDSA","kid":"ed","typ":"at+jwt",}`, P), errHeaderJSON},
		{"header not an object", ed(`["EdDSA"]`, P), errHeaderJSON},
		{"header trailing data", ed(edH+`{}`, P), errHeaderJSON},
		{"claims trailing data", ed(edH, P+` 1`), errClaimsJSON},
		{"claims invalid UTF-8", ed(edH, payload("name", "\"\xff\xfe\"")), errClaimsJSON},
		{"claims nested too deep", ed(edH, payload("deep", strings.Repeat("[", 40)+strings.Repeat("]", 40))), errClaimsJSON},
		{"claims objects nested too deep", ed(edH, payload("deep", strings.Repeat(`{"a":`, 40)+"1"+strings.Repeat("}", 40))), errClaimsJSON},
		{"claims bad number", ed(edH, payload("n", "01")), errClaimsJSON},
		{"exp as string", ed(edH, payload("exp", fmt.Sprintf(`"%d"`, n+300))), errClaimType},
		{"iat as string", ed(edH, payload("iat", fmt.Sprintf(`"%d"`, n))), errClaimType},
		{"nbf as bool", ed(edH, payload("nbf", "true")), errClaimType},
		{"sub as number", ed(edH, payload("sub", "1")), errClaimType},
		{"sub null", ed(edH, payload("sub", "null")), errClaimType},
		{"aud as number", ed(edH, payload("aud", "1")), errClaimType},
		{"aud array with a number", ed(edH, payload("aud", `["`+testAud+`",1]`)), errClaimType},

		// Canonical base64url.
		{"padding on header", segs(good)[0] + "=." + segs(good)[1] + "." + segs(good)[2], errChars},
		{"padding on signature", good + "==", errChars},
		{"standard alphabet", stdTok, errChars},
		{"newline inside payload", segs(good)[0] + "." + segs(good)[1][:10] + "\n" + segs(good)[1][10:] + "." + segs(good)[2], errChars},
		{"leading space", " " + good, errChars},
		{"trailing bits in signature", segs(good)[0] + "." + segs(good)[1] + "." + flipTrailingBits(t, segs(good)[2]), errBase64},
		{"trailing bits in payload", segs(padTok)[0] + "." + flipTrailingBits(t, segs(padTok)[1]) + "." + segs(padTok)[2], errBase64},
		{"signature length 1 mod 4", good + "AAA", errBase64},

		// Time.
		{"expired", edClaims("exp", fmt.Sprint(n-3600)), errExpired},
		{"expired exactly at leeway", edClaims("exp", fmt.Sprint(n-5)), errExpired},
		{"nbf in the future", edClaims("nbf", fmt.Sprint(n+6)), errNotBefore},
		{"iat in the future beyond leeway", edClaims("iat", fmt.Sprint(n+6)), errIssuedLater},

		// Issuer and audience.
		{"wrong iss", edClaims("iss", `"https://evil.example.com"`), errIssuer},
		{"iss with trailing slash", edClaims("iss", `"`+testIss+`/"`), errIssuer},
		{"iss in upper case", edClaims("iss", `"`+strings.ToUpper(testIss)+`"`), errIssuer},
		{"wrong aud", edClaims("aud", `"https://other.example.com"`), errAudience},
		{"aud array without ours", edClaims("aud", `["a","b"]`), errAudience},
		{"aud array with empty string", edClaims("aud", `[""]`), errMissingAud},

		// Required claims.
		{"missing exp", edClaims("exp", "-"), errMissingExp},
		{"missing iat", edClaims("iat", "-"), errMissingIat},
		{"missing iss", edClaims("iss", "-"), errMissingIss},
		{"missing aud", edClaims("aud", "-"), errMissingAud},
		{"empty aud", edClaims("aud", `""`), errMissingAud},
		{"empty aud array", edClaims("aud", `[ ]`), errMissingAud},
		{"missing sub", edClaims("sub", "-"), errMissingSub},
		{"empty sub", edClaims("sub", `""`), errMissingSub},
		{"missing jti", edClaims("jti", "-"), errMissingJti},
		{"empty jti", edClaims("jti", `""`), errMissingJti},
		{"missing client_id", edClaims("client_id", "-"), errMissingCID},

		// ES256 signature values.
		{"ES256 signature all zeros", es256Sig(esTok, big.NewInt(0), big.NewInt(0)), errSignature},
		{"ES256 r = 0", es256Sig(esTok, big.NewInt(0), s), errSignature},
		{"ES256 s = 0", es256Sig(esTok, r, big.NewInt(0)), errSignature},
		{"ES256 r = n", es256Sig(esTok, curveN, s), errSignature},
		{"ES256 s = n", es256Sig(esTok, r, curveN), errSignature},
		{"ES256 r = 2^256-1", es256Sig(esTok, allOnes, s), errSignature},
		{"ES256 s = 2^256-1", es256Sig(esTok, r, allOnes), errSignature},
		{"ES256 r + n truncated", es256Sig(esTok, new(big.Int).Mod(new(big.Int).Add(r, curveN), new(big.Int).Lsh(big.NewInt(1), 256)), s), errSignature},
		{"ES256 signature 63 bytes", esTok[:strings.LastIndexByte(esTok, '.')+1] + base64.RawURLEncoding.EncodeToString(make([]byte, 63)), errSignature},
		{"ES256 DER signature", func() string {
			h, p := segs(esTok)[0], segs(esTok)[1]
			der, err := k.es.Sign(rand.Reader, sha256Sum(h+"."+p), crypto.SHA256)
			if err != nil {
				t.Fatal(err)
			}
			return h + "." + p + "." + base64.RawURLEncoding.EncodeToString(der)
		}(), errSignature},

		// Misconfigured keys are unusable whatever the token says.
		{"HMAC key in the set", sign(t, "HS256", []byte("shared-secret-shared-secret-0123"), header("HS256", "hs"), P), errKeyUnusable},
		{"EdDSA alg bound to an RSA key", sign(t, "RS256", k.rs, header("EdDSA", "mixed"), P), errKeyUnusable},
	}
	// HS256 signed with the public key, in every usual encoding, for every
	// kind of key: refused because alg is not the key's algorithm.
	edX := base64.RawURLEncoding.EncodeToString([]byte(k.ed.Public().(ed25519.PublicKey)))
	for kid, f := range map[string]map[string][]byte{
		"ed": hmacForms(k.ed.Public(), `{"kty":"OKP","crv":"Ed25519","x":"`+edX+`"}`),
		"es": hmacForms(k.es.Public(), `{"kty":"EC","crv":"P-256","x":"`+base64.RawURLEncoding.EncodeToString(k.es.X.Bytes())+`","y":"`+base64.RawURLEncoding.EncodeToString(k.es.Y.Bytes())+`"}`),
		"rs": hmacForms(k.rs.Public(), `{"kty":"RSA","n":"`+base64.RawURLEncoding.EncodeToString(k.rs.N.Bytes())+`","e":"AQAB"}`),
	} {
		for form, secret := range f {
			rows = append(rows, row{"HS256 with " + kid + " public key as " + form, sign(t, "HS256", secret, header("HS256", kid), P), errAlgMismatch})
		}
	}

	ks := k.keySet()
	ks["hs"] = Key{Algorithm: "HS256", Public: []byte("shared-secret-shared-secret-0123")}
	ks["mixed"] = Key{Algorithm: "EdDSA", Public: k.rs.Public()}
	for _, cacheSize := range []int{-1, 0} {
		counting := &countingKeys{keys: ks}
		v := newTestVerifier(t, counting, nil, cacheSize, nil)
		// As after a good EdDSA token: rows with its header take the
		// remembered header, the others are checked in full.
		v.lastHeader.Store(&headerInfo{seg: enc(edH), alg: "EdDSA", kid: "ed"})
		for _, r := range rows {
			for i := 0; i < 2; i++ { // a refused token is never cached
				c, err := v.Verify(r.token)
				if err == nil {
					t.Errorf("cache %d: %s: accepted (claims %+v)", cacheSize, r.name, c)
					break
				}
				if c != nil {
					t.Errorf("%s: claims returned with an error", r.name)
				}
				if !errors.Is(err, r.want) {
					t.Errorf("cache %d: %s: got %q, want %q", cacheSize, r.name, err, r.want)
					break
				}
				var ve *Error
				if !errors.As(err, &ve) || !errors.Is(err, ve.Kind()) {
					t.Errorf("%s: not an *Error matching its kind", r.name)
				}
				if len(r.token) > 20 && strings.Contains(err.Error(), r.token[:20]) {
					t.Errorf("%s: error echoes the token", r.name)
				}
			}
		}
		if v.cache != nil && v.cache.len() != 0 {
			t.Errorf("refused tokens were cached: %d", v.cache.len())
		}
	}

	// The size check comes before any parsing: the key set is not consulted.
	counting := &countingKeys{keys: ks}
	v := newTestVerifier(t, counting, nil, 0, nil)
	if _, err := v.Verify(rows[0].token); !errors.Is(err, errTooLarge) || counting.calls.Load() != 0 {
		t.Fatalf("1 MB token: %v, %d key lookups", err, counting.calls.Load())
	}
}

// TestSentinels checks each internal error matches its documented sentinel.
func TestSentinels(t *testing.T) {
	for err, kind := range map[*Error]error{
		errTooLarge: ErrMalformed, errChars: ErrMalformed, errDupClaim: ErrMalformed,
		errSignature: ErrSignature, errNoSignature: ErrSignature, errExpired: ErrExpired,
		errNotBefore: ErrNotYetValid, errIssuedLater: ErrNotYetValid, errIssuer: ErrIssuer,
		errAudience: ErrAudience, errType: ErrType, errNoTyp: ErrType, errAlgMismatch: ErrAlgorithm,
		errUnknownKid: ErrUnknownKey, errNoKid: ErrUnknownKey, errRevoked: ErrRevoked,
		errCrit: ErrHeader, errKeyHeader: ErrHeader, errMissingSub: ErrClaims,
	} {
		if !errors.Is(err, kind) {
			t.Errorf("%v does not match %v", err, kind)
		}
		if headerSafe(err.Description()) != err.Description() {
			t.Errorf("%q is not safe in a WWW-Authenticate header", err.Description())
		}
	}
}

// TestSignatureAlgorithms checks the signature layer on every algorithm a
// key may be bound to: a token signed with the key's algorithm verifies,
// and a real signature by the same key under another algorithm of its
// family (another hash, PKCS #1 v1.5 for PSS and back) does not.
func TestSignatureAlgorithms(t *testing.T) {
	k := keys(t)
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p521, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	privs := map[string]crypto.Signer{
		"EdDSA": k.ed, "ES256": k.es, "ES384": p384, "ES512": p521,
		"RS256": k.rs, "RS384": k.rs, "RS512": k.rs, "PS256": k.rs, "PS384": k.rs, "PS512": k.rs,
	}
	others := map[string][]string{
		"RS256": {"RS384", "RS512", "PS256"}, "RS384": {"RS256", "PS384"}, "RS512": {"RS256", "PS512"},
		"PS256": {"PS384", "RS256"}, "PS384": {"PS256", "RS384"}, "PS512": {"PS256", "RS512"},
	}
	for _, alg := range supported {
		priv := privs[alg]
		ks := StaticKeys{"k": {Algorithm: alg, Public: priv.Public()}}
		v := newTestVerifier(t, ks, nil, -1, nil)
		tok := sign(t, alg, priv, header(alg, "k"), payload())
		if _, err := v.Verify(tok); err != nil {
			t.Errorf("%s: %v", alg, err)
		}
		for _, other := range others[alg] {
			// The same header and claims, signed by the same key with
			// another algorithm.
			h, p := enc(header(alg, "k")), enc(payload())
			forged := h + "." + p + "." + segs(signRaw(t, other, priv, h, p))[2]
			if _, err := v.Verify(forged); !errors.Is(err, errSignature) {
				t.Errorf("%s key, %s signature: %v, want errSignature", alg, other, err)
			}
		}
	}
}

func TestCanonical(t *testing.T) {
	for seg, want := range map[string]bool{
		"": true, "QQ": true, "QR": false, "QUE": true, "QUF": false, "QUFB": true, "QUFBQ": false, "_w": true, "_-": false,
	} {
		if got := canonical(seg); got != want {
			t.Errorf("canonical(%q) = %v, want %v", seg, got, want)
		}
		if want && seg != "" {
			if _, err := base64.RawURLEncoding.Strict().DecodeString(seg); err != nil {
				t.Errorf("%q should decode: %v", seg, err)
			}
		}
	}
}

func TestUsable(t *testing.T) {
	k := keys(t)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	for _, c := range []struct {
		key  Key
		want bool
	}{
		{Key{"EdDSA", k.ed.Public()}, true},
		{Key{"ES256", k.es.Public()}, true},
		{Key{"RS256", k.rs.Public()}, true},
		{Key{"PS256", k.rs.Public()}, true},
		{Key{"ES256", &p384.PublicKey}, false},
		{Key{"ES384", &p384.PublicKey}, true},
		{Key{"ES384", k.es.Public()}, false},
		{Key{"EdDSA", k.es.Public()}, false},
		{Key{"EdDSA", []byte(k.ed.Public().(ed25519.PublicKey))}, false},
		{Key{"RS256", k.ed.Public()}, false},
		{Key{"HS256", []byte("secret")}, false},
		{Key{"none", nil}, false},
		{Key{"", k.ed.Public()}, false},
	} {
		if got := usable(c.key); got != c.want {
			t.Errorf("usable(%s, %T) = %v, want %v", c.key.Algorithm, c.key.Public, got, c.want)
		}
	}
}

func sha256Sum(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}
