package instance_test

import (
	"context"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/auth"
	"github.com/latchauth/latch/config"
	"github.com/latchauth/latch/verifier"
)

// feedCovers reports whether the store's revocation feed, as of at, still
// holds an entry of kind for value.
func feedCovers(t *testing.T, h *harness, kind latch.RevocationKind, value string, at time.Time) bool {
	t.Helper()
	list, err := h.in.Store.RevocationsAfter(context.Background(), 0, at, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return slices.ContainsFunc(list, func(r latch.Revocation) bool { return r.Kind == kind && r.Value == value })
}

// TestRevocationOutlivesShorterTTL: a token issued under a 12h lifetime,
// whose session is logged out after a restart with a 10s lifetime, stays
// refused after the new lifetime has passed: the entry lives as long as the
// token, not as long as today's configuration says tokens live.
func TestRevocationOutlivesShorterTTL(t *testing.T) {
	for _, all := range []bool{false, true} {
		name := "logout"
		if all {
			name = "logout-all"
		}
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "latch-data")
			long := func(c *config.Config) { c.Tokens.AccessTTL = config.Duration(12 * time.Hour) }
			a := start(t, dir, long)
			uid := a.addUser(adaEmail, adaPass)
			t0 := a.clock.Now()
			first := a.login(adaEmail, adaPass)
			a.close()

			short := func(c *config.Config) { c.Tokens.AccessTTL = config.Duration(10 * time.Second) }
			b := startAt(t, dir, t0.Add(time.Minute), short)
			sid := first.str("session_id")
			if all {
				// Another session, under the short lifetime, ends them all.
				second := b.login(adaEmail, adaPass)
				expect(t, "logout-all", b.do("POST", "/v1/auth/logout-all", "", bearer(second.str("access_token"))...), 204, "")
			} else {
				// Through the refresh token, so that only the revocation,
				// not the access token's lifetime, is on trial.
				expect(t, "logout", b.do("POST", "/v1/auth/logout", jsonBody(map[string]string{"refresh_token": first.str("refresh_token")})), 204, "")
			}
			expect(t, "first token right after logout", b.do("GET", "/v1/me", "", bearer(first.str("access_token"))...), 401, "invalid_token")

			for _, later := range []time.Duration{30 * time.Second, 6 * time.Hour, 12*time.Hour - time.Minute} {
				b.clock.Advance(later - (b.clock.Now().Sub(t0) - time.Minute))
				now := b.clock.Now()
				if !feedCovers(t, b, latch.RevokeSession, sid, now) {
					t.Fatalf("%v after logout the session's revocation has left the feed; its token expires at %v", later, t0.Add(12*time.Hour))
				}
				if all && !feedCovers(t, b, latch.RevokeUser, uid, now) {
					t.Fatalf("%v after logout-all the user's cutoff has left the feed", later)
				}
				expect(t, "first token "+later.String()+" after logout", b.do("GET", "/v1/me", "", bearer(first.str("access_token"))...), 401, "invalid_token")
			}
			// Once no token can be valid, the entry goes.
			b.clock.Advance(13 * time.Hour)
			if feedCovers(t, b, latch.RevokeSession, sid, b.clock.Now()) {
				t.Fatal("the entry outlived every token it covers")
			}
		})
	}
}

// audClient registers a confidential client whose tokens carry its own
// audience, and returns its basic-auth header.
func (h *harness) audClient(id, audience string) []string {
	h.t.Helper()
	secret := svcSecret + "-" + id
	if _, err := h.in.Auth.CreateClient(context.Background(), auth.NewClient{ID: id, Secret: secret, Audience: audience}); err != nil {
		h.t.Fatal(err)
	}
	return basic(id, secret)
}

func (h *harness) clientToken(t *testing.T, hdr []string) string {
	t.Helper()
	r := h.form("/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, hdr...)
	expect(t, "client credentials", r, 200, "")
	return r.str("access_token")
}

func (h *harness) introspect(t *testing.T, tok string, hdr []string) response {
	t.Helper()
	r := h.form("/oauth2/introspect", url.Values{"token": {tok}}, hdr...)
	expect(t, "introspect", r, 200, "")
	return r
}

// TestRevokeAndIntrospectClientAudience: tokens issued for a client's own
// audience are recognised by /oauth2/revoke and /oauth2/introspect; a
// token with an audience the server does not know stays inactive and is
// not revoked.
func TestRevokeAndIntrospectClientAudience(t *testing.T) {
	h := start(t, "", nil)
	svc := h.audClient("reports", "https://reports.example")
	tok := h.clientToken(t, svc)
	if aud := segment(t, tok, 1)["aud"]; aud != "https://reports.example" && !slices.Equal(toStrings(aud), []string{"https://reports.example"}) {
		t.Fatalf("aud = %v", aud)
	}

	r := h.introspect(t, tok, svc)
	if r.body["active"] != true || r.str("client_id") != "reports" {
		t.Fatalf("introspection of the client's own token = %s", r.raw)
	}
	expect(t, "revoke", h.form("/oauth2/revoke", url.Values{"token": {tok}}, svc...), 200, "")
	jti, _ := segment(t, tok, 1)["jti"].(string)
	if !feedCovers(t, h, latch.RevokeToken, jti, h.clock.Now()) {
		t.Fatal("revoke answered 200 but revoked nothing")
	}
	if r := h.introspect(t, tok, svc); r.body["active"] != false {
		t.Fatalf("introspection after revoke = %s", r.raw)
	}

	// A token signed by the server for an audience nobody is registered
	// for: neither introspected nor revoked.
	now := h.clock.Now()
	forged, err := h.in.Ring.Sign(&verifier.Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: h.cfg.Issuer, Subject: "reports", Audience: jwt.ClaimStrings{"https://unknown.example"},
			ExpiresAt: jwt.NewNumericDate(now.Add(time.Minute)), IssuedAt: jwt.NewNumericDate(now), ID: "unknown-aud-jti",
		},
		ClientID: "reports",
	})
	if err != nil {
		t.Fatal(err)
	}
	if r := h.introspect(t, forged, svc); string(r.raw) != "{\"active\":false}\n" {
		t.Fatalf("introspection of an unknown audience = %s", r.raw)
	}
	expect(t, "revoke unknown audience", h.form("/oauth2/revoke", url.Values{"token": {forged}}, svc...), 200, "")
	if feedCovers(t, h, latch.RevokeToken, "unknown-aud-jti", now) {
		t.Fatal("a token of an unknown audience was revoked")
	}
}

func toStrings(v any) []string {
	var out []string
	if l, ok := v.([]any); ok {
		for _, x := range l {
			s, _ := x.(string)
			out = append(out, s)
		}
	}
	return out
}

// TestIntrospectionVisibility: a client sees its own tokens and those of
// the audience it is registered for; for everything else it is told
// {"active":false}.
func TestIntrospectionVisibility(t *testing.T) {
	h := start(t, "", nil)
	h.addUser(adaEmail, adaPass)
	user := h.login(adaEmail, adaPass).str("access_token") // client latch, server audience

	reports := h.audClient("reports", "https://reports.example")
	reportsAPI := h.audClient("reports-api", "https://reports.example") // serves that audience
	billing := h.audClient("billing", "https://billing.example")
	plain := h.audClient("plain", "")                // no audience: its own tokens only
	firstParty := h.audClient("api", h.cfg.Audience) // serves the server's audience

	reportsTok := h.clientToken(t, reports)
	plainTok := h.clientToken(t, plain)
	if aud := segment(t, plainTok, 1)["aud"]; aud != h.cfg.Audience && !slices.Equal(toStrings(aud), []string{h.cfg.Audience}) {
		t.Fatalf("a client without audience got aud %v", aud)
	}

	for _, tc := range []struct {
		what   string
		tok    string
		caller []string
		active bool
	}{
		{"own token, own audience", reportsTok, reports, true},
		{"own token, server audience", plainTok, plain, true},
		{"token of the audience the caller serves", reportsTok, reportsAPI, true},
		{"first-party token to the server audience's resource server", user, firstParty, true},
		{"another client's token, another audience", reportsTok, billing, false},
		{"another client's token, caller without audience", reportsTok, plain, false},
		{"a user's token, caller without audience", user, plain, false},
		{"a user's token, caller with another audience", user, billing, false},
		{"another client's server-audience token, caller with another audience", plainTok, reports, false},
	} {
		r := h.introspect(t, tc.tok, tc.caller)
		if tc.active && r.body["active"] != true {
			t.Errorf("%s: %s, want active", tc.what, r.raw)
		}
		if !tc.active && string(r.raw) != "{\"active\":false}\n" {
			t.Errorf("%s: %s, want exactly {\"active\":false}", tc.what, r.raw)
		}
	}
}

// device headers: a user agent and, through the trusted proxy, an address.
func device(ua, ip string) []string { return []string{"User-Agent", ua, "X-Forwarded-For", ip} }

func graceHarness(t *testing.T) *harness {
	return start(t, "", func(c *config.Config) { c.TrustedProxies = []string{"127.0.0.0/8", "::1/128"} })
}

func (h *harness) refreshFrom(tok string, dev []string) response {
	h.t.Helper()
	return h.do("POST", "/v1/auth/refresh", jsonBody(map[string]string{"refresh_token": tok}), dev...)
}

// graceEvents returns the user's events of type typ, oldest first.
func graceEvents(t *testing.T, h *harness, uid, typ string) []latch.Event {
	t.Helper()
	all, err := h.in.Store.EventsByUser(context.Background(), uid, 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []latch.Event
	for i := len(all) - 1; i >= 0; i-- {
		if all[i].Type == typ {
			out = append(out, all[i])
		}
	}
	return out
}

// TestGraceReplayFromAnotherDevice: inside the grace window the previous
// token gets the successor only from the device that rotated it. Another
// user agent, or an address in another /24, is reuse: the family dies and
// the event names both devices.
func TestGraceReplayFromAnotherDevice(t *testing.T) {
	phone := device("LatchApp/2.1 (iPhone)", "203.0.113.5")
	for _, tc := range []struct {
		what string
		dev  []string
	}{
		{"another user agent", device("curl/8.5", "203.0.113.5")},
		{"another /24", device("LatchApp/2.1 (iPhone)", "198.51.100.5")},
		{"another /24 next door", device("LatchApp/2.1 (iPhone)", "203.0.114.5")},
	} {
		t.Run(tc.what, func(t *testing.T) {
			h := graceHarness(t)
			uid := h.addUser(adaEmail, adaPass)
			t1 := h.login(adaEmail, adaPass, phone...).str("refresh_token")
			r2 := h.refreshFrom(t1, phone)
			expect(t, "rotate", r2, 200, "")
			expect(t, "replay from "+tc.what, h.refreshFrom(t1, tc.dev), 401, "invalid_grant")
			expect(t, "successor after the reuse", h.refreshFrom(r2.str("refresh_token"), phone), 401, "invalid_grant")
			expect(t, "access token after the reuse", h.do("GET", "/v1/me", "", bearer(r2.str("access_token"))...), 401, "invalid_token")
			ev := graceEvents(t, h, uid, latch.EventRefreshReused)
			if len(ev) != 1 || ev[0].Detail["reason"] != "other_device" || ev[0].UserAgent != tc.dev[1] || ev[0].IP != tc.dev[3] ||
				ev[0].Detail["session_user_agent"] != phone[1] || ev[0].Detail["session_ip"] != phone[3] {
				t.Fatalf("reuse events = %+v, want one naming both devices", ev)
			}
		})
	}
}

// TestGraceReplayLimit: after the rotation's burst, the same device gets
// the identical successor at most tokens.refresh_grace_replays times per
// rotation (a neighbour in the same /24 with the same app counts as the
// same device), each replay an event with its count; one more is reuse.
func TestGraceReplayLimit(t *testing.T) {
	h := graceHarness(t) // 3 replays
	uid := h.addUser(adaEmail, adaPass)
	phone := device("LatchApp/2.1 (iPhone)", "203.0.113.5")
	t1 := h.login(adaEmail, adaPass, phone...).str("refresh_token")
	r2 := h.refreshFrom(t1, phone)
	expect(t, "rotate", r2, 200, "")
	h.clock.Advance(auth.GraceBurst + time.Second)
	for i, ip := range []string{"203.0.113.5", "203.0.113.77", "203.0.113.5"} {
		again := h.refreshFrom(t1, device(phone[1], ip))
		expect(t, "replay "+strconv.Itoa(i+1), again, 200, "")
		if again.str("refresh_token") != r2.str("refresh_token") {
			t.Fatalf("replay %d got another successor", i+1)
		}
	}
	ev := graceEvents(t, h, uid, latch.EventRefreshGraceReplay)
	if len(ev) != 3 {
		t.Fatalf("%d grace replay events, want 3: %+v", len(ev), ev)
	}
	for i, e := range ev {
		if e.Detail["count"] != strconv.Itoa(i+1) || e.Detail["generation"] != "1" || e.Detail["burst"] != "false" || e.SessionID != r2.str("session_id") {
			t.Errorf("grace replay event %d = %+v", i+1, e)
		}
	}
	expect(t, "fourth replay", h.refreshFrom(t1, phone), 401, "invalid_grant")
	expect(t, "successor after the fourth replay", h.refreshFrom(r2.str("refresh_token"), phone), 401, "invalid_grant")
	if ev := graceEvents(t, h, uid, latch.EventRefreshReused); len(ev) != 1 || ev[0].Detail["reason"] != "replays_exhausted" {
		t.Fatalf("reuse events = %+v, want one for replays_exhausted", ev)
	}
}

// TestGraceReplayNewRotationNewCount: the limit is per rotation, and the
// device of the latest rotation is the one that counts.
func TestGraceReplayNewRotationNewCount(t *testing.T) {
	h := graceHarness(t)
	h.addUser(adaEmail, adaPass)
	phone := device("LatchApp/2.1 (iPhone)", "203.0.113.5")
	tok := h.login(adaEmail, adaPass, phone...).str("refresh_token")
	for range 3 {
		next := h.refreshFrom(tok, phone)
		expect(t, "rotate", next, 200, "")
		h.clock.Advance(auth.GraceBurst + time.Second)
		for i := range 3 {
			expect(t, "replay "+strconv.Itoa(i+1), h.refreshFrom(tok, phone), 200, "")
		}
		tok = next.str("refresh_token")
	}
	expect(t, "current token", h.refreshFrom(tok, phone), 200, "")
}

// TestGraceBurstFromOneDevice: replays at the instant of the rotation (tabs
// of one browser, an immediate retry) are not limited: ten of them all get
// the one successor, and the device still has its replays afterwards.
func TestGraceBurstFromOneDevice(t *testing.T) {
	h := graceHarness(t)
	uid := h.addUser(adaEmail, adaPass)
	tab := device("Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0", "2001:db8:1:2::10")
	t1 := h.login(adaEmail, adaPass, tab...).str("refresh_token")
	r2 := h.refreshFrom(t1, tab)
	expect(t, "rotate", r2, 200, "")
	var wg sync.WaitGroup
	results := make([]response, 10)
	for i := range results {
		// Another address of the same /64: one device.
		dev := device(tab[1], "2001:db8:1:2::"+strconv.Itoa(20+i))
		wg.Go(func() { results[i] = h.refreshFrom(t1, dev) })
	}
	wg.Wait()
	for i, r := range results {
		expect(t, "burst replay "+strconv.Itoa(i), r, 200, "")
		if r.str("refresh_token") != r2.str("refresh_token") {
			t.Fatalf("burst replay %d got another successor", i)
		}
	}
	h.clock.Advance(auth.GraceBurst + time.Second)
	again := h.refreshFrom(t1, tab)
	expect(t, "replay after the burst", again, 200, "")
	if again.str("refresh_token") != r2.str("refresh_token") {
		t.Fatal("replay after the burst got another successor")
	}
	if ev := graceEvents(t, h, uid, latch.EventRefreshGraceReplay); len(ev) != 11 || ev[10].Detail["count"] != "1" || ev[0].Detail["burst"] != "true" {
		t.Fatalf("grace replay events = %+v, want 10 of the burst and 1 counted", ev)
	}
}

// TestRotationViaOAuthReplayedViaAPI: the authenticating client is part of
// the device: a token rotated at /oauth2/token by its client and replayed
// at /v1/auth/refresh without client authentication is reuse.
func TestRotationViaOAuthReplayedViaAPI(t *testing.T) {
	h := graceHarness(t)
	h.addClients()
	h.addUser(adaEmail, adaPass)
	dev := device("LatchApp/2.1", "203.0.113.5")
	app := h.do("POST", "/v1/auth/login", jsonBody(map[string]string{"email": adaEmail, "password": adaPass, "client_id": "app"}), dev...)
	expect(t, "login", app, 200, "")
	t1 := app.str("refresh_token")
	r2 := h.form("/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {t1}, "client_id": {"app"}}, dev...)
	expect(t, "rotate at the token endpoint", r2, 200, "")
	again := h.form("/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {t1}, "client_id": {"app"}}, dev...)
	expect(t, "replay at the token endpoint", again, 200, "")
	if again.str("refresh_token") != r2.str("refresh_token") {
		t.Fatal("replay at the token endpoint got another successor")
	}
	expect(t, "replay at /v1/auth/refresh", h.refreshFrom(t1, dev), 401, "invalid_grant")
	expect(t, "successor after the reuse", h.form("/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {r2.str("refresh_token")}, "client_id": {"app"}}, dev...), 400, "invalid_grant")
}

// TestRevocationCoversVerifierLeeway: a resource server's verifier may
// allow up to verifier.MaxLeeway of clock skew past exp, whatever this
// server's tokens.leeway; a revocation entry (session, user, one token)
// must stay in the feed until then, or such a verifier prunes it and
// accepts the revoked token again.
func TestRevocationCoversVerifierLeeway(t *testing.T) {
	h := start(t, "", nil) // tokens.leeway: the default 5 s
	h.addUser(adaEmail, adaPass)
	t0 := h.clock.Now()
	first := h.login(adaEmail, adaPass)
	expect(t, "logout", h.do("POST", "/v1/auth/logout", jsonBody(map[string]string{"refresh_token": first.str("refresh_token")})), 204, "")
	svc := h.audClient("svc-leeway", "")
	tok := h.clientToken(t, svc)
	expect(t, "revoke", h.form("/oauth2/revoke", url.Values{"token": {tok}}, svc...), 200, "")
	var claims jwt.RegisteredClaims
	if _, _, err := jwt.NewParser().ParseUnverified(tok, &claims); err != nil {
		t.Fatal(err)
	}

	exp := t0.Add(h.cfg.Tokens.AccessTTL.D())
	// The moment before a verifier with the largest leeway stops
	// accepting either token by its exp.
	last := exp.Add(verifier.MaxLeeway - time.Second)
	if !feedCovers(t, h, latch.RevokeSession, first.str("session_id"), last) {
		t.Errorf("the session's entry left the feed before exp + %v", verifier.MaxLeeway)
	}
	if !feedCovers(t, h, latch.RevokeToken, claims.ID, last) {
		t.Errorf("the token's entry left the feed before exp + %v", verifier.MaxLeeway)
	}
}
