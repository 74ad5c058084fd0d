package mail_test

import (
	"context"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latchauth/latch/mail"
	"github.com/latchauth/latch/mail/mailtest"
	"github.com/latchauth/latch/outbox"
)

func smtpSender(t *testing.T, rawURL string) *mail.SMTP {
	t.Helper()
	cfg, err := mail.ParseSMTPURL(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	return mail.NewSMTP(cfg, mail.SMTPOptions{Timeout: 5 * time.Second})
}

func testMessage() mail.Message {
	return mail.Message{From: "Latch <no-reply@auth.example.com>", To: "kate@example.com", Subject: "Hello",
		Text: "text body", HTML: "<p>html body</p>", ID: "latch.1.abc@auth.example.com"}
}

// TestSMTPSends: a message reaches the server with its Message-ID and both
// bodies.
func TestSMTPSends(t *testing.T) {
	s := mailtest.Start(t)
	if err := smtpSender(t, s.URL()).Send(context.Background(), testMessage()); err != nil {
		t.Fatal(err)
	}
	got := s.Accepted()
	if len(got) != 1 {
		t.Fatalf("%d messages accepted", len(got))
	}
	if id := mailtest.Header(got[0], "Message-ID"); id != "<latch.1.abc@auth.example.com>" {
		t.Errorf("Message-ID %q", id)
	}
	text, html := bodies(t, got[0])
	if !strings.Contains(text, "text body") || !strings.Contains(html, "<p>html body</p>") {
		t.Errorf("bodies %q %q", text, html)
	}
}

// TestSMTPFailures: 4xx replies and an unreachable server are retryable;
// a 5xx rejection of the recipient or of the data is permanent.
func TestSMTPFailures(t *testing.T) {
	for _, tc := range []struct {
		step, reply string
		permanent   bool
	}{
		{"MAIL", "421 4.3.2 service shutting down", false},
		{"MAIL", "451 4.3.0 try again later", false},
		{"RCPT", "450 4.2.1 mailbox busy", false},
		{"END", "451 4.3.0 queue full", false},
		{"RCPT", "550 5.1.1 no such user", true},
		{"RCPT", "553 5.1.3 bad address", true},
		{"END", "554 5.6.0 message refused", true},
	} {
		t.Run(tc.step+" "+tc.reply[:3], func(t *testing.T) {
			s := mailtest.Start(t)
			s.SetFail(func(step string) string {
				if step == tc.step {
					return tc.reply
				}
				return ""
			})
			err := smtpSender(t, s.URL()).Send(context.Background(), testMessage())
			if err == nil || outbox.IsPermanent(err) != tc.permanent {
				t.Fatalf("err %v, permanent %v; want an error, permanent %v", err, outbox.IsPermanent(err), tc.permanent)
			}
			if len(s.Accepted()) != 0 {
				t.Error("the sink accepted a message")
			}
		})
	}
	t.Run("unreachable", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		err = smtpSender(t, "smtp://"+addr+"?starttls=off").Send(context.Background(), testMessage())
		if err == nil || outbox.IsPermanent(err) {
			t.Fatalf("err %v; want a retryable error", err)
		}
	})
}

// TestSMTPRequiresSTARTTLS: without ?starttls=off a server that offers no
// STARTTLS gets no message (and the failure is retryable: a configuration
// to fix).
func TestSMTPRequiresSTARTTLS(t *testing.T) {
	s := mailtest.Start(t)
	err := smtpSender(t, strings.TrimSuffix(s.URL(), "?starttls=off")).Send(context.Background(), testMessage())
	if err == nil || outbox.IsPermanent(err) {
		t.Fatalf("err %v; want a retryable error", err)
	}
	if c := s.Commands(); slices.Contains(c, "MAIL") || len(s.Data()) != 0 {
		t.Fatalf("commands %v: mail went out in cleartext", c)
	}
}

// TestSMTPNoPasswordInCleartext: with credentials and STARTTLS off, a
// server offering only PLAIN and LOGIN never receives the password.
func TestSMTPNoPasswordInCleartext(t *testing.T) {
	s := mailtest.Start(t)
	s.Extensions("8BITMIME", "AUTH PLAIN LOGIN")
	u := strings.Replace(s.URL(), "smtp://", "smtp://kate:hunter2@", 1)
	err := smtpSender(t, u).Send(context.Background(), testMessage())
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("err %v; want a failure that does not echo the password", err)
	}
	if c := s.Commands(); slices.Contains(c, "AUTH") || slices.Contains(c, "MAIL") {
		t.Fatalf("commands %v: credentials or mail sent in cleartext", c)
	}
}

// TestParseSMTPURL: the accepted forms and their defaults; every refusal
// leaves the password out of the error.
func TestParseSMTPURL(t *testing.T) {
	for raw, want := range map[string]mail.SMTPConfig{
		"smtp://mx.example.com":                  {Host: "mx.example.com", Port: 587},
		"smtp://u%40x:p%3Aw@mx.example.com:2525": {Host: "mx.example.com", Port: 2525, Username: "u@x", Password: "p:w"},
		"smtps://u:p@mx.example.com":             {Host: "mx.example.com", Port: 465, ImplicitTLS: true, Username: "u", Password: "p"},
		"smtp://127.0.0.1:1025?starttls=off":     {Host: "127.0.0.1", Port: 1025, StartTLSOff: true},
		"smtp://[::1]:1025/?starttls=off":        {Host: "::1", Port: 1025, StartTLSOff: true},
	} {
		got, err := mail.ParseSMTPURL(raw)
		if err != nil || got != want {
			t.Errorf("%s: %+v, %v; want %+v", raw, got, err, want)
		}
	}
	for _, raw := range []string{
		"http://u:sekrit@mx.example.com",
		"smtp://u:sekrit@",
		"smtp://u:sekrit@mx.example.com:0",
		"smtp://u:sekrit@mx.example.com:99999",
		"smtp://u:sekrit@mx.example.com/path",
		"smtp://u:sekrit@mx.example.com?starttls=on",
		"smtps://u:sekrit@mx.example.com?starttls=off",
		"smtp://u:sekrit@mx.example.com?tls=skip-verify",
		"mx.example.com:587",
	} {
		_, err := mail.ParseSMTPURL(raw)
		if err == nil || strings.Contains(err.Error(), "sekrit") {
			t.Errorf("%s: %v; want an error without the password", raw, err)
		}
	}
}

// TestSMTPAcceptedThenDropped: a server that accepted the message and then
// dropped the connection (no reply to RSET or QUIT) has the message: the
// send succeeds, so that the outbox does not send it again.
func TestSMTPAcceptedThenDropped(t *testing.T) {
	s := mailtest.Start(t)
	s.SetFail(func(step string) string {
		if step == "RSET" || step == "QUIT" {
			return mailtest.Drop
		}
		return ""
	})
	if err := smtpSender(t, s.URL()).Send(context.Background(), testMessage()); err != nil {
		t.Fatalf("send: %v; the message was accepted", err)
	}
	if len(s.Accepted()) != 1 {
		t.Fatalf("%d accepted", len(s.Accepted()))
	}
}
