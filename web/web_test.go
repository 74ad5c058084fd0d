package web

import (
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
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
	srv := httptest.NewServer(Handler(cfg, testSDK()))
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

var pages = []string{"/login", "/account", "/demo"}

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
		paths := []string{"/login", "/account", "/nope"}
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
	srv2 := httptest.NewServer(Handler(Config{}, nil))
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
	for _, p := range []string{"/login", "/demo"} {
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
