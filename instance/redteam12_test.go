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
