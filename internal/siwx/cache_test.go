package siwx

import (
	"errors"
	"sync"
	"testing"
	"time"
)

func TestCacheHit(t *testing.T) {
	v, fake := newTestVerifier(t, nil)
	token := tok(t, "evm").token
	w1, exp1, err := v.Verify(token)
	if err != nil {
		t.Fatal(err)
	}
	if n := v.cache.len(); n != 1 {
		t.Fatalf("%d cached tokens, want 1", n)
	}
	e, found, expired := v.cache.get(keyOf(token), fake.Now())
	if !found || expired || e.wallet != w1 || !e.expires.Equal(exp1) {
		t.Fatalf("cache holds %+v, %v, %v", e, found, expired)
	}
	// A hit answers from the cache alone: an entry planted under the
	// token's key is what Verify returns.
	planted := cached{wallet: Wallet{"eip155:1", "0xplanted"}, expires: exp1}
	v.cache.add(keyOf(token), planted)
	w2, exp2, err := v.Verify(token)
	if err != nil || w2 != planted.wallet || !exp2.Equal(exp1) {
		t.Fatalf("second Verify = %+v, %v, %v; want the cached entry", w2, exp2, err)
	}

	// Failures are not cached.
	for _, name := range []string{"evm_wrong_domain", "evm_wrong_address", "solana_devnet"} {
		if _, _, err := v.Verify(tok(t, name).token); err == nil {
			t.Fatalf("%s verified", name)
		}
	}
	if n := v.cache.len(); n != 1 {
		t.Errorf("%d cached tokens after failures, want 1", n)
	}
}

func TestCacheExpiry(t *testing.T) {
	v, fake := newTestVerifier(t, nil)
	token := tok(t, "solana").token
	if _, _, err := v.Verify(token); err != nil {
		t.Fatal(err)
	}
	fake.Set(at("00:59:59"))
	if _, exp, err := v.Verify(token); err != nil || !exp.Equal(at("01:00:00")) {
		t.Fatalf("a second before expiry: %v, %v", exp, err)
	}
	fake.Set(at("01:00:00"))
	_, _, err := v.Verify(token)
	checkErr(t, err, ErrExpired, "2030-01-01T01:00:00Z")
	if n := v.cache.len(); n != 0 {
		t.Errorf("the expired token is still cached (%d entries)", n)
	}
	// Verified afresh, it is expired still, and not cached again.
	_, _, err = v.Verify(token)
	checkErr(t, err, ErrExpired, "")
	if n := v.cache.len(); n != 0 {
		t.Errorf("%d cached tokens, want 0", n)
	}
	// A clock set back makes it valid again (a cache is no revocation list).
	fake.Set(t0)
	if _, _, err := v.Verify(token); err != nil {
		t.Errorf("back at t0: %v", err)
	}
}

func TestCacheBounded(t *testing.T) {
	v, _ := newTestVerifier(t, func(c *Config) { c.CacheSize = 2 })
	names := []string{"evm", "evm_key1", "solana", "solana_key1"}
	for _, name := range names {
		if _, _, err := v.Verify(tok(t, name).token); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	if n := v.cache.len(); n != 2 {
		t.Fatalf("%d cached tokens, want 2", n)
	}
	// The least recently used went first.
	for i, name := range names {
		_, found, _ := v.cache.get(keyOf(tok(t, name).token), t0)
		if want := i >= 2; found != want {
			t.Errorf("%s cached: %v, want %v", name, found, want)
		}
	}
}

func TestCacheDisabled(t *testing.T) {
	v, _ := newTestVerifier(t, func(c *Config) { c.CacheSize = -1 })
	for range 2 {
		if _, _, err := v.Verify(tok(t, "evm").token); err != nil {
			t.Fatal(err)
		}
	}
	if v.cache != nil || v.cache.len() != 0 {
		t.Error("a disabled cache caches")
	}
}

// TestConcurrent runs Verify from many goroutines, on valid and invalid
// tokens, while the clock moves; run it with -race.
func TestConcurrent(t *testing.T) {
	v, fake := newTestVerifier(t, func(c *Config) { c.CacheSize = 3 }) // small: evictions too
	type want struct {
		token string
		err   error
	}
	var cases []want
	for _, name := range []string{"evm", "evm_key1", "solana", "solana_key1", "evm_base64url"} {
		cases = append(cases, want{tok(t, name).token, nil})
	}
	cases = append(cases,
		want{tok(t, "evm_wrong_address").token, ErrSignature},
		want{tok(t, "evm_wrong_domain").token, ErrMalformed},
		want{tok(t, "solana_wrong_address").token, ErrSignature},
	)

	const goroutines, rounds = 8, 30
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				c := cases[(g+r)%len(cases)]
				_, _, err := v.Verify(c.token)
				if c.err == nil && err != nil || c.err != nil && !errors.Is(err, c.err) {
					t.Errorf("goroutine %d round %d: error %v, want %v", g, r, err, c.err)
					return
				}
				if g == 0 {
					fake.Advance(time.Second) // stays well before expiry
				}
			}
		}()
	}
	wg.Wait()
	if n := v.cache.len(); n > 3 {
		t.Errorf("%d cached tokens, more than the bound of 3", n)
	}
}
