package server

import (
	"errors"
	"net/http"

	"github.com/latchauth/latch/admin"
)

// The admin API: POST /admin/v1/users/{id}/revoke and POST
// /admin/v1/sessions/{id}/revoke, with an optional JSON body
// {"reason": "…"}. Only an access token that a confidential client
// obtained for itself with the client_credentials grant, carrying the
// admin scope (admin.Scope) that the client is still registered with, is
// accepted: no token, or an invalid or expired one, is 401; a user's
// token, or a client's without the scope, is 403 insufficient_scope.

// adminRequest is the optional body of an admin call.
type adminRequest struct {
	Reason string `json:"reason"`
}

// adminNote reads the optional body of a revocation, or writes the 4xx
// and reports false.
func adminNote(w http.ResponseWriter, r *http.Request) (string, bool) {
	var req adminRequest
	if r.ContentLength != 0 && !decode(w, r, &req) {
		return "", false
	}
	return req.Reason, true
}

func adminForbidden(w http.ResponseWriter, description string) {
	w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope", scope="admin"`)
	writeError(w, http.StatusForbidden, "insufficient_scope", description)
}

// adminRevokeUser revokes every session of a user and sets the user's
// cutoff.
func (s *Server) adminRevokeUser(w http.ResponseWriter, r *http.Request, by admin.Caller) {
	note, ok := adminNote(w, r)
	if !ok {
		return
	}
	id := r.PathValue("id")
	err := s.admin.RevokeUser(r.Context(), by, id, note)
	if !s.adminFailed(w, r, err, "no such user") {
		writeJSON(w, http.StatusOK, map[string]any{"user_id": id, "revoked": true})
	}
}

// adminRevokeSession revokes one session, whatever its user.
func (s *Server) adminRevokeSession(w http.ResponseWriter, r *http.Request, by admin.Caller) {
	note, ok := adminNote(w, r)
	if !ok {
		return
	}
	id := r.PathValue("id")
	user, err := s.admin.RevokeSession(r.Context(), by, id, note)
	if !s.adminFailed(w, r, err, "no such session") {
		writeJSON(w, http.StatusOK, map[string]any{"session_id": id, "user_id": user, "revoked": true})
	}
}

// adminFailed answers err, if it is not nil, and reports whether it did.
func (s *Server) adminFailed(w http.ResponseWriter, r *http.Request, err error, notFound string) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, admin.ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", notFound)
	case errors.Is(err, admin.ErrBadNote):
		writeError(w, http.StatusBadRequest, "invalid_request", err.Error())
	default:
		s.fail(w, r, err)
	}
	return true
}
