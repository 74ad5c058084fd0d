package auth

import (
	"unicode/utf8"

	"github.com/latchauth/latch"
)

// Bounds on what the security log and the session records keep of
// strings a client chose. A client controls its User-Agent, and through
// it and the other request fields the size of every row it makes the
// server write; past these lengths the rest is cut off (at a UTF-8
// character boundary), so a row stays small whatever was sent.
const (
	// MaxUserAgentLen bounds a stored User-Agent, in bytes.
	MaxUserAgentLen = 512
	// MaxIPLen bounds a stored client address (an IPv6 address with a
	// zone fits).
	MaxIPLen = 64
	// MaxIDLen bounds a stored user, session or client identifier.
	MaxIDLen = 128
	// MaxDetailEntries bounds the entries of an event's Detail; past it,
	// entries are dropped.
	MaxDetailEntries = 16
	// MaxDetailKeyLen and MaxDetailValueLen bound each entry of an
	// event's Detail (a reason, the other client's user agent...).
	MaxDetailKeyLen   = 64
	MaxDetailValueLen = 512
)

// boundEvent cuts every string of e to its bound before it is stored.
func boundEvent(e *latch.Event) {
	e.Type = truncate(e.Type, MaxIDLen)
	e.UserID = truncate(e.UserID, MaxIDLen)
	e.SessionID = truncate(e.SessionID, MaxIDLen)
	e.ClientID = truncate(e.ClientID, MaxIDLen)
	e.IP = truncate(e.IP, MaxIPLen)
	e.UserAgent = truncate(e.UserAgent, MaxUserAgentLen)
	if len(e.Detail) == 0 {
		return
	}
	d := make(map[string]string, min(len(e.Detail), MaxDetailEntries))
	for k, v := range e.Detail {
		if len(d) == MaxDetailEntries {
			break
		}
		d[truncate(k, MaxDetailKeyLen)] = truncate(v, MaxDetailValueLen)
	}
	e.Detail = d
}

// boundClient cuts the device description of a request to the bounds of
// what a session records.
func boundClient(c Device) Device {
	return Device{IP: truncate(c.IP, MaxIPLen), UserAgent: truncate(c.UserAgent, MaxUserAgentLen)}
}

// truncate returns at most n bytes of s, cut at a character boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
