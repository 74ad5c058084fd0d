package revocation

import "time"

// Kind says what a revocation entry covers.
type Kind string

// Kinds of revocation entries.
const (
	// Token covers the one access token whose jti is Value.
	Token Kind = "jti"
	// Session covers every access token whose sid is Value.
	Session Kind = "sid"
	// User covers every access token whose sub is Value and whose iat is
	// before Cutoff.
	User Kind = "user"
	// Key covers every token signed with the key whose kid is Value: the
	// key was revoked (stolen, or otherwise no longer to be trusted).
	Key Kind = "kid"
)

// Entry is one entry of the revocation set. Each entry expires when no
// token it covers can still be valid, which keeps the set small.
//
// The auth server's domain model uses this type as latch.Revocation, so
// that the server, its stores and every verifier share one definition.
type Entry struct {
	// Seq orders the feed; assigned by the store, strictly increasing.
	Seq       int64
	Kind      Kind
	Value     string
	Cutoff    time.Time // User only
	CreatedAt time.Time
	ExpiresAt time.Time
}
