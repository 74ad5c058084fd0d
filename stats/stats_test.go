package stats

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/latchauth/latch/auth"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// clock is a fake clock, moved by hand.
type clock struct{ t time.Time }

func (c *clock) now() time.Time      { return c.t }
func (c *clock) add(d time.Duration) { c.t = c.t.Add(d) }
func values(pts []Point) (v []float64) {
	for _, p := range pts {
		v = append(v, p.Value)
	}
	return v
}

var t0 = time.Date(2031, 3, 14, 15, 9, 26, 0, time.UTC)

func sample(t *testing.T, r *Recorder) {
	t.Helper()
	if err := r.Sample(); err != nil {
		t.Fatal(err)
	}
}

// TestSeries: the service's own counters, sampled a minute apart, give
// each minute's increase per outcome and summed over outcomes, in steps.
func TestSeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := auth.NewMetrics(reg)
	c := &clock{t0}
	r := New(reg, c.now)
	m.Logins.WithLabelValues("success").Add(3)
	sample(t, r)
	c.add(time.Minute)
	m.Logins.WithLabelValues("success").Inc()
	m.Logins.WithLabelValues("invalid_credentials").Add(2)
	m.ReuseDetections.Inc()
	sample(t, r)
	c.add(time.Minute)
	sample(t, r) // nothing new
	c.add(time.Minute)
	m.Logins.WithLabelValues("invalid_credentials").Inc()
	sample(t, r)

	for _, tt := range []struct {
		name         string
		window, step time.Duration
		want         []float64
	}{
		{`latch_logins_total{outcome="success"}`, 6 * time.Minute, time.Minute, []float64{0, 0, 3, 1, 0, 0}},
		{`latch_logins_total{outcome="invalid_credentials"}`, 4 * time.Minute, time.Minute, []float64{0, 2, 0, 1}},
		{"latch_logins_total", 4 * time.Minute, time.Minute, []float64{3, 3, 0, 1}},
		{"latch_logins_total", 4 * time.Minute, 2 * time.Minute, []float64{6, 1}},
		{"latch_logins_total", 5 * time.Minute, 2 * time.Minute, []float64{0, 6, 1}}, // window rounded up to steps
		{"latch_logins_total", 4 * time.Minute, 90 * time.Second, []float64{6, 1}},   // step rounded up to minutes
		{"latch_refresh_reuse_detections_total", 3 * time.Minute, time.Minute, []float64{1, 0, 0}},
		{"latch_revocations_total", 3 * time.Minute, time.Minute, []float64{0, 0, 0}},
		{"no_such_series", 2 * time.Minute, time.Minute, []float64{0, 0}},
	} {
		pts := r.Series(tt.name, tt.window, tt.step)
		if got := values(pts); !slices.Equal(got, tt.want) {
			t.Errorf("Series(%s, %v, %v) = %v; want %v", tt.name, tt.window, tt.step, got, tt.want)
		}
		// Points start on whole steps, the last one holding now.
		if len(pts) > 0 {
			last := pts[len(pts)-1]
			if step := max(tt.step.Round(time.Minute), time.Minute); c.t.Before(last.At) || !c.t.Before(last.At.Add(step+time.Minute)) || last.At.Location() != time.UTC {
				t.Errorf("Series(%s, %v, %v): last point at %v, now %v", tt.name, tt.window, tt.step, last.At, c.t)
			}
		}
	}
	if got := r.Sum("latch_logins_total", time.Hour); got != 7 {
		t.Errorf("Sum of sign-ins over the hour = %v; want 7", got)
	}
	want := []string{"latch_logins_total", `latch_logins_total{outcome="invalid_credentials"}`,
		`latch_logins_total{outcome="success"}`, "latch_refresh_reuse_detections_total"}
	if got := r.Names(); !slices.Equal(got, want) {
		t.Errorf("Names = %q; want %q", got, want)
	}
}

// TestKeepsADay: a minute is kept for 24 hours and then forgotten, also
// where a later minute takes its place in the ring; a window longer than
// a day is a day.
func TestKeepsADay(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := auth.NewMetrics(reg)
	c := &clock{t0}
	r := New(reg, c.now)
	m.Revocations.WithLabelValues("session").Add(5)
	sample(t, r)
	c.add(Keep - time.Minute)
	if got := r.Sum("latch_revocations_total", 48*time.Hour); got != 5 {
		t.Errorf("a day later but a minute: sum %v; want 5", got)
	}
	if n := len(r.Series("latch_revocations_total", 48*time.Hour, time.Minute)); n != minutes {
		t.Errorf("a 48 h window has %d points; want %d", n, minutes)
	}
	c.add(time.Minute) // the same slot of the ring
	if got := r.Sum("latch_revocations_total", Keep); got != 0 {
		t.Errorf("a day later: sum %v; want 0", got)
	}
	m.Revocations.WithLabelValues("session").Add(2)
	sample(t, r)
	if got := r.Sum("latch_revocations_total", Keep); got != 2 {
		t.Errorf("a day later, two more: sum %v; want 2", got)
	}
}

// gathered returns a Gatherer of one counter family with the values.
func gathered(family string, values map[string]float64) prometheus.Gatherer {
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		mf := &dto.MetricFamily{Name: &family, Type: dto.MetricType_COUNTER.Enum()}
		for label, v := range values {
			mf.Metric = append(mf.Metric, &dto.Metric{
				Label:   []*dto.LabelPair{{Name: ptr("outcome"), Value: ptr(label)}},
				Counter: &dto.Counter{Value: ptr(v)},
			})
		}
		return []*dto.MetricFamily{mf}, nil
	})
}

func ptr[T any](v T) *T { return &v }

// TestCounterReset: a counter lower than at the last sample was reset and
// counts from zero; one seen first counts from zero too.
func TestCounterReset(t *testing.T) {
	counters := map[string]float64{"success": 10}
	c := &clock{t0}
	r := New(gathered("latch_logins_total", counters), c.now)
	sample(t, r)
	c.add(time.Minute)
	counters["success"] = 3 // reset, then 3
	counters["error"] = 1
	sample(t, r)
	if got := values(r.Series("latch_logins_total", 2*time.Minute, time.Minute)); !slices.Equal(got, []float64{10, 4}) {
		t.Errorf("across a reset: %v; want [10 4]", got)
	}
}

// TestOnlyItsFamilies: counters outside the families and other metric
// types are not recorded.
func TestOnlyItsFamilies(t *testing.T) {
	reg := prometheus.NewRegistry()
	other := prometheus.NewCounter(prometheus.CounterOpts{Name: "latch_http_requests_total", Help: "h"})
	gauge := prometheus.NewGauge(prometheus.GaugeOpts{Name: "latch_logins_total_gauge", Help: "h"})
	reg.MustRegister(other, gauge)
	other.Inc()
	gauge.Set(4)
	r := New(reg, (&clock{t0}).now)
	sample(t, r)
	if got := r.Names(); len(got) != 0 {
		t.Errorf("Names = %q; want none", got)
	}
	r = New(reg, (&clock{t0}).now, "latch_http_requests_total")
	sample(t, r)
	if got := r.Sum("latch_http_requests_total", time.Hour); got != 1 {
		t.Errorf("a family asked for: sum %v; want 1", got)
	}
}

// TestMaxSeries: a label with ever more values stops adding series at
// MaxSeries, so memory stays bounded; the family's sum counts the series
// kept.
func TestMaxSeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "latch_logins_total", Help: "h"}, []string{"outcome"})
	reg.MustRegister(vec)
	for i := range MaxSeries + 100 {
		vec.WithLabelValues(fmt.Sprint("o", i)).Inc()
	}
	r := New(reg, (&clock{t0}).now)
	sample(t, r)
	if n := len(r.Names()); n != MaxSeries+1 {
		t.Errorf("%d series; want %d and the family", n, MaxSeries)
	}
	if got := r.Sum("latch_logins_total", time.Hour); got != MaxSeries {
		t.Errorf("family sum %v; want %d", got, MaxSeries)
	}
}

// TestRunSamplesAndStops: Run samples at once and returns when its
// context ends; a failing registry's error is returned.
func TestRunSamplesAndStops(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := auth.NewMetrics(reg)
	m.ClientGrants.Inc()
	r := New(reg, (&clock{t0}).now)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := r.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if got := r.Sum("latch_client_credentials_grants_total", time.Minute); got != 1 {
		t.Errorf("after Run: sum %v; want 1", got)
	}
	boom := errors.New("boom")
	bad := New(prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) { return nil, boom }), nil)
	if err := bad.Run(t.Context()); !errors.Is(err, boom) {
		t.Errorf("Run with a failing registry = %v; want boom", err)
	}
	if err := New(reg, func() time.Time { return time.Unix(-60, 0) }).Sample(); err == nil {
		t.Error("a sample before 1970: no error")
	}
}
