package failover

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/clock"
	"github.com/tollgate/tollgate/internal/counters"
	"github.com/tollgate/tollgate/internal/counters/counterstest"
	"github.com/tollgate/tollgate/internal/counters/memory"
)

// flaky is a shared store whose connection can be cut.
type flaky struct {
	*memory.Store
	cut   atomic.Bool
	calls atomic.Int64
}

var errConn = errors.New("dial tcp 127.0.0.1:6379: connection refused")

func (f *flaky) Take(ctx context.Context, rk, qk string, units int64, a counters.Allowance) (counters.LimitDecision, error) {
	f.calls.Add(1)
	if f.cut.Load() {
		return counters.LimitDecision{}, errConn
	}
	return f.Store.Take(ctx, rk, qk, units, a)
}

func (f *flaky) MarkSeen(ctx context.Context, owner, key string, ttl time.Duration, maxPerOwner int) (counters.Seen, error) {
	f.calls.Add(1)
	if f.cut.Load() {
		return counters.Seen{}, errConn
	}
	return f.Store.MarkSeen(ctx, owner, key, ttl, maxPerOwner)
}

func (f *flaky) Ping(context.Context) error {
	if f.cut.Load() {
		return errConn
	}
	return nil
}

// While the shared store is healthy the failover store is the shared store:
// it passes the conformance suite.
func TestConformance(t *testing.T) {
	var clk *clock.Fake
	counterstest.RunTests(t, counterstest.Harness{
		New: func(t *testing.T) counters.Store {
			clk = clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
			s, err := New(&flaky{Store: memory.New(clk)}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		Advance: func(_ *testing.T, d time.Duration) { clk.Advance(d) },
		Now:     func(*testing.T) time.Time { return clk.Now() },
	})
}

var allowance = counters.Allowance{Rate: 1000, Burst: 1000, Quota: 10, PeriodEnd: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)}

func TestFailClosed(t *testing.T) {
	ctx := t.Context()
	clk := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	shared := &flaky{Store: memory.New(clk)}
	s, err := New(shared, Options{ProbeInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	go s.Run(ctx)
	if d, err := s.Take(ctx, "r", "q", 1, allowance); err != nil || d.Outcome != counters.Admitted {
		t.Fatalf("healthy Take = %+v, %v", d, err)
	}
	shared.cut.Store(true)
	if _, err := s.Take(ctx, "r", "q", 1, allowance); !errors.Is(err, errConn) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("first failing Take: err = %v, want the connection error", err)
	}
	if !s.Down() || s.Outages() != 1 {
		t.Fatalf("Down = %v, Outages = %d after a failure", s.Down(), s.Outages())
	}
	before := shared.calls.Load()
	for range 5 {
		if _, err := s.Take(ctx, "r", "q", 1, allowance); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Take while down: err = %v, want ErrUnavailable", err)
		}
		if _, err := s.MarkSeen(ctx, "o", "n", time.Minute, 10); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("MarkSeen while down: err = %v, want ErrUnavailable", err)
		}
	}
	if shared.calls.Load() != before {
		t.Error("operations waited on the shared store while it was down")
	}
	if s.Fallbacks() != 0 {
		t.Errorf("Fallbacks = %d in fail-closed mode", s.Fallbacks())
	}
	shared.cut.Store(false)
	deadline := time.Now().Add(5 * time.Second)
	for s.Down() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if s.Down() {
		t.Fatal("the probe did not bring the store back")
	}
	if d, err := s.Take(ctx, "r", "q", 1, allowance); err != nil || d.QuotaUsed != 2 {
		t.Fatalf("Take after recovery = %+v, %v; want the shared count (2)", d, err)
	}
}

func TestFailOpen(t *testing.T) {
	ctx := t.Context()
	clk := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	shared := &flaky{Store: memory.New(clk)}
	local := memory.New(clk)
	s, err := New(shared, Options{Open: true, Local: local})
	if err != nil {
		t.Fatal(err)
	}
	shared.cut.Store(true)
	admitted := 0
	for range 15 {
		d, err := s.Take(ctx, "r", "q", 1, allowance)
		if err != nil {
			t.Fatalf("fail-open Take: %v", err)
		}
		if d.Outcome == counters.Admitted {
			admitted++
		}
	}
	if admitted != 10 {
		t.Errorf("admitted %d while down, want the local quota of 10", admitted)
	}
	if s.Fallbacks() != 15 || !s.Down() {
		t.Errorf("Fallbacks = %d, Down = %v", s.Fallbacks(), s.Down())
	}
	if _, err := s.Take(ctx, "r", "q", -1, allowance); err == nil {
		t.Error("negative units accepted")
	}
	if _, err := New(shared, Options{Open: true}); err == nil {
		t.Error("fail-open without a local store accepted")
	}
}

// Invalid input is the caller's error, not an outage.
func TestInvalidInputIsNoOutage(t *testing.T) {
	shared := &flaky{Store: memory.New(clock.System{})}
	s, _ := New(shared, Options{})
	if _, err := s.Take(t.Context(), "r", "q", 1, counters.Allowance{Rate: -1}); !errors.Is(err, counters.ErrInvalidAllowance) {
		t.Fatalf("err = %v", err)
	}
	if _, err := s.MarkSeen(t.Context(), "o", "k", 0, 10); err == nil {
		t.Fatal("zero ttl accepted")
	}
	if _, err := s.Fail(t.Context(), "k", counters.Backoff{}); !errors.Is(err, counters.ErrInvalidBackoff) {
		t.Fatalf("zero backoff: err = %v", err)
	}
	if _, err := s.MarkSeen(t.Context(), "o", "k", time.Minute, 0); err == nil {
		t.Fatal("zero maxPerOwner accepted")
	}
	if s.Down() {
		t.Error("invalid input marked the store down")
	}
}
