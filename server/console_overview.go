package server

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/admin"
	"github.com/latchauth/latch/chart"
	"github.com/latchauth/latch/overview"
)

// The Overview's JSON shapes. Each chart is SVG markup drawn by package
// chart from numbers and fixed labels only (its text escaped), which the
// console inserts as an svg element: no script, no style attribute.
type (
	overviewJSON struct {
		At           time.Time `json:"at"`
		Users        int       `json:"users"`
		LiveSessions int       `json:"live_sessions"`
		// Cluster is from the security log in the store: every instance.
		Cluster []overviewChartJSON `json:"cluster"`
		// Instance is from this instance's Prometheus counters.
		Instance []overviewChartJSON `json:"instance"`
		// Events are the security log's counts by type.
		Events []overviewCountJSON  `json:"events"`
		Feed   overviewFeedJSON     `json:"feed"`
		Keys   []adminKeyJSON       `json:"keys"`
		Health []overviewHealthJSON `json:"health"`
		Errors []string             `json:"errors"`
	}
	overviewChartJSON struct {
		// Name is the event type or the Prometheus series.
		Name     string  `json:"name"`
		Label    string  `json:"label"`
		LastHour float64 `json:"last_hour"`
		LastDay  float64 `json:"last_day"`
		// HourSVG is the last hour per minute, DaySVG the last day per hour.
		HourSVG string `json:"hour_svg"`
		DaySVG  string `json:"day_svg"`
	}
	overviewCountJSON struct {
		Type     string `json:"type"`
		LastHour int    `json:"last_hour"`
		LastDay  int    `json:"last_day"`
	}
	overviewFeedJSON struct {
		Head      int64                  `json:"head"`
		Followers []overviewFollowerJSON `json:"followers"`
	}
	overviewFollowerJSON struct {
		ClientID string     `json:"client_id"`
		Since    time.Time  `json:"since"`
		Cursor   int64      `json:"cursor"`
		SyncedAt *time.Time `json:"synced_at,omitempty"`
		Behind   int64      `json:"behind"`
		// AgeSeconds is how old the data the follower was last vouched is.
		AgeSeconds float64 `json:"age_seconds"`
	}
	overviewHealthJSON struct {
		Name       string  `json:"name"`
		Configured bool    `json:"configured"`
		OK         bool    `json:"ok"`
		LatencyMS  float64 `json:"latency_ms"`
		Error      string  `json:"error,omitempty"`
	}
)

// clusterCharts are the security log's event types the Overview charts,
// with their labels; revocations sum several types.
var clusterCharts = []struct {
	Label string
	Types []string
}{
	{"Sign-ins succeeded", []string{latch.EventLoginSucceeded}},
	{"Sign-ins failed", []string{latch.EventLoginFailed}},
	{"Refresh-token reuse detected", []string{latch.EventRefreshReused}},
	{"Revocations", []string{latch.EventSessionRevoked, latch.EventTokenRevoked, latch.EventLogoutAll, latch.EventRiskRevoked, latch.EventAdminRevoked}},
}

// instanceCharts are this instance's counter families the Overview
// charts (each family's sum), with their labels; a family's labelled
// series are charted after it when byLabel.
var instanceCharts = []struct {
	Family, Label string
	ByLabel       bool
}{
	{"latch_logins_total", "Sign-ins", true},
	{"latch_refreshes_total", "Refreshes", true},
	{"latch_refresh_reuse_detections_total", "Reuse detections", false},
	{"latch_revocations_total", "Revocations", true},
}

// consoleOverview answers the Overview's figures and charts.
func (s *Server) consoleOverview(w http.ResponseWriter, r *http.Request, by admin.Caller) {
	o := s.console.Overview.Collect(r.Context())
	writeJSON(w, http.StatusOK, overviewOut(o))
}

// overviewOut converts o to its JSON, drawing the charts.
func overviewOut(o overview.Overview) overviewJSON {
	out := overviewJSON{At: o.At, Users: o.Users, LiveSessions: o.LiveSessions,
		Cluster: []overviewChartJSON{}, Instance: []overviewChartJSON{}, Events: []overviewCountJSON{},
		Feed: overviewFeedJSON{Head: o.Feed.Head, Followers: []overviewFollowerJSON{}},
		Keys: []adminKeyJSON{}, Health: []overviewHealthJSON{}, Errors: []string{}}
	if o.Errors != nil {
		out.Errors = o.Errors
	}
	hourStart := o.At.Truncate(time.Minute).Add(-59 * time.Minute)
	dayStart := o.At.Truncate(time.Hour).Add(-23 * time.Hour)
	byType := map[string]overview.EventType{}
	for _, e := range o.Events {
		byType[e.Type] = e
		out.Events = append(out.Events, overviewCountJSON{Type: e.Type, LastHour: e.LastHour, LastDay: e.LastDay})
	}
	for i, c := range clusterCharts {
		hour, day := zeros(hourStart, time.Minute, 60), zeros(dayStart, time.Hour, 24)
		var nh, nd int
		for _, t := range c.Types {
			e, ok := byType[t]
			if !ok {
				continue
			}
			nh, nd = nh+e.LastHour, nd+e.LastDay
			addPoints(hour, e.PerMinute)
			addPoints(day, e.PerHour)
		}
		out.Cluster = append(out.Cluster, drawn(fmt.Sprintf("cl%d", i), strings.Join(c.Types, ","), c.Label, "all instances",
			float64(nh), float64(nd), hour, day))
	}
	activity := map[string]overview.Series{}
	for _, a := range o.Activity {
		activity[a.Name] = a
	}
	n := 0
	for _, c := range instanceCharts {
		names := []string{c.Family}
		if c.ByLabel {
			for _, a := range o.Activity {
				if a.Family == c.Family && a.Labels != "" {
					names = append(names, a.Name)
				}
			}
		}
		for _, name := range names {
			a, ok := activity[name]
			label := c.Label
			if a.Labels != "" {
				label += ": " + labelValues(a.Labels)
			}
			hour, day := zeros(hourStart, time.Minute, 60), zeros(dayStart, time.Hour, 24)
			if ok {
				hour = a.PerMinute
				day = hourly(a.PerQuarter)
			}
			out.Instance = append(out.Instance, drawn(fmt.Sprintf("in%d", n), name, label, "this instance", a.LastHour, a.LastDay, hour, day))
			n++
		}
	}
	for _, f := range o.Feed.Followers {
		out.Feed.Followers = append(out.Feed.Followers, overviewFollowerJSON{ClientID: f.ClientID, Since: f.Since, Cursor: f.Cursor,
			SyncedAt: optTime(f.SyncedAt), Behind: f.Behind, AgeSeconds: f.Age.Seconds()})
	}
	for _, k := range o.Keys {
		out.Keys = append(out.Keys, adminKeyJSON{ID: k.ID, Algorithm: k.Algorithm, Family: k.Family, State: k.State, CreatedAt: k.CreatedAt,
			NotBefore: k.NotBefore, NotAfter: optTime(k.NotAfter), RevokedAt: optTime(k.RevokedAt)})
	}
	for _, h := range o.Health {
		out.Health = append(out.Health, overviewHealthJSON{Name: h.Name, Configured: h.Configured, OK: h.OK,
			LatencyMS: float64(h.Latency.Microseconds()) / 1000, Error: h.Error})
	}
	return out
}

// drawn is a chart's JSON: the hour's and the day's charts of a series;
// where says whose figures they are (all instances, this instance), in
// the charts' accessible names.
func drawn(id, name, label, where string, lastHour, lastDay float64, hour, day []chart.Point) overviewChartJSON {
	return overviewChartJSON{Name: name, Label: label, LastHour: lastHour, LastDay: lastDay,
		HourSVG: string(chart.Chart{ID: id + "h", Title: label + " (" + where + "): last hour, per minute"}.SVG(hour)),
		DaySVG:  string(chart.Chart{ID: id + "d", Title: label + " (" + where + "): last 24 hours, per hour"}.SVG(day))}
}

// labelValues writes a series' labels (outcome="success",scope="user")
// as their values: success, user.
func labelValues(labels string) string {
	var vals []string
	for _, pair := range strings.Split(labels, ",") {
		_, v, _ := strings.Cut(pair, "=")
		vals = append(vals, strings.Trim(v, `"`))
	}
	return strings.Join(vals, ", ")
}

// zeros returns n zero points a step apart from first.
func zeros(first time.Time, step time.Duration, n int) []chart.Point {
	pts := make([]chart.Point, n)
	for i := range pts {
		pts[i].At = first.Add(time.Duration(i) * step)
	}
	return pts
}

// addPoints adds the values of src to the points of dst at the same
// times (the two are the same steps).
func addPoints(dst, src []chart.Point) {
	for i := range dst {
		if i < len(src) && src[i].At.Equal(dst[i].At) {
			dst[i].Value += src[i].Value
		}
	}
}

// hourly sums points of steps shorter than an hour into hours.
func hourly(pts []chart.Point) []chart.Point {
	var out []chart.Point
	for _, p := range pts {
		h := p.At.Truncate(time.Hour)
		if len(out) == 0 || !out[len(out)-1].At.Equal(h) {
			out = append(out, chart.Point{At: h})
		}
		out[len(out)-1].Value += p.Value
	}
	if len(out) > 24 {
		out = out[len(out)-24:]
	}
	return out
}
