package outbox_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/internal/testenv"
	"github.com/latchauth/latch/outbox"
	"github.com/prometheus/client_golang/prometheus"
)

var t0 = time.Date(2031, time.May, 6, 7, 8, 9, 123456000, time.UTC)

// retry is one RetryOutbox call seen by recorder.
type retry struct {
	id       int64
	lastErr  string
	next, at time.Time
	giveUp   bool
}

// recorder passes an outbox store through and records what the worker
// asks of it.
type recorder struct {
	latch.OutboxStore
	mu      sync.Mutex
	retries []retry
	claims  int
}

func (r *recorder) RetryOutbox(ctx context.Context, id int64, owner, lastError string, next time.Time, giveUp bool, at time.Time) error {
	r.mu.Lock()
	r.retries = append(r.retries, retry{id, lastError, next, at, giveUp})
	r.mu.Unlock()
	return r.OutboxStore.RetryOutbox(ctx, id, owner, lastError, next, giveUp, at)
}

func (r *recorder) ClaimOutbox(ctx context.Context, owner string, now, leaseUntil time.Time, limit int) ([]latch.OutboxMessage, error) {
	l, err := r.OutboxStore.ClaimOutbox(ctx, owner, now, leaseUntil, limit)
	r.mu.Lock()
	r.claims++
	r.mu.Unlock()
	return l, err
}

func (r *recorder) lastRetry(t *testing.T) retry {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.retries) == 0 {
		t.Fatal("no RetryOutbox call")
	}
	return r.retries[len(r.retries)-1]
}

func (r *recorder) claimCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.claims
}

// deliveries records the messages a handler was given.
type deliveries struct {
	mu   sync.Mutex
	got  []latch.OutboxMessage
	err  error
	seen map[int64]int
}

func (d *deliveries) Deliver(_ context.Context, m latch.OutboxMessage) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.got = append(d.got, m)
	if d.seen == nil {
		d.seen = map[int64]int{}
	}
	d.seen[m.ID]++
	return d.err
}

func (d *deliveries) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.got)
}

func (d *deliveries) last(t *testing.T) latch.OutboxMessage {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.got) == 0 {
		t.Fatal("nothing delivered")
	}
	return d.got[len(d.got)-1]
}

func enqueue(t *testing.T, s latch.OutboxStore, kind, key string, at time.Time) *latch.OutboxMessage {
	t.Helper()
	m := &latch.OutboxMessage{Kind: kind, Key: key, Payload: []byte(`{}`), CreatedAt: at, NotBefore: at}
	if err := s.EnqueueOutbox(t.Context(), m); err != nil || m.ID == 0 {
		t.Fatalf("EnqueueOutbox(%s): id %d, %v", key, m.ID, err)
	}
	return m
}

func newWorker(t *testing.T, cfg outbox.Config) *outbox.Worker {
	t.Helper()
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	w, err := outbox.New(cfg)
	if err != nil {
		t.Fatalf("outbox.New: %v", err)
	}
	return w
}

func runOnce(t *testing.T, w *outbox.Worker) int {
	t.Helper()
	n, err := w.RunOnce(t.Context())
	if err != nil {
		t.Fatalf("RunOnce: %v", err)
	}
	return n
}

// counted returns the deliveries metric for kind and outcome.
func counted(t *testing.T, reg *prometheus.Registry, kind, outcome string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "latch_outbox_deliveries_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["kind"] == kind && labels["outcome"] == outcome {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// waitFor waits until cond holds, failing the test after a deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond) // polling a condition, not timing
	}
}

func TestDelivers(t *testing.T) {
	backends(t, func(t *testing.T, open func(*testing.T) latch.Store) {
		s := open(t)
		clock := testenv.NewClock(t0)
		reg := prometheus.NewRegistry()
		h := &deliveries{}
		w := newWorker(t, outbox.Config{Store: s, Handlers: map[string]outbox.Handler{"k": h}, Now: clock.Now, Registry: reg})
		m := enqueue(t, s, "k", "a", t0)
		later := enqueue(t, s, "k", "later", t0.Add(time.Minute))
		if n := runOnce(t, w); n != 1 {
			t.Fatalf("RunOnce claimed %d, want 1 (the other is not due)", n)
		}
		if got := h.last(t); got.ID != m.ID || got.Kind != "k" || string(got.Payload) != `{}` {
			t.Errorf("delivered %+v, want message %d", got, m.ID)
		}
		if n := runOnce(t, w); n != 0 {
			t.Errorf("a delivered message was claimed again (%d)", n)
		}
		clock.Advance(time.Minute)
		runOnce(t, w)
		if got := h.last(t); got.ID != later.ID || h.count() != 2 {
			t.Errorf("second delivery %+v (%d in all), want message %d", got, h.count(), later.ID)
		}
		if got := counted(t, reg, "k", outbox.OutcomeDelivered); got != 2 {
			t.Errorf("delivered metric = %v, want 2", got)
		}
		// Completed: another owner finds nothing either.
		if l, err := s.ClaimOutbox(t.Context(), "other", t0.Add(time.Hour), t0.Add(2*time.Hour), 10); err != nil || len(l) != 0 {
			t.Errorf("ClaimOutbox after delivery = %v, %v", l, err)
		}
	})
}

func TestRetriesWithGrowingDelay(t *testing.T) {
	backends(t, func(t *testing.T, open func(*testing.T) latch.Store) {
		rec := &recorder{OutboxStore: open(t)}
		clock := testenv.NewClock(t0)
		reg := prometheus.NewRegistry()
		h := &deliveries{err: errors.New("status 503")}
		w := newWorker(t, outbox.Config{Store: rec, Handlers: map[string]outbox.Handler{"k": h}, Now: clock.Now, Registry: reg})
		m := enqueue(t, rec, "k", "a", t0)
		want := []time.Duration{1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300}
		var prev time.Duration
		for i, ceil := range want {
			ceil *= time.Second
			if c := outbox.DefaultPolicy.Ceiling(i + 1); c != ceil {
				t.Errorf("Ceiling(%d) = %v, want %v", i+1, c, ceil)
			}
			if n := runOnce(t, w); n != 1 {
				t.Fatalf("attempt %d: claimed %d", i+1, n)
			}
			if got := h.last(t); got.ID != m.ID || got.Attempts != i {
				t.Fatalf("attempt %d delivered %+v, want message %d with %d attempts", i+1, got, m.ID, i)
			}
			r := rec.lastRetry(t)
			delay := r.next.Sub(r.at)
			if r.id != m.ID || r.giveUp || r.lastErr != "status 503" || delay < ceil/2 || delay > ceil {
				t.Fatalf("retry %d = %+v (delay %v), want a delay in [%v, %v], not given up", i+1, r, delay, ceil/2, ceil)
			}
			// While the ceiling doubles, each delay is at least the one
			// before (equal jitter: [c, 2c] after [c/2, c]).
			if i > 0 && ceil == 2*want[i-1]*time.Second && delay < prev {
				t.Errorf("delay %d (%v) shorter than the one before (%v)", i+1, delay, prev)
			}
			prev = delay
			// Not before it is due.
			clock.Advance(delay - time.Microsecond)
			if n := runOnce(t, w); n != 0 {
				t.Fatalf("retry %d claimed before it was due", i+1)
			}
			clock.Advance(time.Microsecond)
		}
		if got := counted(t, reg, "k", outbox.OutcomeRetry); got != float64(len(want)) {
			t.Errorf("retry metric = %v, want %d", got, len(want))
		}
	})
}

func TestGivesUp(t *testing.T) {
	backends(t, func(t *testing.T, open func(*testing.T) latch.Store) {
		rec := &recorder{OutboxStore: open(t)}
		clock := testenv.NewClock(t0)
		reg := prometheus.NewRegistry()
		h := &deliveries{err: errors.New("connection refused")}
		w := newWorker(t, outbox.Config{Store: rec, Handlers: map[string]outbox.Handler{"k": h}, Now: clock.Now, Registry: reg})
		enqueue(t, rec, "k", "old", t0)
		// A failure before the day is out retries…
		clock.Advance(24*time.Hour - time.Second)
		runOnce(t, w)
		if r := rec.lastRetry(t); r.giveUp {
			t.Fatalf("gave up before MaxAge: %+v", r)
		}
		// …one at its end gives up, and the message is never claimed again.
		clock.Advance(10 * time.Minute)
		runOnce(t, w)
		if r := rec.lastRetry(t); !r.giveUp || r.lastErr != "connection refused" {
			t.Fatalf("after MaxAge: %+v, want given up", r)
		}
		clock.Advance(time.Hour)
		if n := runOnce(t, w); n != 0 {
			t.Errorf("a failed message was claimed again")
		}
		if got := counted(t, reg, "k", outbox.OutcomeFailed); got != 1 {
			t.Errorf("failed metric = %v, want 1", got)
		}

		// MaxAttempts, when set, gives up by count.
		w2 := newWorker(t, outbox.Config{Store: rec, Handlers: map[string]outbox.Handler{"k": h}, Now: clock.Now,
			Policy: outbox.Policy{MaxAttempts: 3}})
		m := enqueue(t, rec, "k", "counted", clock.Now())
		for i := range 3 {
			if n := runOnce(t, w2); n != 1 {
				t.Fatalf("attempt %d claimed %d", i+1, n)
			}
			if r := rec.lastRetry(t); r.id != m.ID || r.giveUp != (i == 2) {
				t.Fatalf("attempt %d: %+v", i+1, r)
			}
			clock.Advance(10 * time.Minute)
		}
		if n := runOnce(t, w2); n != 0 {
			t.Errorf("a message given up after MaxAttempts was claimed again")
		}
	})
}

func TestPermanentError(t *testing.T) {
	backends(t, func(t *testing.T, open func(*testing.T) latch.Store) {
		rec := &recorder{OutboxStore: open(t)}
		clock := testenv.NewClock(t0)
		h := &deliveries{err: outbox.Permanent(fmt.Errorf("payload: %w", errors.New("bad json")))}
		w := newWorker(t, outbox.Config{Store: rec, Handlers: map[string]outbox.Handler{"k": h}, Now: clock.Now})
		m := enqueue(t, rec, "k", "bad", t0)
		runOnce(t, w)
		if r := rec.lastRetry(t); r.id != m.ID || !r.giveUp || r.lastErr != "payload: bad json" {
			t.Fatalf("after a permanent error: %+v, want given up at once", r)
		}
		clock.Advance(time.Hour)
		if n := runOnce(t, w); n != 0 || h.count() != 1 {
			t.Errorf("a permanently failed message was tried again")
		}
	})
	if outbox.Permanent(nil) != nil || outbox.IsPermanent(errors.New("x")) || !outbox.IsPermanent(fmt.Errorf("w: %w", outbox.Permanent(errors.New("x")))) {
		t.Error("Permanent/IsPermanent")
	}
}

func TestUnknownKindLeftForAnotherVersion(t *testing.T) {
	backends(t, func(t *testing.T, open func(*testing.T) latch.Store) {
		rec := &recorder{OutboxStore: open(t)}
		clock := testenv.NewClock(t0)
		reg := prometheus.NewRegistry()
		old := newWorker(t, outbox.Config{Store: rec, Handlers: map[string]outbox.Handler{"k": &deliveries{}}, Now: clock.Now, Registry: reg})
		m := enqueue(t, rec, "future", "f", t0)
		// Even past MaxAge: not this version's to give up.
		clock.Advance(25 * time.Hour)
		runOnce(t, old)
		r := rec.lastRetry(t)
		if r.id != m.ID || r.giveUp || r.next.Sub(r.at) != outbox.DefaultPolicy.Max {
			t.Fatalf("unknown kind: %+v, want retried after %v, not given up", r, outbox.DefaultPolicy.Max)
		}
		if got := counted(t, reg, "future", outbox.OutcomeRetry); got != 1 {
			t.Errorf("retry metric for the unknown kind = %v, want 1", got)
		}
		// A newer instance that knows the kind delivers it when due.
		h := &deliveries{}
		newer := newWorker(t, outbox.Config{Store: rec, Handlers: map[string]outbox.Handler{"future": h}, Now: clock.Now})
		if n := runOnce(t, newer); n != 0 {
			t.Errorf("claimed before the retry was due")
		}
		clock.Advance(outbox.DefaultPolicy.Max)
		runOnce(t, newer)
		if h.count() != 1 || h.last(t).ID != m.ID {
			t.Errorf("the newer instance did not deliver the message")
		}
	})
}

func TestDeadOwnersLeaseIsTakenOver(t *testing.T) {
	backends(t, func(t *testing.T, open func(*testing.T) latch.Store) {
		s := open(t)
		clock := testenv.NewClock(t0)
		m := enqueue(t, s, "k", "a", t0)
		// An instance claimed the message and died.
		if l, err := s.ClaimOutbox(t.Context(), "dead", t0, t0.Add(outbox.DefaultLease), 10); err != nil || len(l) != 1 {
			t.Fatalf("ClaimOutbox(dead) = %v, %v", l, err)
		}
		h := &deliveries{}
		w := newWorker(t, outbox.Config{Store: s, Handlers: map[string]outbox.Handler{"k": h}, Now: clock.Now})
		clock.Advance(outbox.DefaultLease - time.Microsecond)
		if n := runOnce(t, w); n != 0 {
			t.Fatalf("took over a lease before it expired")
		}
		clock.Advance(time.Microsecond)
		if n := runOnce(t, w); n != 1 || h.last(t).ID != m.ID {
			t.Fatalf("the expired lease was not taken over (claimed %d)", n)
		}
		if err := s.CompleteOutbox(t.Context(), m.ID, "dead", clock.Now()); !errors.Is(err, latch.ErrConflict) {
			t.Errorf("the dead owner could still complete the message: %v", err)
		}
	})
}

func TestTwoWorkersDeliverEachMessageOnce(t *testing.T) {
	backends(t, func(t *testing.T, open func(*testing.T) latch.Store) {
		const n = 60
		h := &deliveries{}
		var workers []*outbox.Worker
		ctx, cancel := context.WithCancel(t.Context())
		var wg sync.WaitGroup
		defer wg.Wait()
		defer cancel()
		first := open(t)
		for i := range 2 {
			// Each worker has a store of its own on one database, as
			// two instances would.
			w := newWorker(t, outbox.Config{Store: open(t), Handlers: map[string]outbox.Handler{"k": h},
				Owner: fmt.Sprintf("instance%d", i), Batch: 4, Poll: 5 * time.Millisecond})
			workers = append(workers, w)
			wg.Go(func() { w.Run(ctx) })
		}
		for i := range n {
			enqueue(t, first, "k", fmt.Sprintf("m%02d", i), time.Now())
			workers[i%2].Notify()
		}
		waitFor(t, "every message delivered", func() bool {
			h.mu.Lock()
			defer h.mu.Unlock()
			return len(h.seen) == n
		})
		cancel()
		wg.Wait()
		h.mu.Lock()
		defer h.mu.Unlock()
		for id, c := range h.seen {
			if c != 1 {
				t.Errorf("message %d delivered %d times", id, c)
			}
		}
		if len(h.got) != n {
			t.Errorf("%d deliveries of %d messages", len(h.got), n)
		}
	})
}

func TestNotifyWakesTheWorker(t *testing.T) {
	backends(t, func(t *testing.T, open func(*testing.T) latch.Store) {
		rec := &recorder{OutboxStore: open(t)}
		h := &deliveries{}
		// It polls once an hour: only Notify can make it deliver within
		// the test.
		w := newWorker(t, outbox.Config{Store: rec, Handlers: map[string]outbox.Handler{"k": h}, Poll: time.Hour})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			w.Run(ctx)
			close(done)
		}()
		defer func() {
			cancel()
			<-done
		}()
		waitFor(t, "the first pass", func() bool { return rec.claimCount() >= 1 })
		m := enqueue(t, rec, "k", "now", time.Now())
		w.Notify()
		waitFor(t, "the notified delivery", func() bool { return h.count() == 1 })
		if got := h.last(t); got.ID != m.ID {
			t.Errorf("delivered %d, want %d", got.ID, m.ID)
		}
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return after its context ended")
		}
	})
	// Notify never blocks, with or without a running worker.
	w := newWorker(t, outbox.Config{Store: &recorder{}})
	for range 3 {
		w.Notify()
	}
}

func TestPolicyDelayBounds(t *testing.T) {
	p := outbox.Policy{Initial: 10 * time.Millisecond, Max: time.Second}
	for n := 1; n < 20; n++ {
		c := p.Ceiling(n)
		for range 50 {
			if d := p.Delay(n); d < c/2 || d > c {
				t.Fatalf("Delay(%d) = %v, outside [%v, %v]", n, d, c/2, c)
			}
		}
	}
	if p.Ceiling(100) != time.Second {
		t.Errorf("Ceiling(100) = %v, want the cap", p.Ceiling(100))
	}
}

func TestNewRequiresAStore(t *testing.T) {
	if _, err := outbox.New(outbox.Config{}); err == nil {
		t.Error("New without a store succeeded")
	}
	if a, b := outbox.DefaultOwner(), outbox.DefaultOwner(); a == b || a == "" {
		t.Errorf("DefaultOwner() = %q twice", a)
	}
}
