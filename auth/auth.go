// Package auth is the heart of the Latch server: it signs users in, issues
// access tokens and rotating refresh tokens, detects refresh-token reuse,
// and revokes sessions. It is transport-agnostic; package server puts HTTP
// in front of it.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/email"
	"github.com/latchauth/latch/password"
	"github.com/latchauth/latch/throttle"
	"github.com/latchauth/latch/verifier"
	"github.com/latchauth/latch/verifier/revocation"
)

// Errors returned by the Service. The server maps each to one HTTP answer;
// none of them says more than the client is entitled to know.
var (
	// ErrInvalidCredentials: unknown email or wrong password (never which).
	ErrInvalidCredentials = errors.New("invalid credentials")
	// ErrInvalidGrant: the refresh token is unknown, expired, revoked or
	// reused.
	ErrInvalidGrant = errors.New("invalid grant")
	// ErrRegistrationDisabled: self-service registration is off.
	ErrRegistrationDisabled = errors.New("registration is disabled")
	// ErrEmailTaken: an account with that email exists.
	ErrEmailTaken = errors.New("email is already registered")
	// ErrInvalidEmail: the email is not an acceptable address; the error
	// returned is an *email.Error that says why.
	ErrInvalidEmail = email.ErrInvalid
	// ErrNotFound: the session does not exist or is not the caller's.
	ErrNotFound = errors.New("not found")
	// ErrUserLocked: the password was right but the account is locked
	// (latch.User.LockedAt); only a password holder learns it.
	ErrUserLocked = errors.New("account is locked")
	// ErrEmailNotVerified: the password was right but the account's
	// email is not verified and Config.RequireVerifiedEmail is set. It
	// matches ErrInvalidCredentials, and clients must be answered as for
	// a wrong password: whoever registered an address knows the password
	// they chose, so another answer would tell a free address from a
	// taken one.
	ErrEmailNotVerified = fmt.Errorf("email address is not verified: %w", ErrInvalidCredentials)
)

// RefreshTokenPrefix starts every refresh token, so that secret scanners can
// recognise a leaked one.
const RefreshTokenPrefix = "latch_rt_"

// refreshTokenLen is the prefix plus 32 random bytes in unpadded base64url.
var refreshTokenLen = len(RefreshTokenPrefix) + base64.RawURLEncoding.EncodedLen(32)

// Signer signs access-token claims with the active key of the ring.
type Signer interface {
	Sign(claims jwt.Claims) (string, error)
}

// Sealer encrypts the successor refresh token kept for the grace window
// and keys the MACs of CSRF tokens.
type Sealer interface {
	Seal(plaintext, aad []byte) []byte
	Open(sealed, aad []byte) ([]byte, error)
	MAC(purpose string, msg []byte) []byte
}

// Config holds the token and session policy.
type Config struct {
	Issuer   string
	Audience string
	// ClientID is the first-party client that /v1/auth/* sessions belong to.
	ClientID string
	// AccessTokenTTL is the access-token lifetime; AccessTokenJitter, when
	// non-zero, shortens each token by a random amount up to it so that a
	// fleet of clients does not refresh in lockstep.
	AccessTokenTTL    time.Duration
	AccessTokenJitter time.Duration
	// RefreshIdleTimeout ends a session unused for that long;
	// RefreshAbsoluteTTL ends every session that long after sign-in.
	RefreshIdleTimeout time.Duration
	RefreshAbsoluteTTL time.Duration
	// RefreshGrace is how long after a rotation the previous refresh token
	// still yields the identical successor; 0 disables the grace window.
	// Only the device that made the rotation gets it (see GraceRule).
	RefreshGrace time.Duration
	// RefreshGraceReplays is how many times per rotation the previous
	// token may be answered with the successor after the rotation's
	// concurrent burst (GraceBurst); 0 allows the burst only.
	RefreshGraceReplays int
	// Leeway is the clock skew verifiers tolerate; revocation entries are
	// kept that much longer than the tokens they cover.
	Leeway time.Duration
	// Registration enables POST /v1/auth/register.
	Registration bool
	// RequireVerifiedEmail refuses sign-in (ErrEmailNotVerified, answered
	// as a wrong password) to
	// users whose email is not verified.
	RequireVerifiedEmail bool
	// Throttle bounds sign-in attempts per address and per email.
	Throttle ThrottleConfig
	// IDTokenAlgorithms are the JWS algorithms id_tokens can be signed
	// with, which a client may register as its id_token_signed_response_alg
	// (keys.Ring.IDTokenAlgorithms). Empty means RS256 only.
	IDTokenAlgorithms []string
}

// Device describes the device a request came from.
type Device struct {
	IP        string
	UserAgent string
	// DeviceID is the id of the browser's device cookie, once its MAC
	// was checked (see package device). A browser that brought no valid
	// cookie gets a fresh id, never known to anyone, which its cookie
	// carries once it signed in; empty for a client that is not a
	// browser.
	DeviceID string
}

// Tokens is what a sign-in or a refresh yields.
type Tokens struct {
	AccessToken      string
	ExpiresIn        time.Duration
	RefreshToken     string
	RefreshExpiresIn time.Duration
	SessionID        string
	UserID           string
	// Scope of the access token: a client's own token (client
	// credentials), or a session's granted (or narrowed) scope.
	Scope string
	// SSOSessionID is the SSO session the session was created from, and
	// AuthTime when its user last authenticated (id_token claims).
	SSOSessionID string
	AuthTime     time.Time
	// ClientID and Delivery describe the client the session belongs to;
	// the server delivers the tokens accordingly.
	ClientID string
	Delivery string
	// CSRFToken is the session's anti-CSRF token, for browser deliveries.
	CSRFToken string
}

// Service implements sign-in, refresh rotation and revocation.
type Service struct {
	cfg      Config
	store    latch.Store
	signer   Signer
	sealer   Sealer
	hasher   *password.Hasher
	revs     *revocation.Set
	throttle *throttle.Policy
	guards   Guards
	onRevoke func(ctx context.Context)
	onOutbox func()
	verifier *verifier.Verifier // may be nil
	audience *audiences
	metrics  *Metrics
	log      *slog.Logger
	now      func() time.Time
}

// Deps are the collaborators of a Service.
type Deps struct {
	Store       latch.Store
	Signer      Signer
	Sealer      Sealer
	Hasher      *password.Hasher
	Revocations *revocation.Set
	// Verifier checks access tokens presented for revocation or
	// introspection that carry the server's audience.
	Verifier *verifier.Verifier
	// VerifierFor, if not nil, returns a verifier like Verifier that
	// accepts another audience: a registered client's, for the tokens
	// issued to it. The service calls it once per audience and keeps a
	// bounded number of them.
	VerifierFor func(audience string) (*verifier.Verifier, error)
	Metrics     *Metrics // may be nil
	// Throttle, if not nil, throttles sign-ins (shared with other
	// instances when its state is); nil means one over Config.Throttle
	// in this instance's memory.
	Throttle *throttle.Policy
	// OnRevoke, if not nil, is called after a revocation was written, to
	// tell other instances (see package redis). It must not block.
	OnRevoke func(ctx context.Context)
	// OnOutbox, if not nil, is called after something was enqueued in the
	// durable outbox (an SSO session ended), to wake its worker. It must
	// not block.
	OnOutbox func()
	Log      *slog.Logger
	Now      func() time.Time // nil means time.Now
}

// New returns a Service. It checks that the configuration is usable.
func New(cfg Config, d Deps) (*Service, error) {
	switch {
	case cfg.Issuer == "":
		return nil, errors.New("auth: issuer is required")
	case cfg.Audience == "":
		return nil, errors.New("auth: audience is required")
	case cfg.ClientID == "":
		return nil, errors.New("auth: client id is required")
	case cfg.AccessTokenTTL <= 0:
		return nil, errors.New("auth: access token lifetime must be positive")
	case cfg.AccessTokenJitter < 0 || cfg.AccessTokenJitter >= cfg.AccessTokenTTL:
		return nil, errors.New("auth: access token jitter must be at least 0 and less than the lifetime")
	case cfg.RefreshIdleTimeout <= 0 || cfg.RefreshAbsoluteTTL <= 0:
		return nil, errors.New("auth: refresh token lifetimes must be positive")
	case cfg.RefreshGrace < 0:
		return nil, errors.New("auth: refresh grace window must not be negative")
	case cfg.RefreshGraceReplays < 0:
		return nil, errors.New("auth: refresh grace replays must not be negative")
	case d.Store == nil || d.Signer == nil || d.Sealer == nil || d.Hasher == nil || d.Revocations == nil:
		return nil, errors.New("auth: store, signer, sealer, hasher and revocations are required")
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
	if d.Metrics == nil {
		d.Metrics = NewMetrics(nil)
	}
	if d.Throttle == nil {
		d.Throttle = throttle.New(cfg.Throttle, throttle.NewMemory(d.Now), throttle.Options{Log: d.Log})
	}
	return &Service{
		throttle: d.Throttle,
		cfg:      cfg, store: d.Store, signer: d.Signer, sealer: d.Sealer, hasher: d.Hasher,
		revs: d.Revocations, onRevoke: d.OnRevoke, onOutbox: d.OnOutbox, verifier: d.Verifier, metrics: d.Metrics, log: d.Log, now: d.Now,
		audience: newAudiences(cfg.Audience, d.Verifier, d.VerifierFor),
	}, nil
}

// clock is the current time at the precision stores keep (microseconds),
// so that durations computed from stored times come out whole.
func (s *Service) clock() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// Config returns the service's configuration.
func (s *Service) Config() Config { return s.cfg }

// NormalizeEmail returns the canonical form of an email address under
// package email's rules, or, for an address those rules refuse, the input
// trimmed and lower-cased: a key that sign-in throttling can count, and
// that no account holds.
func NormalizeEmail(addr string) string {
	key, _ := emailKey(addr)
	return key
}

// emailKey is NormalizeEmail, and whether the address is valid.
func emailKey(addr string) (key string, valid bool) {
	if c, err := email.Normalize(addr); err == nil {
		return c, true
	}
	return strings.ToLower(strings.TrimSpace(addr)), false
}

// invalidEmailKey is the throttle's key for an address the rules refuse: a
// digest of fixed size, since such an address may be as long as a request
// body (64 KB), and the throttle keeps up to maxTracked keys. It contains
// a space, so no canonical address has it.
func invalidEmailKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "invalid " + base64.RawURLEncoding.EncodeToString(sum[:])
}

// Register creates an account through self-service registration. It is
// throttled per address like sign-in (a *ThrottleError of kind
// ErrRateLimited).
func (s *Service) Register(ctx context.Context, addr, pw string, c Device) (*latch.User, error) {
	if !s.cfg.Registration {
		return nil, ErrRegistrationDisabled
	}
	// Each registration costs a password hash: it draws on the address's
	// sign-in budget, or "email taken" answers would be a free oracle and
	// a way to burn CPU.
	if err := s.throttle.AllowAddress(ctx, c.IP); err != nil {
		return nil, err
	}
	return s.CreateUser(ctx, addr, pw, c)
}

// CreateUser creates an account regardless of the registration setting; the
// command line uses it.
//
// The address is stored in its canonical form (package email); one that
// the rules refuse fails with an error matching ErrInvalidEmail and
// email.ErrInvalid, which says why.
func (s *Service) CreateUser(ctx context.Context, addr, pw string, c Device) (*latch.User, error) {
	addr, err := email.Normalize(addr)
	if err != nil {
		return nil, err
	}
	if err := password.Check(pw, addr); err != nil {
		return nil, err
	}
	hash, err := s.hasher.Hash(ctx, pw)
	if err != nil {
		return nil, fmt.Errorf("auth: hash password: %w", err)
	}
	now := s.clock()
	u := &latch.User{ID: newID("u"), Email: addr, PasswordHash: hash, CreatedAt: now, UpdatedAt: now}
	if err := s.store.CreateUser(ctx, u); err != nil {
		if errors.Is(err, latch.ErrConflict) {
			return nil, ErrEmailTaken
		}
		return nil, fmt.Errorf("auth: create user: %w", err)
	}
	s.event(ctx, &latch.Event{Type: latch.EventUserCreated, UserID: u.ID, IP: c.IP, UserAgent: c.UserAgent})
	return u, nil
}

// DecoyUserID returns an id shaped like a new user's that names no user:
// the answer to a registration whose address is taken, where the server
// must not tell (see accounts.require_verified_email).
func DecoyUserID() string { return newID("u") }

// Login checks an email and password and starts a session. Unknown emails
// cost the same hash as known ones, and both fail with
// ErrInvalidCredentials. password.ErrBusy means the hashing capacity is
// exhausted; the caller should answer 503.
//
// clientID names the first-party client the session is for: empty for the
// server's own (Config.ClientID), otherwise a registered public client, or
// ErrUnauthorizedClient.
//
// The address is looked up in its canonical form (package email), so every
// spelling of one identifier (case, width, the Kelvin sign, NFD) signs in
// to the one account and counts towards its lockout. An address the rules
// refuse matches no account, not even a legacy row stored in that form.
func (s *Service) Login(ctx context.Context, addr, pw, clientID string, c Device) (*Tokens, error) {
	return s.SignIn(ctx, addr, pw, clientID, c, nil)
}

func (s *Service) loginError(err error) error {
	if errors.Is(err, password.ErrBusy) {
		s.metrics.Logins.WithLabelValues("busy").Inc()
	} else {
		s.metrics.Logins.WithLabelValues("error").Inc()
	}
	return err
}

// HashPassword hashes a password with the service's hasher, after the
// password policy.
func (s *Service) HashPassword(ctx context.Context, pw string) (string, error) {
	if err := password.Check(pw, ""); err != nil {
		return "", err
	}
	return s.hasher.Hash(ctx, pw)
}

// rehash upgrades a password hash made with other parameters. A failure
// only delays the upgrade to the next sign-in.
func (s *Service) rehash(ctx context.Context, u *latch.User, pw string) {
	hash, err := s.hasher.Hash(ctx, pw)
	if err == nil {
		err = s.store.SetPasswordHash(ctx, u.ID, hash, s.clock())
	}
	if err != nil {
		s.log.Warn("password rehash failed", "user_id", u.ID, "err", err)
	}
}

// tokens issues an access token of lifetime ttl for the session and packs
// the response. The session's AccessExpiresAt must already cover now+ttl
// in the store: a revocation racing with this request then still outlives
// the token.
//
// scope is the access token's scope: the session's, or on a refresh a
// narrower one the client asked for (RFC 6749 §6).
func (s *Service) tokens(sess *latch.Session, refresh string, now time.Time, ttl time.Duration, scope string) (*Tokens, error) {
	access, err := s.mintAccess(accessToken{
		Subject: sess.UserID, Audience: s.cfg.Audience, ClientID: sess.ClientID, SessionID: sess.ID,
		Scope: scope, AuthTime: sess.AuthTime, IssuedAt: now, TTL: ttl,
	})
	if err != nil {
		return nil, err
	}
	return &Tokens{
		AccessToken: access, ExpiresIn: ttl,
		RefreshToken: refresh, RefreshExpiresIn: s.sessionExpiry(sess).Sub(now),
		SessionID: sess.ID, UserID: sess.UserID, Scope: scope,
		ClientID: sess.ClientID, SSOSessionID: sess.SSOSessionID, AuthTime: sess.AuthTime,
	}, nil
}

// accessLifetime is the lifetime of an access token minted from the
// session now: the configured one (with jitter), never past the session's
// end, in whole seconds.
func (s *Service) accessLifetime(sess *latch.Session, now time.Time) time.Duration {
	ttl := s.accessTTL()
	// A refresh token never outlives its session; neither does an access
	// token minted from it.
	if end := s.sessionExpiry(sess); now.Add(ttl).After(end) {
		ttl = end.Sub(now)
	}
	return ttl.Truncate(time.Second)
}

// accessTTL is the lifetime of a new access token: the configured one,
// shortened by a random whole number of seconds up to the jitter.
func (s *Service) accessTTL() time.Duration {
	ttl := s.cfg.AccessTokenTTL
	if j := s.cfg.AccessTokenJitter; j > 0 {
		n, err := rand.Int(rand.Reader, big.NewInt(int64(j/time.Second)+1))
		if err == nil {
			ttl -= time.Duration(n.Int64()) * time.Second
		}
	}
	return ttl
}

// sessionExpiry is when the session ends if it is not used again.
func (s *Service) sessionExpiry(sess *latch.Session) time.Time {
	idle := sess.LastUsedAt.Add(s.cfg.RefreshIdleTimeout)
	if idle.Before(sess.ExpiresAt) {
		return idle
	}
	return sess.ExpiresAt
}

// maxRotationAttempts bounds the retries when concurrent refreshes of one
// session race; each conflict means another request advanced the session,
// after which this one resolves through the grace rule or as reuse.
const maxRotationAttempts = 8

// Refresh redeems a refresh token for a new access token and the next
// refresh token. The previous token, presented again within the grace
// window, yields the identical successor; any other reuse revokes the
// session. Every failure is ErrInvalidGrant (or a store error).
//
// This is the API's refresh: the token came in a request body, so the
// session must belong to a client that receives tokens as bearer tokens. A
// browser client's token (delivered in a cookie) is refused here, unspent.
func (s *Service) Refresh(ctx context.Context, refresh string, c Device) (*Tokens, error) {
	return s.refreshChecked(ctx, refresh, "", "", false, c, func(sess *latch.Session, delivery string) error {
		if delivery != latch.DeliveryBearer {
			return errWrongDelivery
		}
		return nil
	})
}

// RefreshFromCookie redeems a refresh token that arrived in the browser's
// refresh cookie. The session must belong to a cookie or memory client, and
// csrf must be the session's CSRF token; otherwise nothing is consumed.
func (s *Service) RefreshFromCookie(ctx context.Context, refresh, csrf string, c Device) (*Tokens, error) {
	return s.refreshChecked(ctx, refresh, "", "", false, c, func(sess *latch.Session, delivery string) error {
		if delivery == latch.DeliveryBearer {
			return errWrongDelivery
		}
		if !s.CheckCSRF(sess.ID, csrf) {
			return ErrCSRF
		}
		return nil
	})
}

// errWrongDelivery: a token arrived by another way than its client's mode.
var errWrongDelivery = errors.New("refresh token presented outside its client's delivery mode")

// ErrCSRF: the anti-CSRF token is missing or not the session's.
var ErrCSRF = errors.New("csrf token mismatch")

// refreshChecked runs check on the token's session and its client's
// delivery mode before anything else happens to the session (no rotation,
// no reuse detection): a token presented the wrong way is refused unspent.
// via is the client that authenticated the request ("" when none did); it
// is part of the device a grace replay must match.
//
// confidential admits the sessions of confidential clients; only the
// token endpoint, which authenticated the client, sets it (RFC 6749 §6).
func (s *Service) refreshChecked(ctx context.Context, refresh, via, scope string, confidential bool, c Device, check func(*latch.Session, string) error) (*Tokens, error) {
	t, outcome, err := s.refresh(ctx, refresh, via, scope, confidential, c, check)
	s.metrics.Refreshes.WithLabelValues(outcome).Inc()
	if errors.Is(err, errWrongDelivery) {
		err = ErrInvalidGrant
	}
	return t, err
}

func (s *Service) refresh(ctx context.Context, refresh, via, scope string, confidential bool, c Device, check func(*latch.Session, string) error) (*Tokens, string, error) {
	if !wellFormedRefreshToken(refresh) {
		return nil, "invalid", ErrInvalidGrant
	}
	hash := hashToken(refresh)
	device := s.device(via, c)
	for range maxRotationAttempts {
		rt, err := s.store.RefreshToken(ctx, hash)
		if errors.Is(err, latch.ErrNotFound) {
			return nil, "invalid", ErrInvalidGrant
		}
		if err != nil {
			return nil, "error", fmt.Errorf("auth: look up refresh token: %w", err)
		}
		sess, err := s.store.Session(ctx, rt.SessionID)
		if errors.Is(err, latch.ErrNotFound) {
			return nil, "invalid", ErrInvalidGrant
		}
		if err != nil {
			return nil, "error", fmt.Errorf("auth: load session: %w", err)
		}
		delivery, err := s.delivery(ctx, sess.ClientID, confidential)
		if errors.Is(err, ErrUnauthorizedClient) {
			// Its client is gone, or is confidential and did not
			// authenticate: refused unspent.
			return nil, "wrong_client", ErrInvalidGrant
		}
		if err != nil {
			return nil, "error", err
		}
		if err := check(sess, delivery); err != nil {
			if errors.Is(err, ErrCSRF) {
				return nil, "csrf", err
			}
			return nil, "wrong_client", err
		}
		granted, err := narrowScope(sess.Scope, scope)
		if err != nil {
			return nil, "invalid_scope", err
		}
		if sess.Revoked() {
			return nil, "revoked", ErrInvalidGrant
		}
		now := s.clock()
		if !now.Before(s.sessionExpiry(sess)) {
			return nil, "expired", ErrInvalidGrant
		}
		if s.guards.Refresh != nil {
			if err := s.guards.Refresh.ScreenRefresh(ctx, sess, c); errors.Is(err, ErrRiskDenied) {
				return nil, "risk_denied", err
			} else if err != nil {
				return nil, "error", fmt.Errorf("auth: screen refresh: %w", err)
			}
		}
		switch {
		case rt.Generation == sess.Generation:
			next := newRefreshToken()
			rotated := *sess // as the rotation leaves it: used now
			rotated.LastUsedAt = now
			ttl := s.accessLifetime(&rotated, now)
			err := s.store.Rotate(ctx, latch.Rotation{
				SessionID: sess.ID, FromGeneration: sess.Generation,
				NewHash: hashToken(next), Successor: s.sealer.Seal([]byte(next), []byte(sess.ID)), At: now,
				RotatedBy: device, AccessExpiresAt: now.Add(ttl),
			})
			if errors.Is(err, latch.ErrConflict) {
				continue // another request rotated first: look again
			}
			if err != nil {
				return nil, "error", fmt.Errorf("auth: rotate session: %w", err)
			}
			sess.Generation++
			sess.LastUsedAt, sess.RotatedAt = now, now
			t, err := s.tokens(sess, next, now, ttl, granted)
			if err != nil {
				return nil, "error", err
			}
			s.deliver(t, delivery)
			return t, "rotated", nil

		case rt.Generation == sess.Generation-1 && s.inGrace(sess, now):
			replay, why := s.graceRule().Allows(sess, device, now)
			if why != "" {
				s.reuseDetected(ctx, sess, rt, c, now, why)
				return nil, "reused", ErrInvalidGrant
			}
			next, err := s.sealer.Open(sess.Successor, []byte(sess.ID))
			if err != nil {
				return nil, "error", fmt.Errorf("auth: open successor of session %s: %w", sess.ID, err)
			}
			ttl := s.accessLifetime(sess, now)
			replay.AccessExpiresAt = now.Add(ttl)
			count, err := s.store.ReplayGrace(ctx, replay)
			if errors.Is(err, latch.ErrConflict) {
				continue // rotated, revoked or the last replay taken meanwhile: look again
			}
			if err != nil {
				return nil, "error", fmt.Errorf("auth: record grace replay: %w", err)
			}
			t, err := s.tokens(sess, string(next), now, ttl, granted)
			if err != nil {
				return nil, "error", err
			}
			s.deliver(t, delivery)
			s.event(ctx, &latch.Event{
				Type: latch.EventRefreshGraceReplay, UserID: sess.UserID, SessionID: sess.ID, ClientID: sess.ClientID,
				IP: c.IP, UserAgent: truncate(c.UserAgent, 512),
				Detail: map[string]string{
					"generation": fmt.Sprint(rt.Generation), "count": fmt.Sprint(count),
					"limit": fmt.Sprint(s.cfg.RefreshGraceReplays), "burst": fmt.Sprint(!replay.Counted),
				},
			})
			return t, "grace", nil

		default:
			s.reuseDetected(ctx, sess, rt, c, now, "superseded")
			return nil, "reused", ErrInvalidGrant
		}
	}
	return nil, "error", fmt.Errorf("auth: refresh of a session kept conflicting after %d attempts", maxRotationAttempts)
}

func (s *Service) inGrace(sess *latch.Session, now time.Time) bool {
	return s.cfg.RefreshGrace > 0 && len(sess.Successor) > 0 && !sess.RotatedAt.IsZero() &&
		now.Sub(sess.RotatedAt) <= s.cfg.RefreshGrace
}

// reuseTimeout bounds the revocation that follows a reuse detection, which
// runs on after the client went away.
const reuseTimeout = 10 * time.Second

// reuseDetected revokes a session whose superseded refresh token came back:
// either the legitimate client or a thief holds a copy, and the server
// cannot tell which, so neither keeps the session. why says which rule
// the presentation broke: superseded (older than the previous generation,
// or after the grace window), other_device, replays_exhausted.
//
// The revocation must not depend on the presenter staying connected (a
// thief would hang up at once): it runs under a context of its own.
func (s *Service) reuseDetected(ctx context.Context, sess *latch.Session, rt *latch.RefreshToken, c Device, now time.Time, why string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), reuseTimeout)
	defer cancel()
	s.metrics.ReuseDetections.Inc()
	if sess.SSOSessionID != "" {
		// The family came from an SSO session: the thief may hold that
		// browser's sign-in too. End it, with every family it made and a
		// back-channel logout to each app it served.
		if _, err := s.store.EndSSOSession(ctx, sess.SSOSessionID, latch.EventRefreshReused, now, s.cover(now)); err != nil {
			s.log.Error("ending the SSO session after refresh-token reuse failed", "session_id", sess.ID, "err", err)
		} else {
			s.metrics.Revocations.WithLabelValues("sso_session").Inc()
			s.syncRevocations(ctx)
			s.notifyOutbox()
		}
	}
	revoked, err := s.store.RevokeSession(ctx, sess.ID, latch.EventRefreshReused, now, s.cover(now))
	if err != nil {
		s.log.Error("revoking session after refresh-token reuse failed", "session_id", sess.ID, "err", err)
		return
	}
	if revoked {
		s.metrics.Revocations.WithLabelValues("session").Inc()
		s.syncRevocations(ctx)
	}
	s.event(ctx, &latch.Event{
		Type: latch.EventRefreshReused, UserID: sess.UserID, SessionID: sess.ID, ClientID: sess.ClientID,
		IP: c.IP, UserAgent: truncate(c.UserAgent, 512),
		Detail: map[string]string{
			"reason":               why,
			"presented_generation": fmt.Sprint(rt.Generation),
			"current_generation":   fmt.Sprint(sess.Generation),
			"session_ip":           sess.IP,
			"session_user_agent":   sess.UserAgent,
			"last_rotated_at":      sess.RotatedAt.Format(time.RFC3339),
			"grace_replays":        fmt.Sprint(sess.GraceReplays),
		},
	})
	s.log.Warn("refresh token reuse detected: session revoked", "session_id", sess.ID, "user_id", sess.UserID,
		"presented_generation", rt.Generation, "current_generation", sess.Generation, "reason", why, "ip", c.IP)
}

// cover is how long a revocation written now must live: past every access
// token issued up to now under the current lifetime and, through the
// stores' record of each session's latest token, past every token issued
// under an earlier (longer) one, plus the leeway verifiers allow.
func (s *Service) cover(now time.Time) latch.Cover {
	margin := s.revocationMargin()
	return latch.Cover{Until: now.Add(s.cfg.AccessTokenTTL + margin), Margin: margin}
}

// revocationMargin is how long past a token's exp its revocation entry
// must stay: the largest leeway any verifier may allow (a resource
// server's remote verifier may be configured with up to
// verifier.MaxLeeway, whatever this server's tokens.leeway is), plus
// rounding. An entry that left earlier would let such a verifier accept
// the revoked token again until exp plus its leeway.
func (s *Service) revocationMargin() time.Duration {
	return max(s.cfg.Leeway, verifier.MaxLeeway) + time.Second
}

// Logout revokes the session of a verified access token.
func (s *Service) Logout(ctx context.Context, claims *verifier.Claims, c Device) error {
	return s.revokeSession(ctx, claims.Subject, claims.SessionID, "logout", c)
}

// LogoutRefreshToken revokes the session a refresh token belongs to without
// rotating it. Unknown tokens are ignored, as RFC 7009 asks.
func (s *Service) LogoutRefreshToken(ctx context.Context, refresh string, c Device) error {
	if !wellFormedRefreshToken(refresh) {
		return nil
	}
	rt, err := s.store.RefreshToken(ctx, hashToken(refresh))
	if errors.Is(err, latch.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("auth: look up refresh token: %w", err)
	}
	sess, err := s.store.Session(ctx, rt.SessionID)
	if errors.Is(err, latch.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("auth: load session: %w", err)
	}
	if _, err := s.delivery(ctx, sess.ClientID, false); errors.Is(err, ErrUnauthorizedClient) {
		// A confidential client's token: only that client, authenticated
		// at /oauth2/revoke, may end its session.
		return nil
	} else if err != nil {
		return err
	}
	return s.revokeSession(ctx, sess.UserID, sess.ID, "logout", c)
}

// LogoutSession revokes a session by id (a browser's logout, after its CSRF
// token was checked against the session).
func (s *Service) LogoutSession(ctx context.Context, sessionID string, c Device) error {
	sess, err := s.store.Session(ctx, sessionID)
	if errors.Is(err, latch.ErrNotFound) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("auth: load session: %w", err)
	}
	return s.revokeSession(ctx, sess.UserID, sess.ID, "logout", c)
}

// RevokeSessionByID revokes a session by id, whatever its user, for a
// reason the caller names (an operator, the admin API), as RevokeSession
// does: a browser's session at Latch ends its SSO session too, and a
// session_revoked event is recorded if it was live. It returns the
// session's user; ErrNotFound if no session has the id.
func (s *Service) RevokeSessionByID(ctx context.Context, sessionID, reason string, c Device) (string, error) {
	sess, err := s.store.Session(ctx, sessionID)
	if errors.Is(err, latch.ErrNotFound) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("auth: load session: %w", err)
	}
	return sess.UserID, s.revokeSession(ctx, sess.UserID, sess.ID, reason, c)
}

// RevokeSession revokes one of the user's sessions. A session of another
// user is ErrNotFound, exactly as a session that does not exist.
func (s *Service) RevokeSession(ctx context.Context, userID, sessionID string, c Device) error {
	return s.revokeSession(ctx, userID, sessionID, "revoked_by_user", c)
}

// RevokeSessionFor is RevokeSession for a reason the caller names
// ("risk_revoked"), recorded on the session and in its event.
func (s *Service) RevokeSessionFor(ctx context.Context, userID, sessionID, reason string, c Device) error {
	return s.revokeSession(ctx, userID, sessionID, reason, c)
}

func (s *Service) revokeSession(ctx context.Context, userID, sessionID, reason string, c Device) error {
	sess, err := s.store.Session(ctx, sessionID)
	if errors.Is(err, latch.ErrNotFound) || (err == nil && sess.UserID != userID) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("auth: load session: %w", err)
	}
	if sess.SSOSessionID != "" && sess.ClientID == AccountClientID {
		// The session of Latch's own pages in a browser is that browser's
		// sign-in at the provider: ending it ends the SSO session, with
		// every app's family it made and a back-channel logout to each.
		if err := s.EndSSOSession(ctx, userID, sess.SSOSessionID, reason, c); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
	}
	now := s.clock()
	revoked, err := s.store.RevokeSession(ctx, sessionID, reason, now, s.cover(now))
	if err != nil {
		return fmt.Errorf("auth: revoke session: %w", err)
	}
	if revoked {
		s.metrics.Revocations.WithLabelValues("session").Inc()
		s.syncRevocations(ctx)
		s.event(ctx, &latch.Event{Type: latch.EventSessionRevoked, UserID: userID, SessionID: sessionID,
			ClientID: sess.ClientID, IP: c.IP, UserAgent: c.UserAgent, Detail: map[string]string{"reason": reason}})
	}
	return nil
}

// LogoutAll revokes every session of the user and every access token issued
// to the user before now.
func (s *Service) LogoutAll(ctx context.Context, userID string, c Device) error {
	return s.RevokeUser(ctx, userID, "logout_all", c)
}

// RevokeUser is LogoutAll for a reason the caller names, recorded on every
// session and SSO session it ends ("password_reset", "account_locked",
// "user_deleted"), so that the security log and the apps told by
// back-channel logout can tell why.
func (s *Service) RevokeUser(ctx context.Context, userID, reason string, c Device) error {
	return s.revokeUser(ctx, userID, reason, "", c)
}

// LockUser locks the account with lockReason and revokes it as RevokeUser
// does (reason "account_locked"), in one store transaction: no crash
// leaves a locked account with sessions alive. An unknown user is an
// error matching latch.ErrNotFound.
func (s *Service) LockUser(ctx context.Context, userID, lockReason string, c Device) error {
	return s.revokeUser(ctx, userID, "account_locked", lockReason, c)
}

func (s *Service) revokeUser(ctx context.Context, userID, reason, lock string, c Device) error {
	now := s.clock()
	ids, err := s.store.RevokeUser(ctx, userID, reason, now, s.cover(now), lock)
	if err != nil {
		return fmt.Errorf("auth: revoke user sessions: %w", err)
	}
	s.metrics.Revocations.WithLabelValues("user").Inc()
	s.syncRevocations(ctx)
	s.notifyOutbox() // the user's SSO sessions ended: back-channel logouts
	s.event(ctx, &latch.Event{Type: latch.EventLogoutAll, UserID: userID, IP: c.IP, UserAgent: c.UserAgent,
		Detail: map[string]string{"sessions": fmt.Sprint(len(ids)), "reason": reason}})
	return nil
}

// RevokeOtherSessions revokes every live session of the user except keep
// (all of them if keep is empty) and appends a user cutoff at now to the
// revocation feed: every access token issued to the user before now is
// refused, the kept session's included (its client refreshes once; its
// refresh token stays good). reason is recorded on each revoked session.
// It returns how many sessions it revoked.
func (s *Service) RevokeOtherSessions(ctx context.Context, userID, keep, reason string, c Device) (int, error) {
	now := s.clock()
	live, err := s.store.SessionsByUser(ctx, userID, now)
	if err != nil {
		return 0, fmt.Errorf("auth: list sessions: %w", err)
	}
	var latest time.Time
	for _, sess := range live {
		if sess.AccessExpiresAt.After(latest) {
			latest = sess.AccessExpiresAt
		}
	}
	cover := s.cover(now)
	if _, err := s.store.AddRevocation(ctx, &latch.Revocation{Kind: latch.RevokeUser, Value: userID,
		Cutoff: now, CreatedAt: now, ExpiresAt: cover.Expiry(latest)}); err != nil {
		return 0, fmt.Errorf("auth: add user cutoff: %w", err)
	}
	n := 0
	for _, sess := range live {
		if sess.ID == keep {
			continue
		}
		if err := s.revokeSession(ctx, userID, sess.ID, reason, c); err != nil && !errors.Is(err, ErrNotFound) {
			return n, err
		}
		n++
	}
	s.metrics.Revocations.WithLabelValues("user").Inc()
	s.syncRevocations(ctx)
	s.notifyOutbox()
	return n, nil
}

// SessionInfo describes a live session for its owner.
type SessionInfo struct {
	ID         string
	CreatedAt  time.Time
	LastUsedAt time.Time
	ExpiresAt  time.Time
	UserAgent  string
	IP         string
	ClientID   string
}

// Sessions lists the user's live sessions, newest first.
func (s *Service) Sessions(ctx context.Context, userID string) ([]SessionInfo, error) {
	now := s.clock()
	list, err := s.store.SessionsByUser(ctx, userID, now)
	if err != nil {
		return nil, fmt.Errorf("auth: list sessions: %w", err)
	}
	out := make([]SessionInfo, 0, len(list))
	for _, sess := range list {
		exp := s.sessionExpiry(sess)
		if !now.Before(exp) {
			continue // idle too long: as good as gone
		}
		out = append(out, SessionInfo{
			ID: sess.ID, CreatedAt: sess.CreatedAt, LastUsedAt: sess.LastUsedAt, ExpiresAt: exp,
			UserAgent: sess.UserAgent, IP: sess.IP, ClientID: sess.ClientID,
		})
	}
	return out, nil
}

// User returns an account by id.
func (s *Service) User(ctx context.Context, id string) (*latch.User, error) {
	u, err := s.store.UserByID(ctx, id)
	if errors.Is(err, latch.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("auth: load user: %w", err)
	}
	return u, nil
}

// Events returns the account's most recent security events.
func (s *Service) Events(ctx context.Context, userID string, limit int) ([]latch.Event, error) {
	ev, err := s.store.EventsByUser(ctx, userID, limit)
	if err != nil {
		return nil, fmt.Errorf("auth: list events: %w", err)
	}
	return ev, nil
}

// syncRevocations tells other instances that the feed moved and pulls the
// new entries into this process's in-memory set right away, so it enforces
// its own revocations at once. The background follower catches up if this
// fails.
func (s *Service) syncRevocations(ctx context.Context) {
	if s.onRevoke != nil {
		s.onRevoke(ctx)
	}
	if _, err := s.revs.Sync(ctx, s.store, s.now()); err != nil {
		s.log.Warn("revocation sync failed; the follower will retry", "err", err)
	}
}

// notifyOutbox wakes the outbox worker, if any.
func (s *Service) notifyOutbox() {
	if s.onOutbox != nil {
		s.onOutbox()
	}
}

// event records a security event. The log is an audit trail, not state:
// a failure to write it is logged and does not fail the request.
func (s *Service) event(ctx context.Context, e *latch.Event) {
	if e.At.IsZero() {
		e.At = s.clock()
	}
	boundEvent(e)
	if err := s.store.AddEvent(context.WithoutCancel(ctx), e); err != nil {
		s.log.Error("recording security event failed", "type", e.Type, "err", err)
	}
}

// newRefreshToken returns a fresh opaque refresh token: the prefix and 256
// random bits.
func newRefreshToken() string {
	var b [32]byte
	rand.Read(b[:])
	return RefreshTokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// wellFormedRefreshToken rejects what cannot be a token before any lookup.
func wellFormedRefreshToken(t string) bool {
	if len(t) != refreshTokenLen || subtle.ConstantTimeCompare([]byte(t[:len(RefreshTokenPrefix)]), []byte(RefreshTokenPrefix)) != 1 {
		return false
	}
	_, err := base64.RawURLEncoding.Strict().DecodeString(t[len(RefreshTokenPrefix):])
	return err == nil
}

func hashToken(t string) []byte {
	h := sha256.Sum256([]byte(t))
	return h[:]
}

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// newID returns a random 128-bit identifier, lower-case base32, with an
// optional prefix ("u_…" users, "s_…" sessions).
func newID(prefix string) string {
	var b [16]byte
	rand.Read(b[:])
	id := strings.ToLower(idEncoding.EncodeToString(b[:]))
	if prefix == "" {
		return id
	}
	return prefix + "_" + id
}

// NewUserID returns a new user id, as CreateUser gives one: for a user
// that another service stores itself (the first administrator, whose
// creation spends a setup token in the same transaction).
func NewUserID() string { return newID("u") }
