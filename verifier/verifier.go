// Package verifier checks Latch access tokens: JWS-signed JWTs of type
// at+jwt (RFC 9068) with the claims iss, sub, aud, exp, iat, jti, sid,
// client_id, scope and auth_time.
//
// A [Verifier] is built from a [Config] naming the accepted issuer and
// audience, a [KeySet] (the auth server's ring today, a JWKS cache on
// resource servers later) and optionally a [Revocations] set (for example
// a *revocation.Set). Verify never makes a network call nor waits for one.
//
// The checks are strict (RFC 8725): the token's alg must equal the
// algorithm bound to the key named by its kid (so alg none, HMAC with a
// public key and algorithm substitution fail), the typ header must be
// at+jwt, crit and key-carrying headers (jku, x5u, jwk, x5c) are refused,
// base64url must be canonical, header and claims must be strict JSON
// without duplicate names, and exp, iat, iss, aud, sub, jti and client_id
// are required. Numeric dates must be plain positive numbers of seconds
// before the year 10000, and a token may not claim a lifetime (exp − iat)
// beyond Config.MaxTokenLifetime. Signatures are checked with the standard
// library's primitive for the key's one algorithm; ECDSA signatures must
// be in their canonical low-S form. The claims are decoded straight from
// the strictly scanned JSON, without reflection.
//
// Verified tokens are cached (keyed by the exact token string, bounded,
// until exp) so that a token seen again costs a map lookup instead of a
// signature check; expiry, the presence of the key and revocation are
// checked again on every hit.
//
// [Verifier.Middleware] and [RequireScope] apply it to net/http handlers
// with RFC 6750 errors.
//
// Fail-safe policy: when Config.Freshness is set (as [NewRemote] does), a
// verifier whose revocation data is older than Config.MaxStale (default
// 10 s) because the revocation feed is unreachable refuses every token
// with ErrStale (fail closed, the default), or, with Config.FailOpen,
// accepts them and counts each acceptance (StaleAccepted, OnStale) so the
// resource server can raise a warning metric.
package verifier

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
)

// MaxTokenSize is the largest token, in bytes, Verify looks at. Larger
// tokens are refused with ErrMalformed before any decoding.
const MaxTokenSize = 8 << 10

// Defaults and limits of Config.
const (
	DefaultLeeway    = 5 * time.Second
	MaxLeeway        = 30 * time.Second
	DefaultCacheSize = 10000
	// DefaultMaxStale is Config.MaxStale when Freshness is set.
	DefaultMaxStale = 10 * time.Second
	// DefaultMaxTokenLifetime is Config.MaxTokenLifetime when it is zero:
	// the longest tokens.access_ttl a Latch server accepts.
	DefaultMaxTokenLifetime = 24 * time.Hour
)

// ErrStale: the revocation data is older than Config.MaxStale (the
// revocation feed has been unreachable too long), so the verifier cannot
// tell whether the token was revoked, and refuses it (fail closed). It is
// declared here with the fail-safe policy rather than in errors.go.
var ErrStale = errors.New("revocation data is stale")

var errStale = newErr(ErrStale, "revocation data is stale; the token cannot be checked now")

// Freshness tells how current the revocation data is. *revocation.Set
// implements it.
type Freshness interface {
	// LastSync returns when the revocation data was last known to be
	// complete, or the zero time if never.
	LastSync() time.Time
}

// Key is a public key the verifier may use, bound to exactly one algorithm.
// Algorithm is a JWS alg name: EdDSA (Ed25519, an ed25519.PublicKey), ES256,
// ES384 or ES512 (an *ecdsa.PublicKey on P-256, P-384 or P-521), RS256,
// RS384, RS512, PS256, PS384 or PS512 (an *rsa.PublicKey of at least 2048
// bits). Any other algorithm, and in particular none and the HMAC ones,
// makes the key unusable.
type Key struct {
	Algorithm string
	Public    crypto.PublicKey
}

// KeySet finds verification keys by kid. It must be safe for concurrent
// use; Verify calls it on every request, including cache hits, so it
// should be a lookup in memory that never blocks.
type KeySet interface {
	// Key returns the key named kid and whether there is one.
	Key(kid string) (Key, bool)
}

// KeyWaiter is implemented by key sets that can go and get a key they do
// not have yet, such as *JWKS, which refetches its document on an unknown
// kid. VerifyContext uses it, Verify does not.
type KeyWaiter interface {
	// WaitKey returns the key named kid, waiting while ctx allows for a
	// key not yet known to arrive.
	WaitKey(ctx context.Context, kid string) (Key, bool)
}

// StaticKeys is a KeySet over a fixed map from kid to key. It must not be
// modified while in use.
type StaticKeys map[string]Key

// Key returns the key named kid.
func (s StaticKeys) Key(kid string) (Key, bool) {
	k, ok := s[kid]
	return k, ok
}

// Revocations reports whether a verified token has been revoked. It must be
// safe for concurrent use and must not block; *revocation.Set implements it.
type Revocations interface {
	// Revoked reports whether the token with this jti, sid, subject and
	// issue time is revoked.
	Revoked(jti, sid, sub string, iat time.Time) bool
}

// KeyRevocations is implemented by a [Revocations] that also lists revoked
// signing keys (*revocation.Set does). Verify refuses, with ErrRevoked, a
// token whose header names a revoked key, on cache hits too, whether or
// not the key set still holds the key.
type KeyRevocations interface {
	// KeyRevoked reports whether the signing key named kid is revoked.
	KeyRevoked(kid string) bool
}

// Claims are the claims of a Latch access token (RFC 9068). The Claims
// returned by Verify are the caller's to keep, but Audience and the
// *jwt.NumericDate fields may be shared with other callers (through the
// cache, and a single-valued Audience equal to Config.Audience with every
// token) and must not be modified.
type Claims struct {
	jwt.RegisteredClaims
	// SessionID is the sid claim: the session (refresh-token family).
	SessionID string `json:"sid,omitempty"`
	// ClientID is the client the token was issued to.
	ClientID string `json:"client_id"`
	// Scope is the space-separated list of granted scopes.
	Scope string `json:"scope,omitempty"`
	// AuthTime is when the user last authenticated with a credential.
	AuthTime *jwt.NumericDate `json:"auth_time,omitempty"`
}

// HasScope reports whether scope is one of the space-separated scopes of c.
// Scopes are separated by U+0020 only (RFC 6749 §3.3): a tab, a newline or
// a no-break space is part of a scope, not a separator, as every other
// reader of the scope claim sees it.
func (c *Claims) HasScope(scope string) bool {
	if scope == "" {
		return false
	}
	for s := range strings.SplitSeq(c.Scope, " ") {
		if s == scope {
			return true
		}
	}
	return false
}

// Config configures a Verifier.
type Config struct {
	// Issuer is the exact iss accepted. Required.
	Issuer string
	// Audience must be one of the token's aud values. Required.
	Audience string
	// Keys resolves kid to a key. Required.
	Keys KeySet
	// Revocations, if not nil, is consulted on every Verify.
	Revocations Revocations
	// Leeway is the clock-skew tolerance applied to exp, nbf and iat,
	// between 0 and MaxLeeway (30 s). The zero value means DefaultLeeway
	// (5 s); tokens have one-second precision, so use 1 ns for
	// "no leeway". Negative values are refused.
	Leeway time.Duration
	// CacheSize is the number of verified tokens kept: 0 means
	// DefaultCacheSize, a negative value disables the cache.
	CacheSize int
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// MaxTokenLifetime is the longest lifetime (exp − iat) the issuer
	// gives a token; a token claiming a longer one is refused with
	// ErrClaims, whatever its exp, so that no token outlives the
	// revocation entries that cover it (they are kept for this long). 0
	// means DefaultMaxTokenLifetime (24 h, the largest tokens.access_ttl
	// of a Latch server); set it to the issuer's access-token lifetime
	// for a tighter bound. Negative values are refused.
	MaxTokenLifetime time.Duration

	// Freshness, if not nil, turns on the fail-safe policy: on every
	// Verify, after the signature, claims and revocation checks, a token
	// is refused with ErrStale (401 invalid_token through Middleware)
	// when Freshness.LastSync() is more than MaxStale before Now, or
	// zero, i.e. when the revocation feed has been unreachable for longer
	// than MaxStale, so a logout may have gone unseen. This is the
	// default (fail closed). With FailOpen the token is accepted instead
	// and the event counted (StaleAccepted, OnStale). Usually the
	// *revocation.Set that is also Revocations. nil: no policy.
	Freshness Freshness
	// MaxStale is the largest age of the revocation data tolerated. 0
	// means DefaultMaxStale (10 s); negative values are refused. Only
	// used with Freshness.
	MaxStale time.Duration
	// FailOpen accepts tokens while the revocation data is stale instead
	// of refusing them: availability over revocation. Each such
	// acceptance increments StaleAccepted and calls OnStale.
	FailOpen bool
	// OnStale, if not nil, is called (synchronously, so keep it fast: a
	// metric increment) for every token accepted while stale under
	// FailOpen.
	OnStale func()

	// Browser clients. Cookie, if set, is the name of the access-token
	// cookie (Latch's cookie delivery mode): Middleware reads the token
	// from it when there is no Authorization header. A request
	// authenticated by that cookie with an unsafe method (anything but
	// GET, HEAD, OPTIONS) must also pass the CSRF defence: the X-CSRF-Token
	// header must equal the CSRFCookie cookie (double submit; Latch sets
	// it), and the request must not come from another site (Sec-Fetch-Site,
	// Origin) unless its Origin is one of AllowedOrigins. Failures answer
	// 403 {"error":"csrf_failed"}.
	Cookie         string
	CSRFCookie     string
	AllowedOrigins []string
}

// Verifier verifies access tokens. It is safe for concurrent use.
type Verifier struct {
	issuer   string
	audience string
	keys     KeySet
	rev      Revocations
	leeway   time.Duration
	now      func() time.Time
	cache    *cache // nil: disabled

	maxLifetime  int64 // Config.MaxTokenLifetime in seconds
	lastHeader   atomic.Pointer[headerInfo]
	audienceOnly []string // {audience}: the Audience of most tokens, shared

	cookie         string
	csrfCookie     string
	allowedOrigins map[string]bool

	fresh         Freshness // nil: no fail-safe policy
	maxStale      time.Duration
	failOpen      bool
	onStale       func()
	staleAccepted atomic.Uint64
}

// supported lists the algorithms a Key may be bound to.
var supported = []string{"EdDSA", "ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}

// New returns a Verifier for cfg, or an error saying what is wrong with it.
func New(cfg Config) (*Verifier, error) {
	switch {
	case strings.TrimSpace(cfg.Issuer) == "":
		return nil, errors.New("verifier: Config.Issuer is required")
	case strings.TrimSpace(cfg.Audience) == "":
		return nil, errors.New("verifier: Config.Audience is required")
	case cfg.Keys == nil:
		return nil, errors.New("verifier: Config.Keys is required")
	case cfg.Leeway < 0:
		return nil, fmt.Errorf("verifier: Config.Leeway %v is negative", cfg.Leeway)
	case cfg.Leeway > MaxLeeway:
		return nil, fmt.Errorf("verifier: Config.Leeway %v exceeds the maximum of %v", cfg.Leeway, MaxLeeway)
	case cfg.MaxStale < 0:
		return nil, fmt.Errorf("verifier: Config.MaxStale %v is negative", cfg.MaxStale)
	case cfg.MaxTokenLifetime < 0 || cfg.MaxTokenLifetime > 0 && cfg.MaxTokenLifetime < time.Second:
		return nil, fmt.Errorf("verifier: Config.MaxTokenLifetime %v is not a positive number of seconds", cfg.MaxTokenLifetime)
	}
	v := &Verifier{
		issuer:       cfg.Issuer,
		audience:     cfg.Audience,
		keys:         cfg.Keys,
		rev:          cfg.Revocations,
		leeway:       cfg.Leeway,
		now:          cfg.Now,
		audienceOnly: []string{cfg.Audience},
		fresh:        cfg.Freshness,
		maxStale:     cfg.MaxStale,
		failOpen:     cfg.FailOpen,
		onStale:      cfg.OnStale,
		cookie:       cfg.Cookie, csrfCookie: cfg.CSRFCookie,
		allowedOrigins: make(map[string]bool, len(cfg.AllowedOrigins)),
	}
	if cfg.Cookie != "" && cfg.CSRFCookie == "" {
		return nil, errors.New("verifier: Config.Cookie needs Config.CSRFCookie for the CSRF defence")
	}
	for _, o := range cfg.AllowedOrigins {
		v.allowedOrigins[strings.TrimSuffix(o, "/")] = true
	}
	if v.maxStale == 0 {
		v.maxStale = DefaultMaxStale
	}
	if v.leeway == 0 {
		v.leeway = DefaultLeeway
	}
	if v.now == nil {
		v.now = time.Now
	}
	lifetime := cfg.MaxTokenLifetime
	if lifetime == 0 {
		lifetime = DefaultMaxTokenLifetime
	}
	v.maxLifetime = int64(lifetime / time.Second)
	size := cfg.CacheSize
	if size == 0 {
		size = DefaultCacheSize
	}
	if size > 0 {
		v.cache = newCache(size)
	}
	return v, nil
}

// Verify checks token and returns its claims. Errors are *Error values
// matching one of the sentinels (ErrMalformed, ErrSignature, ...) with
// errors.Is; their text never contains the token.
//
// Verify never blocks: a token signed by a key the KeySet does not know
// is refused with ErrUnknownKey at once (a *JWKS starts a refetch in the
// background, so that a retry finds a newly published key). Use
// VerifyContext to wait for that refetch.
func (v *Verifier) Verify(token string) (*Claims, error) {
	return v.check(context.Background(), false, token)
}

// VerifyContext is Verify, except that when the token's kid is unknown and
// the KeySet is a KeyWaiter (a *JWKS), it waits under ctx for the key set
// to be refetched before refusing the token (at most 2 s with a *JWKS).
// Middleware calls it with the request's context.
func (v *Verifier) VerifyContext(ctx context.Context, token string) (*Claims, error) {
	return v.check(ctx, true, token)
}

// check is Verify (wait false: never wait for a key) and VerifyContext.
func (v *Verifier) check(ctx context.Context, wait bool, token string) (*Claims, error) {
	if len(token) > MaxTokenSize {
		return nil, errTooLarge
	}
	if token == "" {
		return nil, errEmpty
	}
	if v.cache != nil {
		if e := v.cache.get(token); e != nil {
			if v.stillValid(e) {
				c := e.claims
				if v.revoked(&c, e.kid) {
					return nil, errRevoked
				}
				if v.fresh != nil && !v.freshEnough() {
					return nil, errStale
				}
				return &c, nil
			}
			// Expired, or the key changed: forget it and let the full
			// verification give the precise answer.
			v.cache.remove(token)
		}
	}
	c, e, kid, err := v.verify(ctx, wait, token)
	if err != nil {
		return nil, err
	}
	if v.revoked(c, kid) {
		return nil, errRevoked
	}
	if v.fresh != nil && !v.freshEnough() {
		return nil, errStale
	}
	if v.cache != nil {
		v.cache.put(token, e, v.now())
	}
	return c, nil
}

// freshEnough applies the fail-safe policy: it reports whether a token
// that passed every other check may be accepted given the age of the
// revocation data.
func (v *Verifier) freshEnough() bool {
	last := v.fresh.LastSync()
	if !last.IsZero() && v.now().Sub(last) <= v.maxStale {
		return true
	}
	if !v.failOpen {
		return false
	}
	v.staleAccepted.Add(1)
	if v.onStale != nil {
		v.onStale()
	}
	return true
}

// Fresh reports whether the revocation data is recent enough (no older
// than MaxStale) for the fail-safe policy to stay out of the way; it is
// always true without Config.Freshness. Unlike Verify under FailOpen it
// counts nothing. Readiness probes use it.
func (v *Verifier) Fresh() bool {
	if v.fresh == nil {
		return true
	}
	last := v.fresh.LastSync()
	return !last.IsZero() && v.now().Sub(last) <= v.maxStale
}

// StaleAccepted returns how many tokens were accepted with stale
// revocation data under Config.FailOpen. Export it as a warning metric.
func (v *Verifier) StaleAccepted() uint64 { return v.staleAccepted.Load() }

// revoked reports whether the token with claims c, signed with the key
// named kid, is revoked: by its claims, or because its key is.
func (v *Verifier) revoked(c *Claims, kid string) bool {
	if v.rev == nil {
		return false
	}
	if kr, ok := v.rev.(KeyRevocations); ok && kr.KeyRevoked(kid) {
		return true
	}
	return v.rev.Revoked(c.ID, c.SessionID, c.Subject, c.IssuedAt.Time)
}

// stillValid re-checks, for a cache hit, what can change after a token was
// verified: the clock and the key set.
func (v *Verifier) stillValid(e *entry) bool {
	now := v.now()
	if !now.Before(e.notAfter) || now.Before(e.notBefore) {
		return false
	}
	k, ok := v.keys.Key(e.kid)
	return ok && k.Algorithm == e.key.Algorithm && publicEqual(k.Public, e.key.Public)
}

// publicEqual reports whether a and b are the same public key. Key sets
// normally return the same pointer every time, which is checked first:
// Equal on ECDSA and RSA keys costs allocations.
func publicEqual(a, b crypto.PublicKey) bool {
	switch x := a.(type) {
	case ed25519.PublicKey:
		y, ok := b.(ed25519.PublicKey)
		return ok && bytes.Equal(x, y)
	case *ecdsa.PublicKey:
		if y, ok := b.(*ecdsa.PublicKey); ok && x == y {
			return true
		}
	case *rsa.PublicKey:
		if y, ok := b.(*rsa.PublicKey); ok && x == y {
			return true
		}
	}
	eq, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && eq.Equal(b)
}

// b64url marks the characters of the base64url alphabet.
var b64url = func() (t [256]bool) {
	for _, c := range "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_" {
		t[c] = true
	}
	return t
}()

// canonical reports whether seg is canonical unpadded base64url: a length
// that is not 1 mod 4 and zero bits after the last encoded byte. (Strict
// decoding would catch both; checking here makes it independent of the
// decoder and covers the signature segment before golang-jwt sees it.)
func canonical(seg string) bool {
	switch len(seg) % 4 {
	case 1:
		return false
	case 2:
		return b64index(seg[len(seg)-1])&0x0f == 0
	case 3:
		return b64index(seg[len(seg)-1])&0x03 == 0
	}
	return true
}

func b64index(c byte) byte {
	switch {
	case 'A' <= c && c <= 'Z':
		return c - 'A'
	case 'a' <= c && c <= 'z':
		return c - 'a' + 26
	case '0' <= c && c <= '9':
		return c - '0' + 52
	case c == '-':
		return 62
	}
	return 63 // '_'
}

var strictB64 = base64.RawURLEncoding.Strict()

// Names whose case variants are refused, so that no other parser can read
// a different value than encoding/json (which matches case-insensitively).
var (
	headerNames = []string{"alg", "kid", "typ", "cty", "crit", "jku", "x5u", "jwk", "x5c", "x5t", "x5t#S256"}
	claimNames  = []string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "sid", "client_id", "scope", "auth_time"}
)

// scratchSize is the size of the pooled buffers of verify: enough for an
// RS256 token of 1 KB (the token, its decoded segments, the digest and an
// ASN.1 signature).
const scratchSize = 2560

var scratchPool = sync.Pool{New: func() any { return new([scratchSize]byte) }}

// arena hands out pieces of a fixed buffer and falls back to the heap when
// it is exhausted.
type arena struct{ free []byte }

func (a *arena) take(n int) []byte {
	if n <= len(a.free) {
		b := a.free[:n:n]
		a.free = a.free[n:]
		return b
	}
	return make([]byte, n)
}

// rest returns the free space as an empty slice to append to.
func (a *arena) rest() []byte { return a.free[:0] }

// verify is the full verification of a token not found in the cache; it
// checks everything except revocation. It returns the token's kid (for the
// key-revocation check) and an entry for the cache, only when the cache is
// enabled.
//
// The order of the checks fixes which error a token with several defects
// gets: structure and encoding, header, claims syntax and types, key and
// algorithm, signature, then the values of the claims (lifetime, exp, iat,
// nbf, iss, aud).
func (v *Verifier) verify(ctx context.Context, wait bool, token string) (*Claims, *entry, string, *Error) {
	// Structure: three canonical base64url segments, nothing else. The
	// fast path finds the dots with IndexByte and lets the strict decoder
	// check the alphabet (it skips CR and LF, which the decoded length
	// catches); any failure is classified by structureError, the same
	// checks one byte at a time.
	hLen := strings.IndexByte(token, '.')
	sigDot := -1
	if hLen > 0 {
		if i := strings.IndexByte(token[hLen+1:], '.'); i > 0 {
			sigDot = hLen + 1 + i
		}
	}
	if sigDot < 0 || sigDot == len(token)-1 || strings.IndexByte(token[sigDot+1:], '.') >= 0 {
		return nil, nil, "", structureError(token)
	}
	h, p, sig := token[:hLen], token[hLen+1:sigDot], token[sigDot+1:]
	if !canonical(h) || !canonical(p) || !canonical(sig) {
		return nil, nil, "", structureError(token)
	}
	// One pooled buffer holds, for tokens up to about 1 KB, the token's
	// bytes (the signing input for the primitives), the decoded segments
	// and the scratch space of the signature check. Nothing taken from it
	// outlives this call: the claims are copied out.
	buf := scratchPool.Get().(*[scratchSize]byte)
	defer scratchPool.Put(buf)
	mem := arena{free: buf[:]}
	tok := mem.take(len(token))
	copy(tok, token)
	payload := mem.take(strictB64.DecodedLen(len(p)))
	signature := mem.take(strictB64.DecodedLen(len(sig)))
	if n, err := strictB64.Decode(payload, tok[hLen+1:sigDot]); err != nil || n != len(payload) {
		return nil, nil, "", structureError(token)
	}
	if n, err := strictB64.Decode(signature, tok[sigDot+1:]); err != nil || n != len(signature) {
		return nil, nil, "", structureError(token)
	}

	// Header: the outcome of its checks depends on its bytes alone, so
	// the header of the last verified token is remembered (tokens signed
	// by one key share one header).
	var alg, kid string
	known := v.lastHeader.Load()
	if known != nil && known.seg == h {
		alg, kid = known.alg, known.kid
	} else {
		header := mem.take(strictB64.DecodedLen(len(h)))
		if n, err := strictB64.Decode(header, tok[:hLen]); err != nil || n != len(header) {
			return nil, nil, "", structureError(token)
		}
		a, k, err := checkHeader(header)
		if err != nil {
			return nil, nil, "", err
		}
		alg, kid, known = string(a), string(k), nil
	}

	// Claims: strict JSON, registered claims with their JSON types,
	// numeric dates in range. Values are decoded after the signature.
	if !utf8.Valid(payload) {
		return nil, nil, "", errClaimsJSON
	}
	var members [maxMembers]member
	n, code := scanTop(payload, &members)
	switch code {
	case scanDup:
		return nil, nil, "", errDupClaim
	case scanSyntax:
		return nil, nil, "", errClaimsJSON
	}
	var (
		exp, iat, nbf, authTime             int64 // 0: absent
		sub, jti, cid, sid, scope, aud, iss []byte
		audKind                             byte
	)
	for _, m := range members[:n] {
		switch string(m.key) {
		case "exp", "iat", "nbf", "auth_time":
			if m.kind != kindNumber {
				return nil, nil, "", errClaimType
			}
			t, ok := numericDate(m.val)
			if !ok {
				return nil, nil, "", errDateRange
			}
			switch string(m.key) {
			case "exp":
				exp = t
			case "iat":
				iat = t
			case "nbf":
				nbf = t
			default:
				authTime = t
			}
		case "iss", "sub", "jti", "client_id", "sid", "scope":
			if m.kind != kindString {
				return nil, nil, "", errClaimType
			}
			switch string(m.key) {
			case "iss":
				iss = m.val
			case "sub":
				sub = m.val
			case "jti":
				jti = m.val
			case "client_id":
				cid = m.val
			case "sid":
				sid = m.val
			default:
				scope = m.val
			}
		case "aud":
			if m.kind != kindString && m.kind != kindArray {
				return nil, nil, "", errClaimType
			}
			aud, audKind = m.val, m.kind
		default:
			if foldsToAny(m.key, claimNames) {
				return nil, nil, "", errClaimCase
			}
		}
	}
	audList, audOne, audFound, audNonEmpty, audOK := false, false, false, false, true
	var audValues []string
	if aud != nil {
		audValues, audOne, audFound, audNonEmpty, audOK = audience(aud, audKind, v.audience)
		if !audOK {
			return nil, nil, "", errClaimType
		}
		audList = true
	}
	switch {
	case exp == 0:
		return nil, nil, "", errMissingExp
	case iat == 0:
		return nil, nil, "", errMissingIat
	case len(iss) <= 2:
		return nil, nil, "", errMissingIss
	case !audList || !audNonEmpty:
		return nil, nil, "", errMissingAud
	case len(sub) <= 2:
		return nil, nil, "", errMissingSub
	case len(jti) <= 2:
		return nil, nil, "", errMissingJti
	case len(cid) <= 2:
		return nil, nil, "", errMissingCID
	}

	// Key: looked up by kid only in our key set; alg must be its algorithm.
	k, ok := v.keys.Key(kid)
	if w, canWait := v.keys.(KeyWaiter); !ok && wait && canWait {
		k, ok = w.WaitKey(ctx, kid)
	}
	if !ok {
		return nil, nil, "", errUnknownKid
	}
	if alg != k.Algorithm {
		return nil, nil, "", errAlgMismatch
	}
	if !usable(k) {
		return nil, nil, "", errKeyUnusable
	}

	// Signature, over the signing input, with the key's one algorithm.
	if err := checkSignature(k, tok[:sigDot], signature, &mem); err != nil {
		return nil, nil, "", err
	}

	// The values of the claims.
	if exp-iat > v.maxLifetime {
		return nil, nil, "", errLifetime
	}
	now := v.now()
	expT, iatT := time.Unix(exp, 0), time.Unix(iat, 0)
	if !now.Before(expT.Add(v.leeway)) {
		return nil, nil, "", errExpired
	}
	if nbf != 0 && now.Before(time.Unix(nbf, 0).Add(-v.leeway)) {
		return nil, nil, "", errNotBefore
	}
	if now.Before(iatT.Add(-v.leeway)) {
		return nil, nil, "", errIssuedLater
	}
	if !equalString(iss, v.issuer) {
		return nil, nil, "", errIssuer
	}
	if !audFound {
		return nil, nil, "", errAudience
	}

	// The claims, in one allocation with their dates.
	d := new(decoded)
	c := &d.claims
	c.Issuer = v.issuer
	// sub, jti, client_id, sid and scope share one string.
	vals := [5][]byte{sub, jti, cid, sid, scope}
	all := mem.rest()
	var ends [5]int
	for i, raw := range vals {
		if raw != nil {
			s, escaped := stringContent(raw)
			if escaped {
				all = unescape(all, s)
			} else {
				all = append(all, s...)
			}
		}
		ends[i] = len(all)
	}
	str := string(all)
	c.Subject, c.ID, c.ClientID = str[:ends[0]], str[ends[0]:ends[1]], str[ends[1]:ends[2]]
	c.SessionID, c.Scope = str[ends[2]:ends[3]], str[ends[3]:ends[4]]
	if audOne {
		c.Audience = v.audienceOnly
	} else {
		// Clipped: the cache hands this slice to every caller of the
		// token, and an append by one must copy, not write into spare
		// capacity another caller's append also uses.
		c.Audience = slices.Clip(audValues)
	}
	d.dates[0].Time, d.dates[1].Time = expT, iatT
	c.ExpiresAt, c.IssuedAt = &d.dates[0], &d.dates[1]
	if nbf != 0 {
		d.dates[2].Time = time.Unix(nbf, 0)
		c.NotBefore = &d.dates[2]
	}
	if authTime != 0 {
		d.dates[3].Time = time.Unix(authTime, 0)
		c.AuthTime = &d.dates[3]
	}
	if known == nil {
		v.lastHeader.Store(&headerInfo{seg: strings.Clone(h), alg: alg, kid: kid})
	}
	if v.cache == nil {
		return c, nil, kid, nil
	}
	e := &entry{
		claims:    *c,
		notAfter:  expT.Add(v.leeway),
		notBefore: iatT.Add(-v.leeway),
		kid:       kid,
		key:       k,
	}
	if nbf > iat {
		e.notBefore = c.NotBefore.Add(-v.leeway)
	}
	return c, e, kid, nil
}

// headerInfo is the outcome of checkHeader for a header segment that
// passed it, as part of a token that verified.
type headerInfo struct {
	seg      string // the base64url header segment
	alg, kid string
}

// checkHeader checks the decoded JOSE header and returns its alg and kid.
func checkHeader(header []byte) (alg, kid []byte, _ *Error) {
	if !utf8.Valid(header) {
		return nil, nil, errHeaderJSON
	}
	var members [maxMembers]member
	n, code := scanTop(header, &members)
	switch code {
	case scanDup:
		return nil, nil, errDupHeader
	case scanSyntax:
		return nil, nil, errHeaderJSON
	}
	var typ []byte
	var hasAlg, hasKid, hasTyp bool
	for _, m := range members[:n] {
		switch string(m.key) {
		case "alg", "kid", "typ":
			if m.kind != kindString || bytes.IndexByte(m.val, '\\') >= 0 {
				return nil, nil, errHeaderJSON
			}
			val := m.val[1 : len(m.val)-1]
			switch m.key[0] {
			case 'a':
				alg, hasAlg = val, true
			case 'k':
				kid, hasKid = val, true
			default:
				typ, hasTyp = val, true
			}
		case "crit":
			return nil, nil, errCrit
		case "jku", "x5u", "jwk", "x5c":
			return nil, nil, errKeyHeader
		default:
			if foldsToAny(m.key, headerNames) {
				return nil, nil, errHeaderCase
			}
		}
	}
	switch {
	case !hasTyp:
		return nil, nil, errNoTyp
	case !isAccessTokenType(typ):
		return nil, nil, errType
	case !hasAlg || len(alg) == 0:
		return nil, nil, errNoAlg
	case !hasKid || len(kid) == 0:
		return nil, nil, errNoKid
	}
	return alg, kid, nil
}

// structureError tells why token is not three canonical base64url
// segments, checking one byte at a time in a fixed order (alphabet, dots,
// empty segments, canonical lengths and bits) so that each defect gets its
// own error whatever the decoder would have said.
func structureError(token string) *Error {
	dots := 0
	for i := 0; i < len(token); i++ {
		if c := token[i]; c == '.' {
			dots++
		} else if !b64url[c] {
			return errChars
		}
	}
	if dots != 2 {
		return errSegments
	}
	h, rest, _ := strings.Cut(token, ".")
	p, sig, _ := strings.Cut(rest, ".")
	switch {
	case h == "" || p == "":
		return errSegments
	case sig == "":
		return errNoSignature
	case !canonical(h) || !canonical(p) || !canonical(sig):
		return errBase64
	}
	return errBase64Dec
}

// decoded is the allocation holding the claims Verify returns and their
// dates.
type decoded struct {
	claims Claims
	dates  [4]jwt.NumericDate // exp, iat, nbf, auth_time
}

// isAccessTokenType reports whether typ is at+jwt or application/at+jwt,
// compared ASCII case-insensitively (media types are case-insensitive).
func isAccessTokenType(typ []byte) bool {
	t := string(typ)
	return asciiEqualFold(t, "at+jwt") || asciiEqualFold(t, "application/at+jwt")
}

func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// usable reports whether k's public key has the type, curve and size its
// algorithm requires.
func usable(k Key) bool {
	switch k.Algorithm {
	case "EdDSA":
		pk, ok := k.Public.(ed25519.PublicKey)
		return ok && len(pk) == ed25519.PublicKeySize
	case "ES256", "ES384", "ES512":
		pk, ok := k.Public.(*ecdsa.PublicKey)
		if !ok || pk == nil {
			return false
		}
		var want elliptic.Curve
		switch k.Algorithm {
		case "ES256":
			want = elliptic.P256()
		case "ES384":
			want = elliptic.P384()
		default:
			want = elliptic.P521()
		}
		return pk.Curve == want
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		pk, ok := k.Public.(*rsa.PublicKey)
		return ok && pk != nil && pk.N != nil && pk.N.BitLen() >= 2048
	}
	return false
}
