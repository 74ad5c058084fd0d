package e2e_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// TestBrowserCookies signs in through /login in Chromium and checks the
// cookie jar, what page scripts can see, where the browser sends the
// refresh cookie, and that signing out empties the jar.
func TestBrowserCookies(t *testing.T) {
	srv := startLatch(t)
	b := startBrowser(t)

	t.Run("sign-in sets exactly the three cookies with their flags", func(t *testing.T) {
		tb := b.newProfile(t)
		tb.loginViaPage(srv.URL, srv.email, srv.pass)
		jar := tb.cookies()
		now := time.Now()
		want := []struct {
			name     string
			path     string
			httpOnly bool
			sameSite network.CookieSameSite
			minLife  time.Duration
			maxLife  time.Duration
		}{
			// The access cookie outlives its 5-minute token (server/browser.go:
			// "as long as the session", so that an expired token still reaches
			// the server and earns invalid_token); never longer than the session.
			{accessCookie, "/", true, network.CookieSameSiteLax, 4 * time.Minute, 7*24*time.Hour + time.Hour},
			// The refresh and CSRF cookies as long as the session may idle (7d).
			{refreshCookie, "/v1/auth", true, network.CookieSameSiteStrict, 6 * 24 * time.Hour, 7*24*time.Hour + time.Hour},
			{csrfCookie, "/", false, network.CookieSameSiteStrict, 6 * 24 * time.Hour, 7*24*time.Hour + time.Hour},
			// The OpenID Provider's SSO session: Lax, so that it rides the
			// top-level navigation from an app to /oauth2/authorize; as long
			// as the SSO session may live (30d).
			{ssoCookie, "/", true, network.CookieSameSiteLax, 29 * 24 * time.Hour, 30*24*time.Hour + time.Hour},
			// The device cookie: it names the browser, not the session, and
			// lives 400 days (the longest a browser keeps one).
			{deviceCookie, "/", true, network.CookieSameSiteLax, 399 * 24 * time.Hour, 400*24*time.Hour + time.Hour},
		}
		var names []string
		for n := range jar {
			names = append(names, n)
		}
		slices.Sort(names)
		if wantNames := []string{refreshCookie, accessCookie, csrfCookie, ssoCookie, deviceCookie}; !slices.Equal(names, sorted(wantNames)) {
			t.Fatalf("cookie jar holds %v, want exactly %v", names, sorted(wantNames))
		}
		for _, w := range want {
			c := jar[w.name]
			if c.Domain != "localhost" {
				t.Errorf("%s: domain %q, want host-only localhost", w.name, c.Domain)
			}
			if c.Path != w.path {
				t.Errorf("%s: path %q, want %q", w.name, c.Path, w.path)
			}
			if !c.Secure {
				t.Errorf("%s: not Secure", w.name)
			}
			if c.HTTPOnly != w.httpOnly {
				t.Errorf("%s: HttpOnly %v, want %v", w.name, c.HTTPOnly, w.httpOnly)
			}
			if c.SameSite != w.sameSite {
				t.Errorf("%s: SameSite %q, want %q", w.name, c.SameSite, w.sameSite)
			}
			if c.Session {
				t.Errorf("%s: a session cookie, want a Max-Age", w.name)
			}
			exp := time.Unix(int64(c.Expires), 0)
			if life := exp.Sub(now); life < w.minLife || life > w.maxLife {
				t.Errorf("%s: expires in %v, want between %v and %v", w.name, life.Round(time.Second), w.minLife, w.maxLife)
			}
			if c.PartitionKey != nil {
				t.Errorf("%s: partitioned (%+v), want unpartitioned", w.name, c.PartitionKey)
			}
		}
		if at, rt := jar[accessCookie].Expires, jar[refreshCookie].Expires; at > rt+1 {
			t.Errorf("the access cookie (expires %v) outlives the refresh cookie (%v)", time.Unix(int64(at), 0), time.Unix(int64(rt), 0))
		}
		t.Logf("cookie lifetimes: access %v, refresh %v, csrf %v",
			time.Until(time.Unix(int64(jar[accessCookie].Expires), 0)).Round(time.Minute),
			time.Until(time.Unix(int64(jar[refreshCookie].Expires), 0)).Round(time.Minute),
			time.Until(time.Unix(int64(jar[csrfCookie].Expires), 0)).Round(time.Minute))
		if v := jar[accessCookie].Value; strings.Count(v, ".") != 2 {
			t.Errorf("access cookie %q is not a compact JWS", v)
		}
		if v := jar[refreshCookie].Value; !strings.HasPrefix(v, "latch_rt_") {
			t.Errorf("refresh cookie %q lacks the latch_rt_ prefix", v)
		}

		t.Run("page scripts see no token", func(t *testing.T) {
			var seen struct {
				Cookie  string   `json:"cookie"`
				Local   []string `json:"local"`
				Session []string `json:"session"`
			}
			tb.evalJSON(`({cookie: document.cookie, local: Object.keys(localStorage), session: Object.keys(sessionStorage)})`, &seen)
			if want := csrfCookie + "=" + jar[csrfCookie].Value; seen.Cookie != want {
				t.Errorf("document.cookie = %q, want only %q", seen.Cookie, want)
			}
			for _, n := range []string{accessCookie, refreshCookie} {
				if strings.Contains(seen.Cookie, jar[n].Value) || strings.Contains(seen.Cookie, n) {
					t.Errorf("document.cookie exposes %s: %q", n, seen.Cookie)
				}
			}
			if len(seen.Local) != 0 || len(seen.Session) != 0 {
				t.Errorf("web storage is not empty: localStorage %v, sessionStorage %v", seen.Local, seen.Session)
			}
		})
	})

	t.Run("resource paths never receive the refresh cookie", func(t *testing.T) {
		tb := b.newProfile(t)
		start := srv.rec.mark()
		tb.loginViaPage(srv.URL, srv.email, srv.pass)
		// More of the API, through the page's own origin: resources, the
		// public documents, and a path that only starts like /v1/auth.
		var results []fetchResult
		tb.evalJSON(`(async () => {
			const csrf = document.cookie.split('; ').find((c) => c.startsWith('`+csrfCookie+`=')).split('=')[1];
			const calls = [
				fetch('/v1/me'), fetch('/v1/sessions'), fetch('/v1/events?limit=5'),
				fetch('/v1/sessions/s_doesnotexist', {method: 'DELETE', headers: {'X-CSRF-Token': csrf}}),
				fetch('/.well-known/jwks.json'), fetch('/healthz'), fetch('/v1/authentic'), fetch('/v1/auth'),
			];
			return Promise.all(calls.map(`+jsFetchResult+`));
		})()`, &results)
		for i, want := range []int{200, 200, 200, 404, 200, 200, 404, 404} {
			if results[i].Status != want {
				t.Errorf("call %d: status %d, want %d (%v)", i, results[i].Status, want, results[i].Body)
			}
		}
		// The access token expires; reloading the account page refreshes
		// it through the SDK, which sends the refresh cookie.
		srv.clock.Advance(6 * time.Minute)
		tb.navigate(srv.URL + "/account")
		tb.waitJS("the account page after a refresh", `document.querySelector('#sessions .session-row') !== null`)

		reqs := srv.rec.since(start)
		withRefresh := 0
		resources := map[string]int{}
		for _, r := range reqs {
			if _, ok := r.Cookies[refreshCookie]; ok {
				withRefresh++
				if !underAuth(r.Path) {
					t.Errorf("the refresh cookie reached %s %s", r.Method, r.Path)
				}
			}
			if !underAuth(r.Path) && strings.HasPrefix(r.Path, "/v1/") {
				if _, ok := r.Cookies[accessCookie]; ok {
					resources[r.Path]++
				}
			}
		}
		refreshes := srv.rec.matching(start, "POST", "/v1/auth/refresh")
		if len(refreshes) != 1 || refreshes[0].Status != 200 {
			t.Errorf("refreshes after the clock moved: %v, want one answered 200", refreshes)
		}
		for _, r := range refreshes {
			if r.Cookies[refreshCookie] == "" {
				t.Errorf("the refresh request carried no refresh cookie: %v", r)
			}
		}
		if withRefresh == 0 {
			t.Error("no request carried the refresh cookie at all; the check above proves nothing")
		}
		for _, p := range []string{"/v1/me", "/v1/sessions", "/v1/events"} {
			if resources[p] == 0 {
				t.Errorf("no cookie-authenticated request to %s was recorded", p)
			}
		}
		t.Logf("%d requests, %d with the refresh cookie (all under /v1/auth/), resource requests with the access cookie: %v",
			len(reqs), withRefresh, resources)
	})

	t.Run("signing out clears the cookies", func(t *testing.T) {
		tb := b.newProfile(t)
		tb.loginViaPage(srv.URL, srv.email, srv.pass)
		if n := len(tb.cookies()); n != 5 {
			t.Fatalf("%d cookies after sign-in, want 5 (the session's 3, the SSO cookie and the device cookie)", n)
		}
		start := srv.rec.mark()
		tb.do("click Sign out", chromedp.Click(chromedp.ID("signout"), chromedp.NodeVisible))
		tb.waitJS("the sign-in page saying so", `location.pathname === '/login' && document.getElementById('notice').textContent.includes('signed out')`)
		logouts := srv.rec.matching(start, "POST", "/v1/auth/logout")
		if len(logouts) != 1 || logouts[0].Status != 204 {
			t.Errorf("logout requests: %v, want one answered 204", logouts)
		}
		// Only the device cookie stays: it names the browser, so that the
		// next sign-in here is a known device, and holds no credential.
		if jar := tb.cookies(); len(jar) != 1 || jar[deviceCookie] == nil {
			t.Errorf("cookies left after signing out: %v, want only %s", names(jar), deviceCookie)
		}
		var dc string
		tb.evalJSON(`document.cookie`, &dc)
		if dc != "" {
			t.Errorf("document.cookie after signing out = %q", dc)
		}
		// The session is over on the server too: the old cookies are gone
		// and /v1/me says so.
		var me fetchResult
		tb.evalJSON(`(`+jsFetchResult+`)(fetch('/v1/me'))`, &me)
		if me.Status != 401 {
			t.Errorf("/v1/me after signing out: %d %v, want 401", me.Status, me.Body)
		}
	})
}

// underAuth reports whether a path is within the refresh cookie's
// Path=/v1/auth: /v1/auth itself or below it (not /v1/authentic).
func underAuth(p string) bool {
	return p == "/v1/auth" || strings.HasPrefix(p, "/v1/auth/")
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func names(jar map[string]*network.Cookie) []string {
	var out []string
	for n, c := range jar {
		out = append(out, fmt.Sprintf("%s (domain %s, path %s)", n, c.Domain, c.Path))
	}
	slices.Sort(out)
	return out
}
