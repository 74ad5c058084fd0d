// Package overview gathers the live figures of the admin console's
// Overview page: counts from the store, the security log by type over the
// last hour and day, this instance's activity (package stats), the
// revocation feed's followers and how far behind they are, the signing
// key ring, and the health of the store and Redis.
//
// The day's per-hour counts of the security log are cached once an hour
// is over (and a settling delay past, for events recorded a little late):
// they no longer change, and counting a day of a busy log on every page
// load would cost tens of milliseconds where the last hour costs one.
//
// Collect never fails as a whole: a part that cannot be read is reported
// in Overview.Errors and left at its zero value, so that the page shows
// what it can when, say, the store is down (which is when it matters).
package overview

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/chart"
	"github.com/latchauth/latch/keys"
	"github.com/latchauth/latch/stats"
)

// Follower is an open revocation stream (server.FeedFollower, which
// converts to it).
type Follower struct {
	ClientID string
	Since    time.Time
	Cursor   int64
	SyncedAt time.Time
}

// Pinger is what reports its reachability: the Redis fan-out.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Source is where the figures come from. Store is required; a nil Ring,
// Followers, Stats or Redis leaves its part out; a nil Now is time.Now.
type Source struct {
	Store latch.Store
	// Ring is the signing key ring (keys.Ring).
	Ring interface{ List() []keys.Info }
	// Followers returns this instance's open revocation streams
	// (server.Server.FeedFollowers, converted).
	Followers func() []Follower
	// Stats is this instance's activity.
	Stats *stats.Recorder
	// Redis is the fan-out between instances; nil without Redis (an
	// interface holding a nil *redis.Fanout is not nil: leave it unset).
	Redis Pinger
	Now   func() time.Time
	// Timeout bounds each probe and query; 0 for 2 seconds.
	Timeout time.Duration
}

// Overview is the Overview page's data at At.
type Overview struct {
	At time.Time
	// Users and LiveSessions are counts from the store.
	Users, LiveSessions int
	// Events are the security log's events by type (most frequent over
	// the day first) over the last hour and day.
	Events []EventType
	// Activity is this instance's counters (sign-ins and refreshes by
	// outcome, reuse detections, revocations…), by series name.
	Activity []Series
	// Feed is the revocation feed and its followers on this instance.
	Feed Feed
	// Keys is the signing key ring, by family and then newest first.
	Keys []keys.Info
	// Health is the store's and Redis's.
	Health []Health
	// Errors says which parts could not be read, and why.
	Errors []string
}

// EventType is one event type's counts.
type EventType struct {
	Type              string
	LastHour, LastDay int
	// PerMinute is the last hour's count per minute (60 points) and
	// PerHour the last day's per hour (24 points), oldest first, ready
	// for chart.Chart.SVG.
	PerMinute, PerHour []chart.Point
}

// Series is one counter of package stats over the last hour and day.
type Series struct {
	// Name is the series' name: a family (the sum over its labels) or
	// one labelled series, as in latch_logins_total{outcome="success"}.
	Name string
	// Family and Labels are Name taken apart: latch_logins_total and
	// outcome="success".
	Family, Labels    string
	LastHour, LastDay float64
	// PerMinute is the last hour per minute, PerQuarter the last day per
	// 15 minutes, oldest first.
	PerMinute, PerQuarter []chart.Point
}

// Feed is the revocation feed's state.
type Feed struct {
	// Head is the highest seq the feed ever assigned.
	Head      int64
	Followers []FollowerLag
}

// FollowerLag is a follower and how far behind the feed's head it is.
type FollowerLag struct {
	Follower
	// Behind is how many seqs the follower lacks (Head minus Cursor).
	Behind int64
	// Age is how old the data it was last vouched is (At minus
	// SyncedAt); zero if it was never synced.
	Age time.Duration
}

// Health is a dependency's state.
type Health struct {
	Name string // "store" or "redis"
	// Configured is false for Redis without a configuration.
	Configured bool
	OK         bool
	Latency    time.Duration
	// Error is why the probe failed; empty if OK.
	Error string
}

// Settle is how long after an hour ends its event counts are taken as
// final and cached.
const Settle = 2 * time.Minute

// Collector collects Overviews from a Source. It is safe for concurrent
// use.
type Collector struct {
	src Source

	mu sync.Mutex
	// hours holds the final per-hour counts by the hour's start: the
	// hours known to be over, with or without events.
	hours map[time.Time][]latch.Count
}

// New returns a Collector of src.
func New(src Source) *Collector {
	if src.Now == nil {
		src.Now = time.Now
	}
	return &Collector{src: src, hours: map[time.Time][]latch.Count{}}
}

// Collect reads every figure.
func (c *Collector) Collect(ctx context.Context) Overview {
	src := c.src
	now := src.Now().UTC()
	o := Overview{At: now}
	timeout := src.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	try := func(part string, f func(ctx context.Context) error) {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		if err := f(ctx); err != nil {
			o.Errors = append(o.Errors, fmt.Sprintf("%s: %v", part, err))
		}
	}
	o.Health = append(o.Health, probe(ctx, "store", src.Store, timeout))
	if src.Redis != nil {
		o.Health = append(o.Health, probe(ctx, "redis", src.Redis, timeout))
	} else {
		o.Health = append(o.Health, Health{Name: "redis"})
	}
	try("users", func(ctx context.Context) (err error) {
		o.Users, err = src.Store.CountUsers(ctx)
		return err
	})
	try("live sessions", func(ctx context.Context) (err error) {
		o.LiveSessions, err = src.Store.CountLiveSessions(ctx, now)
		return err
	})
	try("events", func(ctx context.Context) (err error) {
		o.Events, err = c.events(ctx, now)
		return err
	})
	if src.Followers != nil {
		try("revocation feed", func(ctx context.Context) (err error) {
			o.Feed, err = feed(ctx, src.Store, src.Followers(), now)
			return err
		})
	}
	if src.Ring != nil {
		o.Keys = src.Ring.List()
		slices.SortStableFunc(o.Keys, func(a, b keys.Info) int {
			if a.Family != b.Family {
				return strings.Compare(a.Family, b.Family)
			}
			return b.CreatedAt.Compare(a.CreatedAt)
		})
	}
	if src.Stats != nil {
		o.Activity = activity(src.Stats)
	}
	return o
}

// probe pings p and times it.
func probe(ctx context.Context, name string, p Pinger, timeout time.Duration) Health {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	err := p.Ping(ctx)
	h := Health{Name: name, Configured: true, OK: err == nil, Latency: time.Since(start)}
	if err != nil {
		h.Error = err.Error()
	}
	return h
}

// events counts the security log by type over the last hour (per
// minute) and day (per hour).
func (c *Collector) events(ctx context.Context, now time.Time) ([]EventType, error) {
	hourStart := now.Truncate(time.Minute).Add(-59 * time.Minute)
	dayStart := now.Truncate(time.Hour).Add(-23 * time.Hour)
	hour, err := c.src.Store.CountEvents(ctx, nil, hourStart, time.Minute)
	if err != nil {
		return nil, err
	}
	day, err := c.day(ctx, dayStart, now)
	if err != nil {
		return nil, err
	}
	byType := map[string]*EventType{}
	get := func(t string) *EventType {
		e := byType[t]
		if e == nil {
			e = &EventType{Type: t, PerMinute: points(hourStart, time.Minute, 60), PerHour: points(dayStart, time.Hour, 24)}
			byType[t] = e
		}
		return e
	}
	for _, c := range hour {
		e := get(c.Type)
		e.LastHour += c.N
		add(e.PerMinute, c.Bucket, c.N)
	}
	for _, c := range day {
		e := get(c.Type)
		e.LastDay += c.N
		add(e.PerHour, c.Bucket, c.N)
	}
	list := make([]EventType, 0, len(byType))
	for _, e := range byType {
		list = append(list, *e)
	}
	slices.SortFunc(list, func(a, b EventType) int {
		if a.LastDay != b.LastDay {
			return b.LastDay - a.LastDay
		}
		return strings.Compare(a.Type, b.Type)
	})
	return list, nil
}

// day returns the per-hour counts from start (an hour's start) to now:
// the final hours from the cache, the others from the store, which then
// caches those that are over.
func (c *Collector) day(ctx context.Context, start, now time.Time) ([]latch.Count, error) {
	c.mu.Lock()
	for h := range c.hours {
		if h.Before(start) {
			delete(c.hours, h)
		}
	}
	from := start
	for {
		if _, ok := c.hours[from]; !ok {
			break
		}
		from = from.Add(time.Hour)
	}
	c.mu.Unlock()
	fresh := []latch.Count{}
	if !from.After(now) {
		var err error
		if fresh, err = c.src.Store.CountEvents(ctx, nil, from, time.Hour); err != nil {
			return nil, err
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for h := from; !h.Add(time.Hour + Settle).After(now); h = h.Add(time.Hour) {
		c.hours[h] = []latch.Count{}
	}
	for _, n := range fresh {
		if list, ok := c.hours[n.Bucket]; ok {
			c.hours[n.Bucket] = append(list, n)
		}
	}
	var all []latch.Count
	for h := start; h.Before(from); h = h.Add(time.Hour) {
		all = append(all, c.hours[h]...)
	}
	return append(all, fresh...), nil
}

// points returns n zero points a step apart from first.
func points(first time.Time, step time.Duration, n int) []chart.Point {
	pts := make([]chart.Point, n)
	for i := range pts {
		pts[i].At = first.Add(time.Duration(i) * step)
	}
	return pts
}

// add adds n to the point at the time at, if there is one.
func add(pts []chart.Point, at time.Time, n int) {
	if i, ok := slices.BinarySearchFunc(pts, at, func(p chart.Point, t time.Time) int { return p.At.Compare(t) }); ok {
		pts[i].Value += float64(n)
	}
}

// feed reads the feed's head and sets each follower's lag.
func feed(ctx context.Context, st latch.RevocationStore, followers []Follower, now time.Time) (Feed, error) {
	head, err := st.RevocationHead(ctx)
	if err != nil {
		return Feed{}, err
	}
	f := Feed{Head: head}
	for _, fl := range followers {
		l := FollowerLag{Follower: fl, Behind: max(head-fl.Cursor, 0)}
		if !fl.SyncedAt.IsZero() {
			l.Age = max(now.Sub(fl.SyncedAt), 0)
		}
		f.Followers = append(f.Followers, l)
	}
	return f, nil
}

// activity returns every series the recorder holds.
func activity(r *stats.Recorder) []Series {
	var list []Series
	for _, name := range r.Names() {
		family, labels, _ := strings.Cut(name, "{")
		s := Series{Name: name, Family: family, Labels: strings.TrimSuffix(labels, "}"),
			PerMinute:  convert(r.Series(name, time.Hour, time.Minute)),
			PerQuarter: convert(r.Series(name, 24*time.Hour, 15*time.Minute))}
		for _, p := range s.PerMinute {
			s.LastHour += p.Value
		}
		for _, p := range s.PerQuarter {
			s.LastDay += p.Value
		}
		list = append(list, s)
	}
	return list
}

func convert(pts []stats.Point) []chart.Point {
	out := make([]chart.Point, len(pts))
	for i, p := range pts {
		out[i] = chart.Point(p)
	}
	return out
}
