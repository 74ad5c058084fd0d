package server

import (
	"errors"
	"net/http"
	"strings"
	"time"
	"unicode"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/device"
	"github.com/latchauth/latch/protect"
	"github.com/latchauth/latch/verifier"
)

// alertRequest is the body of POST /v1/alerts/preview and
// /v1/alerts/answer: an alert link's id and token, which the /alert page
// reads from the link's fragment.
type alertRequest struct {
	ID    string `json:"id"`
	Token string `json:"token"`
}

// alertPreviewJSON is what the /alert page shows before the answer.
type alertPreviewJSON struct {
	ID string `json:"id"`
	// Answer is the answer the link gives: "me" or "not_me".
	Answer  string    `json:"answer"`
	At      time.Time `json:"at"`
	When    string    `json:"when"`
	Where   string    `json:"where"`
	IP      string    `json:"ip"`
	Browser string    `json:"browser"`
	OS      string    `json:"os"`
	// Open: the alert is unanswered and unexpired (always true in a 200:
	// a link that cannot be used is a 410).
	Open      bool      `json:"open"`
	ExpiresAt time.Time `json:"expires_at"`
}

const invalidAlertLink = "this alert link is invalid, expired, already used (each alert can be answered once, through either of its links) or not for this alert"

// alertLink reads the body of an alert link request and refuses a
// malformed one (400). It takes nothing of the per-address sign-in budget
// (as GET /alert did not): a link's token is 256 random bits, and a page
// opened twice must not cost the owner a sign-in attempt.
func (s *Server) alertLink(w http.ResponseWriter, r *http.Request) (alertRequest, bool) {
	var req alertRequest
	if !decode(w, r, &req) {
		return req, false
	}
	if msg := required("id", req.ID, "token", req.Token); msg != "" {
		writeError(w, http.StatusBadRequest, "invalid_request", msg)
		return req, false
	}
	return req, true
}

// alertPreview is POST /v1/alerts/preview {"id","token"}: what the /alert
// page shows before the button (the sign-in, and which answer the link
// gives). It acts on nothing; a POST keeps the token out of URLs and logs.
// 410 invalid_link for a used, expired, foreign or malformed link.
func (s *Server) alertPreview(w http.ResponseWriter, r *http.Request) {
	noStore(w)
	req, ok := s.alertLink(w, r)
	if !ok {
		return
	}
	a, answer, err := s.alerts.Peek(r.Context(), req.ID, req.Token)
	switch {
	case errors.Is(err, protect.ErrInvalidLink):
		writeError(w, http.StatusGone, "invalid_link", invalidAlertLink)
		return
	case err != nil:
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, alertPreviewJSON{
		ID: a.ID, Answer: answer, At: a.CreatedAt,
		When:    a.CreatedAt.UTC().Format("Monday, 2 January 2006, 15:04 MST"),
		Where:   protect.Where(latch.Place{Country: a.Country, City: a.City}, a.IP),
		Browser: a.Browser, OS: a.OS, IP: a.IP, Open: true, ExpiresAt: a.ExpiresAt,
	})
}

// alertAnswer is POST /v1/alerts/answer {"id","token"}: the button of the
// /alert page. Only this request acts: "yes, it was me" confirms the
// device; "this wasn't me" signs out everywhere and locks the account
// (protect.Alerts.Answer). It must come from this origin (403 otherwise);
// 410 invalid_link for a link that cannot be used.
func (s *Server) alertAnswer(w http.ResponseWriter, r *http.Request) {
	noStore(w)
	if !s.sameOrigin(r) {
		csrfFailed(w)
		return
	}
	req, ok := s.alertLink(w, r)
	if !ok {
		return
	}
	a, err := s.alerts.Answer(r.Context(), req.ID, req.Token, s.deviceOf(r))
	switch {
	case errors.Is(err, protect.ErrInvalidLink):
		writeError(w, http.StatusGone, "invalid_link", invalidAlertLink)
	case err != nil:
		s.fail(w, r, err)
	default:
		writeJSON(w, http.StatusOK, map[string]string{"id": a.ID, "answer": a.Answer})
	}
}

type deviceJSON struct {
	ID          string     `json:"id"`
	Name        string     `json:"name"`
	Browser     string     `json:"browser"`
	OS          string     `json:"os"`
	CreatedAt   time.Time  `json:"created_at"`
	LastSeenAt  time.Time  `json:"last_seen_at"`
	LastIP      string     `json:"last_ip"`
	Country     string     `json:"country,omitempty"`
	City        string     `json:"city,omitempty"`
	ConfirmedAt *time.Time `json:"confirmed_at,omitempty"`
	Current     bool       `json:"current"`
	// Client: not a browser (an app or command-line client, known by its
	// user-agent family); Browser then names its product.
	Client bool `json:"client"`
}

// devices lists the caller's known devices, most recently seen first.
func (s *Server) devices(w http.ResponseWriter, r *http.Request, c *verifier.Claims) {
	if !s.userToken(w, c) {
		return
	}
	list, err := s.deviceReg.List(r.Context(), c.Subject)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	current := device.ID(r.Context())
	out := make([]deviceJSON, 0, len(list))
	for _, d := range list {
		j := deviceJSON{ID: d.ID, Name: d.Name, Browser: d.Browser, OS: d.OS, CreatedAt: d.CreatedAt, LastSeenAt: d.LastSeenAt,
			LastIP: d.LastIP, Country: d.LastPlace.Country, City: d.LastPlace.City, Current: current != "" && d.CookieID == current,
			Client: d.CookieID == "" && strings.HasSuffix(d.Family, "|")}
		if !d.ConfirmedAt.IsZero() {
			t := d.ConfirmedAt
			j.ConfirmedAt = &t
		}
		out = append(out, j)
	}
	writeJSON(w, http.StatusOK, map[string]any{"devices": out})
}

// device answers PATCH (rename) and DELETE (forget) of one of the
// caller's devices.
func (s *Server) device(w http.ResponseWriter, r *http.Request, c *verifier.Claims) {
	if r.Method == http.MethodDelete {
		s.forgetDevice(w, r, c)
		return
	}
	s.renameDevice(w, r, c)
}

// renameDevice sets the name of one of the caller's devices.
func (s *Server) renameDevice(w http.ResponseWriter, r *http.Request, c *verifier.Claims) {
	if !s.userToken(w, c) {
		return
	}
	var req struct {
		Name *string `json:"name"`
	}
	if !decode(w, r, &req) {
		return
	}
	if req.Name == nil {
		writeError(w, http.StatusBadRequest, "invalid_request", `field "name" is required`)
		return
	}
	if strings.ContainsFunc(*req.Name, unicode.IsControl) {
		// NUL cannot be stored (PostgreSQL) and no control character
		// belongs in a name shown on pages and in emails.
		writeError(w, http.StatusBadRequest, "invalid_request", "name must not contain control characters")
		return
	}
	if len(*req.Name) > device.MaxNameLength {
		writeError(w, http.StatusBadRequest, "invalid_request", "name is longer than 100 bytes")
		return
	}
	switch err := s.deviceReg.Rename(r.Context(), c.Subject, r.PathValue("id"), *req.Name); {
	case err == nil:
		w.WriteHeader(http.StatusNoContent)
	case errors.Is(err, device.ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", "no such device")
	default:
		s.fail(w, r, err)
	}
}

// forgetDevice deletes one of the caller's devices.
func (s *Server) forgetDevice(w http.ResponseWriter, r *http.Request, c *verifier.Claims) {
	if !s.userToken(w, c) {
		return
	}
	switch err := s.deviceReg.Forget(r.Context(), c.Subject, r.PathValue("id")); {
	case err == nil:
		w.WriteHeader(http.StatusNoContent)
	case errors.Is(err, device.ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", "no such device")
	default:
		s.fail(w, r, err)
	}
}

type alertJSON struct {
	ID         string     `json:"id"`
	At         time.Time  `json:"at"`
	Where      string     `json:"where"`
	IP         string     `json:"ip"`
	Browser    string     `json:"browser"`
	OS         string     `json:"os"`
	State      string     `json:"state"` // pending, confirmed, not_me, expired
	AnsweredAt *time.Time `json:"answered_at,omitempty"`
}

// alertList lists the caller's recent sign-in alerts with their state.
func (s *Server) alertList(w http.ResponseWriter, r *http.Request, c *verifier.Claims) {
	if !s.userToken(w, c) {
		return
	}
	list, err := s.alerts.Recent(r.Context(), c.Subject, 20)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	now := s.now()
	out := make([]alertJSON, 0, len(list))
	for _, a := range list {
		j := alertJSON{ID: a.ID, At: a.CreatedAt, Where: protect.Where(latch.Place{Country: a.Country, City: a.City}, a.IP),
			IP: a.IP, Browser: a.Browser, OS: a.OS}
		switch {
		case a.Answer == latch.AlertAnswerMe:
			j.State = "confirmed"
		case a.Answer == latch.AlertAnswerNotMe:
			j.State = "not_me"
		case !now.Before(a.ExpiresAt):
			j.State = "expired"
		default:
			j.State = "pending"
		}
		if !a.AnsweredAt.IsZero() {
			t := a.AnsweredAt
			j.AnsweredAt = &t
		}
		out = append(out, j)
	}
	writeJSON(w, http.StatusOK, map[string]any{"alerts": out})
}

// userToken refuses a token without a user session (a client's own, from
// client_credentials) on the device and alert API.
func (s *Server) userToken(w http.ResponseWriter, c *verifier.Claims) bool {
	if c.SessionID == "" {
		writeError(w, http.StatusForbidden, "insufficient_scope", "this endpoint lists a signed-in user's devices and needs a user's access token")
		return false
	}
	return true
}
