// Package bff is the backend-for-frontend of `latch gateway`: it signs
// browsers in with the authorization-code flow (PKCE S256, as a
// confidential client of the Latch auth server), keeps their tokens on the
// server, sealed, in a durable store, and gives the browser one opaque
// cookie holding 256 random bits and nothing else. It refreshes access
// tokens once per session across every concurrent request and every
// gateway instance (a lease in the store), ends sessions on logout,
// back-channel logout and revocation, and implements gateway.Sessions.
package bff

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/gateway"
	"github.com/latchauth/latch/redis"
	"github.com/latchauth/latch/verifier"
	"github.com/prometheus/client_golang/prometheus"
)

// Sealer encrypts tokens at rest and keys the MACs of the package. A
// keys.KEK, derived for the gateway's sessions (kek.Derive("gateway
// sessions")), is one.
type Sealer interface {
	// Seal encrypts and authenticates plaintext, bound to aad.
	Seal(plaintext, aad []byte) []byte
	// Open reverses Seal with the same aad.
	Open(sealed, aad []byte) ([]byte, error)
	// MAC returns a keyed MAC of msg for purpose.
	MAC(purpose string, msg []byte) []byte
}

// Deps are what a Manager needs besides its configuration.
type Deps struct {
	// Store keeps the sessions (the gateway's own SQLite or PostgreSQL
	// store). Required.
	Store latch.GatewaySessionStore
	// Sealer seals the tokens and the sign-in state. Required.
	Sealer Sealer
	// Verifier checks access tokens; built with verifier.NewRemote (the
	// revocation feed included), so that a session revoked at the auth
	// server stops verifying. Required.
	Verifier *verifier.Verifier
	// HTTPClient talks to the auth server (discovery, JWKS, token,
	// revocation endpoints); nil means a client with a 10 s timeout.
	HTTPClient *http.Client
	// Keys, if not nil, are the auth server's signing keys, for id_tokens
	// and logout tokens; nil means a JWKS cache of the discovered jwks_uri.
	Keys verifier.KeySet
	// Fanout, if not nil, wakes the waiters for a refresh made by another
	// gateway instance at once; without it they poll the store.
	Fanout *redis.Fanout
	// Log receives what happens (never a token or cookie value); nil
	// means slog.Default().
	Log *slog.Logger
	// Registry receives the metrics; nil means none are registered.
	Registry prometheus.Registerer
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Defaults of the session settings left zero in the configuration: the
// gateway's (docs/gateway.md), said once in package gateway.
const (
	DefaultIdleTimeout   = gateway.DefaultIdleTimeout
	DefaultAbsoluteTTL   = gateway.DefaultAbsoluteTTL
	DefaultRefreshBefore = gateway.DefaultRefreshBefore
	// DefaultCookie is the session cookie's name on https and loopback
	// origins; plain http elsewhere drops the __Host- prefix, which
	// browsers accept only on secure origins.
	DefaultCookie = gateway.DefaultCookie
)

// Timing of sign-in and refresh.
const (
	// loginTTL bounds a sign-in: its state cookie lives this long.
	loginTTL = 10 * time.Minute
	// leaseTTL is how long a refresh lease lasts unless renewed; the
	// refresher renews it every leaseTTL/3.
	leaseTTL = 6 * time.Second
	// waitTimeout bounds a request's wait for another's refresh.
	waitTimeout = 5 * time.Second
	// touchEvery: LastSeenAt is written at most this often.
	touchEvery = time.Minute
	// refreshTimeout bounds one call to the token endpoint.
	refreshTimeout = 10 * time.Second
	// storeTimeout bounds one call to the session store on the request
	// path: a store that stops answering (a network partition, a frozen
	// server) makes a request answer 503, never hang.
	storeTimeout = 3 * time.Second
)

// Manager is the gateway's browser sessions: it implements
// gateway.Sessions. It is safe for concurrent use.
type Manager struct {
	cfg       gateway.Config
	store     latch.GatewaySessionStore
	sealer    Sealer
	verifier  *verifier.Verifier
	hc        *http.Client
	fanout    *redis.Fanout
	log       *slog.Logger
	now       func() time.Time
	metrics   *metrics
	provider  *provider
	cookie    string
	secure    bool
	origin    string // PublicURL's scheme://host[:port]
	redirect  string // PublicURL + /auth/callback
	idle      time.Duration
	absolute  time.Duration
	before    time.Duration
	instance  string // this Manager's id in lease owners
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	flights   flights
	waiters   waiters
	rows      rowCache
	replays   replays
	ownerSeq  sync.Mutex
	ownerNext uint64
	// storeTimeout is storeTimeout (tests shorten it).
	storeTimeout time.Duration
}

var _ gateway.Sessions = (*Manager)(nil)

// New returns a Manager for cfg. It makes no network call: the auth
// server's discovery document and keys are fetched when first needed, so
// the gateway starts while the auth server is down. Call Close when done.
func New(cfg gateway.Config, d Deps) (*Manager, error) {
	switch {
	case d.Store == nil:
		return nil, errors.New("bff: no session store")
	case d.Sealer == nil:
		return nil, errors.New("bff: no sealer")
	case d.Verifier == nil:
		return nil, errors.New("bff: no access-token verifier")
	case cfg.Issuer == "":
		return nil, errors.New("bff: issuer is empty")
	case cfg.ClientID == "" || cfg.ClientSecret == "":
		return nil, errors.New("bff: the gateway's client id and secret are required")
	}
	pub := cfg.PublicURL
	if pub == "" && cfg.Addr != "" {
		pub = "http://" + cfg.Addr
	}
	u, err := url.Parse(strings.TrimSuffix(pub, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return nil, fmt.Errorf("bff: public_url %q is not an http(s) origin", pub)
	}
	m := &Manager{
		cfg: cfg, store: d.Store, sealer: d.Sealer, verifier: d.Verifier, hc: d.HTTPClient,
		fanout: d.Fanout, log: d.Log, now: d.Now,
		origin: u.Scheme + "://" + u.Host, storeTimeout: storeTimeout,
		idle: cfg.Session.IdleTimeout.D(), absolute: cfg.Session.AbsoluteTTL.D(), before: cfg.Session.RefreshBefore.D(),
	}
	m.redirect = m.origin + "/auth/callback"
	if m.hc == nil {
		m.hc = &http.Client{Timeout: 10 * time.Second}
	}
	if m.log == nil {
		m.log = slog.Default()
	}
	if m.now == nil {
		m.now = time.Now
	}
	if m.idle <= 0 {
		m.idle = DefaultIdleTimeout
	}
	if m.absolute <= 0 {
		m.absolute = DefaultAbsoluteTTL
	}
	if m.before <= 0 {
		m.before = DefaultRefreshBefore
	}
	host := u.Hostname()
	ip := net.ParseIP(host)
	m.secure = u.Scheme == "https" || host == "localhost" || (ip != nil && ip.IsLoopback())
	m.cookie = cfg.Session.Cookie
	if m.cookie == "" {
		m.cookie = DefaultCookie
		if !m.secure {
			m.cookie = strings.TrimPrefix(DefaultCookie, "__Host-")
		}
	}
	if strings.HasPrefix(m.cookie, "__Host-") && !m.secure {
		return nil, fmt.Errorf("bff: cookie %s needs an https public_url (browsers refuse __Host- cookies on http)", m.cookie)
	}
	m.metrics = newMetrics(d.Registry)
	var b [9]byte
	rand.Read(b[:])
	m.instance = base64.RawURLEncoding.EncodeToString(b[:])
	m.ctx, m.cancel = context.WithCancel(context.Background())
	m.provider = newProvider(m.ctx, cfg, m.hc, d.Keys, m.log)
	m.waiters.m = map[string]map[chan struct{}]struct{}{}
	m.flights.m = map[string]*flight{}
	m.rows.m, m.rows.ttl = map[string]cachedRow{}, rowCacheTTL
	m.replays.seen = map[string]time.Time{}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.pruneLoop()
	}()
	if m.fanout != nil {
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			m.fanout.Subscribe(m.ctx, func(topic string) {
				if id, ok := strings.CutPrefix(topic, refreshedTopic); ok {
					m.rows.drop(id)
					m.waiters.wake(id)
				}
				if id, ok := strings.CutPrefix(topic, endedTopic); ok {
					m.rows.drop(id)
				}
			})
		}()
	}
	return m, nil
}

// pruneEvery is how often ended and expired sessions are deleted.
const pruneEvery = time.Hour

// pruneLoop deletes ended and expired sessions every pruneEvery until
// Close. Several gateways pruning one store at once is harmless.
func (m *Manager) pruneLoop() {
	t := time.NewTicker(pruneEvery)
	defer t.Stop()
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-t.C:
			if err := m.store.PruneGatewaySessions(m.ctx, m.now()); err != nil && m.ctx.Err() == nil {
				m.log.Warn("pruning gateway sessions failed", "err", err)
			}
		}
	}
}

// refreshedTopic prefixes the fan-out topic that says a session's refresh
// completed (followed by the session id, never the cookie value).
const refreshedTopic = "gw-refreshed:"

// Close stops the Manager's background work. It does not close the store.
func (m *Manager) Close() error {
	m.cancel()
	m.provider.close()
	m.wg.Wait()
	return nil
}

// CookieName is the name of the session cookie.
func (m *Manager) CookieName() string { return m.cookie }

// ServeHTTP answers the endpoints under /auth/: login, callback, logout,
// backchannel-logout and session.
func (m *Manager) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	// The gateway's server has no read timeout (bodies it proxies may
	// stream for long); these endpoints read small forms and must not let
	// a slow client hold a connection open.
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(authReadTimeout))
	switch r.URL.Path {
	case "/auth/login":
		m.only(w, r, m.login, http.MethodGet, http.MethodHead)
	case "/auth/callback":
		m.only(w, r, m.callback, http.MethodGet)
	case "/auth/logout":
		m.only(w, r, m.logout, http.MethodPost)
	case "/auth/backchannel-logout":
		m.only(w, r, m.backchannelLogout, http.MethodPost)
	case "/auth/session":
		m.only(w, r, m.session, http.MethodGet, http.MethodHead)
	default:
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint")
	}
}

// authReadTimeout bounds reading a request to /auth/.
const authReadTimeout = 10 * time.Second

// only runs h if r's method is one of methods, else answers 405.
func (m *Manager) only(w http.ResponseWriter, r *http.Request, h http.HandlerFunc, methods ...string) {
	for _, meth := range methods {
		if r.Method == meth {
			h(w, r)
			return
		}
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed")
}

// writeError answers {"error": code, "error_description": desc}.
func writeError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

// writeJSON answers v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// sessionID returns the store id of a cookie value: the hex SHA-256 of
// its bytes. It reports false for a value that is not 32 bytes of
// unpadded base64url, so that a forged cookie costs no store lookup.
func sessionID(value string) (string, bool) {
	if len(value) != 43 {
		return "", false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(value)
	if err != nil || len(b) != 32 {
		return "", false
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), true
}

// newCookieValue returns 256 random bits in unpadded base64url.
func newCookieValue() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// setSession writes the session cookie: host-only, Path=/, HttpOnly,
// Secure (on secure origins), SameSite=Lax, a session cookie for the
// browser (the server bounds the session).
func (m *Manager) setSession(w http.ResponseWriter, value string) {
	http.SetCookie(w, &http.Cookie{Name: m.cookie, Value: value, Path: "/", Secure: m.secure,
		HttpOnly: true, SameSite: http.SameSiteLaxMode})
}

// clearCookie deletes the cookie name.
func (m *Manager) clearCookie(w http.ResponseWriter, name string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: "/", MaxAge: -1, Secure: m.secure,
		HttpOnly: true, SameSite: http.SameSiteLaxMode})
}

// requestSessionID returns the session id of r's cookie, if it has a
// well-formed one.
func (m *Manager) requestSessionID(r *http.Request) (string, bool) {
	c, err := r.Cookie(m.cookie)
	if err != nil {
		return "", false
	}
	return sessionID(c.Value)
}

// newOwner returns a lease owner unique to one refresh attempt.
func (m *Manager) newOwner() string {
	m.ownerSeq.Lock()
	m.ownerNext++
	n := m.ownerNext
	m.ownerSeq.Unlock()
	return fmt.Sprintf("%s-%d", m.instance, n)
}

// storeCtx bounds one call to the session store (m.storeTimeout).
func (m *Manager) storeCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, m.storeTimeout)
}

// end ends a session and counts it.
func (m *Manager) end(ctx context.Context, id, reason string) error {
	sctx, cancel := m.storeCtx(context.WithoutCancel(ctx))
	defer cancel()
	err := m.store.EndGatewaySession(sctx, id, reason, m.now())
	m.forget(ctx, id)
	if err == nil {
		m.metrics.ended.WithLabelValues(reason).Inc()
		m.log.Info("gateway session ended", "session", short(id), "reason", reason)
	}
	return err
}

// forget drops an ended session from the row caches: this instance's,
// and the other instances' through the fan-out, if any.
func (m *Manager) forget(ctx context.Context, id string) {
	m.rows.drop(id)
	if m.fanout != nil {
		m.fanout.Poke(context.WithoutCancel(ctx), endedTopic+id)
	}
}

// short abbreviates a session id for logs.
func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
