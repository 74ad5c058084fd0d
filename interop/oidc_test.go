package interop_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/latchauth/latch/auth"
)

// rpSecret is the secret of the confidential relying parties (random:
// weak secrets are refused).
const rpSecret = "rp-Xb1nq0QyH6c2lUo8v3PZsW9aKjT4mEfRgDh7LtNwYiA"

// startRP serves, on 127.0.0.1, the handler that newRP makes for the
// address the browser sees: http://localhost:PORT, another site than the
// issuer (http://127.0.0.1:PORT), so the flow crosses sites as it does
// between real domains. Chromium resolves localhost to loopback itself.
func startRP(t *testing.T, newRP func(base string) (http.Handler, error)) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	base := "http://localhost:" + port
	h, err := newRP(base)
	if err != nil {
		srv.Listener.Close()
		t.Fatal(err)
	}
	srv.Config.Handler = h
	srv.Start()
	t.Cleanup(srv.Close)
	return base
}

// goRP is a relying party written the way the go-oidc and x/oauth2
// documentation show: discovery from the issuer URL, PKCE (S256), state
// and nonce in cookies, the id_token verified by go-oidc and its nonce
// checked, userinfo, and a refresh through a TokenSource. Its callback
// page shows what it verified, as JSON in <pre id="result">, or the
// failure in <pre id="rp-error">.
type goRP struct {
	provider *oidc.Provider
	config   oauth2.Config
	verifier *oidc.IDTokenVerifier
}

// rpResult is what the RP's callback verified.
type rpResult struct {
	Subject       string `json:"sub"`
	Email         string `json:"email"`
	EmailVerified bool   `json:"email_verified"`
	SID           string `json:"sid"`
	NonceChecked  bool   `json:"nonce_checked"`
	UserinfoSub   string `json:"userinfo_sub"`
	UserinfoEmail string `json:"userinfo_email"`
	// Refreshed: the refresh gave a new access token and an id_token that
	// verified, for the same subject.
	Refreshed        bool   `json:"refreshed"`
	RefreshedSubject string `json:"refreshed_sub"`
	RefreshedScope   string `json:"refreshed_scope"`
	HasRefreshToken  bool   `json:"has_refresh_token"`
}

func newGoRP(ctx context.Context, issuer, base, clientID, secret string, scopes ...string) (*goRP, error) {
	provider, err := oidc.NewProvider(ctx, issuer)
	if err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	return &goRP{
		provider: provider,
		config: oauth2.Config{
			ClientID:     clientID,
			ClientSecret: secret,
			Endpoint:     provider.Endpoint(),
			RedirectURL:  base + "/callback",
			Scopes:       append([]string{oidc.ScopeOpenID}, scopes...),
		},
		verifier: provider.Verifier(&oidc.Config{ClientID: clientID}),
	}, nil
}

func randomString() string {
	b := make([]byte, 24)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func setRPCookie(w http.ResponseWriter, name, value string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: 600, HttpOnly: true, SameSite: http.SameSiteLaxMode})
}

func (rp *goRP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/login":
		state, nonce, verifier := randomString(), randomString(), oauth2.GenerateVerifier()
		setRPCookie(w, "rp_state", state)
		setRPCookie(w, "rp_nonce", nonce)
		setRPCookie(w, "rp_verifier", verifier)
		opts := []oauth2.AuthCodeOption{oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)}
		if p := r.URL.Query().Get("prompt"); p != "" {
			opts = append(opts, oauth2.SetAuthURLParam("prompt", p))
		}
		http.Redirect(w, r, rp.config.AuthCodeURL(state, opts...), http.StatusFound)
	case "/callback":
		res, err := rp.callback(r)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			rpPage.Execute(w, map[string]any{"Error": err.Error()})
			return
		}
		raw, _ := json.Marshal(res)
		rpPage.Execute(w, map[string]any{"Result": string(raw)})
	default:
		http.NotFound(w, r)
	}
}

var rpPage = template.Must(template.New("rp").Parse(`<!doctype html><html><head><title>RP</title></head><body>
{{if .Error}}<h1>Sign-in failed</h1><pre id="rp-error">{{.Error}}</pre>{{else}}<h1>Signed in</h1><pre id="result">{{.Result}}</pre>{{end}}
</body></html>`))

func cookieValue(r *http.Request, name string) string {
	c, err := r.Cookie(name)
	if err != nil {
		return ""
	}
	return c.Value
}

func (rp *goRP) callback(r *http.Request) (*rpResult, error) {
	ctx := r.Context()
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		return nil, fmt.Errorf("authorization error %s: %s", e, q.Get("error_description"))
	}
	if state := cookieValue(r, "rp_state"); state == "" || q.Get("state") != state {
		return nil, errors.New("state does not match")
	}
	tok, err := rp.config.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(cookieValue(r, "rp_verifier")))
	if err != nil {
		return nil, fmt.Errorf("exchange: %w", err)
	}
	rawID, ok := tok.Extra("id_token").(string)
	if !ok {
		return nil, errors.New("no id_token in the token response")
	}
	idt, err := rp.verifier.Verify(ctx, rawID)
	if err != nil {
		return nil, fmt.Errorf("verify id_token: %w", err)
	}
	if nonce := cookieValue(r, "rp_nonce"); nonce == "" || idt.Nonce != nonce {
		return nil, fmt.Errorf("nonce %q does not match", idt.Nonce)
	}
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		return nil, fmt.Errorf("at_hash: %w", err)
	}
	var claims struct {
		Email         string `json:"email"`
		EmailVerified bool   `json:"email_verified"`
		SID           string `json:"sid"`
	}
	if err := idt.Claims(&claims); err != nil {
		return nil, fmt.Errorf("id_token claims: %w", err)
	}
	res := &rpResult{Subject: idt.Subject, Email: claims.Email, EmailVerified: claims.EmailVerified, SID: claims.SID,
		NonceChecked: true, HasRefreshToken: tok.RefreshToken != ""}

	ui, err := rp.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		return nil, fmt.Errorf("userinfo: %w", err)
	}
	res.UserinfoSub, res.UserinfoEmail = ui.Subject, ui.Email
	if tok.RefreshToken == "" {
		return res, nil
	}

	// A refresh as an RP does it: the TokenSource refreshes a token past
	// its expiry (forced here rather than waiting out the lifetime).
	expired := *tok
	expired.Expiry = time.Now().Add(-time.Minute)
	fresh, err := rp.config.TokenSource(ctx, &expired).Token()
	if err != nil {
		return nil, fmt.Errorf("refresh: %w", err)
	}
	if fresh.AccessToken == "" || fresh.AccessToken == tok.AccessToken {
		return nil, errors.New("the refresh gave no new access token")
	}
	if fresh.RefreshToken == "" || fresh.RefreshToken == tok.RefreshToken {
		return nil, errors.New("the refresh token was not rotated")
	}
	rawID, ok = fresh.Extra("id_token").(string)
	if !ok {
		return nil, errors.New("no id_token in the refresh response")
	}
	again, err := rp.verifier.Verify(ctx, rawID)
	if err != nil {
		return nil, fmt.Errorf("verify the refreshed id_token: %w", err)
	}
	if err := again.VerifyAccessToken(fresh.AccessToken); err != nil {
		return nil, fmt.Errorf("refreshed at_hash: %w", err)
	}
	ui, err = rp.provider.UserInfo(ctx, oauth2.StaticTokenSource(fresh))
	if err != nil {
		return nil, fmt.Errorf("userinfo with the refreshed token: %w", err)
	}
	if ui.Subject != again.Subject {
		return nil, fmt.Errorf("userinfo sub %q after the refresh, id_token sub %q", ui.Subject, again.Subject)
	}
	res.Refreshed, res.RefreshedSubject = true, again.Subject
	res.RefreshedScope, _ = fresh.Extra("scope").(string)
	return res, nil
}

// result waits for the RP's callback page and returns what it verified.
func (tb *tab) result() rpResult {
	tb.t.Helper()
	tb.waitJS("the RP's callback page", `document.getElementById('result') || document.getElementById('rp-error')`)
	var page struct{ Result, Error string }
	if err := tb.evalJSON(`({result: document.getElementById('result')?.textContent ?? '', error: document.getElementById('rp-error')?.textContent ?? ''})`, &page); err != nil {
		tb.t.Fatalf("read the RP's page: %v", err)
	}
	if page.Error != "" {
		tb.t.Fatalf("the RP failed: %s", page.Error)
	}
	var res rpResult
	if err := json.Unmarshal([]byte(page.Result), &res); err != nil {
		tb.t.Fatalf("RP result %q: %v", page.Result, err)
	}
	return res
}

// consent waits for Latch's consent page, checks that it names the client
// and the email, and allows.
func (tb *tab) consent(clientName, email, screenshot string) {
	tb.t.Helper()
	tb.waitJS("the consent page", `location.pathname === '/oauth2/authorize' && document.getElementById('allow') !== null`)
	var text string
	if err := tb.evalJSON(`document.querySelector('main').innerText`, &text); err != nil {
		tb.t.Fatal(err)
	}
	if !strings.Contains(text, clientName) || !strings.Contains(text, email) {
		tb.t.Errorf("the consent page does not name the client %q and the user %q:\n%s", clientName, email, text)
	}
	if screenshot != "" {
		tb.screenshot(screenshot)
	}
	tb.do("allow", chromedp.Click(chromedp.ID("allow")))
}

// TestGoOIDC: github.com/coreos/go-oidc/v3 with golang.org/x/oauth2, as
// their documentation shows them, sign a user in through Latch in a real
// browser. A confidential client (not first-party: consent) uses the code
// flow with PKCE, verifies the id_token and its nonce, reads userinfo and
// refreshes; then a public first-party client signs the same browser in
// with prompt=none, without a password, in the same SSO session.
func TestGoOIDC(t *testing.T) {
	l := start(t, "EdDSA")
	tb := startBrowser(t)
	ctx := t.Context()
	user, err := l.in.Store.UserByEmail(ctx, userEmail)
	if err != nil {
		t.Fatal(err)
	}

	dashURL := startRP(t, func(base string) (http.Handler, error) {
		return newGoRP(ctx, l.issuer, base, "dash", rpSecret, oidc.ScopeOfflineAccess, "email")
	})
	spaURL := startRP(t, func(base string) (http.Handler, error) {
		return newGoRP(ctx, l.issuer, base, "spa", "", "email")
	})
	if _, err := l.in.Auth.CreateClient(ctx, auth.NewClient{ID: "dash", Secret: rpSecret,
		RedirectURIs: []string{dashURL + "/callback"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.in.Auth.CreateClient(ctx, auth.NewClient{ID: "spa", Public: true, FirstParty: true,
		RedirectURIs: []string{spaURL + "/callback"}}); err != nil {
		t.Fatal(err)
	}

	// The RP sends the browser to Latch, which asks for a sign-in.
	tb.do("open the RP", chromedp.Navigate(dashURL+"/login"))
	tb.waitJS("Latch's sign-in page", `location.pathname === '/login' && document.getElementById('continue-note') !== null`)
	if got := tb.location(); !strings.HasPrefix(got, l.issuer+"/login?return_to=%2Foauth2%2Fauthorize") {
		t.Fatalf("the RP should lead to the sign-in page with a return_to, got %s", got)
	}
	tb.screenshot("oidc-go-login.png")
	tb.signIn(userEmail, userPassword)
	tb.consent("dash", userEmail, "oidc-go-consent.png")

	res := tb.result()
	t.Logf("confidential RP verified: %+v", res)
	if !strings.HasPrefix(tb.location(), dashURL+"/callback?") {
		t.Errorf("the result should be on the RP's callback, at %s", tb.location())
	}
	if res.Subject != user.ID || res.Email != userEmail || !res.NonceChecked || res.SID == "" {
		t.Errorf("id_token: %+v, want sub %s and email %s", res, user.ID, userEmail)
	}
	if res.UserinfoSub != res.Subject || res.UserinfoEmail != userEmail {
		t.Errorf("userinfo sub %q email %q, id_token sub %q", res.UserinfoSub, res.UserinfoEmail, res.Subject)
	}
	if !res.HasRefreshToken || !res.Refreshed || res.RefreshedSubject != res.Subject {
		t.Errorf("offline_access was granted: want a refresh that verifies, got %+v", res)
	}

	// Another RP, in the same browser: prompt=none answers from the SSO
	// session, without a page.
	tb.do("open the second RP", chromedp.Navigate(spaURL+"/login?prompt=none"))
	silent := tb.result()
	t.Logf("public RP, prompt=none: %+v", silent)
	if silent.Subject != user.ID || silent.SID != res.SID || silent.UserinfoSub != user.ID || silent.Email != userEmail {
		t.Errorf("prompt=none: %+v, want sub %s in SSO session %s", silent, user.ID, res.SID)
	}
	if !silent.HasRefreshToken || !silent.Refreshed || silent.RefreshedSubject != user.ID {
		t.Errorf("a first-party client gets a refresh token: want a refresh that verifies, got %+v", silent)
	}
}

// TestOpenIDClientCodeFlow: openid-client (npm), unmodified, is the
// relying party of a real sign-in (js/oidc.test.mjs serves it on
// 127.0.0.1): discovery, PKCE (S256), state and nonce, the code exchange
// with its id_token validation, userinfo, a refresh, and RP-initiated
// logout through buildEndSessionUrl, after which userinfo refuses the
// access tokens. This side drives Chromium through Latch's sign-in and
// consent pages and the RP's sign-out link; the JavaScript side asserts
// what the library saw.
func TestOpenIDClientCodeFlow(t *testing.T) {
	requireNode(t)
	l := start(t, "EdDSA")
	tb := startBrowser(t)
	user, err := l.in.Store.UserByEmail(t.Context(), userEmail)
	if err != nil {
		t.Fatal(err)
	}

	// The RP announces its address; the client is registered for it.
	const clientID = "node-rp"
	bases := make(chan string, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /rp", func(w http.ResponseWriter, r *http.Request) {
		var in struct{ Base string }
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil || !strings.HasPrefix(in.Base, "http://localhost:") {
			http.Error(w, fmt.Sprintf("bad RP address %q (%v)", in.Base, err), http.StatusBadRequest)
			return
		}
		if _, err := l.in.Auth.CreateClient(r.Context(), auth.NewClient{ID: clientID, Secret: rpSecret,
			RedirectURIs: []string{in.Base + "/callback"}, PostLogoutRedirectURIs: []string{in.Base + "/bye"}}); err != nil {
			http.Error(w, err.Error(), http.StatusConflict)
			return
		}
		select {
		case bases <- in.Base:
		default:
			http.Error(w, "the RP announced itself twice", http.StatusConflict)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	ctl := httptest.NewServer(mux)
	t.Cleanup(ctl.Close)

	node := startNode(t, map[string]string{
		"LATCH_ISSUER":           l.issuer,
		"LATCH_RP_CLIENT_ID":     clientID,
		"LATCH_RP_CLIENT_SECRET": rpSecret,
		"LATCH_CONTROL":          ctl.URL,
	}, "oidc.test.mjs")
	var base string
	select {
	case base = <-bases:
	case <-node.done:
		node.wait()
		t.Fatal("node ended before its RP announced itself")
	case <-time.After(nodeTimeout):
		t.Fatalf("the RP did not announce itself within %s", nodeTimeout)
	}

	tb.do("open the RP", chromedp.Navigate(base+"/login"))
	tb.waitJS("Latch's sign-in page", `location.pathname === '/login' && document.getElementById('continue-note') !== null`)
	tb.screenshot("oidc-node-login.png")
	tb.signIn(userEmail, userPassword)
	tb.consent(clientID, userEmail, "oidc-node-consent.png")

	tb.waitJS("the RP's callback page", `document.getElementById('result') || document.getElementById('rp-error')`)
	var signedIn struct {
		Sub, Email, SID string
		UserinfoSub     string `json:"userinfo_sub"`
	}
	tb.readPre("result", &signedIn)
	if signedIn.Sub != user.ID || signedIn.UserinfoSub != user.ID || signedIn.Email != userEmail || signedIn.SID == "" {
		t.Errorf("the RP saw %+v, want sub %s", signedIn, user.ID)
	}

	tb.do("sign out at the RP", chromedp.Click(chromedp.ID("logout")))
	tb.waitJS("the RP's post-logout page", `document.getElementById('bye') || document.getElementById('rp-error')`)
	var bye struct {
		State    string
		Userinfo []any
	}
	tb.readPre("bye", &bye)
	if got := tb.location(); !strings.HasPrefix(got, base+"/bye?state=") || bye.State == "" {
		t.Errorf("after logout the browser is at %s (state %q), want the RP's post-logout URI with the state", got, bye.State)
	}
	node.wait()
}

// readPre decodes the JSON in <pre id=id> of an RP's page, or fails with
// the RP's error page.
func (tb *tab) readPre(id string, v any) {
	tb.t.Helper()
	var page struct{ Text, Error string }
	if err := tb.evalJSON(`({text: document.getElementById('`+id+`')?.textContent ?? '', error: document.getElementById('rp-error')?.textContent ?? ''})`, &page); err != nil {
		tb.t.Fatalf("read the RP's page: %v", err)
	}
	if page.Error != "" {
		tb.t.Fatalf("the RP failed: %s", page.Error)
	}
	if err := json.Unmarshal([]byte(page.Text), v); err != nil {
		tb.t.Fatalf("RP page %q: %v", page.Text, err)
	}
}
