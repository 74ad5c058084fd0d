package account

import (
	"context"
	"errors"
	"fmt"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/auth"
	"github.com/latchauth/latch/secret"
)

// OnSignInLocked is the sign-in throttle's hook (throttle.Options
// .OnAccountLocked): it records a RequestUnlock in the durable outbox,
// the same one write whether or not an account has the address, so that
// neither the answer to the failed sign-in nor its timing tells. The
// outbox worker then mails the owner, if there is one, an unlock link
// (SendUnlock). A failure is logged: the lock holds either way.
func (s *Service) OnSignInLocked(ctx context.Context, addr string) {
	if err := s.Request(ctx, RequestUnlock, addr, auth.Device{}); err != nil {
		s.log.Error("recording the sign-in unlock email failed", "err", err)
	}
}

// SendUnlock emails the account with the address, if there is one, a
// single-use link (valid UnlockTTL) that lifts the account-wide sign-in
// lock, and records an EventSignInLocked. It does nothing for an
// unknown address.
func (s *Service) SendUnlock(ctx context.Context, addr string) error {
	u, err := s.lookupEmail(ctx, addr)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if _, err := s.issue(ctx, u, latch.PurposeUnlockSignIn, true); err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil // deleted meanwhile
		}
		return err
	}
	s.event(ctx, &latch.Event{Type: latch.EventSignInLocked, UserID: u.ID})
	return nil
}

// UnlockSignIn lifts, with an unlock link's token, the account-wide
// sign-in lock of the user the link was sent to, and spends the link.
// Locks of single addresses stay (they hold only the addresses that
// failed). ErrInvalidToken if the token is not an unused, unexpired
// unlock token for the account's current address.
//
// The lock is lifted before the link is spent, so that a shared state
// that does not answer leaves the link usable; two concurrent uses both
// lift the lock, which is harmless.
func (s *Service) UnlockSignIn(ctx context.Context, token string, c auth.Device) error {
	if !secret.TokenShaped(token, UnlockTokenPrefix) {
		return ErrInvalidToken
	}
	now := s.clock()
	peek, err := s.store.AccountToken(ctx, secret.HashToken(token), latch.PurposeUnlockSignIn, now)
	if errors.Is(err, latch.ErrNotFound) {
		return ErrInvalidToken
	}
	if err != nil {
		return fmt.Errorf("account: read unlock token: %w", err)
	}
	u, err := s.store.UserByID(ctx, peek.UserID)
	if errors.Is(err, latch.ErrNotFound) || (err == nil && u.Email != peek.Email) {
		return ErrInvalidToken
	}
	if err != nil {
		return fmt.Errorf("account: load user: %w", err)
	}
	if s.throttle == nil {
		return errors.New("account: no sign-in throttle to unlock")
	}
	if err := s.throttle.Unlock(ctx, u.Email); err != nil {
		return fmt.Errorf("account: unlock sign-in: %w", err)
	}
	if _, err := s.store.ConsumeAccountToken(ctx, secret.HashToken(token), latch.PurposeUnlockSignIn, now); errors.Is(err, latch.ErrNotFound) {
		return ErrInvalidToken
	} else if err != nil {
		return fmt.Errorf("account: consume unlock token: %w", err)
	}
	s.event(ctx, &latch.Event{Type: latch.EventSignInUnlocked, UserID: u.ID, IP: c.IP, UserAgent: c.UserAgent})
	return nil
}
