package verifier

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// golangJWTAccepts verifies tok as golang-jwt would with the checks Verify
// makes (RFC 9068 typ, EdDSA key "ed", issuer, audience, exp, iat,
// leeway) and returns the claims it decodes, or an error.
func golangJWTAccepts(t testing.TB, tok string) (*Claims, error) {
	k := keys(t)
	p := jwt.NewParser(jwt.WithValidMethods([]string{"EdDSA"}), jwt.WithIssuer(testIss), jwt.WithAudience(testAud),
		jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithLeeway(DefaultLeeway),
		jwt.WithTimeFunc(func() time.Time { return testNow }), jwt.WithStrictDecoding())
	var c Claims
	_, err := p.ParseWithClaims(tok, &c, func(tok *jwt.Token) (any, error) {
		if tok.Header["typ"] != "at+jwt" || tok.Header["kid"] != "ed" {
			return nil, fmt.Errorf("header %v", tok.Header)
		}
		return k.ed.Public(), nil
	})
	return &c, err
}

// sameAsGolangJWT fails t if Verify accepts the signed claims pl that
// golang-jwt refuses or decodes to other values. Verify may refuse what
// golang-jwt accepts: it is stricter by design (exponents, negative or
// zero dates, duplicate and case-variant names, wrong JSON types, required
// sub, jti, client_id, lifetime).
func sameAsGolangJWT(t *testing.T, pl string) {
	k := keys(t)
	tok := sign(t, "EdDSA", k.ed, header("EdDSA", "ed"), pl)
	ours, err := newTestVerifier(t, k.keySet(), nil, -1, nil).Verify(tok)
	if err != nil {
		return
	}
	theirs, err := golangJWTAccepts(t, tok)
	if err != nil {
		t.Fatalf("Verify accepts %s, golang-jwt refuses it: %v", pl, err)
	}
	a, _ := json.Marshal(ours)
	b, _ := json.Marshal(theirs)
	if string(a) != string(b) {
		t.Fatalf("claims of %s:\n Verify     %s\n golang-jwt %s", pl, a, b)
	}
}

// TestDifferentialGolangJWT signs random claims, each registered claim in
// one of many valid and invalid forms (escapes, fractions, exponents,
// wrong types, case variants, whitespace), and checks that no token
// Verify accepts is refused or read differently by golang-jwt.
func TestDifferentialGolangJWT(t *testing.T) {
	n := testNow.Unix()
	rng := rand.New(rand.NewPCG(8, 13))
	dates := func(base int64) []string {
		return []string{fmt.Sprint(base), fmt.Sprintf("%d.5", base), fmt.Sprintf("%d.0", base), fmt.Sprintf("%de0", base),
			fmt.Sprintf("%.3e", float64(base)), "-" + fmt.Sprint(base), "0", "-0", "1e300", "9.2e18", fmt.Sprint(base + 4),
			fmt.Sprint(base + 6), fmt.Sprintf("%d.9", n+5), fmt.Sprintf("%d.9", n-5), fmt.Sprint(n + 7), fmt.Sprint(n - 7), fmt.Sprintf(`"%d"`, base), "null",
			"true", "253402300799", "253402300800", "9223372036854775807", "1"}
	}
	strs := func(good string) []string {
		return []string{`"` + good + `"`, `"` + strings.ReplaceAll(good, "/", `\/`) + `"`, `""`, `null`, `1`,
			`["` + good + `"]`, `"\u0000"`, `"\ud800"`, `"` + good + `\u0000"`, `"` + strings.ToUpper(good) + `"`, `{}`}
	}
	forms := map[string][]string{
		"exp": dates(n + 300), "iat": dates(n - 10), "nbf": dates(n - 10), "auth_time": dates(n - 100),
		"iss": strs(testIss), "sub": strs("user-1"), "jti": strs("j"), "client_id": strs("web"), "sid": strs("s"),
		"scope": strs("read"),
		"aud": append(strs(testAud), `[]`, `[""]`, `["x","`+testAud+`"]`, `["`+testAud+`",1]`, `[["`+testAud+`"]]`,
			" [ \"x\" ,\t\""+testAud+"\" ] "),
	}
	names := []string{"exp", "iat", "nbf", "auth_time", "iss", "aud", "sub", "jti", "client_id", "sid", "scope"}
	for i := 0; i < 3000; i++ {
		var set []string
		for _, name := range names {
			if rng.IntN(3) == 0 {
				f := forms[name]
				val := f[rng.IntN(len(f))]
				if rng.IntN(12) == 0 {
					val = "-"
				}
				set = append(set, name, val)
			}
		}
		if rng.IntN(10) == 0 {
			set = append(set, []string{"Sub", "EXP", "ISS", "iss ", "\u212aid", "\u017fub"}[rng.IntN(6)], `"x"`)
		}
		pl := payload(set...)
		if rng.IntN(10) == 0 {
			pl = " \t" + pl + "\r\n"
		}
		sameAsGolangJWT(t, pl)
	}
}

// FuzzDifferentialGolangJWT: whatever claims a key holder signs, a token
// Verify accepts is accepted by golang-jwt with the same claims.
func FuzzDifferentialGolangJWT(f *testing.F) {
	f.Add(payload())
	f.Add(payload("aud", `["x","https://api.example.com"]`, "sub", `"\ud800\u0041"`))
	f.Add(payload("iss", `"https:\/\/auth.example.com"`, "exp", "1800000300.5", "scope", `"a\u00a0b"`))
	f.Fuzz(sameAsGolangJWT)
}
