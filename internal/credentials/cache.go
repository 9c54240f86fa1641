package credentials

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tollgate/tollgate/internal/authn"
)

const cacheShards = 64

// cache maps key hashes to what the store said about them. It is sharded so
// that concurrent requests rarely meet on a lock, bounded in size, and its
// entries expire after ttl so that changes made by another process (the CLI,
// another node) are picked up. It is safe for concurrent use.
type cache struct {
	ttl    time.Duration
	maxPer int
	shards [cacheShards]cacheShard
}

type cacheShard struct {
	mu sync.RWMutex
	m  map[[32]byte]*entry
}

// entry is one cached answer. Fields other than lastUsed are immutable.
type entry struct {
	fetched   time.Time
	principal *authn.Principal // nil: no such key
	keyID     string
	expiresAt time.Time // zero: never
	revoked   bool
	// orgDisabled: the key's organization was disabled when it was read.
	orgDisabled bool
	// signingSecret is the key's HMAC secret in clear; nil: none.
	signingSecret     []byte
	signatureRequired bool
	// lastUsed is the unix-nanosecond time of the latest use not yet
	// written to the store (0 when none).
	lastUsed atomic.Int64
}

func newCache(ttl time.Duration, size int) *cache {
	c := &cache{ttl: ttl, maxPer: max(1, size/cacheShards)}
	for i := range c.shards {
		c.shards[i].m = make(map[[32]byte]*entry)
	}
	return c
}

func (c *cache) shard(h [32]byte) *cacheShard {
	// The hash is SHA-256 of a random key: any of its bytes is uniform.
	return &c.shards[binary.LittleEndian.Uint64(h[:8])%cacheShards]
}

// get returns the entry for h if it is younger than the ttl.
func (c *cache) get(h [32]byte, now time.Time) *entry {
	s := c.shard(h)
	s.mu.RLock()
	e := s.m[h]
	s.mu.RUnlock()
	if e == nil || now.Sub(e.fetched) >= c.ttl {
		return nil
	}
	return e
}

// stale returns the entry for h if it is younger than the ttl plus grace,
// for use while the store cannot be read.
func (c *cache) stale(h [32]byte, now time.Time, grace time.Duration) *entry {
	if grace <= 0 {
		return nil
	}
	s := c.shard(h)
	s.mu.RLock()
	e := s.m[h]
	s.mu.RUnlock()
	if e == nil || now.Sub(e.fetched) >= c.ttl+grace {
		return nil
	}
	return e
}

// put stores e under h, evicting to stay within bounds. It returns the entry
// it replaced or evicted, if that one has an unflushed use to carry over.
func (c *cache) put(h [32]byte, e *entry) (displaced []*entry) {
	s := c.shard(h)
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.m[h]; old != nil && old.lastUsed.Load() != 0 {
		displaced = append(displaced, old)
	}
	if _, ok := s.m[h]; !ok && len(s.m) >= c.maxPer {
		// Prefer stale entries; otherwise drop an arbitrary one.
		evicted := false
		for k, v := range s.m {
			if e.fetched.Sub(v.fetched) >= c.ttl {
				delete(s.m, k)
				evicted = true
				if v.lastUsed.Load() != 0 {
					displaced = append(displaced, v)
				}
			}
		}
		if !evicted {
			for k, v := range s.m {
				delete(s.m, k)
				if v.lastUsed.Load() != 0 {
					displaced = append(displaced, v)
				}
				break
			}
		}
	}
	s.m[h] = e
	return displaced
}

// remove deletes h and returns the removed entry, if any.
func (c *cache) remove(h [32]byte) *entry {
	s := c.shard(h)
	s.mu.Lock()
	e := s.m[h]
	delete(s.m, h)
	s.mu.Unlock()
	return e
}

// each calls f for every entry; f must not call back into the cache.
func (c *cache) each(f func([32]byte, *entry)) {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		for h, e := range s.m {
			f(h, e)
		}
		s.mu.RUnlock()
	}
}

// len returns the number of entries.
func (c *cache) len() int {
	n := 0
	for i := range c.shards {
		c.shards[i].mu.RLock()
		n += len(c.shards[i].m)
		c.shards[i].mu.RUnlock()
	}
	return n
}
