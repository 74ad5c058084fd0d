package server

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/admin"
	"github.com/latchauth/latch/auth"
	"github.com/latchauth/latch/overview"
	"github.com/latchauth/latch/password"
	"github.com/latchauth/latch/verifier"
	"github.com/latchauth/latch/web"
)

// Console is the admin console: its pages under /admin and its JSON API
// under /admin/v1 (console_api.go), for administrators signed in through
// /login (Latch's own cookie session) and for admin clients (a
// client_credentials token with the admin scope: scripts). Every
// administrator's request reads the admin role and the lock from the
// store, refuses a session signed in longer ago than the admin session
// TTL (401 admin_session_expired: sign in again), and a destructive
// action needs a password confirmed in the last five minutes
// (POST /admin/v1/reauth), proved by an HttpOnly cookie bound to the
// session. Unsafe methods carry the session's CSRF header, as the
// account API's cookie mode does.
type Console struct {
	Setup   *admin.Setup
	Gate    *admin.Gate
	Users   *admin.Users
	Events  *admin.Events
	Keys    *admin.Keys
	Clients *admin.Clients
	// Overview collects the Overview page's figures; nil leaves
	// GET /admin/v1/overview out.
	Overview *overview.Collector
	// Pages renders the console's pages and the setup page.
	Pages ConsolePages
}

// ConsolePages renders the admin console's pages (package web).
type ConsolePages interface {
	Admin(w http.ResponseWriter, status int, v web.AdminView)
	Setup(w http.ResponseWriter, status int, v web.SetupView)
}

// consoleSections are the console's pages: /admin/{section}.
var consoleSections = []string{"users", "clients", "keys", "events", "overview"}

// routeConsole registers the console's pages and API.
func (s *Server) routeConsole() {
	c := s.console
	s.route("GET,POST "+admin.SetupPath, s.setupPage)
	s.route("GET /admin", s.consolePage("overview"))
	s.route("GET /admin/{$}", s.consolePage("overview"))
	for _, sec := range consoleSections {
		s.route("GET /admin/"+sec, s.consolePage(sec))
	}
	s.route("GET /admin/users/{id}", s.consolePage("user"))
	s.route("GET /admin/v1/me", s.consoleAPI(false, s.consoleMe))
	s.route("POST /admin/v1/reauth", s.withDevice(s.consoleReauth))
	if c.Users != nil {
		s.route("GET,POST /admin/v1/users", s.consoleAPI(false, s.consoleUsers))
		get, del := s.consoleAPI(false, s.consoleUser), s.consoleAPI(true, s.consoleDeleteUser)
		s.route("GET,DELETE /admin/v1/users/{id}", func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodDelete {
				del(w, r)
				return
			}
			get(w, r)
		})
		s.route("POST /admin/v1/users/{id}/lock", s.consoleAPI(true, s.consoleLock))
		s.route("POST /admin/v1/users/{id}/unlock", s.consoleAPI(false, s.consoleUnlock))
		s.route("POST /admin/v1/users/{id}/password-reset", s.consoleAPI(false, s.consoleReset))
	}
	if c.Clients != nil {
		s.route("GET,POST /admin/v1/clients", s.consoleAPI(false, s.consoleClients))
		edit, del := s.consoleAPI(false, s.consoleEditClient), s.consoleAPI(true, s.consoleDeleteClient)
		s.route("PATCH,DELETE /admin/v1/clients/{id}", func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodDelete {
				del(w, r)
				return
			}
			edit(w, r)
		})
		s.route("POST /admin/v1/clients/{id}/secret", s.consoleAPI(true, s.consoleRotateSecret))
	}
	if c.Keys != nil {
		s.route("GET /admin/v1/keys", s.consoleAPI(false, s.consoleKeys))
		s.route("POST /admin/v1/keys/rotate", s.consoleAPI(true, s.consoleRotate))
		s.route("POST /admin/v1/keys/{kid}/revoke", s.consoleAPI(true, s.consoleRevokeKey))
	}
	if c.Overview != nil {
		s.route("GET /admin/v1/overview", s.consoleAPI(false, s.consoleOverview))
	}
	if c.Events != nil {
		s.route("GET /admin/v1/events", s.consoleAPI(false, s.consoleEvents))
		s.route("GET /admin/v1/events/export", s.consoleAPI(false, s.consoleExport))
	}
}

// consoleHandler is a console API handler: by is who asks.
type consoleHandler func(w http.ResponseWriter, r *http.Request, by admin.Caller)

// consoleAPI authenticates an admin API request (consoleCaller) and, for
// a destructive action, requires the recent password confirmation of a
// console session.
func (s *Server) consoleAPI(destructive bool, h consoleHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		by, _, ok := s.consoleCaller(w, r)
		if !ok {
			return
		}
		if destructive && !s.consoleReauthed(w, r, by) {
			return
		}
		h(w, r, by)
	}
}

// consoleReauthed reports whether a console session confirmed its
// password within the last five minutes (admin clients need not), or
// writes 403 reauth_required.
func (s *Server) consoleReauthed(w http.ResponseWriter, r *http.Request, by admin.Caller) bool {
	if by.AdminID == "" || s.console.Gate.Reauthenticated(by.SessionID, value(r, s.cfg.Cookies.adminReauth())) {
		return true
	}
	writeError(w, http.StatusForbidden, "reauth_required",
		"this action needs your password again: confirm it (POST /admin/v1/reauth) and retry within 5 minutes")
	return false
}

// consoleCaller authenticates a request of the admin API: an admin
// client's own token (Authorization: Bearer), or an administrator's
// console session (the access cookie of Latch's own sign-in; unsafe
// methods with its CSRF header). It returns the caller and, for a
// session, its id; otherwise it writes the 4xx and reports false.
func (s *Server) consoleCaller(w http.ResponseWriter, r *http.Request) (admin.Caller, string, bool) {
	if r.Header.Get("Authorization") != "" || s.console == nil || s.console.Gate == nil {
		by, ok := s.adminClient(w, r)
		return by, "", ok
	}
	c, ok := s.authenticate(w, r) // the cookie; CSRF for unsafe methods
	if !ok {
		return admin.Caller{}, "", false
	}
	u, ok := s.consoleAdmit(w, r, c)
	if !ok {
		return admin.Caller{}, "", false
	}
	return admin.Caller{AdminID: u.ID, SessionID: c.SessionID, Device: s.deviceOf(r)}, c.SessionID, true
}

// consoleAdmit checks that the claims are of an administrator's current
// console session, or writes the 4xx: 403 forbidden for anyone else (an
// app's token, a user who is no administrator or is locked), 401
// admin_session_expired for a session signed in too long ago.
func (s *Server) consoleAdmit(w http.ResponseWriter, r *http.Request, c *verifier.Claims) (*latch.User, bool) {
	if c.SessionID == "" || c.ClientID != auth.AccountClientID {
		writeError(w, http.StatusForbidden, "forbidden", "the admin console needs a sign-in through Latch's own /login")
		return nil, false
	}
	u, err := s.console.Gate.Admit(r.Context(), c.Subject, c.SessionID)
	switch {
	case errors.Is(err, admin.ErrForbidden):
		writeError(w, http.StatusForbidden, "forbidden", "only an administrator may use the admin console")
		return nil, false
	case errors.Is(err, admin.ErrStale):
		writeError(w, http.StatusUnauthorized, "admin_session_expired", "the admin session has ended: sign in again at /login?return_to=/admin")
		return nil, false
	case err != nil:
		s.fail(w, r, err)
		return nil, false
	}
	return u, true
}

// adminClient authenticates an admin client's own token with the admin
// scope, or writes the 4xx and reports false.
func (s *Server) adminClient(w http.ResponseWriter, r *http.Request) (admin.Caller, bool) {
	var c *latch.Client
	var scope string
	if tok, ok := verifier.BearerToken(r); ok {
		if cl, claims, err := s.auth.ClientToken(r.Context(), tok); err == nil {
			c, scope = cl, claims.Scope
		}
	}
	if c == nil {
		// Not a client's own valid token: a user's token is 403, anything
		// else the verifier's 401.
		if _, ok := s.authenticate(w, r); !ok {
			return admin.Caller{}, false
		}
		adminForbidden(w, "the admin API needs a client's own access token (client_credentials grant) with the admin scope, not a user's")
		return admin.Caller{}, false
	}
	if !strings.Contains(" "+scope+" ", " "+admin.Scope+" ") || !containsString(c.Scopes, admin.Scope) {
		adminForbidden(w, "this access token lacks the admin scope: register the client with `latch client add --scopes admin` and ask for scope=admin")
		return admin.Caller{}, false
	}
	return admin.Caller{ClientID: c.ID, Device: s.deviceOf(r)}, true
}

func containsString(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// consolePage serves a page of the console: the page itself holds no
// data (its script reads the API, which checks every request), but a
// browser whose valid session is not an administrator's gets the 403
// page, and one without any session is sent to sign in.
func (s *Server) consolePage(section string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		noStore(w)
		if s.console.Pages == nil {
			writeError(w, http.StatusNotFound, "not_found", "no such endpoint")
			return
		}
		login := "/login?return_to=" + url.QueryEscape(r.URL.Path)
		tok := value(r, s.cfg.Cookies.Access)
		if tok == "" {
			http.Redirect(w, r, login, http.StatusSeeOther)
			return
		}
		v := web.AdminView{Section: section, UserID: r.PathValue("id"), SessionTTL: s.console.Gate.SessionTTL()}
		if c, err := s.verifier.VerifyContext(r.Context(), tok); err == nil {
			// A valid access cookie: decide now. An expired one is left to
			// the page's script, which refreshes and asks the API.
			rec := &headerOnly{h: http.Header{}}
			u, ok := s.consoleAdmit(rec, r, c)
			switch {
			case ok:
				v.Email = u.Email
			case rec.code == http.StatusUnauthorized:
				http.Redirect(w, r, login+"&prompt=login", http.StatusSeeOther)
				return
			case rec.code == http.StatusForbidden:
				s.console.Pages.Admin(w, http.StatusForbidden, web.AdminView{Section: "forbidden"})
				return
			default:
				s.fail(w, r, errors.New("admin: cannot check the console session"))
				return
			}
		}
		s.console.Pages.Admin(w, http.StatusOK, v)
	}
}

// headerOnly is a ResponseWriter that keeps only the status code, to ask
// consoleAdmit for its verdict without its JSON answer.
type headerOnly struct {
	h    http.Header
	code int
}

func (w *headerOnly) Header() http.Header         { return w.h }
func (w *headerOnly) Write(b []byte) (int, error) { return len(b), nil }
func (w *headerOnly) WriteHeader(code int)        { w.code = code }

// adminReauth names the cookie proving a recent password confirmation in
// the console: host-only, like the OpenID Provider's re-authentication
// proof (Reauth).
func (c Cookies) adminReauth() string {
	if c.Secure {
		return "__Host-latch_admin_reauth"
	}
	return "latch_admin_reauth"
}

// consoleReauth checks the administrator's password and sets the
// re-authentication cookie: HttpOnly, SameSite=Strict, five minutes.
func (s *Server) consoleReauth(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "" {
		writeError(w, http.StatusBadRequest, "invalid_request", "re-authentication is for console sessions; admin clients need none")
		return
	}
	c, ok := s.authenticate(w, r)
	if !ok {
		return
	}
	u, ok := s.consoleAdmit(w, r, c)
	if !ok {
		return
	}
	var req struct {
		Password string `json:"password"`
	}
	if !decode(w, r, &req) {
		return
	}
	if req.Password == "" {
		writeError(w, http.StatusBadRequest, "invalid_request", `field "password" is required`)
		return
	}
	proof, err := s.console.Gate.Reauth(r.Context(), u, c.SessionID, req.Password, s.deviceOf(r))
	var te *auth.ThrottleError
	switch {
	case errors.As(err, &te):
		rateLimited(w, te, "too many attempts; wait and try again")
		return
	case errors.Is(err, auth.ErrInvalidCredentials):
		writeError(w, http.StatusUnauthorized, "invalid_credentials", "the password is not right")
		return
	case errors.Is(err, auth.ErrUserLocked):
		writeError(w, http.StatusForbidden, "forbidden", "this account is locked")
		return
	case err != nil:
		s.fail(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: s.cfg.Cookies.adminReauth(), Value: proof, Path: "/", MaxAge: int(admin.ReauthWindow / time.Second),
		Secure: s.cfg.Cookies.Secure, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	writeJSON(w, http.StatusOK, map[string]any{"reauthenticated": true, "expires_in": int(admin.ReauthWindow / time.Second)})
}

// setupPage is the first administrator's setup page: GET shows the form
// (or why it cannot be used), only POST acts.
func (s *Server) setupPage(w http.ResponseWriter, r *http.Request) {
	noStore(w)
	c := s.console
	if c.Setup == nil || c.Pages == nil {
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint")
		return
	}
	need, err := c.Setup.Needed(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !need {
		c.Pages.Setup(w, http.StatusGone, web.SetupView{Error: "An administrator exists already, so setup links no longer work. Sign in to the console instead.", Done: true})
		return
	}
	if r.Method != http.MethodPost {
		tok := r.URL.Query().Get("token")
		if tok == "" || len(tok) > 128 {
			c.Pages.Setup(w, http.StatusBadRequest, web.SetupView{Error: "This page needs the setup link that latch serve logged (it carries a token). Restart latch serve for a new one, or use latch admin create.", Done: true})
			return
		}
		c.Pages.Setup(w, http.StatusOK, web.SetupView{Token: tok})
		return
	}
	// The token is the form's secret; a browser that says the form came
	// from another site is refused all the same. (The page's
	// Referrer-Policy makes its Origin "null", so that is not checked.)
	if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
		c.Pages.Setup(w, http.StatusForbidden, web.SetupView{Error: "This form must be sent from this server's own page.", Done: true})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	if err := r.ParseForm(); err != nil {
		c.Pages.Setup(w, http.StatusBadRequest, web.SetupView{Error: "The form could not be read.", Done: true})
		return
	}
	tok, addr, pw := r.PostForm.Get("token"), r.PostForm.Get("email"), r.PostForm.Get("password")
	view := web.SetupView{Token: tok, Email: addr}
	_, err = c.Setup.CreateFirst(r.Context(), tok, addr, pw, s.deviceOf(r))
	var policy *password.PolicyError
	switch {
	case err == nil:
		c.Pages.Setup(w, http.StatusOK, web.SetupView{Created: true, Email: addr})
	case errors.Is(err, admin.ErrSetupToken):
		c.Pages.Setup(w, http.StatusForbidden, web.SetupView{Error: "This setup link is not valid: it was used already, has expired (after 1 hour), or was never issued. Restart latch serve for a new one, or use latch admin create.", Done: true})
	case errors.Is(err, admin.ErrAdminExists):
		c.Pages.Setup(w, http.StatusGone, web.SetupView{Error: "An administrator exists already, so setup links no longer work. Sign in to the console instead.", Done: true})
	case errors.Is(err, auth.ErrInvalidEmail):
		view.Error = "Enter a valid email address."
		c.Pages.Setup(w, http.StatusBadRequest, view)
	case errors.Is(err, auth.ErrEmailTaken):
		view.Error = "An account with this email exists. Setup creates a new administrator account; make an existing user an administrator with latch admin create --promote."
		c.Pages.Setup(w, http.StatusConflict, view)
	case errors.As(err, &policy):
		view.Error = "Choose another password: " + policy.Message + "."
		c.Pages.Setup(w, http.StatusBadRequest, view)
	default:
		s.fail(w, r, err)
	}
}
