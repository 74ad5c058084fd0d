package auth

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/latchauth/latch/throttle"
)

// useThrottle gives svc a throttle over a fresh memory state.
func useThrottle(svc *Service, cfg ThrottleConfig, now func() time.Time) *throttle.Memory {
	m := throttle.NewMemory(now)
	svc.throttle = throttle.New(cfg, m, throttle.Options{})
	return m
}

// TestRegistrationSharesTheAddressBudget: registration (AllowAddress) and
// sign-in draw on one budget per address.
func TestRegistrationSharesTheAddressBudget(t *testing.T) {
	svc, _ := newService(t)
	useThrottle(svc, ThrottleConfig{PerIPPerMinute: 2}, time.Now)
	ctx := context.Background()
	if err := svc.AllowAddress("2001:db8::1"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Authenticate(ctx, "ada@example.com", "wrong password!", Device{IP: "2001:db8::2"}); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatal(err)
	}
	if err := svc.AllowAddress("2001:db8::3"); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("a third attempt from one /64 within the burst of 2: %v, want ErrRateLimited", err)
	}
	if err := svc.AllowAddress("2001:db8:0:1::1"); err != nil {
		t.Fatalf("another /64: %v", err)
	}
}

// TestRefusedAddressIsCounted: an address the rules refuse, however long,
// is counted (under a digest) and locked like any other.
func TestRefusedAddressIsCounted(t *testing.T) {
	svc, _ := newService(t)
	useThrottle(svc, ThrottleConfig{MaxFailures: 2, Lockout: time.Hour}, time.Now)
	ctx := context.Background()
	long := strings.Repeat("A", 60<<10) + "@example.com"
	for range 2 {
		if _, err := login(ctx, svc, long, "wrong password!"); !errors.Is(err, ErrInvalidCredentials) {
			t.Fatalf("login with a 60 KB address: %v", err)
		}
	}
	if _, err := login(ctx, svc, strings.ToLower(long), "wrong password!"); !errors.Is(err, ErrAccountLocked) {
		t.Fatalf("third attempt with the same refused address: %v, want ErrAccountLocked", err)
	}
}

// fakeDevices knows one device of one user.
type fakeDevices struct{ userID, deviceID string }

func (f fakeDevices) Known(_ context.Context, userID, deviceID string) (bool, error) {
	return userID != "" && userID == f.userID && deviceID == f.deviceID, nil
}

// TestLockSparesTheOwner: strangers' failures lock their own address out
// of the account, not the owner's; past the account-wide threshold the
// account is locked for every address, but not for the owner's known
// device; a device cookie the user does not know is no pass.
func TestLockSparesTheOwner(t *testing.T) {
	svc, _ := newService(t)
	useThrottle(svc, ThrottleConfig{MaxFailures: 3, Lockout: time.Hour, AccountMaxFailures: 9, AccountWindow: time.Hour}, time.Now)
	ctx := context.Background()
	u, err := svc.CreateUser(ctx, "kate@example.com", "correct horse battery", Device{})
	if err != nil {
		t.Fatal(err)
	}
	svc.SetGuards(Guards{Devices: fakeDevices{userID: u.ID, deviceID: "dev-kate"}})
	attempt := func(ip, device, pw string) error {
		_, err := svc.Authenticate(ctx, "kate@example.com", pw, Device{IP: ip, DeviceID: device})
		return err
	}
	for range 3 {
		if err := attempt("198.51.100.1", "", "wrong password!"); !errors.Is(err, ErrInvalidCredentials) {
			t.Fatal(err)
		}
	}
	if err := attempt("198.51.100.1", "", "correct horse battery"); !errors.Is(err, ErrAccountLocked) {
		t.Fatalf("the stranger's address after 3 failures: %v, want ErrAccountLocked", err)
	}
	if err := attempt("203.0.113.7", "", "correct horse battery"); err != nil {
		t.Fatalf("the owner from another address: %v", err)
	}
	for i := range 2 {
		for range 3 {
			if err := attempt("198.51.100."+string(rune('2'+i)), "", "wrong password!"); !errors.Is(err, ErrInvalidCredentials) {
				t.Fatal(err)
			}
		}
	}
	// 9 failures from three addresses: the account is locked for all.
	if err := attempt("203.0.113.7", "", "correct horse battery"); !errors.Is(err, ErrAccountLocked) {
		t.Fatalf("past the account-wide threshold, an unknown device: %v, want ErrAccountLocked", err)
	}
	if err := attempt("203.0.113.7", "dev-stranger", "correct horse battery"); !errors.Is(err, ErrAccountLocked) {
		t.Fatalf("past the account-wide threshold, a device the user does not know: %v, want ErrAccountLocked", err)
	}
	if err := attempt("198.51.100.1", "dev-kate", "correct horse battery"); err != nil {
		t.Fatalf("the owner's known device (even from a locked address): %v", err)
	}
}

// yesDevices knows every device, even of no user.
type yesDevices struct{}

func (yesDevices) Known(context.Context, string, string) (bool, error) { return true, nil }

// TestUnknownEmailHasNoKnownDevice: for an email no account has, no
// device counts as known, whatever the device service says.
func TestUnknownEmailHasNoKnownDevice(t *testing.T) {
	svc, _ := newService(t)
	useThrottle(svc, ThrottleConfig{MaxFailures: 2, Lockout: time.Hour, AccountMaxFailures: 4, AccountWindow: time.Hour}, time.Now)
	svc.SetGuards(Guards{Devices: yesDevices{}})
	ctx := context.Background()
	for i := range 4 {
		if _, err := svc.Authenticate(ctx, "ghost@example.com", "wrong password!", Device{IP: "198.51.100." + string(rune('1'+i/2))}); !errors.Is(err, ErrInvalidCredentials) {
			t.Fatal(err)
		}
	}
	if _, err := svc.Authenticate(ctx, "ghost@example.com", "wrong password!", Device{IP: "203.0.113.7", DeviceID: "dev-any"}); !errors.Is(err, ErrAccountLocked) {
		t.Fatalf("an unknown email with a device cookie, past the threshold: %v, want ErrAccountLocked", err)
	}
}
