package cluster_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latchauth/latch/auth"
)

// TestOIDCAcrossInstances runs the OpenID Connect code flow over three
// `latch serve` processes on one PostgreSQL schema and one Redis, each
// step on another instance than the one before: sign in on A, authorize
// on B, consent on A, exchange the code on C, userinfo on A, refresh on B.
// A replay of the code on A revokes what it issued, and every instance
// refuses those tokens within propagationBound. RP-initiated logout on C
// ends the SSO session for all of them: prompt=none on A and B then
// answers login_required, even with the old cookie.
func TestOIDCAcrossInstances(t *testing.T) {
	c := newCluster(t, options{})
	c.addUser(email, password)
	a, b, d := c.nodes[0], c.nodes[1], c.nodes[2]
	const (
		redirect = "https://dash.example/cb"
		bye      = "https://dash.example/bye"
	)
	secret := c.addRP("dash", redirect, bye)

	br := c.browser()
	br.signIn(a)
	ssoCookie := br.cookie(a, "latch_sso")
	if ssoCookie == "" {
		t.Fatalf("sign-in on %s set no latch_sso cookie", a.name)
	}
	for _, n := range c.nodes {
		if got := br.cookie(n, "latch_sso"); got != ssoCookie {
			t.Fatalf("the browser would not send the SSO cookie to %s", n.name)
		}
	}

	// Authorize on B: the SSO session started on A is known there, so the
	// answer is the consent page, not the sign-in page.
	verifier, challenge := pkce("cluster")
	q := url.Values{"client_id": {"dash"}, "redirect_uri": {redirect}, "response_type": {"code"},
		"scope": {"openid email offline_access"}, "state": {"st-1"}, "nonce": {"n-1"},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"}}
	r := br.get(b, "/oauth2/authorize?"+q.Encode())
	if r.code != http.StatusOK || !strings.Contains(r.body, "consent_token") {
		t.Fatalf("authorize on %s with the SSO cookie from %s: want the consent page, got %d %q %.300s", b.name, a.name, r.code, r.location, r.body)
	}
	// The consent form's token is a MAC under the shared KEK: posting it to
	// another instance (a load balancer may) works.
	form := hiddenInputs(t, r.body)
	form.Set("decision", "allow")
	cb := callback(t, br.postForm(a, "/oauth2/consent", form))
	code := cb.Get("code")
	if code == "" || cb.Get("state") != "st-1" || cb.Get("iss") != issuer {
		t.Fatalf("callback from %s: %v", a.name, cb)
	}

	// Exchange on C.
	tok := c.token(d, "dash", secret, url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {redirect}, "code_verifier": {verifier}})
	if tok.code != http.StatusOK || tok.str("access_token") == "" || tok.str("refresh_token") == "" || tok.str("id_token") == "" {
		t.Fatalf("code exchange on %s: %s", d.name, tok)
	}
	id := claims(t, tok.str("id_token"))
	sid, _ := id["sid"].(string)
	if id["iss"] != issuer || id["aud"] != "dash" || id["nonce"] != "n-1" || sid == "" || id["email"] != email || id["at_hash"] == nil {
		t.Fatalf("id_token claims from %s: %v", d.name, id)
	}
	first := tok.str("access_token")

	// Userinfo on A.
	ui := c.userinfo(a, first)
	if ui.code != http.StatusOK || ui.str("sub") != id["sub"] || ui.str("email") != email {
		t.Fatalf("userinfo on %s: %s", a.name, ui)
	}

	// Refresh on B: a rotated refresh token, a new access token and an
	// id_token of the same SSO session.
	ref := c.token(b, "dash", secret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.str("refresh_token")}})
	if ref.code != http.StatusOK || ref.str("access_token") == "" || ref.str("refresh_token") == "" || ref.str("refresh_token") == tok.str("refresh_token") {
		t.Fatalf("refresh on %s: %s", b.name, ref)
	}
	if rid := claims(t, ref.str("id_token")); rid["sid"] != sid || rid["sub"] != id["sub"] {
		t.Fatalf("id_token of the refresh on %s: %v (want sid %s)", b.name, rid, sid)
	}
	second := ref.str("access_token")
	for _, n := range c.nodes {
		if ui := c.userinfo(n, second); ui.code != http.StatusOK {
			t.Fatalf("userinfo on %s with the refreshed token: %s", n.name, ui)
		}
	}

	// The code again, on A: refused, and everything it issued — the
	// refreshed tokens included — is revoked on every instance.
	again := c.token(a, "dash", secret, url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {redirect}, "code_verifier": {verifier}})
	if again.code != http.StatusBadRequest || again.str("error") != "invalid_grant" {
		t.Fatalf("code replay on %s: %s", a.name, again)
	}
	at := time.Now()
	for _, n := range c.nodes {
		c.waitUserinfoRejected(n, first, at, propagationBound)
		c.waitUserinfoRejected(n, second, at, propagationBound)
	}
	for _, n := range c.nodes {
		if r := c.token(n, "dash", secret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {ref.str("refresh_token")}}); r.code != http.StatusBadRequest || r.str("error") != "invalid_grant" {
			t.Fatalf("refresh token of a replayed code on %s: %s", n.name, r)
		}
	}

	// The SSO session outlives the revoked grant: prompt=none on C issues
	// a code at once (consent is remembered), exchanged on A.
	q2 := url.Values{"client_id": {"dash"}, "redirect_uri": {redirect}, "response_type": {"code"},
		"scope": {"openid email"}, "state": {"st-2"}, "nonce": {"n-2"}, "prompt": {"none"}}
	cb = callback(t, br.get(d, "/oauth2/authorize?"+q2.Encode()))
	if cb.Get("code") == "" || cb.Get("state") != "st-2" {
		t.Fatalf("prompt=none on %s with a live SSO session: %v", d.name, cb)
	}
	tok2 := c.token(a, "dash", secret, url.Values{"grant_type": {"authorization_code"}, "code": {cb.Get("code")}, "redirect_uri": {redirect}})
	if tok2.code != http.StatusOK || tok2.str("id_token") == "" {
		t.Fatalf("second code exchange on %s: %s", a.name, tok2)
	}
	if id2 := claims(t, tok2.str("id_token")); id2["sid"] != sid {
		t.Fatalf("second id_token: sid %v, want %s", id2["sid"], sid)
	}
	for _, n := range c.nodes {
		if ui := c.userinfo(n, tok2.str("access_token")); ui.code != http.StatusOK {
			t.Fatalf("userinfo on %s with the second grant's token: %s", n.name, ui)
		}
	}

	// RP-initiated logout on C ends the SSO session: the second grant's
	// token is refused everywhere, and no instance answers prompt=none
	// with a code, not even to the cookie the browser had.
	lo := br.get(d, "/oauth2/logout?"+url.Values{"id_token_hint": {tok2.str("id_token")}, "post_logout_redirect_uri": {bye}, "state": {"s-out"}}.Encode())
	if lo.code != http.StatusSeeOther || lo.location != bye+"?state=s-out" {
		t.Fatalf("logout on %s: %d %q %.300s", d.name, lo.code, lo.location, lo.body)
	}
	at = time.Now()
	for _, n := range c.nodes {
		c.waitUserinfoRejected(n, tok2.str("access_token"), at, propagationBound)
	}
	old := c.browser()
	old.setCookie(a, "latch_sso", ssoCookie)
	q2.Set("state", "st-3")
	for _, n := range []*node{a, b} {
		r := old.get(n, "/oauth2/authorize?"+q2.Encode())
		cb := callback(t, r)
		if cb.Get("error") != "login_required" || cb.Get("code") != "" || cb.Get("state") != "st-3" {
			t.Fatalf("prompt=none on %s after logout on %s, with the old SSO cookie: %q", n.name, d.name, r.location)
		}
	}
	c.no500s()
}

// addRP registers a confidential relying party through the CLI, as an
// operator would, and returns its generated secret.
func (c *cluster) addRP(id, redirect, postLogout string) string {
	c.t.Helper()
	out, err := c.run("", "client", "add", "--data-dir", filepath.Join(c.t.TempDir(), "cli"), "--id", id, "--generate-secret",
		"--redirect-uri", redirect, "--post-logout-redirect-uri", postLogout)
	if err != nil {
		c.t.Fatalf("latch client add: %v\n%s", err, out)
	}
	const prefix = "client secret (shown once, store it now): "
	for line := range strings.SplitSeq(out, "\n") {
		if s, ok := strings.CutPrefix(line, prefix); ok {
			return strings.TrimSpace(s)
		}
	}
	c.t.Fatalf("latch client add printed no secret:\n%s", out)
	return ""
}

// token posts a form to n's token endpoint as client id, authenticated by
// client_secret_basic.
func (c *cluster) token(n *node, id, secret string, form url.Values) reply {
	c.t.Helper()
	req, err := http.NewRequest(http.MethodPost, n.base+"/oauth2/token", strings.NewReader(form.Encode()))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	res, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("token endpoint of %s: %v", n.name, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		c.t.Fatalf("token endpoint of %s: %v", n.name, err)
	}
	r := reply{code: res.StatusCode, header: res.Header, raw: raw}
	if err := json.Unmarshal(raw, &r.body); err != nil {
		c.t.Fatalf("token endpoint of %s answered %d with a body that is not JSON: %q", n.name, res.StatusCode, raw)
	}
	return r
}

// userinfo asks n's UserInfo endpoint with the access token.
func (c *cluster) userinfo(n *node, at string) reply {
	c.t.Helper()
	return c.must(n, "GET", "/oauth2/userinfo", nil, bearer(at)...)
}

// waitUserinfoRejected polls n's UserInfo endpoint until it refuses the
// access token (401), and fails the test if that takes longer than within
// after since.
func (c *cluster) waitUserinfoRejected(n *node, at string, since time.Time, within time.Duration) {
	c.t.Helper()
	for {
		r := c.userinfo(n, at)
		if r.code == http.StatusUnauthorized {
			return
		}
		if r.code != http.StatusOK {
			c.t.Fatalf("userinfo on %s while waiting for a revocation: %s", n.name, r)
		}
		if time.Since(since) > within {
			c.t.Fatalf("%s still answers userinfo for a revoked access token %v after the revocation (bound %v)",
				n.name, time.Since(since).Round(time.Millisecond), within)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// browser is a user agent with a cookie jar that does not follow
// redirects. Browsers reach a cluster through one host name (a load
// balancer's); here the instances share the host 127.0.0.1 and differ by
// port, and cookies are not scoped to a port (RFC 6265 §8.5), so one jar
// sends the host-only SSO cookie to every instance, as that load balancer
// would.
type browser struct {
	c  *cluster
	hc *http.Client
}

func (c *cluster) browser() *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		c.t.Fatal(err)
	}
	return &browser{c: c, hc: &http.Client{Jar: jar, Transport: c.http.Transport, Timeout: c.http.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// hop is one response the browser got.
type hop struct {
	code     int
	location string
	body     string
}

func (br *browser) do(n *node, req *http.Request) hop {
	br.c.t.Helper()
	res, err := br.hc.Do(req)
	if err != nil {
		br.c.t.Fatalf("%s %s on %s: %v", req.Method, req.URL.Path, n.name, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		br.c.t.Fatalf("%s %s on %s: %v", req.Method, req.URL.Path, n.name, err)
	}
	return hop{code: res.StatusCode, location: res.Header.Get("Location"), body: string(body)}
}

func (br *browser) get(n *node, path string) hop {
	br.c.t.Helper()
	req, err := http.NewRequest(http.MethodGet, n.base+path, nil)
	if err != nil {
		br.c.t.Fatal(err)
	}
	return br.do(n, req)
}

func (br *browser) postForm(n *node, path string, form url.Values) hop {
	br.c.t.Helper()
	req, err := http.NewRequest(http.MethodPost, n.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		br.c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return br.do(n, req)
}

// signIn signs in on Latch's own sign-in page's API (the account client),
// which starts the SSO session and sets its cookie.
func (br *browser) signIn(n *node) {
	br.c.t.Helper()
	body, _ := json.Marshal(map[string]string{"email": email, "password": password, "client_id": auth.AccountClientID})
	req, err := http.NewRequest(http.MethodPost, n.base+"/v1/auth/login", strings.NewReader(string(body)))
	if err != nil {
		br.c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if r := br.do(n, req); r.code != http.StatusOK {
		br.c.t.Fatalf("sign-in on %s: %d %s", n.name, r.code, r.body)
	}
}

// cookie is the value of the named cookie the browser would send to n.
func (br *browser) cookie(n *node, name string) string {
	u, _ := url.Parse(n.base + "/")
	for _, ck := range br.hc.Jar.Cookies(u) {
		if ck.Name == name {
			return ck.Value
		}
	}
	return ""
}

func (br *browser) setCookie(n *node, name, value string) {
	u, _ := url.Parse(n.base + "/")
	br.hc.Jar.SetCookies(u, []*http.Cookie{{Name: name, Value: value, Path: "/"}})
}

// callback reads the parameters the provider sent to the client's
// redirect URI (a 303).
func callback(t *testing.T, r hop) url.Values {
	t.Helper()
	if r.code != http.StatusSeeOther {
		t.Fatalf("want a 303 to the client, got %d %q %.300s", r.code, r.location, r.body)
	}
	u, err := url.Parse(r.location)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

// pkce returns a verifier made from seed and its S256 challenge.
func pkce(seed string) (verifier, challenge string) {
	verifier = strings.Repeat(seed, 64)[:64]
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

// claims decodes a JWT's payload (the signature is the instances' business;
// this test is about where each step runs).
func claims(t *testing.T, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("a JWT has 3 parts, this one %d", len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("JWT payload: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("JWT payload: %v", err)
	}
	return m
}

// hiddenInputs reads the hidden inputs of a rendered form.
func hiddenInputs(t *testing.T, page string) url.Values {
	t.Helper()
	out := url.Values{}
	for _, part := range strings.Split(page, "<input")[1:] {
		end := strings.Index(part, ">")
		if end < 0 {
			continue
		}
		tag := part[:end]
		if strings.Contains(tag, `type="hidden"`) {
			out.Set(attr(tag, "name"), attr(tag, "value"))
		}
	}
	if len(out) == 0 {
		t.Fatalf("no hidden inputs in %.500s", page)
	}
	return out
}

func attr(tag, name string) string {
	i := strings.Index(tag, name+`="`)
	if i < 0 {
		return ""
	}
	v := tag[i+len(name)+2:]
	if j := strings.Index(v, `"`); j >= 0 {
		v = v[:j]
	}
	return strings.NewReplacer("&amp;", "&", "&lt;", "<", "&gt;", ">", "&#34;", `"`, "&#39;", "'", "&quot;", `"`, "&#43;", "+").Replace(v)
}
