package server

import (
	"errors"
	"net/http"

	"github.com/latchauth/latch/account"
	"github.com/latchauth/latch/auth"
)

// unlockSignIn is POST /v1/auth/unlock {"token"}: the confirm button of
// the /unlock page (the link of a sign-in lock email) lifts the
// account-wide sign-in lock. Only this POST acts; opening the link
// changes nothing.
func (s *Server) unlockSignIn(w http.ResponseWriter, r *http.Request) {
	var req tokenRequest
	if !decode(w, r, &req) {
		return
	}
	if msg := required("token", req.Token); msg != "" {
		writeError(w, http.StatusBadRequest, "invalid_request", msg)
		return
	}
	var te *auth.ThrottleError
	if err := s.auth.AllowAddress(s.clientIP(r)); errors.As(err, &te) {
		rateLimited(w, te, "too many attempts from this address; try again later")
		return
	}
	err := s.account.UnlockSignIn(r.Context(), req.Token, s.deviceOf(r))
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, map[string]any{"status": "unlocked"})
	case errors.Is(err, account.ErrInvalidToken):
		writeError(w, http.StatusBadRequest, "invalid_link", "this unlock link is invalid, expired or already used")
	default:
		s.fail(w, r, err)
	}
}
