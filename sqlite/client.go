package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/latchauth/latch"
)

// CreateClient stores c. It returns an error matching latch.ErrConflict if
// the id is taken.
func (s *Store) CreateClient(ctx context.Context, c *latch.Client) error {
	_, err := s.w.ExecContext(ctx,
		"INSERT INTO clients ("+clientColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
		c.ID, c.SecretHash, strings.Join(c.Scopes, " "), c.Audience, delivery(c.Delivery), strings.Join(c.Permissions, " "),
		jsonList(c.RedirectURIs), jsonList(c.PostLogoutRedirectURIs), c.BackchannelLogoutURI, c.FirstParty, c.IDTokenSignedResponseAlg,
		micros(c.CreatedAt), c.Name)
	if err != nil {
		return fmt.Errorf("sqlite: create client %s: %w", c.ID, translate(err))
	}
	return nil
}

// Client returns the client with the id, or an error matching
// latch.ErrNotFound.
func (s *Store) Client(ctx context.Context, id string) (*latch.Client, error) {
	c, err := scanClient(s.db.QueryRowContext(ctx,
		"SELECT "+clientColumns+" FROM clients WHERE id = ?", id))
	if err != nil {
		return nil, fmt.Errorf("sqlite: client %s: %w", id, translate(err))
	}
	return c, nil
}

// Clients returns every client ordered by id.
func (s *Store) Clients(ctx context.Context) ([]*latch.Client, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT "+clientColumns+" FROM clients ORDER BY id")
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

// clientColumns lists the columns that scanClient reads, in order.
const clientColumns = `id, secret_hash, scopes, audience, delivery, permissions,
	redirect_uris, post_logout_redirect_uris, backchannel_logout_uri, first_party, id_token_alg, created_at, name`

// scanClient scans a row of clientColumns.
func scanClient(row interface{ Scan(...any) error }) (*latch.Client, error) {
	var c latch.Client
	var scopes, perms string
	if err := row.Scan(&c.ID, &c.SecretHash, &scopes, &c.Audience, &c.Delivery, &perms,
		scanList(&c.RedirectURIs), scanList(&c.PostLogoutRedirectURIs), &c.BackchannelLogoutURI, &c.FirstParty, &c.IDTokenSignedResponseAlg,
		scanTime(&c.CreatedAt), &c.Name); err != nil {
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

// jsonList encodes a list of strings for a JSON array column; nil as [].
func jsonList(l []string) string {
	if len(l) == 0 {
		return "[]"
	}
	b, err := json.Marshal(l)
	if err != nil {
		panic(err) // strings always encode
	}
	return string(b)
}

// listScanner scans a JSON array column written by jsonList; an empty
// array as nil.
type listScanner struct{ l *[]string }

// scanList returns a sql.Scanner that stores the scanned list in *l.
func scanList(l *[]string) listScanner { return listScanner{l} }

// Scan implements sql.Scanner.
func (s listScanner) Scan(v any) error {
	var b []byte
	switch v := v.(type) {
	case string:
		b = []byte(v)
	case []byte:
		b = v
	default:
		return fmt.Errorf("list column holds %T, want text", v)
	}
	var l []string
	if err := json.Unmarshal(b, &l); err != nil {
		return fmt.Errorf("list column: %w", err)
	}
	if len(l) == 0 {
		l = nil
	}
	*s.l = l
	return nil
}

// UpdateClient replaces the settings of a stored client. See
// latch.ClientStore.
func (s *Store) UpdateClient(ctx context.Context, c *latch.Client) error {
	res, err := s.w.ExecContext(ctx, `UPDATE clients SET scopes = ?, audience = ?, delivery = ?, permissions = ?,
		redirect_uris = ?, post_logout_redirect_uris = ?, backchannel_logout_uri = ?, first_party = ?, id_token_alg = ?, name = ?
		WHERE id = ?`,
		strings.Join(c.Scopes, " "), c.Audience, delivery(c.Delivery), strings.Join(c.Permissions, " "),
		jsonList(c.RedirectURIs), jsonList(c.PostLogoutRedirectURIs), c.BackchannelLogoutURI, c.FirstParty, c.IDTokenSignedResponseAlg,
		c.Name, c.ID)
	if err == nil {
		err = mustAffect(res)
	}
	if err != nil {
		return fmt.Errorf("sqlite: update client %s: %w", c.ID, err)
	}
	return nil
}

// SetClientSecret replaces the secret hash of a stored client. See
// latch.ClientStore.
func (s *Store) SetClientSecret(ctx context.Context, id, secretHash string) error {
	res, err := s.w.ExecContext(ctx, "UPDATE clients SET secret_hash = ? WHERE id = ?", secretHash, id)
	if err == nil {
		err = mustAffect(res)
	}
	if err != nil {
		return fmt.Errorf("sqlite: set the secret of client %s: %w", id, err)
	}
	return nil
}

// DeleteClient deletes a client and the consents to it. See
// latch.ClientStore.
func (s *Store) DeleteClient(ctx context.Context, id string) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "DELETE FROM consents WHERE client_id = ?", id); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, "DELETE FROM clients WHERE id = ?", id)
		if err != nil {
			return err
		}
		return mustAffect(res)
	})
	if err != nil {
		return fmt.Errorf("sqlite: delete client %s: %w", id, err)
	}
	return nil
}
