package keys

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func mustKEK(t testing.TB) KEK {
	t.Helper()
	k, err := GenerateKEK()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSealOpen(t *testing.T) {
	k := mustKEK(t)
	pt := []byte("a PKCS #8 private key, say")
	aad := []byte("kid-1")
	sealed := k.Seal(pt, aad)
	if len(sealed) != len(pt)+sealOverhead || sealed[0] != sealVersion {
		t.Fatalf("sealed box: len %d, version %d", len(sealed), sealed[0])
	}
	if bytes.Contains(sealed, pt) {
		t.Fatal("sealed box contains the plaintext")
	}
	got, err := k.Open(sealed, aad)
	if err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("Open = %q, %v; want the plaintext", got, err)
	}
	if again := k.Seal(pt, aad); bytes.Equal(again, sealed) {
		t.Fatal("two seals of the same plaintext are equal: nonce not random")
	}
	if got, err := k.Open(k.Seal(nil, nil), nil); err != nil || len(got) != 0 {
		t.Fatalf("empty round trip: %q, %v", got, err)
	}

	if _, err := k.Open(sealed, []byte("kid-2")); err == nil {
		t.Error("Open with the wrong aad succeeded")
	}
	if _, err := k.Open(sealed, nil); err == nil {
		t.Error("Open with no aad succeeded")
	}
	if _, err := mustKEK(t).Open(sealed, aad); err == nil {
		t.Error("Open with another KEK succeeded")
	}
	for i := range sealed {
		bad := bytes.Clone(sealed)
		bad[i] ^= 0x01
		if _, err := k.Open(bad, aad); err == nil {
			t.Fatalf("Open accepted a box with byte %d altered", i)
		}
	}
	for _, n := range []int{0, 1, sealOverhead - 1, len(sealed) - 1} {
		if _, err := k.Open(sealed[:n], aad); err == nil {
			t.Errorf("Open accepted a box truncated to %d bytes", n)
		}
	}
	if _, err := (KEK{}).Open(sealed, aad); err == nil {
		t.Error("the zero KEK opened a box")
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("Seal with the zero KEK did not panic")
			}
		}()
		(KEK{}).Seal(pt, aad)
	}()
}

func TestDerive(t *testing.T) {
	k := mustKEK(t)
	a, a2, b := k.Derive("refresh successors"), k.Derive("refresh successors"), k.Derive("csrf")
	if a.s.key != a2.s.key {
		t.Fatal("Derive is not deterministic")
	}
	if a.s.key == k.s.key || a.s.key == b.s.key {
		t.Fatal("derived keys are not distinct")
	}
	sealed := a.Seal([]byte("token"), nil)
	if _, err := k.Open(sealed, nil); err == nil {
		t.Error("parent KEK opened a box sealed by a subkey")
	}
	if _, err := b.Open(sealed, nil); err == nil {
		t.Error("a subkey for another purpose opened the box")
	}
	if got, err := a2.Open(sealed, nil); err != nil || string(got) != "token" {
		t.Errorf("same-purpose subkey: %q, %v", got, err)
	}
	if (KEK{}).Derive("x").valid() {
		t.Error("Derive of the zero KEK is usable")
	}
}

func TestParseKEK(t *testing.T) {
	raw := bytes.Repeat([]byte{0xfb, 0xff, 0x3e}, 11)[:32] // has + / - _ in base64
	want, err := newKEK(raw)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{
		base64.StdEncoding.EncodeToString(raw),
		base64.URLEncoding.EncodeToString(raw),
		base64.RawStdEncoding.EncodeToString(raw),
		base64.RawURLEncoding.EncodeToString(raw),
		"  " + base64.StdEncoding.EncodeToString(raw) + "\n",
	} {
		k, err := ParseKEK(s)
		if err != nil {
			t.Errorf("ParseKEK(%q): %v", s, err)
			continue
		}
		if k.s.key != want.s.key {
			t.Errorf("ParseKEK(%q): wrong key", s)
		}
	}
	for _, s := range []string{
		"",
		"not base64 at all!",
		base64.StdEncoding.EncodeToString(raw[:16]),
		base64.StdEncoding.EncodeToString(append(bytes.Clone(raw), 0)),
	} {
		_, err := ParseKEK(s)
		if err == nil {
			t.Errorf("ParseKEK(%q) succeeded", s)
			continue
		}
		if s != "" && strings.Contains(err.Error(), s) {
			t.Errorf("error repeats the value: %v", err)
		}
		if !strings.Contains(err.Error(), "32") {
			t.Errorf("error does not say what is expected: %v", err)
		}
	}
}

func TestLoadKEK(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "kek")

	k1, created, err := LoadKEK("", path)
	if err != nil || !created {
		t.Fatalf("first LoadKEK: created %v, %v", created, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Fatalf("KEK file mode %#o, want 0600", perm)
	}
	k2, created, err := LoadKEK("", path)
	if err != nil || created {
		t.Fatalf("second LoadKEK: created %v, %v", created, err)
	}
	if k1.s.key != k2.s.key {
		t.Fatal("second LoadKEK returned another KEK")
	}
	if _, err := k2.Open(k1.Seal([]byte("x"), nil), nil); err != nil {
		t.Fatal(err)
	}

	// The environment wins and the file is not touched.
	envKEK := mustKEK(t)
	env := base64.StdEncoding.EncodeToString(envKEK.s.key[:])
	other := filepath.Join(dir, "absent")
	k3, created, err := LoadKEK(env, other)
	if err != nil || created || k3.s.key != envKEK.s.key {
		t.Fatalf("LoadKEK(env): created %v, %v", created, err)
	}
	if _, err := os.Stat(other); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("LoadKEK(env) touched the file: %v", err)
	}
	if k4, _, err := LoadKEK(env, path); err != nil || k4.s.key != envKEK.s.key {
		t.Fatalf("env does not override the file: %v", err)
	}

	// A bad environment value is an error naming LATCH_KEK, not the value.
	if _, _, err := LoadKEK("c2hvcnQ=", path); err == nil || !strings.Contains(err.Error(), "LATCH_KEK") || strings.Contains(err.Error(), "c2hvcnQ=") {
		t.Fatalf("bad env: %v", err)
	}

	// A file readable by others is refused.
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err = LoadKEK("", path)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("0644 KEK file: %v", err)
	}
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	if _, _, err = LoadKEK("", path); err == nil {
		t.Fatal("0640 KEK file accepted")
	}

	// A corrupt file is an error, not silently replaced.
	bad := filepath.Join(dir, "bad")
	if err := os.WriteFile(bad, []byte("!!!!not-base64-at-all-but-long-enough-to-parse!!!\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadKEK("", bad); err == nil || !strings.Contains(err.Error(), bad) {
		t.Fatalf("corrupt KEK file: %v", err)
	}
	if _, _, err := LoadKEK("", ""); err == nil {
		t.Fatal("no env and no path accepted")
	}
}

func TestLoadKEKConcurrentCreate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kek")
	const n = 8
	var wg sync.WaitGroup
	keys := make([]KEK, n)
	created := make([]bool, n)
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			keys[i], created[i], errs[i] = LoadKEK("", path)
		})
	}
	close(start)
	wg.Wait()
	creators := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("LoadKEK %d: %v", i, errs[i])
		}
		if created[i] {
			creators++
		}
		if keys[i].s.key != keys[0].s.key {
			t.Fatal("concurrent LoadKEK calls returned different KEKs")
		}
	}
	if creators != 1 {
		t.Fatalf("%d callers created the KEK, want 1", creators)
	}
}

func TestKEKRedacted(t *testing.T) {
	k := mustKEK(t)
	secrets := []string{
		base64.StdEncoding.EncodeToString(k.s.key[:]),
		base64.RawURLEncoding.EncodeToString(k.s.key[:]),
		hex.EncodeToString(k.s.key[:]),
		fmt.Sprint(k.s.key[:4]), // as a decimal byte list
	}
	type holder struct {
		Name string
		K    KEK
		P    *KEK
		k    KEK // fmt does not call methods of unexported fields
	}
	var outs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
		outs = append(outs, fmt.Sprintf(verb, k), fmt.Sprintf(verb, holder{"h", k, &k, k}))
	}
	outs = append(outs, fmt.Sprint(k), fmt.Sprintln(k), k.String(), k.GoString())
	var logBuf bytes.Buffer
	slog.New(slog.NewTextHandler(&logBuf, nil)).Info("kek", "kek", k, "h", holder{"h", k, &k, k})
	slog.New(slog.NewJSONHandler(&logBuf, nil)).Info("kek", "kek", k)
	outs = append(outs, logBuf.String())
	j, err := json.Marshal(holder{"h", k, &k, k})
	if err != nil {
		t.Fatal(err)
	}
	outs = append(outs, string(j))
	for _, out := range outs {
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Fatalf("key material printed: %s", out)
			}
		}
	}
	if got := fmt.Sprintf("%v", k); got != "KEK(redacted)" {
		t.Fatalf("%%v = %q", got)
	}
}

func TestLoadKEKWaitsForConcurrentWriter(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "kek")
	// Another process has created the file but not written it yet.
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	want := mustKEK(t)
	go func() {
		time.Sleep(100 * time.Millisecond)
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err == nil {
			f.WriteString(base64.StdEncoding.EncodeToString(want.s.key[:]) + "\n")
			f.Close()
		}
	}()
	k, created, err := LoadKEK("", path)
	if err != nil || created || k.s.key != want.s.key {
		t.Fatalf("LoadKEK while another process writes: created %v, %v", created, err)
	}

	// A file left empty (a crash during creation) is an error naming it,
	// never silently replaced.
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadKEK("", empty); err == nil || !strings.Contains(err.Error(), empty) {
		t.Fatalf("empty KEK file: %v", err)
	}
}

func TestMAC(t *testing.T) {
	k, err := GenerateKEK()
	if err != nil {
		t.Fatal(err)
	}
	other, _ := GenerateKEK()
	a := k.MAC("csrf", []byte("s_1"))
	if len(a) != 32 || !bytes.Equal(a, k.MAC("csrf", []byte("s_1"))) {
		t.Fatal("MAC is not a deterministic 32-byte HMAC")
	}
	for name, b := range map[string][]byte{
		"other message": k.MAC("csrf", []byte("s_2")),
		"other purpose": k.MAC("other", []byte("s_1")),
		"other KEK":     other.MAC("csrf", []byte("s_1")),
	} {
		if bytes.Equal(a, b) {
			t.Errorf("%s gives the same MAC", name)
		}
	}
}
