package latch

import (
	"context"
	"time"
)

// OutboxWebhook is the kind of outbox messages that are security events to
// POST to a configured webhook; package webhook enqueues (through
// EventRelayStore.PublishEvents) and delivers them.
const OutboxWebhook = "webhook"

// EventAdminRevoked: a client holding the admin scope revoked a user's
// sessions or one session through the admin API. ClientID is that
// client; Detail: target ("user" or "session") and the caller's reason.
const EventAdminRevoked = "admin_revoked"

// EventRelayStore hands the security log on to the outbox: every event is
// recorded unpublished (whoever inserts it, in whatever transaction), and
// a relay publishes it, exactly once, by turning it into outbox messages.
type EventRelayStore interface {
	// PublishEvents takes up to limit unpublished events recorded
	// before before (At; any time if before is zero), lowest ID first, and in one transaction enqueues the messages route returns
	// for each (EnqueueOutbox semantics: a message whose Key is stored
	// already is skipped) and marks the events published. Concurrent
	// callers, from any number of instances, take disjoint events: no
	// event is routed by two committed calls. An event inserted by a
	// transaction that commits later than events with higher IDs is
	// still taken, by a later call. route must only compute (it runs
	// inside the store's transaction, perhaps more than once); an error
	// from it aborts the call, publishing nothing. A nil route marks the
	// events published without reading them. It returns how many events
	// it published.
	PublishEvents(ctx context.Context, before time.Time, limit int, route func(Event) ([]OutboxMessage, error)) (int, error)
}
