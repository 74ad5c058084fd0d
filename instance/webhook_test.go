package instance_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/auth"
	"github.com/latchauth/latch/config"
	"github.com/latchauth/latch/webhook"
)

const (
	hookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	opsSecret  = "ops-7Qm2VdJrX9pL4sT8wK1nB6yH3cF5gZ0aE2uR"
	userSecret = "app-4Hn8QwE2rT6yU1iO9pA3sD7fG5hJ0kL2zXcV"
)

// hookReceiver is a webhook endpoint on 127.0.0.1 that verifies each
// request and hands the payload to react, if set.
type hookReceiver struct {
	t     *testing.T
	srv   *httptest.Server
	mu    sync.Mutex
	got   []webhook.Payload
	byID  map[string]int // requests by webhook-id
	react func(p webhook.Payload)
}

type idCount struct {
	id string
	n  int
}

// ids returns the count of requests of each webhook-id; rc.mu is held.
func (rc *hookReceiver) ids() []idCount {
	var out []idCount
	for id, n := range rc.byID {
		out = append(out, idCount{id, n})
	}
	return out
}

func newHookReceiver(t *testing.T) *hookReceiver {
	rc := &hookReceiver{t: t, byID: map[string]int{}}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := webhook.Verify(hookSecret, r.Header, body, time.Minute); err != nil {
			t.Errorf("receiver: %v", err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		var p webhook.Payload
		if err := json.Unmarshal(body, &p); err != nil {
			t.Errorf("receiver: %v", err)
		}
		rc.mu.Lock()
		rc.got = append(rc.got, p)
		rc.byID[r.Header.Get(webhook.HeaderID)]++
		react := rc.react
		rc.mu.Unlock()
		if react != nil {
			react(p)
		}
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

// has reports whether an event of the type for the user arrived.
func (rc *hookReceiver) has(typ, userID string) bool {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for _, p := range rc.got {
		if p.Type == typ && p.Data.UserID == userID {
			return true
		}
	}
	return false
}

func withHook(u string) func(*config.Config) {
	return func(c *config.Config) {
		c.Webhooks = []config.Webhook{{ID: "model", URL: u, Secret: hookSecret}}
	}
}

// waitUntil polls cond until it holds or 10 s pass.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// addOps registers the ops client (admin scope) and an app client
// without it, and returns a client_credentials token of each.
func (h *harness) addOps(t *testing.T) (ops, app string) {
	t.Helper()
	ctx := context.Background()
	if _, err := h.in.Auth.CreateClient(ctx, auth.NewClient{ID: "ops", Secret: opsSecret, Scopes: []string{"admin"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.in.Auth.CreateClient(ctx, auth.NewClient{ID: "app", Secret: userSecret, Scopes: []string{"read"}}); err != nil {
		t.Fatal(err)
	}
	r := h.form("/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"admin"}}, basic("ops", opsSecret)...)
	expect(t, "ops token", r, http.StatusOK, "")
	a := h.form("/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, basic("app", userSecret)...)
	expect(t, "app token", a, http.StatusOK, "")
	return r.str("access_token"), a.str("access_token")
}

// TestWebhookClosesTheLoop: a team's receiver that judges every sign-in
// hostile answers the login_succeeded webhook by calling the admin API
// with the ops client's token: the user's access token is refused and the
// refresh token is dead, the revocation is an admin_revoked event naming
// the ops client, and that event reaches the receiver too.
func TestWebhookClosesTheLoop(t *testing.T) {
	rc := newHookReceiver(t)
	h := start(t, "", withHook(rc.srv.URL+"/latch"))
	ops, _ := h.addOps(t)
	uid := h.addUser(adaEmail, adaPass)
	var calls sync.WaitGroup
	rc.react = func(p webhook.Payload) {
		if p.Type != latch.EventLoginSucceeded && p.Type != "new_device_sign_in" {
			return
		}
		calls.Go(func() {
			req, _ := http.NewRequest("POST", h.srv.URL+"/admin/v1/users/"+p.Data.UserID+"/revoke",
				strings.NewReader(`{"reason":"anomaly model: score 0.97"}`))
			req.Header.Set("Authorization", "Bearer "+ops)
			req.Header.Set("Content-Type", "application/json")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Errorf("admin call: %v", err)
				return
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				t.Errorf("admin call: %d %s", res.StatusCode, b)
			}
		})
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	h.in.Start(ctx)

	tok := h.login(adaEmail, adaPass)
	access, refresh := tok.str("access_token"), tok.str("refresh_token")
	waitUntil(t, "the access token to be refused", func() bool {
		return h.do("GET", "/v1/me", "", bearer(access)...).code == http.StatusUnauthorized
	})
	calls.Wait()
	if r := h.refresh(refresh); r.code == http.StatusOK {
		t.Fatalf("refresh after the admin revocation: %d %s", r.code, r.raw)
	}
	events, err := h.in.Store.EventsByUser(t.Context(), uid, 20)
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, e := range events {
		if e.Type == latch.EventAdminRevoked && e.ClientID == "ops" && e.Detail["target"] == "user" &&
			e.Detail["reason"] == "anomaly model: score 0.97" {
			found = true
		}
	}
	if !found {
		t.Fatalf("no admin_revoked event naming the ops client among %+v", events)
	}
	waitUntil(t, "the admin_revoked webhook", func() bool { return rc.has(latch.EventAdminRevoked, uid) })
}

// TestWebhookEventTypes: events of the sign-in, refresh and revocation
// paths each reach the receiver, signed (the receiver verifies each).
func TestWebhookEventTypes(t *testing.T) {
	rc := newHookReceiver(t)
	h := start(t, "", func(c *config.Config) {
		withHook(rc.srv.URL)(c)
		c.Tokens.RefreshGrace = 0 // the first token is a reuse at once
	})
	uid := h.addUser(adaEmail, adaPass)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	h.in.Start(ctx)

	if r := h.do("POST", "/v1/auth/login", jsonBody(map[string]string{"email": adaEmail, "password": "wrong password!"})); r.code == http.StatusOK {
		t.Fatal("a wrong password signed in")
	}
	tok := h.login(adaEmail, adaPass)
	first := tok.str("refresh_token")
	next := h.refresh(first)
	expect(t, "refresh", next, http.StatusOK, "")
	h.refresh(first)
	tok = h.login(adaEmail, adaPass)
	expect(t, "logout-all", h.do("POST", "/v1/auth/logout-all", "", bearer(tok.str("access_token"))...), http.StatusNoContent, "")
	for _, typ := range []string{latch.EventLoginFailed, latch.EventLoginSucceeded, latch.EventRefreshReused, latch.EventLogoutAll} {
		waitUntil(t, typ+" at the receiver", func() bool { return rc.has(typ, uid) })
	}
}

// TestAdminRevokeRejects: every way of calling the admin API without the
// right is refused with a JSON 4xx, and so is bad input; the right call
// revokes one session.
func TestAdminRevokeRejects(t *testing.T) {
	h := start(t, "", nil)
	ops, app := h.addOps(t)
	uid := h.addUser(adaEmail, adaPass)
	user := h.login(adaEmail, adaPass)
	userAccess := user.str("access_token")
	sid, _ := segment(t, userAccess, 1)["sid"].(string)
	path := "/admin/v1/users/" + uid + "/revoke"
	js := []string{"Content-Type", "application/json"}

	expect(t, "no token", h.do("POST", path, ""), http.StatusUnauthorized, "")
	expect(t, "garbage token", h.do("POST", path, "", bearer("not.a.token")...), http.StatusUnauthorized, "invalid_token")
	expect(t, "user token", h.do("POST", path, "", bearer(userAccess)...), http.StatusForbidden, "insufficient_scope")
	expect(t, "client token without admin", h.do("POST", path, "", bearer(app)...), http.StatusForbidden, "insufficient_scope")
	expect(t, "unknown user", h.do("POST", "/admin/v1/users/nobody/revoke", "", bearer(ops)...), http.StatusNotFound, "not_found")
	expect(t, "unknown session", h.do("POST", "/admin/v1/sessions/nothing/revoke", "", bearer(ops)...), http.StatusNotFound, "not_found")
	expect(t, "bad JSON", h.do("POST", path, `{"reason":`, append(bearer(ops), js...)...), http.StatusBadRequest, "invalid_request")
	expect(t, "not JSON", h.do("POST", path, "reason=x", append(bearer(ops), "Content-Type", "text/plain")...), http.StatusBadRequest, "invalid_request")
	expect(t, "reason too long", h.do("POST", path, jsonBody(map[string]string{"reason": strings.Repeat("x", 201)}), bearer(ops)...), http.StatusBadRequest, "invalid_request")
	expect(t, "control characters", h.do("POST", path, `{"reason":"a\u0000b"}`, bearer(ops)...), http.StatusBadRequest, "invalid_request")
	expect(t, "GET", h.do("GET", path, "", bearer(ops)...), http.StatusMethodNotAllowed, "")
	// Nothing above revoked anything.
	expect(t, "the user's token after the refusals", h.do("GET", "/v1/me", "", bearer(userAccess)...), http.StatusOK, "")

	// The right call revokes the one session.
	r := h.do("POST", "/admin/v1/sessions/"+sid+"/revoke", "", bearer(ops)...)
	expect(t, "revoke the session", r, http.StatusOK, "")
	if r.str("user_id") != uid {
		t.Errorf("revoke answered %s", r.raw)
	}
	expect(t, "the revoked session's token", h.do("GET", "/v1/me", "", bearer(userAccess)...), http.StatusUnauthorized, "")
	if res := h.refresh(user.str("refresh_token")); res.code == http.StatusOK {
		t.Errorf("the revoked session refreshed")
	}

	// An expired admin token: 401.
	h.clock.Advance(h.cfg.Tokens.AccessTTL.D() + time.Minute)
	expect(t, "expired token", h.do("POST", path, "", bearer(ops)...), http.StatusUnauthorized, "invalid_token")
}

// TestWebhookSurvivesRestart: events recorded by an instance that stops
// before its relay ran (a crash right after the sign-in) are sent by the
// next instance on the data directory.
func TestWebhookSurvivesRestart(t *testing.T) {
	rc := newHookReceiver(t)
	a := start(t, "", withHook(rc.srv.URL))
	uid := a.addUser(adaEmail, adaPass)
	a.login(adaEmail, adaPass) // never started: no relay, no outbox worker
	dir := a.dir
	a.close()
	rc.mu.Lock()
	sent := len(rc.got)
	rc.mu.Unlock()
	if sent != 0 {
		t.Fatal("an instance that was never started sent a webhook")
	}

	b := start(t, dir, withHook(rc.srv.URL))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	b.in.Start(ctx)
	for _, typ := range []string{latch.EventUserCreated, latch.EventLoginSucceeded} {
		waitUntil(t, typ+" after the restart", func() bool { return rc.has(typ, uid) })
	}
}
