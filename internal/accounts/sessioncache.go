package accounts

import (
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// sessionCacheSize bounds the sessions a node remembers: some 150 bytes
// each.
const sessionCacheSize = 100_000

// sessionEntry is what a node remembers of a session (refresh-token
// family).
type sessionEntry struct {
	userID string
	// userVersion is the user's UpdatedAt when the entry was read: a user
	// changed since (disabled, a new password, even through another
	// process) makes the entry stale.
	userVersion time.Time
	ended       bool      // for good: an ended session never comes back
	expires     time.Time // of a live entry
}

// sessionCache remembers which sessions are live. An entry read from the
// store is only added if nothing was dropped since the read began (the
// generation), so that a read racing with a revocation can never put back
// a session the revocation dropped. It is safe for concurrent use; the zero
// value (or one with a nil lru) remembers nothing.
type sessionCache struct {
	mu  sync.Mutex
	gen uint64
	lru *simplelru.LRU[string, sessionEntry]
}

func newSessionCache(ttl time.Duration) *sessionCache {
	c := &sessionCache{}
	if ttl > 0 {
		c.lru, _ = simplelru.NewLRU[string, sessionEntry](sessionCacheSize, nil) // errors only for a size < 1
	}
	return c
}

func (c *sessionCache) get(family string) (sessionEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lru == nil {
		return sessionEntry{}, false
	}
	return c.lru.Get(family)
}

// generation returns the count of drops so far, to give put.
func (c *sessionCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// put remembers e for family unless something was dropped since gen.
func (c *sessionCache) put(family string, e sessionEntry, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lru != nil && c.gen == gen {
		c.lru.Add(family, e)
	}
}

func (c *sessionCache) drop(family string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	if c.lru != nil {
		c.lru.Remove(family)
	}
}

func (c *sessionCache) dropUser(userID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	if c.lru == nil {
		return
	}
	for _, family := range c.lru.Keys() {
		if e, ok := c.lru.Peek(family); ok && e.userID == userID {
			c.lru.Remove(family)
		}
	}
}

func (c *sessionCache) purge() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	if c.lru != nil {
		c.lru.Purge()
	}
}
