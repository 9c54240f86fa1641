// Package memory implements counters.Store in the memory of one process: the
// hot counters of the all-in-one deployment.
//
// Memory is bounded per kind of state, each split evenly over 64 shards:
//
//   - attempt keys (WithMaxKeys): fully decayed keys are swept as shards are
//     written; a full shard sheds arbitrary keys, which only weakens the
//     throttling of keys that flood it. The backoff keys of Fail are bounded
//     the same way, counted apart.
//   - rate-limit keys of Take (WithMaxKeys too, counted apart from attempts):
//     the same, some 50 to 80 bytes each plus the key's length. Shedding a
//     live key only gives its owner a fresh burst.
//   - quota counts of Take (WithMaxQuotas): forgetting a live count would
//     grant units already used, so a full shard refuses new counts with
//     ErrQuotaFull instead, after reclaiming expired ones: some 60 to 100
//     bytes each plus the key's length.
//   - the replay cache (MarkSeen): each owner holds at most the maxPerOwner
//     of its calls, and the whole cache at most WithMaxSeen keys. Forgetting
//     a live key would let its request be replayed, so a full cache never
//     drops keys at random and never fails: it stops the owners holding the
//     most keys (they get OwnerFull until their keys would have expired),
//     and every other owner goes on. Some 100 to 150 bytes a key plus its
//     length.
//   - bans: one map, swept of expired bans whenever it has doubled. It is
//     not bounded: bans are set by the server against abuse, not by
//     clients, and each costs some 50 bytes plus the key's length.
//
// Bus is the in-process counters.Bus that goes with it.
package memory

import (
	"context"
	"errors"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tollgate/tollgate/internal/clock"
	"github.com/tollgate/tollgate/internal/counters"
)

const shardCount = 64

// DefaultMaxKeys bounds the number of keys a Store holds.
const DefaultMaxKeys = 1_000_000

// DefaultMaxSeen bounds the number of live keys the replay cache holds,
// all owners together.
const DefaultMaxSeen = 1_000_000

// DefaultMaxQuotas bounds the number of live quota counts a Store holds.
const DefaultMaxQuotas = 1_000_000

// ErrQuotaFull is returned by Take and SetQuotaUsed when a new quota count's
// shard holds its maximum of live counts.
var ErrQuotaFull = errors.New("memory: quota counts full")

// Store keeps counters in sharded maps. Entries whose state has fully decayed
// are swept as shards are written, so memory follows the number of active
// keys; MaxKeys caps it under attack. It is safe for concurrent use.
//
// The replay cache (MarkSeen) is bounded per owner and in all: see the
// package documentation. Each owner's keys expire in order
// through a min-heap of its own, swept whenever the owner is written and,
// for owners no longer written, as their shard is; a full cache sweeps
// every shard before it stops anyone, so memory follows the live keys.
type Store struct {
	clock       clock.Clock
	epoch       time.Time // replay-cache expiries and rate TATs are durations since epoch
	wallEpoch   time.Time // epoch without its monotonic reading, for quota periods
	seed        maphash.Seed
	maxPer      int
	maxQuotaPer int
	shards      [shardCount]shard
	sweepEv     int
	bans        bans

	maxSeen   int64        // bound of the replay cache, all owners
	seenLive  atomic.Int64 // live keys and stopped owners it holds
	seenStops atomic.Uint64
	roomMu    sync.Mutex // one makeRoom at a time
	banWatch  Watchers
	slots     slots
}

type shard struct {
	mu     sync.Mutex
	tat    map[string]time.Time // GCRA theoretical arrival time per key
	writes int

	owners     map[string]*seenOwner // the replay cache, by owner
	ownersPeak int                   // most owners since owners was last built
	seenWrites int                   // replay-cache writes since the shard was swept

	rate       map[string]int64 // Take's GCRA theoretical arrival time, ns since epoch
	rateWrites int              // rate writes since rate was last swept
	ratePeak   int              // most keys in rate since it was last built

	quota expiring[int64] // units used per quota key, expiring at wall-clock period ends

	fail       map[string]failures // backoff state per key (Fail)
	failWrites int                 // Fail writes, to sweep fail now and then
}

// Option configures a Store.
type Option func(*Store)

// WithMaxKeys bounds the number of keys held; when full, fully decayed keys
// are swept and, failing that, the shard drops its oldest-looking entries.
func WithMaxKeys(n int) Option {
	return func(s *Store) { s.maxPer = max(1, n/shardCount) }
}

// WithMaxQuotas bounds the number of live quota counts held, split evenly
// across shards (each holds at least one). A shard full of live counts makes
// Take (of a new quota key) and SetQuotaUsed return ErrQuotaFull until some
// periods end; see the package documentation.
func WithMaxQuotas(n int) Option {
	return func(s *Store) { s.maxQuotaPer = max(1, n/shardCount) }
}

// WithMaxSeen bounds the number of live keys the replay cache holds, all
// owners together (at least 1; default DefaultMaxSeen). A stopped owner
// counts as one key; see the package documentation.
func WithMaxSeen(n int) Option {
	return func(s *Store) { s.maxSeen = int64(max(1, n)) }
}

// New returns an empty Store reading time from clk.
func New(clk clock.Clock, opts ...Option) *Store {
	s := &Store{
		clock:       clk,
		epoch:       clk.Now(),
		seed:        maphash.MakeSeed(),
		maxPer:      DefaultMaxKeys / shardCount,
		maxSeen:     DefaultMaxSeen,
		maxQuotaPer: DefaultMaxQuotas / shardCount,
		sweepEv:     1024,
	}
	s.wallEpoch = s.epoch.Round(0)
	for _, o := range opts {
		o(s)
	}
	for i := range s.shards {
		s.shards[i].tat = make(map[string]time.Time)
	}
	return s
}

func (s *Store) shard(key string) *shard {
	return &s.shards[s.shardIndex(key)]
}

func (s *Store) shardIndex(key string) int {
	return int(maphash.String(s.seed, key) % shardCount)
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

// compactBelow is the size under which a shard's map is not rebuilt.
const compactBelow = 256

// expiring is a map whose keys expire at fixed times, in order, through a
// min-heap: each key is pushed and popped once, so expiry costs O(log n) per
// key, and a full map always reclaims its expired keys before refusing new
// ones. Callers call expire before reading m, so m holds only live keys.
type expiring[V any] struct {
	m    map[string]V
	heap expiryHeap // exactly the keys of m, by expiry
	peak int        // most keys in m since it was last built
}

// add inserts key, which must not be in m, expiring at exp.
func (e *expiring[V]) add(key string, v V, exp time.Duration) {
	if e.m == nil {
		e.m = make(map[string]V)
	}
	e.m[key] = v
	e.peak = max(e.peak, len(e.m))
	e.heap.push(expiryEntry{exp: exp, key: key})
}

// expire drops the keys that expired by now. Go maps never shrink, so once
// the map has fallen to a quarter of its peak the map and heap are rebuilt
// at their current size (O(n) after at least 3n deletions): memory follows
// the live keys, not the largest burst seen.
func (e *expiring[V]) expire(now time.Duration) {
	for len(e.heap) > 0 && e.heap[0].exp <= now {
		delete(e.m, e.heap.pop().key)
	}
	if e.peak < compactBelow || len(e.m) > e.peak/4 {
		return
	}
	if len(e.m) == 0 {
		e.m, e.heap = nil, nil
	} else {
		m := make(map[string]V, len(e.m)) // not maps.Clone, which may keep the size
		for k, v := range e.m {
			m[k] = v
		}
		e.m = m
		e.heap = append(expiryHeap(nil), e.heap...)
	}
	e.peak = len(e.m)
}

// expiryEntry is a key and its expiry, as a duration since the Store's epoch
// (with its monotonic reading for the replay cache, on the wall clock for
// quota periods).
type expiryEntry struct {
	exp time.Duration
	key string
}

// expiryHeap is a binary min-heap of entries by expiry, typed to spare the
// allocations of container/heap. With a single ttl, keys arrive in expiry
// order and push is O(1).
type expiryHeap []expiryEntry

func (h *expiryHeap) push(e expiryEntry) {
	q := append(*h, e)
	for i := len(q) - 1; i > 0; {
		p := (i - 1) / 2
		if q[p].exp <= q[i].exp {
			break
		}
		q[p], q[i] = q[i], q[p]
		i = p
	}
	*h = q
}

// pop removes and returns the entry that expires first; h must not be empty.
func (h *expiryHeap) pop() expiryEntry {
	q := *h
	top, n := q[0], len(q)-1
	q[0] = q[n]
	q[n] = expiryEntry{} // release the key
	q = q[:n]
	for i := 0; ; {
		m := 2*i + 1
		if m >= n {
			break
		}
		if r := m + 1; r < n && q[r].exp < q[m].exp {
			m = r
		}
		if q[i].exp <= q[m].exp {
			break
		}
		q[i], q[m] = q[m], q[i]
		i = m
	}
	*h = q
	return top
}

// Len returns the number of attempt keys held, for tests and metrics.
func (s *Store) Len() int {
	return s.count(func(sh *shard) int { return len(sh.tat) })
}

// count sums f over the shards, each under its lock.
func (s *Store) count(f func(*shard) int) int {
	n := 0
	for i := range s.shards {
		s.shards[i].mu.Lock()
		n += f(&s.shards[i])
		s.shards[i].mu.Unlock()
	}
	return n
}
