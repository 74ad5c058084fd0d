package verifier

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/latchauth/latch/verifier/revocation"
)

// TestKeyRevokedRefusesValidToken: a kid entry in the revocation set makes
// every token signed with that key fail, on the cold path and on a cache
// hit, while tokens of other keys still pass.
func TestKeyRevokedRefusesValidToken(t *testing.T) {
	k := keys(t)
	set := revocation.NewSet()
	v := newTestVerifier(t, k.keySet(), set, 0, nil)
	ed, es := k.good(t, "ed"), k.good(t, "es")
	for _, tok := range []string{ed, es} {
		if _, err := v.Verify(tok); err != nil { // now cached
			t.Fatalf("before the key is revoked: %v", err)
		}
	}
	set.Add(revocation.Entry{Seq: 1, Kind: revocation.Key, Value: "ed", ExpiresAt: testNow.Add(time.Hour)})
	if _, err := v.Verify(ed); !errors.Is(err, ErrRevoked) {
		t.Fatalf("cache hit, key revoked: %v, want ErrRevoked", err)
	}
	if _, err := v.Verify(es); err != nil {
		t.Fatalf("a token of another key: %v", err)
	}
	cold := newTestVerifier(t, k.keySet(), set, -1, nil)
	if _, err := cold.Verify(ed); !errors.Is(err, ErrRevoked) {
		t.Fatalf("no cache, key revoked: %v, want ErrRevoked", err)
	}
	// A kid entry is not a jti, sid or user entry, and the other way round.
	set.Add(revocation.Entry{Seq: 2, Kind: revocation.Session, Value: "es", ExpiresAt: testNow.Add(time.Hour)})
	if _, err := cold.Verify(es); err != nil {
		t.Fatalf("a sid entry named like a kid revoked the key: %v", err)
	}
}

func (f *fakeLatch) revokeKid(kid string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.entries = append(f.entries, fmt.Sprintf(`{"seq":%d,"kind":"kid","value":%q,"expires_at":%q}`,
		len(f.entries)+1, kid, time.Now().Add(time.Hour).UTC().Format(time.RFC3339Nano)))
}

// TestNewRemoteKeyRevoked: a kid entry arriving through the feed makes a
// NewRemote verifier refuse valid tokens signed with that key.
func TestNewRemoteKeyRevoked(t *testing.T) {
	f := newFakeLatch(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	v, err := NewRemote(ctx, RemoteConfig{Issuer: testIss, Audience: testAud, JWKSURL: f.URL + "/.well-known/jwks.json", RevocationsURL: f.URL,
		ClientID: "api", ClientSecret: remoteSecret, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	tok := nowToken(t, "s1")
	if _, err := v.Verify(tok); err != nil {
		t.Fatal(err)
	}
	f.revokeKid("ed")
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := v.Verify(tok)
		if errors.Is(err, ErrRevoked) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the key is revoked on the feed, but the verifier says %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestNewRemoteKeyRevokedRefetchesKeys: when the active key is revoked,
// the server signs at once with a new key. An attacker who spent the
// unknown-kid refetch budget with a random kid just before must not make
// every token of the new key fail for UnknownKidInterval (30 s): the kid
// entry on the feed makes a NewRemote verifier refetch the JWKS.
func TestNewRemoteKeyRevokedRefetchesKeys(t *testing.T) {
	f := newFakeLatch(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	v, err := NewRemote(ctx, RemoteConfig{Issuer: testIss, Audience: testAud, JWKSURL: f.URL + "/.well-known/jwks.json", RevocationsURL: f.URL,
		ClientID: "api", ClientSecret: remoteSecret, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	k := keys(t)
	n := time.Now().Unix()
	claims := payload("iat", fmt.Sprint(n-1), "exp", fmt.Sprint(n+300))
	// The attacker's random kid: its refetch (waited for) finds nothing.
	random := sign(t, "EdDSA", k.edOther, header("EdDSA", "random-kid"), claims)
	if _, err := v.VerifyContext(ctx, random); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("random kid: %v", err)
	}
	// The server revokes "ed" and signs with "ed2" from now on.
	doc, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: k.edOther.Public(), KeyID: "ed2", Algorithm: "EdDSA", Use: "sig"}}})
	f.jwks.Store(&doc)
	f.revokeKid("ed")
	tok := sign(t, "EdDSA", k.edOther, header("EdDSA", "ed2"), claims)
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := v.VerifyContext(ctx, tok)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a token of the key that replaced a revoked one: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
