package webhook

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/latchauth/latch"
)

// Defaults of RelayConfig.
const (
	DefaultPoll  = time.Second
	DefaultBatch = 100
	// DefaultSweepEvery is how often a relay without hooks marks the
	// events published.
	DefaultSweepEvery = time.Minute
	// DefaultSweepAge is how old an event must be before a relay without
	// hooks marks it published unsent: an instance whose configuration
	// lags behind the others' during a rolling change of webhooks leaves
	// the newer instances this long to send it.
	DefaultSweepAge = 10 * time.Minute
	sweepBatch      = 1000
)

// RelayConfig configures a Relay.
type RelayConfig struct {
	Store latch.EventRelayStore
	// Hooks receive the events. Without any, the relay only marks
	// events older than SweepAge published, every SweepEvery, so that
	// they do not pile up unpublished.
	Hooks []Hook
	// Notify, if not nil, is called after messages were enqueued: the
	// outbox worker's Notify, so that they go out at once.
	Notify func()
	// Poll is how often the relay looks for new events; DefaultPoll if
	// zero.
	Poll time.Duration
	// Batch is how many events one transaction publishes; DefaultBatch
	// if zero.
	Batch int
	// SweepEvery and SweepAge tune the relay without hooks;
	// DefaultSweepEvery and DefaultSweepAge if zero.
	SweepEvery, SweepAge time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log receives failures; nil means slog.Default().
	Log *slog.Logger
}

// Relay publishes the security log to the outbox: one message per event
// and hook that wants it. Any number of relays may run against one store.
type Relay struct {
	cfg RelayConfig
}

// NewRelay returns a relay; Run starts it.
func NewRelay(cfg RelayConfig) (*Relay, error) {
	if cfg.Store == nil {
		return nil, errors.New("webhook: relay without a store")
	}
	seen := map[string]bool{}
	for _, h := range cfg.Hooks {
		if err := CheckID(h.ID); err != nil {
			return nil, fmt.Errorf("webhook: hook id %q: %w", h.ID, err)
		}
		if seen[h.ID] {
			return nil, fmt.Errorf("webhook: two hooks have the id %q", h.ID)
		}
		seen[h.ID] = true
	}
	if cfg.Poll <= 0 {
		cfg.Poll = DefaultPoll
	}
	if cfg.Batch <= 0 {
		cfg.Batch = DefaultBatch
	}
	if cfg.SweepEvery <= 0 {
		cfg.SweepEvery = DefaultSweepEvery
	}
	if cfg.SweepAge <= 0 {
		cfg.SweepAge = DefaultSweepAge
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Relay{cfg: cfg}, nil
}

// Run publishes until ctx ends: every Poll with hooks, every SweepEvery
// (marking only) without.
func (r *Relay) Run(ctx context.Context) {
	every := r.cfg.Poll
	if len(r.cfg.Hooks) == 0 {
		every = r.cfg.SweepEvery
	}
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for ctx.Err() == nil {
			n, err := r.RunOnce(ctx)
			if err != nil {
				if ctx.Err() == nil {
					r.cfg.Log.Warn("webhook: publishing security events failed; retrying at the next poll", "err", err)
				}
				break
			}
			if n < r.batch() {
				break
			}
		}
		t.Reset(every)
	}
}

func (r *Relay) batch() int {
	if len(r.cfg.Hooks) == 0 {
		return sweepBatch
	}
	return r.cfg.Batch
}

// RunOnce publishes one batch of events and returns how many it
// published. Without hooks it marks the events older than SweepAge
// published.
func (r *Relay) RunOnce(ctx context.Context) (int, error) {
	if len(r.cfg.Hooks) == 0 {
		n, err := r.cfg.Store.PublishEvents(ctx, r.cfg.Now().Add(-r.cfg.SweepAge), sweepBatch, nil)
		if err != nil {
			return 0, fmt.Errorf("webhook: sweep: %w", err)
		}
		return n, nil
	}
	enqueued := false
	n, err := r.cfg.Store.PublishEvents(ctx, time.Time{}, r.cfg.Batch, func(e latch.Event) ([]latch.OutboxMessage, error) {
		msgs, err := r.route(e)
		enqueued = enqueued || len(msgs) > 0
		return msgs, err
	})
	if err != nil {
		return 0, fmt.Errorf("webhook: publish: %w", err)
	}
	if enqueued && r.cfg.Notify != nil {
		r.cfg.Notify()
	}
	return n, nil
}

// route returns the messages of event e: one per hook that wants it.
func (r *Relay) route(e latch.Event) ([]latch.OutboxMessage, error) {
	var body []byte
	var msgs []latch.OutboxMessage
	now := r.cfg.Now()
	for _, h := range r.cfg.Hooks {
		if !h.Wants(e.Type) {
			continue
		}
		if body == nil {
			b, err := json.Marshal(NewPayload(e))
			if err != nil {
				return nil, fmt.Errorf("encode event %d: %w", e.ID, err)
			}
			body = b
		}
		p, err := json.Marshal(message{Hook: h.ID, ID: "msg_" + rand.Text(), Body: body})
		if err != nil {
			return nil, fmt.Errorf("encode event %d: %w", e.ID, err)
		}
		msgs = append(msgs, latch.OutboxMessage{Kind: latch.OutboxWebhook, Key: Key(h.ID, e.ID),
			Payload: p, CreatedAt: now, NotBefore: now})
	}
	return msgs, nil
}
