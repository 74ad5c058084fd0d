package postgres

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/latchauth/latch"
)

// clientColumns lists the columns that scanClient reads, in order.
const clientColumns = `id, secret_hash, scopes, audience, delivery, permissions,
	redirect_uris, post_logout_redirect_uris, backchannel_logout_uri, first_party, id_token_alg, created_at, name`

// CreateClient stores c. It returns an error matching latch.ErrConflict if
// the id is taken. Scopes are stored as a text array, in order.
func (s *Store) CreateClient(ctx context.Context, c *latch.Client) error {
	scopes, perms := c.Scopes, c.Permissions
	if scopes == nil {
		scopes = []string{} // nil would be NULL
	}
	if perms == nil {
		perms = []string{}
	}
	_, err := s.pool.Exec(ctx,
		"INSERT INTO clients ("+clientColumns+") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
		c.ID, c.SecretHash, scopes, c.Audience, delivery(c.Delivery), perms,
		list(c.RedirectURIs), list(c.PostLogoutRedirectURIs), c.BackchannelLogoutURI, c.FirstParty, c.IDTokenSignedResponseAlg,
		ts(c.CreatedAt), c.Name)
	if err != nil {
		return fmt.Errorf("postgres: create client %s: %w", c.ID, translate(err))
	}
	return nil
}

// Client returns the client with the id, or an error matching
// latch.ErrNotFound.
func (s *Store) Client(ctx context.Context, id string) (*latch.Client, error) {
	if !utf8.ValidString(id) || strings.ContainsRune(id, 0) {
		// A client id from a form or a Basic header can be any bytes;
		// PostgreSQL refuses these in text, and no client has them.
		return nil, fmt.Errorf("postgres: client %q: %w", id, latch.ErrNotFound)
	}
	c, err := scanClient(s.pool.QueryRow(ctx, "SELECT "+clientColumns+" FROM clients WHERE id = $1", id))
	if err != nil {
		return nil, fmt.Errorf("postgres: client %s: %w", id, translate(err))
	}
	return c, nil
}

// Clients returns every client ordered by id.
func (s *Store) Clients(ctx context.Context) ([]*latch.Client, error) {
	rows, err := s.pool.Query(ctx, "SELECT "+clientColumns+" FROM clients ORDER BY id")
	if err != nil {
		return nil, fmt.Errorf("postgres: clients: %w", err)
	}
	defer rows.Close()
	var out []*latch.Client
	for rows.Next() {
		c, err := scanClient(rows)
		if err != nil {
			return nil, fmt.Errorf("postgres: clients: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: clients: %w", err)
	}
	return out, nil
}

// scanClient scans a row of clientColumns. No scopes (permissions) come
// back as nil.
func scanClient(row pgx.Row) (*latch.Client, error) {
	var c latch.Client
	if err := row.Scan(&c.ID, &c.SecretHash, &c.Scopes, &c.Audience, &c.Delivery, &c.Permissions,
		&c.RedirectURIs, &c.PostLogoutRedirectURIs, &c.BackchannelLogoutURI, &c.FirstParty, &c.IDTokenSignedResponseAlg,
		(*nullTime)(&c.CreatedAt), &c.Name); err != nil {
		return nil, err
	}
	c.RedirectURIs, c.PostLogoutRedirectURIs = nilIfNone(c.RedirectURIs), nilIfNone(c.PostLogoutRedirectURIs)
	if len(c.Scopes) == 0 {
		c.Scopes = nil
	}
	if len(c.Permissions) == 0 {
		c.Permissions = nil
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

// list returns l for a NOT NULL text[] column: nil as an empty array.
func list(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

// nilIfNone returns nil for an empty list read from a text[] column.
func nilIfNone(l []string) []string {
	if len(l) == 0 {
		return nil
	}
	return l
}

// UpdateClient replaces the settings of a stored client. See
// latch.ClientStore.
func (s *Store) UpdateClient(ctx context.Context, c *latch.Client) error {
	scopes, perms := c.Scopes, c.Permissions
	if scopes == nil {
		scopes = []string{}
	}
	if perms == nil {
		perms = []string{}
	}
	tag, err := s.pool.Exec(ctx, `UPDATE clients SET scopes = $1, audience = $2, delivery = $3, permissions = $4,
		redirect_uris = $5, post_logout_redirect_uris = $6, backchannel_logout_uri = $7, first_party = $8, id_token_alg = $9, name = $10
		WHERE id = $11`,
		scopes, c.Audience, delivery(c.Delivery), perms,
		list(c.RedirectURIs), list(c.PostLogoutRedirectURIs), c.BackchannelLogoutURI, c.FirstParty, c.IDTokenSignedResponseAlg,
		c.Name, c.ID)
	if err == nil && tag.RowsAffected() == 0 {
		err = latch.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("postgres: update client %s: %w", c.ID, err)
	}
	return nil
}

// SetClientSecret replaces the secret hash of a stored client. See
// latch.ClientStore.
func (s *Store) SetClientSecret(ctx context.Context, id, secretHash string) error {
	tag, err := s.pool.Exec(ctx, "UPDATE clients SET secret_hash = $1 WHERE id = $2", secretHash, id)
	if err == nil && tag.RowsAffected() == 0 {
		err = latch.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("postgres: set the secret of client %s: %w", id, err)
	}
	return nil
}

// DeleteClient deletes a client and the consents to it. See
// latch.ClientStore.
func (s *Store) DeleteClient(ctx context.Context, id string) error {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "DELETE FROM consents WHERE client_id = $1", id); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, "DELETE FROM clients WHERE id = $1", id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return latch.ErrNotFound
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("postgres: delete client %s: %w", id, err)
	}
	return nil
}
