package instance_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/account"
	"github.com/latchauth/latch/auth"
	"github.com/latchauth/latch/config"
)

// knownDevices is the device service's answer, faked: one device of one
// user is known.
type knownDevices struct{ userID, deviceID string }

func (k knownDevices) Known(_ context.Context, userID, deviceID string) (bool, error) {
	return userID != "" && userID == k.userID && deviceID == k.deviceID, nil
}

// lockoutConfig: three failures lock an address out of an email, twelve
// from anywhere lock the email (for everyone but known devices); the
// client address comes from X-Forwarded-For (the test's loopback peer is
// the trusted proxy).
func lockoutConfig(c *config.Config) {
	c.Login.RatePerIP = 0
	c.Login.MaxFailures = 3
	c.Login.Lockout = config.Duration(15 * time.Minute)
	c.Login.AccountMaxFailures = 12
	c.Login.AccountWindow = config.Duration(time.Hour)
	c.TrustedProxies = []string{"127.0.0.1/32", "::1/128"}
}

func loginFrom(h *harness, ip, addr, pw string) response {
	return h.do("POST", "/v1/auth/login", jsonBody(map[string]string{"email": addr, "password": pw}), "X-Forwarded-For", ip)
}

// unlockEmails claims the outbox and returns the unlock emails to addr
// received so far.
func unlockEmails(mb *mailbox, addr string) []latch.EmailMessage {
	var out []latch.EmailMessage
	for _, e := range mb.fetch() {
		if e.To == addr && e.Template == account.TemplateUnlockSignIn {
			out = append(out, e)
		}
	}
	return out
}

func unlock(h *harness, token string) response {
	return h.do("POST", "/v1/auth/unlock", jsonBody(map[string]string{"token": token}))
}

// TestLockoutAttack: lockout is not a weapon. Strangers at many addresses
// hammer one account: each address is locked out after its own three
// failures while the owner at their own address still signs in; past the
// account-wide threshold every address is locked, but the owner on a
// known device still signs in, and the owner receives exactly one email
// with an unlock link. Opening the link changes nothing; its POST
// unlocks; reuse, expiry, another user's link and another purpose's
// token are refused; the strangers' own addresses stay locked.
func TestLockoutAttack(t *testing.T) {
	h := start(t, "", lockoutConfig)
	mb := &mailbox{h: h}
	const ada, bob = "ada@example.com", "bob@example.com"
	adaID := h.addUser(ada, adaPass)
	h.addUser(bob, adaPass)
	h.in.Auth.SetGuards(auth.Guards{Devices: knownDevices{userID: adaID, deviceID: "dev-ada"}})
	const home = "203.0.113.7"

	// One stranger: three failures lock only their address.
	for range 3 {
		expect(t, "stranger 1", loginFrom(h, "192.0.2.1", ada, "wrong password!"), 401, "invalid_credentials")
	}
	expect(t, "stranger 1, fourth attempt (even with the password)", loginFrom(h, "192.0.2.1", ada, adaPass), 403, "account_locked")
	expect(t, "the owner at home", loginFrom(h, home, ada, adaPass), 200, "")
	expect(t, "another account from the stranger's address", loginFrom(h, "192.0.2.1", bob, adaPass), 200, "")

	// Three more strangers (nine failures): twelve in all, the
	// account-wide threshold.
	for i := 2; i <= 4; i++ {
		for range 3 {
			expect(t, fmt.Sprintf("stranger %d", i), loginFrom(h, fmt.Sprintf("192.0.2.%d", i), ada, "wrong password!"), 401, "invalid_credentials")
		}
	}
	if n := h.in.Throttle.RecentFailures(context.Background(), ada); n != 12 {
		t.Fatalf("RecentFailures = %d, want 12", n)
	}
	expect(t, "the owner at home, past the account-wide threshold", loginFrom(h, home, ada, adaPass), 403, "account_locked")
	expect(t, "a fresh address", loginFrom(h, "198.51.100.9", ada, adaPass), 403, "account_locked")
	expect(t, "bob is not touched", loginFrom(h, home, bob, adaPass), 200, "")
	// The owner on a known device (the device cookie's id, checked by the
	// device service) still signs in, even from a stranger's address.
	// (The server sets Device.DeviceID from the device cookie.)
	ctx := context.Background()
	if _, err := h.in.Auth.Authenticate(ctx, ada, adaPass, auth.Device{IP: home, DeviceID: "dev-ada"}); err != nil {
		t.Fatalf("the owner's known device: %v", err)
	}
	if _, err := h.in.Auth.Authenticate(ctx, ada, adaPass, auth.Device{IP: home, DeviceID: "dev-stranger"}); !errors.Is(err, auth.ErrAccountLocked) {
		t.Fatalf("a device the owner does not have: %v, want ErrAccountLocked", err)
	}
	// A known device's typos count (its own budget), and push the
	// account-wide count past the threshold: no second email.
	for range 2 {
		if _, err := h.in.Auth.Authenticate(ctx, ada, "wrong password!", auth.Device{IP: home, DeviceID: "dev-ada"}); !errors.Is(err, auth.ErrInvalidCredentials) {
			t.Fatalf("a typo on the known device: %v", err)
		}
	}
	var mails []latch.EmailMessage
	waitFor(t, "the unlock email", func() bool { mails = unlockEmails(mb, ada); return len(mails) > 0 })
	// The fetch that found it also carried out every request recorded
	// before it: a second one would be there now.
	mails = unlockEmails(mb, ada)
	if len(mails) != 1 {
		t.Fatalf("%d unlock emails, want exactly one", len(mails))
	}
	if e := mails[0]; e.Data["expires_in"] != "1 hour" || e.Data["lockout"] != "15 minutes" {
		t.Errorf("unlock email data %v", e.Data)
	}
	if got := unlockEmails(mb, bob); len(got) != 0 {
		t.Fatalf("bob was mailed %d unlock emails", len(got))
	}
	tok := linkToken(t, mails[0], "/unlock", account.UnlockTokenPrefix)

	// Opening the link (a mail scanner's prefetch) changes nothing.
	page := h.do("GET", "/unlock#token="+tok, "")
	if page.code != http.StatusOK || !strings.Contains(string(page.raw), "link-form") {
		t.Fatalf("GET /unlock: %d", page.code)
	}
	expect(t, "after GET /unlock", loginFrom(h, home, ada, adaPass), 403, "account_locked")

	// Rejections before the right POST.
	expect(t, "unlock with garbage", unlock(h, account.UnlockTokenPrefix+"nope"), 400, "invalid_link")
	expect(t, "unlock without a token", h.do("POST", "/v1/auth/unlock", `{}`), 400, "invalid_request")
	resetLink, _, err := h.in.Account.ResetLink(ctx, adaID)
	if err != nil {
		t.Fatal(err)
	}
	_, resetTok, _ := strings.Cut(resetLink, "#token=")
	expect(t, "unlock with a reset token", unlock(h, resetTok), 400, "invalid_link")
	expect(t, "after the refused tokens", loginFrom(h, home, ada, adaPass), 403, "account_locked")

	// Another user's link lifts that user's lock only.
	if err := h.in.Account.SendUnlock(ctx, bob); err != nil {
		t.Fatal(err)
	}
	bobTok := linkToken(t, mb.wait(t, bob, account.TemplateUnlockSignIn), "/unlock", account.UnlockTokenPrefix)
	expect(t, "bob's link", unlock(h, bobTok), 200, "")
	expect(t, "ada after bob's link", loginFrom(h, home, ada, adaPass), 403, "account_locked")

	// The POST unlocks.
	expect(t, "unlock", unlock(h, tok), 200, "")
	expect(t, "the owner at home after unlocking", loginFrom(h, home, ada, adaPass), 200, "")
	expect(t, "unlock again (used link)", unlock(h, tok), 400, "invalid_link")
	// The strangers' addresses stay locked out of the account.
	expect(t, "stranger 1 after the unlock", loginFrom(h, "192.0.2.1", ada, adaPass), 403, "account_locked")

	// An expired link is refused.
	if err := h.in.Account.SendUnlock(ctx, ada); err != nil {
		t.Fatal(err)
	}
	var late string
	waitFor(t, "a second unlock link", func() bool {
		m := unlockEmails(mb, ada)
		if len(m) < 2 {
			return false
		}
		late = linkToken(t, m[len(m)-1], "/unlock", account.UnlockTokenPrefix)
		return true
	})
	h.clock.Advance(time.Hour + time.Second)
	expect(t, "an expired unlock link", unlock(h, late), 400, "invalid_link")
}

// TestLockoutUnknownEmail: an attack on an email no account has goes
// exactly as on a real one: the same answers, byte for byte, at each
// step, the same one outbox request when the account-wide threshold is
// reached; only the real account's owner is mailed.
func TestLockoutUnknownEmail(t *testing.T) {
	h := start(t, "", lockoutConfig)
	const real, ghost = "ada@example.com", "ghost@example.com"
	h.addUser(real, adaPass)
	var mailed []string
	requests := func() int {
		now := h.clock.Now()
		msgs, err := h.in.Store.ClaimOutbox(context.Background(), "test", now, now.Add(1000*time.Hour), 100)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, m := range msgs {
			if m.Kind == account.OutboxRequest {
				n++
				if err := h.in.Account.Deliver(context.Background(), m); err != nil {
					t.Fatal(err)
				}
			}
		}
		// What the requests enqueued.
		msgs, err = h.in.Store.ClaimOutbox(context.Background(), "test", now, now.Add(1000*time.Hour), 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			e, err := latch.ParseEmailMessage(m.Payload)
			if m.Kind != latch.OutboxEmail || err != nil {
				t.Fatalf("outbox message %s after a request: %v", m.Kind, err)
			}
			mailed = append(mailed, e.To+" "+e.Template)
		}
		return n
	}
	var answers [2][]response
	var reqs [2]int
	for i, addr := range []string{real, ghost} {
		for s := 1; s <= 4; s++ {
			for range 3 {
				answers[i] = append(answers[i], loginFrom(h, fmt.Sprintf("192.0.%d.%d", 2+i, s), addr, "wrong password!"))
			}
			answers[i] = append(answers[i], loginFrom(h, fmt.Sprintf("192.0.%d.%d", 2+i, s), addr, "wrong password!"))
		}
		answers[i] = append(answers[i], loginFrom(h, "203.0.113.7", addr, "wrong password!"))
		reqs[i] = requests()
	}
	for k := range answers[0] {
		a, b := answers[0][k], answers[1][k]
		if a.code != b.code || !bytes.Equal(a.raw, b.raw) || a.header.Get("Retry-After") != b.header.Get("Retry-After") {
			t.Fatalf("answer %d differs:\nreal:    %d %s (Retry-After %s)\nunknown: %d %s (Retry-After %s)",
				k, a.code, a.raw, a.header.Get("Retry-After"), b.code, b.raw, b.header.Get("Retry-After"))
		}
	}
	if last := answers[1][len(answers[1])-1]; last.code != 403 {
		t.Fatalf("the unknown email past the threshold: %d %s, want 403", last.code, last.raw)
	}
	if reqs != [2]int{1, 1} {
		t.Fatalf("outbox requests (real, unknown) = %v, want one each", reqs)
	}
	if len(mailed) != 1 || mailed[0] != real+" "+account.TemplateUnlockSignIn {
		t.Fatalf("mailed %v, want one unlock email to %s", mailed, real)
	}
}

// TestLockoutUnlockThrottled: the unlock endpoint spends from the
// address's password-attempt budget (no free oracle for guessing links).
func TestLockoutUnlockThrottled(t *testing.T) {
	h := start(t, "", func(c *config.Config) { c.Login.RatePerIP = 2 })
	for i := range 2 {
		expect(t, fmt.Sprintf("unlock %d", i+1), unlock(h, account.UnlockTokenPrefix+"nope"), 400, "invalid_link")
	}
	r := unlock(h, account.UnlockTokenPrefix+"nope")
	expect(t, "a third unlock in a minute", r, 429, "rate_limited")
	if r.header.Get("Retry-After") == "" {
		t.Fatal("429 without Retry-After")
	}
}

// TestLockoutSparesTheOwnersBrowser: the same attack through HTTP with the
// real device cookie: the owner's browser, which signed in before, still
// signs in past the account-wide lock — even from a stranger's address —
// while the same browser without its cookie, and a cookie the server did
// not issue, are locked out.
func TestLockoutSparesTheOwnersBrowser(t *testing.T) {
	h := start(t, "", lockoutConfig)
	const ada = "ada@example.com"
	h.addUser(ada, adaPass)
	browser := func(ip, cookie, pw string) response {
		hdr := []string{"X-Forwarded-For", ip, "User-Agent", chromeUA, "Sec-Fetch-Site", "same-origin"}
		if cookie != "" {
			hdr = append(hdr, "Cookie", "latch_device="+cookie)
		}
		return h.do("POST", "/v1/auth/login", jsonBody(map[string]string{"email": ada, "password": pw}), hdr...)
	}
	first := browser("203.0.113.7", "", adaPass)
	expect(t, "the owner's browser signs in", first, http.StatusOK, "")
	cookie := deviceCookie(first)
	if cookie == "" {
		t.Fatal("no device cookie")
	}
	for i := 1; i <= 4; i++ {
		for range 3 {
			expect(t, fmt.Sprintf("stranger %d", i), loginFrom(h, fmt.Sprintf("192.0.2.%d", i), ada, "wrong password!"), 401, "invalid_credentials")
		}
	}
	expect(t, "the owner's browser without its cookie", browser("203.0.113.7", "", adaPass), 403, "account_locked")
	id, _, _ := strings.Cut(cookie, ".")
	expect(t, "a forged cookie", browser("203.0.113.7", id+".AAAA", adaPass), 403, "account_locked")
	expect(t, "the owner's browser with its cookie", browser("203.0.113.7", cookie, adaPass), http.StatusOK, "")
	expect(t, "the owner's browser from a stranger's address", browser("192.0.2.1", cookie, adaPass), http.StatusOK, "")
}
