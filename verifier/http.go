package verifier

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
)

type claimsKey struct{}

// WithClaims returns a copy of ctx carrying c.
func WithClaims(ctx context.Context, c *Claims) context.Context {
	return context.WithValue(ctx, claimsKey{}, c)
}

// ClaimsFrom returns the claims stored in ctx by Middleware (or WithClaims).
func ClaimsFrom(ctx context.Context) (*Claims, bool) {
	c, ok := ctx.Value(claimsKey{}).(*Claims)
	return c, ok && c != nil
}

// bearer outcomes
const (
	bearerNone      = iota // no credentials, or another scheme
	bearerOK               // exactly one well-formed bearer token
	bearerMalformed        // a Bearer credential that is not well-formed
)

// BearerToken returns the token of an "Authorization: Bearer <token>"
// header (RFC 6750 §2.1): the scheme is matched case-insensitively, it must
// be followed by exactly one space and one b64token, and the request must
// have exactly one Authorization header. It reports false otherwise.
func BearerToken(r *http.Request) (string, bool) {
	tok, state := bearer(r)
	return tok, state == bearerOK
}

func bearer(r *http.Request) (string, int) {
	vals := r.Header.Values("Authorization")
	if len(vals) == 0 {
		return "", bearerNone
	}
	if len(vals) > 1 {
		return "", bearerMalformed
	}
	v := vals[0]
	scheme, tok, found := strings.Cut(v, " ")
	if !asciiEqualFold(scheme, "Bearer") {
		return "", bearerNone
	}
	if !found || !isB64Token(tok) {
		return "", bearerMalformed
	}
	return tok, bearerOK
}

// isB64Token reports whether s matches RFC 6750's
// b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func isB64Token(s string) bool {
	i := 0
	for i < len(s) {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/' {
			i++
			continue
		}
		break
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}

// Middleware authenticates requests with VerifyContext under the request's
// context. A request with a valid bearer token reaches next with the
// claims in its context (see ClaimsFrom). Otherwise the response follows RFC 6750 §3 with
// Cache-Control: no-store and a JSON body {"error", "error_description"}:
//
//   - no Authorization header, or another scheme: 401 with
//     "WWW-Authenticate: Bearer" and no error attribute (§3.1);
//   - a malformed Bearer credential (two tokens, an empty token, several
//     Authorization headers): 400 invalid_request;
//   - a token that fails verification: 401 invalid_token with the error's
//     safe description.
func (v *Verifier) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, ok := v.Authenticate(w, r); ok {
			next.ServeHTTP(w, r.WithContext(WithClaims(r.Context(), c)))
		}
	})
}

// Authenticate verifies the bearer token of r and returns its claims. When
// the request carries no valid token it writes the answer Middleware
// documents and reports false. Handlers that authenticate for themselves
// use it to give the same answers.
func (v *Verifier) Authenticate(w http.ResponseWriter, r *http.Request) (*Claims, bool) {
	tok, state := bearer(r)
	fromCookie := false
	if state == bearerNone && len(r.Header.Values("Authorization")) == 0 && v.cookie != "" {
		if c, err := r.Cookie(v.cookie); err == nil && c.Value != "" {
			tok, state, fromCookie = c.Value, bearerOK, true
		}
	}
	switch state {
	case bearerNone:
		writeError(w, http.StatusUnauthorized, `Bearer`, "unauthorized", "a bearer token is required")
		return nil, false
	case bearerMalformed:
		const desc = "the Authorization header is not a single bearer token"
		writeError(w, http.StatusBadRequest, `Bearer error="invalid_request", error_description="`+desc+`"`, "invalid_request", desc)
		return nil, false
	}
	c, err := v.VerifyContext(r.Context(), tok)
	if err != nil {
		desc := "the token is invalid"
		var ve *Error
		if errors.As(err, &ve) {
			desc = ve.Description()
		}
		desc = headerSafe(desc)
		writeError(w, http.StatusUnauthorized, `Bearer error="invalid_token", error_description="`+desc+`"`, "invalid_token", desc)
		return nil, false
	}
	if fromCookie && !v.CrossSiteSafe(r) {
		writeCSRFFailed(w)
		return nil, false
	}
	return c, true
}

// WriteUnauthorized answers 401 invalid_token with the RFC 6750 challenge
// and desc as the description.
func WriteUnauthorized(w http.ResponseWriter, desc string) {
	desc = headerSafe(desc)
	writeError(w, http.StatusUnauthorized, `Bearer error="invalid_token", error_description="`+desc+`"`, "invalid_token", desc)
}

// CrossSiteSafe reports whether a request authenticated by a cookie may
// proceed: safe methods always; unsafe ones only with an X-CSRF-Token header
// equal to the CSRF cookie (compared in constant time) and not from another
// site, judged by Sec-Fetch-Site and Origin, unless the Origin is allowed.
func (v *Verifier) CrossSiteSafe(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return true
	}
	if !SameSiteOrAllowed(r, v.allowedOrigins) {
		return false
	}
	c, err := r.Cookie(v.csrfCookie)
	h := r.Header.Get(CSRFHeader)
	return err == nil && c.Value != "" && h != "" && subtle.ConstantTimeCompare([]byte(c.Value), []byte(h)) == 1
}

// CSRFHeader is the request header that carries the anti-CSRF token.
const CSRFHeader = "X-CSRF-Token"

// SameSiteOrAllowed applies the Fetch Metadata and Origin checks to an
// unsafe request authenticated by a cookie: refused when the browser says
// it comes from another site (Sec-Fetch-Site: cross-site) or when its
// Origin is neither the request's own host nor in allowed. Requests from
// browsers that send neither header pass; the CSRF token still guards them.
func SameSiteOrAllowed(r *http.Request, allowed map[string]bool) bool {
	origin := r.Header.Get("Origin")
	if origin != "" && allowed[origin] {
		return true
	}
	if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
		return false
	}
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	return err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host)
}

// writeCSRFFailed answers 403 csrf_failed.
func writeCSRFFailed(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusForbidden)
	w.Write([]byte(`{"error":"csrf_failed","error_description":"the request lacks a valid anti-CSRF token or comes from another site"}` + "\n"))
}

// RequireScope lets a request through to next only if the claims in its
// context (put there by Middleware) include scope; otherwise it answers
// 403 insufficient_scope (RFC 6750 §3.1), or 401 if there are no claims at
// all. It panics if scope is not a valid scope token (RFC 6749 §3.3).
func RequireScope(scope string, next http.Handler) http.Handler {
	if !isScopeToken(scope) {
		panic("verifier: RequireScope: invalid scope token")
	}
	challenge := `Bearer error="insufficient_scope", scope="` + scope + `"`
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := ClaimsFrom(r.Context())
		if !ok {
			writeError(w, http.StatusUnauthorized, `Bearer`, "unauthorized", "a bearer token is required")
			return
		}
		if !c.HasScope(scope) {
			writeError(w, http.StatusForbidden, challenge, "insufficient_scope", "")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// isScopeToken: 1*( %x21 / %x23-5B / %x5D-7E ).
func isScopeToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// headerSafe keeps only the characters RFC 6750 allows in error_description
// (%x20-21 / %x23-5B / %x5D-7E). Descriptions are fixed texts; this is a
// second line of defence.
func headerSafe(s string) string {
	ok := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 0x20 && c <= 0x7e && c != '"' && c != '\\' {
			b = append(b, c)
		}
	}
	return string(b)
}

func writeError(w http.ResponseWriter, status int, challenge, code, desc string) {
	h := w.Header()
	h.Set("WWW-Authenticate", challenge)
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	body, _ := json.Marshal(struct {
		Error       string `json:"error"`
		Description string `json:"error_description,omitempty"`
	}{code, desc})
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}
