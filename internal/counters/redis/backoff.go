package redis

import (
	"context"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/internal/counters"
)

// nsFail is the namespace of the backoff keys of Fail.
const nsFail = "fail:"

// failScript is Fail. KEYS[1] is a hash {n: failures, u: delayed until,
// f: forgotten at}, on the store's clock in microseconds, living until f.
// ARGV: offset, free, base, max, window (microseconds). It returns {1, the
// delay this failure started} when it recorded the failure, {0, what remains
// of the delay} when the key was delayed.
var failScript = goredis.NewScript(clockLua + `
local t = now()
local free, base, maxd, window = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local v = redis.call('HMGET', KEYS[1], 'n', 'u', 'f')
local n, u, f = tonumber(v[1]) or 0, tonumber(v[2]) or 0, tonumber(v[3]) or 0
if f <= t then n, u = 0, 0 end
if u > t then return {0, u - t} end
n = math.min(n + 1, 2147483647)
local d = 0
if n > free then
  d = base
  for _ = 1, n - free - 1 do
    if d > maxd / 2 then d = maxd break end
    d = d * 2
  end
  d = math.min(d, maxd)
end
u = 0
if d > 0 then u = t + d end
f = math.max(t, u) + window
redis.call('HSET', KEYS[1], 'n', n, 'u', int(u), 'f', int(f))
redis.call('PEXPIRE', KEYS[1], ms(f - t))
return {1, d}
`)

// forgiveScript is Forgive: one failure fewer under KEYS[1] and no delay,
// keeping the key's expiry; the key goes with its last failure. ARGV:
// offset.
var forgiveScript = goredis.NewScript(clockLua + `
local t = now()
local v = redis.call('HMGET', KEYS[1], 'n', 'f')
local n, f = tonumber(v[1]), tonumber(v[2]) or 0
if not n then return 0 end
if f <= t or n <= 1 then
  redis.call('DEL', KEYS[1])
  return 0
end
redis.call('HSET', KEYS[1], 'n', n - 1, 'u', 0)
return 0
`)

// Fail implements counters.Store in one script. Durations are rounded to
// the microsecond and saturate at 2^50 microseconds.
func (s *Store) Fail(ctx context.Context, key string, b counters.Backoff) (counters.Decision, error) {
	if err := b.Validate(); err != nil {
		return counters.Decision{}, err
	}
	v, err := s.eval(ctx, failScript, "fail", []string{s.prefix + nsFail + key}, s.offsetUS(),
		b.Free, micros(b.Base, 1, maxSpan), micros(b.Max, 1, maxSpan), micros(b.Window, 1, maxSpan))
	if err != nil {
		return counters.Decision{}, err
	}
	r, ok := v.([]any)
	if !ok || len(r) != 2 {
		return counters.Decision{}, fmt.Errorf("redis: fail: unexpected script reply %v", v)
	}
	var n [2]int64
	for i := range n {
		if n[i], err = asInt(r[i]); err != nil {
			return counters.Decision{}, err
		}
	}
	return counters.Decision{Allowed: n[0] == 1, RetryAfter: time.Duration(n[1]) * time.Microsecond}, nil
}

// Forgive implements counters.Store in one script.
func (s *Store) Forgive(ctx context.Context, key string) error {
	_, err := s.eval(ctx, forgiveScript, "forgive", []string{s.prefix + nsFail + key}, s.offsetUS())
	return err
}
