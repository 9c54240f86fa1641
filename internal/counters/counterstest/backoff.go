package counterstest

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/counters"
)

func runBackoffTests(t *testing.T, h Harness) {
	t.Run("BackoffFreeThenDoubling", func(t *testing.T) { testBackoffDoubling(t, h) })
	t.Run("BackoffForgottenAfterQuietWindow", func(t *testing.T) { testBackoffForgotten(t, h) })
	t.Run("BackoffForgive", func(t *testing.T) { testBackoffForgive(t, h) })
	t.Run("BackoffConcurrentExact", func(t *testing.T) { testBackoffConcurrent(t, h) })
	t.Run("BackoffKeysAreIndependent", func(t *testing.T) { testBackoffIndependent(t, h) })
	t.Run("BackoffRejectsInvalidPolicy", func(t *testing.T) { testBackoffInvalid(t, h) })
}

func fail(t *testing.T, s counters.Store, key string, b counters.Backoff) counters.Decision {
	t.Helper()
	d, err := s.Fail(ctx, key, b)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// wantRecorded checks that a failure was recorded and started delay
// (0: none).
func wantRecorded(t *testing.T, what string, d counters.Decision, delay time.Duration) {
	t.Helper()
	if !d.Allowed || d.RetryAfter != delay {
		t.Fatalf("%s: %+v, want recorded with a delay of %v", what, d, delay)
	}
}

// wantDelayed checks that a failure was refused with at most delay left
// (more than half of it: a store on a server clock may have moved on a
// little since).
func wantDelayed(t *testing.T, what string, d counters.Decision, delay time.Duration) {
	t.Helper()
	if d.Allowed || d.RetryAfter <= delay/2 || d.RetryAfter > delay {
		t.Fatalf("%s: %+v, want refused with some %v left", what, d, delay)
	}
}

func testBackoffDoubling(t *testing.T, h Harness) {
	s := h.New(t)
	b := counters.Backoff{Free: 3, Base: 10 * time.Second, Max: 80 * time.Second, Window: time.Hour}
	for i := range 3 {
		wantRecorded(t, fmt.Sprintf("free failure %d", i+1), fail(t, s, "k", b), 0)
	}
	for i, delay := range []time.Duration{10, 20, 40, 80, 80, 80} {
		delay *= time.Second
		wantRecorded(t, fmt.Sprintf("failure %d", i+4), fail(t, s, "k", b), delay)
		wantDelayed(t, fmt.Sprintf("failure during delay %d", i+1), fail(t, s, "k", b), delay)
		h.Advance(t, delay/2)
		wantDelayed(t, fmt.Sprintf("failure half-way through delay %d", i+1), fail(t, s, "k", b), delay/2+delay/4)
		h.Advance(t, delay/2+time.Second)
	}
}

func testBackoffForgotten(t *testing.T, h Harness) {
	s := h.New(t)
	b := counters.Backoff{Free: 1, Base: time.Minute, Max: time.Hour, Window: 10 * time.Minute}
	wantRecorded(t, "failure 1", fail(t, s, "k", b), 0)
	wantRecorded(t, "failure 2", fail(t, s, "k", b), time.Minute)
	// Within the window after the delay ended, the failures are remembered.
	h.Advance(t, time.Minute+9*time.Minute)
	wantRecorded(t, "failure 3, 9m after the delay", fail(t, s, "k", b), 2*time.Minute)
	// The window counts from the end of the delay, not from the failure.
	h.Advance(t, 2*time.Minute+9*time.Minute)
	wantRecorded(t, "failure 4, 9m after the delay", fail(t, s, "k", b), 4*time.Minute)
	h.Advance(t, 4*time.Minute+10*time.Minute+time.Second)
	wantRecorded(t, "first failure after a quiet window", fail(t, s, "k", b), 0)
	wantRecorded(t, "second failure after a quiet window", fail(t, s, "k", b), time.Minute)
	// A key that never reached a delay is forgotten Window after its
	// latest failure.
	wantRecorded(t, "other key", fail(t, s, "free", b), 0)
	h.Advance(t, 10*time.Minute+time.Second)
	wantRecorded(t, "other key after a quiet window", fail(t, s, "free", b), 0)
}

func testBackoffForgive(t *testing.T, h Harness) {
	s := h.New(t)
	b := counters.Backoff{Free: 2, Base: time.Minute, Max: time.Hour, Window: time.Hour}
	if err := s.Forgive(ctx, "never-failed"); err != nil {
		t.Fatalf("Forgive of an unknown key: %v", err)
	}
	wantRecorded(t, "failure 1", fail(t, s, "k", b), 0)
	wantRecorded(t, "failure 2", fail(t, s, "k", b), 0)
	wantRecorded(t, "failure 3", fail(t, s, "k", b), time.Minute)
	// The third attempt turned out right: its failure is taken back and
	// its delay lifted.
	if err := s.Forgive(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	wantRecorded(t, "failure after Forgive", fail(t, s, "k", b), time.Minute)
	if err := s.Forgive(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if err := s.Forgive(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if err := s.Forgive(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	// Forgiving more than was failed leaves nothing behind.
	if err := s.Forgive(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	wantRecorded(t, "failure 1 after forgiving all", fail(t, s, "k", b), 0)
	wantRecorded(t, "failure 2 after forgiving all", fail(t, s, "k", b), 0)
	wantRecorded(t, "failure 3 after forgiving all", fail(t, s, "k", b), time.Minute)
}

// Of failures racing on one key, exactly Free+1 are recorded: the free ones
// and the one that starts the delay.
func testBackoffConcurrent(t *testing.T, h Harness) {
	s := h.New(t)
	b := counters.Backoff{Free: 5, Base: time.Hour, Max: time.Hour, Window: time.Hour}
	var recorded, delayed atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	for range 50 {
		wg.Go(func() {
			d, err := s.Fail(ctx, "shared", b)
			switch {
			case err != nil:
				failed.Store(err)
			case d.Allowed:
				recorded.Add(1)
				if d.RetryAfter > 0 {
					delayed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		t.Fatal(err)
	}
	if recorded.Load() != 6 || delayed.Load() != 1 {
		t.Fatalf("50 concurrent failures: %d recorded, %d started a delay; want 6 and 1", recorded.Load(), delayed.Load())
	}
}

func testBackoffIndependent(t *testing.T, h Harness) {
	s := h.New(t)
	b := counters.Backoff{Free: 1, Base: time.Hour, Max: time.Hour, Window: time.Hour}
	fail(t, s, "a", b)
	wantRecorded(t, "key a delayed", fail(t, s, "a", b), time.Hour)
	wantRecorded(t, "key b after key a", fail(t, s, "b", b), 0)
	// Failures and attempts do not share keys.
	l := counters.Limit{Max: 1, Window: time.Hour}
	if !record(t, s, "a", l).Allowed {
		t.Fatal("attempt under a limited by the failures under a")
	}
	record(t, s, "c", l)
	wantRecorded(t, "failure under c after an attempt under c", fail(t, s, "c", b), 0)
	if err := s.ResetAttempts(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	wantDelayed(t, "key a after ResetAttempts(a)", fail(t, s, "a", b), time.Hour)
}

func testBackoffInvalid(t *testing.T, h Harness) {
	s := h.New(t)
	for _, b := range []counters.Backoff{
		{},
		{Free: 0, Base: time.Second, Max: time.Second, Window: time.Second},
		{Free: 1, Base: 0, Max: time.Second, Window: time.Second},
		{Free: 1, Base: time.Second, Max: time.Millisecond, Window: time.Second},
		{Free: 1, Base: time.Second, Max: time.Second, Window: 0},
	} {
		if _, err := s.Fail(ctx, "k", b); !errors.Is(err, counters.ErrInvalidBackoff) {
			t.Errorf("Fail with %+v: err = %v, want ErrInvalidBackoff", b, err)
		}
	}
}
