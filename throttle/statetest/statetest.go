// Package statetest is the conformance test of throttle.State
// implementations: the memory state and the Redis state run the same
// checks.
package statetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/latchauth/latch/throttle"
)

// Run checks st. Keys are made unique with prefix (a shared Redis keeps
// them between runs). pass lets time go by: the memory state advances its
// clock, the Redis state waits a little; Run polls with a deadline.
func Run(t *testing.T, st throttle.State, prefix string, pass func(time.Duration)) {
	ctx := context.Background()
	key := func(name string) string { return prefix + ":" + name }

	t.Run("Take", func(t *testing.T) {
		for i := range 3 {
			if d, err := st.Take(ctx, key("addr"), 3); err != nil || d != 0 {
				t.Fatalf("attempt %d within the burst: %v, %v", i+1, d, err)
			}
		}
		d, err := st.Take(ctx, key("addr"), 3)
		if err != nil || d <= 0 || d > time.Minute {
			t.Fatalf("a fourth attempt: wait %v, %v; want a wait in (0, 1m]", d, err)
		}
		if d, err := st.Take(ctx, key("other"), 3); err != nil || d != 0 {
			t.Fatalf("another key: %v, %v", d, err)
		}
	})

	t.Run("FailLocksAtMax", func(t *testing.T) {
		f := throttle.Failure{Counter: key("c1"), Window: time.Hour, Max: 3, Lock: key("l1"), Lockout: time.Hour}
		for i := 1; i <= 2; i++ {
			if n, err := st.Fail(ctx, f); err != nil || n != i {
				t.Fatalf("failure %d: count %d, %v", i, n, err)
			}
		}
		if d, err := st.Locked(ctx, f.Lock); err != nil || d != 0 {
			t.Fatalf("locked below max: %v, %v", d, err)
		}
		if n, err := st.Fail(ctx, f); err != nil || n != 3 {
			t.Fatalf("third failure: %d, %v", n, err)
		}
		if d, err := st.Locked(ctx, f.Lock); err != nil || d <= 0 || d > time.Hour {
			t.Fatalf("at max: locked for %v, %v; want (0, 1h]", d, err)
		}
		if d, err := st.Locked(ctx, key("none"), f.Lock, key("none2")); err != nil || d <= 0 {
			t.Fatalf("one locked key of three: %v, %v", d, err)
		}
		if d, err := st.Locked(ctx, key("none"), key("none2")); err != nil || d != 0 {
			t.Fatalf("no locked key of two: %v, %v", d, err)
		}
		if n, err := st.Count(ctx, f.Counter); err != nil || n != 3 {
			t.Fatalf("Count = %d, %v", n, err)
		}
		if err := st.Clear(ctx, f.Counter, f.Lock); err != nil {
			t.Fatal(err)
		}
		if d, _ := st.Locked(ctx, f.Lock); d != 0 {
			t.Fatalf("after Clear: locked for %v", d)
		}
		if n, _ := st.Count(ctx, f.Counter); n != 0 {
			t.Fatalf("after Clear: count %d", n)
		}
	})

	t.Run("ConcurrentFailuresAddUp", func(t *testing.T) {
		f := throttle.Failure{Counter: key("c2"), Window: time.Hour, Max: 40, Lock: key("l2"), Lockout: time.Hour}
		var mu sync.Mutex
		seen := map[int]bool{}
		var wg sync.WaitGroup
		for range 40 {
			wg.Go(func() {
				n, err := st.Fail(ctx, f)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				seen[n] = true
				mu.Unlock()
			})
		}
		wg.Wait()
		for i := 1; i <= 40; i++ {
			if !seen[i] {
				t.Fatalf("no failure counted as %d: counts %v", i, seen)
			}
		}
		if d, _ := st.Locked(ctx, f.Lock); d <= 0 {
			t.Fatal("40 concurrent failures with max 40 did not lock")
		}
	})

	t.Run("Mark", func(t *testing.T) {
		if ok, err := st.Mark(ctx, key("m"), time.Hour); err != nil || !ok {
			t.Fatalf("first Mark: %v, %v", ok, err)
		}
		if ok, err := st.Mark(ctx, key("m"), time.Hour); err != nil || ok {
			t.Fatalf("second Mark: %v, %v; want false", ok, err)
		}
	})

	t.Run("Expiry", func(t *testing.T) {
		f := throttle.Failure{Counter: key("c3"), Window: 200 * time.Millisecond, Max: 1, Lock: key("l3"), Lockout: 200 * time.Millisecond}
		if _, err := st.Fail(ctx, f); err != nil {
			t.Fatal(err)
		}
		if ok, err := st.Mark(ctx, key("m3"), 200*time.Millisecond); err != nil || !ok {
			t.Fatal(ok, err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			d, err := st.Locked(ctx, f.Lock)
			if err != nil {
				t.Fatal(err)
			}
			n, _ := st.Count(ctx, f.Counter)
			again, _ := st.Mark(ctx, key("m3"), 200*time.Millisecond)
			if d == 0 && n == 0 && again {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("lock %v, count %d, mark free %v: not expired", d, n, again)
			}
			pass(50 * time.Millisecond)
		}
		// A counter whose window passed starts again at one.
		if n, err := st.Fail(ctx, f); err != nil || n != 1 {
			t.Fatalf("after the window: count %d, %v", n, err)
		}
	})
}

// Prefix returns a prefix no earlier run used.
func Prefix(name string) string { return fmt.Sprintf("%s-%d", name, time.Now().UnixNano()) }
