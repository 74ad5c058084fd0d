// Package email turns the email addresses people type into the one
// canonical form that identifies an account, and refuses the addresses
// that could pass for someone else's.
//
// Two inputs name the same account exactly when Normalize returns the same
// string for both. The rules, per part of the address:
//
//   - The whole input: surrounding white space is trimmed. Invisible
//     characters are refused, never silently removed: control and format
//     characters (zero-width space and joiners, soft hyphen, bidi controls
//     such as U+202E), variation selectors, other default-ignorable code
//     points (Hangul fillers), private-use, unassigned and noncharacters,
//     and white space inside the address. At most MaxInputBytes are read.
//   - The local part is enforced with the PRECIS UsernameCaseMapped profile
//     (RFC 8265): full-width and half-width forms map to their ordinary
//     form, letters are lower-cased (Unicode, so the Kelvin sign U+212A
//     becomes k), and the result is NFC. Characters that PRECIS disallows
//     are refused; among them every character that still changes under
//     NFKC after that mapping (ligatures, superscripts, circled letters), so
//     a compatibility variant either maps to the form stored or is refused,
//     and never creates a second account. It must be an unquoted dot-atom
//     (RFC 5322): no specials such as quotes, brackets or commas, no empty
//     dot-separated piece, at most 64 bytes.
//   - Look-alikes in the local part are refused (Unicode TR 39): letters
//     from more than one script, except the combinations TR 39 calls
//     highly restrictive (Latin with Han and Japanese kana, Latin with Han
//     and Bopomofo, Latin with Han and Hangul); a non-ASCII local part whose
//     TR 39 confusable skeleton is plain ASCII (Turkish dotless ı in "kıte",
//     an all-Cyrillic "асе": each passes for an ASCII address); a combining
//     dot above on a soft-dotted letter (the "i̇" that İ lower-cases to);
//     the same combining mark twice in a row; and a combining mark that
//     NFC leaves apart from a Latin, Greek or Cyrillic letter, a digit or
//     a symbol (an underline U+0332, a tiny ypogegrammeni U+0345).
//   - The domain is mapped with UTS 46 (IDNA2008, nontransitional, so ß
//     stays ß), checked for DNS length and host-name syntax, must have at
//     least two labels, and is stored as Unicode (U-labels):
//     "xn--bcher-kva.de" and "BÜCHER.de" are both "bücher.de". Each label
//     obeys the same look-alike rules as the local part.
//
// ß is a letter of its own under PRECIS and IDNA2008: "straße@…" and
// "strasse@…" are two addresses, as they are two mailboxes.
package email

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/mtibben/confusables"
	"golang.org/x/net/idna"
	"golang.org/x/text/secure/precis"
	"golang.org/x/text/unicode/norm"
)

// Limits of an address, in bytes of UTF-8.
const (
	// MaxInputBytes bounds the input Normalize looks at; longer input is
	// refused before any Unicode processing.
	MaxInputBytes = 1024
	// MaxLocalBytes is RFC 5321's limit on the local part.
	MaxLocalBytes = 64
	// MaxBytes is the longest canonical address (RFC 5321's path limit
	// less the angle brackets).
	MaxBytes = 254
)

// ErrInvalid matches every error of Normalize and Validate. The kinds
// below say why; each error also carries a description for people.
var ErrInvalid = errors.New("invalid email address")

// Kinds of invalid address, for errors.Is.
var (
	// ErrSyntax: not local@domain, a special character, an empty piece,
	// or too long.
	ErrSyntax = errors.New("malformed address")
	// ErrInvisible: an invisible, control or format character.
	ErrInvisible = errors.New("invisible character")
	// ErrDisallowed: a character PRECIS does not allow in an identifier
	// (symbols, compatibility forms that do not map to a plain letter).
	ErrDisallowed = errors.New("disallowed character")
	// ErrMixedScript: letters from scripts that are not used together.
	ErrMixedScript = errors.New("mixed scripts")
	// ErrConfusable: a look-alike of another address.
	ErrConfusable = errors.New("confusable characters")
	// ErrDomain: the domain is not a valid host name under UTS 46.
	ErrDomain = errors.New("invalid domain")
	// ErrNotCanonical: Validate was given a valid address that is not in
	// the form Normalize returns.
	ErrNotCanonical = errors.New("not in canonical form")
)

// Error is an invalid address: Kind is one of the Err variables above.
type Error struct {
	Kind   error
	Detail string
}

func (e *Error) Error() string {
	if e.Detail == "" {
		return fmt.Sprintf("%v: %v", ErrInvalid, e.Kind)
	}
	return fmt.Sprintf("%v: %v: %s", ErrInvalid, e.Kind, e.Detail)
}

// Unwrap lets errors.Is match both ErrInvalid and the kind.
func (e *Error) Unwrap() []error { return []error{ErrInvalid, e.Kind} }

func invalid(kind error, format string, args ...any) error {
	return &Error{Kind: kind, Detail: fmt.Sprintf(format, args...)}
}

// Normalize returns the canonical form of addr, or an error matching
// ErrInvalid (and one kind) that says what is wrong. The canonical form is
// a fixed point: Normalize returns it unchanged.
func Normalize(addr string) (string, error) {
	if len(addr) > MaxInputBytes {
		return "", invalid(ErrSyntax, "longer than %d bytes", MaxInputBytes)
	}
	addr = strings.TrimSpace(addr)
	if err := visible(addr); err != nil {
		return "", err
	}
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return "", invalid(ErrSyntax, "no @")
	}
	local, err := normalizeLocal(addr[:at])
	if err != nil {
		return "", err
	}
	domain, err := normalizeDomain(addr[at+1:])
	if err != nil {
		return "", err
	}
	out := local + "@" + domain
	if len(out) > MaxBytes {
		return "", invalid(ErrSyntax, "longer than %d bytes", MaxBytes)
	}
	return out, nil
}

// Validate reports whether addr is a valid address in canonical form, as
// stores should hold it: nil, an ErrInvalid error, or ErrNotCanonical
// (wrapped with ErrInvalid) for a valid address that Normalize would
// change.
func Validate(addr string) error {
	c, err := Normalize(addr)
	if err != nil {
		return err
	}
	if c != addr {
		return invalid(ErrNotCanonical, "canonical form is %q", c)
	}
	return nil
}

// visible refuses invalid UTF-8 and every character that is not seen.
func visible(s string) error {
	for i, r := range s {
		switch {
		case r > ' ' && r < 0x7f:
			// Printable ASCII: the common case, visible.
		case r == utf8.RuneError:
			if _, n := utf8.DecodeRuneInString(s[i:]); n <= 1 {
				return invalid(ErrSyntax, "invalid UTF-8 at byte %d", i)
			}
			return invalid(ErrInvisible, "U+FFFD at byte %d", i)
		case unicode.IsSpace(r):
			return invalid(ErrInvisible, "white space U+%04X at byte %d", r, i)
		case unicode.In(r, unicode.C, unicode.Other_Default_Ignorable_Code_Point,
			unicode.Variation_Selector, unicode.Noncharacter_Code_Point, unicode.Zl, unicode.Zp),
			!unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S, unicode.Zs):
			// unicode.C holds controls (Cc), format characters (Cf: zero
			// width, soft hyphen, bidi controls), private use and
			// surrogates; the last test catches unassigned code points.
			return invalid(ErrInvisible, "U+%04X at byte %d", r, i)
		}
	}
	return nil
}

// atomSpecials are the printable ASCII characters that RFC 5322 allows in
// a local part only inside quotes; Latch takes no quoted local parts.
const atomSpecials = `"(),:;<>@[\]`

func normalizeLocal(local string) (string, error) {
	if local == "" {
		return "", invalid(ErrSyntax, "empty local part")
	}
	out, err := precis.UsernameCaseMapped.String(local)
	if err != nil {
		return "", invalid(ErrDisallowed, "local part %q: %v", local, err)
	}
	// PRECIS leaves nothing that changes under NFKC; say so, so that a
	// change of library cannot quietly break the promise.
	if !norm.NFKC.IsNormalString(out) {
		return "", invalid(ErrDisallowed, "local part %q is not stable under NFKC", local)
	}
	if len(out) > MaxLocalBytes {
		return "", invalid(ErrSyntax, "local part longer than %d bytes", MaxLocalBytes)
	}
	if i := strings.IndexAny(out, atomSpecials); i >= 0 {
		return "", invalid(ErrSyntax, "%q in the local part needs quoting, which is not accepted", out[i])
	}
	if strings.HasPrefix(out, ".") || strings.HasSuffix(out, ".") || strings.Contains(out, "..") {
		return "", invalid(ErrSyntax, "empty dot-separated piece in the local part")
	}
	if err := lookalike(out); err != nil {
		return "", err
	}
	return out, nil
}

// domains maps and checks the domain per UTS 46 for lookup, as a host
// name: lower case, IDNA2008 (nontransitional), bidi rule, hyphen and
// length checks.
var domains = idna.New(
	idna.MapForLookup(),
	idna.Transitional(false),
	idna.BidiRule(),
	idna.StrictDomainName(true),
	idna.VerifyDNSLength(true),
)

func normalizeDomain(domain string) (string, error) {
	ascii, err := domains.ToASCII(domain)
	if err != nil {
		return "", invalid(ErrDomain, "%q: %v", domain, err)
	}
	if strings.HasSuffix(ascii, ".") {
		// UTS 46 takes the DNS root label ("example.com." or with an
		// ideographic full stop); RFC 5321 does not, and kept it would
		// be a second account that looks like the first.
		return "", invalid(ErrDomain, "%q ends with a dot", domain)
	}
	if !strings.Contains(ascii, ".") {
		return "", invalid(ErrDomain, "%q has a single label", domain)
	}
	out, err := domains.ToUnicode(ascii)
	if err != nil {
		return "", invalid(ErrDomain, "%q: %v", domain, err)
	}
	for label := range strings.SplitSeq(out, ".") {
		if err := lookalike(label); err != nil {
			return "", err
		}
	}
	return out, nil
}

// lookalike refuses the TR 39 look-alikes described in the package
// comment. s is already lower case and NFC.
func lookalike(s string) error {
	if isASCII(s) {
		return nil
	}
	if err := scripts(s); err != nil {
		return err
	}
	if sk := confusables.Skeleton(s); isASCII(sk) {
		return invalid(ErrConfusable, "%q looks like the ASCII %q", s, sk)
	}
	// A mark that NFC could not join to a Latin, Greek or Cyrillic
	// letter (or to a digit or a symbol) draws a line, a dot or a hook
	// that is easily missed, or hidden by a link's underline: "ka\u0332te"
	// would pass for "kate". Marks on the letters of other scripts are
	// part of their writing (vowel signs) and stay.
	var base rune
	for _, r := range s {
		if !unicode.In(r, unicode.Mn, unicode.Me) {
			base = r
			continue
		}
		if n := script(base); n == "" || n == "Latin" || n == "Greek" || n == "Cyrillic" {
			return invalid(ErrConfusable, "%q has the combining mark U+%04X on %q, which no letter of its own composes", s, r, base)
		}
	}
	var prev rune
	for _, r := range norm.NFD.String(s) {
		switch {
		case r == '\u0307' && unicode.Is(unicode.Soft_Dotted, prev):
			return invalid(ErrConfusable, "%q has a dot above a dotted letter", s)
		case r == prev && unicode.Is(unicode.Mn, r):
			return invalid(ErrConfusable, "%q repeats the combining mark U+%04X", s, r)
		}
		prev = r
	}
	return nil
}

// scripts allows the letters of one script, or of one of TR 39's highly
// restrictive combinations; Common and Inherited characters (digits,
// punctuation, combining marks) go with any.
func scripts(s string) error {
	seen := map[string]bool{}
	for _, r := range s {
		if r < utf8.RuneSelf {
			if unicode.IsLetter(r) {
				seen["Latin"] = true
			}
			continue
		}
		if name := script(r); name != "" {
			seen[name] = true
		}
	}
	if len(seen) <= 1 {
		return nil
	}
	for _, allowed := range highlyRestrictive {
		if subset(seen, allowed) {
			return nil
		}
	}
	names := slices.Sorted(maps.Keys(seen))
	return invalid(ErrMixedScript, "%q mixes %s", s, strings.Join(names, ", "))
}

// highlyRestrictive are the multi-script sets TR 39 §5.2 allows.
var highlyRestrictive = [][]string{
	{"Latin", "Han", "Hiragana", "Katakana"},
	{"Latin", "Han", "Bopomofo"},
	{"Latin", "Han", "Hangul"},
}

// script names the script of r, or "" for Common, Inherited and unknown.
func script(r rune) string {
	for name, table := range unicode.Scripts {
		if name == "Common" || name == "Inherited" {
			continue
		}
		if unicode.Is(table, r) {
			return name
		}
	}
	return ""
}

func subset(set map[string]bool, of []string) bool {
	n := 0
	for _, name := range of {
		if set[name] {
			n++
		}
	}
	return n == len(set)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
