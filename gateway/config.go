// Package gateway is `latch gateway`: the single entry point in front of
// an application's upstreams. It verifies bearer tokens with the verifier
// package (local JWKS, the revocation feed in memory), keeps browsers'
// sessions on the server as a backend-for-frontend (package bff) so that a
// browser holds one opaque cookie and never a token, strips spoofable
// identity headers, and proxies requests, WebSockets and Server-Sent
// Events to the route's upstream.
package gateway

import "time"

// Config is the gateway's configuration file (docs/gateway.md is its
// reference). Zero values mean the defaults of Defaults.
type Config struct {
	// Addr is where the gateway listens.
	Addr string `yaml:"addr" doc:"address to listen on"`
	// PublicURL is the gateway's own origin as browsers see it (its
	// cookies, the OIDC redirect URI /auth/callback); default http://ADDR.
	PublicURL string `yaml:"public_url" doc:"the gateway's origin as browsers reach it; default http://ADDR"`
	// Issuer is the Latch auth server the gateway trusts and signs users
	// in with.
	Issuer string `yaml:"issuer" doc:"URL of the Latch auth server (its issuer)"`
	// Audience of the bearer tokens routes accept; default the issuer.
	Audience string `yaml:"audience" doc:"aud that bearer tokens must carry; default the issuer"`
	// ClientID and ClientSecret are the gateway's confidential client at
	// the auth server (the code flow, the revocation feed). The secret
	// comes from LATCH_GATEWAY_CLIENT_SECRET or ClientSecretFile.
	ClientID         string `yaml:"client_id" doc:"the gateway's client at the auth server"`
	ClientSecret     string `yaml:"client_secret" env:"LATCH_GATEWAY_CLIENT_SECRET" doc:"its secret (use LATCH_GATEWAY_CLIENT_SECRET or client_secret_file)" secret:"true"`
	ClientSecretFile string `yaml:"client_secret_file" doc:"file holding the client secret"`
	// Scopes the gateway asks for when it signs a browser in.
	Scopes []string `yaml:"scopes" doc:"scopes requested at sign-in; default openid offline_access"`
	// DataDir holds the embedded session database and the gateway's key
	// encryption key, unless Store is PostgreSQL.
	DataDir string `yaml:"data_dir" doc:"directory of the embedded session store and key file"`
	// Store is empty for embedded SQLite in DataDir, or a postgres:// URL.
	Store string `yaml:"store" env:"LATCH_GATEWAY_DATABASE_URL" doc:"session store: empty for SQLite in data_dir, or a postgres:// URL"`
	// Redis, if set, carries locks, a session cache and fan-out between
	// gateway instances; nothing that must survive lives only there.
	Redis string `yaml:"redis" env:"LATCH_GATEWAY_REDIS_URL" doc:"redis:// URL for locks and fan-out between gateways; empty for none"`
	// KEK is the key-encryption key of tokens at rest and the gateway's
	// signing key (base64 of 32 bytes); without it, KEKFile.
	KEK     string `yaml:"kek" env:"LATCH_GATEWAY_KEK" doc:"key-encryption key, base64 of 32 bytes" secret:"true"`
	KEKFile string `yaml:"kek_file" doc:"file holding the key-encryption key; default DATA_DIR/kek"`
	// TrustedProxies are the networks whose X-Forwarded-* headers are
	// believed.
	TrustedProxies []string `yaml:"trusted_proxies" doc:"CIDRs whose X-Forwarded-For/-Proto/-Host are believed"`
	// StripHeaders are removed from every incoming request in addition to
	// the default list (DefaultStripHeaders).
	StripHeaders []string `yaml:"strip_headers" doc:"more incoming headers to remove, besides the default identity headers"`
	Session      struct {
		// Cookie is the session cookie's name; default __Host-latch_gw
		// (latch_gw on plain http off localhost).
		Cookie string `yaml:"cookie" doc:"session cookie name; default __Host-latch_gw"`
		// IdleTimeout and AbsoluteTTL bound a browser session.
		IdleTimeout Duration `yaml:"idle_timeout" doc:"end a browser session unused this long"`
		AbsoluteTTL Duration `yaml:"absolute_ttl" doc:"end every browser session this long after sign-in"`
		// RefreshBefore: refresh the access token when less than this is
		// left of it.
		RefreshBefore Duration `yaml:"refresh_before" doc:"refresh the access token when less than this is left"`
	} `yaml:"session"`
	// Routes are matched by longest path prefix.
	Routes []Route `yaml:"routes"`
}

// Route is one upstream behind the gateway.
type Route struct {
	// Path is the prefix matched ("/api/orders/"; "/" matches all).
	Path string `yaml:"path"`
	// Upstream is the base URL requests go to.
	Upstream string `yaml:"upstream"`
	// Auth is AuthToken, AuthSession or AuthNone.
	Auth string `yaml:"auth"`
	// Scopes a token (or the browser session's token) must carry, all.
	Scopes []string `yaml:"scopes"`
	// Audience overrides the gateway's audience for this route.
	Audience string `yaml:"audience"`
	// Timeout bounds a request upstream (not a WebSocket or an event
	// stream once its response has begun); default 30s.
	Timeout Duration `yaml:"timeout"`
	// StripPrefix removes Path from the request path upstream.
	StripPrefix bool `yaml:"strip_prefix"`
	// Identity forwards the verified identity: headers (X-Latch-User,
	// X-Latch-Email…) and/or a signed assertion JWT (X-Latch-Assertion).
	Identity struct {
		Headers   bool `yaml:"headers"`
		Assertion bool `yaml:"assertion"`
	} `yaml:"identity"`
}

// Auth modes of a route.
const (
	// AuthToken: a bearer token (apps, servers) or the browser session.
	AuthToken = "token"
	// AuthSession: the browser session; a signed-out navigation goes to
	// sign-in, a signed-out XHR gets 401 JSON.
	AuthSession = "session"
	// AuthNone: no authentication; identity headers are still stripped.
	AuthNone = "none"
)

// Duration is a time.Duration written as "90s", "5m", "12h".
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }
