package counterstest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/counters"
)

func runTakeTests(t *testing.T, h Harness) {
	t.Run("TakeBurstThenRateLimited", func(t *testing.T) { testTakeBurst(t, h) })
	t.Run("TakeRateRecoversOverTime", func(t *testing.T) { testTakeRecover(t, h) })
	t.Run("TakeQuotaExhausted", func(t *testing.T) { testTakeQuota(t, h) })
	t.Run("TakeQuotaExpiresAtPeriodEnd", func(t *testing.T) { testTakeQuotaExpires(t, h) })
	t.Run("TakeRateRefusalConsumesNoQuota", func(t *testing.T) { testTakeRateRefusal(t, h) })
	t.Run("TakeQuotaRefusalConsumesNoRate", func(t *testing.T) { testTakeQuotaRefusal(t, h) })
	t.Run("TakeMultiUnit", func(t *testing.T) { testTakeMultiUnit(t, h) })
	t.Run("TakeZeroUnits", func(t *testing.T) { testTakeZeroUnits(t, h) })
	t.Run("TakeNoLimits", func(t *testing.T) { testTakeNoLimits(t, h) })
	t.Run("TakeHeaderFields", func(t *testing.T) { testTakeHeaders(t, h) })
	t.Run("TakeKeysAreIndependent", func(t *testing.T) { testTakeIndependent(t, h) })
	t.Run("TakeRejectsInvalid", func(t *testing.T) { testTakeInvalid(t, h) })
	t.Run("TakeConcurrentQuotaExact", func(t *testing.T) { testTakeConcurrentQuota(t, h) })
	t.Run("TakeConcurrentRateExact", func(t *testing.T) { testTakeConcurrentRate(t, h) })
	t.Run("TakeConcurrentBothExact", func(t *testing.T) { testTakeConcurrentBoth(t, h) })
	t.Run("TakeConcurrentCrossedKeys", func(t *testing.T) { testTakeCrossedKeys(t, h) })
	t.Run("SetQuotaUsedRaisesNeverLowers", func(t *testing.T) { testSetQuotaUsed(t, h) })
	t.Run("SetQuotaUsedExpires", func(t *testing.T) { testSetQuotaUsedExpires(t, h) })
}

// slack is how far a duration the store reports may be from the suite's
// expectation: the store's clock moves (or is read) between calls.
const slack = time.Second

func take(t *testing.T, s counters.Store, rateKey, quotaKey string, units int64, a counters.Allowance) counters.LimitDecision {
	t.Helper()
	d, err := s.Take(ctx, rateKey, quotaKey, units, a)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func quotaUsed(t *testing.T, s counters.Store, key string) int64 {
	t.Helper()
	n, err := s.QuotaUsed(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func near(t *testing.T, what string, got, want time.Duration) {
	t.Helper()
	if got < want-slack || got > want+slack {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
}

func expect(t *testing.T, what string, d counters.LimitDecision, want counters.LimitOutcome) {
	t.Helper()
	if d.Outcome != want {
		t.Fatalf("%s: %v (%+v), want %v", what, d.Outcome, d, want)
	}
	if want == counters.Admitted && d.RetryAfter != 0 {
		t.Fatalf("%s: admitted with RetryAfter %v", what, d.RetryAfter)
	}
}

// perMinute is a rate of n requests a minute.
func perMinute(n float64) float64 { return n / 60 }

func testTakeBurst(t *testing.T, h Harness) {
	s := h.New(t)
	a := counters.Allowance{Rate: perMinute(6), Burst: 5} // T = 10s
	for i := range 5 {
		d := take(t, s, "rate", "", 1, a)
		expect(t, fmt.Sprint("request ", i+1), d, counters.Admitted)
		if d.RateLimit != 5 || d.RateRemaining != 4-i {
			t.Fatalf("request %d: RateLimit %d, RateRemaining %d; want 5, %d", i+1, d.RateLimit, d.RateRemaining, 4-i)
		}
	}
	d := take(t, s, "rate", "", 1, a)
	expect(t, "request 6", d, counters.RateLimited)
	near(t, "RetryAfter", d.RetryAfter, 10*time.Second)
	if d.RetryAfter <= 0 || d.RetryAfter > 10*time.Second+time.Millisecond {
		t.Fatalf("RetryAfter = %v, want in (0, 10s]", d.RetryAfter)
	}
	if d.RateLimit != 5 || d.RateRemaining != 0 {
		t.Fatalf("refused: RateLimit %d, RateRemaining %d; want 5, 0", d.RateLimit, d.RateRemaining)
	}
	near(t, "RateReset", d.RateReset, 50*time.Second)
}

func testTakeRecover(t *testing.T, h Harness) {
	s := h.New(t)
	a := counters.Allowance{Rate: perMinute(1), Burst: 3} // T = 1m
	for range 3 {
		expect(t, "burst", take(t, s, "rate", "", 1, a), counters.Admitted)
	}
	expect(t, "over the burst", take(t, s, "rate", "", 1, a), counters.RateLimited)
	h.Advance(t, 30*time.Second)
	d := take(t, s, "rate", "", 1, a)
	expect(t, "after half an interval", d, counters.RateLimited)
	near(t, "RetryAfter after half an interval", d.RetryAfter, 30*time.Second)
	h.Advance(t, 30*time.Second+time.Second)
	d = take(t, s, "rate", "", 1, a)
	expect(t, "after one interval", d, counters.Admitted)
	if d.RateRemaining != 0 {
		t.Fatalf("after one interval: RateRemaining %d, want 0", d.RateRemaining)
	}
	expect(t, "second after one interval", take(t, s, "rate", "", 1, a), counters.RateLimited)
	h.Advance(t, 3*time.Minute+time.Second)
	for i := range 3 {
		d := take(t, s, "rate", "", 1, a)
		expect(t, fmt.Sprint("after the bucket refilled, request ", i+1), d, counters.Admitted)
		if d.RateRemaining != 2-i {
			t.Fatalf("after the bucket refilled, request %d: RateRemaining %d, want %d", i+1, d.RateRemaining, 2-i)
		}
	}
}

func testTakeQuota(t *testing.T, h Harness) {
	s := h.New(t)
	end := h.now(t).Add(time.Hour)
	a := counters.Allowance{Quota: 3, PeriodEnd: end}
	for i := range 3 {
		d := take(t, s, "", "quota", 1, a)
		expect(t, fmt.Sprint("unit ", i+1), d, counters.Admitted)
		if d.QuotaUsed != int64(i+1) || d.QuotaRemaining != int64(2-i) {
			t.Fatalf("unit %d: QuotaUsed %d, QuotaRemaining %d", i+1, d.QuotaUsed, d.QuotaRemaining)
		}
		if d.RateLimit != 0 || d.RateRemaining != 0 || d.RateReset != 0 {
			t.Fatalf("no rate limit, yet rate fields %+v", d)
		}
	}
	d := take(t, s, "", "quota", 1, a)
	expect(t, "unit 4", d, counters.QuotaExhausted)
	near(t, "RetryAfter", d.RetryAfter, end.Sub(h.now(t)))
	if d.QuotaUsed != 3 || d.QuotaRemaining != 0 {
		t.Fatalf("exhausted: QuotaUsed %d, QuotaRemaining %d; want 3, 0", d.QuotaUsed, d.QuotaRemaining)
	}
	if n := quotaUsed(t, s, "quota"); n != 3 {
		t.Fatalf("QuotaUsed = %d, want 3", n)
	}
}

func testTakeQuotaExpires(t *testing.T, h Harness) {
	s := h.New(t)
	end := h.now(t).Add(10 * time.Minute)
	a := counters.Allowance{Quota: 2, PeriodEnd: end}
	take(t, s, "", "quota", 2, a)
	expect(t, "exhausted", take(t, s, "", "quota", 1, a), counters.QuotaExhausted)
	h.Advance(t, 10*time.Minute+time.Second)
	if n := quotaUsed(t, s, "quota"); n != 0 {
		t.Fatalf("QuotaUsed after the period = %d, want 0", n)
	}
	// A period that is over starts from zero and keeps nothing.
	d := take(t, s, "", "quota", 2, a)
	expect(t, "in a period that is over", d, counters.Admitted)
	if d.QuotaUsed != 2 || d.QuotaRemaining != 0 {
		t.Fatalf("in a period that is over: QuotaUsed %d, QuotaRemaining %d; want 2, 0", d.QuotaUsed, d.QuotaRemaining)
	}
	if n := quotaUsed(t, s, "quota"); n != 0 {
		t.Fatalf("QuotaUsed of a period that is over = %d, want 0", n)
	}
	// The same key in a new period counts from zero.
	a.PeriodEnd = h.now(t).Add(10 * time.Minute)
	for i := range 2 {
		expect(t, fmt.Sprint("new period, unit ", i+1), take(t, s, "", "quota", 1, a), counters.Admitted)
	}
	expect(t, "new period, unit 3", take(t, s, "", "quota", 1, a), counters.QuotaExhausted)
}

func testTakeRateRefusal(t *testing.T, h Harness) {
	s := h.New(t)
	a := counters.Allowance{Rate: perMinute(1), Burst: 1, Quota: 10, PeriodEnd: h.now(t).Add(time.Hour)}
	expect(t, "first", take(t, s, "rate", "quota", 3, a), counters.Admitted)
	for range 3 {
		d := take(t, s, "rate", "quota", 3, a)
		expect(t, "second", d, counters.RateLimited)
		if d.QuotaUsed != 3 || d.QuotaRemaining != 7 {
			t.Fatalf("rate limited: QuotaUsed %d, QuotaRemaining %d; want 3, 7", d.QuotaUsed, d.QuotaRemaining)
		}
	}
	if n := quotaUsed(t, s, "quota"); n != 3 {
		t.Fatalf("rate-limited requests consumed quota: used %d, want 3", n)
	}
}

func testTakeQuotaRefusal(t *testing.T, h Harness) {
	s := h.New(t)
	a := counters.Allowance{Rate: perMinute(1), Burst: 3, Quota: 1, PeriodEnd: h.now(t).Add(time.Hour)}
	d := take(t, s, "rate", "quota", 1, a)
	expect(t, "first", d, counters.Admitted)
	if d.RateRemaining != 2 {
		t.Fatalf("first: RateRemaining %d, want 2", d.RateRemaining)
	}
	for range 5 {
		d = take(t, s, "rate", "quota", 1, a)
		expect(t, "over quota", d, counters.QuotaExhausted)
		if d.RateRemaining != 2 {
			t.Fatalf("over quota: RateRemaining %d, want 2 (nothing consumed)", d.RateRemaining)
		}
	}
	// The rate has two requests left: free ones pass, then it refuses.
	for i := range 2 {
		d = take(t, s, "rate", "quota", 0, a)
		expect(t, "free request", d, counters.Admitted)
		if d.RateRemaining != 1-i {
			t.Fatalf("free request %d: RateRemaining %d, want %d", i+1, d.RateRemaining, 1-i)
		}
	}
	expect(t, "free request 3", take(t, s, "rate", "quota", 0, a), counters.RateLimited)
}

func testTakeMultiUnit(t *testing.T, h Harness) {
	s := h.New(t)
	end := h.now(t).Add(time.Hour)
	a := counters.Allowance{Rate: perMinute(60), Burst: 100, Quota: 10, PeriodEnd: end}
	expect(t, "7 units", take(t, s, "rate", "quota", 7, a), counters.Admitted)
	d := take(t, s, "rate", "quota", 5, a)
	expect(t, "5 units with 3 left", d, counters.QuotaExhausted)
	near(t, "RetryAfter", d.RetryAfter, end.Sub(h.now(t)))
	if d.QuotaUsed != 7 || d.QuotaRemaining != 3 || d.RateRemaining != 99 {
		t.Fatalf("5 units with 3 left: %+v; want QuotaUsed 7, QuotaRemaining 3, RateRemaining 99", d)
	}
	d = take(t, s, "rate", "quota", 3, a)
	expect(t, "3 units with 3 left", d, counters.Admitted)
	if d.QuotaUsed != 10 || d.QuotaRemaining != 0 || d.RateRemaining != 98 {
		t.Fatalf("3 units with 3 left: %+v; want QuotaUsed 10, QuotaRemaining 0, RateRemaining 98", d)
	}
	expect(t, "1 unit with none left", take(t, s, "rate", "quota", 1, a), counters.QuotaExhausted)
	expect(t, "more units than the quota", take(t, s, "rate", "other", 11, a), counters.QuotaExhausted)
	if n := quotaUsed(t, s, "other"); n != 0 {
		t.Fatalf("a refused request left %d units used", n)
	}
}

func testTakeZeroUnits(t *testing.T, h Harness) {
	s := h.New(t)
	a := counters.Allowance{Rate: perMinute(1), Burst: 3, Quota: 2, PeriodEnd: h.now(t).Add(time.Hour)}
	expect(t, "2 units", take(t, s, "rate", "quota", 2, a), counters.Admitted)
	expect(t, "1 unit", take(t, s, "rate", "quota", 1, a), counters.QuotaExhausted)
	for i := range 2 {
		d := take(t, s, "rate", "quota", 0, a)
		expect(t, fmt.Sprint("free request ", i+1), d, counters.Admitted)
		if d.QuotaUsed != 2 || d.QuotaRemaining != 0 {
			t.Fatalf("free request: QuotaUsed %d, QuotaRemaining %d; want 2, 0", d.QuotaUsed, d.QuotaRemaining)
		}
	}
	expect(t, "free request beyond the burst", take(t, s, "rate", "quota", 0, a), counters.RateLimited)
	// A free request under a fresh quota key records nothing.
	expect(t, "free request, other org", take(t, s, "rate2", "quota2", 0, a), counters.Admitted)
	if n := quotaUsed(t, s, "quota2"); n != 0 {
		t.Fatalf("free request used %d units", n)
	}
}

func testTakeNoLimits(t *testing.T, h Harness) {
	s := h.New(t)
	for i := range 1000 {
		d := take(t, s, "rate", "quota", int64(i), counters.Allowance{})
		if d != (counters.LimitDecision{Outcome: counters.Admitted}) {
			t.Fatalf("request %d without limits: %+v", i+1, d)
		}
	}
	if n := quotaUsed(t, s, "quota"); n != 0 {
		t.Fatalf("requests without a quota used %d units", n)
	}
	// A rate alone and a quota alone report only their own fields.
	d := take(t, s, "rate", "quota", 5, counters.Allowance{Rate: 1, Burst: 2})
	if d.Outcome != counters.Admitted || d.QuotaUsed != 0 || d.QuotaRemaining != 0 || d.RateLimit != 2 {
		t.Fatalf("rate alone: %+v", d)
	}
	if n := quotaUsed(t, s, "quota"); n != 0 {
		t.Fatalf("a request without a quota used %d units", n)
	}
}

func testTakeHeaders(t *testing.T, h Harness) {
	s := h.New(t)
	const burst, quota = 8, 20
	a := counters.Allowance{Rate: perMinute(1), Burst: burst, Quota: quota, PeriodEnd: h.now(t).Add(time.Hour)}
	var used int64
	for i := range burst + 2 {
		units := int64(i % 3) // 0, 1, 2, ...
		d := take(t, s, "rate", "quota", units, a)
		want := counters.Admitted
		if i >= burst {
			want = counters.RateLimited
		}
		expect(t, fmt.Sprint("request ", i+1), d, want)
		if want == counters.Admitted {
			used += units
		}
		admitted := min(i+1, burst)
		if d.RateLimit != burst || d.RateRemaining != burst-admitted {
			t.Fatalf("request %d: RateLimit %d, RateRemaining %d; want %d, %d", i+1, d.RateLimit, d.RateRemaining, burst, burst-admitted)
		}
		near(t, fmt.Sprint("request ", i+1, ": RateReset"), d.RateReset, time.Duration(admitted)*time.Minute)
		if d.QuotaUsed != used || d.QuotaRemaining != quota-used {
			t.Fatalf("request %d: QuotaUsed %d, QuotaRemaining %d; want %d, %d", i+1, d.QuotaUsed, d.QuotaRemaining, used, quota-used)
		}
	}
	// A count loaded above the quota leaves nothing, not less than nothing.
	if err := s.SetQuotaUsed(ctx, "quota", quota+5, a.PeriodEnd); err != nil {
		t.Fatal(err)
	}
	d := take(t, s, "rate2", "quota", 1, a)
	if d.Outcome != counters.QuotaExhausted || d.QuotaUsed != quota+5 || d.QuotaRemaining != 0 {
		t.Fatalf("over a lowered quota: %+v", d)
	}
}

func testTakeIndependent(t *testing.T, h Harness) {
	s := h.New(t)
	a := counters.Allowance{Rate: perMinute(1), Burst: 1, Quota: 1, PeriodEnd: h.now(t).Add(time.Hour)}
	expect(t, "org a", take(t, s, "rate:a", "quota:a", 1, a), counters.Admitted)
	expect(t, "org b", take(t, s, "rate:b", "quota:b", 1, a), counters.Admitted)
	expect(t, "org a's rate, fresh quota", take(t, s, "rate:a", "quota:c", 1, a), counters.RateLimited)
	expect(t, "fresh rate, org a's quota", take(t, s, "rate:c", "quota:a", 1, a), counters.QuotaExhausted)
	// Rate and quota state share no keys with each other, attempts or the
	// replay cache.
	expect(t, "keys swapped", take(t, s, "quota:a", "rate:a", 1, a), counters.Admitted)
	expect(t, "same key for both", take(t, s, "k", "k", 1, a), counters.Admitted)
	l := counters.Limit{Max: 1, Window: time.Hour}
	if !record(t, s, "k", l).Allowed {
		t.Fatal("attempt under k limited by Take")
	}
	if markSeen(t, s, "k", "k", time.Hour, 10).Outcome != counters.Fresh {
		t.Fatal("k seen because of Take")
	}
	record(t, s, "j", l)
	if record(t, s, "j", l).Allowed {
		t.Fatal("attempt over limit allowed")
	}
	markSeen(t, s, "j", "j", time.Hour, 10)
	expect(t, "keys of attempts and the replay cache", take(t, s, "j", "j", 1, a), counters.Admitted)
}

func testTakeInvalid(t *testing.T, h Harness) {
	s := h.New(t)
	end := h.now(t).Add(time.Hour)
	good := counters.Allowance{Rate: 1, Burst: 1, Quota: 1, PeriodEnd: end}
	for _, c := range []struct {
		name  string
		units int64
		a     counters.Allowance
	}{
		{"negative units", -1, good},
		{"negative rate", 1, counters.Allowance{Rate: -1, Burst: 1}},
		{"rate without burst", 1, counters.Allowance{Rate: 1}},
		{"negative quota", 1, counters.Allowance{Quota: -1, PeriodEnd: end}},
		{"quota without period end", 1, counters.Allowance{Quota: 1}},
	} {
		if d, err := s.Take(ctx, "rate", "quota", c.units, c.a); err == nil {
			t.Fatalf("%s: Take = %+v, want an error", c.name, d)
		}
	}
	d := take(t, s, "rate", "quota", 1, good)
	expect(t, "after invalid requests", d, counters.Admitted)
	if err := s.SetQuotaUsed(ctx, "quota", -1, end); err == nil {
		t.Fatal("SetQuotaUsed of -1 units: no error")
	}
}

// concurrently runs n Takes at once and counts their outcomes.
func concurrently(t *testing.T, s counters.Store, n int, rateKey, quotaKey func(i int) string, a counters.Allowance) map[counters.LimitOutcome]int {
	t.Helper()
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		counts = map[counters.LimitOutcome]int{}
		errs   []error
	)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			d, err := s.Take(ctx, rateKey(i), quotaKey(i), 1, a)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
			}
			counts[d.Outcome]++
		})
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		t.Fatal(err)
	}
	return counts
}

func fixed(key string) func(int) string { return func(int) string { return key } }

func testTakeConcurrentQuota(t *testing.T, h Harness) {
	s := h.New(t)
	a := counters.Allowance{Quota: 50, PeriodEnd: h.now(t).Add(time.Hour)}
	got := concurrently(t, s, 200, fixed(""), fixed("quota"), a)
	if got[counters.Admitted] != 50 || got[counters.QuotaExhausted] != 150 {
		t.Fatalf("200 concurrent units against a quota of 50: %v", got)
	}
	if n := quotaUsed(t, s, "quota"); n != 50 {
		t.Fatalf("QuotaUsed = %d, want 50", n)
	}
}

func testTakeConcurrentRate(t *testing.T, h Harness) {
	s := h.New(t)
	a := counters.Allowance{Rate: 1, Burst: 10}
	got := concurrently(t, s, 100, fixed("rate"), fixed(""), a)
	if got[counters.Admitted] != 10 || got[counters.RateLimited] != 90 {
		t.Fatalf("100 concurrent requests against a burst of 10: %v", got)
	}
}

// testTakeConcurrentBoth checks that requests refused for quota under
// contention consume no rate: exactly the admitted ones do.
func testTakeConcurrentBoth(t *testing.T, h Harness) {
	s := h.New(t)
	a := counters.Allowance{Rate: perMinute(1), Burst: 40, Quota: 25, PeriodEnd: h.now(t).Add(time.Hour)}
	got := concurrently(t, s, 200, fixed("rate"), fixed("quota"), a)
	if got[counters.Admitted] != 25 || got[counters.QuotaExhausted] != 175 {
		t.Fatalf("200 concurrent requests against a burst of 40 and a quota of 25: %v", got)
	}
	d := take(t, s, "rate", "quota", 0, a)
	if d.Outcome != counters.Admitted || d.RateRemaining != 40-25-1 || d.QuotaUsed != 25 {
		t.Fatalf("after: %+v; want admitted, RateRemaining 14, QuotaUsed 25", d)
	}
}

// testTakeCrossedKeys runs Takes whose rate and quota keys cross (a, b and
// b, a), which a store locking keys in call order would deadlock on.
func testTakeCrossedKeys(t *testing.T, h Harness) {
	s := h.New(t)
	a := counters.Allowance{Rate: perMinute(1), Burst: 1000, Quota: 1000, PeriodEnd: h.now(t).Add(time.Hour)}
	keys := []string{"a", "b", "c", "d"}
	got := concurrently(t, s, 400,
		func(i int) string { return keys[i%4] },
		func(i int) string { return keys[(i+1+i/4)%4] }, a)
	if got[counters.Admitted] != 400 {
		t.Fatalf("400 requests over 4 keys with room for all: %v", got)
	}
	var total int64
	for _, k := range keys {
		total += quotaUsed(t, s, k)
	}
	if total != 400 {
		t.Fatalf("quota used over the keys: %d, want 400", total)
	}
}

func testSetQuotaUsed(t *testing.T, h Harness) {
	s := h.New(t)
	end := h.now(t).Add(time.Hour)
	set := func(used int64) {
		t.Helper()
		if err := s.SetQuotaUsed(ctx, "quota", used, end); err != nil {
			t.Fatal(err)
		}
	}
	if n := quotaUsed(t, s, "quota"); n != 0 {
		t.Fatalf("QuotaUsed of an unknown key = %d", n)
	}
	for _, c := range []struct{ set, want int64 }{{5, 5}, {3, 5}, {0, 5}, {8, 8}} {
		set(c.set)
		if n := quotaUsed(t, s, "quota"); n != c.want {
			t.Fatalf("after SetQuotaUsed(%d): QuotaUsed = %d, want %d", c.set, n, c.want)
		}
	}
	a := counters.Allowance{Quota: 10, PeriodEnd: end}
	expect(t, "3 units with 2 left", take(t, s, "", "quota", 3, a), counters.QuotaExhausted)
	if d := take(t, s, "", "quota", 2, a); d.Outcome != counters.Admitted || d.QuotaUsed != 10 {
		t.Fatalf("2 units with 2 left: %+v", d)
	}
	set(9) // below what Take counted since
	if n := quotaUsed(t, s, "quota"); n != 10 {
		t.Fatalf("SetQuotaUsed lowered the count to %d", n)
	}
}

func testSetQuotaUsedExpires(t *testing.T, h Harness) {
	s := h.New(t)
	now := h.now(t)
	if err := s.SetQuotaUsed(ctx, "quota", 7, now.Add(10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.SetQuotaUsed(ctx, "past", 7, now.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	if n := quotaUsed(t, s, "past"); n != 0 {
		t.Fatalf("a count of a period that is over was kept: %d", n)
	}
	h.Advance(t, 10*time.Minute+time.Second)
	if n := quotaUsed(t, s, "quota"); n != 0 {
		t.Fatalf("QuotaUsed after expiry = %d, want 0", n)
	}
}
