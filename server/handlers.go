package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/latchauth/latch/auth"
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

func writeTokens(w http.ResponseWriter, t *auth.Tokens) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, tokenResponse{
		AccessToken: t.AccessToken, TokenType: "Bearer", ExpiresIn: int64(t.ExpiresIn / time.Second),
		RefreshToken: t.RefreshToken, RefreshTokenExpiresIn: int64(t.RefreshExpiresIn / time.Second),
		SessionID: t.SessionID,
	})
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
	u, err := s.auth.Register(r.Context(), req.Email, req.Password, s.clientOf(r))
	var policy *password.PolicyError
	switch {
	case err == nil:
		writeJSON(w, http.StatusCreated, map[string]string{"user_id": u.ID})
	case errors.Is(err, auth.ErrRegistrationDisabled):
		writeError(w, http.StatusForbidden, "registration_disabled", "self-service registration is disabled on this server")
	case errors.As(err, &policy):
		writeError(w, http.StatusBadRequest, "weak_password", policy.Error())
	case errors.Is(err, auth.ErrInvalidEmail):
		writeError(w, http.StatusBadRequest, "invalid_request", "email is not a valid address")
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
	t, err := s.auth.Login(r.Context(), req.Email, req.Password, req.ClientID, s.clientOf(r))
	switch {
	case err == nil:
		writeTokens(w, t)
	case errors.Is(err, auth.ErrInvalidCredentials):
		writeError(w, http.StatusUnauthorized, "invalid_credentials", "email or password is incorrect")
	case errors.Is(err, auth.ErrUnauthorizedClient):
		writeError(w, http.StatusBadRequest, "unauthorized_client", "client_id does not name a public client that may sign users in")
	case errors.Is(err, password.ErrBusy):
		busy(w)
	default:
		s.fail(w, r, err)
	}
}

func (s *Server) refresh(w http.ResponseWriter, r *http.Request) {
	var req refreshRequest
	if !decode(w, r, &req) {
		return
	}
	if req.RefreshToken == "" {
		writeError(w, http.StatusBadRequest, "invalid_request", `field "refresh_token" is required`)
		return
	}
	t, err := s.auth.Refresh(r.Context(), req.RefreshToken, s.clientOf(r))
	switch {
	case err == nil:
		writeTokens(w, t)
	case errors.Is(err, auth.ErrInvalidGrant):
		writeError(w, http.StatusUnauthorized, "invalid_grant", "the refresh token is invalid, expired or revoked")
	default:
		s.fail(w, r, err)
	}
}

// logout revokes the session named by the bearer access token or, without
// an Authorization header, by the refresh token in the body.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	var err error
	if r.Header.Get("Authorization") != "" {
		c, ok := s.authenticate(w, r)
		if !ok {
			return
		}
		if c.SessionID == "" {
			writeError(w, http.StatusBadRequest, "invalid_request", "this access token belongs to no session")
			return
		}
		err = s.auth.Logout(r.Context(), c, s.clientOf(r))
	} else {
		var req refreshRequest
		if !decode(w, r, &req) {
			return
		}
		if req.RefreshToken == "" {
			writeError(w, http.StatusBadRequest, "invalid_request", `send "Authorization: Bearer" or a body with "refresh_token"`)
			return
		}
		err = s.auth.LogoutRefreshToken(r.Context(), req.RefreshToken, s.clientOf(r))
	}
	if err != nil && !errors.Is(err, auth.ErrNotFound) {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) logoutAll(w http.ResponseWriter, r *http.Request, c *verifier.Claims) {
	if err := s.auth.LogoutAll(r.Context(), c.Subject, s.clientOf(r)); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) me(w http.ResponseWriter, r *http.Request, c *verifier.Claims) {
	u, err := s.auth.User(r.Context(), c.Subject)
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
	writeJSON(w, http.StatusOK, map[string]string{"sub": u.ID, "email": u.Email, "session_id": c.SessionID})
}

type sessionJSON struct {
	ID         string    `json:"id"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	UserAgent  string    `json:"user_agent"`
	IP         string    `json:"ip"`
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
		out = append(out, sessionJSON{
			ID: x.ID, CreatedAt: x.CreatedAt, LastUsedAt: x.LastUsedAt, ExpiresAt: x.ExpiresAt,
			UserAgent: x.UserAgent, IP: x.IP, Current: x.ID == c.SessionID,
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{"sessions": out})
}

func (s *Server) deleteSession(w http.ResponseWriter, r *http.Request, c *verifier.Claims) {
	err := s.auth.RevokeSession(r.Context(), c.Subject, r.PathValue("id"), s.clientOf(r))
	switch {
	case err == nil:
		w.WriteHeader(http.StatusNoContent)
	case errors.Is(err, auth.ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", "no such session")
	default:
		s.fail(w, r, err)
	}
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
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	status, code := "ready", http.StatusOK
	results := make(map[string]string, len(s.checks))
	for _, c := range s.checks {
		if err := c.Check(ctx); err != nil {
			s.log.Warn("readiness check failed", "dependency", c.Name, "err", err)
			results[c.Name] = "unreachable"
			if c.Required {
				status, code = "unavailable", http.StatusServiceUnavailable
			} else if code == http.StatusOK {
				status = "degraded"
			}
			continue
		}
		results[c.Name] = "ok"
	}
	writeJSON(w, code, map[string]any{"status": status, "checks": results})
}
