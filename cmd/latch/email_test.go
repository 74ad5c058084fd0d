package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestUserAddEmailRules: latch user add stores the canonical form, treats
// another spelling as the same user, and shows an invisible character it
// refuses as an escape.
func TestUserAddEmailRules(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	out, _, err := run(t, "a good password\n", nil, "user", "add", "--data-dir", dir, "--email", "ｋａｔｅ@Example.com", "--password-stdin")
	if err != nil || !strings.Contains(out, "(kate@example.com)") {
		t.Fatalf("user add full-width: %q %v", out, err)
	}
	_, _, err = run(t, "a good password\n", nil, "user", "add", "--data-dir", dir, "--email", "\u212Aate@example.com", "--password-stdin")
	if err == nil || !strings.Contains(err.Error(), "a user with email kate@example.com already exists") {
		t.Fatalf("user add with the Kelvin sign: %v, want kate's account named as existing", err)
	}
	_, _, err = run(t, "a good password\n", nil, "user", "add", "--data-dir", dir, "--email", "ka\u200bte@example.com", "--password-stdin")
	if err == nil || !strings.Contains(err.Error(), `"ka\u200bte@example.com"`) || !strings.Contains(err.Error(), "invisible character") {
		t.Fatalf("user add with a zero-width space: %v, want the address escaped and the rule named", err)
	}
}
