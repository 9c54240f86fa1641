package memory

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/clock"
	"github.com/tollgate/tollgate/internal/counters"
)

func TestInterval(t *testing.T) {
	for _, c := range []struct {
		rate float64
		want time.Duration
	}{
		{0, 0},
		{1, time.Second},
		{3, 333_333_333},
		{2.0 / 3, 1_500_000_000},
		{1.0 / 3600, time.Hour},
		{1e12, 1},
		{1e-300, math.MaxInt64},
	} {
		if got := (counters.Allowance{Rate: c.rate, Burst: 1}).Interval(); got != c.want {
			t.Errorf("Interval of rate %g = %v, want %v", c.rate, got, c.want)
		}
	}
}

// TestTakeExactOnFrozenClock checks the figures of GCRA to the nanosecond.
func TestTakeExactOnFrozenClock(t *testing.T) {
	clk := clock.NewFake(t0)
	s := New(clk)
	ctx := context.Background()
	a := counters.Allowance{Rate: 3, Burst: 4} // T = 333,333,333ns
	const T = 333_333_333
	for i := range 4 {
		d, err := s.Take(ctx, "r", "", 1, a)
		want := counters.LimitDecision{Outcome: counters.Admitted, RateLimit: 4, RateRemaining: 3 - i, RateReset: time.Duration((i + 1) * T)}
		if err != nil || d != want {
			t.Fatalf("request %d = %+v, %v; want %+v", i+1, d, err, want)
		}
	}
	d, _ := s.Take(ctx, "r", "", 1, a)
	want := counters.LimitDecision{Outcome: counters.RateLimited, RetryAfter: T, RateLimit: 4, RateReset: 4 * T}
	if d != want {
		t.Fatalf("refused = %+v; want %+v", d, want)
	}
	clk.Advance(T - 1)
	if d, _ := s.Take(ctx, "r", "", 1, a); d.Outcome != counters.RateLimited || d.RetryAfter != 1 {
		t.Fatalf("1ns early = %+v", d)
	}
	clk.Advance(1)
	if d, _ := s.Take(ctx, "r", "", 1, a); d.Outcome != counters.Admitted || d.RateRemaining != 0 {
		t.Fatalf("on time = %+v", d)
	}
}

// TestTakeNoDrift admits one request every interval for a long time: the TAT
// advances by whole nanoseconds, so it never drifts off the clock.
func TestTakeNoDrift(t *testing.T) {
	clk := clock.NewFake(t0)
	s := New(clk)
	ctx := context.Background()
	a := counters.Allowance{Rate: 3, Burst: 1}
	for i := range 100_000 {
		if d, _ := s.Take(ctx, "r", "", 1, a); d.Outcome != counters.Admitted {
			t.Fatalf("request %d on time refused: %+v", i+1, d)
		}
		if d, _ := s.Take(ctx, "r", "", 1, a); d.Outcome != counters.RateLimited || d.RetryAfter != a.Interval() {
			t.Fatalf("request %d early: %+v", i+1, d)
		}
		clk.Advance(a.Interval())
	}
}

func TestTakeExtremeAllowances(t *testing.T) {
	clk := clock.NewFake(t0)
	s := New(clk)
	ctx := context.Background()
	for _, a := range []counters.Allowance{
		{Rate: 1e-300, Burst: math.MaxInt},
		{Rate: 1e-300, Burst: 1},
		{Rate: 1e12, Burst: math.MaxInt},
		{Rate: math.MaxFloat64, Burst: 1},
		{Quota: math.MaxInt64, PeriodEnd: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)},
		{Quota: 1, PeriodEnd: time.Date(1, 1, 2, 0, 0, 0, 0, time.UTC)},
	} {
		key := fmt.Sprint(a)
		for i := range 3 {
			d, err := s.Take(ctx, key, key, math.MaxInt64, a)
			if err != nil || d.RetryAfter < 0 || d.RateReset < 0 || d.RateRemaining < 0 || d.QuotaRemaining < 0 {
				t.Fatalf("%+v, request %d = %+v, %v", a, i+1, d, err)
			}
		}
	}
}

// rateModel is a token bucket, the formulation GCRA is equivalent to: credit
// (in nanoseconds of tokens) refills with time up to Burst intervals, and a
// request takes one interval of it.
type rateModel struct {
	credit, last int64
}

type quotaModel struct {
	used int64
	end  time.Time
}

// TestTakeMatchesModel checks Take, QuotaUsed and SetQuotaUsed against a
// token bucket and a plain map, to the nanosecond, under random keys,
// allowances, units and clock steps, through sweeps and expiry.
func TestTakeMatchesModel(t *testing.T) {
	clk := clock.NewFake(t0)
	s := New(clk)
	s.sweepEv = 3
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(3, 4))
	allowance := func(k int) counters.Allowance { // fixed per rate key
		return counters.Allowance{Rate: []float64{0, 0.5, 3, 10, 1.0 / 7}[k%5], Burst: 1 + k%4}
	}
	const period = 10 * time.Second
	rates := map[int]*rateModel{}
	quotas := map[string]*quotaModel{}
	for i := range 300_000 {
		if rng.IntN(20) == 0 {
			clk.Advance(time.Duration(rng.Int64N(int64(2 * time.Second))))
		}
		now := clk.Now()
		p := int(now.Sub(t0)/period) - rng.IntN(2) // now and then, a period that is over
		end := t0.Add(time.Duration(p+1) * period)
		qk := fmt.Sprint("q", rng.IntN(30), "@", p)
		qm := quotas[qk]
		if qm != nil && !qm.end.After(now) {
			qm = nil
		}
		used := int64(0)
		if qm != nil {
			used = qm.used
		}
		switch rng.IntN(10) {
		case 0:
			if got, err := s.QuotaUsed(ctx, qk); err != nil || got != used {
				t.Fatalf("op %d: QuotaUsed(%s) = %d, %v; want %d", i, qk, got, err, used)
			}
			continue
		case 1:
			set := rng.Int64N(20)
			if err := s.SetQuotaUsed(ctx, qk, set, end); err != nil {
				t.Fatal(err)
			}
			switch {
			case qm != nil:
				qm.used = max(qm.used, set)
			case set > 0 && end.After(now):
				quotas[qk] = &quotaModel{used: set, end: end}
			}
			continue
		}

		rk := rng.IntN(40)
		a := allowance(rk)
		if rng.IntN(4) > 0 {
			a.Quota, a.PeriodEnd = int64(1+rk%3)*5, end
		}
		units := rng.Int64N(4)
		T := int64(a.Interval())
		full := T * int64(a.Burst)
		nowNS := int64(now.Sub(t0))
		rm := rates[rk]
		if rm == nil {
			rm = &rateModel{credit: full, last: nowNS}
		}
		credit := min(full, rm.credit+nowNS-rm.last)

		want := counters.LimitDecision{Outcome: counters.Admitted}
		switch {
		case a.Rate > 0 && credit < T:
			want.Outcome, want.RetryAfter = counters.RateLimited, time.Duration(T-credit)
		case a.Quota > 0 && units > 0 && units > a.Quota-used:
			want.Outcome, want.RetryAfter = counters.QuotaExhausted, end.Sub(now)
		default:
			if a.Rate > 0 {
				credit -= T
				rates[rk] = &rateModel{credit: credit, last: nowNS}
			}
			if a.Quota > 0 {
				used += units
				switch {
				case !end.After(now) || units == 0:
				case qm != nil:
					qm.used = used
				default:
					quotas[qk] = &quotaModel{used: used, end: end}
				}
			}
		}
		if a.Rate > 0 {
			want.RateLimit, want.RateRemaining, want.RateReset = a.Burst, int(credit/T), time.Duration(full-credit)
		}
		if a.Quota > 0 {
			want.QuotaUsed, want.QuotaRemaining = used, max(0, a.Quota-used)
		}
		got, err := s.Take(ctx, fmt.Sprint("r", rk), qk, units, a)
		if err != nil || got != want {
			t.Fatalf("op %d: Take(r%d, %s, %d, %+v) =\n%+v, %v; want\n%+v", i, rk, qk, units, a, got, err, want)
		}
	}
}

func TestTakeSameShard(t *testing.T) {
	clk := clock.NewFake(t0)
	s := New(clk)
	k := sameShardKeys(s, 2)
	a := counters.Allowance{Rate: 1, Burst: 3, Quota: 5, PeriodEnd: t0.Add(time.Hour)}
	for _, pair := range [][2]string{{k[0], k[1]}, {k[1], k[0]}, {k[0], k[0]}} {
		d, err := s.Take(context.Background(), pair[0], pair[1], 1, a)
		if err != nil || d.Outcome != counters.Admitted {
			t.Fatalf("Take(%q, %q) = %+v, %v", pair[0], pair[1], d, err)
		}
	}
}

func TestRateKeysAreBounded(t *testing.T) {
	clk := clock.NewFake(t0)
	s := New(clk, WithMaxKeys(shardCount*10))
	a := counters.Allowance{Rate: 1.0 / 60, Burst: 5}
	for i := range 10_000 {
		if _, err := s.Take(context.Background(), fmt.Sprint("org-", i), "", 1, a); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.RateLen(); n > shardCount*10 {
		t.Fatalf("holds %d rate keys, bound is %d", n, shardCount*10)
	}
}

func TestRateKeysAreSweptWhenFull(t *testing.T) {
	clk := clock.NewFake(t0)
	s := New(clk)
	s.sweepEv = 1
	ctx := context.Background()
	a := counters.Allowance{Rate: 1, Burst: 5} // full again 1s after one request
	const keys = shardCount * 1000
	for i := range keys {
		_, _ = s.Take(ctx, strconv.Itoa(i), "", 1, a)
	}
	if n := s.RateLen(); n != keys {
		t.Fatalf("live rate keys dropped: %d left", n)
	}
	clk.Advance(time.Second)
	// One key per shard, written as often as its shard holds keys: a shard
	// is swept every max(sweepEv, keys held) writes.
	hot := counters.Allowance{Rate: 1e6, Burst: 1e6}
	touched := map[*shard]bool{}
	for i := 0; len(touched) < shardCount; i++ {
		key := fmt.Sprint("hot", i)
		if sh := s.shard(key); !touched[sh] {
			touched[sh] = true
			for range 2 * keys / shardCount {
				if d, _ := s.Take(ctx, key, "", 1, hot); d.Outcome != counters.Admitted {
					t.Fatalf("hot key refused: %+v", d)
				}
			}
		}
	}
	if n := s.RateLen(); n != shardCount {
		t.Fatalf("keys with full buckets kept: %d of %d", n-shardCount, keys)
	}
	for i := range s.shards {
		if sh := &s.shards[i]; sh.ratePeak > 4*len(sh.rate)+compactBelow {
			t.Fatalf("shard %d not rebuilt: peak %d, %d keys", i, sh.ratePeak, len(sh.rate))
		}
	}
}

func TestQuotaFullRefusesAndConsumesNothing(t *testing.T) {
	clk := clock.NewFake(t0)
	s := New(clk, WithMaxQuotas(shardCount)) // one count per shard
	ctx := context.Background()
	k := sameShardKeys(s, 3)
	a := counters.Allowance{Rate: 1, Burst: 2, Quota: 10, PeriodEnd: t0.Add(time.Minute)}
	if d, err := s.Take(ctx, "rate", k[0], 1, a); err != nil || d.Outcome != counters.Admitted {
		t.Fatalf("Take(k0) = %+v, %v", d, err)
	}
	if _, err := s.Take(ctx, "rate", k[1], 1, a); !errors.Is(err, ErrQuotaFull) {
		t.Fatalf("Take of a new count into a full shard: err = %v, want ErrQuotaFull", err)
	}
	if err := s.SetQuotaUsed(ctx, k[1], 1, a.PeriodEnd); !errors.Is(err, ErrQuotaFull) {
		t.Fatalf("SetQuotaUsed into a full shard: err = %v, want ErrQuotaFull", err)
	}
	// The refused Take consumed no rate; counts already held and free
	// requests still work; the live count was not forgotten.
	d, err := s.Take(ctx, "rate", k[0], 1, a)
	if err != nil || d.Outcome != counters.Admitted || d.RateRemaining != 0 || d.QuotaUsed != 2 {
		t.Fatalf("Take(k0) beside the full shard = %+v, %v", d, err)
	}
	if d, err := s.Take(ctx, "other", k[2], 0, a); err != nil || d.Outcome != counters.Admitted {
		t.Fatalf("free Take into the full shard = %+v, %v", d, err)
	}
	// Once the period is over, the shard takes new counts again.
	clk.Advance(time.Minute)
	a.PeriodEnd = t0.Add(2 * time.Minute)
	if d, err := s.Take(ctx, "rate2", k[1], 1, a); err != nil || d.Outcome != counters.Admitted || d.QuotaUsed != 1 {
		t.Fatalf("Take(k1) after k0's period = %+v, %v", d, err)
	}
	if n := s.QuotaLen(); n != 1 {
		t.Fatalf("holds %d counts, want 1", n)
	}
}

func TestQuotaMemoryShrinksAfterPeriod(t *testing.T) {
	clk := clock.NewFake(t0)
	s := New(clk)
	ctx := context.Background()
	a := counters.Allowance{Quota: 100, PeriodEnd: t0.Add(time.Hour)}
	for i := range shardCount * 1000 {
		if _, err := s.Take(ctx, "", strconv.Itoa(i), 1, a); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(time.Hour)
	a.PeriodEnd = t0.Add(2 * time.Hour)
	touched := map[*shard]bool{}
	for i := 0; len(touched) < shardCount; i++ {
		key := fmt.Sprint("next", i)
		if sh := s.shard(key); !touched[sh] {
			touched[sh] = true
			if _, err := s.Take(ctx, "", key, 1, a); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := range s.shards {
		sh := &s.shards[i]
		if len(sh.quota.m) != 1 || cap(sh.quota.heap) > 4 {
			t.Fatalf("shard %d after the period: %d counts, heap capacity %d", i, len(sh.quota.m), cap(sh.quota.heap))
		}
	}
}

// BenchmarkTake decides requests against a rate and a quota, on the system
// clock: DistinctOrgs spreads them over 10,000 organizations, HotKey sends
// them all to one.
func BenchmarkTake(b *testing.B) {
	a := counters.Allowance{Rate: 1e6, Burst: 1000, Quota: math.MaxInt64, PeriodEnd: time.Now().Add(time.Hour)}
	const orgs = 10_000
	rateKeys, quotaKeys := make([]string, orgs), make([]string, orgs)
	for i := range orgs {
		rateKeys[i], quotaKeys[i] = fmt.Sprint("rate:org-", i), fmt.Sprint("quota:org-", i, ":2026-01")
	}
	for _, c := range []struct {
		name string
		orgs int
	}{{"DistinctOrgs", orgs}, {"HotKey", 1}} {
		b.Run(c.name, func(b *testing.B) {
			s := New(clock.System{})
			ctx := context.Background()
			var goroutines atomic.Int64
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := int(goroutines.Add(1)) * 7919 // each goroutine its own walk
				for pb.Next() {
					i = (i + 1) % c.orgs
					if _, err := s.Take(ctx, rateKeys[i], quotaKeys[i], 1, a); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/decision")
		})
	}
}
