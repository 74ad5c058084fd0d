// Package server is the HTTP face of the Latch auth server: the JSON API
// under /v1, the JWKS, health and metrics endpoints.
package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/account"
	"github.com/latchauth/latch/admin"
	"github.com/latchauth/latch/auth"
	"github.com/latchauth/latch/challenge"
	"github.com/latchauth/latch/device"
	"github.com/latchauth/latch/oidc"
	"github.com/latchauth/latch/protect"
	"github.com/latchauth/latch/verifier"
	"github.com/latchauth/latch/verifier/revocation"
)

// MaxBodyBytes is the largest request body the API reads.
const MaxBodyBytes = 64 << 10

// RequestTimeout bounds the work of one request, store calls included: a
// store that stops answering without closing its connections (a network
// partition, a frozen server) costs a request this long, then a 503, never
// a hang that fills the connection pool. Revocation streams are exempt.
const RequestTimeout = 5 * time.Second

// Config holds the HTTP-level settings.
type Config struct {
	// Issuer is the server's issuer URL, the base of its metadata.
	Issuer string
	// Algorithm is the signing algorithm named in the metadata.
	Algorithm string
	// IDTokenAlgorithms are the algorithms id_tokens can be signed with
	// (id_token_signing_alg_values_supported).
	IDTokenAlgorithms []string
	// TrustedProxies are the networks whose X-Forwarded-For header is
	// believed when recording a client's IP address.
	TrustedProxies []netip.Prefix
	// JWKSMaxAge is the Cache-Control max-age of the JWKS response.
	JWKSMaxAge time.Duration
	// Cookies are the browser delivery modes' cookies (NewCookies).
	Cookies Cookies
	// AllowedOrigins may call the API from a browser with credentials
	// (CORS), and pass the Origin check of cookie-authenticated requests.
	AllowedOrigins []string
	// MetricsElsewhere leaves /metrics off this handler: it is served on
	// its own listener from Server.Metrics.
	MetricsElsewhere bool
	// MetricsToken, if not empty, is required as a Bearer token to read
	// /metrics.
	MetricsToken string
	// MaxStreamsPerClient bounds the revocation streams one client may
	// hold open at once; 0 means DefaultMaxStreamsPerClient.
	MaxStreamsPerClient int
}

// HSTS is the Strict-Transport-Security header of every response when the
// issuer is https: two years, subdomains included.
const HSTS = "max-age=63072000; includeSubDomains"

// Deps are the collaborators of a Server.
type Deps struct {
	Auth *auth.Service
	// Account, if not nil, is the account lifecycle: verification emails
	// at registration, /v1/auth/email/*, /v1/auth/password/* and the
	// /verify and /reset pages.
	Account *account.Service
	// Challenges, if not nil, are the step-up challenges of sign-ins the
	// guard holds back: POST /v1/auth/challenge completes one.
	Challenges *challenge.Service
	// Admin, if not nil, serves the admin API under /admin/v1/ (see
	// admin.go) to clients holding the admin scope.
	Admin *admin.Service
	// Console, if not nil, is the admin console (console.go): the setup
	// page, the pages under /admin and the rest of the admin API, for
	// administrators' sessions and admin clients.
	Console *Console
	// Verifier checks the access tokens of protected endpoints.
	Verifier *verifier.Verifier
	// JWKS returns the current JSON Web Key Set document.
	JWKS func() []byte
	// Checks are the dependencies /readyz reports on.
	Checks []Check
	// Store is the durable revocation feed served to remote verifiers.
	Store latch.RevocationStore
	// Revocations is the in-memory set; its cursor tells streams of news.
	Revocations *revocation.Set
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Pages, if not nil, serves the web pages: /login, /account, /demo,
	// their assets under /static/ and the browser SDK under /sdk/, and /
	// (see package web), and renders the OpenID Provider's pages.
	Pages Pages
	// OIDC, if not nil, is the OpenID Provider: /oauth2/authorize,
	// /oauth2/userinfo, /oauth2/logout, the authorization_code grant and
	// the SSO session of the sign-in page.
	OIDC *oidc.Provider
	// Devices, if not nil, recognises devices: on the routes that use it
	// (sign-in, challenge, password checks, /v1/devices) the checked
	// device cookie goes into auth.Device.DeviceID, a successful sign-in
	// from a browser sets the cookie, and /v1/devices lists, renames and
	// forgets the user's devices.
	Devices *device.Registry
	// Alerts, if not nil, answers sign-in alerts: /v1/alerts/preview and
	// /v1/alerts/answer (posted by the /alert page of Pages), and
	// /v1/alerts.
	Alerts *protect.Alerts
	// Registry receives the server's metrics and is exposed at /metrics.
	Registry *prometheus.Registry
	Log      *slog.Logger
}

// Check is a dependency reported by /readyz. When a Required check fails
// the instance is not ready (503); any other failing check leaves it
// ready but degraded.
type Check struct {
	Name     string
	Required bool
	Check    func(ctx context.Context) error
}

// Server routes and answers HTTP requests. It implements http.Handler.
type Server struct {
	cfg           Config
	auth          *auth.Service
	account       *account.Service
	challenges    *challenge.Service
	admin         *admin.Service
	console       *Console
	oidc          *oidc.Provider
	pages         Pages
	verifier      *verifier.Verifier
	jwks          func() []byte
	checks        []Check
	origins       map[string]bool
	log           *slog.Logger
	mux           *http.ServeMux
	handler       http.Handler
	metrics       http.Handler
	hsts          bool
	store         latch.RevocationStore
	revs          *revocation.Set
	now           func() time.Time
	streams       context.Context // cancelled by CloseStreams
	closeStreams  context.CancelFunc
	feedStreams   streamCounter // open revocation streams per client
	verifyLatency prometheus.Histogram
	requests      *prometheus.CounterVec
	authorizes    *prometheus.CounterVec
	deviceReg     *device.Registry
	alerts        *protect.Alerts
}

// New returns a Server with every route registered.
func New(cfg Config, d Deps) *Server {
	if d.Log == nil {
		d.Log = slog.Default()
	}
	if d.Registry == nil {
		d.Registry = prometheus.NewRegistry()
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	streams, closeStreams := context.WithCancel(context.Background())
	s := &Server{
		cfg: cfg, auth: d.Auth, account: d.Account, challenges: d.Challenges, admin: d.Admin, console: d.Console, oidc: d.OIDC, pages: d.Pages, verifier: d.Verifier, jwks: d.JWKS, checks: d.Checks, log: d.Log, mux: http.NewServeMux(),
		store: d.Store, revs: d.Revocations, now: d.Now, streams: streams, closeStreams: closeStreams,
		deviceReg: d.Devices, alerts: d.Alerts,
		origins: make(map[string]bool, len(cfg.AllowedOrigins)),
		verifyLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "latch_token_verification_seconds",
			Help:    "Time to verify an access token on a protected endpoint, signature and revocation check included.",
			Buckets: []float64{5e-6, 10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 5e-3},
		}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latch_http_requests_total", Help: "HTTP requests by route and status code.",
		}, []string{"route", "code"}),
	}
	s.authorizes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "latch_oidc_authorizations_total",
		Help: "Authorization requests by outcome: code (issued), login (sent to sign in), consent (shown), denied, error (to the client), page_error (not redirectable).",
	}, []string{"outcome"})
	d.Registry.MustRegister(s.verifyLatency, s.requests, s.authorizes)
	if u, err := url.Parse(cfg.Issuer); err == nil && u.Scheme == "https" {
		s.hsts = true
	}
	s.metrics = requireToken(cfg.MetricsToken, promhttp.HandlerFor(d.Registry, promhttp.HandlerOpts{Registry: d.Registry}))
	for _, o := range cfg.AllowedOrigins {
		s.origins[strings.TrimSuffix(o, "/")] = true
	}

	s.route("POST /v1/auth/register", s.register)
	s.route("POST /v1/auth/login", s.withDevice(s.login))
	if d.Challenges != nil {
		s.route("POST /v1/auth/challenge", s.withDevice(s.completeChallenge))
	}
	s.route("POST /v1/auth/refresh", s.refresh)
	s.route("POST /v1/auth/logout", s.logout)
	s.route("POST /v1/auth/logout-all", s.logoutAll)
	if d.Account != nil {
		s.route("POST /v1/auth/email/verify", s.verifyEmail)
		s.route("POST /v1/auth/email/resend", s.resendVerification)
		s.route("POST /v1/auth/password/forgot", s.forgotPassword)
		s.route("POST /v1/auth/password/reset", s.resetPassword)
		s.route("POST /v1/auth/unlock", s.unlockSignIn)
		s.route("POST /v1/auth/password/change", s.withDevice(s.protected(s.changePassword)))
	}
	s.route("GET /v1/me", s.protected(s.me))
	s.route("GET /v1/sessions", s.protected(s.sessions))
	s.route("GET /v1/events", s.protected(s.events))
	s.route("DELETE /v1/sessions/{id}", s.protected(s.deleteSession))
	s.route("GET /v1/consents", s.protected(s.consents))
	s.route("DELETE /v1/consents/{client}", s.protected(s.deleteConsent))
	// Sign-in alerts and devices.
	if d.Devices != nil {
		s.route("GET /v1/devices", s.withDevice(s.protected(s.devices)))
		s.route("PATCH,DELETE /v1/devices/{id}", s.protected(s.device))
	}
	if d.Alerts != nil {
		s.route("GET /v1/alerts", s.protected(s.alertList))
		s.route("POST /v1/alerts/preview", s.alertPreview)
		s.route("POST /v1/alerts/answer", s.alertAnswer)
		if d.Pages != nil {
			// The page of the emailed links; its script posts the link.
			s.mux.Handle("GET /alert", d.Pages)
		}
	}
	s.route("POST /oauth2/token", s.token)
	if d.OIDC != nil {
		s.route("GET,POST /oauth2/authorize", s.authorize)
		s.route("POST /oauth2/consent", s.consent)
		s.route("GET,POST /oauth2/userinfo", s.userinfo)
		s.route("GET,POST /oauth2/logout", s.endSession)
	}
	if d.Admin != nil {
		// The admin API: a receiver of the webhooks closes the loop.
		// Revoking all of a user's sessions is destructive: a console
		// session confirms the password first.
		s.route("POST /admin/v1/users/{id}/revoke", s.consoleAPI(true, s.adminRevokeUser))
		s.route("POST /admin/v1/sessions/{id}/revoke", s.consoleAPI(false, s.adminRevokeSession))
	}
	if d.Console != nil {
		s.routeConsole()
	}
	s.route("POST /oauth2/revoke", s.revoke)
	s.route("POST /oauth2/introspect", s.introspect)
	s.route("GET /.well-known/oauth-authorization-server", s.metadata)
	s.route("GET /.well-known/openid-configuration", s.metadata)
	s.route("GET /v1/revocations", s.revocations)
	s.route("GET /v1/revocations/stream", s.revocationStream)
	s.route("GET /.well-known/jwks.json", s.jwksDoc)
	s.route("GET /healthz", s.healthz)
	s.route("GET /readyz", s.readyz)
	if !cfg.MetricsElsewhere {
		s.mux.Handle("GET /metrics", s.metrics)
	}
	if d.Pages != nil {
		for _, p := range []string{"/login", "/account", "/demo", "/verify", "/reset", "/unlock", "/static/", "/sdk/", "/{$}"} {
			s.mux.Handle(p, d.Pages)
		}
	}
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint")
	})
	s.handler = s.recoverPanics(s.cors(s.mux))
	return s
}

// withDevice gives h the request's device (the checked device cookie, or
// a fresh id for a browser without one; see device.Registry.Middleware).
// Only the routes that recognise devices pay for the cookie's MAC and a
// fresh id: token verification, refresh and the feed do not.
func (s *Server) withDevice(h http.HandlerFunc) http.HandlerFunc {
	if s.deviceReg == nil {
		return h
	}
	return s.deviceReg.Middleware(h).ServeHTTP
}

// Metrics is the /metrics handler (with its token check, if any), for a
// listener of its own.
func (s *Server) Metrics() http.Handler { return s.metrics }

// requireToken lets through only requests with "Authorization: Bearer
// token", compared in constant time; an empty token requires nothing.
func requireToken(token string, next http.Handler) http.Handler {
	if token == "" {
		return next
	}
	want := sha256.Sum256([]byte(token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Hashing first makes the comparison independent of the
		// length of either value.
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		h := sha256.Sum256([]byte(got))
		if subtle.ConstantTimeCompare(h[:], want[:]) != 1 || !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="metrics"`)
			writeError(w, http.StatusUnauthorized, "invalid_token", "reading the metrics needs the token of metrics.token")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// CloseStreams ends every open revocation stream, so that a graceful
// shutdown does not wait for them. Register it with
// http.Server.RegisterOnShutdown.
func (s *Server) CloseStreams() { s.closeStreams() }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// route registers a "METHOD /path" pattern ("GET,POST /path" for more
// than one method), and for the same path (any other method) a JSON 405
// naming the allowed methods. ServeMux prefers the pattern with a method,
// so the fallback only sees the other methods.
func (s *Server) route(pattern string, h http.HandlerFunc) {
	methods, path, _ := strings.Cut(pattern, " ")
	// Streams and exports run as long as they need.
	stream := strings.HasSuffix(path, "/stream") || strings.HasSuffix(path, "/export")
	var allow []string
	for _, method := range strings.Split(methods, ",") {
		s.mux.HandleFunc(method+" "+path, func(w http.ResponseWriter, r *http.Request) {
			if !textPath(r.URL.Path) {
				// No id of Latch's holds such bytes, and PostgreSQL
				// refuses them in a lookup: nothing is there.
				writeError(w, http.StatusNotFound, "not_found", "no such endpoint")
				return
			}
			if !stream {
				ctx, cancel := context.WithTimeout(r.Context(), RequestTimeout)
				defer cancel()
				r = r.WithContext(ctx)
			}
			sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
			h(sw, r)
			s.requests.WithLabelValues(path, strconv.Itoa(sw.code)).Inc()
		})
		allow = append(allow, method)
		if method == http.MethodGet {
			allow = append(allow, http.MethodHead)
		}
	}
	s.mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "use "+strings.ReplaceAll(methods, ",", " or "))
	})
}

// textPath reports whether a request's decoded path is UTF-8 text without
// control characters, as every path value of Latch's routes (a session,
// device, user or client id) is.
func textPath(p string) bool {
	return utf8.ValidString(p) && !strings.ContainsFunc(p, unicode.IsControl)
}

// statusWriter remembers the status code for the request counter.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// recoverPanics turns a panic into a logged 500 instead of a dropped
// connection. No input is meant to get here; tests assert that none does.
func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("panic serving request", "method", r.Method, "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
				writeError(w, http.StatusInternalServerError, "server_error", "internal error")
			}
		}()
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if s.hsts {
			w.Header().Set("Strict-Transport-Security", HSTS)
		}
		next.ServeHTTP(w, r)
	})
}

type claimsHandler func(w http.ResponseWriter, r *http.Request, c *verifier.Claims)

// protected requires a valid access token in the Authorization header and
// passes its claims on. It answers 401 with WWW-Authenticate (RFC 6750), or
// 400 for a malformed Authorization header.
func (s *Server) protected(h claimsHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, ok := s.authenticate(w, r)
		if ok && s.accountAccess(w, r, c) {
			h(w, r, c)
		}
	}
}

// accountAccess refuses a third-party app's token on the account API with
// 403 insufficient_scope (see auth.Service.AccountAccess), and reports
// whether the request may go on. A client's own token (no session) is
// left to the handlers, which say what it lacks.
func (s *Server) accountAccess(w http.ResponseWriter, r *http.Request, c *verifier.Claims) bool {
	if c.SessionID == "" {
		return true
	}
	ok, err := s.auth.AccountAccess(r.Context(), c)
	if err != nil {
		s.fail(w, r, err)
		return false
	}
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope", error_description="an app's access token cannot use the account API"`)
		writeError(w, http.StatusForbidden, "insufficient_scope", "this access token was issued to a third-party app; the account API needs a token from Latch's own sign-in or a first-party app")
		return false
	}
	return true
}

// authenticate verifies the access token of r (Authorization: Bearer, or
// the access cookie of the cookie delivery mode), or writes the RFC 6750
// answer and reports false. A cookie-authenticated request with an unsafe
// method must also carry the session's CSRF token and come from our own
// site (or an allowed origin); otherwise 403 csrf_failed. It records the
// verification latency.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (*verifier.Claims, bool) {
	start := time.Now()
	c, ok := s.verifier.Authenticate(w, r)
	s.verifyLatency.Observe(time.Since(start).Seconds())
	if !ok {
		return nil, false
	}
	if r.Header.Get("Authorization") == "" && !safeMethod(r.Method) && !s.browserRequestOK(r, c.SessionID) {
		csrfFailed(w)
		return nil, false
	}
	return c, true
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// deviceOf describes the device of a request: its IP (from
// X-Forwarded-For only when the peer is a trusted proxy) and user agent.
func (s *Server) deviceOf(r *http.Request) auth.Device {
	// A User-Agent is any bytes a client sends; sessions, devices and
	// events store it as text, which PostgreSQL refuses unless UTF-8.
	return auth.Device{IP: s.clientIP(r), UserAgent: strings.ToValidUTF8(r.UserAgent(), "\uFFFD"), DeviceID: device.ID(r.Context())}
}

func (s *Server) clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	peer = peer.Unmap()
	if !s.trusted(peer) {
		return peer.String()
	}
	// Walk X-Forwarded-For from the right: the first address not of a
	// trusted proxy is the client.
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := hopAddr(hops[i])
		if !ok {
			break
		}
		a = a.Unmap()
		if !s.trusted(a) {
			return a.String()
		}
		peer = a
	}
	return peer.String()
}

// hopAddr reads the address of one X-Forwarded-For entry, written bare
// (192.0.2.1, 2001:db8::1) or, as some proxies append it, with a port
// (192.0.2.1:4711, [2001:db8::1]:4711) or in brackets ([2001:db8::1]).
func hopAddr(hop string) (netip.Addr, bool) {
	hop = strings.TrimSpace(hop)
	if a, err := netip.ParseAddr(hop); err == nil {
		return a, true
	}
	if ap, err := netip.ParseAddrPort(hop); err == nil {
		return ap.Addr(), true
	}
	if inner, ok := strings.CutPrefix(hop, "["); ok {
		if inner, ok := strings.CutSuffix(inner, "]"); ok {
			a, err := netip.ParseAddr(inner)
			return a, err == nil
		}
	}
	return netip.Addr{}, false
}

func (s *Server) trusted(a netip.Addr) bool {
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// fail answers an error from the auth service. Errors the client caused
// were handled by the caller; what is left is the server's own trouble.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) && !errors.Is(r.Context().Err(), context.DeadlineExceeded) {
		return // the client went away
	}
	s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	w.Header().Set("Retry-After", "1")
	writeError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the server cannot answer right now; retry shortly")
}
