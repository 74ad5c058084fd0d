package instance_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/latchauth/latch/admin"
	"github.com/latchauth/latch/auth"
	"github.com/latchauth/latch/config"
	"github.com/latchauth/latch/internal/testenv"
)

// overviewOf is the part of GET /admin/v1/overview the tests read.
type overviewOf struct {
	Users        int `json:"users"`
	LiveSessions int `json:"live_sessions"`
	Cluster      []struct {
		Name     string  `json:"name"`
		HourSVG  string  `json:"hour_svg"`
		DaySVG   string  `json:"day_svg"`
		LastHour float64 `json:"last_hour"`
		LastDay  float64 `json:"last_day"`
	} `json:"cluster"`
	Instance []struct {
		Name     string  `json:"name"`
		LastHour float64 `json:"last_hour"`
		HourSVG  string  `json:"hour_svg"`
	} `json:"instance"`
	Events []struct {
		Type     string `json:"type"`
		LastHour int    `json:"last_hour"`
	} `json:"events"`
	Feed struct {
		Head int64 `json:"head"`
	} `json:"feed"`
	Keys   []struct{ State string } `json:"keys"`
	Health []struct {
		Name           string
		Configured, OK bool
	} `json:"health"`
	Errors []string `json:"errors"`
}

func (b *browser) overview() overviewOf {
	b.t.Helper()
	r := b.api("GET", "/admin/v1/overview", nil, "")
	want(b.t.(*testing.T), "overview", r, http.StatusOK, "")
	var o overviewOf
	if err := json.Unmarshal([]byte(r.body), &o); err != nil {
		b.t.Fatalf("overview: %v: %s", err, r.body)
	}
	if len(o.Errors) != 0 {
		b.t.Fatalf("overview errors: %v", o.Errors)
	}
	return o
}

// cluster returns the security log's count of the chart whose name
// (event types) starts with prefix, over the last hour.
func (o overviewOf) cluster(t *testing.T, prefix string) float64 {
	t.Helper()
	for _, c := range o.Cluster {
		if strings.HasPrefix(c.Name, prefix) {
			for _, svg := range []string{c.HourSVG, c.DaySVG} {
				if !strings.HasPrefix(svg, "<svg") || strings.Contains(svg, "<script") || strings.Contains(svg, "style=") {
					t.Fatalf("chart of %s: %.80q", c.Name, svg)
				}
			}
			if c.LastDay < c.LastHour {
				t.Fatalf("chart of %s: day %v < hour %v", c.Name, c.LastDay, c.LastHour)
			}
			return c.LastHour
		}
	}
	t.Fatalf("no cluster chart %s", prefix)
	return 0
}

// instance returns this instance's count of the series over the last hour.
func (o overviewOf) instance(t *testing.T, name string) float64 {
	t.Helper()
	for _, s := range o.Instance {
		if s.Name == name {
			return s.LastHour
		}
	}
	t.Fatalf("no instance chart %s in %+v", name, o.Instance)
	return 0
}

// TestConsoleOverview: the Overview's figures move with what happens
// (users, sessions, sign-ins by outcome, refreshes, revocations), for an
// administrator's session and an admin client; anyone else is refused as
// on every other admin endpoint; /admin opens on the Overview.
func TestConsoleOverview(t *testing.T) {
	h := start(t, "", nil)
	h.addAdmin(rootEmail, rootPass)
	root := h.browser()
	root.signIn(rootEmail, rootPass)

	before := root.overview()
	if before.Users != 1 || before.LiveSessions != 1 {
		t.Fatalf("before: %d users, %d live sessions", before.Users, before.LiveSessions)
	}
	if len(before.Keys) == 0 || len(before.Health) != 2 || before.Health[0].Name != "store" || !before.Health[0].OK ||
		before.Health[1].Name != "redis" || before.Health[1].Configured {
		t.Fatalf("keys %+v, health %+v", before.Keys, before.Health)
	}

	// A user signs in, fails once, refreshes; the counters are sampled.
	h.addUser(adaEmail, adaPass)
	ada := h.login(adaEmail, adaPass)
	expect(t, "wrong password", h.do("POST", "/v1/auth/login", jsonBody(map[string]string{"email": adaEmail, "password": "not the password"})), http.StatusUnauthorized, "")
	ref := h.refresh(ada.str("refresh_token"))
	expect(t, "refresh", ref, http.StatusOK, "")
	if err := h.in.Stats.Sample(); err != nil {
		t.Fatal(err)
	}
	mid := root.overview()
	if mid.Users != 2 || mid.LiveSessions != 2 {
		t.Fatalf("after a sign-in: %d users, %d live sessions", mid.Users, mid.LiveSessions)
	}
	if d := mid.cluster(t, "login_succeeded") - before.cluster(t, "login_succeeded"); d != 1 {
		t.Errorf("sign-ins succeeded moved by %v, want 1", d)
	}
	if d := mid.cluster(t, "login_failed") - before.cluster(t, "login_failed"); d != 1 {
		t.Errorf("sign-ins failed moved by %v, want 1", d)
	}
	if n := mid.instance(t, "latch_refreshes_total"); n < 1 {
		t.Errorf("this instance's refreshes: %v", n)
	}
	if n := mid.instance(t, "latch_logins_total"); n < 3 {
		t.Errorf("this instance's sign-ins: %v, want the 3 so far", n)
	}

	// The administrator revokes the user's session.
	want(t, "revoke", root.api("POST", "/admin/v1/sessions/"+ada.str("session_id")+"/revoke", nil, root.csrf()), http.StatusOK, "")
	after := root.overview()
	if after.LiveSessions != 1 {
		t.Errorf("after the revocation: %d live sessions", after.LiveSessions)
	}
	if d := after.cluster(t, "session_revoked") - mid.cluster(t, "session_revoked"); d < 1 {
		t.Errorf("revocations moved by %v", d)
	}
	if after.Feed.Head <= mid.Feed.Head {
		t.Errorf("feed head %d → %d", mid.Feed.Head, after.Feed.Head)
	}

	// An admin client's token reads it too.
	h.addRP("ops", func(n *auth.NewClient) {
		n.Secret = consoleSecret
		n.RedirectURIs, n.PostLogoutRedirectURIs, n.Scopes = nil, nil, []string{admin.Scope}
	})
	tok := h.form("/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {admin.Scope}}, basic("ops", consoleSecret)...)
	expect(t, "ops token", tok, http.StatusOK, "")
	expect(t, "admin client", h.do("GET", "/admin/v1/overview", "", bearer(tok.str("access_token"))...), http.StatusOK, "")

	// Refused: no session, a user's session, a user's token.
	anon := h.browser()
	want(t, "anonymous overview", anon.api("GET", "/admin/v1/overview", nil, ""), http.StatusUnauthorized, "")
	if r := anon.get("/admin"); r.code != http.StatusSeeOther || r.location != "/login?return_to=%2Fadmin" {
		t.Errorf("anonymous /admin: %d %q", r.code, r.location)
	}
	user := h.browser()
	user.signIn(adaEmail, adaPass)
	want(t, "non-admin overview", user.api("GET", "/admin/v1/overview", nil, ""), http.StatusForbidden, "forbidden")
	if r := user.get("/admin/overview"); r.code != http.StatusForbidden {
		t.Errorf("non-admin overview page: %d", r.code)
	}
	adaAgain := h.login(adaEmail, adaPass)
	expect(t, "user's token", h.do("GET", "/admin/v1/overview", "", bearer(adaAgain.str("access_token"))...), http.StatusForbidden, "")

	// /admin is the Overview.
	for _, p := range []string{"/admin", "/admin/", "/admin/overview"} {
		r := root.get(p)
		if r.code != http.StatusOK || !strings.Contains(r.body, `data-section="overview"`) || !strings.Contains(r.body, `id="ov-cluster"`) {
			t.Errorf("GET %s: %d", p, r.code)
		}
	}
}

// TestConsoleOverviewStats: Start samples the instance's counters for the
// Overview (a sign-in made before it is counted at its first sample), and
// Wait returns once Start's context ends.
func TestConsoleOverviewStats(t *testing.T) {
	h := start(t, "", nil)
	h.addUser(adaEmail, adaPass)
	h.login(adaEmail, adaPass)
	if n := h.in.Stats.Sum("latch_logins_total", time.Hour); n != 0 {
		t.Fatalf("sampled before Start: %v", n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.in.Start(ctx)
	waitFor(t, "the first sample", func() bool { return h.in.Stats.Sum("latch_logins_total", time.Hour) == 1 })
	cancel()
	h.in.Wait()
}

// TestConsoleOverviewRedis: with Redis configured the Overview pings it.
func TestConsoleOverviewRedis(t *testing.T) {
	h := start(t, "", func(c *config.Config) { c.Redis = "redis://127.0.0.1:6379/0" })
	if err := h.in.Fanout.Ping(t.Context()); err != nil {
		testenv.Unavailable(t, testenv.Redis, err)
	}
	h.addAdmin(rootEmail, rootPass)
	root := h.browser()
	root.signIn(rootEmail, rootPass)
	o := root.overview()
	if len(o.Health) != 2 || o.Health[1].Name != "redis" || !o.Health[1].Configured || !o.Health[1].OK {
		t.Fatalf("health %+v", o.Health)
	}
}
