package bff

import "github.com/prometheus/client_golang/prometheus"

// metrics are the Manager's Prometheus metrics.
type metrics struct {
	refreshes *prometheus.CounterVec
	waits     prometheus.Histogram
	created   prometheus.Counter
	ended     *prometheus.CounterVec
}

// Outcomes of a refresh (latch_gateway_refreshes_total{outcome}).
const (
	outcomeOK       = "ok"        // new tokens stored
	outcomeInvalid  = "invalid"   // invalid_grant: the session ended
	outcomeError    = "error"     // the token endpoint failed; retried later
	outcomeLost     = "lost"      // the lease was lost before completing
	outcomeWaited   = "waited"    // another request or instance refreshed it
	outcomeTimedOut = "timed_out" // the wait for another's refresh timed out
)

// newMetrics registers the metrics with reg (none if reg is nil).
func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latch_gateway_refreshes_total",
			Help: "Access-token refreshes of browser sessions, by outcome (ok, invalid, error, lost, waited, timed_out).",
		}, []string{"outcome"}),
		waits: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "latch_gateway_refresh_wait_seconds",
			Help:    "Time requests waited for another request's or gateway's refresh of their session.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}),
		created: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "latch_gateway_sessions_created_total",
			Help: "Browser sessions created (sign-ins through the gateway).",
		}),
		ended: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latch_gateway_sessions_ended_total",
			Help: "Browser sessions ended, by reason (logout, backchannel, revoked, refresh, idle).",
		}, []string{"reason"}),
	}
	if reg != nil {
		reg.MustRegister(m.refreshes, m.waits, m.created, m.ended)
	}
	return m
}
