package auth

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/golang-jwt/jwt/v5"

	"github.com/latchauth/latch/verifier"
)

// maxAudienceVerifiers bounds the verifiers kept for client audiences.
const maxAudienceVerifiers = 64

// maxIntrospectedToken bounds the size of a token whose audience is read
// before verification.
const maxIntrospectedToken = 16 << 10

// errUnknownAudience: none of the token's audiences is one the caller may
// have it verified for.
var errUnknownAudience = errors.New("auth: token audience is not a known one")

// audiences verifies the access tokens the server issued, whatever their
// audience: its own (Config.Audience) or a registered client's. A verifier
// checks exactly one audience, so there is one per audience, made on first
// use and kept (a bounded number of them).
type audiences struct {
	server  string
	main    *verifier.Verifier // the server's audience; may be nil
	factory func(audience string) (*verifier.Verifier, error)

	mu    sync.Mutex
	byAud map[string]*verifier.Verifier
}

func newAudiences(server string, main *verifier.Verifier, factory func(string) (*verifier.Verifier, error)) *audiences {
	return &audiences{server: server, main: main, factory: factory, byAud: map[string]*verifier.Verifier{}}
}

// verify fully verifies token against the first of its audiences that is
// one of known (empty entries ignored). The audience is read from the
// unverified payload only to choose the verifier; the verifier then checks
// the signature, the claims, that audience and revocation.
func (a *audiences) verify(token string, known ...string) (*verifier.Claims, error) {
	auds, _, err := unverifiedClaims(token)
	if err != nil {
		return nil, err
	}
	for _, aud := range auds {
		for _, k := range known {
			if k == "" || aud != k {
				continue
			}
			v, err := a.verifier(aud)
			if err != nil {
				return nil, err
			}
			return v.Verify(token)
		}
	}
	return nil, errUnknownAudience
}

// verifier returns the verifier for aud, making it on first use.
func (a *audiences) verifier(aud string) (*verifier.Verifier, error) {
	if aud == a.server {
		if a.main == nil {
			return nil, errUnknownAudience
		}
		return a.main, nil
	}
	if a.factory == nil {
		return nil, errUnknownAudience
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if v, ok := a.byAud[aud]; ok {
		return v, nil
	}
	v, err := a.factory(aud)
	if err != nil {
		return nil, fmt.Errorf("auth: verifier for audience %q: %w", aud, err)
	}
	if len(a.byAud) >= maxAudienceVerifiers {
		for k := range a.byAud { // evict one, any
			delete(a.byAud, k)
			break
		}
	}
	a.byAud[aud] = v
	return v, nil
}

// unverifiedClaims reads the aud and client_id claims of a compact JWS
// without verifying it.
func unverifiedClaims(token string) (aud []string, clientID string, err error) {
	if len(token) > maxIntrospectedToken {
		return nil, "", errors.New("auth: token too large")
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, "", errors.New("auth: not a compact JWS")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, "", fmt.Errorf("auth: token payload: %w", err)
	}
	var claims struct {
		Aud      jwt.ClaimStrings `json:"aud"`
		ClientID string           `json:"client_id"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return nil, "", fmt.Errorf("auth: token payload: %w", err)
	}
	return claims.Aud, claims.ClientID, nil
}
