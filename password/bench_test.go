package password_test

import (
	"context"
	"testing"

	"github.com/latchauth/latch/password"
)

func BenchmarkHash(b *testing.B) {
	h := newHasher(b, password.DefaultParams, 1, 0)
	ctx := context.Background()
	for b.Loop() {
		if _, err := h.Hash(ctx, "correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	h := newHasher(b, password.DefaultParams, 1, 0)
	ctx := context.Background()
	enc, err := h.Hash(ctx, "correct horse battery staple")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if ok, _, err := h.Verify(ctx, "correct horse battery staple", enc); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

// BenchmarkVerifyDummy should match BenchmarkVerify: that is its purpose.
func BenchmarkVerifyDummy(b *testing.B) {
	h := newHasher(b, password.DefaultParams, 1, 0)
	ctx := context.Background()
	for b.Loop() {
		if err := h.VerifyDummy(ctx, "correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}
