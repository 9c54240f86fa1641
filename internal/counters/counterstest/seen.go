package counterstest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/counters"
)

// runSeenTests runs the conformance tests of the replay cache: MarkSeen and
// Unsee.
func runSeenTests(t *testing.T, h Harness) {
	t.Run("SeenOnce", func(t *testing.T) { testSeenOnce(t, h) })
	t.Run("SeenExpiresAfterTTL", func(t *testing.T) { testSeenExpires(t, h) })
	t.Run("SeenKeysAreIndependent", func(t *testing.T) { testSeenIndependent(t, h) })
	t.Run("SeenTTLsAreIndependent", func(t *testing.T) { testSeenTTLs(t, h) })
	t.Run("SeenConcurrentExactlyOnce", func(t *testing.T) { testSeenConcurrent(t, h) })
	t.Run("SeenRejectsBadInput", func(t *testing.T) { testSeenBadInput(t, h) })
	t.Run("SeenOwnerBound", func(t *testing.T) { testSeenOwnerBound(t, h) })
	t.Run("SeenOwnerBoundFreesAsKeysExpire", func(t *testing.T) { testSeenOwnerFrees(t, h) })
	t.Run("SeenOwnerBoundConcurrentExact", func(t *testing.T) { testSeenOwnerConcurrent(t, h) })
	t.Run("UnseeGivesBack", func(t *testing.T) { testUnsee(t, h) })
	t.Run("UnseeOnlyItsOwnClaim", func(t *testing.T) { testUnseeClaim(t, h) })
	t.Run("SeenSharedAcrossNodes", func(t *testing.T) { testSeenPeers(t, h) })
}

func markSeen(t *testing.T, s counters.Store, owner, key string, ttl time.Duration, maxPerOwner int) counters.Seen {
	t.Helper()
	r, err := s.MarkSeen(ctx, owner, key, ttl, maxPerOwner)
	if err != nil {
		t.Fatal(err)
	}
	switch r.Outcome {
	case counters.Fresh:
		if r.RetryAfter != 0 {
			t.Fatalf("MarkSeen(%q, %q) = %+v: RetryAfter on Fresh", owner, key, r)
		}
	case counters.Replayed:
		if r.Claim != 0 || r.RetryAfter != 0 {
			t.Fatalf("MarkSeen(%q, %q) = %+v: claim or RetryAfter on Replayed", owner, key, r)
		}
	case counters.OwnerFull:
		if r.Claim != 0 || r.RetryAfter < 0 {
			t.Fatalf("MarkSeen(%q, %q) = %+v", owner, key, r)
		}
	default:
		t.Fatalf("MarkSeen(%q, %q) = %+v: no outcome", owner, key, r)
	}
	return r
}

// fresh marks key of owner "o" (bound 1000) and reports whether it was new.
func fresh(t *testing.T, s counters.Store, key string, ttl time.Duration) bool {
	t.Helper()
	return markSeen(t, s, "o", key, ttl, 1000).Outcome == counters.Fresh
}

func testSeenOnce(t *testing.T, h Harness) {
	s := h.New(t)
	if !fresh(t, s, "sig", time.Minute) {
		t.Fatal("first MarkSeen not Fresh")
	}
	for i := range 3 {
		if r := markSeen(t, s, "o", "sig", time.Minute, 1000); r.Outcome != counters.Replayed {
			t.Fatalf("replay %d: %+v, want Replayed", i+1, r)
		}
	}
}

func testSeenExpires(t *testing.T, h Harness) {
	s := h.New(t)
	ttl := 10 * time.Minute
	fresh(t, s, "sig", ttl)
	// A replay within the ttl neither passes nor extends the ttl.
	h.Advance(t, 6*time.Minute)
	if fresh(t, s, "sig", ttl) {
		t.Fatal("replay within ttl: Fresh")
	}
	h.Advance(t, 4*time.Minute+time.Second)
	if !fresh(t, s, "sig", ttl) {
		t.Fatal("after ttl: not Fresh")
	}
	if fresh(t, s, "sig", ttl) {
		t.Fatal("replay after re-marking: Fresh")
	}
}

func testSeenIndependent(t *testing.T, h Harness) {
	s := h.New(t)
	fresh(t, s, "a", time.Hour)
	if !fresh(t, s, "b", time.Hour) {
		t.Fatal("key b seen because of key a")
	}
	// The same text under another owner is another key.
	if r := markSeen(t, s, "other", "a", time.Hour, 1000); r.Outcome != counters.Fresh {
		t.Fatalf("key a of another owner: %+v", r)
	}
	// Replay cache and attempt counters do not share keys either.
	record(t, s, "c", counters.Limit{Max: 1, Window: time.Hour})
	if !fresh(t, s, "c", time.Hour) {
		t.Fatal("key c seen because of an attempt under c")
	}
	if !record(t, s, "a", counters.Limit{Max: 1, Window: time.Hour}).Allowed {
		t.Fatal("attempt under a limited because a was seen")
	}
	if !record(t, s, "o", counters.Limit{Max: 1, Window: time.Hour}).Allowed {
		t.Fatal("attempt under o limited because owner o has keys")
	}
}

func testSeenTTLs(t *testing.T, h Harness) {
	s := h.New(t)
	fresh(t, s, "long", time.Hour)
	fresh(t, s, "short", time.Minute)
	h.Advance(t, time.Minute+time.Second)
	if !fresh(t, s, "short", time.Minute) {
		t.Fatal("short key still seen after its ttl")
	}
	if fresh(t, s, "long", time.Hour) {
		t.Fatal("long key expired with the short one")
	}
	h.Advance(t, time.Hour)
	if !fresh(t, s, "long", time.Hour) {
		t.Fatal("long key still seen after its ttl")
	}
}

// race runs n calls of f at once and counts their outcomes.
func race(t *testing.T, n int, f func(i int) (counters.Seen, error)) map[counters.SeenOutcome]int {
	t.Helper()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		got  = map[counters.SeenOutcome]int{}
		errs []error
	)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			r, err := f(i)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			got[r.Outcome]++
		}()
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		t.Fatal(err)
	}
	return got
}

func testSeenConcurrent(t *testing.T, h Harness) {
	s := h.New(t)
	got := race(t, 64, func(int) (counters.Seen, error) { return s.MarkSeen(ctx, "o", "shared", time.Hour, 1000) })
	if got[counters.Fresh] != 1 || got[counters.Replayed] != 63 {
		t.Fatalf("64 concurrent MarkSeen of one key: %v, want 1 Fresh and 63 Replayed", got)
	}
}

func testSeenBadInput(t *testing.T, h Harness) {
	s := h.New(t)
	for _, c := range []struct {
		ttl time.Duration
		max int
	}{{0, 10}, {-time.Second, 10}, {time.Minute, 0}, {time.Minute, -1}} {
		if r, err := s.MarkSeen(ctx, "o", "k", c.ttl, c.max); err == nil || r.Outcome == counters.Fresh {
			t.Fatalf("MarkSeen with ttl %v, max %d = %+v, %v; want an error", c.ttl, c.max, r, err)
		}
	}
	if !fresh(t, s, "k", time.Minute) {
		t.Fatal("a refused MarkSeen recorded its key")
	}
}

// testSeenOwnerBound: an owner at its bound is refused new keys, still has
// its replays caught, and keeps no one else from recording.
func testSeenOwnerBound(t *testing.T, h Harness) {
	s := h.New(t)
	const ttl = 10 * time.Minute
	for i := range 3 {
		if r := markSeen(t, s, "flood", fmt.Sprint("k", i), ttl, 3); r.Outcome != counters.Fresh {
			t.Fatalf("key %d of 3: %+v", i, r)
		}
	}
	for i := range 5 {
		r := markSeen(t, s, "flood", fmt.Sprint("new", i), ttl, 3)
		if r.Outcome != counters.OwnerFull || r.RetryAfter <= 0 || r.RetryAfter > ttl+time.Second {
			t.Fatalf("key beyond the bound: %+v, want OwnerFull with RetryAfter in (0, %v]", r, ttl)
		}
	}
	// A replay is a replay, full or not.
	if r := markSeen(t, s, "flood", "k1", ttl, 3); r.Outcome != counters.Replayed {
		t.Fatalf("replay at the bound: %+v, want Replayed", r)
	}
	// The refused keys were not recorded: with a larger bound they are new.
	if r := markSeen(t, s, "flood", "new0", ttl, 4); r.Outcome != counters.Fresh {
		t.Fatalf("a key refused for the bound was recorded: %+v", r)
	}
	// Other owners are not affected.
	for i := range 3 {
		if r := markSeen(t, s, fmt.Sprint("tenant", i), "k0", ttl, 3); r.Outcome != counters.Fresh {
			t.Fatalf("owner tenant%d beside a full owner: %+v", i, r)
		}
	}
	h.Advance(t, ttl+time.Second)
	if r := markSeen(t, s, "flood", "after", ttl, 3); r.Outcome != counters.Fresh {
		t.Fatalf("after the keys expired: %+v", r)
	}
}

// testSeenOwnerFrees: each key that expires frees one place, and RetryAfter
// says when the oldest does.
func testSeenOwnerFrees(t *testing.T, h Harness) {
	s := h.New(t)
	const ttl = 10 * time.Minute
	markSeen(t, s, "o", "first", ttl, 2)
	h.Advance(t, 4*time.Minute)
	markSeen(t, s, "o", "second", ttl, 2)
	r := markSeen(t, s, "o", "third", ttl, 2)
	if r.Outcome != counters.OwnerFull || r.RetryAfter < 6*time.Minute-2*time.Second || r.RetryAfter > 6*time.Minute+time.Second {
		t.Fatalf("full: %+v, want OwnerFull with RetryAfter about 6m (until the first key expires)", r)
	}
	h.Advance(t, 6*time.Minute+time.Second)
	if r := markSeen(t, s, "o", "third", ttl, 2); r.Outcome != counters.Fresh {
		t.Fatalf("after the first key expired: %+v", r)
	}
	if r := markSeen(t, s, "o", "fourth", ttl, 2); r.Outcome != counters.OwnerFull {
		t.Fatalf("one key expired, two recorded: %+v", r)
	}
	if r := markSeen(t, s, "o", "second", ttl, 2); r.Outcome != counters.Replayed {
		t.Fatalf("second key, still live: %+v", r)
	}
}

func testSeenOwnerConcurrent(t *testing.T, h Harness) {
	s := h.New(t)
	got := race(t, 60, func(i int) (counters.Seen, error) {
		return s.MarkSeen(ctx, "o", fmt.Sprint("k", i), time.Hour, 10)
	})
	if got[counters.Fresh] != 10 || got[counters.OwnerFull] != 50 {
		t.Fatalf("60 concurrent keys against a bound of 10: %v", got)
	}
}

func testUnsee(t *testing.T, h Harness) {
	s := h.New(t)
	r := markSeen(t, s, "o", "k", time.Hour, 1)
	if r.Outcome != counters.Fresh {
		t.Fatalf("first: %+v", r)
	}
	if r := markSeen(t, s, "o", "other", time.Hour, 1); r.Outcome != counters.OwnerFull {
		t.Fatalf("beyond a bound of 1: %+v", r)
	}
	if err := s.Unsee(ctx, "o", "k", r.Claim); err != nil {
		t.Fatal(err)
	}
	// The key may be sent again, and its place is free.
	r2 := markSeen(t, s, "o", "k", time.Hour, 1)
	if r2.Outcome != counters.Fresh {
		t.Fatalf("after Unsee: %+v", r2)
	}
	if err := s.Unsee(ctx, "o", "k", r2.Claim); err != nil {
		t.Fatal(err)
	}
	if r := markSeen(t, s, "o", "other", time.Hour, 1); r.Outcome != counters.Fresh {
		t.Fatalf("another key after Unsee: %+v", r)
	}
	// Unseeing what is not there does nothing, and is no error.
	for _, c := range [][2]string{{"o", "never"}, {"nobody", "k"}} {
		if err := s.Unsee(ctx, c[0], c[1], 12345); err != nil {
			t.Fatalf("Unsee(%q, %q): %v", c[0], c[1], err)
		}
	}
	if r := markSeen(t, s, "o", "other", time.Hour, 1); r.Outcome != counters.Replayed {
		t.Fatalf("other after unrelated Unsees: %+v", r)
	}
}

// testUnseeClaim: a claim gives back its own recording only, not the key
// recorded again after it expired, nor another owner's.
func testUnseeClaim(t *testing.T, h Harness) {
	s := h.New(t)
	old := markSeen(t, s, "o", "k", time.Minute, 10)
	h.Advance(t, time.Minute+time.Second)
	cur := markSeen(t, s, "o", "k", time.Minute, 10)
	if cur.Outcome != counters.Fresh || cur.Claim == old.Claim {
		t.Fatalf("recorded again after expiry: %+v (first claim %d)", cur, old.Claim)
	}
	other := markSeen(t, s, "p", "k", time.Minute, 10)
	for _, claim := range []int64{old.Claim, cur.Claim + 1, cur.Claim - 1, 0} {
		if err := s.Unsee(ctx, "o", "k", claim); err != nil {
			t.Fatal(err)
		}
	}
	if r := markSeen(t, s, "o", "k", time.Minute, 10); r.Outcome != counters.Replayed {
		t.Fatalf("a claim not the key's gave it back: %+v", r)
	}
	// Giving back p's key leaves o's alone.
	if err := s.Unsee(ctx, "p", "k", other.Claim); err != nil {
		t.Fatal(err)
	}
	if r := markSeen(t, s, "o", "k", time.Minute, 10); r.Outcome != counters.Replayed {
		t.Fatalf("p's Unsee gave o's key back: %+v", r)
	}
	if r := markSeen(t, s, "p", "k", time.Minute, 10); r.Outcome != counters.Fresh {
		t.Fatalf("p's key after its Unsee: %+v", r)
	}
}

func testSeenPeers(t *testing.T, h Harness) {
	if h.NewPeer == nil {
		t.Skip("no peer store")
	}
	s := h.New(t)
	p := h.NewPeer(t, s)
	r := markSeen(t, s, "o", "k", time.Hour, 2)
	if got := markSeen(t, p, "o", "k", time.Hour, 2); got.Outcome != counters.Replayed {
		t.Fatalf("replay through another node: %+v", got)
	}
	markSeen(t, p, "o", "k2", time.Hour, 2)
	if got := markSeen(t, s, "o", "k3", time.Hour, 2); got.Outcome != counters.OwnerFull {
		t.Fatalf("the bound across nodes: %+v", got)
	}
	if err := p.Unsee(ctx, "o", "k", r.Claim); err != nil {
		t.Fatal(err)
	}
	if got := markSeen(t, s, "o", "k3", time.Hour, 2); got.Outcome != counters.Fresh {
		t.Fatalf("after Unsee through another node: %+v", got)
	}
}
