package auth

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/sqlite"
)

// TestCanonicalizeEmails: rows stored before the rules (NFD, full-width,
// an A-label domain) become canonical; rows that would collide, with a
// canonical row or with each other, stay exactly as they were and are
// reported by id; a refused email is reported; a second run changes
// nothing.
func TestCanonicalizeEmails(t *testing.T) {
	defer func(n int) { emailPage = n }(emailPage)
	emailPage = 3 // cross pages, and end on a full one
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "latch.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	rows := map[string]string{
		"u-ok":    "ok@example.com",
		"u-nfd":   "rene\u0301@example.com",
		"u-wide":  "ｋａｔｅ@example.com",
		"u-alab":  "ann@xn--bcher-kva.de",
		"u-zoe":   "zoe@example.com",
		"u-zoe2":  "ｚｏｅ@example.com",
		"u-max1":  "ｍａｘ@example.com",
		"u-max2":  "ｍax@example.com",
		"u-zwsp":  "ka\u200bte@example.com",
		"u-upper": "Upper@example.com",
	}
	for id, addr := range rows {
		if err := st.CreateUser(ctx, &latch.User{ID: id, Email: addr, PasswordHash: "h", CreatedAt: created, UpdatedAt: created}); err != nil {
			t.Fatal(err)
		}
	}
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	at := created.Add(time.Hour)
	rep, err := CanonicalizeEmails(ctx, st, log, at)
	if err != nil {
		t.Fatal(err)
	}

	want := map[string]string{
		"u-ok":    "ok@example.com",
		"u-nfd":   "ren\u00e9@example.com",
		"u-wide":  "kate@example.com",
		"u-alab":  "ann@b\u00fccher.de",
		"u-zoe":   "zoe@example.com",
		"u-zoe2":  "ｚｏｅ@example.com",
		"u-max1":  "ｍａｘ@example.com",
		"u-max2":  "ｍax@example.com",
		"u-zwsp":  "ka\u200bte@example.com",
		"u-upper": "upper@example.com",
	}
	for id, addr := range want {
		u, err := st.UserByID(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		changed := addr != rows[id]
		if u.Email != addr || changed && !u.UpdatedAt.Equal(at) || !changed && !u.UpdatedAt.Equal(created) {
			t.Errorf("%s: email %+q updated %v; want %+q (changed: %v)", id, u.Email, u.UpdatedAt, addr, changed)
		}
	}
	if w := []string{"u-alab", "u-upper", "u-nfd", "u-wide"}; !sameSet(rep.Rewritten, w) {
		t.Errorf("rewritten %v, want %v", rep.Rewritten, w)
	}
	if w := [][]string{{"u-max1", "u-max2"}, {"u-zoe", "u-zoe2"}}; !slices.EqualFunc(rep.Collisions, w, slices.Equal) {
		t.Errorf("collisions %v, want %v", rep.Collisions, w)
	}
	if w := []string{"u-zwsp"}; !slices.Equal(rep.Invalid, w) {
		t.Errorf("invalid %v, want %v", rep.Invalid, w)
	}
	out := logs.String()
	for _, s := range []string{"u-zoe", "u-zoe2", "u-max1", "u-max2", "u-zwsp"} {
		if !strings.Contains(out, s) {
			t.Errorf("log does not name %s:\n%s", s, out)
		}
	}
	for _, addr := range rows {
		if strings.Contains(out, addr) || strings.Contains(out, strings.Split(addr, "@")[0]+"@") {
			t.Errorf("log names the address %+q:\n%s", addr, out)
		}
	}

	again, err := CanonicalizeEmails(ctx, st, slog.New(slog.DiscardHandler), at.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Rewritten) != 0 || len(again.Collisions) != 2 || len(again.Invalid) != 1 {
		t.Errorf("second run: %+v, want no rewrite and the same two collisions and one invalid", again)
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b))
	return slices.Equal(a, b)
}
