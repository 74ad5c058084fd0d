package server

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/latchauth/latch/auth"
	"github.com/latchauth/latch/challenge"
)

// challengeRequired is the 403 answer of a sign-in held back for a step-up
// challenge: the client sends challenge_id back with the emailed code to
// POST /v1/auth/challenge.
type challengeRequired struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
	ChallengeID string `json:"challenge_id"`
}

type challengeRequest struct {
	ChallengeID string `json:"challenge_id"`
	Code        string `json:"code"`
}

// codeError is the 400 answer to a wrong code.
type codeError struct {
	Error        string `json:"error"`
	Description  string `json:"error_description"`
	AttemptsLeft int    `json:"attempts_left"`
}

// completeChallenge finishes a sign-in held back for a step-up challenge:
// the right code creates the session, answered as the login would (the
// client's delivery mode, and for Latch's own page its SSO session).
func (s *Server) completeChallenge(w http.ResponseWriter, r *http.Request) {
	var req challengeRequest
	if !decode(w, r, &req) {
		return
	}
	if msg := required("challenge_id", req.ChallengeID, "code", req.Code); msg != "" {
		writeError(w, http.StatusBadRequest, "invalid_request", msg)
		return
	}
	d := s.deviceOf(r)
	// Which client the held-back sign-in is for decides the CSRF check,
	// before anything is spent.
	clientID, err := s.challenges.Client(r.Context(), req.ChallengeID, d)
	if err != nil {
		s.challengeFailed(w, r, err)
		return
	}
	var (
		link func(context.Context, *auth.Authentication) (string, error)
		sso  string
	)
	if s.pageClient(clientID) {
		if !s.sameOrigin(r) {
			csrfFailed(w)
			return
		}
		if link, err = s.pageSignIn(r, &sso); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	// People paste codes with spaces ("042 917").
	code := strings.Join(strings.Fields(req.Code), "")
	a, clientID, err := s.challenges.Complete(r.Context(), req.ChallengeID, code, d)
	if err != nil {
		s.challengeFailed(w, r, err)
		return
	}
	t, err := s.auth.Admit(r.Context(), a, clientID, d, link)
	s.answerSignIn(w, r, t, sso, err)
}

// challengeFailed answers a challenge that cannot be completed: 400 with
// what the user can do, never a 5xx for anything the client sent.
func (s *Server) challengeFailed(w http.ResponseWriter, r *http.Request, err error) {
	var wrong *challenge.CodeError
	switch {
	case errors.As(err, &wrong):
		writeJSON(w, http.StatusBadRequest, codeError{Error: "invalid_code", Description: wrong.Error(), AttemptsLeft: wrong.AttemptsLeft})
	case errors.Is(err, challenge.ErrMalformedCode):
		writeError(w, http.StatusBadRequest, "invalid_request", "code must be the 6 digits from the email")
	case errors.Is(err, challenge.ErrUnknown), errors.Is(err, challenge.ErrUsed), errors.Is(err, challenge.ErrExpired),
		errors.Is(err, challenge.ErrNoAttempts), errors.Is(err, challenge.ErrStale):
		writeError(w, http.StatusBadRequest, "invalid_challenge", err.Error())
	case errors.Is(err, auth.ErrUserLocked):
		writeError(w, http.StatusForbidden, "account_locked", accountLockedMessage)
	default:
		s.fail(w, r, err)
	}
}
