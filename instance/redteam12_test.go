package instance_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/admin"
	"github.com/latchauth/latch/auth"
)

// TestRedteam12_AdminClientNeedsReauth: a console session without a recent
// password confirmation (a stolen cookie, an XSS in another page of the
// origin) must not mint itself an admin client: an admin client needs no
// re-authentication, so registering one with the admin scope, or giving
// an existing client the admin scope, would turn every destructive action
// into one without the password.
func TestRedteam12_AdminClientNeedsReauth(t *testing.T) {
	h := start(t, "", nil)
	h.addAdmin(rootEmail, rootPass)
	victim := h.addUser(adaEmail, adaPass)
	root := h.browser()
	root.signIn(rootEmail, rootPass)

	create := map[string]any{"id": "backdoor", "secret": consoleSecret, "scopes": []string{admin.Scope}}
	want(t, "create an admin client without re-auth", root.api("POST", "/admin/v1/clients", create, root.csrf()), http.StatusForbidden, "reauth_required")
	// A client without the admin scope is no destructive action.
	plain := map[string]any{"id": "plain", "secret": consoleSecret, "scopes": []string{"read"}}
	want(t, "create a plain client", root.api("POST", "/admin/v1/clients", plain, root.csrf()), http.StatusCreated, "")
	want(t, "give a client the admin scope without re-auth",
		root.api("PATCH", "/admin/v1/clients/plain", map[string]any{"scopes": []string{"read", admin.Scope}}, root.csrf()), http.StatusForbidden, "reauth_required")
	for _, id := range []string{"backdoor", "plain"} {
		tok := h.form("/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {admin.Scope}}, basic(id, consoleSecret)...)
		if tok.code == http.StatusOK {
			r := h.do("DELETE", "/admin/v1/users/"+victim, "", bearer(tok.str("access_token"))...)
			t.Fatalf("client %s got an admin token without re-auth; delete: %d", id, r.code)
		}
	}
	// With the password confirmed, both work.
	want(t, "re-auth", root.api("POST", "/admin/v1/reauth", map[string]string{"password": rootPass}, root.csrf()), http.StatusOK, "")
	want(t, "create an admin client after re-auth", root.api("POST", "/admin/v1/clients", create, root.csrf()), http.StatusCreated, "")
	want(t, "give the admin scope after re-auth",
		root.api("PATCH", "/admin/v1/clients/plain", map[string]any{"scopes": []string{"read", admin.Scope}}, root.csrf()), http.StatusOK, "")
}

// TestRedteam12_KeyEventUserAgentCut: the keys_rotated event of a console
// or API rotation keeps at most auth.MaxUserAgentLen bytes of the caller's
// User-Agent, as every other event does: a caller must not store
// (and show every administrator, and every export) a header-sized string.
func TestRedteam12_KeyEventUserAgentCut(t *testing.T) {
	h := start(t, "", nil)
	h.addRP("ops", func(n *auth.NewClient) {
		n.Secret = consoleSecret
		n.RedirectURIs, n.PostLogoutRedirectURIs, n.Scopes = nil, nil, []string{admin.Scope}
	})
	tok := h.form("/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {admin.Scope}}, basic("ops", consoleSecret)...)
	expect(t, "ops token", tok, http.StatusOK, "")
	ua := strings.Repeat("x", 64<<10)
	expect(t, "rotate", h.do("POST", "/admin/v1/keys/rotate", "", append(bearer(tok.str("access_token")), "User-Agent", ua)...), http.StatusOK, "")
	list, err := h.in.Store.FilterEvents(t.Context(), latch.EventFilter{Types: []string{latch.EventKeysRotated, latch.EventAdminAction}, Limit: 50})
	if err != nil || len(list) == 0 {
		t.Fatalf("events: %d, %v", len(list), err)
	}
	for _, e := range list {
		if len(e.UserAgent) > auth.MaxUserAgentLen {
			t.Errorf("%s event keeps a %d-byte User-Agent", e.Type, len(e.UserAgent))
		}
	}
}

// TestRedteam12_RedirectChangesNeedReauth: with a stolen console session
// an intruder must not point an app's codes at themselves: creating a
// first-party client (no consent page), making one first party, and
// changing redirect URIs (users who consented before follow them unasked)
// need the password confirmed; other edits do not.
func TestRedteam12_RedirectChangesNeedReauth(t *testing.T) {
	h := start(t, "", nil)
	h.addAdmin(rootEmail, rootPass)
	root := h.browser()
	root.signIn(rootEmail, rootPass)

	fp := map[string]any{"id": "spa", "public": true, "first_party": true, "scopes": []string{"openid"},
		"redirect_uris": []string{"https://evil.example/cb"}}
	want(t, "create a first-party client without re-auth", root.api("POST", "/admin/v1/clients", fp, root.csrf()), http.StatusForbidden, "reauth_required")
	app := map[string]any{"id": "app", "secret": consoleSecret, "scopes": []string{"openid"}, "redirect_uris": []string{"https://app.example/cb"}}
	want(t, "create a third-party client", root.api("POST", "/admin/v1/clients", app, root.csrf()), http.StatusCreated, "")
	want(t, "rename it", root.api("PATCH", "/admin/v1/clients/app", map[string]any{"name": "App"}, root.csrf()), http.StatusOK, "")
	for name, edit := range map[string]map[string]any{
		"redirect URIs":             {"redirect_uris": []string{"https://evil.example/cb"}},
		"post-logout redirect URIs": {"post_logout_redirect_uris": []string{"https://evil.example/bye"}},
		"first party":               {"first_party": true},
	} {
		want(t, "change "+name+" without re-auth", root.api("PATCH", "/admin/v1/clients/app", edit, root.csrf()), http.StatusForbidden, "reauth_required")
	}
	if c, err := h.in.Store.Client(t.Context(), "app"); err != nil || c.FirstParty || len(c.RedirectURIs) != 1 || c.RedirectURIs[0] != "https://app.example/cb" {
		t.Fatalf("the client changed without re-auth: %+v, %v", c, err)
	}
	want(t, "re-auth", root.api("POST", "/admin/v1/reauth", map[string]string{"password": rootPass}, root.csrf()), http.StatusOK, "")
	want(t, "change redirect URIs after re-auth", root.api("PATCH", "/admin/v1/clients/app", map[string]any{"redirect_uris": []string{"https://app.example/cb2"}}, root.csrf()), http.StatusOK, "")
	want(t, "create a first-party client after re-auth", root.api("POST", "/admin/v1/clients", fp, root.csrf()), http.StatusCreated, "")
}
