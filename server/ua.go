package server

import (
	"strings"

	"github.com/mssola/useragent"
)

// describeUA names the browser and operating system of a User-Agent
// header for people ("Chrome 120", "macOS"), or "" for what it cannot tell.
func describeUA(ua string) (browser, os string) {
	if ua == "" || !strings.HasPrefix(ua, "Mozilla/") {
		// curl, SDKs, servers: not a browser on a device. The account
		// page shows these as API or command-line clients.
		return "", ""
	}
	u := useragent.New(ua)
	name, version := u.Browser()
	if u.Bot() {
		name, version = "Bot", ""
	}
	if major, _, _ := strings.Cut(version, "."); major != "" && name != "" {
		browser = name + " " + major
	} else {
		browser = name
	}
	os = u.OSInfo().Name
	switch {
	case strings.HasPrefix(os, "Mac OS X") || os == "macOS":
		os = "macOS"
	case os == "" && u.Platform() != "":
		os = u.Platform()
	}
	return browser, os
}
