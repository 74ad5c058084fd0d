package password_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"

	"github.com/latchauth/latch/password"
)

func newHasher(t testing.TB, p password.Params, maxConcurrent int, maxWait time.Duration) *password.Hasher {
	t.Helper()
	h, err := password.NewHasher(p, maxConcurrent, maxWait)
	if err != nil {
		t.Fatalf("NewHasher: %v", err)
	}
	return h
}

// phcOf builds an argon2id PHC string with x/crypto/argon2 directly,
// independently of the package, for parameters NewHasher would refuse.
func phcOf(pw, salt string, m, t uint32, p uint8, keyLen uint32) string {
	key := argon2.IDKey([]byte(pw), []byte(salt), t, m, p, keyLen)
	return fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s", m, t, p,
		base64.RawStdEncoding.EncodeToString([]byte(salt)), base64.RawStdEncoding.EncodeToString(key))
}

func TestHashVerifyRoundTrip(t *testing.T) {
	ctx := context.Background()
	h := newHasher(t, password.DefaultParams, 0, 0)
	const pw = "correct horse battery staple"
	enc, err := h.Hash(ctx, pw)
	if err != nil {
		t.Fatal(err)
	}
	ok, rehash, err := h.Verify(ctx, pw, enc)
	if !ok || rehash || err != nil {
		t.Fatalf("Verify(right password) = %v, %v, %v; want true, false, nil", ok, rehash, err)
	}
	for _, wrong := range []string{"correct horse battery stapl", "Correct horse battery staple", pw + " ", ""} {
		ok, rehash, err := h.Verify(ctx, wrong, enc)
		if ok || rehash || err != nil {
			t.Errorf("Verify(%q) = %v, %v, %v; want false, false, nil", wrong, ok, rehash, err)
		}
	}
	enc2, err := h.Hash(ctx, pw)
	if err != nil {
		t.Fatal(err)
	}
	if enc2 == enc {
		t.Error("two hashes of the same password are equal: salt is not random")
	}
}

var phcRE = regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$([A-Za-z0-9+/]{22})\$([A-Za-z0-9+/]{43})$`)

// TestHashFormat checks the PHC string and that its hash is argon2id of the
// password under the encoded salt and parameters, as another library would
// compute it.
func TestHashFormat(t *testing.T) {
	h := newHasher(t, password.DefaultParams, 1, 0)
	const pw = "p\u00e4ssw\u00f6rd \U0001F511"
	enc, err := h.Hash(context.Background(), pw)
	if err != nil {
		t.Fatal(err)
	}
	m := phcRE.FindStringSubmatch(enc)
	if m == nil {
		t.Fatalf("Hash = %q, does not match %v", enc, phcRE)
	}
	salt, err := base64.RawStdEncoding.DecodeString(m[1])
	if err != nil {
		t.Fatal(err)
	}
	key, err := base64.RawStdEncoding.DecodeString(m[2])
	if err != nil {
		t.Fatal(err)
	}
	want := argon2.IDKey([]byte(pw), salt, 2, 19456, 1, 32)
	if string(key) != string(want) {
		t.Errorf("hash in PHC string is not argon2id(password, salt, t=2, m=19456, p=1)")
	}
}

// Vectors produced by other implementations: the argon2 reference C library
// (libargon2 20171227, argon2id_hash_encoded) and libxcrypt's bcrypt.
var foreignVectors = []struct {
	name, pw, enc string
	rehash        bool
}{
	{"libargon2 default params", "correct horse battery staple",
		"$argon2id$v=19$m=19456,t=2,p=1$MDEyMzQ1Njc4OWFiY2RlZg$gy5SuVm5Z7Vw7keB9se9p87QGcomaseB/S2U1OhTsM0", false},
	{"libargon2 weaker params, 2 lanes, 24-byte hash", "p\u00e4ssw\u00f6rd-\u00fcn\u00efcode",
		"$argon2id$v=19$m=4096,t=1,p=2$c2FsdHNhbHRzYWx0$ecGhaiAlEO1zSWG1h44b4Yc8TJ/qtHZN", true},
	{"libxcrypt $2b$", "hunter2hunter2", "$2b$05$qCd.bcIpQqRaQB0j.vY0yuhVov2gb.m70F.0Ecs9Wp/Rzzy/r7amW", true},
	{"libxcrypt $2y$", "hunter2hunter2", "$2y$05$iHfvdInotAw.9KWOJ4cel.h9JYAk.lC0RKzwGJqIsP9Uj9M4I3c1i", true},
	{"libxcrypt $2a$", "hunter2hunter2", "$2a$05$dMPA.4pKgi4n4LfOFY6rWutma9Auo0HrDOYH1YqQnWJc6mt1Y0AcO", true},
	{"libxcrypt bcrypt over 72 bytes", strings.Repeat("x", 72) + "tail-that-bcrypt-ignores",
		"$2b$04$2hsPKUNXDrc25W8W6XfiwuJWBjeyiE1gXCKobNnTgvzqP3G6y9e.e", true},
}

func TestForeignVectors(t *testing.T) {
	ctx := context.Background()
	h := newHasher(t, password.DefaultParams, 0, 0)
	for _, v := range foreignVectors {
		t.Run(v.name, func(t *testing.T) {
			ok, rehash, err := h.Verify(ctx, v.pw, v.enc)
			if !ok || rehash != v.rehash || err != nil {
				t.Errorf("Verify(right) = %v, %v, %v; want true, %v, nil", ok, rehash, err, v.rehash)
			}
			ok, rehash, err = h.Verify(ctx, v.pw[1:], v.enc)
			if ok || rehash || err != nil {
				t.Errorf("Verify(wrong) = %v, %v, %v; want false, false, nil", ok, rehash, err)
			}
		})
	}
}

func TestRehashWhenParamsDiffer(t *testing.T) {
	ctx := context.Background()
	def := newHasher(t, password.DefaultParams, 0, 0)
	const pw = "rehash me please"

	stronger := password.DefaultParams
	stronger.Time = 3
	enc, err := newHasher(t, stronger, 0, 0).Hash(ctx, pw)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(enc, "$argon2id$v=19$m=19456,t=3,p=1$") {
		t.Fatalf("Hash with Time 3 = %q", enc)
	}
	cases := map[string]string{
		"stronger time":     enc,
		"weaker legacy":     phcOf(pw, "legacy-salt-1234", 8192, 1, 1, 32),
		"different saltlen": phcOf(pw, "a-24-byte-salt-.........", 19456, 2, 1, 32),
		"different keylen":  phcOf(pw, "sixteen-byte-slt", 19456, 2, 1, 64),
		"different lanes":   phcOf(pw, "sixteen-byte-slt", 19456, 2, 2, 32),
	}
	for name, enc := range cases {
		ok, rehash, err := def.Verify(ctx, pw, enc)
		if !ok || !rehash || err != nil {
			t.Errorf("%s: Verify = %v, %v, %v; want true, true, nil", name, ok, rehash, err)
		}
		ok, rehash, err = def.Verify(ctx, pw+"!", enc)
		if ok || rehash || err != nil {
			t.Errorf("%s: Verify(wrong) = %v, %v, %v; want false, false, nil", name, ok, rehash, err)
		}
	}
	same := phcOf(pw, "sixteen-byte-slt", 19456, 2, 1, 32)
	if ok, rehash, err := def.Verify(ctx, pw, same); !ok || rehash || err != nil {
		t.Errorf("same params: Verify = %v, %v, %v; want true, false, nil", ok, rehash, err)
	}
}

func TestBcrypt(t *testing.T) {
	ctx := context.Background()
	h := newHasher(t, password.DefaultParams, 0, 0)
	const pw = "imported-user-password"
	b, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	for _, prefix := range []string{"$2a$", "$2b$", "$2y$"} {
		enc := prefix + string(b[4:])
		ok, rehash, err := h.Verify(ctx, pw, enc)
		if !ok || !rehash || err != nil {
			t.Errorf("%s: Verify = %v, %v, %v; want true, true, nil", prefix, ok, rehash, err)
		}
		ok, rehash, err = h.Verify(ctx, "imported-user-passwore", enc)
		if ok || rehash || err != nil {
			t.Errorf("%s: Verify(wrong) = %v, %v, %v; want false, false, nil", prefix, ok, rehash, err)
		}
	}
	// The upgrade path: the fresh hash is argon2id and needs no rehash.
	enc, err := h.Hash(ctx, pw)
	if err != nil {
		t.Fatal(err)
	}
	if ok, rehash, err := h.Verify(ctx, pw, enc); !ok || rehash || err != nil {
		t.Errorf("after upgrade: Verify = %v, %v, %v; want true, false, nil", ok, rehash, err)
	}
}

const validDefault = "$argon2id$v=19$m=19456,t=2,p=1$MDEyMzQ1Njc4OWFiY2RlZg$gy5SuVm5Z7Vw7keB9se9p87QGcomaseB/S2U1OhTsM0"

// malformedHashes are refused before any hashing work, whatever the
// limits: each would otherwise be absurdly expensive, panic in the
// library, or be a non-canonical spelling of a valid hash.
var malformedHashes = []struct {
	name, enc   string
	unsupported bool
}{
	{"empty", "", true},
	{"plain text", "hunter2", true},
	{"argon2i", "$argon2i$v=19$m=19456,t=2,p=1$MDEyMzQ1Njc4OWFiY2RlZg$gy5SuVm5Z7Vw7keB9se9p87QGcomaseB/S2U1OhTsM0", true},
	{"argon2d", "$argon2d$v=19$m=19456,t=2,p=1$MDEyMzQ1Njc4OWFiY2RlZg$gy5SuVm5Z7Vw7keB9se9p87QGcomaseB/S2U1OhTsM0", true},
	{"scrypt", "$scrypt$ln=15,r=8,p=1$c2FsdA$aGFzaA", true},
	{"bcrypt $2x$", "$2x$05$qCd.bcIpQqRaQB0j.vY0yuhVov2gb.m70F.0Ecs9Wp/Rzzy/r7amW", true},
	{"uppercase id", strings.Replace(validDefault, "argon2id", "ARGON2ID", 1), true},
	{"only prefix", "$argon2id$", false},
	{"missing version", "$argon2id$m=19456,t=2,p=1$MDEyMzQ1Njc4OWFiY2RlZg$gy5SuVm5Z7Vw7keB9se9p87QGcomaseB/S2U1OhTsM0", false},
	{"version 16", strings.Replace(validDefault, "v=19", "v=16", 1), false},
	{"version 019", strings.Replace(validDefault, "v=19", "v=019", 1), false},
	{"memory 1 GiB + 1 KiB", strings.Replace(validDefault, "m=19456", "m=1048577", 1), false},
	{"memory 4 GiB", strings.Replace(validDefault, "m=19456", "m=4294967295", 1), false},
	{"memory overflows uint32", strings.Replace(validDefault, "m=19456", "m=4294967296", 1), false},
	{"memory below 8 KiB per lane", strings.Replace(validDefault, "m=19456,t=2,p=1", "m=15,t=2,p=2", 1), false},
	{"memory zero", strings.Replace(validDefault, "m=19456", "m=0", 1), false},
	{"time 65", strings.Replace(validDefault, "t=2", "t=65", 1), false},
	{"time 4294967295", strings.Replace(validDefault, "t=2", "t=4294967295", 1), false},
	{"time zero", strings.Replace(validDefault, "t=2", "t=0", 1), false},
	{"lanes zero", strings.Replace(validDefault, "p=1", "p=0", 1), false},
	{"lanes 256", strings.Replace(validDefault, "p=1", "p=256", 1), false},
	{"leading zero", strings.Replace(validDefault, "t=2", "t=02", 1), false},
	{"plus sign", strings.Replace(validDefault, "t=2", "t=+2", 1), false},
	{"negative", strings.Replace(validDefault, "t=2", "t=-2", 1), false},
	{"hex", strings.Replace(validDefault, "t=2", "t=0x2", 1), false},
	{"empty value", strings.Replace(validDefault, "t=2", "t=", 1), false},
	{"parameters reordered", strings.Replace(validDefault, "m=19456,t=2,p=1", "t=2,m=19456,p=1", 1), false},
	{"extra parameter", strings.Replace(validDefault, "p=1", "p=1,keyid=abc", 1), false},
	{"missing parameter", strings.Replace(validDefault, ",p=1", "", 1), false},
	{"space in parameters", strings.Replace(validDefault, "t=2", "t= 2", 1), false},
	{"missing hash", "$argon2id$v=19$m=19456,t=2,p=1$MDEyMzQ1Njc4OWFiY2RlZg", false},
	{"empty hash", "$argon2id$v=19$m=19456,t=2,p=1$MDEyMzQ1Njc4OWFiY2RlZg$", false},
	{"extra field", validDefault + "$", false},
	{"padded salt", "$argon2id$v=19$m=19456,t=2,p=1$MDEyMzQ1Njc4OWFiY2RlZg==$gy5SuVm5Z7Vw7keB9se9p87QGcomaseB/S2U1OhTsM0", false},
	{"url-safe base64", strings.Replace(validDefault, "B/S2", "B_S2", 1), false},
	{"newline in hash", strings.Replace(validDefault, "B/S2", "B/\nS2", 1), false},
	{"CR in salt", strings.Replace(validDefault, "MDEy", "MD\rEy", 1), false},
	{"non-canonical trailing bits", strings.Replace(validDefault, "sM0", "sM1", 1), false},
	{"salt 7 bytes", "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbA$gy5SuVm5Z7Vw7keB9se9p87QGcomaseB/S2U1OhTsM0", false},
	{"hash 15 bytes", "$argon2id$v=19$m=19456,t=2,p=1$MDEyMzQ1Njc4OWFiY2RlZg$gy5SuVm5Z7Vw7keB9se9", false},
	{"keylen 1025", "$argon2id$v=19$m=19456,t=2,p=1$MDEyMzQ1Njc4OWFiY2RlZg$" + strings.Repeat("A", 1367), false},
	{"longer than 4096 bytes", "$argon2id$v=19$m=19456,t=2,p=1$MDEyMzQ1Njc4OWFiY2RlZg$" + strings.Repeat("A", 5000), false},
	{"non-ASCII", strings.Replace(validDefault, "MDEy", "MDE\u00e9", 1), false},
	{"NUL byte", validDefault + "\x00", false},
	{"bcrypt cost 31", "$2b$31$qCd.bcIpQqRaQB0j.vY0yuhVov2gb.m70F.0Ecs9Wp/Rzzy/r7amW", false},
	{"bcrypt cost 17", "$2b$17$qCd.bcIpQqRaQB0j.vY0yuhVov2gb.m70F.0Ecs9Wp/Rzzy/r7amW", false},
	{"bcrypt cost 03", "$2b$03$qCd.bcIpQqRaQB0j.vY0yuhVov2gb.m70F.0Ecs9Wp/Rzzy/r7amW", false},
	{"bcrypt cost not digits", "$2b$1a$qCd.bcIpQqRaQB0j.vY0yuhVov2gb.m70F.0Ecs9Wp/Rzzy/r7amW", false},
	{"bcrypt short", "$2b$05$qCd.bcIpQqRaQB0j.vY0yuhVov2gb.m70F.0Ecs9Wp/Rzzy/r7am", false},
	{"bcrypt long", "$2b$05$qCd.bcIpQqRaQB0j.vY0yuhVov2gb.m70F.0Ecs9Wp/Rzzy/r7amWW", false},
	{"bcrypt bad alphabet", "$2b$05$qCd.bcIpQqRaQB0j.vY0yuhVov2gb.m70F.0Ecs9Wp+Rzzy/r7amW", false},
	{"bcrypt missing separator", "$2b$05qCd.bcIpQqRaQB0j.vY0yuhVov2gb.m70F.0Ecs9Wp/Rzzy/r7amWW", false},
	{"bcrypt prefix only", "$2b$", false},
}

func TestVerifyMalformed(t *testing.T) {
	ctx := context.Background()
	// The only slot is held: a Verify that got as far as hashing would
	// fail with ErrBusy. So an ErrMalformedHash or ErrUnsupportedHash
	// proves the string was refused before any hashing work.
	h := newHasher(t, password.DefaultParams, 1, time.Millisecond)
	release, err := h.HoldSlot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	const pw = "Secret-Password-Not-In-Errors"
	for _, c := range malformedHashes {
		t.Run(c.name, func(t *testing.T) {
			ok, rehash, err := h.Verify(ctx, pw, c.enc)
			if ok || rehash || err == nil {
				t.Fatalf("Verify = %v, %v, %v; want an error", ok, rehash, err)
			}
			want := password.ErrMalformedHash
			if c.unsupported {
				want = password.ErrUnsupportedHash
			}
			if !errors.Is(err, want) {
				t.Errorf("error %q is not %q", err, want)
			}
			checkErrorText(t, err, pw, c.enc)
		})
	}
}

// checkErrorText fails if err's text contains the password or any long
// piece of the stored hash (salt, hash).
func checkErrorText(t *testing.T, err error, pw, enc string) {
	t.Helper()
	msg := err.Error()
	if len(pw) >= 4 && strings.Contains(msg, pw) {
		t.Errorf("error %q contains the password", msg)
	}
	if strings.Contains(msg, "$") {
		t.Errorf("error %q contains a '$': it may quote the hash", msg)
	}
	for _, seg := range strings.Split(enc, "$") {
		if len(seg) >= 12 && !strings.ContainsAny(seg, " ") && strings.Contains(msg, seg) {
			t.Errorf("error %q contains part of the hash %q", msg, seg)
		}
	}
}

func TestErrBusy(t *testing.T) {
	ctx := context.Background()
	h := newHasher(t, password.DefaultParams, 1, 5*time.Millisecond)
	enc, err := h.Hash(ctx, "some password")
	if err != nil {
		t.Fatal(err)
	}
	release, err := h.HoldSlot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The only slot is held: every caller must give up after maxWait.
	if _, err := h.Hash(ctx, "some password"); !errors.Is(err, password.ErrBusy) {
		t.Errorf("Hash with the slot taken: err = %v, want ErrBusy", err)
	}
	if ok, _, err := h.Verify(ctx, "some password", enc); ok || !errors.Is(err, password.ErrBusy) {
		t.Errorf("Verify with the slot taken = %v, %v; want false, ErrBusy", ok, err)
	}
	b, _ := bcrypt.GenerateFromPassword([]byte("some password"), bcrypt.MinCost)
	if ok, _, err := h.Verify(ctx, "some password", string(b)); ok || !errors.Is(err, password.ErrBusy) {
		t.Errorf("Verify(bcrypt) with the slot taken = %v, %v; want false, ErrBusy", ok, err)
	}
	if err := h.VerifyDummy(ctx, "some password"); !errors.Is(err, password.ErrBusy) {
		t.Errorf("VerifyDummy with the slot taken: err = %v, want ErrBusy", err)
	}
	release()
	if ok, _, err := h.Verify(ctx, "some password", enc); !ok || err != nil {
		t.Errorf("Verify after release = %v, %v; want true, nil", ok, err)
	}
	if n := h.Waiting(); n != 0 {
		t.Errorf("Waiting() = %d after all callers returned", n)
	}
}

// waitForWaiters blocks until n callers wait for a slot.
func waitForWaiters(t *testing.T, h *password.Hasher, n int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for h.Waiting() != n {
		if time.Now().After(deadline) {
			t.Fatalf("Waiting() = %d, want %d", h.Waiting(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestContextCancelWhileWaiting(t *testing.T) {
	h := newHasher(t, password.DefaultParams, 1, time.Hour)
	release, err := h.HoldSlot(context.Background())
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := h.Hash(ctx, "some password")
		errc <- err
	}()
	waitForWaiters(t, h, 1)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("Hash after cancel: err = %v, want context.Canceled", err)
	}

	// A context that has already ended fails at once, even with a free slot.
	release()
	if _, _, err := h.Verify(ctx, "x", validDefault); !errors.Is(err, context.Canceled) {
		t.Errorf("Verify with a cancelled context: err = %v, want context.Canceled", err)
	}
	dctx, dcancel := context.WithTimeout(context.Background(), time.Nanosecond)
	defer dcancel()
	<-dctx.Done()
	if err := h.VerifyDummy(dctx, "x"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("VerifyDummy past deadline: err = %v, want context.DeadlineExceeded", err)
	}
}

func TestVerifyDummy(t *testing.T) {
	ctx := context.Background()
	h := newHasher(t, password.DefaultParams, 1, time.Hour)

	dummy := h.DummyHash()
	if !phcRE.MatchString(dummy) {
		t.Errorf("dummy hash %q does not have the current parameters", dummy)
	}
	if ok, rehash, err := h.Verify(ctx, "", dummy); ok || rehash || err != nil {
		t.Errorf("Verify against the dummy = %v, %v, %v; want false, false, nil", ok, rehash, err)
	}

	// VerifyDummy waits for the slot like Verify does.
	release, err := h.HoldSlot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- h.VerifyDummy(ctx, "unknown user's guess") }()
	waitForWaiters(t, h, 1)
	select {
	case err := <-done:
		t.Fatalf("VerifyDummy returned (%v) while the only slot was held", err)
	default:
	}
	release()
	if err := <-done; err != nil {
		t.Errorf("VerifyDummy = %v, want nil", err)
	}
}

// TestConcurrencyBound runs more round trips at once than a Hasher has
// slots, which must all succeed by waiting, and checks that with both slots
// taken a third caller waits.
func TestConcurrencyBound(t *testing.T) {
	ctx := context.Background()
	h := newHasher(t, password.DefaultParams, 2, time.Minute)
	if h.Slots() != 2 {
		t.Fatalf("Slots() = %d, want 2", h.Slots())
	}
	if d := newHasher(t, password.DefaultParams, 0, 0); d.Slots() < 1 {
		t.Fatalf("default Slots() = %d", d.Slots())
	}
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			enc, err := h.Hash(ctx, fmt.Sprint("pw", i))
			if err == nil {
				var ok bool
				ok, _, err = h.Verify(ctx, fmt.Sprint("pw", i), enc)
				if err == nil && !ok {
					err = errors.New("round trip failed")
				}
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	r1, _ := h.HoldSlot(ctx)
	r2, _ := h.HoldSlot(ctx)
	tctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := h.HoldSlot(tctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("third slot: err = %v, want to wait until the deadline", err)
	}
	r1()
	r2()
}

func TestNewHasherRefuses(t *testing.T) {
	weak := password.DefaultParams
	weak.Memory = 4096
	if _, err := password.NewHasher(weak, 0, 0); err == nil {
		t.Error("NewHasher accepted Memory 4096 KiB")
	}
	if _, err := password.NewHasher(password.DefaultParams, -1, 0); err == nil {
		t.Error("NewHasher accepted maxConcurrent -1")
	}
	if _, err := password.NewHasher(password.DefaultParams, 0, -time.Second); err == nil {
		t.Error("NewHasher accepted a negative maxWait")
	}
}

func TestValidate(t *testing.T) {
	if err := password.DefaultParams.Validate(); err != nil {
		t.Fatalf("DefaultParams.Validate() = %v", err)
	}
	strong := password.Params{Memory: 65536, Time: 3, Threads: 4, SaltLen: 32, KeyLen: 64}
	if err := strong.Validate(); err != nil {
		t.Errorf("stronger params: %v", err)
	}
	cases := []struct {
		mod  func(*password.Params)
		want []string // substrings of the error
	}{
		{func(p *password.Params) { p.Memory = 19455 }, []string{"Memory", "19456"}},
		{func(p *password.Params) { p.Time = 1 }, []string{"Time", "minimum 2"}},
		{func(p *password.Params) { p.Threads = 0 }, []string{"Threads", "minimum 1"}},
		{func(p *password.Params) { p.SaltLen = 8 }, []string{"SaltLen", "minimum 16"}},
		{func(p *password.Params) { p.KeyLen = 16 }, []string{"KeyLen", "minimum 32"}},
		{func(p *password.Params) { p.Memory = password.MaxMemory + 1 }, []string{"Memory", "maximum"}},
		{func(p *password.Params) { p.Time = 65 }, []string{"Time", "maximum 64"}},
		{func(p *password.Params) { p.KeyLen = 1025 }, []string{"KeyLen", "maximum 1024"}},
		{func(p *password.Params) { *p = password.Params{} }, []string{"Memory", "Time", "Threads", "SaltLen", "KeyLen"}},
	}
	for _, c := range cases {
		p := password.DefaultParams
		c.mod(&p)
		err := p.Validate()
		if err == nil {
			t.Errorf("Validate(%+v) = nil", p)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Validate(%+v) = %q, want it to mention %q", p, err, w)
			}
		}
	}
}

// TestVerifyCountsStoredMemory: a stored hash made with more memory than
// the Hasher's parameters takes as many slots as its memory needs, and
// one that needs more than all of them is refused before any work, so
// that maxConcurrent × Params.Memory bounds the memory in use whatever
// the stored parameters say.
func TestVerifyCountsStoredMemory(t *testing.T) {
	ctx := context.Background()
	const pw = "correct horse battery staple"
	m := password.DefaultParams.Memory
	h := newHasher(t, password.DefaultParams, 2, 20*time.Millisecond)

	double := phcOf(pw, "0123456789abcdef", 2*m, 1, 1, 32)
	release, err := h.HoldSlot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ok, _, err := h.Verify(ctx, pw, double); !errors.Is(err, password.ErrBusy) {
		t.Errorf("a hash of 2 × %d KiB with one of two slots taken: ok %v, err %v; want ErrBusy", m, ok, err)
	}
	// A hash of the Hasher's own size still fits in the free slot.
	own := phcOf(pw, "0123456789abcdef", m, 1, 1, 32)
	if ok, _, err := h.Verify(ctx, pw, own); !ok || err != nil {
		t.Errorf("a hash of %d KiB with one slot free: ok %v, err %v", m, ok, err)
	}
	release()
	if ok, rehash, err := h.Verify(ctx, pw, double); !ok || !rehash || err != nil {
		t.Errorf("a hash of 2 × %d KiB with both slots free: ok %v, rehash %v, err %v", m, ok, rehash, err)
	}

	over := phcOf(pw, "0123456789abcdef", 2*m+1, 1, 1, 32)
	ok, _, err := h.Verify(ctx, pw, over)
	if ok || !errors.Is(err, password.ErrMalformedHash) {
		t.Errorf("a hash of more than 2 × %d KiB on a hasher of two slots: ok %v, err %v; want ErrMalformedHash", m, ok, err)
	} else {
		checkErrorText(t, err, pw, over)
	}
	if n := h.Waiting(); n != 0 {
		t.Errorf("Waiting() = %d after every call returned", n)
	}
}
