// Package web serves Latch's own pages: the sign-in page (/login), the
// account security page (/account) and, in demo mode, a small demo app
// (/demo), the email-verification, password-reset, sign-in unlock and
// sign-in alert pages (/verify, /reset, /unlock, /alert), together with
// their static assets and the browser SDK. It also
// renders the OpenID Provider's server-side pages (consent, logout
// confirmation, signed out, authorization error) for the handlers that own
// those routes.
//
// Everything is embedded in the binary and served from the same origin;
// the pages load no external resource. Every response carries a strict
// Content-Security-Policy without 'unsafe-inline': the templates hold no
// inline script, no inline style and no event-handler attribute, and the
// small page configuration the scripts need travels in a <meta> element.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"sort"
	"strings"
	"time"
)

// Config is what the pages need to know about the server.
type Config struct {
	// Registration shows the sign-up form on /login.
	Registration bool
	// Demo serves /demo; without it /demo is 404.
	Demo bool
	// DemoEmail and DemoPassword are the seeded demo user's credentials,
	// shown and prefilled on /demo. They are only rendered when Demo is set.
	DemoEmail, DemoPassword string
	// Issuer is the server's issuer URL, shown on the pages.
	Issuer string
}

// Client ids the pages sign in with.
const (
	// AccountClientID is the built-in cookie-mode client of /login and /account.
	AccountClientID = "latch-account"
	// DemoClientID is the cookie-mode client of /demo, seeded by --demo.
	DemoClientID = "demo"
)

// ContentSecurityPolicy is sent with every response of the pages but the
// consent and logout-confirmation pages, whose form-action also names the
// origins their form redirects to (see Pages.Consent).
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// PermissionsPolicy turns off the powerful features no page here uses.
const PermissionsPolicy = "camera=(), microphone=(), geolocation=(), payment=(), usb=(), " +
	"serial=(), hid=(), display-capture=(), browsing-topics=()"

// sdkPath is the URL the pages import the SDK from.
const sdkPath = "/sdk/latch.js"

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// asset is one static file, held in memory with its content hash.
type asset struct {
	name  string // logical name: "app.css"
	url   string // versioned URL: "/static/app.1a2b3c4d5e6f.css"
	hash  string
	ctype string
	body  []byte
	sdk   bool // served under /sdk/
}

// Pages serves the pages and renders the OpenID Provider's pages. It is
// safe for concurrent use.
type Pages struct {
	cfg     Config
	mux     *http.ServeMux
	pages   map[string]*template.Template
	static  map[string]*asset // by file name as requested under /static/
	sdk     map[string]*asset // by file name under /sdk/
	urls    map[string]string // logical name → versioned URL, for templates
	sdkHash string
}

// New returns the pages. sdk is the file system holding
// the browser SDK (latch.js at its root); it is served under /sdk/. The
// pages answer GET /login, /account, /demo, /verify, /reset, /unlock, /alert, /static/..., /sdk/... and /
// (a redirect to /account); the server mounts it on those paths.
//
// New panics if the embedded assets or templates are broken, which the
// tests rule out.
func New(cfg Config, sdk fs.FS) *Pages {
	h := &Pages{cfg: cfg, mux: http.NewServeMux(), static: map[string]*asset{}, sdk: map[string]*asset{}, urls: map[string]string{}}
	h.loadSDK(sdk)
	h.loadStatic()
	h.loadTemplates()

	h.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, "/account", http.StatusSeeOther)
	})
	h.mux.HandleFunc("GET /login", h.login)
	h.mux.HandleFunc("GET /account", h.page("account"))
	h.mux.HandleFunc("GET /verify", h.page("verify"))
	h.mux.HandleFunc("GET /reset", h.page("reset"))
	h.mux.HandleFunc("GET /unlock", h.page("unlock"))
	// The page of a sign-in alert's links (/alert#id=…&t=…); the server
	// mounts it only when it sends alerts.
	h.mux.HandleFunc("GET /alert", h.page("alert"))
	h.mux.HandleFunc("GET /demo", func(w http.ResponseWriter, r *http.Request) {
		if !h.cfg.Demo {
			h.notFound(w, r)
			return
		}
		h.page("demo")(w, r)
	})
	h.mux.HandleFunc("GET /static/{file}", func(w http.ResponseWriter, r *http.Request) {
		h.serveAsset(w, r, h.static[r.PathValue("file")])
	})
	h.mux.HandleFunc("GET /sdk/{file}", func(w http.ResponseWriter, r *http.Request) {
		h.serveAsset(w, r, h.sdk[r.PathValue("file")])
	})
	h.mux.HandleFunc("/", h.notFound)
	return h
}

// ServeHTTP sets the security headers every response carries, answers any
// method but GET and HEAD with 405, and routes.
func (h *Pages) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	// The SDK may be loaded by other origins' pages; nothing else may.
	securityHeaders(hd, ContentSecurityPolicy, !strings.HasPrefix(r.URL.Path, "/sdk/"))
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hd.Set("Allow", "GET, HEAD")
		hd.Set("Cache-Control", "no-store")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	h.mux.ServeHTTP(w, r)
}

// securityHeaders sets the headers every response of the pages carries,
// with the given Content-Security-Policy.
func securityHeaders(hd http.Header, csp string, sameOriginResource bool) {
	hd.Set("Content-Security-Policy", csp)
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	hd.Set("Permissions-Policy", PermissionsPolicy)
	if sameOriginResource {
		hd.Set("Cross-Origin-Resource-Policy", "same-origin")
	}
}

// loadSDK reads the SDK's JavaScript files from the root of sdk.
func (h *Pages) loadSDK(sdk fs.FS) {
	if sdk == nil {
		return
	}
	entries, err := fs.ReadDir(sdk, ".")
	if err != nil {
		return
	}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".js") {
			continue
		}
		b, err := fs.ReadFile(sdk, e.Name())
		if err != nil {
			continue
		}
		a := newAsset(e.Name(), b)
		a.sdk = true
		a.url = "/sdk/" + e.Name() + "?v=" + a.hash
		h.sdk[e.Name()] = a
	}
	if a := h.sdk[path.Base(sdkPath)]; a != nil {
		h.sdkHash = a.hash
	}
}

// loadStatic reads the embedded assets and gives each a versioned URL that
// contains its hash. The page scripts are ES modules that import one
// another ("./common.js") and the SDK ("/sdk/latch.js"); those specifiers
// are rewritten to the versioned URLs, dependencies first, so that a
// module's hash covers everything it imports and the whole graph can be
// cached for good.
func (h *Pages) loadStatic() {
	entries, err := fs.ReadDir(staticFS, "static")
	if err != nil {
		panic(fmt.Sprintf("web: read embedded assets: %v", err))
	}
	raw := map[string][]byte{}
	var names []string
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		b, err := staticFS.ReadFile("static/" + e.Name())
		if err != nil {
			panic(fmt.Sprintf("web: read embedded asset: %v", err))
		}
		raw[e.Name()] = b
		names = append(names, e.Name())
	}
	sort.Strings(names)

	done := map[string]*asset{}
	for len(done) < len(names) {
		progress := false
		for _, n := range names {
			if done[n] != nil {
				continue
			}
			deps := imports(raw[n], names)
			ready := true
			for _, d := range deps {
				if d != n && done[d] == nil {
					ready = false
				}
			}
			if !ready {
				continue
			}
			body := raw[n]
			if strings.HasSuffix(n, ".js") {
				for _, d := range deps {
					body = bytes.ReplaceAll(body, []byte(`'./`+d+`'`), []byte(`'`+done[d].url+`'`))
				}
				if h.sdkHash != "" {
					body = bytes.ReplaceAll(body, []byte(`'`+sdkPath+`'`), []byte(`'`+sdkPath+`?v=`+h.sdkHash+`'`))
				}
			}
			a := newAsset(n, body)
			ext := path.Ext(n)
			a.url = "/static/" + strings.TrimSuffix(n, ext) + "." + a.hash + ext
			done[n] = a
			progress = true
		}
		if !progress {
			panic("web: static modules import one another in a cycle")
		}
	}
	for n, a := range done {
		h.static[n] = a                // unversioned: revalidated
		h.static[path.Base(a.url)] = a // versioned: immutable
		h.urls[n] = a.url
	}
}

// imports lists the other assets a module names as './name'.
func imports(body []byte, names []string) []string {
	var deps []string
	for _, n := range names {
		if bytes.Contains(body, []byte(`'./`+n+`'`)) {
			deps = append(deps, n)
		}
	}
	return deps
}

func newAsset(name string, body []byte) *asset {
	sum := sha256.Sum256(body)
	return &asset{name: name, hash: hex.EncodeToString(sum[:6]), ctype: contentType(name), body: body}
}

func contentType(name string) string {
	switch path.Ext(name) {
	case ".css":
		return "text/css; charset=utf-8"
	case ".js", ".mjs":
		return "text/javascript; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	case ".png":
		return "image/png"
	case ".json":
		return "application/json"
	case ".woff2":
		return "font/woff2"
	}
	return "application/octet-stream"
}

// serveAsset answers with a static file. A request for the versioned URL
// (the hash in the file name, or ?v=hash for the SDK) is cached for a year
// as immutable; any other is revalidated with the ETag every time.
func (h *Pages) serveAsset(w http.ResponseWriter, r *http.Request, a *asset) {
	if a == nil {
		h.notFound(w, r)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", a.ctype)
	hd.Set("ETag", `"`+a.hash+`"`)
	versioned := false
	if a.sdk {
		versioned = r.URL.Query().Get("v") == a.hash
	} else {
		versioned = path.Base(r.URL.Path) == path.Base(a.url)
	}
	if versioned {
		hd.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		hd.Set("Cache-Control", "no-cache")
	}
	http.ServeContent(w, r, a.name, time.Time{}, bytes.NewReader(a.body))
}

// pageData is what the templates see.
type pageData struct {
	Page         string // "login", "account", "demo"
	Title        string
	ConfigJSON   string // rendered into <meta name="latch-config">
	Assets       map[string]string
	Script       string
	Registration bool
	Demo         bool
	DemoEmail    string
	DemoPassword string
	Issuer       string
	// LoginHint prefills the email field of /login.
	LoginHint string
	// ReturnTo is the accepted return_to of /login, or "".
	ReturnTo string
	// View is the view of an OpenID Provider page.
	View any
}

// pageConfig is the configuration the page scripts read.
type pageConfig struct {
	BaseURL      string `json:"baseUrl"`
	ClientID     string `json:"clientId"`
	Registration bool   `json:"registration"`
	Demo         bool   `json:"demo"`
	// ReturnTo is where /login goes after signing in: an accepted
	// return_to (see ValidReturnTo), or "" for /account.
	ReturnTo string `json:"returnTo,omitempty"`
}

var titles = map[string]string{
	"login":    "Sign in",
	"account":  "Account security",
	"demo":     "Demo app",
	"verify":   "Verify your email",
	"reset":    "Reset your password",
	"unlock":   "Lift the sign-in lock",
	"notfound": "Page not found",
	// The OpenID Provider's pages, rendered by the methods in oidc.go.
	"consent":   "Allow access",
	"logout":    "Sign out",
	"signedout": "Signed out",
	"error":     "Sign-in error",
	"alert":     "Was this you?",
	// The admin console (admin.go).
	"admin":     "Admin console",
	"forbidden": "Administrators only",
	"setup":     "Set up the first administrator",
}

func (h *Pages) loadTemplates() {
	base := template.Must(template.New("").ParseFS(templateFS, "templates/base.html"))
	h.pages = map[string]*template.Template{}
	for page := range titles {
		t := template.Must(base.Clone())
		template.Must(t.ParseFS(templateFS, "templates/"+page+".html"))
		h.pages[page] = t
	}
}

// script is the file name of a page's script: its own, or link.js for
// the pages of one-time links from emails, which differ only in what they
// say and where they POST.
func script(page string) string {
	switch page {
	case "verify", "unlock":
		return "link.js"
	}
	return page + ".js"
}

func (h *Pages) data(page string) *pageData {
	client := AccountClientID
	if page == "demo" {
		client = DemoClientID
	}
	d := &pageData{
		Page: page, Title: titles[page], Assets: h.urls,
		Script: h.urls[script(page)], Registration: h.cfg.Registration, Demo: h.cfg.Demo, Issuer: h.cfg.Issuer,
	}
	d.ConfigJSON = h.configJSON(client, "")
	if page == "demo" {
		d.DemoEmail, d.DemoPassword = h.cfg.DemoEmail, h.cfg.DemoPassword
	}
	return d
}

func (h *Pages) configJSON(client, returnTo string) string {
	cj, _ := json.Marshal(pageConfig{BaseURL: "", ClientID: client, Registration: h.cfg.Registration, Demo: h.cfg.Demo, ReturnTo: returnTo})
	return string(cj)
}

func (h *Pages) page(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { h.render(w, name, http.StatusOK) }
}

// login renders /login. A return_to that ValidReturnTo accepts travels to
// the script in the page configuration; any other is ignored. A
// login_hint prefills the email field when it is a plausible one.
func (h *Pages) login(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d := h.data("login")
	if rt := q.Get("return_to"); ValidReturnTo(rt) {
		d.ReturnTo = rt
		d.ConfigJSON = h.configJSON(AccountClientID, rt)
	}
	d.LoginHint = loginHint(q.Get("login_hint"))
	h.write(w, d, http.StatusOK)
}

func (h *Pages) render(w http.ResponseWriter, name string, code int) {
	h.write(w, h.data(name), code)
}

// write renders a page with its data and answers with code.
func (h *Pages) write(w http.ResponseWriter, d *pageData, code int) {
	var buf bytes.Buffer
	if err := h.pages[d.Page].ExecuteTemplate(&buf, "base", d); err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

func (h *Pages) notFound(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/static/") || strings.HasPrefix(r.URL.Path, "/sdk/") {
		w.Header().Set("Cache-Control", "no-store")
		http.Error(w, "404 page not found", http.StatusNotFound)
		return
	}
	h.render(w, "notfound", http.StatusNotFound)
}
