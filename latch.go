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
)

// User is an account that signs in with an email and a password.
type User struct {
	ID           string
	Email        string // normalised: trimmed and lower-cased
	PasswordHash string // PHC string, see package password
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// Client is an application registered to obtain tokens: a confidential
// client (a server, holding a secret) or a public one (a first-party app
// that cannot keep a secret).
type Client struct {
	ID string
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
	CreatedAt   time.Time
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

// Public reports whether the client has no secret.
func (c *Client) Public() bool { return c.SecretHash == "" }

// Session is a refresh-token family: one sign-in on one device. Each refresh
// rotates the token and increments Generation. Only hashes of refresh tokens
// are stored; the successor of the previous generation is kept encrypted for
// the grace window, so a retried refresh gets the identical token back.
type Session struct {
	ID        string
	UserID    string
	ClientID  string
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
)

// Event types recorded in the security log.
const (
	EventLoginSucceeded = "login_succeeded"
	EventLoginFailed    = "login_failed"
	EventRefreshReused  = "refresh_token_reused"
	EventSessionRevoked = "session_revoked"
	EventLogoutAll      = "logout_all"
	EventKeysRotated    = "keys_rotated"
	EventUserCreated    = "user_created"
	EventClientCreated  = "client_created"
	EventTokenRevoked   = "token_revoked"
)

// Event is an entry of the security log.
type Event struct {
	ID        int64
	Type      string
	At        time.Time
	UserID    string
	SessionID string
	ClientID  string
	IP        string
	UserAgent string
	// Detail carries type-specific facts (for a reuse: the other client's
	// IP and user agent). Never secrets.
	Detail map[string]string
}

// SigningKey is a key of the signing ring as stored: the private key sealed
// under the key-encryption key. Its state follows from the clock:
// pending before NotBefore, active while it is the newest key past
// NotBefore, retired after a newer key became active, removed after
// NotAfter.
type SigningKey struct {
	ID        string // kid: the RFC 7638 thumbprint of the public key
	Algorithm string // EdDSA, ES256 or RS256
	// Private is the sealed private key (PKCS #8 DER under AES-256-GCM).
	Private []byte
	// Public is the public key as a JWK (JSON).
	Public    []byte
	CreatedAt time.Time
	NotBefore time.Time
	// NotAfter is when the key leaves the JWKS; zero until a newer key
	// replaces it.
	NotAfter time.Time
}

// KeyRotation adds a key to the ring. It succeeds only if Previous is still
// the newest key (by NotBefore), so that of many instances only one rotates.
// The previous key is scheduled for removal at PreviousNotAfter.
type KeyRotation struct {
	New              SigningKey
	Previous         string // kid; empty for the first key of an empty ring
	PreviousNotAfter time.Time
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
}

// ClientStore keeps registered clients.
type ClientStore interface {
	// CreateClient stores c; ErrConflict if the id is taken.
	CreateClient(ctx context.Context, c *Client) error
	// Client returns the client or ErrNotFound.
	Client(ctx context.Context, id string) (*Client, error)
	// Clients returns every client, ordered by id.
	Clients(ctx context.Context) ([]*Client, error)
}

// SessionStore keeps sessions and the hashes of their refresh tokens.
type SessionStore interface {
	// CreateSession stores a new session at generation 1 together with the
	// hash of its first refresh token.
	CreateSession(ctx context.Context, s *Session, tokenHash []byte) error
	// Session returns a session, revoked or not, or ErrNotFound.
	Session(ctx context.Context, id string) (*Session, error)
	// SessionsByUser returns a user's live (not revoked, not past ExpiresAt
	// at now) sessions, newest first.
	SessionsByUser(ctx context.Context, userID string, now time.Time) ([]*Session, error)
	// RefreshToken returns the record of a refresh token hash or ErrNotFound.
	RefreshToken(ctx context.Context, hash []byte) (*RefreshToken, error)
	// Rotate applies r atomically: the new token hash is recorded, the
	// session moves to FromGeneration+1 with Successor, RotatedAt and
	// LastUsedAt set to r.At. ErrConflict if the session is no longer at
	// FromGeneration or is revoked; nothing changes then.
	Rotate(ctx context.Context, r Rotation) error
	// ClearSuccessors forgets the sealed successor of every session rotated
	// before rotatedBefore (its grace window is over, so nothing may read it
	// again) and reports how many it cleared.
	ClearSuccessors(ctx context.Context, rotatedBefore time.Time) (int, error)
	// RevokeSession marks a live session revoked and, in the same
	// transaction, appends a RevokeSession entry to the revocation feed
	// that expires at accessExpiry. It reports whether the session was live.
	RevokeSession(ctx context.Context, sessionID, reason string, at, accessExpiry time.Time) (bool, error)
	// RevokeUser revokes every live session of a user and appends, in one
	// transaction, a RevokeUser entry with Cutoff at and expiry
	// accessExpiry plus one RevokeSession entry per session. It returns the
	// ids of the sessions it revoked.
	RevokeUser(ctx context.Context, userID, reason string, at, accessExpiry time.Time) ([]string, error)
}

// RevocationStore keeps the durable revocation feed.
type RevocationStore interface {
	// AddRevocation appends r to the feed and returns its Seq.
	AddRevocation(ctx context.Context, r *Revocation) (int64, error)
	// RevocationsAfter returns up to limit entries with Seq > after that
	// have not expired at now, in ascending Seq.
	RevocationsAfter(ctx context.Context, after int64, now time.Time, limit int) ([]Revocation, error)
}

// EventStore keeps the security log.
type EventStore interface {
	// AddEvent appends e and sets its ID.
	AddEvent(ctx context.Context, e *Event) error
	// EventsByUser returns a user's most recent events, newest first.
	EventsByUser(ctx context.Context, userID string, limit int) ([]Event, error)
}

// KeyStore keeps the signing ring.
type KeyStore interface {
	// Keys returns every stored key, oldest NotBefore first.
	Keys(ctx context.Context) ([]SigningKey, error)
	// RotateKeys applies r atomically; ErrConflict if r.Previous is not the
	// newest key any more (or the ring is not empty when Previous is "").
	RotateKeys(ctx context.Context, r KeyRotation) error
}

// Store is everything the auth server persists.
type Store interface {
	UserStore
	ClientStore
	SessionStore
	RevocationStore
	EventStore
	KeyStore
	// Prune deletes what can no longer matter at now: expired revocation
	// entries, keys past NotAfter, sessions (and their token hashes) whose
	// absolute expiry passed before now, and events older than keepEvents.
	Prune(ctx context.Context, now time.Time, keepEvents time.Duration) error
	// Ping reports whether the store is reachable.
	Ping(ctx context.Context) error
	// Close releases the store's resources.
	Close() error
}
