package password_test

import (
	"context"
	"errors"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/latchauth/latch/password"
)

// FuzzVerify feeds arbitrary stored hashes to Verify. It must never panic,
// its results must be consistent, and its errors must not depend on the
// password (so they cannot contain it) nor quote the hash. The Hasher's
// bounds are lowered so that no input costs more than about a millisecond;
// the parser and the bound checks are the same code.
func FuzzVerify(f *testing.F) {
	const pw = "fuzz-password"
	cheap, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		f.Fatal(err)
	}
	seeds := []string{
		phcOf(pw, "fuzz-salt", 64, 1, 1, 16),
		phcOf(pw, "sixteen-byte-slt", 256, 2, 2, 32),
		phcOf(pw, "sixteen-byte-slt", 8, 1, 1, 16),
		string(cheap),
		validDefault, // over the lowered bounds: an error, no work
	}
	for _, v := range foreignVectors {
		seeds = append(seeds, v.enc)
	}
	for _, c := range malformedHashes {
		seeds = append(seeds, c.enc)
	}
	for _, s := range seeds {
		f.Add(pw, s)
		f.Add("wrong", s)
	}

	h, err := password.NewHasher(password.DefaultParams, 1, 0)
	if err != nil {
		f.Fatal(err)
	}
	h.UseCheapLimits()
	ctx := context.Background()

	f.Fuzz(func(t *testing.T, pw, enc string) {
		ok, rehash, err := h.Verify(ctx, pw, enc)
		if err != nil && (ok || rehash) {
			t.Fatalf("Verify = %v, %v, %v: true with an error", ok, rehash, err)
		}
		if rehash && !ok {
			t.Fatalf("Verify = false, true: rehash without a match")
		}
		if err != nil {
			if errors.Is(err, password.ErrBusy) {
				t.Fatalf("ErrBusy with a single caller: %v", err)
			}
			if !errors.Is(err, password.ErrMalformedHash) && !errors.Is(err, password.ErrUnsupportedHash) {
				t.Fatalf("error %v is neither ErrMalformedHash nor ErrUnsupportedHash", err)
			}
			_, _, err2 := h.Verify(ctx, pw+"\x00other", enc)
			if err2 == nil || err2.Error() != err.Error() {
				t.Fatalf("error depends on the password: %v vs %v", err, err2)
			}
			// Independence from the password is checked above; a
			// substring test would misfire on short fuzzed passwords.
			checkErrorText(t, err, "", enc)
		}
	})
}
