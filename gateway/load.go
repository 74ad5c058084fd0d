package gateway

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/latchauth/latch/config"
)

// Defaults of the configuration (docs/gateway.md lists them).
const (
	DefaultAddr          = "127.0.0.1:8090"
	DefaultDataDir       = "./latch-gateway-data"
	DefaultCookie        = "__Host-latch_gw"
	DefaultIdleTimeout   = 8 * time.Hour
	DefaultAbsoluteTTL   = 7 * 24 * time.Hour
	DefaultRefreshBefore = 30 * time.Second
	DefaultRouteTimeout  = 30 * time.Second
)

// DefaultScopes are the scopes the gateway asks for at sign-in.
var DefaultScopes = []string{"openid", "offline_access"}

// Defaults returns the configuration used for every key a file leaves
// out. PublicURL and Audience depend on other keys (http://ADDR, the
// issuer) and are filled in by Load; a route's Timeout (30 s) and
// Audience (the gateway's) by Normalize.
func Defaults() Config {
	var c Config
	c.Addr = DefaultAddr
	c.DataDir = DefaultDataDir
	c.Scopes = slices.Clone(DefaultScopes)
	c.Session.Cookie = DefaultCookie
	c.Session.IdleTimeout = Duration(DefaultIdleTimeout)
	c.Session.AbsoluteTTL = Duration(DefaultAbsoluteTTL)
	c.Session.RefreshBefore = Duration(DefaultRefreshBefore)
	return c
}

// Load reads the YAML file at path over Defaults, applies the environment
// variables named by the env tags of Config (LATCH_GATEWAY_CLIENT_SECRET,
// LATCH_GATEWAY_DATABASE_URL, LATCH_GATEWAY_REDIS_URL, LATCH_GATEWAY_KEK),
// which win over the file, reads client_secret_file, fills in the derived
// defaults (Normalize) and checks the result (Check). The error lists
// every problem found, one per line, each naming the key as the file
// spells it (routes[2].upstream) and, for the file's own mistakes, its
// line. An unknown key is refused with the closest known one.
func Load(path string, environ []string) (Config, error) {
	c := Defaults()
	var errs []error
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return c, fmt.Errorf("gateway config: %w", err)
		}
		var doc yaml.Node
		if err := yaml.Unmarshal(b, &doc); err != nil {
			return c, fmt.Errorf("gateway config %s: %w", path, err)
		}
		if len(doc.Content) > 0 {
			d := decoder{file: path}
			d.decode(doc.Content[0], reflect.ValueOf(&c).Elem(), "")
			errs = append(errs, d.errs...)
		}
	}
	env := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	applyEnv(reflect.ValueOf(&c).Elem(), env)
	if c.ClientSecretFile != "" {
		if c.ClientSecret != "" {
			errs = append(errs, errors.New("client_secret_file: set either client_secret (LATCH_GATEWAY_CLIENT_SECRET) or client_secret_file, not both"))
		} else if b, err := os.ReadFile(c.ClientSecretFile); err != nil {
			errs = append(errs, fmt.Errorf("client_secret_file: %w", err))
		} else if c.ClientSecret = strings.TrimSpace(string(b)); c.ClientSecret == "" {
			errs = append(errs, fmt.Errorf("client_secret_file: %s is empty", c.ClientSecretFile))
		}
	}
	c.Normalize()
	if err := c.Check(); err != nil {
		errs = append(errs, err)
	}
	return c, errors.Join(errs...)
}

// applyEnv sets every string field with an env tag whose variable is set
// and not empty.
func applyEnv(v reflect.Value, env map[string]string) {
	t := v.Type()
	for i := range t.NumField() {
		f, sf := v.Field(i), t.Field(i)
		if f.Kind() == reflect.Struct && sf.Type != reflect.TypeFor[Duration]() {
			applyEnv(f, env)
			continue
		}
		if name := sf.Tag.Get("env"); name != "" && f.Kind() == reflect.String {
			if val := env[name]; val != "" {
				f.SetString(val)
			}
		}
	}
}

// Normalize fills in the defaults that depend on other keys: PublicURL
// (http://ADDR), Audience (the issuer), the session cookie (latch_gw
// instead of __Host-latch_gw on a plain-http public URL off localhost),
// and each route's Audience (the
// gateway's) and Timeout (30 s). Load calls it; so does New.
func (c *Config) Normalize() {
	if c.PublicURL == "" && c.Addr != "" {
		c.PublicURL = "http://" + c.Addr
	}
	c.PublicURL = strings.TrimSuffix(c.PublicURL, "/")
	if c.Audience == "" {
		c.Audience = c.Issuer
	}
	if c.Session.Cookie == DefaultCookie && strings.HasPrefix(c.PublicURL, "http://") && !loopbackURL(c.PublicURL) {
		// Browsers refuse __Host- (Secure) cookies from plain http
		// origins other than localhost.
		c.Session.Cookie = "latch_gw"
	}
	for i := range c.Routes {
		r := &c.Routes[i]
		if r.Audience == "" && r.Auth != AuthNone {
			r.Audience = c.Audience
		}
		if r.Timeout == 0 {
			r.Timeout = Duration(DefaultRouteTimeout)
		}
	}
}

// Check returns every problem of c, one per line, each naming its key
// (routes[1].auth: ...), or nil. It does not read files or reach the
// network.
func (c Config) Check() error {
	var p problems
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		p.add("addr", "%q is not host:port", c.Addr)
	}
	if c.PublicURL != "" {
		if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p.add("public_url", "%q is not an http(s) URL", c.PublicURL)
		} else if u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			p.add("public_url", "%q must be an origin (scheme://host[:port]) without a path", c.PublicURL)
		}
	}
	needClient := false
	for _, r := range c.Routes {
		if r.Auth == AuthToken || r.Auth == AuthSession {
			needClient = true
		}
	}
	if c.Issuer == "" {
		if needClient {
			p.add("issuer", "missing: the URL of the Latch auth server (its issuer)")
		}
	} else {
		checkServerURL(&p, "issuer", c.Issuer)
	}
	if c.Audience != "" && c.Audience != c.Issuer && strings.ContainsAny(c.Audience, " \t\r\n") {
		p.add("audience", "%q contains white space", c.Audience)
	}
	if needClient {
		if c.ClientID == "" {
			p.add("client_id", "missing: the gateway's client at the auth server (latch client add --id gw --generate-secret --can read-revocations ...)")
		}
		if c.ClientSecret == "" && c.ClientSecretFile == "" {
			p.add("client_secret", "missing: set LATCH_GATEWAY_CLIENT_SECRET or client_secret_file")
		}
	}
	for i, s := range c.Scopes {
		if !isScopeToken(s) {
			p.add(fmt.Sprintf("scopes[%d]", i), "%q is not a scope", s)
		}
	}
	if c.Store != "" {
		if u, err := url.Parse(c.Store); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			p.add("store", "must be empty (SQLite in data_dir) or a postgres:// URL")
		}
	}
	if c.Redis != "" {
		if u, err := url.Parse(c.Redis); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
			p.add("redis", "must be empty or a redis:// (rediss://) URL")
		}
	}
	if c.KEK != "" {
		if b, err := decodeB64(c.KEK); err != nil || len(b) != 32 {
			p.add("kek", "must be 32 random bytes in base64 (openssl rand -base64 32)")
		}
	}
	for i, cidr := range c.TrustedProxies {
		if _, err := parsePrefix(cidr); err != nil {
			p.add(fmt.Sprintf("trusted_proxies[%d]", i), "%q is not a CIDR (10.0.0.0/8) or an IP address", cidr)
		}
	}
	for i, h := range c.StripHeaders {
		if !validHeaderPattern(h) {
			p.add(fmt.Sprintf("strip_headers[%d]", i), "%q is not a header name (a trailing * matches a prefix)", h)
		}
	}
	s := c.Session
	switch {
	case s.Cookie == "":
	case !validCookieName(s.Cookie):
		p.add("session.cookie", "%q is not a cookie name", s.Cookie)
	case strings.HasPrefix(s.Cookie, "__Host-") && strings.HasPrefix(c.PublicURL, "http://") && !loopbackURL(c.PublicURL):
		p.add("session.cookie", "a __Host- cookie needs an https public_url (browsers refuse it on plain http off localhost); use https or another name")
	}
	for key, d := range map[string]Duration{"session.idle_timeout": s.IdleTimeout, "session.absolute_ttl": s.AbsoluteTTL, "session.refresh_before": s.RefreshBefore} {
		if d < 0 {
			p.add(key, "%v is negative", d.D())
		}
	}
	if s.IdleTimeout > 0 && s.AbsoluteTTL > 0 && s.IdleTimeout > s.AbsoluteTTL {
		p.add("session.idle_timeout", "%v is longer than session.absolute_ttl (%v)", s.IdleTimeout.D(), s.AbsoluteTTL.D())
	}
	if len(c.Routes) == 0 {
		p.add("routes", "missing: at least one route (path, upstream, auth)")
	}
	seen := map[string]int{}
	for i, r := range c.Routes {
		key := func(k string) string { return fmt.Sprintf("routes[%d].%s", i, k) }
		switch {
		case r.Path == "":
			p.add(key("path"), "missing: the path prefix the route serves (/api/)")
		case !strings.HasPrefix(r.Path, "/"):
			p.add(key("path"), "%q must start with /", r.Path)
		case !canonicalPath(r.Path) || strings.ContainsAny(r.Path, "?#%*\\ "):
			p.add(key("path"), "%q is not a clean path prefix (no .., //, ?, #, %%, *, \\ or spaces)", r.Path)
		case reservedPath(r.Path):
			p.add(key("path"), "%q is served by the gateway itself (/auth/, /healthz, /readyz, /metrics, /.well-known/jwks.json)", r.Path)
		default:
			// Routes match regardless of case (see Gateway.match).
			if j, dup := seen[strings.ToLower(r.Path)]; dup {
				p.add(key("path"), "%q is also the path of routes[%d] (paths match regardless of case)", r.Path, j)
			} else {
				seen[strings.ToLower(r.Path)] = i
			}
		}
		if r.Upstream == "" {
			p.add(key("upstream"), "missing: the base URL requests go to (http://127.0.0.1:9001)")
		} else if u, err := url.Parse(r.Upstream); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p.add(key("upstream"), "%q is not an http(s) URL", r.Upstream)
		} else if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			p.add(key("upstream"), "%q must not carry a query, a fragment or credentials", r.Upstream)
		}
		switch r.Auth {
		case AuthToken, AuthSession:
		case AuthNone:
			if len(r.Scopes) > 0 {
				p.add(key("scopes"), "a route with auth: none checks no scopes; use auth: token or auth: session")
			}
			if r.Audience != "" {
				p.add(key("audience"), "a route with auth: none checks no audience")
			}
			if r.Identity.Headers || r.Identity.Assertion {
				p.add(key("identity"), "a route with auth: none has no identity to forward")
			}
		case "":
			p.add(key("auth"), "missing: one of token, session, none")
		default:
			p.add(key("auth"), "%q is not one of token, session, none", r.Auth)
		}
		for j, s := range r.Scopes {
			if !isScopeToken(s) {
				p.add(fmt.Sprintf("routes[%d].scopes[%d]", i, j), "%q is not a scope", s)
			}
		}
		if r.Timeout < 0 {
			p.add(key("timeout"), "%v is negative", r.Timeout.D())
		}
		if r.StripPrefix && r.Path == "/" {
			p.add(key("strip_prefix"), "stripping / changes nothing")
		}
	}
	return p.err()
}

// problems collects Check's findings.
type problems []string

func (p *problems) add(key, format string, args ...any) {
	*p = append(*p, key+": "+fmt.Sprintf(format, args...))
}

func (p problems) err() error {
	if len(p) == 0 {
		return nil
	}
	slices.Sort(p)
	errs := make([]error, len(p))
	for i, s := range p {
		errs[i] = errors.New(s)
	}
	return errors.Join(errs...)
}

// checkServerURL checks the issuer: http(s), a host, no query; http only
// on loopback hosts (the verifier refuses keys fetched over plain http
// from anywhere else).
func checkServerURL(p *problems, key, s string) {
	u, err := url.Parse(s)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		p.add(key, "%q is not an http(s) URL", s)
	case u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		p.add(key, "%q must not carry a query, a fragment or credentials", s)
	case u.Scheme == "http" && !loopbackURL(s):
		p.add(key, "%q: plain http is accepted only on a loopback host; use https", s)
	}
}

// loopbackURL reports whether the URL's host is localhost or a loopback IP.
func loopbackURL(s string) bool {
	u, err := url.Parse(s)
	if err != nil {
		return false
	}
	h := u.Hostname()
	if h == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(h)
	return err == nil && ip.IsLoopback()
}

// parsePrefix parses a CIDR or a single address.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

// canonicalPath reports whether p is already clean (a trailing slash is
// kept).
func canonicalPath(p string) bool {
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c == p
}

// reservedPath reports whether a route path would shadow or be shadowed
// by the gateway's own endpoints.
func reservedPath(p string) bool {
	p = strings.ToLower(p)
	switch strings.TrimSuffix(p, "/") {
	case "/auth", "/healthz", "/readyz", "/metrics", "/.well-known/jwks.json":
		return true
	}
	return strings.HasPrefix(p, "/auth/")
}

// isScopeToken: 1*( %x21 / %x23-5B / %x5D-7E ) (RFC 6749 §3.3).
func isScopeToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// isTokenChar: the characters of an HTTP token (RFC 9110 §5.6.2).
func isTokenChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// validHeaderPattern: a header name, or a prefix of one ending in *.
func validHeaderPattern(s string) bool {
	s = strings.TrimSuffix(s, "*")
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTokenChar(s[i]) || s[i] == '*' {
			return false
		}
	}
	return true
}

func validCookieName(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isTokenChar(s[i]) {
			return false
		}
	}
	return s != ""
}

func decodeB64(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	var err error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		var b []byte
		if b, err = enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, err
}

// decoder applies a YAML document to a Config field by field, so that
// every mistake names its key as written (routes[2].upstream) and its line.
type decoder struct {
	file string
	errs []error
}

var durationType = reflect.TypeFor[Duration]()

func (d *decoder) errorf(n *yaml.Node, key, format string, args ...any) {
	d.errs = append(d.errs, fmt.Errorf("%s: %s (%s line %d)", key, fmt.Sprintf(format, args...), filepath.Base(d.file), n.Line))
}

func (d *decoder) decode(n *yaml.Node, v reflect.Value, key string) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // "key:" with no value keeps the default
	}
	where := key
	if where == "" {
		where = "the file"
	}
	switch {
	case v.Type() == durationType:
		var s string
		if n.Kind != yaml.ScalarNode || n.Decode(&s) != nil {
			d.errorf(n, where, "want a duration such as 30s, 5m or 8h")
			return
		}
		if s == "0" {
			v.SetInt(0)
			return
		}
		dur, err := time.ParseDuration(s)
		if err != nil {
			d.errorf(n, where, "%q is not a duration such as 30s, 5m or 8h", s)
			return
		}
		v.SetInt(int64(dur))
	case v.Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			d.errorf(n, where, "want a mapping (key: value)")
			return
		}
		fields := map[string]int{}
		var names []string
		for i := range v.NumField() {
			name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("yaml"), ",")
			if name != "" && name != "-" {
				fields[name] = i
				names = append(names, name)
			}
		}
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			sub := k.Value
			if key != "" {
				sub = key + "." + k.Value
			}
			if seen[k.Value] {
				d.errorf(k, sub, "appears twice")
				continue
			}
			seen[k.Value] = true
			fi, ok := fields[k.Value]
			if !ok {
				d.errorf(k, sub, "unknown key%s", config.Suggest(k.Value, names))
				continue
			}
			d.decode(val, v.Field(fi), sub)
		}
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Struct:
		if n.Kind != yaml.SequenceNode {
			d.errorf(n, where, "want a list (- item)")
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, it := range n.Content {
			d.decode(it, s.Index(i), fmt.Sprintf("%s[%d]", key, i))
		}
		v.Set(s)
	case v.Kind() == reflect.Slice:
		var items []string
		if n.Kind == yaml.ScalarNode {
			// scopes: "a b" is a common way to write a scope list.
			items = strings.Fields(n.Value)
		} else if n.Kind != yaml.SequenceNode {
			d.errorf(n, where, "want a list of values")
			return
		} else {
			for i, it := range n.Content {
				if it.Kind != yaml.ScalarNode {
					d.errorf(it, fmt.Sprintf("%s[%d]", key, i), "want a plain value")
					return
				}
				items = append(items, it.Value)
			}
		}
		v.Set(reflect.ValueOf(items))
	case v.Kind() == reflect.Bool:
		var b bool
		if n.Kind != yaml.ScalarNode || n.Decode(&b) != nil {
			d.errorf(n, where, "want true or false")
			return
		}
		v.SetBool(b)
	case v.Kind() == reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.errorf(n, where, "want a single value, not a list or a mapping")
			return
		}
		v.SetString(n.Value)
	default:
		d.errorf(n, where, "cannot be set from a file")
	}
}
