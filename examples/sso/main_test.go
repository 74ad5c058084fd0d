package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// provider is a stand-in OpenID Provider on 127.0.0.1: discovery, JWKS, a
// token endpoint answering with the id_token the test chose, userinfo.
type provider struct {
	t    *testing.T
	srv  *httptest.Server
	key  *rsa.PrivateKey
	mu   sync.Mutex
	idFn func(accessToken string) map[string]any // claims of the next id_token
}

func newProvider(t *testing.T) *provider {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p := &provider{t: t, key: key}
	mux := http.NewServeMux()
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	iss := p.srv.URL
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{
			"issuer": iss, "authorization_endpoint": iss + "/oauth2/authorize", "token_endpoint": iss + "/oauth2/token",
			"jwks_uri": iss + "/jwks", "userinfo_endpoint": iss + "/userinfo", "end_session_endpoint": iss + "/oauth2/logout",
			"id_token_signing_alg_values_supported": []string{"RS256"},
		})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	})
	mux.HandleFunc("POST /oauth2/token", func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		claims := p.idFn("at-1")
		p.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"access_token": "at-1", "token_type": "Bearer", "expires_in": 300,
			"id_token": p.sign(p.key, "JWT", claims)})
	})
	mux.HandleFunc("GET /userinfo", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"sub": "u1", "email": "ada@example.com"})
	})
	return p
}

// sign makes a JWS of claims with key and typ.
func (p *provider) sign(key *rsa.PrivateKey, typ string, claims map[string]any) string {
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key},
		(&jose.SignerOptions{}).WithType(jose.ContentType(typ)).WithHeader("kid", "k1"))
	if err != nil {
		p.t.Fatal(err)
	}
	b, _ := json.Marshal(claims)
	obj, err := s.Sign(b)
	if err != nil {
		p.t.Fatal(err)
	}
	out, err := obj.CompactSerialize()
	if err != nil {
		p.t.Fatal(err)
	}
	return out
}

// testApp is the app against p, with one session of sid "sso_1".
func testApp(t *testing.T, p *provider) *app {
	a, err := newApp(t.Context(), "App A", "http://app-a.localhost:9001", p.srv.URL, "app-a", "secret")
	if err != nil {
		t.Fatal(err)
	}
	a.sessions["s1"] = &session{Subject: "u1", SID: "sso_1"}
	return a
}

func (p *provider) logoutClaims() map[string]any {
	now := time.Now()
	return map[string]any{
		"iss": p.srv.URL, "aud": "app-a", "iat": now.Unix(), "exp": now.Add(2 * time.Minute).Unix(),
		"jti": rand.Text(), "sub": "u1", "sid": "sso_1",
		"events": map[string]any{eventLogout: map[string]any{}},
	}
}

func postLogout(a *app, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("POST", "/backchannel-logout", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	a.routes().ServeHTTP(w, r)
	return w
}

// TestBackchannelLogout: a valid logout token ends the sessions of its
// sid; each check of §2.6 refuses a token that fails it, and the session
// lives on.
func TestBackchannelLogout(t *testing.T) {
	p := newProvider(t)
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	token := func(typ string, key *rsa.PrivateKey, edit func(map[string]any)) string {
		c := p.logoutClaims()
		if edit != nil {
			edit(c)
		}
		return "logout_token=" + url.QueryEscape(p.sign(key, typ, c))
	}
	refused := []struct {
		name, body string
	}{
		{"no token", ""},
		{"not a JWS", "logout_token=abc"},
		{"an id_token (typ JWT)", token("JWT", p.key, nil)},
		{"signed by another key", token("logout+jwt", other, nil)},
		{"another issuer", token("logout+jwt", p.key, func(c map[string]any) { c["iss"] = "https://evil.example" })},
		{"another audience", token("logout+jwt", p.key, func(c map[string]any) { c["aud"] = "app-b" })},
		{"expired", token("logout+jwt", p.key, func(c map[string]any) { c["exp"] = time.Now().Add(-time.Minute).Unix() })},
		{"no iat", token("logout+jwt", p.key, func(c map[string]any) { delete(c, "iat") })},
		{"iat long ago", token("logout+jwt", p.key, func(c map[string]any) { c["iat"] = time.Now().Add(-time.Hour).Unix() })},
		{"a nonce", token("logout+jwt", p.key, func(c map[string]any) { c["nonce"] = "n" })},
		{"no events", token("logout+jwt", p.key, func(c map[string]any) { delete(c, "events") })},
		{"another event", token("logout+jwt", p.key, func(c map[string]any) {
			c["events"] = map[string]any{"http://schemas.openid.net/event/other": map[string]any{}}
		})},
		{"event not an object", token("logout+jwt", p.key, func(c map[string]any) { c["events"] = map[string]any{eventLogout: "yes"} })},
		{"neither sid nor sub", token("logout+jwt", p.key, func(c map[string]any) { delete(c, "sid"); delete(c, "sub") })},
		{"no jti", token("logout+jwt", p.key, func(c map[string]any) { delete(c, "jti") })},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			a := testApp(t, p)
			w := postLogout(a, tc.body)
			if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "invalid_request") {
				t.Fatalf("status %d %s; want 400 invalid_request", w.Code, w.Body)
			}
			if len(a.sessions) != 1 {
				t.Fatal("a refused logout token ended the session")
			}
		})
	}

	t.Run("valid, then replayed", func(t *testing.T) {
		a := testApp(t, p)
		a.sessions["s2"] = &session{Subject: "u1", SID: "sso_2"} // another SSO session of the user
		body := token("logout+jwt", p.key, nil)
		if w := postLogout(a, body); w.Code != http.StatusOK {
			t.Fatalf("status %d %s; want 200", w.Code, w.Body)
		}
		if a.sessions["s1"] != nil || a.sessions["s2"] == nil {
			t.Fatal("the token must end the sessions of its sid, and only those")
		}
		if w := postLogout(a, body); w.Code != http.StatusBadRequest {
			t.Fatalf("replay: status %d; want 400", w.Code)
		}
	})
	t.Run("sub without sid ends every session of the user", func(t *testing.T) {
		a := testApp(t, p)
		a.sessions["s2"] = &session{Subject: "u1", SID: "sso_2"}
		a.sessions["s3"] = &session{Subject: "u2", SID: "sso_3"}
		if w := postLogout(a, token("logout+jwt", p.key, func(c map[string]any) { delete(c, "sid") })); w.Code != http.StatusOK {
			t.Fatalf("status %d %s; want 200", w.Code, w.Body)
		}
		if len(a.sessions) != 1 || a.sessions["s3"] == nil {
			t.Fatalf("sessions left: %v; want only the other user's", a.sessions)
		}
	})
}

// atHash is the at_hash of an RS256 id_token for token.
func atHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

// TestCallback: the callback refuses an answer for a sign-in this browser
// did not start, one without the provider's iss, and an id_token whose
// nonce or at_hash does not match; a good answer starts a session.
func TestCallback(t *testing.T) {
	p := newProvider(t)
	// start begins a sign-in and returns its state and the cookie that
	// binds it to the browser.
	start := func(t *testing.T, a *app) (string, *http.Cookie) {
		w := httptest.NewRecorder()
		a.routes().ServeHTTP(w, httptest.NewRequest("GET", "/login", nil))
		loc, err := url.Parse(w.Header().Get("Location"))
		if err != nil || w.Code != http.StatusSeeOther {
			t.Fatalf("login: %d %v", w.Code, err)
		}
		q := loc.Query()
		if q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("nonce") == "" || q.Get("state") == "" {
			t.Fatalf("authorization request without PKCE S256, nonce or state: %s", loc)
		}
		for _, c := range w.Result().Cookies() {
			if c.Name == a.cookie+"_state" {
				return q.Get("state"), c
			}
		}
		t.Fatal("no state cookie")
		return "", nil
	}
	callback := func(a *app, query string, c *http.Cookie) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "/callback?"+query, nil)
		if c != nil {
			r.AddCookie(c)
		}
		w := httptest.NewRecorder()
		a.routes().ServeHTTP(w, r)
		return w
	}
	idClaims := func(nonce string) func(string) map[string]any {
		return func(at string) map[string]any {
			now := time.Now()
			return map[string]any{"iss": p.srv.URL, "aud": "app-a", "sub": "u1", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
				"nonce": nonce, "sid": "sso_1", "at_hash": atHash(at)}
		}
	}
	nonceOf := func(a *app, state string) string {
		a.mu.Lock()
		defer a.mu.Unlock()
		return a.pending[state].nonce
	}

	t.Run("good", func(t *testing.T) {
		a := testApp(t, p)
		delete(a.sessions, "s1")
		state, c := start(t, a)
		p.mu.Lock()
		p.idFn = idClaims(nonceOf(a, state))
		p.mu.Unlock()
		w := callback(a, url.Values{"code": {"c"}, "state": {state}, "iss": {p.srv.URL}}.Encode(), c)
		if w.Code != http.StatusSeeOther || len(a.sessions) != 1 {
			t.Fatalf("status %d, %d sessions: %s", w.Code, len(a.sessions), w.Body)
		}
	})
	refused := []struct {
		name     string
		query    func(state string) url.Values
		noCookie bool
		claims   func(a *app, state string) func(string) map[string]any
	}{
		{name: "no state cookie", noCookie: true, query: func(s string) url.Values { return url.Values{"code": {"c"}, "state": {s}, "iss": {p.srv.URL}} }},
		{name: "another state", query: func(s string) url.Values { return url.Values{"code": {"c"}, "state": {s + "x"}, "iss": {p.srv.URL}} }},
		{name: "no iss", query: func(s string) url.Values { return url.Values{"code": {"c"}, "state": {s}} }},
		{name: "another iss (mix-up)", query: func(s string) url.Values {
			return url.Values{"code": {"c"}, "state": {s}, "iss": {"https://evil.example"}}
		}},
		{name: "another nonce", query: func(s string) url.Values { return url.Values{"code": {"c"}, "state": {s}, "iss": {p.srv.URL}} },
			claims: func(a *app, state string) func(string) map[string]any { return idClaims("not-the-nonce") }},
		{name: "another at_hash", query: func(s string) url.Values { return url.Values{"code": {"c"}, "state": {s}, "iss": {p.srv.URL}} },
			claims: func(a *app, state string) func(string) map[string]any {
				good := idClaims(nonceOf(a, state))
				return func(string) map[string]any { return good("another access token") }
			}},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			a := testApp(t, p)
			delete(a.sessions, "s1")
			state, c := start(t, a)
			claims := idClaims(nonceOf(a, state))
			if tc.claims != nil {
				claims = tc.claims(a, state)
			}
			p.mu.Lock()
			p.idFn = claims
			p.mu.Unlock()
			if tc.noCookie {
				c = nil
			}
			w := callback(a, tc.query(state).Encode(), c)
			if w.Code < 400 || len(a.sessions) != 0 {
				t.Fatalf("status %d, %d sessions; want an error and no session", w.Code, len(a.sessions))
			}
		})
	}
}
