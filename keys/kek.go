package keys

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// kekSize is the length of a key-encryption key in bytes (AES-256).
const kekSize = 32

// sealVersion is the first byte of every sealed box. It is authenticated
// together with the caller's additional data.
const sealVersion byte = 1

const (
	nonceSize = 12 // 96-bit GCM nonce
	tagSize   = 16
	// sealOverhead is what Seal adds to the plaintext.
	sealOverhead = 1 + nonceSize + tagSize
)

// redacted is what a KEK prints as, whatever the verb.
const redacted = "KEK(redacted)"

// KEK is a 256-bit key-encryption key. It seals the private signing keys at
// rest (and, through Derive, other secrets the server keeps encrypted).
//
// The zero KEK is not usable: Seal panics and Open fails. A KEK never prints
// its bytes: String, GoString, Format and LogValue all give "KEK(redacted)".
// It is safe for concurrent use.
type KEK struct {
	// s is nil for the zero KEK. The key lives behind a pointer so that
	// even a KEK in an unexported struct field, which fmt prints without
	// calling its methods, shows only an address.
	s *kekState
}

// kekState is the key material of a KEK.
type kekState struct {
	key  [kekSize]byte
	aead cipher.AEAD // AES-256-GCM under key
}

// newKEK builds a KEK from exactly kekSize bytes.
func newKEK(b []byte) (KEK, error) {
	if len(b) != kekSize {
		return KEK{}, fmt.Errorf("keys: a KEK is %d bytes, got %d", kekSize, len(b))
	}
	st := new(kekState)
	copy(st.key[:], b)
	block, err := aes.NewCipher(st.key[:])
	if err != nil {
		return KEK{}, fmt.Errorf("keys: KEK: %w", err)
	}
	st.aead, err = cipher.NewGCM(block)
	if err != nil {
		return KEK{}, fmt.Errorf("keys: KEK: %w", err)
	}
	return KEK{s: st}, nil
}

// GenerateKEK returns a new random KEK.
func GenerateKEK() (KEK, error) {
	var b [kekSize]byte
	if _, err := io.ReadFull(rand.Reader, b[:]); err != nil {
		return KEK{}, fmt.Errorf("keys: generating KEK: %w", err)
	}
	return newKEK(b[:])
}

// ParseKEK decodes a KEK from base64 (standard or URL alphabet, padded or
// not; surrounding white space is ignored). The decoded value must be exactly
// 32 bytes, for example the output of `openssl rand -base64 32`. Errors never
// repeat the value.
func ParseKEK(s string) (KEK, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return KEK{}, errors.New("keys: KEK is empty; want 32 random bytes in base64 (openssl rand -base64 32)")
	}
	var b []byte
	var err error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err = enc.DecodeString(s); err == nil {
			break
		}
	}
	if err != nil {
		return KEK{}, fmt.Errorf("keys: KEK is not valid base64 (%d characters); want 32 random bytes in base64 (openssl rand -base64 32)", len(s))
	}
	if len(b) != kekSize {
		return KEK{}, fmt.Errorf("keys: KEK decodes to %d bytes, want exactly %d (openssl rand -base64 32)", len(b), kekSize)
	}
	return newKEK(b)
}

// LoadKEK returns the key-encryption key. env is the value of LATCH_KEK:
// if it is not empty it is parsed with ParseKEK and the file is not
// touched. Otherwise the KEK is read from the file at path (base64 text). If
// that file does not exist, a random KEK is generated and written there with
// mode 0600 (created exclusively, so two processes starting at once agree on
// one KEK), and created is true. A KEK file readable by group or others is
// refused.
func LoadKEK(env, path string) (k KEK, created bool, err error) {
	if strings.TrimSpace(env) != "" {
		k, err = ParseKEK(env)
		if err != nil {
			return KEK{}, false, fmt.Errorf("LATCH_KEK: %w", err)
		}
		return k, false, nil
	}
	if path == "" {
		return KEK{}, false, errors.New("keys: no KEK: LATCH_KEK is empty and no KEK file path was given")
	}
	k, err = readKEKFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		k, err = createKEKFile(path)
		if err == nil {
			return k, true, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return KEK{}, false, err
		}
		k, err = readKEKFile(path) // another process created it first
	}
	// A process that creates the file writes it right after; a reader
	// racing with it may see it empty, so wait briefly for a whole value.
	for deadline := time.Now().Add(2 * time.Second); errors.Is(err, errKEKFileShort) && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		k, err = readKEKFile(path)
	}
	if err != nil {
		return KEK{}, false, err
	}
	return k, false, nil
}

// errKEKFileShort marks a KEK file that is empty or shorter than a KEK.
var errKEKFileShort = errors.New("keys: KEK file is empty or truncated")

// readKEKFile reads and checks a KEK file.
func readKEKFile(path string) (KEK, error) {
	f, err := os.Open(path)
	if err != nil {
		return KEK{}, fmt.Errorf("keys: KEK file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return KEK{}, fmt.Errorf("keys: KEK file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return KEK{}, fmt.Errorf("keys: KEK file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return KEK{}, fmt.Errorf("keys: KEK file %s is accessible by group or others (mode %#o); run chmod 600 %s", path, perm, path)
	}
	b, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return KEK{}, fmt.Errorf("keys: reading KEK file %s: %w", path, err)
	}
	s := strings.TrimSpace(string(b))
	if len(s) < base64.RawStdEncoding.EncodedLen(kekSize) {
		return KEK{}, fmt.Errorf("%w: %s holds %d characters; delete it only if nothing was sealed with it", errKEKFileShort, path, len(s))
	}
	k, err := ParseKEK(s)
	if err != nil {
		return KEK{}, fmt.Errorf("keys: KEK file %s: %w", path, err)
	}
	return k, nil
}

// createKEKFile writes a new random KEK to path, failing with fs.ErrExist if
// the file exists.
func createKEKFile(path string) (KEK, error) {
	var b [kekSize]byte
	if _, err := io.ReadFull(rand.Reader, b[:]); err != nil {
		return KEK{}, fmt.Errorf("keys: generating KEK: %w", err)
	}
	k, err := newKEK(b[:])
	if err != nil {
		return KEK{}, err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return KEK{}, fmt.Errorf("keys: creating KEK directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return KEK{}, fmt.Errorf("keys: creating KEK file: %w", err)
	}
	text := base64.StdEncoding.EncodeToString(b[:]) + "\n"
	_, err = f.WriteString(text)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		// Leave no half-written KEK behind; nothing was sealed with it.
		os.Remove(path)
		return KEK{}, fmt.Errorf("keys: writing KEK file %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync() // best effort: make the new directory entry durable
		d.Close()
	}
	return k, nil
}

// valid reports whether k was made from key bytes (it is not the zero KEK).
func (k KEK) valid() bool { return k.s != nil }

// Seal encrypts and authenticates plaintext with AES-256-GCM, binding it to
// aad (which is authenticated, not encrypted, and must be given again to
// Open). The result is a version byte, a random 96-bit nonce and the
// ciphertext with its tag. Seal panics on the zero KEK.
func (k KEK) Seal(plaintext, aad []byte) []byte {
	if !k.valid() {
		panic("keys: Seal with the zero KEK")
	}
	out := make([]byte, 1+nonceSize, sealOverhead+len(plaintext))
	out[0] = sealVersion
	if _, err := io.ReadFull(rand.Reader, out[1:]); err != nil {
		panic("keys: reading random nonce: " + err.Error())
	}
	return k.s.aead.Seal(out, out[1:1+nonceSize], plaintext, sealAAD(aad))
}

// Open decrypts a box made by Seal with the same KEK and aad. It fails if
// the box was made with another KEK or another aad, or was altered.
func (k KEK) Open(sealed, aad []byte) ([]byte, error) {
	if !k.valid() {
		return nil, errors.New("keys: Open with the zero KEK")
	}
	if len(sealed) < sealOverhead {
		return nil, errors.New("keys: sealed box too short")
	}
	if sealed[0] != sealVersion {
		return nil, fmt.Errorf("keys: sealed box has unknown version %d", sealed[0])
	}
	pt, err := k.s.aead.Open(nil, sealed[1:1+nonceSize], sealed[1+nonceSize:], sealAAD(aad))
	if err != nil {
		return nil, errors.New("keys: cannot open sealed box: wrong KEK, wrong context or altered data")
	}
	return pt, nil
}

// sealAAD binds the version byte to the caller's additional data.
func sealAAD(aad []byte) []byte {
	b := make([]byte, 1+len(aad))
	b[0] = sealVersion
	copy(b[1:], aad)
	return b
}

// Derive returns an independent subkey of k for purpose (HKDF-SHA256 with
// purpose in the info), so that secrets sealed for one purpose cannot be
// opened as another. Distinct purposes give unrelated keys. Derive of the
// zero KEK is the zero KEK.
func (k KEK) Derive(purpose string) KEK {
	if !k.valid() {
		return KEK{}
	}
	b, err := hkdf.Key(sha256.New, k.s.key[:], nil, "latch kek derive v1: "+purpose, kekSize)
	if err != nil {
		panic("keys: HKDF: " + err.Error()) // only for impossible lengths
	}
	d, err := newKEK(b)
	if err != nil {
		panic(err)
	}
	return d
}

// MAC returns a keyed HMAC-SHA256 of msg under a subkey of k for purpose
// (derived as Derive does, never the KEK itself). The server uses it for
// tokens it must recognise but never store, such as CSRF tokens.
func (k KEK) MAC(purpose string, msg []byte) []byte {
	if !k.valid() {
		panic("keys: MAC with the zero KEK")
	}
	sub, err := hkdf.Key(sha256.New, k.s.key[:], nil, "latch kek mac v1: "+purpose, kekSize)
	if err != nil {
		panic("keys: HKDF: " + err.Error())
	}
	m := hmac.New(sha256.New, sub)
	m.Write(msg)
	return m.Sum(nil)
}

// String returns "KEK(redacted)".
func (k KEK) String() string { return redacted }

// GoString returns "KEK(redacted)", so %#v does not print the key.
func (k KEK) GoString() string { return redacted }

// Format writes "KEK(redacted)" for every verb, so no fmt verb prints the
// key.
func (k KEK) Format(f fmt.State, verb rune) { io.WriteString(f, redacted) }

// LogValue makes log/slog print "KEK(redacted)".
func (k KEK) LogValue() slog.Value { return slog.StringValue(redacted) }
