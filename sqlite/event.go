package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"

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
