// Package usage carries usage events from the request path to the store.
//
// A Recorder is a bounded queue with one writer. The request path calls
// Record, which never blocks: it copies the event into the queue. Run is the
// writer: it takes events from the queue in order and stores them in batches
// of at most Options.BatchSize, at the latest Options.FlushInterval after a
// batch's first event arrived, as request-log entries and additions to the
// rollups (see store.Store.RecordUsage).
//
// What must be exact and what may be sampled are kept apart. The rollups
// (units, requests and errors per organization, app, credential and hour,
// day and month) are what quotas and bills are checked against: they count
// every event. The request log may be sampled when events come faster than
// the store takes them. Once the queue is more than half full, it keeps
// every error (status 400 or more) and WebSocket session, and one other
// event in SampleEvery; when it is full, it keeps nothing more. An event it
// leaves out is not lost: it is added, in memory, to the totals of its
// organization, app, credential and hour, which Run stores every
// FlushInterval (store.Store.RecordUsageTotals), a handful of rows whatever
// the rate, into the rollups and their count of requests omitted from the
// log, which the usage API reports. Only the request-log entry is missing.
// A request of no organization (refused before authentication) has no
// rollups: left out of the log, it is dropped, and counted.
//
// A failed write is retried with exponential backoff (up to 5 s apart) for
// Options.RetryFor, 10 minutes by default, while new events keep queueing: a
// store that is briefly down (a PostgreSQL failover, a restart) loses
// nothing. A store that stays down samples the log as above, never blocks a
// request, and holds in memory no more than the queue and one total per
// organization, app, credential and hour.
//
// Nothing is lost silently: every event recorded ends up in exactly one of
// Written (stored, with its request-log entry or in the totals), Failed (a
// batch given up after its retries) and Dropped (recorded after Run ended,
// or of no organization and left out of the log), or is still waiting
// (Depth). Omitted counts the events left out of the request log, whatever
// became of them. Drops and omissions are logged at most once every 10
// seconds each, with the number since the previous line; a batch given up is
// logged with its size. Log lines never carry the contents of events.
//
// Each batch gets a new ID before its first attempt and keeps it, and its
// events or totals, through every retry, so that a Sink can recognise a
// batch it has already stored (store.Store does) after an uncertain failure.
package usage

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tollgate/tollgate/internal/clock"
	"github.com/tollgate/tollgate/internal/ids"
	"github.com/tollgate/tollgate/internal/store"
)

// Sink stores batches of events, and batches of the totals of events left
// out of the request log. store.Store satisfies it.
//
// Each method must store all of its batch or none, must do nothing when
// batchID is stored already (a batch may be retried, under the same ID and
// with the same contents), and must not retain the slice after it returns:
// the Recorder reuses it. It should return promptly once ctx is done.
type Sink interface {
	RecordUsage(ctx context.Context, batchID string, events []store.UsageEvent) error
	RecordUsageTotals(ctx context.Context, batchID string, totals []store.UsageTotal) error
}

// Options configure a Recorder. A zero or negative field takes its default.
type Options struct {
	// Buffer is the capacity of the queue, in events. Default 65536.
	// The queue is allocated in full by New (a few hundred bytes per event).
	// Beyond half of it the request log is sampled (see the package
	// documentation).
	Buffer int
	// BatchSize is the most events passed to one Sink.RecordUsage call.
	// Default 1000.
	BatchSize int
	// FlushInterval is the longest an event waits in a partial batch before
	// the batch is written, and how often the totals of events left out of
	// the request log are written. Default 1s.
	FlushInterval time.Duration
	// Logger receives drop and omission reports and write failures.
	// Default: discard.
	Logger *slog.Logger
	// Clock times the 10-second windows of reports, and the hour of an
	// event left out of the log whose Time is zero. Default clock.System{}.
	Clock clock.Clock
	// RetryFor is how long a failed batch is retried before it is given up
	// (counted in Failed). Default 10 minutes.
	RetryFor time.Duration
}

// Defaults of Options.
const (
	DefaultBuffer        = 65536
	DefaultBatchSize     = 1000
	DefaultFlushInterval = time.Second
	DefaultRetryFor      = 10 * time.Minute
)

// SampleEvery is the share of the events that are neither errors nor
// WebSocket sessions that the request log keeps while the queue is more
// than half full: one in SampleEvery.
const SampleEvery = 10

const (
	// reportEvery is the shortest time between two drop reports, and
	// between two omission reports.
	reportEvery = 10 * time.Second
	// finalFlushTimeout bounds the final flush of Run, after its context
	// has ended.
	finalFlushTimeout = 10 * time.Second
	// Write retries: backoff starts at retryMin and doubles up to retryMax;
	// a batch is given up once Options.RetryFor has passed since its first
	// failure.
	retryMin = 100 * time.Millisecond
	retryMax = 5 * time.Second
)

// A Recorder queues usage events and writes them to a Sink in batches.
//
// Record, Depth, Dropped, Written, Failed and Omitted are safe for
// concurrent use by any number of goroutines; Run must be called exactly
// once. Events recorded before Run starts wait in the queue, or in the
// totals.
type Recorder struct {
	sink          Sink
	queue         chan store.UsageEvent
	sampleFrom    int // queue length from which the request log is sampled
	batchSize     int
	flushInterval time.Duration
	log           *slog.Logger
	clock         clock.Clock
	epoch         time.Time // Clock reading at New; origin of the report windows

	// Retry policy and final-flush bound; constants above, shortened by
	// tests.
	retryMin, retryMax time.Duration
	retryFor           time.Duration
	// retryAttempts, when positive, also bounds the attempts (tests).
	retryAttempts int
	finalTimeout  time.Duration

	started atomic.Bool // Run was called
	closed  atomic.Bool // Run is ending: Record drops instead of queueing

	// The totals of the events left out of the request log, by
	// organization, app, credential and hour, not yet taken by Run.
	// stopped is set by Run's final flush: an omission after it is a drop.
	totMu   sync.Mutex
	totals  map[totalKey]*store.UsageTotal
	stopped bool

	// The batch of totals Run is writing, and its ID; Run's only.
	totBatch []store.UsageTotal
	totID    string

	// The counters below are written often, by Run and by Records that
	// sample or drop; the padding keeps them off the cache line of the
	// fields every Record reads.
	_             [cacheLine]byte
	pending       atomic.Int64 // events taken from the queue, not yet written or failed
	pendingTotals atomic.Int64 // events in the totals, not yet written or failed
	written       atomic.Uint64
	failed        atomic.Uint64
	_             [cacheLine]byte
	dropped       atomic.Uint64
	omitted       atomic.Uint64
	sampleSeq     atomic.Uint64 // events considered for a sampled log
	drops, omits  reporter
}

// totalKey is what the totals of omitted events are summed by.
type totalKey struct {
	hour                       int64 // unix seconds of the hour's start
	orgID, appID, credentialID string
}

// cacheLine is an upper bound of the CPU cache line size, for padding.
const cacheLine = 128

// New returns a Recorder that writes to sink, which must not be nil. Nothing
// is written until Run is called.
func New(sink Sink, o Options) *Recorder {
	if sink == nil {
		panic("usage: New with a nil Sink")
	}
	if o.Buffer <= 0 {
		o.Buffer = DefaultBuffer
	}
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = DefaultFlushInterval
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = clock.System{}
	}
	if o.RetryFor <= 0 {
		o.RetryFor = DefaultRetryFor
	}
	return &Recorder{
		sink:          sink,
		queue:         make(chan store.UsageEvent, o.Buffer),
		sampleFrom:    max(1, o.Buffer/2),
		batchSize:     o.BatchSize,
		flushInterval: o.FlushInterval,
		log:           o.Logger,
		clock:         o.Clock,
		epoch:         o.Clock.Now(),
		retryMin:      retryMin,
		retryMax:      retryMax,
		retryFor:      o.RetryFor,
		finalTimeout:  finalFlushTimeout,
		totals:        make(map[totalKey]*store.UsageTotal),
	}
}

// Record takes e for writing and reports whether it was queued for the
// request log. It never blocks. While the queue is more than half full, it
// queues only errors, WebSocket sessions and one other event in
// SampleEvery; when it is full, none. An event it does not queue is added
// to the totals (see the package documentation) and counted in Omitted, or,
// when it has no organization, dropped and counted in Dropped. After Run has
// ended every event is dropped and counted. It is safe to call at any time,
// before Run, while Run works and after Run has returned.
//
// An event recorded while Run is ending may be dropped even though Record
// returned true (Run's final drain has passed); it is then counted in Dropped
// like any other, so that it is never lost silently.
func (r *Recorder) Record(e store.UsageEvent) bool {
	if r.closed.Load() {
		r.drop(1)
		return false
	}
	if len(r.queue) >= r.sampleFrom && !r.sampled(&e) {
		r.omit(&e)
		return false
	}
	select {
	case r.queue <- e:
	default:
		r.omit(&e)
		return false
	}
	if r.closed.Load() {
		// Run may have drained the queue for the last time between the
		// check above and the send: take back what is left so that it is
		// counted, not stranded.
		r.reclaim()
	}
	return true
}

// sampled reports whether the request log keeps e while it is sampled.
func (r *Recorder) sampled(e *store.UsageEvent) bool {
	return e.Status >= 400 || e.WebSocket || r.sampleSeq.Add(1)%SampleEvery == 0
}

// omit adds e, left out of the request log, to the totals: its request,
// units and error, under its organization, app, credential and hour.
func (r *Recorder) omit(e *store.UsageEvent) {
	r.omitted.Add(1)
	r.report(&r.omits, false)
	if e.OrgID == "" {
		r.drop(1) // no organization, no rollups: the log entry was its record
		return
	}
	at := e.Time
	if at.IsZero() {
		at = r.clock.Now()
	}
	k := totalKey{store.BucketStart(store.GranularityHour, at).Unix(), e.OrgID, e.AppID, e.CredentialID}
	r.totMu.Lock()
	if r.stopped {
		r.totMu.Unlock()
		r.drop(1)
		return
	}
	t := r.totals[k]
	if t == nil {
		t = &store.UsageTotal{Hour: time.Unix(k.hour, 0).UTC(), OrgID: k.orgID, AppID: k.appID, CredentialID: k.credentialID}
		r.totals[k] = t
	}
	t.Requests++
	t.Units += e.Units
	if e.Status >= 400 {
		t.Errors++
	}
	r.pendingTotals.Add(1)
	r.totMu.Unlock()
}

// takeTotals moves the totals into r.totBatch, a new batch of totals with a
// new ID, and returns the number of events they sum; with stop set, later
// omissions are dropped instead. It must be called from Run, with no batch
// of totals pending.
func (r *Recorder) takeTotals(stop bool) int {
	r.totMu.Lock()
	defer r.totMu.Unlock()
	r.stopped = r.stopped || stop
	if len(r.totals) == 0 {
		return 0
	}
	n := 0
	for k, t := range r.totals {
		r.totBatch = append(r.totBatch, *t)
		n += int(t.Requests)
		delete(r.totals, k)
	}
	r.totID = ids.New(ids.UsageBatch)
	return n
}

// Depth returns the number of events recorded but not yet written, given up
// or dropped: those in the queue, in the batch being written, and in the
// totals of events left out of the request log.
func (r *Recorder) Depth() int {
	return len(r.queue) + int(r.pending.Load()) + int(r.pendingTotals.Load())
}

// Dropped returns the number of events dropped since New: recorded after
// Run had ended, or of no organization and left out of the request log.
func (r *Recorder) Dropped() uint64 { return r.dropped.Load() }

// Written returns the number of events stored by the Sink since New, with
// their request-log entry or in the totals of events left out of it.
func (r *Recorder) Written() uint64 { return r.written.Load() }

// Failed returns the number of events given up since New: their batch failed
// every attempt, or could not be written before the final flush timed out.
func (r *Recorder) Failed() uint64 { return r.failed.Load() }

// Omitted returns the number of events left out of the request log since
// New because the queue was filling up (see Record); they are counted in
// the totals of the rollups, or, without an organization, in Dropped.
func (r *Recorder) Omitted() uint64 { return r.omitted.Load() }

// Run writes queued events, and every FlushInterval the totals of the events
// left out of the request log, to the Sink until ctx is done, then drains
// the queue and the totals and returns. The final drain runs with the values
// of ctx but not its cancellation, and is bounded by 10 seconds; events it
// cannot store in that time are counted in Failed. After Run has returned,
// Record drops every event.
//
// Run must be called once; it panics if called again.
func (r *Recorder) Run(ctx context.Context) {
	if r.started.Swap(true) {
		panic("usage: Recorder.Run called twice")
	}
	batch := make([]store.UsageEvent, 0, r.batchSize)
	// A ticker bounds the wait of a partial batch, and of the totals, to
	// FlushInterval (an event that arrives just after a tick waits one
	// interval) and also closes report windows when no further drop or
	// omission comes to do it. While the queue stays full, the ticker is
	// one of two ready cases, which select picks at random: the totals are
	// not starved.
	tick := time.NewTicker(r.flushInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			r.finish(ctx, "", batch)
			return
		case e := <-r.queue:
			batch = append(batch, e)
			r.pending.Add(1)
			if len(batch) < r.batchSize {
				continue
			}
		case <-tick.C:
			r.report(&r.drops, false)
			r.report(&r.omits, false)
			if n := r.takeTotals(false); n > 0 && !r.writeTotals(ctx, n, false) {
				r.finish(ctx, "", batch) // the totals go to the final flush, under their ID
				return
			}
			if len(batch) == 0 {
				continue
			}
		}
		id := ids.New(ids.UsageBatch)
		if !r.writeEvents(ctx, id, batch, false) {
			// Cut short by shutdown: the batch goes to the final flush,
			// under its ID, as it is.
			r.finish(ctx, id, batch)
			return
		}
		clear(batch) // let the collector have the strings
		batch = batch[:0]
	}
}

// finish is the end of Run: it stops Record from queueing, then writes batch
// and everything left in the queue, then the totals, with a context that
// ignores ctx's cancellation and is bounded by finalTimeout. Once that bound
// has passed, what is left is given up without further attempts and
// reported in one line.
//
// id is batch's ID when batch has been attempted already: it is then written
// as it is, under that ID, before anything else, because an uncertain failure
// may have stored it. A batch not attempted yet ("" id) is topped up from the
// queue first. Likewise a batch of totals cut short (r.totBatch) is written
// under its ID before the totals left.
func (r *Recorder) finish(ctx context.Context, id string, batch []store.UsageEvent) {
	r.closed.Store(true)
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.finalTimeout)
	defer cancel()
	var late int
	for {
		if id == "" {
			batch = r.fill(batch)
			if len(batch) == 0 {
				break
			}
			id = ids.New(ids.UsageBatch)
		}
		if fctx.Err() != nil {
			late += len(batch)
			r.settle(len(batch), &r.pending, &r.failed)
		} else {
			r.writeEvents(fctx, id, batch, true)
		}
		clear(batch)
		batch, id = batch[:0], ""
	}
	// The totals: a batch cut short first, then what is left, which no
	// omission joins any more (takeTotals stops them; it runs in one of the
	// two rounds at least).
	for range 2 {
		n := 0
		for _, t := range r.totBatch {
			n += int(t.Requests)
		}
		if n == 0 {
			n = r.takeTotals(true)
		}
		if n == 0 {
			continue
		}
		if fctx.Err() != nil {
			late += n
			r.settle(n, &r.pendingTotals, &r.failed)
			r.clearTotals()
		} else {
			r.writeTotals(fctx, n, true)
		}
	}
	if late > 0 {
		r.log.Error("usage events not stored: final flush timed out",
			"events", late, "timeout", r.finalTimeout)
	}
	r.report(&r.drops, true)
	r.report(&r.omits, true)
}

// fill moves queued events into batch, without waiting, until the batch is
// full or the queue empty.
func (r *Recorder) fill(batch []store.UsageEvent) []store.UsageEvent {
	for len(batch) < r.batchSize {
		select {
		case e := <-r.queue:
			batch = append(batch, e)
			r.pending.Add(1)
		default:
			return batch
		}
	}
	return batch
}

// writeEvents stores batch under the batch ID id; see write.
func (r *Recorder) writeEvents(ctx context.Context, id string, batch []store.UsageEvent, final bool) bool {
	return r.write(ctx, "batch", len(batch), &r.pending, final, func(ctx context.Context) error {
		return r.sink.RecordUsage(ctx, id, batch)
	})
}

// writeTotals stores r.totBatch, the totals of n events, under r.totID, and
// clears it once settled; see write.
func (r *Recorder) writeTotals(ctx context.Context, n int, final bool) bool {
	settled := r.write(ctx, "totals", n, &r.pendingTotals, final, func(ctx context.Context) error {
		return r.sink.RecordUsageTotals(ctx, r.totID, r.totBatch)
	})
	if settled {
		r.clearTotals()
	}
	return settled
}

func (r *Recorder) clearTotals() {
	clear(r.totBatch)
	r.totBatch, r.totID = r.totBatch[:0], ""
}

// write stores a batch of n events through store, retrying failures with
// backoff, and settles them, from pending, in Written or Failed. It reports
// whether the batch is settled: written, or given up and counted in Failed.
// In normal operation (final false) it returns false, leaving the batch
// pending, when ctx ends during an attempt or a backoff. With final set it
// always settles the batch, giving it up when ctx ends.
func (r *Recorder) write(ctx context.Context, what string, n int, pending *atomic.Int64, final bool, store func(context.Context) error) bool {
	backoff := r.retryMin
	var firstFailure time.Time
	for attempt := 1; ; attempt++ {
		err := store(ctx)
		if err == nil {
			r.settle(n, pending, &r.written)
			return true
		}
		if ctx.Err() != nil && !final {
			return false
		}
		now := r.clock.Now()
		if firstFailure.IsZero() {
			firstFailure = now
		}
		if now.Sub(firstFailure) >= r.retryFor || (r.retryAttempts > 0 && attempt >= r.retryAttempts) || ctx.Err() != nil {
			r.log.Error("usage events not stored: giving up on "+what,
				"events", n, "attempts", attempt, "err", err)
			r.settle(n, pending, &r.failed)
			return true
		}
		r.log.Warn("usage "+what+" write failed, will retry",
			"events", n, "attempt", attempt, "retry_in", backoff, "err", err)
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			if !final {
				return false
			}
			// One last attempt, which fails at once if the Sink honours
			// ctx, and gives the batch up.
		}
		backoff = min(2*backoff, r.retryMax)
	}
}

// settle moves n events from pending to the counter c; n is a batch's
// size, never negative.
func (r *Recorder) settle(n int, pending *atomic.Int64, c *atomic.Uint64) {
	c.Add(uint64(n)) //nolint:gosec // G115: n >= 0
	pending.Add(-int64(n))
}

// reclaim empties the queue after Run has ended, counting what it takes as
// dropped.
func (r *Recorder) reclaim() {
	var n uint64
	for {
		select {
		case <-r.queue:
			n++
			continue
		default:
		}
		break
	}
	if n > 0 {
		r.drop(n)
	}
}

// drop counts n dropped events and reports them if the report window has
// passed.
func (r *Recorder) drop(n uint64) {
	r.dropped.Add(n)
	r.report(&r.drops, false)
}

// reporter is the state of one kind of report (drops, omissions): the
// earliest time of the next one, in nanoseconds since the Recorder's epoch,
// read without the lock so that an event inside the window costs one clock
// reading and one atomic load; and the count at the last one.
type reporter struct {
	next   atomic.Int64
	mu     sync.Mutex
	logged uint64 // guarded by mu
}

// report logs the drops or omissions (rep is r.drops or r.omits) since the
// previous report, if there are any and, unless force is set, the previous
// report is at least reportEvery old.
func (r *Recorder) report(rep *reporter, force bool) {
	now := int64(r.clock.Now().Sub(r.epoch))
	if !force && now < rep.next.Load() {
		return
	}
	rep.mu.Lock()
	defer rep.mu.Unlock()
	if !force && now < rep.next.Load() {
		return // another goroutine reported meanwhile
	}
	counter := &r.dropped
	if rep == &r.omits {
		counter = &r.omitted
	}
	total := counter.Load()
	n := total - rep.logged
	if n == 0 {
		return
	}
	rep.logged = total
	rep.next.Store(now + int64(reportEvery))
	switch {
	case rep == &r.omits:
		r.log.Warn("request log sampled under overload: usage events left out of it; their units, requests and errors are in the rollups",
			"omitted", n, "total", total)
	case r.closed.Load():
		r.log.Warn("usage events dropped: recorder stopped", "dropped", n, "total", total)
	default:
		r.log.Warn("usage events dropped: of no organization, left out of the sampled request log", "dropped", n, "total", total)
	}
}
