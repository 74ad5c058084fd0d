package instance_test

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/latchauth/latch/auth"
	"github.com/latchauth/latch/config"
	"github.com/latchauth/latch/protect"
)

// BenchmarkSignInGuard measures a password sign-in over HTTP (argon2id
// included) with the sign-in guard installed and without it, alternating
// in one run, from a known browser (the usual case). It reports the
// medians and the guard's added share: the goal is under 1 %.
func BenchmarkSignInGuard(b *testing.B) {
	h := start(b, "", func(c *config.Config) { c.Login.RatePerIP = 0 })
	h.addUser(adaEmail, adaPass)
	// The guard as instance wires it.
	guard, err := protect.NewSignIn(protect.SignInConfig{}, protect.SignInDeps{Store: h.in.Store, Now: h.clock.Now})
	if err != nil {
		b.Fatal(err)
	}
	on := func() { h.in.Auth.SetGuards(auth.Guards{SignIn: guard, Devices: h.in.Devices}) }
	off := func() { h.in.Auth.SetGuards(auth.Guards{}) }
	// The browser's first sign-in records it.
	dev := signInAs(b, h, "")
	var withGuard, without []time.Duration
	for b.Loop() {
		for i, set := range []func(){on, off} {
			set()
			start := time.Now()
			signInAs(b, h, dev)
			d := time.Since(start)
			if i == 0 {
				withGuard = append(withGuard, d)
			} else {
				without = append(without, d)
			}
		}
	}
	on()
	mOn, mOff := median(withGuard), median(without)
	b.ReportMetric(float64(mOn.Microseconds()), "µs/sign-in-guarded")
	b.ReportMetric(float64(mOff.Microseconds()), "µs/sign-in-unguarded")
	b.ReportMetric(100*float64(mOn-mOff)/float64(mOff), "%added")
}

// signInAs signs ada in from a browser with the device cookie (none when
// empty) and returns the cookie the answer sets.
func signInAs(b *testing.B, h *harness, device string) string {
	hdr := []string{"User-Agent", chromeUA, "Sec-Fetch-Site", "same-origin"}
	if device != "" {
		hdr = append(hdr, "Cookie", "latch_device="+device)
	}
	r := h.do("POST", "/v1/auth/login", jsonBody(map[string]string{"email": adaEmail, "password": adaPass}), hdr...)
	if r.code != http.StatusOK {
		b.Fatalf("sign-in: %d %s", r.code, r.raw)
	}
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if c.Name == "latch_device" {
			return c.Value
		}
	}
	return device
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
