package secret_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/latchauth/latch/secret"
)

// TestToken: a token has its prefix and 256 bits, its hash is what
// HashToken gives, two tokens differ, and only a token of the prefix's
// shape passes TokenShaped.
func TestToken(t *testing.T) {
	tok, hash := secret.NewToken("latch_x_")
	if !strings.HasPrefix(tok, "latch_x_") || len(tok) != len("latch_x_")+43 {
		t.Fatalf("token %q", tok)
	}
	if !bytes.Equal(hash, secret.HashToken(tok)) || len(hash) != 32 {
		t.Fatal("the hash is not the token's SHA-256")
	}
	if other, _ := secret.NewToken("latch_x_"); other == tok {
		t.Fatal("two tokens are equal")
	}
	if !secret.TokenShaped(tok, "latch_x_") {
		t.Fatal("a token is not shaped like one")
	}
	for _, bad := range []string{"", "latch_x_", tok + "A", tok[:len(tok)-1], "latch_y_" + tok[len("latch_x_"):],
		"latch_x_" + strings.Repeat("!", 43), tok[:len(tok)-1] + "="} {
		if secret.TokenShaped(bad, "latch_x_") {
			t.Errorf("TokenShaped(%q) = true", bad)
		}
	}
}
