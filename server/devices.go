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
	"github.com/latchauth/latch/web"
)

// Form fields of the alert confirm page.
const (
	fieldAlertID    = "id"
	fieldAlertToken = "t"
	fieldAlertForm  = "form_token"
)

// alertPages is what the alert link pages need of Deps.Pages (web.Pages
// implements it).
type alertPages interface {
	Alert(w http.ResponseWriter, v web.AlertView)
}

const (
	invalidLinkTitle   = "This link can no longer be used"
	invalidLinkMessage = "The link is invalid, has expired, or was used already (each alert can be answered once, through either of its links). If you did not sign in recently, reset your password from the sign-in page: that signs out every session of the account."
)

// alertPage answers GET /alert (the confirm page: it shows the sign-in and
// what the link's answer will do, and changes nothing) and POST /alert
// (the answer).
func (s *Server) alertPage(w http.ResponseWriter, r *http.Request) {
	noStore(w)
	pages, ok := s.pages.(alertPages)
	if !ok || s.alerts == nil {
		s.errorPage(w, http.StatusNotFound, "Not found", "This server does not send sign-in alerts.")
		return
	}
	var id, token string
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
		if err := r.ParseForm(); err != nil {
			s.errorPage(w, http.StatusBadRequest, "This request is malformed", "Its form could not be read.")
			return
		}
		id, token = r.PostForm.Get(fieldAlertID), r.PostForm.Get(fieldAlertToken)
		if !s.sameOrigin(r) || !s.alerts.CheckForm(token, r.PostForm.Get(fieldAlertForm)) {
			s.errorPage(w, http.StatusForbidden, "This request was refused", "The form did not come from this page. Open the link from the email again.")
			return
		}
	} else {
		q := r.URL.Query()
		id, token = q.Get(fieldAlertID), q.Get(fieldAlertToken)
	}
	a, answer, err := s.alerts.Peek(r.Context(), id, token)
	if errors.Is(err, protect.ErrInvalidLink) {
		s.errorPage(w, http.StatusGone, invalidLinkTitle, invalidLinkMessage)
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	v := web.AlertView{
		NotMe:   answer == latch.AlertAnswerNotMe,
		When:    a.CreatedAt.UTC().Format("Monday, 2 January 2006, 15:04 MST"),
		Where:   protect.Where(latch.Place{Country: a.Country, City: a.City}, a.IP),
		Browser: a.Browser, OS: a.OS, IP: a.IP, Action: "/alert",
		Fields: []web.Field{{Name: fieldAlertID, Value: id}, {Name: fieldAlertToken, Value: token},
			{Name: fieldAlertForm, Value: s.alerts.FormToken(token)}},
	}
	if r.Method == http.MethodPost {
		if _, err := s.alerts.Answer(r.Context(), id, token, s.deviceOf(r)); errors.Is(err, protect.ErrInvalidLink) {
			s.errorPage(w, http.StatusGone, invalidLinkTitle, invalidLinkMessage)
			return
		} else if err != nil {
			s.fail(w, r, err)
			return
		}
		v.Done, v.Fields = true, nil
	}
	pages.Alert(w, v)
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
