package memory

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/tollgate/tollgate/internal/counters"
)

// MaxQueued is how many messages a subscription of a Bus holds for a
// subscriber that has not kept up; beyond it the queued messages are
// replaced by counters.Resync, so that a slow subscriber never blocks
// Publish nor makes memory grow without bound.
const MaxQueued = 4096

// ErrBusClosed is returned by Publish on a closed Bus.
var ErrBusClosed = errors.New("memory: bus closed")

// Bus implements counters.Bus within one process: the invalidation bus of
// the all-in-one deployment, and the local fan-out of the Redis one.
// Publish queues the message for every subscription and returns without
// waiting for any subscriber; every subscription has its own goroutine that
// calls its fn in order, so subscribers receive the messages in the same
// order. The zero Bus is ready to use; it is safe for concurrent use.
type Bus struct {
	mu     sync.Mutex
	subs   map[*subscription]struct{}
	closed bool
}

// subscription is one Subscribe: its queue and its goroutine.
type subscription struct {
	bus     *Bus
	fn      func(string)
	stopped atomic.Bool
	done    chan struct{} // closed by cancel
	once    sync.Once
	wake    chan struct{} // capacity 1: the queue is not empty

	mu    sync.Mutex
	queue []string
	spare []string // the goroutine's emptied batch, reused as the next queue
}

// NewBus returns an empty Bus.
func NewBus() *Bus { return &Bus{} }

// Publish implements counters.Bus: it queues msg for every current
// subscription. It returns ErrBusClosed once the Bus is closed.
func (b *Bus) Publish(_ context.Context, msg string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrBusClosed
	}
	for s := range b.subs {
		s.push(msg)
	}
	return nil
}

// Subscribe implements counters.Bus. On a closed Bus, fn is never called.
func (b *Bus) Subscribe(fn func(msg string)) (cancel func()) {
	s := &subscription{
		bus:  b,
		fn:   fn,
		done: make(chan struct{}),
		wake: make(chan struct{}, 1),
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return func() {}
	}
	if b.subs == nil {
		b.subs = make(map[*subscription]struct{})
	}
	b.subs[s] = struct{}{}
	go s.run()
	return s.cancel
}

// Close cancels every subscription and makes Publish fail. It is safe to
// call more than once.
func (b *Bus) Close() {
	b.mu.Lock()
	subs := b.subs
	b.subs, b.closed = nil, true
	b.mu.Unlock()
	for s := range subs {
		s.stop()
	}
}

// Subscribers returns the number of subscriptions, for tests and metrics.
func (b *Bus) Subscribers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}

// push queues msg; a full queue is replaced by Resync.
func (s *subscription) push(msg string) {
	s.mu.Lock()
	if len(s.queue) >= MaxQueued {
		clear(s.queue)
		s.queue = append(s.queue[:0], counters.Resync)
	}
	s.queue = append(s.queue, msg)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *subscription) cancel() {
	s.bus.mu.Lock()
	delete(s.bus.subs, s)
	s.bus.mu.Unlock()
	s.stop()
}

func (s *subscription) stop() {
	s.once.Do(func() {
		s.stopped.Store(true)
		close(s.done)
	})
}

func (s *subscription) run() {
	for {
		select {
		case <-s.wake:
		case <-s.done:
			return
		}
		s.mu.Lock()
		batch := s.queue
		s.queue, s.spare = s.spare[:0], nil
		s.mu.Unlock()
		for i, msg := range batch {
			if s.stopped.Load() {
				return
			}
			batch[i] = "" // release the message
			s.fn(msg)
		}
		s.mu.Lock()
		s.spare = batch[:0]
		s.mu.Unlock()
	}
}

var _ counters.Bus = (*Bus)(nil)
