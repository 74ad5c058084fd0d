package web

import (
	"net/http"
	"time"
)

// AdminView is a page of the admin console. The page holds no data: its
// script (admin.js) reads the admin API, which checks every request.
type AdminView struct {
	// Section is the page: "users", "user", "clients", "keys", "events",
	// "overview", or "forbidden" for the 403 page.
	Section string
	// UserID is the user of the "user" page.
	UserID string
	// Email is the signed-in administrator's, when the server knew it.
	Email string
	// SessionTTL is how long a console sign-in lasts (admin.session_ttl).
	SessionTTL time.Duration
}

// SetupView is the first administrator's setup page.
type SetupView struct {
	// Token is the setup link's token, posted back with the form.
	Token string
	// Email prefills the form after a refusal.
	Email string
	// Error says why the form was refused, or why the link cannot be used.
	Error string
	// Done: the link cannot be used (no form is shown).
	Done bool
	// Created: the first administrator was created.
	Created bool
}

// adminNav is the console's navigation, in order.
var adminNav = []struct{ Section, Label string }{
	{"overview", "Overview"},
	{"users", "Users"},
	{"clients", "Clients"},
	{"keys", "Keys"},
	{"events", "Events"},
}

// adminData is what admin.html sees.
type adminData struct {
	AdminView
	Nav []navItem
}

type navItem struct {
	Section, Label, Href string
	Current              bool
}

// Admin writes a page of the admin console with status.
func (h *Pages) Admin(w http.ResponseWriter, status int, v AdminView) {
	d := h.data("admin")
	if v.Section == "forbidden" {
		d = h.data("forbidden")
	}
	nav := make([]navItem, 0, len(adminNav))
	for _, n := range adminNav {
		nav = append(nav, navItem{Section: n.Section, Label: n.Label, Href: "/admin/" + n.Section,
			Current: n.Section == v.Section || (n.Section == "users" && v.Section == "user")})
	}
	d.View = adminData{AdminView: v, Nav: nav}
	securityHeaders(w.Header(), ContentSecurityPolicy, true)
	h.write(w, d, status)
}

// Setup writes the setup page with status.
func (h *Pages) Setup(w http.ResponseWriter, status int, v SetupView) {
	d := h.data("setup")
	d.View = v
	securityHeaders(w.Header(), ContentSecurityPolicy, true)
	h.write(w, d, status)
}
