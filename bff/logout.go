package bff

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/gateway"
)

// CSRFHeader is the header a state-changing request authenticated by the
// session cookie must carry (any non-empty value): a cross-site form
// cannot send it, and a cross-site fetch that sets it needs a CORS
// preflight the gateway never grants.
const CSRFHeader = "X-Latch-CSRF"

// csrfField is the form field that carries the session's CSRF token (see
// /auth/session) when a plain HTML form, which cannot set CSRFHeader,
// signs out.
const csrfField = "csrf"

// csrfToken is the session's CSRF token for forms: a MAC of its id.
func (m *Manager) csrfToken(id string) string {
	return base64.RawURLEncoding.EncodeToString(m.sealer.MAC("gateway csrf", []byte(id)))
}

// SameOrigin reports whether r comes from the gateway's own origin:
// Sec-Fetch-Site is same-origin, or, from a browser that does not send
// it, Origin is the gateway's public origin. A request with neither, or
// with Origin "null", is not.
func (m *Manager) SameOrigin(r *http.Request) bool {
	if site := r.Header.Values("Sec-Fetch-Site"); len(site) > 0 {
		return len(site) == 1 && site[0] == "same-origin" && m.originOK(r, true)
	}
	return m.originOK(r, false)
}

// originOK checks the Origin header: absent is fine only if optional.
func (m *Manager) originOK(r *http.Request, optional bool) bool {
	o := r.Header.Values("Origin")
	if len(o) == 0 {
		return optional
	}
	return len(o) == 1 && o[0] == m.origin
}

// navigation reports whether r is a top-level navigation or a form
// submission rather than a fetch.
func navigation(r *http.Request) bool {
	if mode := r.Header.Get("Sec-Fetch-Mode"); mode != "" {
		return mode == "navigate"
	}
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}

// logout is POST /auth/logout. It needs CSRFHeader (a fetch) or the
// session's CSRF token in the form field csrf (an HTML form), and a
// same-origin request; otherwise 403 JSON. It ends the gateway session,
// revokes its refresh token at the auth server and deletes the cookie.
// A fetch gets 200 JSON {"signed_out": true, "end_session_url": …}: the
// gateway session and the tokens are gone, and the page navigates to
// end_session_url to end the user's single sign-on session at the auth
// server too (only the browser carries its cookie). A navigation
// (a form) gets 303 to the auth server's end_session_endpoint with
// id_token_hint and post_logout_redirect_uri PUBLIC_URL/, which ends the
// SSO session too (and tells the other apps by back-channel logout).
func (m *Manager) logout(w http.ResponseWriter, r *http.Request) {
	id, hasSession := m.requestSessionID(r)
	form := false
	if r.Header.Get(CSRFHeader) == "" {
		r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
		ct := r.Header.Get("Content-Type")
		if hasSession && strings.HasPrefix(ct, "application/x-www-form-urlencoded") && r.ParseForm() == nil {
			tok := r.PostForm.Get(csrfField)
			form = tok != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(m.csrfToken(id))) == 1
		}
		if !form {
			writeError(w, http.StatusForbidden, "csrf_failed", "sign-out needs the "+CSRFHeader+" header (or the session's csrf form field)")
			return
		}
	}
	if !m.SameOrigin(r) {
		writeError(w, http.StatusForbidden, "csrf_failed", "cross-site sign-out refused")
		return
	}
	m.clearCookie(w, m.cookie)
	var idToken string
	if hasSession {
		g, err := m.store.GatewaySession(r.Context(), id)
		switch {
		case errors.Is(err, latch.ErrNotFound):
		case err != nil:
			writeError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the session store is unavailable")
			return
		default:
			if !g.Ended() {
				if err := m.end(r.Context(), id, latch.GatewayEndLogout); err != nil {
					writeError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the session store is unavailable")
					return
				}
				if rt, err := m.sealer.Open(g.RefreshToken, tokenAAD("refresh", id)); err == nil && len(rt) > 0 {
					m.revoke(r.Context(), string(rt))
				}
			}
			if b, err := m.sealer.Open(g.IDToken, tokenAAD("id", id)); err == nil {
				idToken = string(b)
			}
		}
	}
	end := m.endSessionURL(r.Context(), idToken)
	if !navigation(r) && !form {
		// A fetch cannot follow a cross-origin redirect with the user's
		// cookies: it gets the URL that ends the sign-in at the auth
		// server too, for the page to navigate to (the SSO session lives
		// in the browser's cookie there, so only the browser can end it).
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, http.StatusOK, map[string]any{"signed_out": true, "end_session_url": end})
		return
	}
	http.Redirect(w, r, end, http.StatusSeeOther)
}

// endSessionURL is the auth server's end_session_endpoint with
// id_token_hint and post_logout_redirect_uri PUBLIC_URL/, or "/" when it
// is unknown.
func (m *Manager) endSessionURL(ctx context.Context, idToken string) string {
	doc, _, err := m.provider.endpoints(ctx)
	if err != nil || doc.EndSessionEndpoint == "" {
		return "/"
	}
	q := url.Values{"client_id": {m.cfg.ClientID}, "post_logout_redirect_uri": {m.origin + "/"}}
	if idToken != "" {
		q.Set("id_token_hint", idToken)
	}
	sep := "?"
	if strings.Contains(doc.EndSessionEndpoint, "?") {
		sep = "&"
	}
	return doc.EndSessionEndpoint + sep + q.Encode()
}

// revoke revokes a refresh token at the auth server (RFC 7009), which
// ends its family there; a failure is logged, the gateway session is
// ended either way.
func (m *Manager) revoke(ctx context.Context, refreshToken string) {
	doc, _, err := m.provider.endpoints(ctx)
	if err == nil && doc.RevocationEndpoint == "" {
		return
	}
	if err == nil {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		var req *http.Request
		form := url.Values{"token": {refreshToken}, "token_type_hint": {"refresh_token"}}
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, doc.RevocationEndpoint, strings.NewReader(form.Encode()))
		if err == nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth(url.QueryEscape(m.cfg.ClientID), url.QueryEscape(m.cfg.ClientSecret))
			var res *http.Response
			if res, err = m.hc.Do(req); err == nil {
				res.Body.Close()
				if res.StatusCode != http.StatusOK {
					err = fmt.Errorf("status %d", res.StatusCode)
				}
			}
		}
	}
	if err != nil {
		m.log.Warn("revoking a refresh token at the auth server failed", "err", err)
	}
}

// eventLogout is the member of a logout token's events claim that makes
// it one (OpenID Connect Back-Channel Logout 1.0 §2.4).
const eventLogout = "http://schemas.openid.net/event/backchannel-logout"

// iatWindow bounds how far a logout token's iat may be from now.
const iatWindow = 5 * time.Minute

// backchannelLogout is POST /auth/backchannel-logout (Back-Channel Logout
// §2.5): the auth server posts a logout token when an SSO session ends;
// every gateway session of its sid (or, without sid, of its sub) ends.
// 200, or 400 JSON for a token that does not verify, or 503 if the store
// is down (the auth server delivers again).
func (m *Manager) backchannelLogout(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", "the body is not a form")
		return
	}
	c, err := m.verifyLogoutToken(r.Context(), r.PostForm.Get("logout_token"))
	if err != nil {
		// The reason goes to the log, not to whoever posted the token:
		// the details would only help someone forging one.
		m.log.Info("back-channel logout refused", "err", err)
		writeError(w, http.StatusBadRequest, "invalid_request", "the logout token is not valid")
		return
	}
	var ids []string
	if c.SID != "" {
		ids, err = m.store.EndGatewaySessionsBySID(r.Context(), c.SID, latch.GatewayEndBackchannel, m.now())
	} else {
		ids, err = m.store.EndGatewaySessionsBySubject(r.Context(), c.Subject, latch.GatewayEndBackchannel, m.now())
	}
	if err != nil {
		m.log.Error("back-channel logout: ending sessions failed", "err", err)
		writeError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the session store is unavailable")
		return
	}
	for _, id := range ids {
		m.forget(r.Context(), id)
	}
	m.replays.record(c.JTI, m.now().Add(2*iatWindow))
	m.metrics.ended.WithLabelValues(latch.GatewayEndBackchannel).Add(float64(len(ids)))
	m.log.Info("back-channel logout", "sid", c.SID, "sub", c.Subject, "ended", len(ids))
	w.WriteHeader(http.StatusOK)
}

// verifyLogoutToken checks a logout token as Back-Channel Logout §2.6
// says: a JWS with typ logout+jwt signed by the auth server, iss, aud the
// gateway's client id, iat near now, exp (if any) not passed, the logout
// event, sid or sub, no nonce, and a jti not seen before.
func (m *Manager) verifyLogoutToken(ctx context.Context, token string) (*jwtClaims, error) {
	if token == "" {
		return nil, errors.New("logout_token is missing")
	}
	if m.provider.static == nil {
		// The key set is found through discovery.
		if _, _, err := m.provider.endpoints(ctx); err != nil {
			return nil, fmt.Errorf("the auth server's keys are unavailable: %w", err)
		}
	}
	c, err := m.provider.verifyJWT(ctx, token, "logout+jwt")
	if err != nil {
		return nil, err
	}
	now := m.now()
	switch {
	case c.IssuedAt == nil:
		return nil, errors.New("iat is missing")
	case seconds(*c.IssuedAt).Before(now.Add(-iatWindow)) || seconds(*c.IssuedAt).After(now.Add(iatWindow)):
		return nil, errors.New("iat is too far from now")
	case c.Expiry != nil && !now.Before(seconds(*c.Expiry).Add(leeway)):
		return nil, errors.New("the logout token expired")
	case c.Nonce != nil:
		return nil, errors.New("a logout token has no nonce")
	case !isObject(c.Events[eventLogout]):
		return nil, errors.New("events has no back-channel logout event")
	case c.SID == "" && c.Subject == "":
		return nil, errors.New("neither sid nor sub")
	case c.JTI == "":
		return nil, errors.New("jti is missing")
	case m.replays.seenBefore(c.JTI, now):
		return nil, errors.New("this logout token was received before")
	}
	return c, nil
}

// isObject reports whether raw is a JSON object.
func isObject(raw json.RawMessage) bool {
	var v map[string]json.RawMessage
	return len(raw) > 0 && json.Unmarshal(raw, &v) == nil && v != nil
}

// replays remembers the jti of the logout tokens acted on, until they
// could no longer pass the iat check. It is per instance: a token
// replayed to another instance ends sessions that are ended already.
type replays struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

func (p *replays) seenBefore(jti string, now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for j, until := range p.seen {
		if now.After(until) {
			delete(p.seen, j)
		}
	}
	_, ok := p.seen[jti]
	return ok
}

func (p *replays) record(jti string, until time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seen[jti] = until
}

// sessionInfo is the answer of /auth/session.
type sessionInfo struct {
	Authenticated bool       `json:"authenticated"`
	Subject       string     `json:"sub,omitempty"`
	ExpiresAt     *time.Time `json:"expires_at,omitempty"`
	CSRF          string     `json:"csrf,omitempty"`
}

// session is GET /auth/session, for single-page apps: whether the browser
// is signed in, as whom, until when at the latest, and the CSRF token
// for a sign-out form. Never a token. 200 either way.
func (m *Manager) session(w http.ResponseWriter, r *http.Request) {
	bs, err := m.Lookup(r)
	if errors.Is(err, gateway.ErrNoSession) {
		writeJSON(w, http.StatusOK, sessionInfo{})
		return
	}
	var g *latch.GatewaySession
	if err == nil {
		g, err = m.load(r.Context(), bs.ID)
	}
	if err != nil {
		if errors.Is(err, gateway.ErrNoSession) {
			writeJSON(w, http.StatusOK, sessionInfo{})
			return
		}
		writeError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "sessions are unavailable")
		return
	}
	exp := g.ExpiresAt
	if idle := g.LastSeenAt.Add(m.idle); idle.Before(exp) {
		exp = idle
	}
	writeJSON(w, http.StatusOK, sessionInfo{Authenticated: true, Subject: g.Subject, ExpiresAt: &exp, CSRF: m.csrfToken(g.ID)})
}
