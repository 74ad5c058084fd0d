package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/latchauth/latch"
)

var _ latch.GatewaySessionStore = (*Store)(nil)

// gatewayColumns lists the columns that scanGatewaySession reads, in order.
const gatewayColumns = `id, subject, sid, access_token, refresh_token, id_token, access_expires_at,
	created_at, last_seen_at, expires_at, version, lease_owner, lease_until, ended_at, end_reason`

// scanGatewaySession scans a row of gatewayColumns.
func scanGatewaySession(row interface{ Scan(...any) error }) (*latch.GatewaySession, error) {
	var g latch.GatewaySession
	err := row.Scan(&g.ID, &g.Subject, &g.SID, &g.AccessToken, &g.RefreshToken, &g.IDToken,
		scanTime(&g.AccessExpiresAt), scanTime(&g.CreatedAt), scanTime(&g.LastSeenAt), scanTime(&g.ExpiresAt),
		&g.Version, &g.LeaseOwner, scanTime(&g.LeaseUntil), scanTime(&g.EndedAt), &g.EndReason)
	if err != nil {
		return nil, err
	}
	return &g, nil
}

// orEmpty returns b, or an empty slice if b is nil, for NOT NULL blobs.
func orEmpty(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// CreateGatewaySession stores g; an error matching latch.ErrConflict if
// the id is taken.
func (s *Store) CreateGatewaySession(ctx context.Context, g *latch.GatewaySession) error {
	_, err := s.w.ExecContext(ctx, "INSERT INTO gateway_sessions ("+gatewayColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
		g.ID, g.Subject, g.SID, orEmpty(g.AccessToken), orEmpty(g.RefreshToken), orEmpty(g.IDToken), micros(g.AccessExpiresAt),
		micros(g.CreatedAt), micros(g.LastSeenAt), micros(g.ExpiresAt), g.Version, g.LeaseOwner, micros(g.LeaseUntil),
		micros(g.EndedAt), g.EndReason)
	if err != nil {
		return fmt.Errorf("sqlite: create gateway session: %w", translate(err))
	}
	return nil
}

// GatewaySession returns the gateway session with the id or an error
// matching latch.ErrNotFound.
func (s *Store) GatewaySession(ctx context.Context, id string) (*latch.GatewaySession, error) {
	g, err := scanGatewaySession(s.db.QueryRowContext(ctx, "SELECT "+gatewayColumns+" FROM gateway_sessions WHERE id = ?", id))
	if err != nil {
		return nil, fmt.Errorf("sqlite: gateway session: %w", translate(err))
	}
	return g, nil
}

// TouchGatewaySession raises LastSeenAt of a live gateway session; see
// latch.GatewaySessionStore.
func (s *Store) TouchGatewaySession(ctx context.Context, id string, at time.Time) error {
	res, err := s.w.ExecContext(ctx, `UPDATE gateway_sessions SET last_seen_at = max(last_seen_at, ?1)
		WHERE id = ?2 AND ended_at = 0 AND expires_at > ?1`, micros(at), id)
	if err == nil {
		err = mustAffect(res)
	}
	if err != nil {
		return fmt.Errorf("sqlite: touch gateway session: %w", err)
	}
	return nil
}

// AcquireGatewayRefresh takes the refresh lease in one conditional UPDATE,
// which SQLite runs under its single writer lock; see
// latch.GatewaySessionStore.
func (s *Store) AcquireGatewayRefresh(ctx context.Context, id, owner string, version int64, now, until time.Time) (bool, error) {
	if owner == "" {
		return false, errors.New("sqlite: acquire gateway refresh lease: empty owner")
	}
	res, err := s.w.ExecContext(ctx, `UPDATE gateway_sessions SET lease_owner = ?1, lease_until = ?2
		WHERE id = ?3 AND version = ?4 AND ended_at = 0 AND expires_at > ?5
			AND (lease_owner = '' OR lease_owner = ?1 OR lease_until <= ?5)`,
		owner, micros(until), id, version, micros(now))
	if err != nil {
		return false, fmt.Errorf("sqlite: acquire gateway refresh lease: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n > 0 {
		return n > 0, err
	}
	var one int
	if err := s.db.QueryRowContext(ctx, "SELECT 1 FROM gateway_sessions WHERE id = ?", id).Scan(&one); err != nil {
		return false, fmt.Errorf("sqlite: acquire gateway refresh lease: %w", translate(err))
	}
	return false, nil
}

// CompleteGatewayRefresh stores a refresh made under owner's lease; see
// latch.GatewaySessionStore.
func (s *Store) CompleteGatewayRefresh(ctx context.Context, id, owner string, r latch.GatewayRefresh) (int64, error) {
	var version int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `UPDATE gateway_sessions SET access_token = ?1,
				refresh_token = CASE WHEN length(?2) > 0 THEN ?2 ELSE refresh_token END,
				id_token = CASE WHEN length(?3) > 0 THEN ?3 ELSE id_token END,
				access_expires_at = ?4, version = version + 1, lease_owner = '', lease_until = 0
			WHERE id = ?5 AND lease_owner = ?6 AND ended_at = 0 RETURNING version`,
			orEmpty(r.AccessToken), orEmpty(r.RefreshToken), orEmpty(r.IDToken), micros(r.AccessExpiresAt), id, owner).Scan(&version)
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		var one int
		if err := tx.QueryRowContext(ctx, "SELECT 1 FROM gateway_sessions WHERE id = ?", id).Scan(&one); err != nil {
			return translate(err)
		}
		return fmt.Errorf("lease not held by %s or session ended: %w", owner, latch.ErrConflict)
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: complete gateway refresh: %w", err)
	}
	return version, nil
}

// ReleaseGatewayRefresh gives up owner's lease; see
// latch.GatewaySessionStore.
func (s *Store) ReleaseGatewayRefresh(ctx context.Context, id, owner string) error {
	if _, err := s.w.ExecContext(ctx, `UPDATE gateway_sessions SET lease_owner = '', lease_until = 0
		WHERE id = ? AND lease_owner = ?`, id, owner); err != nil {
		return fmt.Errorf("sqlite: release gateway refresh lease: %w", err)
	}
	return nil
}

// EndGatewaySession ends one gateway session; see
// latch.GatewaySessionStore.
func (s *Store) EndGatewaySession(ctx context.Context, id, reason string, at time.Time) error {
	if at.IsZero() {
		return errors.New("sqlite: end gateway session: zero time")
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE gateway_sessions SET ended_at = ?, end_reason = ?, lease_owner = '', lease_until = 0
			WHERE id = ? AND ended_at = 0`, micros(at), reason, id); err != nil {
			return err
		}
		var one int
		return translate(tx.QueryRowContext(ctx, "SELECT 1 FROM gateway_sessions WHERE id = ?", id).Scan(&one))
	})
	if err != nil {
		return fmt.Errorf("sqlite: end gateway session: %w", err)
	}
	return nil
}

// EndGatewaySessionsBySID ends the gateway sessions of an auth-server
// session; see latch.GatewaySessionStore.
func (s *Store) EndGatewaySessionsBySID(ctx context.Context, sid, reason string, at time.Time) ([]string, error) {
	ids, err := s.endGatewayWhere(ctx, "sid = ? AND sid <> ''", sid, reason, at)
	if err != nil {
		return nil, fmt.Errorf("sqlite: end gateway sessions of sid %s: %w", sid, err)
	}
	return ids, nil
}

// EndGatewaySessionsBySubject ends a user's gateway sessions; see
// latch.GatewaySessionStore.
func (s *Store) EndGatewaySessionsBySubject(ctx context.Context, subject, reason string, at time.Time) ([]string, error) {
	ids, err := s.endGatewayWhere(ctx, "subject = ? AND subject <> ''", subject, reason, at)
	if err != nil {
		return nil, fmt.Errorf("sqlite: end gateway sessions of %s: %w", subject, err)
	}
	return ids, nil
}

// endGatewayWhere ends the live gateway sessions matching cond (with one
// parameter, arg) and returns their ids in ascending order.
func (s *Store) endGatewayWhere(ctx context.Context, cond, arg, reason string, at time.Time) ([]string, error) {
	if at.IsZero() {
		return nil, errors.New("zero time")
	}
	var ids []string
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		ids = nil
		rows, err := tx.QueryContext(ctx, `UPDATE gateway_sessions SET ended_at = ?, end_reason = ?, lease_owner = '', lease_until = 0
			WHERE ended_at = 0 AND `+cond+` RETURNING id`, micros(at), reason, arg)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return rows.Err()
	})
	slices.Sort(ids)
	return ids, err
}

// PruneGatewaySessions deletes expired and ended gateway sessions; see
// latch.GatewaySessionStore.
func (s *Store) PruneGatewaySessions(ctx context.Context, now time.Time) error {
	if _, err := s.w.ExecContext(ctx, `DELETE FROM gateway_sessions
		WHERE expires_at <= ?1 OR (ended_at <> 0 AND ended_at <= ?1)`, micros(now)); err != nil {
		return fmt.Errorf("sqlite: prune gateway sessions: %w", err)
	}
	return nil
}
