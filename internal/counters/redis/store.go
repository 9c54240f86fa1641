package redis

import (
	"context"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/internal/counters"
)

const (
	// maxExact bounds the counts and units the scripts handle: Lua numbers
	// are doubles, exact to 2^53. Larger values saturate.
	maxExact = 1<<53 - 1
	// maxSpan bounds the intervals and tolerances of the rates, in
	// microseconds (some 35 years), so that a TAT stays exact; longer ones
	// saturate.
	maxSpan = 1 << 50
	// maxTTL bounds the ttls of MarkSeen and Ban, in milliseconds (some 100
	// years).
	maxTTL = 100 * 365 * 24 * 3600 * 1000
)

// Key namespaces, after the prefix.
const (
	nsAttempt = "att:"
	nsSeen    = "replay:" // one sorted set per owner
	nsRate    = "rate:"
	nsQuota   = "quota:"
)

// micros converts d to whole microseconds, rounded to the nearest, within
// [lo, hi].
func micros(d time.Duration, lo, hi int64) int64 {
	us := int64(d / time.Microsecond)
	if d%time.Microsecond >= time.Microsecond/2 {
		us++
	}
	return min(max(us, lo), hi)
}

// millisUp converts a positive d to milliseconds, rounded up, at most maxTTL.
func millisUp(d time.Duration) int64 {
	ms := int64(d / time.Millisecond)
	if d%time.Millisecond != 0 {
		ms++
	}
	return min(ms, maxTTL)
}

// mulSpan returns a×b for a, b >= 0, saturating at maxSpan.
func mulSpan(a, b int64) int64 {
	if a != 0 && b > maxSpan/a {
		return maxSpan
	}
	return min(a*b, maxSpan)
}

// unixMicros returns t in microseconds since the Unix epoch, within ±maxExact.
func unixMicros(t time.Time) int64 {
	switch {
	case t.After(time.UnixMicro(maxExact)):
		return maxExact
	case t.Before(time.UnixMicro(-maxExact)):
		return -maxExact
	}
	return t.UnixMicro()
}

// eval runs script and returns its reply, wrapping errors with what.
func (s *Store) eval(ctx context.Context, script *goredis.Script, what string, keys []string, args ...any) (any, error) {
	v, err := script.Run(ctx, s.client, keys, args...).Result()
	if err != nil {
		return nil, fmt.Errorf("redis: %s: %w", what, err)
	}
	return v, nil
}

func asInt(v any) (int64, error) {
	n, ok := v.(int64)
	if !ok {
		return 0, fmt.Errorf("redis: unexpected script reply %T", v)
	}
	return n, nil
}

// attempt runs attemptScript for l.
func (s *Store) attempt(ctx context.Context, key string, l counters.Limit, record bool) (counters.Decision, error) {
	if l.Max <= 0 || l.Window <= 0 {
		return counters.Decision{RetryAfter: l.Window}, nil
	}
	interval := micros(l.Window/time.Duration(l.Max), 1, maxSpan)
	flag := "0"
	if record {
		flag = "1"
	}
	v, err := s.eval(ctx, attemptScript, "attempt", []string{s.prefix + nsAttempt + key},
		s.offsetUS(), interval, mulSpan(interval, int64(l.Max-1)), flag)
	if err != nil {
		return counters.Decision{}, err
	}
	wait, err := asInt(v)
	if err != nil {
		return counters.Decision{}, err
	}
	if wait > 0 {
		return counters.Decision{RetryAfter: time.Duration(wait) * time.Microsecond}, nil
	}
	return counters.Decision{Allowed: true}, nil
}

// CheckAttempt implements counters.Store.
func (s *Store) CheckAttempt(ctx context.Context, key string, l counters.Limit) (counters.Decision, error) {
	return s.attempt(ctx, key, l, false)
}

// RecordAttempt implements counters.Store.
func (s *Store) RecordAttempt(ctx context.Context, key string, l counters.Limit) (counters.Decision, error) {
	return s.attempt(ctx, key, l, true)
}

// ResetAttempts implements counters.Store: one DEL.
func (s *Store) ResetAttempts(ctx context.Context, key string) error {
	if err := s.client.Del(ctx, s.prefix+nsAttempt+key).Err(); err != nil {
		return fmt.Errorf("redis: reset attempts: %w", err)
	}
	return nil
}

// MarkSeen implements counters.Store in one script on one key per owner,
// a sorted set of the owner's keys by expiry, whose TTL follows its last
// key (see seenScript). ttl is rounded up to the millisecond; the claim is
// the key's expiry in microseconds on the store's clock.
func (s *Store) MarkSeen(ctx context.Context, owner, key string, ttl time.Duration, maxPerOwner int) (counters.Seen, error) {
	if ttl <= 0 {
		return counters.Seen{}, fmt.Errorf("redis: MarkSeen ttl %v is not positive", ttl)
	}
	if maxPerOwner < 1 {
		return counters.Seen{}, fmt.Errorf("redis: MarkSeen maxPerOwner %d is less than 1", maxPerOwner)
	}
	v, err := s.eval(ctx, seenScript, "mark seen", []string{s.prefix + nsSeen + owner},
		s.offsetUS(), key, millisUp(ttl), min(int64(maxPerOwner), maxExact))
	if err != nil {
		return counters.Seen{}, err
	}
	r, ok := v.([]any)
	if !ok || len(r) != 2 {
		return counters.Seen{}, fmt.Errorf("redis: mark seen: unexpected script reply %v", v)
	}
	var n [2]int64
	for i := range n {
		if n[i], err = asInt(r[i]); err != nil {
			return counters.Seen{}, err
		}
	}
	switch n[0] {
	case 1:
		return counters.Seen{Outcome: counters.Fresh, Claim: n[1]}, nil
	case 2:
		return counters.Seen{Outcome: counters.Replayed}, nil
	case 3:
		return counters.Seen{Outcome: counters.OwnerFull, RetryAfter: time.Duration(n[1]) * time.Microsecond}, nil
	}
	return counters.Seen{}, fmt.Errorf("redis: mark seen: unexpected outcome %d", n[0])
}

// Unsee implements counters.Store: one script.
func (s *Store) Unsee(ctx context.Context, owner, key string, claim int64) error {
	_, err := s.eval(ctx, unseeScript, "unsee", []string{s.prefix + nsSeen + owner}, key, claim)
	return err
}

// Take implements counters.Store in one script. The rate's interval is
// rounded to the microsecond (at least one: rates above a million per
// second are a million); counts and units saturate at 2^53−1 and
// intervals and tolerances at 2^50 microseconds. In Redis Cluster, rateKey
// and quotaKey must hash to the same slot (see the package documentation).
func (s *Store) Take(ctx context.Context, rateKey, quotaKey string, units int64, a counters.Allowance) (counters.LimitDecision, error) {
	if err := a.Validate(); err != nil {
		return counters.LimitDecision{}, err
	}
	if units < 0 {
		return counters.LimitDecision{}, fmt.Errorf("redis: Take of %d units", units)
	}
	hasRate, hasQuota := a.Rate > 0, a.Quota > 0
	if !hasRate && !hasQuota {
		return counters.LimitDecision{Outcome: counters.Admitted}, nil
	}
	var T, tolerance, full, quota, end int64
	rk, qk := s.prefix+nsRate+rateKey, s.prefix+nsQuota+quotaKey
	if hasRate {
		T = micros(a.Interval(), 1, maxSpan)
		tolerance = mulSpan(T, int64(a.Burst-1))
		full = T + tolerance
	} else {
		rk = qk
	}
	if hasQuota {
		quota, end = min(a.Quota, maxExact), unixMicros(a.PeriodEnd)
	} else {
		qk = rk
	}
	v, err := s.takes.do(ctx, []string{rk, qk},
		s.offsetUS(), T, tolerance, full, min(units, maxExact), quota, end)
	if err != nil {
		return counters.LimitDecision{}, fmt.Errorf("redis: take: %w", err)
	}
	r, ok := v.([]any)
	if !ok || len(r) != 5 {
		return counters.LimitDecision{}, fmt.Errorf("redis: take: unexpected script reply %v", v)
	}
	var n [5]int64
	for i := range n {
		if n[i], err = asInt(r[i]); err != nil {
			return counters.LimitDecision{}, err
		}
	}
	d := counters.LimitDecision{RetryAfter: time.Duration(n[1]) * time.Microsecond}
	switch n[0] {
	case 1:
		d.Outcome = counters.Admitted
	case 2:
		d.Outcome = counters.RateLimited
	case 3:
		d.Outcome = counters.QuotaExhausted
	default:
		return counters.LimitDecision{}, fmt.Errorf("redis: take: unexpected outcome %d", n[0])
	}
	if hasRate {
		d.RateLimit = a.Burst
		d.RateRemaining = int(n[2])
		d.RateReset = time.Duration(n[3]) * time.Microsecond
	}
	if hasQuota {
		d.QuotaUsed = n[4]
		d.QuotaRemaining = max(0, a.Quota-n[4])
	}
	return d, nil
}

// QuotaUsed implements counters.Store.
func (s *Store) QuotaUsed(ctx context.Context, quotaKey string) (int64, error) {
	v, err := s.eval(ctx, quotaUsedScript, "quota used", []string{s.prefix + nsQuota + quotaKey}, s.offsetUS())
	if err != nil {
		return 0, err
	}
	return asInt(v)
}

// SetQuotaUsed implements counters.Store. used saturates at 2^53−1.
func (s *Store) SetQuotaUsed(ctx context.Context, quotaKey string, used int64, expiresAt time.Time) error {
	if used < 0 {
		return fmt.Errorf("redis: SetQuotaUsed of %d units", used)
	}
	_, err := s.eval(ctx, setQuotaUsedScript, "set quota used", []string{s.prefix + nsQuota + quotaKey},
		s.offsetUS(), min(used, maxExact), unixMicros(expiresAt))
	return err
}
