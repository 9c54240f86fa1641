package memory

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/tollgate/tollgate/internal/counters"
)

// The replay cache (MarkSeen, Unsee) is kept per owner: each owner's live
// keys, in the shard of the owner's name, with their expiries in a min-heap
// of the owner's own. An owner is bounded by the maxPerOwner of each call;
// the whole cache by WithMaxSeen, counted across shards (s.seenLive).
//
// A live key is never forgotten to make room, since its request could then
// be replayed. When the whole cache is full, MarkSeen sweeps every shard of
// expired keys and, if that is not enough, stops owners until the cache is
// below seven eighths of its bound, the groups holding the most keys first
// (counters.OwnerGroup: the gateway names an API key's owner after its
// organization, so a tenant spreading signed requests over many keys is
// stopped before any other tenant's key), and within a group its largest
// owners first: each stopped owner loses its keys and is refused
// (OwnerFull) until the last of them would have expired. No request it
// signed within that time can be accepted, so none can be replayed; the
// other owners are not affected. A stopped owner costs one entry of the
// bound until then.

// seenLowWater is the share of WithMaxSeen that stopping owners brings the
// cache down to: 7/8.
const seenLowWater = 8

// seenOwner is one owner's part of the replay cache. Its shard's lock
// guards it.
type seenOwner struct {
	keys map[string]time.Duration // live keys and their expiries (the claims)
	heap expiryHeap               // the keys by expiry, and stale entries of keys unseen
	// stale counts the heap's entries whose key was unseen.
	stale int
	peak  int // most keys since keys was last built
	// stopped, while after now, refuses every key: the owner's keys were
	// dropped to make room, and any of them could be replayed until then.
	stopped time.Duration
}

// expire drops the keys that expired by now, and a stop that has ended,
// and returns how many entries of the cache's bound that freed.
func (o *seenOwner) expire(now time.Duration) int {
	freed := 0
	for len(o.heap) > 0 && o.heap[0].exp <= now {
		e := o.heap.pop()
		if exp, ok := o.keys[e.key]; ok && exp == e.exp {
			delete(o.keys, e.key)
			freed++
		} else {
			o.stale--
		}
	}
	if o.stopped != 0 && o.stopped <= now {
		o.stopped = 0
		freed++
	}
	o.compact()
	return freed
}

// compact rebuilds the heap once stale entries outnumber live ones, and the
// map once it has fallen to a quarter of its peak (Go maps never shrink).
func (o *seenOwner) compact() {
	if o.stale > len(o.keys) && o.stale >= compactBelow/4 {
		h := make(expiryHeap, 0, len(o.keys))
		for k, exp := range o.keys {
			h.push(expiryEntry{exp: exp, key: k})
		}
		o.heap, o.stale = h, 0
	}
	if o.peak < compactBelow || len(o.keys) > o.peak/4 {
		return
	}
	m := make(map[string]time.Duration, len(o.keys))
	for k, v := range o.keys {
		m[k] = v
	}
	o.keys, o.peak = m, len(m)
	o.heap = append(expiryHeap(nil), o.heap...)
}

// idle reports whether o holds nothing and may be dropped.
func (o *seenOwner) idle() bool { return len(o.keys) == 0 && o.stopped == 0 }

// stop drops o's keys and refuses o until the last of them expires; it
// returns how many entries of the bound that freed (one is kept for the
// stop itself).
func (o *seenOwner) stop() int {
	n := len(o.keys)
	for _, exp := range o.keys {
		o.stopped = max(o.stopped, exp)
	}
	o.keys, o.heap, o.stale, o.peak = nil, nil, 0, 0
	return n - 1
}

// MarkSeen implements counters.Store. It never fails for a full cache: see
// the package documentation.
func (s *Store) MarkSeen(_ context.Context, owner, key string, ttl time.Duration, maxPerOwner int) (counters.Seen, error) {
	if ttl <= 0 {
		return counters.Seen{}, fmt.Errorf("memory: MarkSeen ttl %v is not positive", ttl)
	}
	if maxPerOwner < 1 {
		return counters.Seen{}, fmt.Errorf("memory: MarkSeen maxPerOwner %d is less than 1", maxPerOwner)
	}
	// A duration since epoch: it keeps the monotonic reading of the system
	// clock, so stepping the wall clock cannot expire keys early.
	now := s.clock.Now().Sub(s.epoch)
	exp := time.Duration(math.MaxInt64)
	if now < exp-ttl {
		exp = now + ttl
	}
	for attempt := 0; ; attempt++ {
		res, full := s.markSeen(owner, key, now, exp, maxPerOwner)
		if !full {
			return res, nil
		}
		if attempt > 0 || !s.makeRoom(now) {
			return counters.Seen{Outcome: counters.OwnerFull, RetryAfter: ttl}, nil
		}
	}
}

// markSeen is one try of MarkSeen; full reports that the whole cache is
// full and nothing was decided.
func (s *Store) markSeen(owner, key string, now, exp time.Duration, maxPerOwner int) (res counters.Seen, full bool) {
	sh := s.shard(owner)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	o := sh.owners[owner]
	if o != nil {
		s.seenLive.Add(int64(-o.expire(now)))
		switch {
		case o.stopped > now:
			return counters.Seen{Outcome: counters.OwnerFull, RetryAfter: o.stopped - now}, false
		case o.has(key):
			return counters.Seen{Outcome: counters.Replayed}, false
		case len(o.keys) >= maxPerOwner:
			return counters.Seen{Outcome: counters.OwnerFull, RetryAfter: o.heap[0].exp - now}, false
		}
	}
	if s.seenLive.Add(1) > s.maxSeen {
		s.seenLive.Add(-1)
		return counters.Seen{}, true
	}
	if o == nil {
		o = &seenOwner{}
		if sh.owners == nil {
			sh.owners = make(map[string]*seenOwner)
		}
		sh.owners[owner] = o
		sh.ownersPeak = max(sh.ownersPeak, len(sh.owners))
	}
	if o.keys == nil {
		o.keys = make(map[string]time.Duration)
	}
	o.keys[key] = exp
	o.peak = max(o.peak, len(o.keys))
	o.heap.push(expiryEntry{exp: exp, key: key})
	sh.seenWrites++
	if sh.seenWrites >= max(s.sweepEv, 2*len(sh.owners)) {
		s.sweepSeen(sh, now)
	}
	return counters.Seen{Outcome: counters.Fresh, Claim: int64(exp)}, false
}

func (o *seenOwner) has(key string) bool {
	_, ok := o.keys[key]
	return ok
}

// sweepSeen expires the keys of every owner of sh and drops idle owners;
// sh's lock must be held.
func (s *Store) sweepSeen(sh *shard, now time.Duration) {
	sh.seenWrites = 0
	freed := 0
	for name, o := range sh.owners {
		freed += o.expire(now)
		if o.idle() {
			delete(sh.owners, name)
		}
	}
	s.seenLive.Add(int64(-freed))
	if sh.ownersPeak >= compactBelow && len(sh.owners) <= sh.ownersPeak/4 {
		m := make(map[string]*seenOwner, len(sh.owners))
		for k, v := range sh.owners {
			m[k] = v
		}
		sh.owners, sh.ownersPeak = m, len(m)
	}
}

// makeRoom sweeps every shard and, if the cache is still full, stops owners,
// the largest groups' first, until it is at its low water mark. It
// reports whether there is room for one more key. One call runs at a time;
// it locks one shard at a time.
func (s *Store) makeRoom(now time.Duration) bool {
	s.roomMu.Lock()
	defer s.roomMu.Unlock()
	if s.seenLive.Load() < s.maxSeen {
		return true // made by a concurrent call
	}
	type candidate struct {
		shard *shard
		owner string
		keys  int
		group int // the keys of the owner's group
	}
	var cands []candidate
	groups := map[string]int{}
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		s.sweepSeen(sh, now)
		for name, o := range sh.owners {
			groups[counters.OwnerGroup(name)] += len(o.keys)
			if len(o.keys) >= 2 { // stopping an owner of one key frees nothing
				cands = append(cands, candidate{shard: sh, owner: name, keys: len(o.keys)})
			}
		}
		sh.mu.Unlock()
	}
	for i := range cands {
		cands[i].group = groups[counters.OwnerGroup(cands[i].owner)]
	}
	low := s.maxSeen - max(1, s.maxSeen/seenLowWater)
	slices.SortFunc(cands, func(a, b candidate) int {
		return cmp.Or(cmp.Compare(b.group, a.group), cmp.Compare(b.keys, a.keys))
	})
	for _, c := range cands {
		if s.seenLive.Load() <= low {
			break
		}
		c.shard.mu.Lock()
		if o := c.shard.owners[c.owner]; o != nil && len(o.keys) >= 2 {
			s.seenLive.Add(int64(-o.stop()))
			s.seenStops.Add(1)
		}
		c.shard.mu.Unlock()
	}
	return s.seenLive.Load() < s.maxSeen
}

// Unsee implements counters.Store.
func (s *Store) Unsee(_ context.Context, owner, key string, claim int64) error {
	sh := s.shard(owner)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	o := sh.owners[owner]
	if o == nil {
		return nil
	}
	if exp, ok := o.keys[key]; ok && int64(exp) == claim {
		delete(o.keys, key)
		o.stale++
		s.seenLive.Add(-1)
		o.compact()
		if o.idle() {
			delete(sh.owners, owner)
		}
	}
	return nil
}

// SeenStops returns how many times the full replay cache has stopped an
// owner, for tests and metrics.
func (s *Store) SeenStops() uint64 { return s.seenStops.Load() }

// SeenLen returns the number of live keys the replay cache holds, for tests
// and metrics. Expired keys count until their owner's shard sweeps them.
func (s *Store) SeenLen() int {
	return s.count(func(sh *shard) int {
		n := 0
		for _, o := range sh.owners {
			n += len(o.keys)
		}
		return n
	})
}
