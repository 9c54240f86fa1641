package memory

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/clock"
	"github.com/tollgate/tollgate/internal/counters"
	"github.com/tollgate/tollgate/internal/counters/counterstest"
)

func TestConformance(t *testing.T) {
	var clk *clock.Fake
	counterstest.RunTests(t, counterstest.Harness{
		New: func(t *testing.T) counters.Store {
			clk = clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
			return New(clk)
		},
		Advance: func(_ *testing.T, d time.Duration) { clk.Advance(d) },
		Now:     func(*testing.T) time.Time { return clk.Now() },
	})
}

func TestMemoryIsBounded(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	s := New(clk, WithMaxKeys(shardCount*10))
	l := counters.Limit{Max: 5, Window: time.Minute}
	for i := range 10_000 {
		if _, err := s.RecordAttempt(context.Background(), fmt.Sprint("ip-", i), l); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.Len(); n > shardCount*10+shardCount {
		t.Fatalf("holds %d keys, bound is %d", n, shardCount*10)
	}
}

func TestFailuresAreBounded(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	s := New(clk, WithMaxKeys(shardCount*10))
	s.sweepEv = 16
	b := counters.Backoff{Free: 5, Base: time.Second, Max: time.Minute, Window: time.Minute}
	for i := range 10_000 {
		if _, err := s.Fail(context.Background(), fmt.Sprint("ip-", i), b); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.FailLen(); n > shardCount*10+shardCount {
		t.Fatalf("holds %d backoff keys, bound is %d", n, shardCount*10)
	}
	// Forgotten keys are swept as shards are written.
	clk.Advance(2 * time.Minute)
	for i := range 10_000 {
		_, _ = s.Fail(context.Background(), fmt.Sprint("fresh-", i%100), b)
	}
	if n := s.FailLen(); n > 100+shardCount*16 {
		t.Fatalf("holds %d backoff keys after the old ones were forgotten", n)
	}
}

func TestDecayedKeysAreSwept(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	s := New(clk)
	s.sweepEv = 1
	l := counters.Limit{Max: 5, Window: time.Minute}
	for i := range 100 {
		_, _ = s.RecordAttempt(context.Background(), fmt.Sprint("k", i), l)
	}
	clk.Advance(time.Hour)
	// Write until every shard has been written (and so swept) once more.
	touched := map[*shard]bool{}
	for i := 0; len(touched) < shardCount; i++ {
		key := fmt.Sprint("fresh", i)
		touched[s.shard(key)] = true
		_, _ = s.RecordAttempt(context.Background(), key, l)
		_ = s.ResetAttempts(context.Background(), key)
	}
	if n := s.Len(); n != 0 {
		t.Fatalf("decayed keys kept: %d", n)
	}
}

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// sameShardKeys returns n distinct keys that fall in one shard of s.
func sameShardKeys(s *Store, n int) []string {
	var keys []string
	want := s.shard("k0")
	for i := 0; len(keys) < n; i++ {
		if k := fmt.Sprint("k", i); s.shard(k) == want {
			keys = append(keys, k)
		}
	}
	return keys
}

// touchEveryShard marks one fresh key in every shard, which expires the keys
// each shard holds, and returns how many keys it marked.
func touchEveryShard(t *testing.T, s *Store, prefix string, ttl time.Duration) int {
	t.Helper()
	touched := map[*shard]bool{}
	for i := 0; len(touched) < shardCount; i++ {
		key := fmt.Sprint(prefix, i)
		if sh := s.shard(key); !touched[sh] {
			touched[sh] = true
			if first, err := s.MarkSeen(context.Background(), key, ttl); err != nil || !first {
				t.Fatalf("MarkSeen(%q) = %v, %v", key, first, err)
			}
		}
	}
	return shardCount
}

func TestSeenIsBounded(t *testing.T) {
	clk := clock.NewFake(t0)
	s := New(clk, WithMaxSeen(shardCount*2))
	ctx := context.Background()
	var accepted []string
	for i := range 10_000 {
		key := fmt.Sprint("sig-", i)
		first, err := s.MarkSeen(ctx, key, time.Minute)
		switch {
		case errors.Is(err, ErrFull):
		case err != nil:
			t.Fatal(err)
		case first:
			accepted = append(accepted, key)
		default:
			t.Fatalf("new key %q reported seen", key)
		}
	}
	if n := s.SeenLen(); n != shardCount*2 || len(accepted) != n {
		t.Fatalf("holds %d keys, accepted %d, bound is %d", n, len(accepted), shardCount*2)
	}
	// Full, yet no live key was forgotten: every replay is still caught.
	for _, key := range accepted {
		if first, err := s.MarkSeen(ctx, key, time.Minute); err != nil || first {
			t.Fatalf("replay of %q while full = %v, %v", key, first, err)
		}
	}
	// Once they expire, full shards take new keys again.
	clk.Advance(time.Minute + time.Second)
	for _, key := range accepted {
		if first, err := s.MarkSeen(ctx, key, time.Minute); err != nil || !first {
			t.Fatalf("MarkSeen(%q) after expiry = %v, %v", key, first, err)
		}
	}
}

func TestSeenFullShardReclaimsOnlyExpired(t *testing.T) {
	clk := clock.NewFake(t0)
	s := New(clk, WithMaxSeen(shardCount)) // one key per shard
	ctx := context.Background()
	k := sameShardKeys(s, 3)
	if first, err := s.MarkSeen(ctx, k[0], time.Minute); err != nil || !first {
		t.Fatalf("MarkSeen(k0) = %v, %v", first, err)
	}
	if _, err := s.MarkSeen(ctx, k[1], time.Hour); !errors.Is(err, ErrFull) {
		t.Fatalf("MarkSeen into a full shard: err = %v, want ErrFull", err)
	}
	clk.Advance(2 * time.Minute)
	if first, err := s.MarkSeen(ctx, k[1], time.Hour); err != nil || !first {
		t.Fatalf("MarkSeen(k1) once k0 expired = %v, %v", first, err)
	}
	// k1 is live: the shard refuses rather than forget it, and still catches
	// its replay.
	for _, key := range []string{k[2], k[0]} {
		if _, err := s.MarkSeen(ctx, key, time.Minute); !errors.Is(err, ErrFull) {
			t.Fatalf("MarkSeen(%q) beside a live key: err = %v, want ErrFull", key, err)
		}
	}
	if first, err := s.MarkSeen(ctx, k[1], time.Hour); err != nil || first {
		t.Fatalf("replay of k1 = %v, %v", first, err)
	}
}

func TestSeenExpiredKeysAreSwept(t *testing.T) {
	clk := clock.NewFake(t0)
	s := New(clk)
	ctx := context.Background()
	for round := range 10 {
		for i := range 1000 {
			if _, err := s.MarkSeen(ctx, fmt.Sprint(round, "-", i), time.Minute); err != nil {
				t.Fatal(err)
			}
		}
		// This round's keys, and at most the last round's probes.
		if n := s.SeenLen(); n < 1000 || n > 1000+shardCount {
			t.Fatalf("round %d: holds %d keys", round, n)
		}
		clk.Advance(time.Minute + time.Second)
		probes := touchEveryShard(t, s, fmt.Sprint("probe", round, "-"), time.Minute)
		if n := s.SeenLen(); n != probes {
			t.Fatalf("round %d: holds %d keys after expiry, want only the %d probes", round, n, probes)
		}
		clk.Advance(time.Minute + time.Second) // probes expire with the next round
	}
}

func TestSeenMemoryShrinksAfterBurst(t *testing.T) {
	clk := clock.NewFake(t0)
	s := New(clk)
	ctx := context.Background()
	for i := range shardCount * 1000 {
		if _, err := s.MarkSeen(ctx, strconv.Itoa(i), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(time.Minute + time.Second)
	touchEveryShard(t, s, "after", time.Minute)
	for i := range s.shards {
		sh := &s.shards[i]
		if len(sh.seen.m) != 1 || cap(sh.seen.heap) > 4 {
			t.Fatalf("shard %d after the burst: %d keys, heap capacity %d", i, len(sh.seen.m), cap(sh.seen.heap))
		}
	}
}

// TestSeenMatchesModel checks MarkSeen against a plain map under random keys,
// ttls and clock steps, through expiry, the heap and compaction.
func TestSeenMatchesModel(t *testing.T) {
	clk := clock.NewFake(t0)
	s := New(clk)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	model := map[string]time.Time{} // key -> expiry
	for i := range 200_000 {
		if rng.IntN(50) == 0 {
			clk.Advance(time.Duration(rng.IntN(int(2 * time.Minute))))
		}
		key := strconv.Itoa(rng.IntN(20_000))
		ttl := time.Duration(1 + rng.IntN(int(3*time.Minute)))
		now := clk.Now()
		want := !model[key].After(now)
		if want {
			model[key] = now.Add(ttl)
		}
		got, err := s.MarkSeen(ctx, key, ttl)
		if err != nil || got != want {
			t.Fatalf("op %d: MarkSeen(%q, %v) = %v, %v; want %v", i, key, ttl, got, err, want)
		}
	}
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
		for pb.Next() {
			buf = strconv.AppendInt(append(buf[:0], "sig-"...), next.Add(1), 10)
			first, err := s.MarkSeen(ctx, string(buf), 10*time.Millisecond)
			if err != nil || !first {
				b.Fatalf("MarkSeen = %v, %v", first, err)
			}
		}
	})
}
