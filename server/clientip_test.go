package server

import (
	"net/http/httptest"
	"net/netip"
	"testing"
)

// TestClientIPBehindProxies: behind a trusted proxy the client is the
// rightmost untrusted X-Forwarded-For entry, also when a proxy writes it
// with a port. Before, an entry with a port ended the walk at the proxy,
// so every client shared the proxy's address: one sign-in budget (one
// client could use it up for all) and one grace-rule network.
func TestClientIPBehindProxies(t *testing.T) {
	s := &Server{cfg: Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}}
	cases := []struct{ peer, xff, want string }{
		{"10.0.0.1:999", "192.0.2.7", "192.0.2.7"},
		{"10.0.0.1:999", "192.0.2.7:4711", "192.0.2.7"},
		{"10.0.0.1:999", "[2001:db8::7]:4711", "2001:db8::7"},
		{"10.0.0.1:999", "[2001:db8::7]", "2001:db8::7"},
		{"10.0.0.1:999", "198.51.100.1, 192.0.2.7:4711, 10.0.0.2:80", "192.0.2.7"},
		{"10.0.0.1:999", "garbage", "10.0.0.1"},
		{"192.0.2.9:999", "198.51.100.1", "192.0.2.9"}, // untrusted peer: header ignored
	}
	for _, c := range cases {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = c.peer
		r.Header.Set("X-Forwarded-For", c.xff)
		if got := s.clientIP(r); got != c.want {
			t.Errorf("peer %s, X-Forwarded-For %q: %q, want %q", c.peer, c.xff, got, c.want)
		}
	}
}
