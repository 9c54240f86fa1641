// Package memory implements counters.Store in the memory of one process: the
// hot counters of the all-in-one deployment.
package memory

import (
	"context"
	"hash/maphash"
	"sync"
	"time"

	"github.com/tollgate/tollgate/internal/clock"
	"github.com/tollgate/tollgate/internal/counters"
)

const shardCount = 64

// DefaultMaxKeys bounds the number of keys a Store holds.
const DefaultMaxKeys = 1_000_000

// Store keeps counters in sharded maps. Entries whose state has fully decayed
// are swept as shards are written, so memory follows the number of active
// keys; MaxKeys caps it under attack. It is safe for concurrent use.
type Store struct {
	clock   clock.Clock
	seed    maphash.Seed
	maxPer  int
	shards  [shardCount]shard
	sweepEv int
}

type shard struct {
	mu     sync.Mutex
	tat    map[string]time.Time // GCRA theoretical arrival time per key
	writes int
}

// Option configures a Store.
type Option func(*Store)

// WithMaxKeys bounds the number of keys held; when full, fully decayed keys
// are swept and, failing that, the shard drops its oldest-looking entries.
func WithMaxKeys(n int) Option {
	return func(s *Store) { s.maxPer = max(1, n/shardCount) }
}

// New returns an empty Store reading time from clk.
func New(clk clock.Clock, opts ...Option) *Store {
	s := &Store{clock: clk, seed: maphash.MakeSeed(), maxPer: DefaultMaxKeys / shardCount, sweepEv: 1024}
	for _, o := range opts {
		o(s)
	}
	for i := range s.shards {
		s.shards[i].tat = make(map[string]time.Time)
	}
	return s
}

func (s *Store) shard(key string) *shard {
	return &s.shards[maphash.String(s.seed, key)%shardCount]
}

// gcra returns the emission interval and burst tolerance of l.
func gcra(l counters.Limit) (interval, tolerance time.Duration, ok bool) {
	if l.Max <= 0 || l.Window <= 0 {
		return 0, 0, false
	}
	interval = l.Window / time.Duration(l.Max)
	return interval, interval * time.Duration(l.Max-1), true
}

func decide(tat, now time.Time, interval, tolerance time.Duration) counters.Decision {
	if tat.Before(now) {
		tat = now
	}
	// Allowed if the event arriving now, which moves tat by one interval,
	// stays within the burst tolerance.
	if wait := tat.Add(-tolerance).Sub(now); wait > 0 {
		return counters.Decision{RetryAfter: wait}
	}
	return counters.Decision{Allowed: true}
}

// CheckAttempt implements counters.Store.
func (s *Store) CheckAttempt(_ context.Context, key string, l counters.Limit) (counters.Decision, error) {
	interval, tolerance, ok := gcra(l)
	if !ok {
		return counters.Decision{RetryAfter: l.Window}, nil
	}
	now := s.clock.Now()
	sh := s.shard(key)
	sh.mu.Lock()
	tat := sh.tat[key]
	sh.mu.Unlock()
	return decide(tat, now, interval, tolerance), nil
}

// RecordAttempt implements counters.Store.
func (s *Store) RecordAttempt(_ context.Context, key string, l counters.Limit) (counters.Decision, error) {
	interval, tolerance, ok := gcra(l)
	if !ok {
		return counters.Decision{RetryAfter: l.Window}, nil
	}
	now := s.clock.Now()
	sh := s.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	tat := sh.tat[key]
	d := decide(tat, now, interval, tolerance)
	if d.Allowed {
		if tat.Before(now) {
			tat = now
		}
		sh.tat[key] = tat.Add(interval)
		sh.writes++
		if sh.writes%s.sweepEv == 0 || len(sh.tat) > s.maxPer {
			sh.sweep(now, s.maxPer)
		}
	}
	return d, nil
}

// ResetAttempts implements counters.Store.
func (s *Store) ResetAttempts(_ context.Context, key string) error {
	sh := s.shard(key)
	sh.mu.Lock()
	delete(sh.tat, key)
	sh.mu.Unlock()
	return nil
}

// sweep drops decayed entries and, if the shard is still over its bound, any
// entries until it is not (map order is random, so this sheds arbitrary keys:
// an attacker flooding keys only weakens throttling of keys never retried).
func (sh *shard) sweep(now time.Time, maxKeys int) {
	for k, tat := range sh.tat {
		if !tat.After(now) {
			delete(sh.tat, k)
		}
	}
	for k := range sh.tat {
		if len(sh.tat) <= maxKeys {
			break
		}
		delete(sh.tat, k)
	}
}

// Len returns the number of keys held, for tests and metrics.
func (s *Store) Len() int {
	n := 0
	for i := range s.shards {
		s.shards[i].mu.Lock()
		n += len(s.shards[i].tat)
		s.shards[i].mu.Unlock()
	}
	return n
}

var _ counters.Store = (*Store)(nil)
