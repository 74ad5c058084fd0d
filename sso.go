package latch

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// SSOSession is a user's sign-in at Latch itself, in one browser: the
// provider's own session, with its own cookie on the issuer's host. It is
// not a refresh family: while it lives, /oauth2/authorize answers any
// client without a password, and each family created through it records
// its id (Session.SSOSessionID, the id_token's sid). Ending it ends those
// families and tells the clients it served by back-channel logout.
type SSOSession struct {
	ID     string
	UserID string
	// AuthTime is when the user last authenticated with a credential.
	AuthTime time.Time
	// AMR lists the authentication methods used (RFC 8176: "pwd", "mfa"…).
	AMR        []string
	UserAgent  string
	IP         string
	CreatedAt  time.Time
	LastSeenAt time.Time
	// ExpiresAt is the absolute end of the SSO session.
	ExpiresAt time.Time
	// RevokedAt is zero while the SSO session has not been ended.
	RevokedAt    time.Time
	RevokeReason string
}

// Ended reports whether the SSO session has been ended (logout, reuse
// detection, "sign out everywhere").
func (s *SSOSession) Ended() bool { return !s.RevokedAt.IsZero() }

// Live reports whether the SSO session is neither ended nor expired at now.
func (s *SSOSession) Live(now time.Time) bool {
	return s.RevokedAt.IsZero() && now.Before(s.ExpiresAt)
}

// AuthorizationCode is an OAuth 2.0 authorization code as stored: by the
// SHA-256 of the code, which itself is never stored. It is single-use and
// bound to the client, the redirect URI, the PKCE challenge and the nonce
// of the request that made it.
type AuthorizationCode struct {
	// Hash is the SHA-256 of the code.
	Hash        []byte
	ClientID    string
	RedirectURI string
	UserID      string
	// SSOSessionID is the SSO session the user was signed in with.
	SSOSessionID string
	// Scope is the granted scope, space-separated.
	Scope string
	Nonce string
	// CodeChallenge is the PKCE S256 challenge; empty without PKCE.
	CodeChallenge string
	AuthTime      time.Time
	AMR           []string
	CreatedAt     time.Time
	ExpiresAt     time.Time
	// RedeemedAt is zero until the code is exchanged.
	RedeemedAt time.Time
	// SessionID is the refresh family created when the code was redeemed
	// (see CodeStore.AttachCodeSession); empty until then, and when the
	// exchange created no family.
	SessionID string
	// ReusedAt is when the code was first presented again after its
	// redemption; zero if it never was.
	ReusedAt time.Time
}

// Redeemed reports whether the code has been exchanged.
func (c *AuthorizationCode) Redeemed() bool { return !c.RedeemedAt.IsZero() }

// Consent records the scopes a user granted a client, remembered so that
// the consent page is shown again only for new scopes.
type Consent struct {
	UserID   string
	ClientID string
	// Scopes granted, sorted, without duplicates.
	Scopes    []string
	GrantedAt time.Time
}

// OutboxMessage is an entry of the durable outbox: something that must be
// delivered outside the store (a back-channel logout token, later emails
// and webhooks), enqueued in the transaction that made it necessary and
// delivered with retries by one instance at a time.
type OutboxMessage struct {
	// ID is assigned by the store, increasing.
	ID int64
	// Kind says what the message is and which deliverer handles it
	// (OutboxBackchannelLogout).
	Kind string
	// Key makes the message unique: enqueueing a message whose Key is
	// stored already does nothing. Empty means no deduplication.
	Key string
	// Payload is the message for its deliverer, JSON for the kinds of
	// this package.
	Payload   []byte
	CreatedAt time.Time
	// NotBefore is when the message is due (again).
	NotBefore time.Time
	// Attempts counts failed deliveries; LastError is the latest failure.
	Attempts  int
	LastError string
	// DeliveredAt is set when the message was delivered, FailedAt when its
	// deliverer gave up on it; both are zero while it is pending.
	DeliveredAt time.Time
	FailedAt    time.Time
}

// Kinds of outbox messages.
const (
	// OutboxBackchannelLogout: an OpenID Connect Back-Channel Logout token
	// is to be sent to a client. Payload: a BackchannelLogout.
	OutboxBackchannelLogout = "backchannel_logout"
)

// BackchannelLogout is the payload of an OutboxBackchannelLogout message:
// the client to notify, and the user and SSO session whose end it is told
// (the logout token's sub and sid). The deliverer looks up the client's
// current BackchannelLogoutURI and signs the token when it sends it.
type BackchannelLogout struct {
	ClientID     string `json:"client_id"`
	UserID       string `json:"user_id"`
	SSOSessionID string `json:"sid"`
}

// Payload encodes b for OutboxMessage.Payload. Every store encodes with it,
// so that they enqueue identical bytes.
func (b BackchannelLogout) Payload() []byte {
	p, err := json.Marshal(b)
	if err != nil {
		// Three strings always encode.
		panic(fmt.Sprintf("latch: encode back-channel logout: %v", err))
	}
	return p
}

// BackchannelLogoutKey is the Key of the back-channel logout message that
// tells a client of the end of an SSO session: one message per client and
// SSO session, however often the session is ended.
func BackchannelLogoutKey(ssoSessionID, clientID string) string {
	return "bcl:" + ssoSessionID + ":" + clientID
}

// ParseBackchannelLogout decodes the payload of an OutboxBackchannelLogout
// message.
func ParseBackchannelLogout(payload []byte) (BackchannelLogout, error) {
	var b BackchannelLogout
	if err := json.Unmarshal(payload, &b); err != nil {
		return BackchannelLogout{}, fmt.Errorf("latch: back-channel logout payload: %w", err)
	}
	if b.ClientID == "" || b.SSOSessionID == "" {
		return BackchannelLogout{}, fmt.Errorf("latch: back-channel logout payload without client or sid")
	}
	return b, nil
}

// SSOStore keeps SSO sessions and the clients each one served.
type SSOStore interface {
	// CreateSSOSession stores s; ErrConflict if the id is taken.
	CreateSSOSession(ctx context.Context, s *SSOSession) error
	// SSOSession returns an SSO session, ended or not, or ErrNotFound.
	SSOSession(ctx context.Context, id string) (*SSOSession, error)
	// TouchSSOSession raises LastSeenAt to at if the SSO session is live
	// at at (not ended, ExpiresAt after at); ErrNotFound if it is not.
	TouchSSOSession(ctx context.Context, id string, at time.Time) error
	// RecordSSOClient records that clientID was issued tokens (a code
	// exchange) in the SSO session, so that ending it tells that client,
	// whether or not a refresh family exists. Recording a client twice is
	// no error. ErrNotFound if the SSO session does not exist or has been
	// ended: a client that joins an ended session would never hear of
	// its end.
	RecordSSOClient(ctx context.Context, ssoID, clientID string, at time.Time) error
	// EndSSOSession ends the SSO session in one transaction: it is marked
	// ended at at with reason; every family whose SSOSessionID is id and
	// that is not revoked is revoked as SessionStore.RevokeSession does
	// (one RevokeSession feed entry each, expiring at cover.Expiry(its
	// AccessExpiresAt)); and one OutboxBackchannelLogout message (Key
	// BackchannelLogoutKey, due at at) is enqueued per client recorded in
	// the session or owning one of its families whose BackchannelLogoutURI
	// is not empty. It returns the ids of the revoked families in
	// ascending order. Ending an ended session does nothing and returns no
	// ids; ErrNotFound if no SSO session has the id.
	EndSSOSession(ctx context.Context, id, reason string, at time.Time, cover Cover) ([]string, error)
}

// CodeStore keeps authorization codes.
type CodeStore interface {
	// CreateAuthorizationCode stores c; ErrConflict if its hash is taken.
	CreateAuthorizationCode(ctx context.Context, c *AuthorizationCode) error
	// RedeemAuthorizationCode marks the code with the hash redeemed at at
	// and returns it, atomically: of concurrent redemptions exactly one
	// succeeds. A code redeemed already is marked reused (ReusedAt, the
	// first time) and returned together with an error matching ErrConflict
	// (the caller revokes c.SessionID: a code presented twice revokes what
	// it issued). ErrNotFound if no code has the hash or it expired
	// (ExpiresAt not after at) unredeemed.
	RedeemAuthorizationCode(ctx context.Context, hash []byte, at time.Time) (*AuthorizationCode, error)
	// AttachCodeSession records sessionID as the family created from the
	// redeemed code with the hash. ErrNotFound if no redeemed code has the
	// hash; ErrConflict if another family is attached already (nothing
	// changes), or if the code was presented again since its redemption:
	// the family is attached all the same, and the caller revokes it, so
	// that a replay racing the first exchange still revokes what it issued.
	AttachCodeSession(ctx context.Context, hash []byte, sessionID string) error
}

// ConsentStore keeps the scopes users granted clients.
type ConsentStore interface {
	// GrantConsent adds c.Scopes to the user's consent for the client:
	// the stored scopes become the union of both, sorted, and GrantedAt
	// becomes c.GrantedAt. It sets c.Scopes to the stored scopes.
	GrantConsent(ctx context.Context, c *Consent) error
	// Consent returns the user's consent for the client or ErrNotFound.
	Consent(ctx context.Context, userID, clientID string) (*Consent, error)
	// ConsentsByUser returns a user's consents ordered by client id.
	ConsentsByUser(ctx context.Context, userID string) ([]*Consent, error)
	// RevokeConsent deletes the user's consent for the client;
	// ErrNotFound if there is none.
	RevokeConsent(ctx context.Context, userID, clientID string) error
}

// OutboxStore is the durable outbox. Messages are leased to one owner (an
// instance's deliverer) at a time; a lease that expires, because its owner
// died, lets another owner claim the message again, so delivery is at
// least once.
type OutboxStore interface {
	// EnqueueOutbox stores m as pending and sets m.ID. If m.Key is not
	// empty and a message with that Key is stored already, it does
	// nothing and returns nil (m.ID stays 0).
	EnqueueOutbox(ctx context.Context, m *OutboxMessage) error
	// ClaimOutbox leases up to limit due messages (NotBefore not after
	// now, neither delivered nor failed, not leased or lease expired at
	// now) to owner until leaseUntil and returns them, oldest due first.
	// Of concurrent claims, from any number of instances, each message
	// goes to one.
	ClaimOutbox(ctx context.Context, owner string, now, leaseUntil time.Time, limit int) ([]OutboxMessage, error)
	// CompleteOutbox marks a message leased by owner delivered at at.
	// ErrConflict if owner does not hold its lease (another owner claimed
	// it, or it was completed or retried already); ErrNotFound if no
	// message has the id.
	CompleteOutbox(ctx context.Context, id int64, owner string, at time.Time) error
	// RetryOutbox records a failed delivery of a message leased by owner:
	// Attempts is incremented, LastError set, the lease released and the
	// message due again at next; if giveUp, it is marked failed at at
	// instead and never claimed again. Errors as CompleteOutbox.
	RetryOutbox(ctx context.Context, id int64, owner, lastError string, next time.Time, giveUp bool, at time.Time) error
}
