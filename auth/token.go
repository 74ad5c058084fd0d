package auth

import (
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/latchauth/latch/verifier"
)

// accessToken describes an access token to mint. Its claims are built in
// one place, mintAccess, whatever grant issues it.
type accessToken struct {
	Subject   string
	Audience  string
	ClientID  string
	SessionID string // empty for a client's own token
	Scope     string
	AuthTime  time.Time // zero: no auth_time (a client's own token)
	IssuedAt  time.Time
	TTL       time.Duration
}

// mintAccess builds the RFC 9068 claims of t (iss, sub, aud, exp, iat, a
// fresh jti, client_id, and sid, scope and auth_time when set) and signs
// them with the access-token key.
func (s *Service) mintAccess(t accessToken) (string, error) {
	claims := &verifier.Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    s.cfg.Issuer,
			Subject:   t.Subject,
			Audience:  jwt.ClaimStrings{t.Audience},
			ExpiresAt: jwt.NewNumericDate(t.IssuedAt.Add(t.TTL)),
			IssuedAt:  jwt.NewNumericDate(t.IssuedAt),
			ID:        newID(""),
		},
		SessionID: t.SessionID,
		ClientID:  t.ClientID,
		Scope:     t.Scope,
	}
	if !t.AuthTime.IsZero() {
		claims.AuthTime = jwt.NewNumericDate(t.AuthTime)
	}
	tok, err := s.signer.Sign(claims)
	if err != nil {
		return "", fmt.Errorf("auth: sign access token: %w", err)
	}
	return tok, nil
}
