package clock

import "time"

// Timer is a call scheduled by AfterFunc.
type Timer interface {
	// Stop cancels the call; it reports false if the call has already
	// been made or stopped.
	Stop() bool
}

// AfterFuncer is a Clock that schedules calls on its own time; System and
// Fake are.
type AfterFuncer interface {
	AfterFunc(d time.Duration, f func()) Timer
}

// AfterFunc calls f on its own goroutine once d has passed on c: on the
// wall clock for System and any clock that is not an AfterFuncer, when it
// is advanced past it for a Fake.
func AfterFunc(c Clock, d time.Duration, f func()) Timer {
	if a, ok := c.(AfterFuncer); ok {
		return a.AfterFunc(d, f)
	}
	return time.AfterFunc(d, f)
}

// AfterFunc implements AfterFuncer with time.AfterFunc.
func (System) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// fakeTimer is a call scheduled on a Fake.
type fakeTimer struct {
	f    *Fake
	at   time.Time
	call func()
}

// Stop implements Timer.
func (t *fakeTimer) Stop() bool {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	if _, ok := t.f.timers[t]; !ok {
		return false
	}
	delete(t.f.timers, t)
	return true
}

// AfterFunc implements AfterFuncer: f runs, on its own goroutine, when the
// clock is advanced or set to d from now or later; at once if d <= 0.
func (f *Fake) AfterFunc(d time.Duration, call func()) Timer {
	f.mu.Lock()
	t := &fakeTimer{f: f, at: f.now.Add(d), call: call}
	if d <= 0 {
		f.mu.Unlock()
		go call()
		return t
	}
	if f.timers == nil {
		f.timers = make(map[*fakeTimer]struct{})
	}
	f.timers[t] = struct{}{}
	f.mu.Unlock()
	return t
}

// fire starts the calls that are due; f.mu is held.
func (f *Fake) fire() {
	for t := range f.timers {
		if !t.at.After(f.now) {
			delete(f.timers, t)
			go t.call()
		}
	}
}

// Timers returns the number of calls scheduled and not yet due, for tests
// that wait for something to be scheduled before they advance the clock.
func (f *Fake) Timers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.timers)
}

var (
	_ AfterFuncer = System{}
	_ AfterFuncer = (*Fake)(nil)
)
