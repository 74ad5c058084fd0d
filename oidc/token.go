package oidc

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/auth"
)

// Errors of the token endpoint's authorization_code grant; the server
// maps each to RFC 6749 §5.2.
var (
	// ErrInvalidGrant: the code is unknown, expired, used, issued to
	// another client or redirect URI, or the PKCE verifier does not match.
	ErrInvalidGrant = errors.New("invalid grant")
	// ErrInvalidRequest: a required parameter is missing or malformed.
	ErrInvalidRequest = errors.New("invalid request")
)

// GrantError is an ErrInvalidGrant or ErrInvalidRequest with the
// description for the client.
type GrantError struct {
	Err         error
	Description string
}

func (e *GrantError) Error() string { return e.Err.Error() + ": " + e.Description }
func (e *GrantError) Unwrap() error { return e.Err }

func invalidGrant(desc string) error { return &GrantError{Err: ErrInvalidGrant, Description: desc} }

// Tokens is a token response of the code or refresh grant.
type Tokens struct {
	*auth.Tokens
	// IDToken is set when the grant includes the openid scope.
	IDToken string
}

// Exchange redeems an authorization code at the token endpoint (RFC 6749
// §4.1.3) for the authenticated client c. The code is spent first: of
// concurrent exchanges one wins, and a code presented again revokes what
// its first exchange issued. The code must have been issued to c for
// redirectURI; with PKCE, verifier must hash to the challenge (compared in
// constant time); without it, a verifier is refused (RFC 9700 §2.1.1).
// A refresh token is returned when offline_access was granted or the
// client is first-party; the family exists either way, so that ending the
// SSO session revokes the access token.
func (p *Provider) Exchange(ctx context.Context, c *latch.Client, code, redirectURI, verifier string, dev auth.Device) (*Tokens, error) {
	switch {
	case code == "":
		return nil, &GrantError{Err: ErrInvalidRequest, Description: "code is required"}
	case redirectURI == "":
		return nil, &GrantError{Err: ErrInvalidRequest, Description: "redirect_uri is required"}
	case len(code) > 256 || !strings.HasPrefix(code, CodePrefix):
		return nil, invalidGrant("the code is invalid")
	}
	hash := hashCode(code)
	ac, err := p.store.RedeemAuthorizationCode(ctx, hash, p.clock())
	switch {
	case errors.Is(err, latch.ErrNotFound):
		return nil, invalidGrant("the code is invalid or expired")
	case errors.Is(err, latch.ErrConflict) && ac != nil:
		// Presented again: whoever holds it, what it issued is no
		// longer safe (RFC 6749 §4.1.2).
		if ac.SessionID != "" {
			if err := p.auth.RevokeFamily(ctx, ac.SessionID, "authorization_code_reused"); err != nil {
				p.log.Error("revoking the tokens of a reused authorization code failed", "session_id", ac.SessionID, "err", err)
			}
		}
		return nil, invalidGrant("the code was used already; the tokens it issued are revoked")
	case err != nil:
		return nil, wrap("redeem authorization code", err)
	}
	if subtle.ConstantTimeCompare([]byte(ac.ClientID), []byte(c.ID)) != 1 {
		return nil, invalidGrant("the code was issued to another client")
	}
	if subtle.ConstantTimeCompare([]byte(ac.RedirectURI), []byte(redirectURI)) != 1 {
		return nil, invalidGrant("redirect_uri differs from the authorization request's")
	}
	switch {
	case ac.CodeChallenge == "" && verifier != "":
		return nil, invalidGrant("code_verifier sent, but the authorization request had no code_challenge")
	case ac.CodeChallenge != "" && verifier == "":
		return nil, invalidGrant("code_verifier is required: the authorization request had a code_challenge")
	case ac.CodeChallenge != "" && !verifierMatches(verifier, ac.CodeChallenge):
		return nil, invalidGrant("code_verifier does not match the code_challenge")
	}
	// The client joins the SSO session before any token exists, so that
	// ending the session tells it whatever happens next.
	if err := p.store.RecordSSOClient(ctx, ac.SSOSessionID, c.ID, p.clock()); errors.Is(err, latch.ErrNotFound) {
		return nil, invalidGrant("the sign-in this code came from has ended")
	} else if err != nil {
		return nil, wrap("record client in SSO session", err)
	}
	t, err := p.auth.StartSession(ctx, auth.Grant{UserID: ac.UserID, ClientID: c.ID, SSOSessionID: ac.SSOSessionID,
		Scope: ac.Scope, AuthTime: ac.AuthTime, Device: dev})
	if errors.Is(err, latch.ErrNotFound) {
		return nil, invalidGrant("the sign-in this code came from has ended")
	}
	if errors.Is(err, auth.ErrUserLocked) {
		// Locked since the code was issued ("this wasn't me", an
		// operator): the store refused the session.
		return nil, invalidGrant("the account is locked")
	}
	if err != nil {
		return nil, err
	}
	if err := p.store.AttachCodeSession(ctx, hash, t.SessionID); err != nil {
		// A replay raced this exchange: revoke what it issued.
		if rerr := p.auth.RevokeFamily(ctx, t.SessionID, "authorization_code_reused"); rerr != nil {
			p.log.Error("revoking the tokens of a reused authorization code failed", "session_id", t.SessionID, "err", rerr)
		}
		if errors.Is(err, latch.ErrConflict) {
			return nil, invalidGrant("the code was used already; the tokens it issued are revoked")
		}
		return nil, wrap("attach session to code", err)
	}
	if !hasScope(ac.Scope, ScopeOfflineAccess) && !c.FirstParty {
		t.RefreshToken = ""
	}
	out := &Tokens{Tokens: t}
	if hasScope(ac.Scope, ScopeOpenID) {
		out.IDToken, err = p.idToken(ctx, c, idTokenFor{
			UserID: ac.UserID, SSOSessionID: ac.SSOSessionID, AuthTime: ac.AuthTime, AMR: ac.AMR,
			Nonce: ac.Nonce, Scope: ac.Scope, AccessToken: t.AccessToken,
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// verifierMatches checks a PKCE verifier (RFC 7636 §4.1: 43 to 128
// unreserved characters) against an S256 challenge, in constant time.
func verifierMatches(verifier, challenge string) bool {
	if len(verifier) < 43 || len(verifier) > 128 {
		return false
	}
	for i := 0; i < len(verifier); i++ {
		c := verifier[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
			return false
		}
	}
	sum := sha256.Sum256([]byte(verifier))
	want := base64.RawURLEncoding.EncodeToString(sum[:])
	return subtle.ConstantTimeCompare([]byte(want), []byte(challenge)) == 1
}

// Refresh is the refresh_token grant for a client of the code flow: auth
// rotates the token (grace window and reuse detection included) and
// narrows the scope if asked; when the grant holds openid, a new id_token
// comes with it (OpenID Connect Core §12.2), without nonce.
func (p *Provider) Refresh(ctx context.Context, c *latch.Client, refresh, scope string, dev auth.Device) (*Tokens, error) {
	t, err := p.auth.RefreshForClient(ctx, c, refresh, scope, dev)
	if err != nil {
		return nil, err
	}
	out := &Tokens{Tokens: t}
	if t.SSOSessionID != "" && hasScope(t.Scope, ScopeOpenID) {
		var amr []string
		if sso, err := p.store.SSOSession(ctx, t.SSOSessionID); err == nil {
			amr = sso.AMR
		}
		out.IDToken, err = p.idToken(ctx, c, idTokenFor{UserID: t.UserID, SSOSessionID: t.SSOSessionID,
			AuthTime: t.AuthTime, AMR: amr, Scope: t.Scope, AccessToken: t.AccessToken})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// IDClaims are the claims of an id_token (OpenID Connect Core §2, §3.1.3.6).
type IDClaims struct {
	Issuer        string   `json:"iss"`
	Subject       string   `json:"sub"`
	Audience      string   `json:"aud"`
	Expiry        int64    `json:"exp"`
	IssuedAt      int64    `json:"iat"`
	AuthTime      int64    `json:"auth_time"`
	Nonce         string   `json:"nonce,omitempty"`
	SessionID     string   `json:"sid,omitempty"`
	AMR           []string `json:"amr,omitempty"`
	AccessHash    string   `json:"at_hash,omitempty"`
	Email         string   `json:"email,omitempty"`
	EmailVerified *bool    `json:"email_verified,omitempty"`
}

type idTokenFor struct {
	UserID, SSOSessionID string
	AuthTime             time.Time
	AMR                  []string
	Nonce, Scope         string
	AccessToken          string
}

// idToken signs the id_token for client c, with the algorithm it
// registered.
func (p *Provider) idToken(ctx context.Context, c *latch.Client, f idTokenFor) (string, error) {
	signer, err := p.ids(c.IDTokenSignedResponseAlg)
	if err != nil {
		return "", wrap("id_token signer for client "+c.ID, err)
	}
	now := p.now()
	claims := IDClaims{
		Issuer: p.cfg.Issuer, Subject: f.UserID, Audience: c.ID,
		IssuedAt: now.Unix(), Expiry: now.Add(p.cfg.IDTokenTTL).Unix(), AuthTime: f.AuthTime.Unix(),
		Nonce: f.Nonce, SessionID: f.SSOSessionID, AMR: f.AMR,
	}
	if f.AccessToken != "" {
		claims.AccessHash, err = tokenHash(signer.Algorithm(), f.AccessToken)
		if err != nil {
			return "", err
		}
	}
	if hasScope(f.Scope, ScopeEmail) {
		u, err := p.auth.User(ctx, f.UserID)
		if err != nil {
			return "", wrap("load user", err)
		}
		verified := u.EmailVerified() // true once the user followed the verification link
		claims.Email, claims.EmailVerified = u.Email, &verified
	}
	tok, err := signer.Sign(claims)
	if err != nil {
		return "", wrap("sign id_token", err)
	}
	return tok, nil
}

// tokenHash is at_hash (OpenID Connect Core §3.1.3.6): the left half of
// the hash of the token's ASCII, with the hash of the JWS alg, base64url.
func tokenHash(alg, token string) (string, error) {
	switch alg {
	case "RS256", "ES256", "PS256":
		sum := sha256.Sum256([]byte(token))
		return base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2]), nil
	}
	return "", fmt.Errorf("oidc: at_hash for algorithm %q", alg)
}

// verifyIDToken checks that token is an id_token this provider signed
// (signature with a published key of the id_token family, typ JWT, iss),
// whatever its expiry: an id_token_hint may have expired (OpenID Connect
// Core §3.1.2.1).
func (p *Provider) verifyIDToken(token string) (*IDClaims, error) {
	var claims jwt.MapClaims
	tok, err := jwt.NewParser(jwt.WithoutClaimsValidation(), jwt.WithValidMethods([]string{"RS256", "ES256", "EdDSA"})).
		ParseWithClaims(token, &claims, func(t *jwt.Token) (any, error) {
			if typ, _ := t.Header["typ"].(string); typ != "JWT" {
				return nil, errors.New("not an id_token")
			}
			kid, _ := t.Header["kid"].(string)
			alg, pub, ok := p.idKey(kid)
			if !ok || alg != t.Method.Alg() {
				return nil, errors.New("unknown key")
			}
			return pub, nil
		})
	if err != nil || !tok.Valid {
		return nil, fmt.Errorf("oidc: id_token: %w", err)
	}
	iss, _ := claims["iss"].(string)
	sub, _ := claims["sub"].(string)
	if iss != p.cfg.Issuer || sub == "" {
		return nil, errors.New("oidc: id_token of another issuer")
	}
	out := &IDClaims{Issuer: iss, Subject: sub}
	out.Audience, _ = claims["aud"].(string)
	out.SessionID, _ = claims["sid"].(string)
	return out, nil
}
