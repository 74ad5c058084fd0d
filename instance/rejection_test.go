package instance_test

// Rejection paths that no other test pinned down: each test here fails if
// the check it names is removed or weakened (found by a mutation sweep of
// auth/, server/ and config/).

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/latchauth/latch/config"
	"github.com/latchauth/latch/verifier"
)

// sessionIP returns the ip recorded for session sid, as listed to its owner.
func sessionIP(t *testing.T, h *harness, access, sid string) string {
	t.Helper()
	r := h.do("GET", "/v1/sessions", "", bearer(access)...)
	expect(t, "sessions", r, 200, "")
	for _, x := range r.body["sessions"].([]any) {
		if s := x.(map[string]any); s["id"] == sid {
			ip, _ := s["ip"].(string)
			return ip
		}
	}
	t.Fatalf("session %s not listed: %s", sid, r.raw)
	return ""
}

// TestRejectGraceWindowBoundaries: the previous refresh token yields the
// successor up to and including RefreshGrace after the rotation, and is
// reuse one second later.
func TestRejectGraceWindowBoundaries(t *testing.T) {
	h := start(t, "", nil) // grace 30s
	h.addUser(adaEmail, adaPass)
	t1 := h.login(adaEmail, adaPass).str("refresh_token")
	r2 := h.refresh(t1)
	expect(t, "rotate", r2, 200, "")
	h.clock.Advance(30 * time.Second)
	again := h.refresh(t1)
	expect(t, "retry exactly at the end of the grace window", again, 200, "")
	if again.str("refresh_token") != r2.str("refresh_token") {
		t.Fatal("retry inside the grace window got a different successor")
	}
	h.clock.Advance(time.Second)
	expect(t, "retry one second after the grace window", h.refresh(t1), 401, "invalid_grant")
	expect(t, "successor after the reuse", h.refresh(r2.str("refresh_token")), 401, "invalid_grant")
}

// TestRejectGraceWithoutSuccessor: once the sealed successor is erased the
// previous token is an invalid grant (never a 5xx), even inside the window.
func TestRejectGraceWithoutSuccessor(t *testing.T) {
	h := start(t, "", nil)
	h.addUser(adaEmail, adaPass)
	t1 := h.login(adaEmail, adaPass).str("refresh_token")
	expect(t, "rotate", h.refresh(t1), 200, "")
	if _, err := h.in.Store.ClearSuccessors(context.Background(), h.clock.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	expect(t, "previous token without a stored successor", h.refresh(t1), 401, "invalid_grant")
}

// TestRejectRevocationOutlivesLeeway: a revoked access token stays refused
// for as long as a verifier would accept it, leeway included, even by an
// instance that loads the revocation feed later.
func TestRejectRevocationOutlivesLeeway(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "latch-data")
	a := start(t, dir, nil) // access 5m, leeway 5s
	a.addUser(adaEmail, adaPass)
	t0 := a.clock.Now()
	r := a.login(adaEmail, adaPass)
	expect(t, "logout", a.do("POST", "/v1/auth/logout", "", bearer(r.str("access_token"))...), 204, "")
	a.close()

	// 5m03s later the token is expired but inside the 5s leeway.
	b := startAt(t, dir, t0.Add(5*time.Minute+3*time.Second), nil)
	expect(t, "revoked token inside the leeway", b.do("GET", "/v1/me", "", bearer(r.str("access_token"))...), 401, "invalid_token")
}

// TestRejectIdleSessionsNotListed: a session past its idle timeout is not
// listed as live.
func TestRejectIdleSessionsNotListed(t *testing.T) {
	h := start(t, "", nil) // idle 7d
	h.addUser(adaEmail, adaPass)
	a := h.login(adaEmail, adaPass, "User-Agent", "kept")
	h.login(adaEmail, adaPass, "User-Agent", "idle")
	h.clock.Advance(6 * 24 * time.Hour)
	ra := h.refresh(a.str("refresh_token"))
	expect(t, "refresh kept session", ra, 200, "")
	h.clock.Advance(24*time.Hour + time.Second) // the other one is now idle 7d + 1s
	ra = h.refresh(ra.str("refresh_token"))
	expect(t, "refresh kept session again", ra, 200, "")
	list := h.do("GET", "/v1/sessions", "", bearer(ra.str("access_token"))...)
	expect(t, "sessions", list, 200, "")
	if ss := list.body["sessions"].([]any); len(ss) != 1 || ss[0].(map[string]any)["user_agent"] != "kept" {
		t.Fatalf("sessions = %s, want only the one still in use", list.raw)
	}
}

// TestRejectUnusableStoredHash: a corrupt stored hash answers like a wrong
// password, not with a server error.
func TestRejectUnusableStoredHash(t *testing.T) {
	h := start(t, "", nil)
	uid := h.addUser(adaEmail, adaPass)
	if err := h.in.Store.SetPasswordHash(context.Background(), uid, "$argon2id$v=19$m=1,t=1,p=1$AAAA$AAAA", h.clock.Now()); err != nil {
		t.Fatal(err)
	}
	r := h.do("POST", "/v1/auth/login", jsonBody(map[string]string{"email": adaEmail, "password": adaPass}))
	expect(t, "login with an unusable stored hash", r, 401, "invalid_credentials")
}

// concurrently sends n requests at once and returns them.
func concurrently(h *harness, n int, req func(i int) response) []response {
	out := make([]response, n)
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-gate
			out[i] = req(i)
		})
	}
	close(gate)
	wg.Wait()
	return out
}

func busyConfig(c *config.Config) {
	c.Password.MaxConcurrent = 1
	c.Password.MaxWait = config.Duration(time.Millisecond)
	c.Registration = true
}

// TestRejectBusyUnknownEmail: unknown emails cost a hash slot like known
// ones, so saturation answers them 503 too instead of a fast 401 that would
// tell which accounts exist.
func TestRejectBusyUnknownEmail(t *testing.T) {
	h := start(t, "", busyConfig)
	res := concurrently(h, 16, func(i int) response {
		return h.do("POST", "/v1/auth/login", jsonBody(map[string]string{"email": "nobody@example.com", "password": adaPass}))
	})
	busy := 0
	for _, r := range res {
		switch {
		case r.code == http.StatusServiceUnavailable && r.header.Get("Retry-After") != "":
			busy++
		case r.code == http.StatusUnauthorized && r.str("error") == "invalid_credentials":
		default:
			t.Fatalf("unknown email under load: %d %s", r.code, r.raw)
		}
	}
	if busy == 0 {
		t.Fatal("16 concurrent sign-ins of an unknown email with one hashing slot: none answered 503")
	}
}

// TestRejectBusyRegistration: registration under hashing saturation is 503
// with Retry-After, never a 4xx or a created account without a hash.
func TestRejectBusyRegistration(t *testing.T) {
	h := start(t, "", busyConfig)
	res := concurrently(h, 16, func(i int) response {
		return h.do("POST", "/v1/auth/register", jsonBody(map[string]string{"email": "u" + string(rune('a'+i)) + "@example.com", "password": adaPass}))
	})
	busy := 0
	for _, r := range res {
		switch {
		case r.code == http.StatusServiceUnavailable && r.header.Get("Retry-After") != "":
			busy++
		case r.code == http.StatusCreated:
		default:
			t.Fatalf("registration under load: %d %s", r.code, r.raw)
		}
	}
	if busy == 0 {
		t.Fatal("16 concurrent registrations with one hashing slot: none answered 503")
	}
}

// TestRejectBodyTooLargeAfterTheObject: a body within the limit up to the
// end of its JSON object but over it in total is still 413.
func TestRejectBodyTooLargeAfterTheObject(t *testing.T) {
	h := start(t, "", nil)
	body := `{"email":"a@b.c","password":"x"}` + strings.Repeat(" ", 70<<10)
	expect(t, "trailing white space over 64 KiB", h.do("POST", "/v1/auth/login", body), 413, "request_too_large")
}

// TestRejectRegisterMissingFields: a missing field is invalid_request, not
// judged as a weak password or a bad address.
func TestRejectRegisterMissingFields(t *testing.T) {
	h := start(t, "", func(c *config.Config) { c.Registration = true })
	expect(t, "no password", h.do("POST", "/v1/auth/register", `{"email":"new@example.com"}`), 400, "invalid_request")
	expect(t, "no email", h.do("POST", "/v1/auth/register", `{"password":"correct horse battery staple"}`), 400, "invalid_request")
	expect(t, "empty password", h.do("POST", "/v1/auth/register", `{"email":"new@example.com","password":""}`), 400, "invalid_request")
	if r := h.do("POST", "/v1/auth/register", `{"email":"new@example.com"}`); !strings.Contains(r.str("error_description"), "password") {
		t.Fatalf("description does not name the field: %s", r.raw)
	}
}

// TestRejectResponseHeaders: token responses are uncacheable (RFC 6749
// §5.1: no-store and Pragma no-cache); so are answers with personal data
// and errors; and nothing is MIME-sniffed.
func TestRejectResponseHeaders(t *testing.T) {
	h := start(t, "", nil)
	h.addUser(adaEmail, adaPass)
	r := h.login(adaEmail, adaPass)
	if r.header.Get("Cache-Control") != "no-store" || r.header.Get("Pragma") != "no-cache" {
		t.Fatalf("token response: Cache-Control %q Pragma %q", r.header.Get("Cache-Control"), r.header.Get("Pragma"))
	}
	rr := h.refresh(r.str("refresh_token"))
	if rr.header.Get("Cache-Control") != "no-store" || rr.header.Get("Pragma") != "no-cache" {
		t.Fatalf("refresh response: Cache-Control %q Pragma %q", rr.header.Get("Cache-Control"), rr.header.Get("Pragma"))
	}
	access := rr.str("access_token")
	for name, res := range map[string]response{
		"me":          h.do("GET", "/v1/me", "", bearer(access)...),
		"sessions":    h.do("GET", "/v1/sessions", "", bearer(access)...),
		"wrong login": h.do("POST", "/v1/auth/login", jsonBody(map[string]string{"email": adaEmail, "password": "wrong password"})),
		"bad refresh": h.refresh("latch_rt_nope"),
	} {
		if cc := res.header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("%s: Cache-Control %q, want no-store", name, cc)
		}
		if res.header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: no X-Content-Type-Options: nosniff", name)
		}
	}
}

// signed returns an access token signed by h's active key with the given
// subject and session, as this server would issue it.
func signed(t *testing.T, h *harness, sub, sid string) string {
	t.Helper()
	now := h.clock.Now()
	tok, err := h.in.Ring.Sign(&verifier.Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: h.cfg.Issuer, Subject: sub, Audience: jwt.ClaimStrings{h.cfg.Audience},
			ExpiresAt: jwt.NewNumericDate(now.Add(time.Minute)), IssuedAt: jwt.NewNumericDate(now), ID: "jti-" + sid,
		},
		SessionID: sid, ClientID: h.cfg.ClientID,
	})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestRejectLogoutOfForeignSession: logging out with an access token
// revokes only a session of the token's subject.
func TestRejectLogoutOfForeignSession(t *testing.T) {
	h := start(t, "", nil)
	ada := h.addUser(adaEmail, adaPass)
	h.addUser("grace@example.com", adaPass)
	g := h.login("grace@example.com", adaPass)

	noSid := signed(t, h, ada, "")
	expect(t, "me with a session-less token", h.do("GET", "/v1/me", "", bearer(noSid)...), 200, "")
	expect(t, "logout with a session-less token", h.do("POST", "/v1/auth/logout", "", bearer(noSid)...), 400, "invalid_request")

	expect(t, "logout naming an unknown session", h.do("POST", "/v1/auth/logout", "", bearer(signed(t, h, ada, "s_unknown"))...), 204, "")

	foreign := signed(t, h, ada, g.str("session_id"))
	expect(t, "logout naming grace's session with ada's subject", h.do("POST", "/v1/auth/logout", "", bearer(foreign)...), 204, "")
	expect(t, "grace's refresh token", h.refresh(g.str("refresh_token")), 200, "")
	expect(t, "grace's access token", h.do("GET", "/v1/me", "", bearer(g.str("access_token"))...), 200, "")
}

// TestRejectForwardedForSpoofing: X-Forwarded-For is believed only from a
// trusted proxy, only from the right, and only up to the first hop that is
// not an address.
func TestRejectForwardedForSpoofing(t *testing.T) {
	ip := func(h *harness, xff string) string {
		r := h.login(adaEmail, adaPass, "X-Forwarded-For", xff)
		return sessionIP(t, h, r.str("access_token"), r.str("session_id"))
	}
	t.Run("untrusted peer", func(t *testing.T) {
		h := start(t, "", nil)
		h.addUser(adaEmail, adaPass)
		if got := ip(h, "203.0.113.9"); got != "127.0.0.1" {
			t.Fatalf("ip = %s: X-Forwarded-For believed from an untrusted peer", got)
		}
	})
	t.Run("trusted peer", func(t *testing.T) {
		h := start(t, "", func(c *config.Config) { c.TrustedProxies = []string{"127.0.0.0/8", "10.0.0.0/8"} })
		h.addUser(adaEmail, adaPass)
		for xff, want := range map[string]string{
			"203.0.113.9":                         "203.0.113.9",
			"198.51.100.1, 203.0.113.9":           "203.0.113.9", // the client forged the left entry
			"198.51.100.1, 203.0.113.9, 10.1.1.1": "203.0.113.9", // skip trusted hops from the right
			"198.51.100.1, not-an-address":        "127.0.0.1",   // stop at garbage: trust nothing left of it
			"10.2.2.2, 10.1.1.1":                  "10.2.2.2",    // all trusted: the leftmost
		} {
			if got := ip(h, xff); got != want {
				t.Errorf("X-Forwarded-For %q: ip %s, want %s", xff, got, want)
			}
		}
	})
}

// TestRejectWrongAudience: an access token for another audience is refused
// even though the same keys signed it.
func TestRejectWrongAudience(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "latch-data")
	a := start(t, dir, nil)
	a.addUser(adaEmail, adaPass)
	ra := a.login(adaEmail, adaPass)
	b := start(t, dir, func(c *config.Config) { c.Audience = "https://api.other.example" })
	rb := b.login(adaEmail, adaPass)
	expect(t, "b's token at b", b.do("GET", "/v1/me", "", bearer(rb.str("access_token"))...), 200, "")
	expect(t, "a's token at b", b.do("GET", "/v1/me", "", bearer(ra.str("access_token"))...), 401, "invalid_token")
	expect(t, "b's token at a", a.do("GET", "/v1/me", "", bearer(rb.str("access_token"))...), 401, "invalid_token")
}
