package instance_test

// Red-team tests of the OpenID Provider (issue 9). Each test reproduces an
// attack found by the outside review on branch redteam; each FAILS against
// the code it was written against (commit b9f9003) and passes once the
// hole is closed. See docs/redteam-oidc.md for the findings.

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/latchauth/latch/auth"
)

const (
	rtEmail = "ada@example.com"
	rtPass  = "correct horse battery staple"
)

// rpTokens runs the code flow for client id in browser b (signed in
// already) and returns the token response. Consent is given if asked.
func rpTokens(t *testing.T, h *harness, b *browser, id, scope string) response {
	t.Helper()
	r := b.authorize(codeRequest(id, scope))
	if r.code == http.StatusOK && strings.Contains(r.body, "consent_token") {
		form := hiddenInputs(t, r.body)
		form.Set("decision", "allow")
		r = b.postForm("/oauth2/consent", form)
	}
	cb := callback(t, r)
	if cb.Get("code") == "" {
		t.Fatalf("%s: no code in the callback: %v", id, cb)
	}
	tok := h.exchange(id, cb.Get("code"), "https://"+id+".example/cb", "")
	if tok.code != http.StatusOK {
		t.Fatalf("%s: exchange: %d %s", id, tok.code, tok.raw)
	}
	return tok
}

// signedInSession is the session_id of Latch's own sign-in response.
func signedInSession(t *testing.T, r hop) string {
	t.Helper()
	var body struct {
		SessionID string `json:"session_id"`
	}
	if err := json.Unmarshal([]byte(r.body), &body); err != nil || body.SessionID == "" {
		t.Fatalf("sign-in response without session_id: %s", r.body)
	}
	return body.SessionID
}

// stillSignedIn fails unless browser b's SSO session still answers
// prompt=none for the first-party client id with a code.
func stillSignedIn(t *testing.T, b *browser, id, what string) {
	t.Helper()
	r := b.authorize(codeRequest(id, "openid", "prompt", "none"))
	if r.code != http.StatusSeeOther || !strings.Contains(r.location, "code=") {
		t.Fatalf("%s: the user's SSO session should still be alive: %d %q", what, r.code, r.location)
	}
}

// FINDING 1 (high): an access token that a third-party relying party got
// from the code flow, for scope "openid" alone, is a full bearer token for
// Latch's own account API: it reads the user's email (a scope never
// granted), lists every session with IP and user agent, reads the
// security events, and can revoke the user's other sessions, sign the
// user out everywhere and withdraw other apps' consents. An RP's token is
// not an account token: the account API must refuse it.
func TestRedteamRPAccessTokenIsNotAnAccountToken(t *testing.T) {
	h := start(t, "", nil)
	defer h.close()
	h.addUser(rtEmail, rtPass)
	h.addRP("evil", func(n *auth.NewClient) { n.Scopes = []string{"openid"} })
	h.addRP("wiki", func(n *auth.NewClient) { n.FirstParty = true })
	b := h.browser()
	account := signedInSession(t, b.signIn(rtEmail, rtPass))
	at := rpTokens(t, h, b, "evil", "openid").str("access_token")

	for _, p := range []string{"/v1/me", "/v1/sessions", "/v1/events", "/v1/consents"} {
		r := h.do(http.MethodGet, p, "", bearer(at)...)
		if r.code < 400 {
			t.Errorf("GET %s with a third-party RP's openid-only access token: %d %s", p, r.code, r.raw)
		}
		if strings.Contains(string(r.raw), rtEmail) {
			t.Errorf("GET %s disclosed the email, a scope the RP was never granted: %s", p, r.raw)
		}
	}
	if r := h.do(http.MethodDelete, "/v1/sessions/"+account, "", bearer(at)...); r.code < 400 {
		t.Errorf("an RP revoked the user's own Latch session: %d %s", r.code, r.raw)
	}
	if r := h.do(http.MethodPost, "/v1/auth/logout-all", "", bearer(at)...); r.code < 400 {
		t.Errorf("an RP signed the user out everywhere: %d %s", r.code, r.raw)
	}
	stillSignedIn(t, b, "wiki", "after an RP's token was refused by the account API")
}

// FINDING 2 (high): revoking a device's Latch session from the account
// API (DELETE /v1/sessions/{id}, the "sign this device out" of /account)
// leaves that browser's SSO session alive, and the SSO session keeps
// handing out codes to every RP without a password. The SSO session the
// family came from must end with it (or be listed and revocable itself).
func TestRedteamRevokingADevicesSessionEndsItsSSOSession(t *testing.T) {
	h := start(t, "", nil)
	defer h.close()
	h.addUser(rtEmail, rtPass)
	h.addRP("wiki", func(n *auth.NewClient) { n.FirstParty = true })
	stolen := h.browser()
	stolenSession := signedInSession(t, stolen.signIn(rtEmail, rtPass))
	stillSignedIn(t, stolen, "wiki", "before the revocation")

	owner := h.login(rtEmail, rtPass) // the user, on another device
	if r := h.do(http.MethodDelete, "/v1/sessions/"+stolenSession, "", bearer(owner.str("access_token"))...); r.code != http.StatusNoContent {
		t.Fatalf("revoke the stolen device's session: %d %s", r.code, r.raw)
	}
	r := stolen.authorize(codeRequest("wiki", "openid", "prompt", "none"))
	if r.code != http.StatusSeeOther || !strings.Contains(r.location, "error=login_required") {
		t.Fatalf("the revoked device still signs in to apps through its SSO session: %d %q", r.code, r.location)
	}
}

// FINDING 5 (medium): latch_after, the parameter the provider adds to
// the request it returns to after a sign-in it asked for, is taken from
// the URL unauthenticated. Anyone at the browser (or any link) adds
// latch_after=<a time before the last sign-in> and prompt=login or max_age
// are satisfied without signing in again.
func TestRedteamForgedLatchAfterDoesNotSkipReauthentication(t *testing.T) {
	h := start(t, "", nil)
	defer h.close()
	h.addUser(rtEmail, rtPass)
	h.addRP("wiki", func(n *auth.NewClient) { n.FirstParty = true })
	b := h.browser()
	b.signIn(rtEmail, rtPass)
	signedInAt := h.clock.Now().Unix()
	h.clock.Advance(5 * time.Minute)
	forged := strconv.FormatInt(signedInAt-1, 10)

	for _, extra := range [][]string{
		{"prompt", "login", "latch_after", forged},
		{"max_age", "60", "latch_after", forged},
	} {
		r := b.authorize(codeRequest("wiki", "openid", extra...))
		if r.code != http.StatusSeeOther || !strings.HasPrefix(r.location, "/login?") {
			t.Errorf("%v: want a fresh sign-in at /login, got %d %q", extra, r.code, r.location)
		}
	}
}

// FINDING 6 (medium): RP-initiated logout ends the browser's SSO session
// without asking whenever id_token_hint names the signed-in user, even
// when the hint belongs to another (older, ended) SSO session. RP-Initiated
// Logout 1.0 §2: the OP MUST ask if the ID Token does not belong to the
// current OP session. Any old id_token of the user (kept by any RP, found
// in a log) becomes a link that signs the user out, forever.
func TestRedteamLogoutHintOfAnotherSSOSessionAsks(t *testing.T) {
	h := start(t, "", nil)
	defer h.close()
	h.addUser(rtEmail, rtPass)
	h.addRP("wiki", func(n *auth.NewClient) { n.FirstParty = true })
	old := h.browser()
	old.signIn(rtEmail, rtPass)
	oldIDToken := rpTokens(t, h, old, "wiki", "openid").str("id_token")

	b := h.browser() // today's browser: another SSO session of the same user
	b.signIn(rtEmail, rtPass)
	r := b.get("/oauth2/logout?" + url.Values{"id_token_hint": {oldIDToken}}.Encode())
	if r.code != http.StatusOK || !strings.Contains(r.body, "logout_token") {
		t.Errorf("a hint from another SSO session must lead to the confirmation page: %d %q", r.code, r.location)
	}
	stillSignedIn(t, b, "wiki", "after a logout link carrying an old id_token")
}

// FINDING 4 (high): a confidential RP's refresh token is redeemed at
// /v1/auth/refresh with no client authentication at all. RFC 6749 §6 and
// §10.4: the server MUST authenticate a confidential client on refresh;
// that is what makes a refresh token stolen from an RP useless without
// the client's secret. Here it is not, and the chain continues at the
// token endpoint afterwards.
func TestRedteamConfidentialRefreshTokenNeedsTheClientSecret(t *testing.T) {
	h := start(t, "", nil)
	defer h.close()
	h.addUser(rtEmail, rtPass)
	h.addRP("dash", nil)
	b := h.browser()
	b.signIn(rtEmail, rtPass)
	rt := rpTokens(t, h, b, "dash", "openid offline_access").str("refresh_token")
	if rt == "" {
		t.Fatal("offline_access granted: want a refresh token")
	}
	if r := h.refresh(rt); r.code == http.StatusOK {
		t.Errorf("a confidential client's refresh token was redeemed without the client secret: %s", r.raw)
	}
}

// FINDING 3 (high): the consent page carries every parameter of the
// authorization request in hidden fields, including one named "decision".
// A request with decision=allow puts a hidden decision=allow before the
// Allow and Deny buttons; the handler reads the first value, so the user
// who clicks Deny approves the app (the consent is remembered, and a code
// with offline_access is issued). The consent token does not cover it.
func TestRedteamDenyMeansDeny(t *testing.T) {
	h := start(t, "", nil)
	defer h.close()
	h.addUser(rtEmail, rtPass)
	h.addRP("dash", nil)
	b := h.browser()
	b.signIn(rtEmail, rtPass)
	r := b.authorize(codeRequest("dash", "openid email offline_access", "decision", "allow"))
	if r.code != http.StatusOK || !strings.Contains(r.body, "consent_token") {
		t.Fatalf("want the consent page, got %d %q", r.code, r.location)
	}
	// What a browser posts when the user clicks Deny: the form's fields
	// in document order (the hidden ones), then the button's.
	body := hiddenFieldsInOrder(t, r.body) + "&decision=deny"
	req, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/oauth2/consent", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	// Fixed, the answer is access_denied for the client, or a refusal of
	// the ambiguous form; never a code.
	if res := b.do(req); res.code == http.StatusSeeOther {
		if cb := callback(t, res); cb.Get("code") != "" || cb.Get("error") != "access_denied" {
			t.Fatalf("the user clicked Deny, the app got %v", cb)
		}
	} else if res.code < 400 {
		t.Fatalf("the user clicked Deny: %d %s", res.code, res.body)
	}
	if r := b.authorize(codeRequest("dash", "openid email offline_access", "prompt", "none")); strings.Contains(r.location, "code=") {
		t.Fatalf("the user clicked Deny, and the consent was remembered: %q", r.location)
	}
}

// hiddenFieldsInOrder encodes the hidden inputs of a page in document
// order, as a browser submits them (duplicates kept).
func hiddenFieldsInOrder(t *testing.T, page string) string {
	t.Helper()
	var parts []string
	for _, part := range strings.Split(page, "<input")[1:] {
		tag := part[:strings.Index(part, ">")]
		if strings.Contains(tag, `type="hidden"`) {
			parts = append(parts, url.QueryEscape(attr(tag, "name"))+"="+url.QueryEscape(attr(tag, "value")))
		}
	}
	if len(parts) == 0 {
		t.Fatalf("no hidden inputs in %s", page)
	}
	return strings.Join(parts, "&")
}

// FINDING 7 (low): error_description breaks RFC 6749 §4.1.2.1 and §5.2
// ("MUST NOT include characters outside the set %x20-21 / %x23-5B /
// %x5D-7E"): descriptions quote values with '"' (strconv.Quote), and a
// quoted value is the attacker's own bytes (a scope value, a parameter
// name), which may be any UTF-8 up to 2 KiB.
func TestRedteamErrorDescriptionCharset(t *testing.T) {
	h := start(t, "", nil)
	defer h.close()
	h.addRP("dash", nil)
	b := h.browser()
	cb := callback(t, b.authorize(codeRequest("dash", "openid <b>Call+1-555-SCAM</b>")))
	if cb.Get("error") != "invalid_scope" {
		t.Fatalf("want invalid_scope, got %v", cb)
	}
	checkDescription(t, "authorization error", cb.Get("error_description"))
	tok := h.do(http.MethodPost, "/oauth2/token", "grant_type=client_credentials&scope=a&scope=b",
		"Content-Type", "application/x-www-form-urlencoded")
	checkDescription(t, "token endpoint error", tok.str("error_description"))
}

func checkDescription(t *testing.T, what, d string) {
	t.Helper()
	for _, c := range []byte(d) {
		if c < 0x20 || c == 0x22 || c == 0x5c || c > 0x7e {
			t.Errorf("%s: error_description %q has %q, outside RFC 6749's set", what, d, c)
			return
		}
	}
}
