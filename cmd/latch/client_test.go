package main

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/config"
	"github.com/latchauth/latch/instance"
)

// TestClientAddCan: --can read-revocations is stored on the client; a
// client registered without it does not get it; an unknown permission
// and a permission on a public client are refused.
func TestClientAddCan(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if _, _, err := run(t, "", nil, "client", "add", "--data-dir", dir, "--id", "api", "--generate-secret", "--can", "read-revocations"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := run(t, "", nil, "client", "add", "--data-dir", dir, "--id", "plain", "--generate-secret"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := run(t, "", nil, "client", "add", "--data-dir", dir, "--id", "x", "--generate-secret", "--can", "everything"); err == nil {
		t.Fatal("an unknown permission was accepted")
	}
	if _, _, err := run(t, "", nil, "client", "add", "--data-dir", dir, "--id", "y", "--public", "--can", "read-revocations"); err == nil {
		t.Fatal("a public client was given read-revocations")
	}
	cfg := config.Defaults()
	cfg.DataDir = dir
	st, err := instance.OpenStore(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for id, want := range map[string]bool{"api": true, "plain": false} {
		c, err := st.Client(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Can(latch.PermissionReadRevocations); got != want {
			t.Errorf("client %s: Can(read-revocations) = %v, want %v (%v)", id, got, want, c.Permissions)
		}
	}
	for _, id := range []string{"x", "y"} {
		if _, err := st.Client(t.Context(), id); err == nil {
			t.Errorf("refused client %s was stored", id)
		}
	}
}

// TestClientAddOpenID: the two commands register a confidential
// and a public relying party; every OpenID Connect flag is stored;
// --redirect-uri is repeatable and keeps a comma inside a URI; --scopes
// still sets the scopes; client list shows the registration.
func TestClientAddOpenID(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	out, _, err := run(t, "", nil, "client", "add", "--data-dir", dir, "--id", "dash", "--generate-secret",
		"--redirect-uri", "https://dash.example.com/callback", "--redirect-uri", "https://dash.example.com/cb?a=1,2",
		"--post-logout-redirect-uri", "https://dash.example.com/bye", "--backchannel-logout-uri", "https://dash.example.com/backchannel",
		"--first-party", "--id-token-signed-response-alg", "RS256", "--name", "Dashboard")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "Dashboard") {
		t.Errorf("client add output lacks the name: %q", out)
	}
	if !strings.Contains(out, "https://dash.example.com/cb?a=1,2") || !strings.Contains(out, "email offline_access openid profile") {
		t.Errorf("client add output lacks the registration: %q", out)
	}
	if _, _, err := run(t, "", nil, "client", "add", "--data-dir", dir, "--id", "spa", "--public", "--redirect-uri", "http://app.localhost:5173/cb"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := run(t, "", nil, "client", "add", "--data-dir", dir, "--id", "narrow", "--generate-secret",
		"--redirect-uri", "https://narrow.example.com/cb", "--scopes", "openid email"); err != nil {
		t.Fatal(err)
	}
	st := openStore(t, dir)
	want := map[string]latch.Client{
		"dash": {RedirectURIs: []string{"https://dash.example.com/callback", "https://dash.example.com/cb?a=1,2"},
			PostLogoutRedirectURIs: []string{"https://dash.example.com/bye"}, BackchannelLogoutURI: "https://dash.example.com/backchannel",
			FirstParty: true, IDTokenSignedResponseAlg: "RS256", Scopes: []string{"email", "offline_access", "openid", "profile"}, Name: "Dashboard"},
		"spa":    {RedirectURIs: []string{"http://app.localhost:5173/cb"}, Scopes: []string{"email", "offline_access", "openid", "profile"}},
		"narrow": {RedirectURIs: []string{"https://narrow.example.com/cb"}, Scopes: []string{"email", "openid"}},
	}
	for id, w := range want {
		c, err := st.Client(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(c.RedirectURIs, w.RedirectURIs) || !slices.Equal(c.PostLogoutRedirectURIs, w.PostLogoutRedirectURIs) ||
			c.BackchannelLogoutURI != w.BackchannelLogoutURI || c.FirstParty != w.FirstParty ||
			c.IDTokenSignedResponseAlg != w.IDTokenSignedResponseAlg || !slices.Equal(c.Scopes, w.Scopes) || c.Name != w.Name {
			t.Errorf("client %s stored as %+v, want %+v", id, c, w)
		}
	}
	if c, _ := st.Client(t.Context(), "spa"); c == nil || !c.Public() {
		t.Errorf("spa is not public: %+v", c)
	}
	st.Close()

	out, _, err = run(t, "", nil, "client", "list", "--data-dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{
		"client dash (OpenID Connect)", "https://dash.example.com/callback", "https://dash.example.com/cb?a=1,2",
		"https://dash.example.com/bye", "back-channel logout URI    https://dash.example.com/backchannel", "first-party                yes",
		"client spa (OpenID Connect)", "http://app.localhost:5173/cb", "first-party                no",
	} {
		if !strings.Contains(out, s) {
			t.Errorf("client list lacks %q:\n%s", s, out)
		}
	}
}

// TestClientAddOpenIDRefusals: a refused setting fails the command with an
// error naming the flag and the value, and registers nothing.
func TestClientAddOpenIDRefusals(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--generate-secret", "--redirect-uri", "http://dash.example.com/cb"}, `--redirect-uri "http://dash.example.com/cb": http is allowed only on a loopback host`},
		{[]string{"--generate-secret", "--redirect-uri", "com.example.app:/cb"}, `--redirect-uri "com.example.app:/cb": a private-use scheme is for public native apps`},
		{[]string{"--public", "--redirect-uri", "https://a.example/cb#x"}, `--redirect-uri "https://a.example/cb#x": a fragment`},
		{[]string{"--public", "--delivery", "cookie", "--redirect-uri", "https://a.example/cb"}, `--redirect-uri "https://a.example/cb": is for clients of the authorization-code flow`},
		{[]string{"--generate-secret", "--redirect-uri", "https://a.example/cb", "--post-logout-redirect-uri", "https://*.example/bye"}, `--post-logout-redirect-uri "https://*.example/bye": wildcards`},
		{[]string{"--generate-secret", "--redirect-uri", "https://a.example/cb", "--backchannel-logout-uri", "http://a.example/bc"}, `--backchannel-logout-uri "http://a.example/bc": http is allowed only`},
		{[]string{"--generate-secret", "--name", "a\x00b"}, `--name "a\x00b": must be at most 64 characters`},
		{[]string{"--generate-secret", "--first-party"}, `--first-party: is for clients of the authorization-code flow: register a redirect URI too`},
		{[]string{"--generate-secret", "--redirect-uri", "https://a.example/cb", "--id-token-signed-response-alg", "none"}, `--id-token-signed-response-alg "none": is not one of RS256`},
	}
	for i, tc := range cases {
		id := fmt.Sprintf("bad%d", i)
		_, _, err := run(t, "", nil, append([]string{"client", "add", "--data-dir", dir, "--id", id}, tc.args...)...)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%v: err %v, want %q", tc.args, err, tc.want)
		}
	}
	st := openStore(t, dir)
	defer st.Close()
	list, err := st.Clients(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 0 {
		t.Errorf("refused clients were stored: %d", len(list))
	}
}

// openStore opens the store of the data directory dir.
func openStore(t *testing.T, dir string) latch.Store {
	t.Helper()
	cfg := config.Defaults()
	cfg.DataDir = dir
	st, err := instance.OpenStore(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return st
}
