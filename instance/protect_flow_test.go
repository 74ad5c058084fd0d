package instance_test

import (
	"net/http"
	"testing"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/challenge"
	"github.com/latchauth/latch/config"
	"github.com/latchauth/latch/risk"
)

// deviceCookie returns the device cookie an answer sets, or "".
func deviceCookie(r response) string {
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if c.Name == "latch_device" {
			return c.Value
		}
	}
	return ""
}

// TestNewDeviceChallengeFlow: with risk.new_device: challenge the real
// guards work together: the first browser signs in plainly; a fresh
// browser profile is held back for an emailed code, gets its device
// cookie with the 403 so that only it can complete, completes, and is a
// known device afterwards (no second challenge). Another browser (no
// cookie) cannot complete the challenge, even with the right code.
func TestNewDeviceChallengeFlow(t *testing.T) {
	h := start(t, "", func(c *config.Config) { c.Risk.NewDevice = risk.Challenge })
	mb := &mailbox{h: h}
	const addr, pw = "nina@example.com", "a long enough password"
	uid := h.addUser(addr, pw)
	login := func(cookie string) response {
		hdr := []string{"User-Agent", chromeUA, "Sec-Fetch-Site", "same-origin"}
		if cookie != "" {
			hdr = append(hdr, "Cookie", "latch_device="+cookie)
		}
		return h.do("POST", "/v1/auth/login", jsonBody(map[string]string{"email": addr, "password": pw}), hdr...)
	}
	complete := func(cookie, id, code string) response {
		hdr := []string{"User-Agent", chromeUA, "Sec-Fetch-Site", "same-origin"}
		if cookie != "" {
			hdr = append(hdr, "Cookie", "latch_device="+cookie)
		}
		return h.do("POST", "/v1/auth/challenge", completeBody(id, code), hdr...)
	}

	first := login("")
	expect(t, "the first sign-in of the account", first, http.StatusOK, "")
	a := deviceCookie(first)
	if a == "" {
		t.Fatal("the first sign-in set no device cookie")
	}
	expect(t, "browser A again", login(a), http.StatusOK, "")

	held := login("")
	expect(t, "a fresh profile", held, http.StatusForbidden, "challenge_required")
	b := deviceCookie(held)
	if b == "" || b == a {
		t.Fatalf("the challenged browser got device cookie %q (A has %q): it needs its own to complete", b, a)
	}
	var code string
	waitFor(t, "the challenge email", func() bool {
		for _, e := range mb.fetch() {
			if e.To == addr && e.Template == challenge.Template {
				code = e.Data["code"]
			}
		}
		return code != ""
	})
	id := held.str("challenge_id")
	expect(t, "another browser with the right code", complete("", id, code), http.StatusBadRequest, "invalid_challenge")
	done := complete(b, id, code)
	expect(t, "the challenged browser completes", done, http.StatusOK, "")
	if done.str("access_token") == "" {
		t.Fatalf("no tokens: %s", done.raw)
	}
	expect(t, "browser B signs in again without a code", login(b), http.StatusOK, "")
	evs, err := h.in.Store.EventsByUser(t.Context(), uid, 50)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, e := range evs {
		seen[e.Type]++
	}
	if seen[latch.EventRiskChallenged] != 1 || seen["challenge_sent"] != 1 {
		t.Errorf("events %v: want one risk_challenged and one challenge_sent", seen)
	}
}

// TestAllowedSignInRecordsItsDecision: an allowed sign-in's decision (its
// signals, score and action) rides on its login_succeeded event, so that
// the log holds every sign-in's decision and latch risk replay can score
// the allowed ones again too.
func TestAllowedSignInRecordsItsDecision(t *testing.T) {
	h := start(t, "", nil)
	uid := h.addUser("rita@example.com", "a long enough password")
	h.login("rita@example.com", "a long enough password")
	evs, err := h.in.Store.EventsByUser(t.Context(), uid, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if e.Type != latch.EventLoginSucceeded {
			continue
		}
		sig, dec, err := risk.ParseEventDetail(e.Detail)
		if err != nil {
			t.Fatalf("login_succeeded without a readable decision: %v (%v)", err, e.Detail)
		}
		if dec.Action != risk.Allow || sig.Kind != risk.KindSignIn || sig.IP == "" {
			t.Fatalf("recorded decision %+v from signals %+v", dec, sig)
		}
		return
	}
	t.Fatal("no login_succeeded event")
}
