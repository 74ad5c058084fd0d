package server

import (
	"strings"

	"github.com/latchauth/latch/device"
)

// describeUA names the browser and operating system of a User-Agent
// header for people ("Chrome 120", "macOS"), as the device list does, or
// "" for what it cannot tell: curl, SDKs and servers are not a browser on
// a device (the account page shows them as API or command-line clients).
func describeUA(ua string) (browser, os string) {
	if !strings.HasPrefix(ua, "Mozilla/") {
		return "", ""
	}
	return device.Describe(ua)
}
