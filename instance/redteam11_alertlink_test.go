package instance_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/latchauth/latch/protect"
)

// TestRedteam11_AlertTokenStaysOutOfTheQuery: the verification, reset and
// unlock links carry their token in the URL fragment, which reaches no
// server or proxy log and no Referer. The alert links carried theirs in
// the query (/alert?id=…&t=latch_al_…): every reverse proxy's access log,
// and the browser history, held a working "this wasn't me" (lock any
// alerted account, once) and "yes, it was me" (confirm an intruder's
// device) for 7 days. Fixed: the links are /alert#id=…&t=…, and the page's
// script posts them (red-team finding 6).
func TestRedteam11_AlertTokenStaysOutOfTheQuery(t *testing.T) {
	h := start(t, "", nil)
	mb := &mailbox{h: h}
	const addr, pw = "ivy@example.com", "correct horse battery"
	h.addUser(addr, pw)
	expect(t, "A", (&profile{h: h}).login(addr, pw), http.StatusOK, "")
	expect(t, "B", (&profile{h: h}).login(addr, pw), http.StatusOK, "")
	e := mb.wait(t, addr, protect.TemplateNewDevice)
	for _, k := range []string{"me_link", "not_me_link"} {
		u, err := url.Parse(e.Data[k])
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(u.RawQuery, protect.AlertTokenPrefix) {
			t.Errorf("%s %q carries its token in the query, which proxies log", k, e.Data[k])
		}
		if !strings.Contains(u.Fragment, protect.AlertTokenPrefix) {
			t.Errorf("%s %q: want the token in the fragment", k, e.Data[k])
		}
	}
}
