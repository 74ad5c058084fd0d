// Package oidc is Latch's OpenID Provider: the authorization-code flow
// with PKCE (RFC 6749 §4.1, RFC 7636, RFC 9700), id_tokens and userinfo
// (OpenID Connect Core 1.0), the provider's SSO session, RP-initiated
// logout (OpenID Connect RP-Initiated Logout 1.0) and the decisions that
// lead to back-channel logout (OpenID Connect Back-Channel Logout 1.0;
// package backchannel delivers the tokens).
//
// It is transport-agnostic, as package auth is: package server parses
// requests, renders pages and sets cookies; this package decides. It
// builds on auth for what every grant shares (sessions, rotation,
// revocation) and adds only what OpenID Connect needs.
package oidc

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/auth"
)

// Scopes the provider understands (OpenID Connect Core §5.4, §11).
const (
	ScopeOpenID        = "openid"
	ScopeProfile       = "profile"
	ScopeEmail         = "email"
	ScopeOfflineAccess = "offline_access"
)

// SupportedScopes are the scopes_supported of the discovery document.
var SupportedScopes = []string{ScopeOpenID, ScopeProfile, ScopeEmail, ScopeOfflineAccess}

// SupportedClaims are the claims_supported of the discovery document:
// every claim an id_token or the userinfo response may carry.
var SupportedClaims = []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "sid", "amr", "at_hash",
	"email", "email_verified", "updated_at"}

// Signer signs id_tokens: a key ring's signer for one algorithm.
type Signer interface {
	Sign(claims any) (string, error)
	// Algorithm is the JWS alg of the token Sign makes now.
	Algorithm() string
}

// Config is the provider's policy.
type Config struct {
	// Issuer is the iss of id_tokens and the iss of authorization
	// responses (RFC 9207).
	Issuer string
	// CodeTTL is the lifetime of an authorization code (codes.ttl).
	CodeTTL time.Duration
	// IDTokenTTL is the lifetime of an id_token.
	IDTokenTTL time.Duration
	// SSOIdle ends an SSO session unused this long; SSOAbsolute ends
	// every SSO session that long after sign-in.
	SSOIdle, SSOAbsolute time.Duration
	// CookieName is the SSO cookie's name; the server sets it.
	CookieName string
}

// Deps are the provider's collaborators.
type Deps struct {
	Store latch.Store
	Auth  *auth.Service
	// IDTokens returns the signer of id_tokens for a client's
	// id_token_signed_response_alg ("" for the default).
	IDTokens func(alg string) (Signer, error)
	// IDKey returns a public key of the id_token family by kid, to check
	// id_token_hint; false if there is none (unknown, removed, revoked).
	IDKey func(kid string) (alg string, pub crypto.PublicKey, ok bool)
	// MAC keys the SSO cookie and the consent page's form token.
	MAC func(purpose string, msg []byte) []byte
	Log *slog.Logger
	Now func() time.Time
}

// Provider is the OpenID Provider.
type Provider struct {
	cfg   Config
	store latch.Store
	auth  *auth.Service
	ids   func(alg string) (Signer, error)
	idKey func(kid string) (string, crypto.PublicKey, bool)
	mac   func(purpose string, msg []byte) []byte
	log   *slog.Logger
	now   func() time.Time
}

// New returns a Provider; it checks the configuration.
func New(cfg Config, d Deps) (*Provider, error) {
	switch {
	case cfg.Issuer == "":
		return nil, errors.New("oidc: issuer is required")
	case cfg.CodeTTL <= 0 || cfg.IDTokenTTL <= 0 || cfg.SSOIdle <= 0 || cfg.SSOAbsolute <= 0:
		return nil, errors.New("oidc: code, id_token and SSO lifetimes must be positive")
	case cfg.CookieName == "":
		return nil, errors.New("oidc: the SSO cookie needs a name")
	case d.Store == nil || d.Auth == nil || d.IDTokens == nil || d.IDKey == nil || d.MAC == nil:
		return nil, errors.New("oidc: store, auth, id_token signer, id keys and MAC are required")
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	return &Provider{cfg: cfg, store: d.Store, auth: d.Auth, ids: d.IDTokens, idKey: d.IDKey, mac: d.MAC, log: d.Log, now: d.Now}, nil
}

// Config returns the provider's configuration.
func (p *Provider) Config() Config { return p.cfg }

// clock is now at the stores' precision.
func (p *Provider) clock() time.Time { return p.now().UTC().Truncate(time.Microsecond) }

// Error is an OAuth 2.0 / OpenID Connect error (RFC 6749 §4.1.2.1, §5.2;
// OpenID Connect Core §3.1.2.6). An error of an authorization request
// whose client and redirect URI are not established is shown on a page
// (Redirect is empty); any other goes back to Redirect.
type Error struct {
	Code        string
	Description string
	// Redirect and State are where, and with which state, the error
	// goes back to the client; empty Redirect means an error page.
	Redirect string
	State    string
	// Status is the HTTP status of a token-endpoint error (400 or 401).
	Status int
}

func (e *Error) Error() string { return e.Code + ": " + e.Description }

// Page reports whether the error must be shown to the user rather than
// sent to the client.
func (e *Error) Page() bool { return e.Redirect == "" }

// RedirectURL is the URL that sends the error back to the client, with
// iss (RFC 9207) and state.
func (p *Provider) RedirectURL(e *Error) string {
	q := url.Values{"error": {e.Code}, "iss": {p.cfg.Issuer}}
	if e.Description != "" {
		q.Set("error_description", e.Description)
	}
	if e.State != "" {
		q.Set("state", e.State)
	}
	return addQuery(e.Redirect, q)
}

// addQuery appends q to the query of a registered redirect URI, keeping
// the query it has (RFC 6749 §3.1.2).
func addQuery(uri string, q url.Values) string {
	sep := "?"
	if strings.Contains(uri, "?") {
		sep = "&"
	}
	return uri + sep + q.Encode()
}

// hasScope reports whether the space-separated scope holds s.
func hasScope(scope, s string) bool {
	for _, f := range strings.Fields(scope) {
		if f == s {
			return true
		}
	}
	return false
}

func wrap(what string, err error) error { return fmt.Errorf("oidc: %s: %w", what, err) }

// client loads a client; nil, nil if there is none.
func (p *Provider) client(ctx context.Context, id string) (*latch.Client, error) {
	c, err := p.store.Client(ctx, id)
	if errors.Is(err, latch.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, wrap("load client", err)
	}
	return c, nil
}
