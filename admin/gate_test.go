package admin

import (
	"crypto/hmac"
	"crypto/sha256"
	"strconv"
	"strings"
	"testing"
	"time"
)

func testMAC(purpose string, msg []byte) []byte {
	m := hmac.New(sha256.New, []byte("test key "+purpose))
	m.Write(msg)
	return m.Sum(nil)
}

// TestReauthProof: a proof holds for its session within ReauthWindow
// only; a forged, altered, malformed, future or other session's proof
// does not.
func TestReauthProof(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	g := NewGate(nil, nil, testMAC, 0, func() time.Time { return now })
	at := strconv.FormatInt(now.Unix(), 10)
	proof := g.proofFor(at, "s_1")
	if !g.Reauthenticated("s_1", proof) {
		t.Fatal("a fresh proof of the session is refused")
	}
	for name, c := range map[string]struct{ sid, proof string }{
		"another session": {"s_2", proof},
		"no session":      {"", proof},
		"empty":           {"s_1", ""},
		"no dot":          {"s_1", at},
		"altered time":    {"s_1", strconv.FormatInt(now.Unix()-1, 10) + proof[len(at):]},
		"bad base64":      {"s_1", at + ".!!!!"},
		"long time":       {"s_1", strings.Repeat("1", 21) + proof[len(at):]},
		"forged":          {"s_1", at + "." + strings.Repeat("A", 43)},
		"future":          {"s_1", g.proofFor(strconv.FormatInt(now.Add(time.Minute).Unix(), 10), "s_1")},
	} {
		if g.Reauthenticated(c.sid, c.proof) {
			t.Errorf("%s: accepted", name)
		}
	}
	now = now.Add(ReauthWindow + time.Second)
	if g.Reauthenticated("s_1", proof) {
		t.Error("a proof older than ReauthWindow is accepted")
	}
	if g.SessionTTL() != DefaultSessionTTL {
		t.Errorf("SessionTTL() = %v, want the default", g.SessionTTL())
	}
}
