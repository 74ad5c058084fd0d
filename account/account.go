// Package account is the account lifecycle of Latch: email verification,
// password reset and change, and the operator's lock, unlock and delete.
// It works over the store's domain interfaces and calls package auth for
// password hashing and revocation; the emails it sends are enqueued in
// the durable outbox (latch.OutboxEmail) for package mail to deliver.
//
// Links carry a single-use token in the URL fragment (/verify#token=…,
// /reset#token=…): the fragment never reaches a server log or a Referer,
// and opening the link changes nothing. The page it opens acts only when
// its button POSTs the token, so a mail scanner that prefetches the link
// spends nothing.
package account

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/auth"
	"github.com/latchauth/latch/email"
	"github.com/latchauth/latch/password"
	"github.com/latchauth/latch/secret"
	"github.com/latchauth/latch/throttle"
)

// Email templates of package mail that this package enqueues.
const (
	TemplateVerifyEmail     = "verify_email"
	TemplateResetPassword   = "reset_password"
	TemplatePasswordChanged = "password_changed"
	// TemplateAlreadyRegistered tells an account's owner that someone
	// tried to register with their address.
	TemplateAlreadyRegistered = "already_registered"
	TemplateUnlockSignIn      = "unlock_sign_in"
)

// Token prefixes: a leaked token is recognisable by secret scanners, and a
// token of one purpose cannot be mistaken for another's.
const (
	VerifyTokenPrefix = "latch_ve_"
	ResetTokenPrefix  = "latch_pr_"
	UnlockTokenPrefix = "latch_ul_"
)

// Defaults of Config.
const (
	DefaultVerifyTTL = 48 * time.Hour
	DefaultResetTTL  = 30 * time.Minute
	DefaultUnlockTTL = time.Hour
	// DefaultMailsPerEmail is how many verification or reset emails one
	// address may be sent per DefaultMailsEvery (with that burst).
	DefaultMailsPerEmail = 3
	// DefaultMailsPerAccount is how many such emails one address may be
	// sent per DefaultMailsEvery from every client together.
	DefaultMailsPerAccount = 10
	DefaultMailsEvery      = time.Hour
)

// Errors of the Service. The server maps each to one answer.
var (
	// ErrInvalidToken: the link's token is unknown, used, expired, of
	// another purpose, or for an address the account no longer has.
	ErrInvalidToken = errors.New("the link is invalid, expired or already used")
	// ErrWrongPassword: the current password given to a change is wrong.
	ErrWrongPassword = errors.New("current password is incorrect")
	// ErrNotFound: no such user.
	ErrNotFound = errors.New("no such user")
	// ErrRateLimited: too many emails requested for one address.
	ErrRateLimited = errors.New("too many emails requested for this address")
)

// Config is the lifecycle's policy.
type Config struct {
	// Issuer is the server's issuer URL; links are absolute under it.
	Issuer string
	// VerifyTTL and ResetTTL are how long a link stays valid; zero
	// means DefaultVerifyTTL and DefaultResetTTL.
	VerifyTTL time.Duration
	ResetTTL  time.Duration
	// UnlockTTL is how long a sign-in unlock link stays valid; zero
	// means DefaultUnlockTTL.
	UnlockTTL time.Duration
	// MailsPerEmail emails per MailsEvery may be requested for one
	// address (forgot, resend) from one client address (or known
	// device), MailsPerAccount from all together; zero means the
	// defaults. A stranger spending their budget does not stop the owner
	// asking from home.
	MailsPerEmail   int
	MailsPerAccount int
	MailsEvery      time.Duration
}

// Deps are the Service's collaborators.
type Deps struct {
	Store latch.Store
	Auth  *auth.Service
	// Throttle is the sign-in throttle whose account-wide locks unlock
	// links lift; nil refuses every unlock link.
	Throttle *throttle.Policy
	// OnOutbox, if not nil, wakes the outbox worker after an enqueue. It
	// must not block.
	OnOutbox func()
	Log      *slog.Logger
	Now      func() time.Time // nil means time.Now
}

// Service runs the account lifecycle. It is safe for concurrent use.
type Service struct {
	cfg      Config
	store    latch.Store
	auth     *auth.Service
	throttle *throttle.Policy
	onOutbox func()
	log      *slog.Logger
	now      func() time.Time
	// mails counts the emails requested per address: in the sign-in
	// throttle's state (shared through Redis), or in memory without one.
	mails *throttle.Policy
}

// New returns a Service.
func New(cfg Config, d Deps) (*Service, error) {
	if d.Store == nil || d.Auth == nil {
		return nil, errors.New("account: store and auth service are required")
	}
	u, err := url.Parse(cfg.Issuer)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("account: issuer %q is not an absolute http(s) URL", cfg.Issuer)
	}
	cfg.Issuer = strings.TrimSuffix(cfg.Issuer, "/")
	if cfg.VerifyTTL <= 0 {
		cfg.VerifyTTL = DefaultVerifyTTL
	}
	if cfg.ResetTTL <= 0 {
		cfg.ResetTTL = DefaultResetTTL
	}
	if cfg.UnlockTTL <= 0 {
		cfg.UnlockTTL = DefaultUnlockTTL
	}
	if cfg.MailsPerEmail <= 0 {
		cfg.MailsPerEmail = DefaultMailsPerEmail
	}
	if cfg.MailsPerAccount <= 0 {
		cfg.MailsPerAccount = DefaultMailsPerAccount
	}
	if cfg.MailsEvery <= 0 {
		cfg.MailsEvery = DefaultMailsEvery
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	mails := d.Throttle
	if mails == nil {
		mails = throttle.New(throttle.Config{}, throttle.NewMemory(d.Now), throttle.Options{Log: d.Log})
	}
	return &Service{
		cfg: cfg, store: d.Store, auth: d.Auth, throttle: d.Throttle, onOutbox: d.OnOutbox, log: d.Log, now: d.Now,
		mails: mails,
	}, nil
}

// Config returns the service's configuration, defaults applied.
func (s *Service) Config() Config { return s.cfg }

func (s *Service) clock() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// link is the absolute URL of page with the token in its fragment.
func (s *Service) link(page, token string) string {
	return s.cfg.Issuer + page + "#token=" + token
}

// issue creates a token of the purpose for u and enqueues, in the same
// store transaction, the email of template carrying its link. It returns
// the link.
func (s *Service) issue(ctx context.Context, u *latch.User, purpose string, enqueue bool) (string, error) {
	prefix, page, template, ttl := VerifyTokenPrefix, "/verify", TemplateVerifyEmail, s.cfg.VerifyTTL
	switch purpose {
	case latch.PurposeResetPassword:
		prefix, page, template, ttl = ResetTokenPrefix, "/reset", TemplateResetPassword, s.cfg.ResetTTL
	case latch.PurposeUnlockSignIn:
		prefix, page, template, ttl = UnlockTokenPrefix, "/unlock", TemplateUnlockSignIn, s.cfg.UnlockTTL
	}
	tok, hash := secret.NewToken(prefix)
	now := s.clock()
	link := s.link(page, tok)
	t := &latch.AccountToken{Hash: hash, Purpose: purpose, UserID: u.ID, Email: u.Email, CreatedAt: now, ExpiresAt: now.Add(ttl)}
	var msg *latch.OutboxMessage
	if enqueue {
		data := map[string]string{"link": link, "expires_in": humanDuration(ttl)}
		if purpose == latch.PurposeUnlockSignIn && s.throttle != nil {
			data["lockout"] = humanDuration(s.throttle.Config().Lockout)
		}
		msg = &latch.OutboxMessage{Kind: latch.OutboxEmail, CreatedAt: now, NotBefore: now,
			Payload: latch.EmailMessage{To: u.Email, Template: template, Data: data}.Payload()}
	}
	if err := s.store.CreateAccountToken(ctx, t, msg); err != nil {
		if errors.Is(err, latch.ErrNotFound) {
			return "", ErrNotFound
		}
		return "", fmt.Errorf("account: create %s token: %w", purpose, err)
	}
	if enqueue && s.onOutbox != nil {
		s.onOutbox()
	}
	return link, nil
}

// humanDuration says d for an email: "30 minutes", "48 hours".
func humanDuration(d time.Duration) string {
	switch {
	case d >= 2*time.Hour && d%time.Hour == 0:
		return fmt.Sprintf("%d hours", d/time.Hour)
	case d == time.Hour:
		return "1 hour"
	case d >= time.Minute:
		return fmt.Sprintf("%d minutes", d/time.Minute)
	}
	return d.String()
}

// SendVerification emails u a link that verifies its address (after
// registration). Nothing is sent for an address verified already.
func (s *Service) SendVerification(ctx context.Context, u *latch.User) error {
	if u.EmailVerified() {
		return nil
	}
	_, err := s.issue(ctx, u, latch.PurposeVerifyEmail, true)
	return err
}

// VerifyEmail consumes a verification token and marks the address it was
// sent to verified, if the account still has it. ErrInvalidToken
// otherwise.
func (s *Service) VerifyEmail(ctx context.Context, token string, c auth.Device) (*latch.User, error) {
	if !secret.TokenShaped(token, VerifyTokenPrefix) {
		return nil, ErrInvalidToken
	}
	now := s.clock()
	t, err := s.store.ConsumeAccountToken(ctx, secret.HashToken(token), latch.PurposeVerifyEmail, now)
	if errors.Is(err, latch.ErrNotFound) {
		return nil, ErrInvalidToken
	}
	if err != nil {
		return nil, fmt.Errorf("account: consume verification token: %w", err)
	}
	if err := s.store.VerifyEmail(ctx, t.UserID, t.Email, now); errors.Is(err, latch.ErrNotFound) {
		return nil, ErrInvalidToken // the address changed (or the account went) since
	} else if err != nil {
		return nil, fmt.Errorf("account: verify email: %w", err)
	}
	s.event(ctx, &latch.Event{Type: latch.EventEmailVerified, UserID: t.UserID, IP: c.IP, UserAgent: c.UserAgent})
	u, err := s.store.UserByID(ctx, t.UserID)
	if err != nil {
		return nil, fmt.Errorf("account: load user: %w", err)
	}
	return u, nil
}

// Allow admits one request for an email to addr from c (a forgotten
// password, a new verification link), or returns a *auth.ThrottleError:
// the address's budget is the one sign-in spends (auth.Service.AllowAddress),
// the email's is MailsPerEmail per MailsEvery from one client address and
// MailsPerAccount from all (shared by every instance on one Redis).
// Unknown emails are counted exactly like known ones, so a refusal says
// nothing about the account.
func (s *Service) Allow(ctx context.Context, addr string, c auth.Device) error {
	if err := s.auth.AllowAddress(c.IP); err != nil {
		return err
	}
	return s.AllowEmail(ctx, addr, c)
}

// AllowEmail is Allow without the per-address budget: only the emails
// sent to addr are counted. The registration of a taken address uses it,
// since the registration drew on the address's budget already and a
// second draw would tell taken addresses apart.
func (s *Service) AllowEmail(ctx context.Context, addr string, c auth.Device) error {
	return s.mails.AllowMail(ctx, throttle.Attempt{Account: emailKey(addr), IP: c.IP},
		throttle.MailLimit{PerSource: s.cfg.MailsPerEmail, PerAccount: s.cfg.MailsPerAccount, Window: s.cfg.MailsEvery})
}

// emailKey is the per-email throttle's key: the canonical address, or a
// digest of a refused one (bounded size).
func emailKey(addr string) string {
	if c, err := email.Normalize(addr); err == nil {
		return c
	}
	h := sha256.Sum256([]byte(strings.ToLower(strings.TrimSpace(addr))))
	return "invalid " + base64.RawURLEncoding.EncodeToString(h[:])
}

// Forgot emails a reset link to the account with the address, if there
// is one, and does nothing otherwise. The caller answers the same either
// way, before calling it (see the server), so that neither the answer nor
// its timing tells whether the account exists; call Allow first.
func (s *Service) Forgot(ctx context.Context, addr string, c auth.Device) error {
	u, err := s.lookupEmail(ctx, addr)
	if errors.Is(err, ErrNotFound) {
		// The same token work as for an account, without a store write.
		_, _ = secret.NewToken(ResetTokenPrefix)
		return nil
	}
	if err != nil {
		return err
	}
	if _, err := s.issue(ctx, u, latch.PurposeResetPassword, true); err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil // deleted meanwhile
		}
		return err
	}
	s.event(ctx, &latch.Event{Type: latch.EventResetRequested, UserID: u.ID, IP: c.IP, UserAgent: c.UserAgent})
	return nil
}

// Registered tells the owner of the account with the address, if there
// is one, that someone tried to register with it (see RequestRegistered),
// and does nothing otherwise.
func (s *Service) Registered(ctx context.Context, addr string, c auth.Device) error {
	u, err := s.lookupEmail(ctx, addr)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	now := s.clock()
	m := &latch.OutboxMessage{Kind: latch.OutboxEmail, CreatedAt: now, NotBefore: now,
		Payload: latch.EmailMessage{To: u.Email, Template: TemplateAlreadyRegistered, Data: map[string]string{
			"when": now.Format(time.RFC1123), "ip": c.IP, "user_agent": c.UserAgent,
		}}.Payload()}
	if err := s.store.EnqueueOutbox(ctx, m); err != nil {
		return fmt.Errorf("account: enqueue already_registered email: %w", err)
	}
	if s.onOutbox != nil {
		s.onOutbox()
	}
	return nil
}

// ResendVerification emails a new verification link to the account with
// the address if it exists and is not verified, and does nothing
// otherwise; like Forgot, the caller answers before calling it.
func (s *Service) ResendVerification(ctx context.Context, addr string) error {
	u, err := s.lookupEmail(ctx, addr)
	if errors.Is(err, ErrNotFound) {
		_, _ = secret.NewToken(VerifyTokenPrefix)
		return nil
	}
	if err != nil {
		return err
	}
	if err := s.SendVerification(ctx, u); err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	return nil
}

func (s *Service) lookupEmail(ctx context.Context, addr string) (*latch.User, error) {
	c, err := email.Normalize(addr)
	if err != nil {
		return nil, ErrNotFound
	}
	u, err := s.store.UserByEmail(ctx, c)
	if errors.Is(err, latch.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("account: look up user: %w", err)
	}
	return u, nil
}

// ResetResult is the outcome of a password reset.
type ResetResult struct {
	UserID string
	// SessionsRevoked were signed out.
	SessionsRevoked bool
	// StillLocked: the account is locked for a reason a reset does not
	// lift (an operator's lock); the password was changed nevertheless.
	StillLocked bool
}

// ResetPassword sets a new password with a reset token. The password is
// checked against the policy first, so a weak one does not spend the
// link. Then, in order: the token is consumed (of concurrent resets with
// one link exactly one goes on), the password replaced, a lock of reason
// latch.LockReasonResetRequired lifted (any other lock stays), every
// session of the user revoked with a user cutoff, and a password_changed
// email enqueued. Errors: ErrInvalidToken, a *password.PolicyError,
// password.ErrBusy, or a store error.
func (s *Service) ResetPassword(ctx context.Context, token, pw string, c auth.Device) (*ResetResult, error) {
	if !secret.TokenShaped(token, ResetTokenPrefix) {
		return nil, ErrInvalidToken
	}
	hash, err := s.auth.HashPassword(ctx, pw)
	if err != nil {
		return nil, err
	}
	now := s.clock()
	// The request is checked in full before the link is spent: a refused
	// password leaves the link usable.
	peek, err := s.store.AccountToken(ctx, secret.HashToken(token), latch.PurposeResetPassword, now)
	if errors.Is(err, latch.ErrNotFound) {
		return nil, ErrInvalidToken
	}
	if err != nil {
		return nil, fmt.Errorf("account: read reset token: %w", err)
	}
	if err := password.Check(pw, peek.Email); err != nil {
		return nil, err
	}
	t, err := s.store.ConsumeAccountToken(ctx, secret.HashToken(token), latch.PurposeResetPassword, now)
	if errors.Is(err, latch.ErrNotFound) {
		return nil, ErrInvalidToken
	}
	if err != nil {
		return nil, fmt.Errorf("account: consume reset token: %w", err)
	}
	u, err := s.store.UserByID(ctx, t.UserID)
	if errors.Is(err, latch.ErrNotFound) || (err == nil && u.Email != t.Email) {
		return nil, ErrInvalidToken // the link was sent to an address the account no longer has
	}
	if err != nil {
		return nil, fmt.Errorf("account: load user: %w", err)
	}
	// Every session goes before the password changes: a crash between the
	// two leaves the old password and no session (ask again), never the
	// new password with an intruder's sessions alive.
	if err := s.auth.RevokeUser(ctx, u.ID, "password_reset", c); err != nil {
		return nil, fmt.Errorf("account: revoke sessions before reset: %w", err)
	}
	if err := s.store.SetPasswordHash(ctx, u.ID, hash, now); err != nil {
		return nil, fmt.Errorf("account: set password: %w", err)
	}
	s.retireResetLinks(ctx, u.ID, now)
	res := &ResetResult{UserID: u.ID, SessionsRevoked: true}
	if u.Locked() {
		err := s.store.UnlockUser(ctx, u.ID, latch.LockReasonResetRequired, now)
		switch {
		case errors.Is(err, latch.ErrConflict):
			res.StillLocked = true
		case err != nil:
			return nil, fmt.Errorf("account: unlock after reset: %w", err)
		default:
			s.event(ctx, &latch.Event{Type: latch.EventAccountUnlocked, UserID: u.ID, IP: c.IP, UserAgent: c.UserAgent,
				Detail: map[string]string{"by": "password_reset"}})
		}
	}
	s.event(ctx, &latch.Event{Type: latch.EventPasswordReset, UserID: u.ID, IP: c.IP, UserAgent: c.UserAgent})
	s.notifyChanged(ctx, u, now, c)
	return res, nil
}

// ChangePassword replaces the password of a signed-in user who gives the
// current one (checked like a sign-in: throttled, and counted as a
// failure when wrong). Every other session of the user is revoked and a
// user cutoff set; keepSession (the caller's) stays signed in and
// refreshes once. A password_changed email is enqueued. Errors:
// ErrWrongPassword, ErrNotFound, a *auth.ThrottleError, a
// *password.PolicyError, password.ErrBusy, or a store error. It returns
// how many sessions were revoked.
func (s *Service) ChangePassword(ctx context.Context, userID, keepSession, current, pw string, c auth.Device) (int, error) {
	u, err := s.store.UserByID(ctx, userID)
	if errors.Is(err, latch.ErrNotFound) {
		return 0, ErrNotFound
	}
	if err != nil {
		return 0, fmt.Errorf("account: load user: %w", err)
	}
	if err := password.Check(pw, u.Email); err != nil {
		return 0, err
	}
	// Checked like a sign-in; a right password of an account whose
	// email is unverified (and sign-in requires it) still proves it.
	if _, err := s.auth.Authenticate(ctx, u.Email, current, c); err != nil && !errors.Is(err, auth.ErrEmailNotVerified) {
		if errors.Is(err, auth.ErrInvalidCredentials) {
			return 0, ErrWrongPassword
		}
		return 0, err
	}
	hash, err := s.auth.HashPassword(ctx, pw)
	if err != nil {
		return 0, err
	}
	now := s.clock()
	if err := s.store.SetPasswordHash(ctx, u.ID, hash, now); err != nil {
		return 0, fmt.Errorf("account: set password: %w", err)
	}
	s.retireResetLinks(ctx, u.ID, now)
	n, err := s.auth.RevokeOtherSessions(ctx, u.ID, keepSession, "password_changed", c)
	if err != nil {
		return n, fmt.Errorf("account: revoke other sessions: %w", err)
	}
	s.event(ctx, &latch.Event{Type: latch.EventPasswordChanged, UserID: u.ID, SessionID: keepSession, IP: c.IP, UserAgent: c.UserAgent,
		Detail: map[string]string{"sessions_revoked": fmt.Sprint(n)}})
	s.notifyChanged(ctx, u, now, c)
	return n, nil
}

// notifyChanged enqueues the password_changed email. A failure is logged:
// the password did change.
func (s *Service) notifyChanged(ctx context.Context, u *latch.User, at time.Time, c auth.Device) {
	m := &latch.OutboxMessage{Kind: latch.OutboxEmail, CreatedAt: at, NotBefore: at,
		Payload: latch.EmailMessage{To: u.Email, Template: TemplatePasswordChanged, Data: map[string]string{
			"when": at.Format(time.RFC1123), "ip": c.IP, "user_agent": c.UserAgent,
		}}.Payload()}
	if err := s.store.EnqueueOutbox(ctx, m); err != nil {
		s.log.Error("enqueue password_changed email failed", "user_id", u.ID, "err", err)
		return
	}
	if s.onOutbox != nil {
		s.onOutbox()
	}
}

// Lookup finds a user by id or, if ref contains "@", by email.
func (s *Service) Lookup(ctx context.Context, ref string) (*latch.User, error) {
	if strings.Contains(ref, "@") {
		return s.lookupEmail(ctx, ref)
	}
	u, err := s.store.UserByID(ctx, ref)
	if errors.Is(err, latch.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("account: load user: %w", err)
	}
	return u, nil
}

// Lock locks the account with the reason (latch.LockReasonAdmin when
// empty) and revokes every session of the user with a user cutoff.
func (s *Service) Lock(ctx context.Context, userID, reason string, c auth.Device) error {
	if reason == "" {
		reason = latch.LockReasonAdmin
	}
	if err := s.auth.LockUser(ctx, userID, reason, c); errors.Is(err, latch.ErrNotFound) {
		return ErrNotFound
	} else if err != nil {
		return fmt.Errorf("account: lock: %w", err)
	}
	s.event(ctx, &latch.Event{Type: latch.EventAccountLocked, UserID: userID, IP: c.IP, UserAgent: c.UserAgent,
		Detail: map[string]string{"reason": reason}})
	return nil
}

// Unlock lifts the lock of the account, whatever its reason, and its
// account-wide sign-in lock (package throttle: shared through Redis, so
// `latch user unlock` reaches the servers only when redis is set).
func (s *Service) Unlock(ctx context.Context, userID string, c auth.Device) error {
	if err := s.store.UnlockUser(ctx, userID, "", s.clock()); errors.Is(err, latch.ErrNotFound) {
		return ErrNotFound
	} else if err != nil {
		return fmt.Errorf("account: unlock: %w", err)
	}
	if s.throttle != nil {
		if u, err := s.store.UserByID(ctx, userID); err == nil {
			if err := s.throttle.Unlock(ctx, u.Email); err != nil {
				s.log.Warn("lifting the sign-in lock failed; it ends on its own", "user_id", userID, "err", err)
			}
		}
	}
	s.event(ctx, &latch.Event{Type: latch.EventAccountUnlocked, UserID: userID, IP: c.IP, UserAgent: c.UserAgent})
	return nil
}

// Delete revokes every session of the user (a user cutoff covers the
// access tokens still out) and deletes the account with everything that
// belongs to it. The security log keeps its events.
func (s *Service) Delete(ctx context.Context, userID string, c auth.Device) error {
	if _, err := s.store.UserByID(ctx, userID); errors.Is(err, latch.ErrNotFound) {
		return ErrNotFound
	} else if err != nil {
		return fmt.Errorf("account: load user: %w", err)
	}
	if err := s.auth.RevokeUser(ctx, userID, "user_deleted", c); err != nil {
		return fmt.Errorf("account: revoke sessions of deleted user: %w", err)
	}
	if err := s.store.DeleteUser(ctx, userID); errors.Is(err, latch.ErrNotFound) {
		return ErrNotFound
	} else if err != nil {
		return fmt.Errorf("account: delete: %w", err)
	}
	s.event(ctx, &latch.Event{Type: latch.EventUserDeleted, UserID: userID, IP: c.IP, UserAgent: c.UserAgent})
	return nil
}

// SendReset emails the user a password-reset link, as Forgot does for a
// known address but without its per-address rate limit: the caller acts
// for the account's owner (by names why, recorded in the event, such as
// "not_me" after "this wasn't me").
func (s *Service) SendReset(ctx context.Context, u *latch.User, by string) error {
	if _, err := s.issue(ctx, u, latch.PurposeResetPassword, true); err != nil {
		return err
	}
	s.event(ctx, &latch.Event{Type: latch.EventResetRequested, UserID: u.ID, Detail: map[string]string{"by": by}})
	return nil
}

// ResetLink creates a reset token for the user exactly as Forgot does and
// returns its link instead of emailing it (support staff hand it over
// through a channel they trust).
func (s *Service) ResetLink(ctx context.Context, userID string) (link string, expires time.Duration, err error) {
	u, err := s.store.UserByID(ctx, userID)
	if errors.Is(err, latch.ErrNotFound) {
		return "", 0, ErrNotFound
	}
	if err != nil {
		return "", 0, fmt.Errorf("account: load user: %w", err)
	}
	link, err = s.issue(ctx, u, latch.PurposeResetPassword, false)
	if err != nil {
		return "", 0, err
	}
	s.event(ctx, &latch.Event{Type: latch.EventResetRequested, UserID: u.ID, Detail: map[string]string{"by": "cli"}})
	return link, s.cfg.ResetTTL, nil
}

// event records e; a failure is logged, never returned.
func (s *Service) event(ctx context.Context, e *latch.Event) {
	if e.At.IsZero() {
		e.At = s.clock()
	}
	if err := s.store.AddEvent(ctx, e); err != nil {
		s.log.Warn("recording security event failed", "type", e.Type, "err", err)
	}
}

// retireResetLinks ends every other reset link of the user once the
// password changed: one requested by someone who briefly had the mailbox
// must not outlive the owner's reset. A failure is logged: those links
// still expire within ResetTTL.
func (s *Service) retireResetLinks(ctx context.Context, userID string, now time.Time) {
	if _, err := s.store.RetireAccountTokens(ctx, userID, latch.PurposeResetPassword, now); err != nil {
		s.log.Warn("retiring the other reset links failed; they expire on their own", "user_id", userID, "err", err)
	}
}
