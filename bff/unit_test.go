package bff

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/latchauth/latch"
	"github.com/latchauth/latch/gateway"
	"github.com/latchauth/latch/internal/testenv"
	"github.com/latchauth/latch/keys"
	"github.com/latchauth/latch/sqlite"
	"github.com/latchauth/latch/verifier"
)

// unit is a Manager against a stub auth server on 127.0.0.1 whose keys
// the test holds, on a temporary SQLite store.
type unit struct {
	t     testing.TB
	m     *Manager
	store *sqlite.Store
	clock *testenv.Clock
	key   *ecdsa.PrivateKey
	iss   string
	revs  chan url.Values // forms posted to the revocation endpoint
}

const unitKid = "k1"

func newUnit(t testing.TB) *unit {
	t.Helper()
	u := &unit{t: t, clock: testenv.NewClock(time.Now().UTC().Truncate(time.Second)), revs: make(chan url.Values, 10)}
	u.key, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	u.iss = srv.URL
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{
			"issuer": u.iss, "authorization_endpoint": u.iss + "/oauth2/authorize", "token_endpoint": u.iss + "/oauth2/token",
			"jwks_uri": u.iss + "/jwks", "revocation_endpoint": u.iss + "/oauth2/revoke", "end_session_endpoint": u.iss + "/oauth2/logout",
		})
	})
	mux.HandleFunc("/oauth2/token", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		w.Write([]byte(`{"error":"invalid_grant"}`))
	})
	mux.HandleFunc("/oauth2/revoke", func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		u.revs <- r.PostForm
	})
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "gw.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	u.store = st
	ks := verifier.StaticKeys{unitKid: {Algorithm: "ES256", Public: &u.key.PublicKey}}
	v, err := verifier.New(verifier.Config{Issuer: u.iss, Audience: u.iss, Keys: ks, Now: u.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	kek, err := keys.GenerateKEK()
	if err != nil {
		t.Fatal(err)
	}
	var cfg gateway.Config
	cfg.Issuer, cfg.ClientID, cfg.ClientSecret, cfg.PublicURL = u.iss, "gw", "secret", "http://127.0.0.1:8090"
	cfg.Session.IdleTimeout = gateway.Duration(time.Hour)
	m, err := New(cfg, Deps{Store: st, Sealer: kek.Derive("gateway sessions"), Verifier: v, Keys: ks, Now: u.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	u.m = m
	return u
}

// sign returns a compact JWS of claims with the header typ, signed by key
// under unitKid.
func sign(t testing.TB, key *ecdsa.PrivateKey, typ string, claims map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithHeader("kid", unitKid)
	if typ != "" {
		opts = opts.WithType(jose.ContentType(typ))
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(claims)
	jws, err := s.Sign(b)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// session stores a live session of sub in sid and returns its cookie
// value. Its tokens are placeholders: tests of it stop before verifying.
func (u *unit) session(sub, sid string) (string, string) {
	u.t.Helper()
	value := newCookieValue()
	id, _ := sessionID(value)
	now := u.clock.Now()
	s := u.m.sealer
	g := &latch.GatewaySession{ID: id, Subject: sub, SID: sid,
		AccessToken:     s.Seal([]byte("at"), tokenAAD("access", id)),
		RefreshToken:    s.Seal([]byte("rt-"+id), tokenAAD("refresh", id)),
		IDToken:         s.Seal([]byte("idt"), tokenAAD("id", id)),
		AccessExpiresAt: now.Add(5 * time.Minute), CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(24 * time.Hour), Version: 1}
	if err := u.store.CreateGatewaySession(u.t.Context(), g); err != nil {
		u.t.Fatal(err)
	}
	return value, id
}

func (u *unit) ended(id string) *latch.GatewaySession {
	u.t.Helper()
	g, err := u.store.GatewaySession(u.t.Context(), id)
	if err != nil {
		u.t.Fatal(err)
	}
	return g
}

func TestReturnTo(t *testing.T) {
	for _, tt := range []struct {
		in string
		ok bool
	}{
		{"/", true},
		{"/app", true},
		{"/app/orders?id=3&x=%2F", true},
		{"/a/b#frag", true},
		{"/%41pp", true},
		{"", false},
		{"app", false},
		{"//evil.example", false},
		{"//evil.example/path", false},
		{"/\\evil.example", false},
		{"\\\\evil.example", false},
		{"/\\/evil.example", false},
		{"https://evil.example", false},
		{"http:/evil.example", false},
		{"javascript:alert(1)", false},
		{"data:text/html,x", false},
		{"/%2F%2Fevil.example", false},
		{"/%2f%2fevil.example", false},
		{"%2F%2Fevil.example", false},
		{"/%5Cevil.example", false},
		{"/%5cevil.example", false},
		{"/%252F%252Fevil.example", false},
		{"/%25252F%25252Fevil.example", false},
		{"/\t/evil.example", false},
		{"/\n/evil.example", false},
		{"/%09/evil.example", false},
		{"/%0d%0aSet-Cookie:x=y", false},
		{"/\x7f", false},
		{"/%zz", false},
		{"/" + strings.Repeat("a", maxReturnTo), false},
	} {
		if got := ValidReturnTo(tt.in); got != tt.ok {
			t.Errorf("ValidReturnTo(%q) = %v, want %v", tt.in, got, tt.ok)
		}
	}
}

// TestLoginRefusesReturnTo: /auth/login answers 400 to an off-site
// return_to and starts nothing.
func TestLoginRefusesReturnTo(t *testing.T) {
	u := newUnit(t)
	for _, rt := range []string{"//evil.example", "https://evil.example/", "/%2F%2Fevil.example"} {
		rec := httptest.NewRecorder()
		u.m.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/auth/login?return_to="+url.QueryEscape(rt), nil))
		if rec.Code != http.StatusBadRequest || len(rec.Result().Cookies()) != 0 {
			t.Errorf("return_to %q: %d, %d cookies; want 400 and none", rt, rec.Code, len(rec.Result().Cookies()))
		}
	}
	rec := httptest.NewRecorder()
	u.m.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/auth/login?return_to=/app", nil))
	loc, _ := url.Parse(rec.Header().Get("Location"))
	q := loc.Query()
	if rec.Code != http.StatusFound || !strings.HasPrefix(loc.String(), u.iss+"/oauth2/authorize?") ||
		q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("nonce") == "" ||
		len(q.Get("state")) != 43 || q.Get("redirect_uri") != "http://127.0.0.1:8090/auth/callback" {
		t.Errorf("login: %d to %s", rec.Code, loc)
	}
	cs := rec.Result().Cookies()
	if len(cs) != 1 || !cs[0].HttpOnly || !cs[0].Secure || cs[0].MaxAge != 600 || cs[0].Path != "/" ||
		cs[0].Name != u.m.loginCookie(q.Get("state")) || strings.Contains(cs[0].Value, q.Get("nonce")) {
		t.Errorf("login cookie: %+v", cs)
	}
}

// TestCallbackRefusals: a callback whose state has no sign-in cookie, or
// whose cookie was made for another state, or that names another issuer,
// or that lacks a code is refused before any exchange.
func TestCallbackRefusals(t *testing.T) {
	u := newUnit(t)
	rec := httptest.NewRecorder()
	u.m.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/auth/login?return_to=/app", nil))
	loc, _ := url.Parse(rec.Header().Get("Location"))
	state := loc.Query().Get("state")
	ck := rec.Result().Cookies()[0]
	for _, tt := range []struct {
		name  string
		query string
		ck    *http.Cookie
	}{
		{"no state", "code=c", ck},
		{"no cookie", "code=c&state=" + state, nil},
		{"cookie of another state", "code=c&state=" + newCookieValue(), &http.Cookie{Name: ck.Name, Value: ck.Value}},
		{"tampered cookie", "code=c&state=" + state, &http.Cookie{Name: ck.Name, Value: "A" + ck.Value[1:]}},
		{"other issuer", "code=c&state=" + state + "&iss=" + url.QueryEscape("https://evil.example"), ck},
		{"no code", "state=" + state, ck},
		{"error", "error=access_denied&state=" + state, ck},
	} {
		req := httptest.NewRequest(http.MethodGet, "/auth/callback?"+tt.query, nil)
		if tt.ck != nil {
			req.AddCookie(&http.Cookie{Name: tt.ck.Name, Value: tt.ck.Value})
		}
		rec := httptest.NewRecorder()
		u.m.ServeHTTP(rec, req)
		if rec.Code < 400 || rec.Code >= 500 || strings.Contains(rec.Header().Get("Set-Cookie"), u.m.cookie+"=") &&
			!strings.Contains(rec.Header().Get("Set-Cookie"), "Max-Age=0") {
			t.Errorf("%s: %d %s", tt.name, rec.Code, rec.Body)
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s: Content-Type %q", tt.name, ct)
		}
	}
	// An expired sign-in is refused too.
	u.clock.Advance(loginTTL + time.Second)
	req := httptest.NewRequest(http.MethodGet, "/auth/callback?code=c&state="+state, nil)
	req.AddCookie(&http.Cookie{Name: ck.Name, Value: ck.Value})
	rec = httptest.NewRecorder()
	u.m.ServeHTTP(rec, req)
	if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "expired") {
		t.Errorf("expired sign-in: %d %s", rec.Code, rec.Body)
	}
}

// TestLookupNoSession: no cookie, a malformed or forged one, an ended,
// expired or idle session are all ErrNoSession.
func TestLookupNoSession(t *testing.T) {
	u := newUnit(t)
	lookup := func(value string) error {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		if value != "" {
			req.AddCookie(&http.Cookie{Name: u.m.cookie, Value: value})
		}
		_, err := u.m.Lookup(req)
		return err
	}
	ended, endedID := u.session("u", "s1")
	if err := u.store.EndGatewaySession(t.Context(), endedID, latch.GatewayEndLogout, u.clock.Now()); err != nil {
		t.Fatal(err)
	}
	idle, idleID := u.session("u", "s2")
	u.clock.Advance(2 * time.Hour) // past the idle timeout (1h)
	for name, value := range map[string]string{
		"none":      "",
		"malformed": "not-a-session",
		"too short": newCookieValue()[:42],
		"padded":    newCookieValue() + "=",
		"forged":    newCookieValue(),
		"ended":     ended,
		"idle":      idle,
	} {
		if err := lookup(value); !errors.Is(err, gateway.ErrNoSession) {
			t.Errorf("%s: Lookup = %v, want ErrNoSession", name, err)
		}
	}
	if g := u.ended(idleID); g.EndReason != latch.GatewayEndIdle {
		t.Errorf("idle session: reason %q, want idle", g.EndReason)
	}
	expired, _ := u.session("u", "s3")
	u.clock.Advance(25 * time.Hour)
	if err := lookup(expired); !errors.Is(err, gateway.ErrNoSession) {
		t.Errorf("expired: Lookup = %v, want ErrNoSession", err)
	}
}

// TestRefreshRefusedEndsSession: a refresh answered invalid_grant ends
// the session.
func TestRefreshRefusedEndsSession(t *testing.T) {
	u := newUnit(t)
	value, id := u.session("u", "s1")
	u.clock.Advance(5 * time.Minute)
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.AddCookie(&http.Cookie{Name: u.m.cookie, Value: value})
	if _, err := u.m.Lookup(req); !errors.Is(err, gateway.ErrNoSession) {
		t.Fatalf("Lookup = %v, want ErrNoSession", err)
	}
	if g := u.ended(id); g.EndReason != latch.GatewayEndRefresh {
		t.Errorf("reason %q, want refresh", g.EndReason)
	}
}

// TestLogoutCSRF: sign-out needs the CSRF header (or the session's form
// token) and a same-origin request; each row fails if its check goes.
func TestLogoutCSRF(t *testing.T) {
	const self = "http://127.0.0.1:8090"
	for _, tt := range []struct {
		name   string
		hdr    []string
		form   string // "", "valid", "wrong"
		ctype  string
		status int
	}{
		{"no header", []string{"Origin", self, "Sec-Fetch-Site", "same-origin"}, "", "", 403},
		{"empty header", []string{CSRFHeader, "", "Origin", self}, "", "", 403},
		{"cross-site Origin", []string{CSRFHeader, "1", "Origin", "https://evil.example"}, "", "", 403},
		{"null Origin", []string{CSRFHeader, "1", "Origin", "null"}, "", "", 403},
		{"cross-site fetch", []string{CSRFHeader, "1", "Sec-Fetch-Site", "cross-site", "Origin", self}, "", "", 403},
		{"same-site fetch", []string{CSRFHeader, "1", "Sec-Fetch-Site", "same-site"}, "", "", 403},
		{"same-origin site, other Origin", []string{CSRFHeader, "1", "Sec-Fetch-Site", "same-origin", "Origin", "https://evil.example"}, "", "", 403},
		{"no Origin nor Sec-Fetch-Site", []string{CSRFHeader, "1"}, "", "", 403},
		{"Origin with another port", []string{CSRFHeader, "1", "Origin", "http://127.0.0.1:8091"}, "", "", 403},
		{"form without token", []string{"Origin", self}, "", "application/x-www-form-urlencoded", 403},
		{"form with a wrong token", []string{"Origin", self}, "wrong", "application/x-www-form-urlencoded", 403},
		{"text/plain form", []string{"Origin", self}, "valid", "text/plain", 403},
		{"multipart form", []string{"Origin", self}, "valid", "multipart/form-data; boundary=x", 403},
		{"form with token, cross-site", []string{"Origin", "https://evil.example"}, "valid", "application/x-www-form-urlencoded", 403},
		{"fetch, same origin", []string{CSRFHeader, "1", "Origin", self, "Sec-Fetch-Site", "same-origin", "Sec-Fetch-Mode", "cors"}, "", "", 200},
		{"fetch, Origin only", []string{CSRFHeader, "1", "Origin", self}, "", "", 200},
		{"form with token", []string{"Origin", self, "Sec-Fetch-Site", "same-origin", "Sec-Fetch-Mode", "navigate"}, "valid", "application/x-www-form-urlencoded", 303},
	} {
		t.Run(tt.name, func(t *testing.T) {
			u := newUnit(t)
			value, id := u.session("u", "s1")
			body := ""
			switch tt.form {
			case "valid":
				body = "csrf=" + u.m.csrfToken(id)
			case "wrong":
				body = "csrf=" + u.m.csrfToken("other")
			}
			req := httptest.NewRequest(http.MethodPost, "/auth/logout", strings.NewReader(body))
			for i := 0; i+1 < len(tt.hdr); i += 2 {
				req.Header.Set(tt.hdr[i], tt.hdr[i+1])
			}
			if tt.ctype != "" {
				req.Header.Set("Content-Type", tt.ctype)
			}
			req.AddCookie(&http.Cookie{Name: u.m.cookie, Value: value})
			rec := httptest.NewRecorder()
			u.m.ServeHTTP(rec, req)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
			g := u.ended(id)
			if tt.status == 403 {
				if g.Ended() || !strings.Contains(rec.Body.String(), `"csrf_failed"`) || rec.Header().Get("Set-Cookie") != "" {
					t.Errorf("refused sign-out changed something: ended %v, body %s, cookies %q", g.Ended(), rec.Body, rec.Header().Get("Set-Cookie"))
				}
				return
			}
			if g.EndReason != latch.GatewayEndLogout {
				t.Errorf("session not ended by logout: %+v", g)
			}
			cs := rec.Result().Cookies()
			if len(cs) != 1 || cs[0].Name != u.m.cookie || cs[0].MaxAge >= 0 {
				t.Errorf("cookie not cleared: %+v", cs)
			}
			select {
			case f := <-u.revs:
				if f.Get("token") != "rt-"+id || f.Get("token_type_hint") != "refresh_token" {
					t.Errorf("revocation request %v", f)
				}
			case <-time.After(5 * time.Second):
				t.Error("the refresh token was not revoked at the auth server")
			}
			if tt.status == 303 {
				loc, _ := url.Parse(rec.Header().Get("Location"))
				q := loc.Query()
				if !strings.HasPrefix(loc.String(), u.iss+"/oauth2/logout?") || q.Get("id_token_hint") != "idt" ||
					q.Get("post_logout_redirect_uri") != self+"/" || q.Get("client_id") != "gw" {
					t.Errorf("logout redirect %s", loc)
				}
			}
		})
	}
}

// TestBackchannelLogout: a valid logout token ends the sessions of its sid
// (or, without sid, of its sub); each malformed one is refused with 400
// JSON and ends nothing.
func TestBackchannelLogout(t *testing.T) {
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	valid := func(u *unit) map[string]any {
		return map[string]any{"iss": u.iss, "aud": "gw", "iat": u.clock.Now().Unix(), "exp": u.clock.Now().Add(2 * time.Minute).Unix(),
			"jti": newCookieValue(), "sid": "s1", "sub": "u1",
			"events": map[string]any{eventLogout: map[string]any{}}}
	}
	for _, tt := range []struct {
		name   string
		key    func(u *unit) *ecdsa.PrivateKey
		typ    string
		mutate func(c map[string]any)
	}{
		{"bad signature", func(*unit) *ecdsa.PrivateKey { return other }, "logout+jwt", nil},
		{"wrong aud", nil, "logout+jwt", func(c map[string]any) { c["aud"] = "someone-else" }},
		{"wrong iss", nil, "logout+jwt", func(c map[string]any) { c["iss"] = "https://evil.example" }},
		{"nonce present", nil, "logout+jwt", func(c map[string]any) { c["nonce"] = "n" }},
		{"missing events", nil, "logout+jwt", func(c map[string]any) { delete(c, "events") }},
		{"events without the logout event", nil, "logout+jwt", func(c map[string]any) { c["events"] = map[string]any{"x": map[string]any{}} }},
		{"logout event not an object", nil, "logout+jwt", func(c map[string]any) { c["events"] = map[string]any{eventLogout: "yes"} }},
		{"neither sid nor sub", nil, "logout+jwt", func(c map[string]any) { delete(c, "sid"); delete(c, "sub") }},
		{"no jti", nil, "logout+jwt", func(c map[string]any) { delete(c, "jti") }},
		{"no iat", nil, "logout+jwt", func(c map[string]any) { delete(c, "iat") }},
		{"old iat", nil, "logout+jwt", func(c map[string]any) { c["iat"] = time.Now().Add(-time.Hour).Unix() }},
		{"expired", nil, "logout+jwt", func(c map[string]any) { c["exp"] = time.Now().Add(-time.Minute).Unix() }},
		{"typ JWT (an id_token)", nil, "JWT", nil},
		{"no typ", nil, "", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			u := newUnit(t)
			_, id := u.session("u1", "s1")
			key := u.key
			if tt.key != nil {
				key = tt.key(u)
			}
			c := valid(u)
			if tt.mutate != nil {
				tt.mutate(c)
			}
			rec := u.postLogout(sign(t, key, tt.typ, c))
			if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), `"invalid_request"`) {
				t.Errorf("status %d %s, want 400 JSON", rec.Code, rec.Body)
			}
			if u.ended(id).Ended() {
				t.Error("a refused logout token ended the session")
			}
		})
	}
	t.Run("valid, then replayed", func(t *testing.T) {
		u := newUnit(t)
		_, a := u.session("u1", "s1")
		_, b := u.session("u1", "s1")
		_, keep := u.session("u1", "s2")
		c := valid(u)
		tok := sign(t, u.key, "logout+jwt", c)
		if rec := u.postLogout(tok); rec.Code != http.StatusOK {
			t.Fatalf("valid logout token: %d %s", rec.Code, rec.Body)
		}
		for _, id := range []string{a, b} {
			if g := u.ended(id); g.EndReason != latch.GatewayEndBackchannel {
				t.Errorf("session of the sid not ended: %+v", g)
			}
		}
		if u.ended(keep).Ended() {
			t.Error("a session of another sid was ended")
		}
		_, again := u.session("u1", "s1")
		if rec := u.postLogout(tok); rec.Code != http.StatusBadRequest {
			t.Errorf("replayed jti: %d, want 400", rec.Code)
		}
		if u.ended(again).Ended() {
			t.Error("a replayed logout token ended a session")
		}
	})
	t.Run("sub only", func(t *testing.T) {
		u := newUnit(t)
		_, a := u.session("u1", "s1")
		_, b := u.session("u1", "s2")
		_, keep := u.session("u2", "s3")
		c := valid(u)
		delete(c, "sid")
		if rec := u.postLogout(sign(t, u.key, "logout+jwt", c)); rec.Code != http.StatusOK {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
		if !u.ended(a).Ended() || !u.ended(b).Ended() || u.ended(keep).Ended() {
			t.Error("a sub-only logout token must end every session of the sub, and only those")
		}
	})
}

func (u *unit) postLogout(token string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/auth/backchannel-logout", strings.NewReader(url.Values{"logout_token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	u.m.ServeHTTP(rec, req)
	return rec
}

// TestIDTokenRejections: the callback's id_token checks, each row a
// token that must be refused.
func TestIDTokenRejections(t *testing.T) {
	u := newUnit(t)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := u.clock.Now()
	valid := func() map[string]any {
		return map[string]any{"iss": u.iss, "aud": "gw", "sub": "u1", "sid": "s1", "nonce": "n1",
			"iat": now.Unix(), "exp": now.Add(time.Minute).Unix()}
	}
	if _, err := u.m.verifyIDToken(t.Context(), sign(t, u.key, "JWT", valid()), "n1", now); err != nil {
		t.Fatalf("valid id_token refused: %v", err)
	}
	for _, tt := range []struct {
		name   string
		key    *ecdsa.PrivateKey
		typ    string
		mutate func(c map[string]any)
	}{
		{"bad signature", other, "JWT", nil},
		{"wrong nonce", nil, "JWT", func(c map[string]any) { c["nonce"] = "n2" }},
		{"no nonce", nil, "JWT", func(c map[string]any) { delete(c, "nonce") }},
		{"wrong aud", nil, "JWT", func(c map[string]any) { c["aud"] = "other" }},
		{"aud with us, azp another", nil, "JWT", func(c map[string]any) { c["aud"] = []string{"gw", "other"}; c["azp"] = "other" }},
		{"wrong iss", nil, "JWT", func(c map[string]any) { c["iss"] = "https://evil.example" }},
		{"expired", nil, "JWT", func(c map[string]any) { c["exp"] = now.Add(-time.Minute).Unix() }},
		{"no exp", nil, "JWT", func(c map[string]any) { delete(c, "exp") }},
		{"no iat", nil, "JWT", func(c map[string]any) { delete(c, "iat") }},
		{"no sub", nil, "JWT", func(c map[string]any) { delete(c, "sub") }},
		{"a logout token", nil, "logout+jwt", nil},
		{"an access token", nil, "at+jwt", nil},
	} {
		key := u.key
		if tt.key != nil {
			key = tt.key
		}
		c := valid()
		if tt.mutate != nil {
			tt.mutate(c)
		}
		if _, err := u.m.verifyIDToken(t.Context(), sign(t, key, tt.typ, c), "n1", now); err == nil {
			t.Errorf("%s: id_token accepted", tt.name)
		}
	}
}

// TestSealedTokensBoundToSession: a sealed token copied into another
// session's row does not open there.
func TestSealedTokensBoundToSession(t *testing.T) {
	u := newUnit(t)
	_, a := u.session("u1", "s1")
	_, b := u.session("u1", "s2")
	ga, gb := u.ended(a), u.ended(b)
	if _, err := u.m.sealer.Open(ga.AccessToken, tokenAAD("access", gb.ID)); err == nil {
		t.Error("a's access token opens as b's")
	}
	if _, err := u.m.sealer.Open(ga.RefreshToken, tokenAAD("access", ga.ID)); err == nil {
		t.Error("a's refresh token opens as its access token")
	}
}

// silentStore is a session store that never answers reads (a network
// partition, a frozen server): each call waits for its context to end.
type silentStore struct{ latch.GatewaySessionStore }

func (silentStore) GatewaySession(ctx context.Context, id string) (*latch.GatewaySession, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestLookupSilentStore: a store that stops answering makes Lookup fail
// (the gateway answers 503) within the store timeout, rather than hang
// for as long as the request lives — and not with ErrNoSession, which
// would sign the browser out.
func TestLookupSilentStore(t *testing.T) {
	u := newUnit(t)
	value, _ := u.session("u", "s1")
	u.m.store = silentStore{u.store}
	u.m.storeTimeout = 50 * time.Millisecond
	req := httptest.NewRequest(http.MethodGet, "/", nil) // no deadline of its own
	req.AddCookie(&http.Cookie{Name: u.m.cookie, Value: value})
	done := make(chan error, 1)
	go func() {
		_, err := u.m.Lookup(req)
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || errors.Is(err, gateway.ErrNoSession) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Lookup with a silent store = %v, want a deadline error (not ErrNoSession)", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Lookup with a silent store did not return within 10 s")
	}
}
