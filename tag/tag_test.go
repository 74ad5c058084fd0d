package tag_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"strings"
	"testing"

	"github.com/latchauth/latch/tag"
)

func mac(key string) tag.MAC {
	return func(purpose string, msg []byte) []byte {
		h := hmac.New(sha256.New, []byte(key+"\x00"+purpose))
		h.Write(msg)
		return h.Sum(nil)
	}
}

// TestSignOpen: a signed value opens to its id under its key and purpose
// only; a changed id or tag, another purpose, another key, an oversized
// id or tag and malformed values are refused.
func TestSignOpen(t *testing.T) {
	m := mac("k1")
	v := tag.Sign(m, "cookie v1", "abc123")
	if id, ok := tag.Open(m, "cookie v1", v, 26); !ok || id != "abc123" {
		t.Fatalf("Open(Sign) = %q, %v", id, ok)
	}
	id, tg, _ := strings.Cut(v, ".")
	for name, bad := range map[string]struct {
		m       tag.MAC
		purpose string
		value   string
		max     int
	}{
		"another id":      {m, "cookie v1", "abc124." + tg, 26},
		"another tag":     {m, "cookie v1", id + "." + strings.Repeat("A", len(tg)), 26},
		"another purpose": {m, "cookie v2", v, 26},
		"another key":     {mac("k2"), "cookie v1", v, 26},
		"id too long":     {m, "cookie v1", v, 5},
		"no dot":          {m, "cookie v1", id + tg, 26},
		"empty id":        {m, "cookie v1", "." + tg, 26},
		"padded tag":      {m, "cookie v1", v + "=", 26},
		"oversized tag":   {m, "cookie v1", id + "." + strings.Repeat("A", 200), 26},
		"empty":           {m, "cookie v1", "", 26},
	} {
		if got, ok := tag.Open(bad.m, bad.purpose, bad.value, bad.max); ok {
			t.Errorf("%s: Open accepted %q (id %q)", name, bad.value, got)
		}
	}
}

// TestMakeCheck: a form token checks for its message and purpose only.
func TestMakeCheck(t *testing.T) {
	m := mac("k1")
	tok := tag.Make(m, "form v1", []byte("link-token"))
	if !tag.Check(m, "form v1", []byte("link-token"), tok) {
		t.Fatal("Check refused Make's tag")
	}
	if tag.Check(m, "form v1", []byte("other-token"), tok) || tag.Check(m, "form v2", []byte("link-token"), tok) ||
		tag.Check(m, "form v1", []byte("link-token"), "") || tag.Check(m, "form v1", []byte("link-token"), tok+"A") {
		t.Fatal("Check accepted a tag for something else")
	}
}
