package throttle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"
)

// DefaultTimeout bounds each call to the shared state of a Fallback.
const DefaultTimeout = 250 * time.Millisecond

// Fallback is a shared State (Redis) with a local one (Memory) behind
// it: when the shared state fails or does not answer within Timeout, the
// call goes to the local one, so that sign-in keeps being throttled (per
// instance) and never fails because the shared state hiccupped. The
// switch is logged once each way. After a failure the shared state is
// left alone for Pause (calls go straight to the local one), so that a
// shared state that hangs costs a sign-in at most one Timeout a Pause.
type Fallback struct {
	Shared  State
	Local   State
	Timeout time.Duration // 0 means DefaultTimeout
	Pause   time.Duration // 0 means DefaultPause
	Log     *slog.Logger  // nil means slog.Default()

	down    atomic.Bool
	retryAt atomic.Int64 // unix nanoseconds
}

// DefaultPause is how long a Fallback leaves a failed shared state alone.
const DefaultPause = time.Second

func (f *Fallback) log() *slog.Logger {
	if f.Log == nil {
		return slog.Default()
	}
	return f.Log
}

// use runs call on the shared state within the timeout and reports
// whether it answered; it logs when the shared state goes and comes back.
func (f *Fallback) use(ctx context.Context, call func(context.Context, State) error) bool {
	if f.down.Load() && time.Now().UnixNano() < f.retryAt.Load() {
		return false
	}
	d := f.Timeout
	if d <= 0 {
		d = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	if err := call(ctx, f.Shared); err != nil {
		pause := f.Pause
		if pause <= 0 {
			pause = DefaultPause
		}
		f.retryAt.Store(time.Now().Add(pause).UnixNano())
		if f.down.CompareAndSwap(false, true) {
			f.log().Warn("sign-in throttle: shared state unavailable; throttling in this instance's memory until it is back", "err", err)
		}
		return false
	}
	if f.down.CompareAndSwap(true, false) {
		f.log().Info("sign-in throttle: shared state is back")
	}
	return true
}

// Down reports whether the last call to the shared state failed.
func (f *Fallback) Down() bool { return f.down.Load() }

// Take implements State.
func (f *Fallback) Take(ctx context.Context, key string, perMinute int) (d time.Duration, err error) {
	if f.use(ctx, func(ctx context.Context, s State) error { d, err = s.Take(ctx, key, perMinute); return err }) {
		return d, nil
	}
	return f.Local.Take(ctx, key, perMinute)
}

// Fail implements State.
func (f *Fallback) Fail(ctx context.Context, fl Failure) (n int, err error) {
	if f.use(ctx, func(ctx context.Context, s State) error { n, err = s.Fail(ctx, fl); return err }) {
		return n, nil
	}
	return f.Local.Fail(ctx, fl)
}

// Locked implements State. While the shared state is down, a lock either
// state knows of holds.
func (f *Fallback) Locked(ctx context.Context, keys ...string) (d time.Duration, err error) {
	local, err := f.Local.Locked(ctx, keys...)
	if err != nil {
		return 0, err
	}
	if f.use(ctx, func(ctx context.Context, s State) error { d, err = s.Locked(ctx, keys...); return err }) {
		return max(d, local), nil
	}
	return local, nil
}

// Count implements State.
func (f *Fallback) Count(ctx context.Context, key string) (n int, err error) {
	local, err := f.Local.Count(ctx, key)
	if err != nil {
		return 0, err
	}
	if f.use(ctx, func(ctx context.Context, s State) error { n, err = s.Count(ctx, key); return err }) {
		return n + local, nil
	}
	return local, nil
}

// Mark implements State.
func (f *Fallback) Mark(ctx context.Context, key string, ttl time.Duration) (ok bool, err error) {
	if f.use(ctx, func(ctx context.Context, s State) error { ok, err = s.Mark(ctx, key, ttl); return err }) {
		return ok, nil
	}
	return f.Local.Mark(ctx, key, ttl)
}

// Clear implements State: both states forget the keys. It fails if the
// shared state did not answer: the keys may still be set there.
func (f *Fallback) Clear(ctx context.Context, keys ...string) error {
	var shared error
	if !f.use(ctx, func(ctx context.Context, s State) error { shared = s.Clear(ctx, keys...); return shared }) {
		_ = f.Local.Clear(ctx, keys...)
		if shared == nil {
			shared = errors.New("unavailable")
		}
		return fmt.Errorf("throttle: shared state: %w", shared)
	}
	return f.Local.Clear(ctx, keys...)
}
