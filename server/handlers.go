package server

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/latchauth/latch/account"
	"github.com/latchauth/latch/auth"
	"github.com/latchauth/latch/challenge"
	"github.com/latchauth/latch/email"
	"github.com/latchauth/latch/password"
	"github.com/latchauth/latch/verifier"
)

type credentials struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	// ClientID optionally names the registered public client (a
	// first-party app) the session is for.
	ClientID string `json:"client_id"`
}

type refreshRequest struct {
	RefreshToken string `json:"refresh_token"`
}

// tokenResponse is the body of a successful login or refresh.
type tokenResponse struct {
	AccessToken           string `json:"access_token"`
	TokenType             string `json:"token_type"`
	ExpiresIn             int64  `json:"expires_in"`
	RefreshToken          string `json:"refresh_token"`
	RefreshTokenExpiresIn int64  `json:"refresh_token_expires_in"`
	SessionID             string `json:"session_id"`
}

// busy answers 503 when password hashing capacity is exhausted.
func busy(w http.ResponseWriter) {
	w.Header().Set("Retry-After", "1")
	writeError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "too many sign-ins at once; retry shortly")
}

func (s *Server) register(w http.ResponseWriter, r *http.Request) {
	var req credentials
	if !decode(w, r, &req) {
		return
	}
	if msg := required("email", req.Email, "password", req.Password); msg != "" {
		writeError(w, http.StatusBadRequest, "invalid_request", msg)
		return
	}
	u, err := s.auth.Register(r.Context(), req.Email, req.Password, s.deviceOf(r))
	var policy *password.PolicyError
	var badEmail *email.Error
	var throttled *auth.ThrottleError
	switch {
	case err == nil:
		if s.account != nil {
			// The account exists either way: a failure to enqueue the
			// email is logged, and the user can ask for another link.
			if err := s.account.SendVerification(r.Context(), u); err != nil {
				s.log.Error("enqueue verification email failed", "user_id", u.ID, "err", err)
			}
		}
		writeJSON(w, http.StatusCreated, map[string]string{"user_id": u.ID})
	case errors.Is(err, auth.ErrRegistrationDisabled):
		writeError(w, http.StatusForbidden, "registration_disabled", "self-service registration is disabled on this server")
	case errors.As(err, &throttled):
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(throttled.RetryAfter.Seconds()))))
		writeError(w, http.StatusTooManyRequests, "rate_limited", "too many attempts from this address; try again later")
	case errors.As(err, &policy):
		writeError(w, http.StatusBadRequest, "weak_password", policy.Error())
	case errors.As(err, &badEmail):
		writeError(w, http.StatusBadRequest, "invalid_request", fmt.Sprintf("email is not a valid address: %v: %s", badEmail.Kind, badEmail.Detail))
	case errors.Is(err, auth.ErrEmailTaken) && s.account != nil && s.auth.Config().RequireVerifiedEmail:
		// Nobody signs in before verifying, so the answer can be the
		// same as for a new address: the registrant learns nothing, and
		// the owner is told (by email, through the durable outbox;
		// throttled per address like the other account emails).
		if s.account.AllowEmail(r.Context(), req.Email, s.deviceOf(r)) == nil {
			if err := s.account.Request(r.Context(), account.RequestRegistered, req.Email, s.deviceOf(r)); err != nil {
				s.fail(w, r, err)
				return
			}
		}
		writeJSON(w, http.StatusCreated, map[string]string{"user_id": auth.DecoyUserID()})
	case errors.Is(err, auth.ErrEmailTaken):
		writeError(w, http.StatusConflict, "email_taken", "an account with this email already exists")
	case errors.Is(err, password.ErrBusy):
		busy(w)
	default:
		s.fail(w, r, err)
	}
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	var req credentials
	if !decode(w, r, &req) {
		return
	}
	if msg := required("email", req.Email, "password", req.Password); msg != "" {
		writeError(w, http.StatusBadRequest, "invalid_request", msg)
		return
	}
	var (
		link func(context.Context, *auth.Authentication) (string, error)
		sso  string // the new SSO session's cookie
	)
	if s.pageClient(req.ClientID) {
		// Latch's own sign-in page: the browser signs in at the provider.
		// Only the page itself may do that (no login CSRF from elsewhere).
		if !s.sameOrigin(r) {
			csrfFailed(w)
			return
		}
		var err error
		if link, err = s.pageSignIn(r, &sso); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	t, err := s.auth.SignIn(r.Context(), req.Email, req.Password, req.ClientID, s.deviceOf(r), link)
	s.answerSignIn(w, r, t, sso, err)
}

// pageClient reports whether clientID is Latch's own sign-in page, whose
// sign-ins also start the provider's SSO session.
func (s *Server) pageClient(clientID string) bool {
	return clientID == auth.AccountClientID && s.oidc != nil
}

// pageSignIn returns the link hook of a sign-in on Latch's own page: once
// the sign-in is admitted, it ends the browser's earlier SSO session (the
// apps of the old one are told) and starts a new one, whose cookie it
// leaves in *sso for answerSignIn to set.
func (s *Server) pageSignIn(r *http.Request, sso *string) (func(context.Context, *auth.Authentication) (string, error), error) {
	old, err := s.oidc.SSO(r.Context(), value(r, s.cfg.Cookies.SSO))
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, a *auth.Authentication) (string, error) {
		if old != nil {
			if err := s.oidc.EndSSO(ctx, old, "signed_in_again", s.deviceOf(r)); err != nil {
				return "", err
			}
		}
		created, cookie, err := s.oidc.StartSSO(ctx, a, s.deviceOf(r))
		if err != nil {
			return "", err
		}
		*sso = cookie
		return created.ID, nil
	}, nil
}

// answerSignIn answers a sign-in (a login, or a completed challenge): the
// tokens in the client's delivery mode with the SSO cookie of a page
// sign-in, or the error.
func (s *Server) answerSignIn(w http.ResponseWriter, r *http.Request, t *auth.Tokens, sso string, err error) {
	var (
		throttled *auth.ThrottleError
		held      *auth.ChallengeRequired
	)
	switch {
	case err == nil:
		if sso != "" {
			s.cfg.Cookies.setSSO(w, sso, s.oidc.CookieMaxAge())
		}
		if s.deviceReg != nil {
			s.deviceReg.SetCookie(w, r)
		}
		s.writeTokens(w, t)
	case errors.As(err, &held):
		// The password was right, but the session waits for the code
		// emailed to the user: 403, as the sign-in is refused for now
		// (401 would ask for other credentials, and send SDKs to refresh).
		// A browser without a device cookie gets one now: the challenge
		// is bound to the device id it began with, and only the browser
		// holding that cookie can complete it.
		if s.deviceReg != nil {
			s.deviceReg.SetCookie(w, r)
		}
		writeJSON(w, http.StatusForbidden, challengeRequired{Error: "challenge_required",
			Description: "a code was sent to your email; enter it to finish signing in", ChallengeID: held.ID})
	case errors.Is(err, auth.ErrRiskDenied):
		writeError(w, http.StatusForbidden, "access_denied", "sign-in from this location is not allowed")
	case errors.Is(err, auth.ErrInvalidCredentials):
		// An unverified account's right password is answered the same
		// (auth.ErrEmailNotVerified); where sign-in needs a verified
		// address, every such answer says it may be the reason.
		msg := "email or password is incorrect"
		if s.auth.Config().RequireVerifiedEmail {
			msg = invalidOrUnverifiedMessage
		}
		writeError(w, http.StatusUnauthorized, "invalid_credentials", msg)
	case errors.Is(err, auth.ErrUserLocked):
		writeError(w, http.StatusForbidden, "account_locked", accountLockedMessage)
	case errors.Is(err, auth.ErrUnauthorizedClient):
		writeError(w, http.StatusBadRequest, "unauthorized_client", "client_id does not name a public client that may sign users in")
	case errors.As(err, &throttled):
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(throttled.RetryAfter.Seconds()))))
		switch {
		case errors.Is(throttled, auth.ErrAccountLocked):
			writeError(w, http.StatusForbidden, "account_locked", "too many failed sign-ins for this account; try again later")
		case errors.Is(throttled, challenge.ErrTooManyCodes):
			writeError(w, http.StatusTooManyRequests, "rate_limited", "too many sign-in codes were sent to this account's email; try again later")
		default:
			writeError(w, http.StatusTooManyRequests, "rate_limited", "too many sign-in attempts; try again later")
		}
	case errors.Is(err, password.ErrBusy):
		busy(w)
	default:
		s.fail(w, r, err)
	}
}

// refresh redeems the refresh token of the body (bearer clients) or, for
// browser clients, of the refresh cookie, which needs the CSRF token too.
func (s *Server) refresh(w http.ResponseWriter, r *http.Request) {
	var req refreshRequest
	if r.ContentLength != 0 && !decode(w, r, &req) {
		return
	}
	var (
		t   *auth.Tokens
		err error
	)
	switch rt := value(r, s.cfg.Cookies.Refresh); {
	case req.RefreshToken != "":
		t, err = s.auth.Refresh(r.Context(), req.RefreshToken, s.deviceOf(r))
	case rt != "":
		csrf := r.Header.Get(verifier.CSRFHeader)
		if !verifier.SameSiteOrAllowed(r, s.origins) || csrf == "" || csrf != value(r, s.cfg.Cookies.CSRF) {
			csrfFailed(w)
			return
		}
		t, err = s.auth.RefreshFromCookie(r.Context(), rt, csrf, s.deviceOf(r))
	case r.Header.Get(verifier.CSRFHeader) != "":
		// A browser refresh whose cookies are gone (signed out in
		// another tab, cleared): the session is over, not malformed.
		writeError(w, http.StatusUnauthorized, "invalid_grant", "the session's cookies are gone; sign in again")
		return
	default:
		writeError(w, http.StatusBadRequest, "invalid_request", `field "refresh_token" is required`)
		return
	}
	switch {
	case err == nil:
		s.writeTokens(w, t)
	case errors.Is(err, auth.ErrCSRF):
		csrfFailed(w)
	case errors.Is(err, auth.ErrInvalidGrant):
		if s.cfg.Cookies.present(r) {
			s.cfg.Cookies.clear(w) // the session is over: so are its cookies
		}
		writeError(w, http.StatusUnauthorized, "invalid_grant", "the refresh token is invalid, expired or revoked")
	case errors.Is(err, auth.ErrRiskDenied):
		riskDenied(w)
	default:
		s.fail(w, r, err)
	}
}

// riskDenied answers a sign-in or refresh a guard refused (an IP or
// country rule, a risk score): 403 access_denied.
func riskDenied(w http.ResponseWriter) {
	writeError(w, http.StatusForbidden, "access_denied", auth.ErrRiskDenied.Error())
}

// logout revokes the session named by the bearer access token, by the
// browser's cookies (with the CSRF token), or by the refresh token in the
// body. Cookies are cleared in every case.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	var err error
	switch {
	case s.cfg.Cookies.present(r):
		// A browser: its cookies name the session even when the access
		// token (memory mode's Authorization header too) has expired.
		sid := s.cookieSession(r)
		if sid != "" {
			if !s.browserRequestOK(r, sid) {
				csrfFailed(w)
				return
			}
			uid, _ := s.auth.UserOfSession(r.Context(), sid) // before the session is gone
			err = s.auth.LogoutSession(r.Context(), sid, s.deviceOf(r))
			if err == nil && uid != "" {
				err = s.endBrowserSSO(w, r, uid)
			}
		}
	case r.Header.Get("Authorization") != "":
		c, ok := s.authenticate(w, r)
		if !ok {
			return
		}
		if c.SessionID == "" {
			writeError(w, http.StatusBadRequest, "invalid_request", "this access token belongs to no session")
			return
		}
		err = s.auth.Logout(r.Context(), c, s.deviceOf(r))
	default:
		var req refreshRequest
		if !decode(w, r, &req) {
			return
		}
		if req.RefreshToken == "" {
			writeError(w, http.StatusBadRequest, "invalid_request", `send "Authorization: Bearer", the session cookies, or a body with "refresh_token"`)
			return
		}
		err = s.auth.LogoutRefreshToken(r.Context(), req.RefreshToken, s.deviceOf(r))
	}
	if err != nil && !errors.Is(err, auth.ErrNotFound) {
		s.fail(w, r, err)
		return
	}
	if s.cfg.Cookies.present(r) || value(r, s.cfg.Cookies.CSRF) != "" {
		s.cfg.Cookies.clear(w)
	}
	w.WriteHeader(http.StatusNoContent)
}

// endBrowserSSO ends the browser's SSO session, if it has one of the user
// uid, whose session it just signed out of with a checked CSRF token:
// signing out at Latch signs out of the provider, and every app it served
// hears of it by back-channel logout.
func (s *Server) endBrowserSSO(w http.ResponseWriter, r *http.Request, uid string) error {
	if s.oidc == nil {
		return nil
	}
	cookie := value(r, s.cfg.Cookies.SSO)
	if cookie == "" {
		return nil
	}
	sso, err := s.oidc.SSO(r.Context(), cookie)
	if err != nil {
		return err
	}
	if sso != nil {
		if sso.UserID != uid {
			return nil // another user's sign-in in this browser: not ours to end
		}
		if err := s.oidc.EndSSO(r.Context(), sso, "logout", s.deviceOf(r)); err != nil {
			return err
		}
	}
	s.cfg.Cookies.clearSSO(w) // ended now, or already (with the session)
	return nil
}

// cookieSession is the session named by the browser's cookies: the access
// cookie's sid if it still verifies, else the refresh cookie's session.
func (s *Server) cookieSession(r *http.Request) string {
	if at := value(r, s.cfg.Cookies.Access); at != "" {
		if c, err := s.verifier.Verify(at); err == nil && c.SessionID != "" {
			return c.SessionID
		}
	}
	if rt := value(r, s.cfg.Cookies.Refresh); rt != "" {
		if sid, err := s.auth.SessionOfRefreshToken(r.Context(), rt); err == nil {
			return sid
		}
	}
	return ""
}

// logoutAll signs the user out everywhere. A browser may prove its session
// with its cookies and CSRF token even when its access token has expired.
func (s *Server) logoutAll(w http.ResponseWriter, r *http.Request) {
	var userID string
	if s.cfg.Cookies.present(r) {
		sid := s.cookieSession(r)
		if sid == "" {
			s.cfg.Cookies.clear(w)
			verifier.WriteUnauthorized(w, "the session is over")
			return
		}
		if !s.browserRequestOK(r, sid) {
			csrfFailed(w)
			return
		}
		uid, err := s.auth.UserOfSession(r.Context(), sid)
		if errors.Is(err, auth.ErrNotFound) {
			s.cfg.Cookies.clear(w)
			verifier.WriteUnauthorized(w, "the session is over")
			return
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		userID = uid
	} else {
		c, ok := s.authenticate(w, r)
		if !ok || !s.accountAccess(w, r, c) {
			return
		}
		if c.SessionID == "" {
			// A client_credentials token: its subject is a client, and
			// each call would append a user entry to the feed.
			w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope", error_description="a user's access token is required"`)
			writeError(w, http.StatusForbidden, "insufficient_scope", logoutAllNeedsUser)
			return
		}
		userID = c.Subject
	}
	if err := s.auth.LogoutAll(r.Context(), userID, s.deviceOf(r)); err != nil {
		s.fail(w, r, err)
		return
	}
	if s.cfg.Cookies.present(r) {
		s.cfg.Cookies.clear(w)
		s.cfg.Cookies.clearSSO(w) // every SSO session of the user ended with it
	}
	w.WriteHeader(http.StatusNoContent)
}

// logoutAllNeedsUser explains why a service's token cannot log out
// everywhere.
const logoutAllNeedsUser = "/v1/auth/logout-all ends a signed-in user's sessions and needs a user's access token; this token was issued to a client by the client_credentials grant and has no user"

// meNeedsUser explains why a service's token gets no /v1/me.
const meNeedsUser = "/v1/me describes a signed-in user and needs a user's access token (from /v1/auth/login or a refresh); this token was issued to a client by the client_credentials grant and has no user"

func (s *Server) me(w http.ResponseWriter, r *http.Request, c *verifier.Claims) {
	u, err := s.auth.User(r.Context(), c.Subject)
	if errors.Is(err, auth.ErrNotFound) && c.SessionID == "" {
		// A client_credentials token: its subject is a client, not a user.
		w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope", error_description="a user's access token is required"`)
		writeError(w, http.StatusForbidden, "insufficient_scope", meNeedsUser)
		return
	}
	if errors.Is(err, auth.ErrNotFound) {
		// Deleting users comes with account management; until then a
		// missing subject means the token outlived its account.
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token", error_description="the account no longer exists"`)
		writeError(w, http.StatusUnauthorized, "invalid_token", "the account no longer exists")
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	me := map[string]any{"sub": u.ID, "email": u.Email, "email_verified": u.EmailVerified(), "session_id": c.SessionID}
	if c.ExpiresAt != nil {
		me["exp"] = c.ExpiresAt.Unix()
	}
	if r.Header.Get("Authorization") == "" && c.SessionID != "" {
		// Authenticated by cookie: a page that reloaded learns its CSRF
		// token here too (it is no secret from that page).
		me["csrf_token"] = s.auth.CSRFToken(c.SessionID)
	}
	writeJSON(w, http.StatusOK, me)
}

type sessionJSON struct {
	ID         string    `json:"id"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	UserAgent  string    `json:"user_agent"`
	Browser    string    `json:"browser"`
	OS         string    `json:"os"`
	IP         string    `json:"ip"`
	ClientID   string    `json:"client_id"`
	Current    bool      `json:"current"`
}

func (s *Server) sessions(w http.ResponseWriter, r *http.Request, c *verifier.Claims) {
	list, err := s.auth.Sessions(r.Context(), c.Subject)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := make([]sessionJSON, 0, len(list))
	for _, x := range list {
		browser, os := describeUA(x.UserAgent)
		out = append(out, sessionJSON{
			ID: x.ID, CreatedAt: x.CreatedAt, LastUsedAt: x.LastUsedAt, ExpiresAt: x.ExpiresAt,
			UserAgent: x.UserAgent, Browser: browser, OS: os, IP: x.IP, ClientID: x.ClientID, Current: x.ID == c.SessionID,
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{"sessions": out})
}

func (s *Server) deleteSession(w http.ResponseWriter, r *http.Request, c *verifier.Claims) {
	err := s.auth.RevokeSession(r.Context(), c.Subject, r.PathValue("id"), s.deviceOf(r))
	switch {
	case err == nil:
		w.WriteHeader(http.StatusNoContent)
	case errors.Is(err, auth.ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", "no such session")
	default:
		s.fail(w, r, err)
	}
}

type eventJSON struct {
	Type      string            `json:"type"`
	At        time.Time         `json:"at"`
	IP        string            `json:"ip"`
	UserAgent string            `json:"user_agent"`
	Browser   string            `json:"browser"`
	OS        string            `json:"os"`
	SessionID string            `json:"session_id,omitempty"`
	Detail    map[string]string `json:"detail,omitempty"`
}

// events lists the caller's recent security events (?limit=1..100,
// default 20), newest first.
func (s *Server) events(w http.ResponseWriter, r *http.Request, c *verifier.Claims) {
	limit := 20
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			writeError(w, http.StatusBadRequest, "invalid_request", "limit must be between 1 and 100")
			return
		}
		limit = n
	}
	if c.SessionID == "" {
		writeJSON(w, http.StatusOK, map[string]any{"events": []eventJSON{}})
		return
	}
	list, err := s.auth.Events(r.Context(), c.Subject, limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := make([]eventJSON, 0, len(list))
	for _, e := range list {
		browser, os := describeUA(e.UserAgent)
		out = append(out, eventJSON{Type: e.Type, At: e.At, IP: e.IP, UserAgent: e.UserAgent, Browser: browser, OS: os,
			SessionID: e.SessionID, Detail: e.Detail})
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": out})
}

func (s *Server) jwksDoc(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/jwk-set+json")
	h.Set("Cache-Control", fmt.Sprintf("public, max-age=%d", int(s.cfg.JWKSMaxAge/time.Second)))
	h.Set("Access-Control-Allow-Origin", "*")
	w.Write(s.jwks())
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	// Each dependency is checked at once, with its own deadline, so a
	// slow one cannot make another look down.
	results := make([]error, len(s.checks))
	var wg sync.WaitGroup
	for i, c := range s.checks {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
			defer cancel()
			results[i] = c.Check(ctx)
		})
	}
	wg.Wait()
	status, code := "ready", http.StatusOK
	out := make(map[string]string, len(s.checks))
	for i, c := range s.checks {
		if err := results[i]; err != nil {
			s.log.Warn("readiness check failed", "dependency", c.Name, "err", err)
			out[c.Name] = "unreachable"
			if c.Required {
				status, code = "unavailable", http.StatusServiceUnavailable
			} else if code == http.StatusOK {
				status = "degraded"
			}
			continue
		}
		out[c.Name] = "ok"
	}
	writeJSON(w, code, map[string]any{"status": status, "checks": out})
}
