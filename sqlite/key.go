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
	rows, err := s.db.QueryContext(ctx, `SELECT id, algorithm, family, private_key, public_key, created_at, not_before, not_after, revoked_at
		FROM signing_keys ORDER BY not_before, created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: keys: %w", err)
	}
	defer rows.Close()
	var list []latch.SigningKey
	for rows.Next() {
		var k latch.SigningKey
		if err := rows.Scan(&k.ID, &k.Algorithm, &k.Family, &k.Private, &k.Public,
			scanTime(&k.CreatedAt), scanTime(&k.NotBefore), scanTime(&k.NotAfter), scanTime(&k.RevokedAt)); err != nil {
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
// of r.New.Family that is not revoked (by NotBefore, then CreatedAt, then
// ID), or r.Previous is empty and every key of the family is revoked or
// none exists, it sets the
// previous key's NotAfter to r.PreviousNotAfter (and, with
// r.SupersedePrevious, marks it revoked), stores r.New and moves the ring
// version. Otherwise it returns an error matching latch.ErrConflict and
// changes nothing; so does a New key whose ID exists.
func (s *Store) RotateKeys(ctx context.Context, r latch.KeyRotation) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := rotateKeys(ctx, tx, r); err != nil {
			return err
		}
		return bumpRing(ctx, tx)
	})
	if err != nil {
		return fmt.Errorf("sqlite: rotate keys from %q to %s: %w", r.Previous, r.New.ID, translate(err))
	}
	return nil
}

// rotateKeys applies r inside tx.
func rotateKeys(ctx context.Context, tx *sql.Tx, r latch.KeyRotation) error {
	if r.New.Family == "" {
		return errors.New("the new key has no family")
	}
	var newest string
	err := tx.QueryRowContext(ctx, `SELECT id FROM signing_keys WHERE family = ? AND revoked_at = 0
		ORDER BY not_before DESC, created_at DESC, id DESC LIMIT 1`, r.New.Family).Scan(&newest)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	if newest != r.Previous {
		if newest == "" {
			return fmt.Errorf("%w: family %s has no key that is not revoked, not %s", latch.ErrConflict, r.New.Family, r.Previous)
		}
		return fmt.Errorf("%w: the newest key of family %s is %s", latch.ErrConflict, r.New.Family, newest)
	}
	if r.Previous != "" {
		revokedAt := int64(0)
		if r.SupersedePrevious {
			if r.New.CreatedAt.IsZero() {
				return errors.New("superseding a key needs the new key's CreatedAt")
			}
			revokedAt = micros(r.New.CreatedAt)
		}
		_, err := tx.ExecContext(ctx, "UPDATE signing_keys SET not_after = ?, revoked_at = ? WHERE id = ?",
			micros(r.PreviousNotAfter), revokedAt, r.Previous)
		if err != nil {
			return err
		}
	}
	k := r.New
	_, err = tx.ExecContext(ctx, `INSERT INTO signing_keys
		(id, algorithm, family, private_key, public_key, created_at, not_before, not_after, revoked_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		k.ID, k.Algorithm, k.Family, k.Private, k.Public, micros(k.CreatedAt), micros(k.NotBefore), micros(k.NotAfter), micros(k.RevokedAt))
	return err
}

// RevokeKey applies r in one transaction: r.Rotation if set (failing as
// RotateKeys does), then marks the key revoked at r.At unless it was
// revoked before, gives it NotAfter r.Expiry if it had none (so that Prune
// deletes it once nothing can refer to it), appends a latch.RevokeKey entry
// to the revocation feed and moves the ring version. It returns
// latch.ErrNotFound if no key has the id.
func (s *Store) RevokeKey(ctx context.Context, r latch.KeyRevocation) error {
	if r.At.IsZero() || r.Expiry.IsZero() {
		return fmt.Errorf("sqlite: revoke key %s: zero revocation time or expiry", r.ID)
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var one int
		if err := tx.QueryRowContext(ctx, "SELECT 1 FROM signing_keys WHERE id = ?", r.ID).Scan(&one); err != nil {
			return translate(err)
		}
		if r.Rotation != nil {
			if err := rotateKeys(ctx, tx, *r.Rotation); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE signing_keys SET
			revoked_at = CASE WHEN revoked_at = 0 THEN ? ELSE revoked_at END,
			not_after = CASE WHEN not_after = 0 THEN ? ELSE not_after END
			WHERE id = ?`, micros(r.At), micros(r.Expiry), r.ID); err != nil {
			return err
		}
		if _, err := addRevocation(ctx, tx, &latch.Revocation{
			Kind: latch.RevokeKey, Value: r.ID, CreatedAt: r.At, ExpiresAt: r.Expiry,
		}); err != nil {
			return err
		}
		return bumpRing(ctx, tx)
	})
	if err != nil {
		return fmt.Errorf("sqlite: revoke key %s: %w", r.ID, translate(err))
	}
	return nil
}

// bumpRing moves the ring version inside tx.
func bumpRing(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, "UPDATE key_ring_version SET version = version + 1 WHERE id = 1")
	return err
}

// KeyRingVersion returns the ring version, moved by every committed
// RotateKeys and RevokeKey.
func (s *Store) KeyRingVersion(ctx context.Context) (int64, error) {
	var v int64
	if err := s.db.QueryRowContext(ctx, "SELECT version FROM key_ring_version WHERE id = 1").Scan(&v); err != nil {
		return 0, fmt.Errorf("sqlite: key ring version: %w", err)
	}
	return v, nil
}
