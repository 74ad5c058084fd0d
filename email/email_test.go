package email

import (
	"errors"
	"strings"
	"testing"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// cases are the look-alikes and the classic ones: each row gives
// the stored form, or the kind of error.
var cases = []struct {
	name, in, want string
	err            error
}{
	// Mapped: the same identifier as the canonical form.
	{"plain", "kate@example.com", "kate@example.com", nil},
	{"upper case and spaces", "  Kate@Example.COM\t", "kate@example.com", nil},
	{"Kelvin sign is K", "\u212Aate@example.com", "kate@example.com", nil},
	{"full-width letters", "ｋａｔｅ@ｅｘａｍｐｌｅ．ｃｏｍ", "kate@example.com", nil},
	{"full-width at sign", "kate＠example.com", "", ErrSyntax},
	{"NFC é", "ren\u00e9@example.com", "ren\u00e9@example.com", nil},
	{"NFD é is NFC é", "rene\u0301@example.com", "ren\u00e9@example.com", nil},
	{"ß stays ß", "stra\u00dfe@example.com", "stra\u00dfe@example.com", nil},
	{"capital ẞ is ß", "STRA\u1E9EE@example.com", "stra\u00dfe@example.com", nil},
	{"SS is ss, not ß", "STRASSE@example.com", "strasse@example.com", nil},
	{"Greek capitals", "ΣΟΦΙΑ@example.com", "σοφια@example.com", nil},
	{"plus and dots", "Kate.Smith+tag@example.com", "kate.smith+tag@example.com", nil},
	{"IDN domain", "kate@B\u00dcCHER.de", "kate@b\u00fccher.de", nil},
	{"punycode domain is U-label", "kate@xn--bcher-kva.de", "kate@b\u00fccher.de", nil},
	{"ß in the domain kept", "kate@stra\u00dfe.de", "kate@stra\u00dfe.de", nil},
	{"Japanese with Latin", "tanaka東京@example.jp", "tanaka東京@example.jp", nil},
	{"Cyrillic name", "ж\u0443ков@example.ru", "ж\u0443ков@example.ru", nil},

	// Refused: invisible characters.
	{"zero-width space", "ka\u200Bte@example.com", "", ErrInvisible},
	{"soft hyphen", "ka\u00ADte@example.com", "", ErrInvisible},
	{"right-to-left override", "\u202Eetak@example.com", "", ErrInvisible},
	{"zero-width joiner", "ka\u200Dte@example.com", "", ErrInvisible},
	{"byte order mark", "\uFEFFkate@example.com", "", ErrInvisible},
	{"variation selector", "kate\uFE0F@example.com", "", ErrInvisible},
	{"Hangul filler", "kate\u3164@example.com", "", ErrInvisible},
	{"zero-width space in the domain", "kate@exam\u200Bple.com", "", ErrInvisible},
	{"soft hyphen in the domain", "kate@exa\u00ADmple.com", "", ErrInvisible},
	{"NUL", "ka\x00te@example.com", "", ErrInvisible},
	{"no-break space", "ka\u00A0te@example.com", "", ErrInvisible},
	{"inner space", "ka te@example.com", "", ErrInvisible},
	{"private use", "ka\uE000te@example.com", "", ErrInvisible},
	{"unassigned", "ka\U000E0080te@example.com", "", ErrInvisible},
	{"invalid UTF-8", "ka\xffte@example.com", "", ErrSyntax},

	// Refused: look-alikes and compatibility characters.
	{"Turkish dotless i", "k\u0131te@example.com", "", ErrConfusable},
	{"Turkish dotted capital I", "K\u0130TE@example.com", "", ErrConfusable},
	{"i with a combining dot", "ki\u0307te@example.com", "", ErrConfusable},
	{"all-Cyrillic look-alike", "\u0430\u0441\u0435@example.com", "", ErrConfusable},
	{"all-Greek look-alike", "\u03c3\u03b1\u03c3@example.com", "", ErrConfusable},
	{"Cyrillic a in Latin", "k\u0430te@example.com", "", ErrMixedScript},
	{"Greek omicron in Latin", "b\u03bfb@example.com", "", ErrMixedScript},
	{"doubled combining mark", "re\u0301\u0301ne@example.com", "", ErrConfusable},
	{"combining low line on a", "ka\u0332te@example.com", "", ErrConfusable},
	{"combining ypogegrammeni on a", "ka\u0345te@example.com", "", ErrConfusable},
	{"combining overlay on t", "kat\u0338e@example.com", "", ErrConfusable},
	{"combining mark on a digit", "kate1\u0332@example.com", "", ErrConfusable},
	{"combining mark after a composed letter", "k\u00e5\u0332te@example.com", "", ErrConfusable},
	{"combining low line in the domain", "kate@exa\u0332mple.com", "", ErrConfusable},
	{"Vietnamese stacked marks compose", "nguye\u0302\u0303n@example.vn", "nguy\u1ec5n@example.vn", nil},
	{"Devanagari vowel signs stay", "\u0915\u093f\u0930\u0923@example.in", "\u0915\u093f\u0930\u0923@example.in", nil},
	{"Cyrillic a in the domain", "kate@ex\u0430mple.com", "", ErrMixedScript},
	{"ligature fi", "\uFB01sh@example.com", "", ErrDisallowed},
	{"superscript two", "kate\u00B2@example.com", "", ErrDisallowed},
	{"circled letter", "\u24DAate@example.com", "", ErrDisallowed},
	{"emoji", "kate\U0001F600@example.com", "", ErrDisallowed},

	// Refused: syntax.
	{"no at", "kate.example.com", "", ErrSyntax},
	{"two ats", "kate@x@example.com", "", ErrSyntax},
	{"empty local", "@example.com", "", ErrSyntax},
	{"quote", `"kate"@example.com`, "", ErrSyntax},
	{"leading dot", ".kate@example.com", "", ErrSyntax},
	{"double dot", "ka..te@example.com", "", ErrSyntax},
	{"local part too long", strings.Repeat("k", 65) + "@example.com", "", ErrSyntax},
	{"input too long", strings.Repeat("k", 2000) + "@example.com", "", ErrSyntax},
	{"single-label domain", "kate@localhost", "", ErrDomain},
	{"empty domain", "kate@", "", ErrDomain},
	{"empty label", "kate@example..com", "", ErrDomain},
	{"trailing dot (DNS root)", "kate@example.com.", "", ErrDomain},
	{"trailing ideographic full stop", "kate@example.com\u3002", "", ErrDomain},
	{"trailing full-width full stop", "kate@example.com\uFF0E", "", ErrDomain},
	{"underscore in domain", "kate@ex_ample.com", "", ErrDomain},
	{"leading hyphen label", "kate@-example.com", "", ErrDomain},
	{"bad punycode", "kate@xn--abc.com", "", ErrDomain},
	{"IP literal", "kate@[192.0.2.1]", "", ErrDomain},
}

func TestNormalize(t *testing.T) {
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Normalize(tt.in)
			if tt.err != nil {
				if !errors.Is(err, tt.err) || !errors.Is(err, ErrInvalid) {
					t.Fatalf("Normalize(%+q) = %q, %v; want %v", tt.in, got, err, tt.err)
				}
				if got != "" {
					t.Errorf("Normalize(%+q) returned %q with its error", tt.in, got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Normalize(%+q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
			if err := Validate(got); err != nil {
				t.Errorf("Validate(%+q) = %v, want nil", got, err)
			}
		})
	}
}

// TestOneAccount: every spelling of kate's address is one identifier.
func TestOneAccount(t *testing.T) {
	spellings := []string{"kate@example.com", "KATE@EXAMPLE.COM", "\u212Aate@example.com",
		"ｋａｔｅ@example.com", "kate@ＥＸＡＭＰＬＥ.com", " kate@example.com "}
	for _, s := range spellings {
		if got, err := Normalize(s); err != nil || got != "kate@example.com" {
			t.Errorf("Normalize(%+q) = %q, %v; want kate@example.com", s, got, err)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, tt := range []struct {
		in  string
		err error
	}{
		{"kate@example.com", nil},
		{"ren\u00e9@b\u00fccher.de", nil},
		{"Kate@example.com", ErrNotCanonical},
		{"rene\u0301@example.com", ErrNotCanonical},
		{"kate@xn--bcher-kva.de", ErrNotCanonical},
		{" kate@example.com", ErrNotCanonical},
		{"ka\u200Bte@example.com", ErrInvisible},
	} {
		err := Validate(tt.in)
		if tt.err == nil && err != nil || tt.err != nil && (!errors.Is(err, tt.err) || !errors.Is(err, ErrInvalid)) {
			t.Errorf("Validate(%+q) = %v, want %v", tt.in, err, tt.err)
		}
	}
}

// FuzzNormalize: the canonical form is a fixed point, NFC and NFKC
// stable, visible, and within the limits.
func FuzzNormalize(f *testing.F) {
	for _, tt := range cases {
		f.Add(tt.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := Normalize(in)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Normalize(%+q): error %v does not match ErrInvalid", in, err)
			}
			return
		}
		if again, err := Normalize(out); err != nil || again != out {
			t.Fatalf("Normalize(%+q) = %+q, but Normalize of that = %+q, %v", in, out, again, err)
		}
		local := out[:strings.LastIndexByte(out, '@')]
		if !norm.NFKC.IsNormalString(local) || !norm.NFC.IsNormalString(out) {
			t.Fatalf("Normalize(%+q) = %+q is not normalised", in, out)
		}
		if len(out) > MaxBytes || len(local) > MaxLocalBytes {
			t.Fatalf("Normalize(%+q) = %+q is too long", in, out)
		}
		for _, r := range out {
			if unicode.In(r, unicode.C, unicode.Other_Default_Ignorable_Code_Point) || unicode.IsSpace(r) {
				t.Fatalf("Normalize(%+q) = %+q holds U+%04X", in, out, r)
			}
		}
	})
}

func BenchmarkNormalize(b *testing.B) {
	for _, in := range []string{"Kate.Smith+tag@Example.com", "ren\u00e9.m\u00fcller@b\u00fccher.de"} {
		b.Run(map[bool]string{true: "ascii", false: "unicode"}[isASCII(in)], func(b *testing.B) {
			for b.Loop() {
				if _, err := Normalize(in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
