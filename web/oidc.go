package web

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Field is a hidden form input a page posts back verbatim.
type Field struct {
	Name, Value string
}

// ConsentView is what the consent page shows and posts.
type ConsentView struct {
	// ClientID identifies the client; ClientName, when set, is shown
	// instead, with the id beside it.
	ClientID, ClientName string
	// RedirectHost is the host the user is sent to after choosing, shown so
	// the user sees where they go.
	RedirectHost string
	// UserEmail is the signed-in user's email address.
	UserEmail string
	// Scopes are the requested scopes, in the order to show them.
	Scopes []string
	// Action is the form's action, such as "/oauth2/consent".
	Action string
	// Fields are posted back verbatim as hidden inputs.
	Fields []Field
	// FormTargets are the origins the browser is redirected to after the
	// POST; the page's form-action allows them (see Pages.Consent).
	FormTargets []string
}

// LogoutView is what the logout confirmation page shows and posts.
type LogoutView struct {
	// ClientID is the client that asked for the logout; it may be empty.
	// ClientName, when set, is shown instead.
	ClientID, ClientName string
	// Action is the form's action, such as "/oauth2/logout".
	Action string
	// Fields are posted back verbatim as hidden inputs.
	Fields []Field
	// FormTargets are the origins the browser is redirected to after the
	// POST (the post_logout_redirect_uri's); see Pages.Consent.
	FormTargets []string
}

// SignedOutView is what the signed-out page shows. It has no fields yet.
type SignedOutView struct{}

// ErrorView is what the authorization error page shows. Both are plain
// text; empty ones get a generic sentence.
type ErrorView struct {
	Title, Message string
}

// scopeLine is one requested scope as the consent page lists it.
type scopeLine struct {
	Name string // the scope
	Icon string // icon class suffix
	Text string // what it allows, for people; for an unknown scope, the scope itself
	Raw  bool   // Text is a raw scope name
}

// consentData is what the consent template sees.
type consentData struct {
	ConsentView
	Name   string // the client's display name
	ShowID bool   // show ClientID beside Name
	Lines  []scopeLine
}

// logoutData is what the logout template sees.
type logoutData struct {
	LogoutView
	Name string
}

// describeScopes turns requested scopes into lines for people, in order,
// without duplicates or empty names.
func describeScopes(scopes []string) []scopeLine {
	seen := map[string]bool{}
	var lines []scopeLine
	for _, s := range scopes {
		if s == "" || seen[s] {
			continue
		}
		seen[s] = true
		l := scopeLine{Name: s}
		switch s {
		case "openid":
			l.Icon, l.Text = "user", "Confirm you are signed in as"
		case "profile":
			l.Icon, l.Text = "user", "Your basic profile information"
		case "email":
			l.Icon, l.Text = "mail", "Your email address"
		case "offline_access":
			l.Icon, l.Text = "key", "Stay signed in to the app when you are away"
		default:
			l.Icon, l.Text, l.Raw = "shield", s, true
		}
		lines = append(lines, l)
	}
	return lines
}

// Consent writes the consent page: the client asks to access the user's
// account with the scopes; one form posts decision=allow or decision=deny
// with the fields to Action. It works without JavaScript.
//
// Chromium applies form-action to the redirect that follows a form POST,
// so the page's Content-Security-Policy allows 'self' and each origin of
// FormTargets that FormActionCSP accepts; the rest of the policy is
// ContentSecurityPolicy's, and the page can be framed by no one.
func (h *Pages) Consent(w http.ResponseWriter, v ConsentView) {
	name := v.ClientName
	if name == "" {
		name = v.ClientID
	}
	d := h.data("consent")
	d.View = consentData{ConsentView: v, Name: name, ShowID: v.ClientName != "" && v.ClientName != v.ClientID, Lines: describeScopes(v.Scopes)}
	securityHeaders(w.Header(), FormActionCSP(v.FormTargets), true)
	h.write(w, d, http.StatusOK)
}

// LogoutConfirm writes the page that asks "Sign out of Latch?": one form
// posts decision=logout or decision=stay with the fields to Action. Its
// Content-Security-Policy allows the FormTargets as Consent's does.
func (h *Pages) LogoutConfirm(w http.ResponseWriter, v LogoutView) {
	name := v.ClientName
	if name == "" {
		name = v.ClientID
	}
	d := h.data("logout")
	d.View = logoutData{LogoutView: v, Name: name}
	securityHeaders(w.Header(), FormActionCSP(v.FormTargets), true)
	h.write(w, d, http.StatusOK)
}

// SignedOut writes the "You are signed out" page, with a link to /login.
func (h *Pages) SignedOut(w http.ResponseWriter, v SignedOutView) {
	d := h.data("signedout")
	d.View = v
	securityHeaders(w.Header(), ContentSecurityPolicy, true)
	h.write(w, d, http.StatusOK)
}

// Error writes the error page of an authorization request that cannot be
// redirected back to the client (an unknown client, a redirect URI that is
// not registered), with status, which must be a 4xx or 5xx (anything else
// becomes 400). The page explains in plain words and links to nothing the
// request named.
func (h *Pages) Error(w http.ResponseWriter, status int, v ErrorView) {
	if status < 400 || status > 599 {
		status = http.StatusBadRequest
	}
	if v.Title == "" {
		v.Title = "This sign-in request can't continue"
	}
	if v.Message == "" {
		v.Message = "The app that sent you here made a request Latch cannot accept."
	}
	d := h.data("error")
	d.Title = v.Title
	d.View = v
	securityHeaders(w.Header(), ContentSecurityPolicy, true)
	h.write(w, d, status)
}

// FormActionCSP returns ContentSecurityPolicy with its form-action
// extended by the targets it accepts, in order and without duplicates:
//
//   - an http or https origin, exactly scheme://host[:port] (a DNS name or
//     an IP literal, no path, no user information), written lowercase;
//   - a private-use scheme (RFC 8252 §7.1: a reverse domain name such as
//     com.example.app), given as "com.example.app:" or as
//     "com.example.app://host[:port]", allowed as the scheme source
//     "com.example.app:".
//
// Anything else is dropped, so no target can add a directive or a source.
func FormActionCSP(targets []string) string {
	extra := ""
	seen := map[string]bool{}
	for _, t := range targets {
		src, ok := formSource(t)
		if !ok || seen[src] {
			continue
		}
		seen[src] = true
		extra += " " + src
	}
	if extra == "" {
		return ContentSecurityPolicy
	}
	return strings.Replace(ContentSecurityPolicy, "form-action 'self'", "form-action 'self'"+extra, 1)
}

var (
	webOriginRE   = regexp.MustCompile(`^(?i)(https?)://([a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*|\[[0-9a-f:.]+\])(:[0-9]{1,5})?$`)
	privateSchRE  = regexp.MustCompile(`^(?i)([a-z][a-z0-9+-]*(?:\.[a-z0-9+-]+)+):(?://([a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*|\[[0-9a-f:.]+\])(:[0-9]{1,5})?)?$`)
	portInRangeRE = regexp.MustCompile(`^:(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])$`)
)

// formSource turns a form target into a CSP source expression, or reports
// that it is not an accepted target.
func formSource(t string) (string, bool) {
	if len(t) > 300 {
		return "", false
	}
	if m := webOriginRE.FindStringSubmatch(t); m != nil {
		if m[3] != "" && !portInRangeRE.MatchString(m[3]) {
			return "", false
		}
		return strings.ToLower(m[1] + "://" + m[2] + m[3]), true
	}
	if m := privateSchRE.FindStringSubmatch(t); m != nil {
		if m[3] != "" && !portInRangeRE.MatchString(m[3]) {
			return "", false
		}
		return strings.ToLower(m[1]) + ":", true
	}
	return "", false
}

// authorizePath is the only path /login returns to.
const authorizePath = "/oauth2/authorize"

// maxReturnTo bounds an accepted return_to.
const maxReturnTo = 8192

// ValidReturnTo reports whether /login may return to s after signing in:
// a relative URL of this origin whose path is exactly /oauth2/authorize,
// with an optional query and nothing else (no scheme, no host, no "//" or
// "/\", no fragment, no encoded or dot-segment path, no space, control
// character or backslash anywhere); or a page of the admin console (see
// validAdminReturn).
func ValidReturnTo(s string) bool {
	if len(s) > maxReturnTo || !utf8.ValidString(s) {
		return false
	}
	if validAdminReturn(s) {
		return true
	}
	if s != authorizePath && !strings.HasPrefix(s, authorizePath+"?") {
		return false
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f || r == '\\' || r == '#' || (r >= 0x80 && r <= 0x9f) {
			return false
		}
	}
	u, err := url.Parse(s)
	if err != nil {
		return false
	}
	return u.Scheme == "" && u.Opaque == "" && u.User == nil && u.Host == "" &&
		u.Path == authorizePath && u.RawPath == "" && u.Fragment == ""
}

// validAdminReturn accepts the admin console's pages: /admin, or /admin/
// followed by segments of letters, digits, '_' and '-' separated by single
// slashes (a user id), no query, at most 200 bytes: nothing that could
// leave the origin or the console.
func validAdminReturn(s string) bool {
	if s == "/admin" {
		return true
	}
	rest, ok := strings.CutPrefix(s, "/admin/")
	if !ok || len(s) > 200 || rest == "" {
		return false
	}
	for _, seg := range strings.Split(rest, "/") {
		if seg == "" {
			return false
		}
		for _, r := range seg {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
				return false
			}
		}
	}
	return true
}

// maxLoginHint bounds the login_hint /login prefills (an email address's
// longest).
const maxLoginHint = 254

// loginHint returns the email field's prefill for a login_hint: the hint,
// trimmed, when it is short, valid text without control characters, and
// "" otherwise.
func loginHint(s string) string {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > maxLoginHint || !utf8.ValidString(s) {
		return ""
	}
	for _, r := range s {
		if r < ' ' || r == 0x7f || (r >= 0x80 && r <= 0x9f) {
			return ""
		}
	}
	return s
}
