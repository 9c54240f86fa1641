package logging

import (
	"sync"
	"time"
)

// DefaultThrottleInterval is the interval of a Throttle whose Interval is 0.
const DefaultThrottleInterval = time.Second

// Throttle paces a kind of log line that a client or an outage could
// repeat thousands of times a second (a refused connection, an accept error
// while the process is out of file descriptors): it lets one line through
// per Interval and counts the lines it holds back, so that the next line
// that goes through can say how many were left out.
//
// Time is a parameter of Allow, so tests step it. The zero value lets the
// first line through, then one per DefaultThrottleInterval. A Throttle is
// safe for concurrent use.
type Throttle struct {
	// Interval is the least time between two lines let through; 0 means
	// DefaultThrottleInterval. Set it before the first Allow.
	Interval time.Duration

	mu   sync.Mutex
	next time.Time // before it, lines are held back
	held uint64
}

// Allow reports whether a line may be written at now. When it may,
// suppressed is the number of lines held back since the last one let
// through, which the line should report.
func (t *Throttle) Allow(now time.Time) (ok bool, suppressed uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if now.Before(t.next) {
		t.held++
		return false, 0
	}
	every := t.Interval
	if every <= 0 {
		every = DefaultThrottleInterval
	}
	t.next = now.Add(every)
	suppressed, t.held = t.held, 0
	return true, suppressed
}
