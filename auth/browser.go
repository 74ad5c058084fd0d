package auth

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/latchauth/latch"
)

// AccountClientID is the built-in browser client of Latch's own pages
// (sign-in and account security): cookie delivery, never stored.
const AccountClientID = "latch-account"

// delivery resolves how a client's sessions receive tokens: the built-in
// clients by definition, registered ones from the store. An unknown client
// is ErrUnauthorizedClient, and so is a confidential one unless
// confidential is set: it cannot sign users in through /v1/auth, but its
// sessions (from the authorization code grant) refresh at the token
// endpoint with bearer tokens.
func (s *Service) delivery(ctx context.Context, clientID string, confidential bool) (string, error) {
	switch clientID {
	case s.cfg.ClientID:
		return latch.DeliveryBearer, nil
	case AccountClientID:
		return latch.DeliveryCookie, nil
	}
	cl, err := s.store.Client(ctx, clientID)
	if errors.Is(err, latch.ErrNotFound) || (err == nil && !cl.Public() && !confidential) {
		return "", ErrUnauthorizedClient
	}
	if err != nil {
		return "", fmt.Errorf("auth: load client: %w", err)
	}
	if cl.Delivery == "" || !cl.Public() {
		return latch.DeliveryBearer, nil
	}
	return cl.Delivery, nil
}

// deliver records on t how its client receives tokens and, for browser
// deliveries, the session's CSRF token.
func (s *Service) deliver(t *Tokens, delivery string) {
	t.Delivery = delivery
	if delivery != latch.DeliveryBearer {
		t.CSRFToken = s.CSRFToken(t.SessionID)
	}
}

// CSRFToken is the anti-CSRF token of a session: a MAC of the session id
// under a key derived from the KEK. It is bound to the session (useless for
// any other), stable across refreshes, and never stored.
func (s *Service) CSRFToken(sessionID string) string {
	return base64.RawURLEncoding.EncodeToString(s.sealer.MAC("csrf", []byte(sessionID)))
}

// CheckCSRF reports, in constant time, whether token is the session's
// CSRF token.
func (s *Service) CheckCSRF(sessionID, token string) bool {
	if sessionID == "" || token == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(token), []byte(s.CSRFToken(sessionID))) == 1
}

// SessionOfRefreshToken returns the id of the session a refresh token
// belongs to, or ErrNotFound; nothing is consumed. Logout from a browser
// uses it to check the CSRF token first.
func (s *Service) SessionOfRefreshToken(ctx context.Context, refresh string) (string, error) {
	if !wellFormedRefreshToken(refresh) {
		return "", ErrNotFound
	}
	rt, err := s.store.RefreshToken(ctx, hashToken(refresh))
	if errors.Is(err, latch.ErrNotFound) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("auth: look up refresh token: %w", err)
	}
	return rt.SessionID, nil
}

// UserOfSession returns the user a live session belongs to, or
// ErrNotFound for a session that is unknown or revoked.
func (s *Service) UserOfSession(ctx context.Context, sessionID string) (string, error) {
	sess, err := s.store.Session(ctx, sessionID)
	if errors.Is(err, latch.ErrNotFound) || (err == nil && sess.Revoked()) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("auth: load session: %w", err)
	}
	return sess.UserID, nil
}
