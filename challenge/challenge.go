// Package challenge is Latch's step-up challenge: a sign-in whose password
// was right but which the sign-in guard finds risky (a new device, with
// risk.new_device: challenge) is held back until its user enters a
// six-digit code sent to the account's email address.
//
// Begin (auth.Challenger) records the held-back sign-in and enqueues the
// email with the code in the same store transaction. Complete checks a
// code and hands back the authentication, marked Challenged, for
// auth.Service.Admit to create the session. A challenge:
//
//   - is named by a random ID of 256 bits, stored only as its SHA-256;
//   - keeps its code only as a keyed MAC bound to the ID, so a copy of
//     the database gives no code to search offline (a plain hash of a
//     six-digit code would be reversed in a millisecond);
//   - is completed once: consuming it is one conditional statement, so of
//     concurrent completions exactly one wins;
//   - allows MaxAttempts wrong codes, counted atomically, then is dead
//     even for the right code;
//   - expires after TTL (10 minutes);
//   - can be completed only by the browser that began it: the same device
//     cookie when it had one, and the same User-Agent. The IP address may
//     change (mobile networks, IPv4 and IPv6 of one machine): a new
//     address alone is no new device. Another browser holding the ID is
//     told the challenge is unknown, and spends no attempt.
//
// A user gets at most PerUser challenges (so emails) per TTL window,
// counted by the store in the transaction that creates one, so that
// someone who knows the password cannot bomb the owner's mailbox.
package challenge

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/auth"
)

// Template is the email template of package mail carrying the code.
const Template = "challenge_code"

// IDPrefix starts every challenge ID: a leaked one is recognisable, and
// cannot be mistaken for another kind of token.
const IDPrefix = "latch_ch_"

// AMR is the authentication method (RFC 8176 §2) a completed challenge
// adds to the password's "pwd": a one-time password.
const AMR = "otp"

// CodeDigits is the length of a code.
const CodeDigits = 6

// Defaults of Config.
const (
	DefaultTTL         = 10 * time.Minute
	DefaultMaxAttempts = 5
	DefaultPerUser     = 3
)

// macPurpose keys the code MACs apart from every other MAC of the key.
const macPurpose = "latch step-up challenge code v1"

// Errors of Complete. The server answers each with 400 and its own
// message.
var (
	// ErrUnknown: no such challenge, or it was begun by another browser.
	ErrUnknown = errors.New("unknown challenge; sign in again")
	// ErrUsed: the challenge was completed already.
	ErrUsed = errors.New("the code was already used; sign in again")
	// ErrExpired: the challenge is older than its TTL.
	ErrExpired = errors.New("the code has expired; sign in again to get a new one")
	// ErrNoAttempts: too many wrong codes were entered; the challenge is
	// dead.
	ErrNoAttempts = errors.New("too many wrong codes; sign in again to get a new one")
	// ErrStale: the account changed (its password, or a lock) since the
	// challenge began.
	ErrStale = errors.New("the account changed since the code was sent; sign in again")
	// ErrMalformedCode: the code is not six digits. No attempt is spent.
	ErrMalformedCode = errors.New("the code is six digits")
	// ErrTooManyCodes is the Kind of Begin's *auth.ThrottleError past
	// the per-user limit; it matches auth.ErrRateLimited.
	ErrTooManyCodes = fmt.Errorf("too many codes were sent for this account: %w", auth.ErrRateLimited)
)

// CodeError is Complete's answer to a wrong code.
type CodeError struct {
	// AttemptsLeft is how many more codes may be tried; 0 means the
	// challenge is now dead.
	AttemptsLeft int
}

func (e *CodeError) Error() string {
	if e.AttemptsLeft == 0 {
		return "the code is incorrect; no attempts are left, sign in again to get a new code"
	}
	if e.AttemptsLeft == 1 {
		return "the code is incorrect; 1 attempt left"
	}
	return "the code is incorrect; " + strconv.Itoa(e.AttemptsLeft) + " attempts left"
}

// Config is the challenge policy.
type Config struct {
	// TTL is how long a code is valid and the window of PerUser; zero
	// means DefaultTTL.
	TTL time.Duration
	// MaxAttempts wrong codes kill a challenge; zero means
	// DefaultMaxAttempts.
	MaxAttempts int
	// PerUser challenges may be begun for one user per TTL; zero means
	// DefaultPerUser.
	PerUser int
}

// Deps are the Service's collaborators.
type Deps struct {
	Store latch.Store
	// MAC keys the code MACs (the key-encryption key's MAC, derived for
	// this purpose). Required.
	MAC func(purpose string, msg []byte) []byte
	// Locator, if not nil, says where the sign-in came from in the email.
	Locator latch.Locator
	// OnOutbox, if not nil, wakes the outbox worker after an enqueue. It
	// must not block.
	OnOutbox func()
	Log      *slog.Logger
	Now      func() time.Time // nil means time.Now
}

// Service begins and completes step-up challenges. It implements
// auth.Challenger and is safe for concurrent use.
type Service struct {
	cfg      Config
	store    latch.Store
	mac      func(string, []byte) []byte
	locator  latch.Locator
	onOutbox func()
	log      *slog.Logger
	now      func() time.Time
}

var _ auth.Challenger = (*Service)(nil)

// New returns a Service.
func New(cfg Config, d Deps) (*Service, error) {
	if d.Store == nil || d.MAC == nil {
		return nil, errors.New("challenge: store and MAC are required")
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.PerUser <= 0 {
		cfg.PerUser = DefaultPerUser
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	return &Service{cfg: cfg, store: d.Store, mac: d.MAC, locator: d.Locator, onOutbox: d.OnOutbox, log: d.Log, now: d.Now}, nil
}

// Config returns the service's configuration, defaults applied.
func (s *Service) Config() Config { return s.cfg }

func (s *Service) clock() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// Begin records the accepted sign-in a as a challenge for clientID from
// the device d, and enqueues the email with its code in the same store
// transaction. It returns the challenge's ID. Past the per-user limit it
// returns an *auth.ThrottleError (ErrTooManyCodes) and sends nothing.
func (s *Service) Begin(ctx context.Context, a *auth.Authentication, clientID string, d auth.Device) (string, error) {
	u, err := s.store.UserByID(ctx, a.UserID)
	if err != nil {
		return "", fmt.Errorf("challenge: look up user: %w", err)
	}
	id, idHash := newID()
	code := newCode()
	now := s.clock()
	d = bound(d)
	c := &latch.Challenge{
		IDHash: idHash, UserID: u.ID, ClientID: clientID, AuthTime: a.Time.UTC().Truncate(time.Microsecond),
		AMR: slices.Clone(a.AMR), IP: d.IP, UserAgent: d.UserAgent, DeviceID: d.DeviceID,
		CodeMAC: s.codeMAC(idHash, code), CreatedAt: now, ExpiresAt: now.Add(s.cfg.TTL),
	}
	data := map[string]string{
		"code": code, "expires_in": minutes(s.cfg.TTL), "when": now.Format(time.RFC1123),
		"ip": d.IP, "user_agent": d.UserAgent, "reset_link": "/reset",
	}
	if s.locator != nil {
		if where := place(s.locator.Lookup(d.IP)); where != "" {
			data["location"] = where
		}
	}
	msg := &latch.OutboxMessage{Kind: latch.OutboxEmail, CreatedAt: now, NotBefore: now,
		Payload: latch.EmailMessage{To: u.Email, Template: Template, Data: data}.Payload()}
	err = s.store.CreateChallenge(ctx, c, msg, s.cfg.PerUser, now.Add(-s.cfg.TTL))
	if errors.Is(err, latch.ErrChallengeLimit) {
		s.event(ctx, latch.EventChallengeFailed, c, d, map[string]string{"reason": "too_many_challenges"})
		return "", &auth.ThrottleError{Kind: ErrTooManyCodes, RetryAfter: s.cfg.TTL}
	}
	if err != nil {
		return "", fmt.Errorf("challenge: begin: %w", err)
	}
	if s.onOutbox != nil {
		s.onOutbox()
	}
	s.event(ctx, latch.EventChallengeSent, c, d, nil)
	return id, nil
}

// Complete checks code against the challenge id for the device d. On
// success the challenge is spent and Complete returns the held-back
// authentication, Challenged and with AMR "otp" added, and the client it
// was for: pass both to auth.Service.Admit. Errors: ErrUnknown, ErrUsed,
// ErrExpired, ErrNoAttempts, ErrStale, ErrMalformedCode, a *CodeError,
// auth.ErrUserLocked, or a store error.
func (s *Service) Complete(ctx context.Context, id, code string, d auth.Device) (*auth.Authentication, string, error) {
	if !wellFormedCode(code) {
		return nil, "", ErrMalformedCode
	}
	idHash, c, err := s.live(ctx, id, d)
	if err != nil {
		return nil, "", err
	}
	d = bound(d)
	now := s.clock()
	mac := s.codeMAC(idHash, code)
	if subtle.ConstantTimeCompare(mac, c.CodeMAC) != 1 {
		n, err := s.store.FailChallenge(ctx, idHash, now, s.cfg.MaxAttempts)
		if errors.Is(err, latch.ErrNotFound) {
			return nil, "", s.restate(ctx, idHash, now)
		}
		if err != nil {
			return nil, "", fmt.Errorf("challenge: count attempt: %w", err)
		}
		left := s.cfg.MaxAttempts - n
		s.event(ctx, latch.EventChallengeFailed, c, d, map[string]string{"reason": "wrong_code", "attempts_left": strconv.Itoa(left)})
		return nil, "", &CodeError{AttemptsLeft: left}
	}
	// The account may have changed since the code was sent: a lock ("this
	// wasn't me", an operator) or a new password ends the sign-in.
	u, err := s.store.UserByID(ctx, c.UserID)
	if errors.Is(err, latch.ErrNotFound) {
		return nil, "", ErrUnknown
	}
	if err != nil {
		return nil, "", fmt.Errorf("challenge: look up user: %w", err)
	}
	if u.Locked() {
		return nil, "", auth.ErrUserLocked
	}
	if u.UpdatedAt.After(c.CreatedAt) {
		return nil, "", ErrStale
	}
	c, err = s.store.ConsumeChallenge(ctx, idHash, mac, now, s.cfg.MaxAttempts)
	if errors.Is(err, latch.ErrNotFound) {
		// A concurrent completion won, or the last attempt went meanwhile.
		return nil, "", s.restate(ctx, idHash, now)
	}
	if err != nil {
		return nil, "", fmt.Errorf("challenge: consume: %w", err)
	}
	amr := slices.Clone(c.AMR)
	if !slices.Contains(amr, AMR) {
		amr = append(amr, AMR)
	}
	return &auth.Authentication{UserID: c.UserID, Time: c.AuthTime, AMR: amr, Challenged: true}, c.ClientID, nil
}

// Client returns the client of the challenge id if it could be completed
// now from the device d, checked as Complete checks it but spending
// nothing: the server picks its CSRF check by the client before it takes
// a code. Errors as Complete's.
func (s *Service) Client(ctx context.Context, id string, d auth.Device) (string, error) {
	_, c, err := s.live(ctx, id, d)
	if err != nil {
		return "", err
	}
	return c.ClientID, nil
}

// live looks up the challenge id and checks that the device d may
// complete it now.
func (s *Service) live(ctx context.Context, id string, d auth.Device) ([]byte, *latch.Challenge, error) {
	idHash, ok := parseID(id)
	if !ok {
		return nil, nil, ErrUnknown
	}
	c, err := s.store.Challenge(ctx, idHash)
	if errors.Is(err, latch.ErrNotFound) {
		return nil, nil, ErrUnknown
	}
	if err != nil {
		return nil, nil, fmt.Errorf("challenge: look up: %w", err)
	}
	if !sameBrowser(c, bound(d)) {
		return nil, nil, ErrUnknown
	}
	if err := s.state(c, s.clock()); err != nil {
		return nil, nil, err
	}
	return idHash, c, nil
}

// state says why a challenge cannot be completed at now, or nil.
func (s *Service) state(c *latch.Challenge, now time.Time) error {
	switch {
	case !c.UsedAt.IsZero():
		return ErrUsed
	case !now.Before(c.ExpiresAt):
		return ErrExpired
	case c.Attempts >= s.cfg.MaxAttempts:
		return ErrNoAttempts
	}
	return nil
}

// restate reads the challenge again after a conditional update found it
// no longer live, to say why.
func (s *Service) restate(ctx context.Context, idHash []byte, now time.Time) error {
	c, err := s.store.Challenge(ctx, idHash)
	if errors.Is(err, latch.ErrNotFound) {
		return ErrUnknown
	}
	if err != nil {
		return fmt.Errorf("challenge: look up: %w", err)
	}
	if err := s.state(c, now); err != nil {
		return err
	}
	return ErrUsed
}

// codeMAC is the keyed MAC of a code, bound to its challenge.
func (s *Service) codeMAC(idHash []byte, code string) []byte {
	return s.mac(macPurpose, append(slices.Clone(idHash), code...))
}

func (s *Service) event(ctx context.Context, typ string, c *latch.Challenge, d auth.Device, detail map[string]string) {
	e := &latch.Event{Type: typ, At: s.clock(), UserID: c.UserID, ClientID: c.ClientID, IP: d.IP, UserAgent: d.UserAgent, Detail: detail}
	if err := s.store.AddEvent(context.WithoutCancel(ctx), e); err != nil {
		s.log.Error("recording security event failed", "type", typ, "err", err)
	}
}

// sameBrowser: the device cookie must match when the challenge began
// with one, and the User-Agent always.
func sameBrowser(c *latch.Challenge, d auth.Device) bool {
	if c.DeviceID != "" && c.DeviceID != d.DeviceID {
		return false
	}
	return c.UserAgent == d.UserAgent
}

// bound makes a device description storable: valid UTF-8, cut to the
// bounds of package auth.
func bound(d auth.Device) auth.Device {
	return auth.Device{
		IP:        truncate(strings.ToValidUTF8(d.IP, "\uFFFD"), auth.MaxIPLen),
		UserAgent: truncate(strings.ToValidUTF8(d.UserAgent, "\uFFFD"), auth.MaxUserAgentLen),
		DeviceID:  truncate(strings.ToValidUTF8(d.DeviceID, "\uFFFD"), auth.MaxIDLen),
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// newID returns a fresh challenge ID and its SHA-256.
func newID() (string, []byte) {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	id := IDPrefix + base64.RawURLEncoding.EncodeToString(b)
	h := sha256.Sum256([]byte(id))
	return id, h[:]
}

// parseID checks the form of an ID and returns its SHA-256.
func parseID(id string) ([]byte, bool) {
	rest, ok := strings.CutPrefix(id, IDPrefix)
	if !ok || len(rest) != base64.RawURLEncoding.EncodedLen(32) {
		return nil, false
	}
	if _, err := base64.RawURLEncoding.DecodeString(rest); err != nil {
		return nil, false
	}
	h := sha256.Sum256([]byte(id))
	return h[:], true
}

// newCode returns a uniformly random code of CodeDigits digits.
func newCode() string {
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		panic(fmt.Sprintf("challenge: crypto/rand: %v", err)) // never happens
	}
	return fmt.Sprintf("%06d", n.Int64())
}

func wellFormedCode(code string) bool {
	if len(code) != CodeDigits {
		return false
	}
	for i := range len(code) {
		if code[i] < '0' || code[i] > '9' {
			return false
		}
	}
	return true
}

// minutes says d for an email: "10 minutes".
func minutes(d time.Duration) string {
	m := int(d.Round(time.Minute) / time.Minute)
	if m == 1 {
		return "1 minute"
	}
	return strconv.Itoa(m) + " minutes"
}

// place says where p is, for the email: "Lyon, FR", "FR", or "".
func place(p latch.Place) string {
	switch {
	case p.City != "" && p.Country != "":
		return p.City + ", " + p.Country
	default:
		return p.Country
	}
}
