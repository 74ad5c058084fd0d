package bff

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/latchauth/latch/gateway"
	"github.com/latchauth/latch/verifier"
	"golang.org/x/oauth2"
)

// discovery is the part of the auth server's OpenID Connect discovery
// document the gateway uses.
type discovery struct {
	Issuer                string `json:"issuer"`
	AuthorizationEndpoint string `json:"authorization_endpoint"`
	TokenEndpoint         string `json:"token_endpoint"`
	JWKSURI               string `json:"jwks_uri"`
	RevocationEndpoint    string `json:"revocation_endpoint"`
	EndSessionEndpoint    string `json:"end_session_endpoint"`
}

// provider is the auth server as the gateway's client sees it: its
// endpoints (from discovery, fetched once, when first needed) and its
// signing keys (a JWKS cache).
type provider struct {
	ctx    context.Context
	cfg    gateway.Config
	hc     *http.Client
	log    *slog.Logger
	static verifier.KeySet

	mu    sync.Mutex
	doc   *discovery
	oauth *oauth2.Config
	jwks  *verifier.JWKS
}

func newProvider(ctx context.Context, cfg gateway.Config, hc *http.Client, keys verifier.KeySet, log *slog.Logger) *provider {
	return &provider{ctx: ctx, cfg: cfg, hc: hc, static: keys, log: log}
}

// close stops the JWKS cache.
func (p *provider) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.jwks != nil {
		p.jwks.Close()
	}
}

// endpoints returns the discovery document and the OAuth 2.0 client,
// fetching the document on the first call (and again after a failure).
func (p *provider) endpoints(ctx context.Context) (*discovery, *oauth2.Config, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.doc != nil {
		return p.doc, p.oauth, nil
	}
	iss := strings.TrimSuffix(p.cfg.Issuer, "/")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, iss+"/.well-known/openid-configuration", nil)
	if err != nil {
		return nil, nil, fmt.Errorf("bff: discovery: %w", err)
	}
	res, err := p.hc.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("bff: discovery: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("bff: discovery: status %d", res.StatusCode)
	}
	var d discovery
	if err := json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(&d); err != nil {
		return nil, nil, fmt.Errorf("bff: discovery: %w", err)
	}
	// OpenID Connect Discovery §4.3: the document's issuer is the one
	// configured, exactly.
	if d.Issuer != p.cfg.Issuer {
		return nil, nil, fmt.Errorf("bff: discovery: issuer %q, want %q", d.Issuer, p.cfg.Issuer)
	}
	if d.AuthorizationEndpoint == "" || d.TokenEndpoint == "" || d.JWKSURI == "" {
		return nil, nil, errors.New("bff: discovery: the auth server is not an OpenID Provider (no authorization, token endpoint or jwks_uri)")
	}
	if p.static == nil {
		j, err := verifier.NewJWKS(p.ctx, d.JWKSURI, verifier.JWKSOptions{HTTPClient: p.hc, SkipInitialFetch: true, Logger: p.log})
		if err != nil {
			return nil, nil, fmt.Errorf("bff: JWKS: %w", err)
		}
		p.jwks = j
	}
	scopes := p.cfg.Scopes
	if len(scopes) == 0 {
		scopes = []string{"openid", "offline_access"}
	}
	p.oauth = &oauth2.Config{
		ClientID: p.cfg.ClientID, ClientSecret: p.cfg.ClientSecret, Scopes: scopes,
		Endpoint: oauth2.Endpoint{AuthURL: d.AuthorizationEndpoint, TokenURL: d.TokenEndpoint, AuthStyle: oauth2.AuthStyleInHeader},
	}
	p.doc = &d
	return p.doc, p.oauth, nil
}

// key returns the auth server's signing key kid, waiting briefly for a
// refetch of the key set if it is new.
func (p *provider) key(ctx context.Context, kid string) (verifier.Key, bool) {
	if p.static != nil {
		return p.static.Key(kid)
	}
	p.mu.Lock()
	j := p.jwks
	p.mu.Unlock()
	if j == nil {
		return verifier.Key{}, false
	}
	return j.WaitKey(ctx, kid)
}

// jwtClaims are the claims of id_tokens and logout tokens the gateway
// reads. Nonce and Events are raw so that their presence shows.
type jwtClaims struct {
	Issuer   string                     `json:"iss"`
	Subject  string                     `json:"sub"`
	Audience audience                   `json:"aud"`
	AZP      string                     `json:"azp"`
	Expiry   *float64                   `json:"exp"`
	IssuedAt *float64                   `json:"iat"`
	JTI      string                     `json:"jti"`
	SID      string                     `json:"sid"`
	Nonce    *json.RawMessage           `json:"nonce"`
	Events   map[string]json.RawMessage `json:"events"`
}

// audience is aud, one string or an array of them.
type audience []string

// UnmarshalJSON accepts a string or an array of strings.
func (a *audience) UnmarshalJSON(b []byte) error {
	if bytes.HasPrefix(bytes.TrimSpace(b), []byte(`"`)) {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*a = audience{s}
		return nil
	}
	var l []string
	if err := json.Unmarshal(b, &l); err != nil {
		return err
	}
	*a = l
	return nil
}

// has reports whether s is one of the audiences.
func (a audience) has(s string) bool {
	for _, x := range a {
		if x == s {
			return true
		}
	}
	return false
}

// signatureAlgorithms are the algorithms Latch signs id_tokens and logout
// tokens with.
var signatureAlgorithms = []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA, jose.PS256}

// errToken marks a token that does not verify.
var errToken = errors.New("bff: token refused")

// verifyJWT checks the signature of a compact JWS with the auth server's
// keys, its typ header (one of types; "" matches a missing typ), its iss
// and that aud holds the client id, and returns its claims. The checks
// of exp, iat and the other claims are the caller's.
func (p *provider) verifyJWT(ctx context.Context, token string, types ...string) (*jwtClaims, error) {
	if len(token) > 16<<10 {
		return nil, fmt.Errorf("%w: too long", errToken)
	}
	jws, err := jose.ParseSigned(token, signatureAlgorithms)
	if err != nil || len(jws.Signatures) != 1 {
		return nil, fmt.Errorf("%w: not a compact JWS", errToken)
	}
	h := jws.Signatures[0].Protected
	if _, ok := h.ExtraHeaders["crit"]; ok {
		return nil, fmt.Errorf("%w: crit header", errToken)
	}
	typ, _ := h.ExtraHeaders[jose.HeaderType].(string)
	okType := false
	for _, t := range types {
		okType = okType || strings.EqualFold(typ, t)
	}
	if !okType {
		return nil, fmt.Errorf("%w: typ %q", errToken, typ)
	}
	if h.KeyID == "" {
		return nil, fmt.Errorf("%w: no kid", errToken)
	}
	k, ok := p.key(ctx, h.KeyID)
	if !ok {
		return nil, fmt.Errorf("%w: unknown key %q", errToken, h.KeyID)
	}
	if k.Algorithm != h.Algorithm {
		return nil, fmt.Errorf("%w: alg %s is not the key's %s", errToken, h.Algorithm, k.Algorithm)
	}
	payload, err := jws.Verify(k.Public)
	if err != nil {
		return nil, fmt.Errorf("%w: bad signature", errToken)
	}
	var c jwtClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, fmt.Errorf("%w: claims: %v", errToken, err)
	}
	switch {
	case c.Issuer != p.cfg.Issuer:
		return nil, fmt.Errorf("%w: iss %q", errToken, c.Issuer)
	case !c.Audience.has(p.cfg.ClientID):
		return nil, fmt.Errorf("%w: aud does not name client %s", errToken, p.cfg.ClientID)
	case len(c.Audience) > 1 && c.AZP != "" && c.AZP != p.cfg.ClientID:
		return nil, fmt.Errorf("%w: azp %q", errToken, c.AZP)
	}
	return &c, nil
}

// leeway is the clock skew tolerated on exp and iat.
const leeway = 5 * time.Second

// seconds converts a NumericDate.
func seconds(f float64) time.Time {
	return time.Unix(0, int64(f*float64(time.Second))).UTC()
}
