package e2e_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/auth"
	"github.com/latchauth/latch/challenge"
)

// alwaysChallenge is a sign-in guard that holds every sign-in back for a
// step-up challenge (as risk.new_device: challenge does for a new device).
type alwaysChallenge struct{}

func (alwaysChallenge) ScreenSignIn(context.Context, *auth.Authentication, string, auth.Device) (*auth.Screening, error) {
	return nil, auth.ErrChallenge
}

// emailedCode returns the code of the challenge email to to in the
// instance's outbox (no worker runs here). The email is enqueued in the
// transaction that records the challenge, before the page is answered, so
// it is there once the code form shows.
func emailedCode(t *testing.T, srv *latchServer, to string) string {
	t.Helper()
	now := srv.clock.Now()
	msgs, err := srv.in.Store.ClaimOutbox(context.Background(), "e2e", now, now.Add(time.Hour), 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if m.Kind != latch.OutboxEmail {
			continue
		}
		if e, err := latch.ParseEmailMessage(m.Payload); err == nil && e.To == to && e.Template == challenge.Template {
			return e.Data["code"]
		}
	}
	t.Fatalf("no challenge email to %s in the outbox", to)
	return ""
}

// TestBrowserChallenge: on /login a held-back sign-in shows the code form
// (no session yet); a wrong code says how many tries are left; the right
// code signs in (cookies and the SSO session) and goes to /account.
func TestBrowserChallenge(t *testing.T) {
	srv := startLatch(t)
	srv.in.Auth.SetGuards(auth.Guards{SignIn: alwaysChallenge{}, Challenger: srv.in.Challenges})
	b := startBrowser(t)
	tb := b.newProfile(t)

	tb.navigate(srv.URL + "/login")
	tb.waitJS("the sign-in form to be ready", `!document.getElementById('submit').disabled`)
	tb.do("type the credentials and submit",
		chromedp.SendKeys(chromedp.ID("email"), srv.email),
		chromedp.SendKeys(chromedp.ID("password"), srv.pass),
		chromedp.Click(chromedp.ID("submit")),
	)
	tb.waitJS("the code form", `!document.getElementById('code-form').hidden && document.getElementById('auth-form').hidden`)
	if jar := tb.cookies(); jar[refreshCookie] != nil || jar[ssoCookie] != nil {
		t.Fatalf("cookies before the code was entered: %v", names(jar))
	}
	code := emailedCode(t, srv, srv.email)

	wrong := "000000"
	if code == wrong {
		wrong = "000001"
	}
	tb.do("type a wrong code", chromedp.SendKeys(chromedp.ID("code"), wrong), chromedp.Click(chromedp.ID("code-submit")))
	tb.waitJS("the wrong-code message", `document.getElementById('code-error').textContent.includes('4 tries left')`)

	tb.do("type the code, with a space", chromedp.SendKeys(chromedp.ID("code"), fmt.Sprintf("%s %s", code[:3], code[3:])),
		chromedp.Click(chromedp.ID("code-submit")))
	tb.waitJS("the account page with its sessions",
		`location.pathname === '/account' && document.querySelector('#sessions .session-row') !== null`)
	jar := tb.cookies()
	for _, n := range []string{accessCookie, refreshCookie, csrfCookie, ssoCookie} {
		if jar[n] == nil {
			t.Errorf("after the code: no %s cookie (have %v)", n, names(jar))
		}
	}
}
