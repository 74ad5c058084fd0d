// Package bench compares Latch's token verification and issuance with the
// bare signature primitives and with the common Go JOSE libraries, on the
// same keys and the same realistic access tokens. It is a module of its own
// so that the peer libraries never enter the main module.
package bench

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/keys"
	"github.com/latchauth/latch/verifier"
	"github.com/latchauth/latch/verifier/revocation"
)

// Values of the benchmark tokens, shaped like the ones auth.Service issues.
const (
	issuer   = "https://auth.example.com"
	audience = "https://api.example.com"
	clientID = "web-app"
	leeway   = verifier.DefaultLeeway

	// tokenTTL is longer than Latch's default access-token lifetime so
	// that one token outlives a whole benchmark run; the encoded claims
	// have the same length either way, so the cost is the same.
	tokenTTL = time.Hour

	// revocationEntries is the size of the revocation set the verifier
	// consults: a busy deployment's worth of revoked tokens, sessions
	// and users.
	revocationEntries = 10000
)

// algorithms are the signing algorithms a Latch key ring supports, in the
// order the benchmarks run them.
var algorithms = []string{keys.EdDSA, keys.ES256, keys.RS256}

// fixture is one signing key of a Latch ring with tokens it signed.
type fixture struct {
	alg  string
	kid  string
	ring *keys.Ring
	priv crypto.Signer    // the ring's private key, opened from the store
	pub  crypto.PublicKey // its public key as the ring publishes it

	claims *verifier.Claims // the claims of token
	token  string           // a valid access token
	// bad are tokens every implementation must reject, by what is wrong
	// with them; sigOnly marks the one a bare signature check catches.
	bad []badToken
}

type badToken struct {
	what    string
	token   string
	sigOnly bool
}

var (
	fixturesMu sync.Mutex
	fixtures   = map[string]*fixture{}
)

// fixtureFor returns the fixture of alg, making it on first use. Key
// generation (RSA especially) is slow, so fixtures live for the process.
func fixtureFor(tb testing.TB, alg string) *fixture {
	tb.Helper()
	fixturesMu.Lock()
	defer fixturesMu.Unlock()
	if f := fixtures[alg]; f != nil {
		return f
	}
	f, err := newFixture(alg)
	if err != nil {
		tb.Fatalf("fixture %s: %v", alg, err)
	}
	fixtures[alg] = f
	return f
}

func newFixture(alg string) (*fixture, error) {
	ctx := context.Background()
	kek, err := keys.GenerateKEK()
	if err != nil {
		return nil, err
	}
	store := &memKeyStore{}
	ring, err := keys.NewRing(ctx, store, kek, keys.Config{Algorithm: alg}, nil)
	if err != nil {
		return nil, err
	}
	stored, err := store.Keys(ctx)
	if err != nil {
		return nil, err
	}
	// A new ring holds one key per family: the access-token key the
	// benchmarks use, and the RS256 id_token key.
	var access []latch.SigningKey
	for _, k := range stored {
		if k.Family == keys.FamilyAccess {
			access = append(access, k)
		}
	}
	if len(access) != 1 {
		return nil, fmt.Errorf("new ring holds %d access keys, want 1", len(access))
	}
	sk := access[0]
	// The same private key signs for every library: open it as the ring
	// does.
	der, err := kek.Open(sk.Private, []byte(sk.ID))
	if err != nil {
		return nil, err
	}
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, err
	}
	priv, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("private key of type %T cannot sign", key)
	}
	ringAlg, pub, ok := ring.PublicKey(sk.ID)
	if !ok || ringAlg != alg {
		return nil, fmt.Errorf("ring does not publish %s as %s", sk.ID, alg)
	}
	if eq, ok := priv.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !eq.Equal(pub) {
		return nil, fmt.Errorf("stored private key does not match the published key")
	}

	f := &fixture{alg: alg, kid: sk.ID, ring: ring, priv: priv, pub: pub}
	now := time.Now()
	f.claims = newClaims(now, issuer, audience)
	if f.token, err = ring.Sign(f.claims); err != nil {
		return nil, err
	}
	sign := func(c *verifier.Claims) string {
		if err != nil {
			return ""
		}
		var t string
		t, err = ring.Sign(c)
		return t
	}
	f.bad = []badToken{
		{what: "tampered signature", token: tamperSignature(f.token), sigOnly: true},
		{what: "forged subject", token: tamperClaims(f.token, f.claims.Subject), sigOnly: true},
		{what: "wrong audience", token: sign(newClaims(now, issuer, "https://other.example.com"))},
		{what: "wrong issuer", token: sign(newClaims(now, "https://evil.example.com", audience))},
		{what: "expired", token: sign(newClaims(now.Add(-2*tokenTTL), issuer, audience))},
	}
	if err != nil {
		return nil, err
	}
	return f, nil
}

// newClaims returns access-token claims as auth.Service makes them, issued
// at now.
func newClaims(now time.Time, iss, aud string) *verifier.Claims {
	now = now.Truncate(time.Second)
	return &verifier.Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    iss,
			Subject:   newID("u"),
			Audience:  jwt.ClaimStrings{aud},
			ExpiresAt: jwt.NewNumericDate(now.Add(tokenTTL)),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        newID(""),
		},
		SessionID: newID("s"),
		ClientID:  clientID,
		AuthTime:  jwt.NewNumericDate(now.Add(-3 * time.Minute)),
	}
}

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// newID makes an identifier like the auth server's: 128 random bits in
// lower-case base32, with an optional prefix.
func newID(prefix string) string {
	var b [16]byte
	rand.Read(b[:])
	id := strings.ToLower(idEncoding.EncodeToString(b[:]))
	if prefix == "" {
		return id
	}
	return prefix + "_" + id
}

// tamperSignature changes one character in the middle of the signature,
// keeping the encoding canonical.
func tamperSignature(token string) string {
	i := strings.LastIndexByte(token, '.') + (len(token)-strings.LastIndexByte(token, '.'))/2
	return flip(token, i)
}

// tamperClaims replaces the subject in the claims with another user's,
// keeping the JSON valid and the original signature: the classic forgery.
func tamperClaims(token, sub string) string {
	first := strings.IndexByte(token, '.')
	last := strings.LastIndexByte(token, '.')
	payload, err := base64.RawURLEncoding.DecodeString(token[first+1 : last])
	if err != nil {
		panic(err)
	}
	forged := strings.Replace(string(payload), sub, newID("u"), 1)
	return token[:first+1] + base64.RawURLEncoding.EncodeToString([]byte(forged)) + token[last:]
}

func flip(s string, i int) string {
	b := []byte(s)
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

var (
	revocationsOnce sync.Once
	revocations     *revocation.Set
)

// revocationSet returns a revocation.Set (what the server uses) holding
// revocationEntries entries: revoked tokens, sessions and per-user
// cutoffs. None covers the fixtures' valid tokens, but their lookups are
// not short cuts: every map is non-empty, and the valid tokens' subjects
// are looked up in a map of users the way a real subject would be.
func revocationSet() *revocation.Set {
	revocationsOnce.Do(func() {
		now := time.Now()
		s := revocation.NewSet()
		entries := make([]latch.Revocation, 0, revocationEntries)
		for i := range revocationEntries {
			e := latch.Revocation{Seq: int64(i + 1), CreatedAt: now, ExpiresAt: now.Add(2 * tokenTTL)}
			switch i % 10 {
			case 0, 1, 2, 3, 4, 5: // 60 % single tokens
				e.Kind, e.Value = latch.RevokeToken, newID("")
			case 6, 7, 8: // 30 % sessions
				e.Kind, e.Value = latch.RevokeSession, newID("s")
			default: // 10 % "log out everywhere"
				e.Kind, e.Value, e.Cutoff = latch.RevokeUser, newID("u"), now.Add(-time.Hour)
			}
			entries = append(entries, e)
		}
		s.Add(entries...)
		if s.Len() != revocationEntries {
			panic(fmt.Sprintf("revocation set holds %d entries, want %d", s.Len(), revocationEntries))
		}
		revocations = s
	})
	return revocations
}

// memKeyStore is an in-memory latch.KeyStore that honours the conditional
// contract of RotateKeys: a rotation applies only if Previous is still the
// newest key of the new key's family (or the family is empty when Previous
// is ""), atomically.
type memKeyStore struct {
	mu   sync.Mutex
	keys []latch.SigningKey
}

func (m *memKeyStore) Keys(context.Context) ([]latch.SigningKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := slices.Clone(m.keys)
	slices.SortStableFunc(out, func(a, b latch.SigningKey) int { return a.NotBefore.Compare(b.NotBefore) })
	return out, nil
}

func (m *memKeyStore) RotateKeys(_ context.Context, r latch.KeyRotation) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	newest := -1
	for i, k := range m.keys {
		if k.Family == r.New.Family && (newest < 0 || !k.NotBefore.Before(m.keys[newest].NotBefore)) {
			newest = i
		}
		if k.ID == r.New.ID {
			return fmt.Errorf("memKeyStore: duplicate kid %s: %w", k.ID, latch.ErrConflict)
		}
	}
	switch {
	case r.Previous == "" && newest >= 0:
		return fmt.Errorf("memKeyStore: ring not empty: %w", latch.ErrConflict)
	case r.Previous != "" && (newest < 0 || m.keys[newest].ID != r.Previous):
		return fmt.Errorf("memKeyStore: %s is not the newest key: %w", r.Previous, latch.ErrConflict)
	}
	if newest >= 0 {
		m.keys[newest].NotAfter = r.PreviousNotAfter
	}
	m.keys = append(m.keys, r.New)
	return nil
}

// RevokeKey is not used by the benchmarks.
func (m *memKeyStore) RevokeKey(context.Context, latch.KeyRevocation) error {
	return errors.New("memKeyStore: RevokeKey is not supported")
}

// KeyRingVersion is not used by the benchmarks.
func (m *memKeyStore) KeyRingVersion(context.Context) (int64, error) { return 0, nil }
