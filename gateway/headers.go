package gateway

import (
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

// DefaultStripHeaders are removed from every incoming request, on every
// route, before anything else looks at it: the identity headers that
// oauth2-proxy, Oathkeeper, nginx auth_request setups and the gateway
// itself send upstream, so a client can never pose as a user by sending
// them. A trailing * matches every header with that prefix. Matching
// ignores case and treats _ as - (CGI, WSGI, PHP and Rack read
// X_Forwarded_User as X-Forwarded-User). Config.StripHeaders adds more.
var DefaultStripHeaders = []string{
	"X-Forwarded-User",
	"X-Forwarded-Email",
	"X-Forwarded-Preferred-Username",
	"X-Forwarded-Groups",
	"X-Forwarded-Access-Token",
	"X-Auth-Request-*",
	"X-Latch-*",
	"X-User*",
	"X-Remote-User",
	"Remote-User",
	"X-Email",
	"Forwarded",
	// Headers frameworks read as the request's URL (Symfony, Laminas, IIS
	// URL Rewrite) or as the client's address and scheme: only the
	// gateway sets X-Forwarded-For/-Proto/-Host, from trusted proxies.
	"X-Original-URL",
	"X-Original-Uri",
	"X-Rewrite-URL",
	"X-Real-IP",
	"True-Client-IP",
	"X-Client-IP",
	"X-Cluster-Client-IP",
	"CF-Connecting-IP",
	"Fastly-Client-IP",
	"X-Forwarded-Port",
	"X-Forwarded-Ssl",
	"X-Forwarded-Scheme",
	"X-Forwarded-Prefix",
	"X-Forwarded-Server",
	"X-Url-Scheme",
	"Front-End-Https",
}

// Headers the gateway sends upstream on routes with identity.headers and
// identity.assertion, and the CSRF header browsers send it.
const (
	HeaderUser      = "X-Latch-User"
	HeaderScopes    = "X-Latch-Scopes"
	HeaderSession   = "X-Latch-Session"
	HeaderClient    = "X-Latch-Client"
	HeaderAssertion = "X-Latch-Assertion"
	// HeaderCSRF must accompany every state-changing request that a
	// browser session authenticates (any non-empty value).
	HeaderCSRF = "X-Latch-CSRF"
)

// stripper removes headers by exact name or prefix.
type stripper struct {
	exact    map[string]bool
	prefixes []string
}

func newStripper(extra []string) *stripper {
	s := &stripper{exact: map[string]bool{}}
	for _, h := range append(append([]string(nil), DefaultStripHeaders...), extra...) {
		n := foldHeader(h)
		if p, ok := strings.CutSuffix(n, "*"); ok {
			s.prefixes = append(s.prefixes, p)
		} else {
			s.exact[n] = true
		}
	}
	return s
}

// foldHeader is the form headers are compared in: lower case, _ as -.
func foldHeader(h string) string {
	return strings.ReplaceAll(strings.ToLower(h), "_", "-")
}

func (s *stripper) match(name string) bool {
	n := foldHeader(name)
	if s.exact[n] {
		return true
	}
	for _, p := range s.prefixes {
		if strings.HasPrefix(n, p) {
			return true
		}
	}
	return false
}

// strip deletes every matching header, every occurrence.
func (s *stripper) strip(h http.Header) {
	for name := range h {
		if s.match(name) {
			delete(h, name)
		}
	}
}

// trusted is the set of proxies whose X-Forwarded-* are believed.
type trusted []netip.Prefix

func newTrusted(cidrs []string) trusted {
	var t trusted
	for _, c := range cidrs {
		if p, err := parsePrefix(c); err == nil {
			t = append(t, p)
		}
	}
	return t
}

func (t trusted) contains(ip netip.Addr) bool {
	for _, p := range t {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// peerIP returns the address of the connection's peer.
func peerIP(remoteAddr string) (netip.Addr, bool) {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, false
	}
	return ip.Unmap(), true
}

// setForwarded sets X-Forwarded-For, -Proto and -Host on out: taken from
// in (the address appended to its X-Forwarded-For) when the peer is a
// trusted proxy, replaced by what the gateway itself sees otherwise.
//
// Without a trusted proxy in front, X-Forwarded-Host is the gateway's own
// public host, never the Host a client chose: upstreams build absolute
// URLs (password-reset links) from it.
func (t trusted) setForwarded(in, out *http.Request, publicHost string) {
	proto := "http"
	if in.TLS != nil {
		proto = "https"
	}
	host := publicHost
	peer, ok := peerIP(in.RemoteAddr)
	xff := ""
	if ok {
		xff = peer.String()
	}
	if ok && t.contains(peer) {
		if prior := strings.Join(in.Header.Values("X-Forwarded-For"), ", "); prior != "" {
			xff = prior + ", " + xff
		}
		if p := strings.ToLower(in.Header.Get("X-Forwarded-Proto")); p == "http" || p == "https" {
			proto = p
		}
		if h := in.Header.Get("X-Forwarded-Host"); h != "" && validHost(h) {
			host = h
		}
	}
	out.Header.Del("X-Forwarded-For")
	if xff != "" {
		out.Header.Set("X-Forwarded-For", xff)
	}
	out.Header.Set("X-Forwarded-Proto", proto)
	out.Header.Set("X-Forwarded-Host", host)
}

// validHost: a host[:port] with no characters that could smuggle
// anything else.
func validHost(h string) bool {
	if h == "" || len(h) > 255 {
		return false
	}
	u, err := url.Parse("http://" + h)
	return err == nil && u.Host == h && u.Path == "" && u.User == nil
}

// dropCookies removes from the Cookie headers of h every cookie that is
// not the application's: the gateway's session cookie and its sign-in
// cookies (name, name_login_…), and Latch's own (latch_…, with or without
// a __Host-/__Secure- prefix: the auth server's SSO and account cookies
// reach the gateway whenever both share a host name, since cookies ignore
// ports). None of them may reach an upstream: an SSO cookie replayed at
// /oauth2/authorize signs in as the user.
func dropCookies(h http.Header, name string) {
	vals := h.Values("Cookie")
	if len(vals) == 0 {
		return
	}
	var kept []string
	for _, line := range vals {
		for part := range strings.SplitSeq(line, ";") {
			part = strings.TrimSpace(part)
			n, _, _ := strings.Cut(part, "=")
			if n = strings.TrimSpace(n); part == "" || gatewayCookie(n, name) {
				continue
			}
			kept = append(kept, part)
		}
	}
	h.Del("Cookie")
	if len(kept) > 0 {
		h.Set("Cookie", strings.Join(kept, "; "))
	}
}

// gatewayCookie reports whether the cookie n belongs to the gateway (its
// session cookie name, its sign-in cookies) or to Latch.
func gatewayCookie(n, name string) bool {
	if name != "" && (n == name || strings.HasPrefix(n, name+"_login_")) {
		return true
	}
	bare := strings.TrimPrefix(strings.TrimPrefix(n, "__Host-"), "__Secure-")
	return strings.HasPrefix(bare, "latch_")
}

// dropSetCookie removes the upstream's Set-Cookie headers for the
// gateway's session cookie, so that no upstream can plant a session
// (session fixation) or end one.
func dropSetCookie(h http.Header, name string) {
	vals := h.Values("Set-Cookie")
	if len(vals) == 0 {
		return
	}
	var kept []string
	for _, v := range vals {
		n, _, _ := strings.Cut(v, "=")
		if strings.EqualFold(strings.TrimSpace(n), name) {
			continue
		}
		kept = append(kept, v)
	}
	h.Del("Set-Cookie")
	for _, v := range kept {
		h.Add("Set-Cookie", v)
	}
}
