package instance_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/auth"
)

const svcSecret = "svc-CN2JWBXsn7n4znjKbtgiBV2HdUu4w9mhcwvPhq05dFQ" // random: weak secrets are refused

// addClients registers a confidential service client that may read the
// revocation feed (svc), one that may not (other), and a public app.
func (h *harness) addClients() {
	h.t.Helper()
	ctx := context.Background()
	if _, err := h.in.Auth.CreateClient(ctx, auth.NewClient{ID: "svc", Secret: svcSecret, Scopes: []string{"read", "write"},
		Permissions: []string{latch.PermissionReadRevocations}}); err != nil {
		h.t.Fatal(err)
	}
	if _, err := h.in.Auth.CreateClient(ctx, auth.NewClient{ID: "other", Secret: svcSecret + "-other"}); err != nil {
		h.t.Fatal(err)
	}
	if _, err := h.in.Auth.CreateClient(ctx, auth.NewClient{ID: "app", Public: true}); err != nil {
		h.t.Fatal(err)
	}
}

// form posts an x-www-form-urlencoded body; hdr as in do.
func (h *harness) form(path string, v url.Values, hdr ...string) response {
	h.t.Helper()
	return h.do("POST", path, v.Encode(), append([]string{"Content-Type", "application/x-www-form-urlencoded"}, hdr...)...)
}

func basic(id, secret string) []string {
	r, _ := http.NewRequest("GET", "/", nil)
	r.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	return []string{"Authorization", r.Header.Get("Authorization")}
}

func TestClientCredentialsWithXOAuth2(t *testing.T) {
	h := start(t, "", nil)
	h.addClients()
	for name, style := range map[string]oauth2.AuthStyle{
		"basic": oauth2.AuthStyleInHeader, "post": oauth2.AuthStyleInParams, "auto": oauth2.AuthStyleAutoDetect,
	} {
		t.Run(name, func(t *testing.T) {
			cc := clientcredentials.Config{ClientID: "svc", ClientSecret: svcSecret, TokenURL: h.srv.URL + "/oauth2/token", Scopes: []string{"read"}, AuthStyle: style}
			tok, err := cc.Token(context.WithValue(t.Context(), oauth2.HTTPClient, h.srv.Client()))
			if err != nil {
				t.Fatalf("token: %v", err)
			}
			if tok.TokenType != "Bearer" || tok.RefreshToken != "" || tok.Expiry.Before(time.Now().Add(4*time.Minute)) {
				t.Fatalf("token = %+v", tok)
			}
			claims, err := h.in.Verifier.Verify(tok.AccessToken)
			if err != nil {
				t.Fatalf("verify: %v", err)
			}
			if claims.Subject != "svc" || claims.ClientID != "svc" || claims.Scope != "read" || claims.SessionID != "" {
				t.Fatalf("claims = %+v", claims)
			}
			// The client uses its token: the revocation feed accepts it.
			client := cc.Client(context.WithValue(t.Context(), oauth2.HTTPClient, h.srv.Client()))
			res, err := client.Get(h.srv.URL + "/v1/revocations")
			if err != nil || res.StatusCode != 200 {
				t.Fatalf("feed with the client's token: %v %v", res, err)
			}
			res.Body.Close()
		})
	}
	// Without scope: all of the client's scopes.
	r := h.form("/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, basic("svc", svcSecret)...)
	expect(t, "all scopes", r, 200, "")
	if r.str("scope") != "read write" || r.header.Get("Cache-Control") != "no-store" || r.header.Get("Pragma") != "no-cache" {
		t.Fatalf("response = %s %v", r.raw, r.header)
	}
}

func TestTokenEndpointRejections(t *testing.T) {
	h := start(t, "", nil)
	h.addClients()
	cc := url.Values{"grant_type": {"client_credentials"}}
	post := func(v url.Values) url.Values {
		out := url.Values{}
		for k, x := range v {
			out[k] = x
		}
		out.Set("client_id", "svc")
		out.Set("client_secret", svcSecret)
		return out
	}
	rows := []struct {
		name    string
		body    string
		hdr     []string
		code    int
		errCode string
	}{
		{"no client", cc.Encode(), nil, 401, "invalid_client"},
		{"wrong secret basic", cc.Encode(), basic("svc", "wrong-secret-wrong-secret-wrong-secret"), 401, "invalid_client"},
		{"wrong secret post", url.Values{"grant_type": {"client_credentials"}, "client_id": {"svc"}, "client_secret": {"nope"}}.Encode(), nil, 401, "invalid_client"},
		{"unknown client", cc.Encode(), basic("ghost", svcSecret), 401, "invalid_client"},
		{"empty secret", url.Values{"grant_type": {"client_credentials"}, "client_id": {"svc"}, "client_secret": {""}}.Encode(), nil, 401, "invalid_client"},
		{"confidential without secret", url.Values{"grant_type": {"client_credentials"}, "client_id": {"svc"}}.Encode(), nil, 401, "invalid_client"},
		{"confidential with an empty basic password", url.Values{"grant_type": {"client_credentials"}}.Encode(), basic("svc", ""), 401, "invalid_client"},
		// A public client sent as "Basic app:" (x/oauth2's auto-detection)
		// is recognised as the public client it is.
		{"public client by basic without password", url.Values{"grant_type": {"client_credentials"}}.Encode(), basic("app", ""), 400, "unauthorized_client"},
		{"public client with a secret", url.Values{"grant_type": {"client_credentials"}, "client_id": {"app"}, "client_secret": {"x"}}.Encode(), nil, 401, "invalid_client"},
		{"two auth methods", post(cc).Encode(), basic("svc", svcSecret), 400, "invalid_request"},
		{"basic and other client_id", url.Values{"grant_type": {"client_credentials"}, "client_id": {"other"}}.Encode(), basic("svc", svcSecret), 400, "invalid_request"},
		{"public client credentials", url.Values{"grant_type": {"client_credentials"}, "client_id": {"app"}}.Encode(), nil, 400, "unauthorized_client"},
		{"scope too wide", url.Values{"grant_type": {"client_credentials"}, "scope": {"read admin"}}.Encode(), basic("svc", svcSecret), 400, "invalid_scope"},
		{"password grant", url.Values{"grant_type": {"password"}, "username": {"a"}, "password": {"b"}}.Encode(), basic("svc", svcSecret), 400, "unsupported_grant_type"},
		{"unknown grant", url.Values{"grant_type": {"magic"}}.Encode(), basic("svc", svcSecret), 400, "unsupported_grant_type"},
		{"no grant", "", basic("svc", svcSecret), 400, "invalid_request"},
		{"duplicate parameter", "grant_type=client_credentials&grant_type=client_credentials", basic("svc", svcSecret), 400, "invalid_request"},
		{"bad encoding", "grant_type=%zz", basic("svc", svcSecret), 400, "invalid_request"},
		{"refresh without token", url.Values{"grant_type": {"refresh_token"}}.Encode(), basic("svc", svcSecret), 400, "invalid_request"},
		{"refresh garbage", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"garbage"}}.Encode(), basic("svc", svcSecret), 400, "invalid_grant"},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			r := h.do("POST", "/oauth2/token", row.body, append([]string{"Content-Type", "application/x-www-form-urlencoded"}, row.hdr...)...)
			expect(t, row.name, r, row.code, row.errCode)
			if row.code == 401 && !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Basic") {
				t.Fatalf("401 without a Basic challenge: %v", r.header)
			}
			if r.header.Get("Cache-Control") != "no-store" {
				t.Fatal("error without Cache-Control: no-store")
			}
		})
	}
	expect(t, "JSON body", h.do("POST", "/oauth2/token", `{"grant_type":"client_credentials"}`, basic("svc", svcSecret)...), 400, "invalid_request")
	expect(t, "query parameters", h.do("POST", "/oauth2/token?grant_type=client_credentials", "x=1",
		append([]string{"Content-Type", "application/x-www-form-urlencoded"}, basic("svc", svcSecret)...)...), 400, "invalid_request")
	expect(t, "GET", h.do("GET", "/oauth2/token", ""), 405, "method_not_allowed")
}

// TestRefreshGrantForPublicClient: a first-party app signs a user in and
// refreshes with a standard OAuth client; a refresh token presented by the
// wrong client, or with failed client authentication, is not consumed.
func TestRefreshGrantForPublicClient(t *testing.T) {
	h := start(t, "", nil)
	h.addClients()
	h.addUser(adaEmail, adaPass)
	login := h.do("POST", "/v1/auth/login", jsonBody(map[string]string{"email": adaEmail, "password": adaPass, "client_id": "app"}))
	expect(t, "login for app", login, 200, "")
	if c := segment(t, login.str("access_token"), 1)["client_id"]; c != "app" {
		t.Fatalf("client_id = %v", c)
	}
	expect(t, "login for a confidential client", h.do("POST", "/v1/auth/login", jsonBody(map[string]string{"email": adaEmail, "password": adaPass, "client_id": "svc"})), 400, "unauthorized_client")
	expect(t, "login for an unknown client", h.do("POST", "/v1/auth/login", jsonBody(map[string]string{"email": adaEmail, "password": adaPass, "client_id": "ghost"})), 400, "unauthorized_client")
	rt := login.str("refresh_token")

	// Another client, or the right one failing authentication: refused,
	// and the token survives.
	grant := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
	expect(t, "other client", h.form("/oauth2/token", grant, basic("svc", svcSecret)...), 400, "invalid_grant")
	expect(t, "failed client auth", h.form("/oauth2/token", grant, basic("app", "x")...), 401, "invalid_client")
	expect(t, "revoke by another client", h.form("/oauth2/revoke", url.Values{"token": {rt}}, basic("svc", svcSecret)...), 200, "")

	conf := &oauth2.Config{ClientID: "app", Endpoint: oauth2.Endpoint{TokenURL: h.srv.URL + "/oauth2/token", AuthStyle: oauth2.AuthStyleInParams}}
	ctx := context.WithValue(t.Context(), oauth2.HTTPClient, h.srv.Client())
	src := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: rt, Expiry: time.Now().Add(-time.Minute)})
	tok, err := src.Token()
	if err != nil {
		t.Fatalf("refresh with x/oauth2: %v", err)
	}
	if tok.RefreshToken == rt || tok.AccessToken == "" {
		t.Fatalf("not rotated: %+v", tok)
	}
	expect(t, "me with refreshed token", h.do("GET", "/v1/me", "", bearer(tok.AccessToken)...), 200, "")
	// The old token now counts as reuse outside... it is still inside the
	// grace window: the same successor comes back.
	again := h.form("/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {"app"}})
	expect(t, "retry inside grace", again, 200, "")
	if again.str("refresh_token") != tok.RefreshToken {
		t.Fatal("retry inside the grace window returned another successor")
	}
}

func TestRevokeEndpoint(t *testing.T) {
	h := start(t, "", nil)
	h.addClients()
	h.addUser(adaEmail, adaPass)

	// A refresh token revokes its whole session.
	a := h.do("POST", "/v1/auth/login", jsonBody(map[string]string{"email": adaEmail, "password": adaPass, "client_id": "app"}))
	expect(t, "revoke refresh", h.form("/oauth2/revoke", url.Values{"token": {a.str("refresh_token")}, "token_type_hint": {"refresh_token"}, "client_id": {"app"}}), 200, "")
	expect(t, "refresh after revoke", h.refresh(a.str("refresh_token")), 401, "invalid_grant")
	expect(t, "access after session revoke", h.do("GET", "/v1/me", "", bearer(a.str("access_token"))...), 401, "invalid_token")

	// An access token is revoked by its jti; its client's other tokens live.
	t1 := h.form("/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, basic("svc", svcSecret)...).str("access_token")
	t2 := h.form("/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, basic("svc", svcSecret)...).str("access_token")
	// Another client cannot revoke it.
	expect(t, "revoke other's access token", h.form("/oauth2/revoke", url.Values{"token": {t1}}, basic("other", svcSecret+"-other")...), 200, "")
	if _, err := h.in.Verifier.Verify(t1); err != nil {
		t.Fatalf("another client revoked svc's token: %v", err)
	}
	expect(t, "revoke access token", h.form("/oauth2/revoke", url.Values{"token": {t1}, "token_type_hint": {"access_token"}}, basic("svc", svcSecret)...), 200, "")
	if _, err := h.in.Verifier.Verify(t1); err == nil {
		t.Fatal("revoked access token still verifies")
	}
	if _, err := h.in.Verifier.Verify(t2); err != nil {
		t.Fatalf("sibling token: %v", err)
	}
	expect(t, "revoke unknown token", h.form("/oauth2/revoke", url.Values{"token": {"whatever"}}, basic("svc", svcSecret)...), 200, "")
	expect(t, "revoke without token", h.form("/oauth2/revoke", url.Values{}, basic("svc", svcSecret)...), 400, "invalid_request")
	expect(t, "revoke unauthenticated", h.form("/oauth2/revoke", url.Values{"token": {t2}}), 401, "invalid_client")
}

func TestIntrospectEndpoint(t *testing.T) {
	h := start(t, "", nil)
	h.addClients()
	h.addUser(adaEmail, adaPass)
	// The resource server for the first-party tokens: registered with the
	// server's audience, it may introspect them.
	if _, err := h.in.Auth.CreateClient(t.Context(), auth.NewClient{ID: "api", Secret: svcSecret + "-api", Audience: h.cfg.Audience}); err != nil {
		t.Fatal(err)
	}
	svc := basic("api", svcSecret+"-api")
	u := h.login(adaEmail, adaPass)

	r := h.form("/oauth2/introspect", url.Values{"token": {u.str("access_token")}}, svc...)
	expect(t, "introspect access", r, 200, "")
	if r.body["active"] != true || r.str("sub") == "" || r.str("client_id") != "latch" || r.str("sid") != u.str("session_id") || r.body["exp"] == nil {
		t.Fatalf("introspection = %s", r.raw)
	}
	inactive := func(what, tok string) {
		t.Helper()
		r := h.form("/oauth2/introspect", url.Values{"token": {tok}}, svc...)
		if r.code != 200 || string(r.raw) != "{\"active\":false}\n" {
			t.Fatalf("%s: %d %s, want exactly {\"active\":false}", what, r.code, r.raw)
		}
	}
	inactive("garbage", "garbage")
	inactive("forged", u.str("access_token")[:len(u.str("access_token"))-4]+"AAAA")
	inactive("another user's refresh token (issued to the first-party client)", u.str("refresh_token"))

	app := h.do("POST", "/v1/auth/login", jsonBody(map[string]string{"email": adaEmail, "password": adaPass, "client_id": "app"}))
	// Refresh tokens are described only to their own client, and app is
	// public: it cannot introspect at all.
	expect(t, "public client introspects", h.form("/oauth2/introspect", url.Values{"token": {app.str("refresh_token")}, "client_id": {"app"}}), 401, "invalid_client")

	expect(t, "logout", h.do("POST", "/v1/auth/logout", "", bearer(u.str("access_token"))...), 204, "")
	inactive("revoked", u.str("access_token"))
	h.clock.Advance(10 * time.Minute)
	inactive("expired", app.str("access_token"))
	expect(t, "unauthenticated", h.form("/oauth2/introspect", url.Values{"token": {"x"}}), 401, "invalid_client")
	expect(t, "no token", h.form("/oauth2/introspect", url.Values{}, svc...), 400, "invalid_request")
}

func TestMetadata(t *testing.T) {
	h := start(t, "", nil)
	for _, path := range []string{"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"} {
		r := h.do("GET", path, "")
		expect(t, path, r, 200, "")
		want := map[string]string{
			"issuer": "http://latch.test", "token_endpoint": "http://latch.test/oauth2/token",
			"jwks_uri": "http://latch.test/.well-known/jwks.json", "revocation_endpoint": "http://latch.test/oauth2/revoke",
			"introspection_endpoint": "http://latch.test/oauth2/introspect",
		}
		for k, v := range want {
			if r.str(k) != v {
				t.Errorf("%s: %s = %q, want %q", path, k, r.str(k), v)
			}
		}
		grants, _ := json.Marshal(r.body["grant_types_supported"])
		if string(grants) != `["authorization_code","client_credentials","refresh_token"]` {
			t.Errorf("grant_types_supported = %s (the password grant must not be offered)", grants)
		}
		if methods, _ := json.Marshal(r.body["token_endpoint_auth_methods_supported"]); !strings.Contains(string(methods), "client_secret_basic") {
			t.Errorf("token_endpoint_auth_methods_supported = %s", methods)
		}
	}
}

func TestRevocationFeed(t *testing.T) {
	h := start(t, "", nil)
	h.addClients()
	h.addUser(adaEmail, adaPass)
	svc := basic("svc", svcSecret)
	u := h.login(adaEmail, adaPass)

	expect(t, "unauthenticated", h.do("GET", "/v1/revocations", ""), 401, "unauthorized")
	expect(t, "wrong secret", h.do("GET", "/v1/revocations", "", basic("svc", "nope")...), 401, "invalid_client")
	expect(t, "public client", h.do("GET", "/v1/revocations", "", basic("app", "")...), 401, "invalid_client")
	expect(t, "a user's token", h.do("GET", "/v1/revocations", "", bearer(u.str("access_token"))...), 403, "insufficient_scope")
	// A confidential client without the read-revocations permission, by
	// Basic and by its own client_credentials token, on pages and stream.
	other := basic("other", svcSecret+"-other")
	expect(t, "no permission", h.do("GET", "/v1/revocations", "", other...), 403, "insufficient_scope")
	expect(t, "no permission, stream", h.do("GET", "/v1/revocations/stream", "", other...), 403, "insufficient_scope")
	otherTok := h.form("/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, other...)
	expect(t, "other's token", otherTok, 200, "")
	r := h.do("GET", "/v1/revocations", "", bearer(otherTok.str("access_token"))...)
	expect(t, "no permission, bearer", r, 403, "insufficient_scope")
	if !strings.Contains(r.header.Get("WWW-Authenticate"), "insufficient_scope") {
		t.Fatalf("WWW-Authenticate = %q", r.header.Get("WWW-Authenticate"))
	}
	expect(t, "bad cursor", h.do("GET", "/v1/revocations?after=-1", "", svc...), 400, "invalid_request")
	expect(t, "bad limit", h.do("GET", "/v1/revocations?limit=0", "", svc...), 400, "invalid_request")

	empty := h.do("GET", "/v1/revocations", "", svc...)
	expect(t, "empty feed", empty, 200, "")
	if n := len(empty.body["revocations"].([]any)); n != 0 || empty.body["cursor"] != float64(0) {
		t.Fatalf("empty feed = %s", empty.raw)
	}

	// Open a stream before the logout; the entry must arrive on it.
	req, _ := http.NewRequestWithContext(t.Context(), "GET", h.srv.URL+"/v1/revocations/stream", nil)
	req.Header.Set(svc[0], svc[1])
	res, err := h.srv.Client().Do(req)
	if err != nil || res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %v %v", res, err)
	}
	defer res.Body.Close()
	events := make(chan string, 10)
	go func() {
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				events <- d
			}
		}
		close(events)
	}()

	expect(t, "logout-all", h.do("POST", "/v1/auth/logout-all", "", bearer(u.str("access_token"))...), 204, "")
	page := h.do("GET", "/v1/revocations", "", svc...)
	list := page.body["revocations"].([]any)
	if len(list) != 2 {
		t.Fatalf("feed after logout-all = %s", page.raw)
	}
	kinds := map[string]bool{}
	for _, e := range list {
		kinds[e.(map[string]any)["kind"].(string)] = true
	}
	if !kinds["user"] || !kinds["sid"] {
		t.Fatalf("kinds = %v", kinds)
	}
	cur := int(page.body["cursor"].(float64))
	next := h.do("GET", "/v1/revocations?after="+itoa(cur), "", svc...)
	if n := len(next.body["revocations"].([]any)); n != 0 || next.body["cursor"] != float64(cur) {
		t.Fatalf("page after the cursor = %s", next.raw)
	}
	paged := h.do("GET", "/v1/revocations?limit=1", "", svc...)
	if n := len(paged.body["revocations"].([]any)); n != 1 || paged.body["more"] != true {
		t.Fatalf("limit=1 page = %s", paged.raw)
	}

	got := map[string]bool{}
	timeout := time.After(2 * time.Second)
	for len(got) < 2 {
		select {
		case d, ok := <-events:
			if !ok {
				t.Fatal("stream ended")
			}
			var e struct{ Kind string }
			if err := json.Unmarshal([]byte(d), &e); err != nil {
				t.Fatalf("event %q: %v", d, err)
			}
			if e.Kind != "" { // not a sync heartbeat
				got[e.Kind] = true
			}
		case <-timeout:
			t.Fatalf("stream delivered %v within 2 s, want the user and sid entries", got)
		}
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// TestFeedWithAudienceClientToken: a resource server registered with its
// own audience gets client_credentials tokens for that audience, and the
// feed accepts them as its own token (docs/oauth.md: "by HTTP Basic or by
// a client_credentials access token of their own"); the permission is
// still required, and a revoked token is refused.
func TestFeedWithAudienceClientToken(t *testing.T) {
	h := start(t, "", nil)
	ctx := t.Context()
	for _, c := range []auth.NewClient{
		{ID: "rs", Secret: svcSecret + "-rs", Audience: "https://api.example", Permissions: []string{latch.PermissionReadRevocations}},
		{ID: "rs2", Secret: svcSecret + "-rs2", Audience: "https://api2.example"},
	} {
		if _, err := h.in.Auth.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	token := func(id, secret string) string {
		r := h.form("/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, basic(id, secret)...)
		if r.code != http.StatusOK || r.str("access_token") == "" {
			t.Fatalf("client_credentials for %s: %d %s", id, r.code, r.raw)
		}
		return r.str("access_token")
	}
	tok := token("rs", svcSecret+"-rs")
	expect(t, "feed with the client's own audience token", h.do("GET", "/v1/revocations", "", bearer(tok)...), http.StatusOK, "")
	expect(t, "feed without the permission", h.do("GET", "/v1/revocations", "", bearer(token("rs2", svcSecret+"-rs2"))...), http.StatusForbidden, "insufficient_scope")
	expect(t, "revoke it", h.form("/oauth2/revoke", url.Values{"token": {tok}}, basic("rs", svcSecret+"-rs")...), http.StatusOK, "")
	expect(t, "feed with the revoked token", h.do("GET", "/v1/revocations", "", bearer(tok)...), http.StatusUnauthorized, "invalid_token")
}
