package memory

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tollgate/tollgate/internal/counters"
)

// bans holds the bans of a Store: their expiries as durations since the
// Store's epoch (monotonic). Bans are few (they are set for abuse), so one
// map under one lock serves; expired bans are swept whenever the map has
// doubled since the last sweep, so memory follows the live bans.
type bans struct {
	mu     sync.RWMutex
	until  map[string]time.Duration
	sweepN int // sweep when the map grows beyond this
	// n is len(until), readable without the lock: the gateway asks for
	// it on every request, to skip ban checks while there is no ban.
	n atomic.Int64
}

// Ban implements counters.Store.
func (s *Store) Ban(_ context.Context, key string, ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("memory: Ban ttl %v is not positive", ttl)
	}
	now := s.clock.Now().Sub(s.epoch)
	exp := time.Duration(math.MaxInt64)
	if now < exp-ttl {
		exp = now + ttl
	}
	if s.setBan(key, exp, now) {
		s.banWatch.Notify(key)
	}
	return nil
}

// setBan extends the ban of key to exp, and reports whether it did.
func (s *Store) setBan(key string, exp, now time.Duration) bool {
	b := &s.bans
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.until == nil {
		b.until = make(map[string]time.Duration)
	}
	if cur, ok := b.until[key]; ok && cur >= exp {
		return false
	}
	b.until[key] = exp
	if len(b.until) > b.sweepN {
		for k, until := range b.until {
			if until <= now {
				delete(b.until, k)
			}
		}
		b.sweepN = max(64, 2*len(b.until))
	}
	b.n.Store(int64(len(b.until)))
	return true
}

// Banned implements counters.Store.
func (s *Store) Banned(_ context.Context, key string) (time.Duration, error) {
	b := &s.bans
	b.mu.RLock()
	until, ok := b.until[key]
	b.mu.RUnlock()
	if !ok {
		return 0, nil
	}
	return max(0, until-s.clock.Now().Sub(s.epoch)), nil
}

// BanLen returns the number of bans held, for tests and metrics. Expired
// bans count until they are swept.
func (s *Store) BanLen() int { return int(s.bans.n.Load()) }

var _ counters.Store = (*Store)(nil)
