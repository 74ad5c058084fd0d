package oidc

import (
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/latchauth/latch"
)

func TestRedirectMatches(t *testing.T) {
	conf := &latch.Client{ID: "c", SecretHash: "x", RedirectURIs: []string{"https://app.example/cb", "http://127.0.0.1:8000/cb"}}
	pub := &latch.Client{ID: "p", RedirectURIs: []string{"http://127.0.0.1/cb", "http://[::1]:9/cb?x=1", "http://localhost:5173/cb"}}
	for _, tc := range []struct {
		c    *latch.Client
		uri  string
		want bool
	}{
		{conf, "https://app.example/cb", true},
		{conf, "https://app.example/cb/", false},
		{conf, "https://app.example/c", false},
		{conf, "https://app.example/cbx", false},
		{conf, "https://APP.example/cb", false},
		{conf, "https://app.example:443/cb", false},
		{conf, "https://user@app.example/cb", false},
		{conf, "https://app.example/cb#x", false},
		{conf, "https://app.example/cb?x=1", false},
		{conf, "https://app.example/x/../cb", false},
		{conf, "http://127.0.0.1:8000/cb", true},
		{conf, "http://127.0.0.1:8001/cb", false}, // confidential: no port variance
		{pub, "http://127.0.0.1:51234/cb", true},  // RFC 8252 §7.3
		{pub, "http://127.0.0.1/cb", true},
		{pub, "http://127.0.0.1:51234/cb/", false},
		{pub, "http://127.0.0.1:51234/cb?x=1", false},
		{pub, "http://127.0.0.1:51234/cb#f", false},
		{pub, "http://127.0.0.2:51234/cb", false},
		{pub, "http://u@127.0.0.1:51234/cb", false},
		{pub, "https://127.0.0.1:51234/cb", false},
		{pub, "http://[::1]:1234/cb?x=1", true},
		{pub, "http://127.0.0.1:99999/cb", false},
		{pub, "http://localhost:5174/cb", false}, // only IP literals vary their port
	} {
		if got := RedirectMatches(tc.c, tc.uri); got != tc.want {
			t.Errorf("RedirectMatches(%s, %q) = %v, want %v", tc.c.ID, tc.uri, got, tc.want)
		}
	}
}

func TestVerifierMatches(t *testing.T) {
	v := strings.Repeat("a", 43)
	sum := sha256.Sum256([]byte(v))
	ch := base64.RawURLEncoding.EncodeToString(sum[:])
	if !verifierMatches(v, ch) {
		t.Fatal("the verifier of the challenge must match")
	}
	for _, bad := range []string{strings.Repeat("a", 42), strings.Repeat("a", 129), strings.Repeat("a", 42) + " ", strings.Repeat("b", 43), ch} {
		if verifierMatches(bad, ch) {
			t.Errorf("verifier %q must not match", bad)
		}
	}
	if validChallenge("short") || validChallenge(strings.Repeat("!", 43)) || !validChallenge(ch) {
		t.Error("validChallenge accepts only a base64url SHA-256")
	}
}

func TestCookieValueIsMACed(t *testing.T) {
	p := &Provider{mac: func(purpose string, msg []byte) []byte {
		h := sha256.Sum256(append([]byte(purpose+"|secret|"), msg...))
		return h[:]
	}}
	v := p.cookieValue("sso_abc")
	if id, ok := p.cookieID(v); !ok || id != "sso_abc" {
		t.Fatalf("cookieID(%q) = %q, %v", v, id, ok)
	}
	for _, bad := range []string{"sso_abc", "sso_abc.", "sso_abd" + v[len("sso_abc"):], v + "A", "." + v[len("sso_abc")+1:], ""} {
		if _, ok := p.cookieID(bad); ok {
			t.Errorf("forged cookie %q accepted", bad)
		}
	}
}
