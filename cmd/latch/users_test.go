package main

import (
	"crypto/sha256"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/sqlite"
)

func TestUserLifecycleCommands(t *testing.T) {
	dir := newDeployment(t, nil)
	d := []string{"--data-dir", dir}
	cmd := func(args ...string) (string, string, error) {
		t.Helper()
		return run(t, "", nil, append(args, d...)...)
	}

	out, _, err := cmd("user", "list")
	if err != nil || !strings.Contains(out, "ID") || !strings.Contains(out, "VERIFIED") {
		t.Fatalf("user list: %q %v", out, err)
	}
	row := lineWith(out, "first@example.com")
	f := strings.Fields(row)
	if len(f) < 4 || !strings.HasPrefix(f[0], "u_") || f[2] != "no" || f[3] != "no" {
		t.Fatalf("user list row %q: want id, email, verified no, locked no", row)
	}
	id := f[0]

	out, _, err = cmd("user", "show", "First@Example.com")
	if err != nil || !strings.Contains(out, id) || !strings.Contains(out, "live sessions:  0") || !strings.Contains(out, "last sign-in:   never") {
		t.Fatalf("user show: %q %v", out, err)
	}

	// Errors name the argument or the flag.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"user", "show"}, "ID|EMAIL"},
		{[]string{"user", "show", "nobody@example.com"}, `ID|EMAIL "nobody@example.com": no such user`},
		{[]string{"user", "lock", "u_nobody"}, `ID|EMAIL "u_nobody": no such user`},
		{[]string{"user", "lock", id, "--reason", "whim"}, "--reason"},
		{[]string{"user", "delete", id}, "--yes"},
		{[]string{"user", "list", "--limit", "-1"}, "--limit"},
	} {
		if _, _, err := cmd(tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one naming %q", tc.args, err, tc.want)
		}
	}

	if out, _, err = cmd("user", "lock", id); err != nil || !strings.Contains(out, "locked user "+id) {
		t.Fatalf("user lock: %q %v", out, err)
	}
	out, _, _ = cmd("user", "show", id)
	if !strings.Contains(out, "locked:         yes") || !strings.Contains(out, "reason: admin") {
		t.Fatalf("user show after lock: %q", out)
	}
	if out, _, _ = cmd("user", "list"); !strings.Contains(lineWith(out, id), "yes (admin)") {
		t.Fatalf("user list after lock: %q", out)
	}
	if out, _, err = cmd("user", "unlock", "first@example.com"); err != nil || !strings.Contains(out, "unlocked") {
		t.Fatalf("user unlock: %q %v", out, err)
	}
	if out, _, _ = cmd("user", "show", id); !strings.Contains(out, "locked:         no") {
		t.Fatalf("user show after unlock: %q", out)
	}

	// reset-link: a link on the issuer whose token the store knows as a
	// reset token, valid 30 minutes.
	out, stderr, err := cmd("user", "reset-link", id)
	if err != nil {
		t.Fatalf("user reset-link: %v", err)
	}
	link := strings.TrimSpace(out)
	_, token, ok := strings.Cut(link, "/reset#token=")
	if !ok || !strings.HasPrefix(link, "http") || !strings.HasPrefix(token, "latch_pr_") || !strings.Contains(stderr, "30m") {
		t.Fatalf("user reset-link: %q (stderr %q)", out, stderr)
	}
	st, err := sqlite.Open(t.Context(), filepath.Join(dir, "latch.db"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(token))
	tok, err := st.ConsumeAccountToken(t.Context(), sum[:], latch.PurposeResetPassword, time.Now())
	if err != nil || tok.UserID != id || tok.ExpiresAt.Sub(tok.CreatedAt) != 30*time.Minute {
		t.Fatalf("the printed link's token: %+v, %v", tok, err)
	}
	st.Close()

	if out, _, err = cmd("user", "delete", id, "--yes"); err != nil || !strings.Contains(out, "deleted user "+id) {
		t.Fatalf("user delete: %q %v", out, err)
	}
	if out, _, _ = cmd("user", "list"); strings.Contains(out, id) {
		t.Fatalf("user list after delete: %q", out)
	}
	if _, _, err = cmd("user", "show", id); err == nil || !strings.Contains(err.Error(), "no such user") {
		t.Fatalf("user show after delete: %v", err)
	}
}

// lineWith returns the first line of out containing s, or "".
func lineWith(out, s string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, s) {
			return l
		}
	}
	return ""
}
