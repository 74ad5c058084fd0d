package instance_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/config"
	"github.com/latchauth/latch/mail/mailtest"
)

// enqueueEmail stores a verification email for kate in the instance's
// outbox.
func enqueueEmail(t *testing.T, h *harness) {
	t.Helper()
	em := latch.EmailMessage{To: "kate@example.com", Template: "verify_email",
		Data: map[string]string{"link": "/verify?token=tok-123", "expires_in": "24 hours"}}
	now := h.clock.Now()
	if err := h.in.Store.EnqueueOutbox(context.Background(), &latch.OutboxMessage{
		Kind: latch.OutboxEmail, Payload: em.Payload(), CreatedAt: now, NotBefore: now,
	}); err != nil {
		t.Fatal(err)
	}
}

// TestMailDevelopmentOutbox: without mail.smtp_url the instance says at
// start that emails go to DATA_DIR/outbox, and an email enqueued there
// lands as an .eml file with the link absolute from the issuer.
func TestMailDevelopmentOutbox(t *testing.T) {
	h := start(t, "", nil)
	dir := filepath.Join(h.dir, "outbox")
	if l := h.logs.String(); !strings.Contains(l, "development outbox") || !strings.Contains(l, dir) {
		t.Fatalf("the start log does not name the outbox directory %s:\n%s", dir, l)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.in.Start(ctx)
	t.Cleanup(func() { cancel(); h.in.Wait() })
	enqueueEmail(t, h)
	h.in.Outbox.Notify()
	var files []string
	waitFor(t, "the .eml file", func() bool {
		files, _ = filepath.Glob(filepath.Join(dir, "*.eml"))
		return len(files) == 1
	})
	raw, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	if got := mailtest.Header(string(raw), "Subject"); got != "Verify your email address" {
		t.Errorf("subject %q", got)
	}
	if !strings.Contains(string(raw), "http://latch.test/verify?token=3Dtok-123") && !strings.Contains(string(raw), "http://latch.test/verify?token=tok-123") {
		t.Errorf("the message lacks the absolute link:\n%s", raw)
	}
}

// TestMailThroughSMTP: with mail.smtp_url the instance names the server
// at start (never the password) and delivers through it, retrying after a
// temporary failure, once.
func TestMailThroughSMTP(t *testing.T) {
	sink := mailtest.Start(t)
	withPassword := strings.Replace(sink.URL(), "smtp://", "smtp://kate:hunter2-sekrit@", 1)
	h := start(t, "", func(c *config.Config) { c.Mail.SMTPURL = withPassword })
	addr := strings.TrimSuffix(strings.TrimPrefix(sink.URL(), "smtp://"), "?starttls=off")
	if l := h.logs.String(); !strings.Contains(l, "SMTP") || !strings.Contains(l, addr) || strings.Contains(l, "hunter2-sekrit") {
		t.Fatalf("the start log must name %s and not the password:\n%s", addr, l)
	}
	h.close()

	h = start(t, "", func(c *config.Config) { c.Mail.SMTPURL = sink.URL() })
	failed := false
	sink.SetFail(func(step string) string {
		if step == "MAIL" && !failed {
			failed = true // called under the sink's lock
			return "451 4.3.0 try again later"
		}
		return ""
	})
	enqueueEmail(t, h)
	ctx := context.Background()
	if n, err := h.in.Outbox.RunOnce(ctx); err != nil || n != 1 || len(sink.Accepted()) != 0 {
		t.Fatalf("first attempt: claimed %d (%v), accepted %d", n, err, len(sink.Accepted()))
	}
	h.clock.Advance(2 * time.Second) // past the first backoff
	if n, err := h.in.Outbox.RunOnce(ctx); err != nil || n != 1 {
		t.Fatalf("retry: claimed %d, %v", n, err)
	}
	h.clock.Advance(time.Hour)
	if n, err := h.in.Outbox.RunOnce(ctx); err != nil || n != 0 {
		t.Fatalf("after delivery: claimed %d, %v", n, err)
	}
	got := sink.Accepted()
	if len(got) != 1 || !strings.Contains(got[0], "latch.test") {
		t.Fatalf("%d accepted, want 1", len(got))
	}
}
