package latch

import (
	"context"
	"time"
)

// Store is everything the auth server persists.
type Store interface {
	UserStore
	ClientStore
	SessionStore
	RevocationStore
	EventStore
	EventRelayStore
	KeyStore
	SSOStore
	CodeStore
	ConsentStore
	OutboxStore
	AccountStore
	ChallengeStore
	DeviceStore
	AdminStore
	ConsoleStore
	// Prune deletes what can no longer matter at now: expired revocation
	// entries, keys past NotAfter, sessions (and their token hashes) whose
	// absolute expiry passed before now, events older than keepEvents,
	// outbox messages delivered or failed more than keepEvents ago,
	// authorization codes past ExpiresAt, and SSO sessions past ExpiresAt
	// or ended before now (with their recorded clients), account tokens
	// and step-up challenges expired at now, admin setup tokens expired at now, sign-in alerts that expired
	// more than keepEvents ago, and devices not seen for DeviceRetention.
	Prune(ctx context.Context, now time.Time, keepEvents time.Duration) error
	// Ping reports whether the store is reachable.
	Ping(ctx context.Context) error
	// Close releases the store's resources.
	Close() error
}
