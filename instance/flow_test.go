package instance_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/config"
)

const (
	adaEmail = "ada@example.com"
	adaPass  = "correct horse battery staple"
)

func TestWalkthrough(t *testing.T) {
	h := start(t, "", nil)
	uid := h.addUser(adaEmail, adaPass)

	// Login: the token response as documented.
	r := h.login("  ADA@example.com ", adaPass, "User-Agent", "walkthrough/1.0")
	for _, k := range []string{"access_token", "refresh_token", "session_id"} {
		if r.str(k) == "" {
			t.Fatalf("login response lacks %s: %s", k, r.raw)
		}
	}
	if r.str("token_type") != "Bearer" || r.body["expires_in"] != float64(300) {
		t.Fatalf("token_type/expires_in: %s", r.raw)
	}
	if r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("token response Cache-Control = %q", r.header.Get("Cache-Control"))
	}
	if ttl := r.body["refresh_token_expires_in"].(float64); ttl != float64(7*24*3600) {
		t.Fatalf("refresh_token_expires_in = %v, want the idle timeout", ttl)
	}
	if !strings.HasPrefix(r.str("refresh_token"), "latch_rt_") {
		t.Fatalf("refresh token lacks its scanner-friendly prefix: %s", r.str("refresh_token"))
	}
	access, refresh, sid := r.str("access_token"), r.str("refresh_token"), r.str("session_id")

	// The access token is an RFC 9068 JWT with the documented claims.
	hdr, claims := segment(t, access, 0), segment(t, access, 1)
	if hdr["typ"] != "at+jwt" || hdr["alg"] != "EdDSA" || hdr["kid"] == "" {
		t.Fatalf("header = %v", hdr)
	}
	for _, k := range []string{"iss", "sub", "aud", "exp", "iat", "jti", "sid", "client_id"} {
		if _, ok := claims[k]; !ok {
			t.Fatalf("claim %s missing: %v", k, claims)
		}
	}
	if claims["iss"] != "http://latch.test" || claims["sub"] != uid || claims["sid"] != sid || claims["client_id"] != "latch" {
		t.Fatalf("claims = %v", claims)
	}
	if _, ok := claims["email"]; ok {
		t.Fatal("access token carries personal data (email)")
	}

	// /v1/me through the verifier.
	me := h.do("GET", "/v1/me", "", bearer(access)...)
	expect(t, "me", me, 200, "")
	if me.str("sub") != uid || me.str("email") != adaEmail || me.str("session_id") != sid {
		t.Fatalf("me = %s", me.raw)
	}

	// Refresh rotates: a new refresh token, a new access token, same session.
	r2 := h.refresh(refresh)
	expect(t, "refresh", r2, 200, "")
	if r2.str("refresh_token") == refresh || r2.str("session_id") != sid || r2.str("access_token") == access {
		t.Fatalf("refresh did not rotate: %s", r2.raw)
	}
	expect(t, "me with refreshed token", h.do("GET", "/v1/me", "", bearer(r2.str("access_token"))...), 200, "")

	// Sessions list marks the current one and records the device.
	ss := h.do("GET", "/v1/sessions", "", bearer(r2.str("access_token"))...)
	expect(t, "sessions", ss, 200, "")
	list := ss.body["sessions"].([]any)
	if len(list) != 1 {
		t.Fatalf("sessions = %s", ss.raw)
	}
	s0 := list[0].(map[string]any)
	if s0["id"] != sid || s0["current"] != true || s0["user_agent"] != "walkthrough/1.0" || s0["ip"] != "127.0.0.1" {
		t.Fatalf("session = %v", s0)
	}
	for _, k := range []string{"created_at", "last_used_at", "expires_at"} {
		if _, err := time.Parse(time.RFC3339, s0[k].(string)); err != nil {
			t.Fatalf("%s: %v", k, err)
		}
	}

	// Logout with the bearer token: its refresh token and every access
	// token of the session stop working at once.
	expect(t, "logout", h.do("POST", "/v1/auth/logout", "", bearer(r2.str("access_token"))...), 204, "")
	for _, tok := range []string{access, r2.str("access_token")} {
		r := h.do("GET", "/v1/me", "", bearer(tok)...)
		expect(t, "me after logout", r, 401, "invalid_token")
		if !strings.Contains(r.header.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Fatalf("WWW-Authenticate = %q", r.header.Get("WWW-Authenticate"))
		}
	}
	expect(t, "refresh after logout", h.refresh(r2.str("refresh_token")), 401, "invalid_grant")

	// The security log recorded it.
	events, err := h.in.Store.EventsByUser(context.Background(), uid, 20)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range events {
		seen[e.Type] = true
	}
	for _, want := range []string{latch.EventUserCreated, latch.EventLoginSucceeded, latch.EventSessionRevoked} {
		if !seen[want] {
			t.Errorf("no %s event among %v", want, seen)
		}
	}
}

func TestLogoutWithRefreshToken(t *testing.T) {
	h := start(t, "", nil)
	h.addUser(adaEmail, adaPass)
	r := h.login(adaEmail, adaPass)
	expect(t, "logout", h.do("POST", "/v1/auth/logout", jsonBody(map[string]string{"refresh_token": r.str("refresh_token")})), 204, "")
	expect(t, "refresh", h.refresh(r.str("refresh_token")), 401, "invalid_grant")
	expect(t, "me", h.do("GET", "/v1/me", "", bearer(r.str("access_token"))...), 401, "invalid_token")
	// Unknown and malformed refresh tokens log out nothing, quietly (RFC 7009).
	expect(t, "logout unknown", h.do("POST", "/v1/auth/logout", `{"refresh_token":"latch_rt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}`), 204, "")
	expect(t, "logout garbage", h.do("POST", "/v1/auth/logout", `{"refresh_token":"nope"}`), 204, "")
	expect(t, "logout nothing", h.do("POST", "/v1/auth/logout", `{}`), 400, "invalid_request")
	expect(t, "logout bad bearer", h.do("POST", "/v1/auth/logout", "", bearer("x.y.z")...), 401, "invalid_token")
}

func TestLoginFailuresLookAlike(t *testing.T) {
	h := start(t, "", nil)
	uid := h.addUser(adaEmail, adaPass)
	wrong := h.do("POST", "/v1/auth/login", jsonBody(map[string]string{"email": adaEmail, "password": "not the password"}))
	unknown := h.do("POST", "/v1/auth/login", jsonBody(map[string]string{"email": "nobody@example.com", "password": "not the password"}))
	expect(t, "wrong password", wrong, 401, "invalid_credentials")
	expect(t, "unknown email", unknown, 401, "invalid_credentials")
	if string(wrong.raw) != string(unknown.raw) {
		t.Fatalf("bodies differ:\n%s\n%s", wrong.raw, unknown.raw)
	}
	events, _ := h.in.Store.EventsByUser(context.Background(), uid, 10)
	if len(events) == 0 || events[0].Type != latch.EventLoginFailed {
		t.Fatalf("no login_failed event: %+v", events)
	}
}

// TestRotationRace sends 50 concurrent refreshes of one token to the real
// HTTP server on real SQLite: all succeed with the identical successor,
// and the session has exactly one live successor.
func TestRotationRace(t *testing.T) {
	h := start(t, "", nil)
	h.addUser(adaEmail, adaPass)
	r := h.login(adaEmail, adaPass)
	tok := r.str("refresh_token")

	const n = 50
	var wg sync.WaitGroup
	gate := make(chan struct{})
	results := make([]response, n)
	for i := range n {
		wg.Go(func() {
			<-gate
			results[i] = h.do("POST", "/v1/auth/refresh", jsonBody(map[string]string{"refresh_token": tok}))
		})
	}
	close(gate)
	wg.Wait()

	successors := map[string]int{}
	for i, res := range results {
		if res.code != 200 {
			t.Fatalf("refresh %d: %d %s", i, res.code, res.raw)
		}
		successors[res.str("refresh_token")]++
	}
	if len(successors) != 1 {
		t.Fatalf("%d different successors, want exactly 1: %v", len(successors), successors)
	}
	var next string
	for k := range successors {
		next = k
	}
	sess, err := h.in.Store.Session(context.Background(), r.str("session_id"))
	if err != nil {
		t.Fatal(err)
	}
	if sess.Generation != 2 || sess.Revoked() {
		t.Fatalf("session generation %d revoked %v, want 2 and live", sess.Generation, sess.Revoked())
	}
	// The one successor carries the session on.
	r3 := h.refresh(next)
	expect(t, "refresh successor", r3, 200, "")
	expect(t, "me", h.do("GET", "/v1/me", "", bearer(r3.str("access_token"))...), 200, "")
}

// TestRefreshGraceAndReuse walks the rotation rules with a moving clock.
func TestRefreshGraceAndReuse(t *testing.T) {
	h := start(t, "", nil)
	uid := h.addUser(adaEmail, adaPass)
	r := h.login(adaEmail, adaPass, "User-Agent", "honest-app")
	t1 := r.str("refresh_token")

	r2 := h.refresh(t1)
	expect(t, "first refresh", r2, 200, "")
	t2 := r2.str("refresh_token")

	// Inside the grace window the previous token yields the same successor.
	h.clock.Advance(20 * time.Second)
	again := h.refresh(t1)
	expect(t, "retry inside grace", again, 200, "")
	if again.str("refresh_token") != t2 {
		t.Fatal("retry inside the grace window returned a different successor")
	}

	// After the window the previous token is theft: the session dies.
	h.clock.Advance(11 * time.Second)
	expect(t, "reuse after grace", h.refresh(t1), 401, "invalid_grant")
	expect(t, "successor after reuse", h.refresh(t2), 401, "invalid_grant")
	expect(t, "access token after reuse", h.do("GET", "/v1/me", "", bearer(r2.str("access_token"))...), 401, "invalid_token")

	events, _ := h.in.Store.EventsByUser(context.Background(), uid, 20)
	var reuse *latch.Event
	for i := range events {
		if events[i].Type == latch.EventRefreshReused {
			reuse = &events[i]
		}
	}
	if reuse == nil {
		t.Fatalf("no refresh_token_reused event in %+v", events)
	}
	if reuse.SessionID != r.str("session_id") || reuse.Detail["session_user_agent"] != "honest-app" {
		t.Fatalf("reuse event lacks the session's details: %+v", reuse)
	}
}

func TestReuseOfOlderGenerationInsideGrace(t *testing.T) {
	h := start(t, "", nil)
	h.addUser(adaEmail, adaPass)
	t1 := h.login(adaEmail, adaPass).str("refresh_token")
	t2 := h.refresh(t1).str("refresh_token")
	t3 := h.refresh(t2).str("refresh_token")
	// t1 is two generations old: reuse even though the clock has not moved.
	expect(t, "grandparent token", h.refresh(t1), 401, "invalid_grant")
	expect(t, "current token after reuse", h.refresh(t3), 401, "invalid_grant")
}

func TestGraceDisabled(t *testing.T) {
	h := start(t, "", func(c *config.Config) { c.Tokens.RefreshGrace = 0 })
	h.addUser(adaEmail, adaPass)
	t1 := h.login(adaEmail, adaPass).str("refresh_token")
	t2 := h.refresh(t1).str("refresh_token")
	expect(t, "immediate retry without grace", h.refresh(t1), 401, "invalid_grant")
	expect(t, "successor after reuse", h.refresh(t2), 401, "invalid_grant")
}

func TestSessionLifetimes(t *testing.T) {
	t.Run("idle", func(t *testing.T) {
		h := start(t, "", nil)
		h.addUser(adaEmail, adaPass)
		tok := h.login(adaEmail, adaPass).str("refresh_token")
		h.clock.Advance(6 * 24 * time.Hour)
		r := h.refresh(tok)
		expect(t, "refresh after 6 idle days", r, 200, "")
		h.clock.Advance(7*24*time.Hour + time.Second)
		expect(t, "refresh after 7 idle days", h.refresh(r.str("refresh_token")), 401, "invalid_grant")
	})
	t.Run("absolute", func(t *testing.T) {
		h := start(t, "", nil)
		h.addUser(adaEmail, adaPass)
		tok := h.login(adaEmail, adaPass).str("refresh_token")
		var r response
		for range 4 { // used every 6 days: never idle, but 30 days end it
			h.clock.Advance(6 * 24 * time.Hour)
			r = h.refresh(tok)
			expect(t, "refresh within 30 days", r, 200, "")
			tok = r.str("refresh_token")
		}
		// At day 24 the absolute end (6 days away) comes before the idle one.
		if exp := r.body["refresh_token_expires_in"].(float64); exp != 6*24*3600 {
			t.Fatalf("refresh_token_expires_in at day 24 = %v, want %v", exp, 6*24*3600)
		}
		h.clock.Advance(6*24*time.Hour - time.Second)
		r = h.refresh(tok)
		expect(t, "refresh one second before the end", r, 200, "")
		if exp := r.body["expires_in"].(float64); exp != 1 {
			t.Fatalf("access token outlives its session: expires_in %v", exp)
		}
		h.clock.Advance(time.Second)
		expect(t, "refresh after 30 days", h.refresh(r.str("refresh_token")), 401, "invalid_grant")
	})
	t.Run("access token expiry", func(t *testing.T) {
		h := start(t, "", nil)
		h.addUser(adaEmail, adaPass)
		access := h.login(adaEmail, adaPass).str("access_token")
		h.clock.Advance(5*time.Minute + 4*time.Second) // within the 5 s leeway
		expect(t, "within leeway", h.do("GET", "/v1/me", "", bearer(access)...), 200, "")
		h.clock.Advance(2 * time.Second)
		expect(t, "expired", h.do("GET", "/v1/me", "", bearer(access)...), 401, "invalid_token")
	})
}

func TestLogoutAll(t *testing.T) {
	h := start(t, "", nil)
	h.addUser(adaEmail, adaPass)
	other := h.addUser("grace@example.com", adaPass)
	a := h.login(adaEmail, adaPass)
	b := h.login(adaEmail, adaPass)
	g := h.login("grace@example.com", adaPass)

	expect(t, "logout-all", h.do("POST", "/v1/auth/logout-all", "", bearer(a.str("access_token"))...), 204, "")
	for name, r := range map[string]response{"a": a, "b": b} {
		expect(t, name+" access", h.do("GET", "/v1/me", "", bearer(r.str("access_token"))...), 401, "invalid_token")
		expect(t, name+" refresh", h.refresh(r.str("refresh_token")), 401, "invalid_grant")
	}
	// Another user is untouched.
	expect(t, "other user's access", h.do("GET", "/v1/me", "", bearer(g.str("access_token"))...), 200, "")
	expect(t, "other user's refresh", h.refresh(g.str("refresh_token")), 200, "")
	_ = other

	// A new sign-in after the cutoff works (in a later second than the cutoff).
	h.clock.Advance(time.Second)
	c := h.login(adaEmail, adaPass)
	expect(t, "new session", h.do("GET", "/v1/me", "", bearer(c.str("access_token"))...), 200, "")
	expect(t, "logout-all needs a token", h.do("POST", "/v1/auth/logout-all", ""), 401, "unauthorized")
}

func TestSessionsEndpoint(t *testing.T) {
	h := start(t, "", nil)
	h.addUser(adaEmail, adaPass)
	h.addUser("grace@example.com", adaPass)
	a := h.login(adaEmail, adaPass, "User-Agent", "laptop")
	b := h.login(adaEmail, adaPass, "User-Agent", "phone")
	g := h.login("grace@example.com", adaPass)

	list := h.do("GET", "/v1/sessions", "", bearer(a.str("access_token"))...)
	expect(t, "list", list, 200, "")
	if n := len(list.body["sessions"].([]any)); n != 2 {
		t.Fatalf("%d sessions, want 2: %s", n, list.raw)
	}
	// Another user's session is not found, exactly like a missing one.
	r := h.do("DELETE", "/v1/sessions/"+g.str("session_id"), "", bearer(a.str("access_token"))...)
	expect(t, "delete other user's session", r, 404, "not_found")
	expect(t, "delete missing session", h.do("DELETE", "/v1/sessions/s_nope", "", bearer(a.str("access_token"))...), 404, "not_found")
	expect(t, "other user's session survives", h.do("GET", "/v1/me", "", bearer(g.str("access_token"))...), 200, "")

	// Revoking the phone's session from the laptop.
	expect(t, "delete own session", h.do("DELETE", "/v1/sessions/"+b.str("session_id"), "", bearer(a.str("access_token"))...), 204, "")
	expect(t, "phone access", h.do("GET", "/v1/me", "", bearer(b.str("access_token"))...), 401, "invalid_token")
	expect(t, "phone refresh", h.refresh(b.str("refresh_token")), 401, "invalid_grant")
	expect(t, "laptop access", h.do("GET", "/v1/me", "", bearer(a.str("access_token"))...), 200, "")
	list = h.do("GET", "/v1/sessions", "", bearer(a.str("access_token"))...)
	if n := len(list.body["sessions"].([]any)); n != 1 {
		t.Fatalf("%d sessions after revoke, want 1", n)
	}
}

func TestRegistration(t *testing.T) {
	off := start(t, "", nil)
	expect(t, "disabled", off.do("POST", "/v1/auth/register", jsonBody(map[string]string{"email": "new@example.com", "password": adaPass})), 403, "registration_disabled")

	h := start(t, "", func(c *config.Config) { c.Registration = true })
	r := h.do("POST", "/v1/auth/register", jsonBody(map[string]string{"email": "New@Example.com", "password": adaPass}))
	expect(t, "register", r, 201, "")
	if !strings.HasPrefix(r.str("user_id"), "u_") {
		t.Fatalf("user_id = %q", r.str("user_id"))
	}
	expect(t, "duplicate", h.do("POST", "/v1/auth/register", jsonBody(map[string]string{"email": "new@example.com", "password": adaPass})), 409, "")
	for name, c := range map[string][2]string{
		"short":       {"short@example.com", "1234567"},
		"too long":    {"long@example.com", strings.Repeat("x", 257)},
		"equal email": {"same@example.com", "Same@Example.com"},
	} {
		expect(t, name, h.do("POST", "/v1/auth/register", jsonBody(map[string]string{"email": c[0], "password": c[1]})), 400, "weak_password")
	}
	expect(t, "bad email", h.do("POST", "/v1/auth/register", jsonBody(map[string]string{"email": "not-an-email", "password": adaPass})), 400, "invalid_request")
	h.login("new@example.com", adaPass)
}

// TestRestartPersistence: keys, sessions and revocations survive a restart.
func TestRestartPersistence(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "latch-data")
	h := start(t, dir, nil)
	h.addUser(adaEmail, adaPass)
	kept := h.login(adaEmail, adaPass)
	gone := h.login(adaEmail, adaPass)
	expect(t, "logout", h.do("POST", "/v1/auth/logout", "", bearer(gone.str("access_token"))...), 204, "")
	jwks := string(h.do("GET", "/.well-known/jwks.json", "").raw)
	h.close()

	info, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o700 {
		t.Errorf("data dir mode %v, want 0700", info.Mode().Perm())
	}
	kek, err := os.Stat(filepath.Join(dir, "kek"))
	if err != nil || kek.Mode().Perm() != 0o600 {
		t.Errorf("kek file: %v, mode %v; want 0600", err, kek.Mode().Perm())
	}

	h2 := start(t, dir, nil)
	if got := string(h2.do("GET", "/.well-known/jwks.json", "").raw); got != jwks {
		t.Fatalf("JWKS changed across restart:\n%s\n%s", jwks, got)
	}
	expect(t, "access token from before the restart", h2.do("GET", "/v1/me", "", bearer(kept.str("access_token"))...), 200, "")
	expect(t, "revoked access token after restart", h2.do("GET", "/v1/me", "", bearer(gone.str("access_token"))...), 401, "invalid_token")
	expect(t, "revoked refresh token after restart", h2.refresh(gone.str("refresh_token")), 401, "invalid_grant")
	expect(t, "refresh after restart", h2.refresh(kept.str("refresh_token")), 200, "")
	h2.login(adaEmail, adaPass)
}

// TestRevocationFromAnotherProcess: a revocation written by another
// process on the same data directory (the CLI, a second instance) reaches
// this instance's verifier through the durable feed within a second.
func TestRevocationFromAnotherProcess(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "latch-data")
	a := start(t, dir, nil)
	ctx, cancel := context.WithCancel(context.Background())
	a.in.Start(ctx)
	t.Cleanup(func() { cancel(); a.in.Wait() })
	a.addUser(adaEmail, adaPass)
	r := a.login(adaEmail, adaPass)

	b := start(t, dir, nil)
	expect(t, "logout through b", b.do("POST", "/v1/auth/logout", "", bearer(r.str("access_token"))...), 204, "")
	revokedAt := time.Now()
	for {
		res := a.do("GET", "/v1/me", "", bearer(r.str("access_token"))...)
		if res.code == 401 {
			break
		}
		if time.Since(revokedAt) > 2*time.Second {
			t.Fatalf("instance a still accepts the token %v after b revoked it", time.Since(revokedAt))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestJWKS(t *testing.T) {
	h := start(t, "", nil)
	r := h.do("GET", "/.well-known/jwks.json", "")
	if r.code != 200 || r.header.Get("Cache-Control") != "public, max-age=900" {
		t.Fatalf("jwks: %d, Cache-Control %q", r.code, r.header.Get("Cache-Control"))
	}
	var doc struct {
		Keys []map[string]any `json:"keys"`
	}
	// The access-token key first, then the id_token key.
	if err := json.Unmarshal(r.raw, &doc); err != nil || len(doc.Keys) != 2 {
		t.Fatalf("jwks = %s (%v)", r.raw, err)
	}
	k, id := doc.Keys[0], doc.Keys[1]
	if k["alg"] != "EdDSA" || k["use"] != "sig" || k["kid"] == "" || k["kty"] != "OKP" {
		t.Fatalf("jwk = %v", k)
	}
	if id["alg"] != "RS256" || id["use"] != "sig" || id["kid"] == "" || id["kty"] != "RSA" {
		t.Fatalf("id_token jwk = %v", id)
	}
	for _, k := range doc.Keys {
		for _, priv := range []string{"d", "p", "q"} {
			if _, ok := k[priv]; ok {
				t.Fatal("JWKS publishes a private key")
			}
		}
	}
	h.addUser(adaEmail, adaPass)
	hdr := segment(t, h.login(adaEmail, adaPass).str("access_token"), 0)
	if hdr["kid"] != k["kid"] {
		t.Fatalf("token kid %v is not the published kid %v", hdr["kid"], k["kid"])
	}
}

func TestAlgorithms(t *testing.T) {
	for _, alg := range []string{"ES256", "RS256"} {
		t.Run(alg, func(t *testing.T) {
			h := start(t, "", func(c *config.Config) { c.Tokens.Algorithm = alg })
			h.addUser(adaEmail, adaPass)
			r := h.login(adaEmail, adaPass)
			if got := segment(t, r.str("access_token"), 0)["alg"]; got != alg {
				t.Fatalf("alg = %v", got)
			}
			expect(t, "me", h.do("GET", "/v1/me", "", bearer(r.str("access_token"))...), 200, "")
		})
	}
}

func TestHealthReadyMetrics(t *testing.T) {
	h := start(t, "", nil)
	expect(t, "healthz", h.do("GET", "/healthz", ""), 200, "")
	expect(t, "readyz", h.do("GET", "/readyz", ""), 200, "")
	h.addUser(adaEmail, adaPass)
	r := h.login(adaEmail, adaPass)
	h.do("GET", "/v1/me", "", bearer(r.str("access_token"))...)
	h.refresh(r.str("refresh_token"))
	m := h.do("GET", "/metrics", "")
	if m.code != 200 {
		t.Fatalf("metrics: %d", m.code)
	}
	for _, series := range []string{
		`latch_logins_total{outcome="success"} 1`,
		`latch_refreshes_total{outcome="rotated"} 1`,
		"latch_refresh_reuse_detections_total 0",
		"latch_token_verification_seconds_count 1",
	} {
		if !strings.Contains(string(m.raw), series) {
			t.Errorf("metrics lack %q", series)
		}
	}
	h.in.Store.Close()
	expect(t, "readyz with the store closed", h.do("GET", "/readyz", ""), 503, "")
}

func TestPasswordHashingIsBounded(t *testing.T) {
	h := start(t, "", func(c *config.Config) {
		c.Password.MaxConcurrent = 1
		c.Password.MaxWait = config.Duration(time.Millisecond)
	})
	h.addUser(adaEmail, adaPass)
	const n = 16
	var wg sync.WaitGroup
	codes := make([]int, n)
	retry := make([]string, n)
	gate := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-gate
			r := h.do("POST", "/v1/auth/login", jsonBody(map[string]string{"email": adaEmail, "password": adaPass}))
			codes[i], retry[i] = r.code, r.header.Get("Retry-After")
		})
	}
	close(gate)
	wg.Wait()
	var ok, busy int
	for i, c := range codes {
		switch c {
		case http.StatusOK:
			ok++
		case http.StatusServiceUnavailable:
			busy++
			if retry[i] == "" {
				t.Error("503 without Retry-After")
			}
		default:
			t.Errorf("login answered %d", c)
		}
	}
	if ok == 0 || busy == 0 {
		t.Fatalf("%d ok, %d busy: want both (one hashing slot, 1 ms wait, %d at once)", ok, busy, n)
	}
}

// TestSuccessorErasedAfterGrace: the sealed successor kept for retries is
// erased from the store once the grace window has passed.
func TestSuccessorErasedAfterGrace(t *testing.T) {
	h := start(t, "", nil)
	h.addUser(adaEmail, adaPass)
	r := h.refresh(h.login(adaEmail, adaPass).str("refresh_token"))
	expect(t, "refresh", r, 200, "")
	sid := r.str("session_id")
	if s, _ := h.in.Store.Session(context.Background(), sid); len(s.Successor) == 0 {
		t.Fatal("no successor kept right after the rotation")
	}
	h.clock.Advance(31 * time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	h.in.Start(ctx) // the sweep runs once at start, then every few seconds
	defer func() { cancel(); h.in.Wait() }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s, err := h.in.Store.Session(context.Background(), sid)
		if err != nil {
			t.Fatal(err)
		}
		if len(s.Successor) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("successor still stored after the grace window")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The current token still works; nothing but the copy was erased.
	expect(t, "refresh after the sweep", h.refresh(r.str("refresh_token")), 200, "")
}

// TestStaleRevocationData: when the store cannot be read for longer than
// revocation.max_stale, the server's own verifier applies the fail-safe
// policy: reject (the default) or, opted in, accept and count.
func TestStaleRevocationData(t *testing.T) {
	for _, failOpen := range []bool{false, true} {
		t.Run(map[bool]string{false: "fail closed", true: "fail open"}[failOpen], func(t *testing.T) {
			h := start(t, "", func(c *config.Config) {
				c.Revocation.MaxStale = config.Duration(5 * time.Second)
				c.Revocation.FailOpen = failOpen
			})
			ctx, cancel := context.WithCancel(context.Background())
			h.in.Start(ctx)
			defer func() { cancel(); h.in.Wait() }()
			h.addUser(adaEmail, adaPass)
			access := h.login(adaEmail, adaPass).str("access_token")
			expect(t, "fresh", h.do("GET", "/v1/me", "", bearer(access)...), 200, "")

			// Within max_stale of the last good read, nothing changes.
			h.in.Store.Close()
			h.clock.Advance(4 * time.Second)
			if _, err := h.in.Verifier.Verify(access); err != nil {
				t.Fatalf("within max_stale: %v", err)
			}
			h.clock.Advance(2 * time.Second)
			_, err := h.in.Verifier.Verify(access)
			if failOpen {
				if err != nil {
					t.Fatalf("fail open rejected: %v", err)
				}
				m := string(h.do("GET", "/metrics", "").raw)
				if !strings.Contains(m, "latch_stale_accepted_total 1") {
					t.Fatal("stale acceptance not counted in latch_stale_accepted_total")
				}
				return
			}
			r := h.do("GET", "/v1/me", "", bearer(access)...)
			expect(t, "stale, fail closed", r, 401, "invalid_token")
			if !strings.Contains(r.str("error_description"), "stale") {
				t.Fatalf("description = %q", r.str("error_description"))
			}
		})
	}
}
