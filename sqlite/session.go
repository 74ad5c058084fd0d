package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/latchauth/latch"
)

// sessionColumns lists the columns that scanSession reads, in order.
const sessionColumns = `id, user_id, client_id, user_agent, ip, created_at, auth_time,
	last_used_at, expires_at, generation, rotated_at, successor, revoked_at, revoke_reason,
	rotated_by, grace_replays, access_expires_at, sso_session_id, scope`

// scanSession scans a row of sessionColumns.
func scanSession(row interface{ Scan(...any) error }) (*latch.Session, error) {
	var s latch.Session
	err := row.Scan(&s.ID, &s.UserID, &s.ClientID, &s.UserAgent, &s.IP,
		scanTime(&s.CreatedAt), scanTime(&s.AuthTime), scanTime(&s.LastUsedAt), scanTime(&s.ExpiresAt),
		&s.Generation, scanTime(&s.RotatedAt), &s.Successor, scanTime(&s.RevokedAt), &s.RevokeReason,
		&s.RotatedBy, &s.GraceReplays, scanTime(&s.AccessExpiresAt), &s.SSOSessionID, &s.Scope)
	if err != nil {
		return nil, err
	}
	return &s, nil
}

// CreateSession stores s at generation 1, whatever s.Generation says,
// together with tokenHash as the refresh token of generation 1 created at
// s.CreatedAt, and enqueues msgs, in one transaction of the writer. It
// returns an error matching latch.ErrConflict if the session id or the
// token hash exists already, one matching latch.ErrLocked if the user is
// locked, and one matching latch.ErrNotFound if sess.SSOSessionID names an
// SSO session that does not exist or has been ended: the checks and the
// insert share the writer's transaction, so neither LockUser nor
// EndSSOSession can slip in between.
func (s *Store) CreateSession(ctx context.Context, sess *latch.Session, tokenHash []byte, msgs ...*latch.OutboxMessage) error {
	ids := make([]int64, len(msgs))
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var locked int64
		err := tx.QueryRowContext(ctx, "SELECT locked_at FROM users WHERE id = ?", sess.UserID).Scan(&locked)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if locked != 0 {
			return fmt.Errorf("user %s: %w", sess.UserID, latch.ErrLocked)
		}
		if sess.SSOSessionID != "" {
			var one int
			err := tx.QueryRowContext(ctx, "SELECT 1 FROM sso_sessions WHERE id = ? AND revoked_at = 0", sess.SSOSessionID).Scan(&one)
			if err != nil {
				return fmt.Errorf("SSO session %s: %w", sess.SSOSessionID, translate(err))
			}
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO sessions (`+sessionColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			sess.ID, sess.UserID, sess.ClientID, sess.UserAgent, sess.IP,
			micros(sess.CreatedAt), micros(sess.AuthTime), micros(sess.LastUsedAt), micros(sess.ExpiresAt),
			micros(sess.RotatedAt), nilIfEmpty(sess.Successor), micros(sess.RevokedAt), sess.RevokeReason,
			nilIfEmpty(sess.RotatedBy), sess.GraceReplays, micros(sess.AccessExpiresAt), sess.SSOSessionID, sess.Scope)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx,
			"INSERT INTO refresh_tokens (hash, session_id, generation, created_at) VALUES (?, ?, 1, ?)",
			tokenHash, sess.ID, micros(sess.CreatedAt))
		if err != nil {
			return err
		}
		for i, msg := range msgs {
			m := *msg
			if err := enqueue(ctx, tx, &m); err != nil {
				return err
			}
			ids[i] = m.ID
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: create session %s: %w", sess.ID, translate(err))
	}
	for i, msg := range msgs {
		msg.ID = ids[i]
	}
	return nil
}

// Session returns the session with the id, revoked or not, or an error
// matching latch.ErrNotFound.
func (s *Store) Session(ctx context.Context, id string) (*latch.Session, error) {
	sess, err := scanSession(s.db.QueryRowContext(ctx,
		"SELECT "+sessionColumns+" FROM sessions WHERE id = ?", id))
	if err != nil {
		return nil, fmt.Errorf("sqlite: session %s: %w", id, translate(err))
	}
	return sess, nil
}

// SessionsByUser returns the sessions of a user that are not revoked and
// whose ExpiresAt is after now, newest (by CreatedAt) first.
func (s *Store) SessionsByUser(ctx context.Context, userID string, now time.Time) ([]*latch.Session, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT "+sessionColumns+` FROM sessions
		WHERE user_id = ? AND revoked_at = 0 AND expires_at > ?
		ORDER BY created_at DESC, id DESC`, userID, micros(now))
	if err != nil {
		return nil, fmt.Errorf("sqlite: sessions of user %s: %w", userID, err)
	}
	defer rows.Close()
	var list []*latch.Session
	for rows.Next() {
		sess, err := scanSession(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: sessions of user %s: %w", userID, err)
		}
		list = append(list, sess)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: sessions of user %s: %w", userID, err)
	}
	return list, nil
}

// RefreshToken returns the record of a refresh token hash, or an error
// matching latch.ErrNotFound.
func (s *Store) RefreshToken(ctx context.Context, hash []byte) (*latch.RefreshToken, error) {
	t := latch.RefreshToken{Hash: slices.Clone(hash)}
	err := s.db.QueryRowContext(ctx,
		"SELECT session_id, generation, created_at FROM refresh_tokens WHERE hash = ?", hash).
		Scan(&t.SessionID, &t.Generation, scanTime(&t.CreatedAt))
	if err != nil {
		return nil, fmt.Errorf("sqlite: refresh token %x: %w", truncHash(hash), translate(err))
	}
	return &t, nil
}

// truncHash returns a prefix of a token hash, enough to tell tokens apart
// in an error message.
func truncHash(h []byte) []byte {
	return h[:min(len(h), 8)]
}

// Rotate applies r in one transaction: a conditional update moves the
// session from r.FromGeneration to the next generation if it is not
// revoked, and the new token hash is recorded. It returns an error matching
// latch.ErrConflict, and changes nothing, if the session is at another
// generation, is revoked or no longer exists, or if r.NewHash is taken: in
// each case a caller that looks the token up again sees why.
func (s *Store) Rotate(ctx context.Context, r latch.Rotation) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE sessions
			SET generation = generation + 1, successor = ?, rotated_at = ?, last_used_at = ?,
				rotated_by = ?, grace_replays = 0, access_expires_at = max(access_expires_at, ?)
			WHERE id = ? AND generation = ? AND revoked_at = 0`,
			nilIfEmpty(r.Successor), micros(r.At), micros(r.At), nilIfEmpty(r.RotatedBy), micros(r.AccessExpiresAt),
			r.SessionID, r.FromGeneration)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			return latch.ErrConflict
		}
		_, err = tx.ExecContext(ctx,
			"INSERT INTO refresh_tokens (hash, session_id, generation, created_at) VALUES (?, ?, ?, ?)",
			r.NewHash, r.SessionID, r.FromGeneration+1, micros(r.At))
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: rotate session %s from generation %d: %w",
			r.SessionID, r.FromGeneration, translate(err))
	}
	return nil
}

// ReplayGrace applies r in one conditional UPDATE: the condition on the
// generation, the revocation and the replay count is checked and the count
// incremented in the same statement, which SQLite runs under its single
// writer lock, so two concurrent replays cannot both take the last place.
// It returns an error matching latch.ErrConflict, and changes nothing, if
// the session is at another generation, is revoked or gone, or (r.Counted)
// has r.Limit counted replays already.
func (s *Store) ReplayGrace(ctx context.Context, r latch.GraceReplay) (int, error) {
	inc, limit := 0, int64(math.MaxInt32)
	if r.Counted {
		inc, limit = 1, int64(r.Limit)
	}
	var n int
	err := s.w.QueryRowContext(ctx, `UPDATE sessions
		SET grace_replays = grace_replays + ?, access_expires_at = max(access_expires_at, ?)
		WHERE id = ? AND generation = ? AND revoked_at = 0 AND grace_replays < ?
		RETURNING grace_replays`,
		inc, micros(r.AccessExpiresAt), r.SessionID, r.Generation, limit).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		err = latch.ErrConflict
	}
	if err != nil {
		return 0, fmt.Errorf("sqlite: grace replay of session %s at generation %d: %w", r.SessionID, r.Generation, err)
	}
	return n, nil
}

// ClearSuccessors forgets the sealed successors of sessions rotated before
// rotatedBefore.
func (s *Store) ClearSuccessors(ctx context.Context, rotatedBefore time.Time) (int, error) {
	res, err := s.w.ExecContext(ctx,
		"UPDATE sessions SET successor = NULL WHERE successor IS NOT NULL AND rotated_at < ?", micros(rotatedBefore))
	if err != nil {
		return 0, fmt.Errorf("sqlite: clear successors: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("sqlite: clear successors: %w", err)
	}
	return int(n), nil
}

// RevokeSession marks the session revoked at at with reason and, in the same
// transaction, appends a latch.RevokeSession entry created at at and
// expiring at cover.Expiry(the session's access_expires_at as the UPDATE
// leaves it). If the session was revoked already it reports
// false and changes nothing; if it does not exist it returns an error
// matching latch.ErrNotFound. A session past its ExpiresAt but never
// revoked is revoked all the same: access tokens issued before its expiry
// may still be valid.
func (s *Store) RevokeSession(ctx context.Context, sessionID, reason string, at time.Time, cover latch.Cover) (bool, error) {
	if at.IsZero() {
		return false, fmt.Errorf("sqlite: revoke session %s: zero revocation time", sessionID)
	}
	revoked := false
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var latest time.Time
		err := tx.QueryRowContext(ctx,
			"UPDATE sessions SET revoked_at = ?, revoke_reason = ? WHERE id = ? AND revoked_at = 0 RETURNING access_expires_at",
			micros(at), reason, sessionID).Scan(scanTime(&latest))
		if errors.Is(err, sql.ErrNoRows) {
			// Revoked already, or no such session (ErrNotFound).
			var one int
			err := tx.QueryRowContext(ctx, "SELECT 1 FROM sessions WHERE id = ?", sessionID).Scan(&one)
			return translate(err)
		}
		if err != nil {
			return err
		}
		revoked = true
		_, err = addRevocation(ctx, tx, &latch.Revocation{
			Kind:      latch.RevokeSession,
			Value:     sessionID,
			CreatedAt: at,
			ExpiresAt: cover.Expiry(latest),
		})
		return err
	})
	if err != nil {
		return false, fmt.Errorf("sqlite: revoke session %s: %w", sessionID, err)
	}
	return revoked, nil
}

// RevokeUser revokes, in one transaction, every session of the user that is
// live at at (not revoked, ExpiresAt after at) and appends a
// latch.RevokeUser entry with Cutoff at plus one latch.RevokeSession entry
// per revoked session, all created at at. Each session entry expires at
// cover.Expiry(that session's access_expires_at); the user entry at
// cover.Expiry(the latest access_expires_at of every stored session of the
// user, revoked and expired ones included: their tokens may still be
// valid). The user entry is appended even if no session was live. In the
// same transaction every SSO session of the user that has not been ended
// is ended at at with reason, and the back-channel logout messages of
// each are enqueued as EndSSOSession enqueues them. It returns the ids of
// the revoked sessions in ascending order.
func (s *Store) RevokeUser(ctx context.Context, userID, reason string, at time.Time, cover latch.Cover, lock string) ([]string, error) {
	if at.IsZero() {
		return nil, fmt.Errorf("sqlite: revoke user %s: zero revocation time", userID)
	}
	var ids []string
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		ids = nil
		if lock != "" {
			if err := lockUser(ctx, tx, userID, lock, at); err != nil {
				return err
			}
		}
		if _, err := endUserSSOSessions(ctx, tx, userID, reason, at); err != nil {
			return err
		}
		var latestOfUser time.Time
		if err := tx.QueryRowContext(ctx,
			"SELECT coalesce(max(access_expires_at), 0) FROM sessions WHERE user_id = ?", userID).
			Scan(scanTime(&latestOfUser)); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `UPDATE sessions SET revoked_at = ?, revoke_reason = ?
			WHERE user_id = ? AND revoked_at = 0 AND expires_at > ?
			RETURNING id, access_expires_at`, micros(at), reason, userID, micros(at))
		if err != nil {
			return err
		}
		var entries []latch.Revocation
		ids, entries, err = revokedSessions(rows, at, cover, []latch.Revocation{{
			Kind:      latch.RevokeUser,
			Value:     userID,
			Cutoff:    at,
			CreatedAt: at,
			ExpiresAt: cover.Expiry(latestOfUser),
		}})
		if err != nil {
			return err
		}
		for i := range entries {
			if _, err := addRevocation(ctx, tx, &entries[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: revoke user %s: %w", userID, err)
	}
	return ids, nil
}

// revokedSessions reads the rows of an UPDATE … RETURNING id,
// access_expires_at that revoked sessions and returns their ids in
// ascending order, with entries followed by one RevokeSession entry per
// session (in the same order) that covers its latest access token.
func revokedSessions(rows *sql.Rows, at time.Time, cover latch.Cover, entries []latch.Revocation) ([]string, []latch.Revocation, error) {
	defer rows.Close()
	var ids []string
	latest := map[string]time.Time{}
	for rows.Next() {
		var id string
		var exp time.Time
		if err := rows.Scan(&id, scanTime(&exp)); err != nil {
			return nil, nil, err
		}
		ids = append(ids, id)
		latest[id] = exp
	}
	if err := rows.Close(); err != nil {
		return nil, nil, err
	}
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	slices.Sort(ids)
	for _, id := range ids {
		entries = append(entries, latch.Revocation{
			Kind:      latch.RevokeSession,
			Value:     id,
			CreatedAt: at,
			ExpiresAt: cover.Expiry(latest[id]),
		})
	}
	return ids, entries, nil
}
