package auth

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/latchauth/latch"
)

// testSecret is a strong confidential-client secret.
var testSecret = GenerateClientSecret()

// TestCreateClientRefusesMetadata: every refused redirect URI, post-logout
// URI, back-channel logout URI, algorithm and combination fails with a
// ClientMetadataError naming the field and saying why (the reason is
// pinned, so removing a check makes its row fail), and nothing is stored.
func TestCreateClientRefusesMetadata(t *testing.T) {
	svc, _ := newService(t)
	long := "https://a.example/" + strings.Repeat("x", MaxClientURILength-len("https://a.example/")+1)
	many := make([]string, MaxClientURIs+1)
	for i := range many {
		many[i] = fmt.Sprintf("https://a.example/cb%d", i)
	}
	conf := func(uris ...string) NewClient { return NewClient{Secret: testSecret, RedirectURIs: uris} }
	pub := func(uris ...string) NewClient { return NewClient{Public: true, RedirectURIs: uris} }
	const ru, plu, bcl = "redirect_uris", "post_logout_redirect_uris", "backchannel_logout_uri"
	const notLoopback = "http is allowed only on a loopback host"
	cases := []struct {
		name   string
		n      NewClient
		field  string
		reason string
	}{
		{"empty URI", conf(""), ru, "an empty URI"},
		{"too long", conf(long), ru, "bytes long"},
		{"too many", conf(many...), ru, "at most 20"},
		{"duplicate", conf("https://a.example/cb", "https://a.example/cb"), ru, "listed twice"},
		{"space", conf("https://a.example/c b"), ru, "space"},
		{"control character", conf("https://a.example/c\nb"), ru, "space or a control"},
		{"non-ASCII", conf("https://bücher.example/cb"), ru, "non-ASCII"},
		{"backslash", conf(`https://evil.example\.a.example/cb`), ru, `'\\'`},
		{"wildcard in the path", conf("https://a.example/cb*"), ru, "wildcards"},
		{"wildcard host", conf("https://*.example.com/cb"), ru, "wildcards"},
		{"fragment", conf("https://a.example/cb#x"), ru, "fragment"},
		{"bidi override in the name", NewClient{Secret: testSecret, Name: "Bank\u202egnp.exe"}, "client_name", "printable"},
		{"name too long", NewClient{Secret: testSecret, Name: strings.Repeat("n", 65)}, "client_name", "at most 64"},
		{"code in the query", conf("https://a.example/cb?x=1&code=evil"), ru, `holds "code"`},
		{"iss in the query", conf("https://a.example/cb?iss=https://evil"), ru, `holds "iss"`},
		{"state in a post-logout query", NewClient{Secret: testSecret, RedirectURIs: []string{"https://a.example/cb"}, PostLogoutRedirectURIs: []string{"https://a.example/bye?state=x"}}, plu, `holds "state"`},
		{"empty fragment", conf("https://a.example/cb#"), ru, "fragment"},
		{"userinfo", conf("https://user:pw@a.example/cb"), ru, "userinfo"},
		{"userinfo without password", conf("https://a.example@evil.example/cb"), ru, "userinfo"},
		{"relative", conf("/cb"), ru, "absolute"},
		{"scheme-relative", conf("//a.example/cb"), ru, "absolute"},
		{"unparseable", conf("https://a.example:port/cb"), ru, "not a valid URI"},
		{"https without host", conf("https:///cb"), ru, "no host"},
		{"https opaque", conf("https:a.example/cb"), ru, "no host"},
		{"https port only", conf("https://:443/cb"), ru, "no host"},
		{"http without host", conf("http:///cb"), ru, "no host"},
		{"http on a public host", conf("http://dash.example.com/cb"), ru, notLoopback},
		{"http on a private address", conf("http://10.0.0.1/cb"), ru, notLoopback},
		{"http on 0.0.0.0", conf("http://0.0.0.0:8080/cb"), ru, notLoopback},
		{"http on a name starting like loopback", conf("http://127.0.0.1.evil.example/cb"), ru, notLoopback},
		{"http on a name starting with localhost", conf("http://localhost.evil.example/cb"), ru, notLoopback},
		{"http on a name ending in localhost", conf("http://evillocalhost/cb"), ru, notLoopback},
		{"http on a decimal loopback", conf("http://2130706433/cb"), ru, notLoopback},
		{"http on a short loopback", conf("http://127.1/cb"), ru, notLoopback},
		{"http, public client", pub("http://dash.example.com/cb"), ru, notLoopback},
		{"javascript", pub("javascript:alert(1)"), ru, `scheme "javascript" is not allowed`},
		{"data", pub("data:text/html,hi"), ru, `scheme "data" is not allowed`},
		{"file", pub("file:///etc/passwd"), ru, `scheme "file" is not allowed`},
		{"custom scheme without a period", pub("myapp:/cb"), ru, `scheme "myapp" is not allowed`},
		{"private-use scheme, confidential", conf("com.example.app:/cb"), ru, "for public native apps"},
		{"private-use scheme, nothing after it", pub("com.example.app:"), ru, "nothing after the scheme"},
		{"post-logout http", NewClient{Secret: testSecret, RedirectURIs: []string{"https://a.example/cb"},
			PostLogoutRedirectURIs: []string{"http://a.example/bye"}}, plu, notLoopback},
		{"post-logout fragment", NewClient{Secret: testSecret, RedirectURIs: []string{"https://a.example/cb"},
			PostLogoutRedirectURIs: []string{"https://a.example/bye#x"}}, plu, "fragment"},
		{"post-logout private-use, confidential", NewClient{Secret: testSecret, RedirectURIs: []string{"https://a.example/cb"},
			PostLogoutRedirectURIs: []string{"com.example.app:/bye"}}, plu, "for public native apps"},
		{"post-logout duplicate", NewClient{Secret: testSecret, RedirectURIs: []string{"https://a.example/cb"},
			PostLogoutRedirectURIs: []string{"https://a.example/bye", "https://a.example/bye"}}, plu, "listed twice"},
		{"post-logout too many", NewClient{Secret: testSecret, RedirectURIs: []string{"https://a.example/cb"},
			PostLogoutRedirectURIs: many}, plu, "at most 20"},
		{"back-channel http", NewClient{Secret: testSecret, RedirectURIs: []string{"https://a.example/cb"},
			BackchannelLogoutURI: "http://a.example/bc"}, bcl, notLoopback},
		{"back-channel fragment", NewClient{Secret: testSecret, RedirectURIs: []string{"https://a.example/cb"},
			BackchannelLogoutURI: "https://a.example/bc#x"}, bcl, "fragment"},
		{"back-channel userinfo", NewClient{Secret: testSecret, RedirectURIs: []string{"https://a.example/cb"},
			BackchannelLogoutURI: "https://u:p@a.example/bc"}, bcl, "userinfo"},
		{"back-channel wildcard", NewClient{Secret: testSecret, RedirectURIs: []string{"https://a.example/cb"},
			BackchannelLogoutURI: "https://a.example/*"}, bcl, "wildcards"},
		{"back-channel private-use, public client", NewClient{Public: true, RedirectURIs: []string{"com.example.app:/cb"},
			BackchannelLogoutURI: "com.example.app:/bc"}, bcl, `scheme "com.example.app" is not allowed`},
		{"back-channel relative", NewClient{Secret: testSecret, RedirectURIs: []string{"https://a.example/cb"},
			BackchannelLogoutURI: "/bc"}, bcl, "absolute"},
		{"algorithm not in the ring", NewClient{Secret: testSecret, RedirectURIs: []string{"https://a.example/cb"},
			IDTokenSignedResponseAlg: "ES256"}, "id_token_signed_response_alg", "not one of RS256"},
		{"algorithm none", NewClient{Secret: testSecret, RedirectURIs: []string{"https://a.example/cb"},
			IDTokenSignedResponseAlg: "none"}, "id_token_signed_response_alg", "not one of RS256"},
		{"algorithm HS256", NewClient{Secret: testSecret, RedirectURIs: []string{"https://a.example/cb"},
			IDTokenSignedResponseAlg: "HS256"}, "id_token_signed_response_alg", "not one of RS256"},
		{"redirect URI, cookie delivery", NewClient{Public: true, Delivery: latch.DeliveryCookie,
			RedirectURIs: []string{"https://a.example/cb"}}, ru, "signs in through /v1/auth"},
		{"redirect URI, memory delivery", NewClient{Public: true, Delivery: latch.DeliveryMemory,
			RedirectURIs: []string{"https://a.example/cb"}}, ru, "signs in through /v1/auth"},
		{"post-logout URI, cookie delivery", NewClient{Public: true, Delivery: latch.DeliveryCookie,
			PostLogoutRedirectURIs: []string{"https://a.example/bye"}}, plu, "signs in through /v1/auth"},
		{"back-channel URI, memory delivery", NewClient{Public: true, Delivery: latch.DeliveryMemory,
			BackchannelLogoutURI: "https://a.example/bc"}, bcl, "signs in through /v1/auth"},
		{"first party, cookie delivery", NewClient{Public: true, Delivery: latch.DeliveryCookie, FirstParty: true},
			"first_party", "signs in through /v1/auth"},
		{"algorithm, cookie delivery", NewClient{Public: true, Delivery: latch.DeliveryCookie, IDTokenSignedResponseAlg: "RS256"},
			"id_token_signed_response_alg", "signs in through /v1/auth"},
		{"post-logout URI without a redirect URI", NewClient{Secret: testSecret,
			PostLogoutRedirectURIs: []string{"https://a.example/bye"}}, plu, "register a redirect URI too"},
		{"back-channel URI without a redirect URI", NewClient{Secret: testSecret,
			BackchannelLogoutURI: "https://a.example/bc"}, bcl, "register a redirect URI too"},
		{"first party without a redirect URI", NewClient{Secret: testSecret, FirstParty: true},
			"first_party", "register a redirect URI too"},
		{"algorithm without a redirect URI", NewClient{Secret: testSecret, IDTokenSignedResponseAlg: "RS256"},
			"id_token_signed_response_alg", "register a redirect URI too"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.n.ID = fmt.Sprintf("refused-%d", i)
			_, err := svc.CreateClient(t.Context(), tc.n)
			var me *ClientMetadataError
			if !errors.As(err, &me) || !errors.Is(err, ErrInvalidClientMetadata) {
				t.Fatalf("err = %v, want a ClientMetadataError", err)
			}
			if me.Field != tc.field || !strings.Contains(me.Reason, tc.reason) {
				t.Fatalf("err = %v (field %q), want field %q and a reason containing %q", err, me.Field, tc.field, tc.reason)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, tc.field) || (me.Value != "" && !strings.Contains(msg, fmt.Sprintf("%q", me.Value))) {
				t.Errorf("message %q does not name the field and the value", msg)
			}
			if _, err := svc.Client(t.Context(), tc.n.ID); !errors.Is(err, ErrNotFound) {
				t.Errorf("refused client was stored (err %v)", err)
			}
		})
	}
}

// TestCreateClientAcceptsMetadata: each accepted form of redirect URI,
// post-logout URI and back-channel URI is stored as given, with the
// first-party flag and the algorithm.
func TestCreateClientAcceptsMetadata(t *testing.T) {
	svc, _ := newService(t)
	exact := "https://a.example/" + strings.Repeat("x", MaxClientURILength-len("https://a.example/"))
	twenty := make([]string, MaxClientURIs)
	for i := range twenty {
		twenty[i] = fmt.Sprintf("https://a.example/cb%d", i)
	}
	cases := []struct {
		name string
		n    NewClient
	}{
		{"https", NewClient{Secret: testSecret, RedirectURIs: []string{"https://dash.example.com/callback"}}},
		{"https with port and query", NewClient{Secret: testSecret, RedirectURIs: []string{"https://dash.example.com:8443/cb?tenant=a&x=%20"}}},
		{"loopback with port", NewClient{Secret: testSecret, RedirectURIs: []string{"http://127.0.0.1:8080/cb"}}},
		{"loopback in 127/8", NewClient{Public: true, RedirectURIs: []string{"http://127.1.2.3/cb"}}},
		{"IPv6 loopback", NewClient{Public: true, RedirectURIs: []string{"http://[::1]:3000/cb"}}},
		{"localhost", NewClient{Public: true, RedirectURIs: []string{"http://localhost:5173/cb"}}},
		{"localhost in capitals", NewClient{Public: true, RedirectURIs: []string{"http://LOCALHOST/cb"}}},
		{"app.localhost", NewClient{Public: true, RedirectURIs: []string{"http://app.localhost:5173/cb"}}},
		{"private-use scheme, public", NewClient{Public: true, RedirectURIs: []string{"com.example.app:/cb"}}},
		{"private-use scheme with host, public", NewClient{Public: true, RedirectURIs: []string{"com.example.app://cb/x"}}},
		{"twenty URIs", NewClient{Secret: testSecret, RedirectURIs: twenty}},
		{"URI of the longest length", NewClient{Secret: testSecret, RedirectURIs: []string{exact}}},
		{"everything, confidential", NewClient{Secret: testSecret, RedirectURIs: []string{"https://dash.example.com/callback", "http://localhost:8080/callback"},
			PostLogoutRedirectURIs: []string{"https://dash.example.com/bye", "http://[::1]/bye"}, BackchannelLogoutURI: "https://dash.example.com/backchannel",
			FirstParty: true, IDTokenSignedResponseAlg: "RS256"}},
		{"everything, public native", NewClient{Public: true, RedirectURIs: []string{"com.example.app:/cb"},
			PostLogoutRedirectURIs: []string{"com.example.app:/bye"}, BackchannelLogoutURI: "http://app.localhost:9000/bc", FirstParty: true}},
		{"back-channel on loopback, confidential", NewClient{Secret: testSecret, RedirectURIs: []string{"https://a.example/cb"},
			BackchannelLogoutURI: "http://127.0.0.1:9000/bc?x=1"}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.n.ID = fmt.Sprintf("ok-%d", i)
			if _, err := svc.CreateClient(t.Context(), tc.n); err != nil {
				t.Fatal(err)
			}
			c, err := svc.Client(t.Context(), tc.n.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(c.RedirectURIs, tc.n.RedirectURIs) || !slices.Equal(c.PostLogoutRedirectURIs, tc.n.PostLogoutRedirectURIs) ||
				c.BackchannelLogoutURI != tc.n.BackchannelLogoutURI || c.FirstParty != tc.n.FirstParty ||
				c.IDTokenSignedResponseAlg != tc.n.IDTokenSignedResponseAlg || c.Public() != tc.n.Public {
				t.Errorf("stored %+v, registered %+v", c, tc.n)
			}
		})
	}
}

// TestCreateClientOpenIDScopes: a client with redirect URIs and no scopes
// may be granted the OpenID scopes; explicit scopes are kept; a client
// without redirect URIs gets none.
func TestCreateClientOpenIDScopes(t *testing.T) {
	svc, _ := newService(t)
	for _, tc := range []struct {
		n    NewClient
		want []string
	}{
		{NewClient{ID: "rp", Secret: testSecret, RedirectURIs: []string{"https://a.example/cb"}}, []string{"email", "offline_access", "openid", "profile"}},
		{NewClient{ID: "rp-narrow", Secret: testSecret, RedirectURIs: []string{"https://a.example/cb"}, Scopes: []string{"openid"}}, []string{"openid"}},
		{NewClient{ID: "svc", Secret: testSecret}, nil},
	} {
		c, err := svc.CreateClient(t.Context(), tc.n)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(c.Scopes, tc.want) {
			t.Errorf("%s: scopes %q, want %q", tc.n.ID, c.Scopes, tc.want)
		}
	}
	if !slices.Equal(OpenIDScopes, []string{"openid", "profile", "email", "offline_access"}) {
		t.Errorf("OpenIDScopes changed: %q", OpenIDScopes)
	}
}

// TestCreateClientIDTokenAlgorithms: the algorithms come from the
// configuration (the key ring's); RS256 only by default.
func TestCreateClientIDTokenAlgorithms(t *testing.T) {
	_, spy := newService(t)
	cfg := testConfig()
	cfg.IDTokenAlgorithms = []string{"RS256", "ES256"}
	svc, err := New(cfg, testDeps(t, spy))
	if err != nil {
		t.Fatal(err)
	}
	for _, alg := range []string{"ES256", "RS256", ""} {
		n := NewClient{ID: "rp-" + alg, Secret: testSecret, RedirectURIs: []string{"https://a.example/cb"}, IDTokenSignedResponseAlg: alg}
		if _, err := svc.CreateClient(t.Context(), n); err != nil {
			t.Errorf("%q: %v", alg, err)
		}
	}
	_, err = svc.CreateClient(t.Context(), NewClient{ID: "rp-ps", Secret: testSecret, RedirectURIs: []string{"https://a.example/cb"}, IDTokenSignedResponseAlg: "PS256"})
	if !errors.Is(err, ErrInvalidClientMetadata) || !strings.Contains(err.Error(), "not one of RS256, ES256") {
		t.Errorf("PS256: %v", err)
	}
}
