package server

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/auth"
	"github.com/latchauth/latch/oidc"
)

// parseForm reads an application/x-www-form-urlencoded body of at most
// MaxBodyBytes. Parameters may appear once (RFC 6749 §3.2). It writes the
// 4xx itself and reports false when the body is unacceptable.
func parseForm(w http.ResponseWriter, r *http.Request) (url.Values, bool) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		writeError(w, http.StatusBadRequest, "invalid_request", "Content-Type must be application/x-www-form-urlencoded")
		return nil, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, "request_too_large", fmt.Sprintf("request body exceeds %d bytes", MaxBodyBytes))
		} else {
			writeError(w, http.StatusBadRequest, "invalid_request", "request body could not be read")
		}
		return nil, false
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", "request body is not valid form encoding")
		return nil, false
	}
	for k, v := range form {
		if len(v) > 1 {
			writeError(w, http.StatusBadRequest, "invalid_request", "parameter '"+oidc.Describe(k)+"' appears more than once")
			return nil, false
		}
	}
	if len(r.URL.RawQuery) > 0 {
		writeError(w, http.StatusBadRequest, "invalid_request", "parameters belong in the request body, not the URL")
		return nil, false
	}
	return form, true
}

// authenticateClient reads the client's credentials from HTTP Basic
// (client_secret_basic, values form-encoded per RFC 6749 §2.3.1) or from
// the form (client_secret_post, or client_id alone for a public client)
// and checks them. It writes 400/401 itself and reports false on failure.
func (s *Server) authenticateClient(w http.ResponseWriter, r *http.Request, form url.Values) (*latch.Client, bool) {
	basicID, basicSecret, hasBasic := r.BasicAuth()
	_, hasPostSecret := form["client_secret"]
	var id, secret string
	hasSecret := false
	switch {
	case hasBasic && hasPostSecret:
		writeError(w, http.StatusBadRequest, "invalid_request", "use one client authentication method, not two")
		return nil, false
	case hasBasic:
		var err1, err2 error
		id, err1 = url.QueryUnescape(basicID)
		secret, err2 = url.QueryUnescape(basicSecret)
		if err1 != nil || err2 != nil {
			s.invalidClient(w, true)
			return nil, false
		}
		if p := form.Get("client_id"); p != "" && p != id {
			writeError(w, http.StatusBadRequest, "invalid_request", "client_id differs from the authenticated client")
			return nil, false
		}
		// An empty password is no secret: a public client that libraries
		// (x/oauth2's auto-detection) send as "Basic id:" is a public
		// client, and a confidential one still fails for lack of one.
		hasSecret = secret != ""
	default:
		id, secret, hasSecret = form.Get("client_id"), form.Get("client_secret"), hasPostSecret
	}
	if id == "" {
		s.invalidClient(w, hasBasic)
		return nil, false
	}
	c, err := s.auth.AuthenticateClient(r.Context(), id, secret, hasSecret)
	switch {
	case err == nil:
		return c, true
	case errors.Is(err, auth.ErrInvalidClient):
		s.invalidClient(w, hasBasic)
	default:
		s.fail(w, r, err)
	}
	return nil, false
}

// invalidClient answers RFC 6749 §5.2 invalid_client: 401 with a Basic
// challenge.
func (s *Server) invalidClient(w http.ResponseWriter, basic bool) {
	w.Header().Set("WWW-Authenticate", `Basic realm="latch", charset="UTF-8"`)
	writeError(w, http.StatusUnauthorized, "invalid_client", "client authentication failed")
}

// oauthTokenResponse is RFC 6749 §5.1.
type oauthTokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
	IDToken      string `json:"id_token,omitempty"`
}

// token is the OAuth 2.0 token endpoint. The client is authenticated before
// anything else, so a refresh token is never consumed for a client that
// failed to authenticate.
func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	form, ok := parseForm(w, r)
	if !ok {
		return
	}
	c, ok := s.authenticateClient(w, r, form)
	if !ok {
		return
	}
	var (
		t   *auth.Tokens
		id  string // id_token
		err error
	)
	switch grant := form.Get("grant_type"); grant {
	case "client_credentials":
		t, err = s.auth.ClientCredentials(r.Context(), c, form.Get("scope"))
	case "authorization_code":
		if s.oidc == nil {
			writeError(w, http.StatusBadRequest, "unsupported_grant_type", "this server does not offer the authorization code grant")
			return
		}
		var ot *oidc.Tokens
		ot, err = s.oidc.Exchange(r.Context(), c, form.Get("code"), form.Get("redirect_uri"), form.Get("code_verifier"), s.deviceOf(r))
		if err == nil {
			t, id = ot.Tokens, ot.IDToken
		}
	case "refresh_token":
		rt := form.Get("refresh_token")
		if rt == "" {
			writeError(w, http.StatusBadRequest, "invalid_request", "refresh_token is required")
			return
		}
		if s.oidc != nil {
			var ot *oidc.Tokens
			ot, err = s.oidc.Refresh(r.Context(), c, rt, form.Get("scope"), s.deviceOf(r))
			if err == nil {
				t, id = ot.Tokens, ot.IDToken
			}
		} else {
			t, err = s.auth.RefreshForClient(r.Context(), c, rt, form.Get("scope"), s.deviceOf(r))
		}
	case "":
		writeError(w, http.StatusBadRequest, "invalid_request", "grant_type is required")
		return
	default:
		writeError(w, http.StatusBadRequest, "unsupported_grant_type",
			"supported grant types: authorization_code, client_credentials, refresh_token (the password grant is not offered, RFC 9700)")
		return
	}
	var ge *oidc.GrantError
	switch {
	case errors.Is(err, auth.ErrRiskDenied):
		riskDenied(w)
	case err == nil:
		writeJSON(w, http.StatusOK, oauthTokenResponse{
			AccessToken: t.AccessToken, TokenType: "Bearer", ExpiresIn: int64(t.ExpiresIn / time.Second),
			RefreshToken: t.RefreshToken, Scope: t.Scope, IDToken: id,
		})
	case errors.As(err, &ge) && errors.Is(err, oidc.ErrInvalidRequest):
		writeError(w, http.StatusBadRequest, "invalid_request", ge.Description)
	case errors.As(err, &ge):
		writeError(w, http.StatusBadRequest, "invalid_grant", ge.Description)
	case errors.Is(err, auth.ErrInvalidGrant):
		writeError(w, http.StatusBadRequest, "invalid_grant", "the refresh token is invalid, expired, revoked, or was issued to another client")
	case errors.Is(err, auth.ErrInvalidScope):
		writeError(w, http.StatusBadRequest, "invalid_scope", "the requested scope exceeds what the client may be granted")
	case errors.Is(err, auth.ErrUnauthorizedClient):
		writeError(w, http.StatusBadRequest, "unauthorized_client", "this client may not use this grant type")
	default:
		s.fail(w, r, err)
	}
}

// revoke is RFC 7009 token revocation.
func (s *Server) revoke(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	form, ok := parseForm(w, r)
	if !ok {
		return
	}
	c, ok := s.authenticateClient(w, r, form)
	if !ok {
		return
	}
	tok := form.Get("token")
	if tok == "" {
		writeError(w, http.StatusBadRequest, "invalid_request", "token is required")
		return
	}
	if err := s.auth.RevokeToken(r.Context(), c, tok, s.deviceOf(r)); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// introspect is RFC 7662 token introspection, for confidential clients.
func (s *Server) introspect(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	form, ok := parseForm(w, r)
	if !ok {
		return
	}
	c, ok := s.authenticateClient(w, r, form)
	if !ok {
		return
	}
	if c.Public() {
		s.invalidClient(w, false)
		return
	}
	tok := form.Get("token")
	if tok == "" {
		writeError(w, http.StatusBadRequest, "invalid_request", "token is required")
		return
	}
	in, err := s.auth.Introspect(r.Context(), c, tok)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, in)
}

// metadata is the RFC 8414 authorization server metadata, served also as
// the OpenID Connect discovery document (OpenID Connect Discovery 1.0
// §3): one document, every member true of this server.
func (s *Server) metadata(w http.ResponseWriter, r *http.Request) {
	iss := strings.TrimSuffix(s.cfg.Issuer, "/")
	methods := []string{"client_secret_basic", "client_secret_post"}
	grants := []string{"client_credentials", "refresh_token"}
	doc := map[string]any{
		"issuer":                                        s.cfg.Issuer,
		"token_endpoint":                                iss + "/oauth2/token",
		"jwks_uri":                                      iss + "/.well-known/jwks.json",
		"revocation_endpoint":                           iss + "/oauth2/revoke",
		"introspection_endpoint":                        iss + "/oauth2/introspect",
		"response_types_supported":                      []string{},
		"token_endpoint_auth_methods_supported":         append(methods, "none"),
		"revocation_endpoint_auth_methods_supported":    append(methods, "none"),
		"introspection_endpoint_auth_methods_supported": methods,
		"access_token_signing_alg_values_supported":     []string{s.cfg.Algorithm},
		"revocation_feed_endpoint":                      iss + "/v1/revocations",
	}
	if s.oidc != nil {
		grants = append([]string{"authorization_code"}, grants...)
		doc["authorization_endpoint"] = iss + "/oauth2/authorize"
		doc["userinfo_endpoint"] = iss + "/oauth2/userinfo"
		doc["end_session_endpoint"] = iss + "/oauth2/logout"
		doc["response_types_supported"] = []string{"code"}
		doc["response_modes_supported"] = []string{"query"}
		doc["subject_types_supported"] = []string{"public"}
		doc["id_token_signing_alg_values_supported"] = s.cfg.IDTokenAlgorithms
		doc["code_challenge_methods_supported"] = []string{"S256"}
		doc["scopes_supported"] = oidc.SupportedScopes
		doc["claims_supported"] = oidc.SupportedClaims
		doc["claims_parameter_supported"] = false
		doc["request_parameter_supported"] = false
		doc["request_uri_parameter_supported"] = false
		doc["prompt_values_supported"] = []string{"none", "login", "consent", "select_account"}
		doc["backchannel_logout_supported"] = true
		doc["backchannel_logout_session_supported"] = true
		doc["frontchannel_logout_supported"] = false
		doc["authorization_response_iss_parameter_supported"] = true
	}
	doc["grant_types_supported"] = grants
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Header().Set("Access-Control-Allow-Origin", "*")
	writeJSON(w, http.StatusOK, doc)
}
