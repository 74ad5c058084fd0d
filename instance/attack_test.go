package instance_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"

	"github.com/latchauth/latch/config"
)

// forge rebuilds a token from a header, the genuine claims and a signature.
func forge(header map[string]any, payload, sig string) string {
	h, _ := json.Marshal(header)
	return base64.RawURLEncoding.EncodeToString(h) + "." + payload + "." + sig
}

// signWith signs header+claims with an attacker's key and method.
func signWith(t *testing.T, m jwt.SigningMethod, key any, header map[string]any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, claims)
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return s
}

// TestAttacks sends forged and tampered tokens to a protected endpoint of a
// running server. Every row must be refused with 401 invalid_token (or 400
// for a malformed header); the genuine token keeps working throughout.
func TestAttacks(t *testing.T) {
	for _, alg := range []string{"EdDSA", "ES256", "RS256"} {
		t.Run(alg, func(t *testing.T) { attacks(t, alg) })
	}
}

func attacks(t *testing.T, alg string) {
	h := start(t, "", func(c *config.Config) { c.Tokens.Algorithm = alg })
	h.addUser(adaEmail, adaPass)
	genuine := h.login(adaEmail, adaPass).str("access_token")
	parts := strings.Split(genuine, ".")
	hdr, claims := segment(t, genuine, 0), jwt.MapClaims(segment(t, genuine, 1))
	kid := hdr["kid"].(string)

	// The server's public key, as an attacker would fetch it (the JWKS
	// also holds the id_token key).
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(h.do("GET", "/.well-known/jwks.json", "").raw, &set); err != nil || len(set.Keys) != 2 {
		t.Fatalf("jwks: %v", err)
	}
	keys := set.Key(kid)
	if len(keys) != 1 {
		t.Fatalf("jwks lacks the token's kid %s", kid)
	}
	pub := keys[0].Key
	der, _ := x509.MarshalPKIXPublicKey(pub)
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	jwkJSON, _ := keys[0].MarshalJSON()

	// An attacker's own key, and its public JWK.
	atkPub, atkPriv, _ := ed25519.GenerateKey(rand.Reader)
	atkJWK := jose.JSONWebKey{Key: atkPub, Algorithm: "EdDSA", Use: "sig"}
	atkThumb, _ := atkJWK.Thumbprint(crypto.SHA256)
	atkKid := base64.RawURLEncoding.EncodeToString(atkThumb)
	atkJWK.KeyID = atkKid
	atkJWKMap := map[string]any{}
	b, _ := atkJWK.MarshalJSON()
	json.Unmarshal(b, &atkJWKMap)

	with := func(kv ...any) map[string]any {
		m := map[string]any{}
		for k, v := range hdr {
			m[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(m, kv[i].(string))
			} else {
				m[kv[i].(string)] = kv[i+1]
			}
		}
		return m
	}
	claimsWith := func(kv ...any) jwt.MapClaims {
		m := jwt.MapClaims{}
		for k, v := range claims {
			m[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	lastChar := parts[2][len(parts[2])-1:]
	flip := map[string]string{"A": "B", "B": "C", "Q": "R", "g": "h", "w": "x"}[lastChar]
	if flip == "" {
		flip = "A"
	}
	ecZero := base64.RawURLEncoding.EncodeToString(make([]byte, 64))
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)

	rows := map[string]string{
		"alg none":                        forge(with("alg", "none"), parts[1], ""),
		"alg None":                        forge(with("alg", "None"), parts[1], ""),
		"alg NONE with signature":         forge(with("alg", "NONE"), parts[1], parts[2]),
		"alg nOnE":                        forge(with("alg", "nOnE"), parts[1], ""),
		"signature stripped":              parts[0] + "." + parts[1] + ".",
		"two segments":                    parts[0] + "." + parts[1],
		"signature of zeros":              parts[0] + "." + parts[1] + "." + ecZero,
		"payload swapped":                 parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"admin"}`)) + "." + parts[2],
		"HS256 with public key PEM":       signWith(t, jwt.SigningMethodHS256, pemKey, with(), claims),
		"HS256 with public key DER":       signWith(t, jwt.SigningMethodHS256, der, with(), claims),
		"HS256 with public key JWK":       signWith(t, jwt.SigningMethodHS256, jwkJSON, with(), claims),
		"embedded jwk header":             signWith(t, jwt.SigningMethodEdDSA, atkPriv, with("kid", atkKid, "jwk", atkJWKMap), claims),
		"embedded jwk with server kid":    signWith(t, jwt.SigningMethodEdDSA, atkPriv, with("jwk", atkJWKMap), claims),
		"jku header":                      signWith(t, jwt.SigningMethodEdDSA, atkPriv, with("kid", atkKid, "jku", "http://127.0.0.1:1/jwks.json"), claims),
		"x5u header":                      signWith(t, jwt.SigningMethodEdDSA, atkPriv, with("kid", atkKid, "x5u", "http://127.0.0.1:1/cert.pem"), claims),
		"kid path traversal":              signWith(t, jwt.SigningMethodEdDSA, atkPriv, with("kid", "../../../../dev/null"), claims),
		"kid SQL injection":               signWith(t, jwt.SigningMethodEdDSA, atkPriv, with("kid", "x' UNION SELECT 'key' --"), claims),
		"attacker key, server kid":        signWith(t, jwt.SigningMethodEdDSA, atkPriv, with(), claims),
		"attacker ES256 key, server kid":  signWith(t, jwt.SigningMethodES256, p256, with("alg", "ES256"), claims),
		"typ JWT (attacker signed)":       signWith(t, jwt.SigningMethodEdDSA, atkPriv, with("typ", "JWT"), claims),
		"unknown crit":                    forge(with("crit", []string{"exp"}), parts[1], parts[2]),
		"header padded base64":            parts[0] + "=." + parts[1] + "." + parts[2],
		"payload standard base64":         parts[0] + "." + strings.NewReplacer("-", "+", "_", "/").Replace(parts[1]) + "+/." + parts[2],
		"signature trailing bits changed": parts[0] + "." + parts[1] + "." + parts[2][:len(parts[2])-1] + flip,
		"100 KB token":                    parts[0] + "." + strings.Repeat("A", 100<<10) + "." + parts[2],
		"claims from another issuer":      signWith(t, jwt.SigningMethodEdDSA, atkPriv, with("kid", atkKid), claimsWith("iss", "https://evil.example")),
		"expired (attacker re-signed)":    signWith(t, jwt.SigningMethodEdDSA, atkPriv, with(), claimsWith("exp", time.Now().Add(-time.Hour).Unix())),
	}
	if kid == "" {
		t.Fatal("no kid")
	}
	for name, tok := range rows {
		t.Run(name, func(t *testing.T) {
			r := h.do("GET", "/v1/me", "", bearer(tok)...)
			if r.code == 200 || r.code >= 500 {
				t.Fatalf("%s accepted or crashed: %d %s", name, r.code, r.raw)
			}
			if r.code != 401 && r.code != 400 {
				t.Fatalf("%s: %d, want 401 (or 400 for a malformed header)", name, r.code)
			}
		})
	}
	// A token from another Latch (its own keys, same issuer name): refused.
	other := start(t, "", func(c *config.Config) { c.Tokens.Algorithm = alg })
	other.addUser(adaEmail, adaPass)
	expect(t, "token of another server", h.do("GET", "/v1/me", "", bearer(other.login(adaEmail, adaPass).str("access_token"))...), 401, "invalid_token")

	expect(t, "genuine token after the attacks", h.do("GET", "/v1/me", "", bearer(genuine)...), 200, "")
	h.clock.Advance(6 * time.Minute)
	expect(t, "genuine token expired", h.do("GET", "/v1/me", "", bearer(genuine)...), 401, "invalid_token")
}
