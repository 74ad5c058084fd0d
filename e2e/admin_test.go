package e2e_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestAdminConsole walks the admin console in Chromium: the setup link
// creates the first administrator, who signs in through /login, registers
// a client with a redirect URI, creates a user, finds the user (signed in
// elsewhere), sees and revokes a session (its token is refused within a
// second), locks the user (the password was confirmed for the redirect
// URI change a minute before), and reads every
// step on the events page. It saves a screenshot of every page to
// artifacts/ (and, with LATCH_E2E_UPDATE_DOCS=1, docs/img/admin-*.png).
func TestAdminConsole(t *testing.T) {
	srv := startLatch(t)
	const rootEmail, rootPass = "root@example.com", "correct horse battery staple root"
	const userEmail, userPass = "grace@example.com", "correct horse battery staple grace"
	tok, err := srv.in.AdminSetup.Issue(context.Background())
	if err != nil || tok == "" {
		t.Fatalf("setup token: %q, %v", tok, err)
	}
	b := startBrowser(t)
	var shots []string
	shot := func(tb *tab, name string) {
		tb.waitJS(name+" settled", `document.readyState === 'complete' && document.fonts.status === 'loaded' && document.querySelector('main[aria-busy="true"]') === null`)
		shots = append(shots, tb.screenshot(name))
	}

	// The setup link, then the first administrator.
	adm := b.newProfile(t)
	adm.do("size the window", chromedp.EmulateViewport(1280, 900))
	adm.navigate(srv.URL + "/admin/setup?token=" + tok)
	adm.waitJS("the setup form", `document.getElementById('password') !== null`)
	shot(adm, "admin-setup.png")
	adm.do("create the administrator",
		chromedp.SendKeys(chromedp.ID("email"), rootEmail),
		chromedp.SendKeys(chromedp.ID("password"), rootPass),
		chromedp.Click(chromedp.ID("setup-submit")),
	)
	adm.waitJS("the administrator created", `document.body.textContent.includes('Administrator created')`)
	shot(adm, "admin-setup-done.png")
	adm.navigate(srv.URL + "/admin/setup?token=" + tok)
	adm.waitJS("the replayed link refused", `document.body.textContent.includes('administrator exists already')`)

	// Sign in through /login, back to the console.
	adm.do("follow the sign-in link", chromedp.Navigate(srv.URL+"/login?return_to=/admin"))
	adm.waitJS("the sign-in form", `!document.getElementById('submit').disabled`)
	adm.do("sign in",
		chromedp.SendKeys(chromedp.ID("email"), rootEmail),
		chromedp.SendKeys(chromedp.ID("password"), rootPass),
		chromedp.Click(chromedp.ID("submit")),
	)
	adm.waitJS("the console's landing page, the Overview", `location.pathname === '/admin' && document.getElementById('ov-users').textContent === '2'`)

	// A client with a redirect URI; its secret shown once.
	adm.navigate(srv.URL + "/admin/clients")
	adm.waitJS("the clients", `document.getElementById('clients-state').textContent === '' || document.querySelectorAll('#clients tr').length > 0`)
	adm.do("open the new-client form", chromedp.Click(chromedp.ID("client-new")))
	adm.do("fill it",
		chromedp.SendKeys(chromedp.ID("c-id"), "dash"),
		chromedp.SendKeys(chromedp.ID("c-name"), "Dashboard"),
		chromedp.SendKeys(chromedp.ID("c-redirects"), "https://dash.example.com/callback"),
		chromedp.Click(chromedp.ID("client-create")),
	)
	adm.waitJS("the secret", `document.getElementById('secret-dialog').open && document.getElementById('secret-value').value.length >= 32`)
	shots = append(shots, adm.screenshot("admin-client-secret.png"))
	adm.do("close the secret", chromedp.Click(`#secret-dialog button[value="ok"]`))
	adm.waitJS("the client listed", `[...document.querySelectorAll('#clients tr')].some((r) => r.textContent.includes('https://dash.example.com/callback'))`)
	adm.do("edit it: a second redirect URI", chromedp.Click(`#clients button[aria-label="Edit dash"]`))
	adm.waitJS("the edit form", `document.getElementById('client-dialog').open && document.getElementById('c-id').readOnly`)
	adm.do("add the URI", chromedp.SendKeys(chromedp.ID("c-redirects"), "\nhttps://dash.example.com/callback2"), chromedp.Click(chromedp.ID("client-create")))
	// Where an app's codes go changes only after the password.
	adm.waitJS("the password prompt", `document.getElementById('reauth-dialog').open`)
	shots = append(shots, adm.screenshot("admin-reauth.png"))
	adm.do("confirm the password", chromedp.SendKeys(chromedp.ID("reauth-password"), rootPass), chromedp.Click(chromedp.ID("reauth-ok")))
	adm.waitJS("the edit saved", `[...document.querySelectorAll('#clients tr')].some((r) => r.textContent.includes('https://dash.example.com/callback2'))`)
	shot(adm, "admin-clients.png")

	// A user, created in the console.
	adm.navigate(srv.URL + "/admin/users")
	adm.waitJS("the users page", `document.querySelectorAll('#users tr').length >= 1`)
	adm.do("new user",
		chromedp.Click(chromedp.ID("user-new")),
		chromedp.SendKeys(chromedp.ID("new-email"), userEmail),
		chromedp.SendKeys(chromedp.ID("new-password"), userPass),
		chromedp.Click(chromedp.ID("user-create")),
	)
	adm.waitJS("the new user's page", `location.pathname.startsWith('/admin/users/u_') && document.getElementById('user-title').textContent === `+strconv.Quote(userEmail))

	// The user signs in elsewhere: a browser, and an app with a bearer token.
	other := b.newProfile(t)
	other.loginViaPage(srv.URL, userEmail, userPass)
	other.navigate(srv.URL + "/admin")
	other.waitJS("the 403 page", `document.body.textContent.includes('Administrators only')`)
	shots = append(shots, other.screenshot("admin-forbidden.png"))
	res, err := http.Post(srv.URL+"/v1/auth/login", "application/json", strings.NewReader(`{"email":"`+userEmail+`","password":"`+userPass+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	var login struct {
		AccessToken string `json:"access_token"`
		SessionID   string `json:"session_id"`
	}
	_ = json.NewDecoder(res.Body).Decode(&login)
	res.Body.Close()
	if login.AccessToken == "" {
		t.Fatalf("the app's sign-in: %d", res.StatusCode)
	}
	me := func() int {
		req, _ := http.NewRequest("GET", srv.URL+"/v1/me", nil)
		req.Header.Set("Authorization", "Bearer "+login.AccessToken)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if c := me(); c != http.StatusOK {
		t.Fatalf("the app's token before: %d", c)
	}

	// Find the user, see both sessions.
	adm.navigate(srv.URL + "/admin/users")
	adm.waitJS("the users page", `document.querySelectorAll('#users tr').length >= 2`)
	adm.do("search", chromedp.SendKeys(chromedp.ID("q"), "grace"), chromedp.Click(`#user-search button[type="submit"]`))
	adm.waitJS("one match", `document.querySelectorAll('#users tr').length === 1 && document.getElementById('users').textContent.includes('grace@')`)
	shot(adm, "admin-users.png")
	adm.do("open the user", chromedp.Click(`#users a`))
	adm.waitJS("the user's sessions", `document.querySelectorAll('#usessions tr').length === 2 && document.querySelector('#usessions tr[data-session="`+login.SessionID+`"]') !== null`)
	shot(adm, "admin-user.png")

	// Revoke the app's session: its token is refused within a second.
	adm.do("revoke the app's session", chromedp.Click(`#usessions tr[data-session="`+login.SessionID+`"] button`))
	adm.waitJS("the confirmation", `document.getElementById('confirm-dialog').open`)
	shots = append(shots, adm.screenshot("admin-confirm.png"))
	adm.do("confirm", chromedp.Click(chromedp.ID("confirm-ok")))
	adm.waitJS("one session left", `document.querySelectorAll('#usessions tr').length === 1`)
	revoked := time.Now()
	deadline := revoked.Add(time.Second)
	for me() != http.StatusUnauthorized {
		if time.Now().After(deadline) {
			t.Fatal("the revoked session's token is still accepted after 1 s")
		}
		time.Sleep(20 * time.Millisecond) // polling with a deadline
	}

	// Lock the user: confirmed, and within five minutes of the password
	// given for the client's redirect URIs, so not asked again.
	adm.do("lock", chromedp.Click(chromedp.ID("act-lock")))
	adm.waitJS("the confirmation", `document.getElementById('confirm-dialog').open`)
	adm.do("confirm", chromedp.Click(chromedp.ID("confirm-ok")))
	adm.waitJS("the user locked", `!document.getElementById('act-unlock').hidden && document.getElementById('profile').textContent.includes('Locked') && document.querySelectorAll('#usessions tr').length === 0`)

	// The events page shows each step.
	adm.navigate(srv.URL + "/admin/events")
	adm.waitJS("the events", `document.querySelectorAll('#events tr').length > 5`)
	var text string
	adm.evalJSON(`document.getElementById('events').textContent`, &text)
	for _, step := range []string{"admin_created", "login_succeeded", "client_created", "create_client", "user_created", "create_user", "admin_revoked", "lock_user", "account_locked"} {
		if !strings.Contains(text, step) {
			t.Errorf("the events page lacks %s", step)
		}
	}
	shot(adm, "admin-events.png")
	adm.navigate(srv.URL + "/admin/keys")
	adm.waitJS("the keys", `document.querySelectorAll('#keys tr').length >= 2`)
	shot(adm, "admin-keys.png")
	// The Overview: the store's counts and the security log's charts, and
	// this instance's counters once sampled (Start does it each minute;
	// the test's instance is not started).
	if err := srv.in.Stats.Sample(); err != nil {
		t.Fatal(err)
	}
	adm.navigate(srv.URL + "/admin/overview")
	adm.waitJS("the overview", `document.querySelectorAll('#ov-cluster svg.chart').length === 8 && document.querySelectorAll('#ov-instance svg.chart').length >= 8 && document.querySelectorAll('#ov-keys tr').length >= 1`)
	var ov struct {
		Users, Sessions, Store, Redis, Cluster string
		Charts                                 int
	}
	adm.evalJSON(`({Users: document.getElementById('ov-users').textContent, Sessions: document.getElementById('ov-sessions').textContent,
		Store: document.getElementById('ov-health-store').textContent, Redis: document.getElementById('ov-health-redis').textContent,
		Cluster: document.getElementById('ov-cluster').textContent, Charts: document.querySelectorAll('svg.chart[role="img"] title').length})`, &ov)
	if ov.Users != "3" || ov.Store != "Healthy" || ov.Redis != "Not configured" || !strings.Contains(ov.Cluster, "Sign-ins succeeded") || ov.Charts < 16 {
		t.Errorf("the overview shows %+v", ov)
	}
	shot(adm, "admin-overview.png")

	for _, s := range shots {
		t.Logf("screenshot: %s", s)
	}
	if os.Getenv("LATCH_E2E_UPDATE_DOCS") != "" {
		dir := filepath.Join("..", "docs", "img")
		for _, s := range shots {
			b, err := os.ReadFile(s)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, filepath.Base(s)), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
