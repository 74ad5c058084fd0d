package instance_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latchauth/latch/config"
)

// TestLegacyEmailsAtStart: users stored before the identifier rules, in
// NFD and in full-width letters, are canonical once an instance has
// started, and sign in however the address is spelled; two accounts that
// are one identifier stay exactly as they were, and the start-up log names
// both.
func TestLegacyEmailsAtStart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "latch-data")
	first := start(t, dir, nil)
	ids := map[string]string{}
	for _, addr := range []string{"ren\u00e9@example.com", "kate@example.com", "zoe@example.com", "zed@example.com"} {
		ids[addr] = first.addUser(addr, adaPass)
	}
	st := first.in.Store
	ctx := context.Background()
	at := time.Now().UTC().Truncate(time.Microsecond)
	// What older releases stored: lower-cased and trimmed, nothing more.
	legacy := map[string]string{
		"ren\u00e9@example.com": "rene\u0301@example.com",
		"kate@example.com":      "ｋａｔｅ@example.com",
		"zed@example.com":       "ｚｏｅ@example.com", // one identifier with zoe's
	}
	for canonical, old := range legacy {
		if err := st.SetEmail(ctx, ids[canonical], canonical, old, at); err != nil {
			t.Fatal(err)
		}
	}
	first.close()

	h := start(t, dir, nil)
	for canonical, want := range map[string]string{
		"ren\u00e9@example.com": "ren\u00e9@example.com",
		"kate@example.com":      "kate@example.com",
		"zed@example.com":       "ｚｏｅ@example.com",
		"zoe@example.com":       "zoe@example.com",
	} {
		u, err := h.in.Store.UserByID(ctx, ids[canonical])
		if err != nil || u.Email != want {
			t.Errorf("user %s after start: %+v, %v; want email %+q", ids[canonical], u, err, want)
		}
	}
	for _, spelling := range []string{"rene\u0301@example.com", "REN\u00c9@example.com", "ｋａｔｅ@example.com", "\u212Aate@example.com"} {
		r := h.login(spelling, adaPass)
		if r.code != 200 {
			t.Errorf("login as %+q: %d %s", spelling, r.code, r.raw)
		}
	}
	logs := h.logs.String()
	if !strings.Contains(logs, ids["zed@example.com"]) || !strings.Contains(logs, ids["zoe@example.com"]) {
		t.Errorf("start-up log does not name both colliding users %s and %s:\n%s", ids["zed@example.com"], ids["zoe@example.com"], logs)
	}
}

// TestRegisterSaysWhyAnEmailIsRefused: the 400 names the rule, so a person
// can see the character they did not know they typed.
func TestRegisterSaysWhyAnEmailIsRefused(t *testing.T) {
	h := start(t, "", func(c *config.Config) { c.Registration = true })
	for addr, why := range map[string]string{
		"ka\u200bte@example.com": "invisible character: U+200B",
		"k\u0430te@example.com":  "mixed scripts",
		"k\u0131te@example.com":  "confusable characters",
		"kate@exa_mple.com":      "invalid domain",
		"\ufb01sh@example.com":   "disallowed character",
	} {
		r := h.do("POST", "/v1/auth/register", jsonBody(map[string]string{"email": addr, "password": adaPass}))
		expect(t, addr, r, 400, "invalid_request")
		if d := r.str("error_description"); !strings.Contains(d, why) {
			t.Errorf("register %+q: description %q does not say %q", addr, d, why)
		}
	}
}
