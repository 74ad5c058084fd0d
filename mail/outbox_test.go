package mail_test

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/mail"
	"github.com/latchauth/latch/mail/mailtest"
	"github.com/latchauth/latch/outbox"
	"github.com/latchauth/latch/sqlite"
)

// clock is a test clock moved by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// rig is an SQLite outbox, a sink and a way to make workers delivering
// from one to the other.
type rig struct {
	st    *sqlite.Store
	sink  *mailtest.Sink
	clock *clock
	h     *mail.Handler
}

func newRig(t *testing.T) *rig {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "latch.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s := mailtest.Start(t)
	return &rig{st: st, sink: s, clock: &clock{now: time.Now().UTC().Truncate(time.Second)}, h: handler(t, smtpSender(t, s.URL()))}
}

// worker returns a worker named owner.
func (r *rig) worker(t *testing.T, owner string) *outbox.Worker {
	t.Helper()
	w, err := outbox.New(outbox.Config{Store: r.st, Owner: owner, Now: r.clock.Now,
		Handlers: map[string]outbox.Handler{latch.OutboxEmail: r.h}})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// enqueue stores a reset email for kate.
func (r *rig) enqueue(t *testing.T) latch.OutboxMessage {
	t.Helper()
	m := resetMessage(0)
	m.CreatedAt, m.NotBefore = r.clock.Now(), r.clock.Now()
	if err := r.st.EnqueueOutbox(context.Background(), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// drain runs w until a pass claims nothing, moving the clock past every
// backoff in between, and returns the passes that claimed something.
func (r *rig) drain(t *testing.T, w *outbox.Worker) int {
	t.Helper()
	passes := 0
	for range 20 {
		n, err := w.RunOnce(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			// Nothing due now: is anything due within the longest backoff?
			r.clock.Add(outbox.DefaultPolicy.Max + time.Second)
			if n, err = w.RunOnce(context.Background()); err != nil {
				t.Fatal(err)
			} else if n == 0 {
				return passes
			}
		}
		passes++
	}
	t.Fatal("the outbox does not drain")
	return 0
}

// TestOutboxDeliversOnceAfterFailures: the server refuses the first two
// attempts (421, then 451 after reading the data); the outbox retries with
// backoff and the message is accepted exactly once, every attempt with the
// same Message-ID.
func TestOutboxDeliversOnceAfterFailures(t *testing.T) {
	r := newRig(t)
	m := r.enqueue(t)
	var mu sync.Mutex
	replies := map[string][]string{"MAIL": {"421 4.3.2 shutting down"}, "END": {"451 4.3.0 queue full"}}
	r.sink.SetFail(func(step string) string {
		mu.Lock()
		defer mu.Unlock()
		if q := replies[step]; len(q) > 0 {
			replies[step] = q[1:]
			return q[0]
		}
		return ""
	})
	w := r.worker(t, "one")
	if n, err := w.RunOnce(context.Background()); err != nil || n != 1 {
		t.Fatalf("first pass: %d, %v", n, err)
	}
	if len(r.sink.Accepted()) != 0 {
		t.Fatal("accepted on a 421")
	}
	if passes := r.drain(t, w); passes != 2 {
		t.Errorf("%d further passes, want 2 (451, then accepted)", passes)
	}
	got := r.sink.Accepted()
	if len(got) != 1 {
		t.Fatalf("%d messages accepted, want 1", len(got))
	}
	data := r.sink.Data()
	if len(data) != 2 {
		t.Fatalf("%d data transfers, want 2 (refused, accepted)", len(data))
	}
	want := "<" + mail.MessageID(latch.OutboxMessage{ID: 1, CreatedAt: m.CreatedAt}, "auth.example.com") + ">"
	for _, d := range data {
		if id := mailtest.Header(d, "Message-ID"); id != want {
			t.Errorf("Message-ID %q, want %q on every attempt", id, want)
		}
	}
	if !strings.Contains(got[0], "secret-token-123") {
		t.Error("the accepted message lacks the link")
	}
}

// TestOutboxRestartDelivers: an instance that claimed the message and died
// without recording anything leaves it to the next worker once its lease
// expires; the message is delivered once.
func TestOutboxRestartDelivers(t *testing.T) {
	r := newRig(t)
	r.enqueue(t)
	now := r.clock.Now()
	claimed, err := r.st.ClaimOutbox(context.Background(), "dead", now, now.Add(outbox.DefaultLease), 10)
	if err != nil || len(claimed) != 1 {
		t.Fatalf("claim: %d, %v", len(claimed), err)
	}
	w := r.worker(t, "restarted")
	if n, err := w.RunOnce(context.Background()); err != nil || n != 0 {
		t.Fatalf("claimed %d under another's lease (%v)", n, err)
	}
	r.clock.Add(outbox.DefaultLease + time.Second)
	if n, err := w.RunOnce(context.Background()); err != nil || n != 1 {
		t.Fatalf("after the lease: claimed %d, %v", n, err)
	}
	if r.drain(t, w) != 0 || len(r.sink.Accepted()) != 1 {
		t.Fatalf("%d accepted, want 1", len(r.sink.Accepted()))
	}
	// The dead owner cannot record an outcome any more.
	if err := r.st.CompleteOutbox(context.Background(), claimed[0].ID, "dead", r.clock.Now()); err == nil {
		t.Error("the expired lease still completes")
	}
}

// TestOutboxGivesUpOnRejectedRecipient: a 550 for the recipient is given
// up at once: no retry, nothing accepted.
func TestOutboxGivesUpOnRejectedRecipient(t *testing.T) {
	r := newRig(t)
	r.enqueue(t)
	r.sink.SetFail(func(step string) string {
		if step == "RCPT" {
			return "550 5.1.1 no such user"
		}
		return ""
	})
	w := r.worker(t, "one")
	if n, err := w.RunOnce(context.Background()); err != nil || n != 1 {
		t.Fatalf("first pass: %d, %v", n, err)
	}
	if passes := r.drain(t, w); passes != 0 {
		t.Errorf("retried %d times after a 550", passes)
	}
	if rcpts := countOf(r.sink.Commands(), "RCPT"); rcpts != 1 || len(r.sink.Accepted()) != 0 {
		t.Errorf("%d RCPT, %d accepted; want 1, 0", rcpts, len(r.sink.Accepted()))
	}
}

func countOf(list []string, s string) int {
	n := 0
	for _, v := range list {
		if v == s {
			n++
		}
	}
	return n
}
