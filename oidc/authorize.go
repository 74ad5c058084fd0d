package oidc

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/tag"
)

// reauthWindow bounds how long a re-authentication the provider asked for
// may take: its proof (ReauthProof) is honoured that long.
const reauthWindow = 10 * time.Minute

// Request is a validated authorization request (RFC 6749 §4.1.1, OpenID
// Connect Core §3.1.2.1).
type Request struct {
	Client      *latch.Client
	RedirectURI string
	State       string
	Nonce       string
	// Scopes requested, in order, without duplicates.
	Scopes        []string
	CodeChallenge string
	PromptNone    bool
	PromptLogin   bool
	PromptConsent bool
	// MaxAge is the max_age in seconds; -1 when absent.
	MaxAge    int
	LoginHint string
	// HintSubject is the sub of a valid id_token_hint; empty without one.
	HintSubject string
	// After is when the provider sent this browser to sign in again for
	// this very request (ReauthProof); zero if it did not. A sign-in since
	// then satisfies prompt=login, max_age and an id_token_hint for another
	// user, instead of asking again.
	After time.Time
	// Params are the request's parameters, to show the request again
	// after a sign-in or on the consent page.
	Params url.Values
}

// Scope is the requested scope, space-separated.
func (r *Request) Scope() string { return strings.Join(r.Scopes, " ") }

// maxParam bounds each parameter: a request bigger than this is no
// honest one.
const maxParam = 2048

// ParseAuthorization validates an authorization request. Until the client
// and the redirect URI are established every error is a page error; after
// that errors go back to the redirect URI. Unknown parameters are ignored.
func (p *Provider) ParseAuthorization(ctx context.Context, q url.Values) (*Request, error) {
	if err := checkParams(q); err != nil {
		return nil, err
	}
	clientID := q.Get("client_id")
	if clientID == "" {
		return nil, &Error{Code: "invalid_request", Description: "client_id is missing"}
	}
	c, err := p.client(ctx, clientID)
	if err != nil {
		return nil, err
	}
	if c == nil || len(c.RedirectURIs) == 0 {
		return nil, &Error{Code: "invalid_client", Description: "no application is registered with this client_id for signing in"}
	}
	redirect := q.Get("redirect_uri")
	if redirect == "" {
		return nil, &Error{Code: "invalid_request", Description: "redirect_uri is missing"}
	}
	if !RedirectMatches(c, redirect) {
		return nil, &Error{Code: "invalid_request", Description: "redirect_uri is not registered for this application"}
	}
	r := &Request{Client: c, RedirectURI: redirect, State: q.Get("state"), Nonce: q.Get("nonce"), MaxAge: -1,
		LoginHint: q.Get("login_hint"), Params: q}
	fail := func(code, desc string) error {
		return &Error{Code: code, Description: desc, Redirect: redirect, State: r.State}
	}
	switch q.Get("response_type") {
	case "code":
	case "":
		return nil, fail("invalid_request", "response_type is missing")
	default:
		return nil, fail("unsupported_response_type", "only response_type=code is supported (RFC 9700)")
	}
	if m := q.Get("response_mode"); m != "" && m != "query" {
		return nil, fail("invalid_request", "only response_mode=query is supported")
	}
	if q.Has("request") {
		return nil, fail("request_not_supported", "request objects are not supported")
	}
	if q.Has("request_uri") {
		return nil, fail("request_uri_not_supported", "request_uri is not supported")
	}
	for _, s := range strings.Fields(q.Get("scope")) {
		if !slices.Contains(r.Scopes, s) {
			r.Scopes = append(r.Scopes, s)
		}
	}
	if len(r.Scopes) == 0 {
		return nil, fail("invalid_scope", "scope is missing")
	}
	for _, s := range r.Scopes {
		if !slices.Contains(c.Scopes, s) {
			return nil, fail("invalid_scope", "scope '"+Describe(s)+"' is not allowed for this application")
		}
	}
	// PKCE (RFC 7636): S256 only; a challenge without a method is plain
	// (§4.3), which is refused.
	challenge, method := q.Get("code_challenge"), q.Get("code_challenge_method")
	switch {
	case challenge == "" && method != "":
		return nil, fail("invalid_request", "code_challenge_method without code_challenge")
	case challenge == "" && c.Public():
		return nil, fail("invalid_request", "PKCE is required: send code_challenge with code_challenge_method=S256")
	case challenge != "" && method != "S256":
		return nil, fail("invalid_request", "code_challenge_method must be S256 (plain is not supported)")
	case challenge != "" && !validChallenge(challenge):
		return nil, fail("invalid_request", "code_challenge must be the 43-character base64url SHA-256 of the verifier")
	}
	r.CodeChallenge = challenge
	for _, v := range strings.Fields(q.Get("prompt")) {
		switch v {
		case "none":
			r.PromptNone = true
		case "login":
			r.PromptLogin = true
		case "consent":
			r.PromptConsent = true
		case "select_account":
			// One account per browser: the signed-in one is the selection.
		default:
			return nil, fail("invalid_request", "prompt '"+Describe(v)+"' is not supported")
		}
	}
	if r.PromptNone && (r.PromptLogin || r.PromptConsent) {
		return nil, fail("invalid_request", "prompt=none cannot be combined with other values")
	}
	if s := q.Get("max_age"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return nil, fail("invalid_request", "max_age must be a non-negative number of seconds")
		}
		r.MaxAge = n
	}
	if h := q.Get("id_token_hint"); h != "" {
		claims, err := p.verifyIDToken(h)
		if err != nil {
			return nil, fail("invalid_request", "id_token_hint is not an id_token this provider issued")
		}
		r.HintSubject = claims.Subject
	}
	return r, nil
}

// checkParams refuses a request whose parameters appear more than once
// (RFC 6749 §3.1) or are longer than maxParam, as a page error.
func checkParams(q url.Values) error {
	for k, v := range q {
		if len(v) > 1 {
			return &Error{Code: "invalid_request", Description: "parameter '" + Describe(k) + "' appears more than once"}
		}
		if len(v[0]) > maxParam {
			return &Error{Code: "invalid_request", Description: "parameter '" + Describe(k) + "' is too long"}
		}
	}
	return nil
}

// Describe makes a value the client sent fit an error_description, whose
// characters RFC 6749 §4.1.2.1 limits to printable ASCII without '"' and
// '\\': anything else becomes '?', and long values are cut.
func Describe(v string) string {
	const max = 64
	b := make([]byte, 0, min(len(v), max))
	for i := 0; i < len(v) && len(b) < max; i++ {
		c := v[i]
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			c = '?'
		}
		b = append(b, c)
	}
	return string(b)
}

// validChallenge: a base64url SHA-256, 43 characters (RFC 7636 §4.2).
func validChallenge(c string) bool {
	if len(c) != 43 {
		return false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(c)
	return err == nil && len(b) == sha256.Size
}

// RedirectMatches reports whether uri is one of the client's registered
// redirect URIs, compared as strings (RFC 9700 §4.1.3). The one exception
// is RFC 8252 §7.3: a public native client's loopback redirect URI
// (http://127.0.0.1 or http://[::1]) may use any port.
func RedirectMatches(c *latch.Client, uri string) bool {
	for _, reg := range c.RedirectURIs {
		if subtle.ConstantTimeCompare([]byte(reg), []byte(uri)) == 1 {
			return true
		}
		if c.Public() && loopbackEqual(reg, uri) {
			return true
		}
	}
	return false
}

// loopbackEqual: both are http URIs on the same loopback IP literal with
// the same path and query, whatever their ports.
func loopbackEqual(reg, uri string) bool {
	a, err1 := url.Parse(reg)
	b, err2 := url.Parse(uri)
	if err1 != nil || err2 != nil || a.Scheme != "http" || b.Scheme != "http" {
		return false
	}
	ip := net.ParseIP(a.Hostname())
	if ip == nil || !ip.IsLoopback() || a.Hostname() != b.Hostname() {
		return false
	}
	if a.User != nil || b.User != nil || b.Fragment != "" || b.RawFragment != "" || strings.Contains(uri, "#") {
		return false
	}
	if _, err := strconv.ParseUint(b.Port(), 10, 16); b.Port() != "" && err != nil {
		return false
	}
	return a.EscapedPath() == b.EscapedPath() && a.RawQuery == b.RawQuery
}

// Step is what an authorization request needs next.
type Step int

// Steps of an authorization request.
const (
	// StepLogin: the user must sign in (again) at /login.
	StepLogin Step = iota
	// StepConsent: the user must approve the scopes on the consent page.
	StepConsent
	// StepIssue: a code can be issued.
	StepIssue
)

// Decide says what the request needs, given the browser's SSO session
// (nil for none). With prompt=none, a step that needs the user is an
// error for the client instead: login_required or consent_required —
// the same whether or not an account exists.
func (p *Provider) Decide(ctx context.Context, r *Request, sso *latch.SSOSession) (Step, error) {
	step, err := p.decide(ctx, r, sso)
	if err != nil {
		return 0, err
	}
	if r.PromptNone {
		switch step {
		case StepLogin:
			return 0, &Error{Code: "login_required", Description: "the user is not signed in", Redirect: r.RedirectURI, State: r.State}
		case StepConsent:
			return 0, &Error{Code: "consent_required", Description: "the user has not approved this application", Redirect: r.RedirectURI, State: r.State}
		}
	}
	return step, nil
}

func (p *Provider) decide(ctx context.Context, r *Request, sso *latch.SSOSession) (Step, error) {
	if sso == nil {
		return StepLogin, nil
	}
	// A sign-in that followed the request (After) satisfies prompt=login,
	// max_age and an id_token_hint for another user.
	fresh := !r.After.IsZero() && sso.AuthTime.Unix() >= r.After.Unix()
	if r.HintSubject != "" && r.HintSubject != sso.UserID && !fresh {
		return StepLogin, nil
	}
	if r.PromptLogin && !fresh {
		return StepLogin, nil
	}
	if r.MaxAge >= 0 && !fresh && p.now().Unix()-sso.AuthTime.Unix() > int64(r.MaxAge) {
		return StepLogin, nil
	}
	if r.Client.FirstParty && !r.PromptConsent {
		return StepIssue, nil
	}
	if r.PromptConsent {
		return StepConsent, nil
	}
	c, err := p.store.Consent(ctx, sso.UserID, r.Client.ID)
	if errors.Is(err, latch.ErrNotFound) {
		return StepConsent, nil
	}
	if err != nil {
		return 0, wrap("load consent", err)
	}
	for _, s := range r.Scopes {
		if !slices.Contains(c.Scopes, s) {
			return StepConsent, nil
		}
	}
	return StepIssue, nil
}

// LoginReturn is where /login sends the browser back to after the sign-in
// that Decide asked for: the same request, on this provider's own path.
func (p *Provider) LoginReturn(r *Request) string {
	return "/oauth2/authorize?" + r.Params.Encode()
}

// NeedsReauthProof reports whether a sign-in for the request must be
// proven to have followed it (prompt=login, max_age, an id_token_hint):
// then the server gives the browser ReauthProof before sending it to sign
// in, so that the sign-in that follows is not asked for again.
func (r *Request) NeedsReauthProof() bool {
	return r.PromptLogin || r.MaxAge >= 0 || r.HintSubject != ""
}

// reauthPurpose keys the re-authentication proof.
const reauthPurpose = "latch reauth proof v1"

// ReauthProof is the value of the cookie that records, in this browser
// only, when the provider sent it to sign in again for this request: the
// time and a MAC binding it to the request (client, redirect URI, state,
// nonce). It travels in an HttpOnly cookie, never in the URL, so that no
// one can hand another browser a claim of a recent sign-in.
func (p *Provider) ReauthProof(r *Request) string {
	at := strconv.FormatInt(p.now().Unix(), 10)
	return at + "." + tag.Make(p.mac, reauthPurpose, reauthMessage(r, at))
}

// Reauthenticated checks a ReauthProof for the request and sets r.After
// from it; a proof for another request, forged, or older than
// reauthWindow is ignored.
func (p *Provider) Reauthenticated(r *Request, proof string) {
	at, mac, ok := strings.Cut(proof, ".")
	if !ok || len(at) > 20 {
		return
	}
	n, err := strconv.ParseInt(at, 10, 64)
	if err != nil {
		return
	}
	if !tag.Check(p.mac, reauthPurpose, reauthMessage(r, at), mac) {
		return
	}
	t := time.Unix(n, 0)
	if now := p.now(); t.After(now) || now.Sub(t) > reauthWindow {
		return
	}
	r.After = t
}

func reauthMessage(r *Request, at string) []byte {
	return []byte(strings.Join([]string{at, r.Client.ID, r.RedirectURI, r.State, r.Nonce, r.CodeChallenge}, "\x00"))
}

// consentPurpose keys the consent page's form token.
const consentPurpose = "latch consent form v1"

// ConsentToken is the consent form's anti-forgery token: a MAC of the SSO
// session and of the request it approves, so that a form posted by another
// site, for another user or for other scopes is refused.
func (p *Provider) ConsentToken(r *Request, sso *latch.SSOSession) string {
	return tag.Make(p.mac, consentPurpose, consentMessage(r, sso))
}

// CheckConsentToken checks a consent form's token in constant time.
func (p *Provider) CheckConsentToken(r *Request, sso *latch.SSOSession, token string) bool {
	return tag.Check(p.mac, consentPurpose, consentMessage(r, sso), token)
}

func consentMessage(r *Request, sso *latch.SSOSession) []byte {
	return []byte(strings.Join([]string{sso.ID, r.Client.ID, r.RedirectURI, r.Scope(), r.State, r.Nonce, r.CodeChallenge}, "\x00"))
}

// Approve records the user's consent to the request's scopes for its
// client (the union with what was granted before).
func (p *Provider) Approve(ctx context.Context, r *Request, sso *latch.SSOSession) error {
	if err := p.store.GrantConsent(ctx, &latch.Consent{UserID: sso.UserID, ClientID: r.Client.ID,
		Scopes: slices.Sorted(slices.Values(r.Scopes)), GrantedAt: p.clock()}); err != nil {
		return wrap("grant consent", err)
	}
	return nil
}

// Deny is the error that tells the client the user said no.
func Deny(r *Request) *Error {
	return &Error{Code: "access_denied", Description: "the user did not approve the request", Redirect: r.RedirectURI, State: r.State}
}

// CodePrefix starts every authorization code, for secret scanners.
const CodePrefix = "latch_ac_"

// Issue makes an authorization code for the request and the SSO session
// and returns the URL that hands it to the client, with state and iss
// (RFC 9207).
func (p *Provider) Issue(ctx context.Context, r *Request, sso *latch.SSOSession) (string, error) {
	var b [32]byte
	rand.Read(b[:])
	code := CodePrefix + base64.RawURLEncoding.EncodeToString(b[:])
	now := p.clock()
	c := &latch.AuthorizationCode{
		Hash: hashCode(code), ClientID: r.Client.ID, RedirectURI: r.RedirectURI, UserID: sso.UserID,
		SSOSessionID: sso.ID, Scope: r.Scope(), Nonce: r.Nonce, CodeChallenge: r.CodeChallenge,
		AuthTime: sso.AuthTime, AMR: sso.AMR, CreatedAt: now, ExpiresAt: now.Add(p.cfg.CodeTTL),
	}
	if err := p.store.CreateAuthorizationCode(ctx, c); err != nil {
		return "", wrap("store authorization code", err)
	}
	p.touch(ctx, sso)
	q := url.Values{"code": {code}, "iss": {p.cfg.Issuer}}
	if r.State != "" {
		q.Set("state", r.State)
	}
	return addQuery(r.RedirectURI, q), nil
}

func hashCode(code string) []byte {
	h := sha256.Sum256([]byte(code))
	return h[:]
}

// Consents lists the apps the user approved, ordered by client id.
func (p *Provider) Consents(ctx context.Context, userID string) ([]*latch.Consent, error) {
	list, err := p.store.ConsentsByUser(ctx, userID)
	if err != nil {
		return nil, wrap("list consents", err)
	}
	return list, nil
}

// ErrNoConsent: the user has not approved the client.
var ErrNoConsent = errors.New("oidc: no such consent")

// RevokeConsent withdraws the user's approval of a client, and with it
// every session the client holds for the user: an app whose access the
// user revoked keeps no token. The next sign-in asks again.
func (p *Provider) RevokeConsent(ctx context.Context, userID, clientID string) error {
	err := p.store.RevokeConsent(ctx, userID, clientID)
	if errors.Is(err, latch.ErrNotFound) {
		return ErrNoConsent
	}
	if err != nil {
		return wrap("revoke consent", err)
	}
	sessions, err := p.store.SessionsByUser(ctx, userID, p.clock())
	if err != nil {
		return wrap("list sessions", err)
	}
	for _, s := range sessions {
		if s.ClientID == clientID {
			if err := p.auth.RevokeFamily(ctx, s.ID, "consent_revoked"); err != nil {
				return err
			}
		}
	}
	return nil
}
