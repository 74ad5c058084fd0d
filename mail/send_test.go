package mail_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	netmail "net/mail"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/mail"
	"github.com/latchauth/latch/mail/mailtest"
	"github.com/latchauth/latch/outbox"
)

// bodies returns the text/plain and text/html parts of a raw message,
// decoded, failing the test if it is not a well-formed
// multipart/alternative message.
func bodies(t *testing.T, raw string) (text, html string) {
	t.Helper()
	m, err := netmail.ReadMessage(strings.NewReader(raw))
	if err != nil {
		t.Fatalf("not an RFC 5322 message: %v\n%s", err, raw)
	}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		t.Fatalf("Content-Type %q: %v", m.Header.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		p, err := mr.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		var r io.Reader = p
		if p.Header.Get("Content-Transfer-Encoding") == "quoted-printable" {
			r = quotedprintable.NewReader(p)
		}
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		switch ct {
		case "text/plain":
			text = string(b)
		case "text/html":
			html = string(b)
		}
	}
	if text == "" || html == "" {
		t.Fatalf("missing a text or an HTML part:\n%s", raw)
	}
	return text, html
}

// syncBuffer is a log destination safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// resetMessage is an outbox message asking for a reset email.
func resetMessage(id int64) latch.OutboxMessage {
	em := latch.EmailMessage{To: "kate@example.com", Template: "reset_password",
		Data: map[string]string{"link": "/reset?token=secret-token-123", "expires_in": "30 minutes"}}
	return latch.OutboxMessage{ID: id, Kind: latch.OutboxEmail, Payload: em.Payload(),
		CreatedAt: time.Date(2026, 11, 30, 13, 0, 0, 0, time.UTC)}
}

func handler(t *testing.T, s mail.Sender) *mail.Handler {
	t.Helper()
	h, err := mail.NewHandler(mail.HandlerConfig{Sender: s, Issuer: issuer})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestDirWritesEML: the development outbox writes one parseable .eml per
// message, readable by its owner only, named after the Message-ID (a
// duplicate replaces it), and logs the path but never the body.
func TestDirWritesEML(t *testing.T) {
	var logs syncBuffer
	dir := filepath.Join(t.TempDir(), "outbox")
	h := handler(t, mail.NewDir(dir, slog.New(slog.NewTextHandler(&logs, nil))))
	m := resetMessage(42)
	for range 2 { // a duplicate delivery
		if err := h.Deliver(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	files, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil || len(files) != 1 || !strings.HasSuffix(files[0], ".eml") {
		t.Fatalf("files %v (%v), want one .eml", files, err)
	}
	info, err := os.Stat(files[0])
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("file mode %v (%v), want 0600", info.Mode(), err)
	}
	raw, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	wantID := mail.MessageID(m, "auth.example.com")
	for name, want := range map[string]string{
		"From": `"Latch" <no-reply@auth.example.com>`, "To": "<kate@example.com>", "Subject": "Reset your password",
		"Message-ID": "<" + wantID + ">", "Auto-Submitted": "auto-generated", "Date": "Mon, 30 Nov 2026 13:00:00 +0000",
	} {
		if got := mailtest.Header(string(raw), name); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	text, html := bodies(t, string(raw))
	if !strings.Contains(text, issuer+"/reset?token=secret-token-123") || !strings.Contains(html, `href="`+issuer+"/reset?token=secret-token-123") {
		t.Errorf("the bodies lack the absolute link:\n%s\n%s", text, html)
	}
	if l := logs.String(); !strings.Contains(l, files[0]) || strings.Contains(l, "secret-token-123") {
		t.Errorf("the log must name the file and hold no link:\n%s", l)
	}
}

// TestMessageIDDeterministic: the Message-ID depends on the outbox
// message alone.
func TestMessageIDDeterministic(t *testing.T) {
	a, b := resetMessage(7), resetMessage(7)
	b.Attempts, b.LastError = 3, "451"
	if mail.MessageID(a, "h") != mail.MessageID(b, "h") {
		t.Error("attempts change the Message-ID")
	}
	c := resetMessage(7)
	c.CreatedAt = c.CreatedAt.Add(time.Microsecond) // another deployment's message 7
	if mail.MessageID(a, "h") == mail.MessageID(c, "h") || mail.MessageID(a, "h") == mail.MessageID(resetMessage(8), "h") {
		t.Error("distinct messages share a Message-ID")
	}
}

// TestHandlerPermanent: a payload that does not parse, an unknown
// template, missing data, a foreign link and a bad address are given up
// at once, and nothing is sent.
func TestHandlerPermanent(t *testing.T) {
	var sent int
	h := handler(t, senderFunc(func(context.Context, mail.Message) error { sent++; return nil }))
	bad := func(em latch.EmailMessage) []byte { return em.Payload() }
	for name, payload := range map[string][]byte{
		"not JSON":         []byte("{"),
		"no recipient":     bad(latch.EmailMessage{Template: "verify_email"}),
		"unknown template": bad(latch.EmailMessage{To: "kate@example.com", Template: "nope"}),
		"missing data":     bad(latch.EmailMessage{To: "kate@example.com", Template: "verify_email", Data: map[string]string{"link": "/v"}}),
		"foreign link": bad(latch.EmailMessage{To: "kate@example.com", Template: "verify_email",
			Data: map[string]string{"link": "https://evil.example/v", "expires_in": "1 day"}}),
		"bad address": bad(latch.EmailMessage{To: "kate@example.com\r\nBcc: x@evil.example", Template: "verify_email",
			Data: map[string]string{"link": "/v", "expires_in": "1 day"}}),
		"two addresses": bad(latch.EmailMessage{To: "kate@example.com, x@evil.example", Template: "verify_email",
			Data: map[string]string{"link": "/v", "expires_in": "1 day"}}),
	} {
		err := h.Deliver(context.Background(), latch.OutboxMessage{ID: 1, Kind: latch.OutboxEmail, Payload: payload})
		if !outbox.IsPermanent(err) {
			t.Errorf("%s: %v, want a permanent error", name, err)
		}
	}
	if sent != 0 {
		t.Errorf("%d sent", sent)
	}
}

type senderFunc func(context.Context, mail.Message) error

func (f senderFunc) Send(ctx context.Context, m mail.Message) error { return f(ctx, m) }
