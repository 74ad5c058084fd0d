package throttle_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/latchauth/latch/throttle"
)

// TestRedteam11_AccountCountSurvivesFlood: a botnet one failure short of
// the account-wide lock must not reset the account's count by flooding
// the memory state with cheap entries (password-reset requests for
// random emails cost no password hash) until the eviction drops the
// oldest counter, which is the attacked account's.
func TestRedteam11_AccountCountSurvivesFlood(t *testing.T) {
	r := newRig(throttle.Config{MaxFailures: 3, Lockout: 15 * time.Minute, AccountMaxFailures: 10, AccountWindow: time.Hour})
	ctx := context.Background()
	for i := range 9 {
		r.fail(t, throttle.Attempt{Account: "kate@example.com", IP: fmt.Sprintf("198.51.100.%d", i+1)})
	}
	limit := throttle.MailLimit{PerSource: 3, PerAccount: 10, Window: time.Hour}
	for i := range 120_000 {
		if i%1000 == 0 {
			r.clk.Advance(time.Second)
		}
		_ = r.th.AllowMail(ctx, throttle.Attempt{Account: fmt.Sprintf("junk%d@example.com", i), IP: fmt.Sprintf("2001:db8:%x:%x::1", i>>16, i&0xffff)}, limit)
	}
	if n := r.th.RecentFailures(ctx, "kate@example.com"); n != 9 {
		t.Errorf("the attacked account's failures after a flood of cheap entries: %d, want 9", n)
	}
	r.fail(t, throttle.Attempt{Account: "kate@example.com", IP: "198.51.100.99"})
	if err := r.th.Allow(ctx, throttle.Attempt{Account: "kate@example.com", IP: "198.51.100.100"}); !locked(err) {
		t.Fatalf("the tenth failure from the botnet after the flood: %v, want the account locked", err)
	}
}
