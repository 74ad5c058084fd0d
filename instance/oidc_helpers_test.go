package instance_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"

	"github.com/latchauth/latch/auth"
)

// rpSecret is the secret of the confidential relying parties of the tests.
const rpSecret = "Qm9vdHN0cmFwLXJwLXNlY3JldC1mb3ItdGVzdHMtOGYzYzJhMWI3ZDRlOWYwNg"

// addRP registers a relying party with redirect URI https://ID.example/cb.
func (h *harness) addRP(id string, mutate func(*auth.NewClient)) {
	h.t.Helper()
	n := auth.NewClient{ID: id, Secret: rpSecret, RedirectURIs: []string{"https://" + id + ".example/cb"},
		PostLogoutRedirectURIs: []string{"https://" + id + ".example/bye"}}
	if mutate != nil {
		mutate(&n)
	}
	if _, err := h.in.Auth.CreateClient(context.Background(), n); err != nil {
		h.t.Fatal(err)
	}
}

// browser is a user agent with a cookie jar that does not follow
// redirects, so each hop can be looked at.
type browser struct {
	t  testing.TB
	h  *harness
	hc *http.Client
}

func (h *harness) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: h.t, h: h, hc: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

// hop is one response of the browser.
type hop struct {
	code     int
	location string
	body     string
	header   http.Header
}

func (b *browser) do(req *http.Request) hop {
	b.t.Helper()
	res, err := b.hc.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return hop{code: res.StatusCode, location: res.Header.Get("Location"), body: string(body), header: res.Header}
}

func (b *browser) get(path string) hop {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.h.srv.URL+path, nil)
	return b.do(req)
}

func (b *browser) postForm(path string, form url.Values) hop {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, b.h.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// signIn signs in on Latch's own page (the account client), which starts
// the SSO session.
func (b *browser) signIn(email, pw string) hop {
	b.t.Helper()
	body, _ := json.Marshal(map[string]string{"email": email, "password": pw, "client_id": auth.AccountClientID})
	req, _ := http.NewRequest(http.MethodPost, b.h.srv.URL+"/v1/auth/login", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	r := b.do(req)
	if r.code != http.StatusOK {
		b.t.Fatalf("sign-in: %d %s", r.code, r.body)
	}
	return r
}

// authorize sends an authorization request and returns the first answer.
func (b *browser) authorize(q url.Values) hop {
	b.t.Helper()
	return b.get("/oauth2/authorize?" + q.Encode())
}

// pkce returns a verifier and its S256 challenge.
func pkce(seed string) (verifier, challenge string) {
	verifier = strings.Repeat(seed, 64)[:64]
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

// codeRequest is the parameters of a code-flow request by client id.
func codeRequest(id, scope string, extra ...string) url.Values {
	q := url.Values{"client_id": {id}, "redirect_uri": {"https://" + id + ".example/cb"}, "response_type": {"code"},
		"scope": {scope}, "state": {"st-" + id}, "nonce": {"n-" + id}}
	for i := 0; i+1 < len(extra); i += 2 {
		q.Set(extra[i], extra[i+1])
	}
	return q
}

// callback reads the code (or error) the provider sent to a redirect URI.
func callback(t testing.TB, r hop) url.Values {
	t.Helper()
	if r.code != http.StatusSeeOther {
		t.Fatalf("want a 303 to the client, got %d %s", r.code, r.body)
	}
	u, err := url.Parse(r.location)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

// exchange redeems a code at the token endpoint as client id (with
// rpSecret, by client_secret_basic).
func (h *harness) exchange(id, code, redirect, verifier string) response {
	h.t.Helper()
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect}}
	if verifier != "" {
		form.Set("code_verifier", verifier)
	}
	return h.do(http.MethodPost, "/oauth2/token", form.Encode(), "Content-Type", "application/x-www-form-urlencoded",
		"Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(id+":"+rpSecret)))
}
