package gateway

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"
)

// AssertionTTL is the lifetime of an identity assertion.
const AssertionTTL = 60 * time.Second

// AssertionType is the typ header of identity assertions, so that an
// assertion is never mistaken for an access token (at+jwt) or an ID token.
const AssertionType = "latch-assertion+jwt"

// AssertionSigner signs the identity assertions routes send upstream
// (X-Latch-Assertion) and publishes their verification keys, served at
// /.well-known/jwks.json.
type AssertionSigner interface {
	// Sign returns a compact JWS over the JSON of claims.
	Sign(claims any) (string, error)
	// JWKS returns the JSON Web Key Set of the verification keys.
	JWKS() []byte
}

// Assertion are the claims of an identity assertion: the verified user
// behind a request, for an upstream that has no token code of its own.
// Upstreams check iss (the gateway's public URL), aud (their own origin),
// exp, and the signature against the gateway's JWKS.
type Assertion struct {
	Issuer    string `json:"iss"`
	Audience  string `json:"aud"`
	Subject   string `json:"sub"`
	SessionID string `json:"sid,omitempty"`
	ClientID  string `json:"client_id,omitempty"`
	Scope     string `json:"scope,omitempty"`
	IssuedAt  int64  `json:"iat"`
	Expiry    int64  `json:"exp"`
	ID        string `json:"jti"`
}

// Ed25519Signer is an AssertionSigner with one Ed25519 key (alg EdDSA).
// Gateways that share the seed share the key, so an upstream accepts the
// assertions of every instance.
type Ed25519Signer struct {
	key    ed25519.PrivateKey
	kid    string
	header string
	jwks   []byte
}

// NewEd25519Signer returns a signer whose key is derived from a 32-byte
// seed (the command derives it from the gateway's key-encryption key).
func NewEd25519Signer(seed []byte) (*Ed25519Signer, error) {
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("gateway: an Ed25519 seed is %d bytes, got %d", ed25519.SeedSize, len(seed))
	}
	key := ed25519.NewKeyFromSeed(seed)
	pub := key.Public().(ed25519.PublicKey)
	sum := sha256.Sum256(pub)
	s := &Ed25519Signer{key: key, kid: "gw-" + base64.RawURLEncoding.EncodeToString(sum[:9])}
	h, _ := json.Marshal(map[string]string{"alg": "EdDSA", "kid": s.kid, "typ": AssertionType})
	s.header = base64.RawURLEncoding.EncodeToString(h)
	s.jwks, _ = json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA", "kid": s.kid,
		"x": base64.RawURLEncoding.EncodeToString(pub),
	}}})
	return s, nil
}

// Sign returns the compact JWS of claims.
func (s *Ed25519Signer) Sign(claims any) (string, error) {
	b, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("gateway: assertion claims: %w", err)
	}
	in := s.header + "." + base64.RawURLEncoding.EncodeToString(b)
	return in + "." + base64.RawURLEncoding.EncodeToString(ed25519.Sign(s.key, []byte(in))), nil
}

// JWKS returns the key set with the signer's public key.
func (s *Ed25519Signer) JWKS() []byte { return s.jwks }

// KeyID returns the kid of the signer's key.
func (s *Ed25519Signer) KeyID() string { return s.kid }

// Public returns the signer's public key.
func (s *Ed25519Signer) Public() ed25519.PublicKey { return s.key.Public().(ed25519.PublicKey) }

// newJTI returns a random assertion id.
func newJTI() string {
	var b [16]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
