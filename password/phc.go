package password

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// phc is a parsed argon2id PHC string.
type phc struct {
	params Params
	salt   []byte
	key    []byte
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformedHash}, args...)...)
}

// parsePHC parses $argon2id$v=19$m=M,t=T,p=P$SALT$HASH strictly: exactly
// these fields in this order, canonical decimals, canonical unpadded
// standard base64, and parameters within lim. Nothing is allocated in
// proportion to a parameter before it has been checked.
func parsePHC(s string, lim limits) (*phc, error) {
	if len(s) > maxEncodedLen {
		return nil, malformed("longer than %d bytes", maxEncodedLen)
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return nil, malformed("contains a byte outside printable ASCII")
		}
	}
	f := strings.Split(s, "$")
	if len(f) != 6 || f[0] != "" || f[1] != "argon2id" {
		return nil, malformed("argon2id hash must have exactly the fields argon2id, v=19, m=,t=,p=, salt and hash")
	}
	if f[2] != "v="+strconv.Itoa(argon2.Version) {
		return nil, malformed("argon2id version must be v=%d", argon2.Version)
	}
	kv := strings.Split(f[3], ",")
	if len(kv) != 3 {
		return nil, malformed("argon2id parameters must be exactly m=,t=,p=")
	}
	var ps [3]uint32
	for i, name := range [3]string{"m", "t", "p"} {
		v, ok := strings.CutPrefix(kv[i], name+"=")
		if !ok {
			return nil, malformed("argon2id parameters must be exactly m=,t=,p= in this order")
		}
		n, err := parseDecimal(v)
		if err != nil {
			return nil, malformed("argon2id parameter %s is not a canonical decimal number", name)
		}
		ps[i] = n
	}
	m, t, p := ps[0], ps[1], ps[2]
	switch {
	case p < 1 || p > 255:
		return nil, malformed("argon2id parallelism must be between 1 and 255")
	case t < 1 || t > lim.maxTime:
		return nil, malformed("argon2id time must be between 1 and %d", lim.maxTime)
	case m < 8*p:
		return nil, malformed("argon2id memory must be at least 8 KiB per lane")
	case m > lim.maxMemory:
		return nil, malformed("argon2id memory must be at most %d KiB", lim.maxMemory)
	}
	salt, err := decodeB64(f[4], minStoredSaltLen, MaxSaltLen)
	if err != nil {
		return nil, malformed("argon2id salt: %v", err)
	}
	key, err := decodeB64(f[5], minStoredKeyLen, MaxKeyLen)
	if err != nil {
		return nil, malformed("argon2id hash: %v", err)
	}
	return &phc{
		params: Params{Memory: m, Time: t, Threads: uint8(p), SaltLen: uint32(len(salt)), KeyLen: uint32(len(key))},
		salt:   salt,
		key:    key,
	}, nil
}

// parseDecimal parses a canonical unsigned 32-bit decimal: digits only, no
// sign, no leading zero.
func parseDecimal(s string) (uint32, error) {
	if s == "" || len(s) > 10 || (len(s) > 1 && s[0] == '0') {
		return 0, strconv.ErrSyntax
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, strconv.ErrSyntax
		}
	}
	n, err := strconv.ParseUint(s, 10, 32)
	return uint32(n), err
}

var strictB64 = base64.RawStdEncoding.Strict()

// decodeB64 decodes canonical unpadded standard base64 of min to max bytes.
// (The caller has already refused CR and LF, which the decoder would skip.)
func decodeB64(s string, min, max int) ([]byte, error) {
	n := base64.RawStdEncoding.DecodedLen(len(s))
	if n < min || n > max {
		return nil, fmt.Errorf("length must be between %d and %d bytes", min, max)
	}
	b, err := strictB64.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("not canonical unpadded standard base64")
	}
	return b, nil
}

// isBcrypt reports whether s has a bcrypt prefix this package verifies.
func isBcrypt(s string) bool {
	return strings.HasPrefix(s, "$2a$") || strings.HasPrefix(s, "$2b$") || strings.HasPrefix(s, "$2y$")
}

const bcryptAlphabet = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// checkBcrypt validates the shape of a bcrypt hash, $2b$NN$ followed by 53
// characters of bcrypt's base64 (22 of salt, 31 of hash), and bounds its
// cost, before the library spends 2^cost rounds on it.
func checkBcrypt(s string, maxCost int) error {
	if len(s) != 60 || s[6] != '$' {
		return malformed("bcrypt hash must be 60 characters: version, two-digit cost, 53 characters of salt and hash")
	}
	c0, c1 := s[4], s[5]
	if c0 < '0' || c0 > '9' || c1 < '0' || c1 > '9' {
		return malformed("bcrypt cost must be two digits")
	}
	cost := int(c0-'0')*10 + int(c1-'0')
	if cost < 4 || cost > maxCost {
		return malformed("bcrypt cost must be between 4 and %d", maxCost)
	}
	for i := 7; i < len(s); i++ {
		if strings.IndexByte(bcryptAlphabet, s[i]) < 0 {
			return malformed("bcrypt salt and hash must use bcrypt's base64 alphabet")
		}
	}
	return nil
}
