package admin

import (
	"context"
	"fmt"

	"github.com/latchauth/latch"
)

// Events reads the security log for the console: filtered pages, newest
// first, by keyset (ConsoleStore.FilterEvents).
type Events struct {
	store latch.ConsoleStore
}

// NewEvents returns Events.
func NewEvents(st latch.ConsoleStore) *Events { return &Events{store: st} }

// Page returns a page of events matching f (f.Limit clamped by Page) and
// the cursor of the next page (0 on the last).
func (e *Events) Page(ctx context.Context, f latch.EventFilter) ([]latch.Event, int64, error) {
	limit := Page(f.Limit)
	f.Limit = limit + 1
	list, err := e.store.FilterEvents(ctx, f)
	if err != nil {
		return nil, 0, fmt.Errorf("admin: filter events: %w", err)
	}
	var next int64
	if len(list) > limit {
		list = list[:limit]
		next = list[limit-1].ID
	}
	return list, next, nil
}

// Each calls fn with every event matching f (f.Before, f.Limit ignored),
// newest first, a page at a time, for an export; it stops at fn's first
// error.
func (e *Events) Each(ctx context.Context, f latch.EventFilter, fn func(latch.Event) error) error {
	f.Before = 0
	for {
		f.Limit = 500
		list, err := e.store.FilterEvents(ctx, f)
		if err != nil {
			return fmt.Errorf("admin: filter events: %w", err)
		}
		for _, ev := range list {
			if err := fn(ev); err != nil {
				return err
			}
		}
		if len(list) < f.Limit {
			return nil
		}
		f.Before = list[len(list)-1].ID
	}
}
