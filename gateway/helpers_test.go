package gateway

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchauth/latch/verifier"
	"github.com/latchauth/latch/verifier/revocation"
)

const testIssuer = "http://127.0.0.1:1" // never contacted: keys are static

// authority mints access tokens as a Latch server would and holds the
// revocation set the gateway's verifiers consult.
type authority struct {
	key  ed25519.PrivateKey
	revs *revocation.Set
	n    atomic.Int64
}

func newAuthority(t *testing.T) *authority {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &authority{key: k, revs: revocation.NewSet()}
}

// verifier returns a local verifier for aud.
func (a *authority) verifier(t *testing.T, aud string) *verifier.Verifier {
	t.Helper()
	v, err := verifier.New(verifier.Config{
		Issuer:      testIssuer,
		Audience:    aud,
		Keys:        verifier.StaticKeys{"k1": {Algorithm: "EdDSA", Public: a.key.Public()}},
		Revocations: a.revs,
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// token mints an access token for alice with scope, audience testIssuer
// and a 5-minute lifetime; mods change the claims.
func (a *authority) token(scope string, mods ...func(map[string]any)) string {
	now := time.Now()
	c := map[string]any{
		"iss": testIssuer, "sub": "alice", "aud": testIssuer, "client_id": "app",
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		"jti": fmt.Sprintf("jti-%d", a.n.Add(1)),
		"sid": "sid-1", "scope": scope,
	}
	for _, m := range mods {
		m(c)
	}
	enc := base64.RawURLEncoding
	h, _ := json.Marshal(map[string]string{"alg": "EdDSA", "typ": "at+jwt", "kid": "k1"})
	b, _ := json.Marshal(c)
	in := enc.EncodeToString(h) + "." + enc.EncodeToString(b)
	return in + "." + enc.EncodeToString(ed25519.Sign(a.key, []byte(in)))
}

// fakeSessions is a Sessions with sessions keyed by cookie value.
type fakeSessions struct {
	cookie  string
	mu      sync.Mutex
	tokens  map[string]string // cookie value → access token
	err     error             // returned by every Lookup when set
	lookups atomic.Int64
	authHit atomic.Int64
}

func (f *fakeSessions) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.authHit.Add(1)
	w.Header().Set("Content-Type", "text/plain")
	io.WriteString(w, "bff "+r.URL.Path+" csrf="+r.Header.Get(HeaderCSRF))
}

func (f *fakeSessions) Lookup(r *http.Request) (*BrowserSession, error) {
	f.lookups.Add(1)
	if f.err != nil {
		return nil, f.err
	}
	c, err := r.Cookie(f.cookie)
	if err != nil {
		return nil, ErrNoSession
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	tok, ok := f.tokens[c.Value]
	if !ok {
		return nil, ErrNoSession
	}
	return &BrowserSession{ID: "s-" + c.Value, AccessToken: tok}, nil
}

// echo is an upstream that answers with what it received.
type echoed struct {
	Method string      `json:"method"`
	Path   string      `json:"path"`
	Raw    string      `json:"raw"`
	Header http.Header `json:"header"`
	Host   string      `json:"host"`
	Body   int64       `json:"body"`
}

func echoUpstream(t *testing.T) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(echoed{Method: r.Method, Path: r.URL.Path, Raw: r.URL.RawPath, Header: r.Header, Host: r.Host, Body: n})
	}))
	t.Cleanup(s.Close)
	return s
}

// harness is a gateway in front of upstreams, on 127.0.0.1.
type harness struct {
	t        *testing.T
	gw       *Gateway
	srv      *httptest.Server
	url      string
	auth     *authority
	sessions *fakeSessions
	signer   *Ed25519Signer
}

// newHarness starts a gateway with cfg's routes (the issuer, client and
// defaults filled in). Routes on auth token or session get verifiers;
// sessions are fakeSessions.
func newHarness(t *testing.T, routes []Route, mod ...func(*Config, *Deps)) *harness {
	t.Helper()
	h := &harness{t: t, auth: newAuthority(t)}
	srv := httptest.NewUnstartedServer(nil)
	h.url = "http://" + srv.Listener.Addr().String()
	cfg := Defaults()
	cfg.Issuer = testIssuer
	cfg.ClientID = "gw"
	cfg.ClientSecret = "secret"
	cfg.PublicURL = h.url
	cfg.Routes = routes
	h.sessions = &fakeSessions{cookie: DefaultCookie, tokens: map[string]string{}}
	seed := make([]byte, 32)
	rand.Read(seed)
	var err error
	if h.signer, err = NewEd25519Signer(seed); err != nil {
		t.Fatal(err)
	}
	d := Deps{
		Verifier: h.auth.verifier(t, testIssuer),
		Sessions: h.sessions,
		Signer:   h.signer,
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	for _, m := range mod {
		m(&cfg, &d)
	}
	if d.Verifiers == nil {
		d.Verifiers = map[string]*verifier.Verifier{}
	}
	for _, r := range cfg.Routes {
		if r.Audience != "" && d.Verifiers[r.Audience] == nil {
			d.Verifiers[r.Audience] = h.auth.verifier(t, r.Audience)
		}
	}
	if h.gw, err = New(cfg, d); err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = h.gw
	srv.Start()
	t.Cleanup(srv.Close)
	h.srv = srv
	return h
}

// do sends a request to the gateway; hdr lines are "Name: value".
func (h *harness) do(method, path string, body io.Reader, hdr ...string) *http.Response {
	h.t.Helper()
	req, err := http.NewRequest(method, h.url+path, body)
	if err != nil {
		h.t.Fatal(err)
	}
	for _, l := range hdr {
		k, v, _ := strings.Cut(l, ":")
		req.Header.Add(k, strings.TrimSpace(v))
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { res.Body.Close() })
	return res
}

// echo decodes an echo upstream's answer, failing unless it is 200.
func echoOf(t *testing.T, res *http.Response) echoed {
	t.Helper()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200: %s", res.StatusCode, b)
	}
	var e echoed
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("not an echo: %v: %s", err, b)
	}
	return e
}

// errorOf returns the status and the JSON error code of res.
func errorOf(t *testing.T, res *http.Response) (int, string) {
	t.Helper()
	b, _ := io.ReadAll(res.Body)
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("status %d: body is not JSON: %q", res.StatusCode, b)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	return res.StatusCode, e.Error
}

var errStoreDown = errors.New("store down")

// idRoute is a route forwarding identity headers and the assertion.
func idRoute(path, upstream, auth string, scopes ...string) Route {
	r := Route{Path: path, Upstream: upstream, Auth: auth, Scopes: scopes}
	r.Identity.Headers = true
	r.Identity.Assertion = true
	return r
}

func httptestServer(t *testing.T, f http.HandlerFunc) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(f)
	t.Cleanup(s.Close)
	return s
}

func readAll(t *testing.T, res *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
