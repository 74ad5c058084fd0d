// Command sso is a small web app that signs its users in with Latch over
// OpenID Connect: a confidential relying party with its own session cookie
// on its own host. Run it twice, as app A and app B on two host names, to
// see single sign-on across domains: sign in on A, open B, and B is signed
// in without a password; sign out on B, and A's session ends through
// back-channel logout. See README.md beside it.
//
// It uses only the standard RP libraries, golang.org/x/oauth2 and
// github.com/coreos/go-oidc/v3: the authorization-code flow with PKCE,
// state and nonce, RP-initiated logout, and a back-channel logout endpoint.
package main

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"flag"
	"fmt"
	"html/template"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

func main() {
	name := flag.String("name", "App A", "the app's name, shown on its page")
	addr := flag.String("addr", "127.0.0.1:9001", "address to listen on")
	host := flag.String("host", "app-a.localhost", "host name the browser uses for this app (its cookie's host)")
	issuer := flag.String("issuer", "http://localhost:8080", "Latch's issuer URL")
	clientID := flag.String("client-id", "app-a", "the client id registered at Latch")
	flag.Parse()
	secret := os.Getenv("LATCH_CLIENT_SECRET")
	if secret == "" {
		log.Fatal("set LATCH_CLIENT_SECRET to the client's secret (latch client add --generate-secret prints it)")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	// The port is the listener's, so that -addr 127.0.0.1:0 works too.
	base := "http://" + net.JoinHostPort(*host, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
	a, err := newApp(ctx, *name, base, *issuer, *clientID, secret)
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: a.routes(), ReadHeaderTimeout: 5 * time.Second}
	go func() { <-ctx.Done(); srv.Shutdown(context.Background()) }()
	log.Printf("listening on %s, serving %s at %s (issuer %s)", ln.Addr(), *name, base, *issuer)
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}

// app is one relying party.
type app struct {
	name, base string
	issuer     string
	provider   *oidc.Provider
	oauth      oauth2.Config
	ids        *oidc.IDTokenVerifier // id_tokens
	logouts    *oidc.IDTokenVerifier // logout tokens: same keys, issuer and audience
	endSession string                // the provider's end_session_endpoint
	cookie     string                // name of the session cookie

	mu       sync.Mutex
	sessions map[string]*session  // by local session id
	pending  map[string]*pending  // sign-ins under way, by state
	seen     map[string]time.Time // logout token jtis, until they expire
	now      func() time.Time
}

// session is a signed-in browser of this app.
type session struct {
	Subject, Email string
	SID            string // the provider's SSO session (the id_token's sid)
	IDToken        string // for id_token_hint at logout
}

// pending is a sign-in under way: what the callback must check.
type pending struct {
	nonce, verifier string
	expires         time.Time
}

// newApp discovers the provider from its issuer URL alone.
func newApp(ctx context.Context, name, base, issuer, clientID, secret string) (*app, error) {
	p, err := oidc.NewProvider(ctx, issuer)
	if err != nil {
		return nil, fmt.Errorf("discover %s: %w", issuer, err)
	}
	var meta struct {
		EndSession string `json:"end_session_endpoint"`
	}
	if err := p.Claims(&meta); err != nil {
		return nil, fmt.Errorf("read discovery: %w", err)
	}
	return &app{
		name: name, base: base, issuer: issuer, provider: p, endSession: meta.EndSession,
		oauth: oauth2.Config{
			ClientID: clientID, ClientSecret: secret, Endpoint: p.Endpoint(),
			RedirectURL: base + "/callback",
			Scopes:      []string{oidc.ScopeOpenID, "email"},
		},
		ids:      p.Verifier(&oidc.Config{ClientID: clientID}),
		logouts:  p.Verifier(&oidc.Config{ClientID: clientID}),
		cookie:   "sso_example_" + clientID,
		sessions: map[string]*session{}, pending: map[string]*pending{}, seen: map[string]time.Time{},
		now: time.Now,
	}, nil
}

func (a *app) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", a.home)
	mux.HandleFunc("GET /session", a.sessionState)
	mux.HandleFunc("GET /login", a.login)
	mux.HandleFunc("GET /callback", a.callback)
	mux.HandleFunc("POST /logout", a.logout)
	mux.HandleFunc("GET /signed-out", a.signedOut)
	mux.HandleFunc("POST /backchannel-logout", a.backchannelLogout)
	return mux
}

// random returns 32 random bytes, base64url.
func random() string { return rand.Text() + rand.Text() }

// current returns the browser's session, or nil.
func (a *app) current(r *http.Request) (string, *session) {
	c, err := r.Cookie(a.cookie)
	if err != nil {
		return "", nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return c.Value, a.sessions[c.Value]
}

func (a *app) setCookie(w http.ResponseWriter, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteLaxMode})
}

// home shows who is signed in. A browser without a session first tries a
// silent sign-in (prompt=none) once: if it is signed in at Latch, it comes
// back signed in here without seeing a page.
func (a *app) home(w http.ResponseWriter, r *http.Request) {
	_, s := a.current(r)
	if s == nil && r.URL.Query().Get("silent") == "" {
		if _, err := r.Cookie(a.cookie + "_tried"); err != nil {
			http.Redirect(w, r, "/login?prompt=none", http.StatusSeeOther)
			return
		}
	}
	a.page(w, http.StatusOK, view{Session: s, Notice: r.URL.Query().Get("notice")})
}

// sessionState answers 200 while the browser's session lives, 401 after:
// the signed-in page polls it and reloads when a back-channel logout ended
// the session.
func (a *app) sessionState(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if _, s := a.current(r); s == nil {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// login starts the authorization-code flow: state against CSRF, nonce
// against id_token replay, PKCE (S256) against code interception.
func (a *app) login(w http.ResponseWriter, r *http.Request) {
	state, nonce, verifier := random(), random(), oauth2.GenerateVerifier()
	a.mu.Lock()
	for k, p := range a.pending {
		if a.now().After(p.expires) {
			delete(a.pending, k)
		}
	}
	a.pending[state] = &pending{nonce: nonce, verifier: verifier, expires: a.now().Add(10 * time.Minute)}
	a.mu.Unlock()
	// The state is also bound to this browser: the callback must come
	// from the browser that started the sign-in.
	a.setCookie(w, a.cookie+"_state", state, 600)
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce)}
	if r.URL.Query().Get("prompt") == "none" {
		a.setCookie(w, a.cookie+"_tried", "1", 0)
		opts = append(opts, oauth2.SetAuthURLParam("prompt", "none"))
	}
	http.Redirect(w, r, a.oauth.AuthCodeURL(state, opts...), http.StatusSeeOther)
}

// callback finishes the flow: it checks state and iss (RFC 9207, against
// mix-up), redeems the code with the PKCE verifier, verifies the id_token
// (signature, iss, aud, exp, nonce, at_hash) and starts a local session.
func (a *app) callback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	c, err := r.Cookie(a.cookie + "_state")
	state := q.Get("state")
	if err != nil || state == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(state)) != 1 {
		a.fail(w, http.StatusBadRequest, "This sign-in was not started here, or it took too long. Try again.")
		return
	}
	a.setCookie(w, a.cookie+"_state", "", -1)
	a.mu.Lock()
	p := a.pending[state]
	delete(a.pending, state)
	a.mu.Unlock()
	if p == nil || a.now().After(p.expires) {
		a.fail(w, http.StatusBadRequest, "This sign-in expired. Try again.")
		return
	}
	// The provider sends iss with every answer (RFC 9207, advertised in
	// discovery): an answer without it, or from another issuer, is refused.
	if subtle.ConstantTimeCompare([]byte(q.Get("iss")), []byte(a.issuer)) != 1 {
		a.fail(w, http.StatusBadRequest, "The answer came from another sign-in service.")
		return
	}
	switch e := q.Get("error"); e {
	case "":
	case "login_required", "consent_required", "interaction_required":
		// The silent attempt: not signed in at Latch (or not yet approved).
		http.Redirect(w, r, "/?silent=done", http.StatusSeeOther)
		return
	default:
		a.fail(w, http.StatusBadRequest, "Signing in failed: "+e+" ("+q.Get("error_description")+").")
		return
	}
	tok, err := a.oauth.Exchange(r.Context(), q.Get("code"), oauth2.VerifierOption(p.verifier))
	if err != nil {
		log.Printf("code exchange: %v", err)
		a.fail(w, http.StatusBadGateway, "Signing in failed at the code exchange.")
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	id, err := a.ids.Verify(r.Context(), raw)
	if err != nil {
		log.Printf("id_token: %v", err)
		a.fail(w, http.StatusBadGateway, "The sign-in service's answer did not verify.")
		return
	}
	if subtle.ConstantTimeCompare([]byte(id.Nonce), []byte(p.nonce)) != 1 {
		a.fail(w, http.StatusBadRequest, "The sign-in answer was meant for another request.")
		return
	}
	if err := id.VerifyAccessToken(tok.AccessToken); err != nil {
		a.fail(w, http.StatusBadGateway, "The access token does not belong to the id_token.")
		return
	}
	var claims struct {
		SID string `json:"sid"`
	}
	if err := id.Claims(&claims); err != nil || claims.SID == "" {
		a.fail(w, http.StatusBadGateway, "The id_token names no session (sid), so logout could not reach this app.")
		return
	}
	// The userinfo endpoint, with the access token: the email.
	info, err := a.provider.UserInfo(r.Context(), oauth2.StaticTokenSource(tok))
	if err != nil || info.Subject != id.Subject {
		log.Printf("userinfo: %v", err)
		a.fail(w, http.StatusBadGateway, "The sign-in service's userinfo did not answer for this user.")
		return
	}
	sessionID := random()
	a.mu.Lock()
	a.sessions[sessionID] = &session{Subject: id.Subject, Email: info.Email, SID: claims.SID, IDToken: raw}
	a.mu.Unlock()
	a.setCookie(w, a.cookie, sessionID, 0)
	a.setCookie(w, a.cookie+"_tried", "", -1)
	log.Printf("%s: signed in sub=%s sid=%s", a.name, id.Subject, claims.SID)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// logout ends the local session and sends the browser to the provider's
// end_session_endpoint (RP-initiated logout), which ends the SSO session
// and tells every other app by back-channel logout.
func (a *app) logout(w http.ResponseWriter, r *http.Request) {
	if o := r.Header.Get("Origin"); o != "" && o != a.base {
		a.fail(w, http.StatusForbidden, "Signing out is only possible from this app's own page.")
		return
	}
	id, s := a.current(r)
	a.setCookie(w, a.cookie, "", -1)
	if s == nil {
		http.Redirect(w, r, "/signed-out", http.StatusSeeOther)
		return
	}
	a.mu.Lock()
	delete(a.sessions, id)
	a.mu.Unlock()
	state := random()
	a.setCookie(w, a.cookie+"_logout", state, 600)
	q := url.Values{"id_token_hint": {s.IDToken}, "post_logout_redirect_uri": {a.base + "/signed-out"}, "state": {state}}
	http.Redirect(w, r, a.endSession+"?"+q.Encode(), http.StatusSeeOther)
}

// signedOut is the post_logout_redirect_uri.
func (a *app) signedOut(w http.ResponseWriter, r *http.Request) {
	notice := "You are signed out."
	if c, err := r.Cookie(a.cookie + "_logout"); err == nil && subtle.ConstantTimeCompare([]byte(c.Value), []byte(r.URL.Query().Get("state"))) == 1 {
		notice = "You are signed out, here and at every app of this sign-in."
	}
	a.setCookie(w, a.cookie+"_logout", "", -1)
	a.setCookie(w, a.cookie+"_tried", "1", 0)
	a.page(w, http.StatusOK, view{Notice: notice})
}

func (a *app) fail(w http.ResponseWriter, status int, msg string) {
	a.page(w, status, view{Error: msg})
}

// view is what the page shows.
type view struct {
	Name, Base    string
	Session       *session
	Notice, Error string
}

func (a *app) page(w http.ResponseWriter, status int, v view) {
	v.Name, v.Base = a.name, a.base
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; form-action 'self' "+a.provider.Endpoint().AuthURL)
	w.WriteHeader(status)
	if err := pageTemplate.Execute(w, v); err != nil {
		log.Printf("page: %v", err)
	}
}

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Name}}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body { font: 16px/1.5 system-ui, sans-serif; margin: 0; background: #f5f6f8; color: #1d2330; }
header { padding: 1rem 2rem; color: #fff; background: {{if eq .Name "App B"}}#7b3fa0{{else}}#1f6f8b{{end}}; }
main { max-width: 40rem; margin: 2rem auto; padding: 2rem; background: #fff; border-radius: 8px; box-shadow: 0 1px 3px #0002; }
button, a.button { font: inherit; padding: .5rem 1rem; border: 0; border-radius: 6px; background: #1d2330; color: #fff; cursor: pointer; text-decoration: none; }
dt { font-weight: 600; } dd { margin: 0 0 .5rem; font-family: ui-monospace, monospace; word-break: break-all; }
.notice { color: #2a6a2a; } .error { color: #a02020; }
</style></head>
<body><header><h1>{{.Name}}</h1><div>{{.Base}}</div></header>
<main>
{{if .Error}}<p class="error" id="error">{{.Error}}</p>{{end}}
{{if .Notice}}<p class="notice" id="notice">{{.Notice}}</p>{{end}}
{{with .Session}}
<p id="status" data-state="signed-in">Signed in as <strong id="email">{{.Email}}</strong></p>
<dl><dt>sub</dt><dd id="sub">{{.Subject}}</dd><dt>sid (Latch's SSO session)</dt><dd id="sid">{{.SID}}</dd></dl>
<form method="post" action="/logout"><button id="logout" type="submit">Sign out</button></form>
<script>
// A back-channel logout ends this session on the server; show it.
setInterval(async () => {
  try { if ((await fetch('/session', {cache: 'no-store'})).status === 401) location.assign('/?silent=done'); } catch {}
}, 1000);
</script>
{{else}}
<p id="status" data-state="signed-out">Not signed in.</p>
<p><a class="button" id="login" href="/login">Sign in with Latch</a></p>
{{end}}
</main></body></html>
`))
