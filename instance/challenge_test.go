package instance_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/auth"
	"github.com/latchauth/latch/challenge"
)

// challengeGuard is a sign-in guard that asks every sign-in for a step-up
// challenge (as package protect does for a new device with
// risk.new_device: challenge).
type challengeGuard struct{}

func (challengeGuard) ScreenSignIn(context.Context, *auth.Authentication, string, auth.Device) (*auth.Screening, error) {
	return nil, auth.ErrChallenge
}

const (
	chAddr = "cleo@example.com"
	chPass = "a long enough password"
)

// challenged starts an instance whose guard challenges every sign-in, with
// the user cleo.
func challenged(t *testing.T) (*harness, *mailbox, string) {
	t.Helper()
	h := start(t, "", nil)
	uid := h.addUser(chAddr, chPass)
	h.in.Auth.SetGuards(auth.Guards{SignIn: challengeGuard{}, Challenger: h.in.Challenges})
	return h, &mailbox{h: h}, uid
}

// beginChallenge signs in as addr and expects the challenge answer; it
// returns the challenge ID and the code emailed.
func beginChallenge(t *testing.T, h *harness, mb *mailbox, addr, pw string, hdr ...string) (string, string) {
	t.Helper()
	before := len(mb.fetch())
	r := h.do("POST", "/v1/auth/login", jsonBody(map[string]string{"email": addr, "password": pw}), hdr...)
	expect(t, "challenged sign-in", r, http.StatusForbidden, "challenge_required")
	id := r.str("challenge_id")
	if !strings.HasPrefix(id, challenge.IDPrefix) || r.str("error_description") == "" {
		t.Fatalf("challenge answer %s", r.raw)
	}
	if r.str("access_token") != "" || r.header.Get("Set-Cookie") != "" {
		t.Fatalf("a challenged sign-in must not yield a session: %s %v", r.raw, r.header)
	}
	var e latch.EmailMessage
	waitFor(t, "the challenge email", func() bool {
		got := mb.fetch()
		for _, m := range got[before:] {
			if m.To == addr && m.Template == challenge.Template {
				e = m
				return true
			}
		}
		return false
	})
	code := e.Data["code"]
	if len(code) != 6 || strings.Trim(code, "0123456789") != "" {
		t.Fatalf("code %q is not six digits", code)
	}
	return id, code
}

func completeBody(id, code string) string {
	return jsonBody(map[string]string{"challenge_id": id, "code": code})
}

// sessionsOf counts the live sessions of the user.
func sessionsOf(t *testing.T, h *harness, uid string) int {
	t.Helper()
	ss, err := h.in.Store.SessionsByUser(context.Background(), uid, h.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	return len(ss)
}

// otherCode returns a six-digit code that is not code.
func otherCode(code string) string {
	if code == "000000" {
		return "000001"
	}
	return "000000"
}

// TestChallengeRightCode: a challenged sign-in creates no session and
// emails a code (with where and from which browser); the code creates the
// session, answered like a login; the code works once.
func TestChallengeRightCode(t *testing.T) {
	h, mb, uid := challenged(t)
	id, code := beginChallenge(t, h, mb, chAddr, chPass, "User-Agent", "Firefox/140 test")
	if n := sessionsOf(t, h, uid); n != 0 {
		t.Fatalf("%d sessions before the code was entered", n)
	}
	e, _ := mb.find(chAddr, challenge.Template)
	if e.Data["user_agent"] != "Firefox/140 test" || e.Data["ip"] != "127.0.0.1" || e.Data["when"] == "" || e.Data["reset_link"] != "/reset" {
		t.Errorf("the email does not say where the sign-in came from: %v", e.Data)
	}

	r := h.do("POST", "/v1/auth/challenge", completeBody(id, code), "User-Agent", "Firefox/140 test")
	expect(t, "right code", r, http.StatusOK, "")
	if r.str("access_token") == "" || r.str("refresh_token") == "" || r.str("session_id") == "" || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("want the login's token response: %s", r.raw)
	}
	if me := h.do("GET", "/v1/me", "", bearer(r.str("access_token"))...); me.code != http.StatusOK || me.str("sub") != uid {
		t.Fatalf("/v1/me with the new token: %d %s", me.code, me.raw)
	}
	if n := sessionsOf(t, h, uid); n != 1 {
		t.Fatalf("%d sessions after the code, want 1", n)
	}
	// The code, and the challenge, work once.
	again := h.do("POST", "/v1/auth/challenge", completeBody(id, code), "User-Agent", "Firefox/140 test")
	expect(t, "reused code", again, http.StatusBadRequest, "invalid_challenge")
	if !strings.Contains(again.str("error_description"), "already used") {
		t.Errorf("reuse: %s", again.raw)
	}
	if n := sessionsOf(t, h, uid); n != 1 {
		t.Fatalf("%d sessions after the reuse, want 1", n)
	}
	// The security log says a code was sent.
	evs, err := h.in.Store.EventsByUser(context.Background(), uid, 100)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(evs, func(e latch.Event) bool { return e.Type == latch.EventChallengeSent }) {
		t.Errorf("no %s event", latch.EventChallengeSent)
	}
}

// TestChallengeWrongCode: a wrong code is refused with the attempts left,
// and spends one; the right code still works after it.
func TestChallengeWrongCode(t *testing.T) {
	h, mb, uid := challenged(t)
	id, code := beginChallenge(t, h, mb, chAddr, chPass)
	r := h.do("POST", "/v1/auth/challenge", completeBody(id, otherCode(code)))
	expect(t, "wrong code", r, http.StatusBadRequest, "invalid_code")
	if r.body["attempts_left"] != float64(challenge.DefaultMaxAttempts-1) || !strings.Contains(r.str("error_description"), "4 attempts left") {
		t.Fatalf("wrong code: %s", r.raw)
	}
	if n := sessionsOf(t, h, uid); n != 0 {
		t.Fatalf("a wrong code created %d sessions", n)
	}
	// A code that is no code spends nothing.
	bad := h.do("POST", "/v1/auth/challenge", completeBody(id, "12345x"))
	expect(t, "malformed code", bad, http.StatusBadRequest, "invalid_request")
	// Spaces people paste are ignored.
	spaced := code[:3] + " " + code[3:]
	expect(t, "right code", h.do("POST", "/v1/auth/challenge", completeBody(id, spaced)), http.StatusOK, "")
	c, err := h.in.Store.Challenge(context.Background(), hashOf(id))
	if err != nil || c.Attempts != 1 {
		t.Fatalf("challenge after one wrong code: %+v, %v; want 1 attempt", c, err)
	}
}

// TestChallengeAttemptLimit: after five wrong codes the challenge is dead:
// a sixth try, even with the right code, creates no session.
func TestChallengeAttemptLimit(t *testing.T) {
	h, mb, uid := challenged(t)
	id, code := beginChallenge(t, h, mb, chAddr, chPass)
	for i := 1; i <= challenge.DefaultMaxAttempts; i++ {
		r := h.do("POST", "/v1/auth/challenge", completeBody(id, otherCode(code)))
		expect(t, "wrong code", r, http.StatusBadRequest, "invalid_code")
		if r.body["attempts_left"] != float64(challenge.DefaultMaxAttempts-i) {
			t.Fatalf("attempt %d: %s", i, r.raw)
		}
	}
	r := h.do("POST", "/v1/auth/challenge", completeBody(id, code))
	expect(t, "right code after the limit", r, http.StatusBadRequest, "invalid_challenge")
	if !strings.Contains(r.str("error_description"), "too many wrong codes") {
		t.Errorf("after the limit: %s", r.raw)
	}
	if n := sessionsOf(t, h, uid); n != 0 {
		t.Fatalf("%d sessions after the limit", n)
	}
}

// TestChallengeExpired: the code expires after ten minutes.
func TestChallengeExpired(t *testing.T) {
	h, mb, uid := challenged(t)
	id, code := beginChallenge(t, h, mb, chAddr, chPass)
	h.clock.Advance(challenge.DefaultTTL)
	r := h.do("POST", "/v1/auth/challenge", completeBody(id, code))
	expect(t, "expired code", r, http.StatusBadRequest, "invalid_challenge")
	if !strings.Contains(r.str("error_description"), "expired") {
		t.Errorf("expired: %s", r.raw)
	}
	if n := sessionsOf(t, h, uid); n != 0 {
		t.Fatalf("%d sessions from an expired code", n)
	}
	// A second earlier, it was fine.
	id, code = beginChallenge(t, h, mb, chAddr, chPass)
	h.clock.Advance(challenge.DefaultTTL - time.Second)
	expect(t, "code just in time", h.do("POST", "/v1/auth/challenge", completeBody(id, code)), http.StatusOK, "")
}

// TestChallengeOtherBrowser: a challenge begun in one browser cannot be
// completed from another (another User-Agent), even with the right code;
// the other browser learns nothing and spends no attempt.
func TestChallengeOtherBrowser(t *testing.T) {
	h, mb, uid := challenged(t)
	id, code := beginChallenge(t, h, mb, chAddr, chPass, "User-Agent", "Firefox/140")
	r := h.do("POST", "/v1/auth/challenge", completeBody(id, code), "User-Agent", "Chrome/130")
	expect(t, "other browser", r, http.StatusBadRequest, "invalid_challenge")
	if !strings.Contains(r.str("error_description"), "unknown") {
		t.Errorf("other browser: %s", r.raw)
	}
	if n := sessionsOf(t, h, uid); n != 0 {
		t.Fatalf("another browser created %d sessions", n)
	}
	// The right browser still completes it: nothing was spent.
	expect(t, "same browser", h.do("POST", "/v1/auth/challenge", completeBody(id, code), "User-Agent", "Firefox/140"), http.StatusOK, "")
}

// TestChallengeOtherUser: a code sent to one user does not complete
// another user's challenge.
func TestChallengeOtherUser(t *testing.T) {
	h, mb, uid := challenged(t)
	h.addUser("dora@example.com", chPass)
	cleoID, _ := beginChallenge(t, h, mb, chAddr, chPass)
	_, doraCode := beginChallenge(t, h, mb, "dora@example.com", chPass)
	r := h.do("POST", "/v1/auth/challenge", completeBody(cleoID, doraCode))
	if r.code == http.StatusOK {
		t.Fatalf("dora's code completed cleo's challenge: %s", r.raw)
	}
	expect(t, "another user's code", r, http.StatusBadRequest, "invalid_code")
	if n := sessionsOf(t, h, uid); n != 0 {
		t.Fatalf("%d sessions for cleo", n)
	}
}

// TestChallengeMailBomb: someone who knows the password cannot make the
// server send the owner more than three codes per ten minutes; another
// user is not affected, and the window passes.
func TestChallengeMailBomb(t *testing.T) {
	h, mb, _ := challenged(t)
	h.addUser("dora@example.com", chPass)
	for range challenge.DefaultPerUser {
		beginChallenge(t, h, mb, chAddr, chPass)
	}
	r := h.do("POST", "/v1/auth/login", jsonBody(map[string]string{"email": chAddr, "password": chPass}))
	expect(t, "one sign-in too many", r, http.StatusTooManyRequests, "rate_limited")
	if r.header.Get("Retry-After") == "" || r.str("challenge_id") != "" {
		t.Errorf("limit answer: %v %s", r.header, r.raw)
	}
	n := 0
	for _, e := range mb.fetch() {
		if e.To == chAddr && e.Template == challenge.Template {
			n++
		}
	}
	if n != challenge.DefaultPerUser {
		t.Fatalf("%d codes emailed, want %d", n, challenge.DefaultPerUser)
	}
	beginChallenge(t, h, mb, "dora@example.com", chPass)
	h.clock.Advance(challenge.DefaultTTL)
	beginChallenge(t, h, mb, chAddr, chPass)
}

// TestChallengeConcurrent: of concurrent completions with the right code,
// exactly one creates a session.
func TestChallengeConcurrent(t *testing.T) {
	h, mb, uid := challenged(t)
	id, code := beginChallenge(t, h, mb, chAddr, chPass)
	const n = 12
	codes := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			req, _ := http.NewRequest("POST", h.srv.URL+"/v1/auth/challenge", strings.NewReader(completeBody(id, code)))
			req.Header.Set("Content-Type", "application/json")
			res, err := h.srv.Client().Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			res.Body.Close()
			codes[i] = res.StatusCode
		})
	}
	wg.Wait()
	ok := 0
	for _, c := range codes {
		switch c {
		case http.StatusOK:
			ok++
		case http.StatusBadRequest:
		default:
			t.Errorf("a concurrent completion answered %d", c)
		}
	}
	if ok != 1 {
		t.Fatalf("%d of %d concurrent completions succeeded (%v), want exactly 1", ok, n, codes)
	}
	if s := sessionsOf(t, h, uid); s != 1 {
		t.Fatalf("%d sessions, want 1", s)
	}
}

// TestChallengeBadInput: whatever is sent, the answer is a clear 4xx.
func TestChallengeBadInput(t *testing.T) {
	h, mb, _ := challenged(t)
	id, _ := beginChallenge(t, h, mb, chAddr, chPass)
	unknown := challenge.IDPrefix + strings.Repeat("A", 43)
	for _, c := range []struct {
		name, body, ct string
		code           int
		err            string
	}{
		{"not JSON", "challenge_id=x", "application/x-www-form-urlencoded", http.StatusBadRequest, "invalid_request"},
		{"no id", `{"code":"123456"}`, "", http.StatusBadRequest, "invalid_request"},
		{"no code", jsonBody(map[string]string{"challenge_id": id}), "", http.StatusBadRequest, "invalid_request"},
		{"malformed id", completeBody("latch_ch_nope", "123456"), "", http.StatusBadRequest, "invalid_challenge"},
		{"unknown id", completeBody(unknown, "123456"), "", http.StatusBadRequest, "invalid_challenge"},
		{"a refresh token as id", completeBody(auth.RefreshTokenPrefix+strings.Repeat("A", 43), "123456"), "", http.StatusBadRequest, "invalid_challenge"},
		{"long code", completeBody(id, strings.Repeat("1", 5000)), "", http.StatusBadRequest, "invalid_request"},
		{"unicode digits", completeBody(id, "١٢٣٤٥٦"), "", http.StatusBadRequest, "invalid_request"},
		{"number", `{"challenge_id":"` + id + `","code":123456}`, "", http.StatusBadRequest, "invalid_request"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var hdr []string
			if c.ct != "" {
				hdr = []string{"Content-Type", c.ct}
			}
			expect(t, c.name, h.do("POST", "/v1/auth/challenge", c.body, hdr...), c.code, c.err)
		})
	}
	ch, err := h.in.Store.Challenge(context.Background(), hashOf(id))
	if err != nil || ch.Attempts != 0 {
		t.Fatalf("bad input spent attempts: %+v, %v", ch, err)
	}
}

// TestChallengeAccountChanged: a lock or a new password between the email
// and the code ends the held-back sign-in.
func TestChallengeAccountChanged(t *testing.T) {
	h, mb, uid := challenged(t)
	id, code := beginChallenge(t, h, mb, chAddr, chPass)
	h.clock.Advance(time.Second)
	if err := h.in.Account.Lock(context.Background(), uid, latch.LockReasonResetRequired, auth.Device{}); err != nil {
		t.Fatal(err)
	}
	expect(t, "locked meanwhile", h.do("POST", "/v1/auth/challenge", completeBody(id, code)), http.StatusForbidden, "account_locked")
	if err := h.in.Store.UnlockUser(context.Background(), uid, "", h.clock.Now()); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(time.Second)
	r := h.do("POST", "/v1/auth/challenge", completeBody(id, code))
	expect(t, "changed meanwhile", r, http.StatusBadRequest, "invalid_challenge")
	if n := sessionsOf(t, h, uid); n != 0 {
		t.Fatalf("%d sessions", n)
	}
}

// TestChallengePageSignIn: Latch's own page (cookie delivery) gets its
// cookies and its SSO session from the completion, so an OpenID Connect
// flow that sent the user to sign in goes on, with amr pwd and otp in the
// id_token. A cross-site completion is refused before it spends anything.
func TestChallengePageSignIn(t *testing.T) {
	h, mb, _ := challenged(t)
	h.addRP("wiki", func(n *auth.NewClient) { n.FirstParty = true })
	b := h.browser()
	q := codeRequest("wiki", "openid")
	r := b.authorize(q)
	if r.code != http.StatusSeeOther || !strings.HasPrefix(r.location, "/login?") {
		t.Fatalf("want a redirect to /login, got %d %q", r.code, r.location)
	}
	lu, _ := url.Parse(r.location)
	returnTo := lu.Query().Get("return_to")

	post := func(path string, body any, hdr ...string) hop {
		raw, _ := json.Marshal(body)
		req, _ := http.NewRequest(http.MethodPost, h.srv.URL+path, strings.NewReader(string(raw)))
		req.Header.Set("Content-Type", "application/json")
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		return b.do(req)
	}
	before := len(mb.fetch())
	r = post("/v1/auth/login", map[string]string{"email": chAddr, "password": chPass, "client_id": auth.AccountClientID})
	var held map[string]string
	_ = json.Unmarshal([]byte(r.body), &held)
	if r.code != http.StatusForbidden || held["error"] != "challenge_required" {
		t.Fatalf("page sign-in: %d %s", r.code, r.body)
	}
	var code string
	waitFor(t, "the challenge email", func() bool {
		got := mb.fetch()
		for _, m := range got[before:] {
			if m.Template == challenge.Template {
				code = m.Data["code"]
				return true
			}
		}
		return false
	})
	body := map[string]string{"challenge_id": held["challenge_id"], "code": code}

	// From another site: refused, nothing spent.
	if x := post("/v1/auth/challenge", body, "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"); x.code != http.StatusForbidden || !strings.Contains(x.body, "csrf_failed") {
		t.Fatalf("cross-site completion: %d %s", x.code, x.body)
	}
	if c, err := h.in.Store.Challenge(context.Background(), hashOf(held["challenge_id"])); err != nil || !c.UsedAt.IsZero() || c.Attempts != 0 {
		t.Fatalf("the cross-site completion spent the challenge: %+v, %v", c, err)
	}

	r = post("/v1/auth/challenge", body, "Origin", h.srv.URL)
	if r.code != http.StatusOK {
		t.Fatalf("page completion: %d %s", r.code, r.body)
	}
	var names []string
	for _, c := range r.header.Values("Set-Cookie") {
		names = append(names, strings.SplitN(c, "=", 2)[0])
	}
	if !slices.Contains(names, "latch_sso") || !slices.Contains(names, "latch_rt") || !slices.Contains(names, "latch_csrf") {
		t.Fatalf("page completion set cookies %v; want the SSO session's and the session's", names)
	}
	if strings.Contains(r.body, "refresh_token\"") {
		t.Errorf("a cookie-mode answer carries the refresh token: %s", r.body)
	}
	// The OpenID Connect flow goes on with the new SSO session.
	cb := callback(t, b.get(returnTo))
	tok := h.exchange("wiki", cb.Get("code"), "https://wiki.example/cb", "")
	if tok.code != http.StatusOK {
		t.Fatalf("exchange: %d %s", tok.code, tok.raw)
	}
	amr, _ := segment(t, tok.str("id_token"), 1)["amr"].([]any)
	if len(amr) != 2 || amr[0] != "pwd" || amr[1] != challenge.AMR {
		t.Fatalf("id_token amr %v, want [pwd otp]", amr)
	}
}

func hashOf(id string) []byte {
	b := sha256.Sum256([]byte(id))
	return b[:]
}

// denyAfterCode is a guard that challenges a sign-in, and refuses it once
// the code was entered (as a deny rule that changed meanwhile would).
type denyAfterCode struct{}

func (denyAfterCode) ScreenSignIn(_ context.Context, a *auth.Authentication, _ string, _ auth.Device) (*auth.Screening, error) {
	if a.Challenged {
		return nil, auth.ErrRiskDenied
	}
	return nil, auth.ErrChallenge
}

// TestChallengeThenDenied: the guard screens the completed sign-in again
// (it only skips asking for another code): a refusal then is the 403
// access_denied of a refused sign-in, and no session exists.
func TestChallengeThenDenied(t *testing.T) {
	h, mb, uid := challenged(t)
	h.in.Auth.SetGuards(auth.Guards{SignIn: denyAfterCode{}, Challenger: h.in.Challenges})
	id, code := beginChallenge(t, h, mb, chAddr, chPass)
	r := h.do("POST", "/v1/auth/challenge", completeBody(id, code))
	expect(t, "denied after the code", r, http.StatusForbidden, "access_denied")
	if r.str("error_description") != "sign-in from this location is not allowed" {
		t.Errorf("denied: %s", r.raw)
	}
	if n := sessionsOf(t, h, uid); n != 0 {
		t.Fatalf("%d sessions", n)
	}
}
