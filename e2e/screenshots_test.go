package e2e_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/latchauth/latch/auth"
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
