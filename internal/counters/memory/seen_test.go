package memory

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/clock"
	"github.com/tollgate/tollgate/internal/counters"
)

func mark(t *testing.T, s *Store, owner, key string, ttl time.Duration, maxPerOwner int) counters.Seen {
	t.Helper()
	r, err := s.MarkSeen(context.Background(), owner, key, ttl, maxPerOwner)
	if err != nil {
		t.Fatalf("MarkSeen(%q, %q): %v", owner, key, err)
	}
	return r
}

// TestSeenFullCacheStopsTheLargestOwner fills the whole cache with one
// owner's keys: the next key of another owner is recorded, the flooder is
// stopped, its replays are still refused (never Fresh) until its keys would
// have expired, and no call fails.
func TestSeenFullCacheStopsTheLargestOwner(t *testing.T) {
	clk := clock.NewFake(t0)
	const bound = 1000
	s := New(clk, WithMaxSeen(bound))
	const ttl = 10 * time.Minute
	var flood []string
	for i := range bound - 10 {
		key := fmt.Sprint("f", i)
		if r := mark(t, s, "flooder", key, ttl, bound); r.Outcome != counters.Fresh {
			t.Fatalf("flood key %d: %+v", i, r)
		}
		flood = append(flood, key)
	}
	for i := range 10 {
		if r := mark(t, s, fmt.Sprint("small", i), "k", ttl, bound); r.Outcome != counters.Fresh {
			t.Fatalf("small owner %d: %+v", i, r)
		}
	}
	clk.Advance(time.Minute)
	// Full: another tenant still gets its key, and the flooder pays.
	if r := mark(t, s, "tenant", "k", ttl, bound); r.Outcome != counters.Fresh {
		t.Fatalf("a tenant beside a full cache: %+v", r)
	}
	for _, key := range []string{flood[0], flood[len(flood)-1], "new"} {
		r := mark(t, s, "flooder", key, ttl, bound)
		if r.Outcome != counters.OwnerFull || r.RetryAfter <= 0 || r.RetryAfter > ttl {
			t.Fatalf("stopped flooder, key %q: %+v, want OwnerFull until its keys expire", key, r)
		}
	}
	// The small owners kept their keys: their replays are caught.
	for i := range 10 {
		if r := mark(t, s, fmt.Sprint("small", i), "k", ttl, bound); r.Outcome != counters.Replayed {
			t.Fatalf("small owner %d lost its key: %+v", i, r)
		}
	}
	if n := s.seenLive.Load(); n > bound {
		t.Fatalf("holds %d entries, bound %d", n, bound)
	}
	// Once its keys would have expired, the flooder may sign again.
	clk.Advance(ttl)
	if r := mark(t, s, "flooder", "later", ttl, bound); r.Outcome != counters.Fresh {
		t.Fatalf("flooder after its stop: %+v", r)
	}
}

// TestSeenFullCacheStopsTheLargestGroup: a tenant whose many owners each
// hold fewer keys than another tenant's one busy owner fills the cache; the
// tenant (the largest group) is stopped, the busy owner of the other group
// is not.
func TestSeenFullCacheStopsTheLargestGroup(t *testing.T) {
	clk := clock.NewFake(t0)
	const bound = 1000
	s := New(clk, WithMaxSeen(bound))
	const ttl = 10 * time.Minute
	for i := range 200 {
		if r := mark(t, s, "org_victim/key_busy", fmt.Sprint("v", i), ttl, bound); r.Outcome != counters.Fresh {
			t.Fatalf("victim key %d: %+v", i, r)
		}
	}
	// The attacker's owners each stay below the victim's 200.
	n := 0
	for owner := 0; n < bound-200; owner++ {
		for i := 0; i < 199 && n < bound-200; i++ {
			if r := mark(t, s, fmt.Sprint("org_attacker/key_", owner), fmt.Sprint("a", i), ttl, bound); r.Outcome != counters.Fresh {
				t.Fatalf("attacker key %d of owner %d: %+v", i, owner, r)
			}
			n++
		}
	}
	// Full: the next key makes room by stopping the attacker's group.
	if r := mark(t, s, "org_victim/key_busy", "v-next", ttl, bound); r.Outcome != counters.Fresh {
		t.Fatalf("the victim's next signature beside a full cache: %+v", r)
	}
	if r := mark(t, s, "org_victim/key_busy", "v0", ttl, bound); r.Outcome != counters.Replayed {
		t.Fatalf("the victim's keys were dropped: replay of v0 is %+v", r)
	}
	stopped := 0
	for owner := range 6 {
		if r := mark(t, s, fmt.Sprint("org_attacker/key_", owner), "a0", ttl, bound); r.Outcome == counters.OwnerFull {
			stopped++
		}
	}
	if stopped == 0 || s.SeenStops() != uint64(stopped) {
		t.Fatalf("%d of the attacker's owners refused, %d stops: the attacker's group was not the one stopped", stopped, s.SeenStops())
	}
}

// TestSeenFullCacheOfTinyOwners: when no owner holds two keys, stopping one
// frees nothing; the newcomer is refused (OwnerFull, never an error) and no
// live key is forgotten.
func TestSeenFullCacheOfTinyOwners(t *testing.T) {
	clk := clock.NewFake(t0)
	s := New(clk, WithMaxSeen(100))
	for i := range 100 {
		mark(t, s, fmt.Sprint("o", i), "k", time.Minute, 10)
	}
	if r := mark(t, s, "late", "k", time.Minute, 10); r.Outcome != counters.OwnerFull {
		t.Fatalf("newcomer to a cache full of one-key owners: %+v", r)
	}
	for i := range 100 {
		if r := mark(t, s, fmt.Sprint("o", i), "k", time.Minute, 10); r.Outcome != counters.Replayed {
			t.Fatalf("owner %d lost its key: %+v", i, r)
		}
	}
	clk.Advance(time.Minute)
	if r := mark(t, s, "late", "k", time.Minute, 10); r.Outcome != counters.Fresh {
		t.Fatalf("newcomer once the keys expired: %+v", r)
	}
}

// TestSeenExpiredKeysAreSwept: owners no longer written are swept as their
// shard is, so the bound counts live keys only.
func TestSeenExpiredKeysAreSwept(t *testing.T) {
	clk := clock.NewFake(t0)
	s := New(clk)
	s.sweepEv = 1
	for round := range 5 {
		for i := range 1000 {
			mark(t, s, fmt.Sprint("owner", round, "-", i%100), strconv.Itoa(i), time.Minute, 1000)
		}
		clk.Advance(time.Minute + time.Second)
		// Write until every shard has been swept once more.
		swept := map[*shard]bool{}
		for i := 0; len(swept) < shardCount; i++ {
			owner := fmt.Sprint("probe", round, "-", i)
			r := mark(t, s, owner, "k", time.Minute, 1)
			if err := s.Unsee(context.Background(), owner, "k", r.Claim); err != nil {
				t.Fatal(err)
			}
			if sh := s.shard(owner); sh.seenWrites == 0 {
				swept[sh] = true
			}
		}
		if n, live := s.SeenLen(), s.seenLive.Load(); n != 0 || live != 0 {
			t.Fatalf("round %d: %d keys (%d counted) after expiry", round, n, live)
		}
		for i := range s.shards {
			if n := len(s.shards[i].owners); n != 0 {
				t.Fatalf("round %d: shard %d keeps %d idle owners", round, i, n)
			}
		}
	}
}

func TestSeenOwnerMemoryShrinksAfterBurst(t *testing.T) {
	clk := clock.NewFake(t0)
	s := New(clk)
	for i := range 10_000 {
		mark(t, s, "o", strconv.Itoa(i), time.Minute, 1_000_000)
	}
	clk.Advance(time.Minute + time.Second)
	mark(t, s, "o", "after", time.Minute, 1_000_000)
	o := s.shard("o").owners["o"]
	if len(o.keys) != 1 || o.peak != 1 || cap(o.heap) > 4 {
		t.Fatalf("owner after the burst: %d keys, peak %d, heap capacity %d", len(o.keys), o.peak, cap(o.heap))
	}
}

// TestSeenUnseeKeepsHeapSmall: a flood of claims given back (refused
// requests) leaves neither keys nor heap entries behind.
func TestSeenUnseeKeepsHeapSmall(t *testing.T) {
	clk := clock.NewFake(t0)
	s := New(clk)
	mark(t, s, "o", "kept", time.Hour, 10)
	for i := range 100_000 {
		r := mark(t, s, "o", strconv.Itoa(i), time.Hour, 10)
		if r.Outcome != counters.Fresh {
			t.Fatalf("claim %d: %+v", i, r)
		}
		if err := s.Unsee(context.Background(), "o", strconv.Itoa(i), r.Claim); err != nil {
			t.Fatal(err)
		}
	}
	o := s.shard("o").owners["o"]
	if len(o.keys) != 1 || len(o.heap) > compactBelow || s.seenLive.Load() != 1 {
		t.Fatalf("after 100000 claims given back: %d keys, %d heap entries, %d counted", len(o.keys), len(o.heap), s.seenLive.Load())
	}
}

// TestSeenMatchesModel checks MarkSeen and Unsee against plain maps under
// random owners, keys, ttls, bounds and clock steps, through expiry, the
// heaps, compaction and stopping owners.
func TestSeenMatchesModel(t *testing.T) {
	clk := clock.NewFake(t0)
	s := New(clk, WithMaxSeen(2_000))
	s.sweepEv = 64
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	type entry struct {
		exp   time.Time
		claim int64
	}
	model := map[string]map[string]entry{} // owner -> key -> entry
	stopped := map[string]time.Time{}      // owner -> end of its stop
	live := func(owner string, now time.Time) map[string]entry {
		m := model[owner]
		for k, e := range m {
			if !e.exp.After(now) {
				delete(m, k)
			}
		}
		return m
	}
	var stops uint64
	for i := range 200_000 {
		if rng.IntN(1000) == 0 {
			clk.Advance(time.Duration(rng.IntN(int(2 * time.Minute))))
		}
		now := clk.Now()
		owner := strconv.Itoa(rng.IntN(200))
		key := strconv.Itoa(rng.IntN(200))
		keys := live(owner, now)
		if rng.IntN(4) == 0 {
			e, ok := keys[key]
			claim := e.claim
			if rng.IntN(3) == 0 {
				claim++
			}
			if err := s.Unsee(ctx, owner, key, claim); err != nil {
				t.Fatal(err)
			}
			if ok && claim == e.claim {
				delete(keys, key)
			}
			continue
		}
		ttl := time.Duration(1 + rng.IntN(int(3*time.Minute)))
		bound := 1 + rng.IntN(60)
		r, err := s.MarkSeen(ctx, owner, key, ttl, bound)
		if err != nil {
			t.Fatalf("op %d: %v", i, err)
		}
		_, seen := keys[key]
		var want counters.SeenOutcome
		switch {
		case stopped[owner].After(now):
			want = counters.OwnerFull
		case seen:
			want = counters.Replayed
		case len(keys) >= bound:
			want = counters.OwnerFull
		default:
			want = counters.Fresh
		}
		if n := s.SeenStops(); n != stops {
			// The whole cache was full: the store stopped the largest
			// owners, maybe this one. Learn which, from the store.
			stops = n
			for name, m := range model {
				if o := s.shard(name).owners[name]; o != nil && o.stopped > now.Sub(s.epoch) {
					stopped[name] = s.epoch.Add(o.stopped)
					clear(m)
				}
			}
			if stopped[owner].After(now) {
				want = counters.OwnerFull
			}
		}
		if r.Outcome == counters.OwnerFull && want == counters.Fresh {
			// Full, and this owner holds too few keys to be worth stopping.
			if s.seenLive.Load() < s.maxSeen-s.maxSeen/seenLowWater {
				t.Fatalf("op %d: OwnerFull for %q under its bound, in a cache that is not full", i, owner)
			}
			continue
		}
		if r.Outcome != want {
			t.Fatalf("op %d: MarkSeen(%q, %q, %v, %d) = %+v; want %v", i, owner, key, ttl, bound, r, want)
		}
		if want == counters.Fresh {
			if keys == nil {
				keys = map[string]entry{}
				model[owner] = keys
			}
			keys[key] = entry{exp: now.Add(ttl), claim: r.Claim}
		}
	}
	if stops == 0 {
		t.Fatal("the cache was never full: the model checked no stop")
	}
	t.Logf("%d owners stopped", stops)
}

func BenchmarkMarkSeen(b *testing.B) {
	// The system clock and a short ttl keep the cache in its steady state:
	// every MarkSeen inserts one key and, amortized, expires one.
	s := New(clock.System{})
	ctx := context.Background()
	var next atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		buf := make([]byte, 0, 32)
		owner := "key_" + strconv.FormatInt(next.Add(1), 10)
		for pb.Next() {
			buf = strconv.AppendInt(append(buf[:0], "sig-"...), next.Add(1), 10)
			r, err := s.MarkSeen(ctx, owner, string(buf), 10*time.Millisecond, 1_000_000)
			if err != nil || r.Outcome != counters.Fresh {
				b.Fatalf("MarkSeen = %+v, %v", r, err)
			}
		}
	})
}
