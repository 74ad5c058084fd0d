package challenge_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/auth"
	"github.com/latchauth/latch/challenge"
	"github.com/latchauth/latch/internal/testenv"
	"github.com/latchauth/latch/sqlite"
)

// fixture is a Service over a fresh SQLite store with the user eve.
type fixture struct {
	svc   *challenge.Service
	store latch.Store
	clock *testenv.Clock
}

var testKey = []byte("test key of the challenge MACs, 32 bytes long")

func mac(purpose string, msg []byte) []byte {
	m := hmac.New(sha256.New, testKey)
	m.Write([]byte(purpose))
	m.Write([]byte{0})
	m.Write(msg)
	return m.Sum(nil)
}

func newFixture(t *testing.T, cfg challenge.Config) *fixture {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "latch.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clock := testenv.NewClock(time.Date(2031, 3, 14, 15, 9, 26, 0, time.UTC))
	if err := st.CreateUser(t.Context(), &latch.User{ID: "eve", Email: "eve@example.com", PasswordHash: "x",
		CreatedAt: clock.Now().Add(-time.Hour), UpdatedAt: clock.Now().Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	svc, err := challenge.New(cfg, challenge.Deps{Store: st, MAC: mac, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{svc: svc, store: st, clock: clock}
}

// begin begins a challenge for eve from d and returns its ID and code.
func (f *fixture) begin(t *testing.T, d auth.Device) (string, string) {
	t.Helper()
	id, err := f.svc.Begin(t.Context(), &auth.Authentication{UserID: "eve", Time: f.clock.Now(), AMR: []string{"pwd"}}, "latch", d)
	if err != nil {
		t.Fatalf("Begin: %v", err)
	}
	msgs, err := f.store.ClaimOutbox(t.Context(), "test", f.clock.Now(), f.clock.Now().Add(time.Hour), 10)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("ClaimOutbox: %v, %v; want the one email", msgs, err)
	}
	e, err := latch.ParseEmailMessage(msgs[0].Payload)
	if err != nil || e.To != "eve@example.com" || e.Template != challenge.Template {
		t.Fatalf("email %+v, %v", e, err)
	}
	return id, e.Data["code"]
}

// TestDeviceBinding: a challenge begun with a device cookie is completed
// only with that device cookie (and the same User-Agent); another device,
// or none, is told it is unknown and spends no attempt. The IP address may
// change.
func TestDeviceBinding(t *testing.T) {
	f := newFixture(t, challenge.Config{})
	d := auth.Device{IP: "192.0.2.1", UserAgent: "Firefox/140", DeviceID: "dev-a"}
	id, code := f.begin(t, d)
	for _, other := range []auth.Device{
		{IP: d.IP, UserAgent: d.UserAgent, DeviceID: "dev-b"},
		{IP: d.IP, UserAgent: d.UserAgent},
		{IP: d.IP, UserAgent: "Chrome/130", DeviceID: "dev-a"},
	} {
		if _, _, err := f.svc.Complete(t.Context(), id, code, other); !errors.Is(err, challenge.ErrUnknown) {
			t.Errorf("Complete from %+v: %v, want ErrUnknown", other, err)
		}
		if _, err := f.svc.Client(t.Context(), id, other); !errors.Is(err, challenge.ErrUnknown) {
			t.Errorf("Client from %+v: %v, want ErrUnknown", other, err)
		}
	}
	moved := d
	moved.IP = "2001:db8::7"
	a, client, err := f.svc.Complete(t.Context(), id, code, moved)
	if err != nil || a.UserID != "eve" || !a.Challenged || client != "latch" {
		t.Fatalf("Complete from the same browser at a new address: %+v, %q, %v", a, client, err)
	}
	if len(a.AMR) != 2 || a.AMR[0] != "pwd" || a.AMR[1] != challenge.AMR {
		t.Errorf("AMR %v, want [pwd otp]", a.AMR)
	}
}

// TestStoredSecrets: the store holds neither the ID nor the code, and the
// code's MAC is keyed: a plain SHA-256 of the code (with or without the
// ID) is not what is stored, so a copy of the database gives nothing to
// search offline.
func TestStoredSecrets(t *testing.T) {
	f := newFixture(t, challenge.Config{})
	id, code := f.begin(t, auth.Device{UserAgent: "ua"})
	idHash := sha256.Sum256([]byte(id))
	c, err := f.store.Challenge(t.Context(), idHash[:])
	if err != nil {
		t.Fatal(err)
	}
	plain := sha256.Sum256([]byte(code))
	bound := sha256.Sum256(append(idHash[:], code...))
	if bytes.Contains(c.CodeMAC, []byte(code)) || bytes.Equal(c.CodeMAC, plain[:]) || bytes.Equal(c.CodeMAC, bound[:]) {
		t.Fatalf("the stored code MAC %x is not keyed", c.CodeMAC)
	}
	other, err := challenge.New(challenge.Config{}, challenge.Deps{Store: f.store, Now: f.clock.Now,
		MAC: func(p string, m []byte) []byte { return mac(p+" other key", m) }})
	if err != nil {
		t.Fatal(err)
	}
	var wrong *challenge.CodeError
	if _, _, err := other.Complete(t.Context(), id, code, auth.Device{UserAgent: "ua"}); !errors.As(err, &wrong) {
		t.Fatalf("Complete with another MAC key: %v, want a wrong code", err)
	}
}

// TestPerUserLimit: past PerUser challenges in the window Begin refuses
// with a throttle error, stores nothing and sends nothing.
func TestPerUserLimit(t *testing.T) {
	f := newFixture(t, challenge.Config{PerUser: 2})
	d := auth.Device{UserAgent: "ua"}
	f.begin(t, d)
	f.begin(t, d)
	_, err := f.svc.Begin(t.Context(), &auth.Authentication{UserID: "eve", Time: f.clock.Now()}, "latch", d)
	var te *auth.ThrottleError
	if !errors.As(err, &te) || !errors.Is(err, auth.ErrRateLimited) || !errors.Is(err, challenge.ErrTooManyCodes) || te.RetryAfter <= 0 {
		t.Fatalf("third Begin: %v, want a throttle error", err)
	}
	if msgs, err := f.store.ClaimOutbox(t.Context(), "test", f.clock.Now(), f.clock.Now().Add(time.Hour), 10); err != nil || len(msgs) != 0 {
		t.Fatalf("a refused Begin enqueued %v (%v)", msgs, err)
	}
	f.clock.Advance(challenge.DefaultTTL)
	f.begin(t, d)
}

// TestNewRequiresMAC: without a MAC key there is no service.
func TestNewRequiresMAC(t *testing.T) {
	if _, err := challenge.New(challenge.Config{}, challenge.Deps{Store: newFixture(t, challenge.Config{}).store}); err == nil {
		t.Fatal("New without MAC succeeded")
	}
}
