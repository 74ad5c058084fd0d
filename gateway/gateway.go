package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/latchauth/latch/verifier"
)

// Deps are what a Gateway is built from besides its configuration.
type Deps struct {
	// Verifier checks bearer tokens (and the browser sessions' access
	// tokens) for Config.Audience: verifier.NewRemote against the
	// issuer's JWKS and revocation feed. Required when a route uses auth
	// token or session.
	Verifier *verifier.Verifier
	// Verifiers holds a verifier for each other audience named by a
	// route's audience key, by audience.
	Verifiers map[string]*verifier.Verifier
	// Sessions are the browser sessions (package bff): /auth/* and the
	// lookup of a request's session. Required when a route uses auth
	// session; without it, token routes accept bearer tokens only.
	Sessions Sessions
	// Signer signs identity assertions and publishes their keys at
	// /.well-known/jwks.json. Required when a route sets
	// identity.assertion.
	Signer AssertionSigner
	// Ready are extra readiness checks for /readyz (the session store);
	// the verifiers' freshness is always checked.
	Ready []ReadyCheck
	// Logger receives request errors (never a token or a cookie); nil
	// means slog.Default().
	Logger *slog.Logger
	// Registry receives the gateway's metrics and is served at /metrics;
	// nil means a new registry.
	Registry *prometheus.Registry
	// Transport carries requests upstream; nil means a transport tuned for
	// proxying (see NewTransport).
	Transport http.RoundTripper
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// ReadyCheck is one dependency /readyz checks.
type ReadyCheck struct {
	// Name is shown in /readyz's answer when the check fails.
	Name string
	// Check returns nil when the dependency is usable.
	Check func(ctx context.Context) error
}

// Gateway is the entry point: an http.Handler that serves the gateway's
// own endpoints and proxies every other request to its route's upstream
// after authenticating it as the route requires.
type Gateway struct {
	cfg        Config
	origin     string // PublicURL's scheme://host
	publicHost string // PublicURL's host[:port]
	routes     []*route
	sessions   Sessions
	signer     AssertionSigner
	verifiers  map[string]*verifier.Verifier
	ready      []ReadyCheck
	log        *slog.Logger
	now        func() time.Time
	strip      *stripper
	trusted    trusted
	cookie     string
	metrics    *metrics
	metricsH   http.Handler
	// afterFunc starts a route timeout (time.AfterFunc; tests fire it).
	afterFunc func(time.Duration, func()) stopper
}

// stopper is the part of *time.Timer a route timeout uses.
type stopper interface{ Stop() bool }

// route is a configured route ready to serve.
type route struct {
	Route
	target   *url.URL
	lower    string // Path in lower case, for matching
	audience string // the origin of the upstream: an assertion's aud
	verifier *verifier.Verifier
	scopes   string // the route's scopes joined by spaces, for challenges
	proxy    *httputil.ReverseProxy
}

// New returns the gateway for cfg, or an error listing what is wrong.
func New(cfg Config, d Deps) (*Gateway, error) {
	cfg.Normalize()
	if err := cfg.Check(); err != nil {
		return nil, fmt.Errorf("gateway: configuration:\n%w", err)
	}
	g := &Gateway{
		cfg:       cfg,
		sessions:  d.Sessions,
		signer:    d.Signer,
		ready:     d.Ready,
		log:       d.Logger,
		now:       d.Now,
		strip:     newStripper(cfg.StripHeaders),
		trusted:   newTrusted(cfg.TrustedProxies),
		cookie:    cfg.Session.Cookie,
		verifiers: map[string]*verifier.Verifier{},
		afterFunc: func(d time.Duration, f func()) stopper { return time.AfterFunc(d, f) },
	}
	if g.log == nil {
		g.log = slog.Default()
	}
	if g.now == nil {
		g.now = time.Now
	}
	pu, _ := url.Parse(cfg.PublicURL)
	g.origin = pu.Scheme + "://" + pu.Host
	g.publicHost = pu.Host
	reg := d.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	g.metrics = m
	g.metricsH = promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
	transport := d.Transport
	if transport == nil {
		transport = NewTransport()
	}
	if d.Verifier != nil && cfg.Audience != "" {
		g.verifiers[cfg.Audience] = d.Verifier
	}
	for aud, v := range d.Verifiers {
		if v != nil {
			g.verifiers[aud] = v
		}
	}
	errorLog := slog.NewLogLogger(g.log.Handler(), slog.LevelWarn)
	var errs []error
	for i, rc := range cfg.Routes {
		rt := &route{Route: rc, lower: strings.ToLower(rc.Path), scopes: strings.Join(rc.Scopes, " ")}
		rt.target, _ = url.Parse(rc.Upstream)
		rt.audience = rt.target.Scheme + "://" + rt.target.Host
		if rc.Auth != AuthNone {
			if rt.verifier = g.verifiers[rc.Audience]; rt.verifier == nil {
				errs = append(errs, fmt.Errorf("routes[%d]: no verifier for the audience %q (Deps.Verifier or Deps.Verifiers)", i, rc.Audience))
			}
		}
		if rc.Auth == AuthSession && d.Sessions == nil {
			errs = append(errs, fmt.Errorf("routes[%d]: auth session needs the browser sessions (Deps.Sessions)", i))
		}
		if rc.Identity.Assertion && d.Signer == nil {
			errs = append(errs, fmt.Errorf("routes[%d]: identity.assertion needs an assertion signer (Deps.Signer)", i))
		}
		rt.proxy = &httputil.ReverseProxy{
			Rewrite:        g.rewrite,
			Transport:      transport,
			ModifyResponse: g.modifyResponse,
			ErrorHandler:   g.proxyError,
			ErrorLog:       errorLog,
			BufferPool:     copyBuffers,
		}
		g.routes = append(g.routes, rt)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	// Longest prefix first.
	slices.SortStableFunc(g.routes, func(a, b *route) int { return len(b.Path) - len(a.Path) })
	return g, nil
}

// hasControl reports whether p holds an ASCII control character (a NUL
// decoded from %00 ends a path early in C-based upstreams).
func hasControl(p string) bool {
	for i := 0; i < len(p); i++ {
		if p[i] < 0x20 || p[i] == 0x7f {
			return true
		}
	}
	return false
}

// copyBuffers lends the proxies their body-copying buffers. Without a
// pool, httputil.ReverseProxy allocates 32 KiB for every response: most
// of what a proxied request allocates, and so most of the garbage
// collector's work at a high request rate.
var copyBuffers = &bufferPool{}

// bufferPool is an httputil.BufferPool of 32 KiB buffers.
type bufferPool struct{ p sync.Pool }

// Get returns a 32 KiB buffer.
func (b *bufferPool) Get() []byte {
	if buf, ok := b.p.Get().(*[]byte); ok {
		return *buf
	}
	return make([]byte, 32<<10)
}

// Put returns a buffer from Get.
func (b *bufferPool) Put(buf []byte) {
	if cap(buf) != 32<<10 {
		return
	}
	buf = buf[:cap(buf)]
	b.p.Put(&buf)
}

// NewTransport returns the transport New uses by default: the standard
// one with more idle connections per upstream and without transparent
// compression (the client's Accept-Encoding passes through).
func NewTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 256
	t.DisableCompression = true
	return t
}

// Config returns the gateway's configuration, defaults filled in.
func (g *Gateway) Config() Config { return g.cfg }

// match returns the route of path p (longest prefix on segment
// boundaries), or nil.
//
// Matching ignores case, so that /ADMIN/ is held to /admin/'s rules:
// many upstreams (ASP.NET, IIS, case-insensitive file systems) serve it
// as /admin/.
func (g *Gateway) match(p string) *route {
	p = strings.ToLower(p)
	for _, rt := range g.routes {
		switch {
		case rt.lower == "/":
			return rt
		case strings.HasSuffix(rt.lower, "/"):
			if strings.HasPrefix(p, rt.lower) || p+"/" == rt.lower {
				return rt
			}
		case p == rt.lower || strings.HasPrefix(p, rt.lower+"/"):
			return rt
		}
	}
	return nil
}

// ctxKey carries a proxied request's state from ServeHTTP to the
// ReverseProxy hooks.
type ctxKey struct{}

// exchange is the state of one proxied request.
type exchange struct {
	route    *route
	id       *identity
	start    time.Time
	timer    stopper
	timedOut atomic.Bool
	rec      *recorder
}

// identity is who a request was authenticated as.
type identity struct {
	claims *verifier.Claims
	// token is sent upstream as Authorization: Bearer when it came from
	// the browser session (a bearer token passes through untouched).
	token string
}

// ServeHTTP serves the gateway's endpoints and proxies everything else.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := &recorder{ResponseWriter: w}
	label := "none"
	defer func() {
		code := rec.code
		if code == 0 {
			code = 499 // the client went away before an answer
		}
		g.metrics.requests.WithLabelValues(label, codeLabel(code)).Inc()
	}()
	w = rec
	p := r.URL.Path
	if !strings.HasPrefix(p, "/") || !canonicalPath(p) || strings.ContainsAny(p, "\\;") || strings.ContainsRune(r.URL.RawPath, '\\') || hasControl(p) {
		// /public/../api/ must not reach /api/ with /public/'s rules; nor
		// /public/..;/api/, which servlet stacks read as /api/ (matrix
		// parameters are path syntax to them), nor a NUL.
		writeJSON(w, http.StatusBadRequest, "invalid_request", "the request path is not canonical")
		return
	}
	switch {
	case p == "/healthz":
		label = p
		writeJSONBody(w, http.StatusOK, map[string]string{"status": "ok"})
		return
	case p == "/readyz":
		label = p
		g.serveReady(w, r)
		return
	case p == "/metrics":
		label = p
		g.metricsH.ServeHTTP(w, r)
		return
	case p == "/.well-known/jwks.json":
		label = p
		if g.signer == nil {
			writeJSON(w, http.StatusNotFound, "not_found", "")
			return
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		w.Write(g.signer.JWKS())
		return
	case p == "/auth" || strings.HasPrefix(p, "/auth/"):
		label = "/auth/"
		if g.sessions == nil {
			writeJSON(w, http.StatusNotFound, "not_found", "browser sessions are not enabled on this gateway")
			return
		}
		g.sessions.ServeHTTP(w, r)
		return
	}
	rt := g.match(p)
	if rt == nil {
		writeJSON(w, http.StatusNotFound, "not_found", "no route serves this path")
		return
	}
	label = rt.Path
	// Read the CSRF header before the identity headers (X-Latch-*) go.
	csrf := g.csrfOK(r)
	g.strip.strip(r.Header)
	var id *identity
	switch rt.Auth {
	case AuthToken:
		var ok bool
		if id, ok = g.authToken(w, r, rt, csrf); !ok {
			return
		}
	case AuthSession:
		var ok bool
		if id, ok = g.authSession(w, r, rt, csrf); !ok {
			return
		}
	}
	g.proxy(w, r, rt, id, rec)
}

// proxy sends r to rt's upstream under the route's timeout.
func (g *Gateway) proxy(w http.ResponseWriter, r *http.Request, rt *route, id *identity, rec *recorder) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	ex := &exchange{route: rt, id: id, start: g.now(), rec: rec}
	if t := rt.Timeout.D(); t > 0 {
		ex.timer = g.afterFunc(t, func() {
			ex.timedOut.Store(true)
			cancel()
		})
		defer ex.timer.Stop()
	}
	rt.proxy.ServeHTTP(w, r.WithContext(context.WithValue(ctx, ctxKey{}, ex)))
}

// rewrite builds the upstream request: the route's URL and path, the
// forwarding headers, no gateway cookie, and the identity.
func (g *Gateway) rewrite(pr *httputil.ProxyRequest) {
	ex := pr.In.Context().Value(ctxKey{}).(*exchange)
	rt := ex.route
	if rt.StripPrefix {
		prefix := strings.TrimSuffix(rt.Path, "/")
		u := pr.Out.URL
		u.Path = strings.TrimPrefix(u.Path, prefix)
		if !strings.HasPrefix(u.Path, "/") {
			u.Path = "/" + u.Path
		}
		if u.RawPath != "" {
			rest, ok := strings.CutPrefix(u.RawPath, prefix)
			if !strings.HasPrefix(rest, "/") {
				rest = "/" + rest
			}
			if u.RawPath = rest; !ok {
				u.RawPath = ""
			}
		}
	}
	pr.SetURL(rt.target)
	g.trusted.setForwarded(pr.In, pr.Out, g.publicHost)
	h := pr.Out.Header
	dropCookies(h, g.cookie)
	if ex.id == nil {
		return
	}
	c := ex.id.claims
	if ex.id.token != "" {
		h.Set("Authorization", "Bearer "+ex.id.token)
	}
	if rt.Identity.Headers {
		h.Set(HeaderUser, c.Subject)
		h.Set(HeaderScopes, c.Scope)
		if c.SessionID != "" {
			h.Set(HeaderSession, c.SessionID)
		}
		if c.ClientID != "" {
			h.Set(HeaderClient, c.ClientID)
		}
	}
	if rt.Identity.Assertion {
		now := g.now()
		a, err := g.signer.Sign(Assertion{
			Issuer:    g.cfg.PublicURL,
			Audience:  rt.audience,
			Subject:   c.Subject,
			SessionID: c.SessionID,
			ClientID:  c.ClientID,
			Scope:     c.Scope,
			IssuedAt:  now.Unix(),
			Expiry:    now.Add(AssertionTTL).Unix(),
			ID:        newJTI(),
		})
		if err != nil {
			// The upstream then sees no assertion and refuses; log why.
			g.log.Error("gateway: signing an identity assertion", "route", rt.Path, "err", err)
			return
		}
		h.Set(HeaderAssertion, a)
	}
}

// modifyResponse ends the route timeout for responses that stream
// (WebSockets, event streams), records the upstream latency and keeps
// upstreams from setting the gateway's cookie.
func (g *Gateway) modifyResponse(res *http.Response) error {
	ex, _ := res.Request.Context().Value(ctxKey{}).(*exchange)
	if ex == nil {
		return nil
	}
	g.metrics.upstream.WithLabelValues(ex.route.Path).Observe(g.now().Sub(ex.start).Seconds())
	if ex.timer != nil && streaming(res) {
		ex.timer.Stop()
	}
	dropSetCookie(res.Header, g.cookie)
	return nil
}

// streaming reports whether a response is a protocol upgrade or an
// event stream, which the route timeout must not cut.
func streaming(res *http.Response) bool {
	if res.StatusCode == http.StatusSwitchingProtocols {
		return true
	}
	ct, _, _ := strings.Cut(res.Header.Get("Content-Type"), ";")
	return strings.EqualFold(strings.TrimSpace(ct), "text/event-stream")
}

// proxyError answers a request whose upstream failed: 504 on the route
// timeout, 502 otherwise, in JSON, without the upstream's details.
func (g *Gateway) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	ex, _ := r.Context().Value(ctxKey{}).(*exchange)
	route := ""
	if ex != nil {
		route = ex.route.Path
		g.metrics.upstream.WithLabelValues(route).Observe(g.now().Sub(ex.start).Seconds())
	}
	switch {
	case ex != nil && ex.timedOut.Load():
		g.log.Warn("gateway: upstream timed out", "route", route, "timeout", ex.route.Timeout.D())
		writeJSON(w, http.StatusGatewayTimeout, "gateway_timeout", "the upstream did not answer in time")
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		// The client went away; there is no one to answer.
	default:
		g.log.Warn("gateway: upstream unreachable", "route", route, "err", err)
		writeJSON(w, http.StatusBadGateway, "bad_gateway", "the upstream is unavailable")
	}
}

// serveReady answers /readyz: 200 when every verifier's revocation data
// is fresh and every ready check passes, 503 naming the failures.
func (g *Gateway) serveReady(w http.ResponseWriter, r *http.Request) {
	var failing []string
	auds := make([]string, 0, len(g.verifiers))
	for aud := range g.verifiers {
		auds = append(auds, aud)
	}
	slices.Sort(auds)
	for _, aud := range auds {
		if !g.verifiers[aud].Fresh() {
			failing = append(failing, "revocations("+aud+")")
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	for _, c := range g.ready {
		if err := c.Check(ctx); err != nil {
			g.log.Warn("gateway: not ready", "check", c.Name, "err", err)
			failing = append(failing, c.Name)
		}
	}
	if len(failing) > 0 {
		writeJSONBody(w, http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "failing": failing})
		return
	}
	writeJSONBody(w, http.StatusOK, map[string]string{"status": "ready"})
}

// writeJSON answers {"error": code, "error_description": desc} with
// Cache-Control: no-store.
func writeJSON(w http.ResponseWriter, status int, code, desc string) {
	writeJSONBody(w, status, struct {
		Error       string `json:"error"`
		Description string `json:"error_description,omitempty"`
	}{code, desc})
}

func writeJSONBody(w http.ResponseWriter, status int, body any) {
	b, _ := json.Marshal(body)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// recorder remembers the status code of a response. It unwraps, so that
// http.ResponseController (Flush, Hijack for upgrades) reaches the real
// writer.
type recorder struct {
	http.ResponseWriter
	code int
}

func (r *recorder) WriteHeader(code int) {
	if r.code == 0 || r.code < 200 && code >= 200 {
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Flush sends buffered data to the client.
func (r *recorder) Flush() {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	http.NewResponseController(r.ResponseWriter).Flush()
}

// Unwrap returns the underlying writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
