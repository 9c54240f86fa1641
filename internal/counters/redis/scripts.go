package redis

import goredis "github.com/redis/go-redis/v9"

// The scripts run on the store's clock: the server's TIME, in integer
// microseconds since the Unix epoch, plus ARGV[1], the clock offset (0 but
// in tests). Every value they keep carries its own expiry on that clock, so
// that a key Redis still holds but whose time has passed on the store's
// clock counts as absent; and every key they write gets a TTL (PX/PEXPIRE)
// no shorter than that expiry, so nothing is left behind. Numbers are Lua
// doubles: exact up to 2^53, which the callers keep every value below.
// They are written back with %.0f, never in exponent notation.
//
// Redis 7 replicates the effects of scripts, not the scripts, so reading
// TIME before writing is allowed.
const clockLua = `
local function now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2]) + tonumber(ARGV[1])
end
local function int(x) return string.format('%.0f', x) end
local function ms(us) return math.max(1, math.ceil(us / 1000)) end
`

// attemptScript checks, and with ARGV[4] = 1 records, one attempt under
// KEYS[1]: GCRA on the key's theoretical arrival time (TAT). ARGV: offset,
// interval, tolerance, record. It returns how long until the attempt would
// be allowed, 0 if it is (and then was recorded). The key holds the TAT and
// lives until it: then the bucket is full, as if never used.
var attemptScript = goredis.NewScript(clockLua + `
local t = now()
local interval, tolerance = tonumber(ARGV[2]), tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1])) or t
if tat < t then tat = t end
local wait = tat - tolerance - t
if wait > 0 then return wait end
if ARGV[4] == '1' then
  tat = tat + interval
  redis.call('SET', KEYS[1], int(tat), 'PX', ms(tat - t))
end
return 0
`)

// seenScript is MarkSeen: KEYS[1] is the owner's replay cache, a sorted set
// of its keys scored by their expiries on the store's clock. It drops the
// expired ones, then records ARGV[2] unless it is there already or the set
// holds ARGV[4] keys, and keeps the set's TTL at least the new key's, so
// that the set lives until its last key expires. ARGV: offset, key, ttl in
// milliseconds, the owner's maximum. It returns {1, expiry} for a new key
// (the expiry is the claim of Unsee), {2, 0} for a key already there, and
// {3, microseconds until the oldest key expires} for a full set.
var seenScript = goredis.NewScript(clockLua + `
local t = now()
local ttl = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', int(t))
if redis.call('ZSCORE', KEYS[1], ARGV[2]) then return {2, 0} end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {3, math.max(0, tonumber(first[2]) - t)}
end
local exp = int(t + ttl * 1000)
redis.call('ZADD', KEYS[1], exp, ARGV[2])
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
return {1, tonumber(exp)}
`)

// unseeScript is Unsee: it removes ARGV[1] from the owner's set KEYS[1] if
// its expiry is still ARGV[2], the claim MarkSeen returned. It returns 1 if
// it did.
var unseeScript = goredis.NewScript(`
local cur = redis.call('ZSCORE', KEYS[1], ARGV[1])
if cur and tonumber(cur) == tonumber(ARGV[2]) then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 1
end
return 0
`)

// takeLua is the script of Take. KEYS: the rate key, the quota key (the
// same key twice when only one applies). ARGV: offset, T (the emission
// interval; 0: no rate), tolerance T×(Burst−1), T×Burst, units, quota (0:
// no quota), period end.
//
// The rate key holds the GCRA TAT and lives until it; the quota key is a
// hash {n: units used, e: period end} that lives until e. It reads both
// (GET, HMGET), decides, and only if admitted writes both: SET PX of the
// TAT, and HINCRBY of a live count (keeping its TTL) or HSET and PEXPIRE
// to the period end of a new one (none for 0 units or a period over).
// It returns {outcome (1 admitted, 2 rate limited, 3 quota exhausted),
// retry after, rate remaining, rate reset, quota used}, durations in
// microseconds.
const takeLua = clockLua + `
local t = now()
local T, tolerance, full = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local units, quota, qend = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local outcome, retry = 1, 0

local tat = t
if T > 0 then
  local stored = tonumber(redis.call('GET', KEYS[1]))
  if stored and stored > t then tat = stored end
  local wait = tat - t - tolerance
  if wait > 0 then outcome, retry = 2, wait end
end

local used, live, over = 0, false, qend <= t
if quota > 0 then
  if not over then
    local v = redis.call('HMGET', KEYS[2], 'n', 'e')
    local e = tonumber(v[2])
    if v[1] and e and e > t then used, live = tonumber(v[1]), true end
  end
  if outcome == 1 and units > 0 and units > quota - used then
    outcome, retry = 3, math.max(0, qend - t)
  end
end

if outcome == 1 then
  if T > 0 then
    tat = tat + T
    redis.call('SET', KEYS[1], int(tat), 'PX', ms(tat - t))
  end
  if quota > 0 then
    used = used + units
    if units > 0 and not over then
      if live then
        redis.call('HINCRBY', KEYS[2], 'n', ARGV[5])
      else
        redis.call('HSET', KEYS[2], 'n', ARGV[5], 'e', ARGV[7])
        redis.call('PEXPIRE', KEYS[2], ms(qend - t))
      end
    end
  end
end

local remaining, reset = 0, 0
if T > 0 then
  reset = tat - t
  local room = full - reset
  remaining = math.floor(room / T) -- the quotient is rounded: make it exact
  if remaining * T > room then remaining = remaining - 1 end
  if (remaining + 1) * T <= room then remaining = remaining + 1 end
  remaining = math.max(0, remaining)
end
return {outcome, retry, remaining, reset, used}
`

var takeScript = goredis.NewScript(takeLua)

// quotaUsedScript is QuotaUsed: the count of the hash KEYS[1] if its period
// end is after the store's clock, else 0. ARGV: offset.
var quotaUsedScript = goredis.NewScript(clockLua + `
local t = now()
local v = redis.call('HMGET', KEYS[1], 'n', 'e')
local e = tonumber(v[2])
if v[1] and e and e > t then return tonumber(v[1]) end
return 0
`)

// setQuotaUsedScript is SetQuotaUsed: it raises a live count of KEYS[1] to
// ARGV[2], keeping its expiry, or creates one expiring at ARGV[3] unless
// that has passed or the count is 0. ARGV: offset, used, expiry.
var setQuotaUsedScript = goredis.NewScript(clockLua + `
local t = now()
local used, exp = tonumber(ARGV[2]), tonumber(ARGV[3])
local v = redis.call('HMGET', KEYS[1], 'n', 'e')
local e = tonumber(v[2])
if v[1] and e and e > t then
  if used > tonumber(v[1]) then redis.call('HSET', KEYS[1], 'n', ARGV[2]) end
  return 0
end
if used == 0 or exp <= t then return 0 end
redis.call('HSET', KEYS[1], 'n', ARGV[2], 'e', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ms(exp - t))
return 1
`)

// banScript is Ban: it extends the ban KEYS[1], which holds its end, to
// ARGV[2] milliseconds from now unless it already lasts longer, and
// publishes on ARGV[3] "<end> <ARGV[4]>" for every node to mirror the ban
// (even when unchanged: a node that missed it catches up). ARGV: offset,
// ttl in milliseconds, channel, the caller's key. It returns the end.
var banScript = goredis.NewScript(clockLua + `
local t = now()
local ttl = tonumber(ARGV[2])
local exp = t + ttl * 1000
local cur = tonumber(redis.call('GET', KEYS[1]))
if cur and cur >= exp then
  exp = cur
else
  redis.call('SET', KEYS[1], int(exp), 'PX', ttl)
end
redis.call('PUBLISH', ARGV[3], int(exp) .. ' ' .. ARGV[4])
return exp
`)
