package memory

import (
	"context"
	"fmt"
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
