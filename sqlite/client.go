package sqlite

import (
	"context"
	"fmt"
	"strings"

	"github.com/latchauth/latch"
)

// CreateClient stores c. It returns an error matching latch.ErrConflict if
// the id is taken.
func (s *Store) CreateClient(ctx context.Context, c *latch.Client) error {
	_, err := s.w.ExecContext(ctx,
		"INSERT INTO clients (id, secret_hash, scopes, audience, delivery, permissions, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
		c.ID, c.SecretHash, strings.Join(c.Scopes, " "), c.Audience, delivery(c.Delivery), strings.Join(c.Permissions, " "), micros(c.CreatedAt))
	if err != nil {
		return fmt.Errorf("sqlite: create client %s: %w", c.ID, translate(err))
	}
	return nil
}

// Client returns the client with the id, or an error matching
// latch.ErrNotFound.
func (s *Store) Client(ctx context.Context, id string) (*latch.Client, error) {
	c, err := scanClient(s.db.QueryRowContext(ctx,
		"SELECT id, secret_hash, scopes, audience, delivery, permissions, created_at FROM clients WHERE id = ?", id))
	if err != nil {
		return nil, fmt.Errorf("sqlite: client %s: %w", id, translate(err))
	}
	return c, nil
}

// Clients returns every client ordered by id.
func (s *Store) Clients(ctx context.Context) ([]*latch.Client, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT id, secret_hash, scopes, audience, delivery, permissions, created_at FROM clients ORDER BY id")
	if err != nil {
		return nil, fmt.Errorf("sqlite: clients: %w", err)
	}
	defer rows.Close()
	var out []*latch.Client
	for rows.Next() {
		c, err := scanClient(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: clients: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: clients: %w", err)
	}
	return out, nil
}

func scanClient(row interface{ Scan(...any) error }) (*latch.Client, error) {
	var c latch.Client
	var scopes, perms string
	if err := row.Scan(&c.ID, &c.SecretHash, &scopes, &c.Audience, &c.Delivery, &perms, scanTime(&c.CreatedAt)); err != nil {
		return nil, err
	}
	c.Scopes = strings.Fields(scopes)
	if perms != "" {
		c.Permissions = strings.Fields(perms)
	}
	return &c, nil
}

// delivery stores the empty mode as the bearer one it stands for.
func delivery(d string) string {
	if d == "" {
		return latch.DeliveryBearer
	}
	return d
}
