package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/latchauth/latch"
)

// key returns a signing key with the id, valid from notBefore.
func key(id string, notBefore time.Time) latch.SigningKey {
	return latch.SigningKey{
		ID:        id,
		Algorithm: "EdDSA",
		Private:   []byte("sealed private key " + id),
		Public:    []byte(`{"kty":"OKP","crv":"Ed25519","x":"` + id + `"}`),
		CreatedAt: notBefore.Add(-time.Hour),
		NotBefore: notBefore,
	}
}

func mustKeys(t *testing.T, s latch.Store) []latch.SigningKey {
	t.Helper()
	keys, err := s.Keys(t.Context())
	if err != nil {
		t.Fatalf("Keys: %v", err)
	}
	return keys
}

func testKeys(t *testing.T, s latch.Store) {
	ctx := t.Context()
	if keys := mustKeys(t, s); len(keys) != 0 {
		t.Fatalf("Keys of an empty ring = %d keys", len(keys))
	}
	k1 := key("k1", base)
	err := s.RotateKeys(ctx, latch.KeyRotation{New: key("kx", base), Previous: "k0"})
	wantErr(t, "RotateKeys(empty ring, Previous set)", err, latch.ErrConflict)
	if err := s.RotateKeys(ctx, latch.KeyRotation{New: k1}); err != nil {
		t.Fatalf("first RotateKeys: %v", err)
	}
	err = s.RotateKeys(ctx, latch.KeyRotation{New: key("kx", base.Add(time.Hour))})
	wantErr(t, "RotateKeys(Previous empty, ring not empty)", err, latch.ErrConflict)

	k2 := key("k2", base.Add(24*time.Hour))
	k1.NotAfter = base.Add(48 * time.Hour)
	if err := s.RotateKeys(ctx, latch.KeyRotation{New: k2, Previous: "k1", PreviousNotAfter: k1.NotAfter}); err != nil {
		t.Fatalf("second RotateKeys: %v", err)
	}

	for _, prev := range []string{"k1", "unknown"} {
		err := s.RotateKeys(ctx, latch.KeyRotation{New: key("kx", base.Add(72*time.Hour)), Previous: prev,
			PreviousNotAfter: base.Add(96 * time.Hour)})
		wantErr(t, fmt.Sprintf("RotateKeys(Previous %s, newest k2)", prev), err, latch.ErrConflict)
	}

	// Keys sort by NotBefore, not by CreatedAt: k3 was created before k2.
	k3 := key("k3", base.Add(36*time.Hour))
	k3.CreatedAt = base
	k2.NotAfter = base.Add(96 * time.Hour)
	if err := s.RotateKeys(ctx, latch.KeyRotation{New: k3, Previous: "k2", PreviousNotAfter: k2.NotAfter}); err != nil {
		t.Fatalf("third RotateKeys: %v", err)
	}
	keys := mustKeys(t, s)
	want := []latch.SigningKey{k1, k2, k3}
	if len(keys) != len(want) {
		t.Fatalf("Keys returned %d keys, want %d", len(keys), len(want))
	}
	for i := range want {
		checkEqual(t, fmt.Sprintf("Keys[%d]", i), keys[i], want[i])
	}
}

// testKeysConcurrent races instances rotating from the same key: exactly
// one may succeed.
func testKeysConcurrent(t *testing.T, s latch.Store) {
	const n = 10
	ctx := t.Context()
	if err := s.RotateKeys(ctx, latch.KeyRotation{New: key("k1", base)}); err != nil {
		t.Fatalf("RotateKeys: %v", err)
	}
	errc := make(chan error, n)
	for i := range n {
		go func() {
			errc <- s.RotateKeys(ctx, latch.KeyRotation{
				New:              key(fmt.Sprintf("k2-%d", i), base.Add(time.Hour)),
				Previous:         "k1",
				PreviousNotAfter: base.Add(2 * time.Hour),
			})
		}()
	}
	ok := 0
	for range n {
		switch err := <-errc; {
		case err == nil:
			ok++
		case !errors.Is(err, latch.ErrConflict):
			t.Errorf("RotateKeys: error %v, want nil or ErrConflict", err)
		}
	}
	if ok != 1 {
		t.Errorf("%d concurrent rotations succeeded, want 1", ok)
	}
	if keys := mustKeys(t, s); len(keys) != 2 {
		t.Errorf("ring has %d keys after concurrent rotations, want 2", len(keys))
	}
}
