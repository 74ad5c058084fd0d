package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/latchauth/latch"
)

// AddEvent appends e to the security log and sets e.ID. Detail is stored as
// a JSON object; an empty Detail is stored as NULL and read back as nil.
func (s *Store) AddEvent(ctx context.Context, e *latch.Event) error {
	var detail sql.NullString
	if len(e.Detail) > 0 {
		b, err := json.Marshal(e.Detail)
		if err != nil {
			return fmt.Errorf("sqlite: add event %s: %w", e.Type, err)
		}
		detail = sql.NullString{String: string(b), Valid: true}
	}
	err := s.w.QueryRowContext(ctx, `INSERT INTO events
		(type, at, user_id, session_id, client_id, ip, user_agent, detail)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		e.Type, micros(e.At), e.UserID, e.SessionID, e.ClientID, e.IP, e.UserAgent, detail).Scan(&e.ID)
	if err != nil {
		return fmt.Errorf("sqlite: add event %s: %w", e.Type, err)
	}
	return nil
}

// EventsByUser returns up to limit of a user's events, newest (by At, then
// ID) first. A limit of zero or less returns no events.
func (s *Store) EventsByUser(ctx context.Context, userID string, limit int) ([]latch.Event, error) {
	if limit <= 0 {
		return nil, nil
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id, type, at, user_id, session_id, client_id, ip, user_agent, detail
		FROM events WHERE user_id = ? ORDER BY at DESC, id DESC LIMIT ?`, userID, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: events of user %s: %w", userID, err)
	}
	defer rows.Close()
	var list []latch.Event
	for rows.Next() {
		var e latch.Event
		var detail sql.NullString
		if err := rows.Scan(&e.ID, &e.Type, scanTime(&e.At), &e.UserID, &e.SessionID,
			&e.ClientID, &e.IP, &e.UserAgent, &detail); err != nil {
			return nil, fmt.Errorf("sqlite: events of user %s: %w", userID, err)
		}
		if detail.Valid {
			if err := json.Unmarshal([]byte(detail.String), &e.Detail); err != nil {
				return nil, fmt.Errorf("sqlite: events of user %s: detail of event %d: %w", userID, e.ID, err)
			}
		}
		list = append(list, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: events of user %s: %w", userID, err)
	}
	return list, nil
}

// Events returns up to q.Limit events matching q, by ascending ID.
func (s *Store) Events(ctx context.Context, q latch.EventQuery) ([]latch.Event, error) {
	if q.Limit <= 0 {
		return nil, nil
	}
	where := []string{"id > ?"}
	args := []any{q.AfterID}
	if !q.Since.IsZero() {
		where = append(where, "at >= ?")
		args = append(args, micros(q.Since))
	}
	if len(q.Types) > 0 {
		where = append(where, "type IN (?"+strings.Repeat(", ?", len(q.Types)-1)+")")
		for _, t := range q.Types {
			args = append(args, t)
		}
	}
	args = append(args, q.Limit)
	rows, err := s.db.QueryContext(ctx, `SELECT id, type, at, user_id, session_id, client_id, ip, user_agent, detail
		FROM events WHERE `+strings.Join(where, " AND ")+` ORDER BY id LIMIT ?`, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: events: %w", err)
	}
	defer rows.Close()
	var list []latch.Event
	for rows.Next() {
		var e latch.Event
		var detail sql.NullString
		if err := rows.Scan(&e.ID, &e.Type, scanTime(&e.At), &e.UserID, &e.SessionID,
			&e.ClientID, &e.IP, &e.UserAgent, &detail); err != nil {
			return nil, fmt.Errorf("sqlite: events: %w", err)
		}
		if detail.Valid {
			if err := json.Unmarshal([]byte(detail.String), &e.Detail); err != nil {
				return nil, fmt.Errorf("sqlite: events: detail of event %d: %w", e.ID, err)
			}
		}
		list = append(list, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: events: %w", err)
	}
	return list, nil
}

// PublishEvents publishes up to limit unpublished events; see
// latch.EventRelayStore. A read on the pooled connections comes first, so
// that a relay polling an outbox with nothing new never queues on the
// writer. Within the write transaction the single writer makes concurrent
// callers, also of other processes (BEGIN IMMEDIATE), take turns: each
// sees what the ones before it marked.
func (s *Store) PublishEvents(ctx context.Context, before time.Time, limit int,
	route func(latch.Event) ([]latch.OutboxMessage, error)) (int, error) {
	if limit <= 0 {
		return 0, nil
	}
	b := int64(math.MaxInt64)
	if !before.IsZero() {
		b = micros(before)
	}
	var one int
	err := s.db.QueryRowContext(ctx, relayProbe, b).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("sqlite: publish events: %w", err)
	}
	var n int
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		n = 0
		if route == nil {
			res, err := tx.ExecContext(ctx, relaySweep, b, limit)
			if err != nil {
				return err
			}
			m, err := res.RowsAffected()
			n = int(m)
			return err
		}
		rows, err := tx.QueryContext(ctx, relaySelect, b, limit)
		if err != nil {
			return err
		}
		var list []latch.Event
		for rows.Next() {
			e, err := scanEvent(rows)
			if err != nil {
				rows.Close()
				return err
			}
			list = append(list, e)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
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
			if _, err := tx.ExecContext(ctx, "UPDATE events SET published = 1 WHERE id = ?", e.ID); err != nil {
				return err
			}
		}
		n = len(list)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: publish events: %w", err)
	}
	return n, nil
}

// The relay's statements. INDEXED BY holds SQLite to the partial index of
// unpublished events: without statistics it would rather range over
// events_at, which holds every event (TestRelayUsesItsIndex).
const (
	relayProbe = "SELECT 1 FROM events INDEXED BY events_unpublished WHERE published = 0 AND at < ? LIMIT 1"
	relaySweep = `UPDATE events SET published = 1 WHERE id IN (SELECT id FROM events INDEXED BY events_unpublished
		WHERE published = 0 AND at < ? ORDER BY id LIMIT ?)`
	relaySelect = `SELECT ` + eventColumns + ` FROM events INDEXED BY events_unpublished
		WHERE published = 0 AND at < ? ORDER BY id LIMIT ?`
)

// eventColumns lists the columns that scanEvent reads, in order.
const eventColumns = `id, type, at, user_id, session_id, client_id, ip, user_agent, detail`

// scanEvent scans a row of eventColumns.
func scanEvent(row interface{ Scan(...any) error }) (latch.Event, error) {
	var e latch.Event
	var detail sql.NullString
	if err := row.Scan(&e.ID, &e.Type, scanTime(&e.At), &e.UserID, &e.SessionID,
		&e.ClientID, &e.IP, &e.UserAgent, &detail); err != nil {
		return e, err
	}
	if detail.Valid {
		if err := json.Unmarshal([]byte(detail.String), &e.Detail); err != nil {
			return e, fmt.Errorf("detail of event %d: %w", e.ID, err)
		}
	}
	return e, nil
}
