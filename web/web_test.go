package web

import (
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
)

const sdkSource = "export function createClient() { return {}; }\n"

func testSDK() fstest.MapFS {
	return fstest.MapFS{
		"latch.js":  {Data: []byte(sdkSource)},
		"README.md": {Data: []byte("# not served\n")},
	}
}

func newServer(t *testing.T, cfg Config) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(New(cfg, testSDK()))
	t.Cleanup(srv.Close)
	return srv
}

func demoConfig() Config {
	return Config{Registration: true, Demo: true, DemoEmail: "demo@example.com", DemoPassword: "demo-password", Issuer: "http://127.0.0.1:8080"}
}

type response struct {
	code   int
	header http.Header
	body   string
}

func get(t *testing.T, srv *httptest.Server, path string, hdr ...string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{res.StatusCode, res.Header, string(b)}
}

func checkSecurityHeaders(t *testing.T, path string, h http.Header) {
	t.Helper()
	want := map[string]string{
		"Content-Security-Policy":    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
		"Referrer-Policy":            "no-referrer",
		"X-Content-Type-Options":     "nosniff",
		"X-Frame-Options":            "DENY",
		"Cross-Origin-Opener-Policy": "same-origin",
	}
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Errorf("%s: %s = %q, want %q", path, k, got, v)
		}
	}
	if csp := h.Get("Content-Security-Policy"); strings.Contains(csp, "unsafe") {
		t.Errorf("%s: CSP allows something unsafe: %s", path, csp)
	}
	if pp := h.Get("Permissions-Policy"); !strings.Contains(pp, "camera=()") {
		t.Errorf("%s: Permissions-Policy = %q", path, pp)
	}
}

var pages = []string{"/login", "/account", "/demo", "/verify", "/reset", "/unlock", "/alert"}

func TestPagesAreServedWithSecurityHeaders(t *testing.T) {
	srv := newServer(t, demoConfig())
	for _, p := range pages {
		r := get(t, srv, p)
		if r.code != http.StatusOK {
			t.Fatalf("GET %s: %d", p, r.code)
		}
		checkSecurityHeaders(t, p, r.header)
		if ct := r.header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
			t.Errorf("GET %s: Content-Type %q", p, ct)
		}
		if cc := r.header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("GET %s: Cache-Control %q, want no-store", p, cc)
		}
		if !strings.HasPrefix(r.body, "<!doctype html>") {
			t.Errorf("GET %s: no doctype", p)
		}
	}
	// Everything else the handler answers carries them too.
	for _, p := range []string{"/", "/static/nope.css", "/sdk/latch.js", "/nope", staticURL(t, srv, "app.css")} {
		checkSecurityHeaders(t, p, get(t, srv, p).header)
	}
}

func TestRootRedirectsToAccount(t *testing.T) {
	srv := newServer(t, Config{})
	r := get(t, srv, "/")
	if r.code != http.StatusSeeOther || r.header.Get("Location") != "/account" {
		t.Fatalf("GET /: %d Location %q", r.code, r.header.Get("Location"))
	}
}

func TestOnlyGetAndHead(t *testing.T) {
	srv := newServer(t, demoConfig())
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
		req, _ := http.NewRequest(m, srv.URL+"/login", strings.NewReader("email=a&password=b"))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusMethodNotAllowed || res.Header.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s /login: %d Allow %q", m, res.StatusCode, res.Header.Get("Allow"))
		}
		checkSecurityHeaders(t, m+" /login", res.Header)
	}
	req, _ := http.NewRequest(http.MethodHead, srv.URL+"/account", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("HEAD /account: %d", res.StatusCode)
	}
}

func TestDemoIsNotFoundUnlessEnabled(t *testing.T) {
	srv := newServer(t, Config{DemoEmail: "demo@example.com", DemoPassword: "secret-demo-pw"})
	r := get(t, srv, "/demo")
	if r.code != http.StatusNotFound {
		t.Fatalf("GET /demo without Demo: %d", r.code)
	}
	checkSecurityHeaders(t, "/demo", r.header)
	if strings.Contains(r.body, "secret-demo-pw") {
		t.Error("the 404 page shows the demo password")
	}
	// The other pages never show the demo credentials.
	srv = newServer(t, demoConfig())
	for _, p := range []string{"/login", "/account"} {
		if b := get(t, srv, p).body; strings.Contains(b, "demo-password") {
			t.Errorf("%s shows the demo password", p)
		}
	}
}

// ---- a small HTML scanner: enough for our own templates ----

type tag struct {
	name  string
	attrs map[string]string
	text  string // raw content of <script> and <style>
}

var tagRE = regexp.MustCompile(`(?s)<!--.*?-->|<(/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[^\s"'>/=]+(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'>]+))?)*)\s*/?>`)
var attrRE = regexp.MustCompile(`([^\s"'>/=]+)(?:\s*=\s*("[^"]*"|'[^']*'|[^\s"'>]+))?`)

func parseTags(t *testing.T, doc string) []tag {
	t.Helper()
	var tags []tag
	for i := 0; i < len(doc); {
		loc := tagRE.FindStringSubmatchIndex(doc[i:])
		if loc == nil {
			break
		}
		m := doc[i+loc[0] : i+loc[1]]
		end := i + loc[1]
		if strings.HasPrefix(m, "<!--") || loc[2] != loc[3] { // comment or closing tag
			i = end
			continue
		}
		name := strings.ToLower(doc[i+loc[4] : i+loc[5]])
		tg := tag{name: name, attrs: map[string]string{}}
		for _, a := range attrRE.FindAllStringSubmatch(doc[i+loc[6]:i+loc[7]], -1) {
			v := a[2]
			if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') {
				v = v[1 : len(v)-1]
			}
			tg.attrs[strings.ToLower(a[1])] = html.UnescapeString(v)
		}
		if name == "script" || name == "style" {
			close := strings.Index(strings.ToLower(doc[end:]), "</"+name)
			if close < 0 {
				t.Fatalf("<%s> never closed", name)
			}
			tg.text = doc[end : end+close]
			end += close
		}
		tags = append(tags, tg)
		i = end
	}
	return tags
}

func TestNoInlineScriptOrStyle(t *testing.T) {
	for _, cfg := range []Config{demoConfig(), {}} {
		srv := newServer(t, cfg)
		paths := []string{"/login", "/account", "/verify", "/reset", "/nope"}
		if cfg.Demo {
			paths = append(paths, "/demo")
		}
		for _, p := range paths {
			body := get(t, srv, p).body
			tags := parseTags(t, body)
			if len(tags) < 10 {
				t.Fatalf("%s: only %d tags parsed", p, len(tags))
			}
			for _, tg := range tags {
				if tg.name == "script" {
					if tg.attrs["src"] == "" {
						t.Errorf("%s: inline <script>: %q", p, tg.text)
					}
					if strings.TrimSpace(tg.text) != "" {
						t.Errorf("%s: <script src> with content %q", p, tg.text)
					}
				}
				if tg.name == "style" {
					t.Errorf("%s: <style> element", p)
				}
				for a, v := range tg.attrs {
					if a == "style" {
						t.Errorf("%s: style attribute on <%s>", p, tg.name)
					}
					if strings.HasPrefix(a, "on") {
						t.Errorf("%s: event handler attribute %s on <%s>", p, a, tg.name)
					}
					if strings.HasPrefix(strings.TrimSpace(strings.ToLower(v)), "javascript:") {
						t.Errorf("%s: javascript: URL in %s on <%s>", p, a, tg.name)
					}
				}
			}
			if strings.Contains(strings.ToLower(body), "<style") {
				t.Errorf("%s: contains <style", p)
			}
		}
	}
}

func pageConfigOf(t *testing.T, body string) map[string]any {
	t.Helper()
	for _, tg := range parseTags(t, body) {
		if tg.name == "meta" && tg.attrs["name"] == "latch-config" {
			var cfg map[string]any
			if err := json.Unmarshal([]byte(tg.attrs["content"]), &cfg); err != nil {
				t.Fatalf("latch-config %q: %v", tg.attrs["content"], err)
			}
			return cfg
		}
	}
	t.Fatal("no <meta name=latch-config>")
	return nil
}

func TestPageConfig(t *testing.T) {
	srv := newServer(t, demoConfig())
	for p, client := range map[string]string{"/login": "latch-account", "/account": "latch-account", "/demo": "demo"} {
		cfg := pageConfigOf(t, get(t, srv, p).body)
		if cfg["clientId"] != client || cfg["baseUrl"] != "" || cfg["registration"] != true {
			t.Errorf("%s: config %v", p, cfg)
		}
	}
	srv = newServer(t, Config{})
	body := get(t, srv, "/login").body
	if cfg := pageConfigOf(t, body); cfg["registration"] != false {
		t.Errorf("registration off: config %v", cfg)
	}
	if strings.Contains(body, `id="mode-signup"`) {
		t.Error("sign-up toggle shown with registration off")
	}
	if !strings.Contains(get(t, newServer(t, demoConfig()), "/login").body, `id="mode-signup"`) {
		t.Error("no sign-up toggle with registration on")
	}
}

func TestTemplatesEscapeConfig(t *testing.T) {
	evil := `"><script>alert(1)</script><img src=x onerror=alert(2)>'`
	srv := newServer(t, Config{Demo: true, DemoEmail: evil + "@example.com", DemoPassword: "</script>" + evil, Issuer: "javascript:alert(3)//" + evil})
	for _, p := range pages {
		body := get(t, srv, p).body
		for _, bad := range []string{"<script>alert", "<img src=x", "</script><"} {
			if strings.Contains(body, bad) {
				t.Errorf("%s: unescaped %q in page", p, bad)
			}
		}
		for _, tg := range parseTags(t, body) {
			if tg.name == "script" && tg.attrs["src"] == "" {
				t.Errorf("%s: injected inline script", p)
			}
			if tg.name == "img" && tg.attrs["src"] == "x" {
				t.Errorf("%s: injected <img>", p)
			}
		}
	}
	// The values still arrive intact, as text.
	body := get(t, srv, "/demo").body
	found := false
	for _, tg := range parseTags(t, body) {
		if tg.name == "input" && tg.attrs["id"] == "email" {
			found = true
			if tg.attrs["value"] != evil+"@example.com" {
				t.Errorf("demo email value = %q", tg.attrs["value"])
			}
		}
	}
	if !found {
		t.Error("no email input on /demo")
	}
	if !strings.Contains(body, html.EscapeString(evil)) && !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Error("demo email not shown escaped")
	}
}

// ---- static assets and the SDK ----

// staticURL finds the versioned URL of an asset in the /login page.
func staticURL(t *testing.T, srv *httptest.Server, name string) string {
	t.Helper()
	base := strings.TrimSuffix(name, "."+ext(name))
	re := regexp.MustCompile(`/static/` + regexp.QuoteMeta(base) + `\.[0-9a-f]{12}\.` + ext(name))
	for _, p := range []string{"/login", "/account"} {
		if u := re.FindString(get(t, srv, p).body); u != "" {
			return u
		}
	}
	t.Fatalf("no versioned URL for %s", name)
	return ""
}

func ext(name string) string { return name[strings.LastIndex(name, ".")+1:] }

var importRE = regexp.MustCompile(`(?m)(?:from|import)\s*'([^']+)'`)

func TestStaticAssetsAreVersionedAndImmutable(t *testing.T) {
	srv := newServer(t, demoConfig())
	// Walk every asset the pages reference, and every module those import.
	seen := map[string]bool{}
	var queue []string
	for _, p := range pages {
		for _, tg := range parseTags(t, get(t, srv, p).body) {
			for _, a := range []string{"src", "href"} {
				if u := tg.attrs[a]; strings.HasPrefix(u, "/static/") || strings.HasPrefix(u, "/sdk/") {
					queue = append(queue, u)
				}
			}
		}
	}
	wantType := map[string]string{"css": "text/css; charset=utf-8", "js": "text/javascript; charset=utf-8", "svg": "image/svg+xml"}
	kinds := map[string]bool{}
	for len(queue) > 0 {
		u := queue[0]
		queue = queue[1:]
		if seen[u] {
			continue
		}
		seen[u] = true
		r := get(t, srv, u)
		if r.code != http.StatusOK {
			t.Errorf("GET %s: %d", u, r.code)
			continue
		}
		path, _, _ := strings.Cut(u, "?")
		e := ext(path)
		kinds[e] = true
		if ct := r.header.Get("Content-Type"); ct != wantType[e] {
			t.Errorf("GET %s: Content-Type %q, want %q", u, ct, wantType[e])
		}
		if cc := r.header.Get("Cache-Control"); cc != "public, max-age=31536000, immutable" {
			t.Errorf("GET %s: Cache-Control %q", u, cc)
		}
		checkSecurityHeaders(t, u, r.header)
		if e == "js" {
			for _, m := range importRE.FindAllStringSubmatch(r.body, -1) {
				spec := m[1]
				if !regexp.MustCompile(`^/static/[a-z]+\.[0-9a-f]{12}\.js$|^/sdk/latch\.js\?v=[0-9a-f]{12}$`).MatchString(spec) {
					t.Errorf("%s imports %q, not a versioned URL", u, spec)
				}
				queue = append(queue, spec)
			}
			for _, sink := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "setAttribute('style'", ".style."} {
				if strings.Contains(r.body, sink) {
					t.Errorf("%s uses %s", u, sink)
				}
			}
		}
	}
	for _, k := range []string{"css", "js", "svg"} {
		if !kinds[k] {
			t.Errorf("no %s asset referenced by the pages", k)
		}
	}
	if !seen["/sdk/latch.js?v="+hashOf(sdkSource)] {
		t.Errorf("the pages do not import the versioned SDK; saw %v", seen)
	}

	// An unversioned or stale name is revalidated, not cached for good.
	r := get(t, srv, "/static/app.css")
	if r.code != http.StatusOK || r.header.Get("Cache-Control") != "no-cache" || r.header.Get("ETag") == "" {
		t.Errorf("GET /static/app.css: %d Cache-Control %q ETag %q", r.code, r.header.Get("Cache-Control"), r.header.Get("ETag"))
	}
	if r2 := get(t, srv, "/static/app.css", "If-None-Match", r.header.Get("ETag")); r2.code != http.StatusNotModified {
		t.Errorf("conditional GET: %d", r2.code)
	}
	if r := get(t, srv, "/static/app.000000000000.css"); r.code != http.StatusNotFound {
		t.Errorf("unknown hash: %d", r.code)
	}
	if r := get(t, srv, "/static/../web.go"); r.code == http.StatusOK {
		t.Error("path traversal served a file")
	}
}

func hashOf(s string) string { return newAsset("x", []byte(s)).hash }

func TestSDKIsServedFromTheFS(t *testing.T) {
	srv := newServer(t, Config{})
	r := get(t, srv, "/sdk/latch.js")
	if r.code != http.StatusOK || r.body != sdkSource {
		t.Fatalf("GET /sdk/latch.js: %d %q", r.code, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "text/javascript; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	if cc := r.header.Get("Cache-Control"); cc != "no-cache" {
		t.Errorf("unversioned SDK: Cache-Control %q", cc)
	}
	if r.header.Get("Cross-Origin-Resource-Policy") != "" {
		t.Error("the SDK should be loadable by other origins")
	}
	r = get(t, srv, "/sdk/latch.js?v="+hashOf(sdkSource))
	if cc := r.header.Get("Cache-Control"); cc != "public, max-age=31536000, immutable" {
		t.Errorf("versioned SDK: Cache-Control %q", cc)
	}
	if r := get(t, srv, "/sdk/README.md"); r.code != http.StatusNotFound {
		t.Errorf("GET /sdk/README.md: %d", r.code)
	}
	// Without an SDK the pages still render; the import then fails in the browser.
	srv2 := httptest.NewServer(New(Config{}, nil))
	defer srv2.Close()
	res, err := http.Get(srv2.URL + "/sdk/latch.js")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("no SDK: %d", res.StatusCode)
	}
}

// TestAccessibilityBasics checks what can be checked statically: a lang,
// one h1 and no skipped heading level, a label for every control, a type on
// every button, a main landmark and an aria-live region.
func TestAccessibilityBasics(t *testing.T) {
	srv := newServer(t, demoConfig())
	for _, p := range pages {
		body := get(t, srv, p).body
		tags := parseTags(t, body)
		labels := map[string]bool{}
		ids := map[string]int{}
		for _, tg := range tags {
			if tg.name == "label" && tg.attrs["for"] != "" {
				labels[tg.attrs["for"]] = true
			}
			if id := tg.attrs["id"]; id != "" {
				ids[id]++
			}
		}
		level, h1s, live, mainEl := 0, 0, false, false
		for i, tg := range tags {
			switch tg.name {
			case "html":
				if tg.attrs["lang"] == "" {
					t.Errorf("%s: <html> without lang", p)
				}
			case "h1", "h2", "h3", "h4":
				l := int(tg.name[1] - '0')
				if l == 1 {
					h1s++
				}
				if l > level+1 {
					t.Errorf("%s: <%s> after h%d", p, tg.name, level)
				}
				level = l
			case "input", "select", "textarea":
				// A control is labelled by <label for>, by a wrapping <label>, or by aria-label.
				wrapped := i > 0 && tags[i-1].name == "label" && tags[i-1].attrs["for"] == ""
				if !labels[tg.attrs["id"]] && tg.attrs["aria-label"] == "" && !wrapped {
					t.Errorf("%s: <%s id=%q> has no label", p, tg.name, tg.attrs["id"])
				}
			case "button":
				if tg.attrs["type"] == "" {
					t.Errorf("%s: <button id=%q> without type", p, tg.attrs["id"])
				}
			case "main":
				mainEl = true
			case "img":
				if _, ok := tg.attrs["alt"]; !ok {
					t.Errorf("%s: <img> without alt", p)
				}
			}
			if tg.attrs["aria-live"] != "" {
				live = true
			}
		}
		if h1s != 1 {
			t.Errorf("%s: %d h1 elements", p, h1s)
		}
		if !live || !mainEl {
			t.Errorf("%s: aria-live %v, main %v", p, live, mainEl)
		}
		for id, n := range ids {
			if n > 1 {
				t.Errorf("%s: id %q used %d times", p, id, n)
			}
		}
	}
}

func TestFormsNeverSubmitPasswordsByGET(t *testing.T) {
	srv := newServer(t, demoConfig())
	for _, p := range []string{"/login", "/demo", "/verify", "/reset", "/unlock", "/alert"} {
		for _, tg := range parseTags(t, get(t, srv, p).body) {
			if tg.name == "form" && tg.attrs["method"] != "dialog" && strings.ToLower(tg.attrs["method"]) != "post" {
				t.Errorf("%s: <form id=%q method=%q>: a form with a password must not use GET", p, tg.attrs["id"], tg.attrs["method"])
			}
			if tg.name == "button" && tg.attrs["id"] == "submit" {
				if _, disabled := tg.attrs["disabled"]; !disabled {
					t.Errorf("%s: submit button enabled before the script loads", p)
				}
			}
		}
	}
}

// ---- the OpenID Provider's pages ----

func newPages(t *testing.T) *Pages {
	t.Helper()
	return New(Config{Issuer: "http://127.0.0.1:8080"}, testSDK())
}

// record runs one page method and returns its response.
func record(f func(w http.ResponseWriter)) response {
	w := httptest.NewRecorder()
	f(w)
	res := w.Result()
	b, _ := io.ReadAll(res.Body)
	return response{res.StatusCode, res.Header, string(b)}
}

func consentView() ConsentView {
	return ConsentView{
		ClientID: "dash", ClientName: "Dashboard", RedirectHost: "dash.example.com", UserEmail: "ada@example.com",
		Scopes:      []string{"openid", "profile", "email", "offline_access", "payments:read", "email"},
		Action:      "/oauth2/consent",
		Fields:      []Field{{"csrf_token", "tok-123"}, {"request", `abc"def&<x>`}},
		FormTargets: []string{"https://dash.example.com"},
	}
}

// checkPageHeaders checks the headers of a server-rendered page with the
// given Content-Security-Policy.
func checkPageHeaders(t *testing.T, name string, r response, csp string) {
	t.Helper()
	want := map[string]string{
		"Content-Security-Policy":      csp,
		"Referrer-Policy":              "no-referrer",
		"X-Content-Type-Options":       "nosniff",
		"X-Frame-Options":              "DENY",
		"Cross-Origin-Opener-Policy":   "same-origin",
		"Cross-Origin-Resource-Policy": "same-origin",
		"Cache-Control":                "no-store",
		"Content-Type":                 "text/html; charset=utf-8",
	}
	for k, v := range want {
		if got := r.header.Get(k); got != v {
			t.Errorf("%s: %s = %q, want %q", name, k, got, v)
		}
	}
	got := r.header.Get("Content-Security-Policy")
	if !strings.Contains(got, "frame-ancestors 'none'") || strings.Contains(got, "unsafe") {
		t.Errorf("%s: CSP %q", name, got)
	}
	if !strings.Contains(r.header.Get("Permissions-Policy"), "camera=()") {
		t.Errorf("%s: no Permissions-Policy", name)
	}
	if !strings.HasPrefix(r.body, "<!doctype html>") {
		t.Errorf("%s: no doctype", name)
	}
}

// checkPlainPage checks a server-rendered page needs no script: no script
// at all, no inline style, no handler attribute, a typed button, one h1.
func checkPlainPage(t *testing.T, name, body string) []tag {
	t.Helper()
	tags := parseTags(t, body)
	h1s := 0
	for _, tg := range tags {
		switch tg.name {
		case "script", "style":
			t.Errorf("%s: <%s> element", name, tg.name)
		case "h1":
			h1s++
		case "button":
			if tg.attrs["type"] == "" {
				t.Errorf("%s: <button> without type", name)
			}
		}
		for a, v := range tg.attrs {
			if a == "style" || strings.HasPrefix(a, "on") || strings.HasPrefix(strings.TrimSpace(strings.ToLower(v)), "javascript:") {
				t.Errorf("%s: %s=%q on <%s>", name, a, v, tg.name)
			}
		}
	}
	if h1s != 1 {
		t.Errorf("%s: %d h1 elements", name, h1s)
	}
	return tags
}

// decisionForm finds the page's one POST form: its action, hidden fields
// and submit buttons (name=value).
func decisionForm(t *testing.T, name string, tags []tag) (action string, hidden []Field, buttons []string) {
	t.Helper()
	forms := 0
	for _, tg := range tags {
		switch {
		case tg.name == "form":
			forms++
			if strings.ToLower(tg.attrs["method"]) != "post" {
				t.Errorf("%s: form method %q", name, tg.attrs["method"])
			}
			action = tg.attrs["action"]
		case tg.name == "input" && tg.attrs["type"] == "hidden":
			hidden = append(hidden, Field{tg.attrs["name"], tg.attrs["value"]})
		case tg.name == "button" && tg.attrs["type"] == "submit":
			buttons = append(buttons, tg.attrs["name"]+"="+tg.attrs["value"])
		}
	}
	if forms != 1 {
		t.Errorf("%s: %d forms, want one", name, forms)
	}
	return action, hidden, buttons
}

func TestConsentPage(t *testing.T) {
	p := newPages(t)
	v := consentView()
	r := record(func(w http.ResponseWriter) { p.Consent(w, v) })
	if r.code != http.StatusOK {
		t.Fatalf("status %d", r.code)
	}
	checkPageHeaders(t, "consent", r, strings.Replace(ContentSecurityPolicy, "form-action 'self'", "form-action 'self' https://dash.example.com", 1))
	tags := checkPlainPage(t, "consent", r.body)
	action, hidden, buttons := decisionForm(t, "consent", tags)
	if action != "/oauth2/consent" {
		t.Errorf("action %q", action)
	}
	if fmt.Sprint(hidden) != fmt.Sprint(v.Fields) {
		t.Errorf("hidden fields %v, want %v", hidden, v.Fields)
	}
	if fmt.Sprint(buttons) != "[decision=deny decision=allow]" {
		t.Errorf("buttons %v", buttons)
	}
	text := html.UnescapeString(regexp.MustCompile(`<[^>]*>`).ReplaceAllString(r.body, ""))
	text = strings.Join(strings.Fields(text), " ")
	for _, want := range []string{
		"Dashboard wants to access your account", "App ID dash", "Signed in as ada@example.com",
		"Confirm you are signed in as ada@example.com", "Your basic profile information", "Your email address",
		"Stay signed in to the app when you are away", "payments:read", "you will be sent to dash.example.com",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("consent page lacks %q:\n%s", want, text)
		}
	}
	if n := strings.Count(text, "Your email address"); n != 1 {
		t.Errorf("a repeated scope is listed %d times", n)
	}
	if title := regexp.MustCompile(`<title>[^<]*</title>`).FindString(r.body); title != "<title>Allow access · Latch</title>" {
		t.Errorf("title %s", title)
	}

	// Without a name the id is the name, shown once.
	v.ClientName = ""
	r = record(func(w http.ResponseWriter) { p.Consent(w, v) })
	if !strings.Contains(r.body, `<span class="client-name">dash</span> wants to access`) || strings.Contains(r.body, "App ID") {
		t.Errorf("consent without a client name:\n%s", r.body)
	}
}

func TestConsentPageWithoutTargetsKeepsTheDefaultPolicy(t *testing.T) {
	p := newPages(t)
	v := consentView()
	v.FormTargets = nil
	r := record(func(w http.ResponseWriter) { p.Consent(w, v) })
	checkPageHeaders(t, "consent", r, ContentSecurityPolicy)
}

func TestLogoutConfirmPage(t *testing.T) {
	p := newPages(t)
	v := LogoutView{ClientID: "dash", Action: "/oauth2/logout", Fields: []Field{{"csrf_token", "t"}, {"state", "s1"}},
		FormTargets: []string{"https://dash.example.com:8443", "https://dash.example.com:8443"}}
	r := record(func(w http.ResponseWriter) { p.LogoutConfirm(w, v) })
	if r.code != http.StatusOK {
		t.Fatalf("status %d", r.code)
	}
	checkPageHeaders(t, "logout", r, strings.Replace(ContentSecurityPolicy, "form-action 'self'", "form-action 'self' https://dash.example.com:8443", 1))
	tags := checkPlainPage(t, "logout", r.body)
	action, hidden, buttons := decisionForm(t, "logout", tags)
	if action != "/oauth2/logout" || fmt.Sprint(hidden) != fmt.Sprint(v.Fields) || fmt.Sprint(buttons) != "[decision=stay decision=logout]" {
		t.Errorf("form: action %q hidden %v buttons %v", action, hidden, buttons)
	}
	for _, want := range []string{"Sign out of Latch?", "Stay signed in", `<span class="client-name">dash</span> asked to sign you out`} {
		if !strings.Contains(r.body, want) {
			t.Errorf("logout page lacks %q", want)
		}
	}
	// Without a client, no "asked to sign you out".
	r = record(func(w http.ResponseWriter) { p.LogoutConfirm(w, LogoutView{Action: "/oauth2/logout"}) })
	if strings.Contains(r.body, "asked to sign you out") || !strings.Contains(r.body, "Sign out of Latch?") {
		t.Errorf("logout page without a client:\n%s", r.body)
	}
	checkPageHeaders(t, "logout", r, ContentSecurityPolicy)
}

func TestSignedOutPage(t *testing.T) {
	p := newPages(t)
	r := record(func(w http.ResponseWriter) { p.SignedOut(w, SignedOutView{}) })
	if r.code != http.StatusOK {
		t.Fatalf("status %d", r.code)
	}
	checkPageHeaders(t, "signed out", r, ContentSecurityPolicy)
	tags := checkPlainPage(t, "signed out", r.body)
	if !strings.Contains(r.body, "You are signed out") {
		t.Error("no heading")
	}
	login := false
	for _, tg := range tags {
		if tg.name == "a" && tg.attrs["href"] == "/login" {
			login = true
		}
	}
	if !login {
		t.Error("no link to /login")
	}
}

func TestErrorPage(t *testing.T) {
	p := newPages(t)
	bad := "https://evil.example/cb"
	r := record(func(w http.ResponseWriter) {
		p.Error(w, http.StatusBadRequest, ErrorView{Title: "Unknown app", Message: "The redirect address is not registered for this app."})
	})
	if r.code != http.StatusBadRequest {
		t.Fatalf("status %d", r.code)
	}
	checkPageHeaders(t, "error", r, ContentSecurityPolicy)
	tags := checkPlainPage(t, "error", r.body)
	for _, want := range []string{"<title>Unknown app · Latch</title>", "Unknown app</h1>", "not registered for this app"} {
		if !strings.Contains(r.body, want) {
			t.Errorf("error page lacks %q", want)
		}
	}
	// Links go only to this server's own pages and assets.
	for _, tg := range tags {
		for _, a := range []string{"href", "src", "action"} {
			if u := tg.attrs[a]; u != "" && !regexp.MustCompile(`^(/account|/login|/static/[a-z]+\.[0-9a-f]{12}\.[a-z]+|#main)$`).MatchString(u) {
				t.Errorf("error page: <%s %s=%q>", tg.name, a, u)
			}
		}
	}
	if strings.Contains(r.body, bad) {
		t.Error("bad redirect URI on the page")
	}
	// A status that is not an error is not sent; empty text gets a sentence.
	for _, code := range []int{0, 200, 302, 600} {
		r := record(func(w http.ResponseWriter) { p.Error(w, code, ErrorView{}) })
		if r.code != http.StatusBadRequest || !strings.Contains(r.body, "can&#39;t continue") {
			t.Errorf("Error(%d): %d\n%s", code, r.code, r.body)
		}
	}
	if r := record(func(w http.ResponseWriter) { p.Error(w, 503, ErrorView{}) }); r.code != 503 {
		t.Errorf("Error(503): %d", r.code)
	}
}

func TestOIDCPagesEscape(t *testing.T) {
	p := newPages(t)
	evil := `"><script>alert(1)</script><img src=x onerror=alert(2)>`
	pages := map[string]response{
		"consent": record(func(w http.ResponseWriter) {
			p.Consent(w, ConsentView{ClientID: "c" + evil, ClientName: "n" + evil, RedirectHost: "h" + evil, UserEmail: "e" + evil,
				Scopes: []string{"openid", "s" + evil}, Action: "/oauth2/consent", Fields: []Field{{"f" + evil, "v" + evil}},
				FormTargets: []string{evil}})
		}),
		"consent-noname": record(func(w http.ResponseWriter) {
			p.Consent(w, ConsentView{ClientID: "c" + evil, Scopes: []string{"s" + evil}, Action: "javascript:alert(1)"})
		}),
		"logout": record(func(w http.ResponseWriter) {
			p.LogoutConfirm(w, LogoutView{ClientID: "c" + evil, Action: "/oauth2/logout", Fields: []Field{{"f", "v" + evil}}})
		}),
		"error": record(func(w http.ResponseWriter) { p.Error(w, 400, ErrorView{Title: "t" + evil, Message: "m" + evil}) }),
	}
	for name, r := range pages {
		for _, bad := range []string{"<script", "<img src=x", `"><script`} {
			if strings.Contains(r.body, bad) {
				t.Errorf("%s: unescaped %q", name, bad)
			}
		}
		for _, tg := range parseTags(t, r.body) {
			if tg.name == "script" || tg.name == "img" && tg.attrs["src"] == "x" {
				t.Errorf("%s: injected <%s>", name, tg.name)
			}
			if tg.name == "form" && strings.Contains(tg.attrs["action"], "javascript:") {
				t.Errorf("%s: javascript: form action", name)
			}
		}
		if !strings.Contains(r.body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
			t.Errorf("%s: the text is not shown escaped", name)
		}
		if csp := r.header.Get("Content-Security-Policy"); strings.Contains(csp, "script") && !strings.Contains(csp, "script-src 'self';") {
			t.Errorf("%s: CSP %q", name, csp)
		}
	}
	// Hidden values go back intact.
	for _, tg := range parseTags(t, pages["consent"].body) {
		if tg.name == "input" && tg.attrs["type"] == "hidden" && (tg.attrs["name"] != "f"+evil || tg.attrs["value"] != "v"+evil) {
			t.Errorf("hidden field %q=%q", tg.attrs["name"], tg.attrs["value"])
		}
	}
}

// directives splits a policy into its directives, by name.
func directives(csp string) map[string]string {
	m := map[string]string{}
	for _, d := range strings.Split(csp, ";") {
		d = strings.TrimSpace(d)
		name, _, _ := strings.Cut(d, " ")
		m[name] = d
	}
	return m
}

func TestFormActionCSP(t *testing.T) {
	base := directives(ContentSecurityPolicy)
	cases := []struct {
		targets []string
		want    string // the form-action directive
	}{
		{nil, "form-action 'self'"},
		{[]string{"https://dash.example.com"}, "form-action 'self' https://dash.example.com"},
		{[]string{"HTTPS://Dash.Example.COM:8443"}, "form-action 'self' https://dash.example.com:8443"},
		{[]string{"http://127.0.0.1:53211", "http://[::1]:8080", "http://app-a.localhost:9000"}, "form-action 'self' http://127.0.0.1:53211 http://[::1]:8080 http://app-a.localhost:9000"},
		{[]string{"com.example.app:", "com.example.app://cb", "com.example.app:"}, "form-action 'self' com.example.app:"},
		{[]string{"https://a.example", "https://a.example"}, "form-action 'self' https://a.example"},
		// Malformed or dangerous: dropped, never injected.
		{[]string{
			"https://a.example; script-src *",
			"https://a.example;script-src 'unsafe-inline'",
			"https://a.example 'unsafe-inline'",
			"https://a.example,https://b.example",
			"https://a.example\r\nX-Evil: 1",
			"https://a.example\t",
			" https://a.example",
			"https://a.example/",
			"https://a.example/cb",
			"https://a.example?x",
			"https://a.example#x",
			"https://user@a.example",
			"https://a.example:0",
			"https://a.example:99999",
			"https://a.example:",
			"https://*.example",
			"https://",
			"https:",
			"*",
			"'self'",
			"'unsafe-inline'",
			"javascript:alert(1)",
			"data:",
			"blob:",
			"file:",
			"ftp://a.example",
			"com.example.app:/cb",
			"com.example.app;x:",
			"",
			strings.Repeat("a", 400) + ".example",
		}, "form-action 'self'"},
		{[]string{"https://a.example; form-action *", "https://ok.example"}, "form-action 'self' https://ok.example"},
	}
	for _, c := range cases {
		got := FormActionCSP(c.targets)
		d := directives(got)
		if d["form-action"] != c.want {
			t.Errorf("FormActionCSP(%q): form-action %q, want %q", c.targets, d["form-action"], c.want)
		}
		if len(d) != len(base) {
			t.Errorf("FormActionCSP(%q) = %q: %d directives, want %d", c.targets, got, len(d), len(base))
		}
		for name, v := range base {
			if name != "form-action" && d[name] != v {
				t.Errorf("FormActionCSP(%q): %s = %q, want %q", c.targets, name, d[name], v)
			}
		}
		if strings.ContainsAny(got, "\r\n\t,'*") && strings.Count(got, "'") != strings.Count(ContentSecurityPolicy, "'") {
			t.Errorf("FormActionCSP(%q) = %q", c.targets, got)
		}
	}
}

func TestReturnToValidation(t *testing.T) {
	good := []string{
		"/oauth2/authorize",
		"/oauth2/authorize?",
		"/oauth2/authorize?client_id=dash&redirect_uri=https%3A%2F%2Fdash.example.com%2Fcb&response_type=code&scope=openid+email&state=xyz",
		"/oauth2/authorize?redirect_uri=//evil", // the query is the authorize endpoint's to check
	}
	bad := []string{
		"",
		"https://evil",
		"https://evil/oauth2/authorize",
		"http://evil/oauth2/authorize?x=1",
		"//evil",
		"//evil/oauth2/authorize",
		"/\\evil",
		"\\\\evil",
		"/\\evil/oauth2/authorize",
		"/oauth2/authorizeX",
		"/oauth2/authorize/",
		"/oauth2/authorize/../x",
		"/oauth2/authorize/..%2fx",
		"/oauth2/authorize%3Fx=1",
		"/oauth2%2Fauthorize",
		"/oauth2/authorize%2F..%2F..%2Fevil",
		"/%2F/evil",
		"/%5Cevil",
		"%2F%2Fevil",
		"/OAUTH2/authorize",
		"/./oauth2/authorize",
		"/oauth2/./authorize",
		"/oauth2//authorize",
		"/x/../oauth2/authorize",
		"javascript:alert(1)",
		"javascript:/oauth2/authorize",
		"data:text/html,x",
		"/oauth2/authorize#frag",
		"/oauth2/authorize?x=1#frag",
		"/oauth2/authorize?x=\\evil",
		"/oauth2/authorize?x= y",
		"/oauth2/authorize?x=\ty",
		"/oauth2/authorize\r\nLocation: https://evil",
		"/oauth2/authorize?\x00",
		" /oauth2/authorize",
		"/oauth2/authorize ",
		"/oauth2/authorize?\u0085",
		"/oauth2/authorize?" + strings.Repeat("a", 9000),
		"/oauth2/authorize?\xff",
	}
	srv := newServer(t, Config{})
	for _, s := range good {
		if !ValidReturnTo(s) {
			t.Errorf("ValidReturnTo(%q) = false", s)
		}
		body := get(t, srv, "/login?return_to="+url.QueryEscape(s)).body
		if cfg := pageConfigOf(t, body); cfg["returnTo"] != s {
			t.Errorf("/login?return_to=%q: config %v", s, cfg)
		}
		if !strings.Contains(body, "Sign in to continue to the app") {
			t.Errorf("/login?return_to=%q: no continue note", s)
		}
	}
	for _, s := range bad {
		if ValidReturnTo(s) {
			t.Errorf("ValidReturnTo(%q) = true", s)
		}
		if len(s) > 2000 {
			continue // too long for a request line in this test; the function is checked
		}
		body := get(t, srv, "/login?return_to="+url.QueryEscape(s)).body
		if cfg := pageConfigOf(t, body); cfg["returnTo"] != nil {
			t.Errorf("/login?return_to=%q: config %v", s, cfg)
		}
		if strings.Contains(body, "continue-note") {
			t.Errorf("/login?return_to=%q: continue note shown", s)
		}
	}
	// Without return_to: no returnTo, no note.
	body := get(t, srv, "/login").body
	if cfg := pageConfigOf(t, body); cfg["returnTo"] != nil || strings.Contains(body, "continue-note") {
		t.Errorf("/login: config %v", cfg)
	}
}

func TestLoginHint(t *testing.T) {
	srv := newServer(t, Config{})
	emailValue := func(body string) (string, bool) {
		for _, tg := range parseTags(t, body) {
			if tg.name == "input" && tg.attrs["id"] == "email" {
				v, ok := tg.attrs["value"]
				return v, ok
			}
		}
		t.Fatal("no email input")
		return "", false
	}
	evil := `ada@example.com"><script>alert(1)</script>`
	for hint, want := range map[string]string{
		"ada@example.com":        "ada@example.com",
		"  ada@example.com ":     "ada@example.com",
		evil:                     evil,
		strings.Repeat("a", 255): "",
		"ada\x00@example.com":    "",
		"ada\n@example.com":      "",
		"":                       "",
		strings.Repeat("é", 128): "", // 256 bytes
		strings.Repeat("é", 127): strings.Repeat("é", 127),
		strings.Repeat("a", 254): strings.Repeat("a", 254),
	} {
		body := get(t, srv, "/login?login_hint="+url.QueryEscape(hint)).body
		got, ok := emailValue(body)
		if got != want || ok != (want != "") {
			t.Errorf("login_hint %q: value %q (present %v), want %q", hint, got, ok, want)
		}
		if strings.Contains(body, "<script>alert") {
			t.Errorf("login_hint %q: unescaped", hint)
		}
	}
}

func TestAccountPageListsApps(t *testing.T) {
	srv := newServer(t, Config{})
	body := get(t, srv, "/account").body
	for _, want := range []string{`id="apps"`, `id="apps-state"`, "Apps with access"} {
		if !strings.Contains(body, want) {
			t.Errorf("/account lacks %q", want)
		}
	}
	js := get(t, srv, staticURL(t, srv, "account.js")).body
	for _, want := range []string{"'/v1/consents'", "/v1/consents/${encodeURIComponent(c.client_id)}", "method: 'DELETE'", "No apps have access."} {
		if !strings.Contains(js, want) {
			t.Errorf("account.js lacks %q", want)
		}
	}
	login := get(t, srv, staticURL(t, srv, "login.js")).body
	if !strings.Contains(login, "window.location.replace(returnTo)") || !strings.Contains(login, "safeReturnTo(cfg.returnTo)") {
		t.Error("login.js does not return to the checked return_to")
	}
}
