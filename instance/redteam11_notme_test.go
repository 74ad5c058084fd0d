package instance_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/latchauth/latch/protect"
)

// TestRedteam11_NotMeForgetsEveryIntruderDevice: an intruder who knows the
// password signs in from two fresh browsers (two alerts). The owner
// answers "this wasn't me" to the first. Every device that appeared since
// that sign-in and that the owner did not confirm must be forgotten, not
// only the reported one: a device left known spares the intruder the
// next alert (should the new password leak again) and the account-wide
// lockout.
func TestRedteam11_NotMeForgetsEveryIntruderDevice(t *testing.T) {
	t.Run("first alert answered", func(t *testing.T) { notMeForgetsAll(t, false) })
	t.Run("second alert answered", func(t *testing.T) { notMeForgetsAll(t, true) })
}

func notMeForgetsAll(t *testing.T, reversed bool) {
	h := start(t, "", nil)
	mb := &mailbox{h: h}
	const addr, pw = "nora@example.com", "correct horse battery"
	uid := h.addUser(addr, pw)
	owner, b, c := &profile{h: h}, &profile{h: h}, &profile{h: h}
	expect(t, "owner", owner.login(addr, pw), http.StatusOK, "")
	h.clock.Advance(time.Hour)
	expect(t, "intruder B", b.login(addr, pw), http.StatusOK, "")
	id, _, notMe := alertLinks(t, mb.wait(t, addr, protect.TemplateNewDevice))
	h.clock.Advance(time.Minute)
	expect(t, "intruder C", c.login(addr, pw), http.StatusOK, "")
	if reversed {
		// The owner answers the later alert: B came before it.
		id, _, notMe = alertLinks(t, mb.wait(t, addr, protect.TemplateNewDevice))
	} else {
		mb.wait(t, addr, protect.TemplateNewDevice)
	}

	expect(t, "not me", alertPOST(h, id, notMe), http.StatusOK, "")
	devs, err := h.in.Store.Devices(context.Background(), uid)
	if err != nil {
		t.Fatal(err)
	}
	if len(devs) != 1 {
		var ids []string
		for _, d := range devs {
			ids = append(ids, d.ID+" "+d.Browser+" "+d.CreatedAt.String())
		}
		t.Fatalf("after not-me the user keeps %d devices, want the owner's only: %v", len(devs), ids)
	}
	tok := linkToken(t, mb.wait(t, addr, "reset_password"), "/reset", "latch_pr_")
	expect(t, "reset", h.do("POST", "/v1/auth/password/reset", jsonBody(map[string]string{"token": tok, "password": "a brand new password"})), http.StatusOK, "")
	intruder := c
	if reversed {
		intruder = b
	}
	alerts := func() int {
		n := 0
		for _, e := range mb.fetch() {
			if e.To == addr && e.Template == protect.TemplateNewDevice {
				n++
			}
		}
		return n
	}
	before := alerts()
	expect(t, "the intruder with the new password", intruder.login(addr, "a brand new password"), http.StatusOK, "")
	if alerts() != before+1 {
		t.Fatal("the intruder's browser signed in with the new password and the owner was not alerted")
	}
}
