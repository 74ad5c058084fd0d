package auth

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/latchauth/latch"
)

// TestStoredStringsAreBounded: a 60 KB User-Agent (and as long an address)
// sent with a failed and a successful sign-in leaves events and a session
// whose strings stay within their bounds.
func TestStoredStringsAreBounded(t *testing.T) {
	svc, st := newService(t)
	ctx := context.Background()
	const pw = "correct horse battery"
	u, err := svc.CreateUser(ctx, "ada@example.com", pw, Device{})
	if err != nil {
		t.Fatal(err)
	}
	huge := Device{IP: strings.Repeat("1", 60<<10), UserAgent: "Mozilla/5.0 " + strings.Repeat("é", 30<<10)}
	if _, err := svc.Login(ctx, "ada@example.com", "wrong password!", "", huge); err != ErrInvalidCredentials {
		t.Fatalf("wrong password: %v", err)
	}
	tok, err := svc.Login(ctx, "ada@example.com", pw, "", huge)
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	events, err := st.EventsByUser(ctx, u.ID, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) < 2 {
		t.Fatalf("got %d events, want the failed and the successful sign-in", len(events))
	}
	for _, e := range events {
		if len(e.UserAgent) > MaxUserAgentLen || len(e.IP) > MaxIPLen || !utf8.ValidString(e.UserAgent) {
			t.Errorf("event %s stored a %d-byte user agent (valid UTF-8: %v) and a %d-byte IP", e.Type, len(e.UserAgent), utf8.ValidString(e.UserAgent), len(e.IP))
		}
	}
	sess, err := st.Session(ctx, tok.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	if len(sess.UserAgent) > MaxUserAgentLen || len(sess.IP) > MaxIPLen || !utf8.ValidString(sess.UserAgent) {
		t.Errorf("session stored a %d-byte user agent and a %d-byte IP", len(sess.UserAgent), len(sess.IP))
	}
	if !strings.HasPrefix(sess.UserAgent, "Mozilla/5.0 é") {
		t.Errorf("session user agent %.40q lost its beginning", sess.UserAgent)
	}
}

// TestBoundEvent: every string of an event, and the number of detail
// entries, is cut to its bound; short values are kept as they are.
func TestBoundEvent(t *testing.T) {
	long := strings.Repeat("x", 10_000)
	e := &latch.Event{Type: latch.EventLoginFailed, UserID: long, SessionID: long, ClientID: long, IP: long, UserAgent: long,
		Detail: map[string]string{}}
	for i := range 100 {
		e.Detail[fmt.Sprintf("%d-%s", i, long)] = long
	}
	boundEvent(e)
	if len(e.UserID) > MaxIDLen || len(e.SessionID) > MaxIDLen || len(e.ClientID) > MaxIDLen ||
		len(e.IP) > MaxIPLen || len(e.UserAgent) > MaxUserAgentLen {
		t.Errorf("field over its bound: user %d, session %d, client %d, ip %d, ua %d",
			len(e.UserID), len(e.SessionID), len(e.ClientID), len(e.IP), len(e.UserAgent))
	}
	if len(e.Detail) > MaxDetailEntries {
		t.Errorf("%d detail entries kept, want at most %d", len(e.Detail), MaxDetailEntries)
	}
	for k, v := range e.Detail {
		if len(k) > MaxDetailKeyLen || len(v) > MaxDetailValueLen {
			t.Errorf("detail entry of %d+%d bytes", len(k), len(v))
		}
	}
	short := &latch.Event{Type: latch.EventLoginFailed, IP: "2001:db8::1", UserAgent: "curl/8", Detail: map[string]string{"reason": "wrong_password"}}
	boundEvent(short)
	if short.IP != "2001:db8::1" || short.UserAgent != "curl/8" || short.Detail["reason"] != "wrong_password" {
		t.Errorf("short values changed: %+v", short)
	}
}

func TestTruncateKeepsUTF8(t *testing.T) {
	for n := range 8 {
		if got := truncate("aéé", n); !utf8.ValidString(got) || len(got) > n || !strings.HasPrefix("aéé", got) {
			t.Errorf("truncate(aéé, %d) = %q", n, got)
		}
	}
}
