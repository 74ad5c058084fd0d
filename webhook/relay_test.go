package webhook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/internal/testenv"
	"github.com/latchauth/latch/outbox"
	"github.com/latchauth/latch/postgres"
	"github.com/latchauth/latch/sqlite"
	"github.com/latchauth/latch/webhook"
)

const secret = "a-webhook-secret-of-at-least-32-characters"

// backends runs f on SQLite and on PostgreSQL (skipped, or failed under
// LATCH_TEST_REQUIRE=postgres, where PostgreSQL is unreachable). open
// returns a store on the test's one database: a second call stands for
// a second instance.
func backends(t *testing.T, f func(t *testing.T, open func() latch.Store)) {
	t.Run("sqlite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "latch.db")
		f(t, func() latch.Store {
			s, err := sqlite.Open(t.Context(), path)
			if err != nil {
				t.Fatalf("sqlite.Open: %v", err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		})
	})
	t.Run("postgres", func(t *testing.T) {
		u := testenv.PostgresSchema(t, "latch_webhook_")
		f(t, func() latch.Store {
			s, err := postgres.Open(t.Context(), u)
			if err != nil {
				t.Fatalf("postgres.Open: %v", err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		})
	})
}

// receiver is a webhook endpoint on 127.0.0.1 that verifies every
// request and counts deliveries by (webhook-id, event id); while down it
// answers 503.
type receiver struct {
	t    *testing.T
	srv  *httptest.Server
	down atomic.Bool
	mu   sync.Mutex
	// byEvent counts the accepted requests of each event id, byID those
	// of each webhook-id; types lists the event types in arrival order.
	byEvent map[int64]int
	byID    map[string]int
	types   []string
	refused int
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{t: t, byEvent: map[int64]int{}, byID: map[string]int{}}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		if r.down.Load() {
			r.mu.Lock()
			r.refused++
			r.mu.Unlock()
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		if err := webhook.Verify(secret, req.Header, body, time.Minute); err != nil {
			t.Errorf("receiver: %v", err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		var p webhook.Payload
		if err := json.Unmarshal(body, &p); err != nil {
			t.Errorf("receiver: %v", err)
		}
		r.mu.Lock()
		r.byEvent[p.Data.ID]++
		r.byID[req.Header.Get(webhook.HeaderID)]++
		r.types = append(r.types, p.Type)
		r.mu.Unlock()
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) delivered() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.byEvent)
}

// checkOnce fails unless each of want events arrived exactly once.
func (r *receiver) checkOnce(want int) {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.byEvent) != want {
		r.t.Errorf("receiver got %d events, want %d", len(r.byEvent), want)
	}
	for id, n := range r.byEvent {
		if n != 1 {
			r.t.Errorf("event %d delivered %d times", id, n)
		}
	}
	for id, n := range r.byID {
		if n != 1 {
			r.t.Errorf("webhook-id %s delivered %d times", id, n)
		}
	}
}

// node is one instance's relay and outbox worker on a store.
type node struct {
	relay  *webhook.Relay
	worker *outbox.Worker
}

func newNode(t *testing.T, st latch.Store, hooks []webhook.Hook) *node {
	t.Helper()
	h, err := webhook.NewHandler(webhook.HandlerConfig{Hooks: hooks})
	if err != nil {
		t.Fatal(err)
	}
	w, err := outbox.New(outbox.Config{
		Store:    st,
		Handlers: map[string]outbox.Handler{latch.OutboxWebhook: h},
		Poll:     10 * time.Millisecond,
		Policy:   outbox.Policy{Initial: 10 * time.Millisecond, Max: 40 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	r, err := webhook.NewRelay(webhook.RelayConfig{Store: st, Hooks: hooks, Notify: w.Notify, Poll: 10 * time.Millisecond, Batch: 7})
	if err != nil {
		t.Fatal(err)
	}
	return &node{relay: r, worker: w}
}

func (n *node) start(ctx context.Context, wg *sync.WaitGroup) {
	wg.Go(func() { n.relay.Run(ctx) })
	wg.Go(func() { n.worker.Run(ctx) })
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func addEvent(t *testing.T, st latch.Store, typ string, i int) {
	t.Helper()
	if err := st.AddEvent(t.Context(), &latch.Event{Type: typ, At: time.Now(), UserID: fmt.Sprint("u", i),
		IP: "192.0.2.1", Detail: map[string]string{"i": fmt.Sprint(i)}}); err != nil {
		t.Fatal(err)
	}
}

// TestTwoInstancesDeliverEachEventOnce: two instances, each with a relay
// and an outbox worker, on one store, while events keep coming: the
// receiver gets every event exactly once, although it is down for a
// while at first (delivered after retries).
func TestTwoInstancesDeliverEachEventOnce(t *testing.T) {
	backends(t, func(t *testing.T, open func() latch.Store) {
		rcv := newReceiver(t)
		rcv.down.Store(true)
		hooks := []webhook.Hook{{ID: "siem", URL: rcv.srv.URL + "/hook", Secret: secret}}
		a, b := open(), open()
		ctx, cancel := context.WithCancel(t.Context())
		var wg sync.WaitGroup
		defer wg.Wait()
		defer cancel()
		newNode(t, a, hooks).start(ctx, &wg)
		newNode(t, b, hooks).start(ctx, &wg)
		const n = 60
		var writers sync.WaitGroup
		for w, st := range []latch.Store{a, b} {
			writers.Go(func() {
				for i := range n / 2 {
					addEvent(t, st, latch.EventLoginFailed, w*1000+i)
				}
			})
		}
		writers.Wait()
		waitFor(t, "the receiver to refuse an attempt", func() bool {
			rcv.mu.Lock()
			defer rcv.mu.Unlock()
			return rcv.refused > 0
		})
		rcv.down.Store(false)
		waitFor(t, "every event delivered", func() bool { return rcv.delivered() >= n })
		// Let both nodes have every chance of a second delivery: one more
		// event, delivered after all the others were settled.
		addEvent(t, a, latch.EventLoginSucceeded, 9999)
		waitFor(t, "the last event", func() bool { return rcv.delivered() >= n+1 })
		cancel()
		wg.Wait()
		rcv.checkOnce(n + 1)
	})
}

// TestCrashBetweenEventAndRelay: events recorded while no relay runs (the
// instance that recorded them died before publishing) are delivered by
// the relay of an instance started later.
func TestCrashBetweenEventAndRelay(t *testing.T) {
	backends(t, func(t *testing.T, open func() latch.Store) {
		rcv := newReceiver(t)
		hooks := []webhook.Hook{{ID: "siem", URL: rcv.srv.URL, Secret: secret}}
		st := open()
		for i := range 5 {
			addEvent(t, st, latch.EventAccountLocked, i)
		}
		// A relay that dies inside its transaction publishes nothing.
		st2 := open()
		ctx, cancel := context.WithCancel(t.Context())
		if _, err := st2.PublishEvents(ctx, time.Time{}, 10, func(latch.Event) ([]latch.OutboxMessage, error) {
			cancel() // the process goes away mid-transaction
			return nil, context.Canceled
		}); err == nil {
			t.Fatal("PublishEvents went on after its route failed")
		}
		ctx, cancel = context.WithCancel(t.Context())
		var wg sync.WaitGroup
		defer wg.Wait()
		defer cancel()
		newNode(t, open(), hooks).start(ctx, &wg)
		waitFor(t, "the events recorded before the relay started", func() bool { return rcv.delivered() >= 5 })
		cancel()
		wg.Wait()
		rcv.checkOnce(5)
	})
}

// TestHookEventFilter: a hook with an events list gets those types only;
// another with none gets every type.
func TestHookEventFilter(t *testing.T) {
	backends(t, func(t *testing.T, open func() latch.Store) {
		all, some := newReceiver(t), newReceiver(t)
		hooks := []webhook.Hook{
			{ID: "all", URL: all.srv.URL, Secret: secret},
			{ID: "some", URL: some.srv.URL, Secret: secret, Events: []string{latch.EventRefreshReused}},
		}
		st := open()
		addEvent(t, st, latch.EventLoginFailed, 1)
		addEvent(t, st, latch.EventRefreshReused, 2)
		addEvent(t, st, latch.EventLoginSucceeded, 3)
		ctx, cancel := context.WithCancel(t.Context())
		var wg sync.WaitGroup
		defer wg.Wait()
		defer cancel()
		newNode(t, st, hooks).start(ctx, &wg)
		waitFor(t, "every event to the hook without a filter", func() bool { return all.delivered() >= 3 })
		waitFor(t, "the reused token to the filtered hook", func() bool { return some.delivered() >= 1 })
		cancel()
		wg.Wait()
		some.mu.Lock()
		defer some.mu.Unlock()
		if len(some.types) != 1 || some.types[0] != latch.EventRefreshReused {
			t.Errorf("the filtered hook got %v, want [refresh_token_reused]", some.types)
		}
	})
}

// TestNoHooksSweep: without hooks the relay marks events older than the
// sweep age published, so that they do not pile up, and leaves newer ones
// to instances that may have hooks.
func TestNoHooksSweep(t *testing.T) {
	backends(t, func(t *testing.T, open func() latch.Store) {
		st := open()
		now := time.Now()
		for i, at := range []time.Time{now.Add(-time.Hour), now.Add(-11 * time.Minute), now} {
			if err := st.AddEvent(t.Context(), &latch.Event{Type: latch.EventLoginFailed, At: at, UserID: fmt.Sprint(i)}); err != nil {
				t.Fatal(err)
			}
		}
		r, err := webhook.NewRelay(webhook.RelayConfig{Store: st, Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		if n, err := r.RunOnce(t.Context()); err != nil || n != 2 {
			t.Fatalf("sweep = %d, %v; want the two old events", n, err)
		}
		var left []string
		if _, err := st.PublishEvents(t.Context(), time.Time{}, 10, func(e latch.Event) ([]latch.OutboxMessage, error) {
			left = append(left, e.UserID)
			return nil, nil
		}); err != nil || len(left) == 0 || left[len(left)-1] != "2" {
			t.Fatalf("left unpublished: %v (%v), want the newest event", left, err)
		}
	})
}
