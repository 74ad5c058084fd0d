package auth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

// TestCreateClientRefusesWeakSecrets: secrets of 32 characters or more
// that follow a pattern are refused, with a message that says how to make
// a good one and does not echo the secret.
func TestCreateClientRefusesWeakSecrets(t *testing.T) {
	svc, _ := newService(t)
	ctx := context.Background()
	weak := []string{
		strings.Repeat("a", 32),
		strings.Repeat("a", 200),
		strings.Repeat("ab", 16),
		strings.Repeat("password1", 4),
		"abcdefghijklmnopqrstuvwxyz012345",
		"0123456789abcdef0123456789abcdef",
		"svc-secret-0123456789-abcdefghijklmnop",
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-xyz",
		"zyxwvutsrqponmlkjihgfedcba9876543210",
		"Password1!Password1!Password1!Pa",
		strings.Repeat("password1", 6),
		strings.Repeat("Sv3-x", 12),
		strings.Repeat("Tr0ub4dor&3", 4),
		"kate-svc-2024-kate-svc-2025-kate-svc-2026-kate",
	}
	for i, secret := range weak {
		_, err := svc.CreateClient(ctx, NewClient{ID: "weak" + strings.Repeat("x", i), Secret: secret})
		if !errors.Is(err, ErrWeakClientSecret) {
			t.Errorf("secret %q: err %v, want ErrWeakClientSecret", secret, err)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, "--generate-secret") || strings.Contains(msg, secret) {
			t.Errorf("secret %q: message %q", secret, msg)
		}
	}
}

// TestCreateClientAcceptsRandomSecrets: what --generate-secret makes, and
// 32 random bytes in hex or base64 (openssl rand -hex 32 / -base64 32),
// always pass.
func TestCreateClientAcceptsRandomSecrets(t *testing.T) {
	svc, _ := newService(t)
	ctx := context.Background()
	for i := range 3 {
		b := make([]byte, 32)
		rand.Read(b)
		for j, secret := range []string{GenerateClientSecret(), hex.EncodeToString(b), base64.StdEncoding.EncodeToString(b)} {
			id := "ok" + strings.Repeat("x", i) + strings.Repeat("y", j)
			if _, err := svc.CreateClient(ctx, NewClient{ID: id, Secret: secret}); err != nil {
				t.Errorf("secret %q: %v", secret, err)
			}
		}
	}
}

// TestSecretBitsOfRandomSecrets: the estimate stays above the bound for
// random secrets of 256 bits in every usual encoding, over many draws, so
// that an operator never meets a false refusal.
func TestSecretBitsOfRandomSecrets(t *testing.T) {
	lowest := map[string]float64{}
	for range 2000 {
		b := make([]byte, 32)
		rand.Read(b)
		for enc, s := range map[string]string{
			"generated": GenerateClientSecret(),
			"hex":       hex.EncodeToString(b),
			"base64":    base64.StdEncoding.EncodeToString(b),
			"base64url": base64.RawURLEncoding.EncodeToString(b),
			"base32":    strings.ToLower(rand.Text() + rand.Text()),
		} {
			if v, ok := lowest[enc]; !ok || secretBits(s) < v {
				lowest[enc] = secretBits(s)
			}
		}
	}
	for enc, v := range lowest {
		if v < MinClientSecretBits+32 {
			t.Errorf("%s: lowest estimate %.0f bits, too close to the bound %d", enc, v, MinClientSecretBits)
		}
	}
}
