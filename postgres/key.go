package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/latchauth/latch"
)

// Keys returns every stored key, ordered by NotBefore, then CreatedAt, then
// ID.
func (s *Store) Keys(ctx context.Context) ([]latch.SigningKey, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, algorithm, private_key, public_key, created_at, not_before, not_after
		FROM signing_keys ORDER BY not_before, created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("postgres: keys: %w", err)
	}
	defer rows.Close()
	var list []latch.SigningKey
	for rows.Next() {
		var k latch.SigningKey
		if err := rows.Scan(&k.ID, &k.Algorithm, &k.Private, &k.Public,
			(*nullTime)(&k.CreatedAt), (*nullTime)(&k.NotBefore), (*nullTime)(&k.NotAfter)); err != nil {
			return nil, fmt.Errorf("postgres: keys: %w", err)
		}
		list = append(list, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: keys: %w", err)
	}
	return list, nil
}

// lockRingSQL takes the ring lock, keyed on the signing_keys table.
const lockRingSQL = "SELECT pg_advisory_xact_lock($1, 'signing_keys'::regclass::oid::int4)"

// RotateKeys applies r in one transaction: if r.Previous is the newest key
// (by NotBefore, then CreatedAt, then ID), or r.Previous is empty and the
// ring is empty, it sets the previous key's NotAfter to r.PreviousNotAfter
// and stores r.New. Otherwise it returns an error matching
// latch.ErrConflict and changes nothing; so does a New key whose ID exists.
//
// The transaction first takes an advisory lock on the ring, held until it
// ends: concurrent rotations, from any instance, run one after the other,
// and each sees the keys its predecessors committed. A row lock on the
// newest key would not do, since an empty ring has no row to lock.
func (s *Store) RotateKeys(ctx context.Context, r latch.KeyRotation) error {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, lockRingSQL, lockRing); err != nil {
			return err
		}
		var newest string
		err := tx.QueryRow(ctx,
			"SELECT id FROM signing_keys ORDER BY not_before DESC, created_at DESC, id DESC LIMIT 1").Scan(&newest)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if newest != r.Previous {
			if newest == "" {
				return fmt.Errorf("%w: the ring is empty, not at %s", latch.ErrConflict, r.Previous)
			}
			return fmt.Errorf("%w: the newest key is %s", latch.ErrConflict, newest)
		}
		if r.Previous != "" {
			if _, err := tx.Exec(ctx, "UPDATE signing_keys SET not_after = $1 WHERE id = $2",
				ts(r.PreviousNotAfter), r.Previous); err != nil {
				return err
			}
		}
		k := r.New
		_, err = tx.Exec(ctx, `INSERT INTO signing_keys
			(id, algorithm, private_key, public_key, created_at, not_before, not_after)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			k.ID, k.Algorithm, k.Private, k.Public, ts(k.CreatedAt), ts(k.NotBefore), ts(k.NotAfter))
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: rotate keys from %q to %s: %w", r.Previous, r.New.ID, translate(err))
	}
	return nil
}
