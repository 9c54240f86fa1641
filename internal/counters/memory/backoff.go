package memory

import (
	"context"
	"math"
	"time"

	"github.com/tollgate/tollgate/internal/counters"
)

// failures is the backoff state of one key (Fail): how many failures it
// has, until when it is delayed and when it is forgotten, as durations
// since the Store's epoch (monotonic).
type failures struct {
	n       int
	until   time.Duration
	forgets time.Duration
}

// after returns t+d, saturating at the longest Duration.
func after(t, d time.Duration) time.Duration {
	return time.Duration(addSat(int64(t), int64(d)))
}

// Fail implements counters.Store.
func (s *Store) Fail(_ context.Context, key string, b counters.Backoff) (counters.Decision, error) {
	if err := b.Validate(); err != nil {
		return counters.Decision{}, err
	}
	now := s.clock.Now().Sub(s.epoch)
	sh := s.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	f, ok := sh.fail[key]
	if !ok || f.forgets <= now {
		f = failures{}
	}
	if f.until > now {
		return counters.Decision{RetryAfter: f.until - now}, nil
	}
	f.n = min(f.n+1, math.MaxInt32)
	d := b.Delay(f.n)
	f.until = 0
	if d > 0 {
		f.until = after(now, d)
	}
	f.forgets = after(max(now, f.until), b.Window)
	if sh.fail == nil {
		sh.fail = make(map[string]failures)
	}
	sh.fail[key] = f
	sh.failWrites++
	if sh.failWrites%s.sweepEv == 0 || len(sh.fail) > s.maxPer {
		sh.sweepFailures(now, s.maxPer)
	}
	return counters.Decision{Allowed: true, RetryAfter: d}, nil
}

// Forgive implements counters.Store.
func (s *Store) Forgive(_ context.Context, key string) error {
	now := s.clock.Now().Sub(s.epoch)
	sh := s.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	f, ok := sh.fail[key]
	switch {
	case !ok:
	case f.forgets <= now || f.n <= 1:
		delete(sh.fail, key)
	default:
		f.n--
		f.until = 0
		sh.fail[key] = f
	}
	return nil
}

// sweepFailures drops forgotten keys and, if the shard still holds more
// than maxKeys, arbitrary ones (as sweep does for attempts).
func (sh *shard) sweepFailures(now time.Duration, maxKeys int) {
	for k, f := range sh.fail {
		if f.forgets <= now {
			delete(sh.fail, k)
		}
	}
	for k := range sh.fail {
		if len(sh.fail) <= maxKeys {
			break
		}
		delete(sh.fail, k)
	}
}

// FailLen returns the number of backoff keys held, for tests and metrics.
// Forgotten keys count until their shard is next swept.
func (s *Store) FailLen() int {
	return s.count(func(sh *shard) int { return len(sh.fail) })
}
