package mail_test

import (
	"context"
	"crypto/tls"
	"slices"
	"testing"
	"time"

	"github.com/latchauth/latch/mail"
	"github.com/latchauth/latch/mail/mailtest"
	"github.com/latchauth/latch/outbox"
)

// tlsSender sends to the sink trusting its certificate when trust is set,
// or with the default configuration (the system's roots) otherwise.
func tlsSender(t *testing.T, s *mailtest.Sink, trust bool) *mail.SMTP {
	t.Helper()
	cfg, err := mail.ParseSMTPURL(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	opt := mail.SMTPOptions{Timeout: 5 * time.Second}
	if trust {
		opt.TLS = &tls.Config{RootCAs: s.RootCAs(), ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	}
	return mail.NewSMTP(cfg, opt)
}

// TestSMTPTLS: with STARTTLS and with implicit TLS the message and the
// credentials travel encrypted; PLAIN is used over TLS.
func TestSMTPTLS(t *testing.T) {
	for _, mode := range []string{mailtest.TLSStart, mailtest.TLSImplicit} {
		t.Run(mode, func(t *testing.T) {
			s := mailtest.StartTLS(t, mode, "kate", "p@ss:w0rd")
			if err := tlsSender(t, s, true).Send(context.Background(), testMessage()); err != nil {
				t.Fatal(err)
			}
			if len(s.Accepted()) != 1 || s.TLSData() != 1 || !slices.Equal(s.Auths(), []string{"kate"}) {
				t.Fatalf("accepted %d, over TLS %d, authenticated %v", len(s.Accepted()), s.TLSData(), s.Auths())
			}
		})
	}
}

// TestSMTPUntrustedCertificate: a server whose certificate does not verify
// receives neither the credentials nor the message, and the failure is
// retried (the operator may fix the trust).
func TestSMTPUntrustedCertificate(t *testing.T) {
	for _, mode := range []string{mailtest.TLSStart, mailtest.TLSImplicit} {
		t.Run(mode, func(t *testing.T) {
			s := mailtest.StartTLS(t, mode, "kate", "p@ss:w0rd")
			err := tlsSender(t, s, false).Send(context.Background(), testMessage())
			if err == nil || outbox.IsPermanent(err) {
				t.Fatalf("err %v; want a retryable error", err)
			}
			if c := s.Commands(); slices.Contains(c, "AUTH") || slices.Contains(c, "MAIL") || len(s.Data()) != 0 {
				t.Fatalf("commands %v reached a server whose certificate does not verify", c)
			}
		})
	}
}

// TestSMTPWrongPassword: a refused login is retried (a configuration to
// fix), and nothing is sent.
func TestSMTPWrongPassword(t *testing.T) {
	s := mailtest.StartTLS(t, mailtest.TLSStart, "kate", "right")
	cfg, err := mail.ParseSMTPURL(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	cfg.Password = "wrong"
	err = mail.NewSMTP(cfg, mail.SMTPOptions{TLS: &tls.Config{RootCAs: s.RootCAs(), ServerName: "127.0.0.1"}}).
		Send(context.Background(), testMessage())
	if err == nil || outbox.IsPermanent(err) || len(s.Data()) != 0 {
		t.Fatalf("err %v, %d sent; want a retryable error and nothing sent", err, len(s.Data()))
	}
}
