package oidc

import (
	"context"
	"errors"

	"github.com/latchauth/latch/auth"
	"github.com/latchauth/latch/verifier"
)

// Errors of the userinfo endpoint (RFC 6750 §3.1).
var (
	// ErrInsufficientScope: the access token was not granted openid.
	ErrInsufficientScope = errors.New("insufficient scope")
	// ErrInvalidToken: the token's user no longer exists, or the token is
	// a client's own.
	ErrInvalidToken = errors.New("invalid token")
)

// UserInfo is the userinfo response for a verified access token (OpenID
// Connect Core §5.3): sub always, email and email_verified with the email
// scope, updated_at with profile.
func (p *Provider) UserInfo(ctx context.Context, c *verifier.Claims) (map[string]any, error) {
	if c.SessionID == "" || c.Subject == "" {
		return nil, ErrInvalidToken // a client's own token names no user
	}
	if !hasScope(c.Scope, ScopeOpenID) {
		return nil, ErrInsufficientScope
	}
	u, err := p.auth.User(ctx, c.Subject)
	if errors.Is(err, auth.ErrNotFound) {
		return nil, ErrInvalidToken
	}
	if err != nil {
		return nil, err
	}
	out := map[string]any{"sub": u.ID}
	if hasScope(c.Scope, ScopeEmail) {
		out["email"] = u.Email
		out["email_verified"] = u.EmailVerified()
	}
	if hasScope(c.Scope, ScopeProfile) {
		out["updated_at"] = u.UpdatedAt.Unix()
	}
	return out, nil
}
