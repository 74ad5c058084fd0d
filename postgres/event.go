package postgres

import (
	"context"
	"encoding/json"
	"fmt"

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
