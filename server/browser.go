package server

import (
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/auth"
	"github.com/latchauth/latch/verifier"
)

// Cookies describes the cookies of the browser delivery modes.
type Cookies struct {
	// Access, Refresh and CSRF are the cookie names.
	Access, Refresh, CSRF string
	// SSO is the name of the OpenID Provider's SSO-session cookie: always
	// host-only on the issuer's host, whatever Domain says, since no other
	// host needs it.
	SSO string
	// Reauth is the name of the cookie that proves a re-authentication
	// the provider asked for (oidc.Provider.ReauthProof); host-only too.
	Reauth string
	// Secure sets the Secure attribute (and allows the name prefixes).
	Secure bool
	// Domain, if set, shares the cookies with subdomains.
	Domain string
}

// RefreshPath is the only path the refresh cookie is sent to: the auth
// endpoints (refresh and logout). Resource paths never receive it.
const RefreshPath = "/v1/auth"

// NewCookies names the cookies for an issuer. Over https, and on
// localhost (which browsers treat as secure), cookies are Secure and carry
// the __Host- prefix (host-only, Path=/) or, for the refresh cookie whose
// path is narrower and for a shared domain, __Secure-. Plain http on any
// other host gets plain names without Secure, for development only.
func NewCookies(issuer, domain string) Cookies {
	secure := false
	if u, err := url.Parse(issuer); err == nil {
		host := u.Hostname()
		ip := net.ParseIP(host)
		secure = u.Scheme == "https" || host == "localhost" || (ip != nil && ip.IsLoopback())
	}
	switch {
	case !secure:
		return Cookies{Access: "latch_at", Refresh: "latch_rt", CSRF: "latch_csrf", SSO: "latch_sso", Reauth: "latch_reauth", Domain: domain}
	case domain != "":
		return Cookies{Access: "__Secure-latch_at", Refresh: "__Secure-latch_rt", CSRF: "__Secure-latch_csrf", SSO: "__Host-latch_sso", Reauth: "__Host-latch_reauth", Secure: true, Domain: domain}
	default:
		return Cookies{Access: "__Host-latch_at", Refresh: "__Secure-latch_rt", CSRF: "__Host-latch_csrf", SSO: "__Host-latch_sso", Reauth: "__Host-latch_reauth", Secure: true}
	}
}

// setSSO writes the SSO cookie: HttpOnly, host-only, SameSite=Lax so that
// it rides the top-level navigation from an app to /oauth2/authorize and
// no cross-site subrequest or form post.
func (c Cookies) setSSO(w http.ResponseWriter, value string, maxAge time.Duration) {
	http.SetCookie(w, &http.Cookie{Name: c.SSO, Value: value, Path: "/", MaxAge: int(maxAge / time.Second),
		Secure: c.Secure, HttpOnly: true, SameSite: http.SameSiteLaxMode})
}

// setReauth writes the re-authentication proof for the sign-in about to
// happen: HttpOnly, host-only, Lax (it must come back on the navigation
// from /login to /oauth2/authorize), ten minutes.
func (c Cookies) setReauth(w http.ResponseWriter, value string) {
	http.SetCookie(w, &http.Cookie{Name: c.Reauth, Value: value, Path: "/", MaxAge: 600,
		Secure: c.Secure, HttpOnly: true, SameSite: http.SameSiteLaxMode})
}

// clearReauth deletes the re-authentication proof once it served.
func (c Cookies) clearReauth(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: c.Reauth, Value: "", Path: "/", MaxAge: -1,
		Secure: c.Secure, HttpOnly: true, SameSite: http.SameSiteLaxMode})
}

// clearSSO deletes the SSO cookie.
func (c Cookies) clearSSO(w http.ResponseWriter) {
	if c.SSO == "" {
		return
	}
	http.SetCookie(w, &http.Cookie{Name: c.SSO, Value: "", Path: "/", MaxAge: -1,
		Secure: c.Secure, HttpOnly: true, SameSite: http.SameSiteLaxMode})
}

func (c Cookies) cookie(name, value, path string, maxAge time.Duration, httpOnly bool, site http.SameSite) *http.Cookie {
	ck := &http.Cookie{Name: name, Value: value, Path: path, Secure: c.Secure, HttpOnly: httpOnly, SameSite: site, Domain: c.Domain}
	if maxAge > 0 {
		ck.MaxAge = int(maxAge / time.Second)
	} else {
		ck.MaxAge = -1 // delete
	}
	return ck
}

// set writes the cookies of a browser token response.
func (c Cookies) set(w http.ResponseWriter, t *auth.Tokens) {
	if t.Delivery == latch.DeliveryCookie {
		// The cookie outlives the token it holds, as long as the session:
		// an expired token still reaches the server, which answers
		// invalid_token, and the SDK knows to refresh.
		http.SetCookie(w, c.cookie(c.Access, t.AccessToken, "/", t.RefreshExpiresIn, true, http.SameSiteLaxMode))
	}
	http.SetCookie(w, c.cookie(c.Refresh, t.RefreshToken, RefreshPath, t.RefreshExpiresIn, true, http.SameSiteStrictMode))
	// Readable by JavaScript on purpose: it is no credential, only the
	// session-bound token to echo in X-CSRF-Token.
	http.SetCookie(w, c.cookie(c.CSRF, t.CSRFToken, "/", t.RefreshExpiresIn, false, http.SameSiteStrictMode))
}

// clear deletes every cookie set writes, with the same Path and Domain.
func (c Cookies) clear(w http.ResponseWriter) {
	http.SetCookie(w, c.cookie(c.Access, "", "/", 0, true, http.SameSiteLaxMode))
	http.SetCookie(w, c.cookie(c.Refresh, "", RefreshPath, 0, true, http.SameSiteStrictMode))
	http.SetCookie(w, c.cookie(c.CSRF, "", "/", 0, false, http.SameSiteStrictMode))
}

// present reports whether the request carries any of the cookies.
func (c Cookies) present(r *http.Request) bool {
	for _, n := range []string{c.Access, c.Refresh} {
		if ck, err := r.Cookie(n); err == nil && ck.Value != "" {
			return true
		}
	}
	return false
}

// value returns a cookie's value, or "".
func value(r *http.Request, name string) string {
	if c, err := r.Cookie(name); err == nil {
		return c.Value
	}
	return ""
}

// browserTokenResponse is the body of a login or refresh for a browser
// client: no refresh token ever, the access token only in memory mode.
type browserTokenResponse struct {
	AccessToken           string `json:"access_token,omitempty"`
	TokenType             string `json:"token_type"`
	ExpiresIn             int64  `json:"expires_in"`
	RefreshTokenExpiresIn int64  `json:"refresh_token_expires_in"`
	SessionID             string `json:"session_id"`
	CSRFToken             string `json:"csrf_token"`
}

// writeTokens answers a login or refresh as the client's delivery mode
// says: bearer tokens in the body, or cookies.
func (s *Server) writeTokens(w http.ResponseWriter, t *auth.Tokens) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	switch t.Delivery {
	case latch.DeliveryCookie, latch.DeliveryMemory:
		s.cfg.Cookies.set(w, t)
		body := browserTokenResponse{
			TokenType: "cookie", ExpiresIn: int64(t.ExpiresIn / time.Second),
			RefreshTokenExpiresIn: int64(t.RefreshExpiresIn / time.Second), SessionID: t.SessionID, CSRFToken: t.CSRFToken,
		}
		if t.Delivery == latch.DeliveryMemory {
			body.AccessToken, body.TokenType = t.AccessToken, "Bearer"
		}
		writeJSON(w, http.StatusOK, body)
	default:
		writeJSON(w, http.StatusOK, tokenResponse{
			AccessToken: t.AccessToken, TokenType: "Bearer", ExpiresIn: int64(t.ExpiresIn / time.Second),
			RefreshToken: t.RefreshToken, RefreshTokenExpiresIn: int64(t.RefreshExpiresIn / time.Second),
			SessionID: t.SessionID,
		})
	}
}

// csrfFailed answers 403 csrf_failed.
func csrfFailed(w http.ResponseWriter) {
	writeError(w, http.StatusForbidden, "csrf_failed", "the request lacks a valid anti-CSRF token or comes from another site")
}

// browserRequestOK is the CSRF defence of a state-changing request that a
// browser authenticated with cookies: not from another site, and carrying
// the CSRF token of sessionID, which also matches the CSRF cookie.
func (s *Server) browserRequestOK(r *http.Request, sessionID string) bool {
	if !verifier.SameSiteOrAllowed(r, s.origins) {
		return false
	}
	h := r.Header.Get(verifier.CSRFHeader)
	return h != "" && h == value(r, s.cfg.Cookies.CSRF) && s.auth.CheckCSRF(sessionID, h)
}

// cors answers preflights and adds the CORS headers for allowed origins.
// Only origins listed in the configuration get them, with credentials; no
// wildcard is ever sent with credentials.
func (s *Server) cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" || !s.origins[origin] || !corsPath(r.URL.Path) {
			if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
				// A preflight from an origin we do not serve: no CORS
				// headers, so the browser refuses the real request.
				w.Header().Add("Vary", "Origin")
				w.WriteHeader(http.StatusNoContent)
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", origin)
		h.Set("Access-Control-Allow-Credentials", "true")
		h.Add("Vary", "Origin")
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Set("Access-Control-Allow-Methods", "GET, POST, DELETE")
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, "+verifier.CSRFHeader)
			h.Set("Access-Control-Max-Age", strconv.Itoa(600))
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h.Set("Access-Control-Expose-Headers", "WWW-Authenticate, Retry-After")
		next.ServeHTTP(w, r)
	})
}

// corsPath: the API answers other origins; pages and metadata do not need
// credentialed CORS.
func corsPath(p string) bool {
	return strings.HasPrefix(p, "/v1/") || strings.HasPrefix(p, "/oauth2/")
}
