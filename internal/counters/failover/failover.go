// Package failover keeps a node deciding while its shared counter store
// (Redis) is unreachable, by the operator's policy:
//
//   - fail-closed (the default): every operation fails at once with
//     ErrUnavailable, which the gateway answers with 503
//     SERVICE_UNAVAILABLE; no request passes unmetered;
//   - fail-open: operations go to a local store (package memory) instead, so
//     each node enforces the limits on its own share of the traffic. Limits
//     are then per node, not global: N nodes admit up to N times a quota's
//     remainder between them.
//
// The first operation that fails for any reason other than its own input
// marks the store down; while it is down no operation waits on the shared
// store, and a probe (Ping, every second) brings it back. The transitions
// are logged, and Down, Outages and Fallbacks feed /readyz and the metrics.
package failover

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tollgate/tollgate/internal/counters"
)

// ErrUnavailable is returned, wrapped, in fail-closed mode while the shared
// store is down.
var ErrUnavailable = errors.New("failover: shared counter store unavailable")

// Shared is the shared store: a counters.Store that can be probed.
type Shared interface {
	counters.Store
	Ping(ctx context.Context) error
}

// Options configure a Store.
type Options struct {
	// Open selects fail-open: Local decides while Shared is down. Local
	// is required then.
	Open  bool
	Local counters.Store
	// ProbeInterval is how often a down Shared is pinged. Default 1s.
	ProbeInterval time.Duration
	Logger        *slog.Logger // default: discard
}

// Store is a counters.Store that fails over by Options. Run must be running
// for a down store to come back.
type Store struct {
	shared Shared
	o      Options

	down      atomic.Bool
	outages   atomic.Uint64
	fallbacks atomic.Uint64
	wake      chan struct{}
	mu        sync.Mutex // serializes transitions
}

// New returns a Store over shared.
func New(shared Shared, o Options) (*Store, error) {
	if o.Open && o.Local == nil {
		return nil, errors.New("failover: fail-open needs a local store")
	}
	if o.ProbeInterval <= 0 {
		o.ProbeInterval = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Store{shared: shared, o: o, wake: make(chan struct{}, 1)}, nil
}

// Down reports whether the shared store is considered unreachable.
func (s *Store) Down() bool { return s.down.Load() }

// Outages returns how many times the shared store went down.
func (s *Store) Outages() uint64 { return s.outages.Load() }

// Fallbacks returns how many operations the local store decided.
func (s *Store) Fallbacks() uint64 { return s.fallbacks.Load() }

// Run probes the shared store while it is down, until ctx ends.
func (s *Store) Run(ctx context.Context) {
	t := time.NewTicker(s.o.ProbeInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.wake:
			continue
		}
		if !s.down.Load() {
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, s.o.ProbeInterval)
		err := s.shared.Ping(pctx)
		cancel()
		if err == nil {
			s.mu.Lock()
			if s.down.Swap(false) {
				s.o.Logger.Warn("shared counter store reachable again; limits are global again")
			}
			s.mu.Unlock()
		}
	}
}

// failed marks the shared store down after err, unless err is the caller's
// (invalid input, its context ended).
func (s *Store) failed(ctx context.Context, err error) bool {
	if errors.Is(err, counters.ErrInvalidAllowance) || errors.Is(err, counters.ErrInvalidBackoff) || ctx.Err() != nil || errors.Is(err, errInput) {
		return false
	}
	s.mu.Lock()
	if !s.down.Swap(true) {
		s.outages.Add(1)
		mode := "fail-closed: requests get 503 until it is back"
		if s.o.Open {
			mode = "fail-open: each node limits on its own until it is back"
		}
		s.o.Logger.Error("shared counter store unreachable; "+mode, "error", err)
	}
	s.mu.Unlock()
	return true
}

// errInput stands for the errors a store returns for bad arguments, which
// are the same whichever store answers.
var errInput = errors.New("failover: invalid input")

// do runs op on the shared store, or by the policy when it is down.
func do[T any](ctx context.Context, s *Store, op func(counters.Store) (T, error)) (T, error) {
	var cause error
	if !s.down.Load() {
		v, err := op(s.shared)
		if err == nil || !s.failed(ctx, err) {
			return v, err
		}
		cause = err
	}
	if !s.o.Open {
		var zero T
		if cause != nil {
			return zero, fmt.Errorf("%w: %w", ErrUnavailable, cause)
		}
		return zero, ErrUnavailable
	}
	s.fallbacks.Add(1)
	return op(s.o.Local)
}

// CheckAttempt implements counters.Store.
func (s *Store) CheckAttempt(ctx context.Context, key string, l counters.Limit) (counters.Decision, error) {
	return do(ctx, s, func(c counters.Store) (counters.Decision, error) { return c.CheckAttempt(ctx, key, l) })
}

// RecordAttempt implements counters.Store.
func (s *Store) RecordAttempt(ctx context.Context, key string, l counters.Limit) (counters.Decision, error) {
	return do(ctx, s, func(c counters.Store) (counters.Decision, error) { return c.RecordAttempt(ctx, key, l) })
}

// ResetAttempts implements counters.Store.
func (s *Store) ResetAttempts(ctx context.Context, key string) error {
	_, err := do(ctx, s, func(c counters.Store) (struct{}, error) { return struct{}{}, c.ResetAttempts(ctx, key) })
	return err
}

// Fail implements counters.Store. In fail-open mode the failures are this
// node's own while the shared store is down.
func (s *Store) Fail(ctx context.Context, key string, b counters.Backoff) (counters.Decision, error) {
	if err := b.Validate(); err != nil {
		return counters.Decision{}, err
	}
	return do(ctx, s, func(c counters.Store) (counters.Decision, error) { return c.Fail(ctx, key, b) })
}

// Forgive implements counters.Store.
func (s *Store) Forgive(ctx context.Context, key string) error {
	_, err := do(ctx, s, func(c counters.Store) (struct{}, error) { return struct{}{}, c.Forgive(ctx, key) })
	return err
}

// MarkSeen implements counters.Store. In fail-open mode the replay cache is
// this node's own while the shared store is down.
func (s *Store) MarkSeen(ctx context.Context, owner, key string, ttl time.Duration, maxPerOwner int) (counters.Seen, error) {
	if ttl <= 0 || maxPerOwner < 1 {
		return s.shared.MarkSeen(ctx, owner, key, ttl, maxPerOwner) // the store's own error for bad input
	}
	return do(ctx, s, func(c counters.Store) (counters.Seen, error) { return c.MarkSeen(ctx, owner, key, ttl, maxPerOwner) })
}

// Unsee implements counters.Store. A claim is given back to whichever store
// answers: one made on the shared store while it was up and given back to
// the local one (or the reverse) stays until it expires, which only keeps a
// refused request from being sent again meanwhile.
func (s *Store) Unsee(ctx context.Context, owner, key string, claim int64) error {
	_, err := do(ctx, s, func(c counters.Store) (struct{}, error) { return struct{}{}, c.Unsee(ctx, owner, key, claim) })
	return err
}

// Take implements counters.Store.
func (s *Store) Take(ctx context.Context, rateKey, quotaKey string, units int64, a counters.Allowance) (counters.LimitDecision, error) {
	if err := a.Validate(); err != nil {
		return counters.LimitDecision{}, err
	}
	if units < 0 {
		return counters.LimitDecision{}, fmt.Errorf("%w: negative units", errInput)
	}
	return do(ctx, s, func(c counters.Store) (counters.LimitDecision, error) {
		return c.Take(ctx, rateKey, quotaKey, units, a)
	})
}

// QuotaUsed implements counters.Store.
func (s *Store) QuotaUsed(ctx context.Context, quotaKey string) (int64, error) {
	return do(ctx, s, func(c counters.Store) (int64, error) { return c.QuotaUsed(ctx, quotaKey) })
}

// SetQuotaUsed implements counters.Store.
func (s *Store) SetQuotaUsed(ctx context.Context, quotaKey string, used int64, expiresAt time.Time) error {
	if used < 0 {
		return fmt.Errorf("%w: negative count", errInput)
	}
	_, err := do(ctx, s, func(c counters.Store) (struct{}, error) {
		return struct{}{}, c.SetQuotaUsed(ctx, quotaKey, used, expiresAt)
	})
	return err
}

var _ counters.Store = (*Store)(nil)

// Ban implements counters.Store. A ban set while the shared store is down
// in fail-open mode holds on this node only.
func (s *Store) Ban(ctx context.Context, key string, ttl time.Duration) error {
	if ttl <= 0 {
		return s.shared.Ban(ctx, key, ttl) // the store's own error for bad input
	}
	_, err := do(ctx, s, func(c counters.Store) (struct{}, error) { return struct{}{}, c.Ban(ctx, key, ttl) })
	return err
}

// Banned implements counters.Store. Fail-closed, a node that cannot read
// bans reports none rather than refuse everyone: the limits still fail
// closed.
func (s *Store) Banned(ctx context.Context, key string) (time.Duration, error) {
	d, err := s.shared.Banned(ctx, key)
	if err == nil || !s.o.Open {
		return d, err
	}
	return s.o.Local.Banned(ctx, key)
}

// BanLen reports how many bans the stores hold, so that the gateway skips
// ban checks while there are none.
func (s *Store) BanLen() int {
	n := 0
	for _, c := range []counters.Store{s.shared, s.o.Local} {
		if bc, ok := c.(interface{ BanLen() int }); ok {
			n += bc.BanLen()
		}
	}
	return n
}

// WatchBans implements counters.Store: fn hears of the bans of the shared
// store and, in fail-open mode, of those set on this node while it was
// down.
func (s *Store) WatchBans(fn func(key string)) (cancel func()) {
	c := s.shared.WatchBans(fn)
	if s.o.Local == nil {
		return c
	}
	l := s.o.Local.WatchBans(fn)
	return func() { c(); l() }
}

// AcquireSlot implements counters.Store. In fail-open mode, slots are this
// node's own while the shared store is down.
func (s *Store) AcquireSlot(ctx context.Context, key, holder string, max int, lease time.Duration) (bool, error) {
	if max <= 0 || lease <= 0 {
		return s.shared.AcquireSlot(ctx, key, holder, max, lease) // the store's own error for bad input
	}
	return do(ctx, s, func(c counters.Store) (bool, error) { return c.AcquireSlot(ctx, key, holder, max, lease) })
}

// RenewSlots implements counters.Store.
func (s *Store) RenewSlots(ctx context.Context, slots []counters.Slot, lease time.Duration) error {
	if lease <= 0 {
		return s.shared.RenewSlots(ctx, slots, lease)
	}
	_, err := do(ctx, s, func(c counters.Store) (struct{}, error) { return struct{}{}, c.RenewSlots(ctx, slots, lease) })
	return err
}

// ReleaseSlot implements counters.Store.
func (s *Store) ReleaseSlot(ctx context.Context, key, holder string) error {
	_, err := do(ctx, s, func(c counters.Store) (struct{}, error) { return struct{}{}, c.ReleaseSlot(ctx, key, holder) })
	return err
}
