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

// ssoColumns lists the columns that scanSSOSession reads, in order.
const ssoColumns = `id, user_id, auth_time, amr, user_agent, ip, created_at, last_seen_at,
	expires_at, revoked_at, revoke_reason`

// scanSSOSession scans a row of ssoColumns.
func scanSSOSession(row interface{ Scan(...any) error }) (*latch.SSOSession, error) {
	var s latch.SSOSession
	err := row.Scan(&s.ID, &s.UserID, scanTime(&s.AuthTime), scanList(&s.AMR), &s.UserAgent, &s.IP,
		scanTime(&s.CreatedAt), scanTime(&s.LastSeenAt), scanTime(&s.ExpiresAt), scanTime(&s.RevokedAt), &s.RevokeReason)
	if err != nil {
		return nil, err
	}
	return &s, nil
}

// CreateSSOSession stores sso. It returns an error matching
// latch.ErrConflict if the id is taken.
func (s *Store) CreateSSOSession(ctx context.Context, sso *latch.SSOSession) error {
	_, err := s.w.ExecContext(ctx, "INSERT INTO sso_sessions ("+ssoColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
		sso.ID, sso.UserID, micros(sso.AuthTime), jsonList(sso.AMR), sso.UserAgent, sso.IP,
		micros(sso.CreatedAt), micros(sso.LastSeenAt), micros(sso.ExpiresAt), micros(sso.RevokedAt), sso.RevokeReason)
	if err != nil {
		return fmt.Errorf("sqlite: create SSO session %s: %w", sso.ID, translate(err))
	}
	return nil
}

// SSOSession returns the SSO session with the id, ended or not, or an
// error matching latch.ErrNotFound.
func (s *Store) SSOSession(ctx context.Context, id string) (*latch.SSOSession, error) {
	sso, err := scanSSOSession(s.db.QueryRowContext(ctx, "SELECT "+ssoColumns+" FROM sso_sessions WHERE id = ?", id))
	if err != nil {
		return nil, fmt.Errorf("sqlite: SSO session %s: %w", id, translate(err))
	}
	return sso, nil
}

// TouchSSOSession raises the LastSeenAt of a live SSO session to at. It
// returns an error matching latch.ErrNotFound if the SSO session does not
// exist, has been ended or has expired at at.
func (s *Store) TouchSSOSession(ctx context.Context, id string, at time.Time) error {
	res, err := s.w.ExecContext(ctx, `UPDATE sso_sessions SET last_seen_at = max(last_seen_at, ?)
		WHERE id = ? AND revoked_at = 0 AND expires_at > ?`, micros(at), id, micros(at))
	if err == nil {
		err = mustAffect(res)
	}
	if err != nil {
		return fmt.Errorf("sqlite: touch SSO session %s: %w", id, err)
	}
	return nil
}

// RecordSSOClient records clientID in the SSO session, in the writer's
// transaction together with the check that the session has not been
// ended, so that EndSSOSession sees every client recorded before it. It
// returns an error matching latch.ErrNotFound if the SSO session does not
// exist or has been ended.
func (s *Store) RecordSSOClient(ctx context.Context, ssoID, clientID string, at time.Time) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO sso_clients (sso_session_id, client_id, first_at, last_at)
			SELECT id, ?, ?, ? FROM sso_sessions WHERE id = ? AND revoked_at = 0
			ON CONFLICT (sso_session_id, client_id) DO UPDATE SET last_at = max(last_at, excluded.last_at)`,
			clientID, micros(at), micros(at), ssoID)
		if err != nil {
			return err
		}
		return mustAffect(res)
	})
	if err != nil {
		return fmt.Errorf("sqlite: record client %s in SSO session %s: %w", clientID, ssoID, err)
	}
	return nil
}

// EndSSOSession ends the SSO session, revokes its families and enqueues
// the back-channel logout messages in one transaction; see
// latch.SSOStore.
func (s *Store) EndSSOSession(ctx context.Context, id, reason string, at time.Time, cover latch.Cover) ([]string, error) {
	if at.IsZero() {
		return nil, fmt.Errorf("sqlite: end SSO session %s: zero revocation time", id)
	}
	var ids []string
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		ids = nil
		var userID string
		err := tx.QueryRowContext(ctx, `UPDATE sso_sessions SET revoked_at = ?, revoke_reason = ?
			WHERE id = ? AND revoked_at = 0 RETURNING user_id`, micros(at), reason, id).Scan(&userID)
		if errors.Is(err, sql.ErrNoRows) {
			// Ended already (nothing to do), or no such SSO session.
			var one int
			return translate(tx.QueryRowContext(ctx, "SELECT 1 FROM sso_sessions WHERE id = ?", id).Scan(&one))
		}
		if err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `UPDATE sessions SET revoked_at = ?, revoke_reason = ?
			WHERE sso_session_id = ? AND revoked_at = 0
			RETURNING id, access_expires_at`, micros(at), reason, id)
		if err != nil {
			return err
		}
		var entries []latch.Revocation
		ids, entries, err = revokedSessions(rows, at, cover, nil)
		if err != nil {
			return err
		}
		for i := range entries {
			if _, err := addRevocation(ctx, tx, &entries[i]); err != nil {
				return err
			}
		}
		return enqueueLogouts(ctx, tx, id, userID, at)
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: end SSO session %s: %w", id, err)
	}
	return ids, nil
}

// endUserSSOSessions marks every SSO session of the user that has not been
// ended ended at at with reason, inside tx, and enqueues the back-channel
// logout messages of each as EndSSOSession does. It returns the ids of the
// SSO sessions it ended in ascending order.
func endUserSSOSessions(ctx context.Context, tx *sql.Tx, userID, reason string, at time.Time) ([]string, error) {
	rows, err := tx.QueryContext(ctx, `UPDATE sso_sessions SET revoked_at = ?, revoke_reason = ?
		WHERE user_id = ? AND revoked_at = 0 RETURNING id`, micros(at), reason, userID)
	if err != nil {
		return nil, err
	}
	var ended []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		ended = append(ended, id)
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	if err := rows.Err(); err != nil {
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
// message per client to tell of the end of the user's SSO session ssoID
// (see logoutClients). A message enqueued already for the same SSO
// session and client is not enqueued again (latch.BackchannelLogoutKey).
func enqueueLogouts(ctx context.Context, tx *sql.Tx, ssoID, userID string, at time.Time) error {
	clients, err := logoutClients(ctx, tx, ssoID)
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

// logoutClients returns, in ascending order, the clients to tell of the
// end of the SSO session: those recorded in it or owning one of its
// families, that registered a back-channel logout URI.
func logoutClients(ctx context.Context, tx *sql.Tx, ssoID string) ([]string, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id FROM clients
		WHERE backchannel_logout_uri <> '' AND id IN (
			SELECT client_id FROM sso_clients WHERE sso_session_id = ?
			UNION SELECT client_id FROM sessions WHERE sso_session_id = ?)
		ORDER BY id`, ssoID, ssoID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// codeColumns lists the columns that scanCode reads, in order.
const codeColumns = `hash, client_id, redirect_uri, user_id, sso_session_id, scope, nonce,
	code_challenge, auth_time, amr, created_at, expires_at, redeemed_at, session_id, reused_at`

// scanCode scans a row of codeColumns.
func scanCode(row interface{ Scan(...any) error }) (*latch.AuthorizationCode, error) {
	var c latch.AuthorizationCode
	err := row.Scan(&c.Hash, &c.ClientID, &c.RedirectURI, &c.UserID, &c.SSOSessionID, &c.Scope, &c.Nonce,
		&c.CodeChallenge, scanTime(&c.AuthTime), scanList(&c.AMR), scanTime(&c.CreatedAt), scanTime(&c.ExpiresAt),
		scanTime(&c.RedeemedAt), &c.SessionID, scanTime(&c.ReusedAt))
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// CreateAuthorizationCode stores c. It returns an error matching
// latch.ErrConflict if the hash is taken.
func (s *Store) CreateAuthorizationCode(ctx context.Context, c *latch.AuthorizationCode) error {
	_, err := s.w.ExecContext(ctx, "INSERT INTO authorization_codes ("+codeColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
		c.Hash, c.ClientID, c.RedirectURI, c.UserID, c.SSOSessionID, c.Scope, c.Nonce,
		c.CodeChallenge, micros(c.AuthTime), jsonList(c.AMR), micros(c.CreatedAt), micros(c.ExpiresAt),
		micros(c.RedeemedAt), c.SessionID, micros(c.ReusedAt))
	if err != nil {
		return fmt.Errorf("sqlite: create authorization code %x: %w", truncHash(c.Hash), translate(err))
	}
	return nil
}

// RedeemAuthorizationCode marks the code redeemed in one conditional
// UPDATE, which SQLite runs under its single writer lock, so of concurrent
// redemptions exactly one finds the code unredeemed. See
// latch.CodeStore.
func (s *Store) RedeemAuthorizationCode(ctx context.Context, hash []byte, at time.Time) (*latch.AuthorizationCode, error) {
	c, err := scanCode(s.w.QueryRowContext(ctx, `UPDATE authorization_codes SET redeemed_at = ?
		WHERE hash = ? AND redeemed_at = 0 AND expires_at > ? RETURNING `+codeColumns,
		micros(at), hash, micros(at)))
	if errors.Is(err, sql.ErrNoRows) {
		// Redeemed already (then marked reused), expired, or unknown.
		// The writer connection serialises this with AttachCodeSession.
		c, err = scanCode(s.w.QueryRowContext(ctx, `UPDATE authorization_codes
			SET reused_at = CASE WHEN reused_at = 0 THEN ? ELSE reused_at END
			WHERE hash = ? AND redeemed_at <> 0 RETURNING `+codeColumns, micros(at), hash))
		if err == nil {
			return c, fmt.Errorf("sqlite: redeem authorization code %x: redeemed already: %w", truncHash(hash), latch.ErrConflict)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: redeem authorization code %x: %w", truncHash(hash), translate(err))
	}
	return c, nil
}

// AttachCodeSession records the family created from a redeemed code; see
// latch.CodeStore.
func (s *Store) AttachCodeSession(ctx context.Context, hash []byte, sessionID string) error {
	var reused time.Time
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var redeemed time.Time
		var current string
		err := tx.QueryRowContext(ctx, "SELECT redeemed_at, session_id, reused_at FROM authorization_codes WHERE hash = ?", hash).
			Scan(scanTime(&redeemed), &current, scanTime(&reused))
		switch {
		case err != nil:
			return translate(err)
		case redeemed.IsZero():
			return fmt.Errorf("not redeemed: %w", latch.ErrNotFound)
		case current != "" && current != sessionID:
			return fmt.Errorf("attached to another session: %w", latch.ErrConflict)
		}
		_, err = tx.ExecContext(ctx, "UPDATE authorization_codes SET session_id = ? WHERE hash = ?", sessionID, hash)
		return err
	})
	if err == nil && !reused.IsZero() {
		// Committed: the family is attached, and the caller revokes it.
		err = fmt.Errorf("code presented again since its redemption: %w", latch.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("sqlite: attach session %s to authorization code %x: %w", sessionID, truncHash(hash), err)
	}
	return nil
}

// GrantConsent stores the union of the stored and the new scopes, reading
// and writing in one transaction of the single writer; see
// latch.ConsentStore.
func (s *Store) GrantConsent(ctx context.Context, c *latch.Consent) error {
	var scopes []string
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var stored []string
		err := tx.QueryRowContext(ctx, "SELECT scopes FROM consents WHERE user_id = ? AND client_id = ?", c.UserID, c.ClientID).
			Scan(scanList(&stored))
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		scopes = union(stored, c.Scopes)
		_, err = tx.ExecContext(ctx, `INSERT INTO consents (user_id, client_id, scopes, granted_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (user_id, client_id) DO UPDATE SET scopes = excluded.scopes, granted_at = excluded.granted_at`,
			c.UserID, c.ClientID, jsonList(scopes), micros(c.GrantedAt))
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: grant consent of user %s to client %s: %w", c.UserID, c.ClientID, err)
	}
	c.Scopes = scopes
	return nil
}

// union returns the sorted union of a and b without duplicates; nil if
// both are empty.
func union(a, b []string) []string {
	out := slices.Concat(a, b)
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) == 0 {
		return nil
	}
	return out
}

// Consent returns the user's consent for the client, or an error matching
// latch.ErrNotFound.
func (s *Store) Consent(ctx context.Context, userID, clientID string) (*latch.Consent, error) {
	c, err := scanConsent(s.db.QueryRowContext(ctx,
		"SELECT user_id, client_id, scopes, granted_at FROM consents WHERE user_id = ? AND client_id = ?", userID, clientID))
	if err != nil {
		return nil, fmt.Errorf("sqlite: consent of user %s to client %s: %w", userID, clientID, translate(err))
	}
	return c, nil
}

// scanConsent scans user_id, client_id, scopes, granted_at.
func scanConsent(row interface{ Scan(...any) error }) (*latch.Consent, error) {
	var c latch.Consent
	if err := row.Scan(&c.UserID, &c.ClientID, scanList(&c.Scopes), scanTime(&c.GrantedAt)); err != nil {
		return nil, err
	}
	return &c, nil
}

// ConsentsByUser returns the user's consents ordered by client id.
func (s *Store) ConsentsByUser(ctx context.Context, userID string) ([]*latch.Consent, error) {
	rows, err := s.db.QueryContext(ctx,
		"SELECT user_id, client_id, scopes, granted_at FROM consents WHERE user_id = ? ORDER BY client_id", userID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: consents of user %s: %w", userID, err)
	}
	defer rows.Close()
	var out []*latch.Consent
	for rows.Next() {
		c, err := scanConsent(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: consents of user %s: %w", userID, err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: consents of user %s: %w", userID, err)
	}
	return out, nil
}

// RevokeConsent deletes the user's consent for the client; an error
// matching latch.ErrNotFound if there is none.
func (s *Store) RevokeConsent(ctx context.Context, userID, clientID string) error {
	res, err := s.w.ExecContext(ctx, "DELETE FROM consents WHERE user_id = ? AND client_id = ?", userID, clientID)
	if err == nil {
		err = mustAffect(res)
	}
	if err != nil {
		return fmt.Errorf("sqlite: revoke consent of user %s to client %s: %w", userID, clientID, err)
	}
	return nil
}

// outboxColumns lists the columns that scanOutbox reads, in order.
const outboxColumns = `id, kind, coalesce(key, ''), payload, created_at, not_before, attempts, last_error,
	delivered_at, failed_at`

// scanOutbox scans a row of outboxColumns.
func scanOutbox(row interface{ Scan(...any) error }) (latch.OutboxMessage, error) {
	var m latch.OutboxMessage
	err := row.Scan(&m.ID, &m.Kind, &m.Key, &m.Payload, scanTime(&m.CreatedAt), scanTime(&m.NotBefore),
		&m.Attempts, &m.LastError, scanTime(&m.DeliveredAt), scanTime(&m.FailedAt))
	return m, err
}

// EnqueueOutbox stores m; a message with m.Key stored already makes it a
// no-op. See latch.OutboxStore.
func (s *Store) EnqueueOutbox(ctx context.Context, m *latch.OutboxMessage) error {
	var id int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		mm := *m
		if err := enqueue(ctx, tx, &mm); err != nil {
			return err
		}
		id = mm.ID
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: enqueue %s %s: %w", m.Kind, m.Key, err)
	}
	m.ID = id
	return nil
}

// enqueue inserts m into the outbox inside tx and sets m.ID, unless a
// message with m.Key exists (m.ID stays 0).
func enqueue(ctx context.Context, tx *sql.Tx, m *latch.OutboxMessage) error {
	var key any
	if m.Key != "" {
		key = m.Key
	}
	payload := m.Payload
	if payload == nil {
		payload = []byte{}
	}
	err := tx.QueryRowContext(ctx, `INSERT INTO outbox (kind, key, payload, created_at, not_before, attempts, last_error)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING RETURNING id`,
		m.Kind, key, payload, micros(m.CreatedAt), micros(m.NotBefore), m.Attempts, m.LastError).Scan(&m.ID)
	if errors.Is(err, sql.ErrNoRows) {
		m.ID = 0
		return nil
	}
	return err
}

// ClaimOutbox leases due messages to owner in one UPDATE of the single
// writer, so no two owners hold one message. See latch.OutboxStore.
func (s *Store) ClaimOutbox(ctx context.Context, owner string, now, leaseUntil time.Time, limit int) ([]latch.OutboxMessage, error) {
	if limit <= 0 {
		return nil, nil
	}
	var out []latch.OutboxMessage
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		out = nil
		rows, err := tx.QueryContext(ctx, `UPDATE outbox SET lease_owner = ?, lease_until = ?
			WHERE id IN (SELECT id FROM outbox
				WHERE delivered_at = 0 AND failed_at = 0 AND not_before <= ? AND lease_until <= ?
				ORDER BY not_before, id LIMIT ?)
			RETURNING `+outboxColumns, owner, micros(leaseUntil), micros(now), micros(now), limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			m, err := scanOutbox(rows)
			if err != nil {
				return err
			}
			out = append(out, m)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: claim outbox for %s: %w", owner, err)
	}
	sortOutbox(out)
	return out, nil
}

// sortOutbox orders messages by NotBefore, then ID.
func sortOutbox(l []latch.OutboxMessage) {
	slices.SortFunc(l, func(a, b latch.OutboxMessage) int {
		if c := a.NotBefore.Compare(b.NotBefore); c != 0 {
			return c
		}
		return int(a.ID - b.ID)
	})
}

// CompleteOutbox marks a message leased by owner delivered; see
// latch.OutboxStore.
func (s *Store) CompleteOutbox(ctx context.Context, id int64, owner string, at time.Time) error {
	err := s.settle(ctx, id, owner, `UPDATE outbox SET delivered_at = ?, lease_owner = '', lease_until = 0
		WHERE id = ? AND lease_owner = ? AND delivered_at = 0 AND failed_at = 0`, micros(at), id, owner)
	if err != nil {
		return fmt.Errorf("sqlite: complete outbox message %d: %w", id, err)
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
	err := s.settle(ctx, id, owner, `UPDATE outbox SET attempts = attempts + 1, last_error = ?, not_before = ?,
			lease_owner = '', lease_until = 0, failed_at = ?
		WHERE id = ? AND lease_owner = ? AND delivered_at = 0 AND failed_at = 0`,
		lastError, micros(next), micros(failed), id, owner)
	if err != nil {
		return fmt.Errorf("sqlite: retry outbox message %d: %w", id, err)
	}
	return nil
}

// settle runs the conditional update q of message id held by owner;
// latch.ErrConflict if it applied to no row but the message exists,
// latch.ErrNotFound if it does not.
func (s *Store) settle(ctx context.Context, id int64, owner, q string, args ...any) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, q, args...)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n > 0 {
			return err
		}
		var holder string
		if err := tx.QueryRowContext(ctx, "SELECT lease_owner FROM outbox WHERE id = ?", id).Scan(&holder); err != nil {
			return translate(err)
		}
		return fmt.Errorf("not leased by %s: %w", owner, latch.ErrConflict)
	})
}
