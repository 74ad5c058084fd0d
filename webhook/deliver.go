package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/outbox"
)

// Defaults of HandlerConfig.
const (
	// DefaultTimeout bounds one delivery, connection and response
	// headers included.
	DefaultTimeout = 10 * time.Second
	// maxResponse is how much of a response body is read (and
	// discarded, never logged), so that the connection can be reused.
	maxResponse = 4 << 10
)

// Outcomes of a delivery, the outcome label of
// latch_webhook_deliveries_total.
const (
	// OutcomeDelivered: the receiver answered 2xx.
	OutcomeDelivered = "delivered"
	// OutcomeRetry: a network error, a timeout, a redirect, or an
	// answer that a later attempt may change (5xx, 408, 425, 429, and
	// 401, 403, 404: see Deliver); the outbox tries again.
	OutcomeRetry = "retry"
	// OutcomeRejected: the receiver refused this message for good (any
	// other 4xx); the outbox gives it up.
	OutcomeRejected = "rejected"
	// OutcomeUnknownHook: the message names a hook this instance is not
	// configured with; it is left for another instance, and retried.
	OutcomeUnknownHook = "unknown_hook"
)

// HandlerConfig configures a Handler.
type HandlerConfig struct {
	// Hooks are the configured webhooks, by which messages are sent.
	Hooks []Hook
	// HTTPClient sends the requests; nil means NewHTTPClient(). A client
	// passed here must not follow redirects: the signed body is for the
	// configured URL alone.
	HTTPClient *http.Client
	// Now is the clock of the webhook-timestamp header; nil means
	// time.Now.
	Now func() time.Time
	// Registry, if not nil, receives latch_webhook_deliveries_total{hook,
	// outcome}.
	Registry prometheus.Registerer
}

// Handler delivers latch.OutboxWebhook messages; it implements
// outbox.Handler.
type Handler struct {
	hooks    map[string]Hook
	http     *http.Client
	now      func() time.Time
	outcomes *prometheus.CounterVec
}

// NewHTTPClient returns the default HTTP client of a Handler: a timeout
// of DefaultTimeout, and redirects not followed but returned as the
// response (which is not a success).
func NewHTTPClient() *http.Client {
	return &http.Client{
		Timeout: DefaultTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// NewHandler returns a Handler.
func NewHandler(cfg HandlerConfig) (*Handler, error) {
	h := &Handler{hooks: map[string]Hook{}, http: cfg.HTTPClient, now: cfg.Now}
	for _, hook := range cfg.Hooks {
		if err := CheckID(hook.ID); err != nil {
			return nil, fmt.Errorf("webhook: hook id %q: %w", hook.ID, err)
		}
		if _, dup := h.hooks[hook.ID]; dup {
			return nil, fmt.Errorf("webhook: two hooks have the id %q", hook.ID)
		}
		h.hooks[hook.ID] = hook
	}
	if h.http == nil {
		h.http = NewHTTPClient()
	}
	if h.now == nil {
		h.now = time.Now
	}
	h.outcomes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "latch_webhook_deliveries_total",
		Help: "Webhook delivery attempts by hook and outcome (delivered, retry, rejected, unknown_hook).",
	}, []string{"hook", "outcome"})
	if cfg.Registry != nil {
		if err := cfg.Registry.Register(h.outcomes); err != nil {
			return nil, fmt.Errorf("webhook: register metrics: %w", err)
		}
	}
	return h, nil
}

// Deliver POSTs the event of m, a latch.OutboxWebhook message, to its
// hook's URL, signed (see the package documentation), and says what the
// outbox is to do:
//
//   - 2xx: delivered.
//   - 5xx, 408 Request Timeout, 425 Too Early, 429 Too Many Requests, a
//     network error, a timeout, or a redirect (never followed): retried.
//   - 401, 403 and 404: retried too. They are what a receiver answers
//     while it is misconfigured (a secret rotated on one side only, a
//     route not deployed yet), and security events must outlive the
//     fix; the outbox gives up after a day all the same.
//   - any other 4xx (400, 410 Gone, 413, 422…): the receiver refused this
//     message and would refuse it again; given up at once.
//
// Errors name the hook, the URL's host and the status or cause: never
// the URL's path or query (which may carry a token), the secret or the
// response body.
func (h *Handler) Deliver(ctx context.Context, m latch.OutboxMessage) error {
	var msg message
	if err := json.Unmarshal(m.Payload, &msg); err != nil || msg.Hook == "" || msg.ID == "" || len(msg.Body) == 0 {
		return outbox.Permanent(fmt.Errorf("webhook: message %d: payload is not a webhook message", m.ID))
	}
	hook, ok := h.hooks[msg.Hook]
	if !ok {
		// Another instance may have the hook (a rolling change of the
		// configuration): not ours to give up before the outbox's age
		// limit.
		h.outcomes.WithLabelValues(msg.Hook, OutcomeUnknownHook).Inc()
		return fmt.Errorf("webhook: message %d: hook %q is not configured on this instance", m.ID, msg.Hook)
	}
	outcome, err := h.send(ctx, hook, msg)
	h.outcomes.WithLabelValues(hook.ID, outcome).Inc()
	return err
}

// send makes one attempt and returns its outcome and error (nil when
// delivered).
func (h *Handler) send(ctx context.Context, hook Hook, msg message) (string, error) {
	u, err := url.Parse(hook.URL)
	if err != nil {
		return OutcomeRejected, outbox.Permanent(fmt.Errorf("webhook %s: the URL does not parse", hook.ID))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, hook.URL, bytes.NewReader(msg.Body))
	if err != nil {
		return OutcomeRejected, outbox.Permanent(fmt.Errorf("webhook %s: request to %s: the URL is not usable", hook.ID, u.Host))
	}
	now := h.now()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Latch-Webhooks/1")
	req.Header.Set(HeaderID, msg.ID)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(HeaderSignature, Sign(hook.Secret, msg.ID, now, msg.Body))
	resp, err := h.http.Do(req)
	if err != nil {
		// A *url.Error repeats the whole URL; keep its cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return OutcomeRetry, fmt.Errorf("webhook %s: POST to %s: %w", hook.ID, u.Host, err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponse))
	resp.Body.Close()
	code := resp.StatusCode
	switch {
	case code >= 200 && code < 300:
		return OutcomeDelivered, nil
	case code >= 400 && code < 500 && !retriable(code):
		return OutcomeRejected, outbox.Permanent(fmt.Errorf("webhook %s: POST to %s: refused with status %d", hook.ID, u.Host, code))
	default:
		return OutcomeRetry, fmt.Errorf("webhook %s: POST to %s: status %d", hook.ID, u.Host, code)
	}
}

// retriable reports whether a 4xx status may change on a later attempt.
func retriable(code int) bool {
	switch code {
	case http.StatusRequestTimeout, http.StatusTooEarly, http.StatusTooManyRequests,
		http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound:
		return true
	}
	return false
}
