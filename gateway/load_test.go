package gateway

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const goodYAML = `
issuer: http://127.0.0.1:8080
client_id: gw
routes:
  - path: /api/orders/
    upstream: http://127.0.0.1:9001
    auth: token
    scopes: [orders:read]
  - path: /public/
    upstream: http://127.0.0.1:9002
    auth: none
  - path: /
    upstream: http://127.0.0.1:3000
    auth: session
`

func writeYAML(t *testing.T, s string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "gateway.yaml")
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadDefaults(t *testing.T) {
	c, err := Load(writeYAML(t, goodYAML), []string{"LATCH_GATEWAY_CLIENT_SECRET=s3cret", "LATCH_GATEWAY_REDIS_URL=redis://127.0.0.1:6379"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:8090" || c.PublicURL != "http://127.0.0.1:8090" || c.Audience != "http://127.0.0.1:8080" {
		t.Errorf("addr %q public_url %q audience %q", c.Addr, c.PublicURL, c.Audience)
	}
	if c.ClientSecret != "s3cret" || c.Redis != "redis://127.0.0.1:6379" {
		t.Errorf("environment not applied: %q %q", c.ClientSecret, c.Redis)
	}
	if c.Session.Cookie != DefaultCookie || c.Session.IdleTimeout.D() != 8*time.Hour || c.Session.AbsoluteTTL.D() != 7*24*time.Hour || c.Session.RefreshBefore.D() != 30*time.Second {
		t.Errorf("session defaults %+v", c.Session)
	}
	if c.Routes[0].Timeout.D() != 30*time.Second || c.Routes[0].Audience != c.Audience || c.Routes[1].Audience != "" {
		t.Errorf("route defaults %+v", c.Routes)
	}
	if strings.Join(c.Scopes, " ") != "openid offline_access" {
		t.Errorf("scopes %v", c.Scopes)
	}
}

func TestLoadSecretFile(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "secret"), []byte("from-file\n"), 0o600)
	c, err := Load(writeYAML(t, goodYAML+"client_secret_file: "+filepath.Join(dir, "secret")+"\n"), nil)
	if err != nil || c.ClientSecret != "from-file" {
		t.Fatalf("%v %q", err, c.ClientSecret)
	}
	_, err = Load(writeYAML(t, goodYAML+"client_secret_file: "+filepath.Join(dir, "secret")+"\n"), []string{"LATCH_GATEWAY_CLIENT_SECRET=x"})
	if err == nil || !strings.Contains(err.Error(), "client_secret_file: set either") {
		t.Fatalf("both secrets: %v", err)
	}
}

// Each row is one mistake; the error must name its key as written.
func TestCheck(t *testing.T) {
	env := []string{"LATCH_GATEWAY_CLIENT_SECRET=s"}
	for _, tc := range []struct {
		name string
		yaml string
		env  []string
		want []string
	}{
		{"unknown top-level key", goodYAML + "isuer: x\n", env, []string{"isuer: unknown key; did you mean issuer?", "line 15"}},
		{"unknown route key", strings.Replace(goodYAML, "    auth: none", "    auth: none\n    upstram: x", 1), env, []string{"routes[1].upstram: unknown key; did you mean upstream?"}},
		{"unknown nested key", goodYAML + "session:\n  idle: 1h\n", env, []string{"session.idle: unknown key"}},
		{"key twice", goodYAML + "client_id: again\n", env, []string{"client_id: appears twice"}},
		{"bad duration", goodYAML + "session:\n  idle_timeout: forever\n", env, []string{"session.idle_timeout: \"forever\" is not a duration"}},
		{"bad bool", strings.Replace(goodYAML, "    auth: none", "    auth: none\n    strip_prefix: maybe", 1), env, []string{"routes[1].strip_prefix: want true or false"}},
		{"routes not a list", "issuer: http://127.0.0.1:8080\nroutes: /api\n", env, []string{"routes: want a list"}},
		{"no routes", "issuer: http://127.0.0.1:8080\n", env, []string{"routes: missing"}},
		{"duplicate path", goodYAML + "  - path: /public/\n    upstream: http://127.0.0.1:1\n    auth: none\n", env, []string{"routes[3].path: \"/public/\" is also the path of routes[1]"}},
		{"path without slash", strings.Replace(goodYAML, "path: /public/", "path: public/", 1), env, []string{"routes[1].path: \"public/\" must start with /"}},
		{"path not clean", strings.Replace(goodYAML, "path: /public/", "path: /a/../public/", 1), env, []string{"routes[1].path:", "not a clean path"}},
		{"reserved path", strings.Replace(goodYAML, "path: /public/", "path: /auth/", 1), env, []string{"routes[1].path: \"/auth/\" is served by the gateway itself"}},
		{"missing path", strings.Replace(goodYAML, "  - path: /public/\n    upstream:", "  - upstream:", 1), env, []string{"routes[1].path: missing"}},
		{"bad upstream", strings.Replace(goodYAML, "http://127.0.0.1:9002", "ftp://x", 1), env, []string{"routes[1].upstream: \"ftp://x\" is not an http(s) URL"}},
		{"upstream not a URL", strings.Replace(goodYAML, "http://127.0.0.1:9002", "127.0.0.1:9002", 1), env, []string{"routes[1].upstream:"}},
		{"upstream with query", strings.Replace(goodYAML, "http://127.0.0.1:9002", "http://127.0.0.1:9002/?a=1", 1), env, []string{"routes[1].upstream:", "query"}},
		{"missing upstream", strings.Replace(goodYAML, "    upstream: http://127.0.0.1:9002\n", "", 1), env, []string{"routes[1].upstream: missing"}},
		{"bad auth", strings.Replace(goodYAML, "auth: none", "auth: jwt", 1), env, []string{"routes[1].auth: \"jwt\" is not one of token, session, none"}},
		{"missing auth", strings.Replace(goodYAML, "    auth: none\n", "", 1), env, []string{"routes[1].auth: missing"}},
		{"scopes on a none route", strings.Replace(goodYAML, "    auth: none", "    auth: none\n    scopes: [a]", 1), env, []string{"routes[1].scopes: a route with auth: none checks no scopes"}},
		{"identity on a none route", strings.Replace(goodYAML, "    auth: none", "    auth: none\n    identity: {headers: true}", 1), env, []string{"routes[1].identity:"}},
		{"bad scope", strings.Replace(goodYAML, "[orders:read]", "[\"a\\\"b\"]", 1), env, []string{"routes[0].scopes[0]:"}},
		{"negative timeout", strings.Replace(goodYAML, "    auth: none", "    auth: none\n    timeout: -1s", 1), env, []string{"routes[1].timeout: -1s is negative"}},
		{"bad CIDR", goodYAML + "trusted_proxies: [10.0.0.0/8, 10.0.0.0/33, nope]\n", env, []string{"trusted_proxies[1]:", "trusted_proxies[2]: \"nope\""}},
		{"bad strip header", goodYAML + "strip_headers: [\"X Bad\", X-Ok*]\n", env, []string{"strip_headers[0]:"}},
		{"secret missing", goodYAML, nil, []string{"client_secret: missing"}},
		{"client id missing", strings.Replace(goodYAML, "client_id: gw\n", "", 1), env, []string{"client_id: missing"}},
		{"issuer missing", strings.Replace(goodYAML, "issuer: http://127.0.0.1:8080\n", "", 1), env, []string{"issuer: missing"}},
		{"issuer not http", strings.Replace(goodYAML, "http://127.0.0.1:8080", "ldap://127.0.0.1", 1), env, []string{"issuer: \"ldap://127.0.0.1\" is not an http(s) URL"}},
		{"issuer plain http off loopback", strings.Replace(goodYAML, "http://127.0.0.1:8080", "http://auth.example.com", 1), env, []string{"issuer:", "use https"}},
		{"public_url with path", goodYAML + "public_url: https://app.example.com/x\n", env, []string{"public_url:", "without a path"}},
		{"bad addr", goodYAML + "addr: 8090\n", env, []string{"addr: \"8090\" is not host:port"}},
		{"bad store", goodYAML, append([]string{"LATCH_GATEWAY_DATABASE_URL=mysql://x"}, env...), []string{"store: must be empty"}},
		{"bad redis", goodYAML + "redis: 127.0.0.1:6379\n", env, []string{"redis: must be empty or a redis://"}},
		{"bad kek", goodYAML, append([]string{"LATCH_GATEWAY_KEK=short"}, env...), []string{"kek: must be 32 random bytes"}},
		{"idle longer than absolute", goodYAML + "session:\n  idle_timeout: 48h\n  absolute_ttl: 24h\n", env, []string{"session.idle_timeout: 48h0m0s is longer than session.absolute_ttl"}},
		{"__Host- cookie over http", goodYAML + "public_url: http://app.example.com\nsession:\n  cookie: __Host-mine\n", env, []string{"session.cookie: a __Host- cookie needs an https public_url"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(writeYAML(t, tc.yaml), tc.env)
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

// Check lists every problem, not the first.
func TestCheckListsEveryProblem(t *testing.T) {
	c := Defaults()
	c.Issuer = "ftp://x"
	c.Routes = []Route{{Path: "x", Upstream: "nope", Auth: "jwt"}, {Path: "/a", Upstream: "http://127.0.0.1:1", Auth: AuthNone, Scopes: []string{"s"}}}
	c.Normalize()
	err := c.Check()
	if err == nil {
		t.Fatal("no error")
	}
	lines := strings.Split(err.Error(), "\n")
	for _, key := range []string{"issuer:", "routes[0].path:", "routes[0].upstream:", "routes[0].auth:", "routes[1].scopes:"} {
		found := false
		for _, l := range lines {
			found = found || strings.HasPrefix(l, key)
		}
		if !found {
			t.Errorf("no line for %s in:\n%v", key, err)
		}
	}
}

func TestDefaultCookieOnPlainHTTP(t *testing.T) {
	c, err := Load(writeYAML(t, goodYAML+"public_url: http://app.internal:8090\n"), []string{"LATCH_GATEWAY_CLIENT_SECRET=s"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Session.Cookie != "latch_gw" {
		t.Errorf("cookie %q, want latch_gw on plain http", c.Session.Cookie)
	}
}
