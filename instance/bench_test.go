package instance_test

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

// BenchmarkHTTP measures the token paths end to end: an HTTP request to the
// real handler stack on real SQLite, over loopback. Password sign-in is
// left out on purpose: it is argon2id-bound (~22 ms a hash, see package
// password) by design.
func BenchmarkHTTP(b *testing.B) {
	h := start(b, "", nil)
	h.addUser(adaEmail, adaPass)

	b.Run("refresh", func(b *testing.B) {
		tok := h.login(adaEmail, adaPass).str("refresh_token")
		b.ReportAllocs()
		for b.Loop() {
			r := h.refresh(tok)
			if r.code != http.StatusOK {
				b.Fatalf("refresh: %d %s", r.code, r.raw)
			}
			tok = r.str("refresh_token")
		}
	})

	b.Run("refresh-parallel", func(b *testing.B) {
		// One session per goroutine, as many clients would.
		var n atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			n.Add(1)
			tok := h.login(adaEmail, adaPass).str("refresh_token")
			for pb.Next() {
				r := h.refresh(tok)
				if r.code != http.StatusOK {
					b.Errorf("refresh: %d %s", r.code, r.raw)
					return
				}
				tok = r.str("refresh_token")
			}
		})
	})

	b.Run("me", func(b *testing.B) {
		access := h.login(adaEmail, adaPass).str("access_token")
		hdr := bearer(access)
		b.ReportAllocs()
		for b.Loop() {
			if r := h.do("GET", "/v1/me", "", hdr...); r.code != http.StatusOK {
				b.Fatalf("me: %d", r.code)
			}
		}
	})

	b.Run("jwks", func(b *testing.B) {
		for b.Loop() {
			if r := h.do("GET", "/.well-known/jwks.json", ""); r.code != http.StatusOK || !strings.Contains(string(r.raw), "keys") {
				b.Fatalf("jwks: %d", r.code)
			}
		}
	})
}
