package e2e_test

import (
	"bufio"
	"crypto/rand"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/latchauth/latch/auth"
)

// ssoApp is one app of examples/sso running in its own process.
type ssoApp struct {
	id, secret string
	addr       string // 127.0.0.1:PORT, where it listens
	base       string // http://app-x.localhost:PORT, where the browser reaches it
	mu         sync.Mutex
	log        []string
}

// logged reports whether the app's log has a line containing s.
func (a *ssoApp) logged(s string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, l := range a.log {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

var listening = regexp.MustCompile(`listening on (\S+), serving .* at (\S+) \(issuer`)

// startSSOApp runs the example app binary bin as client id on host.
func startSSOApp(t *testing.T, bin, issuer, id, name, host string) *ssoApp {
	t.Helper()
	a := &ssoApp{id: id, secret: rand.Text() + rand.Text()}
	cmd := exec.Command(bin, "-name", name, "-host", host, "-addr", "127.0.0.1:0", "-issuer", issuer, "-client-id", id)
	cmd.Env = append(os.Environ(), "LATCH_CLIENT_SECRET="+a.secret)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			a.mu.Lock()
			t.Logf("%s log:\n%s", name, strings.Join(a.log, "\n"))
			a.mu.Unlock()
		}
	})
	ready := make(chan [2]string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			a.mu.Lock()
			a.log = append(a.log, line)
			a.mu.Unlock()
			if m := listening.FindStringSubmatch(line); m != nil {
				select {
				case ready <- [2]string{m[1], m[2]}:
				default:
				}
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	select {
	case m := <-ready:
		a.addr, a.base = m[0], m[1]
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not start within 30 s", name)
	}
	return a
}

// buildSSOExample builds examples/sso, its own module, as a user would.
func buildSSOExample(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "sso")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = filepath.Join("..", "examples", "sso")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./examples/sso: %v\n%s", err, out)
	}
	return bin
}

// TestCrossDomainSSO drives examples/sso in Chromium: two confidential
// relying parties on two hosts (app-a.localhost, app-b.localhost), each
// with its own session cookie. The user signs in on A through Latch's
// sign-in page and approves A on the consent page; B (first-party) is then
// signed in without a password or a page; signing out on B (RP-initiated
// logout) ends A's session through back-channel logout, which A's page
// shows. Screenshots of both apps signed in go to artifacts/.
func TestCrossDomainSSO(t *testing.T) {
	srv := startLatch(t)
	// The outbox worker delivers the back-channel logout tokens.
	srv.in.Start(t.Context())
	bin := buildSSOExample(t)
	b := startBrowser(t)

	appA := startSSOApp(t, bin, srv.URL, "app-a", "App A", "app-a.localhost")
	appB := startSSOApp(t, bin, srv.URL, "app-b", "App B", "app-b.localhost")
	for _, a := range []*ssoApp{appA, appB} {
		if _, err := srv.in.Auth.CreateClient(t.Context(), auth.NewClient{
			ID: a.id, Secret: a.secret,
			RedirectURIs:           []string{a.base + "/callback"},
			PostLogoutRedirectURIs: []string{a.base + "/signed-out"},
			// Latch posts to the listener itself: no name to resolve.
			BackchannelLogoutURI: "http://" + a.addr + "/backchannel-logout",
			FirstParty:           a == appB,
		}); err != nil {
			t.Fatalf("register %s: %v", a.id, err)
		}
	}
	latch, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	var shots []string

	// A: not signed in anywhere, so its silent attempt (prompt=none)
	// comes back login_required and A shows the sign-in button.
	tabA := b.newProfile(t)
	tabA.navigate(appA.base + "/")
	tabA.waitJS("A signed out", `document.getElementById('status').dataset.state === 'signed-out' && location.host === '`+hostOf(appA.base)+`'`)
	if c := tabA.cookies(); c["sso_example_app-a"] != nil {
		t.Fatalf("A has a session cookie before signing in")
	}

	// Sign in on A through Latch's real sign-in page, then the consent page.
	tabA.do("click Sign in on A", chromedp.Click(chromedp.ID("login")))
	tabA.waitJS("Latch's sign-in page", `location.host === '`+latch.Host+`' && location.pathname === '/login' && !document.getElementById('submit').disabled`)
	tabA.do("type the credentials and submit",
		chromedp.SendKeys(chromedp.ID("email"), srv.email),
		chromedp.SendKeys(chromedp.ID("password"), srv.pass),
		chromedp.Click(chromedp.ID("submit")),
	)
	tabA.waitJS("the consent page for app-a", `location.host === '`+latch.Host+`' && document.getElementById('allow') !== null && document.body.innerText.includes('app-a')`)
	shots = append(shots, tabA.screenshot("sso-consent-app-a.png"))
	tabA.do("allow", chromedp.Click(chromedp.ID("allow")))
	tabA.waitJS("A signed in", `location.host === '`+hostOf(appA.base)+`' && document.getElementById('status').dataset.state === 'signed-in'`)
	var email, sidA string
	tabA.evalJSON(`document.getElementById('email').textContent`, &email)
	tabA.evalJSON(`document.getElementById('sid').textContent`, &sidA)
	if email != srv.email || !strings.HasPrefix(sidA, "sso_") {
		t.Fatalf("A shows email %q sid %q; want %q and an SSO session id", email, sidA, srv.email)
	}
	shots = append(shots, tabA.screenshot("sso-app-a-signed-in.png"))

	// B, in another tab of the same browser: its own host, no cookie of
	// its own, and yet signed in, with no password typed and no page
	// shown: Latch's SSO session answers B's prompt=none request.
	mark := srv.rec.mark()
	tabB := tabA.sibling(t)
	tabB.navigate(appB.base + "/")
	tabB.waitJS("B signed in without a password", `location.host === '`+hostOf(appB.base)+`' && document.getElementById('status').dataset.state === 'signed-in'`)
	var sidB string
	tabB.evalJSON(`document.getElementById('sid').textContent`, &sidB)
	if sidB != sidA {
		t.Fatalf("B's sid %q differs from A's %q: not one SSO session", sidB, sidA)
	}
	if n := len(srv.rec.matching(mark, "POST", "/v1/auth/login")) + len(srv.rec.matching(mark, "GET", "/login")); n != 0 {
		t.Fatalf("B's sign-in went through Latch's sign-in page (%d requests)", n)
	}
	if n := len(srv.rec.matching(mark, "GET", "/oauth2/authorize")); n != 1 {
		t.Fatalf("B's sign-in made %d authorization requests; want 1", n)
	}
	if n := len(srv.rec.matching(mark, "POST", "/oauth2/token")); n != 1 {
		t.Fatalf("B's sign-in made %d code exchanges; want 1", n)
	}
	shots = append(shots, tabB.screenshot("sso-app-b-signed-in.png"))

	// The apps check the logout token's iat and exp against the real
	// clock: bring the server's test clock up to it.
	srv.clock.Advance(time.Since(srv.clock.Now()))

	// Sign out on B: RP-initiated logout with id_token_hint, back to B's
	// registered post_logout_redirect_uri with its state.
	tabB.do("click Sign out on B", chromedp.Click(chromedp.ID("logout")))
	tabB.waitJS("B signed out, back from Latch with its state", `location.host === '`+hostOf(appB.base)+`' && location.pathname === '/signed-out' && document.getElementById('notice').textContent.includes('every app')`)
	if n := len(srv.rec.matching(mark, "GET", "/oauth2/logout")); n != 1 {
		t.Fatalf("%d requests to the end_session_endpoint; want 1", n)
	}

	// A was told by back-channel logout: its page, still open, sees its
	// session gone and shows it.
	tabA.waitJSFor(30*time.Second, "A's page signed out by back-channel logout", `document.getElementById('status').dataset.state === 'signed-out'`)
	if !appA.logged("back-channel logout sid="+sidA+" ") || !appA.logged("1 session(s) ended") {
		t.Fatal("A's page shows signed out, but A's log has no back-channel logout ending its session")
	}
	// And A cannot silently sign in again: the SSO session is over.
	tabA.navigate(appA.base + "/")
	tabA.waitJS("A stays signed out", `location.host === '`+hostOf(appA.base)+`' && document.getElementById('status').dataset.state === 'signed-out'`)

	for _, s := range shots {
		t.Logf("screenshot: %s", s)
	}
}

// hostOf is the host[:port] of a URL.
func hostOf(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return ""
	}
	return p.Host
}
