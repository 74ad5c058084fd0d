package server

import (
	"strings"
	"testing"
	"time"

	"github.com/latchauth/latch/chart"
	"github.com/latchauth/latch/overview"
)

// TestOverviewOut: the security log's revocation types are summed into
// one chart, a series' labels become their values, the instance's
// quarters become hours, and every chart is chart's SVG.
func TestOverviewOut(t *testing.T) {
	at := time.Date(2031, 3, 14, 15, 37, 0, 0, time.UTC)
	hourStart, dayStart := at.Add(-59*time.Minute), time.Date(2031, 3, 13, 16, 0, 0, 0, time.UTC)
	ev := func(typ string, n int) overview.EventType {
		e := overview.EventType{Type: typ, LastHour: n, LastDay: n, PerMinute: zeros(hourStart, time.Minute, 60), PerHour: zeros(dayStart, time.Hour, 24)}
		e.PerMinute[59].Value, e.PerHour[23].Value = float64(n), float64(n)
		return e
	}
	quarters := zeros(at.Truncate(15*time.Minute).Add(-95*15*time.Minute), 15*time.Minute, 96)
	for i := range quarters {
		quarters[i].Value = 1
	}
	o := overview.Overview{At: at, Users: 3,
		Events: []overview.EventType{ev("session_revoked", 2), ev("admin_revoked", 3), ev("login_succeeded", 5)},
		Activity: []overview.Series{{Name: `latch_logins_total{outcome="success"}`, Family: "latch_logins_total", Labels: `outcome="success"`,
			LastHour: 4, LastDay: 96, PerMinute: zeros(hourStart, time.Minute, 60), PerQuarter: quarters}}}
	out := overviewOut(o)
	var rev, ok bool
	for _, c := range out.Cluster {
		if c.Label == "Revocations" {
			rev = c.LastHour == 5 && strings.Contains(c.HourSVG, "UTC: 5</title>")
		}
		if !strings.HasPrefix(c.HourSVG, "<svg") || !strings.HasPrefix(c.DaySVG, "<svg") || !strings.Contains(c.HourSVG, "(all instances)") {
			t.Errorf("chart %s: %.60q", c.Label, c.HourSVG)
		}
	}
	if !rev {
		t.Errorf("revocations not summed: %+v", out.Cluster)
	}
	for _, c := range out.Instance {
		if c.Label == "Sign-ins: success" {
			ok = c.LastDay == 96 && strings.Count(c.DaySVG, "<rect") == 24 && strings.Contains(c.DaySVG, "UTC: 4</title>")
		}
	}
	if !ok {
		t.Errorf("instance series: %+v", out.Instance)
	}
	if got := hourly([]chart.Point{{At: at.Add(-40 * time.Minute), Value: 1}, {At: at.Add(-5 * time.Minute), Value: 2}}); len(got) != 2 || got[1].Value != 2 {
		t.Errorf("hourly: %+v", got)
	}
	if got := labelValues(`outcome="success",scope="user"`); got != "success, user" {
		t.Errorf("labelValues: %q", got)
	}
}
