package bench

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"math/big"
	"strings"
	"testing"

	josev4 "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
	"github.com/golang-jwt/jwt/v5"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jws"
	jwxjwt "github.com/lestrrat-go/jwx/v3/jwt"
)

// signFunc issues one access token.
type signFunc func() (string, error)

// signImpl is one way of issuing a Latch access token.
type signImpl struct {
	name  string
	setup func(tb testing.TB, f *fixture) signFunc
}

// signImpls are the implementations BenchmarkSign compares, in order.
var signImpls = []signImpl{
	{name: "raw", setup: rawSigner},
	{name: "latch", setup: latchSigner},
	{name: "golang-jwt", setup: golangJWTSigner},
	{name: "jwx", setup: jwxSigner},
	{name: "go-jose", setup: goJoseSigner},
}

// BenchmarkSign issues an access token with the claims of the fixture's
// token, with the ring's key, with each implementation. Before timing,
// Latch's verifier must accept what each implementation issued.
func BenchmarkSign(b *testing.B) {
	for _, alg := range algorithms {
		b.Run(alg, func(b *testing.B) {
			f := fixtureFor(b, alg)
			for _, impl := range signImpls {
				b.Run(impl.name, func(b *testing.B) {
					sign := impl.setup(b, f)
					checkSigner(b, f, impl, sign)
					measure(b, func() error {
						_, err := sign()
						return err
					})
				})
			}
		})
	}
}

// TestSignersIssueLatchTokens runs the checks of BenchmarkSign without
// timing.
func TestSignersIssueLatchTokens(t *testing.T) {
	for _, alg := range algorithms {
		f := fixtureFor(t, alg)
		for _, impl := range signImpls {
			t.Run(alg+"/"+impl.name, func(t *testing.T) {
				checkSigner(t, f, impl, impl.setup(t, f))
			})
		}
	}
}

// checkSigner fails tb unless Latch's verifier accepts a token issued by
// sign, with the fixture's claims. An ES256 signature is first put in its
// low-S form: Latch's verifier accepts only that one (and Latch's ring
// emits only that one), while crypto/ecdsa, and so every peer, returns a
// high S about half of the time, which Latch would refuse
// (ErrSignature) as the non-canonical twin of a valid signature.
func checkSigner(tb testing.TB, f *fixture, impl signImpl, sign signFunc) {
	tb.Helper()
	token, err := sign()
	if err != nil {
		tb.Fatalf("%s %s: %v", f.alg, impl.name, err)
	}
	if f.alg == "ES256" {
		token = lowS(tb, token)
	}
	sub, err := latchVerifier(tb, f, -1)(token)
	if err != nil {
		tb.Fatalf("%s %s issued a token Latch rejects: %v", f.alg, impl.name, err)
	}
	if sub != f.claims.Subject {
		tb.Fatalf("%s %s: subject %q, want %q", f.alg, impl.name, sub, f.claims.Subject)
	}
}

// rawSigner is the floor of issuance: the bare primitive (with SHA-256 for
// ECDSA and RSA) over the signing input of the fixture's token, then the
// base64url signature appended. No claims encoding, no header.
func rawSigner(tb testing.TB, f *fixture) signFunc {
	input := f.token[:strings.LastIndexByte(f.token, '.')]
	msg := []byte(input)
	var sign func() ([]byte, error)
	switch priv := f.priv.(type) {
	case ed25519.PrivateKey:
		sign = func() ([]byte, error) { return ed25519.Sign(priv, msg), nil }
	case *ecdsa.PrivateKey:
		sign = func() ([]byte, error) {
			h := sha256.Sum256(msg)
			r, s, err := ecdsa.Sign(rand.Reader, priv, h[:])
			if err != nil {
				return nil, err
			}
			sig := make([]byte, 64)
			r.FillBytes(sig[:32])
			s.FillBytes(sig[32:])
			return sig, nil
		}
	case *rsa.PrivateKey:
		sign = func() ([]byte, error) {
			h := sha256.Sum256(msg)
			return rsa.SignPKCS1v15(nil, priv, crypto.SHA256, h[:])
		}
	default:
		tb.Fatalf("raw: unexpected key type %T", priv)
	}
	return func() (string, error) {
		sig, err := sign()
		if err != nil {
			return "", err
		}
		return input + "." + base64.RawURLEncoding.EncodeToString(sig), nil
	}
}

// latchSigner is keys.Ring.Sign, as auth.Service issues access tokens.
func latchSigner(tb testing.TB, f *fixture) signFunc {
	claims := f.claims
	return func() (string, error) { return f.ring.Sign(claims) }
}

// golangJWTSigner is github.com/golang-jwt/jwt/v5 signing Latch's claims
// with the headers kid and typ at+jwt.
func golangJWTSigner(tb testing.TB, f *fixture) signFunc {
	method := jwt.GetSigningMethod(f.alg)
	if method == nil {
		tb.Fatalf("golang-jwt: no method %s", f.alg)
	}
	claims, priv, kid := f.claims, f.priv, f.kid
	return func() (string, error) {
		t := jwt.NewWithClaims(method, claims)
		t.Header["kid"] = kid
		t.Header["typ"] = "at+jwt"
		return t.SignedString(priv)
	}
}

// jwxSigner is github.com/lestrrat-go/jwx/v3: jwt.Sign of a token built
// with the same claims, with the headers kid and typ at+jwt.
func jwxSigner(tb testing.TB, f *fixture) signFunc {
	c := f.claims
	t, err := jwxjwt.NewBuilder().
		Issuer(c.Issuer).
		Subject(c.Subject).
		Audience([]string(c.Audience)).
		Expiration(c.ExpiresAt.Time).
		IssuedAt(c.IssuedAt.Time).
		JwtID(c.ID).
		Claim("sid", c.SessionID).
		Claim("client_id", c.ClientID).
		Claim("auth_time", c.AuthTime.Unix()).
		Build()
	if err != nil {
		tb.Fatal(err)
	}
	h := jws.NewHeaders()
	if err := h.Set(jws.KeyIDKey, f.kid); err != nil {
		tb.Fatal(err)
	}
	if err := h.Set(jws.TypeKey, "at+jwt"); err != nil {
		tb.Fatal(err)
	}
	alg, ok := jwa.LookupSignatureAlgorithm(f.alg)
	if !ok {
		tb.Fatalf("jwx: no algorithm %s", f.alg)
	}
	key := jwxjwt.WithKey(alg, f.priv, jws.WithProtectedHeaders(h))
	return func() (string, error) {
		b, err := jwxjwt.Sign(t, key)
		return string(b), err
	}
}

// goJoseSigner is github.com/go-jose/go-jose/v4: a signer for the key with
// kid and typ at+jwt, and jwt.Signed(...).Claims(...).Serialize() of
// Latch's claims.
func goJoseSigner(tb testing.TB, f *fixture) signFunc {
	signer, err := josev4.NewSigner(
		josev4.SigningKey{
			Algorithm: josev4.SignatureAlgorithm(f.alg),
			Key:       josev4.JSONWebKey{Key: f.priv, KeyID: f.kid, Algorithm: f.alg},
		},
		(&josev4.SignerOptions{}).WithType("at+jwt"),
	)
	if err != nil {
		tb.Fatal(err)
	}
	claims := f.claims
	return func() (string, error) {
		return josejwt.Signed(signer).Claims(claims).Serialize()
	}
}

// lowS returns the ES256 token with its signature (r, s) replaced by
// (r, n−s) if s > n/2: the same signature in canonical form.
func lowS(tb testing.TB, token string) string {
	i := strings.LastIndexByte(token, '.')
	sig, err := base64.RawURLEncoding.DecodeString(token[i+1:])
	if err != nil || len(sig) != 64 {
		tb.Fatalf("ES256 signature: %v, %d bytes", err, len(sig))
	}
	n := elliptic.P256().Params().N
	if v := new(big.Int).SetBytes(sig[32:]); v.Cmp(new(big.Int).Rsh(n, 1)) > 0 {
		v.Sub(n, v).FillBytes(sig[32:])
	}
	return token[:i+1] + base64.RawURLEncoding.EncodeToString(sig)
}
