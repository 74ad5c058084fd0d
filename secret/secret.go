// Package secret makes and judges secrets. It makes the one-time tokens
// Latch hands out (email links, setup tokens: NewToken, stored only as
// HashToken), and judges secrets that people choose (client secrets
// brought with --secret-stdin, the metrics token): it estimates their
// entropy from the secret alone, on the low side, so that patterned or
// repeated strings are refused however long they are.
package secret

import (
	"math"
	"unicode"
)

// MinBits is the least estimated entropy, in bits, of a secret an operator
// chooses for a machine credential.
const MinBits = 128

// Bits estimates the entropy of a secret, in bits, from the secret
// alone and on the low side: the lesser of
//
//   - its length times the Shannon entropy of its own character
//     frequencies, so that few distinct characters or a repeated block
//     (aaaa…, abab…, password1password1…) score low, and
//   - the number of its characters that do not continue a run or an
//     arithmetic sequence of the two before (aaa, abc, 987, 1357), nor
//     repeat a stretch of three or more seen before (a repeat counts
//     once), times log2 of the size of the character classes it uses.
//
// A secret of 32 random bytes in hex or base64 scores well over 128; 32
// random hex digits (exactly 128 bits) may score a little under, and is
// refused as too close to call.
func Bits(s string) float64 {
	rs := []rune(s)
	if len(rs) == 0 {
		return 0
	}
	counts := map[rune]int{}
	var lower, upper, digit, punct, other bool
	for _, r := range rs {
		counts[r]++
		switch {
		case 'a' <= r && r <= 'z':
			lower = true
		case 'A' <= r && r <= 'Z':
			upper = true
		case '0' <= r && r <= '9':
			digit = true
		case r < unicode.MaxASCII && unicode.IsPrint(r):
			punct = true
		default:
			other = true
		}
	}
	n := float64(len(rs))
	var h float64
	for _, c := range counts {
		p := float64(c) / n
		h -= p * math.Log2(p)
	}
	alphabet := 0
	for _, c := range []struct {
		used bool
		size int
	}{{lower, 26}, {upper, 26}, {digit, 10}, {punct, 33}, {other, 100}} {
		if c.used {
			alphabet += c.size
		}
	}
	free := 0
	for i := 0; i < len(rs); {
		if k := repeated(rs, i); k >= minRepeat {
			free++ // a copy of what came before: one choice, where from
			i += k
			continue
		}
		if i < 2 || rs[i]-rs[i-1] != rs[i-1]-rs[i-2] {
			free++
		}
		i++
	}
	return min(h*n, float64(free)*math.Log2(float64(alphabet)))
}

// minRepeat is the shortest copy of an earlier stretch that secretBits
// counts as one choice; repeatWindow is how far back it looks for one.
const (
	minRepeat    = 3
	repeatWindow = 256
)

// repeated is the length of the longest stretch at rs[i:] that also starts
// at an earlier position (within repeatWindow), as LZ77 would copy it:
// "password1password1" is "password1" and one copy, not 18 characters.
func repeated(rs []rune, i int) int {
	best := 0
	for j := max(0, i-repeatWindow); j < i; j++ {
		k := 0
		for i+k < len(rs) && rs[j+k] == rs[i+k] {
			k++
		}
		best = max(best, k)
	}
	return best
}
