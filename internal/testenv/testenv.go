// Package testenv holds what Latch's tests share: the rule for a backing
// service that is unreachable, and a settable clock.
//
// It decides what a test does when a backing service it needs
// (PostgreSQL, Redis, a browser) is not reachable: on a developer machine it
// skips with the reason, and where LATCH_TEST_REQUIRE names the service (CI
// sets LATCH_TEST_REQUIRE=postgres,redis,browser) it fails, so that a
// missing service can never turn a red run green.
package testenv

import (
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// Services named in LATCH_TEST_REQUIRE.
const (
	Postgres = "postgres"
	Redis    = "redis"
	Browser  = "browser"
	// Node is Node.js with the interop test clients installed (make
	// interop-deps).
	Node = "node"
)

// Required reports whether LATCH_TEST_REQUIRE names service.
func Required(service string) bool {
	for s := range strings.SplitSeq(os.Getenv("LATCH_TEST_REQUIRE"), ",") {
		if strings.TrimSpace(s) == service {
			return true
		}
	}
	return false
}

// Unavailable ends the test because service cannot be reached (err says
// why): a failure when the service is required, a skip otherwise.
func Unavailable(t testing.TB, service string, err error) {
	t.Helper()
	if Required(service) {
		t.Fatalf("%s is required (LATCH_TEST_REQUIRE=%s) but unreachable: %v", service, os.Getenv("LATCH_TEST_REQUIRE"), err)
	}
	t.Skipf("%s unreachable (%v); set LATCH_TEST_REQUIRE=%s to make this a failure", service, err, service)
}

// Clock is a settable clock for an instance under test (instance.Options
// Now). It is safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
	// wall: the clock runs with the real one, ahead of it by offset.
	wall   bool
	offset time.Duration
}

// NewClock returns a clock reading t, standing still until advanced.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// NewWallClock returns a clock that reads the real time until advanced,
// and then runs on, ahead of it by what it was advanced: for a component
// under test that talks to another one on the real clock (tokens it
// checks carry real issue times however slowly the test runs).
func NewWallClock() *Clock { return &Clock{wall: true} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.wall {
		return time.Now().UTC().Add(c.offset)
	}
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.offset += d
	c.mu.Unlock()
}
