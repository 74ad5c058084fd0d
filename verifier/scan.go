package verifier

import (
	"bytes"
	"math/rand/v2"
	"unicode"
	"unicode/utf8"
)

// A small strict JSON scanner for the decoded header and claims. It runs
// before the signature is checked and before encoding/json sees the bytes,
// to refuse what encoding/json would silently accept:
//
//   - duplicate member names (encoding/json keeps the last one), compared
//     the way encoding/json matches struct fields (case-insensitively,
//     bytes.EqualFold), so {"sub":"a","SUB":"b"} is refused too;
//   - member names written with escapes (\u0073ub), which we never emit;
//   - more than maxMembers members in an object or nesting deeper than
//     maxDepth, which bounds the cost of the scan (it is linear in the input
//     with a small constant; see BenchmarkScanWorstCase).
//
// The input must already be valid UTF-8. The scanner validates the whole
// JSON grammar, so a value it records is exactly what encoding/json decodes.

const (
	maxDepth   = 16
	maxMembers = 64
)

// scan results
const (
	scanOK = iota
	scanSyntax
	scanDup
)

// Value kinds recorded for top-level members.
const (
	kindString = 's'
	kindNumber = 'n'
	kindObject = 'o'
	kindArray  = 'a'
	kindBool   = 'b'
	kindNull   = 'z'
)

type member struct {
	key  []byte
	val  []byte // raw JSON of the value
	kind byte
}

type scanner struct {
	b []byte
	i int
}

// scanTop scans b, which must be exactly one JSON object, and records its
// members in out. It returns the number of members and a scan result.
func scanTop(b []byte, out *[maxMembers]member) (int, int) {
	s := scanner{b: b}
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != '{' {
		return 0, scanSyntax
	}
	n, code := s.object(1, out)
	if code != scanOK {
		return 0, code
	}
	s.ws()
	if s.i != len(s.b) {
		return 0, scanSyntax
	}
	return n, scanOK
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// object scans an object starting at '{'. When out is nil (nested objects)
// members are only checked, not recorded.
func (s *scanner) object(depth int, out *[maxMembers]member) (int, int) {
	if depth > maxDepth {
		return 0, scanSyntax
	}
	s.i++ // '{'
	var keys [maxMembers][]byte
	var folds [maxMembers]uint64
	n := 0
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		return 0, scanOK
	}
	for {
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != '"' {
			return 0, scanSyntax
		}
		key, escaped, ok := s.str()
		if !ok || escaped {
			return 0, scanSyntax
		}
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return 0, scanSyntax
		}
		s.i++
		s.ws()
		start := s.i
		kind, code := s.value(depth)
		if code != scanOK {
			return 0, code
		}
		// Names that fold to each other have the same foldHash, so only
		// names with equal hashes are compared: comparing every pair with
		// bytes.EqualFold made an object of 64 long non-ASCII names cost
		// 64²/2 Unicode comparisons, ten Ed25519 checks per token.
		fold := foldHash(key)
		for j, h := range folds[:n] {
			if h == fold && equalFold(keys[j], key) {
				return 0, scanDup
			}
		}
		if n == maxMembers {
			return 0, scanSyntax
		}
		keys[n], folds[n] = key, fold
		if out != nil {
			out[n] = member{key: key, val: s.b[start:s.i], kind: kind}
		}
		n++
		s.ws()
		if s.i >= len(s.b) {
			return 0, scanSyntax
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case '}':
			s.i++
			return n, scanOK
		default:
			return 0, scanSyntax
		}
	}
}

func (s *scanner) array(depth int) int {
	if depth > maxDepth {
		return scanSyntax
	}
	s.i++ // '['
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == ']' {
		s.i++
		return scanOK
	}
	for {
		s.ws()
		if _, code := s.value(depth); code != scanOK {
			return code
		}
		s.ws()
		if s.i >= len(s.b) {
			return scanSyntax
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case ']':
			s.i++
			return scanOK
		default:
			return scanSyntax
		}
	}
}

// value scans one value at s.i (no leading whitespace).
func (s *scanner) value(depth int) (byte, int) {
	if s.i >= len(s.b) {
		return 0, scanSyntax
	}
	switch c := s.b[s.i]; {
	case c == '{':
		_, code := s.object(depth+1, nil)
		return kindObject, code
	case c == '[':
		return kindArray, s.array(depth + 1)
	case c == '"':
		if _, _, ok := s.str(); !ok {
			return 0, scanSyntax
		}
		return kindString, scanOK
	case c == 't':
		return kindBool, s.lit("true")
	case c == 'f':
		return kindBool, s.lit("false")
	case c == 'n':
		return kindNull, s.lit("null")
	case c == '-' || ('0' <= c && c <= '9'):
		return kindNumber, s.num()
	}
	return 0, scanSyntax
}

func (s *scanner) lit(l string) int {
	if len(s.b)-s.i < len(l) || string(s.b[s.i:s.i+len(l)]) != l {
		return scanSyntax
	}
	s.i += len(l)
	return scanOK
}

// str scans a string at '"' and returns its raw contents (between the
// quotes) and whether it contains escapes.
func (s *scanner) str() (raw []byte, escaped, ok bool) {
	s.i++
	start := s.i
	for s.i < len(s.b) {
		for s.i < len(s.b) && plain[s.b[s.i]] {
			s.i++
		}
		if s.i >= len(s.b) {
			break
		}
		c := s.b[s.i]
		switch {
		case c == '"':
			raw = s.b[start:s.i]
			s.i++
			return raw, escaped, true
		case c == '\\':
			escaped = true
			if s.i+1 >= len(s.b) {
				return nil, false, false
			}
			switch s.b[s.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i += 2
			case 'u':
				if s.i+6 > len(s.b) {
					return nil, false, false
				}
				for _, h := range s.b[s.i+2 : s.i+6] {
					if !isHex(h) {
						return nil, false, false
					}
				}
				s.i += 6
			default:
				return nil, false, false
			}
		case c < 0x20:
			return nil, false, false
		default:
			s.i++
		}
	}
	return nil, false, false
}

// plain marks the bytes that stand for themselves inside a JSON string:
// all but '"', '\\' and the control characters.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// equalFold is bytes.EqualFold; tests count its calls.
var equalFold = bytes.EqualFold

// foldSeed keys foldHash, so that names with colliding hashes cannot be
// precomputed.
var foldSeed = rand.Uint64() | 1

// foldHash hashes the case folding of the valid UTF-8 name b: names that
// bytes.EqualFold (and so encoding/json) matches to each other have the
// same hash. Each rune counts as unicode.ToUpper(unicode.ToLower(r)),
// which is the same for every rune of a unicode.SimpleFold orbit ('K' for
// k, K and the Kelvin sign; 'S' for s, S and ſ), as TestFoldHash checks
// for every rune; ASCII takes a fast path to the same value.
func foldHash(b []byte) uint64 {
	h := foldSeed
	for i := 0; i < len(b); {
		r := rune(b[i])
		if r < utf8.RuneSelf {
			if 'a' <= r && r <= 'z' {
				r -= 'a' - 'A'
			}
			i++
		} else {
			var size int
			r, size = utf8.DecodeRune(b[i:])
			i += size
			r = unicode.ToUpper(unicode.ToLower(r))
		}
		h = (h ^ uint64(r)) * 0x100000001b3 // FNV-1a, one rune at a time
	}
	return h
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func (s *scanner) num() int {
	if s.b[s.i] == '-' {
		s.i++
	}
	switch {
	case s.i < len(s.b) && s.b[s.i] == '0':
		s.i++
	case s.i < len(s.b) && '1' <= s.b[s.i] && s.b[s.i] <= '9':
		for s.i < len(s.b) && isDigit(s.b[s.i]) {
			s.i++
		}
	default:
		return scanSyntax
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if s.i >= len(s.b) || !isDigit(s.b[s.i]) {
			return scanSyntax
		}
		for s.i < len(s.b) && isDigit(s.b[s.i]) {
			s.i++
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if s.i >= len(s.b) || !isDigit(s.b[s.i]) {
			return scanSyntax
		}
		for s.i < len(s.b) && isDigit(s.b[s.i]) {
			s.i++
		}
	}
	return scanOK
}

// foldsToAny reports whether name matches one of names case-insensitively
// (the way encoding/json matches field names) without being equal to it.
func foldsToAny(name []byte, names []string) bool {
	for _, n := range names {
		if len(n) <= len(name)*3 && bytes.EqualFold(name, []byte(n)) && string(name) != n {
			return true
		}
	}
	return false
}
