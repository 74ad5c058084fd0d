package backchannel_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/latchauth/latch"
	"github.com/latchauth/latch/backchannel"
	"github.com/latchauth/latch/internal/testenv"
	"github.com/latchauth/latch/keys"
	"github.com/latchauth/latch/outbox"
	"github.com/latchauth/latch/sqlite"
	"github.com/prometheus/client_golang/prometheus"
)

const issuer = "https://sso.example.com"

// rp is a relying party's back-channel logout endpoint: it verifies each
// logout token it receives with the provider's JWKS, as an RP would, and
// answers status.
type rp struct {
	t      *testing.T
	ring   *keys.Ring
	srv    *httptest.Server
	mu     sync.Mutex
	status int
	got    []received
	// redirected counts requests that reached the redirect target.
	redirected int
}

// received is a logout request as the RP saw it.
type received struct {
	token  string
	header map[string]any
	claims map[string]any
	err    error
}

func newRP(t *testing.T, ring *keys.Ring) *rp {
	r := &rp{t: t, ring: ring, status: http.StatusOK}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /bcl", r.logout)
	mux.HandleFunc("/moved", func(w http.ResponseWriter, req *http.Request) {
		http.Redirect(w, req, "/elsewhere", http.StatusTemporaryRedirect)
	})
	mux.HandleFunc("/elsewhere", func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.redirected++
		r.mu.Unlock()
	})
	r.srv = httptest.NewServer(mux) // 127.0.0.1
	t.Cleanup(r.srv.Close)
	return r
}

func (r *rp) logout(w http.ResponseWriter, req *http.Request) {
	var rec received
	if ct := req.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
		rec.err = errors.New("Content-Type " + ct)
	} else if err := req.ParseForm(); err != nil {
		rec.err = err
	} else {
		rec.token = req.PostForm.Get("logout_token")
		rec.header, rec.claims, rec.err = verify(r.ring, rec.token)
	}
	r.mu.Lock()
	r.got = append(r.got, rec)
	status := r.status
	r.mu.Unlock()
	w.WriteHeader(status)
}

// verify checks token with the JWKS the provider publishes, as an RP
// would, and returns its header and claims.
func verify(ring *keys.Ring, token string) (map[string]any, map[string]any, error) {
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(ring.JWKS(), &set); err != nil {
		return nil, nil, err
	}
	jws, err := jose.ParseSigned(token, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return nil, nil, err
	}
	if len(jws.Signatures) != 1 {
		return nil, nil, errors.New("not one signature")
	}
	h := jws.Signatures[0].Header
	ks := set.Key(h.KeyID)
	if len(ks) != 1 {
		return nil, nil, errors.New("kid not in the JWKS")
	}
	// The key is the id_token family's, which RPs trust for logout tokens.
	if _, _, ok := ring.FamilyKey(keys.FamilyID, h.KeyID); !ok {
		return nil, nil, errors.New("signed by a key outside the id family")
	}
	payload, err := jws.Verify(ks[0])
	if err != nil {
		return nil, nil, err
	}
	header := map[string]any{"alg": h.Algorithm, "kid": h.KeyID}
	for k, v := range h.ExtraHeaders {
		header[string(k)] = v
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		return nil, nil, err
	}
	return header, claims, nil
}

func (r *rp) requests() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

func (r *rp) setStatus(s int) {
	r.mu.Lock()
	r.status = s
	r.mu.Unlock()
}

// env is a store with a key ring and a handler.
type env struct {
	path    string
	kek     keys.KEK
	store   *sqlite.Store
	ring    *keys.Ring
	clock   *testenv.Clock
	handler *backchannel.Handler
}

func newEnv(t *testing.T) *env {
	kek, err := keys.GenerateKEK()
	if err != nil {
		t.Fatal(err)
	}
	e := &env{path: filepath.Join(t.TempDir(), "latch.db"), kek: kek, clock: testenv.NewClock(time.Now().UTC().Truncate(time.Second))}
	e.open(t)
	return e
}

// open opens (or reopens: a restart) the store, the ring and the handler.
func (e *env) open(t *testing.T) {
	t.Helper()
	st, err := sqlite.Open(t.Context(), e.path)
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	ring, err := keys.NewRing(t.Context(), st, e.kek, keys.Config{}, e.clock.Now)
	if err != nil {
		t.Fatalf("NewRing: %v", err)
	}
	h, err := backchannel.New(backchannel.Config{
		Issuer: issuer, Clients: st, Now: e.clock.Now,
		LogoutTokens: func(alg string) (backchannel.Signer, error) {
			s, err := ring.LogoutTokens(alg)
			if err != nil {
				return nil, err
			}
			return s, nil
		},
	})
	if err != nil {
		t.Fatalf("backchannel.New: %v", err)
	}
	e.store, e.ring, e.handler = st, ring, h
}

func (e *env) client(t *testing.T, id, uri string) {
	t.Helper()
	c := &latch.Client{ID: id, SecretHash: "x", BackchannelLogoutURI: uri, RedirectURIs: []string{"https://rp.example/cb"}, CreatedAt: e.clock.Now()}
	if err := e.store.CreateClient(t.Context(), c); err != nil {
		t.Fatalf("CreateClient: %v", err)
	}
}

func message(clientID, sid string) latch.OutboxMessage {
	return latch.OutboxMessage{ID: 7, Kind: latch.OutboxBackchannelLogout,
		Payload: latch.BackchannelLogout{ClientID: clientID, UserID: "u1", SSOSessionID: sid}.Payload()}
}

// checkToken checks a logout token's header and claims against §2.4.
func checkToken(t *testing.T, r received, clientID, sub, sid string, at time.Time) {
	t.Helper()
	if r.err != nil {
		t.Fatalf("the RP could not verify the logout token: %v", r.err)
	}
	if r.header["typ"] != "logout+jwt" || r.header["alg"] != "RS256" {
		t.Errorf("header %v, want typ logout+jwt, alg RS256", r.header)
	}
	c := r.claims
	if c["iss"] != issuer || c["aud"] != clientID || c["sub"] != sub || c["sid"] != sid {
		t.Errorf("claims %v, want iss %s aud %s sub %s sid %s", c, issuer, clientID, sub, sid)
	}
	iat, _ := c["iat"].(float64)
	exp, _ := c["exp"].(float64)
	if int64(iat) != at.Unix() || exp-iat != 120 {
		t.Errorf("iat %v exp %v, want iat %d and exp two minutes later", c["iat"], c["exp"], at.Unix())
	}
	if jti, _ := c["jti"].(string); len(jti) < 16 {
		t.Errorf("jti %q, want a random one", c["jti"])
	}
	if _, ok := c["nonce"]; ok {
		t.Error("a logout token carries a nonce (§2.4 forbids it)")
	}
	ev, _ := c["events"].(map[string]any)
	member, ok := ev[backchannel.EventLogout].(map[string]any)
	if len(ev) != 1 || !ok || len(member) != 0 {
		t.Errorf("events %v, want {%q: {}}", c["events"], backchannel.EventLogout)
	}
}

func TestDeliversAVerifiableLogoutToken(t *testing.T) {
	e := newEnv(t)
	r := newRP(t, e.ring)
	e.client(t, "dash", r.srv.URL+"/bcl")
	for range 2 {
		if err := e.handler.Deliver(t.Context(), message("dash", "sso1")); err != nil {
			t.Fatalf("Deliver: %v", err)
		}
	}
	got := r.requests()
	if len(got) != 2 {
		t.Fatalf("the RP received %d requests, want 2", len(got))
	}
	for _, g := range got {
		checkToken(t, g, "dash", "u1", "sso1", e.clock.Now())
	}
	if got[0].claims["jti"] == got[1].claims["jti"] {
		t.Error("two logout tokens share a jti")
	}
	// 204 No Content is success too (§2.8 allows for it).
	r.setStatus(http.StatusNoContent)
	if err := e.handler.Deliver(t.Context(), message("dash", "sso1")); err != nil {
		t.Errorf("Deliver with a 204: %v", err)
	}
}

func TestFailuresAreRetryable(t *testing.T) {
	e := newEnv(t)
	r := newRP(t, e.ring)
	e.client(t, "dash", r.srv.URL+"/bcl")
	for _, status := range []int{http.StatusInternalServerError, http.StatusBadRequest, http.StatusServiceUnavailable} {
		r.setStatus(status)
		err := e.handler.Deliver(t.Context(), message("dash", "sso1"))
		if err == nil || outbox.IsPermanent(err) {
			t.Fatalf("status %d: Deliver = %v, want a retryable error", status, err)
		}
		if !strings.Contains(err.Error(), strconv.Itoa(status)) {
			t.Errorf("status %d: error %q does not name the status", status, err)
		}
		got := r.requests()
		if tok := got[len(got)-1].token; tok == "" || strings.Contains(err.Error(), tok) {
			t.Errorf("error %q carries the logout token", err)
		}
	}

	// Unreachable: a network error, retryable.
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	e.client(t, "gone", deadURL+"/bcl")
	if err := e.handler.Deliver(t.Context(), message("gone", "sso1")); err == nil || outbox.IsPermanent(err) {
		t.Errorf("unreachable RP: Deliver = %v, want a retryable error", err)
	}
}

func TestRedirectNotFollowed(t *testing.T) {
	e := newEnv(t)
	r := newRP(t, e.ring)
	e.client(t, "dash", r.srv.URL+"/moved")
	err := e.handler.Deliver(t.Context(), message("dash", "sso1"))
	if err == nil || outbox.IsPermanent(err) || !strings.Contains(err.Error(), "307") {
		t.Errorf("Deliver to a redirect = %v, want a retryable error naming 307", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.redirected != 0 {
		t.Errorf("the redirect was followed: the logout token went to another URL")
	}
}

func TestNothingToTell(t *testing.T) {
	e := newEnv(t)
	r := newRP(t, e.ring)
	e.client(t, "nouri", "")
	for _, c := range []string{"nouri", "deleted"} {
		if err := e.handler.Deliver(t.Context(), message(c, "sso1")); err != nil {
			t.Errorf("client %s: Deliver = %v, want nil (nothing to tell)", c, err)
		}
	}
	if got := r.requests(); len(got) != 0 {
		t.Errorf("the RP received %d requests", len(got))
	}
	// A payload that cannot be read is given up.
	bad := latch.OutboxMessage{ID: 1, Kind: latch.OutboxBackchannelLogout, Payload: []byte(`{"client_id":""}`)}
	if err := e.handler.Deliver(t.Context(), bad); !outbox.IsPermanent(err) {
		t.Errorf("bad payload: Deliver = %v, want a permanent error", err)
	}
	// A URI that is not http(s) is given up.
	e.client(t, "ftp", "ftp://rp.example/bcl")
	if err := e.handler.Deliver(t.Context(), message("ftp", "sso1")); !outbox.IsPermanent(err) {
		t.Errorf("ftp URI: Deliver = %v, want a permanent error", err)
	}
}

func TestDefaultHTTPClient(t *testing.T) {
	c := backchannel.NewHTTPClient()
	if c.Timeout != 5*time.Second || c.CheckRedirect == nil {
		t.Errorf("NewHTTPClient: timeout %v, CheckRedirect set %v", c.Timeout, c.CheckRedirect != nil)
	}
	if _, err := backchannel.New(backchannel.Config{Issuer: issuer}); err == nil {
		t.Error("New without a client store or signer succeeded")
	}
}

// TestEndToEnd ends an SSO session in the store; the worker sends the
// logout token, which the RP verifies. Then a message that a first worker
// never completed (the RP was down, then the worker died holding a lease)
// is delivered after a restart by a new worker on the same database.
func TestEndToEnd(t *testing.T) {
	e := newEnv(t)
	r := newRP(t, e.ring)
	ctx := t.Context()
	now := e.clock.Now()
	if err := e.store.CreateUser(ctx, &latch.User{ID: "u1", Email: "u1@example.com", PasswordHash: "x", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	e.client(t, "dash", r.srv.URL+"/bcl")
	for _, id := range []string{"sso1", "sso2"} {
		sso := &latch.SSOSession{ID: id, UserID: "u1", AuthTime: now, AMR: []string{"pwd"}, CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(time.Hour)}
		if err := e.store.CreateSSOSession(ctx, sso); err != nil {
			t.Fatal(err)
		}
		if err := e.store.RecordSSOClient(ctx, id, "dash", now); err != nil {
			t.Fatal(err)
		}
	}

	reg := prometheus.NewRegistry()
	worker := func(owner string) *outbox.Worker {
		w, err := outbox.New(outbox.Config{
			Store: e.store, Owner: owner, Now: e.clock.Now, Log: slog.New(slog.DiscardHandler), Poll: time.Hour,
			Registry: prometheus.WrapRegistererWith(prometheus.Labels{"owner": owner}, reg),
			Handlers: map[string]outbox.Handler{latch.OutboxBackchannelLogout: e.handler},
		})
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	w := worker("first")
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		w.Run(runCtx)
		close(done)
	}()
	if _, err := e.store.EndSSOSession(ctx, "sso1", "logout", now, latch.Cover{Until: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	w.Notify()
	// Delivered and recorded as such (not merely received by the RP:
	// a worker stopped before recording leaves the message to another).
	deadline := time.Now().Add(10 * time.Second)
	for delivered(t, reg) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the RP was not told of the end of sso1")
		}
		time.Sleep(time.Millisecond) // polling a condition, not timing
	}
	cancel()
	<-done
	checkToken(t, r.requests()[0], "dash", "u1", "sso1", now)

	// The RP is down: the first worker's delivery fails, and then it
	// claims the retry and dies before delivering it.
	r.setStatus(http.StatusBadGateway)
	if _, err := e.store.EndSSOSession(ctx, "sso2", "logout", now, latch.Cover{Until: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if n, err := w.RunOnce(ctx); n != 1 || err != nil {
		t.Fatalf("RunOnce = %d, %v", n, err)
	}
	e.clock.Advance(time.Minute)
	if l, err := e.store.ClaimOutbox(ctx, w.Owner(), e.clock.Now(), e.clock.Now().Add(outbox.DefaultLease), 10); err != nil || len(l) != 1 {
		t.Fatalf("the first worker's last claim = %v, %v", l, err)
	}

	// Restart: the database is reopened, the RP is back, a new worker
	// takes the message over once the dead one's lease has expired.
	e.open(t)
	r.ring = e.ring
	r.setStatus(http.StatusOK)
	w2 := worker("second")
	if n, err := w2.RunOnce(ctx); n != 0 || err != nil {
		t.Fatalf("RunOnce inside the dead worker's lease = %d, %v", n, err)
	}
	e.clock.Advance(outbox.DefaultLease)
	if n, err := w2.RunOnce(ctx); n != 1 || err != nil {
		t.Fatalf("RunOnce after the lease = %d, %v", n, err)
	}
	got := r.requests()
	checkToken(t, got[len(got)-1], "dash", "u1", "sso2", e.clock.Now())
	// Delivered: nothing is left.
	e.clock.Advance(time.Hour)
	if n, err := w2.RunOnce(ctx); n != 0 || err != nil {
		t.Errorf("RunOnce after delivery = %d, %v", n, err)
	}
}

// delivered returns how many deliveries the workers registered on reg
// recorded as delivered.
func delivered(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if mf.GetName() == "latch_outbox_deliveries_total" && l.GetName() == "outcome" && l.GetValue() == outbox.OutcomeDelivered {
					n += m.GetCounter().GetValue()
				}
			}
		}
	}
	return n
}
