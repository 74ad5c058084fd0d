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
	rows, err := s.pool.Query(ctx, `SELECT id, algorithm, family, private_key, public_key, created_at, not_before, not_after, revoked_at
		FROM signing_keys ORDER BY not_before, created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("postgres: keys: %w", err)
	}
	defer rows.Close()
	var list []latch.SigningKey
	for rows.Next() {
		var k latch.SigningKey
		if err := rows.Scan(&k.ID, &k.Algorithm, &k.Family, &k.Private, &k.Public,
			(*nullTime)(&k.CreatedAt), (*nullTime)(&k.NotBefore), (*nullTime)(&k.NotAfter), (*nullTime)(&k.RevokedAt)); err != nil {
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
// of r.New.Family that is not revoked (by NotBefore, then CreatedAt, then
// ID), or r.Previous is empty and every key of the family is revoked or
// none exists, it sets the
// previous key's NotAfter to r.PreviousNotAfter (and, with
// r.SupersedePrevious, marks it revoked), stores r.New and moves the ring
// version. Otherwise it returns an error matching latch.ErrConflict and
// changes nothing; so does a New key whose ID exists.
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
		if err := rotateKeys(ctx, tx, r); err != nil {
			return err
		}
		return bumpRing(ctx, tx)
	})
	if err != nil {
		return fmt.Errorf("postgres: rotate keys from %q to %s: %w", r.Previous, r.New.ID, translate(err))
	}
	return nil
}

// rotateKeys applies r inside tx, which must hold the ring lock.
func rotateKeys(ctx context.Context, tx pgx.Tx, r latch.KeyRotation) error {
	if r.New.Family == "" {
		return errors.New("the new key has no family")
	}
	var newest string
	err := tx.QueryRow(ctx, `SELECT id FROM signing_keys WHERE family = $1 AND revoked_at IS NULL
		ORDER BY not_before DESC, created_at DESC, id DESC LIMIT 1`, r.New.Family).Scan(&newest)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return err
	}
	if newest != r.Previous {
		if newest == "" {
			return fmt.Errorf("%w: family %s has no key that is not revoked, not %s", latch.ErrConflict, r.New.Family, r.Previous)
		}
		return fmt.Errorf("%w: the newest key of family %s is %s", latch.ErrConflict, r.New.Family, newest)
	}
	if r.Previous != "" {
		var revokedAt any // NULL
		if r.SupersedePrevious {
			if r.New.CreatedAt.IsZero() {
				return errors.New("superseding a key needs the new key's CreatedAt")
			}
			revokedAt = ts(r.New.CreatedAt)
		}
		if _, err := tx.Exec(ctx, "UPDATE signing_keys SET not_after = $1, revoked_at = $2 WHERE id = $3",
			ts(r.PreviousNotAfter), revokedAt, r.Previous); err != nil {
			return err
		}
	}
	k := r.New
	_, err = tx.Exec(ctx, `INSERT INTO signing_keys
		(id, algorithm, family, private_key, public_key, created_at, not_before, not_after, revoked_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		k.ID, k.Algorithm, k.Family, k.Private, k.Public, ts(k.CreatedAt), ts(k.NotBefore), ts(k.NotAfter), ts(k.RevokedAt))
	return err
}

// RevokeKey applies r in one transaction: r.Rotation if set (failing as
// RotateKeys does), then marks the key revoked at r.At unless it was
// revoked before, gives it NotAfter r.Expiry if it had none (so that Prune
// deletes it once nothing can refer to it), appends a latch.RevokeKey entry
// to the revocation feed and moves the ring version. It returns
// latch.ErrNotFound if no key has the id. The ring lock is taken first and
// the feed lock last, as everywhere.
func (s *Store) RevokeKey(ctx context.Context, r latch.KeyRevocation) error {
	if r.At.IsZero() || r.Expiry.IsZero() {
		return fmt.Errorf("postgres: revoke key %s: zero revocation time or expiry", r.ID)
	}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, lockRingSQL, lockRing); err != nil {
			return err
		}
		var one int
		if err := tx.QueryRow(ctx, "SELECT 1 FROM signing_keys WHERE id = $1", r.ID).Scan(&one); err != nil {
			return translate(err)
		}
		if r.Rotation != nil {
			if err := rotateKeys(ctx, tx, *r.Rotation); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE signing_keys SET
			revoked_at = coalesce(revoked_at, $1), not_after = coalesce(not_after, $2)
			WHERE id = $3`, ts(r.At), ts(r.Expiry), r.ID); err != nil {
			return err
		}
		if err := bumpRing(ctx, tx); err != nil {
			return err
		}
		if err := takeFeedLock(ctx, tx); err != nil {
			return err
		}
		_, err := addRevocation(ctx, tx, &latch.Revocation{
			Kind: latch.RevokeKey, Value: r.ID, CreatedAt: r.At, ExpiresAt: r.Expiry,
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: revoke key %s: %w", r.ID, translate(err))
	}
	return nil
}

// bumpRing moves the ring version inside tx.
func bumpRing(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, "UPDATE key_ring_version SET version = version + 1 WHERE id = 1")
	return err
}

// KeyRingVersion returns the ring version, moved by every committed
// RotateKeys and RevokeKey.
func (s *Store) KeyRingVersion(ctx context.Context) (int64, error) {
	var v int64
	if err := s.pool.QueryRow(ctx, "SELECT version FROM key_ring_version WHERE id = 1").Scan(&v); err != nil {
		return 0, fmt.Errorf("postgres: key ring version: %w", err)
	}
	return v, nil
}
