package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/mail"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/auth"
	"github.com/latchauth/latch/config"
	"github.com/latchauth/latch/instance"
	"github.com/latchauth/latch/internal/testenv"
	"github.com/latchauth/latch/mail/mailtest"
)

// deviceCookie is the device cookie's name on http://localhost.
const deviceCookie = "__Host-latch_device"

// signOutBound is how soon after "this wasn't me" every session of the
// user must be refused.
const signOutBound = time.Second

// startLatchMail is startLatch with emails sent through an SMTP sink by
// the instance's running outbox worker.
func startLatchMail(t *testing.T, sink *mailtest.Sink) *latchServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	cfg := config.Defaults()
	cfg.DataDir = filepath.Join(t.TempDir(), "latch-data")
	cfg.Addr = ln.Addr().String()
	cfg.Issuer = fmt.Sprintf("http://localhost:%d", port)
	cfg.Revocation.MaxStale = 0
	cfg.Mail.SMTPURL = sink.URL()
	if err := cfg.Validate(); err != nil {
		ln.Close()
		t.Fatalf("config: %v", err)
	}
	logs := &syncBuffer{}
	clk := testenv.NewClock(time.Now().UTC())
	in, err := instance.Open(t.Context(), cfg, instance.Options{
		Now: clk.Now, Log: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		ln.Close()
		t.Fatalf("open instance: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	in.Start(ctx)
	rec := &recorder{next: in.Server}
	hs := &http.Server{Handler: rec, ReadHeaderTimeout: 5 * time.Second}
	go hs.Serve(ln)
	t.Cleanup(func() {
		sctx, stop := context.WithTimeout(context.Background(), 5*time.Second)
		defer stop()
		_ = hs.Shutdown(sctx)
		cancel()
		in.Wait()
		in.Close()
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	return &latchServer{URL: cfg.Issuer, clock: clk, in: in, rec: rec}
}

// sentMail is one message the sink received, decoded.
type sentMail struct {
	Subject, To, Text string
}

// received decodes every message the sink got so far.
func received(t *testing.T, sink *mailtest.Sink) []sentMail {
	t.Helper()
	var out []sentMail
	for _, raw := range sink.Data() {
		m, err := mail.ReadMessage(strings.NewReader(raw))
		if err != nil {
			t.Fatalf("parse sent message: %v", err)
		}
		dec := new(mime.WordDecoder)
		subject, _ := dec.DecodeHeader(m.Header.Get("Subject"))
		sm := sentMail{Subject: subject, To: m.Header.Get("To"), Text: plainText(t, m.Header, m.Body)}
		out = append(out, sm)
	}
	return out
}

// plainText returns the text/plain part of a message, decoded.
func plainText(t *testing.T, h mail.Header, body io.Reader) string {
	t.Helper()
	mt, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil {
		t.Fatalf("content type %q: %v", h.Get("Content-Type"), err)
	}
	if strings.HasPrefix(mt, "multipart/") {
		r := multipart.NewReader(body, params["boundary"])
		for {
			p, err := r.NextRawPart()
			if err != nil {
				return ""
			}
			if s := plainText(t, mail.Header(p.Header), p); s != "" {
				return s
			}
		}
	}
	if mt != "text/plain" {
		return ""
	}
	if strings.EqualFold(h.Get("Content-Transfer-Encoding"), "quoted-printable") {
		body = quotedprintable.NewReader(body)
	}
	b, _ := io.ReadAll(body)
	return string(b)
}

// waitMail waits for a message whose subject contains subject and returns
// it.
func waitMail(t *testing.T, sink *mailtest.Sink, subject string) sentMail {
	t.Helper()
	deadline := time.Now().Add(stepTimeout)
	for time.Now().Before(deadline) {
		for _, m := range received(t, sink) {
			if strings.Contains(m.Subject, subject) {
				return m
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no email %q within %v; got %+v", subject, stepTimeout, received(t, sink))
	return sentMail{}
}

// alertLinkRE matches an alert link: its id and token are in the
// fragment, never in the query.
var alertLinkRE = regexp.MustCompile(`http://localhost:\d+/alert#id=[A-Za-z0-9_-]+&t=latch_al_[A-Za-z0-9_-]+`)

// alertPageReady waits until the /alert page shows the sign-in and its
// enabled button, and checks that the link's id and token left the
// address bar.
func alertPageReady(tb *tab, what string) {
	tb.waitJS(what, `!document.getElementById('alert-ask').hidden && !document.getElementById('confirm').disabled && document.getElementById('alert-ip').textContent !== ''`)
	var href string
	tb.evalJSON(`location.href`, &href)
	if strings.Contains(href, "latch_al_") || strings.Contains(href, "id=") {
		tb.t.Errorf("%s: the address bar still holds the link: %s", what, href)
	}
}

// noTokenInURLs fails the test if a request the server saw carried an
// alert token in its URL (where access logs keep it).
func noTokenInURLs(t *testing.T, rec *recorder) {
	t.Helper()
	for _, r := range rec.since(0) {
		if strings.Contains(r.Path+"?"+r.RawQuery, "latch_al_") {
			t.Errorf("%s %s?%s: an alert token reached the server in a URL", r.Method, r.Path, r.RawQuery)
		}
	}
}

// alertAnswered waits for the /alert page's result.
func alertAnswered(tb *tab, what string) {
	tb.waitJS(what, `!document.getElementById('alert-done').hidden && document.getElementById('alert-result').textContent !== ''`)
}

// TestBrowserNotMe is the proof of "this wasn't me": a user signs in from
// browser profile A, then from a fresh profile B; the alert lands in the
// SMTP sink with its two links; a mail scanner's prefetch of "this wasn't
// me" changes nothing; opened in a browser and confirmed, it signs A and
// B out within a second (access refused, refresh tokens dead), locks the
// account, and sends a reset link; the password is reset through /reset
// and the user signs in again.
func TestBrowserNotMe(t *testing.T) {
	sink := mailtest.Start(t)
	srv := startLatchMail(t, sink)
	const addr, pw, newPW = "nora@example.com", "correct horse battery", "a brand new passphrase"
	u, err := srv.in.Auth.CreateUser(t.Context(), addr, pw, auth.Device{})
	if err != nil {
		t.Fatal(err)
	}
	b := startBrowser(t)

	a := b.newProfile(t)
	a.loginViaPage(srv.URL, addr, pw)
	if c := a.cookies()[deviceCookie]; c == nil || !c.HTTPOnly || !c.Secure || c.Path != "/" || c.Expires < float64(time.Now().Add(399*24*time.Hour).Unix()) {
		t.Fatalf("profile A's device cookie: %+v; want HttpOnly, Secure, Path=/, 400 days", c)
	}
	// A's first sign-in is the account's first device: no alert.
	profB := b.newProfile(t)
	profB.loginViaPage(srv.URL, addr, pw)

	alert := waitMail(t, sink, "New sign-in")
	if alert.To != "<"+addr+">" && alert.To != addr {
		t.Errorf("alert sent to %q", alert.To)
	}
	for _, want := range []string{"When:", "UTC", "Where:", "127.0.0.1", "Browser: Headless Chrome", "Operating system: Linux", "Yes, it was me", "This wasn't me"} {
		if !strings.Contains(alert.Text, want) {
			t.Errorf("the alert lacks %q:\n%s", want, alert.Text)
		}
	}
	links := alertLinkRE.FindAllString(alert.Text, -1)
	if len(links) != 2 || links[0] == links[1] {
		t.Fatalf("alert links %v; want two different /alert links:\n%s", links, alert.Text)
	}
	notMe := links[1]

	live := func() int {
		list, err := srv.in.Store.SessionsByUser(context.Background(), u.ID, srv.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		return len(list)
	}
	before := live()
	if before != 2 {
		t.Fatalf("%d live sessions after A and B; want 2", before)
	}
	// The SSO sessions of A's and B's page sign-ins.
	var ssoIDs []string
	sessions, _ := srv.in.Store.SessionsByUser(context.Background(), u.ID, srv.clock.Now())
	for _, s := range sessions {
		if s.SSOSessionID != "" {
			ssoIDs = append(ssoIDs, s.SSOSessionID)
		}
	}
	if len(ssoIDs) != 2 {
		t.Fatalf("SSO sessions of A and B: %v", ssoIDs)
	}

	// A mail scanner prefetches the link (the fragment stays with it):
	// the page, and nothing happens.
	for range 2 {
		res, err := http.Get(notMe)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK || !strings.Contains(string(body), "lock the account") || strings.Contains(string(body), "latch_al_") {
			t.Fatalf("prefetch: %d\n%s", res.StatusCode, body)
		}
	}
	// No request the server saw carried the link's token in its URL.
	noTokenInURLs(t, srv.rec)
	if n := live(); n != 2 {
		t.Fatalf("%d live sessions after the prefetch; want 2", n)
	}
	if got, _ := srv.in.Store.UserByID(context.Background(), u.ID); got.Locked() {
		t.Fatal("the prefetch locked the account")
	}
	meStatus := func(tb *tab) int {
		var st int
		tb.evalJSON(`fetch('/v1/me', {credentials: 'same-origin'}).then(r => r.status)`, &st)
		return st
	}
	if meStatus(a) != 200 || meStatus(profB) != 200 {
		t.Fatal("A or B is signed out after the prefetch")
	}

	// The owner opens it (on another device) and confirms.
	phone := b.newProfile(t)
	phone.navigate(notMe)
	alertPageReady(phone, "the confirm page")
	var says string
	phone.evalJSON(`document.getElementById('alert-not-me').hidden ? '' : document.getElementById('alert-consequences').textContent`, &says)
	if !strings.Contains(says, "lock the account") {
		t.Fatalf("the not-me page does not say what will happen: %q", says)
	}
	if n := live(); n != 2 {
		t.Fatalf("%d live sessions after opening the page; want 2", n)
	}
	phone.screenshot("alert-not-me-confirm.png")
	phone.do("confirm", chromedp.Click(chromedp.ID("confirm"), chromedp.NodeVisible))
	alertAnswered(phone, "the result")
	confirmed := time.Now()
	phone.screenshot("alert-not-me-done.png")

	for name, tb := range map[string]*tab{"A": a, "B": profB} {
		tb.waitJSFor(signOutBound-time.Since(confirmed), name+" signed out",
			`fetch('/v1/me', {credentials: 'same-origin'}).then(r => r.status === 401)`)
	}
	if since := time.Since(confirmed); since > signOutBound {
		t.Errorf("A and B were refused only %v after the confirmation; want within %v", since, signOutBound)
	}
	// Their refresh tokens are dead: the browser's own refresh fails.
	for name, tb := range map[string]*tab{"A": a, "B": profB} {
		var st int
		tb.evalJSON(`(() => { const m = document.cookie.match(/__Host-latch_csrf=([^;]+)/); return fetch('/v1/auth/refresh', {method: 'POST', credentials: 'same-origin', headers: {'X-CSRF-Token': m ? m[1] : ''}}).then(r => r.status); })()`, &st)
		if st != http.StatusUnauthorized {
			t.Errorf("%s's refresh after not-me: %d; want 401", name, st)
		}
	}
	if n := live(); n != 0 {
		t.Errorf("%d live sessions after not-me", n)
	}
	for _, id := range ssoIDs {
		if sso, err := srv.in.Store.SSOSession(context.Background(), id); err != nil || sso.Live(srv.clock.Now()) {
			t.Errorf("SSO session %s after not-me: %+v, %v; want ended", id, sso, err)
		}
	}
	// The account is locked: the right password is refused.
	res, err := http.Post(srv.URL+"/v1/auth/login", "application/json", strings.NewReader(fmt.Sprintf(`{"email":%q,"password":%q}`, addr, pw)))
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]string
	_ = json.NewDecoder(res.Body).Decode(&body)
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden || body["error"] != "account_locked" {
		t.Fatalf("sign-in while locked: %d %v", res.StatusCode, body)
	}
	// The link opened again changes nothing and says so.
	used := b.newProfile(t)
	used.navigate(notMe)
	used.waitJS("the used link refused", `!document.getElementById('alert-invalid').hidden && document.getElementById('alert-ask').hidden`)
	noTokenInURLs(t, srv.rec)

	// The reset email; the password is reset through the page.
	reset := waitMail(t, sink, "Reset your password")
	link := regexp.MustCompile(`http://localhost:\d+/reset#token=latch_pr_[A-Za-z0-9_-]+`).FindString(reset.Text)
	if link == "" {
		t.Fatalf("no reset link in:\n%s", reset.Text)
	}
	phone.navigate(link)
	phone.waitJS("the reset form", `!document.getElementById('reset-form').hidden && !document.getElementById('reset-submit').disabled`)
	phone.do("choose a new password",
		chromedp.SendKeys(chromedp.ID("password"), newPW),
		chromedp.Click(chromedp.ID("reset-submit")),
	)
	phone.waitJS("the reset to succeed", `document.getElementById('reset-title').textContent === 'Password changed'`)
	if got, _ := srv.in.Store.UserByID(context.Background(), u.ID); got.Locked() {
		t.Fatal("the account is still locked after the reset")
	}
	a.loginViaPage(srv.URL, addr, newPW)
	evs, _ := srv.in.Store.EventsByUser(context.Background(), u.ID, 100)
	seen := map[string]bool{}
	for _, e := range evs {
		seen[e.Type] = true
	}
	for _, typ := range []string{latch.EventNewDeviceSignIn, latch.EventNotMe, latch.EventAccountLocked, latch.EventPasswordReset} {
		if !seen[typ] {
			t.Errorf("no %s event", typ)
		}
	}
}

// TestBrowserDevicesPage: the account page lists the known devices (with
// this one marked) and the sign-in alerts with their state; a device is
// renamed and forgotten from the page. Screenshots go to artifacts/ (and
// with LATCH_E2E_UPDATE_DOCS=1 to docs/img/account-devices.png and
// docs/img/alert-not-me.png).
func TestBrowserDevicesPage(t *testing.T) {
	sink := mailtest.Start(t)
	srv := startLatchMail(t, sink)
	const addr, pw = "ada@example.com", "correct horse battery staple"
	if _, err := srv.in.Auth.CreateUser(context.Background(), addr, pw, auth.Device{}); err != nil {
		t.Fatal(err)
	}
	b := startBrowser(t)
	desktop := b.newProfile(t)
	desktop.setUserAgent(uaDesktop)
	desktop.do("size the window", chromedp.EmulateViewport(1200, 860))
	desktop.loginViaPage(srv.URL, addr, pw)

	phone := b.newProfile(t)
	phone.setUserAgent(uaPhone)
	phone.loginViaPage(srv.URL, addr, pw)
	req, _ := http.NewRequest("POST", srv.URL+"/v1/auth/login", strings.NewReader(fmt.Sprintf(`{"email":%q,"password":%q}`, addr, pw)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", uaCLI)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()

	// The phone's alert is answered "yes, it was me".
	var phoneAlert sentMail
	deadline := time.Now().Add(stepTimeout)
	for time.Now().Before(deadline) {
		var alerts []sentMail
		for _, m := range received(t, sink) {
			if strings.Contains(m.Subject, "New sign-in") {
				alerts = append(alerts, m)
			}
		}
		if len(alerts) == 2 {
			for _, m := range alerts {
				if strings.Contains(m.Text, "Safari") {
					phoneAlert = m
				}
			}
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	links := alertLinkRE.FindAllString(phoneAlert.Text, -1)
	if len(links) != 2 {
		t.Fatalf("phone alert links: %v\n%s", links, phoneAlert.Text)
	}
	// Opened in its pre-fragment form (/alert?id=…&t=…, as emails sent
	// before the fix carry it), the page works too and strips the query.
	phone.navigate(strings.Replace(links[0], "/alert#", "/alert?", 1))
	alertPageReady(phone, "the yes page")
	phone.do("confirm", chromedp.Click(chromedp.ID("confirm"), chromedp.NodeVisible))
	alertAnswered(phone, "the result")

	desktop.navigate(srv.URL + "/account")
	desktop.waitJS("three devices and two alerts",
		`document.querySelectorAll('#devices .device-row').length === 3 && document.querySelectorAll('#alerts .alert-row').length === 2 && document.querySelector('#alerts .alert-confirmed') !== null && document.fonts.status === 'loaded'`)
	var current int
	desktop.evalJSON(`[...document.querySelectorAll('#devices .device-row')].filter(r => r.textContent.includes('This device')).length`, &current)
	if current != 1 {
		t.Errorf("%d rows marked as this device; want 1", current)
	}

	// Rename this device.
	row := `#devices .device-row:first-child`
	desktop.do("rename", chromedp.Click(chromedp.CSS(row+" .row-action button"), chromedp.NodeVisible))
	desktop.do("type the name", chromedp.SendKeys(chromedp.CSS(row+" .rename-form input"), "Work laptop"),
		chromedp.Click(chromedp.CSS(row+` .rename-form button[type="submit"]`), chromedp.NodeVisible))
	desktop.waitJS("the new name", `document.querySelector('#devices .device-row:first-child .device-name').textContent === 'Work laptop'`)
	desktop.evalJSON(`(() => { const s = document.getElementById('status'); s.textContent = ''; s.className = 'toast'; return true; })()`, new(bool))
	shot := desktop.screenshot("account-devices.png")

	// Forget the command-line client.
	desktop.do("forget the CLI", chromedp.Click(chromedp.CSS(`#devices .device-row:last-child .btn-danger-outline`), chromedp.NodeVisible))
	desktop.waitJS("the confirmation dialog", `document.getElementById('confirm-dialog').open`)
	desktop.do("confirm", chromedp.Click(chromedp.ID("confirm-ok"), chromedp.NodeVisible))
	desktop.waitJS("two devices", `document.querySelectorAll('#devices .device-row').length === 2`)

	// The not-me confirm page of the other alert.
	var cliAlert sentMail
	for _, m := range received(t, sink) {
		if strings.Contains(m.Subject, "New sign-in") && !strings.Contains(m.Text, "Safari") {
			cliAlert = m
		}
	}
	links = alertLinkRE.FindAllString(cliAlert.Text, -1)
	if len(links) != 2 {
		t.Fatalf("CLI alert links: %v", links)
	}
	phone.do("size the window", chromedp.EmulateViewport(1200, 860))
	phone.navigate(links[1])
	alertPageReady(phone, "the not-me page")
	phone.waitJS("the fonts", `document.fonts.status === 'loaded'`)
	notMeShot := phone.screenshot("alert-not-me.png")
	t.Logf("screenshots: %s %s", shot, notMeShot)

	if os.Getenv("LATCH_E2E_UPDATE_DOCS") != "" {
		for _, name := range []string{"account-devices.png", "alert-not-me.png"} {
			b, err := os.ReadFile(filepath.Join("artifacts", name))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join("..", "docs", "img", name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
