package latch

import (
	"context"
	"time"
)

// UserQuery selects a page of users for the admin console.
type UserQuery struct {
	// Search, if not empty, keeps the users whose email starts with it
	// (compared in the canonical, lower-case form) or whose ID is it.
	Search string
	// After is the keyset cursor: the Email of the last user of the
	// previous page; users come in ascending Email order.
	After string
	// Limit bounds the page; zero or less returns no users.
	Limit int
}

// EventFilter selects a page of the security log for the admin console,
// newest first.
type EventFilter struct {
	// Types keeps only these event types; empty for every type.
	Types []string
	// UserID and IP, if not empty, keep only events with exactly that
	// user or client address.
	UserID string
	IP     string
	// From (inclusive) and To (exclusive) bound At; zero for no bound.
	From, To time.Time
	// Before is the keyset cursor: only events whose ID is below it
	// (the ID of the last event of the previous page); 0 for the newest.
	Before int64
	// Limit bounds the page; zero or less returns no events.
	Limit int
}

// Count is a number of events of one type in one time bucket.
type Count struct {
	Type string
	// Bucket is the start of the bucket (At truncated to the bucket
	// size, UTC).
	Bucket time.Time
	N      int
}

// ConsoleStore answers the admin console's lists and counts with indexed
// queries, so that they stay fast at 100 000 users and 1 000 000 events.
type ConsoleStore interface {
	// SearchUsers returns a page of users matching q, by ascending Email.
	SearchUsers(ctx context.Context, q UserQuery) ([]User, error)
	// CountUsers returns how many users exist.
	CountUsers(ctx context.Context) (int, error)
	// FilterEvents returns a page of events matching f, newest (highest
	// ID) first.
	FilterEvents(ctx context.Context, f EventFilter) ([]Event, error)
	// CountEvents counts the events of the types at or after since, per
	// type and per bucket of the given size (a minute, an hour), for the
	// console's charts. Buckets without events are left out.
	CountEvents(ctx context.Context, types []string, since time.Time, bucket time.Duration) ([]Count, error)
	// CountLiveSessions returns how many sessions are neither revoked nor
	// expired at now.
	CountLiveSessions(ctx context.Context, now time.Time) (int, error)
}
