// Package outbox delivers the messages of the durable outbox
// (latch.OutboxStore): what must reach the world outside the store, such as
// back-channel logout tokens, enqueued in the transaction that made it
// necessary and delivered here, with retries, so that a restart loses none.
//
// A Worker claims due messages under a lease (latch.OutboxStore.ClaimOutbox),
// hands each to the Handler of its kind and records the outcome: delivered,
// due again after a backoff, or given up. Any number of workers, in any
// number of instances, may run against one store: a message is leased to one
// owner at a time, and a lease whose owner died expires, so that another
// worker takes the message over. Delivery is therefore at least once:
// a worker that dies after delivering but before recording it leaves the
// message to be delivered again. Handlers must tolerate that (a back-channel
// logout told twice is harmless).
package outbox

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"sync"
	"time"

	"github.com/latchauth/latch"
	"github.com/prometheus/client_golang/prometheus"
)

// Handler delivers the messages of one kind.
type Handler interface {
	// Deliver delivers m. A nil error means delivered; an error made with
	// Permanent means the message can never be delivered (the worker gives
	// up at once); any other error means try again later. The error is
	// stored with the message and logged: it must not carry a secret.
	Deliver(ctx context.Context, m latch.OutboxMessage) error
}

// HandlerFunc adapts a function to a Handler.
type HandlerFunc func(ctx context.Context, m latch.OutboxMessage) error

// Deliver calls f(ctx, m).
func (f HandlerFunc) Deliver(ctx context.Context, m latch.OutboxMessage) error { return f(ctx, m) }

// permanentError marks an error after which retrying is pointless.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as permanent: a handler that returns it gives the
// message up at once instead of retrying it. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err, or an error it wraps, was made with
// Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// Policy says when a failed delivery is tried again and when the worker
// gives up on a message.
//
// The n-th retry (n = 1 after the first failure) is due after a delay
// drawn uniformly from [d/2, d], d = Initial·2^(n-1) capped at Max ("equal
// jitter": the delays grow, and instances that failed together spread
// out). A message is given up when a failure leaves it older than MaxAge
// (measured from its CreatedAt), or when it has failed MaxAttempts times
// if MaxAttempts is positive. Age rather than a count is the default
// limit, because what matters to a receiver that is down is how long it
// was down: with the defaults a relying party that is back within a day
// still hears of every logout, and at the 5-minute cap that is up to
// about three hundred attempts.
type Policy struct {
	// Initial is the delay before the first retry; 1 s if zero.
	Initial time.Duration
	// Max caps the delay; 5 min if zero.
	Max time.Duration
	// MaxAge is how long a message is retried; 24 h if zero.
	MaxAge time.Duration
	// MaxAttempts, if positive, also gives a message up after that many
	// failed deliveries. Zero means no limit by count.
	MaxAttempts int
}

// DefaultPolicy is the retry policy of a Worker whose Config sets none.
var DefaultPolicy = Policy{Initial: time.Second, Max: 5 * time.Minute, MaxAge: 24 * time.Hour}

func (p Policy) withDefaults() Policy {
	if p.Initial <= 0 {
		p.Initial = DefaultPolicy.Initial
	}
	if p.Max <= 0 {
		p.Max = DefaultPolicy.Max
	}
	if p.Max < p.Initial {
		p.Max = p.Initial
	}
	if p.MaxAge <= 0 {
		p.MaxAge = DefaultPolicy.MaxAge
	}
	return p
}

// Ceiling is the longest delay before retry n (n ≥ 1): Initial·2^(n-1),
// capped at Max.
func (p Policy) Ceiling(n int) time.Duration {
	p = p.withDefaults()
	d := p.Initial
	for i := 1; i < n && d < p.Max; i++ {
		d *= 2
	}
	return min(d, p.Max)
}

// Delay draws the delay before retry n (n ≥ 1) from [Ceiling(n)/2,
// Ceiling(n)].
func (p Policy) Delay(n int) time.Duration {
	c := p.Ceiling(n)
	half := c / 2
	return half + time.Duration(mrand.Int64N(int64(c-half)+1))
}

// GiveUp reports whether a message created at created that has now failed
// attempts times (this failure included) is to be given up at now.
func (p Policy) GiveUp(created, now time.Time, attempts int) bool {
	p = p.withDefaults()
	if p.MaxAttempts > 0 && attempts >= p.MaxAttempts {
		return true
	}
	return !now.Before(created.Add(p.MaxAge))
}

// Defaults of Config.
const (
	DefaultLease = 30 * time.Second
	DefaultPoll  = time.Second
	DefaultBatch = 16
	// settleTimeout bounds recording an outcome, which is done even when
	// the worker is stopping, so that a delivered message is not
	// delivered again.
	settleTimeout = 5 * time.Second
)

// Config configures a Worker.
type Config struct {
	// Store is the outbox.
	Store latch.OutboxStore
	// Handlers deliver the messages, by kind (latch.OutboxMessage.Kind).
	//
	// A message of a kind without a handler is logged and tried again
	// after Policy.Max, never given up: another instance, of a newer
	// version, may know the kind (during a rolling upgrade), and the
	// message must not be lost to an older one.
	Handlers map[string]Handler
	// Owner names this worker in leases: unique per instance. Empty means
	// DefaultOwner().
	Owner string
	// Lease is how long a claimed message belongs to this worker before
	// another may take it over; DefaultLease if zero. A delivery is
	// cancelled after three quarters of it, so that it ends before the
	// lease does.
	Lease time.Duration
	// Poll is how often the outbox is checked when nothing wakes the
	// worker (Notify); DefaultPoll if zero.
	Poll time.Duration
	// Batch is how many messages are claimed, and delivered concurrently,
	// at once; DefaultBatch if zero.
	Batch int
	// Policy is the retry policy; the zero Policy is DefaultPolicy.
	Policy Policy
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log receives failures; nil means slog.Default().
	Log *slog.Logger
	// Registry, if not nil, receives the worker's metrics:
	// latch_outbox_deliveries_total{kind,outcome}, outcome one of
	// delivered, retry and failed.
	Registry prometheus.Registerer
}

// Worker delivers the messages of the outbox. Its methods are safe for
// concurrent use.
type Worker struct {
	store    latch.OutboxStore
	handlers map[string]Handler
	owner    string
	lease    time.Duration
	poll     time.Duration
	batch    int
	policy   Policy
	now      func() time.Time
	log      *slog.Logger
	outcomes *prometheus.CounterVec
	wake     chan struct{}
}

// Outcomes of a delivery, the outcome label of the deliveries metric.
const (
	OutcomeDelivered = "delivered"
	OutcomeRetry     = "retry"
	OutcomeFailed    = "failed"
)

// DefaultOwner returns an owner name unique to this process: the host
// name, the process id and a random suffix (process ids repeat across
// containers).
func DefaultOwner() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), rand.Text()[:8])
}

// New returns a worker; Run starts it.
func New(cfg Config) (*Worker, error) {
	if cfg.Store == nil {
		return nil, errors.New("outbox: no store")
	}
	w := &Worker{
		store: cfg.Store, handlers: cfg.Handlers, owner: cfg.Owner, lease: cfg.Lease, poll: cfg.Poll,
		batch: cfg.Batch, policy: cfg.Policy.withDefaults(), now: cfg.Now, log: cfg.Log,
		wake: make(chan struct{}, 1),
	}
	if w.owner == "" {
		w.owner = DefaultOwner()
	}
	if w.lease <= 0 {
		w.lease = DefaultLease
	}
	if w.poll <= 0 {
		w.poll = DefaultPoll
	}
	if w.batch <= 0 {
		w.batch = DefaultBatch
	}
	if w.now == nil {
		w.now = time.Now
	}
	if w.log == nil {
		w.log = slog.Default()
	}
	w.outcomes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "latch_outbox_deliveries_total",
		Help: "Outbox delivery attempts by message kind and outcome (delivered, retry, failed).",
	}, []string{"kind", "outcome"})
	if cfg.Registry != nil {
		if err := cfg.Registry.Register(w.outcomes); err != nil {
			return nil, fmt.Errorf("outbox: register metrics: %w", err)
		}
	}
	return w, nil
}

// Owner returns the name under which the worker leases messages.
func (w *Worker) Owner() string { return w.owner }

// Notify wakes the worker so that a message just enqueued goes out now
// rather than at the next poll. It never blocks; wake-ups coalesce.
func (w *Worker) Notify() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Handle adds the handler of a kind of message. It must be called
// before Run: a service built after the worker (it wakes the worker, so it
// needs it first) registers its kinds this way.
func (w *Worker) Handle(kind string, h Handler) {
	if w.handlers == nil {
		w.handlers = map[string]Handler{}
	}
	w.handlers[kind] = h
}

// Run delivers messages until ctx ends: it works through the outbox
// whenever Notify is called and every Poll, and again at once after a
// full batch.
func (w *Worker) Run(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.wake:
		case <-t.C:
		}
		for ctx.Err() == nil {
			n, err := w.RunOnce(ctx)
			if err != nil {
				if ctx.Err() == nil {
					w.log.Warn("outbox: claiming messages failed; retrying at the next poll", "owner", w.owner, "err", err)
				}
				break
			}
			if n < w.batch {
				break
			}
		}
		t.Reset(w.poll)
	}
}

// RunOnce claims one batch of due messages, delivers them concurrently and
// records each outcome. It returns how many messages it claimed.
func (w *Worker) RunOnce(ctx context.Context) (int, error) {
	now := w.now()
	msgs, err := w.store.ClaimOutbox(ctx, w.owner, now, now.Add(w.lease), w.batch)
	if err != nil {
		return 0, fmt.Errorf("outbox: claim: %w", err)
	}
	var wg sync.WaitGroup
	for _, m := range msgs {
		wg.Go(func() { w.deliver(ctx, m) })
	}
	wg.Wait()
	return len(msgs), nil
}

// deliver delivers one claimed message and records the outcome.
func (w *Worker) deliver(ctx context.Context, m latch.OutboxMessage) {
	log := w.log.With("message", m.ID, "kind", m.Kind, "owner", w.owner)
	h, ok := w.handlers[m.Kind]
	if !ok {
		// Not ours to give up: another version may know the kind.
		log.Warn("outbox: no handler for the message's kind; leaving it for another instance", "retry_in", w.policy.Max)
		w.settle(ctx, log, m, OutcomeRetry, func(ctx context.Context, at time.Time) error {
			return w.store.RetryOutbox(ctx, m.ID, w.owner, "no handler for kind "+m.Kind+" on "+w.owner,
				at.Add(w.policy.Max), false, at)
		})
		return
	}
	dctx, cancel := context.WithTimeout(ctx, w.lease*3/4)
	err := h.Deliver(dctx, m)
	cancel()
	if err == nil {
		w.settle(ctx, log, m, OutcomeDelivered, func(ctx context.Context, at time.Time) error {
			return w.store.CompleteOutbox(ctx, m.ID, w.owner, at)
		})
		return
	}
	if ctx.Err() != nil {
		// Stopping: the delivery was cut short, not refused. The lease
		// expires and the message is taken up again.
		return
	}
	attempts := m.Attempts + 1
	at := w.now()
	giveUp := IsPermanent(err) || w.policy.GiveUp(m.CreatedAt, at, attempts)
	next := at.Add(w.policy.Delay(attempts))
	outcome := OutcomeRetry
	if giveUp {
		outcome = OutcomeFailed
		log.Error("outbox: giving up on a message", "attempts", attempts, "created", m.CreatedAt,
			"permanent", IsPermanent(err), "err", err)
	} else {
		log.Warn("outbox: delivery failed; will retry", "attempts", attempts, "next", next, "err", err)
	}
	w.settle(ctx, log, m, outcome, func(ctx context.Context, at time.Time) error {
		return w.store.RetryOutbox(ctx, m.ID, w.owner, err.Error(), next, giveUp, at)
	})
}

// settle records an outcome with op, even if ctx has ended (within
// settleTimeout), and counts it.
func (w *Worker) settle(ctx context.Context, log *slog.Logger, m latch.OutboxMessage, outcome string,
	op func(ctx context.Context, at time.Time) error) {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer cancel()
	w.outcomes.WithLabelValues(m.Kind, outcome).Inc()
	if err := op(sctx, w.now()); err != nil {
		// The lease expired and another owner took the message over (it
		// may be delivered twice), or the store failed (the lease will
		// expire and the message be taken up again).
		log.Warn("outbox: recording the outcome failed", "outcome", outcome, "err", err)
	}
}
