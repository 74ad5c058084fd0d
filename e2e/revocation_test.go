package e2e_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// signOutWait bounds how long the demo may take to show that its session
// ended, after the click on "Call protected API".
const signOutWait = 10 * time.Second

// TestBrowserRevocation: ending the demo app's session on the account page
// signs the demo app out at its next API call.
func TestBrowserRevocation(t *testing.T) {
	srv := startLatch(t)
	b := startBrowser(t)

	// demoSignedIn opens /demo in tb, signs in with the prefilled demo
	// credentials and returns the session id the page shows.
	demoSignedIn := func(t *testing.T, tb *tab) string {
		t.Helper()
		tb.navigate(srv.URL + "/demo")
		tb.waitJS("the demo sign-in form", `!document.getElementById('signin-view').hidden && !document.getElementById('submit').disabled`)
		tb.do("sign in to the demo", chromedp.Click(chromedp.ID("submit"), chromedp.NodeVisible))
		tb.waitJS("the demo app", `!document.getElementById('app-view').hidden && document.getElementById('session-id').textContent.startsWith('s_')`)
		var sid string
		tb.evalJSON(`document.getElementById('session-id').textContent`, &sid)
		return sid
	}

	// confirm waits for the confirmation dialog and presses its button.
	confirm := func(t *testing.T, tb *tab) {
		t.Helper()
		tb.waitJS("the confirmation dialog", `document.getElementById('confirm-dialog').open`)
		tb.do("confirm", chromedp.Click(chromedp.ID("confirm-ok"), chromedp.NodeVisible))
	}

	// signedOut clicks "Call protected API" in the demo and waits for the
	// signed-out view.
	signedOut := func(t *testing.T, demo *tab) {
		t.Helper()
		mark := srv.rec.mark()
		demo.do("call the protected API", chromedp.Click(chromedp.ID("call-api"), chromedp.NodeVisible))
		// The page reacts within one API call and at most one refresh.
		if _, ok := demo.poll(signOutWait, `!document.getElementById('revoked-view').hidden && document.getElementById('revoked-title').textContent.includes('You were signed out') && document.getElementById('app-view').hidden`); !ok {
			var shown struct {
				Status string `json:"status"`
				Body   string `json:"body"`
			}
			demo.evalJSON(`({status: document.getElementById('api-status').textContent, body: document.getElementById('api-body').textContent})`, &shown)
			t.Fatalf("the demo did not show that it was signed out within %v after \"Call protected API\".\n"+
				"It shows %q: %q.\nRequests: %v\nCookies left in the demo's browser: %v",
				signOutWait, shown.Status, shown.Body, srv.rec.since(mark), names(demo.cookies()))
		}
		for _, r := range srv.rec.matching(mark, "GET", "/v1/me") {
			if r.Status != 401 {
				t.Errorf("the demo's API call was answered %d, want 401: %v", r.Status, r)
			}
		}
		if refreshes := srv.rec.matching(mark, "POST", "/v1/auth/refresh"); len(refreshes) > 1 {
			t.Errorf("%d refresh attempts after the revocation, want at most 1: %v", len(refreshes), refreshes)
		}
	}

	t.Run("the account page of another browser signs the session out", func(t *testing.T) {
		demo := b.newProfile(t)
		sid := demoSignedIn(t, demo)
		account := b.newProfile(t) // another browser: its own cookies, its own session
		account.loginViaPage(srv.URL, srv.email, srv.pass)
		row := fmt.Sprintf(`#sessions li[data-session-id=%q]`, sid)
		account.waitJS("the demo session's row", fmt.Sprintf(`document.querySelector(%q) !== null`, row))
		mark := srv.rec.mark()
		account.do(`click "Sign out" on the demo session`, chromedp.Click(chromedp.CSS(row+" button"), chromedp.NodeVisible))
		confirm(t, account)
		account.waitJS("the row to go", fmt.Sprintf(`document.querySelector(%q) === null`, row))
		if del := srv.rec.matching(mark, "DELETE", "/v1/sessions/"+sid); len(del) != 1 || del[0].Status != 204 {
			t.Fatalf("DELETE /v1/sessions/%s: %v, want one answered 204", sid, del)
		}
		signedOut(t, demo)
		// The account page's own session is untouched.
		var me fetchResult
		account.evalJSON(`(`+jsFetchResult+`)(fetch('/v1/me'))`, &me)
		if me.Status != 200 {
			t.Errorf("the account page's session: /v1/me %d, want 200", me.Status)
		}
	})

	t.Run(`"Sign out" on this device in a tab of the same browser`, func(t *testing.T) {
		demo := b.newProfile(t)
		sid := demoSignedIn(t, demo)
		// A tab of the same browser: it shares the demo's cookies, so the
		// account page shows the demo session as "This device" (the demo
		// page's own instructions).
		account := demo.sibling(t)
		account.navigate(srv.URL + "/account")
		row := fmt.Sprintf(`#sessions li.session-current[data-session-id=%q]`, sid)
		account.waitJS("the demo session as this device", fmt.Sprintf(`document.querySelector(%q) !== null`, row))
		mark := srv.rec.mark()
		account.do(`click "Sign out" on this device`, chromedp.Click(chromedp.CSS(row+" button"), chromedp.NodeVisible))
		account.waitJS("the sign-in page", `location.pathname === '/login'`)
		if out := srv.rec.matching(mark, "POST", "/v1/auth/logout"); len(out) != 1 || out[0].Status != 204 {
			t.Fatalf("POST /v1/auth/logout: %v, want one answered 204", out)
		}
		signedOut(t, demo)
	})

	t.Run(`"Sign out everywhere" in a tab of the same browser`, func(t *testing.T) {
		demo := b.newProfile(t)
		demoSignedIn(t, demo)
		// A tab of the same browser: it shares the demo's cookies, so the
		// account page shows the demo session as "This device".
		account := demo.sibling(t)
		account.navigate(srv.URL + "/account")
		account.waitJS("the account page", `document.querySelector('#sessions .session-row') !== null && !document.getElementById('signout-all').disabled`)
		mark := srv.rec.mark()
		account.do(`click "Sign out everywhere"`, chromedp.Click(chromedp.ID("signout-all"), chromedp.NodeVisible))
		confirm(t, account)
		account.waitJS("the sign-in page", `location.pathname === '/login'`)
		if all := srv.rec.matching(mark, "POST", "/v1/auth/logout-all"); len(all) != 1 || all[0].Status != 204 {
			t.Fatalf("POST /v1/auth/logout-all: %v, want one answered 204", all)
		}
		signedOut(t, demo)
	})
}
