package instance_test

import (
	"testing"

	"github.com/latchauth/latch/config"
	"github.com/latchauth/latch/protect"
)

// TestRedteam11_SpoofedFamilyIsNotTheOwnersDevice: whether a request is a
// browser (and so must carry the device cookie to be known) is read from
// Sec-Fetch-Site, which the client chooses. The owner signs in from a
// browser that sends no Fetch Metadata (Safari before 16.4, an embedded
// web view): that device is known by its user-agent family alone. An
// intruder with the password who sends the same family (Safari, macOS
// 10) and leaves Sec-Fetch-Site out, from another network, is taken for
// that device: no alert (and no challenge with risk.new_device:
// challenge). Not fixed here: recognising browser families only by the
// cookie (setting it for every Mozilla/ client) changes the design.
func TestRedteam11_SpoofedFamilyIsNotTheOwnersDevice(t *testing.T) {
	h := start(t, "", func(c *config.Config) { c.TrustedProxies = []string{"127.0.0.1/32", "::1/128"} })
	mb := &mailbox{h: h}
	const addr, pw = "ola@example.com", "correct horse battery"
	h.addUser(addr, pw)
	oldSafari := "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/15.6 Safari/605.1.15"
	h.login(addr, pw, "User-Agent", oldSafari, "X-Forwarded-For", "203.0.113.10")
	(&profile{h: h}).login(addr, pw) // a second device: alerts from now on are possible
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
	spoof := "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_14) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/14.0 Safari/605.1.15"
	h.login(addr, pw, "User-Agent", spoof, "X-Forwarded-For", "198.51.100.66")
	if alerts() == before {
		t.Fatal("an intruder claiming the owner's browser family without Fetch Metadata signed in and the owner was not alerted")
	}
}
