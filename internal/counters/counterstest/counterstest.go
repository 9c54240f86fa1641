// Package counterstest is the conformance suite of counters.Store: every
// implementation runs RunTests unchanged.
package counterstest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/counters"
)

// Harness gives the suite a fresh store and a way to read and move its clock.
// Advance moves the clock the store reads (a fake clock for memory; for a
// store using a server clock it may sleep or skew it). Now reads it (nil:
// time.Now), for the quota periods the suite names; the suite allows a
// second between Now and the store's reading.
//
// NewPeer, if not nil, returns another store sharing s's backend state, as
// a second node of a cluster would (with the same clock: Advance moves
// both); the tests of state seen across nodes are skipped without it.
type Harness struct {
	New     func(t *testing.T) counters.Store
	Advance func(t *testing.T, d time.Duration)
	Now     func(t *testing.T) time.Time
	NewPeer func(t *testing.T, s counters.Store) counters.Store
}

func (h Harness) now(t *testing.T) time.Time {
	if h.Now == nil {
		return time.Now()
	}
	return h.Now(t)
}

// RunTests runs the conformance suite.
func RunTests(t *testing.T, h Harness) {
	t.Run("AttemptsBurstThenLock", func(t *testing.T) { testBurst(t, h) })
	t.Run("AttemptsRecoverOverWindow", func(t *testing.T) { testRecover(t, h) })
	t.Run("CheckDoesNotRecord", func(t *testing.T) { testCheck(t, h) })
	t.Run("ResetAttempts", func(t *testing.T) { testReset(t, h) })
	t.Run("KeysAreIndependent", func(t *testing.T) { testIndependent(t, h) })
	t.Run("ConcurrentAttemptsExact", func(t *testing.T) { testConcurrent(t, h) })
	t.Run("ZeroLimitAllowsNothing", func(t *testing.T) { testZero(t, h) })
	runSeenTests(t, h)
	runBackoffTests(t, h)
	runTakeTests(t, h)
	runBanTests(t, h)
	runSlotTests(t, h)
}

var ctx = context.Background()

func record(t *testing.T, s counters.Store, key string, l counters.Limit) counters.Decision {
	t.Helper()
	d, err := s.RecordAttempt(ctx, key, l)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func testBurst(t *testing.T, h Harness) {
	s := h.New(t)
	l := counters.Limit{Max: 5, Window: 10 * time.Minute}
	for i := range 5 {
		if d := record(t, s, "k", l); !d.Allowed {
			t.Fatalf("attempt %d refused", i+1)
		}
	}
	d := record(t, s, "k", l)
	if d.Allowed {
		t.Fatal("attempt 6 allowed")
	}
	// One attempt frees up every Window/Max = 2 minutes.
	if d.RetryAfter <= 0 || d.RetryAfter > 2*time.Minute {
		t.Fatalf("RetryAfter = %v, want in (0, 2m]", d.RetryAfter)
	}
}

func testRecover(t *testing.T, h Harness) {
	s := h.New(t)
	l := counters.Limit{Max: 3, Window: 3 * time.Minute}
	for range 3 {
		record(t, s, "k", l)
	}
	if record(t, s, "k", l).Allowed {
		t.Fatal("over limit allowed")
	}
	h.Advance(t, time.Minute+time.Second)
	if !record(t, s, "k", l).Allowed {
		t.Fatal("not allowed after one interval")
	}
	if record(t, s, "k", l).Allowed {
		t.Fatal("two allowed after one interval")
	}
	h.Advance(t, 3*time.Minute+time.Second)
	for i := range 3 {
		if !record(t, s, "k", l).Allowed {
			t.Fatalf("after a full window, attempt %d refused", i+1)
		}
	}
}

func testCheck(t *testing.T, h Harness) {
	s := h.New(t)
	l := counters.Limit{Max: 2, Window: time.Minute}
	for range 10 {
		d, err := s.CheckAttempt(ctx, "k", l)
		if err != nil || !d.Allowed {
			t.Fatalf("check = %+v, %v", d, err)
		}
	}
	record(t, s, "k", l)
	record(t, s, "k", l)
	d, err := s.CheckAttempt(ctx, "k", l)
	if err != nil || d.Allowed || d.RetryAfter <= 0 {
		t.Fatalf("check after limit = %+v, %v", d, err)
	}
}

func testReset(t *testing.T, h Harness) {
	s := h.New(t)
	l := counters.Limit{Max: 1, Window: time.Hour}
	record(t, s, "k", l)
	if record(t, s, "k", l).Allowed {
		t.Fatal("over limit allowed")
	}
	if err := s.ResetAttempts(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if !record(t, s, "k", l).Allowed {
		t.Fatal("not allowed after reset")
	}
	if err := s.ResetAttempts(ctx, "never-seen"); err != nil {
		t.Fatalf("reset of unknown key: %v", err)
	}
}

func testIndependent(t *testing.T, h Harness) {
	s := h.New(t)
	l := counters.Limit{Max: 1, Window: time.Hour}
	record(t, s, "a", l)
	if !record(t, s, "b", l).Allowed {
		t.Fatal("key b limited by key a")
	}
}

func testConcurrent(t *testing.T, h Harness) {
	s := h.New(t)
	l := counters.Limit{Max: 25, Window: time.Hour}
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for g := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				d, err := s.RecordAttempt(ctx, "shared", l)
				if err != nil {
					panic(fmt.Sprintf("goroutine %d: %v", g, err))
				}
				if d.Allowed {
					allowed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if got := allowed.Load(); got != 25 {
		t.Fatalf("100 concurrent attempts against a limit of 25 allowed %d", got)
	}
}

func testZero(t *testing.T, h Harness) {
	s := h.New(t)
	if d := record(t, s, "k", counters.Limit{}); d.Allowed {
		t.Fatal("zero limit allowed an attempt")
	}
}
