package redis

import (
	"context"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/internal/counters"
)

// nsSlot is the namespace of the slot keys: a sorted set per key, of the
// holders scored by their lease end on the store's clock.
const nsSlot = "slot:"

// acquireScript is AcquireSlot on the sorted set KEYS[1]: it drops the
// holders whose lease has ended, then leases a slot to ARGV[3] until now +
// ARGV[2] milliseconds if it holds one already or fewer than ARGV[4] are
// held. The key lives as long as its latest lease. ARGV: offset, lease in
// milliseconds, holder, max. It returns 1 if the holder has the slot.
var acquireScript = goredis.NewScript(clockLua + `
local t = now()
local lease = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', int(t))
if not redis.call('ZSCORE', KEYS[1], ARGV[3]) and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then
  return 0
end
redis.call('ZADD', KEYS[1], int(t + lease * 1000), ARGV[3])
redis.call('PEXPIRE', KEYS[1], lease)
return 1
`)

// renewScript is RenewSlots for one slot: ZADD of the holder ARGV[3] to
// KEYS[1] until now + ARGV[2] milliseconds, whatever the set holds. ARGV:
// offset, lease in milliseconds, holder.
var renewScript = goredis.NewScript(clockLua + `
local t = now()
local lease = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], int(t + lease * 1000), ARGV[3])
redis.call('PEXPIRE', KEYS[1], lease)
return 1
`)

// AcquireSlot implements counters.Store: one script. lease is rounded up to
// the millisecond.
func (s *Store) AcquireSlot(ctx context.Context, key, holder string, max int, lease time.Duration) (bool, error) {
	if max <= 0 || lease <= 0 {
		return false, fmt.Errorf("redis: AcquireSlot max %d or lease %v is not positive", max, lease)
	}
	v, err := s.eval(ctx, acquireScript, "acquire slot", []string{s.prefix + nsSlot + key},
		s.offsetUS(), millisUp(lease), holder, max)
	if err != nil {
		return false, err
	}
	n, err := asInt(v)
	return n == 1, err
}

// RenewSlots implements counters.Store: one script per slot, sent in one
// pipeline (the slots' keys may live on different cluster nodes).
func (s *Store) RenewSlots(ctx context.Context, slots []counters.Slot, lease time.Duration) error {
	if lease <= 0 {
		return fmt.Errorf("redis: RenewSlots lease %v is not positive", lease)
	}
	if len(slots) == 0 {
		return nil
	}
	// The script is loaded (EVALSHA falls back to EVAL once) before the
	// pipeline, whose replies would not say which call lacked it.
	if err := renewScript.Load(ctx, s.client).Err(); err != nil {
		return fmt.Errorf("redis: renew slots: %w", err)
	}
	pipe := s.client.Pipeline()
	ms := millisUp(lease)
	for _, x := range slots {
		renewScript.EvalSha(ctx, pipe, []string{s.prefix + nsSlot + x.Key}, s.offsetUS(), ms, x.Holder)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("redis: renew slots: %w", err)
	}
	return nil
}

// ReleaseSlot implements counters.Store: one ZREM.
func (s *Store) ReleaseSlot(ctx context.Context, key, holder string) error {
	if err := s.client.ZRem(ctx, s.prefix+nsSlot+key, holder).Err(); err != nil {
		return fmt.Errorf("redis: release slot: %w", err)
	}
	return nil
}

// WatchBans implements counters.Store: fn hears of the bans this node sets,
// of those set through other nodes as their pub/sub messages arrive, and of
// those missed while the subscription was down once it is back.
func (s *Store) WatchBans(fn func(key string)) (cancel func()) { return s.banWatch.Add(fn) }
