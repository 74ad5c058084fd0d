package redis_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/latchauth/latch/redis"
	"github.com/latchauth/latch/throttle"
	"github.com/latchauth/latch/throttle/statetest"
)

func openPrefixed(t *testing.T, prefix string) *redis.Fanout {
	t.Helper()
	f, err := redis.Open(t.Context(), sharedURL(), redis.Options{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		f.Close()
		c := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:6379"})
		defer c.Close()
		if keys, _ := c.Keys(context.Background(), prefix+":*").Result(); len(keys) > 0 {
			c.Del(context.Background(), keys...)
		}
	})
	return f
}

// TestThrottleState: the Redis state passes the conformance checks of
// every throttle.State, against the real Redis.
func TestThrottleState(t *testing.T) {
	openShared(t, channel()) // skips (or fails, when required) without Redis
	f := openPrefixed(t, statetest.Prefix("latch-test"))
	statetest.Run(t, f.ThrottleState(), "t", func(d time.Duration) { time.Sleep(d) })
}

// TestThrottleKeysUnderPrefix: every key the throttle writes, the GCRA
// budget's included, is under the configured prefix.
func TestThrottleKeysUnderPrefix(t *testing.T) {
	openShared(t, channel())
	prefix := statetest.Prefix("latch-test")
	f := openPrefixed(t, prefix)
	th := throttle.New(throttle.Config{PerIPPerMinute: 5, MaxFailures: 2, Lockout: time.Minute, AccountMaxFailures: 10}, f.ThrottleState(), throttle.Options{})
	ctx := context.Background()
	a := throttle.Attempt{Account: "kate@example.com", IP: "198.51.100.1"}
	if err := th.Allow(ctx, a); err != nil {
		t.Fatal(err)
	}
	th.Failed(ctx, a)
	th.Failed(ctx, a)
	keys := scan(t, prefix)
	if len(keys) != 4 { // the budget, two counters, a lock
		t.Fatalf("keys under %s: %v", prefix, keys)
	}
	for _, k := range keys {
		if strings.Contains(k, "kate") {
			t.Errorf("key %q names the account", k)
		}
	}
	stray := scan(t, "rate:"+prefix)
	if len(stray) != 0 {
		t.Fatalf("keys outside the prefix: %v", stray)
	}
}

// TestThrottleSharedByInstances: three throttles on one Redis (three
// instances) count failures as one: failures spread over them lock the
// source and the account everywhere, and the owner is mailed once.
func TestThrottleSharedByInstances(t *testing.T) {
	openShared(t, channel())
	prefix := statetest.Prefix("latch-test")
	cfg := throttle.Config{MaxFailures: 3, Lockout: time.Minute, AccountMaxFailures: 9, AccountWindow: time.Minute}
	var mu sync.Mutex
	mailed := 0
	var ths []*throttle.Policy
	for range 3 {
		ths = append(ths, throttle.New(cfg, openPrefixed(t, prefix).ThrottleState(), throttle.Options{
			OnAccountLocked: func(context.Context, string) { mu.Lock(); mailed++; mu.Unlock() },
		}))
	}
	ctx := context.Background()
	acct := "kate@example.com"
	for i := range 3 {
		ths[i].Failed(ctx, throttle.Attempt{Account: acct, IP: "198.51.100.1"})
	}
	for i, th := range ths {
		if err := th.Allow(ctx, throttle.Attempt{Account: acct, IP: "198.51.100.1"}); err == nil {
			t.Fatalf("instance %d: a source with one failure on each of three instances is not locked", i)
		}
	}
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Go(func() { ths[i%3].Failed(ctx, throttle.Attempt{Account: acct, IP: fmt.Sprintf("198.51.100.%d", 10+i)}) })
	}
	wg.Wait()
	for i, th := range ths {
		if err := th.Allow(ctx, throttle.Attempt{Account: acct, IP: "203.0.113.7"}); err == nil {
			t.Fatalf("instance %d: 9 failures over three instances did not lock the account", i)
		}
		if n := th.RecentFailures(ctx, acct); n != 9 {
			t.Fatalf("instance %d: RecentFailures = %d, want 9", i, n)
		}
	}
	for i := range 3 {
		ths[i].Failed(ctx, throttle.Attempt{Account: acct, IP: "192.0.2.1"})
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := mailed
		mu.Unlock()
		if n == 1 {
			break
		}
		if n > 1 || time.Now().After(deadline) {
			t.Fatalf("mailed %d times, want once", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := ths[2].Unlock(ctx, acct); err != nil {
		t.Fatal(err)
	}
	if err := ths[0].Allow(ctx, throttle.Attempt{Account: acct, IP: "203.0.113.7"}); err != nil {
		t.Fatalf("unlocked on one instance, still locked on another: %v", err)
	}
}

// scan lists the keys that start with prefix.
func scan(t *testing.T, prefix string) []string {
	t.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:6379"})
	defer c.Close()
	keys, err := c.Keys(t.Context(), prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// BenchmarkThrottleSignIn: what throttling adds to one sign-in (the
// address budget, two lock checks, clearing the source's failures), in
// memory and in Redis, next to the argon2id hash it guards (about 22 ms
// here, DESIGN.md §9).
func BenchmarkThrottleSignIn(b *testing.B) {
	f, err := redis.Open(b.Context(), sharedURL(), redis.Options{Prefix: statetest.Prefix("latch-bench")})
	if err != nil {
		b.Skip("no Redis")
	}
	defer f.Close()
	cfg := throttle.Config{PerIPPerMinute: 1 << 30, MaxFailures: 10, Lockout: time.Minute, AccountMaxFailures: 50}
	for _, c := range []struct {
		name string
		st   throttle.State
	}{{"memory", throttle.NewMemory(nil)}, {"redis", f.ThrottleState()}} {
		b.Run(c.name, func(b *testing.B) {
			th := throttle.New(cfg, c.st, throttle.Options{})
			ctx := context.Background()
			for i := range b.N {
				a := throttle.Attempt{Account: "kate@example.com", IP: fmt.Sprintf("198.51.100.%d", i%200)}
				if err := th.Allow(ctx, a); err != nil {
					b.Fatal(err)
				}
				th.Succeeded(ctx, a)
			}
		})
	}
}
