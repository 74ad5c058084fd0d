package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/latchauth/latch"
)

// Keys returns every stored key, ordered by NotBefore, then CreatedAt, then
// ID.
func (s *Store) Keys(ctx context.Context) ([]latch.SigningKey, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, algorithm, private_key, public_key, created_at, not_before, not_after
		FROM signing_keys ORDER BY not_before, created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: keys: %w", err)
	}
	defer rows.Close()
	var list []latch.SigningKey
	for rows.Next() {
		var k latch.SigningKey
		if err := rows.Scan(&k.ID, &k.Algorithm, &k.Private, &k.Public,
			scanTime(&k.CreatedAt), scanTime(&k.NotBefore), scanTime(&k.NotAfter)); err != nil {
			return nil, fmt.Errorf("sqlite: keys: %w", err)
		}
		list = append(list, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: keys: %w", err)
	}
	return list, nil
}

// RotateKeys applies r in one transaction: if r.Previous is the newest key
// (by NotBefore, then CreatedAt, then ID), or r.Previous is empty and the
// ring is empty, it sets the previous key's NotAfter to r.PreviousNotAfter
// and stores r.New. Otherwise it returns an error matching
// latch.ErrConflict and changes nothing; so does a New key whose ID exists.
func (s *Store) RotateKeys(ctx context.Context, r latch.KeyRotation) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var newest string
		err := tx.QueryRowContext(ctx,
			"SELECT id FROM signing_keys ORDER BY not_before DESC, created_at DESC, id DESC LIMIT 1").Scan(&newest)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if newest != r.Previous {
			if newest == "" {
				return fmt.Errorf("%w: the ring is empty, not at %s", latch.ErrConflict, r.Previous)
			}
			return fmt.Errorf("%w: the newest key is %s", latch.ErrConflict, newest)
		}
		if r.Previous != "" {
			_, err := tx.ExecContext(ctx, "UPDATE signing_keys SET not_after = ? WHERE id = ?",
				micros(r.PreviousNotAfter), r.Previous)
			if err != nil {
				return err
			}
		}
		k := r.New
		_, err = tx.ExecContext(ctx, `INSERT INTO signing_keys
			(id, algorithm, private_key, public_key, created_at, not_before, not_after)
			VALUES (?, ?, ?, ?, ?, ?, ?)`,
			k.ID, k.Algorithm, k.Private, k.Public, micros(k.CreatedAt), micros(k.NotBefore), micros(k.NotAfter))
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: rotate keys from %q to %s: %w", r.Previous, r.New.ID, translate(err))
	}
	return nil
}
