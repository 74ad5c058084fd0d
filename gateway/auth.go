package gateway

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/latchauth/latch/verifier"
)

// authToken authenticates a request on an auth: token route: a bearer
// token, or else the browser session (with the CSRF rule). It answers the
// request itself and reports false when the request may not pass.
func (g *Gateway) authToken(w http.ResponseWriter, r *http.Request, rt *route, csrf bool) (*identity, bool) {
	vals := r.Header.Values("Authorization")
	if len(vals) == 0 && g.sessions != nil {
		return g.authSession(w, r, rt, csrf)
	}
	tok, ok := verifier.BearerToken(r)
	if !ok {
		if len(vals) > 1 || len(vals) == 1 && isBearerScheme(vals[0]) {
			g.authFailed(rt, "malformed")
			const desc = "the Authorization header is not a single bearer token"
			writeChallenge(w, http.StatusBadRequest, `Bearer error="invalid_request", error_description="`+desc+`"`, "invalid_request", desc)
			return nil, false
		}
		g.authFailed(rt, "missing_token")
		writeChallenge(w, http.StatusUnauthorized, "Bearer", "unauthorized", "a bearer token is required")
		return nil, false
	}
	c, err := rt.verifier.VerifyContext(r.Context(), tok)
	if err != nil {
		g.authFailed(rt, reason(err))
		desc := "the token is invalid"
		var ve *verifier.Error
		if errors.As(err, &ve) {
			desc = ve.Description()
		}
		desc = headerSafe(desc)
		writeChallenge(w, http.StatusUnauthorized, `Bearer error="invalid_token", error_description="`+desc+`"`, "invalid_token", desc)
		return nil, false
	}
	if !g.scopesOK(w, rt, c) {
		return nil, false
	}
	// The bearer token passes upstream unchanged.
	return &identity{claims: c}, true
}

// authSession authenticates a request by its browser session: the CSRF
// rule first for unsafe methods (so that a forged request cannot even
// cause a refresh), then the session, whose access token is verified
// like a bearer token for the route's audience and scopes.
func (g *Gateway) authSession(w http.ResponseWriter, r *http.Request, rt *route, csrf bool) (*identity, bool) {
	// A WebSocket handshake is a GET that carries the cookie: without an
	// Origin check any site could open a socket as the user (cross-site
	// WebSocket hijacking). Browsers always send Origin on it.
	if !safeMethod(r.Method) && !csrf || r.Header.Get("Upgrade") != "" && !g.sameOrigin(r) {
		g.authFailed(rt, "csrf")
		writeJSON(w, http.StatusForbidden, "csrf_failed", "a state-changing request needs the "+HeaderCSRF+" header and a same-origin Origin")
		return nil, false
	}
	if g.sessions == nil {
		g.signedOut(w, r, rt)
		return nil, false
	}
	s, err := g.sessions.Lookup(r)
	switch {
	case errors.Is(err, ErrNoSession):
		g.signedOut(w, r, rt)
		return nil, false
	case err != nil:
		g.authFailed(rt, "session_store")
		g.log.Error("gateway: session lookup", "route", rt.Path, "err", err)
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusServiceUnavailable, "temporarily_unavailable", "sessions are unavailable; try again")
		return nil, false
	case s == nil || s.AccessToken == "":
		g.signedOut(w, r, rt)
		return nil, false
	}
	c, err := rt.verifier.VerifyContext(r.Context(), s.AccessToken)
	switch {
	case errors.Is(err, verifier.ErrStale):
		g.authFailed(rt, reason(err))
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusServiceUnavailable, "temporarily_unavailable", "revocations cannot be checked now; try again")
		return nil, false
	case errors.Is(err, verifier.ErrAudience):
		g.authFailed(rt, reason(err))
		writeJSON(w, http.StatusForbidden, "access_denied", "the session's token is not meant for this route")
		return nil, false
	case err != nil:
		// Revoked, expired: the session is over as far as this request
		// goes.
		g.authFailed(rt, reason(err))
		g.signedOut(w, r, rt)
		return nil, false
	}
	if !g.scopesOK(w, rt, c) {
		return nil, false
	}
	return &identity{claims: c, token: s.AccessToken}, true
}

// scopesOK answers 403 insufficient_scope unless c has every scope of the
// route.
func (g *Gateway) scopesOK(w http.ResponseWriter, rt *route, c *verifier.Claims) bool {
	for _, s := range rt.Scopes {
		if !c.HasScope(s) {
			g.authFailed(rt, "insufficient_scope")
			writeChallenge(w, http.StatusForbidden, `Bearer error="insufficient_scope", scope="`+rt.scopes+`"`, "insufficient_scope", "the token lacks a scope this route requires")
			return false
		}
	}
	return true
}

// signedOut answers a request without a session: a navigation on a
// session route goes to sign-in, coming back to the same path; anything
// else (XHR, fetch, API clients) gets 401 JSON, never a redirect.
func (g *Gateway) signedOut(w http.ResponseWriter, r *http.Request, rt *route) {
	g.authFailed(rt, "no_session")
	if rt.Auth == AuthSession && (r.Method == http.MethodGet || r.Method == http.MethodHead) && navigation(r) {
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, "/auth/login?return_to="+url.QueryEscape(returnTo(r)), http.StatusFound)
		return
	}
	writeChallenge(w, http.StatusUnauthorized, "Bearer", "login_required", "sign in first")
}

// returnTo is where sign-in comes back to: the request's own path and
// query, never a scheme or a host (an absolute-form request line such as
// GET http://evil.example/ has its host dropped).
func returnTo(r *http.Request) string {
	p := r.URL.EscapedPath()
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") {
		p = "/"
	}
	if r.URL.RawQuery != "" {
		p += "?" + r.URL.RawQuery
	}
	return p
}

// navigation reports whether the browser is loading a page (not a
// script's request): Sec-Fetch-Mode: navigate, or, from browsers that
// send no Fetch Metadata, an Accept that asks for HTML.
func navigation(r *http.Request) bool {
	if m := r.Header.Get("Sec-Fetch-Mode"); m != "" {
		return m == "navigate"
	}
	return strings.Contains(strings.ToLower(r.Header.Get("Accept")), "text/html")
}

// csrfOK applies the CSRF rule to a request authenticated by the session
// cookie: the X-Latch-CSRF header (which a cross-site form cannot send
// without a CORS preflight the gateway never grants) and a same-origin
// request by Origin, or by Sec-Fetch-Site when there is no Origin. An
// Origin of "null" (sandboxed frames, some redirects) is refused.
func (g *Gateway) csrfOK(r *http.Request) bool {
	if r.Header.Get(HeaderCSRF) == "" {
		return false
	}
	site := r.Header.Values("Sec-Fetch-Site")
	if len(site) > 1 || len(site) == 1 && site[0] != "same-origin" {
		return false
	}
	if len(r.Header.Values("Origin")) == 0 {
		return len(site) == 1
	}
	return g.sameOrigin(r)
}

// sameOrigin reports whether the request carries exactly one Origin, the
// gateway's own.
func (g *Gateway) sameOrigin(r *http.Request) bool {
	o := r.Header.Values("Origin")
	return len(o) == 1 && strings.EqualFold(o[0], g.origin)
}

// safeMethod: methods that must not change state.
func safeMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}

func isBearerScheme(v string) bool {
	scheme, _, _ := strings.Cut(v, " ")
	return strings.EqualFold(scheme, "Bearer")
}

// reason is the metric label of a verification failure.
func reason(err error) string {
	for _, k := range []struct {
		err   error
		label string
	}{
		{verifier.ErrExpired, "expired"},
		{verifier.ErrRevoked, "revoked"},
		{verifier.ErrAudience, "audience"},
		{verifier.ErrStale, "stale"},
		{verifier.ErrSignature, "signature"},
		{verifier.ErrUnknownKey, "unknown_key"},
		{verifier.ErrIssuer, "issuer"},
		{verifier.ErrNotYetValid, "not_yet_valid"},
		{verifier.ErrType, "type"},
		{verifier.ErrAlgorithm, "algorithm"},
		{verifier.ErrHeader, "header"},
		{verifier.ErrClaims, "claims"},
		{verifier.ErrMalformed, "malformed"},
	} {
		if errors.Is(err, k.err) {
			return k.label
		}
	}
	return "invalid"
}

func (g *Gateway) authFailed(rt *route, why string) {
	g.metrics.authFailures.WithLabelValues(rt.Path, why).Inc()
}

// writeChallenge answers an RFC 6750 error: the WWW-Authenticate challenge
// and a JSON body.
func writeChallenge(w http.ResponseWriter, status int, challenge, code, desc string) {
	w.Header().Set("WWW-Authenticate", challenge)
	writeJSON(w, status, code, desc)
}

// headerSafe keeps only the characters RFC 6750 allows in
// error_description.
func headerSafe(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 0x20 && c <= 0x7e && c != '"' && c != '\\' {
			b = append(b, c)
		}
	}
	return string(b)
}
