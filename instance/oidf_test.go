package instance_test

// The OpenID Foundation's Basic OP, Config OP and back-channel logout
// certification plans, as tests of the real flow through HTTP (the suite
// itself cannot run here: it needs a public HTTPS issuer). Each row names
// the module it models and checks what the module checks; each fails if
// the behaviour it proves is removed.
//
//	module                                                   test
//	oidcc-server                                             TestOIDCC_Server
//	oidcc-idtoken-signature                                  TestOIDCC_IDTokenSignature
//	oidcc-userinfo-get                                       TestOIDCC_UserInfoGet
//	oidcc-userinfo-post-header                               TestOIDCC_UserInfoPostHeader
//	oidcc-userinfo-post-body                                 TestOIDCC_UserInfoPostBody
//	oidcc-ensure-request-without-nonce-succeeds-for-code-flow TestOIDCC_EnsureRequestWithoutNonceSucceedsForCodeFlow
//	oidcc-scope-profile                                      TestOIDCC_ScopeProfile
//	oidcc-scope-email                                        TestOIDCC_ScopeEmail
//	oidcc-prompt-login                                       TestOIDCC_PromptLogin
//	oidcc-prompt-none-not-logged-in                          TestOIDCC_PromptNoneNotLoggedIn
//	oidcc-prompt-none-logged-in                              TestOIDCC_PromptNoneLoggedIn
//	oidcc-max-age-1                                          TestOIDCC_MaxAge1
//	oidcc-max-age-10000                                      TestOIDCC_MaxAge10000
//	oidcc-ensure-request-with-unknown-parameter-succeeds     TestOIDCC_EnsureRequestWithUnknownParameterSucceeds
//	oidcc-id-token-hint                                      TestOIDCC_IDTokenHint
//	oidcc-login-hint                                         TestOIDCC_LoginHint
//	oidcc-codereuse                                          TestOIDCC_CodeReuse
//	oidcc-codereuse-30seconds                                TestOIDCC_CodeReuse30Seconds
//	oidcc-ensure-registered-redirect-uri                     TestOIDCC_EnsureRegisteredRedirectURI
//	oidcc-ensure-post-request-succeeds                       TestOIDCC_EnsurePostRequestSucceeds
//	oidcc-server-client-secret-post                          TestOIDCC_ServerClientSecretPost
//	oidcc-refresh-token                                      TestOIDCC_RefreshToken
//	oidcc-ensure-request-with-valid-pkce-succeeds            TestOIDCC_EnsureRequestWithValidPKCESucceeds
//	oidcc-discovery-endpoint-verification                    TestOIDCC_DiscoveryEndpointVerification
//	oidcc-ensure-other-scope-order-succeeds                  TestOIDCC_EnsureOtherScopeOrderSucceeds
//	oidcc-display-page, oidcc-display-popup                  TestOIDCC_DisplayPage, TestOIDCC_DisplayPopup
//	oidcc-claims-essential                                   TestOIDCC_ClaimsEssential
//	oidcc-ensure-request-with-acr-values-succeeds            TestOIDCC_EnsureRequestWithAcrValuesSucceeds
//	oidcc-response-type-missing                              TestOIDCC_ResponseTypeMissing
//	oidcc-ensure-redirect-uri-in-authorization-request       TestOIDCC_EnsureRedirectURIInAuthorizationRequest
//	oidcc-unsigned-request-object-supported-correctly-or-rejected-as-unsupported
//	                                                         TestOIDCC_UnsignedRequestObjectRejectedAsUnsupported
//	oidcc-request-uri-unsigned (rejected as unsupported)     TestOIDCC_RequestURIRejectedAsUnsupported
//	oidcc-rp-initiated-logout, -no-state                     TestOIDCC_RPInitiatedLogout
//	oidcc-backchannel-rp-initiated-logout                    TestOIDCC_BackchannelRPInitiatedLogout
//	  (confirm page instead of id_token_hint)                TestOIDCC_BackchannelLogoutConfirmedWithoutHint
//	  (a new sign-in replaces the SSO session)               TestOIDCC_BackchannelLogoutOnNewSignIn
//	  (the RP is down: the outbox retries)                   TestOIDCC_BackchannelLogoutRetried
//	  (refresh-token reuse ends the SSO session)             TestOIDCC_BackchannelLogoutOnRefreshReuse
//	oidcc-rp-initiated-logout (no id_token_hint)             TestOIDCC_RPInitiatedLogoutNoIDTokenHint
//	oidcc-rp-initiated-logout-bad-post-logout-redirect-uri   TestOIDCC_RPInitiatedLogoutBadPostLogoutRedirectURI
//	oidcc-rp-initiated-logout-modified-id-token-hint         TestOIDCC_RPInitiatedLogoutModifiedIDTokenHint
//	oidcc-rp-initiated-logout-query-added-to-post-logout-redirect-uri
//	                                                         TestOIDCC_RPInitiatedLogoutQueryAdded

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/latchauth/latch/auth"
)

// opFixture is a started instance with Ada, a first-party RP "rp"
// (no consent page), and a browser that is signed in when asked.
type opFixture struct {
	h   *harness
	uid string
}

func newOP(t *testing.T, mutate func(*auth.NewClient)) opFixture {
	t.Helper()
	h := start(t, "", nil)
	uid := h.addUser(adaEmail, adaPass)
	h.addRP("rp", func(n *auth.NewClient) {
		n.FirstParty = true
		if mutate != nil {
			mutate(n)
		}
	})
	return opFixture{h: h, uid: uid}
}

// signedIn returns a browser signed in at Latch as Ada.
func (f opFixture) signedIn() *browser {
	b := f.h.browser()
	b.signIn(adaEmail, adaPass)
	return b
}

// code asks for a code and fails unless it comes back to the redirect URI
// with the request's state and the issuer.
func (b *browser) code(q url.Values) string {
	b.t.Helper()
	r := b.authorize(q)
	cb := callback(b.t, r)
	if !strings.HasPrefix(r.location, q.Get("redirect_uri")+"?") || cb.Get("code") == "" ||
		cb.Get("state") != q.Get("state") || cb.Get("iss") != b.h.cfg.Issuer {
		b.t.Fatalf("want a code at %s with state and iss, got %q %s", q.Get("redirect_uri"), r.location, r.body)
	}
	return cb.Get("code")
}

// tokens runs the flow for the first-party RP and redeems the code.
func (f opFixture) tokens(t *testing.T, b *browser, scope string, extra ...string) response {
	t.Helper()
	tok := f.h.exchange("rp", b.code(codeRequest("rp", scope, extra...)), "https://rp.example/cb", "")
	expect(t, "code exchange", tok, http.StatusOK, "")
	return tok
}

// verifiedIDToken checks an id_token's signature with the key of the JWKS
// that discovery names (RS256 only), and returns its header and claims.
func verifiedIDToken(t *testing.T, h *harness, tok string) (jose.Header, map[string]any) {
	t.Helper()
	disc := h.do(http.MethodGet, "/.well-known/openid-configuration", "")
	ju, err := url.Parse(disc.str("jwks_uri"))
	if err != nil || ju.Path == "" {
		t.Fatalf("jwks_uri %q", disc.str("jwks_uri"))
	}
	jr := h.do(http.MethodGet, ju.Path, "")
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(jr.raw, &set); err != nil {
		t.Fatalf("JWKS: %v: %s", err, jr.raw)
	}
	jws, err := jose.ParseSigned(tok, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatalf("id_token is not an RS256 JWS: %v", err)
	}
	hdr := jws.Signatures[0].Header
	keys := set.Key(hdr.KeyID)
	if len(keys) != 1 {
		t.Fatalf("id_token kid %q: %d keys in the JWKS", hdr.KeyID, len(keys))
	}
	payload, err := jws.Verify(keys[0])
	if err != nil {
		t.Fatalf("id_token signature: %v", err)
	}
	var c map[string]any
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	return hdr, c
}

// num reads a JSON number claim.
func num(c map[string]any, k string) int64 {
	f, _ := c[k].(float64)
	return int64(f)
}

// checkIDToken is what oidcc-server checks of every id_token (OpenID
// Connect Core §3.1.3.7): iss, aud, sub, iat and exp, nonce when sent,
// at_hash of the access token.
func checkIDToken(t *testing.T, h *harness, tok response, client, sub, nonce string) map[string]any {
	t.Helper()
	_, c := verifiedIDToken(t, h, tok.str("id_token"))
	now := h.clock.Now().Unix()
	if c["iss"] != h.cfg.Issuer || c["aud"] != client || c["sub"] != sub {
		t.Fatalf("id_token iss/aud/sub: %v", c)
	}
	if iat, exp := num(c, "iat"), num(c, "exp"); iat > now+1 || iat < now-60 || exp <= now {
		t.Fatalf("id_token iat %d exp %d at %d", iat, exp, now)
	}
	if nonce != "" && c["nonce"] != nonce {
		t.Fatalf("id_token nonce %v, want %q", c["nonce"], nonce)
	}
	if _, ok := c["auth_time"]; !ok {
		t.Fatalf("id_token without auth_time: %v", c)
	}
	sum := sha256Half(tok.str("access_token"))
	if c["at_hash"] != sum {
		t.Fatalf("at_hash %v, want %s", c["at_hash"], sum)
	}
	return c
}

// sha256Half is the at_hash of an RS256 id_token for token.
func sha256Half(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

func TestOIDCC_Server(t *testing.T) {
	f := newOP(t, nil)
	b := f.signedIn()
	tok := f.tokens(t, b, "openid")
	if tok.str("token_type") != "Bearer" || tok.str("access_token") == "" || tok.str("id_token") == "" {
		t.Fatalf("token response %s", tok.raw)
	}
	checkIDToken(t, f.h, tok, "rp", f.uid, "n-rp")
	ui := f.h.do(http.MethodGet, "/oauth2/userinfo", "", bearer(tok.str("access_token"))...)
	if ui.code != http.StatusOK || ui.str("sub") != f.uid {
		t.Fatalf("userinfo sub must equal the id_token's: %d %s", ui.code, ui.raw)
	}
}

func TestOIDCC_IDTokenSignature(t *testing.T) {
	f := newOP(t, nil)
	tok := f.tokens(t, f.signedIn(), "openid")
	hdr, _ := verifiedIDToken(t, f.h, tok.str("id_token"))
	if hdr.Algorithm != "RS256" {
		t.Fatalf("alg %s: OIDC's default is RS256", hdr.Algorithm)
	}
	// A flipped signature byte does not verify: the check above is real.
	parts := strings.Split(tok.str("id_token"), ".")
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	sig[0] ^= 1
	forged := parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(sig)
	jws, err := jose.ParseSigned(forged, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	var set jose.JSONWebKeySet
	_ = json.Unmarshal(f.h.do(http.MethodGet, "/.well-known/jwks.json", "").raw, &set)
	if _, err := jws.Verify(set.Key(hdr.KeyID)[0]); err == nil {
		t.Fatal("a forged signature verified")
	}
}

func TestOIDCC_UserInfoGet(t *testing.T) {
	f := newOP(t, nil)
	tok := f.tokens(t, f.signedIn(), "openid email")
	ui := f.h.do(http.MethodGet, "/oauth2/userinfo", "", bearer(tok.str("access_token"))...)
	if ui.code != http.StatusOK || ui.str("sub") != f.uid || ui.str("email") != adaEmail {
		t.Fatalf("userinfo: %d %s", ui.code, ui.raw)
	}
	if ui := f.h.do(http.MethodGet, "/oauth2/userinfo", ""); ui.code != http.StatusUnauthorized {
		t.Fatalf("userinfo without a token: %d", ui.code)
	}
}

func TestOIDCC_UserInfoPostHeader(t *testing.T) {
	f := newOP(t, nil)
	tok := f.tokens(t, f.signedIn(), "openid")
	ui := f.h.do(http.MethodPost, "/oauth2/userinfo", "", bearer(tok.str("access_token"))...)
	if ui.code != http.StatusOK || ui.str("sub") != f.uid {
		t.Fatalf("userinfo POST with header: %d %s", ui.code, ui.raw)
	}
	if ui := f.h.do(http.MethodPost, "/oauth2/userinfo", "", bearer(tok.str("access_token")+"x")...); ui.code != http.StatusUnauthorized {
		t.Fatalf("userinfo POST with a bad token: %d", ui.code)
	}
}

func TestOIDCC_UserInfoPostBody(t *testing.T) {
	f := newOP(t, nil)
	tok := f.tokens(t, f.signedIn(), "openid")
	ui := f.h.form("/oauth2/userinfo", url.Values{"access_token": {tok.str("access_token")}})
	if ui.code != http.StatusOK || ui.str("sub") != f.uid {
		t.Fatalf("userinfo POST with body: %d %s", ui.code, ui.raw)
	}
	// Never in the query (RFC 6750 §2.3 is a MUST NOT for us).
	if ui := f.h.do(http.MethodGet, "/oauth2/userinfo?access_token="+url.QueryEscape(tok.str("access_token")), ""); ui.code == http.StatusOK {
		t.Fatalf("userinfo took the token from the URL: %s", ui.raw)
	}
}

func TestOIDCC_EnsureRequestWithoutNonceSucceedsForCodeFlow(t *testing.T) {
	f := newOP(t, nil)
	b := f.signedIn()
	q := codeRequest("rp", "openid")
	q.Del("nonce")
	tok := f.h.exchange("rp", b.code(q), "https://rp.example/cb", "")
	expect(t, "exchange", tok, http.StatusOK, "")
	c := checkIDToken(t, f.h, tok, "rp", f.uid, "")
	if _, ok := c["nonce"]; ok {
		t.Fatalf("no nonce was sent, the id_token has one: %v", c)
	}
}

func TestOIDCC_ScopeProfile(t *testing.T) {
	f := newOP(t, nil)
	tok := f.tokens(t, f.signedIn(), "openid profile")
	if !slices.Contains(strings.Fields(tok.str("scope")), "profile") {
		t.Fatalf("granted scope %q", tok.str("scope"))
	}
	ui := f.h.do(http.MethodGet, "/oauth2/userinfo", "", bearer(tok.str("access_token"))...)
	if ui.code != http.StatusOK || ui.str("sub") != f.uid || ui.body["updated_at"] == nil {
		t.Fatalf("userinfo for profile: %d %s", ui.code, ui.raw)
	}
	if _, ok := ui.body["email"]; ok {
		t.Fatalf("email given without the email scope: %s", ui.raw)
	}
}

func TestOIDCC_ScopeEmail(t *testing.T) {
	f := newOP(t, nil)
	tok := f.tokens(t, f.signedIn(), "openid email")
	ui := f.h.do(http.MethodGet, "/oauth2/userinfo", "", bearer(tok.str("access_token"))...)
	if ui.code != http.StatusOK || ui.str("email") != adaEmail || ui.body["email_verified"] == nil {
		t.Fatalf("userinfo for email: %d %s", ui.code, ui.raw)
	}
	_, c := verifiedIDToken(t, f.h, tok.str("id_token"))
	if c["email"] != adaEmail {
		t.Fatalf("id_token for email: %v", c)
	}
	// Without the scope, no address.
	tok = f.tokens(t, f.signedIn(), "openid")
	if ui := f.h.do(http.MethodGet, "/oauth2/userinfo", "", bearer(tok.str("access_token"))...); ui.body["email"] != nil {
		t.Fatalf("email without the scope: %s", ui.raw)
	}
}

// signInAgain follows a redirect to /login: signs in, then returns to
// the return_to the provider named, and returns that answer.
func (b *browser) signInAgain(r hop) hop {
	b.t.Helper()
	if r.code != http.StatusSeeOther || !strings.HasPrefix(r.location, "/login?") {
		b.t.Fatalf("want a redirect to /login, got %d %q", r.code, r.location)
	}
	lu, _ := url.Parse(r.location)
	ret := lu.Query().Get("return_to")
	if !strings.HasPrefix(ret, "/oauth2/authorize?") {
		b.t.Fatalf("return_to %q", ret)
	}
	b.signIn(adaEmail, adaPass)
	return b.get(ret)
}

func TestOIDCC_PromptLogin(t *testing.T) {
	f := newOP(t, nil)
	b := f.signedIn()
	first := checkIDToken(t, f.h, f.tokens(t, b, "openid"), "rp", f.uid, "n-rp")
	f.h.clock.Advance(2 * time.Second)
	r := b.authorize(codeRequest("rp", "openid", "prompt", "login"))
	if r.code != http.StatusSeeOther || !strings.HasPrefix(r.location, "/login?") {
		t.Fatalf("prompt=login with a live SSO session must ask for a sign-in: %d %q", r.code, r.location)
	}
	// Coming back without signing in does not pass.
	lu, _ := url.Parse(r.location)
	if again := b.get(lu.Query().Get("return_to")); !strings.HasPrefix(again.location, "/login?") {
		t.Fatalf("return_to without a fresh sign-in: %d %q", again.code, again.location)
	}
	cb := callback(t, b.signInAgain(r))
	tok := f.h.exchange("rp", cb.Get("code"), "https://rp.example/cb", "")
	expect(t, "exchange", tok, http.StatusOK, "")
	second := checkIDToken(t, f.h, tok, "rp", f.uid, "n-rp")
	if num(second, "auth_time") <= num(first, "auth_time") {
		t.Fatalf("auth_time did not advance: %v then %v", first["auth_time"], second["auth_time"])
	}
}

func TestOIDCC_PromptNoneNotLoggedIn(t *testing.T) {
	f := newOP(t, nil)
	b := f.h.browser()
	r := b.authorize(codeRequest("rp", "openid", "prompt", "none"))
	cb := callback(t, r)
	if !strings.HasPrefix(r.location, "https://rp.example/cb?") || cb.Get("error") != "login_required" ||
		cb.Get("state") != "st-rp" || cb.Get("iss") != f.h.cfg.Issuer || cb.Has("code") {
		t.Fatalf("prompt=none signed out: %q", r.location)
	}
}

func TestOIDCC_PromptNoneLoggedIn(t *testing.T) {
	f := newOP(t, nil)
	b := f.signedIn()
	first := checkIDToken(t, f.h, f.tokens(t, b, "openid"), "rp", f.uid, "n-rp")
	tok := f.tokens(t, b, "openid", "prompt", "none")
	second := checkIDToken(t, f.h, tok, "rp", f.uid, "n-rp")
	if second["sub"] != first["sub"] || num(second, "auth_time") != num(first, "auth_time") {
		t.Fatalf("prompt=none: %v then %v", first, second)
	}
}

func TestOIDCC_MaxAge1(t *testing.T) {
	f := newOP(t, nil)
	b := f.signedIn()
	first := checkIDToken(t, f.h, f.tokens(t, b, "openid"), "rp", f.uid, "n-rp")
	f.h.clock.Advance(2 * time.Second)
	r := b.authorize(codeRequest("rp", "openid", "max_age", "1"))
	if r.code != http.StatusSeeOther || !strings.HasPrefix(r.location, "/login?") {
		t.Fatalf("max_age=1 after 2 s must ask for a sign-in: %d %q", r.code, r.location)
	}
	cb := callback(t, b.signInAgain(r))
	tok := f.h.exchange("rp", cb.Get("code"), "https://rp.example/cb", "")
	expect(t, "exchange", tok, http.StatusOK, "")
	second := checkIDToken(t, f.h, tok, "rp", f.uid, "n-rp")
	if num(second, "auth_time") <= num(first, "auth_time") {
		t.Fatalf("auth_time did not advance: %v then %v", first["auth_time"], second["auth_time"])
	}
	// prompt=none with max_age that the session is too old for.
	f.h.clock.Advance(2 * time.Second)
	r = b.authorize(codeRequest("rp", "openid", "max_age", "1", "prompt", "none"))
	if cb := callback(t, r); cb.Get("error") != "login_required" {
		t.Fatalf("max_age=1 with prompt=none: %q", r.location)
	}
}

func TestOIDCC_MaxAge10000(t *testing.T) {
	f := newOP(t, nil)
	b := f.signedIn()
	first := checkIDToken(t, f.h, f.tokens(t, b, "openid"), "rp", f.uid, "n-rp")
	f.h.clock.Advance(2 * time.Second)
	second := checkIDToken(t, f.h, f.tokens(t, b, "openid", "max_age", "10000"), "rp", f.uid, "n-rp")
	if num(second, "auth_time") != num(first, "auth_time") {
		t.Fatalf("max_age=10000 forced a sign-in: auth_time %v then %v", first["auth_time"], second["auth_time"])
	}
	// The session grows older than max_age: a sign-in is asked for.
	f.h.clock.Advance(10001 * time.Second)
	if r := b.authorize(codeRequest("rp", "openid", "max_age", "10000")); !strings.HasPrefix(r.location, "/login?") {
		t.Fatalf("max_age=10000 after 10003 s: %d %q", r.code, r.location)
	}
}

func TestOIDCC_EnsureRequestWithUnknownParameterSucceeds(t *testing.T) {
	f := newOP(t, nil)
	tok := f.tokens(t, f.signedIn(), "openid", "extra_param", "foobar", "claims_locales", "de")
	checkIDToken(t, f.h, tok, "rp", f.uid, "n-rp")
}

func TestOIDCC_IDTokenHint(t *testing.T) {
	f := newOP(t, nil)
	b := f.signedIn()
	hint := f.tokens(t, b, "openid").str("id_token")
	f.h.clock.Advance(2 * time.Hour) // an expired hint is still a hint (Core §3.1.2.1)
	b.signIn(adaEmail, adaPass)
	tok := f.tokens(t, b, "openid", "prompt", "none", "id_token_hint", hint)
	checkIDToken(t, f.h, tok, "rp", f.uid, "n-rp")

	// The hint names someone else than the signed-in user: with
	// prompt=none that is login_required, not a code for the wrong user.
	f.h.addUser("bob@example.com", adaPass)
	bob := f.h.browser()
	bob.signIn("bob@example.com", adaPass)
	r := bob.authorize(codeRequest("rp", "openid", "prompt", "none", "id_token_hint", hint))
	if cb := callback(t, r); cb.Get("error") != "login_required" || cb.Has("code") {
		t.Fatalf("id_token_hint of another user: %q", r.location)
	}
	// A hint that is not our id_token is an error for the client.
	r = b.authorize(codeRequest("rp", "openid", "id_token_hint", hint[:len(hint)-4]+"AAAA"))
	if cb := callback(t, r); cb.Get("error") != "invalid_request" {
		t.Fatalf("forged id_token_hint: %q", r.location)
	}
}

func TestOIDCC_LoginHint(t *testing.T) {
	f := newOP(t, nil)
	b := f.h.browser()
	r := b.authorize(codeRequest("rp", "openid", "login_hint", adaEmail))
	if r.code != http.StatusSeeOther || !strings.HasPrefix(r.location, "/login?") {
		t.Fatalf("signed out: %d %q", r.code, r.location)
	}
	page := b.get(r.location)
	if page.code != http.StatusOK || !strings.Contains(page.body, `value="`+adaEmail+`"`) {
		t.Fatalf("the login page does not prefill the hint: %d %s", page.code, page.body)
	}
	cb := callback(t, b.signInAgain(r))
	expect(t, "exchange", f.h.exchange("rp", cb.Get("code"), "https://rp.example/cb", ""), http.StatusOK, "")
}

// reuseRevokes checks the replay of a code: invalid_grant, and every token
// the first exchange issued is revoked, the refresh token too.
func reuseRevokes(t *testing.T, f opFixture, code string, tok response, wait time.Duration) {
	t.Helper()
	f.h.clock.Advance(wait)
	again := f.h.exchange("rp", code, "https://rp.example/cb", "")
	expect(t, "code reuse", again, http.StatusBadRequest, "invalid_grant")
	if again.str("access_token") != "" {
		t.Fatalf("a reused code issued tokens: %s", again.raw)
	}
	if ui := f.h.do(http.MethodGet, "/oauth2/userinfo", "", bearer(tok.str("access_token"))...); ui.code != http.StatusUnauthorized {
		t.Fatalf("the access token of a reused code still works: %d %s", ui.code, ui.raw)
	}
	rt := f.h.form("/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.str("refresh_token")}}, basic("rp", rpSecret)...)
	expect(t, "refresh after code reuse", rt, http.StatusBadRequest, "invalid_grant")
}

func TestOIDCC_CodeReuse(t *testing.T) {
	f := newOP(t, nil)
	code := f.signedIn().code(codeRequest("rp", "openid"))
	tok := f.h.exchange("rp", code, "https://rp.example/cb", "")
	expect(t, "exchange", tok, http.StatusOK, "")
	reuseRevokes(t, f, code, tok, 0)
}

func TestOIDCC_CodeReuse30Seconds(t *testing.T) {
	f := newOP(t, nil)
	code := f.signedIn().code(codeRequest("rp", "openid"))
	tok := f.h.exchange("rp", code, "https://rp.example/cb", "")
	expect(t, "exchange", tok, http.StatusOK, "")
	reuseRevokes(t, f, code, tok, 30*time.Second)
}

// errorPage checks an answer is an error page for the user: 400, HTML,
// and no redirect anywhere.
func errorPage(t *testing.T, what string, r hop) {
	t.Helper()
	if r.code != http.StatusBadRequest || r.location != "" || r.header.Get("Location") != "" ||
		!strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
		t.Fatalf("%s: want an error page without a redirect, got %d %q %s", what, r.code, r.location, r.header.Get("Content-Type"))
	}
}

func TestOIDCC_EnsureRegisteredRedirectURI(t *testing.T) {
	f := newOP(t, nil)
	b := f.signedIn()
	q := codeRequest("rp", "openid")
	q.Set("redirect_uri", "https://rp.example/cb/elsewhere")
	errorPage(t, "unregistered redirect_uri", b.authorize(q))
	q.Set("redirect_uri", "https://attacker.example/cb")
	errorPage(t, "another host's redirect_uri", b.authorize(q))
	q.Del("redirect_uri")
	errorPage(t, "no redirect_uri", b.authorize(q))
	q = codeRequest("nobody", "openid")
	errorPage(t, "unknown client", b.authorize(q))
}

func TestOIDCC_EnsurePostRequestSucceeds(t *testing.T) {
	f := newOP(t, nil)
	b := f.signedIn()
	q := codeRequest("rp", "openid")
	r := b.postForm("/oauth2/authorize", q)
	cb := callback(t, r)
	if cb.Get("code") == "" || cb.Get("state") != "st-rp" {
		t.Fatalf("POST authorization: %d %q", r.code, r.location)
	}
	tok := f.h.exchange("rp", cb.Get("code"), "https://rp.example/cb", "")
	expect(t, "exchange", tok, http.StatusOK, "")
	checkIDToken(t, f.h, tok, "rp", f.uid, "n-rp")
}

func TestOIDCC_ServerClientSecretPost(t *testing.T) {
	f := newOP(t, nil)
	b := f.signedIn()
	post := func(secret string) response {
		return f.h.form("/oauth2/token", url.Values{"grant_type": {"authorization_code"}, "code": {b.code(codeRequest("rp", "openid"))},
			"redirect_uri": {"https://rp.example/cb"}, "client_id": {"rp"}, "client_secret": {secret}})
	}
	expect(t, "client_secret_post with a wrong secret", post(rpSecret+"x"), http.StatusUnauthorized, "invalid_client")
	tok := post(rpSecret)
	expect(t, "client_secret_post", tok, http.StatusOK, "")
	checkIDToken(t, f.h, tok, "rp", f.uid, "n-rp")
}

// rpRefresh refreshes with the client's secret (client_secret_basic).
func (h *harness) rpRefresh(client, secret, rt, scope string) response {
	h.t.Helper()
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
	if scope != "" {
		form.Set("scope", scope)
	}
	return h.form("/oauth2/token", form, basic(client, secret)...)
}

func TestOIDCC_RefreshToken(t *testing.T) {
	f := newOP(t, func(n *auth.NewClient) { n.FirstParty = false })
	f.h.addRP("other", nil)
	b := f.signedIn()
	r := b.authorize(codeRequest("rp", "openid email offline_access"))
	if r.code != http.StatusOK {
		t.Fatalf("want the consent page, got %d %q", r.code, r.location)
	}
	form := hiddenInputs(t, r.body)
	form.Set("decision", "allow")
	cb := callback(t, b.postForm("/oauth2/consent", form))
	tok := f.h.exchange("rp", cb.Get("code"), "https://rp.example/cb", "")
	expect(t, "exchange", tok, http.StatusOK, "")
	first := checkIDToken(t, f.h, tok, "rp", f.uid, "n-rp")
	rt := tok.str("refresh_token")
	if rt == "" {
		t.Fatalf("offline_access granted, no refresh token: %s", tok.raw)
	}

	// Another client presenting it fails and does not consume it.
	expect(t, "refresh by another client", f.h.rpRefresh("other", rpSecret, rt, ""), http.StatusBadRequest, "invalid_grant")
	f.h.clock.Advance(2 * time.Second)
	nt := f.h.rpRefresh("rp", rpSecret, rt, "")
	expect(t, "refresh after the other client's attempt", nt, http.StatusOK, "")
	c := checkIDToken(t, f.h, nt, "rp", f.uid, "")
	if c["sub"] != first["sub"] || c["aud"] != first["aud"] || num(c, "auth_time") != num(first, "auth_time") ||
		num(c, "iat") <= num(first, "iat") || c["nonce"] != nil {
		t.Fatalf("refreshed id_token %v after %v", c, first)
	}
	if nt.str("refresh_token") == "" || nt.str("refresh_token") == rt {
		t.Fatalf("refresh must rotate: %s", nt.raw)
	}

	// Narrower scope: granted narrower; no email in userinfo.
	narrow := f.h.rpRefresh("rp", rpSecret, nt.str("refresh_token"), "openid offline_access")
	expect(t, "refresh with a narrower scope", narrow, http.StatusOK, "")
	if narrow.str("scope") != "openid offline_access" {
		t.Fatalf("narrowed scope: %q", narrow.str("scope"))
	}
	if ui := f.h.do(http.MethodGet, "/oauth2/userinfo", "", bearer(narrow.str("access_token"))...); ui.code != http.StatusOK || ui.body["email"] != nil {
		t.Fatalf("userinfo after narrowing: %d %s", ui.code, ui.raw)
	}
	// Wider than the grant: refused.
	expect(t, "refresh with a wider scope", f.h.rpRefresh("rp", rpSecret, narrow.str("refresh_token"), "openid profile offline_access"),
		http.StatusBadRequest, "invalid_scope")
	// The wrong secret is invalid_client and consumes nothing either.
	expect(t, "refresh with a wrong secret", f.h.rpRefresh("rp", rpSecret+"x", narrow.str("refresh_token"), ""), http.StatusUnauthorized, "invalid_client")
	expect(t, "refresh after refusals", f.h.rpRefresh("rp", rpSecret, narrow.str("refresh_token"), ""), http.StatusOK, "")
}

func TestOIDCC_EnsureRequestWithValidPKCESucceeds(t *testing.T) {
	f := newOP(t, nil)
	b := f.signedIn()
	v, ch := pkce("k")
	pk := []string{"code_challenge", ch, "code_challenge_method", "S256"}
	tok := f.h.exchange("rp", b.code(codeRequest("rp", "openid", pk...)), "https://rp.example/cb", v)
	expect(t, "exchange with the verifier", tok, http.StatusOK, "")
	checkIDToken(t, f.h, tok, "rp", f.uid, "n-rp")
	other, _ := pkce("z")
	expect(t, "exchange with another verifier", f.h.exchange("rp", b.code(codeRequest("rp", "openid", pk...)), "https://rp.example/cb", other),
		http.StatusBadRequest, "invalid_grant")
}

func TestOIDCC_DiscoveryEndpointVerification(t *testing.T) {
	f := newOP(t, nil)
	h := f.h
	d := h.do(http.MethodGet, "/.well-known/openid-configuration", "")
	expect(t, "discovery", d, http.StatusOK, "")
	iss := h.cfg.Issuer
	strs := func(k string) []string {
		var out []string
		list, ok := d.body[k].([]any)
		if !ok {
			t.Fatalf("%s is not a list: %v", k, d.body[k])
		}
		for _, v := range list {
			out = append(out, v.(string))
		}
		return out
	}
	for k, want := range map[string]string{
		"issuer": iss, "authorization_endpoint": iss + "/oauth2/authorize", "token_endpoint": iss + "/oauth2/token",
		"userinfo_endpoint": iss + "/oauth2/userinfo", "end_session_endpoint": iss + "/oauth2/logout",
		"jwks_uri": iss + "/.well-known/jwks.json",
	} {
		if d.str(k) != want {
			t.Errorf("%s = %q, want %q", k, d.str(k), want)
		}
	}
	for k, want := range map[string][]string{
		"response_types_supported":         {"code"},
		"code_challenge_methods_supported": {"S256"},
	} {
		if got := strs(k); !slices.Equal(got, want) {
			t.Errorf("%s = %v, want %v", k, got, want)
		}
	}
	for k, must := range map[string][]string{
		"subject_types_supported":               {"public"},
		"id_token_signing_alg_values_supported": {"RS256"},
		"scopes_supported":                      {"openid", "profile", "email", "offline_access"},
		"claims_supported":                      {"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "sid", "amr", "at_hash", "email", "email_verified"},
		"grant_types_supported":                 {"authorization_code", "refresh_token"},
		"token_endpoint_auth_methods_supported": {"client_secret_basic", "client_secret_post"},
	} {
		got := strs(k)
		for _, m := range must {
			if !slices.Contains(got, m) {
				t.Errorf("%s = %v lacks %q", k, got, m)
			}
		}
	}
	for _, k := range []string{"backchannel_logout_supported", "backchannel_logout_session_supported", "authorization_response_iss_parameter_supported"} {
		if d.body[k] != true {
			t.Errorf("%s = %v, want true", k, d.body[k])
		}
	}

	// Every value is true of the server.
	path := func(k string) string {
		u, _ := url.Parse(d.str(k))
		return u.Path
	}
	var set jose.JSONWebKeySet
	if r := h.do(http.MethodGet, path("jwks_uri"), ""); r.code != http.StatusOK || json.Unmarshal(r.raw, &set) != nil || len(set.Keys) == 0 {
		t.Errorf("jwks_uri: %d %s", r.code, r.raw)
	}
	if r := h.do(http.MethodGet, path("userinfo_endpoint"), ""); r.code != http.StatusUnauthorized {
		t.Errorf("userinfo_endpoint without a token: %d", r.code)
	}
	if r := h.form(path("token_endpoint"), url.Values{"grant_type": {"authorization_code"}}); r.code != http.StatusUnauthorized {
		t.Errorf("token_endpoint without a client: %d %s", r.code, r.raw)
	}
	if r := h.browser().get(path("end_session_endpoint")); r.code != http.StatusOK {
		t.Errorf("end_session_endpoint signed out: %d", r.code)
	}
	b := f.signedIn()
	r := b.get(path("authorization_endpoint") + "?" + codeRequest("rp", strings.Join(strs("scopes_supported"), " ")).Encode())
	if cb := callback(t, r); cb.Get("code") == "" || cb.Get("iss") != iss {
		t.Errorf("every scope of scopes_supported, with iss in the answer: %q", r.location)
	}
	tok := f.tokens(t, b, "openid")
	hdr, c := verifiedIDToken(t, h, tok.str("id_token"))
	if !slices.Contains(strs("id_token_signing_alg_values_supported"), hdr.Algorithm) {
		t.Errorf("id_token alg %s not in id_token_signing_alg_values_supported", hdr.Algorithm)
	}
	for k := range c {
		if !slices.Contains(strs("claims_supported"), k) {
			t.Errorf("id_token claim %q not in claims_supported", k)
		}
	}
	for _, rt := range []string{"token", "id_token", "code id_token", "code token"} {
		r := b.authorize(codeRequest("rp", "openid", "response_type", rt))
		if cb := callback(t, r); cb.Get("error") != "unsupported_response_type" || cb.Get("iss") != iss {
			t.Errorf("response_type=%s: %q", rt, r.location)
		}
	}
	_, plain := pkce("p")
	r = b.authorize(codeRequest("rp", "openid", "code_challenge", plain, "code_challenge_method", "plain"))
	if cb := callback(t, r); cb.Get("error") != "invalid_request" {
		t.Errorf("plain PKCE: %q", r.location)
	}
}

func TestOIDCC_RPInitiatedLogout(t *testing.T) {
	f := newOP(t, nil)
	b := f.signedIn()
	tok := f.tokens(t, b, "openid offline_access")
	r := b.get("/oauth2/logout?" + url.Values{"id_token_hint": {tok.str("id_token")},
		"post_logout_redirect_uri": {"https://rp.example/bye"}, "state": {"s1"}}.Encode())
	if r.code != http.StatusSeeOther || r.location != "https://rp.example/bye?state=s1" {
		t.Fatalf("logout: %d %q %s", r.code, r.location, r.body)
	}
	if ui := f.h.do(http.MethodGet, "/oauth2/userinfo", "", bearer(tok.str("access_token"))...); ui.code != http.StatusUnauthorized {
		t.Fatalf("access token after logout: %d", ui.code)
	}
	expect(t, "refresh after logout", f.h.rpRefresh("rp", rpSecret, tok.str("refresh_token"), ""), http.StatusBadRequest, "invalid_grant")
	if cb := callback(t, b.authorize(codeRequest("rp", "openid", "prompt", "none"))); cb.Get("error") != "login_required" {
		t.Fatalf("prompt=none after logout: %v", cb)
	}
	// oidcc-rp-initiated-logout-no-state: no state, none added.
	b.signIn(adaEmail, adaPass)
	id := f.tokens(t, b, "openid").str("id_token")
	r = b.get("/oauth2/logout?" + url.Values{"id_token_hint": {id}, "post_logout_redirect_uri": {"https://rp.example/bye"}}.Encode())
	if r.code != http.StatusSeeOther || r.location != "https://rp.example/bye" {
		t.Fatalf("logout without state: %d %q", r.code, r.location)
	}
}

func TestOIDCC_RPInitiatedLogoutNoIDTokenHint(t *testing.T) {
	f := newOP(t, nil)
	b := f.signedIn()
	q := url.Values{"client_id": {"rp"}, "post_logout_redirect_uri": {"https://rp.example/bye"}, "state": {"s2"}}
	r := b.get("/oauth2/logout?" + q.Encode())
	if r.code != http.StatusOK || r.location != "" {
		t.Fatalf("without id_token_hint the user confirms: %d %q", r.code, r.location)
	}
	if !ssoAlive(t, b) {
		t.Fatal("the confirm page ended the session")
	}
	form := hiddenInputs(t, r.body)
	form.Set("decision", "logout")
	done := b.postForm("/oauth2/logout", form)
	if done.code != http.StatusSeeOther || done.location != "https://rp.example/bye?state=s2" {
		t.Fatalf("confirmed logout: %d %q", done.code, done.location)
	}
	if ssoAlive(t, b) {
		t.Fatal("the confirmed logout did not end the session")
	}
}

func TestOIDCC_RPInitiatedLogoutBadPostLogoutRedirectURI(t *testing.T) {
	f := newOP(t, nil)
	b := f.signedIn()
	id := f.tokens(t, b, "openid").str("id_token")
	errorPage(t, "unregistered post_logout_redirect_uri", b.get("/oauth2/logout?"+url.Values{"id_token_hint": {id},
		"post_logout_redirect_uri": {"https://attacker.example/bye"}, "state": {"s"}}.Encode()))
	if !ssoAlive(t, b) {
		t.Fatal("a refused logout ended the session")
	}
}

func TestOIDCC_RPInitiatedLogoutModifiedIDTokenHint(t *testing.T) {
	f := newOP(t, nil)
	b := f.signedIn()
	id := f.tokens(t, b, "openid").str("id_token")
	parts := strings.Split(id, ".")
	var claims map[string]any
	raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
	_ = json.Unmarshal(raw, &claims)
	claims["sub"] = "someone-else"
	raw, _ = json.Marshal(claims)
	modified := parts[0] + "." + base64.RawURLEncoding.EncodeToString(raw) + "." + parts[2]
	errorPage(t, "modified id_token_hint", b.get("/oauth2/logout?"+url.Values{"id_token_hint": {modified},
		"post_logout_redirect_uri": {"https://rp.example/bye"}, "state": {"s"}}.Encode()))
	if !ssoAlive(t, b) {
		t.Fatal("a modified hint ended the session")
	}
}

func TestOIDCC_RPInitiatedLogoutQueryAdded(t *testing.T) {
	f := newOP(t, nil)
	b := f.signedIn()
	id := f.tokens(t, b, "openid").str("id_token")
	errorPage(t, "query added to post_logout_redirect_uri", b.get("/oauth2/logout?"+url.Values{"id_token_hint": {id},
		"post_logout_redirect_uri": {"https://rp.example/bye?foo=bar"}}.Encode()))
	if !ssoAlive(t, b) {
		t.Fatal("a refused logout ended the session")
	}
}

// bclRP is a relying party's back-channel logout endpoint on 127.0.0.1:
// it records the logout tokens each path receives and answers with the
// status its fail function picks (200 when nil).
type bclRP struct {
	srv   *httptest.Server
	mu    sync.Mutex
	got   map[string][]string
	bad   []string        // what was wrong with a request, if anything
	down  map[string]bool // paths that answer 503
	tries map[string]int
}

func newBCLRP(t *testing.T) *bclRP {
	t.Helper()
	rp := &bclRP{got: map[string][]string{}, down: map[string]bool{}, tries: map[string]int{}}
	rp.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rp.mu.Lock()
		defer rp.mu.Unlock()
		mt := r.Header.Get("Content-Type")
		if err := r.ParseForm(); err != nil || r.Method != http.MethodPost || mt != "application/x-www-form-urlencoded" ||
			len(r.PostForm["logout_token"]) != 1 || r.URL.RawQuery != "" {
			rp.bad = append(rp.bad, r.Method+" "+r.URL.String()+" "+mt)
		}
		rp.tries[r.URL.Path]++
		if rp.down[r.URL.Path] {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		rp.got[r.URL.Path] = append(rp.got[r.URL.Path], r.PostForm.Get("logout_token"))
	}))
	t.Cleanup(rp.srv.Close)
	return rp
}

func (rp *bclRP) setDown(path string, down bool) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	rp.down[path] = down
}

func (rp *bclRP) attempts(path string) int {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	return rp.tries[path]
}

func (rp *bclRP) tokens(path string) []string {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	return slices.Clone(rp.got[path])
}

// startWorkers runs the instance's background work (the outbox worker
// among it) until the test ends.
func startWorkers(t *testing.T, h *harness) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	h.in.Start(ctx)
	t.Cleanup(func() { cancel(); h.in.Wait() })
}

// bclOP is an instance with the outbox worker running, Ada, and the RPs
// "rp" and "rp2" registered with back-channel logout URIs on rp, and
// "rp3" without one; all first-party.
func bclOP(t *testing.T) (opFixture, *bclRP) {
	t.Helper()
	rp := newBCLRP(t)
	f := newOP(t, func(n *auth.NewClient) { n.BackchannelLogoutURI = rp.srv.URL + "/rp" })
	f.h.addRP("rp2", func(n *auth.NewClient) { n.FirstParty, n.BackchannelLogoutURI = true, rp.srv.URL+"/rp2" })
	f.h.addRP("rp3", func(n *auth.NewClient) { n.FirstParty = true })
	startWorkers(t, f.h)
	return f, rp
}

// signInAll signs in the browser's SSO session at rp, rp2 and rp3 and
// returns each one's token response.
func (f opFixture) signInAll(t *testing.T, b *browser) map[string]response {
	t.Helper()
	out := map[string]response{}
	for _, id := range []string{"rp", "rp2", "rp3"} {
		tok := f.h.exchange(id, b.code(codeRequest(id, "openid offline_access")), "https://"+id+".example/cb", "")
		expect(t, "exchange at "+id, tok, http.StatusOK, "")
		out[id] = tok
	}
	return out
}

// waitLogoutToken waits for exactly n logout tokens at path and checks
// the last as oidcc-backchannel-rp-initiated-logout does, against the
// id_token the RP holds: signature by a key of the JWKS, typ logout+jwt,
// iss, aud, iat, jti, the back-channel logout event, the id_token's sid
// and sub, no nonce.
func waitLogoutToken(t *testing.T, f opFixture, rp *bclRP, path string, n int, client string, id response) map[string]any {
	t.Helper()
	waitFor(t, "back-channel logout at "+path, func() bool { return len(rp.tokens(path)) >= n })
	got := rp.tokens(path)
	if len(got) != n {
		t.Fatalf("%s: %d logout tokens, want %d", path, len(got), n)
	}
	rp.mu.Lock()
	bad := slices.Clone(rp.bad)
	rp.mu.Unlock()
	if len(bad) > 0 {
		t.Fatalf("malformed back-channel logout requests: %v", bad)
	}
	hdr, c := verifiedIDToken(t, f.h, got[n-1])
	if hdr.ExtraHeaders["typ"] != "logout+jwt" {
		t.Fatalf("logout token typ %v", hdr.ExtraHeaders["typ"])
	}
	_, idc := verifiedIDToken(t, f.h, id.str("id_token"))
	aud := c["aud"]
	if list, ok := aud.([]any); ok && len(list) == 1 {
		aud = list[0]
	}
	ev, _ := c["events"].(map[string]any)
	member, ok := ev["http://schemas.openid.net/event/backchannel-logout"].(map[string]any)
	if c["iss"] != f.h.cfg.Issuer || aud != client || num(c, "iat") == 0 || c["jti"] == nil || c["jti"] == "" ||
		!ok || len(member) != 0 || c["sid"] != idc["sid"] || c["sid"] == nil || c["sub"] != idc["sub"] {
		t.Fatalf("logout token claims %v for id_token %v", c, idc)
	}
	if _, has := c["nonce"]; has {
		t.Fatalf("a logout token must not carry nonce: %v", c)
	}
	if exp := num(c, "exp"); exp != 0 && exp <= num(c, "iat") {
		t.Fatalf("logout token exp %d iat %d", exp, num(c, "iat"))
	}
	return c
}

func TestOIDCC_BackchannelRPInitiatedLogout(t *testing.T) {
	f, rp := bclOP(t)
	b := f.signedIn()
	toks := f.signInAll(t, b)
	r := b.get("/oauth2/logout?" + url.Values{"id_token_hint": {toks["rp"].str("id_token")},
		"post_logout_redirect_uri": {"https://rp.example/bye"}, "state": {"s"}}.Encode())
	if r.code != http.StatusSeeOther || r.location != "https://rp.example/bye?state=s" {
		t.Fatalf("logout: %d %q", r.code, r.location)
	}
	// Both RPs that registered a URI are told, the one that asked too.
	a := waitLogoutToken(t, f, rp, "/rp", 1, "rp", toks["rp"])
	c := waitLogoutToken(t, f, rp, "/rp2", 1, "rp2", toks["rp2"])
	if a["jti"] == c["jti"] {
		t.Fatalf("two logout tokens share a jti: %v", a["jti"])
	}
	for id, tok := range toks {
		if ui := f.h.do(http.MethodGet, "/oauth2/userinfo", "", bearer(tok.str("access_token"))...); ui.code != http.StatusUnauthorized {
			t.Fatalf("%s's access token after logout: %d", id, ui.code)
		}
	}
}

func TestOIDCC_BackchannelLogoutConfirmedWithoutHint(t *testing.T) {
	f, rp := bclOP(t)
	b := f.signedIn()
	toks := f.signInAll(t, b)
	page := b.get("/oauth2/logout")
	form := hiddenInputs(t, page.body)
	form.Set("decision", "logout")
	if r := b.postForm("/oauth2/logout", form); r.code != http.StatusOK {
		t.Fatalf("confirmed logout: %d %q", r.code, r.location)
	}
	waitLogoutToken(t, f, rp, "/rp", 1, "rp", toks["rp"])
	waitLogoutToken(t, f, rp, "/rp2", 1, "rp2", toks["rp2"])
}

func TestOIDCC_BackchannelLogoutOnNewSignIn(t *testing.T) {
	// A new sign-in in the same browser replaces its SSO session: the
	// apps of the old one are told.
	f, rp := bclOP(t)
	b := f.signedIn()
	toks := f.signInAll(t, b)
	b.signIn(adaEmail, adaPass)
	waitLogoutToken(t, f, rp, "/rp", 1, "rp", toks["rp"])
	waitLogoutToken(t, f, rp, "/rp2", 1, "rp2", toks["rp2"])
}

func TestOIDCC_BackchannelLogoutRetried(t *testing.T) {
	// The RP is down at first: the outbox retries until it answers.
	f, rp := bclOP(t)
	rp.setDown("/rp2", true)
	b := f.signedIn()
	toks := f.signInAll(t, b)
	if r := b.get("/oauth2/logout?" + url.Values{"id_token_hint": {toks["rp"].str("id_token")}}.Encode()); r.code != http.StatusOK {
		t.Fatalf("logout: %d %q", r.code, r.location)
	}
	waitLogoutToken(t, f, rp, "/rp", 1, "rp", toks["rp"])
	waitFor(t, "a failed delivery to rp2", func() bool { return rp.attempts("/rp2") > 0 })
	rp.setDown("/rp2", false)
	waitFor(t, "the retried delivery to rp2", func() bool {
		f.h.clock.Advance(time.Minute) // past the backoff
		f.h.in.Outbox.Notify()
		return len(rp.tokens("/rp2")) > 0
	})
	waitLogoutToken(t, f, rp, "/rp2", 1, "rp2", toks["rp2"])
}

func TestOIDCC_BackchannelLogoutOnRefreshReuse(t *testing.T) {
	// Refresh-token reuse ends the SSO session the family came from: every
	// app of it is told, not only the one whose token leaked.
	f, rp := bclOP(t)
	b := f.signedIn()
	toks := f.signInAll(t, b)
	old := toks["rp3"].str("refresh_token")
	expect(t, "refresh", f.h.rpRefresh("rp3", rpSecret, old, ""), http.StatusOK, "")
	f.h.clock.Advance(10 * time.Minute) // past the grace window
	expect(t, "reuse", f.h.rpRefresh("rp3", rpSecret, old, ""), http.StatusBadRequest, "invalid_grant")
	waitLogoutToken(t, f, rp, "/rp", 1, "rp", toks["rp"])
	waitLogoutToken(t, f, rp, "/rp2", 1, "rp2", toks["rp2"])
	if ssoAlive(t, b) {
		t.Fatal("the SSO session outlived a refresh-token reuse")
	}
}

// codeWith runs the flow for the first-party RP with extra parameters and
// checks the id_token, as the plan's "succeeds" modules do.
func (f opFixture) codeWith(t *testing.T, scope string, extra ...string) {
	t.Helper()
	checkIDToken(t, f.h, f.tokens(t, f.signedIn(), scope, extra...), "rp", f.uid, "n-rp")
}

// errorBack checks an authorization error sent back to the redirect URI
// with state and iss.
func errorBack(t *testing.T, h *harness, what string, r hop, code string) {
	t.Helper()
	cb := callback(t, r)
	if !strings.HasPrefix(r.location, "https://rp.example/cb?") || cb.Get("error") != code || cb.Get("state") != "st-rp" ||
		cb.Get("iss") != h.cfg.Issuer || cb.Has("code") {
		t.Fatalf("%s: want error %s back to the client, got %q", what, code, r.location)
	}
}

func TestOIDCC_EnsureOtherScopeOrderSucceeds(t *testing.T) {
	newOP(t, nil).codeWith(t, "email openid")
}

func TestOIDCC_DisplayPage(t *testing.T) { newOP(t, nil).codeWith(t, "openid", "display", "page") }

func TestOIDCC_DisplayPopup(t *testing.T) { newOP(t, nil).codeWith(t, "openid", "display", "popup") }

func TestOIDCC_ClaimsEssential(t *testing.T) {
	newOP(t, nil).codeWith(t, "openid", "claims", `{"userinfo":{"name":{"essential":true}}}`)
}

func TestOIDCC_EnsureRequestWithAcrValuesSucceeds(t *testing.T) {
	newOP(t, nil).codeWith(t, "openid", "acr_values", "1 2")
}

func TestOIDCC_ResponseTypeMissing(t *testing.T) {
	f := newOP(t, nil)
	q := codeRequest("rp", "openid")
	q.Del("response_type")
	errorBack(t, f.h, "no response_type", f.signedIn().authorize(q), "invalid_request")
}

func TestOIDCC_EnsureRedirectURIInAuthorizationRequest(t *testing.T) {
	f := newOP(t, nil)
	q := codeRequest("rp", "openid")
	q.Del("redirect_uri")
	errorPage(t, "no redirect_uri", f.signedIn().authorize(q))
}

func TestOIDCC_UnsignedRequestObjectRejectedAsUnsupported(t *testing.T) {
	f := newOP(t, nil)
	r := f.signedIn().authorize(codeRequest("rp", "openid", "request", "eyJhbGciOiJub25lIn0.eyJzY29wZSI6Im9wZW5pZCJ9."))
	errorBack(t, f.h, "request object", r, "request_not_supported")
}

func TestOIDCC_RequestURIRejectedAsUnsupported(t *testing.T) {
	f := newOP(t, nil)
	r := f.signedIn().authorize(codeRequest("rp", "openid", "request_uri", "https://rp.example/request.jwt"))
	errorBack(t, f.h, "request_uri", r, "request_uri_not_supported")
}
