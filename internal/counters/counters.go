// Package counters defines Tollgate's hot, short-lived state: the counters
// every node must agree on and that may be lost without harm to durable data.
// Today that is attempt throttling (sign-ups, the gateway's failed
// authentications), the exponential backoff of failed credentials (logins,
// client secrets, the admin token: see Backoff), the replay cache of signed
// requests and wallet sign-in proofs (signatures and nonces seen within their
// window, bounded per credential) and the gateway's rate limits and quotas,
// decided together by Take; temporary bans; and the leased slots that cap a
// credential's WebSocket sessions. Beside the Store, a Bus broadcasts cache
// invalidations to every node.
//
// Implementations: memory (one node) and, for clusters, Redis. Both pass the
// conformance suites in package counterstest.
package counters

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
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

	// Fail records one failure under key by the policy b, in one atomic
	// operation (one Lua script in Redis), unless the key is delayed: then
	// it records nothing. Decision.Allowed reports whether the failure was
	// recorded; RetryAfter is then the delay this failure started (0 while
	// the failures are within b.Free), and otherwise what remains of the
	// delay in force. Failures live in their own namespace, apart from the
	// attempts of RecordAttempt. b must be valid (see Backoff.Validate).
	Fail(ctx context.Context, key string, b Backoff) (Decision, error)
	// Forgive takes back the latest failure recorded under key and lifts
	// the key's delay: for an attempt counted by Fail before it was
	// checked, that turned out right. A key without failures is left
	// alone. The failures' expiry is unchanged.
	Forgive(ctx context.Context, key string) error

	// MarkSeen records key, in the partition of owner (the credential or
	// wallet that signed what key names), as seen for ttl, unless owner
	// already holds maxPerOwner live keys; it reports what it did (see
	// Seen). Exactly one of any number of racing callers gets Fresh for a
	// key within its ttl; the others get Replayed. Marking a key already
	// seen does not extend its ttl. Keys of different owners are
	// independent, even when their texts are equal.
	//
	// An owner whose share is exhausted gets OwnerFull and nothing is
	// recorded: its caller refuses the request (it cannot remember it, so
	// it cannot accept it), while every other owner goes on. A store never
	// forgets a live key to make room, for that would let its request be
	// replayed; the memory store, when its global bound is reached, stops
	// the largest group of owners instead (see package memory and
	// OwnerGroup).
	//
	// ttl must be positive and may be rounded up to the store's resolution
	// (milliseconds in Redis); maxPerOwner must be at least 1. The error
	// is for bad input and an unreachable store; callers refuse the request
	// then too, since they cannot know it is not a replay.
	MarkSeen(ctx context.Context, owner, key string, ttl time.Duration, maxPerOwner int) (Seen, error)
	// Unsee forgets key of owner if it is still the recording that
	// MarkSeen's Fresh answer named by claim (Seen.Claim), and does
	// nothing otherwise (expired, or recorded again since). A caller that
	// marked a key and then refused its request without acting on it
	// gives the key back, so that the request may be sent again.
	Unsee(ctx context.Context, owner, key string, claim int64) error

	// Take decides one request costing units against a rate, under rateKey,
	// and a quota, under quotaKey, in one atomic operation (one Lua script in
	// Redis). It admits the request only if both allow it, and then consumes
	// both; a refused request consumes neither. The rate is checked first: a
	// request refused for its rate does not touch the quota. Units may be 0
	// (a free route: never refused by the quota, still rate limited); a
	// request of more units than the quota has left is refused even if some
	// remain. The zero Allowance limits nothing and admits every request
	// without touching the store.
	//
	// Every request costs one against the rate, whatever its units. The rate
	// is GCRA (emission interval T = 1/Rate, tolerance T×(Burst−1)) on the
	// store's clock in integer nanoseconds (Redis: microseconds); its state
	// under rateKey lives until the bucket is full again. The quota's count
	// under quotaKey lives until the PeriodEnd it was created with (keys name
	// their period, so later calls give the same); a PeriodEnd that is not
	// after the store's clock names a period that is over, whose count starts
	// from zero and is not kept. Rate and quota state do not share keys with
	// attempts, the replay cache or each other.
	//
	// Take returns an error, and decides nothing, for an invalid Allowance
	// (see Allowance), negative units, or a store that cannot record the
	// quota (full, unreachable): the caller must refuse the request rather
	// than let it through unmetered.
	Take(ctx context.Context, rateKey, quotaKey string, units int64, a Allowance) (LimitDecision, error)
	// QuotaUsed reports the units used under quotaKey in its period, 0 if
	// none (or its period is over).
	QuotaUsed(ctx context.Context, quotaKey string) (int64, error)
	// SetQuotaUsed raises the count under quotaKey to at least used, never
	// lowering it, for loading durable counts at start-up. A new count
	// expires at expiresAt; an existing one keeps its expiry. An expiresAt
	// that is not after the store's clock stores nothing. used must not be
	// negative.
	SetQuotaUsed(ctx context.Context, quotaKey string, used int64, expiresAt time.Time) error

	// Ban bans key for ttl from the store's clock: Banned reports it until
	// then. A ban only ever grows: banning a banned key for longer extends
	// the ban, for less changes nothing. ttl must be positive and may be
	// rounded up to the store's resolution (milliseconds in Redis). Bans do
	// not share keys with the other state of the store.
	Ban(ctx context.Context, key string, ttl time.Duration) error
	// Banned reports how long key remains banned, 0 if it is not. It is
	// meant to be checked on every request, so it never waits on the
	// network: the Redis store answers from a mirror of the bans in the
	// node's memory, loaded when the store starts (a SCAN of the ban keys)
	// and kept current through pub/sub, so that a ban set through one node
	// is seen by the others well within a second (and at once by the node
	// that set it). A node whose subscription is down misses the bans set
	// meanwhile until it reconnects and reloads them. The error is for
	// implementations that must ask their backend; both here return nil.
	Banned(ctx context.Context, key string) (remaining time.Duration, err error)
	// WatchBans calls fn with the key of every ban set or extended from now
	// on, through this node or (for a shared store) any other, until cancel
	// is called: the gateway closes the open sessions of what was banned.
	// fn runs on the goroutine that learnt of the ban (the caller of Ban,
	// or the store's subscription) and must not block. A ban missed while
	// a shared store's subscription was down is reported when it is back
	// (the bans are reloaded). cancel may be called more than once.
	WatchBans(fn func(key string)) (cancel func())

	// AcquireSlot takes one of max slots under key for holder, leased for
	// lease from the store's clock, and reports whether it got one: a
	// semaphore shared by every node (the WebSocket sessions a credential
	// may hold open at once), whose slots free themselves when their lease
	// ends, so that a node that dies leaks none for longer. A holder that
	// holds a slot under key already keeps it, its lease renewed. max and
	// lease must be positive; lease may be rounded up to the store's
	// resolution (milliseconds in Redis). Slots do not share keys with the
	// other state of the store.
	AcquireSlot(ctx context.Context, key, holder string, max int, lease time.Duration) (bool, error)
	// RenewSlots extends the lease of each slot to lease from the store's
	// clock, in one round trip. A slot whose lease had ended is taken
	// again, even when that makes its key hold more than its max: a
	// holder that was cut off from the store keeps what it holds.
	RenewSlots(ctx context.Context, slots []Slot, lease time.Duration) error
	// ReleaseSlot frees holder's slot under key; freeing a slot not held
	// is not an error.
	ReleaseSlot(ctx context.Context, key, holder string) error
}

// Slot is a holder's slot under a key (see Store.AcquireSlot).
type Slot struct {
	Key, Holder string
}

// OwnerGroup returns the group of a replay-cache owner named
// "group/name" (an organization and one of its credentials), or the owner
// itself when its name has no "/". A store that must stop owners to make
// room stops the group holding the most keys first: a tenant that spreads
// its signed requests over many credentials is its own largest group, and
// cannot push another tenant's credential out.
func OwnerGroup(owner string) string {
	if i := strings.IndexByte(owner, '/'); i >= 0 {
		return owner[:i]
	}
	return owner
}

// SeenOutcome is the verdict of MarkSeen. The zero SeenOutcome is no
// verdict.
type SeenOutcome int

// The outcomes of MarkSeen.
const (
	// Fresh: the key was not recorded; it now is, until its ttl has
	// passed or Unsee gives it back.
	Fresh SeenOutcome = iota + 1
	// Replayed: the key is recorded already; nothing changed.
	Replayed
	// OwnerFull: the owner holds its maximum of live keys, or the store
	// has stopped it (see MarkSeen); nothing was recorded.
	OwnerFull
)

func (o SeenOutcome) String() string {
	switch o {
	case Fresh:
		return "fresh"
	case Replayed:
		return "replayed"
	case OwnerFull:
		return "owner full"
	}
	return "SeenOutcome(" + strconv.Itoa(int(o)) + ")"
}

// Seen is the outcome of MarkSeen.
type Seen struct {
	Outcome SeenOutcome
	// Claim names this recording of a Fresh key, for Unsee: the key's
	// expiry on the store's clock, in the store's own unit. Two
	// recordings of one key never share a claim, since the second can
	// only follow the first's expiry or Unsee. 0 unless Fresh.
	Claim int64
	// RetryAfter, for OwnerFull, is how long until the owner may record
	// a key again (its oldest key expires, or the store lets it go on);
	// 0 otherwise.
	RetryAfter time.Duration
}

// Resync is the message a Bus delivers to its subscribers when messages may
// have been lost (the Redis subscription reconnected, or a subscriber fell
// too far behind): the subscriber must drop everything it caches. Publishing
// Resync tells every node to do so.
const Resync = "*"

// Bus broadcasts short messages (cache invalidations) to every node.
//
// Delivery is at most once: messages published while a node's subscription
// is down (the Redis connection lost and being re-established) are lost for
// that node. Once the subscription is back, its subscribers receive Resync,
// after which they must not trust anything they cached from messages. A
// subscriber that falls thousands of messages behind gets Resync in place of
// the messages it missed.
type Bus interface {
	// Publish sends msg to every subscriber of every node, this one
	// included. It returns once the backend has accepted msg, not once it
	// has been delivered.
	Publish(ctx context.Context, msg string) error
	// Subscribe calls fn for each message published by any node, this one
	// included, from now on, until cancel is called. fn runs on one
	// goroutine per subscription, in order; it must not block long.
	//
	// Messages published after cancel returns are not delivered; a call of
	// fn under way may still finish after it. cancel may be called more
	// than once, and from fn.
	Subscribe(fn func(msg string)) (cancel func())
}

// Backoff is an exponential backoff of failures under one key: the first
// Free failures cost nothing; failure Free+k (k ≥ 1) delays the key for
// Base×2^(k−1), at most Max, during which Fail records nothing more. The
// failures of a key are forgotten Window after the later of its latest
// failure and the end of its delay: a client that stops failing for Window
// starts afresh, one that keeps failing keeps doubling its delay up to Max.
//
// Over any stretch of time, a key admits at most about
// Free + log2(Window/Base) + 1 failures per Window (the client that spends
// its free failures, then its cheap short delays, then waits for the key to
// be forgotten), and one per Max once it is past that. The zero Backoff is
// invalid.
type Backoff struct {
	Free   int           // failures without delay; at least 1
	Base   time.Duration // the first delay; positive
	Max    time.Duration // the longest delay; at least Base
	Window time.Duration // quiet time after which failures are forgotten; positive
}

// ErrInvalidBackoff is wrapped by the errors of Backoff.Validate.
var ErrInvalidBackoff = errors.New("counters: invalid backoff")

// Validate reports whether b is a Backoff that Fail accepts.
func (b Backoff) Validate() error {
	switch {
	case b.Free < 1:
		return fmt.Errorf("%w: free failures %d is less than 1", ErrInvalidBackoff, b.Free)
	case b.Base <= 0 || b.Window <= 0:
		return fmt.Errorf("%w: base %v and window %v must be positive", ErrInvalidBackoff, b.Base, b.Window)
	case b.Max < b.Base:
		return fmt.Errorf("%w: max %v is less than base %v", ErrInvalidBackoff, b.Max, b.Base)
	}
	return nil
}

// Delay returns the delay that failure number n (counting from 1) starts:
// 0 within Free, else Base×2^(n−Free−1) capped at Max.
func (b Backoff) Delay(n int) time.Duration {
	if n <= b.Free {
		return 0
	}
	d := b.Base
	for k := n - b.Free - 1; k > 0; k-- {
		if d > b.Max/2 {
			return b.Max
		}
		d *= 2
	}
	return min(d, b.Max)
}

// Allowance is what a plan allows one organization (or key): a rate and a
// quota, either of which may be absent. The zero Allowance allows everything.
type Allowance struct {
	// Rate is the sustained number of requests per second; 0: no rate
	// limit. It must be finite and not negative.
	Rate float64
	// Burst is the number of requests allowed at once; at least 1 when Rate
	// is positive, ignored otherwise.
	Burst int
	// Quota is the number of units allowed per period; 0: no quota. It must
	// not be negative.
	Quota int64
	// PeriodEnd is the end of the current quota period, required when Quota
	// is positive. The caller names the period (its start) in the quota key.
	PeriodEnd time.Time
}

// ErrInvalidAllowance is wrapped by the errors of Allowance.Validate.
var ErrInvalidAllowance = errors.New("counters: invalid allowance")

// Validate reports whether a is an Allowance that Take accepts.
func (a Allowance) Validate() error {
	switch {
	case math.IsNaN(a.Rate) || math.IsInf(a.Rate, 0) || a.Rate < 0:
		return fmt.Errorf("%w: rate %v is not a finite, non-negative number", ErrInvalidAllowance, a.Rate)
	case a.Rate > 0 && a.Burst < 1:
		return fmt.Errorf("%w: burst %d is less than 1", ErrInvalidAllowance, a.Burst)
	case a.Quota < 0:
		return fmt.Errorf("%w: quota %d is negative", ErrInvalidAllowance, a.Quota)
	case a.Quota > 0 && a.PeriodEnd.IsZero():
		return fmt.Errorf("%w: quota without a period end", ErrInvalidAllowance)
	}
	return nil
}

// Interval returns the rate's emission interval 1/Rate, rounded to the
// nanosecond and at least one; 0 when there is no rate limit. A rate so low
// that its interval overflows a Duration gets the longest Duration.
func (a Allowance) Interval() time.Duration {
	if !(a.Rate > 0) {
		return 0
	}
	ns := math.Round(1e9 / a.Rate)
	if ns >= math.MaxInt64 { // float64(MaxInt64) rounds up to 2^63
		return math.MaxInt64
	}
	return max(1, time.Duration(ns))
}

// LimitOutcome is the verdict of Take. The zero LimitOutcome is no verdict.
type LimitOutcome int

// The outcomes of Take.
const (
	// Admitted: both the rate and the quota allowed the request, and both
	// were consumed.
	Admitted LimitOutcome = iota + 1
	// RateLimited: the rate refused the request; nothing was consumed.
	RateLimited
	// QuotaExhausted: the rate allowed the request but the quota has fewer
	// units left than it costs; nothing was consumed.
	QuotaExhausted
)

func (o LimitOutcome) String() string {
	switch o {
	case Admitted:
		return "admitted"
	case RateLimited:
		return "rate limited"
	case QuotaExhausted:
		return "quota exhausted"
	}
	return "LimitOutcome(" + strconv.Itoa(int(o)) + ")"
}

// LimitDecision is the outcome of Take and the state after it, for the
// RateLimit headers. Durations are on the store's clock, never negative.
type LimitDecision struct {
	Outcome LimitOutcome
	// RetryAfter is zero when Admitted; when RateLimited, how long until one
	// more request conforms to the rate; when QuotaExhausted, how long until
	// PeriodEnd.
	RetryAfter time.Duration

	// RateLimit is the Burst; 0 when there is no rate limit, and then the
	// other Rate fields are 0 too.
	RateLimit int
	// RateRemaining is how many more requests the rate would admit right
	// now, after this decision.
	RateRemaining int
	// RateReset is how long until the bucket is full again (Burst requests
	// admitted at once).
	RateReset time.Duration

	// QuotaUsed is the number of units used in the period after this
	// decision; 0 when there is no quota, as is QuotaRemaining.
	QuotaUsed int64
	// QuotaRemaining is Quota minus QuotaUsed, or 0 if that is negative (a
	// count loaded with SetQuotaUsed may exceed a lowered quota).
	QuotaRemaining int64
}
