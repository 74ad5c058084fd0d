package e2e_test

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// expire moves the server's clock past the access token's 5-minute life.
// The browser's clock does not move: it keeps its access cookie, which the
// server now answers with 401 invalid_token.
const expire = 6 * time.Minute

// TestBrowserRefresh checks the SDK's transparent refresh in Chromium: one
// expired call, ten concurrent calls, and two tabs calling at once each
// cause exactly one POST /v1/auth/refresh, and every call succeeds.
func TestBrowserRefresh(t *testing.T) {
	srv := startLatch(t)
	b := startBrowser(t)

	// signedIn opens the SDK page in a new browser profile and signs in
	// there with the demo client.
	signedIn := func(t *testing.T) *tab {
		tb := b.newProfile(t)
		tb.openSDKTab(srv.URL)
		var s struct {
			Authenticated bool `json:"authenticated"`
		}
		tb.evalJSON(fmt.Sprintf(`latch.login(%q, %q)`, srv.email, srv.pass), &s)
		if !s.Authenticated {
			t.Fatal("the SDK is not signed in after login")
		}
		var me fetchResult
		tb.evalJSON(`(`+jsFetchResult+`)(latch.fetch('/v1/me'))`, &me)
		if me.Status != 200 {
			t.Fatalf("/v1/me right after login: %d %v", me.Status, me.Body)
		}
		return tb
	}

	// refreshEvents counts the SDK's refresh events in a tab.
	refreshEvents := func(tb *tab) (own, fromOtherTab int) {
		var evs []struct {
			Type         string `json:"type"`
			FromOtherTab bool   `json:"fromOtherTab"`
		}
		tb.evalJSON(`window.latchEvents`, &evs)
		for _, e := range evs {
			if e.Type == "refresh" {
				if e.FromOtherTab {
					fromOtherTab++
				} else {
					own++
				}
			}
		}
		return own, fromOtherTab
	}

	// oneRefresh asserts that exactly one refresh, answered 200, was made
	// from mark on.
	oneRefresh := func(t *testing.T, mark int) {
		t.Helper()
		refreshes := srv.rec.matching(mark, "POST", "/v1/auth/refresh")
		if len(refreshes) != 1 {
			t.Errorf("%d refresh requests, want exactly 1: %v", len(refreshes), refreshes)
			return
		}
		if r := refreshes[0]; r.Status != 200 || r.Cookies[refreshCookie] == "" {
			t.Errorf("the refresh: %v, want 200 with the refresh cookie", r)
		}
	}

	t.Run("an expired access token is refreshed transparently", func(t *testing.T) {
		tb := signedIn(t)
		before := tb.cookies()[accessCookie].Value
		srv.clock.Advance(expire)
		mark := srv.rec.mark()

		var me fetchResult
		tb.evalJSON(`(`+jsFetchResult+`)(latch.fetch('/v1/me'))`, &me)
		if me.Status != 200 || me.Body["email"] != srv.email {
			t.Fatalf("/v1/me after the access token expired: %d %v, want 200 for %s", me.Status, me.Body, srv.email)
		}
		oneRefresh(t, mark)
		// The call went out with the old token, was refused, and was
		// retried once with the new one.
		calls := srv.rec.matching(mark, "GET", "/v1/me")
		if len(calls) != 2 || calls[0].Status != 401 || calls[1].Status != 200 {
			t.Fatalf("/v1/me requests: %v, want a 401 then a 200", calls)
		}
		if calls[0].Cookies[accessCookie] != before {
			t.Errorf("the first call did not carry the expired access cookie")
		}
		after := tb.cookies()[accessCookie].Value
		if after == before || calls[1].Cookies[accessCookie] != after {
			t.Errorf("the retry did not carry a new access cookie")
		}
		if own, _ := refreshEvents(tb); own != 1 {
			t.Errorf("%d refresh events in the page, want 1", own)
		}
	})

	t.Run("ten concurrent calls share one refresh", func(t *testing.T) {
		tb := signedIn(t)
		srv.clock.Advance(expire)
		mark := srv.rec.mark()

		var results []fetchResult
		tb.evalJSON(`Promise.all(Array.from({length: 10}, () => (`+jsFetchResult+`)(latch.fetch('/v1/me'))))`, &results)
		if len(results) != 10 {
			t.Fatalf("%d results, want 10", len(results))
		}
		for i, r := range results {
			if r.Status != 200 {
				t.Errorf("call %d: %d %v %s, want 200", i, r.Status, r.Body, r.Error)
			}
		}
		oneRefresh(t, mark)
		ok := 0
		for _, r := range srv.rec.matching(mark, "GET", "/v1/me") {
			if r.Status == 200 {
				ok++
			}
		}
		if ok != 10 {
			t.Errorf("%d /v1/me answered 200, want 10", ok)
		}
		if own, _ := refreshEvents(tb); own != 1 {
			t.Errorf("%d refresh events in the page, want 1", own)
		}
	})

	t.Run("two tabs share one refresh", func(t *testing.T) {
		a := signedIn(t)
		// A second tab of the same browser profile: same cookies, same
		// origin, so the SDKs share a Web Lock and a BroadcastChannel.
		bt := a.sibling(t)
		bt.openSDKTab(srv.URL)
		var restored struct {
			Authenticated bool `json:"authenticated"`
		}
		bt.evalJSON(`latch.restore()`, &restored)
		if !restored.Authenticated {
			t.Fatal("the second tab did not pick up the session")
		}
		srv.clock.Advance(expire)
		mark := srv.rec.mark()

		// Both tabs call at the same instant: each waits for a common
		// moment on the (shared) browser clock, then fetches.
		at := time.Now().Add(500 * time.Millisecond).UnixMilli()
		call := fmt.Sprintf(`(async () => {
			await new Promise((r) => setTimeout(r, Math.max(0, %d - Date.now())));
			return (%s)(latch.fetch('/v1/me'));
		})()`, at, jsFetchResult)
		var wg sync.WaitGroup
		var ra, rb fetchResult
		var ea, eb error
		wg.Go(func() { ea = a.tryEvalJSON(stepTimeout, call, &ra) })
		wg.Go(func() { eb = bt.tryEvalJSON(stepTimeout, call, &rb) })
		wg.Wait()
		if ea != nil || eb != nil {
			t.Fatalf("calls: %v / %v", ea, eb)
		}
		if ra.Status != 200 || rb.Status != 200 {
			t.Fatalf("tab A: %d %v %s; tab B: %d %v %s; want 200 in both", ra.Status, ra.Body, ra.Error, rb.Status, rb.Body, rb.Error)
		}
		oneRefresh(t, mark)
		calls := srv.rec.matching(mark, "GET", "/v1/me")
		unauthorized := 0
		for _, r := range calls {
			if r.Status == 401 {
				unauthorized++
			}
		}
		aOwn, aOther := refreshEvents(a)
		bOwn, bOther := refreshEvents(bt)
		t.Logf("/v1/me requests: %d (%d answered 401); refresh events: tab A %d own + %d from the other tab, tab B %d + %d",
			len(calls), unauthorized, aOwn, aOther, bOwn, bOther)
		if unauthorized != 2 {
			// Both tabs must have met the expired token, or the test did
			// not exercise the cross-tab path.
			t.Errorf("%d calls answered 401, want 2 (one per tab)", unauthorized)
		}
		if aOwn+bOwn != 1 || aOther+bOther != 1 {
			t.Errorf("refresh events: tab A %d own, %d from the other; tab B %d own, %d from the other; want one own in one tab and the news in the other",
				aOwn, aOther, bOwn, bOther)
		}
	})
}
