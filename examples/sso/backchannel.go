package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net/http"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// eventLogout is the member of a logout token's events claim that makes
// it a logout token (OpenID Connect Back-Channel Logout 1.0 §2.4).
const eventLogout = "http://schemas.openid.net/event/backchannel-logout"

// iatWindow bounds how far a logout token's iat may be from now.
const iatWindow = 5 * time.Minute

// backchannelLogout is the back-channel logout endpoint (§2.5): Latch
// POSTs a logout token here when the SSO session ends (logout at any app,
// "sign out everywhere", an administrator's logout-all, token theft
// detected). The app ends its sessions of that SSO session.
func (a *app) backchannelLogout(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		logoutError(w, "the body is not a form")
		return
	}
	sid, sub, err := a.verifyLogoutToken(r, r.PostForm.Get("logout_token"))
	if err != nil {
		log.Printf("%s: back-channel logout refused: %v", a.name, err)
		logoutError(w, err.Error())
		return
	}
	n := a.endSessions(sid, sub)
	log.Printf("%s: back-channel logout sid=%s sub=%s: %d session(s) ended", a.name, sid, sub, n)
	w.WriteHeader(http.StatusOK)
}

// logoutError answers §2.8: 400 with an OAuth-style JSON error.
func logoutError(w http.ResponseWriter, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	json.NewEncoder(w).Encode(map[string]string{"error": "invalid_request", "error_description": desc})
}

// verifyLogoutToken validates a logout token as §2.6 says and returns its
// sid and sub: a JWS with typ logout+jwt, signed by a key of the
// provider's JWKS, with this app's client id in aud, the provider's iss, an
// iat near now, an unexpired exp, an events claim holding the logout event,
// a sid or a sub, no nonce, and a jti not seen before.
func (a *app) verifyLogoutToken(r *http.Request, token string) (sid, sub string, err error) {
	if token == "" {
		return "", "", errors.New("logout_token is missing")
	}
	jws, err := jose.ParseSigned(token, []jose.SignatureAlgorithm{jose.RS256, jose.PS256, jose.ES256, jose.EdDSA})
	if err != nil || len(jws.Signatures) != 1 {
		return "", "", errors.New("logout_token is not a JWS")
	}
	// typ tells a logout token from an id_token (RFC 8725 §3.11): an
	// id_token, which the same keys sign, is never taken for one.
	if typ, _ := jws.Signatures[0].Protected.ExtraHeaders[jose.HeaderType].(string); typ != "logout+jwt" {
		return "", "", fmt.Errorf("typ %q is not logout+jwt", typ)
	}
	// Signature with the provider's JWKS, iss, aud and exp.
	tok, err := a.logouts.Verify(r.Context(), token)
	if err != nil {
		return "", "", fmt.Errorf("logout_token: %w", err)
	}
	var c struct {
		SID    string                     `json:"sid"`
		JTI    string                     `json:"jti"`
		Events map[string]json.RawMessage `json:"events"`
		Nonce  *json.RawMessage           `json:"nonce"`
	}
	if err := tok.Claims(&c); err != nil {
		return "", "", fmt.Errorf("logout_token claims: %w", err)
	}
	now := a.now()
	switch {
	case tok.IssuedAt.IsZero():
		return "", "", errors.New("iat is missing")
	case tok.IssuedAt.Before(now.Add(-iatWindow)) || tok.IssuedAt.After(now.Add(iatWindow)):
		return "", "", errors.New("iat is too far from now")
	case c.Nonce != nil:
		return "", "", errors.New("a logout token has no nonce")
	case !isObject(c.Events[eventLogout]):
		return "", "", errors.New("events has no back-channel logout event")
	case c.SID == "" && tok.Subject == "":
		return "", "", errors.New("neither sid nor sub")
	case c.JTI == "":
		return "", "", errors.New("jti is missing")
	}
	// A token is accepted once (§2.6 step 9 allows refusing replays).
	a.mu.Lock()
	defer a.mu.Unlock()
	for j, exp := range a.seen {
		if now.After(exp) {
			delete(a.seen, j)
		}
	}
	if _, dup := a.seen[c.JTI]; dup {
		return "", "", errors.New("this logout token was received before")
	}
	a.seen[c.JTI] = tok.Expiry
	return c.SID, tok.Subject, nil
}

// isObject reports whether raw is a JSON object.
func isObject(raw json.RawMessage) bool {
	var m map[string]any
	return len(raw) > 0 && json.Unmarshal(raw, &m) == nil && m != nil
}

// endSessions ends the app's sessions of the SSO session sid, or with no
// sid every session of the user sub, and returns how many ended.
func (a *app) endSessions(sid, sub string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for id, s := range a.sessions {
		if (sid != "" && s.SID == sid && (sub == "" || s.Subject == sub)) || (sid == "" && s.Subject == sub) {
			delete(a.sessions, id)
			n++
		}
	}
	return n
}
