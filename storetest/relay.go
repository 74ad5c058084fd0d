package storetest

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/latchauth/latch"
)

// relayMessage is the outbox message that the relay tests route an event
// to: keyed by event unless noKey, so that a second routing of one event
// shows as a second message.
func relayMessage(e latch.Event, noKey bool) latch.OutboxMessage {
	m := latch.OutboxMessage{Kind: latch.OutboxWebhook, Payload: []byte(strconv.FormatInt(e.ID, 10)),
		CreatedAt: base, NotBefore: base}
	if !noKey {
		m.Key = "webhook:h:" + strconv.FormatInt(e.ID, 10)
	}
	return m
}

func addEvents(t *testing.T, s latch.Store, n int, at time.Time, typ string) []latch.Event {
	t.Helper()
	var out []latch.Event
	for i := range n {
		e := latch.Event{Type: typ, At: at, UserID: fmt.Sprint("u", i), IP: "192.0.2.1",
			Detail: map[string]string{"n": strconv.Itoa(i)}}
		if err := s.AddEvent(t.Context(), &e); err != nil {
			t.Fatalf("AddEvent: %v", err)
		}
		out = append(out, e)
	}
	return out
}

// testPublishEvents: events are handed to route once each, in id order,
// with every field; their messages are enqueued (keys deduplicated) and
// they are not handed out again. A failing route publishes nothing; a
// nil route marks without routing; before bounds the events taken.
func testPublishEvents(t *testing.T, s latch.Store) {
	ctx := t.Context()
	if n, err := s.PublishEvents(ctx, time.Time{}, 10, nil); err != nil || n != 0 {
		t.Fatalf("PublishEvents on an empty log = %d, %v", n, err)
	}
	added := addEvents(t, s, 3, base, latch.EventLoginFailed)

	boom := errors.New("boom")
	if n, err := s.PublishEvents(ctx, time.Time{}, 10, func(e latch.Event) ([]latch.OutboxMessage, error) {
		if e.ID == added[2].ID {
			return nil, boom
		}
		return []latch.OutboxMessage{relayMessage(e, false)}, nil
	}); !errors.Is(err, boom) || n != 0 {
		t.Fatalf("PublishEvents with a failing route = %d, %v; want the route's error", n, err)
	}
	if msgs := claimAll(t, s, "reader", base.Add(time.Hour)); len(msgs) != 0 {
		t.Fatalf("a failed PublishEvents left %d outbox messages", len(msgs))
	}

	// A message of the first event is stored already: it is skipped,
	// not an error.
	pre := relayMessage(added[0], false)
	if err := s.EnqueueOutbox(ctx, &pre); err != nil {
		t.Fatal(err)
	}
	var seen []latch.Event
	n, err := s.PublishEvents(ctx, time.Time{}, 2, func(e latch.Event) ([]latch.OutboxMessage, error) {
		seen = append(seen, e)
		return []latch.OutboxMessage{relayMessage(e, false)}, nil
	})
	if err != nil || n != 2 {
		t.Fatalf("PublishEvents(limit 2) = %d, %v", n, err)
	}
	// A store may run route again when it retries its transaction;
	// the last run is the one committed.
	seen = seen[len(seen)-2:]
	for i := range 2 {
		checkEqual(t, fmt.Sprintf("routed event %d", i), seen[i], added[i])
	}
	seen = nil
	if n, err := s.PublishEvents(ctx, time.Time{}, 10, func(e latch.Event) ([]latch.OutboxMessage, error) {
		seen = append(seen, e)
		return []latch.OutboxMessage{relayMessage(e, false), relayMessage(e, true)}, nil
	}); err != nil || n != 1 || seen[len(seen)-1].ID != added[2].ID {
		t.Fatalf("PublishEvents of the rest = %d, %v, routed %+v; want the third event alone", n, err, seen)
	}
	if n, err := s.PublishEvents(ctx, time.Time{}, 10, func(e latch.Event) ([]latch.OutboxMessage, error) {
		t.Errorf("event %d routed twice", e.ID)
		return nil, nil
	}); err != nil || n != 0 {
		t.Fatalf("PublishEvents with everything published = %d, %v", n, err)
	}
	msgs := claimAll(t, s, "reader", base.Add(time.Hour))
	if len(msgs) != 4 {
		t.Fatalf("outbox holds %d messages, want 4 (one per event, the third's twice): %+v", len(msgs), msgs)
	}

	// before: only the older events are taken; nil marks them
	// published without routing.
	old := addEvents(t, s, 2, base.Add(time.Hour), latch.EventLoginSucceeded)
	addEvents(t, s, 1, base.Add(2*time.Hour), latch.EventLoginSucceeded)
	if n, err := s.PublishEvents(ctx, base.Add(2*time.Hour), 10, nil); err != nil || n != len(old) {
		t.Fatalf("PublishEvents(before, nil route) = %d, %v; want %d", n, err, len(old))
	}
	seen = nil
	if n, err := s.PublishEvents(ctx, time.Time{}, 10, func(e latch.Event) ([]latch.OutboxMessage, error) {
		seen = append(seen, e)
		return nil, nil
	}); err != nil || n != 1 || !seen[len(seen)-1].At.Equal(base.Add(2*time.Hour)) {
		t.Fatalf("PublishEvents after the sweep = %d, %v, routed %+v; want the newest event alone", n, err, seen)
	}
}

// testPublishEventsConcurrent: relays racing each other while events are
// being added route every event exactly once between them.
func testPublishEventsConcurrent(t *testing.T, s latch.Store) {
	ctx := t.Context()
	const writers, perWriter, relays = 4, 25, 4
	var wg sync.WaitGroup
	done := make(chan struct{})
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				e := latch.Event{Type: latch.EventLoginFailed, At: base, UserID: fmt.Sprintf("w%d-%d", w, i)}
				if err := s.AddEvent(ctx, &e); err != nil {
					t.Errorf("AddEvent: %v", err)
					return
				}
			}
		})
	}
	var rg sync.WaitGroup
	for range relays {
		rg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				if _, err := s.PublishEvents(ctx, time.Time{}, 7, func(e latch.Event) ([]latch.OutboxMessage, error) {
					return []latch.OutboxMessage{relayMessage(e, true)}, nil
				}); err != nil {
					t.Errorf("PublishEvents: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	// Drain what is left once every writer is done, then stop the relays.
	for {
		n, err := s.PublishEvents(ctx, time.Time{}, 100, func(e latch.Event) ([]latch.OutboxMessage, error) {
			return []latch.OutboxMessage{relayMessage(e, true)}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	close(done)
	rg.Wait()
	count := map[string]int{}
	for _, m := range claimAll(t, s, "reader", base.Add(time.Hour)) {
		count[string(m.Payload)]++
	}
	if len(count) != writers*perWriter {
		t.Errorf("%d events were routed, want %d", len(count), writers*perWriter)
	}
	for id, n := range count {
		if n != 1 {
			t.Errorf("event %s was routed %d times", id, n)
		}
	}
}
