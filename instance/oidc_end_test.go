package instance_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/latchauth/latch/auth"
)

// logoutReceiver is a relying party's back-channel logout endpoint that
// records the sid of every logout token it receives.
type logoutReceiver struct {
	srv  *httptest.Server
	mu   sync.Mutex
	sids []string
}

func newLogoutReceiver(t *testing.T) *logoutReceiver {
	lr := &logoutReceiver{}
	lr.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok := r.PostFormValue("logout_token")
		parts := strings.Split(tok, ".")
		if len(parts) != 3 {
			http.Error(w, "bad token", http.StatusBadRequest)
			return
		}
		raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
		var c struct {
			SID string `json:"sid"`
		}
		_ = json.Unmarshal(raw, &c)
		lr.mu.Lock()
		lr.sids = append(lr.sids, c.SID)
		lr.mu.Unlock()
	}))
	t.Cleanup(lr.srv.Close)
	return lr
}

func (lr *logoutReceiver) got(sid string) bool {
	lr.mu.Lock()
	defer lr.mu.Unlock()
	for _, s := range lr.sids {
		if s == sid {
			return true
		}
	}
	return false
}

// ssoFixture: a signed-in browser and two first-party RPs (dash with
// offline access, wiki), both with tokens from one SSO session and a
// back-channel logout URI.
type ssoFixture struct {
	h        *harness
	b        *browser
	lr       *logoutReceiver
	sid      string
	dash     response // dash's token response
	wiki     response
	dashUser string
}

func newSSOFixture(t *testing.T) *ssoFixture {
	h := start(t, "", nil)
	ctx, cancel := context.WithCancel(context.Background())
	h.in.Start(ctx)
	t.Cleanup(func() { cancel(); h.in.Wait(); h.close() })
	f := &ssoFixture{h: h, b: h.browser(), lr: newLogoutReceiver(t)}
	f.dashUser = h.addUser("grace@example.com", "correct horse battery staple")
	for _, id := range []string{"dash", "wiki"} {
		h.addRP(id, func(n *auth.NewClient) { n.FirstParty, n.BackchannelLogoutURI = true, f.lr.srv.URL })
	}
	f.b.signIn("grace@example.com", "correct horse battery staple")
	for _, id := range []string{"dash", "wiki"} {
		cb := callback(t, f.b.authorize(codeRequest(id, "openid offline_access")))
		tok := h.exchange(id, cb.Get("code"), "https://"+id+".example/cb", "")
		if tok.code != http.StatusOK {
			t.Fatalf("%s exchange: %d %s", id, tok.code, tok.raw)
		}
		if id == "dash" {
			f.dash = tok
		} else {
			f.wiki = tok
		}
	}
	f.sid, _ = segment(t, f.dash.str("id_token"), 1)["sid"].(string)
	if f.sid == "" || segment(t, f.wiki.str("id_token"), 1)["sid"] != f.sid {
		t.Fatal("both apps' id_tokens must name the one SSO session")
	}
	return f
}

// ended checks that the SSO session is over everywhere: both apps are
// told by back-channel logout, their refresh and access tokens are
// refused, and prompt=none says login_required.
func (f *ssoFixture) ended(t *testing.T) {
	t.Helper()
	waitFor(t, "the back-channel logout of the SSO session", func() bool { return f.lr.got(f.sid) })
	for id, tok := range map[string]response{"dash": f.dash, "wiki": f.wiki} {
		if r := f.h.refreshAs(id, tok.str("refresh_token")); r.code != http.StatusBadRequest {
			t.Errorf("%s refresh after the SSO session ended: %d %s", id, r.code, r.raw)
		}
		if r := f.h.do(http.MethodGet, "/oauth2/userinfo", "", bearer(tok.str("access_token"))...); r.code != http.StatusUnauthorized {
			t.Errorf("%s access token after the SSO session ended: %d", id, r.code)
		}
	}
	if r := f.b.authorize(codeRequest("wiki", "openid", "prompt", "none")); !strings.Contains(r.location, "error=login_required") {
		t.Errorf("prompt=none after the SSO session ended: %d %q", r.code, r.location)
	}
}

// refreshAs refreshes at the token endpoint as a test RP.
func (h *harness) refreshAs(id, rt string) response {
	h.t.Helper()
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
	return h.do(http.MethodPost, "/oauth2/token", form.Encode(), "Content-Type", "application/x-www-form-urlencoded",
		"Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(id+":"+rpSecret)))
}

// TestSSOEndedByReuseDetection: a refresh token of one app presented
// after two rotations is reuse; the thief may hold the browser's sign-in
// too, so the whole SSO session ends, for every app.
func TestSSOEndedByReuseDetection(t *testing.T) {
	f := newSSOFixture(t)
	first := f.dash.str("refresh_token")
	r1 := f.h.refreshAs("dash", first)
	r2 := f.h.refreshAs("dash", r1.str("refresh_token"))
	if r1.code != http.StatusOK || r2.code != http.StatusOK {
		t.Fatalf("rotations: %d %d", r1.code, r2.code)
	}
	if r := f.h.refreshAs("dash", first); r.code != http.StatusBadRequest {
		t.Fatalf("reuse: %d %s", r.code, r.raw)
	}
	f.dash = r2
	f.ended(t)
}

// TestSSOEndedByLogoutAll: "sign out everywhere" ends the user's SSO
// sessions with their families.
func TestSSOEndedByLogoutAll(t *testing.T) {
	f := newSSOFixture(t)
	if r := f.h.do(http.MethodPost, "/v1/auth/logout-all", "", bearer(f.wiki.str("access_token"))...); r.code != http.StatusNoContent {
		t.Fatalf("logout-all: %d %s", r.code, r.raw)
	}
	f.ended(t)
}

// TestSSOEndedByAccountSignOut: signing out on Latch's own page (the
// account client's cookies and CSRF token) ends the SSO session.
func TestSSOEndedByAccountSignOut(t *testing.T) {
	f := newSSOFixture(t)
	u, _ := url.Parse(f.h.srv.URL)
	csrf := ""
	for _, c := range f.b.hc.Jar.Cookies(u) {
		if c.Name == csrfCookie {
			csrf = c.Value
		}
	}
	req, _ := http.NewRequest(http.MethodPost, f.h.srv.URL+"/v1/auth/logout", nil)
	req.Header.Set("X-CSRF-Token", csrf)
	if r := f.b.do(req); r.code != http.StatusNoContent {
		t.Fatalf("sign-out: %d %s", r.code, r.body)
	}
	f.ended(t)
}

// TestSSOEndedByRPLogout: RP-initiated logout from one app ends the
// session for the other app too, by back-channel logout.
func TestSSOEndedByRPLogout(t *testing.T) {
	f := newSSOFixture(t)
	r := f.b.get("/oauth2/logout?" + url.Values{"id_token_hint": {f.dash.str("id_token")}}.Encode())
	if r.code != http.StatusOK || !strings.Contains(strings.ToLower(r.body), "signed out") {
		t.Fatalf("logout without a redirect: %d %s", r.code, r.body)
	}
	f.ended(t)
}

// TestLogoutHintOfEndedSessionAsksFirst: an id_token of an earlier SSO
// session of the same user proves nothing about the current one, so the
// logout asks for confirmation and ends nothing until then.
func TestLogoutHintOfEndedSessionAsksFirst(t *testing.T) {
	f := newSSOFixture(t)
	old := f.dash.str("id_token")
	f.b.signIn("grace@example.com", "correct horse battery staple") // a new SSO session replaces the old
	cb := callback(t, f.b.authorize(codeRequest("wiki", "openid")))
	fresh := f.h.exchange("wiki", cb.Get("code"), "https://wiki.example/cb", "")
	r := f.b.get("/oauth2/logout?" + url.Values{"id_token_hint": {old}}.Encode())
	if r.code != http.StatusOK || !strings.Contains(r.body, "logout_token") {
		t.Fatalf("logout with an old session's hint: want the confirmation page, got %d %q", r.code, r.location)
	}
	if ui := f.h.do(http.MethodGet, "/oauth2/userinfo", "", bearer(fresh.str("access_token"))...); ui.code != http.StatusOK {
		t.Fatalf("the current SSO session must survive an unconfirmed logout: %d", ui.code)
	}
}
