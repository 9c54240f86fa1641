// Package counters defines Tollgate's hot, short-lived state: the counters
// every node must agree on and that may be lost without harm to durable data.
// Today that is attempt throttling (failed logins, sign-ups); rate limits,
// quotas, replay nonces and bans follow behind the same interface.
//
// Implementations: memory (one node) and, for clusters, Redis. Both pass the
// conformance suite in package counterstest.
package counters

import (
	"context"
	"time"
)

// Limit allows Max events per Window, spread continuously: after Max events in
// a burst, one more is allowed every Window/Max. The zero Limit allows nothing.
type Limit struct {
	Max    int
	Window time.Duration
}

// Decision is the outcome of a check.
type Decision struct {
	Allowed bool
	// RetryAfter is how long until one more event would be allowed; zero
	// when Allowed.
	RetryAfter time.Duration
}

// Store is the hot-counter store. Implementations are safe for concurrent use
// and take time from their own clock (memory) or server (Redis), never from
// the caller, so that every node agrees.
type Store interface {
	// CheckAttempt reports whether one more event under key would be within
	// l, without recording anything.
	CheckAttempt(ctx context.Context, key string, l Limit) (Decision, error)
	// RecordAttempt records one event under key and reports whether it was
	// within l. An event beyond the limit is not recorded, so a client that
	// keeps trying is locked out for no longer than the window.
	RecordAttempt(ctx context.Context, key string, l Limit) (Decision, error)
	// ResetAttempts forgets every event recorded under key.
	ResetAttempts(ctx context.Context, key string) error
}
