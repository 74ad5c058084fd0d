package instance_test

import (
	"strings"
	"testing"

	"github.com/latchauth/latch/config"
)

// TestBadInput sends malformed requests to every endpoint: each gets the
// documented 4xx JSON error, never a 5xx, a panic or a hang.
func TestBadInput(t *testing.T) {
	h := start(t, "", func(c *config.Config) { c.Registration = true })
	h.addUser(adaEmail, adaPass)
	good := h.login(adaEmail, adaPass)
	access := good.str("access_token")
	huge := `{"email":"` + strings.Repeat("a", 70<<10) + `","password":"x"}`
	forged := strings.Join(strings.Split(access, ".")[:2], ".") + ".AAAA"
	noneAlg := "eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0." + strings.Split(access, ".")[1] + "."

	type row struct {
		name, method, path, body string
		hdr                      []string
		code                     int
		errCode                  string
	}
	rows := []row{
		{"login empty body", "POST", "/v1/auth/login", "", nil, 400, "invalid_request"},
		{"login not json", "POST", "/v1/auth/login", "email=a&password=b", []string{"Content-Type", "application/x-www-form-urlencoded"}, 400, "invalid_request"},
		{"login no content type", "POST", "/v1/auth/login", `{"email":"a@b.c","password":"x"}`, []string{"Content-Type", ""}, 400, "invalid_request"},
		{"login text/plain", "POST", "/v1/auth/login", `{"email":"a@b.c","password":"x"}`, []string{"Content-Type", "text/plain"}, 400, "invalid_request"},
		{"login broken content type", "POST", "/v1/auth/login", `{}`, []string{"Content-Type", "application/json; =="}, 400, "invalid_request"},
		{"login truncated json", "POST", "/v1/auth/login", `{"email":"a@b.c",`, nil, 400, "invalid_request"},
		{"login array", "POST", "/v1/auth/login", `[1,2]`, nil, 400, "invalid_request"},
		{"login string", "POST", "/v1/auth/login", `"hello"`, nil, 400, "invalid_request"},
		{"login null", "POST", "/v1/auth/login", `null`, nil, 400, "invalid_request"},
		{"login wrong types", "POST", "/v1/auth/login", `{"email":1,"password":true}`, nil, 400, "invalid_request"},
		{"login nested", "POST", "/v1/auth/login", `{"email":{"$ne":""},"password":"x"}`, nil, 400, "invalid_request"},
		{"login missing password", "POST", "/v1/auth/login", `{"email":"a@b.c"}`, nil, 400, "invalid_request"},
		{"login missing email", "POST", "/v1/auth/login", `{"password":"x"}`, nil, 400, "invalid_request"},
		{"login two objects", "POST", "/v1/auth/login", `{"email":"a@b.c","password":"x"}{}`, nil, 400, "invalid_request"},
		{"login trailing garbage", "POST", "/v1/auth/login", `{"email":"a@b.c","password":"x"} x`, nil, 400, "invalid_request"},
		{"login invalid utf-8", "POST", "/v1/auth/login", "{\"email\":\"\xff\xfe@x.y\",\"password\":\"\xc3\x28\"}", nil, 401, "invalid_credentials"},
		{"login NUL bytes", "POST", "/v1/auth/login", `{"email":"a\u0000@b.c","password":"\u0000"}`, nil, 401, "invalid_credentials"},
		{"login huge password", "POST", "/v1/auth/login", `{"email":"a@b.c","password":"` + strings.Repeat("p", 60<<10) + `"}`, nil, 401, "invalid_credentials"},
		{"login over 64 KiB", "POST", "/v1/auth/login", huge, nil, 413, "request_too_large"},
		{"login deep nesting", "POST", "/v1/auth/login", strings.Repeat("[", 10000) + strings.Repeat("]", 10000), nil, 400, "invalid_request"},
		{"login GET", "GET", "/v1/auth/login", "", nil, 405, "method_not_allowed"},
		{"login duplicate member", "POST", "/v1/auth/login", `{"email":"a@b.c","email":"` + adaEmail + `","password":"x"}`, nil, 400, "invalid_request"},
		{"login case-variant member", "POST", "/v1/auth/login", `{"email":"a@b.c","EMAIL":"` + adaEmail + `","password":"x"}`, nil, 400, "invalid_request"},
		{"login capitalised member", "POST", "/v1/auth/login", `{"Email":"` + adaEmail + `","password":"x"}`, nil, 400, "invalid_request"},
		{"login zero-width email", "POST", "/v1/auth/login", `{"email":"ad\u200ba@example.com","password":"x"}`, nil, 401, "invalid_credentials"},
		{"register zero-width email", "POST", "/v1/auth/register", `{"email":"ka\u200bte@example.com","password":"long enough pw"}`, nil, 400, "invalid_request"},
		{"register full-width twin", "POST", "/v1/auth/register", `{"email":"ＡＤＡ@example.com","password":"long enough pw"}`, nil, 409, "email_taken"},
		{"refresh duplicate member", "POST", "/v1/auth/refresh", `{"refresh_token":"a","refresh_token":"b"}`, nil, 400, "invalid_request"},
		{"register weak", "POST", "/v1/auth/register", `{"email":"w@example.com","password":"short"}`, nil, 400, "weak_password"},
		{"register no body", "POST", "/v1/auth/register", "", nil, 400, "invalid_request"},
		{"register huge email", "POST", "/v1/auth/register", `{"email":"` + strings.Repeat("e", 1000) + `@x.io","password":"long enough pw"}`, nil, 400, "invalid_request"},
		{"refresh empty", "POST", "/v1/auth/refresh", `{}`, nil, 400, "invalid_request"},
		{"forgot no body", "POST", "/v1/auth/password/forgot", "", nil, 400, "invalid_request"},
		{"forgot wrong type", "POST", "/v1/auth/password/forgot", `{"email":1}`, nil, 400, "invalid_request"},
		{"forgot over 64 KiB", "POST", "/v1/auth/password/forgot", huge, nil, 413, "request_too_large"},
		{"forgot invalid address", "POST", "/v1/auth/password/forgot", `{"email":"\u0000"}`, nil, 202, ""},
		{"forgot GET", "GET", "/v1/auth/password/forgot", "", nil, 405, "method_not_allowed"},
		{"reset empty", "POST", "/v1/auth/password/reset", `{}`, nil, 400, "invalid_request"},
		{"reset garbage token", "POST", "/v1/auth/password/reset", `{"token":"` + strings.Repeat("x", 60<<10) + `","password":"long enough pw"}`, nil, 400, "invalid_link"},
		{"reset duplicate member", "POST", "/v1/auth/password/reset", `{"token":"a","token":"b","password":"x"}`, nil, 400, "invalid_request"},
		{"verify empty", "POST", "/v1/auth/email/verify", `{}`, nil, 400, "invalid_request"},
		{"verify garbage", "POST", "/v1/auth/email/verify", `{"token":"latch_ve_\u0000"}`, nil, 400, "invalid_link"},
		{"resend array", "POST", "/v1/auth/email/resend", `[]`, nil, 400, "invalid_request"},
		{"change without token", "POST", "/v1/auth/password/change", `{"current_password":"x","password":"y"}`, nil, 401, ""},
		{"change empty", "POST", "/v1/auth/password/change", `{}`, []string{"Authorization", "Bearer " + access}, 400, "invalid_request"},
		{"refresh garbage", "POST", "/v1/auth/refresh", `{"refresh_token":"garbage"}`, nil, 401, "invalid_grant"},
		{"refresh access token", "POST", "/v1/auth/refresh", `{"refresh_token":"` + access + `"}`, nil, 401, "invalid_grant"},
		{"refresh prefix only", "POST", "/v1/auth/refresh", `{"refresh_token":"latch_rt_"}`, nil, 401, "invalid_grant"},
		{"refresh bad base64", "POST", "/v1/auth/refresh", `{"refresh_token":"latch_rt_!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"}`, nil, 401, "invalid_grant"},
		{"refresh unknown", "POST", "/v1/auth/refresh", `{"refresh_token":"latch_rt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}`, nil, 401, "invalid_grant"},
		{"refresh number", "POST", "/v1/auth/refresh", `{"refresh_token":12}`, nil, 400, "invalid_request"},
		// RFC 6750 §3.1: no credentials → a bare challenge without an error
		// code; a malformed Authorization header → 400 invalid_request.
		{"me no token", "GET", "/v1/me", "", nil, 401, "unauthorized"},
		{"me basic auth", "GET", "/v1/me", "", []string{"Authorization", "Basic YTpi"}, 401, "unauthorized"},
		{"me empty bearer", "GET", "/v1/me", "", []string{"Authorization", "Bearer "}, 400, "invalid_request"},
		{"me garbage bearer", "GET", "/v1/me", "", []string{"Authorization", "Bearer garbage"}, 401, "invalid_token"},
		{"me two tokens", "GET", "/v1/me", "", []string{"Authorization", "Bearer " + access + " " + access}, 400, "invalid_request"},
		{"me forged signature", "GET", "/v1/me", "", bearer(forged), 401, "invalid_token"},
		{"me alg none", "GET", "/v1/me", "", bearer(noneAlg), 401, "invalid_token"},
		{"me refresh token as bearer", "GET", "/v1/me", "", bearer(good.str("refresh_token")), 401, "invalid_token"},
		{"me huge token", "GET", "/v1/me", "", bearer(strings.Repeat("a", 40<<10)), 401, "invalid_token"},
		{"me POST", "POST", "/v1/me", "", bearer(access), 405, "method_not_allowed"},
		{"sessions PUT", "PUT", "/v1/sessions", "", bearer(access), 405, "method_not_allowed"},
		{"delete session no token", "DELETE", "/v1/sessions/x", "", nil, 401, "unauthorized"},
		{"delete session weird id", "DELETE", "/v1/sessions/%00%2F..", "", bearer(access), 404, "not_found"},
		{"delete session long id", "DELETE", "/v1/sessions/" + strings.Repeat("s", 4000), "", bearer(access), 404, "not_found"},
		{"logout-all no token", "POST", "/v1/auth/logout-all", "", nil, 401, "unauthorized"},
		{"logout not json", "POST", "/v1/auth/logout", "x", nil, 400, "invalid_request"},
		{"unknown path", "GET", "/v1/nope", "", nil, 404, "not_found"},
		{"unknown top-level path", "GET", "/nope", "", nil, 404, "not_found"},
		{"jwks POST", "POST", "/.well-known/jwks.json", "", nil, 405, "method_not_allowed"},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			res := h.do(r.method, r.path, r.body, r.hdr...)
			if res.code >= 500 {
				t.Fatalf("%d: %s", res.code, res.raw)
			}
			if ct := res.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Fatalf("Content-Type %q, want JSON: %s", ct, res.raw)
			}
			expect(t, r.name, res, r.code, r.errCode)
			challenge := res.header.Get("WWW-Authenticate")
			switch {
			case (r.errCode == "invalid_token" || r.errCode == "unauthorized") && !strings.HasPrefix(challenge, "Bearer"):
				t.Fatalf("401 with WWW-Authenticate %q", challenge)
			case r.errCode == "invalid_token" && !strings.Contains(challenge, `error="invalid_token"`):
				t.Fatalf("invalid_token with WWW-Authenticate %q", challenge)
			case r.errCode == "unauthorized" && challenge != "Bearer":
				t.Fatalf("no credentials: WWW-Authenticate %q, want a bare Bearer challenge", challenge)
			}
		})
	}
	// The session used above is intact: nothing malformed harmed it.
	expect(t, "good token still works", h.do("GET", "/v1/me", "", bearer(access)...), 200, "")
}
