package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/latchauth/latch"
)

// sessionColumns lists the columns that scanSession reads, in order.
const sessionColumns = `id, user_id, client_id, user_agent, ip, created_at, auth_time,
	last_used_at, expires_at, generation, rotated_at, successor, revoked_at, revoke_reason,
	rotated_by, grace_replays, access_expires_at, sso_session_id, scope`

// scanSession scans a row of sessionColumns.
func scanSession(row pgx.Row) (*latch.Session, error) {
	var s latch.Session
	err := row.Scan(&s.ID, &s.UserID, &s.ClientID, &s.UserAgent, &s.IP,
		(*nullTime)(&s.CreatedAt), (*nullTime)(&s.AuthTime), (*nullTime)(&s.LastUsedAt), (*nullTime)(&s.ExpiresAt),
		&s.Generation, (*nullTime)(&s.RotatedAt), &s.Successor, (*nullTime)(&s.RevokedAt), &s.RevokeReason,
		&s.RotatedBy, &s.GraceReplays, (*nullTime)(&s.AccessExpiresAt), &s.SSOSessionID, &s.Scope)
	if err != nil {
		return nil, err
	}
	return &s, nil
}

// CreateSession stores s at generation 1, whatever s.Generation says,
// together with tokenHash as the refresh token of generation 1 created at
// s.CreatedAt, in one statement (with msgs, in one transaction). It
// returns an error matching latch.ErrConflict if the session id or the
// token hash exists already.
//
// The statement takes a share lock on the user's row and inserts only if
// the user is not locked (an error matching latch.ErrLocked otherwise):
// a concurrent LockUser either commits first, and the session is refused
// (the locked row is re-read after the wait), or waits for this statement
// and its RevokeUser then revokes the new session with the others.
//
// If sess.SSOSessionID is set, the same statement takes a share lock on
// that SSO session and inserts only if it has not been ended (an error
// matching latch.ErrNotFound otherwise): a concurrent EndSSOSession either
// commits first, and the session is refused, or waits for this statement
// and then revokes the new family with the others.
func (s *Store) CreateSession(ctx context.Context, sess *latch.Session, tokenHash []byte, msgs ...*latch.OutboxMessage) error {
	create := func(ctx context.Context, q querier) error {
		var created, open, sso bool
		err := q.QueryRow(ctx, `WITH u AS (
				SELECT locked_at IS NULL AS open FROM users WHERE id = $2 FOR SHARE),
			sso AS (
				SELECT 1 FROM sso_sessions WHERE id = $18 AND revoked_at IS NULL FOR SHARE),
			ok AS (
				SELECT COALESCE((SELECT open FROM u), true) AS open,
					$18 = '' OR EXISTS (SELECT 1 FROM sso) AS sso),
			s AS (
				INSERT INTO sessions (`+sessionColumns+`)
				SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, 1, $10, $11, $12, $13, $15, $16, $17, $18, $19
				FROM ok WHERE ok.open AND ok.sso
				RETURNING id, created_at),
			rt AS (
				INSERT INTO refresh_tokens (hash, session_id, generation, created_at)
				SELECT $14, id, 1, created_at FROM s
				RETURNING 1)
			SELECT EXISTS (SELECT 1 FROM rt), ok.open, ok.sso FROM ok`,
			sess.ID, sess.UserID, sess.ClientID, sess.UserAgent, sess.IP,
			ts(sess.CreatedAt), ts(sess.AuthTime), ts(sess.LastUsedAt), ts(sess.ExpiresAt),
			ts(sess.RotatedAt), nilIfEmpty(sess.Successor), ts(sess.RevokedAt), sess.RevokeReason,
			tokenHash, nilIfEmpty(sess.RotatedBy), sess.GraceReplays, ts(sess.AccessExpiresAt),
			sess.SSOSessionID, sess.Scope).Scan(&created, &open, &sso)
		switch {
		case err != nil:
			return err
		case !open:
			return fmt.Errorf("user %s: %w", sess.UserID, latch.ErrLocked)
		case !sso || !created:
			return fmt.Errorf("SSO session %s: %w", sess.SSOSessionID, latch.ErrNotFound)
		}
		return nil
	}
	var err error
	if len(msgs) == 0 {
		err = create(ctx, s.pool)
	} else {
		ids := make([]int64, len(msgs))
		err = s.inTx(ctx, func(tx pgx.Tx) error {
			if err := create(ctx, tx); err != nil {
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
		if err == nil {
			for i, msg := range msgs {
				msg.ID = ids[i]
			}
		}
	}
	if err != nil {
		return fmt.Errorf("postgres: create session %s: %w", sess.ID, translate(err))
	}
	return nil
}

// Session returns the session with the id, revoked or not, or an error
// matching latch.ErrNotFound.
func (s *Store) Session(ctx context.Context, id string) (*latch.Session, error) {
	sess, err := scanSession(s.pool.QueryRow(ctx,
		"SELECT "+sessionColumns+" FROM sessions WHERE id = $1", id))
	if err != nil {
		return nil, fmt.Errorf("postgres: session %s: %w", id, translate(err))
	}
	return sess, nil
}

// SessionsByUser returns the sessions of a user that are not revoked and
// whose ExpiresAt is after now, newest (by CreatedAt, then ID) first.
func (s *Store) SessionsByUser(ctx context.Context, userID string, now time.Time) ([]*latch.Session, error) {
	rows, err := s.pool.Query(ctx, "SELECT "+sessionColumns+` FROM sessions
		WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2
		ORDER BY created_at DESC, id DESC`, userID, ts(now))
	if err != nil {
		return nil, fmt.Errorf("postgres: sessions of user %s: %w", userID, err)
	}
	defer rows.Close()
	var list []*latch.Session
	for rows.Next() {
		sess, err := scanSession(rows)
		if err != nil {
			return nil, fmt.Errorf("postgres: sessions of user %s: %w", userID, err)
		}
		list = append(list, sess)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: sessions of user %s: %w", userID, err)
	}
	return list, nil
}

// RefreshToken returns the record of a refresh token hash, or an error
// matching latch.ErrNotFound.
func (s *Store) RefreshToken(ctx context.Context, hash []byte) (*latch.RefreshToken, error) {
	t := latch.RefreshToken{Hash: slices.Clone(hash)}
	err := s.pool.QueryRow(ctx,
		"SELECT session_id, generation, created_at FROM refresh_tokens WHERE hash = $1", hash).
		Scan(&t.SessionID, &t.Generation, (*nullTime)(&t.CreatedAt))
	if err != nil {
		return nil, fmt.Errorf("postgres: refresh token %x: %w", truncHash(hash), translate(err))
	}
	return &t, nil
}

// truncHash returns a prefix of a token hash, enough to tell tokens apart
// in an error message.
func truncHash(h []byte) []byte {
	return h[:min(len(h), 8)]
}

// Rotate applies r atomically, in a single statement: a conditional UPDATE
// moves the session from r.FromGeneration to the next generation if it is
// not revoked, and the INSERT of the new token hash takes its row from the
// UPDATE, so that it happens exactly when the update does. If another
// transaction changes the session first, PostgreSQL waits for it and
// re-checks the condition on the new row version, so concurrent rotations
// from one generation, from any number of instances, cannot both apply.
//
// It returns an error matching latch.ErrConflict, and changes nothing, if
// the session is at another generation, is revoked or does not exist, or
// if r.NewHash is taken: in each case a caller that looks the token up
// again sees why.
func (s *Store) Rotate(ctx context.Context, r latch.Rotation) error {
	err := retry(ctx, func() error {
		tag, err := s.pool.Exec(ctx, `WITH s AS (
				UPDATE sessions
				SET generation = generation + 1, successor = $1, rotated_at = $2, last_used_at = $2,
					rotated_by = $6, grace_replays = 0,
					access_expires_at = greatest(access_expires_at, $7)
				WHERE id = $3 AND generation = $4 AND revoked_at IS NULL
				RETURNING id, generation)
			INSERT INTO refresh_tokens (hash, session_id, generation, created_at)
			SELECT $5, id, generation, $2 FROM s`,
			nilIfEmpty(r.Successor), ts(r.At), r.SessionID, r.FromGeneration, r.NewHash,
			nilIfEmpty(r.RotatedBy), ts(r.AccessExpiresAt))
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return latch.ErrConflict
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("postgres: rotate session %s from generation %d: %w",
			r.SessionID, r.FromGeneration, translate(err))
	}
	return nil
}

// ReplayGrace applies r in one conditional UPDATE. Under concurrent
// replays PostgreSQL locks the row and re-checks the condition on the row
// version the first replay left, so two replays cannot both take the last
// counted place. It returns an error matching latch.ErrConflict, and
// changes nothing, if the session is at another generation, is revoked or
// gone, or (r.Counted) has r.Limit counted replays already.
func (s *Store) ReplayGrace(ctx context.Context, r latch.GraceReplay) (int, error) {
	inc, limit := 0, int64(math.MaxInt32)
	if r.Counted {
		inc, limit = 1, int64(r.Limit)
	}
	var n int
	err := retry(ctx, func() error {
		return s.pool.QueryRow(ctx, `UPDATE sessions
			SET grace_replays = grace_replays + $1, access_expires_at = greatest(access_expires_at, $2)
			WHERE id = $3 AND generation = $4 AND revoked_at IS NULL AND grace_replays < $5
			RETURNING grace_replays`,
			inc, ts(r.AccessExpiresAt), r.SessionID, r.Generation, limit).Scan(&n)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		err = latch.ErrConflict
	}
	if err != nil {
		return 0, fmt.Errorf("postgres: grace replay of session %s at generation %d: %w", r.SessionID, r.Generation, err)
	}
	return n, nil
}

// ClearSuccessors forgets the sealed successors of sessions rotated before
// rotatedBefore and reports how many it cleared. A session that holds a
// successor but was never rotated (RotatedAt zero) counts as rotated
// before, as in the SQLite store.
func (s *Store) ClearSuccessors(ctx context.Context, rotatedBefore time.Time) (int, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE sessions SET successor = NULL
		WHERE successor IS NOT NULL AND (rotated_at < $1 OR rotated_at IS NULL)`, ts(rotatedBefore))
	if err != nil {
		return 0, fmt.Errorf("postgres: clear successors: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// RevokeSession marks the session revoked at at with reason and, in the same
// transaction, appends a latch.RevokeSession entry created at at and
// expiring at cover.Expiry(the session's access_expires_at, read under the
// row lock of the UPDATE). If the session was revoked already it reports
// false and changes nothing; if it does not exist it returns an error
// matching latch.ErrNotFound. A session past its ExpiresAt but never
// revoked is revoked all the same: access tokens issued before its expiry
// may still be valid.
func (s *Store) RevokeSession(ctx context.Context, sessionID, reason string, at time.Time, cover latch.Cover) (bool, error) {
	if at.IsZero() {
		return false, fmt.Errorf("postgres: revoke session %s: zero revocation time", sessionID)
	}
	var revoked bool
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		revoked = false
		var latest time.Time
		err := tx.QueryRow(ctx,
			"UPDATE sessions SET revoked_at = $1, revoke_reason = $2 WHERE id = $3 AND revoked_at IS NULL RETURNING access_expires_at",
			ts(at), reason, sessionID).Scan((*nullTime)(&latest))
		if errors.Is(err, pgx.ErrNoRows) {
			// Revoked already, or no such session (ErrNotFound).
			var one int
			err := tx.QueryRow(ctx, "SELECT 1 FROM sessions WHERE id = $1", sessionID).Scan(&one)
			return translate(err)
		}
		if err != nil {
			return err
		}
		revoked = true
		if err := takeFeedLock(ctx, tx); err != nil {
			return err
		}
		_, err = addRevocation(ctx, tx, &latch.Revocation{
			Kind:      latch.RevokeSession,
			Value:     sessionID,
			CreatedAt: at,
			ExpiresAt: cover.Expiry(latest),
		})
		return err
	})
	if err != nil {
		return false, fmt.Errorf("postgres: revoke session %s: %w", sessionID, err)
	}
	return revoked, nil
}

// RevokeUser revokes, in one transaction, every session of the user that is
// live at at (not revoked, ExpiresAt after at) and appends a
// latch.RevokeUser entry with Cutoff at plus one latch.RevokeSession entry
// per revoked session, all created at at. Each session entry expires at
// cover.Expiry(that session's access_expires_at); the user entry at
// cover.Expiry(the latest access_expires_at of every stored session of the
// user, revoked and expired ones included), read after the live sessions
// are locked, so no rotation can raise it unseen. The user entry is
// appended even if no session was live. It returns the ids of the revoked
// sessions in ascending order. The sessions are locked in ascending id
// order, so that concurrent revocations of one user queue rather than
// deadlock. Before them, in the same transaction, every SSO session of the
// user that has not been ended is ended at at with reason, and the
// back-channel logout messages of each are enqueued as EndSSOSession
// enqueues them.
func (s *Store) RevokeUser(ctx context.Context, userID, reason string, at time.Time, cover latch.Cover, lock string) ([]string, error) {
	if at.IsZero() {
		return nil, fmt.Errorf("postgres: revoke user %s: zero revocation time", userID)
	}
	var ids []string
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if lock != "" {
			// The user row first: a session created concurrently
			// (CreateSession checks the lock) waits for it.
			if err := lockUser(ctx, tx, userID, lock, at); err != nil {
				return err
			}
		}
		// The SSO sessions first: EndSSOSession's lock order.
		if _, err := endUserSSOSessions(ctx, tx, userID, reason, at); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `WITH live AS (
				SELECT id FROM sessions
				WHERE user_id = $3 AND revoked_at IS NULL AND expires_at > $1
				ORDER BY id FOR UPDATE)
			UPDATE sessions SET revoked_at = $1, revoke_reason = $2
			FROM live WHERE sessions.id = live.id
			RETURNING sessions.id, sessions.access_expires_at`, ts(at), reason, userID)
		if err != nil {
			return err
		}
		list, err := collectRevoked(rows)
		if err != nil {
			return err
		}
		var latestOfUser time.Time
		if err := tx.QueryRow(ctx, "SELECT max(access_expires_at) FROM sessions WHERE user_id = $1", userID).
			Scan((*nullTime)(&latestOfUser)); err != nil {
			return err
		}
		entries := []latch.Revocation{{
			Kind:      latch.RevokeUser,
			Value:     userID,
			Cutoff:    at,
			CreatedAt: at,
			ExpiresAt: cover.Expiry(latestOfUser),
		}}
		ids = ids[:0]
		for _, r := range list {
			ids = append(ids, r.id)
			entries = append(entries, latch.Revocation{
				Kind:      latch.RevokeSession,
				Value:     r.id,
				CreatedAt: at,
				ExpiresAt: cover.Expiry(r.exp),
			})
		}
		if err := takeFeedLock(ctx, tx); err != nil {
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
		return nil, fmt.Errorf("postgres: revoke user %s: %w", userID, err)
	}
	return ids, nil
}

// revokedSession is a session an UPDATE … RETURNING id, access_expires_at
// just revoked.
type revokedSession struct {
	id  string
	exp time.Time // the latest exp of an access token it issued
}

// collectRevoked reads the rows of an UPDATE … RETURNING id,
// access_expires_at that revoked sessions, in ascending id order (the
// order their revocation-feed entries are written).
func collectRevoked(rows pgx.Rows) ([]revokedSession, error) {
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (revokedSession, error) {
		var r revokedSession
		err := row.Scan(&r.id, (*nullTime)(&r.exp))
		return r, err
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(list, func(a, b revokedSession) int { return strings.Compare(a.id, b.id) })
	return list, nil
}
