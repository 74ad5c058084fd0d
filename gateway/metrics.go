package gateway

import (
	"fmt"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the gateway's Prometheus metrics.
type metrics struct {
	requests     *prometheus.CounterVec
	upstream     *prometheus.HistogramVec
	authFailures *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latch_gateway_requests_total",
			Help: "Requests answered by the gateway, by route (its path; the gateway's own endpoints by theirs; none when no route matched) and status code (499: the client went away).",
		}, []string{"route", "code"}),
		upstream: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "latch_gateway_upstream_duration_seconds",
			Help:    "Time from the gateway sending a request upstream to the upstream's response headers (or its failure), by route.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"route"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latch_gateway_auth_failures_total",
			Help: "Requests refused by authentication, by route and reason (missing_token, malformed, expired, revoked, audience, insufficient_scope, csrf, no_session, stale, signature, ...).",
		}, []string{"route", "reason"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.upstream, m.authFailures} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("gateway: metrics: %w", err)
		}
	}
	return m, nil
}

// codeLabel avoids an allocation for the common codes.
func codeLabel(code int) string {
	switch code {
	case 200:
		return "200"
	case 101:
		return "101"
	case 302:
		return "302"
	case 401:
		return "401"
	case 403:
		return "403"
	case 404:
		return "404"
	case 502:
		return "502"
	}
	return strconv.Itoa(code)
}
