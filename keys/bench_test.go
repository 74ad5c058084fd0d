package keys

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"strings"
	"testing"
	"time"
)

var benchAlgs = []struct{ alg, raw string }{
	{EdDSA, "Ed25519"},
	{ES256, "ECDSAP256"},
	{RS256, "RSA2048"},
}

// benchRing returns a ring of alg on an in-memory store, with the real
// clock, and the signing input length of a token of claimsAt.
func benchRing(b *testing.B, alg string) (*Ring, int) {
	b.Helper()
	kek, err := GenerateKEK()
	if err != nil {
		b.Fatal(err)
	}
	r, err := NewRing(context.Background(), &memStore{}, kek, Config{Algorithm: alg}, time.Now)
	if err != nil {
		b.Fatal(err)
	}
	tok, err := r.Sign(claimsAt(time.Now()))
	if err != nil {
		b.Fatal(err)
	}
	return r, strings.LastIndexByte(tok, '.')
}

// BenchmarkSign measures Ring.Sign of realistic access-token claims: the
// issuance cost beside BenchmarkRawSign's bare primitive.
func BenchmarkSign(b *testing.B) {
	for _, a := range benchAlgs {
		b.Run(a.alg, func(b *testing.B) {
			r, _ := benchRing(b, a.alg)
			claims := claimsAt(time.Now())
			b.ReportAllocs()
			for b.Loop() {
				if _, err := r.Sign(claims); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSignIDToken measures signing realistic id_token claims (RS256,
// the id family's algorithm) beside BenchmarkSign/RS256: the same cached
// header path, another typ.
func BenchmarkSignIDToken(b *testing.B) {
	r, _ := benchRing(b, EdDSA)
	s, err := r.IDTokens("")
	if err != nil {
		b.Fatal(err)
	}
	claims := idClaims(time.Now())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Sign(claims); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRawSign measures the bare signature primitive (with its SHA-256
// for ECDSA and RSA; Ed25519 hashes internally) over a message as long as
// the signing input of BenchmarkSign's token.
func BenchmarkRawSign(b *testing.B) {
	for _, a := range benchAlgs {
		b.Run(a.raw, func(b *testing.B) {
			r, n := benchRing(b, a.alg)
			msg := make([]byte, n)
			rand.Read(msg)
			priv := r.snap.Load().active(FamilyAccess, time.Now()).priv
			var sign func() error
			switch p := priv.(type) {
			case ed25519.PrivateKey:
				sign = func() error { ed25519.Sign(p, msg); return nil }
			case *ecdsa.PrivateKey:
				sign = func() error {
					h := sha256.Sum256(msg)
					_, _, err := ecdsa.Sign(rand.Reader, p, h[:])
					return err
				}
			case *rsa.PrivateKey:
				sign = func() error {
					h := sha256.Sum256(msg)
					_, err := rsa.SignPKCS1v15(nil, p, crypto.SHA256, h[:])
					return err
				}
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := sign(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPublicKey measures the verifier's key lookup.
func BenchmarkPublicKey(b *testing.B) {
	r, _ := benchRing(b, EdDSA)
	kid := listFamily(r, FamilyAccess)[0].ID
	b.ReportAllocs()
	for b.Loop() {
		if _, _, ok := r.PublicKey(kid); !ok {
			b.Fatal("no key")
		}
	}
}

// BenchmarkJWKS measures serving the cached JWKS.
func BenchmarkJWKS(b *testing.B) {
	r, _ := benchRing(b, EdDSA)
	b.ReportAllocs()
	for b.Loop() {
		r.JWKS()
	}
}
