// Package tag makes and checks the MAC tags that Latch gives browsers to
// carry back: signed cookie values ("ID.TAG", whose ID the holder cannot
// choose) and form tokens bound to what they approve. A tag is the
// unpadded base64url of a keyed MAC under a purpose (domain separation);
// every check runs in constant time, and refuses oversized input before
// decoding it.
package tag

import (
	"crypto/subtle"
	"encoding/base64"
	"strings"
)

// MAC is a keyed MAC separated by purpose, such as keys.KEK's.
type MAC func(purpose string, msg []byte) []byte

// maxTag bounds a tag's length in characters (a 512-bit MAC needs 86).
const maxTag = 128

// Make returns the tag of msg for purpose.
func Make(m MAC, purpose string, msg []byte) string {
	return base64.RawURLEncoding.EncodeToString(m(purpose, msg))
}

// Check reports whether tag is the tag of msg for purpose, in constant
// time.
func Check(m MAC, purpose string, msg []byte, tag string) bool {
	if len(tag) > maxTag {
		return false
	}
	got, err := base64.RawURLEncoding.Strict().DecodeString(tag)
	return err == nil && subtle.ConstantTimeCompare(got, m(purpose, msg)) == 1
}

// Sign returns id with its tag for purpose, "ID.TAG".
func Sign(m MAC, purpose, id string) string {
	return id + "." + Make(m, purpose, []byte(id))
}

// Open returns the id of a value Sign made for purpose, or false for a
// value it did not make (forged, another purpose's, malformed) or whose
// id is empty or longer than maxID bytes.
func Open(m MAC, purpose, value string, maxID int) (string, bool) {
	id, t, ok := strings.Cut(value, ".")
	if !ok || id == "" || len(id) > maxID || !Check(m, purpose, []byte(id), t) {
		return "", false
	}
	return id, true
}
