package mail_test

import (
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/latchauth/latch/mail"
)

const issuer = "https://auth.example.com"

// data are values for every template, with hostile text in the values a
// stranger controls.
var data = map[string]map[string]string{
	"verify_email":   {"link": "/verify?token=tok-verify", "expires_in": "24 hours"},
	"reset_password": {"link": "/reset?token=tok-reset", "expires_in": "30 minutes"},
	"unlock_sign_in": {"link": "/unlock#token=tok-unlock", "expires_in": "1 hour", "lockout": "15 minutes"},
	"password_changed": {"when": "30 November 2026, 13:54 UTC", "ip": "203.0.113.9",
		"user_agent": "<script>alert(1)</script> Evil\r\nClick https://evil.example/now \u202Egnp.exe"},
	"already_registered": {"when": "30 November 2026, 13:54 UTC", "ip": "203.0.113.9",
		"user_agent": "<script>alert(1)</script> Evil\r\nClick https://evil.example/now \u202Egnp.exe"},
	"challenge_code": {"code": "042917", "expires_in": "10 minutes", "when": "30 November 2026, 13:54 UTC",
		"ip": "203.0.113.9", "location": "Lyon, France", "reset_link": "/reset",
		"user_agent": "<script>alert(1)</script> Evil\r\nClick https://evil.example/now \u202Egnp.exe"},
	"new_device": {"when": "Monday, 30 November 2026, 13:54 UTC", "where": "Seoul, KR", "ip": "203.0.113.9",
		"browser": "<b>Chrome</b> 120\r\nClick https://evil.example", "os": "Windows 10",
		"me_link": "/alert#id=al_1&t=latch_al_me", "not_me_link": "/alert#id=al_1&t=latch_al_notme", "expires_in": "7 days"},
}

func templates(t *testing.T) *mail.Templates {
	t.Helper()
	tm, err := mail.NewTemplates(issuer)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

// TestRenderEveryTemplate: every template has a subject, a text and an
// HTML body; links come out absolute on the issuer in both bodies; the
// HTML escapes the data; no value breaks a line of the text body.
func TestRenderEveryTemplate(t *testing.T) {
	tm := templates(t)
	if got, want := strings.Join(tm.Names(), ","), "already_registered,challenge_code,new_device,password_changed,reset_password,unlock_sign_in,verify_email"; got != want {
		t.Fatalf("templates %s, want %s", got, want)
	}
	for _, name := range tm.Names() {
		t.Run(name, func(t *testing.T) {
			r, err := tm.Render(name, "kate@example.com", data[name])
			if err != nil {
				t.Fatal(err)
			}
			if r.Subject == "" || strings.ContainsAny(r.Subject, "\r\n") {
				t.Errorf("subject %q", r.Subject)
			}
			for _, body := range []string{r.Text, r.HTML} {
				if strings.Contains(body, "<no value>") || !strings.Contains(body, "auth.example.com") || !strings.Contains(body, "kate@example.com") {
					t.Errorf("body lacks a value:\n%s", body)
				}
			}
			for _, k := range []string{"me_link", "not_me_link"} {
				if link, ok := data[name][k]; ok {
					abs := issuer + link
					if !strings.Contains(r.Text, "\n"+abs+"\n") || !strings.Contains(r.HTML, `href="`+strings.ReplaceAll(abs, "&", "&amp;")+`"`) {
						t.Errorf("%s: the absolute link %s is missing from a body:\n%s\n%s", k, abs, r.Text, r.HTML)
					}
				}
			}
			if link, ok := data[name]["link"]; ok {
				abs := issuer + link
				if !strings.Contains(r.Text, "\n"+abs+"\n") {
					t.Errorf("text lacks the absolute link %s on a line of its own:\n%s", abs, r.Text)
				}
				if !strings.Contains(r.HTML, `href="`+abs+`"`) {
					t.Errorf("HTML lacks href=%q:\n%s", abs, r.HTML)
				}
				if strings.Contains(r.HTML, `href="`+link) || strings.Contains(r.Text, " "+link) {
					t.Errorf("a relative link remains")
				}
			}
			if !strings.Contains(r.HTML, `<html lang="en">`) || !strings.Contains(r.HTML, "<title>"+r.Subject+"</title>") {
				t.Errorf("HTML layout missing:\n%s", r.HTML)
			}
		})
	}
	r, err := tm.Render("password_changed", "kate@example.com", data["password_changed"])
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(r.HTML, "<script>") || !strings.Contains(r.HTML, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Errorf("the user agent is not escaped in the HTML:\n%s", r.HTML)
	}
	for _, line := range strings.Split(r.Text, "\n") {
		if strings.HasPrefix(line, "Click") {
			t.Errorf("a value started a line of its own in the text body: %q", line)
		}
	}
	if strings.ContainsRune(r.Text, '\u202E') || strings.ContainsRune(r.HTML, '\u202E') || strings.Contains(r.Text, "\r") {
		t.Errorf("control or bidi characters remain")
	}
	if !strings.Contains(r.Text, issuer+"/login") {
		t.Errorf("password_changed text lacks the sign-in link:\n%s", r.Text)
	}
}

// TestRenderLongValueCut: a value of a megabyte is shown cut.
func TestRenderLongValueCut(t *testing.T) {
	d := map[string]string{"when": "now", "ip": "203.0.113.9", "user_agent": strings.Repeat("A", 1<<20)}
	r, err := templates(t).Render("password_changed", "kate@example.com", d)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Text) > 4096 || !strings.Contains(r.Text, strings.Repeat("A", 300)+"…") {
		t.Errorf("text is %d bytes; the value was not cut at 300", len(r.Text))
	}
}

// TestRenderRefuses: an unknown template, a missing value and every link
// that is not the issuer's are refused.
func TestRenderRefuses(t *testing.T) {
	tm := templates(t)
	if _, err := tm.Render("nope", "kate@example.com", nil); !errors.Is(err, mail.ErrUnknownTemplate) {
		t.Errorf("unknown template: %v", err)
	}
	if _, err := tm.Render("reset_password", "kate@example.com", map[string]string{"link": "/reset?t=1"}); !errors.Is(err, mail.ErrBadData) {
		t.Errorf("missing expires_in: %v", err)
	}
	if _, err := tm.Render("reset_password", "kate@example.com", map[string]string{"expires_in": "30 minutes", "link": " "}); !errors.Is(err, mail.ErrBadData) {
		t.Errorf("blank link: %v", err)
	}
	for _, link := range []string{
		"https://evil.example/reset?t=1",
		"http://auth.example.com/reset?t=1", // the issuer is https
		"https://auth.example.com.evil.example/reset",
		"https://user@auth.example.com/reset",
		"//evil.example/reset",
		`/\evil.example/reset`,
		"javascript:alert(1)",
		"reset?t=1",
		"/reset?t=1\nBcc: x@evil.example",
		"/reset? t=1",
	} {
		d := map[string]string{"link": link, "expires_in": "30 minutes"}
		if _, err := tm.Render("reset_password", "kate@example.com", d); !errors.Is(err, mail.ErrBadData) {
			t.Errorf("link %q: %v, want ErrBadData", link, err)
		}
		d = map[string]string{"other_link": link, "link": "/reset?t=1", "expires_in": "30 minutes"}
		if _, err := tm.Render("reset_password", "kate@example.com", d); !errors.Is(err, mail.ErrBadData) {
			t.Errorf("other_link %q: %v, want ErrBadData", link, err)
		}
	}
	if got, err := tm.Link(issuer + "/reset?t=1"); err != nil || got != issuer+"/reset?t=1" {
		t.Errorf("absolute link on the issuer: %q, %v", got, err)
	}
}

// TestPasswordChangedFromNowhere: a change with no known address or
// browser (made from the command line) is still told, saying "unknown",
// rather than refused and lost.
func TestPasswordChangedFromNowhere(t *testing.T) {
	r, err := templates(t).Render("password_changed", "kate@example.com", map[string]string{"when": "30 November 2026, 13:54 UTC"})
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	if !strings.Contains(r.Text, "IP address: unknown") || !strings.Contains(r.Text, "Browser: unknown") {
		t.Errorf("text does not say the address and browser are unknown:\n%s", r.Text)
	}
}

// TestChallengeCodeEmail: the step-up email shows the code, where and when
// the sign-in came from, and the absolute link to change the password,
// in both bodies; the code stays out of the subject (lock screens show
// subjects).
func TestChallengeCodeEmail(t *testing.T) {
	d := data["challenge_code"]
	r, err := templates(t).Render("challenge_code", "kate@example.com", d)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(r.Subject, d["code"]) {
		t.Errorf("subject %q shows the code", r.Subject)
	}
	for _, body := range []string{r.Text, r.HTML} {
		for _, want := range []string{d["code"], d["when"], d["ip"], d["location"], issuer + "/reset", "wasn't you"} {
			if !strings.Contains(body, want) {
				t.Errorf("body lacks %q:\n%s", want, body)
			}
		}
	}
	bare := maps.Clone(d)
	delete(bare, "location")
	r, err = templates(t).Render("challenge_code", "kate@example.com", bare)
	if err != nil || strings.Contains(r.Text, "Where:") || strings.Contains(r.HTML, ">Where<") {
		t.Errorf("without a location the email still has a Where line (%v):\n%s", err, r.Text)
	}
}
