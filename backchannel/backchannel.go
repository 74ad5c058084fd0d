// Package backchannel sends OpenID Connect Back-Channel Logout 1.0 logout
// tokens (https://openid.net/specs/openid-connect-backchannel-1_0.html): it
// is the outbox.Handler of latch.OutboxBackchannelLogout messages, which the
// stores enqueue when an SSO session ends (latch.SSOStore.EndSSOSession,
// latch.SessionStore.RevokeUser).
//
// For each message it signs a logout token for the client (§2.4) when it
// sends it, not when the message is enqueued, so that a retry carries a
// fresh token signed by the key active then, and POSTs it to the client's
// back-channel logout URI as it is registered now (§2.5).
package backchannel

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/outbox"
)

// EventLogout is the member of a logout token's events claim that makes it
// a logout token (§2.4).
const EventLogout = "http://schemas.openid.net/event/backchannel-logout"

// Defaults of Config.
const (
	// DefaultTimeout bounds one logout request, connection included.
	DefaultTimeout = 5 * time.Second
	// DefaultTokenTTL is the lifetime of a logout token: it is sent at
	// once, and §2.4 recommends a short exp ("two minutes or less").
	DefaultTokenTTL = 2 * time.Minute
	// maxBody is how much of a response body is read (and discarded), so
	// that the connection can be reused.
	maxBody = 4 << 10
)

// Signer signs the claims of a logout token: a JWS whose header typ is
// logout+jwt (§2.4, RFC 8725 §3.11), such as the one keys.Ring.LogoutTokens
// returns.
type Signer interface {
	Sign(claims any) (string, error)
}

// Config configures a Handler.
type Config struct {
	// Issuer is the iss of the logout tokens: the OpenID Provider's
	// issuer identifier.
	Issuer string
	// Clients looks up the client of each message.
	Clients latch.ClientStore
	// LogoutTokens returns the signer of logout tokens for a client whose
	// id_tokens are signed with alg (Client.IDTokenSignedResponseAlg, ""
	// meaning the default), since a relying party verifies both with the
	// same keys. An error made with outbox.Permanent gives the message
	// up; any other is retried.
	LogoutTokens func(alg string) (Signer, error)
	// HTTPClient sends the logout requests; nil means a client with
	// DefaultTimeout that follows no redirect. A client passed here must
	// not follow redirects either: the token is for the registered URI
	// alone.
	HTTPClient *http.Client
	// TokenTTL is the lifetime of a logout token; DefaultTokenTTL if zero.
	TokenTTL time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Handler delivers back-channel logout messages; it implements
// outbox.Handler.
type Handler struct {
	issuer  string
	clients latch.ClientStore
	signer  func(alg string) (Signer, error)
	http    *http.Client
	ttl     time.Duration
	now     func() time.Time
}

// NewHTTPClient returns the default HTTP client of a Handler: a timeout of
// DefaultTimeout, and redirects not followed but returned as the response
// (which is not a success).
func NewHTTPClient() *http.Client {
	return &http.Client{
		Timeout: DefaultTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// New returns a Handler.
func New(cfg Config) (*Handler, error) {
	if cfg.Issuer == "" || cfg.Clients == nil || cfg.LogoutTokens == nil {
		return nil, errors.New("backchannel: an issuer, a client store and a signer are required")
	}
	h := &Handler{issuer: cfg.Issuer, clients: cfg.Clients, signer: cfg.LogoutTokens,
		http: cfg.HTTPClient, ttl: cfg.TokenTTL, now: cfg.Now}
	if h.http == nil {
		h.http = NewHTTPClient()
	}
	if h.ttl <= 0 {
		h.ttl = DefaultTokenTTL
	}
	if h.now == nil {
		h.now = time.Now
	}
	return h, nil
}

// Claims are the claims of a logout token (§2.4): iss, aud, iat, exp, jti,
// sub and sid (both, the user and the SSO session that ended), and events
// with the one member EventLogout. A logout token never has a nonce
// (§2.4: its presence is what tells a logout token from an id_token to an
// RP that confuses them).
type Claims struct {
	Issuer   string                    `json:"iss"`
	Audience string                    `json:"aud"`
	IssuedAt int64                     `json:"iat"`
	Expiry   int64                     `json:"exp"`
	ID       string                    `json:"jti"`
	Subject  string                    `json:"sub,omitempty"`
	SID      string                    `json:"sid"`
	Events   map[string]map[string]any `json:"events"`
}

// claims returns the claims of the logout token that tells b.ClientID of
// the end of the SSO session b.SSOSessionID, issued at iat.
func (h *Handler) claims(b latch.BackchannelLogout, iat time.Time) Claims {
	return Claims{
		Issuer:   h.issuer,
		Audience: b.ClientID,
		IssuedAt: iat.Unix(),
		Expiry:   iat.Add(h.ttl).Unix(),
		ID:       rand.Text(),
		Subject:  b.UserID,
		SID:      b.SSOSessionID,
		Events:   map[string]map[string]any{EventLogout: {}},
	}
}

// Deliver sends the logout token of m, an latch.OutboxBackchannelLogout
// message (§2.5): a POST of the form-encoded logout_token to the client's
// back-channel logout URI. A 2xx response is success (§2.8 says 200, and
// allows for frameworks that answer 204). Any other status, a redirect
// (never followed), or a network error is an error to retry, naming the
// status or the cause, never the token. A client deleted, or whose URI
// was removed, since the message was enqueued has nothing to be told:
// success. A payload that does not parse is a permanent error.
func (h *Handler) Deliver(ctx context.Context, m latch.OutboxMessage) error {
	b, err := latch.ParseBackchannelLogout(m.Payload)
	if err != nil {
		return outbox.Permanent(fmt.Errorf("backchannel: message %d: %w", m.ID, err))
	}
	c, err := h.clients.Client(ctx, b.ClientID)
	if errors.Is(err, latch.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("backchannel: client %s: %w", b.ClientID, err)
	}
	if c.BackchannelLogoutURI == "" {
		return nil
	}
	u, err := url.Parse(c.BackchannelLogoutURI)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return outbox.Permanent(fmt.Errorf("backchannel: client %s: the back-channel logout URI is not an absolute http(s) URL", b.ClientID))
	}
	signer, err := h.signer(c.IDTokenSignedResponseAlg)
	if err != nil {
		return fmt.Errorf("backchannel: signer for client %s: %w", b.ClientID, err)
	}
	token, err := signer.Sign(h.claims(b, h.now()))
	if err != nil {
		return fmt.Errorf("backchannel: sign the logout token for client %s: %w", b.ClientID, err)
	}
	form := url.Values{"logout_token": {token}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), strings.NewReader(form))
	if err != nil {
		return outbox.Permanent(fmt.Errorf("backchannel: client %s: %w", b.ClientID, err))
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := h.http.Do(req)
	if err != nil {
		// A *url.Error names the URI (never the token, which is in the
		// body); keep its cause, with the host.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("backchannel: client %s: POST to %s: %w", b.ClientID, u.Host, err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		// The status code alone: the reason phrase is the receiver's text.
		return fmt.Errorf("backchannel: client %s: %s answered status %d", b.ClientID, u.Host, resp.StatusCode)
	}
	return nil
}
