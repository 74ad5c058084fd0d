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

// ssoColumns lists the columns that scanSSOSession reads, in order.
const ssoColumns = `id, user_id, auth_time, amr, user_agent, ip, created_at, last_seen_at,
	expires_at, revoked_at, revoke_reason`

// scanSSOSession scans a row of ssoColumns.
func scanSSOSession(row pgx.Row) (*latch.SSOSession, error) {
	var s latch.SSOSession
	err := row.Scan(&s.ID, &s.UserID, (*nullTime)(&s.AuthTime), &s.AMR, &s.UserAgent, &s.IP,
		(*nullTime)(&s.CreatedAt), (*nullTime)(&s.LastSeenAt), (*nullTime)(&s.ExpiresAt), (*nullTime)(&s.RevokedAt), &s.RevokeReason)
	if err != nil {
		return nil, err
	}
	s.AMR = nilIfNone(s.AMR)
	return &s, nil
}

// CreateSSOSession stores sso. It returns an error matching
// latch.ErrConflict if the id is taken.
func (s *Store) CreateSSOSession(ctx context.Context, sso *latch.SSOSession) error {
	_, err := s.pool.Exec(ctx, "INSERT INTO sso_sessions ("+ssoColumns+") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
		sso.ID, sso.UserID, ts(sso.AuthTime), list(sso.AMR), sso.UserAgent, sso.IP,
		ts(sso.CreatedAt), ts(sso.LastSeenAt), ts(sso.ExpiresAt), ts(sso.RevokedAt), sso.RevokeReason)
	if err != nil {
		return fmt.Errorf("postgres: create SSO session %s: %w", sso.ID, translate(err))
	}
	return nil
}

// SSOSession returns the SSO session with the id, ended or not, or an
// error matching latch.ErrNotFound.
func (s *Store) SSOSession(ctx context.Context, id string) (*latch.SSOSession, error) {
	sso, err := scanSSOSession(s.pool.QueryRow(ctx, "SELECT "+ssoColumns+" FROM sso_sessions WHERE id = $1", id))
	if err != nil {
		return nil, fmt.Errorf("postgres: SSO session %s: %w", id, translate(err))
	}
	return sso, nil
}

// TouchSSOSession raises the LastSeenAt of a live SSO session to at. It
// returns an error matching latch.ErrNotFound if the SSO session does not
// exist, has been ended or has expired at at.
func (s *Store) TouchSSOSession(ctx context.Context, id string, at time.Time) error {
	tag, err := s.pool.Exec(ctx, `UPDATE sso_sessions SET last_seen_at = greatest(last_seen_at, $1)
		WHERE id = $2 AND revoked_at IS NULL AND expires_at > $1`, ts(at), id)
	if err == nil && tag.RowsAffected() == 0 {
		err = latch.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("postgres: touch SSO session %s: %w", id, err)
	}
	return nil
}

// RecordSSOClient records clientID in the SSO session in one statement
// that takes a share lock on the SSO session and inserts only if it has
// not been ended: a concurrent EndSSOSession either commits first (an
// error matching latch.ErrNotFound) or waits and then sees the client.
func (s *Store) RecordSSOClient(ctx context.Context, ssoID, clientID string, at time.Time) error {
	tag, err := s.pool.Exec(ctx, `WITH sso AS (
			SELECT id FROM sso_sessions WHERE id = $1 AND revoked_at IS NULL FOR SHARE)
		INSERT INTO sso_clients (sso_session_id, client_id, first_at, last_at)
		SELECT id, $2, $3, $3 FROM sso
		ON CONFLICT (sso_session_id, client_id) DO UPDATE SET last_at = greatest(sso_clients.last_at, excluded.last_at)`,
		ssoID, clientID, ts(at))
	if err == nil && tag.RowsAffected() == 0 {
		err = latch.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("postgres: record client %s in SSO session %s: %w", clientID, ssoID, err)
	}
	return nil
}

// EndSSOSession ends the SSO session, revokes its families and enqueues
// the back-channel logout messages in one transaction; see
// latch.SSOStore. The SSO session row is locked first, so that
// CreateSession and RecordSSOClient, which take a share lock on it, either
// commit before (and their rows are seen here) or find it ended; the
// families are then locked in ascending id order, as RevokeUser does.
func (s *Store) EndSSOSession(ctx context.Context, id, reason string, at time.Time, cover latch.Cover) ([]string, error) {
	if at.IsZero() {
		return nil, fmt.Errorf("postgres: end SSO session %s: zero revocation time", id)
	}
	var ids []string
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		ids = nil
		var userID string
		err := tx.QueryRow(ctx, `UPDATE sso_sessions SET revoked_at = $1, revoke_reason = $2
			WHERE id = $3 AND revoked_at IS NULL RETURNING user_id`, ts(at), reason, id).Scan(&userID)
		if errors.Is(err, pgx.ErrNoRows) {
			// Ended already (nothing to do), or no such SSO session.
			var one int
			return translate(tx.QueryRow(ctx, "SELECT 1 FROM sso_sessions WHERE id = $1", id).Scan(&one))
		}
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `WITH live AS (
				SELECT id FROM sessions
				WHERE sso_session_id = $3 AND revoked_at IS NULL
				ORDER BY id FOR UPDATE)
			UPDATE sessions SET revoked_at = $1, revoke_reason = $2
			FROM live WHERE sessions.id = live.id
			RETURNING sessions.id, sessions.access_expires_at`, ts(at), reason, id)
		if err != nil {
			return err
		}
		revoked, err := collectRevoked(rows)
		if err != nil {
			return err
		}
		if len(revoked) > 0 {
			if err := takeFeedLock(ctx, tx); err != nil {
				return err
			}
		}
		for _, r := range revoked {
			ids = append(ids, r.id)
			if _, err := addRevocation(ctx, tx, &latch.Revocation{
				Kind:      latch.RevokeSession,
				Value:     r.id,
				CreatedAt: at,
				ExpiresAt: cover.Expiry(r.exp),
			}); err != nil {
				return err
			}
		}
		return enqueueLogouts(ctx, tx, id, userID, at)
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: end SSO session %s: %w", id, err)
	}
	return ids, nil
}

// endUserSSOSessions marks every SSO session of the user that has not been
// ended ended at at with reason, inside tx, and enqueues the back-channel
// logout messages of each as EndSSOSession does. The SSO sessions are
// locked in id order first, as EndSSOSession locks its one before the
// families, so that concurrent ends and revocations cannot deadlock, and
// so that a concurrent CreateSession or RecordSSOClient (which share-lock
// the SSO session) either commits first and is seen, or fails. It returns
// the ids of the SSO sessions it ended in ascending order.
func endUserSSOSessions(ctx context.Context, tx pgx.Tx, userID, reason string, at time.Time) ([]string, error) {
	rows, err := tx.Query(ctx, `WITH live AS (
			SELECT id FROM sso_sessions
			WHERE user_id = $3 AND revoked_at IS NULL
			ORDER BY id FOR UPDATE)
		UPDATE sso_sessions SET revoked_at = $1, revoke_reason = $2
		FROM live WHERE sso_sessions.id = live.id
		RETURNING sso_sessions.id`, ts(at), reason, userID)
	if err != nil {
		return nil, err
	}
	ended, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	slices.Sort(ended)
	for _, id := range ended {
		if err := enqueueLogouts(ctx, tx, id, userID, at); err != nil {
			return nil, err
		}
	}
	return ended, nil
}

// enqueueLogouts enqueues inside tx, due at at, one back-channel logout
// message per client to tell of the end of the user's SSO session ssoID:
// those recorded in it or owning one of its families, that registered a
// back-channel logout URI, in ascending order. A message enqueued already
// for the same SSO session and client is not enqueued again
// (latch.BackchannelLogoutKey).
func enqueueLogouts(ctx context.Context, tx pgx.Tx, ssoID, userID string, at time.Time) error {
	rows, err := tx.Query(ctx, `SELECT id FROM clients
		WHERE backchannel_logout_uri <> '' AND id IN (
			SELECT client_id FROM sso_clients WHERE sso_session_id = $1
			UNION SELECT client_id FROM sessions WHERE sso_session_id = $1)
		ORDER BY id`, ssoID)
	if err != nil {
		return err
	}
	clients, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	for _, c := range clients {
		m := latch.OutboxMessage{
			Kind:      latch.OutboxBackchannelLogout,
			Key:       latch.BackchannelLogoutKey(ssoID, c),
			Payload:   latch.BackchannelLogout{ClientID: c, UserID: userID, SSOSessionID: ssoID}.Payload(),
			CreatedAt: at,
			NotBefore: at,
		}
		if err := enqueue(ctx, tx, &m); err != nil {
			return err
		}
	}
	return nil
}

// codeColumns lists the columns that scanCode reads, in order.
const codeColumns = `hash, client_id, redirect_uri, user_id, sso_session_id, scope, nonce,
	code_challenge, auth_time, amr, created_at, expires_at, redeemed_at, session_id, reused_at`

// scanCode scans a row of codeColumns.
func scanCode(row pgx.Row) (*latch.AuthorizationCode, error) {
	var c latch.AuthorizationCode
	err := row.Scan(&c.Hash, &c.ClientID, &c.RedirectURI, &c.UserID, &c.SSOSessionID, &c.Scope, &c.Nonce,
		&c.CodeChallenge, (*nullTime)(&c.AuthTime), &c.AMR, (*nullTime)(&c.CreatedAt), (*nullTime)(&c.ExpiresAt),
		(*nullTime)(&c.RedeemedAt), &c.SessionID, (*nullTime)(&c.ReusedAt))
	if err != nil {
		return nil, err
	}
	c.AMR = nilIfNone(c.AMR)
	return &c, nil
}

// CreateAuthorizationCode stores c. It returns an error matching
// latch.ErrConflict if the hash is taken.
func (s *Store) CreateAuthorizationCode(ctx context.Context, c *latch.AuthorizationCode) error {
	_, err := s.pool.Exec(ctx, "INSERT INTO authorization_codes ("+codeColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
		c.Hash, c.ClientID, c.RedirectURI, c.UserID, c.SSOSessionID, c.Scope, c.Nonce,
		c.CodeChallenge, ts(c.AuthTime), list(c.AMR), ts(c.CreatedAt), ts(c.ExpiresAt),
		ts(c.RedeemedAt), c.SessionID, ts(c.ReusedAt))
	if err != nil {
		return fmt.Errorf("postgres: create authorization code %x: %w", truncHash(c.Hash), translate(err))
	}
	return nil
}

// RedeemAuthorizationCode marks the code redeemed in one conditional
// UPDATE. Of concurrent redemptions, from any number of instances, one
// takes the row lock; the others wait, re-check the condition on the row
// version it left and find the code redeemed. See latch.CodeStore.
func (s *Store) RedeemAuthorizationCode(ctx context.Context, hash []byte, at time.Time) (*latch.AuthorizationCode, error) {
	c, err := scanCode(s.pool.QueryRow(ctx, `UPDATE authorization_codes SET redeemed_at = $1
		WHERE hash = $2 AND redeemed_at IS NULL AND expires_at > $1 RETURNING `+codeColumns, ts(at), hash))
	if errors.Is(err, pgx.ErrNoRows) {
		// Redeemed already (then marked reused, under the row lock that
		// AttachCodeSession takes too), expired, or unknown.
		c, err = scanCode(s.pool.QueryRow(ctx, `UPDATE authorization_codes SET reused_at = coalesce(reused_at, $1)
			WHERE hash = $2 AND redeemed_at IS NOT NULL RETURNING `+codeColumns, ts(at), hash))
		if err == nil {
			return c, fmt.Errorf("postgres: redeem authorization code %x: redeemed already: %w", truncHash(hash), latch.ErrConflict)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: redeem authorization code %x: %w", truncHash(hash), translate(err))
	}
	return c, nil
}

// AttachCodeSession records the family created from a redeemed code; see
// latch.CodeStore.
func (s *Store) AttachCodeSession(ctx context.Context, hash []byte, sessionID string) error {
	// One statement: a replay either marked the code reused before it
	// (and is seen here) or finds the family attached after it.
	var reused time.Time
	err := s.pool.QueryRow(ctx, `UPDATE authorization_codes SET session_id = $2
		WHERE hash = $1 AND redeemed_at IS NOT NULL AND (session_id = '' OR session_id = $2)
		RETURNING reused_at`, hash, sessionID).Scan((*nullTime)(&reused))
	switch {
	case err == nil && !reused.IsZero():
		err = fmt.Errorf("code presented again since its redemption: %w", latch.ErrConflict)
	case errors.Is(err, pgx.ErrNoRows):
		var redeemed time.Time
		err = s.pool.QueryRow(ctx, "SELECT redeemed_at FROM authorization_codes WHERE hash = $1", hash).
			Scan((*nullTime)(&redeemed))
		switch {
		case err != nil:
			err = translate(err)
		case redeemed.IsZero():
			err = fmt.Errorf("not redeemed: %w", latch.ErrNotFound)
		default:
			err = fmt.Errorf("attached to another session: %w", latch.ErrConflict)
		}
	}
	if err != nil {
		return fmt.Errorf("postgres: attach session %s to authorization code %x: %w", sessionID, truncHash(hash), err)
	}
	return nil
}

// GrantConsent stores the union of the stored and the new scopes in one
// upsert, which PostgreSQL applies under the row lock of the consent; see
// latch.ConsentStore.
func (s *Store) GrantConsent(ctx context.Context, c *latch.Consent) error {
	var scopes []string
	err := s.pool.QueryRow(ctx, `INSERT INTO consents (user_id, client_id, scopes, granted_at)
		VALUES ($1, $2, ARRAY(SELECT DISTINCT x COLLATE "C" FROM unnest($3::text[]) x ORDER BY 1), $4)
		ON CONFLICT (user_id, client_id) DO UPDATE SET
			scopes = ARRAY(SELECT DISTINCT x COLLATE "C" FROM unnest(consents.scopes || excluded.scopes) x ORDER BY 1),
			granted_at = excluded.granted_at
		RETURNING scopes`, c.UserID, c.ClientID, list(c.Scopes), ts(c.GrantedAt)).Scan(&scopes)
	if err != nil {
		return fmt.Errorf("postgres: grant consent of user %s to client %s: %w", c.UserID, c.ClientID, err)
	}
	c.Scopes = nilIfNone(scopes)
	return nil
}

// Consent returns the user's consent for the client, or an error matching
// latch.ErrNotFound.
func (s *Store) Consent(ctx context.Context, userID, clientID string) (*latch.Consent, error) {
	c, err := scanConsent(s.pool.QueryRow(ctx,
		"SELECT user_id, client_id, scopes, granted_at FROM consents WHERE user_id = $1 AND client_id = $2", userID, clientID))
	if err != nil {
		return nil, fmt.Errorf("postgres: consent of user %s to client %s: %w", userID, clientID, translate(err))
	}
	return c, nil
}

// scanConsent scans user_id, client_id, scopes, granted_at.
func scanConsent(row pgx.Row) (*latch.Consent, error) {
	var c latch.Consent
	if err := row.Scan(&c.UserID, &c.ClientID, &c.Scopes, (*nullTime)(&c.GrantedAt)); err != nil {
		return nil, err
	}
	c.Scopes = nilIfNone(c.Scopes)
	return &c, nil
}

// ConsentsByUser returns the user's consents ordered by client id.
func (s *Store) ConsentsByUser(ctx context.Context, userID string) ([]*latch.Consent, error) {
	rows, err := s.pool.Query(ctx,
		"SELECT user_id, client_id, scopes, granted_at FROM consents WHERE user_id = $1 ORDER BY client_id", userID)
	if err != nil {
		return nil, fmt.Errorf("postgres: consents of user %s: %w", userID, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*latch.Consent, error) { return scanConsent(row) })
	if err != nil {
		return nil, fmt.Errorf("postgres: consents of user %s: %w", userID, err)
	}
	return out, nil
}

// RevokeConsent deletes the user's consent for the client; an error
// matching latch.ErrNotFound if there is none.
func (s *Store) RevokeConsent(ctx context.Context, userID, clientID string) error {
	tag, err := s.pool.Exec(ctx, "DELETE FROM consents WHERE user_id = $1 AND client_id = $2", userID, clientID)
	if err == nil && tag.RowsAffected() == 0 {
		err = latch.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("postgres: revoke consent of user %s to client %s: %w", userID, clientID, err)
	}
	return nil
}

// outboxColumns lists the columns that scanOutbox reads, in order.
const outboxColumns = `id, kind, coalesce(key, ''), payload, created_at, not_before, attempts, last_error,
	delivered_at, failed_at`

// scanOutbox scans a row of outboxColumns.
func scanOutbox(row pgx.Row) (latch.OutboxMessage, error) {
	var m latch.OutboxMessage
	err := row.Scan(&m.ID, &m.Kind, &m.Key, &m.Payload, (*nullTime)(&m.CreatedAt), (*nullTime)(&m.NotBefore),
		&m.Attempts, &m.LastError, (*nullTime)(&m.DeliveredAt), (*nullTime)(&m.FailedAt))
	return m, err
}

// querier is what enqueue needs of a pool or a transaction.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// EnqueueOutbox stores m; a message with m.Key stored already makes it a
// no-op. See latch.OutboxStore.
func (s *Store) EnqueueOutbox(ctx context.Context, m *latch.OutboxMessage) error {
	if err := enqueue(ctx, s.pool, m); err != nil {
		return fmt.Errorf("postgres: enqueue %s %s: %w", m.Kind, m.Key, err)
	}
	return nil
}

// enqueue inserts m into the outbox and sets m.ID, unless a message with
// m.Key exists (m.ID is set to 0).
func enqueue(ctx context.Context, q querier, m *latch.OutboxMessage) error {
	var key *string
	if m.Key != "" {
		key = &m.Key
	}
	payload := m.Payload
	if payload == nil {
		payload = []byte{}
	}
	err := q.QueryRow(ctx, `INSERT INTO outbox (kind, key, payload, created_at, not_before, attempts, last_error)
		VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (key) DO NOTHING RETURNING id`,
		m.Kind, key, payload, ts(m.CreatedAt), ts(m.NotBefore), m.Attempts, m.LastError).Scan(&m.ID)
	if errors.Is(err, pgx.ErrNoRows) {
		m.ID = 0
		return nil
	}
	return err
}

// ClaimOutbox leases due messages to owner in one statement: the due rows
// are locked with FOR UPDATE SKIP LOCKED, so concurrent claims from any
// number of instances take disjoint messages without waiting on each
// other, and a row another claim leased meanwhile is re-checked and
// skipped. See latch.OutboxStore.
func (s *Store) ClaimOutbox(ctx context.Context, owner string, now, leaseUntil time.Time, limit int) ([]latch.OutboxMessage, error) {
	if limit <= 0 {
		return nil, nil
	}
	var out []latch.OutboxMessage
	err := retry(ctx, func() error {
		rows, err := s.pool.Query(ctx, `WITH due AS (
				SELECT id FROM outbox
				WHERE delivered_at IS NULL AND failed_at IS NULL AND not_before <= $1
					AND (lease_until IS NULL OR lease_until <= $1)
				ORDER BY not_before, id LIMIT $4
				FOR UPDATE SKIP LOCKED)
			UPDATE outbox SET lease_owner = $2, lease_until = $3
			FROM due WHERE outbox.id = due.id
			RETURNING `+outboxReturning, ts(now), owner, ts(leaseUntil), limit)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (latch.OutboxMessage, error) { return scanOutbox(row) })
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: claim outbox for %s: %w", owner, err)
	}
	slices.SortFunc(out, func(a, b latch.OutboxMessage) int {
		if c := a.NotBefore.Compare(b.NotBefore); c != 0 {
			return c
		}
		return int(a.ID - b.ID)
	})
	return out, nil
}

// outboxReturning is outboxColumns qualified with the table, for the
// RETURNING clause of an UPDATE … FROM.
const outboxReturning = `outbox.id, outbox.kind, coalesce(outbox.key, ''), outbox.payload, outbox.created_at,
	outbox.not_before, outbox.attempts, outbox.last_error, outbox.delivered_at, outbox.failed_at`

// CompleteOutbox marks a message leased by owner delivered; see
// latch.OutboxStore.
func (s *Store) CompleteOutbox(ctx context.Context, id int64, owner string, at time.Time) error {
	err := s.settle(ctx, id, owner, `UPDATE outbox SET delivered_at = $3, lease_owner = '', lease_until = NULL
		WHERE id = $1 AND lease_owner = $2 AND delivered_at IS NULL AND failed_at IS NULL`, id, owner, ts(at))
	if err != nil {
		return fmt.Errorf("postgres: complete outbox message %d: %w", id, err)
	}
	return nil
}

// RetryOutbox records a failed delivery of a message leased by owner; see
// latch.OutboxStore.
func (s *Store) RetryOutbox(ctx context.Context, id int64, owner, lastError string, next time.Time, giveUp bool, at time.Time) error {
	var failed time.Time
	if giveUp {
		failed = at
	}
	err := s.settle(ctx, id, owner, `UPDATE outbox SET attempts = attempts + 1, last_error = $3, not_before = $4,
			lease_owner = '', lease_until = NULL, failed_at = $5
		WHERE id = $1 AND lease_owner = $2 AND delivered_at IS NULL AND failed_at IS NULL`,
		id, owner, lastError, ts(next), ts(failed))
	if err != nil {
		return fmt.Errorf("postgres: retry outbox message %d: %w", id, err)
	}
	return nil
}

// settle runs the conditional update q of message id held by owner ($1
// and $2 of q); latch.ErrConflict if it applied to no row but the message
// exists, latch.ErrNotFound if it does not.
func (s *Store) settle(ctx context.Context, id int64, owner, q string, args ...any) error {
	tag, err := s.pool.Exec(ctx, q, args...)
	if err != nil || tag.RowsAffected() > 0 {
		return err
	}
	var one int
	if err := s.pool.QueryRow(ctx, "SELECT 1 FROM outbox WHERE id = $1", id).Scan(&one); err != nil {
		return translate(err)
	}
	return fmt.Errorf("not leased by %s: %w", owner, latch.ErrConflict)
}
