package device

import (
	"crypto/hmac"
	"crypto/sha256"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/auth"
)

func testMAC(purpose string, msg []byte) []byte {
	m := hmac.New(sha256.New, []byte("test key"))
	m.Write([]byte(purpose + ":"))
	m.Write(msg)
	return m.Sum(nil)
}

// serve runs req through the middleware and a handler that signs in
// (SetCookie), and returns the id the handler saw and the response.
func serve(r *Registry, req *http.Request) (string, *http.Response) {
	var seen string
	h := r.Middleware(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		seen = ID(req.Context())
		r.SetCookie(w, req)
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return seen, rec.Result()
}

// TestCookie: a browser without a cookie gets a fresh id, and the cookie
// that carries it (__Host-, HttpOnly, Secure, Lax, 400 days); the cookie
// brings the same id back; a tampered or foreign cookie counts as none;
// a client that is not a browser gets no id.
func TestCookie(t *testing.T) {
	r := New(nil, testMAC, true)
	req := httptest.NewRequest("POST", "/v1/auth/login", nil)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	id, res := serve(r, req)
	cs := res.Cookies()
	if id == "" || len(cs) != 1 {
		t.Fatalf("fresh browser: id %q, cookies %v", id, cs)
	}
	c := cs[0]
	if c.Name != "__Host-latch_device" || !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteLaxMode || c.Path != "/" ||
		c.Domain != "" || c.MaxAge != 400*24*3600 || !strings.HasPrefix(c.Value, id+".") {
		t.Errorf("cookie %+v", c)
	}

	again := httptest.NewRequest("GET", "/", nil)
	again.AddCookie(c)
	if got, _ := serve(r, again); got != id {
		t.Errorf("with the cookie: id %q, want %q", got, id)
	}
	for name, v := range map[string]string{
		"tampered id":  strings.Repeat("b", 26) + c.Value[26:],
		"tampered mac": c.Value[:len(c.Value)-2] + "AA",
		"no mac":       id,
		"other key":    New(nil, func(p string, m []byte) []byte { return testMAC(p+"x", m) }, true).value(id),
	} {
		bad := httptest.NewRequest("GET", "/", nil)
		bad.AddCookie(&http.Cookie{Name: "__Host-latch_device", Value: v})
		if got, _ := serve(r, bad); got != "" {
			t.Errorf("%s: id %q, want none", name, got)
		}
		if _, ok := r.Check(v); ok {
			t.Errorf("%s passes Check", name)
		}
	}
	if got, res := serve(r, httptest.NewRequest("POST", "/v1/auth/login", nil)); got != "" || len(res.Cookies()) != 0 {
		t.Errorf("a client without Fetch Metadata got id %q, cookies %v", got, res.Cookies())
	}
	if New(nil, testMAC, false).CookieName() != "latch_device" {
		t.Error("an insecure issuer's cookie cannot carry the __Host- prefix")
	}
}

// TestFamily: the family ignores the browser version and the OS minor
// version, and tells browsers, systems and command-line clients apart.
func TestFamily(t *testing.T) {
	const (
		chrome120 = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
		chrome121 = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/121.0.0.0 Safari/537.36"
		firefox   = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0"
		chromeMac = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
	)
	if Family(chrome120) != Family(chrome121) {
		t.Errorf("a browser update changed the family: %q, %q", Family(chrome120), Family(chrome121))
	}
	seen := map[string]string{}
	for _, ua := range []string{chrome120, firefox, chromeMac, "curl/8.5.0", "okhttp/4.12.0"} {
		f := Family(ua)
		if other, dup := seen[f]; dup {
			t.Errorf("%q and %q share the family %q", ua, other, f)
		}
		seen[f] = ua
	}
	if b, os := Describe(chrome120); b != "Chrome 120" || os != "Windows 10" {
		t.Errorf("Describe = %q, %q", b, os)
	}
}

// TestRecognize: by cookie id when there is one (and never by family
// then); by family among cookie-less devices otherwise.
func TestRecognize(t *testing.T) {
	const ua = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
	withCookie := &latch.Device{ID: "dev_1", CookieID: "c1", Family: Family(ua)}
	cli := &latch.Device{ID: "dev_2", Family: Family("curl/8.5.0")}
	devs := []*latch.Device{withCookie, cli}
	for _, c := range []struct {
		d    auth.Device
		want *latch.Device
	}{
		{auth.Device{UserAgent: ua, DeviceID: "c1", IP: "203.0.113.9"}, withCookie},
		{auth.Device{UserAgent: "curl/8.5.0", DeviceID: "c1"}, withCookie},
		{auth.Device{UserAgent: ua, DeviceID: "c2"}, nil},
		{auth.Device{UserAgent: ua}, nil},
		{auth.Device{UserAgent: "curl/8.6.0"}, cli},
	} {
		if got := Recognize(devs, c.d); got != c.want {
			t.Errorf("Recognize(%+v) = %v, want %v", c.d, got, c.want)
		}
	}
}
