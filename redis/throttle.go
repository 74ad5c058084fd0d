package redis

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-redis/redis_rate/v10"
	goredis "github.com/redis/go-redis/v9"

	"github.com/latchauth/latch/throttle"
)

// ThrottleState is a throttle.State in Redis, shared by every instance
// of a deployment, so that they throttle sign-ins as one. Keys are
// PREFIX:throttle:KEY; the per-address budget is a GCRA limiter
// (github.com/go-redis/redis_rate), the failure counters and locks are
// changed by one Lua script per failure (INCR, PEXPIRE on the first,
// SET PX at the limit), so concurrent failures on several instances add
// up exactly. Keys expire by themselves.
//
// Put it behind a throttle.Fallback: it returns Redis's errors as they
// come.
type ThrottleState struct {
	client goredis.UniversalClient
	prefix string
	rate   *redis_rate.Limiter
}

var _ throttle.State = (*ThrottleState)(nil)

// ThrottleState returns the throttle state on f's connection and prefix.
func (f *Fanout) ThrottleState() *ThrottleState {
	prefix := f.prefix + ":throttle:"
	return &ThrottleState{
		client: f.client, prefix: prefix,
		rate: redis_rate.NewLimiter(prefixed{UniversalClient: f.client, prefix: prefix}),
	}
}

func (s *ThrottleState) key(k string) string { return s.prefix + k }

// Take implements throttle.State with GCRA: perMinute a minute, a burst
// of perMinute.
func (s *ThrottleState) Take(ctx context.Context, key string, perMinute int) (time.Duration, error) {
	res, err := s.rate.Allow(ctx, key, redis_rate.Limit{Rate: perMinute, Burst: perMinute, Period: time.Minute})
	if err != nil {
		return 0, fmt.Errorf("redis: throttle take: %w", err)
	}
	if res.Allowed > 0 {
		return 0, nil
	}
	return max(res.RetryAfter, time.Millisecond), nil
}

// failScript counts a failure: KEYS[1] the counter, KEYS[2] the lock;
// ARGV window ms, max, lockout ms.
var failScript = goredis.NewScript(`
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local max = tonumber(ARGV[2])
if max > 0 and n >= max then redis.call('SET', KEYS[2], '1', 'PX', ARGV[3]) end
return n
`)

// Fail implements throttle.State.
func (s *ThrottleState) Fail(ctx context.Context, f throttle.Failure) (int, error) {
	n, err := failScript.Run(ctx, s.client, []string{s.key(f.Counter), s.key(f.Lock)},
		ms(f.Window), f.Max, ms(f.Lockout)).Int()
	if err != nil {
		return 0, fmt.Errorf("redis: throttle fail: %w", err)
	}
	return n, nil
}

func ms(d time.Duration) int64 { return max(d.Milliseconds(), 1) }

// Locked implements throttle.State: one pipeline of PTTLs.
func (s *ThrottleState) Locked(ctx context.Context, keys ...string) (time.Duration, error) {
	cmds := make([]*goredis.DurationCmd, len(keys))
	_, err := s.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, k := range keys {
			cmds[i] = p.PTTL(ctx, s.key(k))
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("redis: throttle locked: %w", err)
	}
	var d time.Duration
	for _, c := range cmds {
		// Negative: no such key (-2), or none without expiry (-1, which
		// cannot happen: every lock expires).
		d = max(d, c.Val())
	}
	return d, nil
}

// Count implements throttle.State.
func (s *ThrottleState) Count(ctx context.Context, key string) (int, error) {
	n, err := s.client.Get(ctx, s.key(key)).Int()
	if errors.Is(err, goredis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("redis: throttle count: %w", err)
	}
	return n, nil
}

// Mark implements throttle.State.
func (s *ThrottleState) Mark(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	ok, err := s.client.SetNX(ctx, s.key(key), "1", ttl).Result()
	if err != nil {
		return false, fmt.Errorf("redis: throttle mark: %w", err)
	}
	return ok, nil
}

// Clear implements throttle.State. Keys are deleted one by one: in a
// cluster they may live in different slots.
func (s *ThrottleState) Clear(ctx context.Context, keys ...string) error {
	for _, k := range keys {
		if err := s.client.Del(ctx, s.key(k)).Err(); err != nil {
			return fmt.Errorf("redis: throttle clear: %w", err)
		}
	}
	return nil
}

// prefixed hands redis_rate a client that files its keys ("rate:KEY")
// under the deployment's prefix, like every other key of Latch.
type prefixed struct {
	goredis.UniversalClient
	prefix string
}

func (p prefixed) keys(keys []string) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = p.prefix + strings.TrimPrefix(k, "rate:") + ":rate"
	}
	return out
}

func (p prefixed) Eval(ctx context.Context, script string, keys []string, args ...any) *goredis.Cmd {
	return p.UniversalClient.Eval(ctx, script, p.keys(keys), args...)
}

func (p prefixed) EvalSha(ctx context.Context, sha1 string, keys []string, args ...any) *goredis.Cmd {
	return p.UniversalClient.EvalSha(ctx, sha1, p.keys(keys), args...)
}

func (p prefixed) EvalRO(ctx context.Context, script string, keys []string, args ...any) *goredis.Cmd {
	return p.UniversalClient.EvalRO(ctx, script, p.keys(keys), args...)
}

func (p prefixed) EvalShaRO(ctx context.Context, sha1 string, keys []string, args ...any) *goredis.Cmd {
	return p.UniversalClient.EvalShaRO(ctx, sha1, p.keys(keys), args...)
}

func (p prefixed) Del(ctx context.Context, keys ...string) *goredis.IntCmd {
	return p.UniversalClient.Del(ctx, p.keys(keys)...)
}
