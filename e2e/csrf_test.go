package e2e_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// attackerPage is served by another site (http://127.0.0.1:OTHER, while
// Latch is http://localhost:PORT): after load it either submits a form
// POST to target, or fires credentialed no-cors fetches at it.
const attackerPage = `<!doctype html>
<html><head><meta charset="utf-8"><title>attacker</title></head><body>
<form id="f" method="POST" action="%[1]s"><input type="hidden" name="x" value="1"></form>
<script>
window.addEventListener('load', () => setTimeout(async () => {
  if (%[2]t) { document.getElementById('f').submit(); return; }
  const opts = { method: 'POST', credentials: 'include', mode: 'no-cors', headers: { 'Content-Type': 'text/plain' }, body: '{}' };
  await Promise.allSettled([fetch('%[1]s', opts)]);
  document.title = 'sent';
}, 50));
</script></body></html>`

// TestBrowserCrossSite checks the CSRF defence in Chromium: requests from
// another site reach Latch without the session's cookies, and a request
// from Latch's own origin without the X-CSRF-Token header is refused; the
// session survives all of them.
func TestBrowserCrossSite(t *testing.T) {
	srv := startLatch(t)
	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, attackerPage, srv.URL+r.URL.Query().Get("to"), r.URL.Path == "/form")
	}))
	defer attacker.Close()
	b := startBrowser(t)

	victim := b.newProfile(t)
	victim.loginViaPage(srv.URL, srv.email, srv.pass)
	sessionAlive := func(t *testing.T) {
		t.Helper()
		var me fetchResult
		victim.evalJSON(`(`+jsFetchResult+`)(fetch('/v1/me'))`, &me)
		if me.Status != 200 || me.Body["email"] != srv.email {
			t.Fatalf("/v1/me from the Latch tab: %d %v, want 200: the session did not survive", me.Status, me.Body)
		}
		if n := len(victim.cookies()); n != 5 {
			t.Fatalf("%d cookies in the jar, want the 3 of the session, the SSO cookie and the device cookie", n)
		}
	}

	// arrived waits for the attacker's request and checks that it carried
	// none of the session's cookies and was refused.
	arrived := func(t *testing.T, mark int, path string) {
		t.Helper()
		var got []request
		for deadline := time.Now().Add(stepTimeout); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if got = srv.rec.matching(mark, "POST", path); len(got) > 0 {
				break
			}
		}
		if len(got) == 0 {
			t.Fatalf("the cross-site POST %s never arrived", path)
		}
		for _, r := range got {
			for _, n := range []string{accessCookie, refreshCookie, csrfCookie} {
				if _, ok := r.Cookies[n]; ok {
					t.Errorf("the cross-site request carried %s: %v", n, r)
				}
			}
			if r.Status < 400 {
				t.Errorf("the cross-site request was answered %d, want a refusal: %v", r.Status, r)
			}
			if r.FetchSite != "cross-site" {
				t.Errorf("Sec-Fetch-Site %q, want cross-site", r.FetchSite)
			}
			t.Logf("arrived: %v", r)
		}
	}

	for _, path := range []string{"/v1/auth/logout-all", "/v1/auth/logout", "/v1/auth/refresh"} {
		t.Run("cross-site form POST to "+path, func(t *testing.T) {
			evil := victim.sibling(t) // same browser profile: the cookie jar holds the session
			mark := srv.rec.mark()
			evil.navigate(attacker.URL + "/form?to=" + path)
			arrived(t, mark, path)
			sessionAlive(t)
		})
	}

	t.Run("cross-site credentialed fetch to /v1/auth/logout-all", func(t *testing.T) {
		evil := victim.sibling(t)
		mark := srv.rec.mark()
		evil.navigate(attacker.URL + "/fetch?to=/v1/auth/logout-all")
		evil.waitJS("the attacker's fetch", `document.title === 'sent'`)
		arrived(t, mark, "/v1/auth/logout-all")
		sessionAlive(t)
	})

	t.Run("same-origin POST without the CSRF header", func(t *testing.T) {
		mark := srv.rec.mark()
		var res []fetchResult
		victim.evalJSON(`Promise.all([
			{},
			{'X-CSRF-Token': 'not-the-token'},
		].map((h) => (`+jsFetchResult+`)(fetch('/v1/auth/logout-all', {
			method: 'POST', credentials: 'include', headers: {'Content-Type': 'application/json', ...h}, body: '{}',
		}))))`, &res)
		for i, r := range res {
			if r.Status != 403 || r.Body["error"] != "csrf_failed" {
				t.Errorf("logout-all %s: %d %v, want 403 csrf_failed", []string{"without X-CSRF-Token", "with a wrong X-CSRF-Token"}[i], r.Status, r.Body)
			}
		}
		// It did reach the server with the cookies: the refusal is the
		// CSRF check's, not SameSite's.
		for _, r := range srv.rec.matching(mark, "POST", "/v1/auth/logout-all") {
			if r.Cookies[accessCookie] == "" {
				t.Errorf("the same-origin request lacked the access cookie: %v", r)
			}
		}
		sessionAlive(t)
	})
}
