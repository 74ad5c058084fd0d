// Package risk scores sign-ins and refreshes from signals (a new device, a
// new country or network, impossible travel, IP and country rules, failed
// attempts, a refresh from somewhere other than the session's sign-in) and
// decides what to do: allow, notify the user, challenge, deny, or revoke
// the session. Every decision carries its reasons, and the signals it was
// made from are recorded so that a security team can replay a recorded
// event log with other weights (latch risk replay).
//
// The package is pure: it gathers nothing itself. Callers fill Signals
// from the store and the geo-IP database, and act on the Decision.
package risk

import "time"

// Action is what a decision asks the caller to do.
type Action string

// Actions, in ascending severity.
const (
	Allow     Action = "allow"
	Notify    Action = "notify"    // let it through, and alert the user
	Challenge Action = "challenge" // sign-in only: ask for an emailed code first
	Deny      Action = "deny"      // refuse this attempt
	Revoke    Action = "revoke"    // refresh only: refuse and revoke the session
)

// Kinds of attempt.
const (
	KindSignIn  = "sign_in"
	KindRefresh = "refresh"
)

// Signals is everything known about one attempt. It is recorded in the
// decision's security event (as JSON) so that a replay can score it again.
type Signals struct {
	Kind string    `json:"kind"`
	At   time.Time `json:"at"`
	IP   string    `json:"ip,omitempty"`
	// Place of IP (empty without a geo-IP database).
	Country    string  `json:"country,omitempty"` // ISO 3166-1 alpha-2
	City       string  `json:"city,omitempty"`
	Lat        float64 `json:"lat,omitempty"`
	Lon        float64 `json:"lon,omitempty"`
	AccuracyKm float64 `json:"accuracy_km,omitempty"`
	ASN        uint    `json:"asn,omitempty"`
	// Sign-in: what the account has not used before.
	NewDevice  bool `json:"new_device,omitempty"`
	NewCountry bool `json:"new_country,omitempty"`
	NewASN     bool `json:"new_asn,omitempty"`
	// Previous use of the account (sign-in) or of the session (refresh),
	// for impossible travel; PrevAt zero when unknown.
	PrevAt         time.Time `json:"prev_at,omitzero"`
	PrevLat        float64   `json:"prev_lat,omitempty"`
	PrevLon        float64   `json:"prev_lon,omitempty"`
	PrevAccuracyKm float64   `json:"prev_accuracy_km,omitempty"`
	// RecentFailures is the number of failed sign-ins of the account in
	// the last hour.
	RecentFailures int `json:"recent_failures,omitempty"`
	// Refresh: how the request differs from the session's sign-in.
	IPChanged        bool `json:"ip_changed,omitempty"`
	ASNChanged       bool `json:"asn_changed,omitempty"`
	CountryChanged   bool `json:"country_changed,omitempty"`
	UserAgentChanged bool `json:"user_agent_changed,omitempty"`
}

// Reason is one signal that counted towards a decision.
type Reason struct {
	// Code names the signal ("new_device", "impossible_travel",
	// "country_denied"…).
	Code   string `json:"code"`
	Weight int    `json:"weight"`
	// Detail says more where a figure helps ("4200 km in 1h0m0s").
	Detail string `json:"detail,omitempty"`
}

// Decision is the outcome of Evaluate.
type Decision struct {
	Score   int      `json:"score"`
	Action  Action   `json:"action"`
	Reasons []Reason `json:"reasons,omitempty"`
}
