package web

import "net/http"

// AlertView is what the page of a sign-in alert link shows: the sign-in
// the email told of and what the link's answer will do. Before the
// answer (Done false) it holds one form that posts the Fields to Action;
// a GET never acts (mail scanners prefetch links).
type AlertView struct {
	// NotMe: the link is "This wasn't me"; otherwise "Yes, it was me".
	NotMe bool
	// Done: the answer was taken; the page says what happened.
	Done bool
	// When, Where, Browser, OS and IP describe the sign-in.
	When, Where, Browser, OS, IP string
	// Action is the form's action ("/alert").
	Action string
	// Fields are posted back verbatim as hidden inputs (the link and the
	// form token).
	Fields []Field
}

// Alert writes the page of a sign-in alert link: the confirm page with
// its one form, or, once answered, what was done. It has no script, and
// the Content-Security-Policy of every page (no framing, forms to
// 'self' only).
func (h *Pages) Alert(w http.ResponseWriter, v AlertView) {
	d := h.data("alert")
	d.View = v
	securityHeaders(w.Header(), ContentSecurityPolicy, true)
	h.write(w, d, http.StatusOK)
}
