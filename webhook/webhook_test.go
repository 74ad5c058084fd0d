package webhook

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestStandardWebhooksVector: a message signed with the Standard Webhooks
// specification's example (secret, id, timestamp, body) carries the
// signature its reference libraries compute, so that receivers may use
// them.
func TestStandardWebhooksVector(t *testing.T) {
	const (
		secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
		id     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
		want   = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	)
	at := time.Unix(1614265330, 0)
	body := []byte(`{"test": 2432232314}`)
	if got := Sign(secret, id, at, body); got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
	h := http.Header{}
	h.Set(HeaderID, id)
	h.Set(HeaderTimestamp, "1614265330")
	h.Set(HeaderSignature, want)
	if err := verifyAt(secret, h, body, time.Minute, at.Add(30*time.Second)); err != nil {
		t.Fatalf("Verify of the specification's example: %v", err)
	}
}

func signed(secret, id string, at time.Time, body []byte) http.Header {
	h := http.Header{}
	h.Set(HeaderID, id)
	h.Set(HeaderTimestamp, strconv.FormatInt(at.Unix(), 10))
	h.Set(HeaderSignature, Sign(secret, id, at, body))
	return h
}

// TestVerifyRejects: each check of Verify refuses what it must.
func TestVerifyRejects(t *testing.T) {
	const secret = "a-webhook-secret-of-at-least-32-characters"
	now := time.Now()
	body := []byte(`{"type":"login_failed"}`)
	if err := Verify(secret, signed(secret, "msg_1", now, body), body, 0); err != nil {
		t.Fatalf("a good message: %v", err)
	}
	for _, tc := range []struct {
		name   string
		header http.Header
		body   []byte
		want   error
	}{
		{"tampered body", signed(secret, "msg_1", now, body), []byte(`{"type":"login_succeeded"}`), ErrSignature},
		{"wrong secret", signed(secret+"x", "msg_1", now, body), body, ErrSignature},
		{"old timestamp", signed(secret, "msg_1", now.Add(-6*time.Minute), body), body, ErrTimestamp},
		{"future timestamp", signed(secret, "msg_1", now.Add(6*time.Minute), body), body, ErrTimestamp},
		{"another id", func() http.Header {
			h := signed(secret, "msg_1", now, body)
			h.Set(HeaderID, "msg_2")
			return h
		}(), body, ErrSignature},
		{"timestamp changed", func() http.Header {
			h := signed(secret, "msg_1", now, body)
			h.Set(HeaderTimestamp, strconv.FormatInt(now.Unix()-1, 10))
			return h
		}(), body, ErrSignature},
		{"not a number", func() http.Header {
			h := signed(secret, "msg_1", now, body)
			h.Set(HeaderTimestamp, "soon")
			return h
		}(), body, ErrTimestamp},
		{"other version", func() http.Header {
			h := signed(secret, "msg_1", now, body)
			h.Set(HeaderSignature, strings.Replace(h.Get(HeaderSignature), "v1,", "v1a,", 1))
			return h
		}(), body, ErrSignature},
		{"no signature", func() http.Header {
			h := signed(secret, "msg_1", now, body)
			h.Del(HeaderSignature)
			return h
		}(), body, ErrMissingHeaders},
		{"no id", func() http.Header {
			h := signed(secret, "msg_1", now, body)
			h.Del(HeaderID)
			return h
		}(), body, ErrMissingHeaders},
	} {
		if err := Verify(secret, tc.header, tc.body, 5*time.Minute); !errors.Is(err, tc.want) {
			t.Errorf("%s: Verify = %v, want %v", tc.name, err, tc.want)
		}
	}
	// Several signatures (a receiver between two secrets): one match is
	// enough.
	h := signed(secret, "msg_1", now, body)
	h.Set(HeaderSignature, "v1,AAAA "+Sign("another-secret-of-at-least-32-characters!", "msg_1", now, body)+" "+h.Get(HeaderSignature))
	if err := Verify(secret, h, body, 0); err != nil {
		t.Errorf("a matching signature among others: %v", err)
	}
}

func TestCheckURL(t *testing.T) {
	for _, ok := range []string{"https://hooks.example.com/latch", "http://127.0.0.1:8080/h", "http://[::1]/h", "http://localhost:9/x"} {
		if err := CheckURL(ok); err != nil {
			t.Errorf("CheckURL(%s): %v", ok, err)
		}
	}
	for _, bad := range []string{"http://hooks.example.com/latch", "ftp://x/y", "/relative", "https://x/y#frag", "hooks.example.com", "http://10.0.0.1/h"} {
		if err := CheckURL(bad); err == nil {
			t.Errorf("CheckURL(%s) accepted it", bad)
		}
	}
	// The error never repeats the URL: its query may hold a token.
	if err := CheckURL("http://hooks.example.com/?token=s3cr3t"); err == nil || strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("CheckURL error %v", err)
	}
}

func TestCheckSecret(t *testing.T) {
	for _, ok := range []string{strings.Repeat("k", 32), "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"} {
		if err := CheckSecret(ok); err != nil {
			t.Errorf("CheckSecret(%s): %v", ok, err)
		}
	}
	for _, bad := range []string{"", strings.Repeat("k", 31), "whsec_short", "whsec_!!!not-base64-at-all-but-long-enough!!!"} {
		if err := CheckSecret(bad); err == nil {
			t.Errorf("CheckSecret(%q) accepted it", bad)
		}
	}
}
