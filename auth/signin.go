package auth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/password"
	"github.com/latchauth/latch/throttle"
)

// Authentication is the outcome of a credential check: who proved their
// identity, when, and how. Checking credentials and creating a session
// from them are separate steps, so that the JSON sign-in, the page
// sign-in (which also starts an SSO session) and the code flow compose
// the same two.
type Authentication struct {
	UserID string
	// Email is the account's canonical address (the throttle's and the
	// risk signals' key for it).
	Email string
	// Time is when the credentials were checked (the id_token's
	// auth_time).
	Time time.Time
	// AMR lists the methods used (RFC 8176): "pwd" for a password.
	AMR []string
	// Challenged: the user also answered a step-up challenge (a code
	// sent by email) for this sign-in; the guard does not ask again.
	Challenged bool
}

// Authenticate checks an email and password. It is throttled per address,
// per email and source, and per email (package throttle; the owner's
// known device, Guards.Devices, is spared the locks others caused),
// costs the same for an unknown email as for a wrong password, records
// the failure in the security log, and upgrades an outdated password
// hash. Errors: ErrInvalidCredentials, a *ThrottleError,
// ErrUserLocked, ErrEmailNotVerified, password.ErrBusy, or a store error.
//
// The address is looked up in its canonical form (package email), so every
// spelling of one identifier (case, width, the Kelvin sign, NFD) signs in
// to the one account and counts towards its lockout. An address the rules
// refuse matches no account, not even a legacy row stored in that form.
func (s *Service) Authenticate(ctx context.Context, addr, pw string, c Device) (*Authentication, error) {
	key, valid := emailKey(addr)
	reason := "unknown_email"
	if !valid {
		reason = "invalid_email"
		key = invalidEmailKey(key)
	}
	// The address's budget first: a flood costs no store reads. Then
	// the locks, which spare the owner's known device (so the user is
	// looked up first, the same way for an unknown email).
	if err := s.throttle.AllowAddress(ctx, c.IP); err != nil {
		s.metrics.Logins.WithLabelValues("rate_limited").Inc()
		return nil, err
	}
	u, err := (*latch.User)(nil), latch.ErrNotFound
	if valid {
		u, err = s.store.UserByEmail(ctx, key)
	}
	switch {
	case errors.Is(err, latch.ErrNotFound):
		u = nil
	case err != nil:
		return nil, s.loginError(fmt.Errorf("auth: look up user: %w", err))
	}
	var owner string
	if u != nil {
		owner = u.ID
	}
	at := throttle.Attempt{Account: key, IP: c.IP, KnownDevice: s.knownDevice(ctx, owner, c)}
	if err := s.throttle.Locked(ctx, at); err != nil {
		var te *ThrottleError
		if errors.As(err, &te) && errors.Is(te, ErrAccountLocked) {
			s.metrics.Logins.WithLabelValues("locked").Inc()
		} else {
			s.metrics.Logins.WithLabelValues("rate_limited").Inc()
		}
		return nil, err
	}
	if u == nil {
		if err := s.hasher.VerifyDummy(ctx, pw); err != nil {
			return nil, s.loginError(err)
		}
		s.throttle.Failed(ctx, at)
		s.metrics.Logins.WithLabelValues("invalid_credentials").Inc()
		s.event(ctx, &latch.Event{Type: latch.EventLoginFailed, IP: c.IP, UserAgent: c.UserAgent,
			Detail: map[string]string{"reason": reason}})
		return nil, ErrInvalidCredentials
	}
	ok, rehash, err := s.hasher.Verify(ctx, pw, u.PasswordHash)
	if err != nil && !errors.Is(err, password.ErrBusy) && ctx.Err() == nil {
		// An unreadable stored hash is the operator's problem, not the
		// client's: log it, and answer as for a wrong password.
		s.log.Error("stored password hash unusable", "user_id", u.ID, "err", err)
		ok, err = false, nil
	}
	if err != nil {
		return nil, s.loginError(err)
	}
	if !ok {
		s.throttle.Failed(ctx, at)
		s.metrics.Logins.WithLabelValues("invalid_credentials").Inc()
		s.event(ctx, &latch.Event{Type: latch.EventLoginFailed, UserID: u.ID, IP: c.IP, UserAgent: c.UserAgent,
			Detail: map[string]string{"reason": "wrong_password"}})
		return nil, ErrInvalidCredentials
	}
	if s.cfg.RequireVerifiedEmail && !u.EmailVerified() {
		// Answered and counted exactly as a wrong password: whoever
		// registered an address knows the password they chose, so a
		// different answer here would tell an address that was free
		// (now a new, unverified account) from one that is taken.
		s.throttle.Failed(ctx, at)
		s.metrics.Logins.WithLabelValues("email_not_verified").Inc()
		s.event(ctx, &latch.Event{Type: latch.EventLoginFailed, UserID: u.ID, IP: c.IP, UserAgent: c.UserAgent,
			Detail: map[string]string{"reason": "email_not_verified"}})
		return nil, ErrEmailNotVerified
	}
	s.throttle.Succeeded(ctx, at)
	if rehash {
		s.rehash(ctx, u, pw)
	}
	// Only someone who knows the password learns that the account is
	// locked or unverified.
	if u.Locked() {
		s.metrics.Logins.WithLabelValues("user_locked").Inc()
		s.event(ctx, &latch.Event{Type: latch.EventLoginFailed, UserID: u.ID, IP: c.IP, UserAgent: c.UserAgent,
			Detail: map[string]string{"reason": "account_locked"}})
		return nil, ErrUserLocked
	}
	return &Authentication{UserID: u.ID, Email: u.Email, Time: s.clock(), AMR: []string{"pwd"}}, nil
}

// SignIn is Login with a hook: link, if not nil, is called once the
// credentials are accepted and before the session is created, and returns
// the SSO session the new session records (Session.SSOSessionID). Latch's
// own sign-in page uses it to start the provider's SSO session.
func (s *Service) SignIn(ctx context.Context, addr, pw, clientID string, c Device, link func(context.Context, *Authentication) (string, error)) (*Tokens, error) {
	if clientID == "" {
		clientID = s.cfg.ClientID
	}
	delivery, err := s.delivery(ctx, clientID, false)
	if errors.Is(err, ErrUnauthorizedClient) {
		s.metrics.Logins.WithLabelValues("unauthorized_client").Inc()
		return nil, err
	}
	if err != nil {
		return nil, s.loginError(err)
	}
	a, err := s.Authenticate(ctx, addr, pw, c)
	if err != nil {
		return nil, err
	}
	return s.admit(ctx, a, clientID, delivery, c, link)
}

// Admit creates the session of an accepted authentication, as SignIn does
// once the password is checked: the sign-in guard screens it first (and
// may refuse it or ask for a challenge, see SignInGuard), then link (if
// not nil) names the SSO session it records. A completed challenge comes
// back through here with a.Challenged set.
func (s *Service) Admit(ctx context.Context, a *Authentication, clientID string, c Device, link func(context.Context, *Authentication) (string, error)) (*Tokens, error) {
	if clientID == "" {
		clientID = s.cfg.ClientID
	}
	delivery, err := s.delivery(ctx, clientID, false)
	if err != nil {
		return nil, s.loginError(err)
	}
	return s.admit(ctx, a, clientID, delivery, c, link)
}

func (s *Service) admit(ctx context.Context, a *Authentication, clientID, delivery string, c Device, link func(context.Context, *Authentication) (string, error)) (*Tokens, error) {
	var screen *Screening
	if s.guards.SignIn != nil {
		var err error
		screen, err = s.guards.SignIn.ScreenSignIn(ctx, a, clientID, c)
		switch {
		case errors.Is(err, ErrRiskDenied):
			s.metrics.Logins.WithLabelValues("risk_denied").Inc()
			return nil, err
		case errors.Is(err, ErrChallenge) && !a.Challenged && s.guards.Challenger != nil:
			id, err := s.guards.Challenger.Begin(ctx, a, clientID, c)
			if err != nil {
				return nil, s.loginError(err)
			}
			s.metrics.Logins.WithLabelValues("challenged").Inc()
			return nil, &ChallengeRequired{ID: id}
		case errors.Is(err, ErrChallenge):
			// Challenged already, or nobody to challenge with: the
			// guard's alert-level handling applies.
			screen, err = &Screening{}, nil
		case err != nil:
			return nil, s.loginError(err)
		}
	}
	if screen == nil {
		screen = &Screening{}
	}
	g := Grant{UserID: a.UserID, ClientID: clientID, AuthTime: a.Time, Device: c, Outbox: screen.Outbox}
	if link != nil {
		var err error
		if g.SSOSessionID, err = link(ctx, a); err != nil {
			return nil, s.loginError(err)
		}
	}
	t, err := s.StartSession(ctx, g)
	if err != nil {
		return nil, s.loginError(err)
	}
	s.deliver(t, delivery)
	s.metrics.Logins.WithLabelValues("success").Inc()
	s.event(ctx, &latch.Event{Type: latch.EventLoginSucceeded, UserID: a.UserID, SessionID: t.SessionID,
		ClientID: clientID, IP: c.IP, UserAgent: c.UserAgent, Detail: screen.Detail})
	if screen.Created != nil {
		screen.Created(ctx, t)
	}
	return t, nil
}

// Grant describes a session (refresh family) to start for an
// authenticated user.
type Grant struct {
	UserID   string
	ClientID string
	// SSOSessionID links the family to an SSO session (empty for none):
	// ending that SSO session revokes the family.
	SSOSessionID string
	// Scope granted, space-separated; a refresh may narrow it.
	Scope string
	// AuthTime is when the user authenticated; zero means now.
	AuthTime time.Time
	Device   Device
	// Outbox holds messages to enqueue in the transaction that creates
	// the session (see Screening.Outbox).
	Outbox []*latch.OutboxMessage
}

// StartSession creates a session at generation 1 and issues its first
// access and refresh tokens, enqueueing g.Outbox in the same store
// transaction. A locked user gets no session (ErrUserLocked), even one
// locked after its password was checked. It does not deliver them (cookies or body):
// the caller knows the client's mode. A family linked to an SSO session
// that has ended meanwhile is not created (an error matching
// latch.ErrNotFound).
func (s *Service) StartSession(ctx context.Context, g Grant) (*Tokens, error) {
	now := s.clock()
	refresh := newRefreshToken()
	c := boundClient(g.Device)
	authTime := g.AuthTime
	if authTime.IsZero() {
		authTime = now
	}
	sess := &latch.Session{
		ID: newID("s"), UserID: g.UserID, ClientID: g.ClientID, SSOSessionID: g.SSOSessionID, Scope: g.Scope,
		UserAgent: c.UserAgent, IP: c.IP,
		CreatedAt: now, AuthTime: authTime.UTC().Truncate(time.Microsecond), LastUsedAt: now,
		ExpiresAt: now.Add(s.cfg.RefreshAbsoluteTTL), Generation: 1,
	}
	ttl := s.accessLifetime(sess, now)
	sess.AccessExpiresAt = now.Add(ttl)
	if err := s.store.CreateSession(ctx, sess, hashToken(refresh), g.Outbox...); err != nil {
		if errors.Is(err, latch.ErrLocked) {
			// Locked between the password check and now: refused in the
			// statement that would have created the session.
			return nil, fmt.Errorf("auth: create session: %w: %w", ErrUserLocked, err)
		}
		return nil, fmt.Errorf("auth: create session: %w", err)
	}
	if len(g.Outbox) > 0 {
		s.notifyOutbox()
	}
	return s.tokens(sess, refresh, now, ttl, sess.Scope)
}

// narrowScope resolves the scope a refresh asks for against the session's
// grant: empty asks for the whole grant; anything else must be a subset of
// it (RFC 6749 §6), or ErrInvalidScope.
func narrowScope(granted, requested string) (string, error) {
	if strings.TrimSpace(requested) == "" {
		return granted, nil
	}
	have := strings.Fields(granted)
	var out []string
	for _, sc := range strings.Fields(requested) {
		if !slices.Contains(have, sc) {
			return "", ErrInvalidScope
		}
		if !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	return strings.Join(out, " "), nil
}
