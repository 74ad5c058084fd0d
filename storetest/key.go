package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/latchauth/latch"
)

// key returns a signing key of the access family with the id, valid from
// notBefore.
func key(id string, notBefore time.Time) latch.SigningKey {
	return familyKey("access", "EdDSA", id, notBefore)
}

// familyKey returns a signing key of family and alg with the id, valid
// from notBefore.
func familyKey(family, alg, id string, notBefore time.Time) latch.SigningKey {
	return latch.SigningKey{
		ID:        id,
		Algorithm: alg,
		Family:    family,
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

func mustVersion(t *testing.T, s latch.Store) int64 {
	t.Helper()
	v, err := s.KeyRingVersion(t.Context())
	if err != nil {
		t.Fatalf("KeyRingVersion: %v", err)
	}
	return v
}

// keyByID returns the stored key with the id, failing t if there is none.
func keyByID(t *testing.T, s latch.Store, id string) latch.SigningKey {
	t.Helper()
	for _, k := range mustKeys(t, s) {
		if k.ID == id {
			return k
		}
	}
	t.Fatalf("no stored key %s", id)
	return latch.SigningKey{}
}

// kidEntries returns the feed's RevokeKey entries live at base.
func kidEntries(t *testing.T, s latch.Store) []latch.Revocation {
	t.Helper()
	all, err := s.RevocationsAfter(t.Context(), 0, base, 1000)
	if err != nil {
		t.Fatalf("RevocationsAfter: %v", err)
	}
	var out []latch.Revocation
	for _, r := range all {
		if r.Kind == latch.RevokeKey {
			out = append(out, r)
		}
	}
	return out
}

// testKeyRevocation: RevokeKey marks a key revoked and writes its feed
// entry in one transaction, optionally with a rotation; revoked keys are
// not the newest key for RotateKeys; superseding marks a pending key
// revoked without a feed entry; every change moves KeyRingVersion.
func testKeyRevocation(t *testing.T, s latch.Store) {
	ctx := t.Context()
	v := mustVersion(t, s)
	moved := func(what string) {
		t.Helper()
		if nv := mustVersion(t, s); nv == v {
			t.Errorf("%s did not move KeyRingVersion (%d)", what, v)
		} else {
			v = nv
		}
	}
	unchanged := func(what string) {
		t.Helper()
		if nv := mustVersion(t, s); nv != v {
			t.Errorf("%s moved KeyRingVersion %d → %d", what, v, nv)
		}
	}
	if err := s.RotateKeys(ctx, latch.KeyRotation{New: key("k1", base)}); err != nil {
		t.Fatal(err)
	}
	moved("first RotateKeys")
	if err := s.RotateKeys(ctx, latch.KeyRotation{New: key("k2", base.Add(24*time.Hour)), Previous: "k1",
		PreviousNotAfter: base.Add(48 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	moved("second RotateKeys")

	at, expiry := base.Add(time.Hour), base.Add(10*time.Hour)
	err := s.RevokeKey(ctx, latch.KeyRevocation{ID: "unknown", At: at, Expiry: expiry})
	wantErr(t, "RevokeKey(unknown)", err, latch.ErrNotFound)
	unchanged("RevokeKey(unknown)")
	if got := kidEntries(t, s); len(got) != 0 {
		t.Fatalf("RevokeKey(unknown) wrote feed entries %+v", got)
	}

	// Revoking the pending k2: it gets RevokedAt, a NotAfter (so that
	// Prune deletes it eventually) and a feed entry.
	if err := s.RevokeKey(ctx, latch.KeyRevocation{ID: "k2", At: at, Expiry: expiry}); err != nil {
		t.Fatalf("RevokeKey(k2): %v", err)
	}
	moved("RevokeKey(k2)")
	k2 := keyByID(t, s, "k2")
	if !k2.RevokedAt.Equal(at) || !k2.NotAfter.Equal(expiry) {
		t.Errorf("revoked k2: RevokedAt %v NotAfter %v, want %v and %v", k2.RevokedAt, k2.NotAfter, at, expiry)
	}
	entries := kidEntries(t, s)
	if len(entries) != 1 || entries[0].Value != "k2" || !entries[0].ExpiresAt.Equal(expiry) || !entries[0].CreatedAt.Equal(at) {
		t.Fatalf("feed after RevokeKey(k2): %+v", entries)
	}

	// A revoked key is not the newest key any more: k1 is.
	err = s.RotateKeys(ctx, latch.KeyRotation{New: key("kx", base.Add(time.Hour)), Previous: "k2"})
	wantErr(t, "RotateKeys(Previous revoked k2)", err, latch.ErrConflict)
	unchanged("a failed RotateKeys")
	k3 := key("k3", base.Add(2*time.Hour))
	if err := s.RotateKeys(ctx, latch.KeyRotation{New: k3, Previous: "k1", PreviousNotAfter: base.Add(30 * time.Hour)}); err != nil {
		t.Fatalf("RotateKeys(Previous k1 past a revoked k2): %v", err)
	}
	moved("RotateKeys past a revoked key")

	// A revocation whose rotation conflicts changes nothing.
	bad := latch.KeyRotation{New: key("k4", base.Add(3*time.Hour)), Previous: "k1", PreviousNotAfter: base.Add(40 * time.Hour)}
	err = s.RevokeKey(ctx, latch.KeyRevocation{ID: "k3", At: at, Expiry: expiry, Rotation: &bad})
	wantErr(t, "RevokeKey with a stale rotation", err, latch.ErrConflict)
	unchanged("a failed RevokeKey")
	if k := keyByID(t, s, "k3"); !k.RevokedAt.IsZero() || len(mustKeys(t, s)) != 3 || len(kidEntries(t, s)) != 1 {
		t.Fatalf("a failed RevokeKey changed the store: k3 %+v, %d keys", k, len(mustKeys(t, s)))
	}

	// Revoking the active key together with its rotation.
	k4 := key("k4", base.Add(3*time.Hour))
	rot := latch.KeyRotation{New: k4, Previous: "k3", PreviousNotAfter: base.Add(5 * time.Hour)}
	if err := s.RevokeKey(ctx, latch.KeyRevocation{ID: "k3", At: at, Expiry: expiry, Rotation: &rot}); err != nil {
		t.Fatalf("RevokeKey(k3) with a rotation: %v", err)
	}
	moved("RevokeKey with a rotation")
	if k := keyByID(t, s, "k3"); !k.RevokedAt.Equal(at) || !k.NotAfter.Equal(rot.PreviousNotAfter) {
		t.Errorf("k3 after RevokeKey with rotation: RevokedAt %v NotAfter %v, want %v and %v", k.RevokedAt, k.NotAfter, at, rot.PreviousNotAfter)
	}
	checkEqual(t, "k4", keyByID(t, s, "k4"), k4)

	// Revoking again keeps the first RevokedAt and announces it again.
	later := at.Add(time.Hour)
	if err := s.RevokeKey(ctx, latch.KeyRevocation{ID: "k3", At: later, Expiry: expiry.Add(time.Hour)}); err != nil {
		t.Fatalf("RevokeKey(k3) again: %v", err)
	}
	if k := keyByID(t, s, "k3"); !k.RevokedAt.Equal(at) {
		t.Errorf("revoking again moved RevokedAt to %v, want %v", k.RevokedAt, at)
	}
	if got := kidEntries(t, s); len(got) != 3 || got[2].Value != "k3" || !got[2].ExpiresAt.Equal(expiry.Add(time.Hour)) {
		t.Errorf("feed after revoking k3 twice: %+v", got)
	}

	// An immediate rotation supersedes a pending key: revoked at the new
	// key's CreatedAt, without a feed entry.
	k5 := key("k5", base.Add(100*time.Hour))
	if err := s.RotateKeys(ctx, latch.KeyRotation{New: k5, Previous: "k4", PreviousNotAfter: base.Add(200 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	k6 := key("k6", base.Add(4*time.Hour))
	k6.CreatedAt = base.Add(4 * time.Hour)
	if err := s.RotateKeys(ctx, latch.KeyRotation{New: k6, Previous: "k5", PreviousNotAfter: k6.CreatedAt,
		SupersedePrevious: true}); err != nil {
		t.Fatalf("RotateKeys superseding k5: %v", err)
	}
	if k := keyByID(t, s, "k5"); !k.RevokedAt.Equal(k6.CreatedAt) || !k.NotAfter.Equal(k6.CreatedAt) {
		t.Errorf("superseded k5: RevokedAt %v NotAfter %v, want both %v", k.RevokedAt, k.NotAfter, k6.CreatedAt)
	}
	if got := kidEntries(t, s); len(got) != 3 {
		t.Errorf("superseding wrote a feed entry: %+v", got)
	}
	// k6 is now the newest key not revoked, although k5 has a later
	// NotBefore.
	err = s.RotateKeys(ctx, latch.KeyRotation{New: key("k7", base.Add(5*time.Hour)), Previous: "k5"})
	wantErr(t, "RotateKeys(Previous superseded k5)", err, latch.ErrConflict)
	if err := s.RotateKeys(ctx, latch.KeyRotation{New: key("k7", base.Add(5*time.Hour)), Previous: "k6",
		PreviousNotAfter: base.Add(50 * time.Hour)}); err != nil {
		t.Fatalf("RotateKeys(Previous k6): %v", err)
	}
}

// testKeyFamilies: each family is its own chain for RotateKeys — Previous
// is the newest key not revoked of the new key's family, whatever the
// other families hold; a revocation's rotation follows the same rule; a
// key without a family is refused; Keys returns every family's keys with
// their family.
func testKeyFamilies(t *testing.T, s latch.Store) {
	ctx := t.Context()
	a1 := key("a1", base)
	if err := s.RotateKeys(ctx, latch.KeyRotation{New: a1}); err != nil {
		t.Fatalf("first access key: %v", err)
	}
	// The id family is empty although the ring is not: its first key
	// names no Previous, and naming the access key is a conflict.
	err := s.RotateKeys(ctx, latch.KeyRotation{New: familyKey("id", "RS256", "ix", base), Previous: "a1",
		PreviousNotAfter: base.Add(time.Hour)})
	wantErr(t, "RotateKeys(first id key, Previous an access key)", err, latch.ErrConflict)
	i1 := familyKey("id", "RS256", "i1", base.Add(time.Minute))
	if err := s.RotateKeys(ctx, latch.KeyRotation{New: i1}); err != nil {
		t.Fatalf("first id key beside an access key: %v", err)
	}
	err = s.RotateKeys(ctx, latch.KeyRotation{New: familyKey("id", "RS256", "ix", base.Add(time.Hour))})
	wantErr(t, "RotateKeys(second first id key)", err, latch.ErrConflict)
	noFamily := key("nf", base.Add(time.Hour))
	noFamily.Family = ""
	if err := s.RotateKeys(ctx, latch.KeyRotation{New: noFamily, Previous: "a1"}); err == nil {
		t.Error("RotateKeys stored a key without a family")
	}

	// Rotating the access family: i1 is newer than a1 but of another
	// family, so a1 is still the access family's newest key.
	a2 := key("a2", base.Add(24*time.Hour))
	a1.NotAfter = base.Add(30 * time.Hour)
	if err := s.RotateKeys(ctx, latch.KeyRotation{New: a2, Previous: "a1", PreviousNotAfter: a1.NotAfter}); err != nil {
		t.Fatalf("rotating the access family past an id key: %v", err)
	}
	// The id family's newest key is still i1, although a2 is newer.
	for _, prev := range []string{"a2", "a1"} {
		err := s.RotateKeys(ctx, latch.KeyRotation{New: familyKey("id", "RS256", "ix", base.Add(48*time.Hour)), Previous: prev,
			PreviousNotAfter: base.Add(50 * time.Hour)})
		wantErr(t, fmt.Sprintf("RotateKeys(id key, Previous access key %s)", prev), err, latch.ErrConflict)
	}
	if k := keyByID(t, s, "a2"); !k.NotAfter.IsZero() || !k.RevokedAt.IsZero() {
		t.Fatalf("a conflicting id rotation touched access key a2: %+v", k)
	}
	i2 := familyKey("id", "RS256", "i2", base.Add(48*time.Hour))
	i1.NotAfter = base.Add(50 * time.Hour)
	if err := s.RotateKeys(ctx, latch.KeyRotation{New: i2, Previous: "i1", PreviousNotAfter: i1.NotAfter}); err != nil {
		t.Fatalf("rotating the id family: %v", err)
	}
	// The access family's newest key is a2, not i2.
	err = s.RotateKeys(ctx, latch.KeyRotation{New: key("ax", base.Add(72*time.Hour)), Previous: "i2"})
	wantErr(t, "RotateKeys(access key, Previous id key i2)", err, latch.ErrConflict)

	// Revoking the active id key with a rotation of the id family leaves
	// the access family alone.
	i3 := familyKey("id", "RS256", "i3", base.Add(49*time.Hour))
	rot := latch.KeyRotation{New: i3, Previous: "i2", PreviousNotAfter: base.Add(49 * time.Hour)}
	at, expiry := base.Add(49*time.Hour), base.Add(80*time.Hour)
	if err := s.RevokeKey(ctx, latch.KeyRevocation{ID: "i2", At: at, Expiry: expiry, Rotation: &rot}); err != nil {
		t.Fatalf("RevokeKey(i2) with an id rotation: %v", err)
	}
	i2.RevokedAt, i2.NotAfter = at, rot.PreviousNotAfter
	// A revocation whose rotation names the other family's key conflicts.
	bad := latch.KeyRotation{New: familyKey("id", "RS256", "i4", base.Add(50*time.Hour)), Previous: "a2"}
	err = s.RevokeKey(ctx, latch.KeyRevocation{ID: "i3", At: at, Expiry: expiry, Rotation: &bad})
	wantErr(t, "RevokeKey(i3) with a rotation naming an access key", err, latch.ErrConflict)

	keys := mustKeys(t, s)
	want := []latch.SigningKey{a1, i1, a2, i2, i3}
	if len(keys) != len(want) {
		t.Fatalf("Keys returned %d keys, want %d: %+v", len(keys), len(want), keys)
	}
	for i := range want {
		checkEqual(t, fmt.Sprintf("Keys[%d]", i), keys[i], want[i])
	}
}

// testKeyFamiliesConcurrent races instances creating the first key of a
// new family (an upgraded ring gaining its id family at start) and
// rotating the access family at the same time: exactly one of each wins.
func testKeyFamiliesConcurrent(t *testing.T, s latch.Store) {
	const n = 10
	ctx := t.Context()
	if err := s.RotateKeys(ctx, latch.KeyRotation{New: key("a1", base)}); err != nil {
		t.Fatalf("RotateKeys: %v", err)
	}
	errc := make(chan error, 2*n)
	okID, okAccess := make(chan struct{}, 2*n), make(chan struct{}, 2*n)
	for i := range n {
		go func() {
			err := s.RotateKeys(ctx, latch.KeyRotation{New: familyKey("id", "RS256", fmt.Sprintf("i1-%d", i), base)})
			if err == nil {
				okID <- struct{}{}
			}
			errc <- err
		}()
		go func() {
			err := s.RotateKeys(ctx, latch.KeyRotation{New: key(fmt.Sprintf("a2-%d", i), base.Add(time.Hour)),
				Previous: "a1", PreviousNotAfter: base.Add(2 * time.Hour)})
			if err == nil {
				okAccess <- struct{}{}
			}
			errc <- err
		}()
	}
	for range 2 * n {
		if err := <-errc; err != nil && !errors.Is(err, latch.ErrConflict) {
			t.Errorf("RotateKeys: error %v, want nil or ErrConflict", err)
		}
	}
	if len(okID) != 1 || len(okAccess) != 1 {
		t.Errorf("%d first id keys and %d access rotations succeeded, want 1 and 1", len(okID), len(okAccess))
	}
	families := map[string]int{}
	for _, k := range mustKeys(t, s) {
		families[k.Family]++
	}
	if families["access"] != 2 || families["id"] != 1 || len(families) != 2 {
		t.Errorf("ring after concurrent rotations: %v keys per family, want access 2, id 1", families)
	}
}
