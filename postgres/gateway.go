package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/latchauth/latch"
)

var _ latch.GatewaySessionStore = (*Store)(nil)

// gatewayColumns lists the columns that scanGatewaySession reads, in order.
const gatewayColumns = `id, subject, sid, access_token, refresh_token, id_token, access_expires_at,
	created_at, last_seen_at, expires_at, version, lease_owner, lease_until, ended_at, end_reason`

// scanGatewaySession scans a row of gatewayColumns.
func scanGatewaySession(row pgx.Row) (*latch.GatewaySession, error) {
	var g latch.GatewaySession
	err := row.Scan(&g.ID, &g.Subject, &g.SID, &g.AccessToken, &g.RefreshToken, &g.IDToken,
		(*nullTime)(&g.AccessExpiresAt), (*nullTime)(&g.CreatedAt), (*nullTime)(&g.LastSeenAt), (*nullTime)(&g.ExpiresAt),
		&g.Version, &g.LeaseOwner, (*nullTime)(&g.LeaseUntil), (*nullTime)(&g.EndedAt), &g.EndReason)
	if err != nil {
		return nil, err
	}
	return &g, nil
}

// orEmpty returns b, or an empty slice if b is nil, for NOT NULL bytea.
func orEmpty(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// CreateGatewaySession stores g; an error matching latch.ErrConflict if
// the id is taken.
func (s *Store) CreateGatewaySession(ctx context.Context, g *latch.GatewaySession) error {
	_, err := s.pool.Exec(ctx, "INSERT INTO gateway_sessions ("+gatewayColumns+`) VALUES
		($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
		g.ID, g.Subject, g.SID, orEmpty(g.AccessToken), orEmpty(g.RefreshToken), orEmpty(g.IDToken), ts(g.AccessExpiresAt),
		ts(g.CreatedAt), ts(g.LastSeenAt), ts(g.ExpiresAt), g.Version, g.LeaseOwner, ts(g.LeaseUntil),
		ts(g.EndedAt), g.EndReason)
	if err != nil {
		return fmt.Errorf("postgres: create gateway session: %w", translate(err))
	}
	return nil
}

// GatewaySession returns the gateway session with the id or an error
// matching latch.ErrNotFound.
func (s *Store) GatewaySession(ctx context.Context, id string) (*latch.GatewaySession, error) {
	g, err := scanGatewaySession(s.pool.QueryRow(ctx, "SELECT "+gatewayColumns+" FROM gateway_sessions WHERE id = $1", id))
	if err != nil {
		return nil, fmt.Errorf("postgres: gateway session: %w", translate(err))
	}
	return g, nil
}

// TouchGatewaySession raises LastSeenAt of a live gateway session; see
// latch.GatewaySessionStore.
func (s *Store) TouchGatewaySession(ctx context.Context, id string, at time.Time) error {
	tag, err := s.pool.Exec(ctx, `UPDATE gateway_sessions SET last_seen_at = greatest(last_seen_at, $1)
		WHERE id = $2 AND ended_at IS NULL AND expires_at > $1`, ts(at), id)
	if err == nil && tag.RowsAffected() == 0 {
		err = latch.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("postgres: touch gateway session: %w", err)
	}
	return nil
}

// AcquireGatewayRefresh takes the refresh lease in one conditional UPDATE:
// PostgreSQL re-evaluates the condition on the row's latest version after
// waiting for a concurrent update of it, so of concurrent acquisitions by
// different owners at most one succeeds. See latch.GatewaySessionStore.
func (s *Store) AcquireGatewayRefresh(ctx context.Context, id, owner string, version int64, now, until time.Time) (bool, error) {
	if owner == "" {
		return false, errors.New("postgres: acquire gateway refresh lease: empty owner")
	}
	var found, acquired bool
	err := s.pool.QueryRow(ctx, `WITH upd AS (
			UPDATE gateway_sessions SET lease_owner = $1, lease_until = $2
			WHERE id = $3 AND version = $4 AND ended_at IS NULL AND expires_at > $5
				AND (lease_owner = '' OR lease_owner = $1 OR lease_until IS NULL OR lease_until <= $5)
			RETURNING id)
		SELECT EXISTS (SELECT 1 FROM gateway_sessions WHERE id = $3), EXISTS (SELECT 1 FROM upd)`,
		owner, ts(until), id, version, ts(now)).Scan(&found, &acquired)
	switch {
	case err != nil:
		return false, fmt.Errorf("postgres: acquire gateway refresh lease: %w", err)
	case !found && !acquired:
		return false, fmt.Errorf("postgres: acquire gateway refresh lease: %w", latch.ErrNotFound)
	}
	return acquired, nil
}

// CompleteGatewayRefresh stores a refresh made under owner's lease; see
// latch.GatewaySessionStore.
func (s *Store) CompleteGatewayRefresh(ctx context.Context, id, owner string, r latch.GatewayRefresh) (int64, error) {
	var version int64
	err := s.pool.QueryRow(ctx, `UPDATE gateway_sessions SET access_token = $1,
			refresh_token = CASE WHEN length($2::bytea) > 0 THEN $2::bytea ELSE refresh_token END,
			id_token = CASE WHEN length($3::bytea) > 0 THEN $3::bytea ELSE id_token END,
			access_expires_at = $4, version = version + 1, lease_owner = '', lease_until = NULL
		WHERE id = $5 AND lease_owner = $6 AND ended_at IS NULL RETURNING version`,
		orEmpty(r.AccessToken), orEmpty(r.RefreshToken), orEmpty(r.IDToken), ts(r.AccessExpiresAt), id, owner).Scan(&version)
	if errors.Is(err, pgx.ErrNoRows) {
		var one int
		if err = s.pool.QueryRow(ctx, "SELECT 1 FROM gateway_sessions WHERE id = $1", id).Scan(&one); err == nil {
			err = fmt.Errorf("lease not held by %s or session ended: %w", owner, latch.ErrConflict)
		} else {
			err = translate(err)
		}
	}
	if err != nil {
		return 0, fmt.Errorf("postgres: complete gateway refresh: %w", err)
	}
	return version, nil
}

// ReleaseGatewayRefresh gives up owner's lease; see
// latch.GatewaySessionStore.
func (s *Store) ReleaseGatewayRefresh(ctx context.Context, id, owner string) error {
	if _, err := s.pool.Exec(ctx, `UPDATE gateway_sessions SET lease_owner = '', lease_until = NULL
		WHERE id = $1 AND lease_owner = $2`, id, owner); err != nil {
		return fmt.Errorf("postgres: release gateway refresh lease: %w", err)
	}
	return nil
}

// EndGatewaySession ends one gateway session; see
// latch.GatewaySessionStore.
func (s *Store) EndGatewaySession(ctx context.Context, id, reason string, at time.Time) error {
	if at.IsZero() {
		return errors.New("postgres: end gateway session: zero time")
	}
	var found bool
	err := s.pool.QueryRow(ctx, `WITH upd AS (
			UPDATE gateway_sessions SET ended_at = $1, end_reason = $2, lease_owner = '', lease_until = NULL
			WHERE id = $3 AND ended_at IS NULL RETURNING id)
		SELECT EXISTS (SELECT 1 FROM upd) OR EXISTS (SELECT 1 FROM gateway_sessions WHERE id = $3)`,
		ts(at), reason, id).Scan(&found)
	if err == nil && !found {
		err = latch.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("postgres: end gateway session: %w", err)
	}
	return nil
}

// EndGatewaySessionsBySID ends the gateway sessions of an auth-server
// session; see latch.GatewaySessionStore.
func (s *Store) EndGatewaySessionsBySID(ctx context.Context, sid, reason string, at time.Time) ([]string, error) {
	ids, err := s.endGatewayWhere(ctx, "sid = $3 AND sid <> ''", sid, reason, at)
	if err != nil {
		return nil, fmt.Errorf("postgres: end gateway sessions of sid %s: %w", sid, err)
	}
	return ids, nil
}

// EndGatewaySessionsBySubject ends a user's gateway sessions; see
// latch.GatewaySessionStore.
func (s *Store) EndGatewaySessionsBySubject(ctx context.Context, subject, reason string, at time.Time) ([]string, error) {
	ids, err := s.endGatewayWhere(ctx, "subject = $3 AND subject <> ''", subject, reason, at)
	if err != nil {
		return nil, fmt.Errorf("postgres: end gateway sessions of %s: %w", subject, err)
	}
	return ids, nil
}

// endGatewayWhere ends the live gateway sessions matching cond (whose one
// parameter is $3, arg) and returns their ids in ascending order.
func (s *Store) endGatewayWhere(ctx context.Context, cond, arg, reason string, at time.Time) ([]string, error) {
	if at.IsZero() {
		return nil, errors.New("zero time")
	}
	rows, err := s.pool.Query(ctx, `UPDATE gateway_sessions SET ended_at = $1, end_reason = $2, lease_owner = '', lease_until = NULL
		WHERE ended_at IS NULL AND `+cond+` RETURNING id`, ts(at), reason, arg)
	if err != nil {
		return nil, err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	slices.Sort(ids)
	return ids, nil
}

// PruneGatewaySessions deletes expired and ended gateway sessions; see
// latch.GatewaySessionStore.
func (s *Store) PruneGatewaySessions(ctx context.Context, now time.Time) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM gateway_sessions
		WHERE expires_at <= $1 OR ended_at <= $1`, ts(now)); err != nil {
		return fmt.Errorf("postgres: prune gateway sessions: %w", err)
	}
	return nil
}
