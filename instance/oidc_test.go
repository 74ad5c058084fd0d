package instance_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/latchauth/latch/auth"
)

// TestCodeFlow walks the whole code flow with PKCE: sign-in redirect,
// consent, code, exchange, id_token claims, userinfo, refresh with a
// narrower scope, and RP-initiated logout ending the SSO session.
func TestCodeFlow(t *testing.T) {
	h := start(t, "", nil)
	defer h.close()
	uid := h.addUser("ada@example.com", "correct horse battery staple")
	h.addRP("dash", func(n *auth.NewClient) { n.Name = "Dashboard <Pro>" })
	b := h.browser()
	verifier, challenge := pkce("v")
	q := codeRequest("dash", "openid email offline_access", "code_challenge", challenge, "code_challenge_method", "S256")

	r := b.authorize(q)
	if r.code != http.StatusSeeOther || !strings.HasPrefix(r.location, "/login?") {
		t.Fatalf("signed out: want a redirect to /login, got %d %q", r.code, r.location)
	}
	lu, _ := url.Parse(r.location)
	returnTo := lu.Query().Get("return_to")
	if !strings.HasPrefix(returnTo, "/oauth2/authorize?") {
		t.Fatalf("return_to = %q", returnTo)
	}
	b.signIn("ada@example.com", "correct horse battery staple")
	r = b.get(returnTo)
	if r.code != http.StatusOK || !strings.Contains(r.body, "consent_token") {
		t.Fatalf("want the consent page, got %d %q %s", r.code, r.location, r.body)
	}
	if !strings.Contains(r.body, "Dashboard &lt;Pro&gt;") {
		t.Errorf("the consent page does not name the app by its registered name (escaped)")
	}
	form := hiddenInputs(t, r.body)
	form.Set("decision", "allow")
	cb := callback(t, b.postForm("/oauth2/consent", form))
	if cb.Get("state") != "st-dash" || cb.Get("iss") != h.cfg.Issuer || cb.Get("code") == "" {
		t.Fatalf("callback %v", cb)
	}
	tok := h.exchange("dash", cb.Get("code"), "https://dash.example/cb", verifier)
	if tok.code != http.StatusOK {
		t.Fatalf("exchange: %d %s", tok.code, tok.raw)
	}
	id := segment(t, tok.str("id_token"), 1)
	if id["sub"] != uid || id["aud"] != "dash" || id["nonce"] != "n-dash" || id["sid"] == nil || id["at_hash"] == nil ||
		id["email"] != "ada@example.com" || id["auth_time"] == nil {
		t.Fatalf("id_token claims %v", id)
	}
	if tok.str("refresh_token") == "" {
		t.Fatal("offline_access granted: want a refresh token")
	}
	ui := h.do(http.MethodGet, "/oauth2/userinfo", "", bearer(tok.str("access_token"))...)
	if ui.code != http.StatusOK || ui.str("sub") != uid || ui.str("email") != "ada@example.com" {
		t.Fatalf("userinfo: %d %s", ui.code, ui.raw)
	}
	// Replaying the code revokes what it issued.
	if again := h.exchange("dash", cb.Get("code"), "https://dash.example/cb", verifier); again.code != http.StatusBadRequest || again.str("error") != "invalid_grant" {
		t.Fatalf("code replay: %d %s", again.code, again.raw)
	}
	if ui := h.do(http.MethodGet, "/oauth2/userinfo", "", bearer(tok.str("access_token"))...); ui.code != http.StatusUnauthorized {
		t.Fatalf("after code replay the access token must be revoked: %d %s", ui.code, ui.raw)
	}
	// A second client signs in without a password (SSO), then logout.
	h.addRP("wiki", func(n *auth.NewClient) { n.FirstParty = true })
	cb = callback(t, b.authorize(codeRequest("wiki", "openid")))
	tok = h.exchange("wiki", cb.Get("code"), "https://wiki.example/cb", "")
	if tok.code != http.StatusOK || tok.str("refresh_token") == "" {
		t.Fatalf("first-party exchange: %d %s", tok.code, tok.raw)
	}
	lo := b.get("/oauth2/logout?" + url.Values{"id_token_hint": {tok.str("id_token")}, "post_logout_redirect_uri": {"https://wiki.example/bye"}, "state": {"s1"}}.Encode())
	if lo.code != http.StatusSeeOther || lo.location != "https://wiki.example/bye?state=s1" {
		t.Fatalf("logout: %d %q %s", lo.code, lo.location, lo.body)
	}
	if ui := h.do(http.MethodGet, "/oauth2/userinfo", "", bearer(tok.str("access_token"))...); ui.code != http.StatusUnauthorized {
		t.Fatalf("after logout the access token must be revoked: %d %s", ui.code, ui.raw)
	}
	if r := b.authorize(codeRequest("wiki", "openid", "prompt", "none")); r.code != http.StatusSeeOther || !strings.Contains(r.location, "error=login_required") {
		t.Fatalf("after logout prompt=none: %d %q", r.code, r.location)
	}
}

// hiddenInputs reads the hidden inputs of a rendered form.
func hiddenInputs(t testing.TB, page string) url.Values {
	t.Helper()
	out := url.Values{}
	for _, part := range strings.Split(page, "<input")[1:] {
		end := strings.Index(part, ">")
		tag := part[:end]
		if !strings.Contains(tag, `type="hidden"`) {
			continue
		}
		out.Set(attr(tag, "name"), attr(tag, "value"))
	}
	if len(out) == 0 {
		t.Fatalf("no hidden inputs in %s", page)
	}
	return out
}

func attr(tag, name string) string {
	i := strings.Index(tag, name+`="`)
	if i < 0 {
		return ""
	}
	v := tag[i+len(name)+2:]
	v = v[:strings.Index(v, `"`)]
	return htmlUnescape(v)
}

func htmlUnescape(s string) string {
	return strings.NewReplacer("&amp;", "&", "&lt;", "<", "&gt;", ">", "&#34;", `"`, "&#39;", "'", "&quot;", `"`, "&#43;", "+").Replace(s)
}

// TestPromptLoginSignsInOnce: prompt=login (and max_age=0) send a signed-in
// browser to sign in again exactly once; the fresh sign-in, proven by the
// re-authentication cookie of this browser, then yields the code, with a
// later auth_time.
func TestPromptLoginSignsInOnce(t *testing.T) {
	h := start(t, "", nil)
	defer h.close()
	h.addUser("ada@example.com", "correct horse battery staple")
	h.addRP("wiki", func(n *auth.NewClient) { n.FirstParty = true })
	b := h.browser()
	b.signIn("ada@example.com", "correct horse battery staple")
	first := h.exchange("wiki", callback(t, b.authorize(codeRequest("wiki", "openid"))).Get("code"), "https://wiki.example/cb", "")
	for _, extra := range [][]string{{"prompt", "login"}, {"max_age", "0"}} {
		h.clock.Advance(2 * time.Second)
		r := b.authorize(codeRequest("wiki", "openid", extra...))
		if r.code != http.StatusSeeOther || !strings.HasPrefix(r.location, "/login?") {
			t.Fatalf("%v: want a sign-in, got %d %q", extra, r.code, r.location)
		}
		lu, _ := url.Parse(r.location)
		b.signIn("ada@example.com", "correct horse battery staple")
		cb := callback(t, b.get(lu.Query().Get("return_to")))
		if cb.Get("code") == "" {
			t.Fatalf("%v: after the fresh sign-in want a code, got %v", extra, cb)
		}
		again := h.exchange("wiki", cb.Get("code"), "https://wiki.example/cb", "")
		if a, b := segment(t, again.str("id_token"), 1)["auth_time"].(float64), segment(t, first.str("id_token"), 1)["auth_time"].(float64); a <= b {
			t.Fatalf("%v: auth_time %v not after the first sign-in's %v", extra, a, b)
		}
	}
}

// TestReauthProofIsBoundAndMACed: the cookie that proves a requested
// re-authentication counts only with its MAC, and only for the request it
// was made for: one made for another request (another state), or a
// forged one, leaves prompt=login asking for a sign-in even right after
// one.
func TestReauthProofIsBoundAndMACed(t *testing.T) {
	h := start(t, "", nil)
	defer h.close()
	h.addUser("ada@example.com", "correct horse battery staple")
	h.addRP("wiki", func(n *auth.NewClient) { n.FirstParty = true })
	b := h.browser()
	b.signIn("ada@example.com", "correct horse battery staple")
	// A real proof, made for a request with another state, then the
	// sign-in it asked for.
	h.clock.Advance(2 * time.Second)
	if r := b.authorize(codeRequest("wiki", "openid", "prompt", "login", "state", "other")); !strings.HasPrefix(r.location, "/login?") {
		t.Fatalf("prompt=login: want a sign-in, got %d %q", r.code, r.location)
	}
	b.signIn("ada@example.com", "correct horse battery staple")
	signedInAt := h.clock.Now().Unix()
	u, _ := url.Parse(h.srv.URL)
	for _, c := range []struct{ name, proof string }{
		{"another request's proof", ""}, // the cookie the request above set, as it is
		{"a forged MAC", fmt.Sprintf("%d.%s", signedInAt, strings.Repeat("A", 43))},
	} {
		if c.proof != "" {
			b.hc.Jar.SetCookies(u, []*http.Cookie{{Name: "latch_reauth", Value: c.proof, Path: "/"}})
		}
		r := b.authorize(codeRequest("wiki", "openid", "prompt", "login"))
		if r.code != http.StatusSeeOther || !strings.HasPrefix(r.location, "/login?") {
			t.Errorf("%s: prompt=login without a sign-in for this request gave %d %q, want a sign-in", c.name, r.code, r.location)
		}
	}
}
