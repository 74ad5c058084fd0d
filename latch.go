// Package latch holds the domain of the Latch authentication server: users,
// sessions (refresh-token families), revocations, signing keys and security
// events, and the storage interfaces that every backend implements.
//
// The package depends only on the standard library and the verifier
// module's revocation package (whose entry type it shares). Backends live
// in their own packages (sqlite, and later postgres and redis); the HTTP
// server, the verifier and the command line are built on top of these types.
package latch

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/latchauth/latch/verifier/revocation"
)

// Errors returned by stores. Callers compare with errors.Is; stores wrap them
// with context.
var (
	// ErrNotFound means the requested record does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict means a uniqueness constraint or a conditional update
	// failed: a duplicate email, a session whose generation moved on, a key
	// rotation that lost the race to another instance.
	ErrConflict = errors.New("conflict")
	// ErrLocked means the user is locked (User.LockedAt is set):
	// CreateSession refuses to start a session for a locked user.
	ErrLocked = errors.New("user is locked")
)

// User is an account that signs in with an email and a password.
type User struct {
	ID           string
	Email        string // normalised: trimmed and lower-cased
	PasswordHash string // PHC string, see package password
	CreatedAt    time.Time
	UpdatedAt    time.Time
	// EmailVerifiedAt is when the user proved they receive mail at Email;
	// zero while the address is unverified. Changing the email clears it.
	EmailVerifiedAt time.Time
	// LockedAt is when the account was locked (it cannot sign in); zero
	// while it is not. LockReason says why (see the Lock* reasons).
	LockedAt   time.Time
	LockReason string
	// Role is RoleAdmin for an administrator of the server (the admin
	// console, /admin), "" for everyone else.
	Role string
}

// Admin reports whether the user is an administrator.
func (u *User) Admin() bool { return u.Role == RoleAdmin }

// EmailVerified reports whether the user's current email is verified.
func (u *User) EmailVerified() bool { return !u.EmailVerifiedAt.IsZero() }

// Locked reports whether the account is locked.
func (u *User) Locked() bool { return !u.LockedAt.IsZero() }

// Client is an application registered to obtain tokens: a confidential
// client (a server, holding a secret) or a public one (a first-party app
// that cannot keep a secret).
type Client struct {
	ID string
	// Name is what people are shown (the consent page, the account
	// page): OpenID Connect Registration's client_name. Empty shows ID.
	Name string
	// SecretHash is the hash of a confidential client's secret (see
	// package auth); empty for a public client.
	SecretHash string
	// Scopes the client may be granted.
	Scopes []string
	// Audience of the access tokens issued to it; empty means the server's.
	Audience string
	// Delivery is how a browser client receives its tokens: DeliveryBearer
	// (in the JSON body; native apps and servers), DeliveryCookie (both
	// tokens in HttpOnly cookies) or DeliveryMemory (the access token in
	// the body for JavaScript memory, the refresh token in an HttpOnly
	// cookie). Empty means DeliveryBearer.
	Delivery string
	// Permissions are what the client may do beyond the OAuth grants, in
	// ascending order (see PermissionReadRevocations).
	Permissions []string
	// RedirectURIs are the OpenID Connect redirect URIs, matched exactly.
	RedirectURIs []string
	// PostLogoutRedirectURIs are where RP-initiated logout may return to.
	PostLogoutRedirectURIs []string
	// BackchannelLogoutURI receives OIDC Back-Channel Logout tokens; empty
	// if the client registered none.
	BackchannelLogoutURI string
	// FirstParty clients are not shown the consent page.
	FirstParty bool
	// IDTokenSignedResponseAlg is the JWS algorithm of the client's
	// id_tokens; empty means RS256, OpenID Connect's default.
	IDTokenSignedResponseAlg string
	CreatedAt                time.Time
}

// Permissions of a client.
const (
	// PermissionReadRevocations lets a confidential client read the
	// revocation feed (GET /v1/revocations and its stream): every revoked
	// session, token, user and key, which remote verifiers need and other
	// clients must not see.
	PermissionReadRevocations = "read-revocations"
)

// Can reports whether the client holds the permission.
func (c *Client) Can(permission string) bool {
	return slices.Contains(c.Permissions, permission)
}

// Delivery modes of a client.
const (
	DeliveryBearer = "bearer"
	DeliveryCookie = "cookie"
	DeliveryMemory = "memory"
)

// DisplayName is the client's Name, or its ID when it has none.
func (c *Client) DisplayName() string {
	if c.Name != "" {
		return c.Name
	}
	return c.ID
}

// Public reports whether the client has no secret.
func (c *Client) Public() bool { return c.SecretHash == "" }

// Session is a refresh-token family: one sign-in on one device. Each refresh
// rotates the token and increments Generation. Only hashes of refresh tokens
// are stored; the successor of the previous generation is kept encrypted for
// the grace window, so a retried refresh gets the identical token back.
type Session struct {
	ID       string
	UserID   string
	ClientID string
	// SSOSessionID is the SSO session the family was created from (the
	// id_token's sid); empty for a sign-in through the JSON API. Ending
	// that SSO session revokes the family (SSOStore.EndSSOSession).
	SSOSessionID string
	// Scope is the granted scope, space-separated, so that a refresh may
	// ask for the same or a narrower one.
	Scope     string
	UserAgent string
	IP        string
	CreatedAt time.Time
	// AuthTime is when the user last authenticated with a credential.
	AuthTime   time.Time
	LastUsedAt time.Time
	// ExpiresAt is the absolute end of the session; the idle timeout is
	// enforced from LastUsedAt by the service.
	ExpiresAt time.Time
	// Generation of the current refresh token, starting at 1.
	Generation int64
	// RotatedAt is when the current generation replaced the previous one;
	// zero while Generation is 1.
	RotatedAt time.Time
	// Successor is the current refresh token, sealed by the service, kept so
	// that the previous token can be answered with it inside the grace
	// window. Nil once the grace window no longer applies.
	Successor []byte
	// RotatedBy identifies the device that made the current generation: a
	// keyed hash (computed by the service) of the presenting client, the
	// user agent and the IP network. A replay of the previous token inside
	// the grace window must come from the same device. Nil while
	// Generation is 1.
	RotatedBy []byte
	// GraceReplays counts the replays of the previous token answered with
	// the successor since the last rotation (outside the concurrent burst,
	// see package auth); Rotate resets it.
	GraceReplays int
	// AccessExpiresAt is the latest exp of any access token issued from
	// the session. A revocation of the session must live at least until
	// then (plus the verifiers' leeway), whatever the access-token
	// lifetime is configured to now. Stores only ever raise it.
	AccessExpiresAt time.Time
	// RevokedAt is zero while the session is live.
	RevokedAt    time.Time
	RevokeReason string
}

// Revoked reports whether the session has been revoked.
func (s *Session) Revoked() bool { return !s.RevokedAt.IsZero() }

// RefreshToken records one refresh token ever issued to a session, by the
// SHA-256 of the token. Tokens of old generations are kept until the session
// is deleted so that presenting one is recognised as reuse.
type RefreshToken struct {
	Hash       []byte
	SessionID  string
	Generation int64
	CreatedAt  time.Time
}

// Rotation moves a session from one refresh-token generation to the next.
// It applies only if the session is still at FromGeneration and not revoked.
type Rotation struct {
	SessionID      string
	FromGeneration int64
	NewHash        []byte // SHA-256 of the new refresh token
	Successor      []byte // the new token, sealed
	At             time.Time
	// RotatedBy is the device fingerprint of the request (Session.RotatedBy).
	RotatedBy []byte
	// AccessExpiresAt is the exp of the access token issued with the new
	// refresh token; the session's AccessExpiresAt is raised to it.
	AccessExpiresAt time.Time
}

// GraceReplay records that the previous refresh token of a session was
// answered with the successor inside the grace window. It applies only if
// the session is still at Generation and not revoked and, when Counted, has
// had fewer than Limit counted replays.
type GraceReplay struct {
	SessionID string
	// Generation is the session's current generation (the successor's).
	Generation int64
	// Counted replays increment Session.GraceReplays; replays in the burst
	// of the rotation itself are not counted.
	Counted bool
	Limit   int
	// AccessExpiresAt is the exp of the access token issued with the
	// replay; the session's AccessExpiresAt is raised to it.
	AccessExpiresAt time.Time
}

// Cover says how long the entries that SessionStore.RevokeSession and
// RevokeUser append must live: until no access token they cover can still
// be valid. Each entry expires at the later of Until and Margin past the
// newest AccessExpiresAt of the sessions it covers, so a token issued under
// a longer lifetime than today's configuration stays covered.
type Cover struct {
	// Until is the least expiry: now plus the current access-token
	// lifetime plus Margin.
	Until time.Time
	// Margin is the clock-skew leeway verifiers allow, plus rounding.
	Margin time.Duration
}

// Expiry is the expiry of an entry covering tokens that expire at latest
// (zero if unknown).
func (c Cover) Expiry(latest time.Time) time.Time {
	if latest.IsZero() {
		return c.Until
	}
	if e := latest.Add(c.Margin); e.After(c.Until) {
		return e
	}
	return c.Until
}

// Revocation is one entry of the revocation set and its durable feed: by
// jti (one token), by sid (one session), or a per-user cutoff. It is
// defined in the verifier module's revocation package, which remote
// verifiers import without the server, so that both ends share one type.
type Revocation = revocation.Entry

// RevocationKind says what a revocation entry covers.
type RevocationKind = revocation.Kind

// Kinds of revocation entries.
const (
	// RevokeToken covers the one access token whose jti is Value.
	RevokeToken = revocation.Token
	// RevokeSession covers every access token whose sid is Value.
	RevokeSession = revocation.Session
	// RevokeUser covers every access token whose sub is Value and whose iat
	// is before Cutoff.
	RevokeUser = revocation.User
	// RevokeKey covers every access token whose JOSE header kid is Value:
	// the signing key was revoked (a suspected compromise). The entry
	// expires when every token the key signed has expired and every
	// cached JWKS that listed it has been refetched.
	RevokeKey = revocation.Key
)

// Event types recorded in the security log.
const (
	EventLoginSucceeded = "login_succeeded"
	EventLoginFailed    = "login_failed"
	EventRefreshReused  = "refresh_token_reused"
	EventSessionRevoked = "session_revoked"
	EventLogoutAll      = "logout_all"
	EventKeysRotated    = "keys_rotated"
	EventKeyRevoked     = "key_revoked"
	EventUserCreated    = "user_created"
	EventClientCreated  = "client_created"
	EventTokenRevoked   = "token_revoked"
	// EventRefreshGraceReplay: the previous refresh token was presented
	// again inside the grace window by the device that rotated it and was
	// answered with the same successor. Detail: generation, count.
	EventRefreshGraceReplay = "refresh_token_grace_replay"
	// EventDemoRetired: a demo user that an earlier `latch serve --demo`
	// left in a real data directory was disarmed (random password, every
	// session revoked); recorded so that it is done once.
	EventDemoRetired = "demo_retired"
	// EventRiskDenied, EventRiskRevoked and EventRiskNotified record a
	// risk decision other than allow (package protect): a sign-in or
	// refresh refused, a refresh refused with its session revoked, or one
	// let through and recorded. Detail (risk.EventDetail): kind, action,
	// score, reasons, and the decision and signals as JSON, so that
	// `latch risk replay` can score the event again.
	EventRiskDenied   = "risk_denied"
	EventRiskRevoked  = "risk_revoked"
	EventRiskNotified = "risk_notified"
)

// Event is an entry of the security log.
//
// Its JSON form is the one exported log format: one object per event, as
// the admin console's export writes it and `latch risk export` and
// `latch risk replay` write and read it.
type Event struct {
	ID        int64     `json:"id"`
	Type      string    `json:"type"`
	At        time.Time `json:"at"`
	UserID    string    `json:"user_id,omitempty"`
	SessionID string    `json:"session_id,omitempty"`
	ClientID  string    `json:"client_id,omitempty"`
	IP        string    `json:"ip,omitempty"`
	UserAgent string    `json:"user_agent,omitempty"`
	// Detail carries type-specific facts (for a reuse: the other client's
	// IP and user agent). Never secrets.
	Detail map[string]string `json:"detail,omitempty"`
}

// SigningKey is a key of the signing ring as stored: the private key sealed
// under the key-encryption key. The ring holds one chain of keys per
// family, each signing one kind of token; a key's state follows from the
// clock and the other keys of its family: pending before NotBefore, active
// while it is the newest key of its family past NotBefore, retired after a
// newer key of its family became active, removed after NotAfter.
type SigningKey struct {
	ID        string // kid: the RFC 7638 thumbprint of the public key
	Algorithm string // EdDSA, ES256 or RS256
	// Family is the chain the key belongs to: "access" (access tokens) or
	// "id" (id_tokens and logout tokens). Keys rotate within their family,
	// and a key signs and is trusted only for its family's tokens.
	Family string
	// Private is the sealed private key (PKCS #8 DER under AES-256-GCM).
	Private []byte
	// Public is the public key as a JWK (JSON).
	Public    []byte
	CreatedAt time.Time
	NotBefore time.Time
	// NotAfter is when the key leaves the JWKS; zero until a newer key
	// replaces it.
	NotAfter time.Time
	// RevokedAt is when the key was revoked; zero for a key that was not.
	// A revoked key never signs, is never published and is never trusted,
	// whatever its other dates say.
	RevokedAt time.Time
}

// KeyRotation adds a key to a family of the ring. It succeeds only if
// Previous is still the newest key of New.Family that is not revoked (by
// NotBefore), so that of many instances only one rotates each family. The
// previous key is scheduled for removal at PreviousNotAfter.
type KeyRotation struct {
	New              SigningKey
	Previous         string // kid; empty for the first key of an empty family
	PreviousNotAfter time.Time
	// SupersedePrevious marks Previous, a pending key that an immediate
	// rotation replaces, revoked at New.CreatedAt so that it never signs.
	// No revocation-feed entry is written: it never signed anything.
	SupersedePrevious bool
}

// KeyRevocation revokes a signing key: it is marked revoked at At and a
// RevokeKey entry expiring at Expiry is appended to the revocation feed.
// If Rotation is set, it is applied first in the same transaction, so that
// revoking the active key never leaves the ring without one.
type KeyRevocation struct {
	ID       string // kid
	At       time.Time
	Expiry   time.Time
	Rotation *KeyRotation
}

// UserStore keeps accounts.
type UserStore interface {
	// CreateUser stores u; ErrConflict if the email is taken.
	CreateUser(ctx context.Context, u *User) error
	// UserByID returns the user or ErrNotFound.
	UserByID(ctx context.Context, id string) (*User, error)
	// UserByEmail returns the user with the normalised email or ErrNotFound.
	UserByEmail(ctx context.Context, email string) (*User, error)
	// SetPasswordHash replaces a user's password hash.
	SetPasswordHash(ctx context.Context, userID, hash string, at time.Time) error
	// Users returns up to limit users whose ids sort after after (all
	// from ""), ordered by id: a cursor to walk every account.
	Users(ctx context.Context, after string, limit int) ([]*User, error)
	// SetEmail changes a user's email from from to to and sets UpdatedAt
	// to at, only while the stored email is still from: ErrNotFound if
	// no user has that id and email, ErrConflict if another user has to
	// (nothing changes then).
	SetEmail(ctx context.Context, userID, from, to string, at time.Time) error
}

// ClientStore keeps registered clients.
type ClientStore interface {
	// CreateClient stores c; ErrConflict if the id is taken.
	CreateClient(ctx context.Context, c *Client) error
	// Client returns the client or ErrNotFound.
	Client(ctx context.Context, id string) (*Client, error)
	// Clients returns every client, ordered by id.
	Clients(ctx context.Context) ([]*Client, error)
	// UpdateClient replaces every setting of the stored client c.ID with
	// c's, its CreatedAt and its secret kept (SetClientSecret changes
	// that, so that an edit racing a rotation cannot write the old
	// secret back); ErrNotFound if there is no such client.
	UpdateClient(ctx context.Context, c *Client) error
	// SetClientSecret replaces the SecretHash of the stored client;
	// ErrNotFound if there is no such client.
	SetClientSecret(ctx context.Context, id, secretHash string) error
	// DeleteClient deletes the client and the users' consents to it;
	// ErrNotFound if there is no such client. Its sessions stay until
	// they expire or are revoked: a refresh of one needs the client.
	DeleteClient(ctx context.Context, id string) error
}

// SessionStore keeps sessions and the hashes of their refresh tokens.
type SessionStore interface {
	// CreateSession stores a new session at generation 1 together with the
	// hash of its first refresh token. s.AccessExpiresAt is the exp of the
	// first access token. If s.SSOSessionID is not empty, the family is
	// stored only if that SSO session exists and has not been ended
	// (ErrNotFound otherwise), so that no family outlives EndSSOSession.
	// A session of a locked user is refused (ErrLocked), in the same
	// statement or transaction as the insert: a sign-in racing LockUser
	// either sees the lock, or commits before it and is then revoked by
	// the RevokeUser that follows the lock. msgs are enqueued in the
	// outbox in the same transaction (a new-device alert): both happen or
	// neither; their IDs are set.
	CreateSession(ctx context.Context, s *Session, tokenHash []byte, msgs ...*OutboxMessage) error
	// Session returns a session, revoked or not, or ErrNotFound.
	Session(ctx context.Context, id string) (*Session, error)
	// SessionsByUser returns a user's live (not revoked, not past ExpiresAt
	// at now) sessions, newest first.
	SessionsByUser(ctx context.Context, userID string, now time.Time) ([]*Session, error)
	// RefreshToken returns the record of a refresh token hash or ErrNotFound.
	RefreshToken(ctx context.Context, hash []byte) (*RefreshToken, error)
	// Rotate applies r atomically: the new token hash is recorded, the
	// session moves to FromGeneration+1 with Successor, RotatedAt and
	// LastUsedAt set to r.At, RotatedBy to r.RotatedBy, GraceReplays to 0,
	// and AccessExpiresAt raised to r.AccessExpiresAt. ErrConflict if the
	// session is no longer at FromGeneration or is revoked; nothing changes
	// then.
	Rotate(ctx context.Context, r Rotation) error
	// ReplayGrace applies r atomically and conditionally (one statement,
	// so two concurrent replays cannot both be the Limit-th): AccessExpiresAt
	// is raised to r.AccessExpiresAt and, if r.Counted, GraceReplays
	// incremented. It returns the session's GraceReplays after the update.
	// ErrConflict if the session is not at r.Generation, is revoked, or
	// (Counted) has Limit counted replays already; nothing changes then.
	ReplayGrace(ctx context.Context, r GraceReplay) (int, error)
	// ClearSuccessors forgets the sealed successor of every session rotated
	// before rotatedBefore (its grace window is over, so nothing may read it
	// again) and reports how many it cleared.
	ClearSuccessors(ctx context.Context, rotatedBefore time.Time) (int, error)
	// RevokeSession marks a live session revoked and, in the same
	// transaction, appends a RevokeSession entry to the revocation feed
	// that expires at cover.Expiry(the session's AccessExpiresAt), read in
	// that transaction. It reports whether the session was live.
	RevokeSession(ctx context.Context, sessionID, reason string, at time.Time, cover Cover) (bool, error)
	// RevokeUser revokes every live session of a user and appends, in one
	// transaction, a RevokeUser entry with Cutoff at, expiring at
	// cover.Expiry(the latest AccessExpiresAt of ALL the user's stored
	// sessions: live, revoked or expired), plus one RevokeSession entry per
	// session it revoked, each expiring at cover.Expiry(its own
	// AccessExpiresAt). In the same transaction it ends every SSO session
	// of the user that has not been ended (RevokedAt at, RevokeReason
	// reason; ended ones keep theirs) and enqueues, for each, the
	// back-channel logout messages EndSSOSession would: signing out
	// everywhere tells every client. If lock is not empty, it also locks
	// the user with that reason in the same transaction, as
	// AccountStore.LockUser does (ErrNotFound if there is no such user):
	// no crash leaves a locked account with live sessions, or the
	// reverse. It returns the ids of the sessions it revoked.
	RevokeUser(ctx context.Context, userID, reason string, at time.Time, cover Cover, lock string) ([]string, error)
}

// RevocationStore keeps the durable revocation feed.
type RevocationStore interface {
	// AddRevocation appends r to the feed and returns its Seq.
	AddRevocation(ctx context.Context, r *Revocation) (int64, error)
	// RevocationsAfter returns up to limit entries with Seq > after that
	// have not expired at now, in ascending Seq.
	RevocationsAfter(ctx context.Context, after int64, now time.Time, limit int) ([]Revocation, error)
	// RevocationHead returns the highest Seq ever assigned, even if its
	// entry expired or was pruned since; 0 if none was. A reader whose
	// cursor is beyond it follows another feed, or one restored from a
	// backup: entries it has not seen may hide under its cursor.
	RevocationHead(ctx context.Context) (int64, error)
}

// EventStore keeps the security log.
type EventStore interface {
	// AddEvent appends e and sets its ID.
	AddEvent(ctx context.Context, e *Event) error
	// EventsByUser returns a user's most recent events, newest first.
	EventsByUser(ctx context.Context, userID string, limit int) ([]Event, error)
	// Events returns up to q.Limit events matching q, oldest (by ID)
	// first: the security log read in pages, for export.
	Events(ctx context.Context, q EventQuery) ([]Event, error)
}

// EventQuery selects events of the security log (EventStore.Events).
type EventQuery struct {
	// Types are the event types wanted; empty for every type.
	Types []string
	// Since: events at or after it; zero for all.
	Since time.Time
	// AfterID: events whose ID is above it, the cursor of the next page.
	AfterID int64
	// Limit bounds the page; zero or less returns no events.
	Limit int
}

// KeyStore keeps the signing ring.
type KeyStore interface {
	// Keys returns every stored key, oldest NotBefore first.
	Keys(ctx context.Context) ([]SigningKey, error)
	// RotateKeys applies r atomically; ErrConflict if r.Previous is not the
	// newest key of r.New.Family that is not revoked any more (or such a
	// key exists when Previous is ""); keys of other families do not
	// matter. It moves KeyRingVersion.
	RotateKeys(ctx context.Context, r KeyRotation) error
	// RevokeKey applies r atomically: its rotation if any (failing like
	// RotateKeys), then marks the key revoked at r.At (a key revoked
	// already keeps its first RevokedAt) and appends a RevokeKey entry
	// expiring at r.Expiry to the revocation feed. It moves KeyRingVersion.
	// ErrNotFound if no key has the id.
	RevokeKey(ctx context.Context, r KeyRevocation) error
	// KeyRingVersion returns a number that changes whenever RotateKeys or
	// RevokeKey commits, so that instances can notice a changed ring
	// cheaply and reload it.
	KeyRingVersion(ctx context.Context) (int64, error)
}
