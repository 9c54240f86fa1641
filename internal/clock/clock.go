// Package clock abstracts the current time so that everything that expires,
// is limited or is signed with a timestamp can be tested by stepping a fake
// clock instead of sleeping.
package clock

import (
	"sync"
	"time"
)

// Clock tells the current time. Implementations are safe for concurrent use.
type Clock interface {
	Now() time.Time
}

// System is the wall clock. Its zero value is ready to use.
type System struct{}

// Now returns time.Now().
func (System) Now() time.Time { return time.Now() }

// Fake is a manually stepped clock for tests. The zero value starts at the
// zero time; use NewFake to start somewhere useful. It is safe for concurrent
// use.
type Fake struct {
	mu     sync.Mutex
	now    time.Time
	timers map[*fakeTimer]struct{} // scheduled by AfterFunc, not yet due
}

// NewFake returns a Fake clock set to t.
func NewFake(t time.Time) *Fake { return &Fake{now: t} }

// Now returns the fake clock's current time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// Advance moves the clock forward by d (backwards if d is negative), and
// starts the calls of AfterFunc that are then due.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.fire()
	f.mu.Unlock()
}

// Set moves the clock to t.
func (f *Fake) Set(t time.Time) {
	f.mu.Lock()
	f.now = t
	f.fire()
	f.mu.Unlock()
}

var (
	_ Clock = System{}
	_ Clock = (*Fake)(nil)
)
