package instance_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/admin"
	"github.com/latchauth/latch/auth"
)

const (
	rootEmail = "root@example.com"
	rootPass  = "correct horse battery staple admin"
	consoleSecret = "Y29uc29sZS1zZWNyZXQtZm9yLXRoZS1jb25zb2xlLXRlc3RzLTdlMmQ5YTFjNGI1Zg"
)

// setupToken issues a setup token, as latch serve does at start.
func (h *harness) setupToken() string {
	h.t.Helper()
	tok, err := h.in.AdminSetup.Issue(context.Background())
	if err != nil || tok == "" {
		h.t.Fatalf("setup token: %q, %v", tok, err)
	}
	return tok
}

// addAdmin creates an administrator as latch admin create does.
func (h *harness) addAdmin(email, pw string) string {
	h.t.Helper()
	id := h.addUser(email, pw)
	if err := admin.Promote(context.Background(), h.in.Store, id, "cli", h.clock.Now()); err != nil {
		h.t.Fatal(err)
	}
	return id
}

// api sends a JSON request of the console with the browser's cookies and,
// when csrf is set, the CSRF header from the CSRF cookie.
func (b *browser) api(method, path string, body any, csrf string) hop {
	b.t.Helper()
	var rd *strings.Reader
	if body != nil {
		js, _ := json.Marshal(body)
		rd = strings.NewReader(string(js))
	} else {
		rd = strings.NewReader("")
	}
	req, _ := http.NewRequest(method, b.h.srv.URL+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if csrf != "" {
		req.Header.Set("X-CSRF-Token", csrf)
	}
	return b.do(req)
}

// cookie returns the value of one of the browser's cookies.
func (b *browser) cookie(name string) string {
	u, _ := url.Parse(b.h.srv.URL)
	for _, c := range b.hc.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

func (b *browser) csrf() string { return b.cookie("latch_csrf") }

// errorOf reads the error code of a JSON answer.
func errorOf(r hop) string {
	var e struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal([]byte(r.body), &e)
	return e.Error
}

func want(t *testing.T, what string, r hop, code int, errCode string) {
	t.Helper()
	if r.code != code || (errCode != "" && errorOf(r) != errCode) {
		t.Fatalf("%s: %d %s, want %d %s", what, r.code, r.body, code, errCode)
	}
}

// TestConsoleSetup: the setup link creates the first administrator once;
// GET never acts; a replayed link, an unknown one, an expired one and any
// link once an administrator exists are refused, creating nobody.
func TestConsoleSetup(t *testing.T) {
	h := start(t, "", nil)
	b := h.browser()
	tok := h.setupToken()
	form := url.Values{"token": {tok}, "email": {rootEmail}, "password": {rootPass}}

	// GET shows the form and acts on nothing, whatever its query says.
	r := b.get("/admin/setup?" + form.Encode())
	if r.code != http.StatusOK || !strings.Contains(r.body, `name="password"`) || !strings.Contains(r.body, tok) {
		t.Fatalf("GET setup: %d %s", r.code, r.body)
	}
	if csp := r.header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("setup page CSP %q", csp)
	}
	if n, _ := h.in.Store.CountAdmins(t.Context()); n != 0 {
		t.Fatal("GET /admin/setup created an administrator")
	}
	// No token, an unknown token: refused.
	want(t, "GET without a token", b.get("/admin/setup"), http.StatusBadRequest, "")
	bad := url.Values{"token": {"not-the-token"}, "email": {rootEmail}, "password": {rootPass}}
	if r := b.postForm("/admin/setup", bad); r.code != http.StatusForbidden || !strings.Contains(r.body, "not valid") {
		t.Fatalf("unknown token: %d %s", r.code, r.body)
	}
	// A weak password: refused, the token still usable.
	weak := url.Values{"token": {tok}, "email": {rootEmail}, "password": {"short"}}
	want(t, "weak password", b.postForm("/admin/setup", weak), http.StatusBadRequest, "")

	r = b.postForm("/admin/setup", form)
	if r.code != http.StatusOK || !strings.Contains(r.body, "Administrator created") {
		t.Fatalf("setup: %d %s", r.code, r.body)
	}
	u, err := h.in.Store.UserByEmail(t.Context(), rootEmail)
	if err != nil || !u.Admin() {
		t.Fatalf("the setup's user: %+v, %v", u, err)
	}

	// Replayed: refused, nobody created.
	replay := url.Values{"token": {tok}, "email": {"second@example.com"}, "password": {rootPass}}
	if r := b.postForm("/admin/setup", replay); r.code == http.StatusOK {
		t.Fatalf("replayed setup link: %d %s", r.code, r.body)
	}
	if _, err := h.in.Store.UserByEmail(t.Context(), "second@example.com"); err == nil {
		t.Fatal("a replayed setup link created a user")
	}
	// Once an administrator exists no link is issued, and the page refuses.
	if tok2, err := h.in.AdminSetup.Issue(t.Context()); tok2 != "" || err != nil {
		t.Fatalf("Issue with an administrator: %q, %v", tok2, err)
	}
	want(t, "GET once an admin exists", b.get("/admin/setup?token="+tok), http.StatusGone, "")
}

// TestConsoleSetupVoid: a link issued before an administrator existed
// (another instance's, or before latch admin create) is void once one
// does; an expired link is refused.
func TestConsoleSetupVoid(t *testing.T) {
	h := start(t, "", nil)
	b := h.browser()
	old := h.setupToken()
	h.clock.Advance(admin.SetupTTL + time.Second)
	expired := url.Values{"token": {old}, "email": {rootEmail}, "password": {rootPass}}
	if r := b.postForm("/admin/setup", expired); r.code != http.StatusForbidden {
		t.Fatalf("expired link: %d %s", r.code, r.body)
	}
	tok := h.setupToken()
	h.addAdmin("cli-admin@example.com", rootPass)
	form := url.Values{"token": {tok}, "email": {rootEmail}, "password": {rootPass}}
	if r := b.postForm("/admin/setup", form); r.code != http.StatusGone {
		t.Fatalf("setup after latch admin create: %d %s", r.code, r.body)
	}
	if n, _ := h.in.Store.CountAdmins(t.Context()); n != 1 {
		t.Fatalf("%d administrators, want the CLI's only", n)
	}
}

// TestConsoleRejections: every refusal of the console: no session,
// a user who is no administrator (pages and API), a missing or wrong CSRF
// header, a destructive action without re-authentication (and with
// another session's proof), a session past admin.session_ttl, a demoted
// or locked administrator, a client token without the admin scope.
func TestConsoleRejections(t *testing.T) {
	h := start(t, "", nil)
	rootID := h.addAdmin(rootEmail, rootPass)
	victim := h.addUser(adaEmail, adaPass)

	// No session at all: the pages send to /login, the API says 401.
	anon := h.browser()
	r := anon.get("/admin/users")
	if r.code != http.StatusSeeOther || r.location != "/login?return_to=%2Fadmin%2Fusers" {
		t.Fatalf("anonymous page: %d %q", r.code, r.location)
	}
	want(t, "anonymous API", anon.api("GET", "/admin/v1/users", nil, ""), http.StatusUnauthorized, "")

	// A user who is no administrator: 403 on every page and call.
	user := h.browser()
	user.signIn(adaEmail, adaPass)
	for _, p := range []string{"/admin", "/admin/users", "/admin/users/" + rootID, "/admin/clients", "/admin/keys", "/admin/events", "/admin/overview"} {
		if r := user.get(p); r.code != http.StatusForbidden || !strings.Contains(r.body, "Administrators only") {
			t.Errorf("non-admin GET %s: %d", p, r.code)
		}
	}
	for _, c := range []struct{ method, path string }{
		{"GET", "/admin/v1/me"}, {"GET", "/admin/v1/users"}, {"GET", "/admin/v1/users/" + rootID}, {"GET", "/admin/v1/events"},
		{"GET", "/admin/v1/clients"}, {"GET", "/admin/v1/keys"}, {"POST", "/admin/v1/users/" + rootID + "/unlock"},
		{"POST", "/admin/v1/reauth"}, {"GET", "/admin/v1/events/export"},
	} {
		want(t, "non-admin "+c.method+" "+c.path, user.api(c.method, c.path, map[string]string{"password": adaPass}, user.csrf()), http.StatusForbidden, "forbidden")
	}

	root := h.browser()
	root.signIn(rootEmail, rootPass)
	want(t, "admin page", root.get("/admin/users"), http.StatusOK, "")
	want(t, "admin me", root.api("GET", "/admin/v1/me", nil, ""), http.StatusOK, "")
	if csp := root.get("/admin/users").header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("console CSP %q", csp)
	}

	// CSRF: missing, wrong.
	unlock := "/admin/v1/users/" + victim + "/unlock"
	want(t, "no CSRF header", root.api("POST", unlock, nil, ""), http.StatusForbidden, "csrf_failed")
	want(t, "wrong CSRF header", root.api("POST", unlock, nil, "forged"), http.StatusForbidden, "csrf_failed")
	want(t, "right CSRF header", root.api("POST", unlock, nil, root.csrf()), http.StatusOK, "")

	// Destructive without re-authentication; a wrong password; another
	// session's proof.
	lock := "/admin/v1/users/" + victim + "/lock"
	want(t, "lock without re-auth", root.api("POST", lock, nil, root.csrf()), http.StatusForbidden, "reauth_required")
	want(t, "revoke all without re-auth", root.api("POST", "/admin/v1/users/"+victim+"/revoke", nil, root.csrf()), http.StatusForbidden, "reauth_required")
	want(t, "delete without re-auth", root.api("DELETE", "/admin/v1/users/"+victim, nil, root.csrf()), http.StatusForbidden, "reauth_required")
	want(t, "rotate without re-auth", root.api("POST", "/admin/v1/keys/rotate", nil, root.csrf()), http.StatusForbidden, "reauth_required")
	want(t, "re-auth without CSRF", root.api("POST", "/admin/v1/reauth", map[string]string{"password": rootPass}, ""), http.StatusForbidden, "csrf_failed")
	want(t, "re-auth, wrong password", root.api("POST", "/admin/v1/reauth", map[string]string{"password": "wrong password!"}, root.csrf()), http.StatusUnauthorized, "invalid_credentials")
	other := h.browser()
	other.signIn(rootEmail, rootPass)
	want(t, "other session re-auth", other.api("POST", "/admin/v1/reauth", map[string]string{"password": rootPass}, other.csrf()), http.StatusOK, "")
	proof := other.cookie("latch_admin_reauth")
	if proof == "" {
		t.Fatal("re-auth set no cookie")
	}
	req, _ := http.NewRequest("POST", h.srv.URL+lock, nil)
	req.Header.Set("X-CSRF-Token", root.csrf())
	req.AddCookie(&http.Cookie{Name: "latch_admin_reauth", Value: proof})
	want(t, "another session's proof", root.do(req), http.StatusForbidden, "reauth_required")
	if u, _ := h.in.Store.UserByID(t.Context(), victim); u.Locked() {
		t.Fatal("a refused lock locked the user")
	}
	want(t, "re-auth", root.api("POST", "/admin/v1/reauth", map[string]string{"password": rootPass}, root.csrf()), http.StatusOK, "")
	want(t, "lock after re-auth", root.api("POST", lock, nil, root.csrf()), http.StatusOK, "")
	// The proof lasts five minutes.
	h.clock.Advance(admin.ReauthWindow + time.Second)
	refreshCookie(t, root)
	want(t, "delete after the re-auth window", root.api("DELETE", "/admin/v1/users/"+victim, nil, root.csrf()), http.StatusForbidden, "reauth_required")
	if u, err := h.in.Store.UserByID(t.Context(), victim); err != nil || !u.Locked() {
		t.Fatalf("victim: %+v, %v", u, err)
	}

	// Past admin.session_ttl (an hour) the session is refused, though its
	// access token is fresh: sign in again.
	h.clock.Advance(admin.DefaultSessionTTL)
	refreshCookie(t, root)
	want(t, "stale admin session", root.api("GET", "/admin/v1/me", nil, ""), http.StatusUnauthorized, "admin_session_expired")
	if r := root.get("/admin/users"); r.code != http.StatusSeeOther || !strings.Contains(r.location, "prompt=login") {
		t.Errorf("stale session's page: %d %q", r.code, r.location)
	}
	root = h.browser()
	root.signIn(rootEmail, rootPass)
	want(t, "signed in again", root.api("GET", "/admin/v1/me", nil, ""), http.StatusOK, "")

	// Demoted, or locked: refused at the next request.
	if err := h.in.Store.SetRole(t.Context(), rootID, "", h.clock.Now()); err != nil {
		t.Fatal(err)
	}
	want(t, "demoted admin", root.api("GET", "/admin/v1/me", nil, ""), http.StatusForbidden, "forbidden")
	if err := h.in.Store.SetRole(t.Context(), rootID, latch.RoleAdmin, h.clock.Now()); err != nil {
		t.Fatal(err)
	}
	want(t, "promoted again", root.api("GET", "/admin/v1/me", nil, ""), http.StatusOK, "")
	if err := h.in.Store.LockUser(t.Context(), rootID, latch.LockReasonAdmin, h.clock.Now()); err != nil {
		t.Fatal(err)
	}
	want(t, "locked admin", root.api("GET", "/admin/v1/me", nil, ""), http.StatusForbidden, "forbidden")

	// A client's token without the admin scope; a user's bearer token.
	h.addRP("plain", func(n *auth.NewClient) {
		n.Secret = consoleSecret
		n.RedirectURIs, n.PostLogoutRedirectURIs, n.Scopes = nil, nil, []string{"read"}
	})
	plain := h.form("/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, basic("plain", consoleSecret)...)
	expect(t, "plain token", plain, http.StatusOK, "")
	expect(t, "client without the admin scope", h.do("GET", "/admin/v1/users", "", bearer(plain.str("access_token"))...), http.StatusForbidden, "insufficient_scope")
	h.addUser("bea@example.com", adaPass)
	bea := h.login("bea@example.com", adaPass)
	expect(t, "a user's bearer token", h.do("GET", "/admin/v1/users", "", bearer(bea.str("access_token"))...), http.StatusForbidden, "insufficient_scope")
	// An admin client needs neither CSRF nor re-authentication.
	h.addRP("ops", func(n *auth.NewClient) {
		n.Secret = consoleSecret
		n.RedirectURIs, n.PostLogoutRedirectURIs, n.Scopes = nil, nil, []string{admin.Scope}
	})
	ops := h.form("/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {admin.Scope}}, basic("ops", consoleSecret)...)
	expect(t, "ops token", ops, http.StatusOK, "")
	expect(t, "admin client unlocks", h.do("POST", "/admin/v1/users/"+rootID+"/unlock", "", bearer(ops.str("access_token"))...), http.StatusOK, "")
	expect(t, "admin client locks", h.do("POST", "/admin/v1/users/"+victim+"/lock", "", bearer(ops.str("access_token"))...), http.StatusOK, "")
}

// refreshCookie refreshes a browser's cookie session, as the SDK does when
// its access token expires (the session, and its AuthTime, stay).
func refreshCookie(t *testing.T, b *browser) {
	t.Helper()
	req, _ := http.NewRequest("POST", b.h.srv.URL+"/v1/auth/refresh", strings.NewReader(`{}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-CSRF-Token", b.csrf())
	if r := b.do(req); r.code != http.StatusOK {
		t.Fatalf("refresh: %d %s", r.code, r.body)
	}
}
