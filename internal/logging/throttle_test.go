package logging

import (
	"sync"
	"testing"
	"time"
)

func TestThrottle(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	th := &Throttle{Interval: 10 * time.Second}
	steps := []struct {
		at         time.Duration
		ok         bool
		suppressed uint64
	}{
		{0, true, 0},
		{time.Second, false, 0},
		{9 * time.Second, false, 0},
		{10 * time.Second, true, 2}, // the two held back are reported
		{10 * time.Second, false, 0},
		{25 * time.Second, true, 1},
		{40 * time.Second, true, 0},
	}
	for _, s := range steps {
		ok, n := th.Allow(t0.Add(s.at))
		if ok != s.ok || n != s.suppressed {
			t.Errorf("at %v: Allow = %v, %d; want %v, %d", s.at, ok, n, s.ok, s.suppressed)
		}
	}

	var zero Throttle
	if ok, _ := zero.Allow(t0); !ok {
		t.Error("the zero Throttle held back the first line")
	}
	if ok, _ := zero.Allow(t0.Add(DefaultThrottleInterval - 1)); ok {
		t.Error("the zero Throttle let a second line through within its default interval")
	}
}

// Concurrent callers: exactly one line per interval goes through, and every
// line held back is reported by the next one.
func TestThrottleConcurrent(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	th := &Throttle{Interval: time.Minute}
	var wg sync.WaitGroup
	var mu sync.Mutex
	passed := 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				if ok, _ := th.Allow(t0); ok {
					mu.Lock()
					passed++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if passed != 1 {
		t.Fatalf("%d lines went through in one interval", passed)
	}
	if ok, n := th.Allow(t0.Add(time.Minute)); !ok || n != 799 {
		t.Fatalf("next interval: %v, %d suppressed; want true, 799", ok, n)
	}
}
