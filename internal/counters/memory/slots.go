package memory

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/tollgate/tollgate/internal/counters"
)

// slots are the semaphores of AcquireSlot: per key, each holder's lease end
// as a duration since the Store's epoch. Keys are few (one per credential
// with an open session), so one map under one lock serves; a key without
// holders is deleted.
type slots struct {
	mu sync.Mutex
	m  map[string]map[string]time.Duration
}

// Watchers hold the callbacks of counters.Store.WatchBans; the Redis store
// uses them for its mirror of the bans too. The zero value is ready to use;
// it is safe for concurrent use.
type Watchers struct {
	mu   sync.Mutex
	next int
	fns  map[int]func(string)
}

// Add registers fn and returns what unregisters it; that may be called more
// than once.
func (w *Watchers) Add(fn func(key string)) (cancel func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fns == nil {
		w.fns = make(map[int]func(string))
	}
	id := w.next
	w.next++
	w.fns[id] = fn
	return func() {
		w.mu.Lock()
		delete(w.fns, id)
		w.mu.Unlock()
	}
}

// Notify calls every registered fn with key, on the caller's goroutine and
// without holding a lock, so that fn may call Add or cancel.
func (w *Watchers) Notify(key string) {
	w.mu.Lock()
	fns := make([]func(string), 0, len(w.fns))
	for _, fn := range w.fns {
		fns = append(fns, fn)
	}
	w.mu.Unlock()
	for _, fn := range fns {
		fn(key)
	}
}

// WatchBans implements counters.Store.
func (s *Store) WatchBans(fn func(key string)) (cancel func()) { return s.banWatch.Add(fn) }

// AcquireSlot implements counters.Store.
func (s *Store) AcquireSlot(_ context.Context, key, holder string, max int, lease time.Duration) (bool, error) {
	if max <= 0 || lease <= 0 {
		return false, fmt.Errorf("memory: AcquireSlot max %d or lease %v is not positive", max, lease)
	}
	now := s.clock.Now().Sub(s.epoch)
	sl := &s.slots
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if sl.m == nil {
		sl.m = make(map[string]map[string]time.Duration)
	}
	held := sl.m[key]
	for h, end := range held {
		if end <= now {
			delete(held, h)
		}
	}
	if _, ok := held[holder]; !ok && len(held) >= max {
		return false, nil
	}
	if held == nil {
		held = make(map[string]time.Duration)
		sl.m[key] = held
	}
	held[holder] = now + lease
	return true, nil
}

// RenewSlots implements counters.Store.
func (s *Store) RenewSlots(_ context.Context, slots []counters.Slot, lease time.Duration) error {
	if lease <= 0 {
		return fmt.Errorf("memory: RenewSlots lease %v is not positive", lease)
	}
	now := s.clock.Now().Sub(s.epoch)
	sl := &s.slots
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if sl.m == nil {
		sl.m = make(map[string]map[string]time.Duration)
	}
	for _, x := range slots {
		held := sl.m[x.Key]
		if held == nil {
			held = make(map[string]time.Duration)
			sl.m[x.Key] = held
		}
		held[x.Holder] = now + lease
	}
	return nil
}

// ReleaseSlot implements counters.Store.
func (s *Store) ReleaseSlot(_ context.Context, key, holder string) error {
	sl := &s.slots
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if held := sl.m[key]; held != nil {
		delete(held, holder)
		if len(held) == 0 {
			delete(sl.m, key)
		}
	}
	return nil
}
