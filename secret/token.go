package secret

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strings"
)

// tokenBytes is the randomness of a token: 256 bits.
const tokenBytes = 32

// NewToken returns a one-time token (the link of an email, a setup
// token) and its SHA-256, which is all a store keeps. The token is the
// prefix, so that secret scanners recognise a leaked one and one
// purpose's token never passes for another's, and 256 random bits in
// unpadded base64url.
func NewToken(prefix string) (token string, hash []byte) {
	b := make([]byte, tokenBytes)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	token = prefix + base64.RawURLEncoding.EncodeToString(b)
	return token, HashToken(token)
}

// HashToken returns the SHA-256 of a token, as stores keep and look it
// up.
func HashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// TokenShaped reports whether t could be a token NewToken made with the
// prefix: anything else is refused before a store is asked.
func TokenShaped(t, prefix string) bool {
	rest, ok := strings.CutPrefix(t, prefix)
	if !ok || len(rest) != base64.RawURLEncoding.EncodedLen(tokenBytes) {
		return false
	}
	_, err := base64.RawURLEncoding.Strict().DecodeString(rest)
	return err == nil
}
