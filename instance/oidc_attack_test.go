package instance_test

// Attacks on the OpenID Provider, each refused (issue 9, "Attacks"; RFC
// 9700 §4; OpenID Connect Core §16). Every test also shows the honest
// request succeeding, so that it cannot pass by refusing everything.

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/latchauth/latch/auth"
)

func TestAttack_RedirectURIVariants(t *testing.T) {
	f := newOP(t, nil)
	b := f.signedIn()
	b.code(codeRequest("rp", "openid")) // the registered one works
	for name, uri := range map[string]string{
		"prefix":               "https://rp.example/c",
		"suffix":               "https://rp.example/cbx",
		"path added":           "https://rp.example/cb/x",
		"host suffix":          "https://rp.example.attacker.example/cb",
		"case of host":         "https://RP.example/cb",
		"case of scheme":       "HTTPS://rp.example/cb",
		"case of path":         "https://rp.example/CB",
		"userinfo":             "https://attacker@rp.example/cb",
		"userinfo host":        "https://rp.example@attacker.example/cb",
		"fragment":             "https://rp.example/cb#x",
		"empty fragment":       "https://rp.example/cb#",
		"other port":           "https://rp.example:8443/cb",
		"default port spelled": "https://rp.example:443/cb",
		"dot dot":              "https://rp.example/x/../cb",
		"dot dot after":        "https://rp.example/cb/../cb",
		"encoded path":         "https://rp.example/%63b",
		"trailing slash":       "https://rp.example/cb/",
		"query added":          "https://rp.example/cb?x=1",
		"empty query":          "https://rp.example/cb?",
		"http downgrade":       "http://rp.example/cb",
		"loopback":             "http://127.0.0.1/cb",
		"another client's":     "https://other.example/cb",
	} {
		t.Run(name, func(t *testing.T) {
			q := codeRequest("rp", "openid")
			q.Set("redirect_uri", uri)
			errorPage(t, uri, b.authorize(q))
			// Not even an error goes there: a request that would fail
			// anyway still shows the page.
			q.Set("response_type", "token")
			q.Set("prompt", "none")
			errorPage(t, uri+" with an error", b.authorize(q))
			errorPage(t, uri+" by POST", b.postForm("/oauth2/authorize", q))
		})
	}
	// Twice, the registered one first: which one would a client see?
	q := codeRequest("rp", "openid")
	q["redirect_uri"] = []string{"https://rp.example/cb", "https://attacker.example/cb"}
	errorPage(t, "redirect_uri twice", b.authorize(q))
}

func TestAttack_LoopbackPortOnlyForPublicLoopback(t *testing.T) {
	f := newOP(t, nil)
	h := f.h
	h.addRP("native", func(n *auth.NewClient) {
		n.Public, n.Secret, n.FirstParty = true, "", true
		n.RedirectURIs = []string{"http://127.0.0.1/cb", "http://[::1]/cb"}
	})
	h.addRP("conf", func(n *auth.NewClient) {
		n.FirstParty = true
		n.RedirectURIs = []string{"http://127.0.0.1:4000/cb"}
	})
	h.addRP("named", func(n *auth.NewClient) {
		n.Public, n.Secret, n.FirstParty = true, "", true
		n.RedirectURIs = []string{"http://localhost:4000/cb"}
	})
	b := f.signedIn()
	v, ch := pkce("L")
	req := func(client, uri string) url.Values {
		q := codeRequest(client, "openid", "code_challenge", ch, "code_challenge_method", "S256")
		q.Set("redirect_uri", uri)
		return q
	}
	// A public client's loopback redirect may take any port (RFC 8252 §7.3).
	for _, uri := range []string{"http://127.0.0.1:51234/cb", "http://127.0.0.1/cb", "http://[::1]:8080/cb"} {
		code := b.code(req("native", uri))
		tok := h.form("/oauth2/token", url.Values{"grant_type": {"authorization_code"}, "code": {code},
			"redirect_uri": {uri}, "client_id": {"native"}, "code_verifier": {v}})
		expect(t, "native exchange at "+uri, tok, http.StatusOK, "")
	}
	// The port at the token endpoint must still be the request's.
	code := b.code(req("native", "http://127.0.0.1:51234/cb"))
	tok := h.form("/oauth2/token", url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {"http://127.0.0.1:51235/cb"}, "client_id": {"native"}, "code_verifier": {v}})
	expect(t, "exchange at another port than the request's", tok, http.StatusBadRequest, "invalid_grant")

	for name, q := range map[string]url.Values{
		"public, another path":         req("native", "http://127.0.0.1:51234/cbx"),
		"public, another loopback IP":  req("native", "http://127.0.0.2:51234/cb"),
		"public, localhost for the IP": req("native", "http://localhost:51234/cb"),
		"public, https":                req("native", "https://127.0.0.1:51234/cb"),
		"public, query added":          req("native", "http://127.0.0.1:51234/cb?x=1"),
		"public, userinfo":             req("native", "http://a@127.0.0.1:51234/cb"),
		"public, fragment":             req("native", "http://127.0.0.1:51234/cb#x"),
		"public, IPv6 for IPv4":        req("native", "http://[::1]:51234/cbx"),
		"confidential loopback":        req("conf", "http://127.0.0.1:4001/cb"),
		"public localhost name":        req("named", "http://localhost:4001/cb"),
	} {
		errorPage(t, name, b.authorize(q))
	}
	b.code(req("conf", "http://127.0.0.1:4000/cb"))
	b.code(req("named", "http://localhost:4000/cb"))
}

func TestAttack_PKCEDowngrade(t *testing.T) {
	f := newOP(t, nil)
	h := f.h
	h.addRP("spa", func(n *auth.NewClient) { n.Public, n.Secret, n.FirstParty = true, "", true })
	b := f.signedIn()
	v, ch := pkce("d")
	s256 := []string{"code_challenge", ch, "code_challenge_method", "S256"}

	// Challenge sent, verifier missing: refused (confidential client too).
	code := b.code(codeRequest("rp", "openid", s256...))
	expect(t, "verifier missing", h.exchange("rp", code, "https://rp.example/cb", ""), http.StatusBadRequest, "invalid_grant")
	// Verifier sent without a challenge: refused (RFC 9700 §2.1.1).
	code = b.code(codeRequest("rp", "openid"))
	expect(t, "verifier without challenge", h.exchange("rp", code, "https://rp.example/cb", v), http.StatusBadRequest, "invalid_grant")
	// A wrong verifier: refused.
	wrong, _ := pkce("e")
	code = b.code(codeRequest("rp", "openid", s256...))
	expect(t, "wrong verifier", h.exchange("rp", code, "https://rp.example/cb", wrong), http.StatusBadRequest, "invalid_grant")
	// The challenge itself as the verifier (plain downgrade at the token endpoint).
	code = b.code(codeRequest("rp", "openid", s256...))
	expect(t, "challenge as verifier", h.exchange("rp", code, "https://rp.example/cb", ch), http.StatusBadRequest, "invalid_grant")

	for name, extra := range map[string][]string{
		"plain":                  {"code_challenge", ch, "code_challenge_method", "plain"},
		"challenge, no method":   {"code_challenge", ch},
		"method, no challenge":   {"code_challenge_method", "S256"},
		"lower-case s256":        {"code_challenge", ch, "code_challenge_method", "s256"},
		"short challenge":        {"code_challenge", ch[:42], "code_challenge_method", "S256"},
		"public without PKCE":    nil,
		"public with plain only": {"code_challenge", v, "code_challenge_method", "plain"},
	} {
		client := "rp"
		if strings.HasPrefix(name, "public") {
			client = "spa"
		}
		r := b.authorize(codeRequest(client, "openid", extra...))
		if cb := callback(t, r); cb.Get("error") != "invalid_request" || cb.Has("code") || cb.Get("iss") != h.cfg.Issuer {
			t.Errorf("%s: %q", name, r.location)
		}
	}
	// The honest public client.
	code = b.code(codeRequest("spa", "openid", s256...))
	tok := h.form("/oauth2/token", url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {"https://spa.example/cb"}, "client_id": {"spa"}, "code_verifier": {v}})
	expect(t, "public client with PKCE", tok, http.StatusOK, "")
}

func TestAttack_CodeInjectionIntoAnotherClient(t *testing.T) {
	f := newOP(t, nil)
	h := f.h
	h.addRP("other", func(n *auth.NewClient) { n.FirstParty = true })
	b := f.signedIn()
	code := b.code(codeRequest("rp", "openid"))
	for _, redirect := range []string{"https://rp.example/cb", "https://other.example/cb"} {
		r := h.exchange("other", code, redirect, "")
		expect(t, "rp's code at other with "+redirect, r, http.StatusBadRequest, "invalid_grant")
		if r.str("access_token") != "" || r.str("id_token") != "" {
			t.Fatalf("tokens for an injected code: %s", r.raw)
		}
	}
	// A code for redirect URI A is not redeemed for B of the same client.
	h.addRP("two", func(n *auth.NewClient) {
		n.FirstParty = true
		n.RedirectURIs = []string{"https://two.example/cb", "https://two.example/cb2"}
	})
	code = b.code(codeRequest("two", "openid"))
	expect(t, "code at another redirect URI", h.exchange("two", code, "https://two.example/cb2", ""), http.StatusBadRequest, "invalid_grant")
	// An honest exchange of a fresh code works.
	expect(t, "honest exchange", h.exchange("two", b.code(codeRequest("two", "openid")), "https://two.example/cb", ""), http.StatusOK, "")
}

func TestAttack_CodeReplayRevokesEverything(t *testing.T) {
	f := newOP(t, nil)
	h := f.h
	b := f.signedIn()
	code := b.code(codeRequest("rp", "openid offline_access"))
	tok := h.exchange("rp", code, "https://rp.example/cb", "")
	expect(t, "exchange", tok, http.StatusOK, "")
	// The client refreshed already: the rotated tokens fall too.
	nt := h.rpRefresh("rp", rpSecret, tok.str("refresh_token"), "")
	expect(t, "refresh", nt, http.StatusOK, "")
	if ui := h.do(http.MethodGet, "/oauth2/userinfo", "", bearer(nt.str("access_token"))...); ui.code != http.StatusOK {
		t.Fatalf("refreshed access token before the replay: %d", ui.code)
	}
	expect(t, "replay", h.exchange("rp", code, "https://rp.example/cb", ""), http.StatusBadRequest, "invalid_grant")
	for _, at := range []string{tok.str("access_token"), nt.str("access_token")} {
		if ui := h.do(http.MethodGet, "/oauth2/userinfo", "", bearer(at)...); ui.code != http.StatusUnauthorized {
			t.Fatalf("an access token of the replayed code still works: %d", ui.code)
		}
		if me := h.do(http.MethodGet, "/v1/me", "", bearer(at)...); me.code != http.StatusUnauthorized {
			t.Fatalf("an access token of the replayed code still works at /v1/me: %d", me.code)
		}
	}
	expect(t, "rotated refresh token after the replay", h.rpRefresh("rp", rpSecret, nt.str("refresh_token"), ""), http.StatusBadRequest, "invalid_grant")
	// A replay by another client (a thief) revokes them just the same.
	h.addRP("thief", nil)
	code = b.code(codeRequest("rp", "openid offline_access"))
	tok = h.exchange("rp", code, "https://rp.example/cb", "")
	expect(t, "exchange", tok, http.StatusOK, "")
	expect(t, "replay by a thief", h.exchange("thief", code, "https://rp.example/cb", ""), http.StatusBadRequest, "invalid_grant")
	if ui := h.do(http.MethodGet, "/oauth2/userinfo", "", bearer(tok.str("access_token"))...); ui.code != http.StatusUnauthorized {
		t.Fatalf("after a thief's replay the access token still works: %d", ui.code)
	}
}

func TestAttack_MixUpIssInEveryAuthorizationResponse(t *testing.T) {
	f := newOP(t, func(n *auth.NewClient) { n.FirstParty = false })
	h := f.h
	iss := h.cfg.Issuer
	check := func(what string, r hop, wantErr string) url.Values {
		t.Helper()
		cb := callback(t, r)
		if cb.Get("iss") != iss || cb.Get("error") != wantErr || cb.Get("state") != "st-rp" {
			t.Fatalf("%s: iss %q error %q state %q in %q", what, cb.Get("iss"), cb.Get("error"), cb.Get("state"), r.location)
		}
		return cb
	}
	anon := h.browser()
	check("login_required", anon.authorize(codeRequest("rp", "openid", "prompt", "none")), "login_required")
	b := f.signedIn()
	check("consent_required", b.authorize(codeRequest("rp", "openid", "prompt", "none")), "consent_required")
	check("invalid_scope", b.authorize(codeRequest("rp", "openid admin")), "invalid_scope")
	check("unsupported_response_type", b.authorize(codeRequest("rp", "openid", "response_type", "token")), "unsupported_response_type")
	check("invalid_request", b.authorize(codeRequest("rp", "openid", "prompt", "bogus")), "invalid_request")
	page := b.authorize(codeRequest("rp", "openid"))
	form := hiddenInputs(t, page.body)
	form.Set("decision", "deny")
	check("access_denied", b.postForm("/oauth2/consent", form), "access_denied")
	form.Set("decision", "allow")
	if cb := check("code after consent", b.postForm("/oauth2/consent", form), ""); cb.Get("code") == "" {
		t.Fatal("no code")
	}
	if cb := check("code", b.authorize(codeRequest("rp", "openid")), ""); cb.Get("code") == "" {
		t.Fatal("no code")
	}
}

// loginAt posts Latch's own sign-in (client latch-account) with extra
// headers, as another site's form or script would.
func (b *browser) loginAt(hdr ...string) hop {
	b.t.Helper()
	body, _ := json.Marshal(map[string]string{"email": adaEmail, "password": adaPass, "client_id": auth.AccountClientID})
	req, _ := http.NewRequest(http.MethodPost, b.h.srv.URL+"/v1/auth/login", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return b.do(req)
}

func TestAttack_LoginCSRF(t *testing.T) {
	f := newOP(t, nil)
	for name, hdr := range map[string][]string{
		"Origin of another site":        {"Origin", "https://attacker.example"},
		"Origin of a sibling":           {"Origin", "http://evil.latch.test"},
		"Sec-Fetch-Site cross-site":     {"Sec-Fetch-Site", "cross-site"},
		"Sec-Fetch-Site same-site only": {"Sec-Fetch-Site", "same-site"},
	} {
		t.Run(name, func(t *testing.T) {
			b := f.h.browser()
			r := b.loginAt(hdr...)
			if r.code != http.StatusForbidden || strings.Contains(r.body, "access_token") {
				t.Fatalf("cross-origin sign-in: %d %s", r.code, r.body)
			}
			for _, c := range r.header.Values("Set-Cookie") {
				if strings.Contains(c, "sso") || strings.Contains(c, "latch_at") || strings.Contains(c, "latch_rt") {
					t.Fatalf("cross-origin sign-in set a cookie: %s", c)
				}
			}
			if cb := callback(t, b.authorize(codeRequest("rp", "openid", "prompt", "none"))); cb.Get("error") != "login_required" {
				t.Fatalf("after a cross-origin sign-in the browser is signed in: %v", cb)
			}
		})
	}
	// Latch's own page (same origin) signs in.
	b := f.h.browser()
	if r := b.loginAt("Origin", f.h.cfg.Issuer); r.code != http.StatusOK {
		t.Fatalf("same-origin sign-in: %d %s", r.code, r.body)
	}
	b.code(codeRequest("rp", "openid", "prompt", "none"))
}

func TestAttack_ConsentClickjacking(t *testing.T) {
	f := newOP(t, func(n *auth.NewClient) { n.FirstParty = false })
	r := f.signedIn().authorize(codeRequest("rp", "openid"))
	if r.code != http.StatusOK || !strings.Contains(r.body, "consent_token") {
		t.Fatalf("consent page: %d %s", r.code, r.body)
	}
	if got := r.header.Get("X-Frame-Options"); got != "DENY" {
		t.Errorf("X-Frame-Options %q", got)
	}
	if csp := r.header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
	if cc := r.header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
		t.Errorf("Cache-Control %q", cc)
	}
}

func TestAttack_ConsentCSRF(t *testing.T) {
	f := newOP(t, func(n *auth.NewClient) { n.FirstParty = false })
	h := f.h
	b := f.signedIn()
	page := b.authorize(codeRequest("rp", "openid"))
	genuine := hiddenInputs(t, page.body)
	genuine.Set("decision", "allow")
	if genuine.Get("consent_token") == "" {
		t.Fatalf("no consent_token in %v", genuine)
	}
	refused := func(what string, r hop) {
		t.Helper()
		if (r.code != http.StatusForbidden && r.code != http.StatusBadRequest) || r.location != "" {
			t.Fatalf("%s: want an error page (403 or 400) without a redirect, got %d %q", what, r.code, r.location)
		}
	}
	with := func(k, v string) url.Values {
		q := url.Values{}
		for kk, vv := range genuine {
			q[kk] = append([]string(nil), vv...)
		}
		if v == "" {
			q.Del(k)
		} else {
			q.Set(k, v)
		}
		return q
	}
	refused("no consent_token", b.postForm("/oauth2/consent", with("consent_token", "")))
	refused("wrong consent_token", b.postForm("/oauth2/consent", with("consent_token", strings.Repeat("A", 43))))
	refused("token for another scope", b.postForm("/oauth2/consent", with("scope", "openid email offline_access")))
	refused("token for another state", b.postForm("/oauth2/consent", with("state", "attacker")))
	refused("token for another nonce", b.postForm("/oauth2/consent", with("nonce", "attacker")))
	// Cross-origin post of the genuine form.
	req, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/oauth2/consent", strings.NewReader(genuine.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://attacker.example")
	refused("cross-origin consent", b.do(req))
	// The same form posted in another user's browser.
	h.addUser("bob@example.com", adaPass)
	bob := h.browser()
	bob.signIn("bob@example.com", adaPass)
	refused("another user's consent token", bob.postForm("/oauth2/consent", genuine))
	// Nothing was approved by any of it.
	if cb := callback(t, b.authorize(codeRequest("rp", "openid", "prompt", "none"))); cb.Get("error") != "consent_required" {
		t.Fatalf("a refused consent form approved the app: %v", cb)
	}
	// The genuine form, from the page, works.
	if cb := callback(t, b.postForm("/oauth2/consent", genuine)); cb.Get("code") == "" {
		t.Fatalf("genuine consent: %v", cb)
	}
}

func TestAttack_PromptNoneDoesNotLeakAccounts(t *testing.T) {
	f := newOP(t, nil)
	b := f.h.browser()
	answer := func(hint string) string {
		r := b.authorize(codeRequest("rp", "openid", "prompt", "none", "login_hint", hint))
		callback(t, r)
		return r.location
	}
	exists, missing := answer(adaEmail), answer("nobody@example.com")
	if exists != missing || !strings.Contains(exists, "error=login_required") {
		t.Fatalf("prompt=none answers differ for an existing and a missing account:\n%s\n%s", exists, missing)
	}
	// Without prompt=none both go to the sign-in page, carrying the hint alike.
	a := b.authorize(codeRequest("rp", "openid", "login_hint", adaEmail))
	m := b.authorize(codeRequest("rp", "openid", "login_hint", "nobody@example.com"))
	norm := func(loc, hint string) string {
		once := url.QueryEscape(hint)
		return strings.NewReplacer(url.QueryEscape(once), "X", once, "X").Replace(loc)
	}
	if a.code != m.code || norm(a.location, adaEmail) != norm(m.location, "nobody@example.com") {
		t.Fatalf("sign-in redirects differ:\n%s\n%s", a.location, m.location)
	}
}

func TestAttack_IDTokenIsNotAnAccessToken(t *testing.T) {
	f := newOP(t, nil)
	h := f.h
	b := f.signedIn()
	tok := f.tokens(t, b, "openid email")
	id, at := tok.str("id_token"), tok.str("access_token")
	if ui := h.do(http.MethodGet, "/oauth2/userinfo", "", bearer(at)...); ui.code != http.StatusOK {
		t.Fatalf("the access token at userinfo: %d", ui.code)
	}
	if ui := h.do(http.MethodGet, "/oauth2/userinfo", "", bearer(id)...); ui.code != http.StatusUnauthorized {
		t.Fatalf("an id_token at userinfo: %d %s", ui.code, ui.raw)
	}
	if ui := h.form("/oauth2/userinfo", url.Values{"access_token": {id}}); ui.code != http.StatusUnauthorized {
		t.Fatalf("an id_token in userinfo's body: %d %s", ui.code, ui.raw)
	}
	if me := h.do(http.MethodGet, "/v1/me", "", bearer(id)...); me.code != http.StatusUnauthorized {
		t.Fatalf("an id_token at /v1/me: %d %s", me.code, me.raw)
	}
	// An access token is no id_token_hint, at authorize or at logout.
	r := b.authorize(codeRequest("rp", "openid", "id_token_hint", at))
	if cb := callback(t, r); cb.Get("error") != "invalid_request" || cb.Has("code") {
		t.Fatalf("an access token as id_token_hint: %q", r.location)
	}
	errorPage(t, "an access token as logout id_token_hint", b.get("/oauth2/logout?"+url.Values{"id_token_hint": {at},
		"post_logout_redirect_uri": {"https://rp.example/bye"}}.Encode()))
	// The session lives on; the genuine hint works.
	b.code(codeRequest("rp", "openid", "prompt", "none", "id_token_hint", id))
}

// ssoAlive reports whether the browser's SSO session still answers
// prompt=none with a code.
func ssoAlive(t *testing.T, b *browser) bool {
	t.Helper()
	cb := callback(t, b.authorize(codeRequest("rp", "openid", "prompt", "none")))
	return cb.Get("code") != ""
}

func TestAttack_LogoutWithoutHintAsksAndKeepsSession(t *testing.T) {
	f := newOP(t, nil)
	h := f.h
	b := f.signedIn()
	tok := f.tokens(t, b, "openid")
	for _, q := range []url.Values{{}, {"post_logout_redirect_uri": {"https://rp.example/bye"}, "client_id": {"rp"}, "state": {"s"}}} {
		r := b.get("/oauth2/logout?" + q.Encode())
		if r.code != http.StatusOK || r.location != "" || !strings.Contains(r.body, "logout_token") {
			t.Fatalf("logout without id_token_hint: want the confirm page, got %d %q", r.code, r.location)
		}
		if r.header.Get("X-Frame-Options") != "DENY" {
			t.Fatalf("the logout confirm page may be framed: %v", r.header)
		}
		for _, c := range r.header.Values("Set-Cookie") {
			if strings.Contains(c, "Max-Age=0") {
				t.Fatalf("the confirm page cleared a cookie: %s", c)
			}
		}
	}
	// POST without a decision is the same request, not a confirmation.
	if r := b.postForm("/oauth2/logout", url.Values{}); r.code != http.StatusOK || !strings.Contains(r.body, "logout_token") {
		t.Fatalf("POST logout without decision: %d %q", r.code, r.location)
	}
	// A hint for another user asks too.
	h.addUser("bob@example.com", adaPass)
	bob := h.browser()
	bob.signIn("bob@example.com", adaPass)
	bobID := f.h.exchange("rp", bob.code(codeRequest("rp", "openid")), "https://rp.example/cb", "").str("id_token")
	if r := b.get("/oauth2/logout?" + url.Values{"id_token_hint": {bobID}}.Encode()); r.code != http.StatusOK || !strings.Contains(r.body, "logout_token") {
		t.Fatalf("logout with another user's hint: %d %q", r.code, r.location)
	}
	if !ssoAlive(t, b) {
		t.Fatal("a logout request without confirmation ended the session")
	}
	if ui := h.do(http.MethodGet, "/oauth2/userinfo", "", bearer(tok.str("access_token"))...); ui.code != http.StatusOK {
		t.Fatalf("a logout request without confirmation revoked the tokens: %d", ui.code)
	}
}

func TestAttack_ForgedLogoutConfirmation(t *testing.T) {
	f := newOP(t, nil)
	h := f.h
	b := f.signedIn()
	page := b.get("/oauth2/logout")
	form := hiddenInputs(t, page.body)
	form.Set("decision", "logout")
	post := func(q url.Values, hdr ...string) hop {
		req, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/oauth2/logout", strings.NewReader(q.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		return b.do(req)
	}
	forged := url.Values{"decision": {"logout"}, "logout_token": {strings.Repeat("A", 43)}}
	for what, r := range map[string]hop{
		"wrong token":              post(forged),
		"no token":                 post(url.Values{"decision": {"logout"}}),
		"cross-origin":             post(form, "Origin", "https://attacker.example"),
		"cross-site fetch":         post(form, "Sec-Fetch-Site", "cross-site"),
		"another session's token":  post(url.Values{"decision": {"logout"}, "logout_token": {otherLogoutToken(t, h)}}),
		"unknown decision, token ": post(url.Values{"decision": {"bye"}, "logout_token": {form.Get("logout_token")}}),
	} {
		if r.code != http.StatusForbidden || r.location != "" {
			t.Errorf("%s: want 403, got %d %q", what, r.code, r.location)
		}
		if !ssoAlive(t, b) {
			t.Fatalf("%s ended the session", what)
		}
	}
	// The genuine confirmation ends it.
	if r := post(form); r.code != http.StatusOK {
		t.Fatalf("genuine confirmation: %d %q", r.code, r.location)
	}
	if ssoAlive(t, b) {
		t.Fatal("the genuine confirmation did not end the session")
	}
}

// otherLogoutToken is the logout confirmation token of another browser's
// SSO session.
func otherLogoutToken(t *testing.T, h *harness) string {
	t.Helper()
	o := h.browser()
	o.signIn(adaEmail, adaPass)
	return hiddenInputs(t, o.get("/oauth2/logout").body).Get("logout_token")
}

func TestAttack_UnregisteredPostLogoutRedirect(t *testing.T) {
	f := newOP(t, nil)
	b := f.signedIn()
	id := f.tokens(t, b, "openid").str("id_token")
	for _, uri := range []string{"https://attacker.example/bye", "https://rp.example/bye/x", "https://rp.example/bye?x=1",
		"https://rp.example/cb", "https://rp.example/bye#f"} {
		errorPage(t, uri, b.get("/oauth2/logout?"+url.Values{"id_token_hint": {id}, "post_logout_redirect_uri": {uri}}.Encode()))
		errorPage(t, uri+" by client_id", b.get("/oauth2/logout?"+url.Values{"client_id": {"rp"}, "post_logout_redirect_uri": {uri}}.Encode()))
	}
	errorPage(t, "no client named", b.get("/oauth2/logout?"+url.Values{"post_logout_redirect_uri": {"https://rp.example/bye"}}.Encode()))
	if !ssoAlive(t, b) {
		t.Fatal("a refused logout ended the session")
	}
}

func TestAttack_LogoutTokenIsNoOtherToken(t *testing.T) {
	f, rp := bclOP(t)
	h := f.h
	b := f.signedIn()
	toks := f.signInAll(t, b)
	// A second browser session, alive, to try the logout token against.
	o := h.browser()
	o.signIn(adaEmail, adaPass)
	b.get("/oauth2/logout?" + url.Values{"id_token_hint": {toks["rp"].str("id_token")}}.Encode())
	lt := waitLogoutToken(t, f, rp, "/rp", 1, "rp", toks["rp"])
	if lt == nil {
		t.Fatal("no logout token")
	}
	logout := rp.tokens("/rp")[0]
	if ui := h.do(http.MethodGet, "/oauth2/userinfo", "", bearer(logout)...); ui.code != http.StatusUnauthorized {
		t.Fatalf("a logout token at userinfo: %d", ui.code)
	}
	if me := h.do(http.MethodGet, "/v1/me", "", bearer(logout)...); me.code != http.StatusUnauthorized {
		t.Fatalf("a logout token at /v1/me: %d", me.code)
	}
	r := o.authorize(codeRequest("rp", "openid", "prompt", "none", "id_token_hint", logout))
	if cb := callback(t, r); cb.Get("error") != "invalid_request" || cb.Has("code") {
		t.Fatalf("a logout token as id_token_hint: %q", r.location)
	}
	errorPage(t, "a logout token as logout id_token_hint", o.get("/oauth2/logout?"+url.Values{"id_token_hint": {logout},
		"post_logout_redirect_uri": {"https://rp.example/bye"}}.Encode()))
	// The second session is untouched and still answers.
	o.code(codeRequest("rp", "openid", "prompt", "none"))
}

func TestAttack_ConfidentialRefreshWithoutClientAuthentication(t *testing.T) {
	// A relying party's refresh token, stolen, is worth nothing without
	// the client's secret (RFC 6749 §6): not at /v1/auth/refresh, not at
	// the token endpoint; and trying does not spend it.
	f := newOP(t, nil)
	h := f.h
	tok := f.tokens(t, f.signedIn(), "openid offline_access")
	rt := tok.str("refresh_token")
	if r := h.refresh(rt); r.code != http.StatusUnauthorized || r.str("access_token") != "" {
		t.Fatalf("a confidential client's refresh token at /v1/auth/refresh: %d %s", r.code, r.raw)
	}
	expect(t, "refresh with client_id alone", h.form("/oauth2/token", url.Values{"grant_type": {"refresh_token"},
		"refresh_token": {rt}, "client_id": {"rp"}}), http.StatusUnauthorized, "invalid_client")
	expect(t, "the client's own refresh", h.rpRefresh("rp", rpSecret, rt, ""), http.StatusOK, "")
}

func TestAttack_StaleCodes(t *testing.T) {
	f := newOP(t, nil)
	h := f.h
	b := f.signedIn()
	// Past codes.ttl (60 s by default) a code is worth nothing.
	code := b.code(codeRequest("rp", "openid"))
	h.clock.Advance(61 * time.Second)
	expect(t, "expired code", h.exchange("rp", code, "https://rp.example/cb", ""), http.StatusBadRequest, "invalid_grant")
	// Within it, it works.
	code = b.code(codeRequest("rp", "openid"))
	h.clock.Advance(59 * time.Second)
	expect(t, "code within its lifetime", h.exchange("rp", code, "https://rp.example/cb", ""), http.StatusOK, "")
	// A code whose sign-in ended (the user signed out) is worth nothing.
	tok := f.tokens(t, b, "openid")
	code = b.code(codeRequest("rp", "openid"))
	b.get("/oauth2/logout?" + url.Values{"id_token_hint": {tok.str("id_token")}}.Encode())
	if ssoAlive(t, b) {
		t.Fatal("logout did not end the session")
	}
	expect(t, "code of an ended sign-in", h.exchange("rp", code, "https://rp.example/cb", ""), http.StatusBadRequest, "invalid_grant")
}

func TestAttack_ClientTokenAtUserinfo(t *testing.T) {
	// A client's own token (client_credentials) names no user.
	f := newOP(t, nil)
	h := f.h
	cc := h.form("/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, basic("rp", rpSecret)...)
	if cc.code != http.StatusOK {
		t.Fatalf("client_credentials: %d %s", cc.code, cc.raw)
	}
	if ui := h.do(http.MethodGet, "/oauth2/userinfo", "", bearer(cc.str("access_token"))...); ui.code/100 != 4 || ui.str("sub") != "" {
		t.Fatalf("a client's token at userinfo: %d %s", ui.code, ui.raw)
	}
}

func TestAttack_LogoutWithAnOldSessionsHint(t *testing.T) {
	// RP-Initiated Logout §2: the OP MUST ask when the id_token_hint does
	// not belong to the current session. An id_token of an earlier
	// sign-in (which any app of it kept) must not sign the user out of a
	// later one without asking.
	f := newOP(t, nil)
	b := f.signedIn()
	old := f.tokens(t, b, "openid").str("id_token")
	b.signIn(adaEmail, adaPass) // a new SSO session replaces the old
	tok := f.tokens(t, b, "openid")
	r := b.get("/oauth2/logout?" + url.Values{"id_token_hint": {old}, "post_logout_redirect_uri": {"https://rp.example/bye"}}.Encode())
	if r.code != http.StatusOK || r.location != "" || !strings.Contains(r.body, "logout_token") {
		t.Fatalf("logout with an old session's hint: want the confirm page, got %d %q", r.code, r.location)
	}
	if !ssoAlive(t, b) {
		t.Fatal("an old session's id_token ended the current session without asking")
	}
	// The current session's hint signs out at once.
	r = b.get("/oauth2/logout?" + url.Values{"id_token_hint": {tok.str("id_token")}, "post_logout_redirect_uri": {"https://rp.example/bye"}}.Encode())
	if r.code != http.StatusSeeOther || r.location != "https://rp.example/bye" {
		t.Fatalf("logout with the current hint: %d %q", r.code, r.location)
	}
}
