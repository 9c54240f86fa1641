package siwx

import (
	"crypto/sha256"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// cacheKey is the SHA-256 of a token, so that the cache holds 32 bytes per
// token whatever its length.
type cacheKey [sha256.Size]byte

// cached is what a verified token or proof established.
type cached struct {
	wallet  Wallet
	expires time.Time
	// For proofs: the nonce, and its end (zero without Config.Nonces).
	nonce        string
	nonceExpires time.Time
}

// cache is a bounded LRU of verified tokens. The nil *cache caches nothing.
// It is safe for concurrent use (the LRU locks).
type cache struct {
	lru *lru.Cache[cacheKey, cached]
}

// newCache returns a cache of at most size tokens (size > 0).
func newCache(size int) (*cache, error) {
	l, err := lru.New[cacheKey, cached](size)
	if err != nil {
		return nil, err
	}
	return &cache{lru: l}, nil
}

func keyOf(token string) cacheKey { return sha256.Sum256([]byte(token)) }

// get returns the entry for k. An entry that has expired at now is removed,
// and returned with expired set.
func (c *cache) get(k cacheKey, now time.Time) (e cached, found, expired bool) {
	if c == nil {
		return cached{}, false, false
	}
	e, found = c.lru.Get(k)
	if found && !now.Before(e.expires) {
		c.lru.Remove(k)
		return e, true, true
	}
	return e, found, false
}

// add caches e under k, evicting the least recently used entry if the cache
// is full.
func (c *cache) add(k cacheKey, e cached) {
	if c != nil {
		c.lru.Add(k, e)
	}
}

// len returns the number of cached tokens.
func (c *cache) len() int {
	if c == nil {
		return 0
	}
	return c.lru.Len()
}
