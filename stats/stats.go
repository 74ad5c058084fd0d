// Package stats records this instance's recent activity for the admin
// console's Overview: per-minute counts of named counters, kept for 24
// hours in fixed memory.
//
// A Recorder samples a Prometheus registry's counters once a minute and
// keeps each minute's increase. Sampling the registry rather than adding
// calls next to every counter keeps one source of truth: the figures on
// the console are those Prometheus scrapes, every counter the service
// already keeps is there without an edit to the code that counts, and
// recording costs one Gather a minute, nothing on the request path. The
// price is resolution: a minute, which is the console's finest step.
//
// A series is named as Prometheus writes it: the family name for the sum
// over its labels (latch_logins_total), or the family with its labels in
// name order for one of them (latch_logins_total{outcome="success"}).
package stats

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Keep is how long a Recorder keeps its minutes.
const Keep = 24 * time.Hour

// minutes is how many per-minute buckets a series holds.
const minutes = int(Keep / time.Minute)

// MaxSeries bounds how many series (label sets) a Recorder keeps, so that
// a counter with a label of unbounded values cannot grow its memory; the
// series seen first are kept. Each takes about 23 KB.
const MaxSeries = 512

// Families are the counters the Overview shows: sign-ins and refreshes
// by outcome, reuse detections, revocations by scope, client grants,
// OIDC authorizations, webhook and outbox deliveries, and tokens accepted
// on stale revocation data.
var Families = []string{
	"latch_logins_total",
	"latch_refreshes_total",
	"latch_refresh_reuse_detections_total",
	"latch_revocations_total",
	"latch_client_credentials_grants_total",
	"latch_oidc_authorizations_total",
	"latch_webhook_deliveries_total",
	"latch_outbox_deliveries_total",
	"latch_stale_accepted_total",
}

// Point is the increase of a series over one step starting at At.
type Point struct {
	At    time.Time
	Value float64
}

// Recorder keeps the per-minute increases of counters. It is safe for
// concurrent use.
type Recorder struct {
	g        prometheus.Gatherer
	now      func() time.Time
	families map[string]bool

	mu     sync.Mutex
	last   map[string]float64 // series → value at the last sample
	series map[string]*ring   // series, and each family's sum
}

// ring holds a series' increase per minute: bucket i is for the minute
// whose number since the epoch is m with m % minutes == i, if at[i] == m.
type ring struct {
	at [minutes]int64
	n  [minutes]float64
}

// add adds v to minute m.
func (r *ring) add(m int64, v float64) {
	i := int(m % int64(minutes))
	if r.at[i] != m {
		r.at[i], r.n[i] = m, 0
	}
	r.n[i] += v
}

// get returns minute m's increase.
func (r *ring) get(m int64) float64 {
	i := int(m % int64(minutes))
	if r.at[i] != m {
		return 0
	}
	return r.n[i]
}

// New returns a Recorder of the counter families of g named in families
// (Families if none are given), on the clock now (time.Now if nil).
func New(g prometheus.Gatherer, now func() time.Time, families ...string) *Recorder {
	if len(families) == 0 {
		families = Families
	}
	if now == nil {
		now = time.Now
	}
	r := &Recorder{g: g, now: now, families: map[string]bool{}, last: map[string]float64{}, series: map[string]*ring{}}
	for _, f := range families {
		r.families[f] = true
	}
	return r
}

// Run samples the registry at start and then every minute until ctx ends.
// A failed sample is returned; the minutes it missed are counted in the
// next one.
func (r *Recorder) Run(ctx context.Context) error {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		if err := r.Sample(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Sample reads the registry's counters and adds each one's increase
// since the last sample to the current minute. A counter seen for the
// first time counts from zero (the Recorder starts with the instance, as
// the counters do); a counter lower than before was reset and counts
// from zero again.
func (r *Recorder) Sample() error {
	now := r.now()
	if now.Unix() < 0 {
		return fmt.Errorf("stats: sample at %v, before 1970", now)
	}
	mfs, err := r.g.Gather()
	if err != nil {
		return fmt.Errorf("stats: gather: %w", err)
	}
	m := now.Unix() / 60
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, mf := range mfs {
		if mf.GetType() != dto.MetricType_COUNTER || !r.families[mf.GetName()] {
			continue
		}
		for _, metric := range mf.GetMetric() {
			key := seriesName(mf.GetName(), metric.GetLabel())
			v := metric.GetCounter().GetValue()
			last, seen := r.last[key]
			if !seen && len(r.last) >= MaxSeries {
				continue
			}
			d := v - last
			if v < last {
				d = v
			}
			r.last[key] = v
			if d == 0 {
				continue
			}
			r.ringOf(key).add(m, d)
			if key != mf.GetName() {
				r.ringOf(mf.GetName()).add(m, d)
			}
		}
	}
	return nil
}

// ringOf returns the ring of the series, made if new. r.mu is held.
func (r *Recorder) ringOf(name string) *ring {
	s := r.series[name]
	if s == nil {
		s = new(ring)
		r.series[name] = s
	}
	return s
}

// seriesName returns the name of a family's series with the labels.
func seriesName(family string, labels []*dto.LabelPair) string {
	if len(labels) == 0 {
		return family
	}
	pairs := make([]string, 0, len(labels))
	for _, l := range labels {
		pairs = append(pairs, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
	}
	sort.Strings(pairs)
	return family + "{" + strings.Join(pairs, ",") + "}"
}

// Series returns the increase of the named series per step over the
// window that ends with the current minute: window/step points, oldest
// first, each At the start of its step. Step is rounded up to whole
// minutes and window to whole steps, at most Keep. An unknown series has
// zero points.
func (r *Recorder) Series(name string, window, step time.Duration) []Point {
	now := r.now()
	stepMin := max(int64((step+time.Minute-1)/time.Minute), 1)
	n := (int64(min(window, Keep)/time.Minute) + stepMin - 1) / stepMin
	if n <= 0 {
		return nil
	}
	end := now.Unix()/60 + 1 // the minute after now's
	first := end - n*stepMin
	pts := make([]Point, n)
	r.mu.Lock()
	s := r.series[name]
	for i := range pts {
		from := first + int64(i)*stepMin
		pts[i].At = time.Unix(from*60, 0).UTC()
		if s == nil {
			continue
		}
		for m := max(from, end-int64(minutes)); m < from+stepMin; m++ {
			pts[i].Value += s.get(m)
		}
	}
	r.mu.Unlock()
	return pts
}

// Sum returns the increase of the named series over the window that ends
// with the current minute (at most Keep).
func (r *Recorder) Sum(name string, window time.Duration) float64 {
	var sum float64
	for _, p := range r.Series(name, window, time.Minute) {
		sum += p.Value
	}
	return sum
}

// Names returns the names of the series recorded so far, sorted: the
// families and their labelled series.
func (r *Recorder) Names() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	names := make([]string, 0, len(r.series))
	for n := range r.series {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
