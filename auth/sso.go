package auth

import (
	"context"
	"errors"
	"fmt"

	"github.com/latchauth/latch"
)

// EndSSOSession ends an SSO session of the user: every family created
// from it is revoked and every app it served is told by back-channel
// logout, through the durable outbox. Ending an ended session does
// nothing; a session of another user, or none, is ErrNotFound.
func (s *Service) EndSSOSession(ctx context.Context, userID, ssoID, reason string, c Device) error {
	sso, err := s.store.SSOSession(ctx, ssoID)
	if errors.Is(err, latch.ErrNotFound) || (err == nil && sso.UserID != userID) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("auth: load SSO session: %w", err)
	}
	if sso.Ended() {
		return nil
	}
	now := s.clock()
	ids, err := s.store.EndSSOSession(ctx, ssoID, reason, now, s.cover(now))
	if err != nil {
		return fmt.Errorf("auth: end SSO session: %w", err)
	}
	s.metrics.Revocations.WithLabelValues("sso_session").Inc()
	s.syncRevocations(ctx)
	s.notifyOutbox()
	for _, id := range ids {
		s.event(ctx, &latch.Event{Type: latch.EventSessionRevoked, UserID: userID, SessionID: id,
			IP: c.IP, UserAgent: c.UserAgent, Detail: map[string]string{"reason": reason, "sso_session": ssoID}})
	}
	return nil
}

// RevokeFamily revokes a session by id whatever its user, for a reason
// the caller names (a replayed authorization code revokes what it
// issued). A session that does not exist or is revoked already is no
// error.
func (s *Service) RevokeFamily(ctx context.Context, sessionID, reason string) error {
	now := s.clock()
	revoked, err := s.store.RevokeSession(ctx, sessionID, reason, now, s.cover(now))
	if err != nil && !errors.Is(err, latch.ErrNotFound) {
		return fmt.Errorf("auth: revoke session: %w", err)
	}
	if revoked {
		s.metrics.Revocations.WithLabelValues("session").Inc()
		s.syncRevocations(ctx)
	}
	return nil
}
