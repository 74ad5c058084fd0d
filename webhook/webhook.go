// Package webhook sends Latch's security events to the HTTP endpoints of
// the webhooks: configuration, so that a team's own systems (a SIEM, an
// anomaly model, a chat alert) hear of every sign-in failure, reused refresh
// token, revoked session or locked account as it happens, and can answer
// through the admin API (revoke the user's sessions).
//
// # Delivery
//
// Nothing is lost between an event and its delivery. The security log is
// the source: every event is stored unpublished, by whichever code
// records it and in whatever transaction, and a Relay publishes it by
// enqueueing, in one store transaction, one outbox message per webhook
// that wants its type (latch.EventRelayStore.PublishEvents). The outbox
// worker (package outbox) delivers the messages with a Handler: retries
// with growing, jittered delays, a lease so that one worker at a time
// holds a message, and giving up after a day. Every instance may run a
// relay: on PostgreSQL the relays take disjoint events (FOR UPDATE SKIP
// LOCKED), on SQLite they take turns at the single writer, and the
// message key "webhook:<hook>:<event id>" makes a second enqueueing of one
// (hook, event) a no-op anyway.
//
// A receiver hears of each event at least once. The outbox's lease means
// two instances never send one message at the same time, but an instance
// that dies after the receiver answered and before it recorded the answer
// leaves the message to be sent again: the webhook-id header, the same on
// every attempt of a message, lets the receiver drop the repeat.
// Events are published in about the order they were recorded, not
// strictly (a retry, or two relays, reorder them): receivers that care
// order by data.id or timestamp.
//
// # Signature
//
// Messages are signed in the style of Standard Webhooks
// (https://www.standardwebhooks.com): three headers,
//
//	webhook-id:        msg_…   (stable across retries of one message)
//	webhook-timestamp: 1767225600   (Unix seconds of this attempt)
//	webhook-signature: v1,<base64 of HMAC-SHA256(key, id + "." + timestamp + "." + body)>
//
// where key is the webhook's secret: the bytes of the string, or, for a
// secret written "whsec_<base64>" (the Standard Webhooks form), the
// decoded bytes after the prefix, so that the Standard Webhooks libraries
// for Node, Python and others verify Latch's messages as they are. A
// receiver recomputes the HMAC over the raw body it received, compares it
// in constant time with each space-separated v1 entry of the header, and
// refuses a timestamp more than a few minutes from its clock (replays).
// Verify does all of it in Go.
package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/latchauth/latch"
)

// Headers of a webhook request.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// MinSecret is the shortest secret a webhook may have, in characters.
const MinSecret = 32

// SecretPrefix marks a secret written in the Standard Webhooks form: the
// key is the base64 after it.
const SecretPrefix = "whsec_"

// DefaultTolerance is how far a message's timestamp may be from the
// receiver's clock when Verify is given no tolerance.
const DefaultTolerance = 5 * time.Minute

// Hook is a configured receiver of security events.
type Hook struct {
	// ID names the hook in message keys, metrics and logs; see DefaultID.
	ID string
	// URL receives the events: https, or http on a loopback host.
	URL string
	// Secret keys the signatures (see the package documentation).
	Secret string
	// Events are the event types sent; empty means every type.
	Events []string
}

// Wants reports whether the hook is sent events of type typ.
func (h Hook) Wants(typ string) bool {
	return len(h.Events) == 0 || slices.Contains(h.Events, typ)
}

// DefaultID is the ID of a hook configured without one: derived from its
// URL, so that it stays the same across restarts and instances.
func DefaultID(rawURL string) string {
	sum := sha256.Sum256([]byte(rawURL))
	return "hook-" + hex.EncodeToString(sum[:6])
}

// CheckID checks a hook ID: 1 to 64 letters, digits, '-' or '_'.
func CheckID(id string) error {
	if id == "" || len(id) > 64 {
		return errors.New("must be 1 to 64 characters")
	}
	for _, r := range id {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' || r == '_') {
			return errors.New("may hold only letters, digits, '-' and '_'")
		}
	}
	return nil
}

// CheckURL checks a webhook URL: an absolute https URL, or http on a
// loopback host (127.0.0.0/8, ::1, localhost) for a receiver on the same
// machine; no fragment. Its error never repeats the URL (it may carry a
// token in its query).
func CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return errors.New("must be an absolute URL such as https://hooks.example.com/latch")
	}
	if u.Fragment != "" {
		return errors.New("must not have a fragment")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if loopback(u.Hostname()) {
			return nil
		}
		return errors.New("must be https (http is allowed only on a loopback host such as 127.0.0.1)")
	default:
		return errors.New("must be an https URL")
	}
}

func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// CheckSecret checks a webhook secret: at least MinSecret characters,
// and, in the "whsec_" form, base64 of at least 24 bytes.
func CheckSecret(secret string) error {
	if rest, ok := strings.CutPrefix(secret, SecretPrefix); ok {
		k, err := base64.StdEncoding.DecodeString(rest)
		if err != nil || len(k) < 24 {
			return fmt.Errorf("a %s secret must be followed by the base64 of at least 24 random bytes (make one with: echo %s$(openssl rand -base64 32))", SecretPrefix, SecretPrefix)
		}
		return nil
	}
	if len(secret) < MinSecret {
		return fmt.Errorf("must be at least %d characters (make one with: echo %s$(openssl rand -base64 32))", MinSecret, SecretPrefix)
	}
	return nil
}

// key is the HMAC key of a secret (see the package documentation).
func key(secret string) []byte {
	if rest, ok := strings.CutPrefix(secret, SecretPrefix); ok {
		if k, err := base64.StdEncoding.DecodeString(rest); err == nil {
			return k
		}
	}
	return []byte(secret)
}

// Sign returns the webhook-signature header of the message id sent at
// timestamp with body: "v1," and the base64 of HMAC-SHA256 over
// id "." unix-seconds "." body.
func Sign(secret, id string, timestamp time.Time, body []byte) string {
	return "v1," + base64.StdEncoding.EncodeToString(mac(key(secret), id, strconv.FormatInt(timestamp.Unix(), 10), body))
}

func mac(key []byte, id, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Errors of Verify.
var (
	// ErrMissingHeaders: the request lacks webhook-id,
	// webhook-timestamp or webhook-signature.
	ErrMissingHeaders = errors.New("webhook: missing webhook-id, webhook-timestamp or webhook-signature header")
	// ErrTimestamp: the timestamp is not a number of seconds, or is
	// further from now than the tolerance (a replay, or a clock off).
	ErrTimestamp = errors.New("webhook: timestamp outside the tolerance")
	// ErrSignature: no v1 signature of the header matches the body.
	ErrSignature = errors.New("webhook: no matching signature")
)

// Verify checks a webhook request as a receiver must before it trusts the
// body: header holds the request's headers and body its raw bytes (read
// before any JSON decoding: a re-encoded body does not verify). The
// timestamp must be within tolerance of now (DefaultTolerance if zero or
// less), and one of the header's v1 signatures must be the HMAC of secret
// over id.timestamp.body, compared in constant time.
func Verify(secret string, header http.Header, body []byte, tolerance time.Duration) error {
	return verifyAt(secret, header, body, tolerance, time.Now())
}

func verifyAt(secret string, header http.Header, body []byte, tolerance time.Duration, now time.Time) error {
	id, ts, sigs := header.Get(HeaderID), header.Get(HeaderTimestamp), header.Get(HeaderSignature)
	if id == "" || ts == "" || sigs == "" {
		return ErrMissingHeaders
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sec < 0 || sec > math.MaxInt64/int64(time.Second) {
		return ErrTimestamp
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return ErrTimestamp
	}
	want := mac(key(secret), id, ts, body)
	for sig := range strings.FieldsSeq(sigs) {
		version, value, ok := strings.Cut(sig, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(value)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return ErrSignature
}

// Payload is the JSON body of a webhook request.
type Payload struct {
	// Type is the event type (latch.EventLoginFailed…).
	Type string `json:"type"`
	// Timestamp is when the event was recorded (RFC 3339, UTC).
	Timestamp time.Time `json:"timestamp"`
	Data      Event     `json:"data"`
}

// Event is the data of a Payload: the security event's fields. Empty
// fields are sent as empty strings, Detail as an object ({} when empty).
type Event struct {
	ID        int64             `json:"id"`
	UserID    string            `json:"user_id"`
	SessionID string            `json:"session_id"`
	ClientID  string            `json:"client_id"`
	IP        string            `json:"ip"`
	UserAgent string            `json:"user_agent"`
	Detail    map[string]string `json:"detail"`
}

// NewPayload returns the payload of a security event.
func NewPayload(e latch.Event) Payload {
	d := e.Detail
	if d == nil {
		d = map[string]string{}
	}
	return Payload{Type: e.Type, Timestamp: e.At.UTC(), Data: Event{
		ID: e.ID, UserID: e.UserID, SessionID: e.SessionID, ClientID: e.ClientID,
		IP: e.IP, UserAgent: e.UserAgent, Detail: d,
	}}
}

// message is the outbox payload of a latch.OutboxWebhook message: the
// hook, the webhook-id and the body, encoded once at publication so that
// every attempt sends the same bytes under the same id.
type message struct {
	Hook string          `json:"hook"`
	ID   string          `json:"id"`
	Body json.RawMessage `json:"body"`
}

// Key is the outbox Key of the message of event eventID for hook: one
// message per hook and event, however often the event is published.
func Key(hook string, eventID int64) string {
	return "webhook:" + hook + ":" + strconv.FormatInt(eventID, 10)
}
