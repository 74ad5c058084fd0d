package e2e_test

import (
	"context"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/latchauth/latch/auth"
	sdkjs "github.com/latchauth/latch/sdk/js"
	"github.com/latchauth/latch/web"
)

// User agents of the sessions shown in the account page's screenshot.
const (
	uaDesktop = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36"
	uaPhone   = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.5 Mobile/15E148 Safari/604.1"
	uaCLI     = "curl/8.14.1"
)

// TestBrowserScreenshots saves screenshots of the sign-in page and of the
// account page (three sessions, a few security events) to artifacts/. With
// LATCH_E2E_UPDATE_DOCS=1 it also writes them to docs/img/signin.png and
// docs/img/account.png.
func TestBrowserScreenshots(t *testing.T) {
	srv := startLatch(t)
	const email, password = "ada@example.com", "correct horse battery staple"
	if _, err := srv.in.Auth.CreateUser(context.Background(), email, password, auth.Device{UserAgent: "latch user add"}); err != nil {
		t.Fatalf("create user: %v", err)
	}
	b := startBrowser(t)
	var shots []string

	desktop := b.newProfile(t)
	desktop.setUserAgent(uaDesktop)
	desktop.do("size the window", chromedp.EmulateViewport(1200, 860))
	desktop.navigate(srv.URL + "/login")
	desktop.waitJS("the sign-in form", `!document.getElementById('submit').disabled && document.fonts.status === 'loaded'`)
	shots = append(shots, desktop.screenshot("signin.png"))

	// A failed attempt, then the error on the page.
	desktop.do("type a wrong password",
		chromedp.SendKeys(chromedp.ID("email"), email),
		chromedp.SendKeys(chromedp.ID("password"), "not my password"),
		chromedp.Click(chromedp.ID("submit")),
	)
	desktop.waitJS("the error", `document.getElementById('notice').textContent.includes('not right')`)
	shots = append(shots, desktop.screenshot("signin-error.png"))

	// Other sessions: a phone, and a command-line client.
	phone := b.newProfile(t)
	phone.setUserAgent(uaPhone)
	phone.loginViaPage(srv.URL, email, password)
	req, _ := http.NewRequest("POST", srv.URL+"/v1/auth/login", strings.NewReader(`{"email":"`+email+`","password":"`+password+`"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", uaCLI)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("CLI login: %d", res.StatusCode)
	}

	desktop.loginViaPage(srv.URL, email, password)
	desktop.waitJS("the account page with three sessions and the events",
		`location.pathname === '/account' && document.querySelectorAll('#sessions .session-row').length === 3 && document.querySelectorAll('#events .event-row').length >= 4 && document.getElementById('user-email').textContent !== ''`)
	shots = append(shots, desktop.screenshot("account.png"))

	for _, s := range shots {
		t.Logf("screenshot: %s", s)
	}
	if os.Getenv("LATCH_E2E_UPDATE_DOCS") != "" {
		dir := filepath.Join("..", "docs", "img")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"signin.png", "account.png"} {
			b, err := os.ReadFile(filepath.Join("artifacts", name))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("wrote %s", filepath.Join(dir, name))
		}
	}
}

// TestOIDCPageScreenshots saves screenshots of the OpenID Provider's
// server-rendered pages (consent, logout confirmation, signed out, the
// authorization error) and of the sign-in page reached from
// /oauth2/authorize, to artifacts/. The pages are served by web.Pages
// alone, behind a small test mux: they need no server behind them.
func TestOIDCPageScreenshots(t *testing.T) {
	pages := web.New(web.Config{Issuer: "http://127.0.0.1"}, sdkjs.FS)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /consent", func(w http.ResponseWriter, r *http.Request) {
		pages.Consent(w, web.ConsentView{
			ClientID: "dash", ClientName: "Dashboard", RedirectHost: "dash.example.com", UserEmail: "ada@example.com",
			Scopes: []string{"openid", "profile", "email", "offline_access", "reports:read"},
			Action: "/oauth2/consent", Fields: []web.Field{{Name: "csrf_token", Value: "t"}},
			FormTargets: []string{"https://dash.example.com"},
		})
	})
	mux.HandleFunc("GET /logout-confirm", func(w http.ResponseWriter, r *http.Request) {
		pages.LogoutConfirm(w, web.LogoutView{ClientID: "dash", ClientName: "Dashboard", Action: "/oauth2/logout",
			Fields: []web.Field{{Name: "csrf_token", Value: "t"}}})
	})
	mux.HandleFunc("GET /signed-out", func(w http.ResponseWriter, r *http.Request) {
		pages.SignedOut(w, web.SignedOutView{})
	})
	mux.HandleFunc("GET /authorize-error", func(w http.ResponseWriter, r *http.Request) {
		pages.Error(w, http.StatusBadRequest, web.ErrorView{
			Title:   "This app's sign-in link is not valid",
			Message: "The address it asked Latch to send you back to is not registered for the app “dash”.",
		})
	})
	mux.Handle("/", pages)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	b := startBrowser(t)
	tb := b.newProfile(t)
	tb.do("size the window", chromedp.EmulateViewport(1200, 860))
	var shots []string
	for _, p := range []struct{ path, name, ready string }{
		{"/consent", "consent.png", `document.getElementById('allow') !== null`},
		{"/logout-confirm", "logout-confirm.png", `document.getElementById('logout') !== null`},
		{"/signed-out", "signed-out.png", `document.querySelector('a[href="/login"]') !== null`},
		{"/authorize-error", "authorize-error.png", `document.querySelector('h1') !== null`},
		{"/login?login_hint=ada%40example.com&return_to=" + url.QueryEscape("/oauth2/authorize?client_id=dash&scope=openid"),
			"signin-continue.png", `!document.getElementById('submit').disabled && document.activeElement.id === 'password' && document.getElementById('continue-note') !== null`},
	} {
		tb.navigate(srv.URL + p.path)
		tb.waitJS(p.name, p.ready+` && document.readyState === 'complete' && document.fonts.status === 'loaded'`)
		shots = append(shots, tb.screenshot(p.name))
	}
	for _, s := range shots {
		t.Logf("screenshot: %s", s)
	}
}

// TestConsentFormActionAllowsTheRedirect checks in Chromium, which applies
// form-action to the redirect that follows a form POST, that the consent
// page's policy lets the decision's redirect reach the client's origin,
// and that without the origin in FormTargets the browser blocks it: the
// reason Pages.Consent takes FormTargets.
func TestConsentFormActionAllowsTheRedirect(t *testing.T) {
	rp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte("<!doctype html><title>rp</title><p id=code>" + html.EscapeString(r.URL.Query().Get("code")) + "</p>"))
	}))
	t.Cleanup(rp.Close)
	// Another origin than the pages' (127.0.0.1): localhost on rp's port.
	rpOrigin := strings.Replace(rp.URL, "127.0.0.1", "localhost", 1)

	pages := web.New(web.Config{}, sdkjs.FS)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /consent", func(w http.ResponseWriter, r *http.Request) {
		v := web.ConsentView{ClientID: "dash", RedirectHost: "localhost", UserEmail: "ada@example.com", Scopes: []string{"openid"},
			Action: "/oauth2/consent", Fields: []web.Field{{Name: "request", Value: "r1"}}}
		if r.URL.Query().Get("targets") == "1" {
			v.FormTargets = []string{rpOrigin}
		}
		pages.Consent(w, v)
	})
	mux.HandleFunc("POST /oauth2/consent", func(w http.ResponseWriter, r *http.Request) {
		if r.PostFormValue("request") != "r1" || r.PostFormValue("decision") != "allow" {
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
		http.Redirect(w, r, rpOrigin+"/cb?code=c1", http.StatusSeeOther)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	b := startBrowser(t)
	watch := `window.__violations = []; document.addEventListener('securitypolicyviolation', (e) => window.__violations.push(e.violatedDirective)); true`

	allowed := b.newProfile(t)
	allowed.navigate(srv.URL + "/consent?targets=1")
	var ok bool
	allowed.evalJSON(watch, &ok)
	allowed.do("allow", chromedp.Click(chromedp.ID("allow")))
	allowed.waitJS("the client's callback", `location.origin === `+strconv.Quote(rpOrigin)+` && document.getElementById('code').textContent === 'c1'`)

	blocked := b.newProfile(t)
	blocked.navigate(srv.URL + "/consent")
	blocked.evalJSON(watch, &ok)
	blocked.do("allow", chromedp.Click(chromedp.ID("allow")))
	blocked.waitJS("the form-action violation", `window.__violations.includes('form-action')`)
}
