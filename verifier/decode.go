package verifier

import (
	"bytes"
	"unicode/utf16"
	"unicode/utf8"
)

// Decoding of claim values straight from the members recorded by scanTop,
// which has already validated the whole JSON grammar and the UTF-8 of the
// input. The results are what encoding/json would decode from the same
// bytes.

// Bounds of a NumericDate (RFC 7519 §2) that Verify accepts: after the Unix
// epoch and no later than 9999-12-31T23:59:59Z, so that every accepted
// date is an exact int64 number of seconds and a valid time.Time.
const (
	minNumericDate = 1
	maxNumericDate = 253402300799
	// maxDateFraction is the number of fractional digits accepted (RFC
	// 7519 allows non-integer dates; nanoseconds are the most any clock
	// gives). The fraction is dropped: dates count in whole seconds.
	maxDateFraction = 9
)

// numericDate parses the JSON number raw as a NumericDate in whole seconds
// (a fraction truncated). It refuses negative numbers, exponents, more
// than maxDateFraction fractional digits and values outside
// [minNumericDate, maxNumericDate].
func numericDate(raw []byte) (int64, bool) {
	var n int64
	i := 0
	for ; i < len(raw) && isDigit(raw[i]); i++ {
		n = n*10 + int64(raw[i]-'0')
		if n > maxNumericDate {
			return 0, false
		}
	}
	if i == 0 { // '-'
		return 0, false
	}
	if i < len(raw) {
		if raw[i] != '.' {
			return 0, false // exponent
		}
		frac := raw[i+1:]
		if len(frac) > maxDateFraction {
			return 0, false
		}
		for _, c := range frac {
			if !isDigit(c) {
				return 0, false
			}
		}
	}
	if n < minNumericDate {
		return 0, false
	}
	return n, true
}

// stringContent returns the bytes between the quotes of the JSON string
// literal raw and whether they need unescaping.
func stringContent(raw []byte) ([]byte, bool) {
	s := raw[1 : len(raw)-1]
	return s, bytes.IndexByte(s, '\\') >= 0
}

// jsonString returns the value of the JSON string literal raw (quotes
// included). Escapes are decoded as encoding/json does, a lone or
// mismatched UTF-16 surrogate included (it becomes U+FFFD).
func jsonString(raw []byte) string {
	s, escaped := stringContent(raw)
	if !escaped {
		return string(s)
	}
	return string(unescape(make([]byte, 0, len(s)), s))
}

// unescape appends the decoded content of a valid JSON string to dst.
func unescape(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			dst = append(dst, c)
			i++
			continue
		}
		switch s[i+1] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := hex4(s[i+2 : i+6])
			i += 6
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
					r2 = hex4(s[i+2 : i+6])
				}
				if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
					r = d
					i += 6
				} else {
					r = utf8.RuneError
				}
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default: // '"', '\\', '/'
			dst = append(dst, s[i+1])
		}
		i += 2
	}
	return dst
}

func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		default:
			c -= 'A' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

// equalString reports whether the JSON string literal raw decodes to want,
// without allocating when raw has no escapes.
func equalString(raw []byte, want string) bool {
	s, escaped := stringContent(raw)
	if !escaped {
		return string(s) == want
	}
	var buf [256]byte
	return string(unescape(buf[:0], s)) == want
}

// audience decodes aud (a string or an array of strings, as scanned) and
// reports whether it contains want and whether it has a non-empty value.
// one is set when aud is exactly one string equal to want, the common case
// that needs no allocation. ok is false if the array holds anything but
// strings.
func audience(raw []byte, kind byte, want string) (list []string, one, found, nonEmpty, ok bool) {
	if kind == kindString {
		nonEmpty = len(raw) > 2
		if equalString(raw, want) {
			return nil, true, true, nonEmpty, true
		}
		return []string{jsonString(raw)}, false, false, nonEmpty, true
	}
	// An array, valid JSON: elements separated by commas and whitespace.
	s := scanner{b: raw, i: 1}
	for {
		s.ws()
		if s.b[s.i] == ']' {
			return list, false, found, nonEmpty, true
		}
		if s.b[s.i] != '"' {
			return nil, false, false, false, false
		}
		start := s.i
		s.str()
		v := jsonString(raw[start:s.i])
		list = append(list, v)
		found = found || v == want
		nonEmpty = nonEmpty || v != ""
		s.ws()
		if s.b[s.i] == ',' {
			s.i++
		}
	}
}
