// Package usage carries usage events from the request path to the store.
//
// A Recorder is a bounded queue with one writer. The request path calls
// Record, which never blocks: it copies the event into the queue, or, when
// the queue is full, drops it and counts it. Run is the writer: it takes
// events from the queue in order and stores them in batches of at most
// Options.BatchSize, at the latest Options.FlushInterval after a batch's
// first event arrived.
//
// A failed write is retried with exponential backoff (up to 5 s apart) for
// Options.RetryFor, 10 minutes by default, while new events keep queueing: a
// store that is briefly down (a PostgreSQL failover, a restart) loses
// nothing. A store that stays down fills the queue and then turns into
// counted drops, never into blocked requests or unbounded memory.
// Nothing is lost silently: every event recorded ends up in exactly one of
// Written, Failed (a batch given up after its retries) and Dropped, or is
// still queued (Depth). Drops are logged at most once every 10 seconds, with
// the number dropped since the previous line; a batch given up is logged with
// its size. Log lines never carry the contents of events.
//
// Each batch gets a new ID before its first attempt and keeps it, and its
// events, through every retry, so that a Sink can recognise a batch it has
// already stored (store.Store does) after an uncertain failure.
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

// Sink stores batches of events. store.Store satisfies it.
//
// RecordUsage must store all events or none, must do nothing when batchID
// is stored already (a batch may be retried, under the same ID and with the
// same events), and must not retain the slice after it returns: the Recorder
// reuses it. It should return promptly once ctx is done.
type Sink interface {
	RecordUsage(ctx context.Context, batchID string, events []store.UsageEvent) error
}

// Options configure a Recorder. A zero or negative field takes its default.
type Options struct {
	// Buffer is the capacity of the queue, in events. Default 65536.
	// The queue is allocated in full by New (a few hundred bytes per event).
	Buffer int
	// BatchSize is the most events passed to one Sink.RecordUsage call.
	// Default 1000.
	BatchSize int
	// FlushInterval is the longest an event waits in a partial batch before
	// the batch is written. Default 1s.
	FlushInterval time.Duration
	// Logger receives drop reports and write failures. Default: discard.
	Logger *slog.Logger
	// Clock times the 10-second windows of drop reports. Default
	// clock.System{}.
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

const (
	// dropLogEvery is the shortest time between two drop reports.
	dropLogEvery = 10 * time.Second
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
// Record, Depth, Dropped, Written and Failed are safe for concurrent use by
// any number of goroutines; Run must be called exactly once. Events recorded
// before Run starts wait in the queue.
type Recorder struct {
	sink          Sink
	queue         chan store.UsageEvent
	batchSize     int
	flushInterval time.Duration
	log           *slog.Logger
	clock         clock.Clock
	epoch         time.Time // Clock reading at New; origin of nextDropLog

	// Retry policy and final-flush bound; constants above, shortened by
	// tests.
	retryMin, retryMax time.Duration
	retryFor           time.Duration
	// retryAttempts, when positive, also bounds the attempts (tests).
	retryAttempts int
	finalTimeout  time.Duration

	started atomic.Bool // Run was called
	closed  atomic.Bool // Run is ending: Record drops instead of queueing

	// The counters below are written often, by Run and by dropping Records;
	// the padding keeps them off the cache line of the fields every Record
	// reads.
	_       [cacheLine]byte
	pending atomic.Int64 // events taken from the queue, not yet written or failed
	written atomic.Uint64
	failed  atomic.Uint64
	_       [cacheLine]byte
	dropped atomic.Uint64

	// nextDropLog is the earliest time, in nanoseconds since epoch, of the
	// next drop report. It is read without the lock so that a drop inside
	// the window costs one clock reading and one atomic load.
	nextDropLog atomic.Int64
	dropMu      sync.Mutex
	dropLogged  uint64 // value of dropped at the last report; guarded by dropMu
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
		batchSize:     o.BatchSize,
		flushInterval: o.FlushInterval,
		log:           o.Logger,
		clock:         o.Clock,
		epoch:         o.Clock.Now(),
		retryMin:      retryMin,
		retryMax:      retryMax,
		retryFor:      o.RetryFor,
		finalTimeout:  finalFlushTimeout,
	}
}

// Record queues e for writing and reports whether it was queued. It never
// blocks: when the queue is full, or Run has ended, it drops e, counts it in
// Dropped and returns false. It is safe to call at any time, before Run, while
// Run works and after Run has returned.
//
// An event recorded while Run is ending may be dropped even though Record
// returned true (Run's final drain has passed); it is then counted in Dropped
// like any other, so that it is never lost silently.
func (r *Recorder) Record(e store.UsageEvent) bool {
	if r.closed.Load() {
		r.drop(1)
		return false
	}
	select {
	case r.queue <- e:
	default:
		r.drop(1)
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

// Depth returns the number of events recorded but not yet written, given up
// or dropped: those in the queue and those in the batch being written.
func (r *Recorder) Depth() int {
	return len(r.queue) + int(r.pending.Load())
}

// Dropped returns the number of events dropped since New because the queue
// was full or Run had ended.
func (r *Recorder) Dropped() uint64 { return r.dropped.Load() }

// Written returns the number of events stored by the Sink since New.
func (r *Recorder) Written() uint64 { return r.written.Load() }

// Failed returns the number of events given up since New: their batch failed
// every attempt, or could not be written before the final flush timed out.
func (r *Recorder) Failed() uint64 { return r.failed.Load() }

// Run writes queued events to the Sink until ctx is done, then drains the
// queue and returns. The final drain runs with the values of ctx but not its
// cancellation, and is bounded by 10 seconds; events it cannot store in that
// time are counted in Failed. After Run has returned, Record drops every
// event.
//
// Run must be called once; it panics if called again.
func (r *Recorder) Run(ctx context.Context) {
	if r.started.Swap(true) {
		panic("usage: Recorder.Run called twice")
	}
	batch := make([]store.UsageEvent, 0, r.batchSize)
	// A ticker bounds the wait of a partial batch to FlushInterval (an event
	// that arrives just after a tick waits one interval) and also closes
	// drop-report windows when no further drop comes to do it.
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
			r.logDrops(false)
			if len(batch) == 0 {
				continue
			}
		}
		id := ids.New(ids.UsageBatch)
		if !r.write(ctx, id, batch, false) {
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
// and everything left in the queue with a context that ignores ctx's
// cancellation and is bounded by finalTimeout. Once that bound has passed,
// what is left is given up without further attempts and reported in one line.
//
// id is batch's ID when batch has been attempted already: it is then written
// as it is, under that ID, before anything else, because an uncertain failure
// may have stored it. A batch not attempted yet ("" id) is topped up from the
// queue first.
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
			r.settle(len(batch), &r.failed)
		} else {
			r.write(fctx, id, batch, true)
		}
		clear(batch)
		batch, id = batch[:0], ""
	}
	if late > 0 {
		r.log.Error("usage events not stored: final flush timed out",
			"events", late, "timeout", r.finalTimeout)
	}
	r.logDrops(true)
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

// write stores batch under the batch ID id, retrying failures with backoff. It reports whether the
// batch is settled: written, or given up and counted in Failed. In normal
// operation (final false) it returns false, leaving the batch pending, when
// ctx ends during an attempt or a backoff. With final set it always settles
// the batch, giving it up when ctx ends.
func (r *Recorder) write(ctx context.Context, id string, batch []store.UsageEvent, final bool) bool {
	n := len(batch)
	backoff := r.retryMin
	var firstFailure time.Time
	for attempt := 1; ; attempt++ {
		err := r.sink.RecordUsage(ctx, id, batch)
		if err == nil {
			r.settle(n, &r.written)
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
			r.log.Error("usage events not stored: giving up on batch",
				"events", n, "attempts", attempt, "err", err)
			r.settle(n, &r.failed)
			return true
		}
		r.log.Warn("usage batch write failed, will retry",
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

// settle moves n pending events to the counter c; n is a batch's length,
// never negative.
func (r *Recorder) settle(n int, c *atomic.Uint64) {
	c.Add(uint64(n)) //nolint:gosec // G115: n >= 0
	r.pending.Add(-int64(n))
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
	r.logDrops(false)
}

// logDrops reports the drops since the previous report, if there are any and,
// unless force is set, the previous report is at least dropLogEvery old.
func (r *Recorder) logDrops(force bool) {
	now := int64(r.clock.Now().Sub(r.epoch))
	if !force && now < r.nextDropLog.Load() {
		return
	}
	r.dropMu.Lock()
	defer r.dropMu.Unlock()
	if !force && now < r.nextDropLog.Load() {
		return // another goroutine reported meanwhile
	}
	total := r.dropped.Load()
	n := total - r.dropLogged
	if n == 0 {
		return
	}
	r.dropLogged = total
	r.nextDropLog.Store(now + int64(dropLogEvery))
	msg := "usage events dropped: queue full"
	if r.closed.Load() {
		msg = "usage events dropped: recorder stopped"
	}
	r.log.Warn(msg, "dropped", n, "total", total)
}
