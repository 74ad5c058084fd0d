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
	rootEmail     = "root@example.com"
	rootPass      = "correct horse battery staple admin"
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
	want(t, "revoke a key without re-auth", root.api("POST", "/admin/v1/keys/kid/revoke", nil, root.csrf()), http.StatusForbidden, "reauth_required")
	want(t, "rotate a client secret without re-auth", root.api("POST", "/admin/v1/clients/any/secret", nil, root.csrf()), http.StatusForbidden, "reauth_required")
	want(t, "delete a client without re-auth", root.api("DELETE", "/admin/v1/clients/any", nil, root.csrf()), http.StatusForbidden, "reauth_required")
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

// TestConsoleAPI: the admin API as scripts use it, with an admin client's
// token: search and pages of users, a user with sessions and events,
// revoking a session (the token is refused), lock, reset, delete, client
// registration with the CLI's rules (a bad redirect URI is a 400), keys,
// the filtered security log with its cursor, and its CSV and JSON
// exports; every action recorded as an admin_action naming the client;
// bad input a 4xx JSON error.
func TestConsoleAPI(t *testing.T) {
	h := start(t, "", nil)
	h.addRP("ops", func(n *auth.NewClient) {
		n.Secret = consoleSecret
		n.RedirectURIs, n.PostLogoutRedirectURIs, n.Scopes = nil, nil, []string{admin.Scope}
	})
	tok := h.form("/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {admin.Scope}}, basic("ops", consoleSecret)...)
	expect(t, "ops token", tok, http.StatusOK, "")
	ops := bearer(tok.str("access_token"))
	js := append([]string{"Content-Type", "application/json"}, ops...)

	// Users: created through the API, found, paged.
	for _, e := range []string{"ann@example.com", "anna@example.com", "bob@example.com"} {
		expect(t, "create "+e, h.do("POST", "/admin/v1/users", jsonBody(map[string]string{"email": e, "password": adaPass}), js...), http.StatusCreated, "")
	}
	expect(t, "taken email", h.do("POST", "/admin/v1/users", jsonBody(map[string]string{"email": "ann@example.com", "password": adaPass}), js...), http.StatusConflict, "email_taken")
	expect(t, "weak password", h.do("POST", "/admin/v1/users", jsonBody(map[string]string{"email": "x@example.com", "password": "short"}), js...), http.StatusBadRequest, "weak_password")
	expect(t, "bad email", h.do("POST", "/admin/v1/users", jsonBody(map[string]string{"email": "nope", "password": adaPass}), js...), http.StatusBadRequest, "invalid_request")
	r := h.do("GET", "/admin/v1/users?q=ann&limit=1", "", ops...)
	expect(t, "search", r, http.StatusOK, "")
	users, _ := r.body["users"].([]any)
	if len(users) != 1 || r.str("next") != "ann@example.com" {
		t.Fatalf("first page: %s", r.raw)
	}
	r = h.do("GET", "/admin/v1/users?q=ann&limit=1&after="+url.QueryEscape(r.str("next")), "", ops...)
	users, _ = r.body["users"].([]any)
	if len(users) != 1 || users[0].(map[string]any)["email"] != "anna@example.com" || r.str("next") != "" {
		t.Fatalf("second page: %s", r.raw)
	}
	for _, bad := range []string{"limit=0", "limit=1000", "limit=x", "q=" + strings.Repeat("a", 300), "q=%00"} {
		expect(t, "users?"+bad, h.do("GET", "/admin/v1/users?"+bad, "", ops...), http.StatusBadRequest, "invalid_request")
	}

	// A user's sessions; revoke one: its token is refused.
	annID := ""
	if u, err := h.in.Store.UserByEmail(t.Context(), "ann@example.com"); err == nil {
		annID = u.ID
	}
	ann := h.login("ann@example.com", adaPass)
	r = h.do("GET", "/admin/v1/users/"+annID, "", ops...)
	expect(t, "user", r, http.StatusOK, "")
	sess, _ := r.body["sessions"].([]any)
	if len(sess) != 1 || sess[0].(map[string]any)["id"] != ann.str("session_id") {
		t.Fatalf("user's sessions: %s", r.raw)
	}
	expect(t, "unknown user", h.do("GET", "/admin/v1/users/u_nobody", "", ops...), http.StatusNotFound, "not_found")
	expect(t, "revoke", h.do("POST", "/admin/v1/sessions/"+ann.str("session_id")+"/revoke", "", ops...), http.StatusOK, "")
	expect(t, "revoked token", h.do("GET", "/v1/me", "", bearer(ann.str("access_token"))...), http.StatusUnauthorized, "")
	expect(t, "lock", h.do("POST", "/admin/v1/users/"+annID+"/lock", "", ops...), http.StatusOK, "")
	if u, _ := h.in.Store.UserByID(t.Context(), annID); !u.Locked() || u.LockReason != latch.LockReasonAdmin {
		t.Fatalf("locked: %+v", u)
	}
	expect(t, "reset", h.do("POST", "/admin/v1/users/"+annID+"/password-reset", "", ops...), http.StatusOK, "")
	expect(t, "unlock", h.do("POST", "/admin/v1/users/"+annID+"/unlock", "", ops...), http.StatusOK, "")
	expect(t, "lock unknown", h.do("POST", "/admin/v1/users/u_nobody/lock", "", ops...), http.StatusNotFound, "not_found")

	// Clients: the CLI's rules.
	r = h.do("POST", "/admin/v1/clients", jsonBody(map[string]any{"id": "dash", "redirect_uris": []string{"https://dash.example.com/cb"}}), js...)
	expect(t, "create client", r, http.StatusCreated, "")
	if len(r.str("client_secret")) < 32 {
		t.Fatalf("the generated secret: %s", r.raw)
	}
	expect(t, "taken id", h.do("POST", "/admin/v1/clients", jsonBody(map[string]any{"id": "dash", "public": true}), js...), http.StatusConflict, "client_exists")
	for what, body := range map[string]any{
		"http redirect":    map[string]any{"id": "d2", "redirect_uris": []string{"http://evil.example.com/cb"}},
		"fragment":         map[string]any{"id": "d3", "redirect_uris": []string{"https://x.example.com/cb#f"}},
		"bad id":           map[string]any{"id": "a b", "public": true},
		"weak secret":      map[string]any{"id": "d4", "secret": "short"},
		"unknown field":    map[string]any{"id": "d5", "public": true, "wat": 1},
		"unknown delivery": map[string]any{"id": "d6", "public": true, "delivery": "pigeon"},
	} {
		r := h.do("POST", "/admin/v1/clients", jsonBody(body), js...)
		if r.code != http.StatusBadRequest || r.str("error") == "" {
			t.Errorf("%s: %d %s", what, r.code, r.raw)
		}
	}
	r = h.do("GET", "/admin/v1/clients", "", ops...)
	if !strings.Contains(string(r.raw), "https://dash.example.com/cb") || strings.Contains(string(r.raw), "secret_hash") {
		t.Fatalf("clients: %s", r.raw)
	}

	// Edit, rotate the secret, delete.
	r = h.do("PATCH", "/admin/v1/clients/dash", jsonBody(map[string]any{"redirect_uris": []string{"https://dash.example.com/cb", "https://dash.example.com/cb2"}, "first_party": true}), js...)
	expect(t, "edit client", r, http.StatusOK, "")
	if c, err := h.in.Store.Client(t.Context(), "dash"); err != nil || len(c.RedirectURIs) != 2 || !c.FirstParty || c.SecretHash == "" {
		t.Fatalf("edited client: %+v, %v", c, err)
	}
	expect(t, "edit: bad redirect", h.do("PATCH", "/admin/v1/clients/dash", jsonBody(map[string]any{"redirect_uris": []string{"http://evil.example.com/cb"}}), js...), http.StatusBadRequest, "invalid_client_metadata")
	expect(t, "edit: unknown member", h.do("PATCH", "/admin/v1/clients/dash", jsonBody(map[string]any{"redirect_uri": "https://x.example.com"}), js...), http.StatusBadRequest, "invalid_request")
	expect(t, "edit: unknown client", h.do("PATCH", "/admin/v1/clients/nobody", jsonBody(map[string]any{"first_party": true}), js...), http.StatusNotFound, "not_found")
	r = h.do("POST", "/admin/v1/clients/dash/secret", "", ops...)
	expect(t, "rotate secret", r, http.StatusOK, "")
	newSecret := r.str("client_secret")
	if len(newSecret) < 32 {
		t.Fatalf("rotated secret: %s", r.raw)
	}
	expect(t, "the new secret works", h.form("/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, basic("dash", newSecret)...), http.StatusOK, "")
	if c, _ := h.in.Store.Client(t.Context(), "dash"); len(c.RedirectURIs) != 2 {
		t.Fatalf("rotation lost the settings: %+v", c)
	}
	expect(t, "create a public client", h.do("POST", "/admin/v1/clients", jsonBody(map[string]any{"id": "pub", "public": true}), js...), http.StatusCreated, "")
	expect(t, "rotate a public client", h.do("POST", "/admin/v1/clients/pub/secret", "", ops...), http.StatusConflict, "public_client")
	expect(t, "rotate an unknown client", h.do("POST", "/admin/v1/clients/nobody/secret", "", ops...), http.StatusNotFound, "not_found")
	expect(t, "delete client", h.do("DELETE", "/admin/v1/clients/dash", "", ops...), http.StatusOK, "")
	expect(t, "the deleted client's secret", h.form("/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, basic("dash", newSecret)...), http.StatusUnauthorized, "")
	expect(t, "delete again", h.do("DELETE", "/admin/v1/clients/dash", "", ops...), http.StatusNotFound, "not_found")

	// Keys.
	r = h.do("GET", "/admin/v1/keys", "", ops...)
	keys, _ := r.body["keys"].([]any)
	if len(keys) < 2 {
		t.Fatalf("keys: %s", r.raw)
	}
	expect(t, "revoke an unknown key", h.do("POST", "/admin/v1/keys/nokey/revoke", "", ops...), http.StatusNotFound, "not_found")
	expect(t, "rotate", h.do("POST", "/admin/v1/keys/rotate", "", ops...), http.StatusOK, "")

	// Delete, then the log.
	expect(t, "delete", h.do("DELETE", "/admin/v1/users/"+annID, "", ops...), http.StatusOK, "")
	r = h.do("GET", "/admin/v1/events?type=admin_action&limit=3", "", ops...)
	expect(t, "events", r, http.StatusOK, "")
	ev, _ := r.body["events"].([]any)
	if len(ev) != 3 || r.str("next") == "" {
		t.Fatalf("events page: %s", r.raw)
	}
	newest := ev
	first := ev[0].(map[string]any)
	if d, _ := first["detail"].(map[string]any); first["client_id"] != "ops" || d["action"] != "delete_user" || first["user_id"] != annID {
		t.Fatalf("newest admin_action: %v", first)
	}
	r = h.do("GET", "/admin/v1/events?type=admin_action&limit=200&before="+r.str("next"), "", ops...)
	ev, _ = r.body["events"].([]any)
	ev = append(ev, newest...)
	actions := map[string]bool{}
	for _, e := range ev {
		d, _ := e.(map[string]any)["detail"].(map[string]any)
		actions[d["action"].(string)] = true
	}
	for _, a := range []string{"create_user", "lock_user", "unlock_user", "send_password_reset", "create_client", "update_client", "rotate_client_secret", "delete_client", "rotate_keys"} {
		if !actions[a] {
			t.Errorf("the log lacks the admin_action %s: %v", a, actions)
		}
	}
	r = h.do("GET", "/admin/v1/events?user="+annID+"&type=admin_revoked", "", ops...)
	if ev, _ := r.body["events"].([]any); len(ev) != 1 {
		t.Errorf("the user's admin_revoked events: %s", r.raw)
	}
	for _, bad := range []string{"from=yesterday", "before=-1", "before=x", "limit=0", "type=" + strings.Repeat("t", 65)} {
		expect(t, "events?"+bad, h.do("GET", "/admin/v1/events?"+bad, "", ops...), http.StatusBadRequest, "invalid_request")
	}
	expect(t, "export format", h.do("GET", "/admin/v1/events/export?format=xml", "", ops...), http.StatusBadRequest, "invalid_request")
	r = h.do("GET", "/admin/v1/events/export?format=csv&type=admin_action", "", ops...)
	if r.code != http.StatusOK || !strings.HasPrefix(string(r.raw), "id,at,type,") || strings.Count(string(r.raw), "admin_action") < 7 {
		t.Fatalf("CSV export: %d %s", r.code, r.raw)
	}
	r = h.do("GET", "/admin/v1/events/export?format=json&user="+annID, "", ops...)
	lines := strings.Split(strings.TrimSpace(string(r.raw)), "\n")
	for _, l := range lines {
		var e map[string]any
		if err := json.Unmarshal([]byte(l), &e); err != nil || e["user_id"] != annID {
			t.Fatalf("JSON export line %q: %v", l, err)
		}
	}
	if len(lines) < 5 {
		t.Fatalf("JSON export: %d lines", len(lines))
	}
}
