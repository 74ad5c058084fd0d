// Package keys manages the signing keys of the Latch auth server: the
// key-encryption key (KEK) that seals private keys at rest, and the key ring
// that rotates, publishes and signs with them.
//
// A key moves through states that follow from the clock and the stored
// NotBefore and NotAfter: pending (published, not yet signing), active
// (signing), retired (still published so that tokens it signed verify and
// caches never miss) and removed (past NotAfter: neither published nor
// usable); a revoked key is neither, from any state. A new key is published JWKSMaxAge + 10 minutes before it signs;
// a replaced key stays published for TokenLifetime + JWKSMaxAge after its
// successor activates. Rotation across instances is decided by the store's
// conditional KeyStore.RotateKeys, so only one instance rotates.
//
// A key can also be revoked (Revoke, after a suspected compromise): from
// then on the ring never signs with it, publishes it or trusts it, whatever
// its dates say, and its kid travels the revocation feed to every verifier.
//
// Sign, PublicKey and JWKS read an immutable snapshot without locks and
// resolve the active key against the clock at call time, so a pending key
// starts signing at its NotBefore without a reload.
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

// TokenType is the JOSE "typ" header of the access tokens Sign makes
// (RFC 9068).
const TokenType = "at+jwt"

var (
	// ErrRotationPending is returned by Rotate when a key is already
	// pending; the error says which key activates when.
	ErrRotationPending = errors.New("keys: a rotation is already pending")
	// ErrNoSigningKey is returned by Sign when no key is active at the
	// current time.
	ErrNoSigningKey = errors.New("keys: no active signing key")
	// ErrUnknownKey is returned by Revoke for a kid the ring does not hold.
	ErrUnknownKey = errors.New("keys: no such key")
)

// revokeMargin is added to the lifetime of a key's revocation entry: an
// instance may go on signing with a revoked key until it reloads its ring
// (seconds), and clocks differ.
const revokeMargin = time.Minute

// Info describes a key of the ring at the time List was called.
type Info struct {
	ID        string // kid
	Algorithm string // EdDSA, ES256 or RS256
	State     string // StatePending, StateActive, StateRetired, StateRemoved or StateRevoked
	CreatedAt time.Time
	NotBefore time.Time
	NotAfter  time.Time // zero until a newer key replaces this one
	RevokedAt time.Time // zero unless the key was revoked
}

// Ring is the signing-key ring of one server instance, backed by a
// latch.KeyStore shared with other instances and the CLI. It is safe for
// concurrent use: Sign, PublicKey, JWKS and List never block; Reload,
// Rotate and Tick are serialised.
type Ring struct {
	store latch.KeyStore
	kek   KEK
	cfg   Config
	now   func() time.Time

	mu   sync.Mutex // serialises Reload, Rotate and Tick
	snap atomic.Pointer[snapshot]
	jwks atomic.Pointer[jwksCache]
}

// key is one key of a snapshot. It is immutable once built.
type key struct {
	id        string
	alg       string
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
	priv    crypto.Signer
	jwk     []byte // public JWK with kid, alg and use, no private members
	header  string // base64url of the JOSE header, followed by "."
	sigSize int    // length of a signature in bytes
}

// removedAt reports whether k is past its NotAfter at now.
func (k *key) removedAt(now time.Time) bool {
	return !k.notAfter.IsZero() && !now.Before(k.notAfter)
}

// snapshot is an immutable view of the stored ring.
type snapshot struct {
	keys []*key // by NotBefore, oldest first
	byID map[string]*key
}

// revoked reports whether k was revoked.
func (k *key) revoked() bool { return !k.revokedAt.IsZero() }

// active returns the key that signs at now: the newest key not revoked
// whose NotBefore has passed, unless it is past its NotAfter.
func (s *snapshot) active(now time.Time) *key {
	for i := len(s.keys) - 1; i >= 0; i-- {
		k := s.keys[i]
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

// newest returns the newest key by NotBefore that is not revoked (the one
// a rotation must name as Previous), or nil if there is none.
func (s *snapshot) newest() *key {
	for i := len(s.keys) - 1; i >= 0; i-- {
		if !s.keys[i].revoked() {
			return s.keys[i]
		}
	}
	return nil
}

// state returns the state of k at now, given the active key at now.
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

// NewRing loads the ring from store, decrypting private keys with kek. If no
// key can sign (an empty store), it creates one that is active at once; if
// another process creates it first, that key is used. now is the clock (nil
// for time.Now). The configuration is validated after defaults.
func NewRing(ctx context.Context, store latch.KeyStore, kek KEK, cfg Config, now func() time.Time) (*Ring, error) {
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
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.reloadLocked(ctx); err != nil {
		return nil, err
	}
	if r.canSignNowOrLater() {
		return r, nil
	}
	if _, err := r.rotateLocked(ctx, true); err != nil && !errors.Is(err, latch.ErrConflict) {
		return nil, err
	}
	// On a conflict rotateLocked has reloaded the winner's ring.
	if !r.canSignNowOrLater() {
		return nil, errors.New("keys: the key store has no usable signing key and creating one failed")
	}
	return r, nil
}

// canSignNowOrLater reports whether the ring has an active or pending key.
func (r *Ring) canSignNowOrLater() bool {
	s, now := r.snap.Load(), r.now()
	if s.active(now) != nil {
		return true
	}
	n := s.newest()
	return n != nil && now.Before(n.notBefore)
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
	activeIdx := -1 // newest key not revoked past NotBefore
	for i := len(stored) - 1; i >= 0; i-- {
		if stored[i].RevokedAt.IsZero() && !now.Before(stored[i].NotBefore) {
			activeIdx = i
			break
		}
	}
	s := &snapshot{keys: make([]*key, 0, len(stored)), byID: make(map[string]*key, len(stored))}
	for i := range stored {
		sk := &stored[i]
		if _, dup := s.byID[sk.ID]; dup {
			return nil, fmt.Errorf("keys: key store holds key %s twice", sk.ID)
		}
		k := &key{id: sk.ID, alg: sk.Algorithm, createdAt: sk.CreatedAt, notBefore: sk.NotBefore, notAfter: sk.NotAfter,
			revokedAt: sk.RevokedAt}
		// A revoked key gets no crypto material at all: nothing can sign
		// with it, publish it or trust it by mistake.
		if !k.revoked() && !k.removedAt(now) {
			needPriv := i >= activeIdx
			var prev *key
			if old != nil {
				prev = old.byID[sk.ID]
			}
			if prev != nil && prev.pub != nil && prev.alg == sk.Algorithm && (prev.priv != nil || !needPriv) {
				k.method, k.pub, k.jwk, k.header, k.sigSize = prev.method, prev.pub, prev.jwk, prev.header, prev.sigSize
				if needPriv {
					k.priv = prev.priv
				}
			} else if err := r.parse(k, sk, needPriv); err != nil {
				return nil, err
			}
		}
		s.keys = append(s.keys, k)
		s.byID[k.id] = k
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
	if k.header, err = header(sk.Algorithm, kid); err != nil {
		return err
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

// header returns the base64url JOSE header of tokens signed by a key,
// followed by ".".
func header(alg, kid string) (string, error) {
	h, err := json.Marshal(struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
		Typ string `json:"typ"`
	}{alg, kid, TokenType})
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

// newSigningKey generates a key of alg and returns its stored form.
func (r *Ring) newSigningKey(alg string, createdAt, notBefore time.Time) (latch.SigningKey, error) {
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
		Private:   sealed,
		Public:    pub,
		CreatedAt: createdAt,
		NotBefore: notBefore,
	}, nil
}

// Rotate adds a new key of the configured algorithm to the ring and returns
// it as stored. The key is published at once and signs from
// now + PublishDelay, or at once if immediate (for a suspected compromise:
// tokens then carry a kid that verifiers may not have cached yet). The key
// it replaces stays published until the new key's NotBefore +
// TokenLifetime + JWKSMaxAge.
//
// If a key is already pending, a scheduled rotation (immediate false) adds
// none and returns an error wrapping ErrRotationPending; an immediate one
// supersedes the pending key, which is revoked without ever signing. If
// another instance rotated first, Rotate reloads the ring and returns an
// error wrapping latch.ErrConflict.
func (r *Ring) Rotate(ctx context.Context, immediate bool) (latch.SigningKey, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.reloadLocked(ctx); err != nil {
		return latch.SigningKey{}, err
	}
	return r.rotateLocked(ctx, immediate)
}

// rotation builds the rotation from snapshot s at now and the key it adds.
// leaving, if not nil, is a key revoked together with the rotation.
func (r *Ring) rotation(s *snapshot, now time.Time, immediate bool, leaving *key) (latch.KeyRotation, latch.SigningKey, error) {
	// The stores keep microseconds; compare dates as they will be stored.
	now = now.Truncate(time.Microsecond)
	prev := s.newest()
	supersede := false
	if prev != nil && now.Before(prev.notBefore) {
		if !immediate {
			return latch.KeyRotation{}, latch.SigningKey{}, fmt.Errorf("%w: key %s activates at %s (in %s)",
				ErrRotationPending, prev.id, prev.notBefore.UTC().Format(time.RFC3339), prev.notBefore.Sub(now).Round(time.Second))
		}
		// The pending key must never sign: the new one would otherwise
		// hand over to it at its NotBefore. It is revoked in the same
		// transaction, and the new key becomes the newest one not
		// revoked, which the next rotation names as Previous.
		supersede = true
	}
	notBefore := now.Add(r.cfg.PublishDelay())
	if immediate || s.active(now) == nil {
		// Nothing signs yet, so no cache can be surprised.
		notBefore = now
	}
	// Keys are ordered by NotBefore, so the new key must come after every
	// key that stays, or a clock behind the one that made the previous
	// key (another machine's, or one standing still) would leave it
	// behind the key it replaces, never signing.
	for _, k := range s.keys {
		if k.revoked() || k == leaving || (supersede && k == prev) {
			continue
		}
		if !notBefore.After(k.notBefore) {
			notBefore = k.notBefore.Add(time.Microsecond) // the stores keep microseconds
		}
	}
	sk, err := r.newSigningKey(r.cfg.Algorithm, now, notBefore)
	if err != nil {
		return latch.KeyRotation{}, latch.SigningKey{}, err
	}
	rot := latch.KeyRotation{New: sk}
	if prev != nil {
		rot.Previous = prev.id
		rot.PreviousNotAfter = notBefore.Add(r.cfg.retention())
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

func (r *Ring) rotateLocked(ctx context.Context, immediate bool) (latch.SigningKey, error) {
	rot, sk, err := r.rotation(r.snap.Load(), r.now(), immediate, nil)
	if err != nil {
		return latch.SigningKey{}, err
	}
	if err := r.store.RotateKeys(ctx, rot); err != nil {
		if errors.Is(err, latch.ErrConflict) {
			return latch.SigningKey{}, r.conflictLocked(ctx, err)
		}
		return latch.SigningKey{}, fmt.Errorf("keys: storing rotation: %w", err)
	}
	if err := r.reloadLocked(ctx); err != nil {
		return sk, fmt.Errorf("keys: rotated to %s but reloading failed: %w", sk.ID, err)
	}
	return sk, nil
}

// conflictLocked reloads the ring after another rotation won the race and
// returns the error to report, wrapping err.
func (r *Ring) conflictLocked(ctx context.Context, err error) error {
	if rerr := r.reloadLocked(ctx); rerr != nil {
		return fmt.Errorf("keys: another rotation won (%w); reloading: %v", err, rerr)
	}
	msg := "keys: another instance rotated the keys first"
	if n := r.snap.Load().newest(); n != nil {
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
	// Rotated is the key that replaced the revoked one as the active key,
	// signing at once; zero if the revoked key was not active.
	Rotated latch.SigningKey
	// Expiry is when the revocation entry leaves the feed: every token the
	// key signed has expired and every cached JWKS was refetched by then.
	Expiry time.Time
}

// Revoke revokes the key kid after a suspected compromise: from the moment
// it returns, this ring never signs with it, publishes it or trusts it, and
// the store holds a revocation-feed entry of kind latch.RevokeKey that
// carries the kid to every other instance and remote verifier. If kid is
// the active key, an immediate rotation is stored in the same transaction,
// so signing continues with a fresh key (a pending key is superseded by
// it). Revoking a key revoked before announces it again. An unknown kid
// returns an error wrapping ErrUnknownKey.
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
		if !k.revoked() && k == s.active(now) {
			rot, sk, err := r.rotation(s, now, true, k)
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

// Tick reloads the ring and rotates when due: when the newest key's
// NotBefore + RotationPeriod - PublishDelay has passed (so that its
// successor activates one period after it), when no active or pending key
// uses the configured algorithm, or when no key can sign. It reports
// whether this instance rotated; losing the race to another instance, or a
// key already pending, is not an error. Call it periodically (every minute
// or so) on every instance.
func (r *Ring) Tick(ctx context.Context) (rotated bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.reloadLocked(ctx); err != nil {
		return false, err
	}
	if !r.due() {
		return false, nil
	}
	_, err = r.rotateLocked(ctx, false)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, ErrRotationPending), errors.Is(err, latch.ErrConflict):
		return false, nil
	}
	return false, err
}

// due reports whether a scheduled rotation should happen now.
func (r *Ring) due() bool {
	s, now := r.snap.Load(), r.now()
	newest := s.newest()
	if newest == nil {
		return true
	}
	if now.Before(newest.notBefore) {
		return false // a key is pending already
	}
	active := s.active(now)
	if active == nil || active.alg != r.cfg.Algorithm {
		return true
	}
	if newest == active && !active.notAfter.IsZero() {
		// Its successor was revoked while pending: the active key still
		// ends when that successor would have retired it, and nothing
		// would sign after that.
		return true
	}
	return !now.Before(newest.notBefore.Add(r.cfg.RotationPeriod - r.cfg.PublishDelay()))
}

// List describes every stored key, oldest first, with its state now.
func (r *Ring) List() []Info { return r.listLocked() }

// listLocked is List; it needs no lock and is named for use under one.
func (r *Ring) listLocked() []Info {
	s, now := r.snap.Load(), r.now()
	active := s.active(now)
	out := make([]Info, 0, len(s.keys))
	for _, k := range s.keys {
		out = append(out, Info{
			ID:        k.id,
			Algorithm: k.alg,
			State:     s.state(k, active, now),
			CreatedAt: k.createdAt,
			NotBefore: k.notBefore,
			NotAfter:  k.notAfter,
			RevokedAt: k.revokedAt,
		})
	}
	return out
}

// Sign returns the compact JWS of claims signed by the key active now, with
// the header alg, kid and typ "at+jwt". The claims are encoded with
// encoding/json and signed by golang-jwt's signing method for the key's
// algorithm. It returns ErrNoSigningKey if no key is active.
func (r *Ring) Sign(claims jwt.Claims) (string, error) {
	k := r.snap.Load().active(r.now())
	if k == nil || k.priv == nil {
		return "", ErrNoSigningKey
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("keys: encoding claims: %w", err)
	}
	enc := base64.RawURLEncoding
	n := len(k.header) + enc.EncodedLen(len(payload))
	buf := make([]byte, n, n+1+enc.EncodedLen(k.sigSize))
	copy(buf, k.header)
	enc.Encode(buf[len(k.header):], payload)
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

// PublicKey returns the algorithm and public key of a published (pending,
// active or retired) key, for verifying tokens; ok is false for an unknown,
// removed or revoked kid. Each key is bound to exactly one algorithm.
func (r *Ring) PublicKey(kid string) (alg string, pub crypto.PublicKey, ok bool) {
	k := r.snap.Load().byID[kid]
	if k == nil || k.pub == nil || k.revoked() || k.removedAt(r.now()) {
		return "", nil, false
	}
	return k.alg, k.pub, true
}

// JWKS returns the JSON Web Key Set of the published keys (pending, active
// and retired; never a revoked one), the active key first, each with kid, alg and use "sig" and
// no private members. The bytes are cached until the ring or a key's state
// changes; callers must not modify them. Serve them with Cache-Control
// max-age set to Config().JWKSMaxAge.
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
	active := s.active(now)
	var b bytes.Buffer
	b.WriteString(`{"keys":[`)
	add := func(k *key) {
		if b.Len() > len(`{"keys":[`) {
			b.WriteByte(',')
		}
		b.Write(k.jwk)
	}
	if active != nil && active.jwk != nil {
		add(active)
	}
	for i := len(s.keys) - 1; i >= 0; i-- {
		k := s.keys[i]
		if k != active && k.jwk != nil && !k.revoked() && !k.removedAt(now) {
			add(k)
		}
	}
	b.WriteString("]}")
	c.body = b.Bytes()
	return c
}
