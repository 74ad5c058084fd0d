package e2e_test

import (
	"context"
	"regexp"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/latchauth/latch/auth"
	"github.com/latchauth/latch/mail/mailtest"
)

// TestBrowserEmailLinks: the pages of the one-time links from emails
// (/verify, /unlock), one script driven by each form's data, work in a
// real browser: opened from the email they wait for the click, then the
// click verifies the address or lifts the sign-in lock, and the page says
// so.
func TestBrowserEmailLinks(t *testing.T) {
	sink := mailtest.Start(t)
	srv := startLatchMail(t, sink)
	const addr, pw = "vic@example.com", "correct horse battery"
	u, err := srv.in.Auth.CreateUser(t.Context(), addr, pw, auth.Device{})
	if err != nil {
		t.Fatal(err)
	}
	tab := startBrowser(t).newProfile(t)

	if err := srv.in.Account.SendVerification(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	verify := regexp.MustCompile(`http://localhost:\d+/verify#token=latch_ve_[A-Za-z0-9_-]+`).FindString(waitMail(t, sink, "Verify your email address").Text)
	if verify == "" {
		t.Fatal("no verification link in the email")
	}
	tab.navigate(verify)
	tab.waitJS("the verify button", `!document.getElementById('submit').disabled`)
	if got, _ := srv.in.Store.UserByID(context.Background(), u.ID); got.EmailVerified() {
		t.Fatal("opening the link verified the address")
	}
	tab.do("verify", chromedp.Click(chromedp.ID("submit")))
	tab.waitJS("the page to say so", `document.getElementById('link-title').textContent === 'Email address verified'`)
	if got, _ := srv.in.Store.UserByID(context.Background(), u.ID); !got.EmailVerified() {
		t.Fatal("the address is not verified after the click")
	}

	if err := srv.in.Account.SendUnlock(t.Context(), addr); err != nil {
		t.Fatal(err)
	}
	unlock := regexp.MustCompile(`http://localhost:\d+/unlock#token=latch_ul_[A-Za-z0-9_-]+`).FindString(waitMail(t, sink, "Sign-in to your account was locked").Text)
	if unlock == "" {
		t.Fatal("no unlock link in the email")
	}
	tab.navigate(unlock)
	tab.waitJS("the unlock button", `!document.getElementById('submit').disabled`)
	tab.do("unlock", chromedp.Click(chromedp.ID("submit")))
	tab.waitJS("the page to say so", `document.getElementById('link-title').textContent === 'Sign-in unlocked'`)
	// The link is spent: opened again, the click is refused.
	tab.navigate("about:blank")
	tab.navigate(unlock)
	tab.waitJS("the unlock button again", `!document.getElementById('submit').disabled`)
	tab.do("unlock again", chromedp.Click(chromedp.ID("submit")))
	tab.waitJS("the refusal", `document.getElementById('notice').className.includes('notice-error') && document.getElementById('submit').disabled`)
}
