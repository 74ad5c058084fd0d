package auth

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the Prometheus series the service updates.
type Metrics struct {
	// Logins counts sign-in attempts by outcome: success,
	// invalid_credentials, unauthorized_client, locked, rate_limited,
	// busy, error.
	Logins *prometheus.CounterVec
	// Refreshes counts refresh attempts by outcome: rotated, grace,
	// reused, revoked, expired, invalid, wrong_client, error.
	Refreshes *prometheus.CounterVec
	// ReuseDetections counts refresh tokens presented after rotation
	// outside the grace window.
	ReuseDetections prometheus.Counter
	// Revocations counts revocations by scope: session, user, token.
	Revocations *prometheus.CounterVec
	// ClientGrants counts access tokens issued to clients for themselves.
	ClientGrants prometheus.Counter
}

// NewMetrics creates the series and registers them with reg, if not nil.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latch_logins_total", Help: "Sign-in attempts by outcome.",
		}, []string{"outcome"}),
		Refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latch_refreshes_total", Help: "Refresh-token redemptions by outcome.",
		}, []string{"outcome"}),
		ReuseDetections: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "latch_refresh_reuse_detections_total", Help: "Superseded refresh tokens presented outside the grace window; each revoked its session.",
		}),
		Revocations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latch_revocations_total", Help: "Revocations by scope.",
		}, []string{"scope"}),
		ClientGrants: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "latch_client_credentials_grants_total", Help: "Access tokens issued with the client_credentials grant.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.Logins, m.Refreshes, m.ReuseDetections, m.Revocations, m.ClientGrants)
	}
	return m
}
