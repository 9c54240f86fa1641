package clock

import (
	"testing"
	"time"
)

// TestFakeAfterFunc: a call runs once the fake clock reaches it, never
// before, and not at all once stopped.
func TestFakeAfterFunc(t *testing.T) {
	f := NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	fired := make(chan string, 3)
	AfterFunc(f, time.Minute, func() { fired <- "minute" })
	stopped := AfterFunc(f, 30*time.Second, func() { fired <- "stopped" })
	if f.Timers() != 2 {
		t.Fatalf("Timers() = %d, want 2", f.Timers())
	}
	if !stopped.Stop() || stopped.Stop() {
		t.Fatal("Stop of a pending call: want true once, then false")
	}
	f.Advance(59 * time.Second)
	select {
	case c := <-fired:
		t.Fatalf("%s fired before its time", c)
	default:
	}
	f.Advance(time.Second)
	if c := <-fired; c != "minute" {
		t.Fatalf("fired %s", c)
	}
	if f.Timers() != 0 {
		t.Fatalf("Timers() = %d after firing", f.Timers())
	}
	AfterFunc(f, 0, func() { fired <- "now" })
	if c := <-fired; c != "now" {
		t.Fatalf("fired %s", c)
	}
}
