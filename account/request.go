package account

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/auth"
	"github.com/latchauth/latch/outbox"
)

// OutboxRequest is the kind of outbox messages that are requests for an
// email about an account that may not exist (a forgotten password, a new
// verification link). The request is written before the answer, the same
// way whether or not the account exists; Service.Deliver looks it up.
const OutboxRequest = "account_request"

// Actions of an OutboxRequest.
const (
	// RequestForgot asks for a password-reset link (Service.Forgot).
	RequestForgot = "forgot"
	// RequestResend asks for a new verification link
	// (Service.ResendVerification).
	RequestResend = "resend"
	// RequestRegistered tells an account's owner that someone tried to
	// register with their address (Service.Registered). The server
	// records it instead of answering "email taken" when sign-in needs a
	// verified address, so registration does not reveal accounts.
	RequestRegistered = "registered"
	// RequestUnlock asks for a sign-in unlock link (Service.SendUnlock):
	// the sign-in throttle locked the account for everyone but its known
	// devices.
	RequestUnlock = "unlock"
)

// request is the payload of an OutboxRequest message.
type request struct {
	Action    string `json:"action"`
	Email     string `json:"email"`
	IP        string `json:"ip,omitempty"`
	UserAgent string `json:"user_agent,omitempty"`
}

// Request records a request for an email about the account with the
// address addr, durably, with the same one store write whatever the
// account: the caller answers after it and learns nothing.
func (s *Service) Request(ctx context.Context, action, addr string, c auth.Device) error {
	switch action {
	case RequestForgot, RequestResend, RequestRegistered, RequestUnlock:
	default:
		return fmt.Errorf("account: unknown request %q", action)
	}
	p, err := json.Marshal(request{Action: action, Email: addr, IP: c.IP, UserAgent: c.UserAgent})
	if err != nil {
		return fmt.Errorf("account: encode request: %w", err)
	}
	now := s.now().UTC()
	if err := s.store.EnqueueOutbox(ctx, &latch.OutboxMessage{Kind: OutboxRequest, Payload: p, CreatedAt: now, NotBefore: now}); err != nil {
		return fmt.Errorf("account: record request: %w", err)
	}
	if s.onOutbox != nil {
		s.onOutbox()
	}
	return nil
}

// Deliver carries out an OutboxRequest message: it implements
// outbox.Handler. A request delivered twice (the outbox is at least once)
// sends a second link, which is harmless: each is single-use.
func (s *Service) Deliver(ctx context.Context, m latch.OutboxMessage) error {
	var r request
	if err := json.Unmarshal(m.Payload, &r); err != nil || r.Email == "" {
		return outbox.Permanent(fmt.Errorf("account: request payload: %v", err))
	}
	switch r.Action {
	case RequestForgot:
		return s.Forgot(ctx, r.Email, auth.Device{IP: r.IP, UserAgent: r.UserAgent})
	case RequestResend:
		return s.ResendVerification(ctx, r.Email)
	case RequestRegistered:
		return s.Registered(ctx, r.Email, auth.Device{IP: r.IP, UserAgent: r.UserAgent})
	case RequestUnlock:
		return s.SendUnlock(ctx, r.Email)
	}
	return outbox.Permanent(fmt.Errorf("account: unknown request %q", r.Action))
}
