package latch

import (
	"context"
	"time"
)

// GatewaySession is a browser's session at `latch gateway` (its
// backend-for-frontend): what the gateway keeps on the server so that the
// browser holds nothing but an opaque cookie. The gateway keeps these in a
// store of its own, not in the auth server's.
//
// The tokens are sealed (AES-GCM under a subkey of the gateway's KEK, with
// the session's ID as additional data): a copy of the database alone
// yields no token, and a sealed token moved to another row does not open.
type GatewaySession struct {
	// ID is the hex SHA-256 of the cookie value; the value itself is never
	// stored.
	ID string
	// Subject is the user's sub at the auth server.
	Subject string
	// SID is the auth server's session id (the id_token's sid): what a
	// back-channel logout token names.
	SID string
	// AccessToken, RefreshToken and IDToken are sealed.
	AccessToken  []byte
	RefreshToken []byte
	IDToken      []byte
	// AccessExpiresAt is when the access token expires.
	AccessExpiresAt time.Time
	CreatedAt       time.Time
	LastSeenAt      time.Time
	// ExpiresAt is the absolute end of the session.
	ExpiresAt time.Time
	// Version starts at 1 and grows by one with every completed refresh:
	// waiters for another instance's refresh watch it move.
	Version int64
	// LeaseOwner holds the refresh lease until LeaseUntil; empty when no
	// refresh is under way.
	LeaseOwner string
	LeaseUntil time.Time
	// EndedAt is zero while the session has not been ended; EndReason
	// says why it was (GatewayEnd* constants).
	EndedAt   time.Time
	EndReason string
}

// Reasons a gateway session ends.
const (
	GatewayEndLogout      = "logout"      // the user signed out at the gateway
	GatewayEndBackchannel = "backchannel" // the auth server's back-channel logout
	GatewayEndRevoked     = "revoked"     // the access token was revoked (revocation feed)
	GatewayEndRefresh     = "refresh"     // the refresh token was refused (invalid_grant)
	GatewayEndIdle        = "idle"        // unused for longer than the idle timeout
	GatewayEndExpired     = "expired"     // past its absolute lifetime
)

// Ended reports whether the session has been ended.
func (s *GatewaySession) Ended() bool { return !s.EndedAt.IsZero() }

// Live reports whether the session is neither ended nor past ExpiresAt at
// now.
func (s *GatewaySession) Live(now time.Time) bool {
	return s.EndedAt.IsZero() && now.Before(s.ExpiresAt)
}

// GatewayRefresh is the outcome of a refresh: the new sealed tokens and
// the new access-token expiry. An empty RefreshToken or IDToken keeps the
// stored one (a token endpoint need not rotate or reissue them).
type GatewayRefresh struct {
	AccessToken     []byte
	RefreshToken    []byte
	IDToken         []byte
	AccessExpiresAt time.Time
}

// GatewaySessionStore keeps the gateway's browser sessions. Every method
// is safe for concurrent use by any number of gateway instances sharing
// the store.
type GatewaySessionStore interface {
	// CreateGatewaySession stores s (Version is stored as given, 1 for a
	// new session); ErrConflict if the id is taken.
	CreateGatewaySession(ctx context.Context, s *GatewaySession) error
	// GatewaySession returns the session, ended or not, or ErrNotFound.
	GatewaySession(ctx context.Context, id string) (*GatewaySession, error)
	// TouchGatewaySession raises LastSeenAt to at if the session is live
	// at at; ErrNotFound if it is not.
	TouchGatewaySession(ctx context.Context, id string, at time.Time) error
	// AcquireGatewayRefresh gives the session's refresh lease to owner
	// until until, if the session is live at now, its Version is still
	// version, and the lease is free, expired at now, or owner's already
	// (which renews it). It reports whether owner holds the lease; of
	// concurrent acquisitions by different owners at most one succeeds.
	// ErrNotFound if no session has the id.
	AcquireGatewayRefresh(ctx context.Context, id, owner string, version int64, now, until time.Time) (bool, error)
	// CompleteGatewayRefresh stores r, raises Version by one and releases
	// the lease, if owner holds it (whether or not it expired meanwhile,
	// as long as nobody took it over) and the session has not been ended;
	// ErrConflict if not; ErrNotFound if no session has the id. It returns
	// the new Version.
	CompleteGatewayRefresh(ctx context.Context, id, owner string, r GatewayRefresh) (int64, error)
	// ReleaseGatewayRefresh gives up owner's lease without a refresh (the
	// token endpoint failed), so that another request may try at once.
	// Releasing a lease owner does not hold does nothing.
	ReleaseGatewayRefresh(ctx context.Context, id, owner string) error
	// EndGatewaySession ends the session at at with reason and releases
	// its lease. Ending an ended session does nothing; ErrNotFound if no
	// session has the id.
	EndGatewaySession(ctx context.Context, id, reason string, at time.Time) error
	// EndGatewaySessionsBySID ends every session not yet ended whose SID
	// is sid, and returns their ids in ascending order.
	EndGatewaySessionsBySID(ctx context.Context, sid, reason string, at time.Time) ([]string, error)
	// EndGatewaySessionsBySubject ends every session not yet ended of the
	// subject, and returns their ids in ascending order.
	EndGatewaySessionsBySubject(ctx context.Context, subject, reason string, at time.Time) ([]string, error)
	// PruneGatewaySessions deletes the sessions whose ExpiresAt is not
	// after now or that were ended at or before now.
	PruneGatewaySessions(ctx context.Context, now time.Time) error
}
