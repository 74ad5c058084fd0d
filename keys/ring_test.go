package keys

import (
	"bytes"
	"cmp"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
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
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"

	"github.com/latchauth/latch"
)

// memStore is an in-memory latch.KeyStore that honours the conditional
// contract of RotateKeys.
type memStore struct {
	mu   sync.Mutex
	keys []latch.SigningKey
	// beforeRotate, if set, runs once at the start of the next RotateKeys,
	// outside the lock (to let another instance rotate first).
	beforeRotate func()
	rotations    int
	version      int64
	// micros makes the store keep dates in microseconds, as the real
	// stores do.
	micros bool
	// feed holds the revocation entries RevokeKey wrote.
	feed []latch.Revocation
}

// keyOrder orders keys as the stores do: by NotBefore, then CreatedAt, then
// ID.
func keyOrder(a, b latch.SigningKey) int {
	return cmp.Or(a.NotBefore.Compare(b.NotBefore), a.CreatedAt.Compare(b.CreatedAt), strings.Compare(a.ID, b.ID))
}

func (m *memStore) Keys(ctx context.Context) ([]latch.SigningKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := slices.Clone(m.keys)
	slices.SortFunc(out, keyOrder)
	return out, nil
}

func (m *memStore) RotateKeys(ctx context.Context, r latch.KeyRotation) error {
	m.mu.Lock()
	hook := m.beforeRotate
	m.beforeRotate = nil
	m.mu.Unlock()
	if hook != nil {
		hook()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.rotateLocked(r); err != nil {
		return err
	}
	m.version++
	return nil
}

// rotateLocked applies r as the stores do: Previous must be the newest key
// of the new key's family not revoked.
func (m *memStore) rotateLocked(r latch.KeyRotation) error {
	if r.New.Family == "" {
		return errors.New("memStore: a key without a family")
	}
	newest := -1
	for i, k := range m.keys {
		if k.Family == r.New.Family && k.RevokedAt.IsZero() && (newest < 0 || keyOrder(k, m.keys[newest]) > 0) {
			newest = i
		}
		if k.ID == r.New.ID {
			return fmt.Errorf("memStore: duplicate kid: %w", latch.ErrConflict)
		}
	}
	switch {
	case r.Previous == "" && newest >= 0:
		return fmt.Errorf("memStore: ring not empty: %w", latch.ErrConflict)
	case r.Previous != "" && (newest < 0 || m.keys[newest].ID != r.Previous):
		return fmt.Errorf("memStore: %s is not the newest key: %w", r.Previous, latch.ErrConflict)
	}
	if newest >= 0 {
		m.keys[newest].NotAfter = r.PreviousNotAfter
		if r.SupersedePrevious {
			m.keys[newest].RevokedAt = r.New.CreatedAt
		}
	}
	k := r.New
	if m.micros {
		for _, t := range []*time.Time{&k.CreatedAt, &k.NotBefore, &k.NotAfter, &k.RevokedAt} {
			*t = t.Truncate(time.Microsecond)
		}
	}
	m.keys = append(m.keys, k)
	m.rotations++
	return nil
}

func (m *memStore) RevokeKey(ctx context.Context, r latch.KeyRevocation) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	i := slices.IndexFunc(m.keys, func(k latch.SigningKey) bool { return k.ID == r.ID })
	if i < 0 {
		return fmt.Errorf("memStore: revoke %s: %w", r.ID, latch.ErrNotFound)
	}
	saved := slices.Clone(m.keys)
	if r.Rotation != nil {
		if err := m.rotateLocked(*r.Rotation); err != nil {
			m.keys = saved
			return err
		}
	}
	if m.keys[i].RevokedAt.IsZero() {
		m.keys[i].RevokedAt = r.At
	}
	if m.keys[i].NotAfter.IsZero() {
		m.keys[i].NotAfter = r.Expiry
	}
	m.feed = append(m.feed, latch.Revocation{Seq: int64(len(m.feed) + 1), Kind: latch.RevokeKey, Value: r.ID,
		CreatedAt: r.At, ExpiresAt: r.Expiry})
	m.version++
	return nil
}

func (m *memStore) KeyRingVersion(ctx context.Context) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.version, nil
}

// count returns the number of access-token keys.
func (m *memStore) count() int { return m.countFamily(FamilyAccess) }

// countFamily returns the number of keys of family.
func (m *memStore) countFamily(family string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, k := range m.keys {
		if k.Family == family {
			n++
		}
	}
	return n
}

func (m *memStore) get(kid string) latch.SigningKey {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range m.keys {
		if k.ID == kid {
			return k
		}
	}
	return latch.SigningKey{}
}

// clock is a settable clock safe for concurrent use.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func (c *clock) Add(d time.Duration) { c.Set(c.Now().Add(d)) }

// accessClaims are realistic access-token claims (DESIGN §4).
type accessClaims struct {
	jwt.RegisteredClaims
	SessionID string `json:"sid"`
	ClientID  string `json:"client_id"`
	Scope     string `json:"scope,omitempty"`
	AuthTime  int64  `json:"auth_time,omitempty"`
}

const (
	testIssuer   = "https://auth.example.com"
	testAudience = "https://api.example.com"
)

func claimsAt(now time.Time) *accessClaims {
	return &accessClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    testIssuer,
			Subject:   "usr_01JQ8Z6W4K2M7N9P3R5T8V1X4Y",
			Audience:  jwt.ClaimStrings{testAudience},
			ExpiresAt: jwt.NewNumericDate(now.Add(5 * time.Minute)),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        "3b1f0c9e8d7a6b5c4d3e2f1a0b9c8d7e",
		},
		SessionID: "ses_01JQ8Z7A1B2C3D4E5F6G7H8J9K",
		ClientID:  "web",
		Scope:     "openid profile api:read",
		AuthTime:  now.Add(-time.Hour).Unix(),
	}
}

// verify checks tok strictly against the keys r publishes.
func verify(r *Ring, tok string, now time.Time) (*jwt.Token, error) {
	return jwt.ParseWithClaims(tok, &accessClaims{}, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		alg, pub, ok := r.PublicKey(kid)
		if !ok {
			return nil, fmt.Errorf("unknown kid %q", kid)
		}
		if t.Method.Alg() != alg {
			return nil, fmt.Errorf("kid %s is for %s, token says %s", kid, alg, t.Method.Alg())
		}
		return pub, nil
	},
		jwt.WithValidMethods([]string{EdDSA, ES256, RS256}),
		jwt.WithTimeFunc(func() time.Time { return now }),
		jwt.WithExpirationRequired(),
		jwt.WithIssuer(testIssuer),
		jwt.WithAudience(testAudience),
		jwt.WithStrictDecoding(),
	)
}

func newTestRing(t testing.TB, store latch.KeyStore, kek KEK, cfg Config, c *clock) *Ring {
	t.Helper()
	r, err := NewRing(context.Background(), store, kek, cfg, c.Now)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func signAt(t testing.TB, r *Ring, now time.Time) string {
	t.Helper()
	tok, err := r.Sign(claimsAt(now))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func kidOf(t testing.TB, tok string) string {
	t.Helper()
	tk, _, err := jwt.NewParser().ParseUnverified(tok, &accessClaims{})
	if err != nil {
		t.Fatal(err)
	}
	kid, _ := tk.Header["kid"].(string)
	return kid
}

func infoOf(r *Ring, kid string) Info {
	for _, in := range r.List() {
		if in.ID == kid {
			return in
		}
	}
	return Info{}
}

// listFamily returns the keys of family as r lists them, oldest first.
func listFamily(r *Ring, family string) []Info {
	return slices.DeleteFunc(r.List(), func(in Info) bool { return in.Family != family })
}

// familyJWKS is jwks restricted to the keys of family.
func familyJWKS(t testing.TB, r *Ring, family string) map[string]jose.JSONWebKey {
	t.Helper()
	set := jwks(t, r)
	for kid := range set {
		if infoOf(r, kid).Family != family {
			delete(set, kid)
		}
	}
	return set
}

// jwks parses r's JWKS, checking it is well formed and public only.
func jwks(t testing.TB, r *Ring) map[string]jose.JSONWebKey {
	t.Helper()
	body := r.JWKS()
	var raw struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatalf("JWKS %s: %v", body, err)
	}
	for _, m := range raw.Keys {
		for _, priv := range []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"} {
			if _, ok := m[priv]; ok {
				t.Fatalf("JWKS key has private member %q: %v", priv, m)
			}
		}
		if m["use"] != "sig" || m["kid"] == nil || m["alg"] == nil {
			t.Fatalf("JWKS key lacks use sig, kid or alg: %v", m)
		}
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		t.Fatal(err)
	}
	out := map[string]jose.JSONWebKey{}
	for _, k := range set.Keys {
		if !k.IsPublic() || !k.Valid() {
			t.Fatalf("JWKS key %s is not a valid public key", k.KeyID)
		}
		out[k.KeyID] = k
	}
	if len(out) != len(set.Keys) {
		t.Fatalf("JWKS has duplicate kids: %s", body)
	}
	return out
}

func TestFirstKeyActiveImmediately(t *testing.T) {
	c, store := newClock(), &memStore{}
	r := newTestRing(t, store, mustKEK(t), Config{}, c)
	list := listFamily(r, FamilyAccess)
	if len(list) != 1 {
		t.Fatalf("List = %+v, want one key", list)
	}
	in := list[0]
	if in.State != StateActive || in.Algorithm != EdDSA || !in.NotBefore.Equal(c.Now()) || !in.NotAfter.IsZero() || !in.CreatedAt.Equal(c.Now()) {
		t.Fatalf("first key: %+v", in)
	}
	tok := signAt(t, r, c.Now())
	if kidOf(t, tok) != in.ID {
		t.Fatal("token not signed by the first key")
	}
	if _, err := verify(r, tok, c.Now()); err != nil {
		t.Fatal(err)
	}
	// A second ring on the same store uses the same key.
	r2 := newTestRing(t, store, r.kek, Config{}, c)
	if store.count() != 1 || listFamily(r2, FamilyAccess)[0].ID != in.ID {
		t.Fatal("second ring created another key")
	}
}

func TestRotationLifecycle(t *testing.T) {
	c, store := newClock(), &memStore{}
	cfg := Config{}.WithDefaults()
	r := newTestRing(t, store, mustKEK(t), cfg, c)
	oldKid := listFamily(r, FamilyAccess)[0].ID
	c.Add(48 * time.Hour)
	oldTok := signAt(t, r, c.Now())

	sk, err := r.Rotate(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	if want := c.Now().Add(cfg.JWKSMaxAge + 10*time.Minute); !sk.NotBefore.Equal(want) || cfg.PublishDelay() != 25*time.Minute {
		t.Fatalf("new key NotBefore %v, want now + max-age + 10m = %v", sk.NotBefore, want)
	}
	if got := store.get(oldKid).NotAfter; !got.Equal(sk.NotBefore.Add(cfg.TokenLifetime + cfg.JWKSMaxAge)) {
		t.Fatalf("previous key NotAfter %v, want new NotBefore + token lifetime + max-age", got)
	}

	// Pending: published, verifiable, not signing.
	if st := infoOf(r, sk.ID).State; st != StatePending {
		t.Fatalf("new key state %s, want pending", st)
	}
	if st := infoOf(r, oldKid).State; st != StateActive {
		t.Fatalf("old key state %s, want active", st)
	}
	set := familyJWKS(t, r, FamilyAccess)
	if _, ok := set[sk.ID]; !ok || len(set) != 2 {
		t.Fatalf("JWKS while pending: %s", r.JWKS())
	}
	if _, _, ok := r.PublicKey(sk.ID); !ok {
		t.Fatal("pending key not available to verify")
	}
	c.Set(sk.NotBefore.Add(-time.Nanosecond))
	lastOldTok := signAt(t, r, c.Now())
	if kid := kidOf(t, lastOldTok); kid != oldKid {
		t.Fatalf("signed with %s before the new key's NotBefore", kid)
	}

	// Active from NotBefore, without a reload.
	c.Set(sk.NotBefore)
	newTok := signAt(t, r, c.Now())
	if kid := kidOf(t, newTok); kid != sk.ID {
		t.Fatalf("signed with %s at NotBefore, want the new key", kid)
	}
	if infoOf(r, sk.ID).State != StateActive || infoOf(r, oldKid).State != StateRetired {
		t.Fatalf("states after activation: %+v", r.List())
	}
	// Tokens of both keys verify while they are valid.
	if _, err := verify(r, oldTok, c.Now().Add(-25*time.Minute)); err != nil {
		t.Fatalf("verify the first token after activation: %v", err)
	}
	for _, tok := range []string{lastOldTok, newTok} {
		if _, err := verify(r, tok, c.Now().Add(4*time.Minute)); err != nil {
			t.Fatalf("verify after activation: %v", err)
		}
	}
	if set := familyJWKS(t, r, FamilyAccess); len(set) != 2 || !strings.Contains(string(r.JWKS()), `"kid":"`+sk.ID) {
		t.Fatalf("JWKS after activation: %s", r.JWKS())
	}
	if !strings.HasPrefix(string(r.JWKS()), `{"keys":[{`) || !strings.Contains(strings.SplitN(string(r.JWKS()), "}", 2)[0], sk.ID) {
		t.Fatalf("active key is not first in the JWKS: %s", r.JWKS())
	}

	// Retired until NotAfter, then removed.
	notAfter := store.get(oldKid).NotAfter
	c.Set(notAfter.Add(-time.Nanosecond))
	if _, _, ok := r.PublicKey(oldKid); !ok {
		t.Fatal("retired key unusable before NotAfter")
	}
	c.Set(notAfter)
	if _, _, ok := r.PublicKey(oldKid); ok {
		t.Fatal("removed key still usable")
	}
	if st := infoOf(r, oldKid).State; st != StateRemoved {
		t.Fatalf("old key state %s after NotAfter", st)
	}
	if set := familyJWKS(t, r, FamilyAccess); len(set) != 1 || set[sk.ID].KeyID != sk.ID {
		t.Fatalf("JWKS after removal: %s", r.JWKS())
	}
	// Verified at a time when the token itself would still be valid, the
	// only reason to fail is the key's removal.
	if _, err := verify(r, lastOldTok, sk.NotBefore); err == nil || !strings.Contains(err.Error(), "unknown kid") {
		t.Fatalf("token of a removed key: %v", err)
	}
	// Reload drops nothing needed and keeps the removed key listed.
	if err := r.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := r.PublicKey(oldKid); ok || infoOf(r, oldKid).State != StateRemoved {
		t.Fatal("removed key usable after reload")
	}
}

func TestImmediateRotation(t *testing.T) {
	c, store := newClock(), &memStore{}
	cfg := Config{}.WithDefaults()
	r := newTestRing(t, store, mustKEK(t), cfg, c)
	oldKid := listFamily(r, FamilyAccess)[0].ID
	c.Add(time.Hour)
	oldTok := signAt(t, r, c.Now())
	sk, err := r.Rotate(context.Background(), true)
	if err != nil {
		t.Fatal(err)
	}
	if !sk.NotBefore.Equal(c.Now()) || kidOf(t, signAt(t, r, c.Now())) != sk.ID {
		t.Fatal("immediate rotation does not sign at once")
	}
	if got := store.get(oldKid).NotAfter; !got.Equal(c.Now().Add(cfg.TokenLifetime + cfg.JWKSMaxAge)) {
		t.Fatalf("previous NotAfter %v", got)
	}
	if _, err := verify(r, oldTok, c.Now()); err != nil {
		t.Fatalf("token of the replaced key: %v", err)
	}
}

func TestRotationPending(t *testing.T) {
	c, store := newClock(), &memStore{}
	r := newTestRing(t, store, mustKEK(t), Config{}, c)
	sk, err := r.Rotate(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Rotate(context.Background(), false)
	if !errors.Is(err, ErrRotationPending) || !strings.Contains(err.Error(), sk.ID) || !strings.Contains(err.Error(), sk.NotBefore.UTC().Format(time.RFC3339)) {
		t.Fatalf("scheduled Rotate with a pending key: %v", err)
	}
	if store.count() != 2 {
		t.Fatalf("store has %d keys, want 2", store.count())
	}
	c.Set(sk.NotBefore)
	if _, err := r.Rotate(context.Background(), false); err != nil {
		t.Fatalf("Rotate after the pending key activated: %v", err)
	}
}

// TestImmediateRotationSupersedesPending: rotate --now works while a
// scheduled rotation is pending; the new key signs at once and the pending
// key never signs, is not published and is not trusted, also after its
// NotBefore and after a restart.
func TestImmediateRotationSupersedesPending(t *testing.T) {
	ctx := context.Background()
	c, store := newClock(), &memStore{}
	cfg, kek := Config{}.WithDefaults(), mustKEK(t)
	r := newTestRing(t, store, kek, cfg, c)
	first := listFamily(r, FamilyAccess)[0].ID
	c.Add(time.Hour)
	pending, err := r.Rotate(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	c.Add(time.Minute)
	now, err := r.Rotate(ctx, true)
	if err != nil {
		t.Fatalf("immediate Rotate with a pending key: %v", err)
	}
	if !now.NotBefore.Equal(c.Now()) {
		t.Fatalf("new key signs from %v, want now %v", now.NotBefore, c.Now())
	}
	if got := infoOf(r, pending.ID); got.State != StateRevoked || !got.RevokedAt.Equal(c.Now()) {
		t.Fatalf("superseded pending key: %+v", got)
	}
	if len(store.feed) != 0 {
		t.Fatalf("superseding wrote feed entries %v; the pending key never signed", store.feed)
	}
	// Past the superseded key's NotBefore, on this ring and on a new one.
	c.Set(pending.NotBefore.Add(time.Second))
	for i, ring := range []*Ring{r, newTestRing(t, store, kek, cfg, c)} {
		if kid := kidOf(t, signAt(t, ring, c.Now())); kid != now.ID {
			t.Fatalf("ring %d signs with %s, want the immediate key %s", i, kid, now.ID)
		}
		if _, ok := jwks(t, ring)[pending.ID]; ok {
			t.Fatalf("ring %d publishes the superseded key", i)
		}
		if _, _, ok := ring.PublicKey(pending.ID); ok {
			t.Fatalf("ring %d trusts the superseded key", i)
		}
		if _, ok := jwks(t, ring)[first]; !ok {
			t.Fatalf("ring %d no longer publishes the retired first key", i)
		}
	}
	// The next scheduled rotation follows the immediate key.
	c.Set(now.NotBefore.Add(cfg.RotationPeriod))
	if rotated, err := r.Tick(ctx); err != nil || !rotated {
		t.Fatalf("Tick after the immediate key's period: %v, %v", rotated, err)
	}
}

// TestRevokeActiveKey: revoking the active key rotates at once in the same
// store call; the revoked key never signs, is not published and is not
// trusted, and the feed holds a kid entry that outlives every token it
// signed and every cached JWKS.
func TestRevokeActiveKey(t *testing.T) {
	ctx := context.Background()
	c, store := newClock(), &memStore{}
	cfg, kek := Config{}.WithDefaults(), mustKEK(t)
	r := newTestRing(t, store, kek, cfg, c)
	other := newTestRing(t, store, kek, cfg, c) // another instance
	stolen := listFamily(r, FamilyAccess)[0].ID
	c.Add(time.Hour)
	tok := signAt(t, r, c.Now())
	if _, err := verify(other, tok, c.Now()); err != nil {
		t.Fatal(err)
	}
	v0, _ := store.KeyRingVersion(ctx)
	rotationsBefore := store.rotations

	res, err := r.Revoke(ctx, stolen)
	if err != nil {
		t.Fatal(err)
	}
	if res.Already || res.Rotated.ID == "" || !res.Rotated.NotBefore.Equal(c.Now()) || res.Key.State != StateRevoked {
		t.Fatalf("Revoke = %+v", res)
	}
	if store.rotations != rotationsBefore+1 {
		t.Fatalf("rotations %d → %d", rotationsBefore, store.rotations)
	}
	if v, _ := store.KeyRingVersion(ctx); v == v0 {
		t.Fatal("RevokeKey did not move the ring version")
	}
	// Not today's lifetime and max-age: the longest the configuration
	// accepts, since tokens and caches may predate a change of settings.
	want := c.Now().Add(maxTokenLifetime + maxJWKSMaxAge)
	if len(store.feed) != 1 || store.feed[0].Kind != latch.RevokeKey || store.feed[0].Value != stolen ||
		store.feed[0].ExpiresAt.Before(want) {
		t.Fatalf("feed %+v, want one kid entry for %s expiring at %v or later", store.feed, stolen, want)
	}
	if err := other.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	for i, ring := range []*Ring{r, other} {
		if kid := kidOf(t, signAt(t, ring, c.Now())); kid != res.Rotated.ID {
			t.Fatalf("ring %d signs with %s, want %s", i, kid, res.Rotated.ID)
		}
		if _, err := verify(ring, tok, c.Now()); err == nil {
			t.Fatalf("ring %d still verifies a token of the revoked key", i)
		}
		if _, ok := jwks(t, ring)[stolen]; ok {
			t.Fatalf("ring %d publishes the revoked key", i)
		}
		if got := infoOf(ring, stolen); got.State != StateRevoked {
			t.Fatalf("ring %d lists the revoked key as %s", i, got.State)
		}
	}
	// Never again: not after a restart, nor once the keys' dates move on.
	c.Add(cfg.RotationPeriod)
	again := newTestRing(t, store, kek, cfg, c)
	if _, _, ok := again.PublicKey(stolen); ok {
		t.Fatal("a new ring trusts the revoked key")
	}
	if _, ok := jwks(t, again)[stolen]; ok {
		t.Fatal("a new ring publishes the revoked key")
	}

	// Revoking again announces it again and rotates nothing.
	res2, err := r.Revoke(ctx, stolen)
	if err != nil || !res2.Already || res2.Rotated.ID != "" || len(store.feed) != 2 {
		t.Fatalf("second Revoke = %+v, %v; feed %d entries", res2, err, len(store.feed))
	}
	if _, err := r.Revoke(ctx, "no-such-kid"); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("Revoke(unknown) = %v, want ErrUnknownKey", err)
	}
}

// TestImmediateRotationsInOneInstant: a revocation and rotate --now at the
// same clock reading, or from a machine whose clock is behind, still hand
// signing to the newest key.
func TestImmediateRotationsInOneInstant(t *testing.T) {
	ctx := context.Background()
	c, store := newClock(), &memStore{}
	store.micros = true
	c.Add(123 * time.Nanosecond) // a clock finer than the store
	kek := mustKEK(t)
	r := newTestRing(t, store, kek, Config{}, c)
	res, err := r.Revoke(ctx, listFamily(r, FamilyAccess)[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	var sk latch.SigningKey
	for range 8 {
		if sk, err = r.Rotate(ctx, true); err != nil {
			t.Fatal(err)
		}
	}
	c.Add(time.Millisecond) // the ring signs by its own clock
	if kid := kidOf(t, signAt(t, r, c.Now())); kid != sk.ID {
		t.Fatalf("after a revocation and 8 immediate rotations in one instant the ring signs with %s (the revocation's: %s), want the last %s", kid, res.Rotated.ID, sk.ID)
	}
	behind := &clock{t: c.Now().Add(-10 * time.Second)}
	late, err := newTestRing(t, store, kek, Config{}, behind).Rotate(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	c.Add(time.Millisecond)
	if kid := kidOf(t, signAt(t, r, c.Now())); kid != late.ID {
		t.Fatalf("rotate --now from a clock 10 s behind: the ring signs with %s, want %s", kid, late.ID)
	}
}

// TestRevokeActiveKeyWithPending: the active key is revoked while a
// scheduled successor is pending; a fresh key signs at once and the pending
// one is superseded.
func TestRevokeActiveKeyWithPending(t *testing.T) {
	ctx := context.Background()
	c, store := newClock(), &memStore{}
	r := newTestRing(t, store, mustKEK(t), Config{}, c)
	stolen := listFamily(r, FamilyAccess)[0].ID
	c.Add(time.Hour)
	pending, err := r.Rotate(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.Revoke(ctx, stolen)
	if err != nil {
		t.Fatal(err)
	}
	if res.Rotated.ID == "" || kidOf(t, signAt(t, r, c.Now())) != res.Rotated.ID {
		t.Fatalf("Revoke = %+v; not signing with the new key", res)
	}
	c.Set(pending.NotBefore)
	if kid := kidOf(t, signAt(t, r, c.Now())); kid != res.Rotated.ID {
		t.Fatalf("the superseded pending key %s took over: signs with %s", pending.ID, kid)
	}
	if got := infoOf(r, pending.ID).State; got != StateRevoked {
		t.Fatalf("pending key is %s, want revoked", got)
	}
}

// TestRevokeRetiredAndPendingKeys: revoking a key that does not sign
// rotates nothing and stops trusting it at once, although its dates would
// keep it published.
func TestRevokeRetiredAndPendingKeys(t *testing.T) {
	ctx := context.Background()
	c, store := newClock(), &memStore{}
	r := newTestRing(t, store, mustKEK(t), Config{}, c)
	retired := listFamily(r, FamilyAccess)[0].ID
	c.Add(time.Hour)
	tok := signAt(t, r, c.Now())
	active, err := r.Rotate(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	pending, err := r.Rotate(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := verify(r, tok, c.Now()); err != nil {
		t.Fatalf("retired key before Revoke: %v", err)
	}
	for _, kid := range []string{retired, pending.ID} {
		res, err := r.Revoke(ctx, kid)
		if err != nil || res.Rotated.ID != "" {
			t.Fatalf("Revoke(%s) = %+v, %v; want no rotation", kid, res, err)
		}
		if _, _, ok := r.PublicKey(kid); ok {
			t.Fatalf("revoked key %s still trusted", kid)
		}
		if _, ok := jwks(t, r)[kid]; ok {
			t.Fatalf("revoked key %s still published", kid)
		}
	}
	if _, err := verify(r, tok, c.Now()); err == nil {
		t.Fatal("token of the revoked retired key verifies")
	}
	c.Set(pending.NotBefore)
	if kid := kidOf(t, signAt(t, r, c.Now())); kid != active.ID {
		t.Fatalf("signs with %s after the revoked pending key's NotBefore, want %s", kid, active.ID)
	}
	// The ring can rotate on: the revoked pending key is not its newest.
	if _, err := r.Rotate(ctx, false); err != nil {
		t.Fatalf("Rotate after revoking the pending key: %v", err)
	}
}

// TestRevokedPendingKeyLeavesNoGap: revoking a pending key (a scheduled
// rotation) left the active key with the NotAfter that rotation gave it
// and no successor, and Tick did not find a rotation due: at that
// NotAfter nothing signed (logins and refreshes failed) until the next
// tick made a key that signed at once, unpublished. Tick now schedules a
// successor at once, and the active key signs until it activates.
func TestRevokedPendingKeyLeavesNoGap(t *testing.T) {
	ctx := context.Background()
	c, store := newClock(), &memStore{}
	r := newTestRing(t, store, mustKEK(t), Config{}, c)
	active := familyKeys(r, FamilyAccess)[0]
	c.Add(time.Hour)
	pending, err := r.Rotate(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	// Revoked late in its pending window, when the active key's end is
	// nearest.
	c.Set(pending.NotBefore.Add(-time.Minute))
	if _, err := r.Revoke(ctx, pending.ID); err != nil {
		t.Fatal(err)
	}
	c.Add(time.Minute)
	rotated, err := r.Tick(ctx)
	if err != nil || !rotated {
		t.Fatalf("Tick after the pending key was revoked: rotated %v, %v; want a new successor", rotated, err)
	}
	list := familyKeys(r, FamilyAccess)
	next := list[len(list)-1]
	if next.State != StatePending {
		t.Fatalf("successor %+v, want pending (published before it signs)", next)
	}
	if a := infoOf(r, active.ID); a.NotAfter.Before(next.NotBefore.Add(Config{}.retention(FamilyAccess))) {
		t.Fatalf("active key ends at %v, before its successor (from %v) has been published long enough", a.NotAfter, next.NotBefore)
	}
	for _, at := range []time.Time{next.NotBefore.Add(-time.Microsecond), next.NotBefore} {
		c.Set(at)
		if _, err := r.Sign(jwt.MapClaims{"sub": "x"}); err != nil {
			t.Fatalf("Sign at %v: %v", at, err)
		}
	}
}

func TestAlgorithms(t *testing.T) {
	for _, alg := range []string{EdDSA, ES256, RS256} {
		t.Run(alg, func(t *testing.T) {
			c, store := newClock(), &memStore{}
			r := newTestRing(t, store, mustKEK(t), Config{Algorithm: alg}, c)
			tok := signAt(t, r, c.Now())
			parsed, err := verify(r, tok, c.Now())
			if err != nil {
				t.Fatal(err)
			}
			if parsed.Header["typ"] != "at+jwt" || parsed.Header["alg"] != alg || len(parsed.Header) != 3 {
				t.Fatalf("header %v", parsed.Header)
			}
			cl := parsed.Claims.(*accessClaims)
			if cl.SessionID != "ses_01JQ8Z7A1B2C3D4E5F6G7H8J9K" || cl.Subject == "" {
				t.Fatalf("claims %+v", cl)
			}
			// The same token through golang-jwt's own encoder has the
			// same signing input.
			ref := jwt.NewWithClaims(jwt.GetSigningMethod(alg), claimsAt(c.Now()))
			ref.Header["kid"] = kidOf(t, tok)
			ref.Header["typ"] = TokenType
			refInput, err := ref.SigningString()
			if err != nil {
				t.Fatal(err)
			}
			if got := tok[:strings.LastIndexByte(tok, '.')]; got != refInput {
				t.Fatalf("signing input differs from golang-jwt's:\n%s\n%s", got, refInput)
			}

			// The kid is the RFC 7638 thumbprint of the published JWK and
			// the key is of the right kind.
			set := familyJWKS(t, r, FamilyAccess)
			kid := kidOf(t, tok)
			jwk, ok := set[kid]
			if !ok || len(set) != 1 {
				t.Fatalf("JWKS %s lacks %s", r.JWKS(), kid)
			}
			tp, err := jwk.Thumbprint(crypto.SHA256)
			if err != nil || base64.RawURLEncoding.EncodeToString(tp) != kid {
				t.Fatalf("kid %s is not the thumbprint of the published JWK (%v)", kid, err)
			}
			if jwk.Algorithm != alg || jwk.Use != "sig" {
				t.Fatalf("JWK alg %q use %q", jwk.Algorithm, jwk.Use)
			}
			var doc struct{ Keys []map[string]any }
			if err := json.Unmarshal(r.JWKS(), &doc); err != nil {
				t.Fatal(err)
			}
			m := doc.Keys[0]
			switch alg {
			case EdDSA:
				if m["kty"] != "OKP" || m["crv"] != "Ed25519" {
					t.Fatalf("EdDSA JWK %v", m)
				}
			case ES256:
				if m["kty"] != "EC" || m["crv"] != "P-256" {
					t.Fatalf("ES256 JWK %v", m)
				}
			case RS256:
				if m["kty"] != "RSA" || jwk.Key.(*rsa.PublicKey).N.BitLen() < 2048 {
					t.Fatalf("RS256 JWK %v", m)
				}
			}
			// A verifier that knows only the JWKS verifies the token.
			if _, err := jwt.Parse(tok, func(*jwt.Token) (any, error) { return jwk.Key, nil },
				jwt.WithValidMethods([]string{alg}), jwt.WithTimeFunc(c.Now)); err != nil {
				t.Fatalf("verify with the JWKS key: %v", err)
			}
			// The key is bound to its algorithm.
			if a, _, _ := r.PublicKey(kid); a != alg {
				t.Fatalf("PublicKey alg %q", a)
			}
			// A tampered token fails.
			bad := []byte(tok)
			bad[len(bad)/2] ^= 0x04
			if _, err := verify(r, string(bad), c.Now()); err == nil {
				t.Fatal("tampered token verified")
			}
		})
	}
}

func TestThumbprintVectors(t *testing.T) {
	// RFC 7638 §3.1.
	n, _ := base64.RawURLEncoding.DecodeString("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw")
	rsaKey := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: 65537}
	if got, err := thumbprint(rsaKey); err != nil || got != "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs" {
		t.Errorf("RFC 7638 RSA thumbprint = %s, %v", got, err)
	}
	// RFC 8037 Appendix A.3.
	x, _ := base64.RawURLEncoding.DecodeString("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
	if got, err := thumbprint(ed25519.PublicKey(x)); err != nil || got != "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k" {
		t.Errorf("RFC 8037 Ed25519 thumbprint = %s, %v", got, err)
	}
}

func TestPrivateKeysSealedAtRest(t *testing.T) {
	for _, alg := range []string{EdDSA, ES256, RS256} {
		t.Run(alg, func(t *testing.T) {
			c, store := newClock(), &memStore{}
			kek := mustKEK(t)
			r := newTestRing(t, store, kek, Config{Algorithm: alg}, c)
			if _, err := r.Rotate(context.Background(), false); err != nil {
				t.Fatal(err)
			}
			for _, sk := range store.keys {
				der, err := kek.Open(sk.Private, []byte(sk.ID))
				if err != nil {
					t.Fatal(err)
				}
				priv, err := x509.ParsePKCS8PrivateKey(der)
				if err != nil {
					t.Fatal(err)
				}
				var secret []byte
				switch p := priv.(type) {
				case ed25519.PrivateKey:
					secret = p.Seed()
				case *ecdsa.PrivateKey:
					secret, _ = p.Bytes()
				case *rsa.PrivateKey:
					secret = p.Primes[0].Bytes()
				}
				for _, b := range [][]byte{sk.Private, sk.Public} {
					if bytes.Contains(b, der) || bytes.Contains(b, secret) || bytes.Contains(b, []byte(base64.RawURLEncoding.EncodeToString(secret))) {
						t.Fatalf("key %s: private key stored in plaintext", sk.ID)
					}
				}
				if bytes.Contains(sk.Public, []byte(`"d"`)) {
					t.Fatalf("stored public JWK has d: %s", sk.Public)
				}
				// The sealed key is bound to its kid.
				if _, err := kek.Open(sk.Private, []byte("another-kid")); err == nil {
					t.Fatal("sealed private key opens under another kid")
				}
			}
		})
	}
}

func TestRestartVerifiesEarlierTokens(t *testing.T) {
	c, store := newClock(), &memStore{}
	kek := mustKEK(t)
	r1 := newTestRing(t, store, kek, Config{Algorithm: ES256}, c)
	tok1 := signAt(t, r1, c.Now())
	sk, err := r1.Rotate(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	c.Set(sk.NotBefore)
	tok2 := signAt(t, r1, c.Now())

	r2 := newTestRing(t, store, kek, Config{Algorithm: ES256}, c) // restart
	for _, tok := range []string{tok1, tok2} {
		tk, _, _ := jwt.NewParser().ParseUnverified(tok, &accessClaims{})
		iat, _ := tk.Claims.GetIssuedAt()
		if _, err := verify(r2, tok, iat.Add(time.Minute)); err != nil {
			t.Fatalf("restarted ring rejects an earlier token: %v", err)
		}
	}
	if kid := kidOf(t, signAt(t, r2, c.Now())); kid != sk.ID {
		t.Fatalf("restarted ring signs with %s, want %s", kid, sk.ID)
	}
	if store.count() != 2 {
		t.Fatalf("restart added keys: %d", store.count())
	}
	if !bytes.Equal(r1.JWKS(), r2.JWKS()) {
		t.Fatal("restarted ring publishes another JWKS")
	}

	// Another KEK cannot open the ring.
	_, err = NewRing(context.Background(), store, mustKEK(t), Config{Algorithm: ES256}, c.Now)
	if err == nil || !strings.Contains(err.Error(), "KEK") {
		t.Fatalf("NewRing with another KEK: %v", err)
	}
}

func TestConcurrentRotationOneWins(t *testing.T) {
	c, store := newClock(), &memStore{}
	kek := mustKEK(t)
	const n = 6
	rings := make([]*Ring, n)
	for i := range rings {
		rings[i] = newTestRing(t, store, kek, Config{}, c)
	}
	if store.count() != 1 {
		t.Fatalf("%d first keys", store.count())
	}
	c.Add(time.Hour)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, r := range rings {
		wg.Go(func() {
			<-start
			_, errs[i] = r.Rotate(context.Background(), false)
		})
	}
	// Sign and verify while rotating (exercised under -race).
	for range 4 {
		wg.Go(func() {
			<-start
			for range 50 {
				tok, err := rings[0].Sign(claimsAt(c.Now()))
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := verify(rings[1], tok, c.Now()); err != nil {
					t.Error(err)
					return
				}
				rings[2].JWKS()
			}
		})
	}
	close(start)
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case errors.Is(err, latch.ErrConflict), errors.Is(err, ErrRotationPending):
		default:
			t.Fatalf("unexpected error: %v", err)
		}
	}
	if won != 1 || store.count() != 2 {
		t.Fatalf("%d rotations won, store has %d keys; want 1 and 2", won, store.count())
	}
	for _, r := range rings {
		if err := r.Reload(context.Background()); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(r.JWKS(), rings[0].JWKS()) {
			t.Fatal("rings disagree after reload")
		}
	}
}

func TestRotateConflictReloads(t *testing.T) {
	c, store := newClock(), &memStore{}
	kek := mustKEK(t)
	a := newTestRing(t, store, kek, Config{}, c)
	b := newTestRing(t, store, kek, Config{}, c)
	var bKey latch.SigningKey
	store.beforeRotate = func() {
		var err error
		if bKey, err = b.Rotate(context.Background(), false); err != nil {
			t.Error(err)
		}
	}
	_, err := a.Rotate(context.Background(), false)
	if !errors.Is(err, latch.ErrConflict) || !strings.Contains(err.Error(), "another") || !strings.Contains(err.Error(), bKey.ID) {
		t.Fatalf("losing Rotate: %v", err)
	}
	if infoOf(a, bKey.ID).State != StatePending {
		t.Fatal("the loser did not reload the winner's key")
	}
	if store.count() != 2 {
		t.Fatalf("store has %d keys", store.count())
	}
}

func TestTickSchedule(t *testing.T) {
	c, store := newClock(), &memStore{}
	cfg := Config{RotationPeriod: 7 * 24 * time.Hour}.WithDefaults()
	r := newTestRing(t, store, mustKEK(t), cfg, c)
	first := listFamily(r, FamilyAccess)[0]
	ctx := context.Background()
	due := first.NotBefore.Add(cfg.RotationPeriod - cfg.PublishDelay())

	c.Set(due.Add(-time.Second))
	if rotated, err := r.Tick(ctx); err != nil || rotated {
		t.Fatalf("Tick before due: %v, %v", rotated, err)
	}
	c.Set(due)
	rotated, err := r.Tick(ctx)
	if err != nil || !rotated {
		t.Fatalf("Tick when due: %v, %v", rotated, err)
	}
	list := listFamily(r, FamilyAccess)
	next := list[len(list)-1]
	if next.State != StatePending || !next.NotBefore.Equal(first.NotBefore.Add(cfg.RotationPeriod)) {
		t.Fatalf("scheduled key %+v, want pending from exactly one period after the first", next)
	}
	if rotated, err := r.Tick(ctx); err != nil || rotated {
		t.Fatalf("Tick with a pending key: %v, %v", rotated, err)
	}
	c.Set(next.NotBefore)
	if rotated, err := r.Tick(ctx); err != nil || rotated || infoOf(r, next.ID).State != StateActive {
		t.Fatalf("Tick at activation: %v, %v", rotated, err)
	}
	c.Set(next.NotBefore.Add(cfg.RotationPeriod - cfg.PublishDelay()))
	if rotated, err := r.Tick(ctx); err != nil || !rotated {
		t.Fatalf("second scheduled Tick: %v, %v", rotated, err)
	}
	if store.count() != 3 {
		t.Fatalf("store has %d keys, want 3", store.count())
	}
}

func TestTickManyInstancesOneRotates(t *testing.T) {
	c, store := newClock(), &memStore{}
	kek := mustKEK(t)
	cfg := Config{}.WithDefaults()
	var rings []*Ring
	for range 5 {
		rings = append(rings, newTestRing(t, store, kek, cfg, c))
	}
	c.Add(cfg.RotationPeriod)
	var wg sync.WaitGroup
	results := make([]bool, len(rings))
	for i, r := range rings {
		wg.Go(func() {
			var err error
			if results[i], err = r.Tick(context.Background()); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	// Each family rotated once, by one instance or two.
	if n := len(slices.DeleteFunc(results, func(b bool) bool { return !b })); n < 1 || n > 2 || store.count() != 2 || store.countFamily(FamilyID) != 2 {
		t.Fatalf("%d instances rotated, store has %d access and %d id keys", n, store.count(), store.countFamily(FamilyID))
	}
}

func TestTickAlgorithmChange(t *testing.T) {
	c, store := newClock(), &memStore{}
	kek := mustKEK(t)
	ed := newTestRing(t, store, kek, Config{Algorithm: EdDSA}, c)
	c.Add(time.Hour)
	edTok := signAt(t, ed, c.Now())

	es := newTestRing(t, store, kek, Config{Algorithm: "es256"}, c) // config changed
	if store.count() != 1 {
		t.Fatal("NewRing rotated on an algorithm change; Tick should")
	}
	rotated, err := es.Tick(context.Background())
	if err != nil || !rotated {
		t.Fatalf("Tick after algorithm change: %v, %v", rotated, err)
	}
	list := listFamily(es, FamilyAccess)
	next := list[len(list)-1]
	if next.Algorithm != ES256 || next.State != StatePending || !next.NotBefore.Equal(c.Now().Add(es.Config().PublishDelay())) {
		t.Fatalf("new key %+v, want a pending ES256 key after the publish delay", next)
	}
	if rotated, err := es.Tick(context.Background()); err != nil || rotated {
		t.Fatalf("second Tick: %v, %v", rotated, err)
	}
	c.Set(next.NotBefore)
	tok := signAt(t, es, c.Now())
	if _, err := verify(ed, tok, c.Now()); err == nil {
		t.Fatal("a ring that has not reloaded knows the new key")
	}
	if err := ed.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if p, err := verify(ed, tok, c.Now()); err != nil || p.Method.Alg() != ES256 {
		t.Fatalf("ES256 token: %v", err)
	}
	if _, err := verify(es, edTok, c.Now().Add(-es.Config().PublishDelay())); err != nil {
		t.Fatalf("EdDSA token after the switch: %v", err)
	}
	if rotated, err := es.Tick(context.Background()); err != nil || rotated {
		t.Fatalf("Tick after the switch: %v, %v", rotated, err)
	}
}

func TestRejectsBadStoredKeys(t *testing.T) {
	c := newClock()
	kek := mustKEK(t)
	good := &memStore{}
	newTestRing(t, good, kek, Config{}, c)
	orig := good.keys[0]

	other := &memStore{}
	newTestRing(t, other, kek, Config{}, c)

	for name, mutate := range map[string]func(*latch.SigningKey){
		"private JWK published": func(k *latch.SigningKey) {
			k.Public = bytes.Replace(k.Public, []byte(`{`), []byte(`{"d":"`+base64.RawURLEncoding.EncodeToString(make([]byte, 32))+`",`), 1)
		},
		"kid not thumbprint": func(k *latch.SigningKey) { k.ID = "not-the-thumbprint" },
		"wrong algorithm":    func(k *latch.SigningKey) { k.Algorithm = ES256 },
		"unknown algorithm":  func(k *latch.SigningKey) { k.Algorithm = "HS256" },
		"swapped private":    func(k *latch.SigningKey) { k.Private = other.keys[0].Private },
		"tampered private":   func(k *latch.SigningKey) { k.Private = bytes.Clone(k.Private); k.Private[20] ^= 1 },
	} {
		t.Run(name, func(t *testing.T) {
			k := orig
			mutate(&k)
			if _, err := NewRing(context.Background(), &memStore{keys: []latch.SigningKey{k}}, kek, Config{}, c.Now); err == nil {
				t.Fatal("NewRing accepted the key")
			}
		})
	}
}

func TestJWKSCache(t *testing.T) {
	c, store := newClock(), &memStore{}
	r := newTestRing(t, store, mustKEK(t), Config{}, c)
	a, b := r.JWKS(), r.JWKS()
	if &a[0] != &b[0] {
		t.Fatal("JWKS not cached")
	}
	if n := testing.AllocsPerRun(100, func() { r.JWKS() }); n != 0 {
		t.Fatalf("cached JWKS allocates %v times", n)
	}
	sk, err := r.Rotate(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	pending := r.JWKS()
	if bytes.Equal(pending, a) {
		t.Fatal("JWKS not rebuilt after rotation")
	}
	c.Set(sk.NotBefore) // active key changes: it comes first
	if active := r.JWKS(); bytes.Equal(active, pending) || !bytes.HasPrefix(active, []byte(`{"keys":[{`)) {
		t.Fatal("JWKS not rebuilt at activation")
	}
}

func TestHotPathAllocations(t *testing.T) {
	c, store := newClock(), &memStore{}
	r := newTestRing(t, store, mustKEK(t), Config{}, c)
	kid := listFamily(r, FamilyAccess)[0].ID
	if n := testing.AllocsPerRun(100, func() { r.PublicKey(kid) }); n != 0 {
		t.Fatalf("PublicKey allocates %v times", n)
	}
	if _, _, ok := r.PublicKey("nope"); ok {
		t.Fatal("unknown kid found")
	}
}

func TestSignWithoutActiveKey(t *testing.T) {
	c, store := newClock(), &memStore{}
	r := newTestRing(t, store, mustKEK(t), Config{}, c)
	c.Set(c.Now().Add(-time.Hour)) // before the first key
	if _, err := r.Sign(claimsAt(c.Now())); !errors.Is(err, ErrNoSigningKey) {
		t.Fatalf("Sign before any key: %v", err)
	}
}

func TestConfig(t *testing.T) {
	d := Config{}.WithDefaults()
	if d.Algorithm != EdDSA || d.RotationPeriod != 30*24*time.Hour || d.JWKSMaxAge != 15*time.Minute || d.TokenLifetime != 5*time.Minute+30*time.Second {
		t.Fatalf("defaults %+v", d)
	}
	if err := (Config{}).Validate(); err != nil {
		t.Fatal(err)
	}
	if (Config{}).PublishDelay() != 25*time.Minute || (Config{JWKSMaxAge: time.Hour}).PublishDelay() != 70*time.Minute {
		t.Fatal("PublishDelay is not JWKS max-age + 10 minutes")
	}
	for _, tc := range []struct {
		cfg  Config
		want []string
	}{
		{Config{Algorithm: "HS256"}, []string{"algorithm", "HS256", "EdDSA", "ES256", "RS256"}},
		{Config{RotationPeriod: 20 * time.Minute}, []string{"rotation period", "at least"}},
		{Config{RotationPeriod: 2 * time.Hour, JWKSMaxAge: 2 * time.Hour}, []string{"rotation period", "publish delay"}},
		{Config{JWKSMaxAge: -time.Second}, []string{"JWKS max-age"}},
		{Config{JWKSMaxAge: 48 * time.Hour}, []string{"JWKS max-age"}},
		{Config{TokenLifetime: -time.Second}, []string{"token lifetime"}},
	} {
		err := tc.cfg.Validate()
		if err == nil {
			t.Errorf("%+v accepted", tc.cfg)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%+v: error %q lacks %q", tc.cfg, err, w)
			}
		}
		if _, err := NewRing(context.Background(), &memStore{}, mustKEK(t), tc.cfg, nil); err == nil {
			t.Errorf("NewRing accepted %+v", tc.cfg)
		}
	}
	if _, err := NewRing(context.Background(), &memStore{}, KEK{}, Config{}, nil); err == nil {
		t.Error("NewRing accepted the zero KEK")
	}
}

// TestES256SignaturesAreLowS: crypto/ecdsa returns a high S about half of
// the time; verifiers refuse it (the (r, n−s) twin would be a second valid
// encoding of one token), so every ES256 signature the ring makes must
// have s ≤ n/2.
func TestES256SignaturesAreLowS(t *testing.T) {
	c, store := newClock(), &memStore{}
	r := newTestRing(t, store, mustKEK(t), Config{Algorithm: ES256}, c)
	halfN := new(big.Int).Rsh(elliptic.P256().Params().N, 1)
	for i := 0; i < 64; i++ { // all high S would go unnoticed with probability 2^-64
		tok := signAt(t, r, c.Now())
		sig, err := base64.RawURLEncoding.DecodeString(tok[strings.LastIndexByte(tok, '.')+1:])
		if err != nil || len(sig) != 64 {
			t.Fatalf("signature: %v, %d bytes", err, len(sig))
		}
		if new(big.Int).SetBytes(sig[32:]).Cmp(halfN) > 0 {
			t.Fatalf("signature %d has a high S", i)
		}
		if _, err := verify(r, tok, c.Now()); err != nil {
			t.Fatalf("normalised signature does not verify: %v", err)
		}
	}
}

// familyKeys lists the ring's keys of one family, oldest first.
func familyKeys(r *Ring, family string) []Info {
	var out []Info
	for _, k := range r.List() {
		if k.Family == family {
			out = append(out, k)
		}
	}
	return out
}
