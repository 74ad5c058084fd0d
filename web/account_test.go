package web

import (
	"net/http"
	"strings"
	"testing"
)

// TestLifecyclePages: /verify and /reset load their own scripts, their
// buttons are disabled until the script runs (the script reads the token
// from the fragment), and their scripts POST JSON to the API with fetch,
// never acting on load.
func TestLifecyclePages(t *testing.T) {
	srv := newServer(t, Config{})
	for page, want := range map[string][]string{
		"/verify": {"link-form", "submit"},
		"/unlock": {"link-form", "submit"},
		"/reset":  {"forgot-form", "reset-form", "forgot-submit", "reset-submit"},
	} {
		r := get(t, srv, page)
		if r.code != http.StatusOK {
			t.Fatalf("GET %s: %d", page, r.code)
		}
		ids := map[string]bool{}
		script := ""
		for _, tg := range parseTags(t, r.body) {
			ids[tg.attrs["id"]] = true
			if tg.name == "button" && strings.HasSuffix(tg.attrs["id"], "submit") {
				if _, disabled := tg.attrs["disabled"]; !disabled {
					t.Errorf("%s: button %s enabled before the script runs", page, tg.attrs["id"])
				}
			}
			if tg.name == "script" {
				script = tg.attrs["src"]
			}
		}
		for _, id := range want {
			if !ids[id] {
				t.Errorf("%s: no element #%s", page, id)
			}
		}
		name := strings.TrimPrefix(page, "/") + "."
		if page != "/reset" {
			name = "link." // the one-time link pages share theirs
		}
		if !strings.HasPrefix(script, "/static/"+name) {
			t.Fatalf("%s: script %q, want /static/%s…js", page, script, name)
		}
		js := get(t, srv, script).body
		for _, s := range []string{"location.hash", "method: 'POST'", "'Content-Type': 'application/json'", "replaceState"} {
			if !strings.Contains(js, s) {
				t.Errorf("%s: script lacks %q", page, s)
			}
		}
	}
	// The sign-in page links to the reset page.
	if body := get(t, srv, "/login").body; !strings.Contains(body, `href="/reset"`) {
		t.Error("/login has no link to /reset")
	}
}
