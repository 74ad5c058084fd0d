package bff

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/auth"
	"github.com/latchauth/latch/config"
	"github.com/latchauth/latch/gateway"
	"github.com/latchauth/latch/instance"
	"github.com/latchauth/latch/internal/testenv"
	"github.com/latchauth/latch/keys"
	"github.com/latchauth/latch/postgres"
	"github.com/latchauth/latch/redis"
	"github.com/latchauth/latch/sqlite"
	"github.com/latchauth/latch/verifier"
)

const (
	gwSecret = "Z2F0ZXdheS1jbGllbnQtc2VjcmV0LWZvci10ZXN0cy0xMjM0NTY3ODkw"
	adaEmail = "ada@example.com"
	adaPass  = "correct horse battery staple 1815"
)

// rig is a real Latch instance (SQLite, in-process, on 127.0.0.1) and
// gateway Managers signed in to it as the confidential client gw, sharing
// one session store.
type rig struct {
	t         *testing.T
	in        *instance.Instance
	iss       string
	gwURL     string
	userID    string
	clock     *testenv.Clock
	store     latch.GatewaySessionStore
	managers  []*Manager
	refreshes atomic.Int64 // refresh_token grants at the token endpoint
}

// rigOptions choose the gateway's store and fan-out.
type rigOptions struct {
	managers int
	postgres bool
	redis    bool
}

func newRig(t *testing.T, o rigOptions) *rig {
	t.Helper()
	if o.managers == 0 {
		o.managers = 1
	}
	r := &rig{t: t, clock: testenv.NewWallClock()}
	gwLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	latchLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.gwURL, r.iss = "http://"+gwLn.Addr().String(), "http://"+latchLn.Addr().String()

	cfg := config.Defaults()
	cfg.DataDir = filepath.Join(t.TempDir(), "latch")
	cfg.Issuer = r.iss
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	in, err := instance.Open(t.Context(), cfg, instance.Options{Log: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	r.in = in
	bg, stop := context.WithCancel(context.Background())
	in.Start(bg) // the outbox delivers back-channel logout tokens
	latchSrv := httptest.NewUnstartedServer(r.countRefreshes(in.Server))
	latchSrv.Listener.Close()
	latchSrv.Listener = latchLn
	latchSrv.Start()
	t.Cleanup(func() { stop(); latchSrv.Close(); in.Close() })

	ctx := t.Context()
	if _, err := in.Auth.CreateClient(ctx, auth.NewClient{ID: "gw", Secret: gwSecret,
		RedirectURIs: []string{r.gwURL + "/auth/callback"}, PostLogoutRedirectURIs: []string{r.gwURL + "/"},
		BackchannelLogoutURI: r.gwURL + "/auth/backchannel-logout", FirstParty: true,
		Permissions: []string{latch.PermissionReadRevocations}}); err != nil {
		t.Fatal(err)
	}
	u, err := in.Auth.CreateUser(ctx, adaEmail, adaPass, auth.Device{})
	if err != nil {
		t.Fatal(err)
	}
	r.userID = u.ID

	// The gateway's side: its own store, one KEK, the remote verifier.
	if o.postgres {
		pg, err := postgres.Open(ctx, testenv.PostgresSchema(t, "latch_bff_"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pg.Close() })
		r.store = pg
	} else {
		st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "gateway.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		r.store = st
	}
	kek, err := keys.GenerateKEK()
	if err != nil {
		t.Fatal(err)
	}
	vctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	v, err := verifier.NewRemote(vctx, verifier.RemoteConfig{Issuer: r.iss, Audience: r.iss, ClientID: "gw", ClientSecret: gwSecret,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	var gcfg gateway.Config
	gcfg.Issuer, gcfg.ClientID, gcfg.ClientSecret, gcfg.PublicURL = r.iss, "gw", gwSecret, r.gwURL
	prefix := "latch-bff-test-" + strings.ToLower(rand.Text()[:10])
	for range o.managers {
		d := Deps{Store: r.store, Sealer: kek.Derive("gateway sessions"), Verifier: v, Now: r.clock.Now,
			Log: slog.New(slog.DiscardHandler)}
		if o.redis {
			f, err := redis.Open(ctx, "redis://127.0.0.1:6379", redis.Options{Prefix: prefix, Log: slog.New(slog.DiscardHandler)})
			if err != nil {
				testenv.Unavailable(t, testenv.Redis, err)
			}
			t.Cleanup(func() { f.Close() })
			d.Fanout = f
		}
		m, err := New(gcfg, d)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		r.managers = append(r.managers, m)
	}
	gwSrv := httptest.NewUnstartedServer(r.managers[0])
	gwSrv.Listener.Close()
	gwSrv.Listener = gwLn
	gwSrv.Start()
	t.Cleanup(gwSrv.Close)
	return r
}

// countRefreshes counts the refresh_token grants the auth server gets.
func (r *rig) countRefreshes(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/oauth2/token" && req.Method == http.MethodPost {
			b, _ := io.ReadAll(req.Body)
			req.Body = io.NopCloser(bytes.NewReader(b))
			if q, _ := url.ParseQuery(string(b)); q.Get("grant_type") == "refresh_token" {
				r.refreshes.Add(1)
			}
		}
		h.ServeHTTP(w, req)
	})
}

// secureJar is a cookie jar that treats every URL as https, so that the
// Secure cookies of loopback origins (which browsers treat as secure
// contexts) ride plain-http test servers.
type secureJar struct{ *cookiejar.Jar }

func https(u *url.URL) *url.URL { c := *u; c.Scheme = "https"; return &c }

func (j secureJar) SetCookies(u *url.URL, cs []*http.Cookie) { j.Jar.SetCookies(https(u), cs) }
func (j secureJar) Cookies(u *url.URL) []*http.Cookie        { return j.Jar.Cookies(https(u)) }

// browser is a user agent that does not follow redirects.
type browser struct {
	t  *testing.T
	hc *http.Client
}

func newBrowser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, hc: &http.Client{Jar: secureJar{jar}, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

func (b *browser) do(req *http.Request) (*http.Response, string) {
	b.t.Helper()
	res, err := b.hc.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res, string(body)
}

func (b *browser) get(u string) (*http.Response, string) {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	return b.do(req)
}

// signIn signs in at Latch (its SSO session) and then at the gateway, and
// returns the callback's response and the session cookie's value.
func (r *rig) signIn(b *browser) (*http.Response, string) {
	r.t.Helper()
	body, _ := json.Marshal(map[string]string{"email": adaEmail, "password": adaPass, "client_id": auth.AccountClientID})
	req, _ := http.NewRequest(http.MethodPost, r.iss+"/v1/auth/login", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if res, body := b.do(req); res.StatusCode != http.StatusOK {
		r.t.Fatalf("sign-in at Latch: %d %s", res.StatusCode, body)
	}
	res, text := b.get(r.gwURL + "/auth/login?return_to=" + url.QueryEscape("/app?tab=2"))
	if res.StatusCode != http.StatusFound {
		r.t.Fatalf("/auth/login: %d %s", res.StatusCode, text)
	}
	res, text = b.get(res.Header.Get("Location"))
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), r.gwURL+"/auth/callback?") {
		r.t.Fatalf("authorize: %d to %q %s", res.StatusCode, res.Header.Get("Location"), text)
	}
	res, text = b.get(res.Header.Get("Location"))
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/app?tab=2" {
		r.t.Fatalf("callback: %d to %q %s", res.StatusCode, res.Header.Get("Location"), text)
	}
	for _, c := range res.Cookies() {
		if c.Name == r.managers[0].CookieName() {
			return res, c.Value
		}
	}
	r.t.Fatal("callback set no session cookie")
	return nil, ""
}

// lookup is Lookup on manager i of a request carrying the cookie.
func (r *rig) lookup(i int, value string) (*gateway.BrowserSession, error) {
	req := httptest.NewRequest(http.MethodGet, r.gwURL+"/app", nil)
	req.AddCookie(&http.Cookie{Name: r.managers[i].CookieName(), Value: value})
	return r.managers[i].Lookup(req)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, d)
		}
		<-tick.C
	}
}

// TestSignIn: login → callback → exactly one cookie with the right
// properties, never a token → Lookup gives the user's verified token;
// /auth/session tells an SPA who is signed in.
func TestSignIn(t *testing.T) {
	r := newRig(t, rigOptions{})
	b := newBrowser(t)
	res, value := r.signIn(b)

	var session []string
	for _, h := range res.Header.Values("Set-Cookie") {
		name, _, _ := strings.Cut(h, "=")
		if strings.Contains(h, "Max-Age=0") {
			if !strings.HasPrefix(name, r.managers[0].CookieName()+"_login_") {
				t.Errorf("callback deleted an unexpected cookie: %s", h)
			}
			continue
		}
		session = append(session, h)
	}
	if len(session) != 1 {
		t.Fatalf("callback set %d cookies, want exactly one: %q", len(session), session)
	}
	h := session[0]
	for _, want := range []string{"__Host-latch_gw=" + value + ";", "; Path=/", "; HttpOnly", "; Secure", "; SameSite=Lax"} {
		if !strings.Contains(h+";", want) {
			t.Errorf("session cookie %q lacks %q", h, want)
		}
	}
	if strings.Contains(strings.ToLower(h), "domain=") {
		t.Errorf("session cookie %q has a Domain (a __Host- cookie must not)", h)
	}
	if !regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`).MatchString(value) {
		t.Errorf("cookie value %q is not 256 bits of base64url", value)
	}
	if strings.Count(value, ".") > 0 || len(value) > 43 {
		t.Errorf("cookie value looks like a token: %q", value)
	}
	id, _ := sessionID(value)
	g, err := r.store.GatewaySession(t.Context(), id)
	if err != nil {
		t.Fatalf("no stored session under the cookie's hash: %v", err)
	}
	if g.Subject != r.userID || g.SID == "" || g.Version != 1 {
		t.Errorf("stored session %+v", g)
	}
	if _, err := r.store.GatewaySession(t.Context(), value); !errors.Is(err, latch.ErrNotFound) {
		t.Error("the cookie value itself is a store key")
	}
	bs, err := r.lookup(0, value)
	if err != nil {
		t.Fatal(err)
	}
	if bs.ID != id || bs.Claims.Subject != r.userID || bs.Claims.ClientID != "gw" || bytes.Contains(g.AccessToken, []byte(bs.AccessToken)) {
		t.Errorf("Lookup = %+v (claims %+v)", bs, bs.Claims)
	}

	res, body := b.get(r.gwURL + "/auth/session")
	var info sessionInfo
	json.Unmarshal([]byte(body), &info)
	if res.StatusCode != 200 || !info.Authenticated || info.Subject != r.userID || info.CSRF == "" || strings.Contains(body, bs.AccessToken) {
		t.Errorf("/auth/session: %d %s", res.StatusCode, body)
	}
	res, body = newBrowser(t).get(r.gwURL + "/auth/session")
	if res.StatusCode != 200 || strings.TrimSpace(body) != `{"authenticated":false}` {
		t.Errorf("/auth/session signed out: %d %s", res.StatusCode, body)
	}
}

// TestRefreshOnce: 20 concurrent requests at the access token's expiry,
// spread over two gateway instances sharing the store, cause exactly one
// refresh at the auth server, and all get the new token.
func TestRefreshOnce(t *testing.T) {
	for _, tt := range []struct {
		name string
		o    rigOptions
	}{
		{"sqlite", rigOptions{managers: 2}},
		{"postgres", rigOptions{managers: 2, postgres: true}},
		{"postgres+redis", rigOptions{managers: 2, postgres: true, redis: true}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, tt.o)
			_, value := r.signIn(newBrowser(t))
			first, err := r.lookup(0, value)
			if err != nil {
				t.Fatal(err)
			}
			if n := r.refreshes.Load(); n != 0 {
				t.Fatalf("%d refreshes before expiry", n)
			}
			r.clock.Advance(5*time.Minute - 10*time.Second) // within RefreshBefore (30 s) of expiry
			const n = 20
			var wg sync.WaitGroup
			tokens, errs := make([]string, n), make([]error, n)
			start := make(chan struct{})
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					bs, err := r.lookup(i%2, value)
					errs[i] = err
					if err == nil && bs.Claims != nil {
						tokens[i] = bs.AccessToken
					}
				}()
			}
			close(start)
			wg.Wait()
			if got := r.refreshes.Load(); got != 1 {
				t.Errorf("%d refreshes at the auth server, want exactly 1", got)
			}
			for i := range n {
				if errs[i] != nil || tokens[i] == "" || tokens[i] == first.AccessToken || tokens[i] != tokens[0] {
					t.Errorf("request %d: err %v, new token %v, same as the others %v", i, errs[i],
						tokens[i] != first.AccessToken, tokens[i] == tokens[0])
				}
			}
			id, _ := sessionID(value)
			g, err := r.store.GatewaySession(t.Context(), id)
			if err != nil || g.Version != 2 || g.LeaseOwner != "" || g.Ended() {
				t.Errorf("after the storm: %+v, %v", g, err)
			}
			// The session goes on with the new token.
			if bs, err := r.lookup(1, value); err != nil || bs.AccessToken != tokens[0] {
				t.Errorf("Lookup after the refresh: %v", err)
			}
		})
	}
}

// TestRevokedAtAuthServer: a session revoked at the auth server reaches
// the gateway through the revocation feed: Lookup ends it.
func TestRevokedAtAuthServer(t *testing.T) {
	r := newRig(t, rigOptions{})
	_, value := r.signIn(newBrowser(t))
	bs, err := r.lookup(0, value)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.in.Auth.RevokeFamily(t.Context(), bs.Claims.SessionID, "test"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "Lookup refuses the revoked session", 5*time.Second, func() bool {
		_, err := r.lookup(0, value)
		return errors.Is(err, gateway.ErrNoSession)
	})
	g, _ := r.store.GatewaySession(t.Context(), bs.ID)
	if g.EndReason != latch.GatewayEndRevoked {
		t.Errorf("end reason %q, want revoked", g.EndReason)
	}
}

// TestBackchannelLogoutEndsSession: ending the SSO session at the auth
// server reaches the gateway by back-channel logout (the outbox).
func TestBackchannelLogoutEndsSession(t *testing.T) {
	r := newRig(t, rigOptions{})
	_, value := r.signIn(newBrowser(t))
	_, other := r.signIn(newBrowser(t)) // another browser, another SSO session
	id, _ := sessionID(value)
	g, err := r.store.GatewaySession(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.in.Auth.EndSSOSession(t.Context(), r.userID, g.SID, "test", auth.Device{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "back-channel logout ends the gateway session", 10*time.Second, func() bool {
		g, err := r.store.GatewaySession(t.Context(), id)
		return err == nil && g.Ended()
	})
	if g, _ := r.store.GatewaySession(t.Context(), id); g.EndReason != latch.GatewayEndBackchannel {
		t.Errorf("end reason %q, want backchannel", g.EndReason)
	}
	if _, err := r.lookup(0, value); !errors.Is(err, gateway.ErrNoSession) {
		t.Errorf("Lookup after back-channel logout = %v", err)
	}
	if _, err := r.lookup(0, other); err != nil {
		t.Errorf("the other browser's session: %v", err)
	}
}

// TestLogout: a fetch sign-out ends the session and answers the URL that
// ends the SSO session too (the page navigates there), a form sign-out
// also ends the SSO session through the end_session_endpoint and comes
// back to the gateway.
func TestLogout(t *testing.T) {
	r := newRig(t, rigOptions{})
	b := newBrowser(t)
	_, value := r.signIn(b)
	req, _ := http.NewRequest(http.MethodPost, r.gwURL+"/auth/logout", nil)
	req.Header.Set(CSRFHeader, "1")
	req.Header.Set("Origin", r.gwURL)
	if res, body := b.do(req); res.StatusCode != http.StatusOK || !strings.Contains(body, `"end_session_url":"`+r.iss+`/oauth2/logout?`) {
		t.Fatalf("fetch logout: %d %s", res.StatusCode, body)
	}
	if _, err := r.lookup(0, value); !errors.Is(err, gateway.ErrNoSession) {
		t.Errorf("Lookup after logout = %v", err)
	}

	_, value = r.signIn(b)
	res, body := b.get(r.gwURL + "/auth/session")
	var info sessionInfo
	json.Unmarshal([]byte(body), &info)
	req, _ = http.NewRequest(http.MethodPost, r.gwURL+"/auth/logout", strings.NewReader(url.Values{"csrf": {info.CSRF}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", r.gwURL)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set("Sec-Fetch-Mode", "navigate")
	res, body = b.do(req)
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), r.iss+"/oauth2/logout?") {
		t.Fatalf("form logout: %d to %q %s", res.StatusCode, res.Header.Get("Location"), body)
	}
	res, body = b.get(res.Header.Get("Location"))
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != r.gwURL+"/" {
		t.Fatalf("end_session: %d to %q %s", res.StatusCode, res.Header.Get("Location"), body)
	}
	if _, err := r.lookup(0, value); !errors.Is(err, gateway.ErrNoSession) {
		t.Errorf("Lookup after form logout = %v", err)
	}
	// The SSO session is over: signing in at the gateway again asks for
	// a password at Latch instead of returning a code.
	res, _ = b.get(r.gwURL + "/auth/login")
	res, _ = b.get(res.Header.Get("Location"))
	if strings.HasPrefix(res.Header.Get("Location"), r.gwURL+"/auth/callback?") && strings.Contains(res.Header.Get("Location"), "code=") {
		t.Error("the SSO session survived the form logout")
	}
}

// testLog logs to the test's output when LATCH_TEST_LOG is set.
func testLog(t *testing.T) *slog.Logger {
	if os.Getenv("LATCH_TEST_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
