package gateway

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/latchauth/latch/verifier"
)

// cannedTransport answers every request with the same small 200 response,
// without a network: what is timed is the proxy's own work.
type cannedTransport struct{}

const cannedBody = `{"ok":true}`

func (cannedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	return &http.Response{
		StatusCode: http.StatusOK, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        http.Header{"Content-Type": {"application/json"}, "Content-Length": {"11"}},
		Body:          io.NopCloser(strings.NewReader(cannedBody)),
		ContentLength: int64(len(cannedBody)),
		Request:       r,
	}, nil
}

// BenchmarkServeHTTP is one proxied GET with a bearer token on an auth:
// token route (the token already verified once, as on every later
// request of a client), beside a bare httputil.ReverseProxy over the same
// canned transport: the difference is what the gateway adds to any Go
// proxy (routing, header rules, token check, metrics, route timeout).
func BenchmarkServeHTTP(b *testing.B) {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	v, err := verifier.New(verifier.Config{
		Issuer: testIssuer, Audience: testIssuer,
		Keys: verifier.StaticKeys{"k1": {Algorithm: "EdDSA", Public: key.Public()}},
	})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	enc := base64.RawURLEncoding
	h, _ := json.Marshal(map[string]string{"alg": "EdDSA", "typ": "at+jwt", "kid": "k1"})
	c, _ := json.Marshal(map[string]any{"iss": testIssuer, "sub": "alice", "aud": testIssuer, "client_id": "app",
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "jti": "j1", "sid": "s1", "scope": "orders:read"})
	in := enc.EncodeToString(h) + "." + enc.EncodeToString(c)
	token := in + "." + enc.EncodeToString(ed25519.Sign(key, []byte(in)))

	cfg := Defaults()
	cfg.Issuer, cfg.ClientID, cfg.ClientSecret, cfg.PublicURL = testIssuer, "gw", "secret", "http://127.0.0.1:8090"
	cfg.Routes = []Route{{Path: "/api/", Upstream: "http://127.0.0.1:9001", Auth: AuthToken, Scopes: []string{"orders:read"}}}
	gw, err := New(cfg, Deps{Verifier: v, Transport: cannedTransport{}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	target, _ := url.Parse("http://127.0.0.1:9001")
	bare := &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(target); pr.SetXForwarded() },
		Transport: cannedTransport{},
	}
	run := func(b *testing.B, hd http.Handler, auth string) {
		b.ReportAllocs()
		for b.Loop() {
			req := httptest.NewRequest(http.MethodGet, "http://127.0.0.1:8090/api/orders", nil)
			req.Header.Set("User-Agent", "bench")
			req.Header.Set("Accept", "*/*")
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			rec := httptest.NewRecorder()
			hd.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK || rec.Body.String() != cannedBody {
				b.Fatalf("%d %s", rec.Code, rec.Body)
			}
		}
	}
	b.Run("bare-reverseproxy", func(b *testing.B) { run(b, bare, "Bearer "+token) })
	b.Run("gateway-token", func(b *testing.B) { run(b, gw, "Bearer "+token) })
}
