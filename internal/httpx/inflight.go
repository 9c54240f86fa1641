package httpx

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
)

// InFlight counts the requests whose handlers are running, so that a
// shutdown can wait until every one of them has returned.
// http.Server.Shutdown does not: it returns at its context's deadline with
// handlers still running, and never waits for hijacked connections
// (WebSocket sessions), whose handlers run until the session ends.
//
// The zero value is ready to use. InFlight is safe for concurrent use;
// unlike a sync.WaitGroup, requests may start while Wait waits. Track costs
// the request path two atomic additions and one load.
type InFlight struct {
	n       atomic.Int64
	waiting atomic.Bool
	once    sync.Once
	idle    chan struct{} // one slot: a wake-up for Wait when n reaches 0
}

// Track returns next counted in f: from the moment it is called to the
// moment it returns, or panics.
func (f *InFlight) Track(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.n.Add(1)
		defer f.done()
		next.ServeHTTP(w, r)
	})
}

func (f *InFlight) done() {
	if f.n.Add(-1) == 0 && f.waiting.Load() {
		select {
		case f.idle <- struct{}{}:
		default: // a wake-up is pending already
		}
	}
}

// Len returns the number of handlers running.
func (f *InFlight) Len() int { return int(f.n.Load()) }

// Wait waits until no handler is running, or ctx ends; then it returns
// ctx's error. Handlers that start while it waits are waited for too.
func (f *InFlight) Wait(ctx context.Context) error {
	f.lazyInit()
	f.waiting.Store(true)
	defer f.waiting.Store(false)
	for f.n.Load() != 0 {
		select {
		case <-f.idle:
		case <-ctx.Done():
			if f.n.Load() == 0 {
				return nil
			}
			return ctx.Err()
		}
	}
	return nil
}

// lazyInit makes the wake-up channel, so that the zero value works. Wait
// calls it before it sets waiting, and done reads the channel only once
// waiting is set.
func (f *InFlight) lazyInit() {
	f.once.Do(func() { f.idle = make(chan struct{}, 1) })
}
