// Package keys manages the signing keys of the Latch auth server: the
// key-encryption key (KEK) that seals private keys at rest, and the key ring
// that rotates, publishes and signs with them.
//
// The ring holds one chain of keys per family, and a key signs only its
// family's tokens: FamilyAccess signs access tokens (typ at+jwt) with
// Config.Algorithm, FamilyID signs id_tokens (typ JWT) and back-channel
// logout tokens (typ logout+jwt) with RS256, OpenID Connect's default.
// Each family rotates on its own schedule, and a verifier of one kind of
// token trusts only the keys of its family (FamilyKey), so that no token
// passes for another kind even if its typ check were lost.
//
// A key moves through states that follow from the clock and the stored
// NotBefore and NotAfter, among the keys of its family: pending
// (published, not yet signing), active (signing), retired (still published
// so that tokens it signed verify and caches never miss) and removed (past
// NotAfter: neither published nor usable); a revoked key is neither, from
// any state. A new key is published JWKSMaxAge + 10 minutes before it
// signs; a replaced key stays published for its tokens' lifetime +
// JWKSMaxAge after its successor activates. Rotation across instances is
// decided by the store's conditional KeyStore.RotateKeys, per family, so
// only one instance rotates each family.
//
// A key can also be revoked (Revoke, after a suspected compromise): from
// then on the ring never signs with it, publishes it or trusts it, whatever
// its dates say, and its kid travels the revocation feed to every verifier.
//
// Signers, Sign, PublicKey, FamilyKey and JWKS read an immutable snapshot
// without locks and resolve the active key against the clock at call time,
// so a pending key starts signing at its NotBefore without a reload. The
// JOSE header of each token type is encoded once per key.
package keys

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"

	"github.com/latchauth/latch"
)

// States of a key, as reported by List.
const (
	StatePending = "pending" // published, signs from NotBefore
	StateActive  = "active"  // the newest key past NotBefore: signs
	StateRetired = "retired" // replaced, still published until NotAfter
	StateRemoved = "removed" // past NotAfter: not published, not usable
	StateRevoked = "revoked" // revoked: never signs, published or trusted
)

// Families of keys. A key belongs to one family, signs only its tokens and
// is trusted only for them.
const (
	// FamilyAccess signs access tokens (TokenType), with Config.Algorithm.
	FamilyAccess = "access"
	// FamilyID signs what OpenID Connect relying parties verify: id_tokens
	// (IDTokenType) and back-channel logout tokens (LogoutTokenType), with
	// IDAlgorithm.
	FamilyID = "id"
)

// JOSE "typ" headers of the tokens the ring signs.
const (
	// TokenType is the typ of access tokens (RFC 9068).
	TokenType = "at+jwt"
	// IDTokenType is the typ of id_tokens (OpenID Connect Core §5.4 leaves
	// it optional; "JWT" is what relying parties accept).
	IDTokenType = "JWT"
	// LogoutTokenType is the typ of back-channel logout tokens (OpenID
	// Connect Back-Channel Logout 1.0 §2.4).
	LogoutTokenType = "logout+jwt"
)

// IDAlgorithm is the algorithm of FamilyID keys: RS256, the OpenID Connect
// default that every certified relying party accepts.
const IDAlgorithm = RS256

// familyTypes lists the token types each family signs; a key caches its
// JOSE header for each, in this order.
var familyTypes = map[string][]string{
	FamilyAccess: {TokenType},
	FamilyID:     {IDTokenType, LogoutTokenType},
}

// families are the families every ring keeps, in the order JWKS lists
// their active keys.
var families = []string{FamilyAccess, FamilyID}

var (
	// ErrRotationPending is returned by Rotate and RotateFamily when a key
	// of the family is already pending; the error says which key
	// activates when.
	ErrRotationPending = errors.New("keys: a rotation is already pending")
	// ErrNoSigningKey is returned by Sign when no key is active at the
	// current time.
	ErrNoSigningKey = errors.New("keys: no active signing key")
	// ErrUnknownKey is returned by Revoke for a kid the ring does not hold.
	ErrUnknownKey = errors.New("keys: no such key")
	// ErrUnknownFamily is returned by RotateFamily for a family the ring
	// does not keep.
	ErrUnknownFamily = errors.New("keys: no such key family")
	// ErrUnsupportedAlgorithm is returned by IDTokens and LogoutTokens for
	// an algorithm no family of the ring signs them with.
	ErrUnsupportedAlgorithm = errors.New("keys: no key family signs with this algorithm")
)

// revokeMargin is added to the lifetime of a key's revocation entry: an
// instance may go on signing with a revoked key until it reloads its ring
// (seconds), and clocks differ.
const revokeMargin = time.Minute

// Info describes a key of the ring at the time List was called.
type Info struct {
	ID        string // kid
	Algorithm string // EdDSA, ES256 or RS256
	Family    string // FamilyAccess or FamilyID
	State     string // StatePending, StateActive, StateRetired, StateRemoved or StateRevoked (within its family)
	CreatedAt time.Time
	NotBefore time.Time
	NotAfter  time.Time // zero until a newer key replaces this one
	RevokedAt time.Time // zero unless the key was revoked
}

// Ring is the signing-key ring of one server instance, backed by a
// latch.KeyStore shared with other instances and the CLI. It is safe for
// concurrent use: signing, PublicKey, FamilyKey, JWKS and List never
// block; Reload, Rotate, RotateFamily, Revoke and Tick are serialised.
type Ring struct {
	store latch.KeyStore
	kek   KEK
	cfg   Config
	now   func() time.Time

	access, id, logout *Signer

	mu   sync.Mutex // serialises Reload, Rotate and Tick
	snap atomic.Pointer[snapshot]
	jwks atomic.Pointer[jwksCache]
}

// key is one key of a snapshot. It is immutable once built.
type key struct {
	id        string
	alg       string
	family    string
	createdAt time.Time
	notBefore time.Time
	notAfter  time.Time
	revokedAt time.Time // zero unless revoked

	// The rest is nil for keys already removed or revoked when the
	// snapshot was built.
	method jwt.SigningMethod
	pub    crypto.PublicKey
	// priv is set only for keys that were active or pending when the
	// snapshot was built: retired keys never sign again.
	priv crypto.Signer
	jwk  []byte // public JWK with kid, alg and use, no private members
	// headers holds, for each token type of the key's family (in the
	// order of familyTypes), the base64url of the JOSE header followed by
	// "."; nil for a family this program does not know.
	headers []string
	sigSize int // length of a signature in bytes
}

// removedAt reports whether k is past its NotAfter at now.
func (k *key) removedAt(now time.Time) bool {
	return !k.notAfter.IsZero() && !now.Before(k.notAfter)
}

// snapshot is an immutable view of the stored ring.
type snapshot struct {
	keys []*key // by NotBefore, oldest first
	byID map[string]*key
	fams map[string][]*key // each family's keys, by NotBefore, oldest first
}

// revoked reports whether k was revoked.
func (k *key) revoked() bool { return !k.revokedAt.IsZero() }

// active returns the key of family that signs at now: the family's newest
// key not revoked whose NotBefore has passed, unless it is past its
// NotAfter.
func (s *snapshot) active(family string, now time.Time) *key {
	keys := s.fams[family]
	for i := len(keys) - 1; i >= 0; i-- {
		k := keys[i]
		if k.revoked() || now.Before(k.notBefore) {
			continue
		}
		if k.removedAt(now) {
			return nil
		}
		return k
	}
	return nil
}

// newest returns the newest key of family by NotBefore that is not revoked
// (the one a rotation must name as Previous), or nil if there is none.
func (s *snapshot) newest(family string) *key {
	keys := s.fams[family]
	for i := len(keys) - 1; i >= 0; i-- {
		if !keys[i].revoked() {
			return keys[i]
		}
	}
	return nil
}

// state returns the state of k at now, given the active key of its family
// at now.
func (s *snapshot) state(k, active *key, now time.Time) string {
	switch {
	case k.revoked():
		return StateRevoked
	case k.removedAt(now):
		return StateRemoved
	case now.Before(k.notBefore):
		return StatePending
	case k == active:
		return StateActive
	default:
		return StateRetired
	}
}

// jwksCache holds the JWKS of one snapshot, valid while the set of
// published keys and the active key do not change: from from (inclusive)
// to until (exclusive; zero for no end).
type jwksCache struct {
	snap        *snapshot
	from, until time.Time
	body        []byte
}

// NewRing loads the ring from store, decrypting private keys with kek. For
// each family in which no key can sign (an empty store; a store written
// before the ring had FamilyID), it creates one that is active at once; if
// another process creates it first, that key is used. now is the clock (nil
// for time.Now). The configuration is validated after defaults.
func NewRing(ctx context.Context, store latch.KeyStore, kek KEK, cfg Config, now func() time.Time) (*Ring, error) {
	r, err := LoadRing(ctx, store, kek, cfg, now)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, fam := range families {
		if r.canSignNowOrLater(fam) {
			continue
		}
		if _, err := r.rotateLocked(ctx, fam, true); err != nil && !errors.Is(err, latch.ErrConflict) {
			return nil, err
		}
		// On a conflict rotateLocked has reloaded the winner's ring.
		if !r.canSignNowOrLater(fam) {
			return nil, fmt.Errorf("keys: the key store has no usable %s signing key and creating one failed", fam)
		}
	}
	return r, nil
}

// LoadRing is NewRing without creating anything: the ring as stored, for
// commands that only read it (latch keys list). A family without a usable
// key stays without one.
func LoadRing(ctx context.Context, store latch.KeyStore, kek KEK, cfg Config, now func() time.Time) (*Ring, error) {
	if store == nil {
		return nil, errors.New("keys: NewRing: nil KeyStore")
	}
	if !kek.valid() {
		return nil, errors.New("keys: NewRing: no KEK (use LoadKEK or ParseKEK)")
	}
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	r := &Ring{store: store, kek: kek, cfg: cfg, now: now}
	r.access = &Signer{r: r, family: FamilyAccess, typ: TokenType, idx: 0}
	r.id = &Signer{r: r, family: FamilyID, typ: IDTokenType, idx: 0}
	r.logout = &Signer{r: r, family: FamilyID, typ: LogoutTokenType, idx: 1}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.reloadLocked(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// canSignNowOrLater reports whether family has an active or pending key.
func (r *Ring) canSignNowOrLater(family string) bool {
	s, now := r.snap.Load(), r.now()
	if s.active(family, now) != nil {
		return true
	}
	n := s.newest(family)
	return n != nil && now.Before(n.notBefore)
}

// algorithm returns the algorithm of new keys of family.
func (r *Ring) algorithm(family string) string {
	if family == FamilyID {
		return IDAlgorithm
	}
	return r.cfg.Algorithm
}

// Config returns the ring's configuration with defaults applied.
func (r *Ring) Config() Config { return r.cfg }

// Reload re-reads the ring from the store, picking up rotations made by
// other instances or the CLI. On error the previous view stays in use.
func (r *Ring) Reload(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reloadLocked(ctx)
}

func (r *Ring) reloadLocked(ctx context.Context) error {
	stored, err := r.store.Keys(ctx)
	if err != nil {
		return fmt.Errorf("keys: loading signing keys: %w", err)
	}
	s, err := r.build(stored, r.snap.Load(), r.now())
	if err != nil {
		return err
	}
	r.snap.Store(s)
	return nil
}

// build makes a snapshot of stored keys at now, reusing the parsed keys of
// old where possible.
func (r *Ring) build(stored []latch.SigningKey, old *snapshot, now time.Time) (*snapshot, error) {
	stored = slices.Clone(stored)
	slices.SortStableFunc(stored, func(a, b latch.SigningKey) int { return a.NotBefore.Compare(b.NotBefore) })
	activeIdx := map[string]int{} // per family: newest key not revoked past NotBefore
	for i := len(stored) - 1; i >= 0; i-- {
		if _, found := activeIdx[stored[i].Family]; !found && stored[i].RevokedAt.IsZero() && !now.Before(stored[i].NotBefore) {
			activeIdx[stored[i].Family] = i
		}
	}
	s := &snapshot{keys: make([]*key, 0, len(stored)), byID: make(map[string]*key, len(stored)), fams: map[string][]*key{}}
	for i := range stored {
		sk := &stored[i]
		if _, dup := s.byID[sk.ID]; dup {
			return nil, fmt.Errorf("keys: key store holds key %s twice", sk.ID)
		}
		k := &key{id: sk.ID, alg: sk.Algorithm, family: sk.Family, createdAt: sk.CreatedAt, notBefore: sk.NotBefore,
			notAfter: sk.NotAfter, revokedAt: sk.RevokedAt}
		// A revoked key gets no crypto material at all: nothing can sign
		// with it, publish it or trust it by mistake.
		if !k.revoked() && !k.removedAt(now) {
			ai, found := activeIdx[sk.Family]
			needPriv := !found || i >= ai
			var prev *key
			if old != nil {
				prev = old.byID[sk.ID]
			}
			if prev != nil && prev.pub != nil && prev.alg == sk.Algorithm && prev.family == sk.Family && (prev.priv != nil || !needPriv) {
				k.method, k.pub, k.jwk, k.headers, k.sigSize = prev.method, prev.pub, prev.jwk, prev.headers, prev.sigSize
				if needPriv {
					k.priv = prev.priv
				}
			} else if err := r.parse(k, sk, needPriv); err != nil {
				return nil, err
			}
		}
		s.keys = append(s.keys, k)
		s.byID[k.id] = k
		s.fams[k.family] = append(s.fams[k.family], k)
	}
	return s, nil
}

// parse checks a stored key and fills in its crypto material: the public
// key must match its kid (RFC 7638 thumbprint) and algorithm, and the
// private key, opened when needPriv, must match the public key.
func (r *Ring) parse(k *key, sk *latch.SigningKey, needPriv bool) error {
	method, err := signingMethod(sk.Algorithm)
	if err != nil {
		return fmt.Errorf("keys: key %s: %w", sk.ID, err)
	}
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(sk.Public); err != nil {
		return fmt.Errorf("keys: key %s: public JWK: %w", sk.ID, err)
	}
	if !jwk.IsPublic() {
		return fmt.Errorf("keys: key %s: stored public JWK holds private key material", sk.ID)
	}
	if (jwk.KeyID != "" && jwk.KeyID != sk.ID) || (jwk.Algorithm != "" && jwk.Algorithm != sk.Algorithm) {
		return fmt.Errorf("keys: key %s: public JWK says kid %q alg %q, record says alg %q", sk.ID, jwk.KeyID, jwk.Algorithm, sk.Algorithm)
	}
	if err := checkPublic(sk.Algorithm, jwk.Key); err != nil {
		return fmt.Errorf("keys: key %s: %w", sk.ID, err)
	}
	kid, err := thumbprint(jwk.Key)
	if err != nil {
		return fmt.Errorf("keys: key %s: %w", sk.ID, err)
	}
	if kid != sk.ID {
		return fmt.Errorf("keys: key %s: kid is not the RFC 7638 thumbprint of its public key (%s)", sk.ID, kid)
	}
	k.method, k.pub, k.sigSize = method, jwk.Key, 64
	if p, ok := jwk.Key.(*rsa.PublicKey); ok {
		k.sigSize = p.Size()
	}
	if k.jwk, err = publicJWK(k.pub, kid, sk.Algorithm); err != nil {
		return fmt.Errorf("keys: key %s: %w", sk.ID, err)
	}
	for _, typ := range familyTypes[sk.Family] {
		h, err := header(sk.Algorithm, kid, typ)
		if err != nil {
			return err
		}
		k.headers = append(k.headers, h)
	}
	if !needPriv {
		return nil
	}
	der, err := r.kek.Open(sk.Private, []byte(sk.ID))
	if err != nil {
		return fmt.Errorf("keys: key %s: private key: %w (was it sealed under another KEK?)", sk.ID, err)
	}
	priv, err := x509.ParsePKCS8PrivateKey(der)
	clear(der)
	if err != nil {
		return fmt.Errorf("keys: key %s: private key is not PKCS #8: %w", sk.ID, err)
	}
	signer, ok := priv.(crypto.Signer)
	if !ok {
		return fmt.Errorf("keys: key %s: private key of type %T cannot sign", sk.ID, priv)
	}
	eq, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !eq.Equal(k.pub) {
		return fmt.Errorf("keys: key %s: private key does not match the public key", sk.ID)
	}
	k.priv = signer
	return nil
}

// signingMethod returns golang-jwt's method for alg.
func signingMethod(alg string) (jwt.SigningMethod, error) {
	switch alg {
	case EdDSA:
		return jwt.SigningMethodEdDSA, nil
	case ES256:
		return jwt.SigningMethodES256, nil
	case RS256:
		return jwt.SigningMethodRS256, nil
	}
	return nil, fmt.Errorf("unsupported algorithm %q (accepted: %s)", alg, acceptedAlgorithms)
}

// checkPublic checks that pub is a key of the kind alg needs.
func checkPublic(alg string, pub crypto.PublicKey) error {
	switch alg {
	case EdDSA:
		if p, ok := pub.(ed25519.PublicKey); ok && len(p) == ed25519.PublicKeySize {
			return nil
		}
	case ES256:
		if p, ok := pub.(*ecdsa.PublicKey); ok && p.Curve == elliptic.P256() {
			return nil
		}
	case RS256:
		if p, ok := pub.(*rsa.PublicKey); ok {
			if p.N.BitLen() < rsaBits {
				return fmt.Errorf("RSA key of %d bits is too small (minimum %d)", p.N.BitLen(), rsaBits)
			}
			return nil
		}
	}
	return fmt.Errorf("public key of type %T does not fit algorithm %s", pub, alg)
}

// thumbprint returns the RFC 7638 SHA-256 thumbprint of pub, base64url.
func thumbprint(pub crypto.PublicKey) (string, error) {
	jwk := jose.JSONWebKey{Key: pub}
	t, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(t), nil
}

// publicJWK returns the JSON of pub as a JWK with kid, alg and use "sig".
func publicJWK(pub crypto.PublicKey, kid, alg string) ([]byte, error) {
	b, err := jose.JSONWebKey{Key: pub, KeyID: kid, Algorithm: alg, Use: "sig"}.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("public JWK: %w", err)
	}
	return b, nil
}

// header returns the base64url JOSE header of tokens of type typ signed by
// a key, followed by ".".
func header(alg, kid, typ string) (string, error) {
	h, err := json.Marshal(struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
		Typ string `json:"typ"`
	}{alg, kid, typ})
	if err != nil {
		return "", fmt.Errorf("keys: header: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(h) + ".", nil
}

// generate makes a new private key for alg.
func generate(alg string) (crypto.Signer, error) {
	switch alg {
	case EdDSA:
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		return priv, err
	case ES256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case RS256:
		return rsa.GenerateKey(rand.Reader, rsaBits)
	}
	return nil, fmt.Errorf("keys: unsupported algorithm %q (accepted: %s)", alg, acceptedAlgorithms)
}

// newSigningKey generates a key of family and alg and returns its stored
// form.
func (r *Ring) newSigningKey(family, alg string, createdAt, notBefore time.Time) (latch.SigningKey, error) {
	priv, err := generate(alg)
	if err != nil {
		return latch.SigningKey{}, fmt.Errorf("keys: generating %s key: %w", alg, err)
	}
	kid, err := thumbprint(priv.Public())
	if err != nil {
		return latch.SigningKey{}, fmt.Errorf("keys: %w", err)
	}
	pub, err := publicJWK(priv.Public(), kid, alg)
	if err != nil {
		return latch.SigningKey{}, fmt.Errorf("keys: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return latch.SigningKey{}, fmt.Errorf("keys: encoding private key: %w", err)
	}
	sealed := r.kek.Seal(der, []byte(kid))
	clear(der)
	return latch.SigningKey{
		ID:        kid,
		Algorithm: alg,
		Family:    family,
		Private:   sealed,
		Public:    pub,
		CreatedAt: createdAt,
		NotBefore: notBefore,
	}, nil
}

// Rotate rotates the access-token family; see RotateFamily.
func (r *Ring) Rotate(ctx context.Context, immediate bool) (latch.SigningKey, error) {
	return r.RotateFamily(ctx, FamilyAccess, immediate)
}

// RotateFamily adds a new key to family, of the family's algorithm, and
// returns it as stored; the other families are left alone. The key is
// published at once and signs from now + PublishDelay, or at once if
// immediate (for a suspected compromise: tokens then carry a kid that
// verifiers may not have cached yet). The key it replaces stays published
// until the new key's NotBefore + the family's retention (its tokens'
// lifetime + JWKSMaxAge).
//
// If a key of family is already pending, a scheduled rotation (immediate
// false) adds none and returns an error wrapping ErrRotationPending; an
// immediate one supersedes the pending key, which is revoked without ever
// signing. If another instance rotated the family first, RotateFamily
// reloads the ring and returns an error wrapping latch.ErrConflict. An
// unknown family returns an error wrapping ErrUnknownFamily.
func (r *Ring) RotateFamily(ctx context.Context, family string, immediate bool) (latch.SigningKey, error) {
	if !slices.Contains(families, family) {
		return latch.SigningKey{}, fmt.Errorf("%w: %q (accepted: %s, %s)", ErrUnknownFamily, family, FamilyAccess, FamilyID)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.reloadLocked(ctx); err != nil {
		return latch.SigningKey{}, err
	}
	return r.rotateLocked(ctx, family, immediate)
}

// Families returns the key families every ring keeps, FamilyAccess first.
func Families() []string { return slices.Clone(families) }

// rotation builds the rotation of family from snapshot s at now and the
// key it adds. leaving, if not nil, is a key revoked together with the
// rotation.
func (r *Ring) rotation(s *snapshot, family string, now time.Time, immediate bool, leaving *key) (latch.KeyRotation, latch.SigningKey, error) {
	// The stores keep microseconds; compare dates as they will be stored.
	now = now.Truncate(time.Microsecond)
	prev := s.newest(family)
	supersede := false
	if prev != nil && now.Before(prev.notBefore) {
		if !immediate {
			return latch.KeyRotation{}, latch.SigningKey{}, fmt.Errorf("%w: %s key %s activates at %s (in %s)",
				ErrRotationPending, family, prev.id, prev.notBefore.UTC().Format(time.RFC3339), prev.notBefore.Sub(now).Round(time.Second))
		}
		// The pending key must never sign: the new one would otherwise
		// hand over to it at its NotBefore. It is revoked in the same
		// transaction, and the new key becomes the newest one not
		// revoked, which the next rotation names as Previous.
		supersede = true
	}
	notBefore := now.Add(r.cfg.PublishDelay())
	if immediate || s.active(family, now) == nil {
		// Nothing of the family signs yet, so no cache can be surprised.
		notBefore = now
	}
	if prev == nil {
		// The family's first key, in a ring that may hold keys of other
		// families: it is dated just before all of them. Binaries from
		// before key families take the newest key of the whole ring as
		// their signing key; during a rolling upgrade they go on signing
		// access tokens with the access key, never with this one. Its
		// schedule counts from its CreatedAt (see due).
		for _, k := range s.keys {
			if !k.revoked() && k.family != family && !notBefore.Before(k.notBefore) {
				notBefore = k.notBefore.Add(-time.Microsecond) // the stores keep microseconds
			}
		}
	}
	// Keys are ordered by NotBefore, so the new key must come after every
	// key of its family that stays, or a clock behind the one that made
	// the previous key (another machine's, or one standing still) would
	// leave it behind the key it replaces, never signing.
	for _, k := range s.fams[family] {
		if k.revoked() || k == leaving || (supersede && k == prev) {
			continue
		}
		if !notBefore.After(k.notBefore) {
			notBefore = k.notBefore.Add(time.Microsecond) // the stores keep microseconds
		}
	}
	sk, err := r.newSigningKey(family, r.algorithm(family), now, notBefore)
	if err != nil {
		return latch.KeyRotation{}, latch.SigningKey{}, err
	}
	rot := latch.KeyRotation{New: sk}
	if prev != nil {
		rot.Previous = prev.id
		rot.PreviousNotAfter = notBefore.Add(r.cfg.retention(family))
		// Never bring a removed key back; a key still published whose
		// NotAfter came from a successor revoked while pending gets the
		// NotAfter of its new successor, so that it signs until then.
		if !prev.notAfter.IsZero() && prev.notAfter.Before(rot.PreviousNotAfter) && prev.removedAt(now) {
			rot.PreviousNotAfter = prev.notAfter
		}
		if supersede {
			rot.SupersedePrevious, rot.PreviousNotAfter = true, now
		}
	}
	return rot, sk, nil
}

func (r *Ring) rotateLocked(ctx context.Context, family string, immediate bool) (latch.SigningKey, error) {
	rot, sk, err := r.rotation(r.snap.Load(), family, r.now(), immediate, nil)
	if err != nil {
		return latch.SigningKey{}, err
	}
	if err := r.store.RotateKeys(ctx, rot); err != nil {
		if errors.Is(err, latch.ErrConflict) {
			return latch.SigningKey{}, r.conflictLocked(ctx, family, err)
		}
		return latch.SigningKey{}, fmt.Errorf("keys: storing rotation of the %s keys: %w", family, err)
	}
	if err := r.reloadLocked(ctx); err != nil {
		return sk, fmt.Errorf("keys: rotated to %s but reloading failed: %w", sk.ID, err)
	}
	return sk, nil
}

// conflictLocked reloads the ring after another rotation of family won the
// race and returns the error to report, wrapping err.
func (r *Ring) conflictLocked(ctx context.Context, family string, err error) error {
	if rerr := r.reloadLocked(ctx); rerr != nil {
		return fmt.Errorf("keys: another rotation won (%w); reloading: %v", err, rerr)
	}
	msg := "keys: another instance rotated the " + family + " keys first"
	if n := r.snap.Load().newest(family); n != nil {
		msg += fmt.Sprintf(": newest key %s signs from %s", n.id, n.notBefore.UTC().Format(time.RFC3339))
	}
	return fmt.Errorf("%s: %w", msg, err)
}

// Revoked describes what Revoke did.
type Revoked struct {
	// Key is the revoked key as the ring now lists it.
	Key Info
	// Already is true if the key had been revoked before; the revocation
	// was announced on the feed again.
	Already bool
	// Rotated is the key that replaced the revoked one as the active key
	// of its family, signing at once; zero if the revoked key was not
	// active.
	Rotated latch.SigningKey
	// Expiry is when the revocation entry leaves the feed: every token the
	// key signed has expired and every cached JWKS was refetched by then.
	Expiry time.Time
}

// Revoke revokes the key kid after a suspected compromise: from the moment
// it returns, this ring never signs with it, publishes it or trusts it, and
// the store holds a revocation-feed entry of kind latch.RevokeKey that
// carries the kid to every other instance and remote verifier. If kid is
// the active key of its family, an immediate rotation of that family (and
// no other) is stored in the same transaction, so signing continues with a
// fresh key (a pending key of the family is superseded by it). Revoking a
// key revoked before announces it again. An unknown kid returns an error
// wrapping ErrUnknownKey.
func (r *Ring) Revoke(ctx context.Context, kid string) (Revoked, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.reloadLocked(ctx); err != nil {
		return Revoked{}, err
	}
	for attempt := 1; ; attempt++ {
		s, now := r.snap.Load(), r.now()
		k := s.byID[kid]
		if k == nil {
			return Revoked{}, fmt.Errorf("%w: %q is not a kid of the ring (see latch keys list)", ErrUnknownKey, kid)
		}
		// The entry must outlive every token the key signed and every
		// cached JWKS that listed it, whatever the configuration said
		// when they were made: bound it by the longest lifetime and
		// max-age the configuration accepts, not by today's values.
		out := Revoked{Already: k.revoked(), Expiry: now.Add(maxTokenLifetime + maxJWKSMaxAge + revokeMargin)}
		rev := latch.KeyRevocation{ID: kid, At: now, Expiry: out.Expiry}
		if !k.revoked() && slices.Contains(families, k.family) && k == s.active(k.family, now) {
			rot, sk, err := r.rotation(s, k.family, now, true, k)
			if err != nil {
				return Revoked{}, err
			}
			rev.Rotation, out.Rotated = &rot, sk
		}
		err := r.store.RevokeKey(ctx, rev)
		switch {
		case errors.Is(err, latch.ErrConflict) && rev.Rotation != nil && attempt < 3:
			// Another instance rotated meanwhile: build the rotation
			// again from the ring as it is now.
			if err := r.reloadLocked(ctx); err != nil {
				return Revoked{}, err
			}
			continue
		case errors.Is(err, latch.ErrNotFound):
			return Revoked{}, fmt.Errorf("%w: %q (pruned meanwhile?)", ErrUnknownKey, kid)
		case err != nil:
			return Revoked{}, fmt.Errorf("keys: revoking %s: %w", kid, err)
		}
		if err := r.reloadLocked(ctx); err != nil {
			return out, fmt.Errorf("keys: revoked %s but reloading failed: %w", kid, err)
		}
		for _, info := range r.listLocked() {
			if info.ID == kid {
				out.Key = info
			}
		}
		return out, nil
	}
}

// Tick reloads the ring and rotates each family when due: when its newest
// key's NotBefore + RotationPeriod - PublishDelay has passed (so that its
// successor activates one period after it), when no active or pending key
// of the family uses the family's algorithm (Config.Algorithm changed), or
// when no key of the family can sign. It reports whether this instance
// rotated any family; losing the race to another instance, or a key already
// pending, is not an error. Call it periodically (every minute or so) on
// every instance.
func (r *Ring) Tick(ctx context.Context) (rotated bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.reloadLocked(ctx); err != nil {
		return false, err
	}
	var errs []error
	for _, fam := range families {
		if !r.due(fam) {
			continue
		}
		_, err := r.rotateLocked(ctx, fam, false)
		switch {
		case err == nil:
			rotated = true
		case errors.Is(err, ErrRotationPending), errors.Is(err, latch.ErrConflict):
		default:
			errs = append(errs, err)
		}
	}
	return rotated, errors.Join(errs...)
}

// due reports whether a scheduled rotation of family should happen now.
func (r *Ring) due(family string) bool {
	s, now := r.snap.Load(), r.now()
	newest := s.newest(family)
	if newest == nil {
		return true
	}
	if now.Before(newest.notBefore) {
		return false // a key is pending already
	}
	active := s.active(family, now)
	if active == nil || active.alg != r.algorithm(family) {
		return true
	}
	if newest == active && !active.notAfter.IsZero() {
		// Its successor was revoked while pending: the active key still
		// ends when that successor would have retired it, and nothing
		// would sign after that.
		return true
	}
	// A family's first key may be dated before its creation (see
	// rotation); its period counts from when it was made.
	from := newest.notBefore
	if newest.createdAt.After(from) {
		from = newest.createdAt
	}
	return !now.Before(from.Add(r.cfg.RotationPeriod - r.cfg.PublishDelay()))
}

// List describes every stored key, oldest first, with its state now.
func (r *Ring) List() []Info { return r.listLocked() }

// listLocked is List; it needs no lock and is named for use under one.
func (r *Ring) listLocked() []Info {
	s, now := r.snap.Load(), r.now()
	active := map[string]*key{}
	for fam := range s.fams {
		active[fam] = s.active(fam, now)
	}
	out := make([]Info, 0, len(s.keys))
	for _, k := range s.keys {
		out = append(out, Info{
			ID:        k.id,
			Algorithm: k.alg,
			Family:    k.family,
			State:     s.state(k, active[k.family], now),
			CreatedAt: k.createdAt,
			NotBefore: k.notBefore,
			NotAfter:  k.notAfter,
			RevokedAt: k.revokedAt,
		})
	}
	return out
}

// Signer signs one type of token with the key of one family that is active
// at the time of each call. Get one from AccessTokens, IDTokens or
// LogoutTokens; it is safe for concurrent use and stays valid across
// rotations and reloads.
type Signer struct {
	r      *Ring
	family string
	typ    string
	idx    int // index of typ in familyTypes[family]
}

// Family returns the key family the signer signs with.
func (s *Signer) Family() string { return s.family }

// Type returns the JOSE typ header of the tokens the signer makes.
func (s *Signer) Type() string { return s.typ }

// Algorithm returns the algorithm of the key that signs now ("" if none):
// the JWS alg of a token Sign makes now. For FamilyID it is always
// IDAlgorithm, so claims that depend on it (at_hash) can be computed first.
func (s *Signer) Algorithm() string {
	if k := s.r.snap.Load().active(s.family, s.r.now()); k != nil {
		return k.alg
	}
	return ""
}

// Sign returns the compact JWS of claims signed by the family's key active
// now, with the header alg, kid and the signer's typ, encoded once per key.
// The claims are encoded with encoding/json and signed by golang-jwt's
// signing method for the key's algorithm. It returns ErrNoSigningKey if no
// key of the family is active.
func (s *Signer) Sign(claims any) (string, error) {
	k := s.r.snap.Load().active(s.family, s.r.now())
	if k == nil || k.priv == nil || s.idx >= len(k.headers) {
		return "", ErrNoSigningKey
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("keys: encoding claims: %w", err)
	}
	hdr := k.headers[s.idx]
	enc := base64.RawURLEncoding
	n := len(hdr) + enc.EncodedLen(len(payload))
	buf := make([]byte, n, n+1+enc.EncodedLen(k.sigSize))
	copy(buf, hdr)
	enc.Encode(buf[len(hdr):], payload)
	sig, err := k.method.Sign(string(buf), k.priv)
	if err != nil {
		return "", fmt.Errorf("keys: signing with %s: %w", k.id, err)
	}
	if k.alg == ES256 {
		lowS(sig)
	}
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, sig)
	return string(buf), nil
}

// p256N and p256HalfN are the order n of P-256 and floor(n/2).
var (
	p256N     = elliptic.P256().Params().N
	p256HalfN = new(big.Int).Rsh(p256N, 1)
)

// lowS puts the ES256 signature r||s into its canonical low-S form, s ≤ n/2,
// in place: (r, n−s) is the other valid signature of the same input, and
// verifiers refuse the high one so that each token has a single valid
// encoding (crypto/ecdsa does not normalise).
func lowS(sig []byte) {
	s := new(big.Int).SetBytes(sig[32:])
	if s.Cmp(p256HalfN) > 0 {
		s.Sub(p256N, s).FillBytes(sig[32:])
	}
}

// AccessTokens returns the signer of access tokens: typ at+jwt, keys of
// FamilyAccess.
func (r *Ring) AccessTokens() *Signer { return r.access }

// IDTokenAlgorithms returns the algorithms IDTokens and LogoutTokens
// accept: the values of id_token_signing_alg_values_supported.
func (r *Ring) IDTokenAlgorithms() []string { return []string{IDAlgorithm} }

// IDTokens returns the signer of id_tokens (typ JWT, keys of FamilyID) for
// a client that registered id_token_signed_response_alg alg; "" means the
// default, IDAlgorithm. An algorithm not in IDTokenAlgorithms returns an
// error wrapping ErrUnsupportedAlgorithm: id_tokens are never signed with
// an access-token key.
func (r *Ring) IDTokens(alg string) (*Signer, error) {
	if err := r.checkIDAlgorithm(alg); err != nil {
		return nil, err
	}
	return r.id, nil
}

// LogoutTokens returns the signer of back-channel logout tokens (typ
// logout+jwt, keys of FamilyID) for a client whose id_tokens are signed
// with alg, since relying parties verify both alike; "" means IDAlgorithm.
func (r *Ring) LogoutTokens(alg string) (*Signer, error) {
	if err := r.checkIDAlgorithm(alg); err != nil {
		return nil, err
	}
	return r.logout, nil
}

func (r *Ring) checkIDAlgorithm(alg string) error {
	if alg == "" || alg == IDAlgorithm {
		return nil
	}
	return fmt.Errorf("%w: %q (id_tokens are signed with %s)", ErrUnsupportedAlgorithm, alg, strings.Join(r.IDTokenAlgorithms(), ", "))
}

// Sign signs an access token: it is AccessTokens().Sign(claims).
func (r *Ring) Sign(claims jwt.Claims) (string, error) { return r.access.Sign(claims) }

// PublicKey returns the algorithm and public key of a published (pending,
// active or retired) key of any family; ok is false for an unknown,
// removed or revoked kid. Each key is bound to exactly one algorithm. To
// verify a token of one type, use FamilyKey with its family instead.
func (r *Ring) PublicKey(kid string) (alg string, pub crypto.PublicKey, ok bool) {
	k := r.snap.Load().byID[kid]
	if k == nil || k.pub == nil || k.revoked() || k.removedAt(r.now()) {
		return "", nil, false
	}
	return k.alg, k.pub, true
}

// FamilyKey is PublicKey restricted to the keys of family: what a verifier
// of that family's tokens may trust. An access-token verifier that uses
// FamilyKey(FamilyAccess, kid) refuses a token signed by an id_token key,
// whatever its header and claims say.
func (r *Ring) FamilyKey(family, kid string) (alg string, pub crypto.PublicKey, ok bool) {
	k := r.snap.Load().byID[kid]
	if k == nil || k.family != family || k.pub == nil || k.revoked() || k.removedAt(r.now()) {
		return "", nil, false
	}
	return k.alg, k.pub, true
}

// JWKS returns the JSON Web Key Set of the published keys of every family
// (pending, active and retired; never a revoked one), the active key of
// each family first (FamilyAccess, then FamilyID), each with kid, alg and
// use "sig" and no private members. The bytes are cached until the ring or
// a key's state changes; callers must not modify them. Serve them with
// Cache-Control max-age set to Config().JWKSMaxAge.
func (r *Ring) JWKS() []byte {
	s, now := r.snap.Load(), r.now()
	if c := r.jwks.Load(); c != nil && c.snap == s && !now.Before(c.from) && (c.until.IsZero() || now.Before(c.until)) {
		return c.body
	}
	c := buildJWKS(s, now)
	r.jwks.Store(c)
	return c.body
}

// buildJWKS renders the JWKS of s at now and the interval over which it
// stays the same.
func buildJWKS(s *snapshot, now time.Time) *jwksCache {
	c := &jwksCache{snap: s}
	for _, k := range s.keys {
		for _, t := range [2]time.Time{k.notBefore, k.notAfter} {
			if t.IsZero() {
				continue
			}
			if now.Before(t) {
				if c.until.IsZero() || t.Before(c.until) {
					c.until = t
				}
			} else if t.After(c.from) {
				c.from = t
			}
		}
	}
	var b bytes.Buffer
	b.WriteString(`{"keys":[`)
	add := func(k *key) {
		if b.Len() > len(`{"keys":[`) {
			b.WriteByte(',')
		}
		b.Write(k.jwk)
	}
	active := map[*key]bool{}
	for _, fam := range families {
		if k := s.active(fam, now); k != nil && k.jwk != nil {
			active[k] = true
			add(k)
		}
	}
	for i := len(s.keys) - 1; i >= 0; i-- {
		k := s.keys[i]
		if !active[k] && k.jwk != nil && !k.revoked() && !k.removedAt(now) {
			add(k)
		}
	}
	b.WriteString("]}")
	c.body = b.Bytes()
	return c
}
