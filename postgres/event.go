package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/latchauth/latch"
)

// AddEvent appends e to the security log and sets e.ID. Detail is stored as
// a jsonb object; an empty Detail is stored as NULL and read back as nil.
func (s *Store) AddEvent(ctx context.Context, e *latch.Event) error {
	var detail *string
	if len(e.Detail) > 0 {
		b, err := json.Marshal(e.Detail)
		if err != nil {
			return fmt.Errorf("postgres: add event %s: %w", e.Type, err)
		}
		d := string(b)
		detail = &d
	}
	err := s.pool.QueryRow(ctx, `INSERT INTO events
		(type, at, user_id, session_id, client_id, ip, user_agent, detail)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8::text::jsonb) RETURNING id`,
		e.Type, ts(e.At), e.UserID, e.SessionID, e.ClientID, e.IP, e.UserAgent, detail).Scan(&e.ID)
	if err != nil {
		return fmt.Errorf("postgres: add event %s: %w", e.Type, err)
	}
	return nil
}

// EventsByUser returns up to limit of a user's events, newest (by At, then
// ID) first. A limit of zero or less returns no events.
func (s *Store) EventsByUser(ctx context.Context, userID string, limit int) ([]latch.Event, error) {
	if limit <= 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT id, type, at, user_id, session_id, client_id, ip, user_agent, detail::text
		FROM events WHERE user_id = $1 ORDER BY at DESC, id DESC LIMIT $2`, userID, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: events of user %s: %w", userID, err)
	}
	defer rows.Close()
	var list []latch.Event
	for rows.Next() {
		var e latch.Event
		var detail *string
		if err := rows.Scan(&e.ID, &e.Type, (*nullTime)(&e.At), &e.UserID, &e.SessionID,
			&e.ClientID, &e.IP, &e.UserAgent, &detail); err != nil {
			return nil, fmt.Errorf("postgres: events of user %s: %w", userID, err)
		}
		if detail != nil {
			if err := json.Unmarshal([]byte(*detail), &e.Detail); err != nil {
				return nil, fmt.Errorf("postgres: events of user %s: detail of event %d: %w", userID, e.ID, err)
			}
		}
		list = append(list, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: events of user %s: %w", userID, err)
	}
	return list, nil
}

// Events returns up to q.Limit events matching q, by ascending ID.
func (s *Store) Events(ctx context.Context, q latch.EventQuery) ([]latch.Event, error) {
	if q.Limit <= 0 {
		return nil, nil
	}
	types := q.Types
	if types == nil {
		types = []string{}
	}
	rows, err := s.pool.Query(ctx, `SELECT id, type, at, user_id, session_id, client_id, ip, user_agent, detail::text
		FROM events
		WHERE id > $1 AND ($2::timestamptz IS NULL OR at >= $2) AND (cardinality($3::text[]) = 0 OR type = ANY($3))
		ORDER BY id LIMIT $4`, q.AfterID, ts(q.Since), types, q.Limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: events: %w", err)
	}
	defer rows.Close()
	var list []latch.Event
	for rows.Next() {
		var e latch.Event
		var detail *string
		if err := rows.Scan(&e.ID, &e.Type, (*nullTime)(&e.At), &e.UserID, &e.SessionID,
			&e.ClientID, &e.IP, &e.UserAgent, &detail); err != nil {
			return nil, fmt.Errorf("postgres: events: %w", err)
		}
		if detail != nil {
			if err := json.Unmarshal([]byte(*detail), &e.Detail); err != nil {
				return nil, fmt.Errorf("postgres: events: detail of event %d: %w", e.ID, err)
			}
		}
		list = append(list, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: events: %w", err)
	}
	return list, nil
}

// PublishEvents publishes up to limit unpublished events; see
// latch.EventRelayStore. The events are locked with FOR UPDATE SKIP
// LOCKED, so that concurrent relays, in any number of instances, take
// disjoint events without waiting on each other; the flag, not a cursor
// on the id, says what is left, so an event whose transaction commits
// after one with a higher id is taken by a later call rather than
// skipped. A read comes first, so that polling with nothing new costs one
// probe of the partial index events_unpublished and no transaction.
func (s *Store) PublishEvents(ctx context.Context, before time.Time, limit int,
	route func(latch.Event) ([]latch.OutboxMessage, error)) (int, error) {
	if limit <= 0 {
		return 0, nil
	}
	b := ts(before)
	var pending bool
	if err := s.pool.QueryRow(ctx, relayProbe, b).Scan(&pending); err != nil {
		return 0, fmt.Errorf("postgres: publish events: %w", err)
	}
	if !pending {
		return 0, nil
	}
	var n int
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		n = 0
		if route == nil {
			tag, err := tx.Exec(ctx, relaySweep, b, limit)
			n = int(tag.RowsAffected())
			return err
		}
		rows, err := tx.Query(ctx, relaySelect, b, limit)
		if err != nil {
			return err
		}
		list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (latch.Event, error) { return scanEvent(row) })
		if err != nil {
			return err
		}
		ids := make([]int64, 0, len(list))
		for _, e := range list {
			msgs, err := route(e)
			if err != nil {
				return fmt.Errorf("route event %d: %w", e.ID, err)
			}
			for _, m := range msgs {
				if err := enqueue(ctx, tx, &m); err != nil {
					return fmt.Errorf("enqueue %s for event %d: %w", m.Key, e.ID, err)
				}
			}
			ids = append(ids, e.ID)
		}
		if _, err := tx.Exec(ctx, "UPDATE events SET published = true WHERE id = ANY($1)", ids); err != nil {
			return err
		}
		n = len(list)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: publish events: %w", err)
	}
	return n, nil
}

// The relay's statements, which read the partial index events_unpublished
// (TestRelayUsesItsIndex).
const (
	relayProbe = `SELECT EXISTS (SELECT 1 FROM events
		WHERE NOT published AND ($1::timestamptz IS NULL OR at < $1))`
	relaySweep = `UPDATE events SET published = true WHERE id IN
		(SELECT id FROM events WHERE NOT published AND ($1::timestamptz IS NULL OR at < $1)
		ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED)`
	relaySelect = `SELECT ` + eventColumns + ` FROM events
		WHERE NOT published AND ($1::timestamptz IS NULL OR at < $1)
		ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED`
)

// eventColumns lists the columns that scanEvent reads, in order.
const eventColumns = `id, type, at, user_id, session_id, client_id, ip, user_agent, detail::text`

// scanEvent scans a row of eventColumns.
func scanEvent(row pgx.Row) (latch.Event, error) {
	var e latch.Event
	var detail *string
	if err := row.Scan(&e.ID, &e.Type, (*nullTime)(&e.At), &e.UserID, &e.SessionID,
		&e.ClientID, &e.IP, &e.UserAgent, &detail); err != nil {
		return e, err
	}
	if detail != nil {
		if err := json.Unmarshal([]byte(*detail), &e.Detail); err != nil {
			return e, fmt.Errorf("detail of event %d: %w", e.ID, err)
		}
	}
	return e, nil
}
