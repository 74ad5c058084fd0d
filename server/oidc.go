package server

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/oidc"
	"github.com/latchauth/latch/verifier"
	"github.com/latchauth/latch/web"
)

// Pages renders Latch's pages: the routes of package web, and the pages
// the OpenID Provider's endpoints answer with.
type Pages interface {
	http.Handler
	Consent(w http.ResponseWriter, v web.ConsentView)
	LogoutConfirm(w http.ResponseWriter, v web.LogoutView)
	SignedOut(w http.ResponseWriter, v web.SignedOutView)
	Error(w http.ResponseWriter, status int, v web.ErrorView)
}

// Form fields the provider's own pages post besides the request's.
const (
	fieldDecision     = "decision"
	fieldConsentToken = "consent_token"
	fieldLogoutToken  = "logout_token"
)

// noStore marks a response of the provider's browser endpoints as
// uncacheable.
func noStore(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
}

// requestParams reads the parameters of a browser endpoint that accepts
// GET (query) and POST (form body) alike, as OpenID Connect Core §3.1.2.1
// asks of the authorization endpoint. It writes the error page itself and
// reports false when they cannot be read.
func (s *Server) requestParams(w http.ResponseWriter, r *http.Request) (url.Values, bool) {
	if r.Method != http.MethodPost {
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			s.errorPage(w, http.StatusBadRequest, "This request is malformed", "Its parameters are not valid URL encoding.")
			return nil, false
		}
		return q, true
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		s.errorPage(w, http.StatusBadRequest, "This request is malformed", "A POST here must be an HTML form (application/x-www-form-urlencoded).")
		return nil, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		s.errorPage(w, http.StatusRequestEntityTooLarge, "This request is too large", fmt.Sprintf("A form here may hold at most %d bytes.", MaxBodyBytes))
		return nil, false
	}
	q, err := url.ParseQuery(string(body))
	if err != nil {
		s.errorPage(w, http.StatusBadRequest, "This request is malformed", "Its form is not valid URL encoding.")
		return nil, false
	}
	return q, true
}

// errorPage shows an error to the user (never to a client: the request
// could not be tied to a registered redirect URI).
func (s *Server) errorPage(w http.ResponseWriter, status int, title, message string) {
	noStore(w)
	if s.pages == nil {
		writeError(w, status, "invalid_request", message)
		return
	}
	s.pages.Error(w, status, web.ErrorView{Title: title, Message: message})
}

// authorizeError answers an error of an authorization request: on a page
// if the client or its redirect URI is not established, otherwise back to
// the client.
func (s *Server) authorizeError(w http.ResponseWriter, r *http.Request, err error) {
	var oe *oidc.Error
	if !errors.As(err, &oe) {
		s.log.Error("authorization request failed", "err", err)
		s.errorPage(w, http.StatusServiceUnavailable, "Signing in is unavailable right now", "Please try again in a moment.")
		return
	}
	if oe.Page() {
		s.authorizes.WithLabelValues("page_error").Inc()
		s.errorPage(w, http.StatusBadRequest, "This sign-in link is not valid", pageMessage(oe))
		return
	}
	if oe.Code == "access_denied" {
		s.authorizes.WithLabelValues("denied").Inc()
	} else {
		s.authorizes.WithLabelValues("error").Inc()
	}
	s.redirect(w, r, s.oidc.RedirectURL(oe))
}

func pageMessage(e *oidc.Error) string {
	switch e.Code {
	case "invalid_client":
		return "The application that sent you here is not registered with this sign-in service. Go back to the application and try again, or contact its operator."
	}
	return "The application that sent you here made a request this sign-in service cannot accept: " + e.Description + "."
}

// redirect sends the browser on with 303, so that a POST becomes a GET.
func (s *Server) redirect(w http.ResponseWriter, r *http.Request, to string) {
	noStore(w)
	w.Header().Set("Location", to)
	w.WriteHeader(http.StatusSeeOther)
}

// authorizationRequest validates an authorization request, reads the
// browser's SSO session (nil if it has none) and its proof of a
// re-authentication asked for this request, if any. It answers errors
// itself and reports false after doing so.
func (s *Server) authorizationRequest(w http.ResponseWriter, r *http.Request, q url.Values) (*oidc.Request, *latch.SSOSession, bool) {
	req, err := s.oidc.ParseAuthorization(r.Context(), q)
	if err != nil {
		s.authorizeError(w, r, err)
		return nil, nil, false
	}
	sso, err := s.oidc.SSO(r.Context(), value(r, s.cfg.Cookies.SSO))
	if err != nil {
		s.authorizeError(w, r, err)
		return nil, nil, false
	}
	if proof := value(r, s.cfg.Cookies.Reauth); proof != "" {
		s.oidc.Reauthenticated(req, proof)
	}
	return req, sso, true
}

// authorize is the authorization endpoint (RFC 6749 §3.1, OpenID Connect
// Core §3.1.2), GET and POST.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	q, ok := s.requestParams(w, r)
	if !ok {
		return
	}
	req, sso, ok := s.authorizationRequest(w, r, q)
	if !ok {
		return
	}
	step, err := s.oidc.Decide(r.Context(), req, sso)
	if err != nil {
		s.authorizeError(w, r, err)
		return
	}
	switch step {
	case oidc.StepLogin:
		to := url.Values{"return_to": {s.oidc.LoginReturn(req)}}
		if req.LoginHint != "" {
			to.Set("login_hint", req.LoginHint)
		}
		s.authorizes.WithLabelValues("login").Inc()
		if req.NeedsReauthProof() {
			s.cfg.Cookies.setReauth(w, s.oidc.ReauthProof(req))
		}
		s.redirect(w, r, "/login?"+to.Encode())
	case oidc.StepConsent:
		s.authorizes.WithLabelValues("consent").Inc()
		s.showConsent(w, r, req, sso)
	default:
		s.issueCode(w, r, req, sso)
	}
}

func (s *Server) issueCode(w http.ResponseWriter, r *http.Request, req *oidc.Request, sso *latch.SSOSession) {
	to, err := s.oidc.Issue(r.Context(), req, sso)
	if err != nil {
		s.authorizeError(w, r, err)
		return
	}
	s.authorizes.WithLabelValues("code").Inc()
	if value(r, s.cfg.Cookies.Reauth) != "" {
		s.cfg.Cookies.clearReauth(w)
	}
	s.redirect(w, r, to)
}

// showConsent renders the consent page: the request travels in hidden
// fields with a token that binds it to the SSO session.
func (s *Server) showConsent(w http.ResponseWriter, r *http.Request, req *oidc.Request, sso *latch.SSOSession) {
	noStore(w)
	if s.pages == nil {
		writeError(w, http.StatusForbidden, "consent_required", "this server has no pages to ask the user")
		return
	}
	fields := hiddenFields(req.Params)
	fields = append(fields, web.Field{Name: fieldConsentToken, Value: s.oidc.ConsentToken(req, sso)})
	email := ""
	if u, err := s.auth.User(r.Context(), sso.UserID); err == nil {
		email = u.Email
	}
	s.pages.Consent(w, web.ConsentView{
		ClientID: req.Client.ID, ClientName: req.Client.Name, RedirectHost: hostOf(req.RedirectURI), UserEmail: email, Scopes: req.Scopes,
		Action: "/oauth2/consent", Fields: fields, FormTargets: []string{originOf(req.RedirectURI)},
	})
}

// consent takes the consent page's answer. The request is validated again
// from its hidden fields, and the form token must bind it to this
// browser's SSO session: a form posted from another site, for another
// user, or with altered scopes is refused.
func (s *Server) consent(w http.ResponseWriter, r *http.Request) {
	q, ok := s.requestParams(w, r)
	if !ok {
		return
	}
	if len(q[fieldDecision]) != 1 || len(q[fieldConsentToken]) != 1 {
		// The page posts exactly one of each: a second decision smuggled
		// in through the request's own parameters must not outvote the
		// button the user pressed.
		s.errorPage(w, http.StatusBadRequest, "This form is not valid", "Choose Allow or Deny on the consent page.")
		return
	}
	decision, token := q.Get(fieldDecision), q.Get(fieldConsentToken)
	q.Del(fieldDecision)
	q.Del(fieldConsentToken)
	if !s.sameOrigin(r) {
		s.errorPage(w, http.StatusForbidden, "This form came from another site", "Approving an application is only possible from this service's own consent page.")
		return
	}
	req, sso, ok := s.authorizationRequest(w, r, q)
	if !ok {
		return
	}
	if sso == nil {
		// Signed out meanwhile: sign in again, then decide again.
		s.redirect(w, r, "/login?"+url.Values{"return_to": {s.oidc.LoginReturn(req)}}.Encode())
		return
	}
	if !s.oidc.CheckConsentToken(req, sso, token) {
		s.errorPage(w, http.StatusForbidden, "This form has expired", "Go back to the application and sign in again.")
		return
	}
	switch decision {
	case "allow":
		if err := s.oidc.Approve(r.Context(), req, sso); err != nil {
			s.authorizeError(w, r, err)
			return
		}
		s.issueCode(w, r, req, sso)
	case "deny":
		s.authorizeError(w, r, oidc.Deny(req))
	default:
		s.errorPage(w, http.StatusBadRequest, "This form is incomplete", "Choose Allow or Deny on the consent page.")
	}
}

// sameOrigin reports whether a form post came from this server's own
// pages, as far as the browser says (Origin, else Sec-Fetch-Site). A
// browser that sends neither passes: the form token still binds the post
// to the SSO session.
func (s *Server) sameOrigin(r *http.Request) bool {
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		return o == originOf(s.cfg.Issuer) || o == requestOrigin(r)
	}
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
		return true
	}
	return false
}

// requestOrigin is the origin the request was addressed to.
func requestOrigin(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// hiddenFields carries a request's parameters through a form, in a stable
// order, without the names the provider's own forms use: those come only
// from the page itself.
func hiddenFields(q url.Values) []web.Field {
	var out []web.Field
	for _, k := range sortedKeys(q) {
		switch k {
		case fieldDecision, fieldConsentToken, fieldLogoutToken:
			continue
		}
		out = append(out, web.Field{Name: k, Value: q.Get(k)})
	}
	return out
}

func sortedKeys(q url.Values) []string {
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// originOf is the scheme://host[:port] of a URL ("" if it has none).
func originOf(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.Scheme == "" || p.Host == "" {
		return ""
	}
	return p.Scheme + "://" + p.Host
}

// hostOf is the host of a URL, for showing where the user is sent.
func hostOf(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return ""
	}
	if p.Host == "" {
		return p.Scheme + ":"
	}
	return p.Host
}

// userinfo is the UserInfo endpoint (OpenID Connect Core §5.3): the access
// token in the Authorization header or, for POST, in the form body
// (RFC 6750 §2.1, §2.2), never in the query.
func (s *Server) userinfo(w http.ResponseWriter, r *http.Request) {
	noStore(w)
	token, hasHeader := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if r.Header.Get("Authorization") != "" && !hasHeader {
		bearerError(w, http.StatusBadRequest, "invalid_request", "use the Bearer scheme")
		return
	}
	if r.URL.Query().Has("access_token") {
		bearerError(w, http.StatusBadRequest, "invalid_request", "send the access token in the Authorization header or the form body, not the URL")
		return
	}
	if r.Method == http.MethodPost && r.ContentLength != 0 {
		mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if mt == "application/x-www-form-urlencoded" {
			body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
			if err != nil {
				bearerError(w, http.StatusBadRequest, "invalid_request", "the request body could not be read")
				return
			}
			form, err := url.ParseQuery(string(body))
			if err != nil || len(form["access_token"]) > 1 {
				bearerError(w, http.StatusBadRequest, "invalid_request", "the form is malformed")
				return
			}
			if t := form.Get("access_token"); t != "" {
				if hasHeader {
					bearerError(w, http.StatusBadRequest, "invalid_request", "send the access token once, not in both the header and the body")
					return
				}
				token, hasHeader = t, true
			}
		}
	}
	if !hasHeader || token == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="latch"`)
		writeError(w, http.StatusUnauthorized, "invalid_token", "an access token is required")
		return
	}
	claims, err := s.verifier.VerifyContext(r.Context(), token)
	if err != nil {
		bearerError(w, http.StatusUnauthorized, "invalid_token", "the access token is invalid, expired or revoked")
		return
	}
	info, err := s.oidc.UserInfo(r.Context(), claims)
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, info)
	case errors.Is(err, oidc.ErrInsufficientScope):
		bearerError(w, http.StatusForbidden, "insufficient_scope", "the access token was not granted the openid scope")
	case errors.Is(err, oidc.ErrInvalidToken):
		bearerError(w, http.StatusUnauthorized, "invalid_token", "the access token names no user")
	default:
		s.fail(w, r, err)
	}
}

// bearerError answers as RFC 6750 §3 says: the error in WWW-Authenticate
// and in the JSON body.
func bearerError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="latch", error=%q, error_description=%q`, code, desc))
	writeError(w, status, code, desc)
}

// endSession is RP-initiated logout (OpenID Connect RP-Initiated Logout
// 1.0), GET and POST. With an id_token_hint for the signed-in user the
// SSO session ends at once; otherwise the user confirms on a page whose
// form token is bound to the SSO session. Either way the browser then
// goes to the registered post_logout_redirect_uri, or sees the
// signed-out page.
func (s *Server) endSession(w http.ResponseWriter, r *http.Request) {
	q, ok := s.requestParams(w, r)
	if !ok {
		return
	}
	if len(q[fieldDecision]) > 1 || len(q[fieldLogoutToken]) > 1 {
		s.errorPage(w, http.StatusBadRequest, "This form is not valid", "Open the sign-out link again.")
		return
	}
	decision, token := q.Get(fieldDecision), q.Get(fieldLogoutToken)
	confirming := r.Method == http.MethodPost && decision != ""
	q.Del(fieldDecision)
	q.Del(fieldLogoutToken)
	l, err := s.oidc.ParseLogout(r.Context(), q)
	if err != nil {
		var oe *oidc.Error
		if errors.As(err, &oe) {
			s.errorPage(w, http.StatusBadRequest, "This sign-out link is not valid", pageMessage(oe))
		} else {
			s.fail(w, r, err)
		}
		return
	}
	sso, err := s.oidc.SSO(r.Context(), value(r, s.cfg.Cookies.SSO))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	switch {
	case sso == nil:
		// Nothing to end in this browser.
	case l.Confirmed(sso):
	case confirming && decision == "logout" && s.sameOrigin(r) && s.oidc.CheckLogoutToken(sso, token):
	case confirming && decision == "stay":
		s.redirect(w, r, "/account")
		return
	case confirming:
		s.errorPage(w, http.StatusForbidden, "This form has expired", "Open the sign-out link again.")
		return
	default:
		s.showLogoutConfirm(w, l, sso)
		return
	}
	if sso != nil {
		if err := s.oidc.EndSSO(r.Context(), sso, "logout", s.deviceOf(r)); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	s.cfg.Cookies.clearSSO(w)
	s.cfg.Cookies.clear(w)
	if to := l.RedirectURL(); to != "" {
		s.redirect(w, r, to)
		return
	}
	noStore(w)
	if s.pages == nil {
		w.WriteHeader(http.StatusOK)
		return
	}
	s.pages.SignedOut(w, web.SignedOutView{})
}

func (s *Server) showLogoutConfirm(w http.ResponseWriter, l *oidc.Logout, sso *latch.SSOSession) {
	noStore(w)
	if s.pages == nil {
		writeError(w, http.StatusBadRequest, "invalid_request", "send id_token_hint to sign out without confirmation")
		return
	}
	fields := hiddenFields(l.Params)
	fields = append(fields, web.Field{Name: fieldLogoutToken, Value: s.oidc.LogoutToken(sso)})
	v := web.LogoutView{Action: "/oauth2/logout", Fields: fields}
	if l.Client != nil {
		v.ClientID, v.ClientName = l.Client.ID, l.Client.Name
	}
	if l.Redirect != "" {
		v.FormTargets = []string{originOf(l.Redirect)}
	}
	s.pages.LogoutConfirm(w, v)
}

// consentInfo is one entry of GET /v1/consents.
type consentInfo struct {
	ClientID   string    `json:"client_id"`
	ClientName string    `json:"client_name,omitempty"`
	Scopes     []string  `json:"scopes"`
	GrantedAt  time.Time `json:"granted_at"`
}

// consents lists the apps the signed-in user approved.
func (s *Server) consents(w http.ResponseWriter, r *http.Request, c *verifier.Claims) {
	if s.oidc == nil || c.SessionID == "" {
		writeError(w, http.StatusForbidden, "insufficient_scope", "a user's access token is required")
		return
	}
	list, err := s.oidc.Consents(r.Context(), c.Subject)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := make([]consentInfo, 0, len(list))
	for _, cs := range list {
		info := consentInfo{ClientID: cs.ClientID, Scopes: cs.Scopes, GrantedAt: cs.GrantedAt}
		if c, err := s.auth.Client(r.Context(), cs.ClientID); err == nil {
			info.ClientName = c.Name
		}
		out = append(out, info)
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{"consents": out})
}

// deleteConsent withdraws the user's approval of an app and revokes the
// app's sessions of the user.
func (s *Server) deleteConsent(w http.ResponseWriter, r *http.Request, c *verifier.Claims) {
	if s.oidc == nil || c.SessionID == "" {
		writeError(w, http.StatusForbidden, "insufficient_scope", "a user's access token is required")
		return
	}
	err := s.oidc.RevokeConsent(r.Context(), c.Subject, r.PathValue("client"))
	switch {
	case err == nil:
		w.WriteHeader(http.StatusNoContent)
	case errors.Is(err, oidc.ErrNoConsent):
		writeError(w, http.StatusNotFound, "not_found", "no such app has access")
	default:
		s.fail(w, r, err)
	}
}
