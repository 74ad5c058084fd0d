package webhook

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/outbox"
)

const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// messageFor returns the outbox message the relay makes of e for hook.
func messageFor(t *testing.T, hook Hook, e latch.Event) latch.OutboxMessage {
	t.Helper()
	r, err := NewRelay(RelayConfig{Store: nopStore{}, Hooks: []Hook{hook}})
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := r.route(e)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("route: %v, %d messages", err, len(msgs))
	}
	return msgs[0]
}

type nopStore struct{}

func (nopStore) PublishEvents(context.Context, time.Time, int, func(latch.Event) ([]latch.OutboxMessage, error)) (int, error) {
	return 0, nil
}

// TestDeliverSigned: the receiver gets the event as the documented JSON,
// signed so that Verify accepts it, with an id that is the same on a
// second attempt of the message.
func TestDeliverSigned(t *testing.T) {
	type got struct {
		header http.Header
		body   []byte
	}
	ch := make(chan got, 2)
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		ch <- got{r.Header.Clone(), b}
	}))
	defer rcv.Close()
	hook := Hook{ID: "siem", URL: rcv.URL + "/latch?token=s3cr3t-in-query", Secret: testSecret}
	reg := prometheus.NewRegistry()
	h, err := NewHandler(HandlerConfig{Hooks: []Hook{hook}, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2030, 1, 2, 3, 4, 5, 6000, time.UTC)
	e := latch.Event{ID: 42, Type: latch.EventRefreshReused, At: at, UserID: "u1", SessionID: "s1", ClientID: "web",
		IP: "192.0.2.1", UserAgent: "curl/8", Detail: map[string]string{"other_ip": "198.51.100.2"}}
	m := messageFor(t, hook, e)
	if m.Key != "webhook:siem:42" || m.Kind != latch.OutboxWebhook {
		t.Fatalf("message kind %q key %q", m.Kind, m.Key)
	}
	var ids []string
	for range 2 {
		if err := h.Deliver(t.Context(), m); err != nil {
			t.Fatalf("Deliver: %v", err)
		}
		r := <-ch
		if err := Verify(testSecret, r.header, r.body, time.Minute); err != nil {
			t.Fatalf("the receiver's Verify: %v", err)
		}
		if r.header.Get("Content-Type") != "application/json" {
			t.Errorf("Content-Type %q", r.header.Get("Content-Type"))
		}
		var p map[string]any
		if err := json.Unmarshal(r.body, &p); err != nil {
			t.Fatal(err)
		}
		want := `{"type":"refresh_token_reused","timestamp":"2030-01-02T03:04:05.000006Z","data":{"id":42,"user_id":"u1","session_id":"s1","client_id":"web","ip":"192.0.2.1","user_agent":"curl/8","detail":{"other_ip":"198.51.100.2"}}}`
		if string(r.body) != want {
			t.Errorf("body\n%s\nwant\n%s", r.body, want)
		}
		ids = append(ids, r.header.Get(HeaderID))
	}
	if ids[0] != ids[1] || !strings.HasPrefix(ids[0], "msg_") {
		t.Errorf("webhook-id of two attempts: %q, %q; want one msg_ id", ids[0], ids[1])
	}
	var c dto.Metric
	if err := h.outcomes.WithLabelValues("siem", OutcomeDelivered).Write(&c); err != nil || c.GetCounter().GetValue() != 2 {
		n := c.GetCounter().GetValue()
		t.Errorf("delivered counter %v, want 2", n)
	}
}

// TestDeliverOutcomes: what each answer of the receiver makes of the
// message, and that no error names the secret, the URL's query or the
// response body.
func TestDeliverOutcomes(t *testing.T) {
	var status atomic.Int32
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if status.Load() == http.StatusFound {
			w.Header().Set("Location", "http://127.0.0.1:1/elsewhere")
		}
		w.WriteHeader(int(status.Load()))
		io.WriteString(w, "response-body-secret")
	}))
	defer rcv.Close()
	hook := Hook{ID: "h", URL: rcv.URL + "/p?token=s3cr3t-in-query", Secret: testSecret}
	h, err := NewHandler(HandlerConfig{Hooks: []Hook{hook}})
	if err != nil {
		t.Fatal(err)
	}
	m := messageFor(t, hook, latch.Event{ID: 1, Type: latch.EventLoginFailed, At: time.Now()})
	for code, want := range map[int]string{
		200: OutcomeDelivered, 204: OutcomeDelivered,
		500: OutcomeRetry, 503: OutcomeRetry, 408: OutcomeRetry, 429: OutcomeRetry, 425: OutcomeRetry,
		401: OutcomeRetry, 403: OutcomeRetry, 404: OutcomeRetry, 302: OutcomeRetry,
		400: OutcomeRejected, 410: OutcomeRejected, 413: OutcomeRejected, 422: OutcomeRejected,
	} {
		status.Store(int32(code))
		err := h.Deliver(t.Context(), m)
		got := OutcomeDelivered
		switch {
		case outbox.IsPermanent(err):
			got = OutcomeRejected
		case err != nil:
			got = OutcomeRetry
		}
		if got != want {
			t.Errorf("status %d: %s (%v), want %s", code, got, err, want)
		}
		if err != nil {
			for _, leak := range []string{"s3cr3t", "MfKQ9r8", "response-body-secret", "/p"} {
				if strings.Contains(err.Error(), leak) {
					t.Errorf("status %d: error %q shows %q", code, err, leak)
				}
			}
		}
	}

	// A receiver that does not answer in time: retried, within the
	// client's timeout.
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer slow.Close()
	defer close(release)
	client := NewHTTPClient()
	client.Timeout = 50 * time.Millisecond
	slowHook := Hook{ID: "slow", URL: slow.URL, Secret: testSecret}
	hs, err := NewHandler(HandlerConfig{Hooks: []Hook{slowHook}, HTTPClient: client})
	if err != nil {
		t.Fatal(err)
	}
	if err := hs.Deliver(t.Context(), messageFor(t, slowHook, latch.Event{ID: 1, Type: "x", At: time.Now()})); err == nil || outbox.IsPermanent(err) {
		t.Errorf("a receiver that hangs: %v, want an error to retry", err)
	}

	// A message for a hook this instance does not have: retried, not
	// given up (another instance may have it).
	other := messageFor(t, Hook{ID: "other", URL: rcv.URL, Secret: testSecret}, latch.Event{ID: 1, Type: "x", At: time.Now()})
	status.Store(200)
	if err := h.Deliver(t.Context(), other); err == nil || outbox.IsPermanent(err) {
		t.Errorf("unknown hook: %v, want an error to retry", err)
	}
	// A payload that is not a webhook message: given up.
	if err := h.Deliver(t.Context(), latch.OutboxMessage{ID: 9, Kind: latch.OutboxWebhook, Payload: []byte("{}")}); !outbox.IsPermanent(err) {
		t.Errorf("bad payload: %v, want a permanent error", err)
	}
}
