package memory

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/tollgate/tollgate/internal/counters"
)

// Take implements counters.Store. It locks the shards of both keys, in shard
// order and once if they are the same, so the decision is atomic; the rate
// is GCRA in integer nanoseconds since the Store's epoch (monotonic), the
// quota period's end is on the wall clock. A new quota count whose shard is
// full of live counts makes it return ErrQuotaFull, consuming nothing.
func (s *Store) Take(_ context.Context, rateKey, quotaKey string, units int64, a counters.Allowance) (counters.LimitDecision, error) {
	if err := a.Validate(); err != nil {
		return counters.LimitDecision{}, err
	}
	if units < 0 {
		return counters.LimitDecision{}, fmt.Errorf("memory: Take of %d units", units)
	}
	d := counters.LimitDecision{Outcome: counters.Admitted}
	hasRate, hasQuota := a.Rate > 0, a.Quota > 0
	if !hasRate && !hasQuota {
		return d, nil
	}
	t := s.clock.Now()
	ri, qi := -1, -1
	if hasRate {
		ri = s.shardIndex(rateKey)
	}
	if hasQuota {
		qi = s.shardIndex(quotaKey)
	}
	s.lockPair(ri, qi)
	defer s.unlockPair(ri, qi)

	// The rate: conforming if the bucket's TAT, moved up to now, is within
	// the tolerance of now. Nothing is written yet.
	var (
		rs                *shard
		now, tat, T, full int64
		rateNew           bool
	)
	if hasRate {
		rs = &s.shards[ri]
		now = int64(t.Sub(s.epoch))
		T = int64(a.Interval())
		tolerance := mulSat(T, int64(a.Burst-1))
		full = addSat(tolerance, T) // T×Burst: how far ahead of now an empty bucket's TAT is
		stored, ok := rs.rate[rateKey]
		rateNew, tat = !ok, now
		if ok && stored > now {
			tat = stored
		}
		if wait := subSat(subSat(tat, now), tolerance); wait > 0 {
			d.Outcome, d.RetryAfter = counters.RateLimited, time.Duration(wait)
		}
	}

	// The quota: the request must fit in what the period has left.
	var (
		qs         *shard
		qnow, exp  time.Duration
		used       int64
		quotaLive  bool
		periodOver bool
	)
	if hasQuota {
		qs = &s.shards[qi]
		qnow, exp = t.Round(0).Sub(s.wallEpoch), a.PeriodEnd.Sub(s.wallEpoch)
		qs.quota.expire(qnow)
		used, quotaLive = qs.quota.m[quotaKey]
		if periodOver = exp <= qnow; periodOver {
			used, quotaLive = 0, false
		}
		if d.Outcome == counters.Admitted && units > 0 && units > a.Quota-used {
			d.Outcome, d.RetryAfter = counters.QuotaExhausted, max(0, exp-qnow)
		}
		if d.Outcome == counters.Admitted && units > 0 && !quotaLive && !periodOver &&
			len(qs.quota.m) >= s.maxQuotaPer {
			return counters.LimitDecision{}, ErrQuotaFull
		}
	}

	// Admitted: consume both.
	if d.Outcome == counters.Admitted {
		if hasRate {
			tat = addSat(tat, T)
			s.writeRate(rs, rateKey, tat, now, rateNew)
		}
		if hasQuota {
			used += units
			switch {
			case units == 0 || periodOver: // nothing to keep
			case quotaLive:
				qs.quota.m[quotaKey] = used
			default:
				qs.quota.add(quotaKey, used, exp)
			}
		}
	}

	if hasRate {
		ahead := subSat(tat, now) // tat >= now
		d.RateLimit = a.Burst
		d.RateRemaining = int(max(0, subSat(full, ahead)/T))
		d.RateReset = time.Duration(ahead)
	}
	if hasQuota {
		d.QuotaUsed, d.QuotaRemaining = used, max(0, a.Quota-used)
	}
	return d, nil
}

// writeRate stores the TAT of key in sh, keeping the shard's rate keys
// within the bound: every max(sweepEv, n) writes it sweeps the keys whose
// bucket is full again (O(1) amortized), and a new key beyond the bound
// sheds an arbitrary one.
func (s *Store) writeRate(sh *shard, key string, tat, now int64, isNew bool) {
	if sh.rate == nil {
		sh.rate = make(map[string]int64)
	}
	if isNew && len(sh.rate) >= s.maxPer {
		for k := range sh.rate {
			delete(sh.rate, k)
			if len(sh.rate) < s.maxPer {
				break
			}
		}
	}
	sh.rate[key] = tat
	sh.ratePeak = max(sh.ratePeak, len(sh.rate))
	if sh.rateWrites++; sh.rateWrites >= max(s.sweepEv, len(sh.rate)) {
		sh.sweepRate(now)
	}
}

// sweepRate drops the rate keys whose TAT has passed (their bucket is full,
// as if never used) and, like expiring, rebuilds the map once it has fallen
// to a quarter of its peak.
func (sh *shard) sweepRate(now int64) {
	sh.rateWrites = 0
	for k, tat := range sh.rate {
		if tat <= now {
			delete(sh.rate, k)
		}
	}
	if sh.ratePeak < compactBelow || len(sh.rate) > sh.ratePeak/4 {
		return
	}
	if len(sh.rate) == 0 {
		sh.rate = nil
	} else {
		m := make(map[string]int64, len(sh.rate))
		for k, v := range sh.rate {
			m[k] = v
		}
		sh.rate = m
	}
	sh.ratePeak = len(sh.rate)
}

// lockPair locks shards i and j (-1: none) in index order, once if equal.
func (s *Store) lockPair(i, j int) {
	i, j = min(i, j), max(i, j)
	if i >= 0 {
		s.shards[i].mu.Lock()
	}
	if j >= 0 && j != i {
		s.shards[j].mu.Lock()
	}
}

// unlockPair unlocks what lockPair(i, j) locked.
func (s *Store) unlockPair(i, j int) {
	i, j = min(i, j), max(i, j)
	if j >= 0 && j != i {
		s.shards[j].mu.Unlock()
	}
	if i >= 0 {
		s.shards[i].mu.Unlock()
	}
}

// QuotaUsed implements counters.Store.
func (s *Store) QuotaUsed(_ context.Context, quotaKey string) (int64, error) {
	qnow := s.clock.Now().Round(0).Sub(s.wallEpoch)
	sh := s.shard(quotaKey)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.quota.expire(qnow)
	return sh.quota.m[quotaKey], nil
}

// SetQuotaUsed implements counters.Store. It returns ErrQuotaFull for a new
// count whose shard is full of live counts.
func (s *Store) SetQuotaUsed(_ context.Context, quotaKey string, used int64, expiresAt time.Time) error {
	if used < 0 {
		return fmt.Errorf("memory: SetQuotaUsed of %d units", used)
	}
	qnow := s.clock.Now().Round(0).Sub(s.wallEpoch)
	exp := expiresAt.Sub(s.wallEpoch)
	sh := s.shard(quotaKey)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.quota.expire(qnow)
	if cur, ok := sh.quota.m[quotaKey]; ok {
		sh.quota.m[quotaKey] = max(cur, used)
		return nil
	}
	if used == 0 || exp <= qnow {
		return nil
	}
	if len(sh.quota.m) >= s.maxQuotaPer {
		return ErrQuotaFull
	}
	sh.quota.add(quotaKey, used, exp)
	return nil
}

// RateLen returns the number of rate-limit keys held, for tests and metrics.
// Keys whose bucket is full again count until their shard is next swept.
func (s *Store) RateLen() int {
	return s.count(func(sh *shard) int { return len(sh.rate) })
}

// QuotaLen returns the number of quota counts held, for tests and metrics.
// Counts whose period is over count until their shard is next used.
func (s *Store) QuotaLen() int {
	return s.count(func(sh *shard) int { return len(sh.quota.m) })
}

func addSat(a, b int64) int64 {
	c := a + b
	if (c > a) == (b > 0) {
		return c
	}
	if b > 0 {
		return math.MaxInt64
	}
	return math.MinInt64
}

func subSat(a, b int64) int64 {
	if b == math.MinInt64 {
		if a >= 0 {
			return math.MaxInt64
		}
		return a - b
	}
	return addSat(a, -b)
}

// mulSat returns a×b for a, b >= 0, saturating.
func mulSat(a, b int64) int64 {
	if a != 0 && b > math.MaxInt64/a {
		return math.MaxInt64
	}
	return a * b
}
