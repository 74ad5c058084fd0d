package password_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/latchauth/latch/password"
)

func TestCheck(t *testing.T) {
	cases := []struct {
		name, pw, email string
		code            string // "" when accepted
	}{
		{"7 characters", "abcdefg", "a@example.com", "too_short"},
		{"8 characters", "abcdefgh", "a@example.com", ""},
		{"256 characters", strings.Repeat("a", 256), "a@example.com", ""},
		{"257 characters", strings.Repeat("a", 257), "a@example.com", "too_long"},
		{"8 multibyte characters (24 bytes)", strings.Repeat("\u20ac", 8), "", ""},
		{"7 multibyte characters (28 bytes)", strings.Repeat("\U0001F511", 7), "", "too_short"},
		{"256 multibyte characters (1024 bytes)", strings.Repeat("\U0001F511", 256), "", ""},
		{"257 multibyte characters", strings.Repeat("\u00e9", 257), "", "too_long"},
		{"equals email, other case", "Alice@Example.COM", "alice@example.com", "equals_email"},
		{"equals email, spaces around", "  alice@example.com ", "alice@example.com", "equals_email"},
		{"contains email", "alice@example.com!", "alice@example.com", ""},
		{"empty email", "abcdefgh", "", ""},
		{"invalid UTF-8", "abcdefg\xff", "", "invalid_utf8"},
		{"invalid UTF-8, long enough", "abcdefgh\xc3", "", "invalid_utf8"},
		{"spaces only", strings.Repeat(" ", 10), "", "whitespace_only"},
		{"mixed whitespace only", " \t\n\u00a0\u2003   ", "", "whitespace_only"},
		{"spaces kept inside", "  pass phrase  ", "", ""},
		{"empty", "", "", "too_short"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := password.Check(c.pw, c.email)
			if c.code == "" {
				if err != nil {
					t.Fatalf("Check = %v, want nil", err)
				}
				return
			}
			var pe *password.PolicyError
			if !errors.As(err, &pe) {
				t.Fatalf("Check = %v (%T), want *PolicyError", err, err)
			}
			if pe.Code != c.code {
				t.Errorf("Code = %q, want %q (message %q)", pe.Code, c.code, pe.Message)
			}
			if pe.Message == "" || err.Error() != pe.Message {
				t.Errorf("Error() = %q, Message = %q", err.Error(), pe.Message)
			}
			if p := strings.TrimSpace(c.pw); len(p) >= 4 && strings.Contains(pe.Message, p) {
				t.Errorf("message %q contains the password", pe.Message)
			}
		})
	}
	var pe *password.PolicyError
	if errors.As(password.Check("short", ""), &pe); pe.Message != "password must be at least 8 characters" {
		t.Errorf("message = %q", pe.Message)
	}
}
