package server

import (
	"errors"
	"math"
	"net/http"
	"strconv"

	"github.com/latchauth/latch/account"
	"github.com/latchauth/latch/auth"
	"github.com/latchauth/latch/password"
	"github.com/latchauth/latch/verifier"
)

// Messages of refused sign-ins.
const (
	// accountLockedMessage: the password was right, but the account is
	// locked.
	accountLockedMessage = "this account is locked; reset your password if you were told to, or contact support"
	// invalidOrUnverifiedMessage answers every wrong password, and an
	// unverified account's right one, where sign-in needs a verified
	// address.
	invalidOrUnverifiedMessage = "email or password is incorrect, or the email address is not verified yet: follow the link in the email we sent you, or ask for a new one"
)

// mailAccepted is the one answer to every request for an email (a reset
// link, a verification link), whether or not the account exists.
var mailAccepted = map[string]string{
	"status":  "accepted",
	"message": "If an account with that email exists, we have sent it an email with a link.",
}

type emailRequest struct {
	Email string `json:"email"`
}

type tokenRequest struct {
	Token string `json:"token"`
}

type resetRequest struct {
	Token    string `json:"token"`
	Password string `json:"password"`
}

type changeRequest struct {
	CurrentPassword string `json:"current_password"`
	Password        string `json:"password"`
}

// rateLimited answers 429 with Retry-After.
func rateLimited(w http.ResponseWriter, te *auth.ThrottleError, msg string) {
	w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(te.RetryAfter.Seconds()))))
	writeError(w, http.StatusTooManyRequests, "rate_limited", msg)
}

// forgotPassword answers 202 with the same body whether or not an account
// has the email, then (the answer sent and flushed) emails a reset link if
// one does: neither the body nor the time to the answer depends on the
// account. Requests are throttled per address and per email alike for
// every email.
func (s *Server) forgotPassword(w http.ResponseWriter, r *http.Request) {
	s.mailRequest(w, r, account.RequestForgot)
}

// resendVerification is forgotPassword for a new verification link.
func (s *Server) resendVerification(w http.ResponseWriter, r *http.Request) {
	s.mailRequest(w, r, account.RequestResend)
}

// mailRequest answers a request for an email about an account that may not
// exist. It does the same work whether or not it does: it writes the
// request to the durable outbox (one insert), then answers; the outbox
// worker looks the account up and sends the email, if any. Neither the
// answer, nor its timing, nor the store's work before it depends on the
// account, and a crash after the answer loses nothing.
func (s *Server) mailRequest(w http.ResponseWriter, r *http.Request, action string) {
	var req emailRequest
	if !decode(w, r, &req) {
		return
	}
	if msg := required("email", req.Email); msg != "" {
		writeError(w, http.StatusBadRequest, "invalid_request", msg)
		return
	}
	var te *auth.ThrottleError
	if err := s.account.Allow(r.Context(), req.Email, s.deviceOf(r)); errors.As(err, &te) {
		rateLimited(w, te, "too many requests for this address or email; try again later")
		return
	} else if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.account.Request(r.Context(), action, req.Email, s.deviceOf(r)); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, mailAccepted)
}

func (s *Server) verifyEmail(w http.ResponseWriter, r *http.Request) {
	var req tokenRequest
	if !decode(w, r, &req) {
		return
	}
	if msg := required("token", req.Token); msg != "" {
		writeError(w, http.StatusBadRequest, "invalid_request", msg)
		return
	}
	u, err := s.account.VerifyEmail(r.Context(), req.Token, s.deviceOf(r))
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, map[string]any{"email": u.Email, "email_verified": true})
	case errors.Is(err, account.ErrInvalidToken):
		writeError(w, http.StatusBadRequest, "invalid_link", "this verification link is invalid, expired or already used; ask for a new one")
	default:
		s.fail(w, r, err)
	}
}

func (s *Server) resetPassword(w http.ResponseWriter, r *http.Request) {
	var req resetRequest
	if !decode(w, r, &req) {
		return
	}
	if msg := required("token", req.Token, "password", req.Password); msg != "" {
		writeError(w, http.StatusBadRequest, "invalid_request", msg)
		return
	}
	// Each attempt costs a password hash: it draws on the address's
	// sign-in budget.
	var te *auth.ThrottleError
	if err := s.auth.AllowAddress(s.clientIP(r)); errors.As(err, &te) {
		rateLimited(w, te, "too many attempts from this address; try again later")
		return
	}
	res, err := s.account.ResetPassword(r.Context(), req.Token, req.Password, s.deviceOf(r))
	var policy *password.PolicyError
	switch {
	case err == nil:
		body := map[string]any{"status": "password_reset", "sessions_revoked": res.SessionsRevoked}
		if res.StillLocked {
			body["account_locked"] = true
			body["message"] = "your password was changed, but the account stays locked; contact support"
		}
		writeJSON(w, http.StatusOK, body)
	case errors.Is(err, account.ErrInvalidToken):
		writeError(w, http.StatusBadRequest, "invalid_link", "this reset link is invalid, expired or already used; ask for a new one")
	case errors.As(err, &policy):
		writeError(w, http.StatusBadRequest, "weak_password", policy.Error())
	case errors.Is(err, password.ErrBusy):
		busy(w)
	default:
		s.fail(w, r, err)
	}
}

func (s *Server) changePassword(w http.ResponseWriter, r *http.Request, c *verifier.Claims) {
	if c.SessionID == "" {
		w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope", error_description="a user's access token is required"`)
		writeError(w, http.StatusForbidden, "insufficient_scope", "changing a password needs a signed-in user's access token")
		return
	}
	var req changeRequest
	if !decode(w, r, &req) {
		return
	}
	if msg := required("current_password", req.CurrentPassword, "password", req.Password); msg != "" {
		writeError(w, http.StatusBadRequest, "invalid_request", msg)
		return
	}
	n, err := s.account.ChangePassword(r.Context(), c.Subject, c.SessionID, req.CurrentPassword, req.Password, s.deviceOf(r))
	var (
		policy    *password.PolicyError
		throttled *auth.ThrottleError
	)
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, map[string]any{"status": "password_changed", "other_sessions_revoked": n})
	case errors.Is(err, account.ErrWrongPassword):
		writeError(w, http.StatusForbidden, "invalid_credentials", "the current password is incorrect")
	case errors.As(err, &policy):
		writeError(w, http.StatusBadRequest, "weak_password", policy.Error())
	case errors.As(err, &throttled):
		rateLimited(w, throttled, "too many password attempts; try again later")
	case errors.Is(err, auth.ErrUserLocked):
		writeError(w, http.StatusForbidden, "account_locked", accountLockedMessage)
	case errors.Is(err, account.ErrNotFound):
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token", error_description="the account no longer exists"`)
		writeError(w, http.StatusUnauthorized, "invalid_token", "the account no longer exists")
	case errors.Is(err, password.ErrBusy):
		busy(w)
	default:
		s.fail(w, r, err)
	}
}
