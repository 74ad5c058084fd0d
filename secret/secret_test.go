package secret

import (
	"crypto/rand"
	"encoding/base64"
	"strings"
	"testing"
)

// TestBits: patterned secrets score low however long they are; random
// ones score high.
func TestBits(t *testing.T) {
	for _, s := range []string{
		strings.Repeat("a", 64),
		strings.Repeat("password1", 8),
		"abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz",
		strings.Repeat("A", 56),
	} {
		if b := Bits(s); b >= 128 {
			t.Errorf("Bits(%.20q…) = %.0f, want < 128", s, b)
		}
	}
	for range 100 {
		var b [32]byte
		rand.Read(b[:])
		s := base64.RawURLEncoding.EncodeToString(b[:])
		if bits := Bits(s); bits < 128 {
			t.Errorf("Bits of 32 random bytes (%s) = %.0f, want ≥ 128", s, bits)
		}
	}
	if Bits("") != 0 {
		t.Error("Bits of the empty string is not 0")
	}
}
