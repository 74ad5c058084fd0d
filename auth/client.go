package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/verifier"
)

// Client errors, named after their RFC 6749 §5.2 codes.
var (
	// ErrInvalidClient: unknown client, wrong secret, or a secret where
	// none belongs.
	ErrInvalidClient = errors.New("invalid client")
	// ErrUnauthorizedClient: the client may not use this grant.
	ErrUnauthorizedClient = errors.New("unauthorized client")
	// ErrInvalidScope: a requested scope is not the client's.
	ErrInvalidScope = errors.New("invalid scope")
	// ErrClientExists: the client id is taken.
	ErrClientExists = errors.New("client id is already registered")
	// ErrInvalidClientMetadata: a registered URI or setting is refused
	// (RFC 7591 §3.2.2); errors wrapping it are *ClientMetadataError.
	ErrInvalidClientMetadata = errors.New("invalid client metadata")
)

// ClientMetadataError is a refused client setting: the field, named as
// OpenID Connect Dynamic Client Registration names it (redirect_uris,
// post_logout_redirect_uris, backchannel_logout_uri, first_party,
// id_token_signed_response_alg), the value refused, and why. It wraps
// ErrInvalidClientMetadata.
type ClientMetadataError struct {
	Field  string
	Value  string // empty when the reason concerns the field as a whole
	Reason string
}

func (e *ClientMetadataError) Error() string {
	if e.Value == "" {
		return e.Field + ": " + e.Reason
	}
	return fmt.Sprintf("%s %q: %s", e.Field, e.Value, e.Reason)
}

// Unwrap returns ErrInvalidClientMetadata.
func (e *ClientMetadataError) Unwrap() error { return ErrInvalidClientMetadata }

// Limits on a client's registered URIs.
const (
	// MaxClientURILength is the longest URI a client may register, in
	// bytes: what browsers and servers reliably handle in a Location
	// header.
	MaxClientURILength = 2048
	// MaxClientURIs is how many redirect URIs, and how many post-logout
	// redirect URIs, a client may register.
	MaxClientURIs = 20
)

// OpenIDScopes are the scopes a client registered with redirect URIs and
// no explicit scopes may be granted.
var OpenIDScopes = []string{"openid", "profile", "email", "offline_access"}

// defaultIDTokenAlgorithms is what id_tokens can be signed with when
// Config.IDTokenAlgorithms is empty: RS256, keys.IDAlgorithm.
var defaultIDTokenAlgorithms = []string{"RS256"}

// MinClientSecretLength is the shortest secret a confidential client may
// have. Secrets are machine credentials: long and random, so a fast hash
// protects them and token requests never wait on a password hash.
const MinClientSecretLength = 32

// ClientSecretPrefix starts generated client secrets, for secret scanners.
const ClientSecretPrefix = "latch_cs_"

// GenerateClientSecret returns a new random client secret (256 bits).
func GenerateClientSecret() string {
	var b [32]byte
	rand.Read(b[:])
	return ClientSecretPrefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// hashClientSecret is the stored form of a client secret: SHA-256, which
// is enough for a secret of at least 256 bits or 32 characters chosen by
// the operator.
func hashClientSecret(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return "sha256:" + base64.RawURLEncoding.EncodeToString(h[:])
}

// dummyClientHash is compared against when the client does not exist, so
// that unknown and known clients cost the same.
var dummyClientHash = hashClientSecret("latch dummy client secret, never valid")

// NewClient describes a client to register.
type NewClient struct {
	ID string
	// Name is shown to people (client_name): at most 64 printable
	// characters; empty shows the id.
	Name string
	// Secret of a confidential client; empty with Public.
	Secret   string
	Public   bool
	Scopes   []string
	Audience string
	// Delivery: latch.DeliveryBearer (default), or for a public browser
	// client latch.DeliveryCookie or latch.DeliveryMemory.
	Delivery string
	// Permissions granted beyond the OAuth grants, for a confidential
	// client only: latch.PermissionReadRevocations lets it read the
	// revocation feed (a remote verifier's client needs it).
	Permissions []string

	// The OpenID Connect registration of a client of the
	// authorization-code flow, which receives bearer tokens (a cookie or
	// memory browser client signs in through /v1/auth instead).
	//
	// RedirectURIs are matched exactly. Each is https; or http on a
	// loopback host (127.0.0.0/8, [::1], localhost, *.localhost), for
	// development; or, for a public native app only, a private-use scheme
	// containing a period (RFC 8252 §7.1: com.example.app:/cb). No
	// fragment, userinfo or wildcard, at most MaxClientURILength bytes,
	// at most MaxClientURIs, no duplicates. A client with RedirectURIs and
	// no Scopes may be granted OpenIDScopes.
	RedirectURIs []string
	// PostLogoutRedirectURIs are where RP-initiated logout may return to,
	// under the rules of RedirectURIs.
	PostLogoutRedirectURIs []string
	// BackchannelLogoutURI receives back-channel logout tokens: https, or
	// http on a loopback host; no fragment.
	BackchannelLogoutURI string
	// FirstParty clients are not asked for consent.
	FirstParty bool
	// IDTokenSignedResponseAlg is the JWS algorithm of the client's
	// id_tokens, one of Config.IDTokenAlgorithms; empty means RS256.
	IDTokenSignedResponseAlg string
}

// permissions lists every permission a client can be granted.
var permissions = []string{latch.PermissionReadRevocations}

// validClientID: 1 to 128 characters of A-Z a-z 0-9 . _ - :
func validClientID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-' || c == ':') {
			return false
		}
	}
	return true
}

// validClientName: at most 64 characters (runes) of valid UTF-8 without
// control or format characters, which could disguise what people read.
func validClientName(n string) bool {
	if !utf8.ValidString(n) || utf8.RuneCountInString(n) > 64 {
		return false
	}
	for _, r := range n {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return false
		}
	}
	return true
}

// validScope: RFC 6749 §3.3 scope-token, at most 128 characters.
func validScope(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// checkClientURI checks a URI a client registers under field: absolute,
// printable ASCII, no fragment, no userinfo, no wildcard, not too long.
func checkClientURI(field, raw string) (*url.URL, error) {
	refuse := func(reason string) error { return &ClientMetadataError{Field: field, Value: raw, Reason: reason} }
	if raw == "" {
		return nil, &ClientMetadataError{Field: field, Reason: "an empty URI is not allowed"}
	}
	if len(raw) > MaxClientURILength {
		return nil, &ClientMetadataError{Field: field, Value: raw[:64] + "…",
			Reason: fmt.Sprintf("is %d bytes long; at most %d are allowed", len(raw), MaxClientURILength)}
	}
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; {
		case c >= 0x80:
			return nil, refuse("contains a non-ASCII character; percent-encode it, and write a host in its xn-- form")
		case c <= 0x20 || c == 0x7f:
			return nil, refuse("contains a space or a control character; percent-encode it")
		case strings.IndexByte(`"<>\^`+"`{|}", c) >= 0:
			return nil, refuse(fmt.Sprintf("contains %q, which RFC 3986 does not allow in a URI; percent-encode it", c))
		}
	}
	if strings.Contains(raw, "*") {
		return nil, refuse("wildcards are not allowed: register every URI exactly")
	}
	if strings.Contains(raw, "#") {
		return nil, refuse("a fragment is not allowed")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, refuse("is not a valid URI")
	}
	if u.Scheme == "" {
		return nil, refuse("must be an absolute URI, with a scheme")
	}
	if u.User != nil {
		return nil, refuse("userinfo (user:password@) is not allowed")
	}
	return u, nil
}

// loopbackHost reports whether host (from url.URL.Hostname) is a loopback
// IP literal, localhost, or a name under .localhost, which browsers
// resolve to loopback themselves.
func loopbackHost(host string) bool {
	if ip := net.ParseIP(host); ip != nil {
		return ip.IsLoopback()
	}
	host = strings.ToLower(host)
	return host == "localhost" || strings.HasSuffix(host, ".localhost")
}

// checkWebURI checks the scheme and host of u for a URI a browser or
// server is sent to: https, or http on a loopback host.
func checkWebURI(field, raw string, u *url.URL) (ok bool, err error) {
	switch u.Scheme {
	case "https":
	case "http":
		if u.Hostname() != "" && !loopbackHost(u.Hostname()) {
			return true, &ClientMetadataError{Field: field, Value: raw,
				Reason: "http is allowed only on a loopback host (127.0.0.1, [::1], localhost, *.localhost); use https"}
		}
	default:
		return false, nil
	}
	if u.Host == "" || u.Hostname() == "" {
		return true, &ClientMetadataError{Field: field, Value: raw, Reason: "has no host"}
	}
	return true, nil
}

// checkRedirectURIs checks a list of redirect or post-logout redirect URIs.
// responseParams are the parameters Latch adds to a redirect URI's query
// (RFC 6749 §4.1.2, RFC 9207; RP-Initiated Logout's state).
var responseParams = []string{"code", "state", "iss", "error", "error_description", "error_uri"}

func checkRedirectURIs(field string, uris []string, public bool) error {
	if len(uris) > MaxClientURIs {
		return &ClientMetadataError{Field: field, Reason: fmt.Sprintf("%d URIs; at most %d are allowed", len(uris), MaxClientURIs)}
	}
	for i, raw := range uris {
		u, err := checkClientURI(field, raw)
		if err != nil {
			return err
		}
		if slices.Contains(uris[:i], raw) {
			return &ClientMetadataError{Field: field, Value: raw, Reason: "is listed twice"}
		}
		for _, p := range responseParams {
			if u.Query().Has(p) {
				return &ClientMetadataError{Field: field, Value: raw, Reason: fmt.Sprintf(
					"its query holds %q, which Latch adds to the response itself: the app would receive two", p)}
			}
		}
		web, err := checkWebURI(field, raw, u)
		switch {
		case err != nil:
			return err
		case web:
		case !strings.Contains(u.Scheme, "."):
			return &ClientMetadataError{Field: field, Value: raw, Reason: fmt.Sprintf(
				"scheme %q is not allowed: use https, http on a loopback host, or for a public native app a private-use scheme with a period (com.example.app:/cb)", u.Scheme)}
		case !public:
			return &ClientMetadataError{Field: field, Value: raw,
				Reason: "a private-use scheme is for public native apps (RFC 8252 §7.1); a confidential client uses https"}
		case u.Opaque == "" && u.Host == "" && u.Path == "":
			return &ClientMetadataError{Field: field, Value: raw, Reason: "has nothing after the scheme"}
		}
	}
	return nil
}

// checkClientMetadata checks the OpenID Connect registration of n.
func (s *Service) checkClientMetadata(n *NewClient) error {
	if n.Delivery != latch.DeliveryBearer {
		bad := func(field, value string) error {
			return &ClientMetadataError{Field: field, Value: value, Reason: fmt.Sprintf(
				"is for clients of the authorization-code flow, which receive bearer tokens; a %s-delivery browser client signs in through /v1/auth", n.Delivery)}
		}
		if len(n.RedirectURIs) > 0 {
			return bad("redirect_uris", n.RedirectURIs[0])
		}
		if field, value, ok := codeFlowSetting(n); ok {
			return bad(field, value)
		}
		return nil
	}
	if err := checkRedirectURIs("redirect_uris", n.RedirectURIs, n.Public); err != nil {
		return err
	}
	if err := checkRedirectURIs("post_logout_redirect_uris", n.PostLogoutRedirectURIs, n.Public); err != nil {
		return err
	}
	if raw := n.BackchannelLogoutURI; raw != "" {
		u, err := checkClientURI("backchannel_logout_uri", raw)
		if err != nil {
			return err
		}
		web, err := checkWebURI("backchannel_logout_uri", raw, u)
		if err != nil {
			return err
		}
		if !web {
			return &ClientMetadataError{Field: "backchannel_logout_uri", Value: raw,
				Reason: fmt.Sprintf("scheme %q is not allowed: Latch posts logout tokens to https, or http on a loopback host", u.Scheme)}
		}
	}
	if alg := n.IDTokenSignedResponseAlg; alg != "" {
		algs := s.cfg.IDTokenAlgorithms
		if len(algs) == 0 {
			algs = defaultIDTokenAlgorithms
		}
		if !slices.Contains(algs, alg) {
			return &ClientMetadataError{Field: "id_token_signed_response_alg", Value: alg,
				Reason: "is not one of " + strings.Join(algs, ", ")}
		}
	}
	if len(n.RedirectURIs) == 0 {
		needs := func(field, value string) error {
			return &ClientMetadataError{Field: field, Value: value,
				Reason: "is for clients of the authorization-code flow: register a redirect URI too"}
		}
		if field, value, ok := codeFlowSetting(n); ok {
			return needs(field, value)
		}
	}
	return nil
}

// codeFlowSetting returns the first setting of n besides its redirect URIs
// that only the authorization-code flow uses, named as in OpenID Connect
// Registration, for the error that refuses it.
func codeFlowSetting(n *NewClient) (field, value string, ok bool) {
	switch {
	case len(n.PostLogoutRedirectURIs) > 0:
		return "post_logout_redirect_uris", n.PostLogoutRedirectURIs[0], true
	case n.BackchannelLogoutURI != "":
		return "backchannel_logout_uri", n.BackchannelLogoutURI, true
	case n.FirstParty:
		return "first_party", "", true
	case n.IDTokenSignedResponseAlg != "":
		return "id_token_signed_response_alg", n.IDTokenSignedResponseAlg, true
	}
	return "", "", false
}

// CreateClient registers a client.
func (s *Service) CreateClient(ctx context.Context, n NewClient) (*latch.Client, error) {
	c, err := s.BuildClient(n)
	if err != nil {
		return nil, err
	}
	if err := s.store.CreateClient(ctx, c); err != nil {
		if errors.Is(err, latch.ErrConflict) {
			return nil, ErrClientExists
		}
		return nil, fmt.Errorf("auth: create client: %w", err)
	}
	s.event(ctx, &latch.Event{Type: latch.EventClientCreated, ClientID: c.ID, UserAgent: "latch-cli"})
	return c, nil
}

// BuildClient checks a client's settings with the rules of CreateClient
// (and of latch client add) and returns the client it would store,
// without storing it: the admin console edits a client with it.
func (s *Service) BuildClient(n NewClient) (*latch.Client, error) {
	switch {
	case !validClientID(n.ID):
		return nil, fmt.Errorf("client id %q must be 1 to 128 characters of letters, digits, '.', '_', '-' and ':'", n.ID)
	case !validClientName(n.Name):
		return nil, &ClientMetadataError{Field: "client_name", Value: n.Name, Reason: "must be at most 64 characters of printable text, without control characters"}
	case n.Public && n.Secret != "":
		return nil, errors.New("a public client has no secret")
	case !n.Public && len(n.Secret) < MinClientSecretLength:
		return nil, fmt.Errorf("%w: a confidential client needs a secret of at least %d characters; let Latch make one with --generate-secret, or use 32 random bytes (openssl rand -base64 32)", ErrWeakClientSecret, MinClientSecretLength)
	case !n.Public && secretBits(n.Secret) < MinClientSecretBits:
		return nil, fmt.Errorf("%w: the secret is too predictable (an estimated %.0f bits of entropy, at least %d needed); let Latch make one with --generate-secret, or use 32 random bytes (openssl rand -base64 32)",
			ErrWeakClientSecret, secretBits(n.Secret), MinClientSecretBits)
	case n.ID == s.cfg.ClientID || n.ID == AccountClientID:
		return nil, ErrClientExists
	}
	switch n.Delivery {
	case "":
		n.Delivery = latch.DeliveryBearer
	case latch.DeliveryBearer:
	case latch.DeliveryCookie, latch.DeliveryMemory:
		if !n.Public {
			return nil, fmt.Errorf("delivery %q is for public browser clients; a confidential client receives bearer tokens", n.Delivery)
		}
	default:
		return nil, fmt.Errorf("delivery %q is not one of bearer, cookie, memory", n.Delivery)
	}
	if err := s.checkClientMetadata(&n); err != nil {
		return nil, err
	}
	if len(n.Scopes) == 0 && len(n.RedirectURIs) > 0 {
		n.Scopes = OpenIDScopes
	}
	for _, sc := range n.Scopes {
		if !validScope(sc) {
			return nil, fmt.Errorf("scope %q is not a valid scope token", sc)
		}
	}
	for _, p := range n.Permissions {
		switch {
		case !slices.Contains(permissions, p):
			return nil, fmt.Errorf("permission %q is not one of %s", p, strings.Join(permissions, ", "))
		case n.Public:
			return nil, fmt.Errorf("permission %q is for confidential clients; a public client cannot keep the secret that proves it", p)
		}
	}
	c := &latch.Client{ID: n.ID, Name: strings.TrimSpace(n.Name), Scopes: slices.Compact(slices.Sorted(slices.Values(n.Scopes))), Audience: n.Audience,
		Delivery: n.Delivery, CreatedAt: s.clock()}
	if len(n.Permissions) > 0 {
		c.Permissions = slices.Compact(slices.Sorted(slices.Values(n.Permissions)))
	}
	if len(n.RedirectURIs) > 0 {
		c.RedirectURIs = slices.Clone(n.RedirectURIs)
	}
	if len(n.PostLogoutRedirectURIs) > 0 {
		c.PostLogoutRedirectURIs = slices.Clone(n.PostLogoutRedirectURIs)
	}
	c.BackchannelLogoutURI, c.FirstParty, c.IDTokenSignedResponseAlg = n.BackchannelLogoutURI, n.FirstParty, n.IDTokenSignedResponseAlg
	if !n.Public {
		c.SecretHash = hashClientSecret(n.Secret)
	}
	return c, nil
}

// Client returns a registered client, or ErrNotFound.
func (s *Service) Client(ctx context.Context, id string) (*latch.Client, error) {
	c, err := s.store.Client(ctx, id)
	if errors.Is(err, latch.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("auth: load client: %w", err)
	}
	return c, nil
}

// ClientToken verifies an access token that a confidential client
// obtained for itself with the client_credentials grant, whatever its
// audience: the server's, or the one the client is registered for (its
// tokens carry that one). It returns the client and the claims, or an
// error if the token is invalid, revoked, not a client's own token, or
// its client is unknown or public.
func (s *Service) ClientToken(ctx context.Context, token string) (*latch.Client, *verifier.Claims, error) {
	_, id, err := unverifiedClaims(token)
	if err != nil {
		return nil, nil, err
	}
	if id == "" {
		return nil, nil, ErrUnauthorizedClient
	}
	c, err := s.Client(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	if c.Public() {
		return nil, nil, ErrUnauthorizedClient
	}
	claims, err := s.audience.verify(token, s.cfg.Audience, c.Audience)
	if err != nil {
		return nil, nil, err
	}
	if claims.ClientID != c.ID || claims.Subject != c.ID || claims.SessionID != "" {
		return nil, nil, ErrUnauthorizedClient
	}
	return c, claims, nil
}

// Clients lists the registered clients.
func (s *Service) Clients(ctx context.Context) ([]*latch.Client, error) {
	list, err := s.store.Clients(ctx)
	if err != nil {
		return nil, fmt.Errorf("auth: list clients: %w", err)
	}
	return list, nil
}

// AuthenticateClient checks a client's credentials. secret is what the
// client presented (hasSecret false when it presented none, as a public
// client does). Unknown clients and wrong secrets are both ErrInvalidClient
// at the same cost.
func (s *Service) AuthenticateClient(ctx context.Context, id, secret string, hasSecret bool) (*latch.Client, error) {
	c, err := s.store.Client(ctx, id)
	if errors.Is(err, latch.ErrNotFound) {
		subtle.ConstantTimeCompare([]byte(hashClientSecret(secret)), []byte(dummyClientHash))
		return nil, ErrInvalidClient
	}
	if err != nil {
		return nil, fmt.Errorf("auth: load client: %w", err)
	}
	if c.Public() {
		if hasSecret {
			return nil, ErrInvalidClient
		}
		return c, nil
	}
	if !hasSecret || subtle.ConstantTimeCompare([]byte(hashClientSecret(secret)), []byte(c.SecretHash)) != 1 {
		return nil, ErrInvalidClient
	}
	return c, nil
}

// grantScopes resolves a requested scope string against the client's: empty
// means all of them; anything else must be a subset.
func grantScopes(c *latch.Client, requested string) (string, error) {
	if strings.TrimSpace(requested) == "" {
		return strings.Join(c.Scopes, " "), nil
	}
	var out []string
	for _, sc := range strings.Fields(requested) {
		if !slices.Contains(c.Scopes, sc) {
			return "", ErrInvalidScope
		}
		if !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	return strings.Join(out, " "), nil
}

// ClientCredentials issues an access token to a confidential client for
// itself (RFC 6749 §4.4): sub and client_id are the client, no refresh
// token.
func (s *Service) ClientCredentials(ctx context.Context, c *latch.Client, scope string) (*Tokens, error) {
	if c.Public() {
		return nil, ErrUnauthorizedClient
	}
	granted, err := grantScopes(c, scope)
	if err != nil {
		return nil, err
	}
	now := s.clock()
	aud := c.Audience
	if aud == "" {
		aud = s.cfg.Audience
	}
	ttl := s.accessTTL()
	tok, err := s.mintAccess(accessToken{Subject: c.ID, Audience: aud, ClientID: c.ID, Scope: granted, IssuedAt: now, TTL: ttl})
	if err != nil {
		return nil, err
	}
	s.metrics.ClientGrants.Inc()
	return &Tokens{AccessToken: tok, ExpiresIn: ttl, Scope: granted}, nil
}

// RefreshForClient is Refresh for a client authenticated at the OAuth
// token endpoint: the refresh token must have been issued to that client.
// scope, if not empty, asks for an access token with that scope, which
// must be the session's granted scope or narrower (RFC 6749 §6); the
// session keeps its grant. The checks come before any rotation, so a token
// presented by the wrong client, or with too wide a scope, is not consumed.
func (s *Service) RefreshForClient(ctx context.Context, c *latch.Client, refresh, scope string, dev Device) (*Tokens, error) {
	return s.refreshChecked(ctx, refresh, c.ID, scope, true, dev, func(sess *latch.Session, delivery string) error {
		if sess.ClientID != c.ID || delivery != latch.DeliveryBearer {
			return errWrongDelivery
		}
		return nil
	})
}

// RevokeToken revokes a token presented by the client it was issued to
// (RFC 7009): a refresh token ends its session, an access token is
// revoked by its jti. Unknown tokens, and tokens of other clients, are
// ignored, as the RFC asks of invalid tokens.
func (s *Service) RevokeToken(ctx context.Context, c *latch.Client, token string, dev Device) error {
	if wellFormedRefreshToken(token) {
		rt, err := s.store.RefreshToken(ctx, hashToken(token))
		if errors.Is(err, latch.ErrNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("auth: look up refresh token: %w", err)
		}
		sess, err := s.store.Session(ctx, rt.SessionID)
		if errors.Is(err, latch.ErrNotFound) || (err == nil && sess.ClientID != c.ID) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("auth: load session: %w", err)
		}
		if err := s.revokeSession(ctx, sess.UserID, sess.ID, "revoked_by_client", dev); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		return nil
	}
	// The client's own tokens carry the server's audience or the
	// client's registered one.
	claims, err := s.audience.verify(token, s.cfg.Audience, c.Audience)
	if err != nil || claims.ClientID != c.ID || claims.ID == "" {
		return nil // invalid, expired, already revoked, or not this client's
	}
	now := s.clock()
	r := &latch.Revocation{Kind: latch.RevokeToken, Value: claims.ID, CreatedAt: now,
		ExpiresAt: claims.ExpiresAt.Time.Add(s.revocationMargin())}
	if _, err := s.store.AddRevocation(ctx, r); err != nil {
		return fmt.Errorf("auth: revoke access token: %w", err)
	}
	s.metrics.Revocations.WithLabelValues("token").Inc()
	s.syncRevocations(ctx)
	s.event(ctx, &latch.Event{Type: latch.EventTokenRevoked, UserID: userOf(claims), SessionID: claims.SessionID,
		ClientID: c.ID, IP: dev.IP, UserAgent: dev.UserAgent})
	return nil
}

// userOf is the user a token speaks for, or "" for a client's own token.
func userOf(c *verifier.Claims) string {
	if c.SessionID == "" {
		return ""
	}
	return c.Subject
}

// Introspection is the RFC 7662 answer; Active false means nothing else is
// said.
type Introspection struct {
	Active    bool     `json:"active"`
	Scope     string   `json:"scope,omitempty"`
	ClientID  string   `json:"client_id,omitempty"`
	TokenType string   `json:"token_type,omitempty"`
	Exp       int64    `json:"exp,omitempty"`
	Iat       int64    `json:"iat,omitempty"`
	Sub       string   `json:"sub,omitempty"`
	Aud       []string `json:"aud,omitempty"`
	Iss       string   `json:"iss,omitempty"`
	Jti       string   `json:"jti,omitempty"`
	SessionID string   `json:"sid,omitempty"`
}

// Introspect describes a token to a confidential client (RFC 7662). Access
// tokens are checked exactly as a verifier would, revocation included,
// whatever audience the server issued them for; they are described only to
// a client that may see them (see Visible). Refresh tokens are described
// only to the client they were issued to. Everything else is inactive.
func (s *Service) Introspect(ctx context.Context, c *latch.Client, token string) (Introspection, error) {
	if c.Public() {
		return Introspection{}, ErrUnauthorizedClient
	}
	if wellFormedRefreshToken(token) {
		return s.introspectRefresh(ctx, c, token)
	}
	// A token the caller may see carries its client id (then the
	// server's audience or the caller's) or the caller's audience.
	claims, err := s.audience.verify(token, s.cfg.Audience, c.Audience)
	if err != nil || !Visible(c, claims) {
		return Introspection{}, nil
	}
	in := Introspection{
		Active: true, Scope: claims.Scope, ClientID: claims.ClientID, TokenType: "Bearer",
		Sub: claims.Subject, Aud: claims.Audience, Iss: claims.Issuer, Jti: claims.ID, SessionID: claims.SessionID,
	}
	if claims.ExpiresAt != nil {
		in.Exp = claims.ExpiresAt.Unix()
	}
	if claims.IssuedAt != nil {
		in.Iat = claims.IssuedAt.Unix()
	}
	return in, nil
}

// Visible reports whether client c may have the access token with claims
// introspected: a token issued to c itself, or one whose audience is the
// audience c is registered for (c is the resource server the token is
// meant for). A client registered without an audience sees only its own
// tokens; one registered with the server's audience sees the tokens of
// every first-party session.
func Visible(c *latch.Client, claims *verifier.Claims) bool {
	if claims.ClientID == c.ID {
		return true
	}
	return c.Audience != "" && slices.Contains(claims.Audience, c.Audience)
}

func (s *Service) introspectRefresh(ctx context.Context, c *latch.Client, token string) (Introspection, error) {
	rt, err := s.store.RefreshToken(ctx, hashToken(token))
	if errors.Is(err, latch.ErrNotFound) {
		return Introspection{}, nil
	}
	if err != nil {
		return Introspection{}, fmt.Errorf("auth: look up refresh token: %w", err)
	}
	sess, err := s.store.Session(ctx, rt.SessionID)
	if errors.Is(err, latch.ErrNotFound) {
		return Introspection{}, nil
	}
	if err != nil {
		return Introspection{}, fmt.Errorf("auth: load session: %w", err)
	}
	now := s.clock()
	exp := s.sessionExpiry(sess)
	if sess.ClientID != c.ID || sess.Revoked() || rt.Generation != sess.Generation || !now.Before(exp) {
		return Introspection{}, nil
	}
	return Introspection{
		Active: true, ClientID: sess.ClientID, TokenType: "refresh_token", Sub: sess.UserID,
		Iss: s.cfg.Issuer, Exp: exp.Unix(), Iat: rt.CreatedAt.Unix(), SessionID: sess.ID,
	}, nil
}

// AccountAccess reports whether an access token may use the account API
// (/v1/me, /v1/sessions, /v1/events, /v1/consents, logout-all): it must
// have been issued to Latch's own clients, to a client that signs users in
// through /v1/auth, or to a first-party app. A third-party app's token
// carries only the scopes the user granted it; the user's email, devices,
// security log and other apps are none of them.
func (s *Service) AccountAccess(ctx context.Context, claims *verifier.Claims) (bool, error) {
	switch claims.ClientID {
	case s.cfg.ClientID, AccountClientID:
		return true, nil
	}
	c, err := s.store.Client(ctx, claims.ClientID)
	if errors.Is(err, latch.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("auth: load client: %w", err)
	}
	return len(c.RedirectURIs) == 0 || c.FirstParty, nil
}
