package instance_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/auth"
	"github.com/latchauth/latch/config"
	"github.com/latchauth/latch/protect"
)

// A browser's user agent (every test browser here is Chrome on Linux: a
// fresh profile differs by its missing device cookie only).
const chromeUA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"

// browser is a client that behaves as a browser profile towards the JSON
// sign-in: it sends Fetch Metadata and keeps the device cookie.
type profile struct {
	h      *harness
	device string // the device cookie's value
}

// login signs in from the browser and keeps the device cookie it gets.
func (b *profile) login(email, pw string) response {
	b.h.t.Helper()
	hdr := []string{"User-Agent", chromeUA, "Sec-Fetch-Site", "same-origin"}
	if b.device != "" {
		hdr = append(hdr, "Cookie", "latch_device="+b.device)
	}
	r := b.h.do("POST", "/v1/auth/login", jsonBody(map[string]string{"email": email, "password": pw}), hdr...)
	if r.code == http.StatusOK {
		for _, c := range (&http.Response{Header: r.header}).Cookies() {
			if c.Name == "latch_device" {
				if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.MaxAge < 399*24*3600 {
					b.h.t.Errorf("device cookie %+v: want HttpOnly, SameSite=Lax, Path=/, 400 days", c)
				}
				b.device = c.Value
			}
		}
	}
	return r
}

// alertLinks returns the alert id and the tokens of the two links of a
// new_device email: /alert#id=…&t=…, nothing in the query.
func alertLinks(t *testing.T, e latch.EmailMessage) (id, me, notMe string) {
	t.Helper()
	parse := func(k string) (string, string) {
		u, err := url.Parse(e.Data[k])
		if err != nil || u.Path != "/alert" || u.RawQuery != "" {
			t.Fatalf("%s %q: want /alert#id=…&t=%s…", k, e.Data[k], protect.AlertTokenPrefix)
		}
		f, err := url.ParseQuery(u.Fragment)
		if err != nil || !strings.HasPrefix(f.Get("t"), protect.AlertTokenPrefix) || f.Get("id") == "" {
			t.Fatalf("%s %q: want /alert#id=…&t=%s…", k, e.Data[k], protect.AlertTokenPrefix)
		}
		return f.Get("id"), f.Get("t")
	}
	id, me = parse("me_link")
	id2, notMe := parse("not_me_link")
	if id != id2 || me == notMe {
		t.Fatalf("the two links name alerts %s and %s, tokens equal: %v", id, id2, me == notMe)
	}
	return id, me, notMe
}

// alertLinkBody is the JSON the /alert page posts: the link's id and
// token.
func alertLinkBody(id, tok string) string {
	return jsonBody(map[string]string{"id": id, "token": tok})
}

// alertPreview asks what a link would do, as the /alert page does when
// it opens; alertPOST answers it, as the page's button does.
func alertPreview(h *harness, id, tok string) response {
	return h.do("POST", "/v1/alerts/preview", alertLinkBody(id, tok))
}

func alertPOST(h *harness, id, tok string, hdr ...string) response {
	return h.do("POST", "/v1/alerts/answer", alertLinkBody(id, tok), hdr...)
}

// alertRefused expects a link refused with 410 invalid_link (both the
// preview and the answer).
func alertRefused(t *testing.T, what string, h *harness, id, tok string) {
	t.Helper()
	expect(t, what+" (preview)", alertPreview(h, id, tok), http.StatusGone, "invalid_link")
	expect(t, what+" (answer)", alertPOST(h, id, tok), http.StatusGone, "invalid_link")
}

func eventsOf(t *testing.T, h *harness, userID, typ string) []latch.Event {
	t.Helper()
	list, err := h.in.Store.EventsByUser(context.Background(), userID, 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []latch.Event
	for _, e := range list {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// TestAlertNewDevice: the first sign-in of an account and sign-ins from a
// known device alert no one; a fresh browser profile (no device cookie)
// is a new device: a new_device_sign_in event and an email with when,
// where, browser, OS and two links, enqueued with the session.
func TestAlertNewDevice(t *testing.T) {
	h := start(t, "", nil)
	mb := &mailbox{h: h}
	const addr, pw = "nora@example.com", "correct horse battery"
	uid := h.addUser(addr, pw)
	a := &profile{h: h}
	expect(t, "sign-in from A", a.login(addr, pw), http.StatusOK, "")
	if a.device == "" {
		t.Fatal("a browser sign-in set no device cookie")
	}
	expect(t, "sign-in from A again", a.login(addr, pw), http.StatusOK, "")
	// A client that holds no cookie is known by its user-agent family.
	h.login(addr, pw)
	h.login(addr, pw)
	if got := eventsOf(t, h, uid, latch.EventNewDeviceSignIn); len(got) != 1 {
		t.Fatalf("%d new_device_sign_in events after A, A, and a cookie-less client twice; want 1 (the client's first)", len(got))
	}

	b := &profile{h: h}
	r := b.login(addr, pw)
	expect(t, "sign-in from B", r, http.StatusOK, "")
	var e latch.EmailMessage
	waitFor(t, "the alert for B", func() bool {
		n := 0
		for _, m := range mb.fetch() {
			if m.Template == protect.TemplateNewDevice {
				n, e = n+1, m
			}
		}
		return n == 2
	})
	for _, k := range []string{"when", "where", "browser", "os", "ip", "expires_in"} {
		if e.Data[k] == "" {
			t.Errorf("the alert lacks %s: %v", k, e.Data)
		}
	}
	if e.To != addr || e.Data["browser"] != "Chrome 120" || e.Data["os"] != "Linux" || !strings.Contains(e.Data["when"], "UTC") ||
		!strings.Contains(e.Data["where"], "127.0.0.1") || e.Data["expires_in"] != "7 days" {
		t.Errorf("alert email: %+v", e)
	}
	alertLinks(t, e)
	evs := eventsOf(t, h, uid, latch.EventNewDeviceSignIn)
	if len(evs) != 2 || evs[0].SessionID != r.str("session_id") || evs[0].Detail["alert_id"] == "" ||
		!strings.Contains(evs[0].Detail["reasons"], "new_device") || !strings.Contains(evs[0].Detail["signals"], `"new_device":true`) {
		t.Errorf("new_device_sign_in events: %+v", evs)
	}
	// B is known now.
	expect(t, "sign-in from B again", b.login(addr, pw), http.StatusOK, "")
	if got := eventsOf(t, h, uid, latch.EventNewDeviceSignIn); len(got) != 2 {
		t.Errorf("%d alerts after B signed in again; want still 2", len(got))
	}
	// A forged device cookie counts as none: a new device.
	forged := &profile{h: h, device: strings.Repeat("a", 26) + ".AAAA"}
	expect(t, "sign-in with a forged device cookie", forged.login(addr, pw), http.StatusOK, "")
	if got := eventsOf(t, h, uid, latch.EventNewDeviceSignIn); len(got) != 3 {
		t.Errorf("%d alerts after a forged cookie; want 3", len(got))
	}
}

// notMeSetup signs nora in from A and from B, and returns the harness
// with both sign-ins and the alert's links.
func notMeSetup(t *testing.T) (h *harness, mb *mailbox, uid string, ra, rb response, id, me, notMe string) {
	h = start(t, "", nil)
	mb = &mailbox{h: h}
	const addr, pw = "nora@example.com", "correct horse battery"
	uid = h.addUser(addr, pw)
	ra = (&profile{h: h}).login(addr, pw)
	expect(t, "sign-in from A", ra, http.StatusOK, "")
	rb = (&profile{h: h}).login(addr, pw)
	expect(t, "sign-in from B", rb, http.StatusOK, "")
	id, me, notMe = alertLinks(t, mb.wait(t, addr, protect.TemplateNewDevice))
	h.clock.Advance(2 * time.Second) // the cutoff lies after the tokens' second
	return
}

// TestAlertNotMe: opening "this wasn't me" changes nothing (the page,
// the page with a legacy query link, the preview); the answer's POST,
// from this origin only, signs out every session (access tokens refused,
// refresh tokens dead), locks the account until a password reset, emails
// a reset link, and records not_me; the reset lifts the lock.
func TestAlertNotMe(t *testing.T) {
	h, mb, uid, ra, rb, id, _, notMe := notMeSetup(t)
	const addr, pw = "nora@example.com", "correct horse battery"

	// A GET (a mail scanner's prefetch) and the page's preview do nothing.
	for range 3 {
		for _, path := range []string{"/alert", "/alert?" + url.Values{"id": {id}, "t": {notMe}}.Encode()} {
			page := h.do("GET", path, "")
			expect(t, "GET "+path, page, http.StatusOK, "")
			if !strings.Contains(string(page.raw), "alert.") || strings.Contains(string(page.raw), notMe) {
				t.Fatalf("GET %s: not the /alert page, or it echoes the token:\n%s", path, page.raw)
			}
			if csp := page.header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe-inline") {
				t.Errorf("confirm page CSP %q", csp)
			}
			if rp := page.header.Get("Referrer-Policy"); rp != "no-referrer" {
				t.Errorf("confirm page Referrer-Policy %q", rp)
			}
		}
		p := alertPreview(h, id, notMe)
		expect(t, "preview not-me", p, http.StatusOK, "")
		if p.str("answer") != latch.AlertAnswerNotMe || p.str("id") != id || p.body["open"] != true || p.str("ip") != "127.0.0.1" ||
			p.str("browser") != "Chrome 120" || p.str("os") != "Linux" || !strings.Contains(p.str("when"), "UTC") || !strings.Contains(p.str("where"), "127.0.0.1") {
			t.Fatalf("preview: %s", p.raw)
		}
		if cc := p.header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("preview Cache-Control %q", cc)
		}
	}
	expect(t, "A after the GET", h.do("GET", "/v1/me", "", bearer(ra.str("access_token"))...), http.StatusOK, "")
	if u, _ := h.in.Store.UserByID(context.Background(), uid); u.Locked() {
		t.Fatal("a GET or a preview locked the account")
	}
	if len(eventsOf(t, h, uid, latch.EventNotMe)) != 0 {
		t.Fatal("a GET or a preview recorded not_me")
	}

	// The POST must come from this origin.
	expect(t, "POST from another origin", alertPOST(h, id, notMe, "Origin", "http://evil.example"), http.StatusForbidden, "csrf_failed")
	expect(t, "POST from another site", alertPOST(h, id, notMe, "Sec-Fetch-Site", "cross-site"), http.StatusForbidden, "csrf_failed")
	// The legacy form post of the old page acts no more.
	form := url.Values{"id": {id}, "t": {notMe}}
	if r := h.do("POST", "/alert", form.Encode(), "Content-Type", "application/x-www-form-urlencoded"); r.code < 400 || r.code > 499 {
		t.Fatalf("POST /alert: %d, want a 4xx", r.code)
	}
	if u, _ := h.in.Store.UserByID(context.Background(), uid); u.Locked() {
		t.Fatal("a refused POST locked the account")
	}

	done := alertPOST(h, id, notMe, "Origin", h.srv.URL, "Sec-Fetch-Site", "same-origin")
	expect(t, "POST not-me", done, http.StatusOK, "")
	if done.str("answer") != latch.AlertAnswerNotMe || done.str("id") != id {
		t.Errorf("the answer: %s", done.raw)
	}
	for name, r := range map[string]response{"A": ra, "B": rb} {
		expect(t, name+"'s access token", h.do("GET", "/v1/me", "", bearer(r.str("access_token"))...), http.StatusUnauthorized, "")
		expect(t, name+"'s refresh token", h.refresh(r.str("refresh_token")), http.StatusUnauthorized, "invalid_grant")
	}
	expect(t, "sign-in while locked", h.do("POST", "/v1/auth/login", jsonBody(map[string]string{"email": addr, "password": pw})), http.StatusForbidden, "account_locked")
	if u, _ := h.in.Store.UserByID(context.Background(), uid); u.LockReason != latch.LockReasonResetRequired {
		t.Errorf("lock reason %q", u.LockReason)
	}
	if evs := eventsOf(t, h, uid, latch.EventNotMe); len(evs) != 1 || evs[0].Detail["alert_id"] != id {
		t.Errorf("not_me events %+v", evs)
	}
	// B's device is forgotten: it must not count as the owner's.
	devs, _ := h.in.Store.Devices(context.Background(), uid)
	if len(devs) != 1 {
		t.Errorf("%d devices after not-me; want A's only", len(devs))
	}

	tok := linkToken(t, mb.wait(t, addr, "reset_password"), "/reset", "latch_pr_")
	alertRefused(t, "used not-me link", h, id, notMe)
	expect(t, "reset", h.do("POST", "/v1/auth/password/reset", jsonBody(map[string]string{"token": tok, "password": "a brand new password"})), http.StatusOK, "")
	h.login(addr, "a brand new password")
}

// TestAlertLinkRejections: a used link, an expired link, a token shown
// with another alert's id (another user's), "yes" then "not me" on one
// alert, and a malformed token are refused (preview and answer: 410
// invalid_link), and change nothing.
func TestAlertLinkRejections(t *testing.T) {
	h, _, uid, ra, _, id, me, notMe := notMeSetup(t)

	// Another user with an alert of their own.
	const other, pw = "otto@example.com", "another good password"
	otherID := h.addUser(other, pw)
	(&profile{h: h}).login(other, pw)
	(&profile{h: h}).login(other, pw)
	mb2 := &mailbox{h: h}
	oid, _, _ := alertLinks(t, mb2.wait(t, other, protect.TemplateNewDevice))

	alertRefused(t, "nora's token with otto's alert id", h, oid, notMe)
	for _, bad := range []string{"latch_al_short", protect.AlertTokenPrefix + strings.Repeat("A", 43), "garbage", notMe + "x", strings.ToUpper(notMe)} {
		alertRefused(t, "token "+bad, h, id, bad)
	}
	for _, u := range []string{uid, otherID} {
		if got, _ := h.in.Store.UserByID(context.Background(), u); got.Locked() {
			t.Fatal("a refused link locked an account")
		}
	}

	// Yes, then not me: the second answer is refused.
	if p := alertPreview(h, id, me); p.code != http.StatusOK || p.str("answer") != latch.AlertAnswerMe {
		t.Fatalf("preview yes: %d %s", p.code, p.raw)
	}
	expect(t, "yes, it was me", alertPOST(h, id, me), http.StatusOK, "")
	alertRefused(t, "the used yes link", h, id, me)
	alertRefused(t, "not me after yes", h, id, notMe)
	if got, _ := h.in.Store.UserByID(context.Background(), uid); got.Locked() {
		t.Fatal("not-me after yes locked the account")
	}
	expect(t, "A after the refusals", h.do("GET", "/v1/me", "", bearer(ra.str("access_token"))...), http.StatusOK, "")
	if evs := eventsOf(t, h, uid, latch.EventDeviceConfirmed); len(evs) != 1 {
		t.Errorf("device_confirmed events: %+v", evs)
	}
	devs, _ := h.in.Store.Devices(context.Background(), uid)
	confirmed := 0
	for _, d := range devs {
		if !d.ConfirmedAt.IsZero() {
			confirmed++
		}
	}
	if confirmed != 1 {
		t.Errorf("%d confirmed devices; want B's", confirmed)
	}

	// Expired: seven days and a second later, otto's links are dead.
	_, _, ootherNotMe := alertLinks(t, mustFind(t, mb2, other))
	expect(t, "otto's link before it expires", alertPreview(h, oid, ootherNotMe), http.StatusOK, "")
	h.clock.Advance(7*24*time.Hour + time.Second)
	alertRefused(t, "expired link", h, oid, ootherNotMe)
	if got, _ := h.in.Store.UserByID(context.Background(), otherID); got.Locked() {
		t.Fatal("an expired link locked the account")
	}
}

func mustFind(t *testing.T, mb *mailbox, to string) latch.EmailMessage {
	t.Helper()
	e, ok := mb.find(to, protect.TemplateNewDevice)
	if !ok {
		t.Fatalf("no alert to %s", to)
	}
	return e
}

// TestDevicesAPI: /v1/devices lists the caller's devices; PATCH renames
// and DELETE forgets the caller's own only; bad input is a 4xx.
func TestDevicesAPI(t *testing.T) {
	h := start(t, "", nil)
	const addr, pw = "nora@example.com", "correct horse battery"
	h.addUser(addr, pw)
	h.addUser("otto@example.com", pw)
	a := &profile{h: h}
	ra := a.login(addr, pw)
	ro := (&profile{h: h}).login("otto@example.com", pw)
	auth := bearer(ra.str("access_token"))

	list := h.do("GET", "/v1/devices", "", append(auth, "Cookie", "latch_device="+a.device)...)
	expect(t, "GET /v1/devices", list, http.StatusOK, "")
	devs, _ := list.body["devices"].([]any)
	if len(devs) != 1 {
		t.Fatalf("devices: %s", list.raw)
	}
	d := devs[0].(map[string]any)
	if d["browser"] != "Chrome 120" || d["os"] != "Linux" || d["current"] != true || d["last_ip"] != "127.0.0.1" {
		t.Errorf("device %v", d)
	}
	id := d["id"].(string)
	otto := h.do("GET", "/v1/devices", "", bearer(ro.str("access_token"))...)
	ottoID := otto.body["devices"].([]any)[0].(map[string]any)["id"].(string)

	expect(t, "rename", h.do("PATCH", "/v1/devices/"+id, `{"name":"Work laptop"}`, auth...), http.StatusNoContent, "")
	expect(t, "rename otto's", h.do("PATCH", "/v1/devices/"+ottoID, `{"name":"mine"}`, auth...), http.StatusNotFound, "not_found")
	expect(t, "rename without name", h.do("PATCH", "/v1/devices/"+id, `{}`, auth...), http.StatusBadRequest, "invalid_request")
	expect(t, "rename too long", h.do("PATCH", "/v1/devices/"+id, jsonBody(map[string]string{"name": strings.Repeat("x", 101)}), auth...), http.StatusBadRequest, "invalid_request")
	expect(t, "rename not JSON", h.do("PATCH", "/v1/devices/"+id, `name=x`, auth...), http.StatusBadRequest, "")
	expect(t, "without a token", h.do("GET", "/v1/devices", ""), http.StatusUnauthorized, "")
	list = h.do("GET", "/v1/devices", "", auth...)
	if list.body["devices"].([]any)[0].(map[string]any)["name"] != "Work laptop" {
		t.Errorf("after rename: %s", list.raw)
	}
	expect(t, "forget otto's", h.do("DELETE", "/v1/devices/"+ottoID, "", auth...), http.StatusNotFound, "not_found")
	expect(t, "forget", h.do("DELETE", "/v1/devices/"+id, "", auth...), http.StatusNoContent, "")
	expect(t, "forget again", h.do("DELETE", "/v1/devices/"+id, "", auth...), http.StatusNotFound, "not_found")
	// otto's device is still there.
	if n := len(h.do("GET", "/v1/devices", "", bearer(ro.str("access_token"))...).body["devices"].([]any)); n != 1 {
		t.Errorf("otto has %d devices", n)
	}

	alerts := h.do("GET", "/v1/alerts", "", auth...)
	expect(t, "GET /v1/alerts", alerts, http.StatusOK, "")
}

// TestCodeExchangeLockedUser: an authorization code redeemed after its
// user was locked (before the lock's revocation ran) gets no session:
// 400 invalid_grant, never a 500.
func TestCodeExchangeLockedUser(t *testing.T) {
	h := start(t, "", nil)
	uid := h.addUser(adaEmail, adaPass)
	h.addRP("rp", func(n *auth.NewClient) { n.FirstParty = true })
	b := h.browser()
	b.signIn(adaEmail, adaPass)
	verifier, challenge := pkce("v")
	q := callback(t, b.authorize(codeRequest("rp", "openid", "code_challenge", challenge, "code_challenge_method", "S256")))
	if q.Get("code") == "" {
		t.Fatalf("no code: %v", q)
	}
	// The lock is set; its RevokeUser has not run yet.
	if err := h.in.Store.LockUser(context.Background(), uid, latch.LockReasonResetRequired, h.clock.Now()); err != nil {
		t.Fatal(err)
	}
	expect(t, "exchange for a locked user", h.exchange("rp", q.Get("code"), "https://rp.example/cb", verifier), http.StatusBadRequest, "invalid_grant")
	if live, _ := h.in.Store.SessionsByUser(context.Background(), uid, h.clock.Now()); len(live) != 1 {
		t.Errorf("%d live sessions; want only the sign-in's", len(live))
	}
}

// TestAlertBadInput: malformed requests to /alert and the alert link
// API are a 4xx, never a 5xx.
func TestAlertBadInput(t *testing.T) {
	h := start(t, "", nil)
	for name, r := range map[string]response{
		"POST /alert":               h.do("POST", "/alert", `{"id":"x","t":"y"}`),
		"POST /alert an empty form": h.do("POST", "/alert", "", "Content-Type", "application/x-www-form-urlencoded"),
		"PUT /alert":                h.do("PUT", "/alert", ""),
		"preview without a body":    h.do("POST", "/v1/alerts/preview", "", "Content-Type", "application/json"),
		"preview a form":            h.do("POST", "/v1/alerts/preview", "id=x&token=y", "Content-Type", "application/x-www-form-urlencoded"),
		"preview without a token":   h.do("POST", "/v1/alerts/preview", `{"id":"al_x"}`),
		"preview without an id":     h.do("POST", "/v1/alerts/preview", `{"token":"latch_al_x"}`),
		"preview a number":          h.do("POST", "/v1/alerts/preview", `{"id":1,"token":2}`),
		"preview a huge body":       h.do("POST", "/v1/alerts/preview", `{"id":"x","token":"`+strings.Repeat("A", 100<<10)+`"}`),
		"preview with a NUL":        h.do("POST", "/v1/alerts/preview", `{"id":"al_\u0000","token":"latch_al_\u0000"}`),
		"answer not JSON":           h.do("POST", "/v1/alerts/answer", `id=x`),
		"answer without a token":    h.do("POST", "/v1/alerts/answer", `{"id":"al_x"}`),
		"answer an unknown link":    h.do("POST", "/v1/alerts/answer", `{"id":"al_x","token":"latch_al_x"}`),
		"GET the preview":           h.do("GET", "/v1/alerts/preview", ""),
		"PATCH a device, no auth":   h.do("PATCH", "/v1/devices/x", `{"name":"n"}`),
	} {
		if r.code < 400 || r.code > 499 {
			t.Errorf("%s: %d, want a 4xx: %s", name, r.code, r.raw)
		}
		if strings.HasPrefix(r.header.Get("Content-Type"), "application/json") && r.str("error") == "" {
			t.Errorf("%s: a JSON answer without error: %s", name, r.raw)
		}
	}
	// The page itself reads nothing on the server: 200 without
	// parameters or with a broken query (the script says the link is
	// incomplete, or the preview refuses it).
	expect(t, "GET /alert", h.do("GET", "/alert", ""), http.StatusOK, "")
	expect(t, "GET /alert with a bad escape", h.do("GET", "/alert?id=%zz&t=%", ""), http.StatusOK, "")
}

// TestAlertIPChangeIsNotANewDevice: the same browser (its device cookie)
// from other addresses, as trusted_proxies reports them, alerts no one;
// another browser from the known address does.
func TestAlertIPChangeIsNotANewDevice(t *testing.T) {
	h := start(t, "", func(c *config.Config) { c.TrustedProxies = []string{"127.0.0.1/32"} })
	mb := &mailbox{h: h}
	const addr, pw = "nora@example.com", "correct horse battery"
	uid := h.addUser(addr, pw)
	login := func(device, ip string) string {
		hdr := []string{"User-Agent", chromeUA, "Sec-Fetch-Site", "same-origin", "X-Forwarded-For", ip}
		if device != "" {
			hdr = append(hdr, "Cookie", "latch_device="+device)
		}
		r := h.do("POST", "/v1/auth/login", jsonBody(map[string]string{"email": addr, "password": pw}), hdr...)
		expect(t, "sign-in from "+ip, r, http.StatusOK, "")
		for _, c := range (&http.Response{Header: r.header}).Cookies() {
			if c.Name == "latch_device" {
				return c.Value
			}
		}
		return device
	}
	dev := login("", "198.51.100.7")
	for _, ip := range []string{"203.0.113.50", "192.0.2.99", "2001:db8::1"} {
		h.clock.Advance(time.Hour)
		login(dev, ip)
	}
	if got := eventsOf(t, h, uid, latch.EventNewDeviceSignIn); len(got) != 0 {
		t.Fatalf("%d alerts for one browser on four networks; want none", len(got))
	}
	// The known device's touches are written just after each answer.
	waitFor(t, "one device, last seen at the last address", func() bool {
		devs, _ := h.in.Store.Devices(context.Background(), uid)
		return len(devs) == 1 && devs[0].LastIP == "2001:db8::1"
	})
	login("", "2001:db8::1")
	mb.wait(t, addr, protect.TemplateNewDevice)
}
