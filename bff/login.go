package bff

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/latchauth/latch"
	"golang.org/x/oauth2"
)

// loginState is what a sign-in carries from /auth/login to
// /auth/callback, sealed in a cookie bound to the state parameter: no
// server storage, so an unauthenticated request writes nothing to the
// store, and any gateway instance can finish a sign-in another started.
type loginState struct {
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	ReturnTo string `json:"r"`
	Started  int64  `json:"t"` // unix seconds
}

// maxReturnTo bounds the length of return_to.
const maxReturnTo = 2048

// ValidReturnTo reports whether s is a same-origin relative path that is
// safe to redirect to: it starts with a single "/", has no scheme, host
// or user info, no backslash and no control character, and stays so
// however often it is percent-decoded (so that neither "//evil", "/\evil"
// nor their encodings such as "/%2F%2Fevil" or "/%5Cevil" pass).
func ValidReturnTo(s string) bool {
	if s == "" || len(s) > maxReturnTo {
		return false
	}
	for range 4 {
		if !safePath(s) {
			return false
		}
		d, err := url.PathUnescape(s)
		if err != nil {
			return false
		}
		if d == s {
			break
		}
		s = d
	}
	return safePath(s)
}

// safePath checks one decoding of a return_to value.
func safePath(s string) bool {
	if !strings.HasPrefix(s, "/") || strings.HasPrefix(s, "//") || strings.ContainsRune(s, '\\') {
		return false
	}
	for _, c := range s {
		if c < 0x20 || c == 0x7f {
			return false
		}
	}
	u, err := url.Parse(s)
	return err == nil && u.Scheme == "" && u.Host == "" && u.User == nil && u.Opaque == "" && strings.HasPrefix(u.Path, "/")
}

// loginCookie is the name of the cookie carrying the sign-in with the
// state: one per sign-in, so that sign-ins started in two tabs both
// finish.
func (m *Manager) loginCookie(state string) string {
	tag := m.sealer.MAC("gateway login cookie", []byte(state))
	return m.cookie + "_login_" + hex.EncodeToString(tag[:8])
}

// maxPendingLogins bounds the sign-in cookies a browser holds: each
// /auth/login adds one (Path=/, ten minutes), and abandoned sign-ins must
// not pile up until the Cookie header overflows the limits of the gateway,
// the auth server or an upstream.
const maxPendingLogins = 3

// dropStaleLogins deletes the browser's pending sign-in cookies when it
// holds maxPendingLogins already: the sign-ins they belong to fail if
// finished after all, and start again.
func (m *Manager) dropStaleLogins(w http.ResponseWriter, r *http.Request) {
	var pending []string
	for _, c := range r.Cookies() {
		if strings.HasPrefix(c.Name, m.cookie+"_login_") {
			pending = append(pending, c.Name)
		}
	}
	if len(pending) < maxPendingLogins {
		return
	}
	for _, name := range pending {
		m.clearCookie(w, name)
	}
}

// loginAAD binds a sealed sign-in to its state.
func loginAAD(state string) []byte { return []byte("gateway login:" + state) }

// login starts the authorization-code flow: GET
// /auth/login?return_to=/path redirects to the auth server's
// authorization endpoint.
func (m *Manager) login(w http.ResponseWriter, r *http.Request) {
	returnTo := r.URL.Query().Get("return_to")
	if returnTo == "" {
		returnTo = "/"
	}
	if !ValidReturnTo(returnTo) {
		writeError(w, http.StatusBadRequest, "invalid_request", "return_to must be a relative path on this site")
		return
	}
	_, oc, err := m.provider.endpoints(r.Context())
	if err != nil {
		m.log.Warn("sign-in impossible: the auth server's discovery failed", "err", err)
		writeError(w, http.StatusBadGateway, "temporarily_unavailable", "the auth server cannot be reached")
		return
	}
	m.dropStaleLogins(w, r)
	state, nonce := newCookieValue(), newCookieValue()
	ls := loginState{Nonce: nonce, Verifier: oauth2.GenerateVerifier(), ReturnTo: returnTo, Started: m.now().Unix()}
	b, _ := json.Marshal(ls)
	http.SetCookie(w, &http.Cookie{Name: m.loginCookie(state),
		Value: base64.RawURLEncoding.EncodeToString(m.sealer.Seal(b, loginAAD(state))),
		Path:  "/", MaxAge: int(loginTTL / time.Second), Secure: m.secure, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	c := *oc
	c.RedirectURL = m.redirect
	http.Redirect(w, r, c.AuthCodeURL(state, oauth2.S256ChallengeOption(ls.Verifier),
		oauth2.SetAuthURLParam("nonce", nonce)), http.StatusFound)
}

// callback finishes the flow: it checks the state against the sign-in
// cookie, exchanges the code, verifies the id_token and the access token,
// creates the session, sets the session cookie and redirects to
// return_to.
func (m *Manager) callback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	state := q.Get("state")
	if state == "" || len(state) > 256 {
		writeError(w, http.StatusBadRequest, "invalid_request", "state is missing")
		return
	}
	name := m.loginCookie(state)
	ck, err := r.Cookie(name)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", "no sign-in in progress for this state (expired, finished, or started in another browser)")
		return
	}
	m.clearCookie(w, name) // a sign-in finishes once
	box, err := base64.RawURLEncoding.DecodeString(ck.Value)
	var ls loginState
	if err == nil {
		var b []byte
		if b, err = m.sealer.Open(box, loginAAD(state)); err == nil {
			err = json.Unmarshal(b, &ls)
		}
	}
	now := m.now()
	switch {
	case err != nil:
		writeError(w, http.StatusBadRequest, "invalid_request", "the sign-in does not match this state")
		return
	case now.Sub(time.Unix(ls.Started, 0)) > loginTTL || !ValidReturnTo(ls.ReturnTo):
		writeError(w, http.StatusBadRequest, "invalid_request", "the sign-in expired; start again")
		return
	}
	// RFC 9207: the response names its issuer; a response from another
	// one (a mix-up attack) is refused.
	if iss, ok := q["iss"]; ok && (len(iss) != 1 || iss[0] != m.cfg.Issuer) {
		writeError(w, http.StatusBadRequest, "invalid_request", "the response comes from another issuer")
		return
	}
	if e := q.Get("error"); e != "" {
		writeError(w, http.StatusForbidden, "access_denied", "the auth server refused the sign-in: "+cleanCode(e))
		return
	}
	code := q.Get("code")
	if code == "" {
		writeError(w, http.StatusBadRequest, "invalid_request", "code is missing")
		return
	}
	_, oc, err := m.provider.endpoints(r.Context())
	if err != nil {
		writeError(w, http.StatusBadGateway, "temporarily_unavailable", "the auth server cannot be reached")
		return
	}
	c := *oc
	c.RedirectURL = m.redirect
	ctx := context.WithValue(r.Context(), oauth2.HTTPClient, m.hc)
	tok, err := c.Exchange(ctx, code, oauth2.VerifierOption(ls.Verifier))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			m.log.Info("code exchange refused", "error", re.ErrorCode)
			writeError(w, http.StatusBadRequest, "invalid_grant", "the sign-in could not be completed; start again")
			return
		}
		m.log.Warn("code exchange failed", "err", err)
		writeError(w, http.StatusBadGateway, "temporarily_unavailable", "the auth server cannot be reached")
		return
	}
	rawID, _ := tok.Extra("id_token").(string)
	idc, err := m.verifyIDToken(r.Context(), rawID, ls.Nonce, now)
	if err != nil {
		m.log.Warn("id_token refused at sign-in", "err", err)
		writeError(w, http.StatusBadGateway, "invalid_id_token", "the auth server's id_token did not verify")
		return
	}
	claims, err := m.verifier.VerifyContext(r.Context(), tok.AccessToken)
	if err != nil || claims.Subject != idc.Subject {
		m.log.Warn("access token refused at sign-in", "err", err)
		writeError(w, http.StatusBadGateway, "invalid_token", "the auth server's access token did not verify")
		return
	}
	if tok.RefreshToken == "" {
		m.log.Warn("the auth server issued no refresh token (is offline_access granted to the gateway?): the session ends with its access token")
	}
	value := newCookieValue()
	id, _ := sessionID(value)
	g := &latch.GatewaySession{
		ID: id, Subject: idc.Subject, SID: idc.SID,
		AccessToken:     m.sealer.Seal([]byte(tok.AccessToken), tokenAAD("access", id)),
		RefreshToken:    m.sealer.Seal([]byte(tok.RefreshToken), tokenAAD("refresh", id)),
		IDToken:         m.sealer.Seal([]byte(rawID), tokenAAD("id", id)),
		AccessExpiresAt: accessExpiry(tok, claims.ExpiresAt.Time, now),
		CreatedAt:       now, LastSeenAt: now, ExpiresAt: now.Add(m.absolute),
		Version: 1,
	}
	if err := m.store.CreateGatewaySession(r.Context(), g); err != nil {
		m.log.Error("storing a new gateway session failed", "err", err)
		writeError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the session store is unavailable")
		return
	}
	m.metrics.created.Inc()
	m.log.Info("gateway session created", "session", short(id), "sub", idc.Subject)
	m.setSession(w, value)
	http.Redirect(w, r, ls.ReturnTo, http.StatusSeeOther)
}

// cleanCode keeps an OAuth error code printable and short.
func cleanCode(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	return strings.Map(func(r rune) rune {
		if r == '_' || r == '-' || (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			return r
		}
		return -1
	}, s)
}

// tokenAAD is the additional data a session's token of kind is sealed
// with: the session id, so that a sealed token copied to another row, or
// to another column, does not open.
func tokenAAD(kind, id string) []byte { return []byte("gateway " + kind + ":" + id) }

// accessExpiry is when an access token expires by the gateway's clock:
// now + expires_in, or exp (the token's own claim) if the response had
// no expires_in.
func accessExpiry(tok *oauth2.Token, exp, now time.Time) time.Time {
	if tok.ExpiresIn > 0 {
		return now.Add(time.Duration(tok.ExpiresIn) * time.Second)
	}
	return exp
}

// verifyIDToken checks an id_token as OpenID Connect Core §3.1.3.7 says:
// signature with the auth server's keys, iss, aud (and azp), exp, iat,
// nonce, sub.
func (m *Manager) verifyIDToken(ctx context.Context, raw, nonce string, now time.Time) (*jwtClaims, error) {
	if raw == "" {
		return nil, errors.New("no id_token in the token response")
	}
	c, err := m.provider.verifyJWT(ctx, raw, "", "JWT")
	if err != nil {
		return nil, err
	}
	var got string
	if c.Nonce != nil {
		json.Unmarshal(*c.Nonce, &got)
	}
	switch {
	case c.Expiry == nil || !now.Before(seconds(*c.Expiry).Add(leeway)):
		return nil, errors.New("id_token expired")
	case c.IssuedAt == nil || seconds(*c.IssuedAt).After(now.Add(leeway)):
		return nil, errors.New("id_token iat missing or in the future")
	case c.Subject == "":
		return nil, errors.New("id_token without sub")
	case nonce != "" && subtle.ConstantTimeCompare([]byte(got), []byte(nonce)) != 1:
		return nil, errors.New("id_token nonce does not match")
	}
	return c, nil
}
