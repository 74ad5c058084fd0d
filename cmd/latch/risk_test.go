package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/risk"
	"github.com/latchauth/latch/sqlite"
)

// recordDecisions stores, in the deployment at dir, three risk decisions
// made with the default weights (and a country rule), one older than a
// month, and an event of another type.
func recordDecisions(t *testing.T, dir string) {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Second)
	c := risk.Defaults()
	c.Countries.Deny = []string{"KP"}
	engine, err := risk.New(c)
	if err != nil {
		t.Fatal(err)
	}
	travel := risk.Signals{Kind: risk.KindRefresh, At: now.Add(-time.Hour), IP: "198.51.100.1", Country: "DE", Lat: 52.52, Lon: 13.405,
		PrevAt: now.Add(-2 * time.Hour), PrevLat: 37.5665, PrevLon: 126.978, IPChanged: true, ASNChanged: true, CountryChanged: true}
	browser := risk.Signals{Kind: risk.KindRefresh, At: now.Add(-time.Hour), IP: "203.0.113.99", IPChanged: true, ASNChanged: true, UserAgentChanged: true}
	denied := risk.Signals{Kind: risk.KindRefresh, At: now.Add(-time.Hour), IP: "192.0.2.1", Country: "KP"}
	st, err := sqlite.Open(t.Context(), filepath.Join(dir, "latch.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for i, tc := range []struct {
		typ string
		s   risk.Signals
		at  time.Time
	}{
		{latch.EventRiskRevoked, travel, now.Add(-time.Hour)},
		{latch.EventRiskNotified, browser, now.Add(-time.Hour)},
		{latch.EventRiskDenied, denied, now.Add(-time.Hour)},
		{latch.EventRiskNotified, browser, now.Add(-60 * 24 * time.Hour)}, // before --since
	} {
		d := engine.Evaluate(tc.s)
		if want := map[string]risk.Action{latch.EventRiskRevoked: risk.Revoke, latch.EventRiskNotified: risk.Notify, latch.EventRiskDenied: risk.Deny}[tc.typ]; d.Action != want {
			t.Fatalf("decision %d: %+v, want %s", i, d, want)
		}
		if err := st.AddEvent(t.Context(), &latch.Event{Type: tc.typ, At: tc.at, UserID: "u_ada", SessionID: "s1", IP: tc.s.IP,
			Detail: risk.EventDetail(tc.s, d)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.AddEvent(t.Context(), &latch.Event{Type: latch.EventLoginSucceeded, At: now, UserID: "u_ada"}); err != nil {
		t.Fatal(err)
	}
}

func TestRiskExportAndReplay(t *testing.T) {
	dir := newDeployment(t, nil)
	recordDecisions(t, dir)
	log := filepath.Join(t.TempDir(), "decisions.jsonl")
	_, stderr, err := run(t, "", nil, "risk", "export", "--since", "30d", "--out", log, "--data-dir", dir)
	// The decisions, and the sign-in (whose decision would ride on it;
	// this one has none, and replay skips it).
	if err != nil || !strings.Contains(stderr, "exported 4 events") {
		t.Fatalf("export: %q %v", stderr, err)
	}
	raw, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	if len(lines) != 4 {
		t.Fatalf("exported %d lines, want 4:\n%s", len(lines), raw)
	}
	var first latch.Event
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil || first.Type != latch.EventRiskRevoked || first.UserID != "u_ada" ||
		first.Detail[risk.DetailSignals] == "" || first.ID == 0 {
		t.Fatalf("first line %s: %v", lines[0], err)
	}
	// --out - writes to standard output; --types widens the selection.
	out, _, err := run(t, "", nil, "risk", "export", "--since", "90d", "--out", "-", "--types", "risk_notified,login_succeeded", "--data-dir", dir)
	if err != nil || strings.Count(out, "\n") != 3 || !strings.Contains(out, `"login_succeeded"`) {
		t.Fatalf("export to stdout: %q %v", out, err)
	}

	// The log scored with the configuration it was recorded with: nothing
	// changes.
	same := filepath.Join(t.TempDir(), "same.yaml")
	os.WriteFile(same, []byte("geoip:\n  city_db: /srv/city.mmdb\nrisk:\n  countries:\n    deny: [KP]\n"), 0o600)
	out, _, err = run(t, "", nil, "risk", "replay", "--events", log, "--config", same)
	if err != nil || !strings.Contains(out, "3 events scored again") || !strings.Contains(out, "0 changed") {
		t.Fatalf("replay with the same settings: %q %v", out, err)
	}

	// Tuned: browsers count for nothing, revocation needs 200, no country
	// rule.
	tuned := filepath.Join(t.TempDir(), "tuned.yaml")
	os.WriteFile(tuned, []byte("risk:\n  weights:\n    user_agent_change: 0\n  refresh:\n    revoke: 200\n"), 0o600)
	out, _, err = run(t, "", nil, "risk", "replay", "--events", log, "--config", tuned)
	if err != nil {
		t.Fatalf("replay: %v", err)
	}
	for _, want := range []string{
		"3 events scored again, 1 without signals skipped",
		"allow   0       2", "notify  1       1", "deny    1       0", "revoke  1       0",
		"3 changed",
		"revoke → notify", "impossible_travel(60)", "105 → 105",
		"notify → allow", "55 → 15",
		"deny → allow",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("replay table lacks %q:\n%s", want, out)
		}
	}
	out, _, err = run(t, "", nil, "risk", "replay", "--events", log, "--config", tuned, "--format", "json")
	var rep replayReport
	if err != nil || json.Unmarshal([]byte(out), &rep) != nil {
		t.Fatalf("replay --format json: %q %v", out, err)
	}
	if rep.Events != 3 || rep.Before[risk.Revoke] != 1 || rep.After[risk.Allow] != 2 || len(rep.Changed) != 3 ||
		rep.Changed[0].Before != risk.Revoke || rep.Changed[0].After != risk.Notify || rep.Changed[0].ID != first.ID {
		t.Fatalf("replay json: %+v", rep)
	}
	// Standard input, and lines without signals are skipped.
	stdin := string(raw) + `{"id":99,"type":"login_succeeded","at":"2026-01-01T00:00:00Z"}` + "\n"
	out, _, err = run(t, stdin, nil, "risk", "replay", "--events", "-")
	if err != nil || !strings.Contains(out, "3 events scored again, 2 without signals skipped") {
		t.Fatalf("replay from stdin: %q %v", out, err)
	}
}

func TestRiskCommandErrors(t *testing.T) {
	dir := newDeployment(t, nil)
	bad := filepath.Join(t.TempDir(), "bad.jsonl")
	os.WriteFile(bad, []byte(`{"id":1,"type":"risk_denied","detail":{"signals":"{\"kind\":\"refresh\"}"}}`+"\nnot json\n"), 0o600)
	badKind := filepath.Join(t.TempDir(), "kind.jsonl")
	os.WriteFile(badKind, []byte(`{"id":7,"type":"risk_denied","detail":{"signals":"{\"kind\":\"teleport\"}"}}`+"\n"), 0o600)
	badCfg := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(badCfg, []byte("risk:\n  countries:\n    deny: [XX]\n"), 0o600)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"risk", "replay"}, "--events FILE is required"},
		{[]string{"risk", "replay", "--events", bad, "--format", "xml"}, `--format "xml"`},
		{[]string{"risk", "replay", "--events", filepath.Join(dir, "missing.jsonl")}, "--events: open"},
		{[]string{"risk", "replay", "--events", bad}, "event 2"},
		{[]string{"risk", "replay", "--events", badKind}, `event 1 (id 7): risk: signals of kind "teleport"`},
		{[]string{"risk", "replay", "--events", bad, "--config", badCfg}, `risk.countries.deny[0]`},
		{[]string{"risk", "export", "--data-dir", dir}, "--out FILE is required"},
		{[]string{"risk", "export", "--since", "forever", "--out", "-", "--data-dir", dir}, `--since "forever"`},
		{[]string{"risk", "export", "--since", "-1h", "--out", "-", "--data-dir", dir}, `--since "-1h"`},
	} {
		if _, _, err := run(t, "", nil, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one containing %q", tc.args, err, tc.want)
		}
	}
}
