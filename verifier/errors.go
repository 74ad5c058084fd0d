package verifier

import "errors"

// Sentinel errors. Every error returned by [Verifier.Verify] is an [*Error]
// that matches exactly one of them with errors.Is.
var (
	// ErrMalformed: the token is too large, not three canonical base64url
	// segments, or its header or claims are not strict JSON (duplicate or
	// case-variant names, wrong types), or a numeric date (exp, iat, nbf,
	// auth_time) is not a plain positive number of seconds up to the year
	// 9999 (no exponent, at most 9 fractional digits).
	ErrMalformed = errors.New("malformed token")
	// ErrSignature: the signature is missing, does not verify, or is not
	// in its canonical form (ECDSA with S above n/2).
	ErrSignature = errors.New("invalid signature")
	// ErrExpired: exp is past (beyond the leeway).
	ErrExpired = errors.New("token expired")
	// ErrNotYetValid: nbf or iat is in the future (beyond the leeway).
	ErrNotYetValid = errors.New("token not yet valid")
	// ErrIssuer: iss is not the configured issuer.
	ErrIssuer = errors.New("wrong issuer")
	// ErrAudience: aud does not contain the configured audience.
	ErrAudience = errors.New("wrong audience")
	// ErrType: the typ header is not at+jwt (RFC 9068).
	ErrType = errors.New("wrong token type")
	// ErrAlgorithm: alg is not the algorithm of the key named by kid, or the
	// key is not usable with its algorithm.
	ErrAlgorithm = errors.New("algorithm not allowed")
	// ErrUnknownKey: kid is missing or not in the key set.
	ErrUnknownKey = errors.New("unknown key")
	// ErrRevoked: the token, its session or its user was revoked.
	ErrRevoked = errors.New("token revoked")
	// ErrHeader: the header carries a parameter Latch refuses: crit, or a
	// key reference or embedded key (jku, x5u, jwk, x5c).
	ErrHeader = errors.New("forbidden header parameter")
	// ErrClaims: a required claim (exp, iat, sub, jti, iss, aud,
	// client_id) is missing or empty, or the token's lifetime (exp − iat)
	// exceeds Config.MaxTokenLifetime.
	ErrClaims = errors.New("missing claim")
)

// Error is the error returned by Verify. Its description is safe to show to
// the client (for instance in a WWW-Authenticate error_description): it is a
// fixed text that never echoes the token or any value taken from it.
type Error struct {
	kind error
	desc string
}

func newErr(kind error, desc string) *Error { return &Error{kind: kind, desc: desc} }

// Error returns "verifier: " followed by the description.
func (e *Error) Error() string { return "verifier: " + e.desc }

// Description returns the human-readable, client-safe reason.
func (e *Error) Description() string { return e.desc }

// Kind returns the sentinel the error matches (ErrMalformed, ErrSignature...).
func (e *Error) Kind() error { return e.kind }

// Unwrap returns the sentinel, so errors.Is(err, ErrExpired) works.
func (e *Error) Unwrap() error { return e.kind }

// The errors Verify returns. They are allocated once: rejecting a token
// costs no allocation for the error, and each check has its own value so
// that tests can tell which check caught a token.
var (
	errTooLarge    = newErr(ErrMalformed, "the token is too large")
	errEmpty       = newErr(ErrMalformed, "the token is empty")
	errChars       = newErr(ErrMalformed, "the token contains characters outside base64url")
	errSegments    = newErr(ErrMalformed, "the token is not a JWS in compact form")
	errBase64      = newErr(ErrMalformed, "the token is not canonical base64url")
	errBase64Dec   = newErr(ErrMalformed, "the token segments do not decode as base64url")
	errHeaderJSON  = newErr(ErrMalformed, "the token header is not strict JSON")
	errClaimsJSON  = newErr(ErrMalformed, "the token claims are not strict JSON")
	errDupHeader   = newErr(ErrMalformed, "the token header repeats a parameter")
	errDupClaim    = newErr(ErrMalformed, "the token claims repeat a name")
	errClaimType   = newErr(ErrMalformed, "a registered claim has the wrong type")
	errDateRange   = newErr(ErrMalformed, "a numeric date claim is out of range or not a plain number of seconds")
	errNoSignature = newErr(ErrSignature, "the token is not signed")
	errSignature   = newErr(ErrSignature, "the token signature is invalid")
	errHighS       = newErr(ErrSignature, "the token signature is not canonical (ECDSA S above n/2)")
	errExpired     = newErr(ErrExpired, "the token expired")
	errNotBefore   = newErr(ErrNotYetValid, "the token is not valid yet")
	errIssuedLater = newErr(ErrNotYetValid, "the token was issued in the future")
	errIssuer      = newErr(ErrIssuer, "the token issuer is not accepted")
	errAudience    = newErr(ErrAudience, "the token is not meant for this audience")
	errNoTyp       = newErr(ErrType, "the token has no typ header")
	errType        = newErr(ErrType, "the token is not an access token (typ must be at+jwt)")
	errNoAlg       = newErr(ErrAlgorithm, "the token has no alg header")
	errAlgMismatch = newErr(ErrAlgorithm, "the token algorithm does not match its key")
	errKeyUnusable = newErr(ErrAlgorithm, "the key is not usable with its algorithm")
	errNoKid       = newErr(ErrUnknownKey, "the token has no kid header")
	errUnknownKid  = newErr(ErrUnknownKey, "the token was signed by an unknown key")
	errCrit        = newErr(ErrHeader, "the token has critical header parameters")
	errKeyHeader   = newErr(ErrHeader, "the token header references or embeds a key")
	errHeaderCase  = newErr(ErrHeader, "the token header has a case variant of a registered parameter")
	errClaimCase   = newErr(ErrMalformed, "the token claims have a case variant of a registered name")
	errMissingExp  = newErr(ErrClaims, "the token has no exp claim")
	errMissingIat  = newErr(ErrClaims, "the token has no iat claim")
	errMissingSub  = newErr(ErrClaims, "the token has no sub claim")
	errMissingJti  = newErr(ErrClaims, "the token has no jti claim")
	errMissingIss  = newErr(ErrClaims, "the token has no iss claim")
	errMissingAud  = newErr(ErrClaims, "the token has no aud claim")
	errMissingCID  = newErr(ErrClaims, "the token has no client_id claim")
	errRevoked     = newErr(ErrRevoked, "the token has been revoked")
	errLifetime    = newErr(ErrClaims, "the token lifetime exceeds the issuer's maximum")
)
