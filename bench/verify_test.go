package bench

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	josev4 "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
	"github.com/golang-jwt/jwt/v5"
	"github.com/lestrrat-go/jwx/v3/jwa"
	jwxjwt "github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/latchauth/latch/verifier"
)

// verifyFunc verifies one token and returns its subject.
type verifyFunc func(token string) (sub string, err error)

// verifyImpl is one way of verifying a Latch access token.
type verifyImpl struct {
	name string
	// sigOnly is set for the bare primitive, which checks the signature
	// and nothing else.
	sigOnly bool
	setup   func(tb testing.TB, f *fixture) verifyFunc
}

// verifyImpls are the implementations BenchmarkVerify compares, in order.
var verifyImpls = []verifyImpl{
	{name: "raw", sigOnly: true, setup: rawVerifier},
	{name: "latch-cold", setup: func(tb testing.TB, f *fixture) verifyFunc { return latchVerifier(tb, f, -1) }},
	{name: "latch-warm", setup: func(tb testing.TB, f *fixture) verifyFunc { return latchVerifier(tb, f, 0) }},
	{name: "golang-jwt", setup: golangJWTVerifier},
	{name: "jwx", setup: jwxVerifier},
	{name: "go-jose", setup: goJoseVerifier},
}

// BenchmarkVerify verifies the same access token of each algorithm with
// each implementation. Before timing, each implementation must accept the
// token and reject every bad one, so that none benchmarks a no-op.
func BenchmarkVerify(b *testing.B) {
	for _, alg := range algorithms {
		b.Run(alg, func(b *testing.B) {
			f := fixtureFor(b, alg)
			for _, impl := range verifyImpls {
				b.Run(impl.name, func(b *testing.B) {
					verify := impl.setup(b, f)
					// For latch-warm this also puts the token in the
					// cache, so every timed call is a hit.
					checkVerifier(b, f, impl, verify)
					measure(b, func() error {
						_, err := verify(f.token)
						return err
					})
				})
			}
		})
	}
}

// TestVerifiersValidate runs the checks of BenchmarkVerify without timing.
func TestVerifiersValidate(t *testing.T) {
	for _, alg := range algorithms {
		f := fixtureFor(t, alg)
		for _, impl := range verifyImpls {
			t.Run(alg+"/"+impl.name, func(t *testing.T) {
				checkVerifier(t, f, impl, impl.setup(t, f))
			})
		}
	}
}

// checkVerifier fails tb unless verify accepts f's token with the right
// subject and rejects each of f's bad tokens (for a bare signature check,
// the ones with a bad signature).
func checkVerifier(tb testing.TB, f *fixture, impl verifyImpl, verify verifyFunc) {
	tb.Helper()
	sub, err := verify(f.token)
	if err != nil {
		tb.Fatalf("%s %s rejects a valid token: %v", f.alg, impl.name, err)
	}
	if !impl.sigOnly && sub != f.claims.Subject {
		tb.Fatalf("%s %s: subject %q, want %q", f.alg, impl.name, sub, f.claims.Subject)
	}
	for _, bad := range f.bad {
		if impl.sigOnly && !bad.sigOnly {
			continue
		}
		if _, err := verify(bad.token); err == nil {
			tb.Fatalf("%s %s accepts a token with a %s", f.alg, impl.name, bad.what)
		}
	}
}

var errBadSignature = errors.New("bad signature")

// derSignature appends the ASN.1 DER of the ECDSA signature (r, s), given
// as big-endian integers of one curve size, to b: a SEQUENCE of two
// minimal INTEGERs.
func derSignature(b, r, s []byte) []byte {
	integer := func(b, v []byte) []byte {
		for len(v) > 1 && v[0] == 0 {
			v = v[1:]
		}
		pad := v[0]&0x80 != 0
		n := len(v)
		if pad {
			n++
		}
		b = append(b, 0x02, byte(n))
		if pad {
			b = append(b, 0)
		}
		return append(b, v...)
	}
	var body [70]byte
	seq := integer(integer(body[:0], r), s)
	b = append(b, 0x30, byte(len(seq)))
	return append(b, seq...)
}

// rawVerifier is the physical floor: split off the signature, decode it
// and run the bare primitive (with SHA-256 for ECDSA and RSA) over the
// signing input. No header, no claims, no key lookup.
func rawVerifier(tb testing.TB, f *fixture) verifyFunc {
	var check func(input, sig []byte) bool
	switch pub := f.pub.(type) {
	case ed25519.PublicKey:
		check = func(input, sig []byte) bool { return ed25519.Verify(pub, input, sig) }
	case *ecdsa.PublicKey:
		// ecdsa.Verify with big.Ints re-encodes r and s as ASN.1 and
		// calls VerifyASN1; the floor is VerifyASN1 on a DER built
		// straight from the JWS r||s, into a stack buffer.
		check = func(input, sig []byte) bool {
			if len(sig) != 64 {
				return false
			}
			h := sha256.Sum256(input)
			var buf [72]byte
			return ecdsa.VerifyASN1(pub, h[:], derSignature(buf[:0], sig[:32], sig[32:]))
		}
	case *rsa.PublicKey:
		check = func(input, sig []byte) bool {
			h := sha256.Sum256(input)
			return rsa.VerifyPKCS1v15(pub, crypto.SHA256, h[:], sig) == nil
		}
	default:
		tb.Fatalf("raw: unexpected key type %T", pub)
	}
	return func(token string) (string, error) {
		dot := strings.LastIndexByte(token, '.')
		if dot < 0 {
			return "", errBadSignature
		}
		sig, err := base64.RawURLEncoding.DecodeString(token[dot+1:])
		if err != nil {
			return "", err
		}
		if !check([]byte(token[:dot]), sig) {
			return "", errBadSignature
		}
		return "", nil
	}
}

// latchVerifier is Latch's verifier with the ring's key and a revocation
// set of revocationEntries entries: cacheSize -1 disables the cache of
// verified tokens (every call is a full verification), 0 keeps the
// default cache (every timed call is a hit).
func latchVerifier(tb testing.TB, f *fixture, cacheSize int) verifyFunc {
	v, err := verifier.New(verifier.Config{
		Issuer:      issuer,
		Audience:    audience,
		Keys:        verifier.StaticKeys{f.kid: {Algorithm: f.alg, Public: f.pub}},
		Revocations: revocationSet(),
		Leeway:      leeway,
		CacheSize:   cacheSize,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return func(token string) (string, error) {
		c, err := v.Verify(token)
		if err != nil {
			return "", err
		}
		return c.Subject, nil
	}
}

// golangJWTVerifier is github.com/golang-jwt/jwt/v5 with one allowed
// algorithm, issuer, audience and a required exp, into Latch's claims.
func golangJWTVerifier(tb testing.TB, f *fixture) verifyFunc {
	p := jwt.NewParser(
		jwt.WithValidMethods([]string{f.alg}),
		jwt.WithIssuer(issuer),
		jwt.WithAudience(audience),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(leeway),
	)
	pub := f.pub
	keyFunc := func(*jwt.Token) (any, error) { return pub, nil }
	return func(token string) (string, error) {
		var c verifier.Claims
		if _, err := p.ParseWithClaims(token, &c, keyFunc); err != nil {
			return "", err
		}
		return c.Subject, nil
	}
}

// jwxVerifier is github.com/lestrrat-go/jwx/v3: jwt.Parse with the key
// bound to the algorithm, validating issuer, audience and a required exp.
func jwxVerifier(tb testing.TB, f *fixture) verifyFunc {
	var alg jwa.SignatureAlgorithm
	switch f.alg {
	case "EdDSA":
		alg = jwa.EdDSA()
	case "ES256":
		alg = jwa.ES256()
	case "RS256":
		alg = jwa.RS256()
	default:
		tb.Fatalf("jwx: unexpected algorithm %s", f.alg)
	}
	opts := []jwxjwt.ParseOption{
		jwxjwt.WithKey(alg, f.pub),
		jwxjwt.WithValidate(true),
		jwxjwt.WithIssuer(issuer),
		jwxjwt.WithAudience(audience),
		jwxjwt.WithRequiredClaim("exp"),
		jwxjwt.WithAcceptableSkew(leeway),
	}
	return func(token string) (string, error) {
		t, err := jwxjwt.Parse([]byte(token), opts...)
		if err != nil {
			return "", err
		}
		sub, ok := t.Subject()
		if !ok {
			return "", errors.New("jwx: no subject")
		}
		return sub, nil
	}
}

// joseClaims are the private claims of a Latch access token, beside
// go-jose's registered ones.
type joseClaims struct {
	SessionID string               `json:"sid,omitempty"`
	ClientID  string               `json:"client_id"`
	Scope     string               `json:"scope,omitempty"`
	AuthTime  *josejwt.NumericDate `json:"auth_time,omitempty"`
}

// goJoseVerifier is github.com/go-jose/go-jose/v4: jwt.ParseSigned with
// the one allowed algorithm, Claims with the key, and ValidateWithLeeway
// of issuer, audience and time. go-jose does not require exp, so its
// presence is checked here, as the other libraries are asked to.
func goJoseVerifier(tb testing.TB, f *fixture) verifyFunc {
	algs := []josev4.SignatureAlgorithm{josev4.SignatureAlgorithm(f.alg)}
	pub := f.pub
	return func(token string) (string, error) {
		t, err := josejwt.ParseSigned(token, algs)
		if err != nil {
			return "", err
		}
		var reg josejwt.Claims
		var priv joseClaims
		if err := t.Claims(pub, &reg, &priv); err != nil {
			return "", err
		}
		if err := reg.ValidateWithLeeway(josejwt.Expected{
			Issuer:      issuer,
			AnyAudience: josejwt.Audience{audience},
			Time:        time.Now(),
		}, leeway); err != nil {
			return "", err
		}
		if reg.Expiry == nil {
			return "", fmt.Errorf("go-jose: no exp")
		}
		return reg.Subject, nil
	}
}
