package verifier

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"unicode"
)

// manyNames returns a claims object holding objects of maxMembers distinct
// names, each prefix followed by two letters: the input that made the
// duplicate check compare every pair of names.
func manyNames(prefix string) []byte {
	var sb strings.Builder
	sb.WriteString(`{"x":[`)
	for sb.Len() < 5000 {
		sb.WriteString(`{`)
		for c := 0; c < maxMembers; c++ {
			if c > 0 {
				sb.WriteByte(',')
			}
			fmt.Fprintf(&sb, `"%s%c%c":0`, prefix, 'A'+c/26, 'a'+c%26)
		}
		sb.WriteString(`},`)
	}
	sb.WriteString(`0]}`)
	return []byte(sb.String())
}

// countFolds makes equalFold count its calls for the rest of the test.
func countFolds(t *testing.T) *int {
	n := new(int)
	equalFold = func(a, b []byte) bool { *n++; return bytes.EqualFold(a, b) }
	t.Cleanup(func() { equalFold = bytes.EqualFold })
	return n
}

// TestScanDuplicatesLinear: the duplicate-name check compares two names in
// full only when their fold hashes match, so distinct names cost no
// comparison at all, and an attacker's unsigned token of many long
// non-ASCII names costs a linear scan instead of 64²/2 Unicode comparisons
// per object (ten Ed25519 checks per token). Duplicates are still found,
// as bytes.EqualFold (and so encoding/json) matches them.
func TestScanDuplicatesLinear(t *testing.T) {
	calls := countFolds(t)
	var m [maxMembers]member
	for _, prefix := range []string{"", "a", strings.Repeat("é", 16), strings.Repeat("\u212a", 8)} {
		*calls = 0
		if _, code := scanTop(manyNames(prefix), &m); code != scanOK {
			t.Fatalf("prefix %q: %d", prefix, code)
		}
		if *calls > 2 {
			t.Errorf("prefix %q: %d full comparisons of distinct names", prefix, *calls)
		}
	}
	for _, pair := range [][2]string{
		{"kid", "KID"}, {"kid", "\u212aid"}, {"sub", "\u017fub"}, {"éa", "Éa"}, {"θ", "ϑ"}, {"σ", "ς"}, {"Σ", "ς"},
	} {
		in := fmt.Sprintf(`{"x":1,"%s":1,"y":{"%s":1,"%s":2}}`, pair[0], pair[0], pair[1])
		if _, code := scanTop([]byte(in), &m); code != scanDup {
			t.Errorf("%q and %q: %d, want scanDup", pair[0], pair[1], code)
		}
	}
	for _, pair := range [][2]string{{"ka", "kb"}, {"é", "è"}, {"İ", "i"}, {"ß", "ss"}} {
		in := fmt.Sprintf(`{"%s":1,"%s":2}`, pair[0], pair[1])
		if _, code := scanTop([]byte(in), &m); code != scanOK {
			t.Errorf("%q and %q: %d, want scanOK", pair[0], pair[1], code)
		}
	}
}

// TestFoldHash: every rune hashes like every member of its case-folding
// orbit, so foldHash never separates names bytes.EqualFold matches.
func TestFoldHash(t *testing.T) {
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if r >= 0xD800 && r <= 0xDFFF {
			continue
		}
		a := foldHash([]byte(string(r)))
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if foldHash([]byte(string(f))) != a {
				t.Fatalf("%U and %U fold to each other but hash apart", r, f)
			}
		}
	}
}
