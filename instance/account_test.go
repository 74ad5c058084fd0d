package instance_test

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/account"
	"github.com/latchauth/latch/auth"
	"github.com/latchauth/latch/config"
	"github.com/latchauth/latch/verifier"
)

// mailbox reads the emails a harness enqueued in its outbox (no worker
// runs in the harness: the test claims them itself, and carries out the
// account requests the worker would).
type mailbox struct {
	h   *harness
	got []latch.EmailMessage
}

// fetch claims every email enqueued since the last fetch.
func (m *mailbox) fetch() []latch.EmailMessage {
	m.h.t.Helper()
	now := m.h.clock.Now()
	msgs, err := m.h.in.Store.ClaimOutbox(context.Background(), "test", now, now.Add(1000*time.Hour), 100)
	if err != nil {
		m.h.t.Fatalf("ClaimOutbox: %v", err)
	}
	for _, msg := range msgs {
		if msg.Kind == account.OutboxRequest {
			// The worker's other job here: carry out the request, which
			// enqueues the email (if the account exists) for a later fetch.
			if err := m.h.in.Account.Deliver(context.Background(), msg); err != nil {
				m.h.t.Fatalf("deliver %s: %v", msg.Kind, err)
			}
			continue
		}
		if msg.Kind != latch.OutboxEmail {
			continue
		}
		e, err := latch.ParseEmailMessage(msg.Payload)
		if err != nil {
			m.h.t.Fatalf("outbox email: %v", err)
		}
		m.got = append(m.got, e)
	}
	return m.got
}

// find returns the latest email of template to addr, if any.
func (m *mailbox) find(to, template string) (latch.EmailMessage, bool) {
	for i := len(m.got) - 1; i >= 0; i-- {
		if e := m.got[i]; e.To == to && e.Template == template {
			return e, true
		}
	}
	return latch.EmailMessage{}, false
}

// wait waits for an email of template to addr and returns it.
func (m *mailbox) wait(t *testing.T, to, template string) latch.EmailMessage {
	t.Helper()
	var e latch.EmailMessage
	waitFor(t, template+" email to "+to, func() bool {
		m.fetch()
		var ok bool
		e, ok = m.find(to, template)
		return ok
	})
	return e
}

// linkToken checks that the email's link is the issuer's page and returns
// its token.
func linkToken(t *testing.T, e latch.EmailMessage, page, prefix string) string {
	t.Helper()
	link := e.Data["link"]
	rest, ok := strings.CutPrefix(link, "http://latch.test"+page+"#token=")
	if !ok || !strings.HasPrefix(rest, prefix) {
		t.Fatalf("%s email link %q: want http://latch.test%s#token=%s…", e.Template, link, page, prefix)
	}
	return rest
}

// served counts the answers of one route with one status code (counted
// when the handler returned, so also after work done past the answer).
func served(t *testing.T, h *harness, route string, code int) float64 {
	t.Helper()
	mfs, err := h.in.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "latch_http_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			var r, c string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "route":
					r = l.GetValue()
				case "code":
					c = l.GetValue()
				}
			}
			if r == route && c == strconv.Itoa(code) {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func email(addr string) string { return jsonBody(map[string]string{"email": addr}) }

// TestAccountEmailVerification: registration enqueues a verify_email
// message whose link verifies the address once; /v1/me, the id_token
// and userinfo say email_verified only after that.
func TestAccountEmailVerification(t *testing.T) {
	h := start(t, "", func(c *config.Config) { c.Registration = true })
	mb := &mailbox{h: h}
	const addr, pw = "vera@example.com", "a long enough password"
	r := h.do("POST", "/v1/auth/register", jsonBody(map[string]string{"email": addr, "password": pw}))
	expect(t, "register", r, http.StatusCreated, "")
	e := mb.wait(t, addr, "verify_email")
	tok := linkToken(t, e, "/verify", "latch_ve_")
	if e.Data["expires_in"] == "" {
		t.Errorf("verify_email has no expires_in: %v", e.Data)
	}

	access := h.login(addr, pw).str("access_token")
	me := h.do("GET", "/v1/me", "", bearer(access)...)
	if v, ok := me.body["email_verified"].(bool); !ok || v {
		t.Fatalf("/v1/me before verification: %s", me.raw)
	}

	// The page opens without acting: a prefetch verifies nothing.
	if page := h.do("GET", "/verify", ""); page.code != http.StatusOK {
		t.Fatalf("GET /verify: %d", page.code)
	}
	me = h.do("GET", "/v1/me", "", bearer(access)...)
	if me.body["email_verified"] != false {
		t.Fatalf("GET /verify verified the address: %s", me.raw)
	}

	// Rejections: a malformed token, another purpose's token.
	expect(t, "verify with garbage", h.do("POST", "/v1/auth/email/verify", jsonBody(map[string]string{"token": "latch_ve_nope"})), http.StatusBadRequest, "invalid_link")
	expect(t, "verify with no token", h.do("POST", "/v1/auth/email/verify", `{}`), http.StatusBadRequest, "invalid_request")
	link, _, err := h.in.Account.ResetLink(context.Background(), me.str("sub"))
	if err != nil {
		t.Fatal(err)
	}
	_, resetTok, _ := strings.Cut(link, "#token=")
	expect(t, "verify with a reset token", h.do("POST", "/v1/auth/email/verify", jsonBody(map[string]string{"token": resetTok})), http.StatusBadRequest, "invalid_link")

	claims := &verifier.Claims{SessionID: me.str("session_id"), Scope: "openid email"}
	claims.Subject = me.str("sub")
	if ui, err := h.in.OIDC.UserInfo(context.Background(), claims); err != nil || ui["email_verified"] != false {
		t.Fatalf("userinfo before verification: %v, %v", ui, err)
	}

	r = h.do("POST", "/v1/auth/email/verify", jsonBody(map[string]string{"token": tok}))
	expect(t, "verify", r, http.StatusOK, "")
	me = h.do("GET", "/v1/me", "", bearer(access)...)
	if me.body["email_verified"] != true {
		t.Fatalf("/v1/me after verification: %s", me.raw)
	}
	if ui, err := h.in.OIDC.UserInfo(context.Background(), claims); err != nil || ui["email_verified"] != true {
		t.Fatalf("userinfo after verification: %v, %v", ui, err)
	}
	expect(t, "verify again (used link)", h.do("POST", "/v1/auth/email/verify", jsonBody(map[string]string{"token": tok})), http.StatusBadRequest, "invalid_link")
}

// TestAccountVerificationLinkExpires: a verification link past its
// lifetime is refused.
func TestAccountVerificationLinkExpires(t *testing.T) {
	h := start(t, "", func(c *config.Config) { c.Registration = true })
	mb := &mailbox{h: h}
	r := h.do("POST", "/v1/auth/register", jsonBody(map[string]string{"email": "late@example.com", "password": "a long enough password"}))
	expect(t, "register", r, http.StatusCreated, "")
	tok := linkToken(t, mb.wait(t, "late@example.com", "verify_email"), "/verify", "latch_ve_")
	h.clock.Advance(h.in.Account.Config().VerifyTTL + time.Second)
	expect(t, "verify an expired link", h.do("POST", "/v1/auth/email/verify", jsonBody(map[string]string{"token": tok})), http.StatusBadRequest, "invalid_link")
}

// TestAccountRequireVerifiedEmail: with accounts.require_verified_email an
// unverified user's right password is answered exactly as a wrong one
// (401, the same body, whose description names both reasons), and
// counted as a failure; the log tells them apart. A new link (resend)
// verifies and sign-in works.
func TestAccountRequireVerifiedEmail(t *testing.T) {
	h := start(t, "", func(c *config.Config) { c.Accounts.RequireVerifiedEmail = true })
	mb := &mailbox{h: h}
	const addr, pw = "una@example.com", "a long enough password"
	uid := h.addUser(addr, pw)
	right := h.do("POST", "/v1/auth/login", jsonBody(map[string]string{"email": addr, "password": pw}))
	expect(t, "unverified sign-in", right, http.StatusUnauthorized, "invalid_credentials")
	if !strings.Contains(right.str("error_description"), "not verified") {
		t.Errorf("the answer does not say the address may be unverified: %s", right.raw)
	}
	wrong := h.do("POST", "/v1/auth/login", jsonBody(map[string]string{"email": addr, "password": "wrong password!"}))
	if !bytes.Equal(right.raw, wrong.raw) || right.code != wrong.code {
		t.Fatalf("the right password of an unverified account is told from a wrong one:\nright: %d %s\nwrong: %d %s", right.code, right.raw, wrong.code, wrong.raw)
	}
	if n := h.in.Throttle.RecentFailures(context.Background(), addr); n != 2 {
		t.Errorf("failures counted: %d, want 2 (the unverified sign-in counts as one)", n)
	}
	evs, err := h.in.Store.EventsByUser(context.Background(), uid, 10)
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[string]bool{}
	for _, e := range evs {
		reasons[e.Detail["reason"]] = true
	}
	if !reasons["email_not_verified"] || !reasons["wrong_password"] {
		t.Errorf("the log does not tell the two apart: %v", reasons)
	}

	expect(t, "resend", h.do("POST", "/v1/auth/email/resend", email(addr)), http.StatusAccepted, "")
	tok := linkToken(t, mb.wait(t, addr, "verify_email"), "/verify", "latch_ve_")
	expect(t, "verify", h.do("POST", "/v1/auth/email/verify", jsonBody(map[string]string{"token": tok})), http.StatusOK, "")
	h.login(addr, pw)
}

// TestAccountForgotSameAnswer: /password/forgot answers a known and an
// unknown email with the identical body, and emails only the known one.
func TestAccountForgotSameAnswer(t *testing.T) {
	h := start(t, "", nil)
	mb := &mailbox{h: h}
	h.addUser("known@example.com", "a long enough password")
	const route = "/v1/auth/password/forgot"

	unknown := h.do("POST", route, email("unknown@example.com"))
	expect(t, "forgot (unknown)", unknown, http.StatusAccepted, "")
	// The work after the answer is done once the handler returned.
	waitFor(t, "the unknown email's request to finish", func() bool { return served(t, h, route, http.StatusAccepted) == 1 })
	if got := mb.fetch(); len(got) != 0 {
		t.Fatalf("forgot for an unknown email enqueued %+v", got)
	}

	known := h.do("POST", route, email("Known@Example.com"))
	expect(t, "forgot (known)", known, http.StatusAccepted, "")
	if !bytes.Equal(unknown.raw, known.raw) {
		t.Fatalf("answers differ:\nunknown: %s\nknown:   %s", unknown.raw, known.raw)
	}
	for _, k := range []string{"Content-Type", "Cache-Control", "Content-Length"} {
		if unknown.header.Get(k) != known.header.Get(k) {
			t.Errorf("header %s differs: %q vs %q", k, unknown.header.Get(k), known.header.Get(k))
		}
	}
	e := mb.wait(t, "known@example.com", "reset_password")
	linkToken(t, e, "/reset", "latch_pr_")
	if e.Data["expires_in"] != "30 minutes" {
		t.Errorf("reset_password expires_in %q, want 30 minutes", e.Data["expires_in"])
	}
	if len(mb.got) != 1 {
		t.Errorf("emails enqueued: %+v, want the one reset link", mb.got)
	}
	expect(t, "forgot without email", h.do("POST", route, `{}`), http.StatusBadRequest, "invalid_request")
}

// TestAccountForgotThrottled: requests for one email are throttled
// whether or not the account exists (the same 429 for both).
func TestAccountForgotThrottled(t *testing.T) {
	h := start(t, "", nil)
	h.addUser("busy@example.com", "a long enough password")
	for _, addr := range []string{"busy@example.com", "ghost@example.com"} {
		for range 3 {
			expect(t, addr+" forgot", h.do("POST", "/v1/auth/password/forgot", email(addr)), http.StatusAccepted, "")
		}
		r := h.do("POST", "/v1/auth/password/forgot", email(addr))
		expect(t, addr+" forgot over the limit", r, http.StatusTooManyRequests, "rate_limited")
		if r.header.Get("Retry-After") == "" {
			t.Errorf("429 without Retry-After")
		}
	}
}

// TestAccountForgotThrottledPerAddress: forgot draws on the sign-in
// budget of the client's address, whatever the emails.
func TestAccountForgotThrottledPerAddress(t *testing.T) {
	h := start(t, "", func(c *config.Config) { c.Login.RatePerIP = 2 })
	expect(t, "forgot 1", h.do("POST", "/v1/auth/password/forgot", email("a@example.com")), http.StatusAccepted, "")
	expect(t, "forgot 2", h.do("POST", "/v1/auth/password/forgot", email("b@example.com")), http.StatusAccepted, "")
	expect(t, "forgot 3 from one address", h.do("POST", "/v1/auth/password/forgot", email("c@example.com")), http.StatusTooManyRequests, "rate_limited")
}

// TestAccountResetRevokes: the emailed link resets the password once,
// signs out every session (old access and refresh tokens refused), sends
// password_changed; a used, expired or malformed link is refused, and a
// weak password does not spend the link.
func TestAccountResetRevokes(t *testing.T) {
	h := start(t, "", nil)
	mb := &mailbox{h: h}
	const addr, oldPW, newPW = "rita@example.com", "the old password", "the new password"
	h.addUser(addr, oldPW)
	before := h.login(addr, oldPW)
	h.clock.Advance(2 * time.Second) // the reset's cutoff lies after the token's second

	expect(t, "forgot", h.do("POST", "/v1/auth/password/forgot", email(addr)), http.StatusAccepted, "")
	tok := linkToken(t, mb.wait(t, addr, "reset_password"), "/reset", "latch_pr_")
	reset := func(token, pw string) response {
		return h.do("POST", "/v1/auth/password/reset", jsonBody(map[string]string{"token": token, "password": pw}))
	}
	expect(t, "reset with garbage", reset("latch_pr_garbage", newPW), http.StatusBadRequest, "invalid_link")
	expect(t, "reset with a weak password", reset(tok, "short"), http.StatusBadRequest, "weak_password")
	// A password the policy refuses for this account (its own email) does
	// not spend the link either: the check comes before.
	expect(t, "reset with the email as password", reset(tok, addr), http.StatusBadRequest, "weak_password")
	// A second link, requested meanwhile, dies with the reset of the first.
	u, err := h.in.Store.UserByEmail(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	second, _, err := h.in.Account.ResetLink(context.Background(), u.ID)
	if err != nil {
		t.Fatal(err)
	}
	_, tok2, _ := strings.Cut(second, "#token=")
	expect(t, "reset without password", h.do("POST", "/v1/auth/password/reset", jsonBody(map[string]string{"token": tok})), http.StatusBadRequest, "invalid_request")

	expect(t, "reset", reset(tok, newPW), http.StatusOK, "")
	expect(t, "reset again (used link)", reset(tok, "yet another password"), http.StatusBadRequest, "invalid_link")
	expect(t, "the other link after the reset", reset(tok2, "yet another password"), http.StatusBadRequest, "invalid_link")

	expect(t, "old access token after reset", h.do("GET", "/v1/me", "", bearer(before.str("access_token"))...), http.StatusUnauthorized, "")
	expect(t, "old refresh token after reset", h.refresh(before.str("refresh_token")), http.StatusUnauthorized, "invalid_grant")
	expect(t, "old password", h.do("POST", "/v1/auth/login", jsonBody(map[string]string{"email": addr, "password": oldPW})), http.StatusUnauthorized, "invalid_credentials")
	if sess, err := h.in.Store.Session(context.Background(), before.str("session_id")); err != nil || sess.RevokeReason != "password_reset" {
		t.Errorf("the session a reset revoked: %+v, %v; want reason password_reset", sess, err)
	}
	h.login(addr, newPW)
	changed := mb.wait(t, addr, "password_changed")
	if changed.Data["when"] == "" {
		t.Errorf("password_changed without when: %v", changed.Data)
	}

	// Expired: a link used 31 minutes after it was sent.
	expect(t, "forgot", h.do("POST", "/v1/auth/password/forgot", email(addr)), http.StatusAccepted, "")
	waitFor(t, "a second reset email", func() bool {
		n := 0
		for _, e := range mb.fetch() {
			if e.Template == "reset_password" {
				n++
			}
		}
		return n == 2
	})
	late, _ := mb.find(addr, "reset_password")
	lateTok := linkToken(t, late, "/reset", "latch_pr_")
	h.clock.Advance(31 * time.Minute)
	expect(t, "reset with an expired link", reset(lateTok, "a third password"), http.StatusBadRequest, "invalid_link")
	h.login(addr, newPW)
}

// TestAccountResetConcurrent: of concurrent resets with one link exactly
// one succeeds.
func TestAccountResetConcurrent(t *testing.T) {
	// Eight password hashes at once wait for the hashing slots; on a
	// busy machine the default wait would answer some 503 (busy), which
	// is not what this test is about.
	h := start(t, "", func(c *config.Config) { c.Password.MaxWait = config.Duration(time.Minute) })
	uid := h.addUser("cora@example.com", "the old password")
	link, _, err := h.in.Account.ResetLink(context.Background(), uid)
	if err != nil {
		t.Fatal(err)
	}
	_, tok, _ := strings.Cut(link, "#token=")
	const n = 8
	codes := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = h.do("POST", "/v1/auth/password/reset", jsonBody(map[string]string{"token": tok, "password": "concurrent password " + strconv.Itoa(i+1)})).code
		}()
	}
	wg.Wait()
	ok := 0
	for _, c := range codes {
		switch c {
		case http.StatusOK:
			ok++
		case http.StatusBadRequest:
		default:
			t.Errorf("concurrent reset answered %d", c)
		}
	}
	if ok != 1 {
		t.Fatalf("%d of %d concurrent resets with one link succeeded (%v), want 1", ok, n, codes)
	}
}

// TestAccountLockedSignIn: a locked user gets 403 account_locked with the
// right password (and its sessions are gone); a reset lifts a
// reset_required lock but not an operator's lock.
func TestAccountLockedSignIn(t *testing.T) {
	h := start(t, "", nil)
	const addr, pw = "lena@example.com", "a long enough password"
	uid := h.addUser(addr, pw)
	s := h.login(addr, pw)
	h.clock.Advance(2 * time.Second)
	ctx := context.Background()
	if err := h.in.Account.Lock(ctx, uid, latch.LockReasonAdmin, auth0()); err != nil {
		t.Fatal(err)
	}
	r := h.do("POST", "/v1/auth/login", jsonBody(map[string]string{"email": addr, "password": pw}))
	expect(t, "locked sign-in", r, http.StatusForbidden, "account_locked")
	if !strings.Contains(r.str("error_description"), "locked") {
		t.Errorf("unclear message: %s", r.raw)
	}
	expect(t, "wrong password of a locked user", h.do("POST", "/v1/auth/login", jsonBody(map[string]string{"email": addr, "password": "not the password"})), http.StatusUnauthorized, "invalid_credentials")
	expect(t, "access token after lock", h.do("GET", "/v1/me", "", bearer(s.str("access_token"))...), http.StatusUnauthorized, "")
	expect(t, "refresh after lock", h.refresh(s.str("refresh_token")), http.StatusUnauthorized, "invalid_grant")

	// An operator's lock survives a reset.
	link, _, err := h.in.Account.ResetLink(ctx, uid)
	if err != nil {
		t.Fatal(err)
	}
	_, tok, _ := strings.Cut(link, "#token=")
	r = h.do("POST", "/v1/auth/password/reset", jsonBody(map[string]string{"token": tok, "password": "a second password"}))
	expect(t, "reset of an admin-locked user", r, http.StatusOK, "")
	if r.body["account_locked"] != true {
		t.Errorf("reset answer does not say the account stays locked: %s", r.raw)
	}
	expect(t, "sign-in after reset, admin lock", h.do("POST", "/v1/auth/login", jsonBody(map[string]string{"email": addr, "password": "a second password"})), http.StatusForbidden, "account_locked")

	// A reset_required lock never replaces an operator's lock...
	if err := h.in.Account.Lock(ctx, uid, latch.LockReasonResetRequired, auth0()); err != nil {
		t.Fatal(err)
	}
	if u, _ := h.in.Store.UserByID(ctx, uid); u == nil || u.LockReason != latch.LockReasonAdmin {
		t.Fatalf("a reset_required lock replaced the admin lock: %+v", u)
	}
	// ...and, on its own, is lifted by a reset.
	if err := h.in.Account.Unlock(ctx, uid, auth0()); err != nil {
		t.Fatal(err)
	}
	if err := h.in.Account.Lock(ctx, uid, latch.LockReasonResetRequired, auth0()); err != nil {
		t.Fatal(err)
	}
	link, _, _ = h.in.Account.ResetLink(ctx, uid)
	_, tok, _ = strings.Cut(link, "#token=")
	r = h.do("POST", "/v1/auth/password/reset", jsonBody(map[string]string{"token": tok, "password": "a third password"}))
	expect(t, "reset of a reset_required lock", r, http.StatusOK, "")
	if r.body["account_locked"] != nil {
		t.Errorf("reset answer says the account is still locked: %s", r.raw)
	}
	h.login(addr, "a third password")
}

// TestAccountChangePassword: a wrong current password is refused and
// changes nothing; a right one revokes every other session and keeps the
// caller's, whose client refreshes once.
func TestAccountChangePassword(t *testing.T) {
	h := start(t, "", nil)
	mb := &mailbox{h: h}
	const addr, pw, newPW = "carl@example.com", "the old password", "the new password"
	h.addUser(addr, pw)
	mine := h.login(addr, pw)
	other := h.login(addr, pw)
	h.clock.Advance(2 * time.Second)
	change := func(current, next string, tok string) response {
		return h.do("POST", "/v1/auth/password/change", jsonBody(map[string]string{"current_password": current, "password": next}), bearer(tok)...)
	}
	expect(t, "change with a wrong current password", change("not the password", newPW, mine.str("access_token")), http.StatusForbidden, "invalid_credentials")
	expect(t, "other session after the refused change", h.do("GET", "/v1/me", "", bearer(other.str("access_token"))...), http.StatusOK, "")
	expect(t, "change without token", h.do("POST", "/v1/auth/password/change", jsonBody(map[string]string{"current_password": pw, "password": newPW})), http.StatusUnauthorized, "")
	expect(t, "change to a weak password", change(pw, "short", mine.str("access_token")), http.StatusBadRequest, "weak_password")
	h.login(addr, pw) // nothing changed so far

	r := change(pw, newPW, mine.str("access_token"))
	expect(t, "change", r, http.StatusOK, "")
	if r.body["other_sessions_revoked"] != float64(2) { // other, and the check login above
		t.Errorf("other_sessions_revoked: %s", r.raw)
	}
	expect(t, "other session's access token", h.do("GET", "/v1/me", "", bearer(other.str("access_token"))...), http.StatusUnauthorized, "")
	expect(t, "other session's refresh token", h.refresh(other.str("refresh_token")), http.StatusUnauthorized, "invalid_grant")
	// The caller's session lives on: its old access token is behind the
	// cutoff, its refresh token is good.
	expect(t, "own old access token", h.do("GET", "/v1/me", "", bearer(mine.str("access_token"))...), http.StatusUnauthorized, "")
	fresh := h.refresh(mine.str("refresh_token"))
	expect(t, "own refresh", fresh, http.StatusOK, "")
	expect(t, "own new access token", h.do("GET", "/v1/me", "", bearer(fresh.str("access_token"))...), http.StatusOK, "")
	h.login(addr, newPW)
	mb.wait(t, addr, "password_changed")
}

// auth0 is the device of changes made by the tests themselves.
func auth0() auth.Device { return auth.Device{UserAgent: "test"} }

// TestAccountRegisterTakenSameAnswer: where sign-in needs a verified
// address, registering a taken address gets the same answer as a new one
// (201 and a user id that names nobody) and its owner an email; without
// that setting the answer is 409 email_taken, since a registrant could
// sign in at once and tell anyway.
func TestAccountRegisterTakenSameAnswer(t *testing.T) {
	h := start(t, "", func(c *config.Config) { c.Registration = true; c.Accounts.RequireVerifiedEmail = true })
	mb := &mailbox{h: h}
	const pw = "a long enough password"
	h.addUser("owner@example.com", pw)
	fresh := h.do("POST", "/v1/auth/register", jsonBody(map[string]string{"email": "newcomer@example.com", "password": pw}))
	expect(t, "register a new address", fresh, http.StatusCreated, "")
	taken := h.do("POST", "/v1/auth/register", jsonBody(map[string]string{"email": "Owner@Example.com", "password": "another long password"}))
	expect(t, "register a taken address", taken, http.StatusCreated, "")
	if len(fresh.raw) != len(taken.raw) || fresh.header.Get("Content-Type") != taken.header.Get("Content-Type") {
		t.Fatalf("answers differ in shape:\nnew:   %s\ntaken: %s", fresh.raw, taken.raw)
	}
	decoy := taken.str("user_id")
	if !strings.HasPrefix(decoy, "u_") {
		t.Fatalf("decoy user id %q is not shaped like a user id", decoy)
	}
	if _, err := h.in.Store.UserByID(context.Background(), decoy); err == nil {
		t.Fatalf("the decoy id %s names a user", decoy)
	}
	e := mb.wait(t, "owner@example.com", account.TemplateAlreadyRegistered)
	if e.Data["when"] == "" {
		t.Errorf("already_registered without when: %+v", e)
	}
	mb.wait(t, "newcomer@example.com", "verify_email")
	// The owner's password is untouched and no second account exists.
	expect(t, "owner signs in unverified", h.do("POST", "/v1/auth/login", jsonBody(map[string]string{"email": "owner@example.com", "password": pw})), http.StatusUnauthorized, "invalid_credentials")

	open := start(t, "", func(c *config.Config) { c.Registration = true })
	open.addUser("owner@example.com", pw)
	expect(t, "taken address without require_verified_email", open.do("POST", "/v1/auth/register", jsonBody(map[string]string{"email": "owner@example.com", "password": pw})), http.StatusConflict, "email_taken")
}

// TestAccountForgotStrangerCannotStarveOwner: reset requests are counted
// per (email, client address): a stranger who used up the budget for the
// owner's email does not stop the owner, asking from home, getting a link.
func TestAccountForgotStrangerCannotStarveOwner(t *testing.T) {
	h := start(t, "", func(c *config.Config) { c.TrustedProxies = []string{"127.0.0.1/32", "::1/128"} })
	mb := &mailbox{h: h}
	const owner = "own@example.com"
	h.addUser(owner, "a long enough password")
	forgot := func(ip string) response {
		return h.do("POST", "/v1/auth/password/forgot", email(owner), "X-Forwarded-For", ip)
	}
	for range account.DefaultMailsPerEmail {
		expect(t, "stranger's forgot", forgot("203.0.113.66"), http.StatusAccepted, "")
	}
	expect(t, "stranger's forgot over the limit", forgot("203.0.113.66"), http.StatusTooManyRequests, "rate_limited")
	resets := func() int {
		n := 0
		for _, e := range mb.fetch() {
			if e.To == owner && e.Template == "reset_password" {
				n++
			}
		}
		return n
	}
	waitFor(t, "the stranger's reset emails", func() bool { return resets() == account.DefaultMailsPerEmail })
	expect(t, "owner's forgot from home", forgot("198.51.100.7"), http.StatusAccepted, "")
	waitFor(t, "the owner's reset email", func() bool { return resets() == account.DefaultMailsPerEmail+1 })
}
