package usage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/clock"
	"github.com/tollgate/tollgate/internal/store"
)

// deadline bounds every wait for something that must eventually happen.
// Tests never assert how soon.
const deadline = 10 * time.Second

// memSink stores batches in memory, of events and of totals. When fail is
// set it returns fail's result instead of storing; when block is set it
// waits on it (or ctx) first. entered receives a value, if there is room, at
// every call.
type memSink struct {
	mu       sync.Mutex
	events   []store.UsageEvent
	batches  []int
	totals   []store.UsageTotal
	attempts []string          // the batch ID of every call, in order
	stored   map[string]string // batch ID → the IDs of its events (or its totals), joined
	// changed is set when a stored batch ID came back with other events.
	changed bool
	// storeFirst makes fail's errors uncertain: the batch is stored before
	// fail is asked, so that a failed call may have stored it anyway.
	storeFirst bool

	calls   atomic.Int64
	fail    func(call int64, ctx context.Context) error
	block   chan struct{}
	entered chan struct{}
}

func (s *memSink) RecordUsage(ctx context.Context, batchID string, events []store.UsageEvent) error {
	if err := s.enter(ctx, batchID, func() { s.store(batchID, events) }); err != nil {
		return err
	}
	s.store(batchID, events)
	return nil
}

func (s *memSink) RecordUsageTotals(ctx context.Context, batchID string, totals []store.UsageTotal) error {
	if err := s.enter(ctx, batchID, func() { s.storeTotals(batchID, totals) }); err != nil {
		return err
	}
	s.storeTotals(batchID, totals)
	return nil
}

// enter runs the hooks of a call: entered, block, storeFirst (storing with
// store) and fail.
func (s *memSink) enter(ctx context.Context, batchID string, store func()) error {
	call := s.calls.Add(1)
	s.mu.Lock()
	s.attempts = append(s.attempts, batchID)
	s.mu.Unlock()
	if s.entered != nil {
		select {
		case s.entered <- struct{}{}:
		default:
		}
	}
	if s.block != nil {
		select {
		case <-s.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if s.storeFirst {
		store()
	}
	if s.fail != nil {
		return s.fail(call, ctx)
	}
	return nil
}

// storeTotals keeps totals under batchID unless that batch is stored
// already, as store.Store does.
func (s *memSink) storeTotals(batchID string, totals []store.UsageTotal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := fmt.Sprint(totals)
	if prev, ok := s.stored[batchID]; ok {
		s.changed = s.changed || prev != key
		return
	}
	if s.stored == nil {
		s.stored = make(map[string]string)
	}
	s.stored[batchID] = key
	s.totals = append(s.totals, totals...)
}

// sums returns the stored totals summed, and the events stored summed in the
// same way.
func (s *memSink) sums() (totals, logged store.UsageTotal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.totals {
		totals.Requests += t.Requests
		totals.Errors += t.Errors
		totals.Units += t.Units
	}
	for _, e := range s.events {
		logged.Requests++
		logged.Units += e.Units
		if e.Status >= 400 {
			logged.Errors++
		}
	}
	return totals, logged
}

// store keeps events under batchID unless that batch is stored already, as
// store.Store does.
func (s *memSink) store(batchID string, events []store.UsageEvent) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids strings.Builder
	for _, e := range events {
		ids.WriteString(e.ID + " ")
	}
	if prev, ok := s.stored[batchID]; ok {
		s.changed = s.changed || prev != ids.String()
		return
	}
	if s.stored == nil {
		s.stored = make(map[string]string)
	}
	s.stored[batchID] = ids.String()
	s.events = append(s.events, events...) // copies: the Recorder reuses the slice
	s.batches = append(s.batches, len(events))
}

func (s *memSink) snapshot() (events []store.UsageEvent, batches []int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]store.UsageEvent(nil), s.events...), append([]int(nil), s.batches...)
}

// logBuffer collects log output; safe for concurrent use.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) lines() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := strings.TrimSpace(b.buf.String())
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func (b *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
}

func event(i int) store.UsageEvent {
	return store.UsageEvent{
		ID:     fmt.Sprintf("req_%06d", i),
		Time:   time.Date(2026, 1, 2, 3, 4, 5, i, time.UTC),
		OrgID:  "org_1",
		Method: "GET",
		Path:   "/v1/secret-path",
		Status: 200,
		Units:  1,
	}
}

// start runs r in a goroutine. The returned stop cancels Run's context and
// waits for Run to return; it is also registered as a cleanup.
func start(t *testing.T, r *Recorder) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Run(ctx)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(deadline):
				t.Errorf("Run did not return within %v of cancellation", deadline)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(deadline)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// checkTotals asserts that every recorded event is accounted for exactly
// once.
func checkTotals(t *testing.T, r *Recorder, recorded int) {
	t.Helper()
	w, f, d, q := r.Written(), r.Failed(), r.Dropped(), r.Depth()
	if w+f+d+uint64(q) != uint64(recorded) {
		t.Errorf("written %d + failed %d + dropped %d + depth %d != recorded %d", w, f, d, q, recorded)
	}
}

func TestInOrderExactlyOnce(t *testing.T) {
	sink := &memSink{}
	r := New(sink, Options{BatchSize: 7, FlushInterval: time.Millisecond})
	stop := start(t, r)
	const n = 1000
	for i := range n {
		if !r.Record(event(i)) {
			t.Fatalf("Record(%d) = false with a large queue", i)
		}
	}
	waitFor(t, "all events written", func() bool { return r.Written() == n })
	stop()

	got, _ := sink.snapshot()
	if len(got) != n {
		t.Fatalf("sink has %d events, want %d", len(got), n)
	}
	for i, e := range got {
		if want := event(i); e != want {
			t.Fatalf("event %d = %+v, want %+v", i, e, want)
		}
	}
	if r.Dropped() != 0 || r.Failed() != 0 || r.Depth() != 0 {
		t.Errorf("dropped %d, failed %d, depth %d; want 0, 0, 0", r.Dropped(), r.Failed(), r.Depth())
	}
}

func TestBatchSize(t *testing.T) {
	sink := &memSink{}
	// FlushInterval is long, so only full batches are written before
	// shutdown; the rest goes in the final flush.
	r := New(sink, Options{BatchSize: 10, FlushInterval: time.Hour})
	const n = 95
	for i := range n { // queued before Run starts
		r.Record(event(i))
	}
	stop := start(t, r)
	waitFor(t, "nine full batches", func() bool { return r.Written() == 90 })
	if d := r.Depth(); d != 5 {
		t.Errorf("Depth() = %d with 5 events waiting for the interval, want 5", d)
	}
	stop()

	_, batches := sink.snapshot()
	want := []int{10, 10, 10, 10, 10, 10, 10, 10, 10, 5}
	if fmt.Sprint(batches) != fmt.Sprint(want) {
		t.Errorf("batch sizes = %v, want %v", batches, want)
	}
	checkTotals(t, r, n)
}

func TestFlushInterval(t *testing.T) {
	sink := &memSink{}
	r := New(sink, Options{BatchSize: 1000, FlushInterval: 5 * time.Millisecond})
	start(t, r)
	for i := range 3 {
		r.Record(event(i))
	}
	// Far fewer than BatchSize: only the interval can flush them.
	waitFor(t, "a partial batch flushed by the interval", func() bool { return r.Written() == 3 })
	r.Record(event(3))
	waitFor(t, "a second partial batch", func() bool { return r.Written() == 4 })
	if _, b := sink.snapshot(); len(b) < 2 {
		t.Errorf("batches = %v, want at least two", b)
	}
}

// Above half the queue the request log keeps every error and WebSocket
// session and one other event in SampleEvery; when the queue is full it
// keeps nothing more. Every event left out is in the totals, which are
// written, so that the events written and the totals add up to every unit,
// request and error recorded; the omissions are counted and logged.
func TestOverloadSamplesTheLogAndKeepsTheTotals(t *testing.T) {
	sink := &memSink{block: make(chan struct{}), entered: make(chan struct{}, 1)}
	var logs logBuffer
	clk := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	r := New(sink, Options{Buffer: 8, BatchSize: 1, FlushInterval: time.Hour, Logger: logs.logger(), Clock: clk})
	stop := start(t, r)

	// The first event is taken by Run, which then blocks in the sink.
	r.Record(event(0))
	select {
	case <-sink.entered:
	case <-time.After(deadline):
		t.Fatal("sink never called")
	}
	var want store.UsageTotal // what was recorded, summed
	want.Requests, want.Units = 1, 1
	record := func(i, status int, ws bool, queued bool) {
		t.Helper()
		e := event(i)
		e.Status, e.WebSocket, e.Units = status, ws, int64(i)
		want.Requests++
		want.Units += e.Units
		if status >= 400 {
			want.Errors++
		}
		if got := r.Record(e); got != queued {
			t.Fatalf("Record(%d, status %d, websocket %v) = %v, want %v (queue %d of 8)", i, status, ws, got, queued, len(r.queue))
		}
	}
	// Below half the queue, everything is queued.
	for i := 1; i <= 4; i++ {
		record(i, 200, false, true)
	}
	// Above half: errors and sessions, and one success in SampleEvery.
	record(5, 404, false, true)
	record(6, 101, true, true)
	for i := 7; i < 7+SampleEvery-1; i++ {
		record(i, 200, false, false)
	}
	record(7+SampleEvery-1, 200, false, true) // the tenth success
	record(50, 503, false, true)              // an error fills the queue
	if len(r.queue) != 8 {
		t.Fatalf("queue %d, want full", len(r.queue))
	}
	// Full: nothing more, not even an error.
	record(100, 500, false, false)
	record(101, 200, false, false)
	record(102, 101, true, false)
	omitted := uint64(SampleEvery - 1 + 3)
	if r.Omitted() != omitted || r.Dropped() != 0 {
		t.Fatalf("Omitted() = %d, Dropped() = %d; want %d, 0", r.Omitted(), r.Dropped(), omitted)
	}
	if d := r.Depth(); d != int(want.Requests) {
		t.Errorf("Depth() = %d, want %d: 8 queued, 1 being written, the rest in the totals", d, want.Requests)
	}
	// The first omission is reported at once, the next ones wait for the
	// window.
	wantLine := `level=WARN msg="request log sampled under overload: usage events left out of it; their units, requests and errors are in the rollups" omitted=1 total=1`
	if got := logs.lines(); len(got) != 1 || got[0] != wantLine {
		t.Fatalf("logs = %q, want %q", got, wantLine)
	}
	clk.Advance(reportEvery)
	record(103, 200, false, false)
	if got := logs.lines(); len(got) != 2 || !strings.HasSuffix(got[1], fmt.Sprintf("omitted=%d total=%d", omitted, omitted+1)) {
		t.Fatalf("logs = %q, want a second report of %d", got, omitted)
	}

	close(sink.block)
	waitFor(t, "the queued events written", func() bool { return r.Written() >= 9 })
	stop()
	totals, logged := sink.sums()
	if logged.Requests != 9 {
		t.Errorf("%d events in the request log, want 9", logged.Requests)
	}
	sum := store.UsageTotal{Requests: totals.Requests + logged.Requests, Errors: totals.Errors + logged.Errors, Units: totals.Units + logged.Units}
	if sum != want {
		t.Errorf("log %+v + totals %+v = %+v, want every event recorded: %+v", logged, totals, sum, want)
	}
	if totals.Requests != int64(r.Omitted()) || r.Written() != uint64(want.Requests) {
		t.Errorf("totals of %d requests, Omitted() %d, Written() %d of %d", totals.Requests, r.Omitted(), r.Written(), want.Requests)
	}
	checkTotals(t, r, int(want.Requests))
	if sink.changed {
		t.Error("a batch ID was stored twice with other contents")
	}
}

// The totals are summed per organization, app, credential and hour (UTC),
// an event without a time at the hour of the Recorder's clock; an event of
// no organization, which has no rollups, is dropped and counted.
func TestOmittedTotalsByKeyAndHour(t *testing.T) {
	sink := &memSink{}
	clk := clock.NewFake(time.Date(2026, 3, 4, 5, 59, 0, 0, time.FixedZone("UTC+1", 3600)))
	var logs logBuffer
	r := New(sink, Options{Buffer: 1, Clock: clk, Logger: logs.logger()})
	r.Record(event(0)) // fills the queue: the rest is omitted (Buffer 1)
	ev := func(org, app, cred string, at time.Time, units int64, status int) store.UsageEvent {
		return store.UsageEvent{ID: "req_x", Time: at, OrgID: org, AppID: app, CredentialID: cred, Status: status, Units: units}
	}
	h := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	for _, e := range []store.UsageEvent{
		ev("org_1", "app_1", "key_1", h.Add(time.Minute), 1, 200),
		ev("org_1", "app_1", "key_1", h.Add(59*time.Minute), 2, 500),
		ev("org_1", "app_1", "key_1", h.Add(time.Hour), 4, 200),                                        // the next hour
		ev("org_1", "app_1", "key_2", h.Add(time.Minute).In(time.FixedZone("UTC-3", -3*3600)), 8, 200), // same hour, other zone
		ev("org_1", "", "key_1", h, 16, 200),
		ev("org_2", "app_1", "key_1", h, 32, 429),
		ev("org_1", "app_1", "key_1", time.Time{}, 64, 200), // at the clock's hour: 04:00 UTC
		ev("", "", "", h, 0, 401),                           // no organization
	} {
		if r.Record(e) {
			t.Fatalf("Record(%+v) queued with a full queue", e)
		}
	}
	if r.Omitted() != 8 || r.Dropped() != 1 {
		t.Fatalf("Omitted() %d, Dropped() %d; want 8, 1", r.Omitted(), r.Dropped())
	}
	stop := start(t, r)
	stop()
	got := slices.Clone(sink.totals)
	key := func(t store.UsageTotal) string {
		return fmt.Sprint(t.Hour.Unix(), " ", t.OrgID, " ", t.AppID, " ", t.CredentialID)
	}
	slices.SortFunc(got, func(a, b store.UsageTotal) int { return strings.Compare(key(a), key(b)) })
	want := []store.UsageTotal{
		{Hour: h.Add(-6 * time.Hour), OrgID: "org_1", AppID: "app_1", CredentialID: "key_1", Requests: 1, Units: 64},
		{Hour: h, OrgID: "org_1", AppID: "", CredentialID: "key_1", Requests: 1, Units: 16},
		{Hour: h, OrgID: "org_1", AppID: "app_1", CredentialID: "key_1", Requests: 2, Errors: 1, Units: 3},
		{Hour: h, OrgID: "org_1", AppID: "app_1", CredentialID: "key_2", Requests: 1, Units: 8},
		{Hour: h, OrgID: "org_2", AppID: "app_1", CredentialID: "key_1", Requests: 1, Errors: 1, Units: 32},
		{Hour: h.Add(time.Hour), OrgID: "org_1", AppID: "app_1", CredentialID: "key_1", Requests: 1, Units: 4},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("totals:\n got %v\nwant %v", got, want)
	}
	checkTotals(t, r, 9)
	all := strings.Join(logs.lines(), "\n")
	if !strings.Contains(all, `msg="usage events dropped: of no organization, left out of the sampled request log" dropped=1 total=1`) {
		t.Errorf("no drop report:\n%s", all)
	}
}

// Drops and omissions inside the window are reported by Run's ticker once
// the window has passed, even if no further one comes.
func TestReportsWhenDropsAndOmissionsStop(t *testing.T) {
	var logs logBuffer
	clk := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	r := New(&memSink{}, Options{Buffer: 1, BatchSize: 2, FlushInterval: time.Millisecond, Logger: logs.logger(), Clock: clk})
	anon := func(i int) store.UsageEvent { e := event(i); e.OrgID = ""; return e }
	r.Record(event(0))
	r.Record(anon(1))  // omitted and dropped, both reported at once
	r.Record(anon(2))  // inside both windows
	r.Record(event(3)) // omitted, inside the window
	if len(logs.lines()) != 2 {
		t.Fatalf("logs = %q, want two lines", logs.lines())
	}
	clk.Advance(reportEvery)
	start(t, r)
	waitFor(t, "the second reports", func() bool { return len(logs.lines()) == 4 })
	all := strings.Join(logs.lines()[2:], "\n")
	for _, want := range []string{"dropped=1 total=2", "omitted=2 total=3"} {
		if !strings.Contains(all, want) {
			t.Errorf("second reports %q, want one ending in %q", all, want)
		}
	}
}

// A batch of totals whose write is cut short by shutdown gets a final
// attempt under its ID, as it was: its failed attempts may have stored it.
func TestTotalsRetriedUnderTheirID(t *testing.T) {
	var cancelled atomic.Bool
	failed := make(chan struct{}, 1)
	sink := &memSink{
		storeFirst: true, // every failure is uncertain: the batch was stored
		fail: func(_ int64, ctx context.Context) error {
			if !cancelled.Load() {
				select {
				case failed <- struct{}{}:
				default:
				}
				return errors.New("store down")
			}
			return nil
		},
	}
	r := New(sink, Options{Buffer: 1, BatchSize: 100, FlushInterval: time.Millisecond})
	r.retryMin = time.Hour // the backoff only ends by shutdown
	r.Record(event(0))
	for i := 1; i <= 5; i++ {
		if r.Record(event(i)) {
			t.Fatal("queued with a full queue")
		}
	}
	stop := start(t, r)
	select {
	case <-failed:
	case <-time.After(deadline):
		t.Fatal("sink never called")
	}
	cancelled.Store(true)
	stop()
	totals, logged := sink.sums()
	if totals.Requests != 5 || logged.Requests != 1 || r.Written() != 6 || r.Failed() != 0 {
		t.Errorf("totals of %d, %d logged, written %d, failed %d; want 5, 1, 6, 0", totals.Requests, logged.Requests, r.Written(), r.Failed())
	}
	if sink.changed {
		t.Error("a batch ID was retried with other contents")
	}
	checkTotals(t, r, 6)
}

func TestSinkErrorRetried(t *testing.T) {
	errDown := errors.New("store down")
	sink := &memSink{fail: func(call int64, _ context.Context) error {
		if call <= 3 {
			return errDown
		}
		return nil
	}}
	var logs logBuffer
	r := New(sink, Options{BatchSize: 100, FlushInterval: time.Millisecond, Logger: logs.logger()})
	r.retryMin, r.retryMax = time.Millisecond, 2*time.Millisecond
	for i := range 5 { // queued before Run, so that they make one batch
		r.Record(event(i))
	}
	start(t, r)
	waitFor(t, "the batch written after retries", func() bool { return r.Written() == 5 })
	if got := sink.calls.Load(); got != 4 {
		t.Errorf("sink called %d times, want 4 (3 failures, 1 success)", got)
	}
	sink.mu.Lock()
	if a := sink.attempts; len(a) != 4 || a[0] != a[3] || a[1] != a[0] || a[2] != a[0] || !strings.HasPrefix(a[0], "batch_") {
		t.Errorf("batch IDs of the attempts %q, want one ID, the same each time", a)
	}
	sink.mu.Unlock()
	if r.Failed() != 0 {
		t.Errorf("Failed() = %d, want 0", r.Failed())
	}
	if got := strings.Count(strings.Join(logs.lines(), "\n"), "will retry"); got != 3 {
		t.Errorf("%d retry log lines, want 3:\n%s", got, strings.Join(logs.lines(), "\n"))
	}
}

func TestSinkErrorGivenUp(t *testing.T) {
	sink := &memSink{fail: func(int64, context.Context) error { return errors.New("store down") }}
	var logs logBuffer
	r := New(sink, Options{BatchSize: 100, FlushInterval: time.Millisecond, Logger: logs.logger()})
	r.retryMin, r.retryMax, r.retryAttempts = time.Millisecond, time.Millisecond, 3
	for i := range 5 { // queued before Run, so that they make one batch
		r.Record(event(i))
	}
	start(t, r)
	waitFor(t, "the batch given up", func() bool { return r.Failed() == 5 })
	checkTotals(t, r, 5)
	all := strings.Join(logs.lines(), "\n")
	if !strings.Contains(all, `msg="usage events not stored: giving up on batch" events=5 attempts=3`) {
		t.Errorf("no give-up line with the batch size:\n%s", all)
	}
	for _, secret := range []string{"req_", "secret-path", "org_1"} {
		if strings.Contains(all, secret) {
			t.Errorf("logs contain event contents %q:\n%s", secret, all)
		}
	}
	// The Recorder goes on with later batches.
	sink.fail = nil // safe: no write is in progress, Run waits for events
	r.Record(event(5))
	waitFor(t, "a later batch written", func() bool { return r.Written() == 1 })
}

func TestShutdownDrains(t *testing.T) {
	sink := &memSink{}
	r := New(sink, Options{Buffer: 10000, BatchSize: 100, FlushInterval: time.Hour})
	const n = 5000
	for i := range n {
		r.Record(event(i))
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel() // Run starts already cancelled: everything goes in the final flush
	r.Run(ctx)

	if r.Written() != n || r.Depth() != 0 {
		t.Fatalf("after Run: written %d, depth %d; want %d, 0", r.Written(), r.Depth(), n)
	}
	got, batches := sink.snapshot()
	for i, e := range got {
		if e.ID != event(i).ID {
			t.Fatalf("event %d is %s, want %s", i, e.ID, event(i).ID)
		}
	}
	for _, b := range batches {
		if b > 100 {
			t.Errorf("final flush wrote a batch of %d, more than BatchSize", b)
		}
	}

	// After Run: Record drops and counts, never panics or strands events.
	if r.Record(event(n)) {
		t.Error("Record after Run returned true")
	}
	if r.Dropped() != 1 || r.Depth() != 0 {
		t.Errorf("after a late Record: dropped %d, depth %d; want 1, 0", r.Dropped(), r.Depth())
	}
	checkTotals(t, r, n+1)
}

func TestShutdownDuringRetry(t *testing.T) {
	// A batch whose retries are cut short by shutdown gets a final attempt,
	// with a context that is not cancelled, under its ID and as it was: its
	// failed attempts may have stored it (uncertain failures). Events queued
	// meanwhile go in batches of their own.
	var cancelled atomic.Bool
	failed := make(chan struct{}, 1)
	sink := &memSink{
		storeFirst: true,
		fail: func(_ int64, ctx context.Context) error {
			if !cancelled.Load() {
				select {
				case failed <- struct{}{}:
				default:
				}
				return errors.New("store down")
			}
			if ctx.Err() != nil {
				return fmt.Errorf("final flush got a done context: %w", ctx.Err())
			}
			return nil
		},
	}
	r := New(sink, Options{BatchSize: 100, FlushInterval: time.Millisecond})
	r.retryMin = time.Hour // the backoff only ends by shutdown
	for i := range 5 {
		r.Record(event(i))
	}
	stop := start(t, r)
	select {
	case <-failed:
	case <-time.After(deadline):
		t.Fatal("sink never called")
	}
	for i := 5; i < 8; i++ {
		r.Record(event(i))
	}
	cancelled.Store(true)
	stop()
	if r.Written() != 8 || r.Failed() != 0 {
		t.Errorf("written %d, failed %d; want 8, 0", r.Written(), r.Failed())
	}
	got, batches := sink.snapshot()
	if len(got) != 8 || !slices.Equal(batches, []int{5, 3}) {
		t.Errorf("stored %d events in batches %v, want 8 in [5 3]", len(got), batches)
	}
	for i, e := range got {
		if e.ID != event(i).ID {
			t.Errorf("event %d is %s, want %s", i, e.ID, event(i).ID)
		}
	}
	if sink.changed {
		t.Error("a batch ID was retried with other events")
	}
}

func TestFinalFlushTimeout(t *testing.T) {
	// A sink that never returns on its own: the final flush gives up after
	// its timeout and counts everything left as failed.
	sink := &memSink{block: make(chan struct{}), entered: make(chan struct{}, 1)}
	var logs logBuffer
	r := New(sink, Options{Buffer: 100, BatchSize: 2, FlushInterval: time.Hour, Logger: logs.logger()})
	r.finalTimeout = 20 * time.Millisecond
	for i := range 7 {
		r.Record(event(i))
	}
	stop := start(t, r)
	select {
	case <-sink.entered:
	case <-time.After(deadline):
		t.Fatal("sink never called")
	}
	stop()
	if r.Failed() != 7 || r.Written() != 0 {
		t.Errorf("failed %d, written %d; want 7, 0", r.Failed(), r.Written())
	}
	checkTotals(t, r, 7)
	if all := strings.Join(logs.lines(), "\n"); !strings.Contains(all, "final flush timed out") {
		t.Errorf("no timeout line:\n%s", all)
	}
}

func TestConcurrentRecord(t *testing.T) {
	sink := &memSink{}
	// A small queue, so that the log is sampled while Run writes.
	r := New(sink, Options{Buffer: 256, BatchSize: 50, FlushInterval: time.Millisecond})
	stop := start(t, r)

	const goroutines, each = 16, 2000
	var accepted atomic.Uint64
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				e := event(g*each + i)
				e.AppID = fmt.Sprint(g)
				e.Units = int64(i)
				if r.Record(e) {
					accepted.Add(1)
				}
			}
		})
	}
	wg.Wait()
	stop()

	totals, logged := sink.sums()
	if uint64(logged.Requests) != accepted.Load() || uint64(totals.Requests) != r.Omitted() {
		t.Errorf("%d logged, %d queued; totals of %d, %d omitted", logged.Requests, accepted.Load(), totals.Requests, r.Omitted())
	}
	// Every unit is written, logged or in the totals.
	var units int64
	for i := range int64(each) {
		units += i
	}
	if logged.Units+totals.Units != goroutines*units || r.Written() != goroutines*each || r.Dropped() != 0 {
		t.Errorf("units %d logged + %d in totals, want %d; written %d, dropped %d", logged.Units, totals.Units, goroutines*units, r.Written(), r.Dropped())
	}
	checkTotals(t, r, goroutines*each)

	got, _ := sink.snapshot()
	seen := make(map[string]bool, len(got))
	last := make(map[string]int64)
	for _, e := range got {
		if seen[e.ID] {
			t.Fatalf("event %s written twice", e.ID)
		}
		seen[e.ID] = true
		// Each goroutine's events arrive in the order it recorded them.
		if prev, ok := last[e.AppID]; ok && e.Units <= prev {
			t.Fatalf("goroutine %s: event %d written after %d", e.AppID, e.Units, prev)
		}
		last[e.AppID] = e.Units
	}
	t.Logf("recorded %d, written %d (%d with a request-log entry), omitted %d", goroutines*each, r.Written(), logged.Requests, r.Omitted())
}

func TestRecordRacingShutdown(t *testing.T) {
	// Records that race with the end of Run are written or counted as
	// dropped; none is left in the queue.
	for range 20 {
		sink := &memSink{}
		r := New(sink, Options{Buffer: 64, BatchSize: 8, FlushInterval: time.Millisecond})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { defer close(done); r.Run(ctx) }()

		var recorded atomic.Int64
		var wg sync.WaitGroup
		for g := range 2 {
			wg.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-done:
						return
					default:
					}
					r.Record(event(g*1_000_000 + i))
					recorded.Add(1)
				}
			})
		}
		time.Sleep(time.Millisecond)
		cancel()
		<-done
		wg.Wait()
		if r.Depth() != 0 {
			t.Fatalf("Depth() = %d after Run returned and Records stopped", r.Depth())
		}
		checkTotals(t, r, int(recorded.Load()))
	}
}

func TestRunTwicePanics(t *testing.T) {
	r := New(&memSink{}, Options{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	r.Run(ctx)
	defer func() {
		if recover() == nil {
			t.Error("second Run did not panic")
		}
	}()
	r.Run(ctx)
}

func TestDefaults(t *testing.T) {
	r := New(&memSink{}, Options{Buffer: -1})
	if cap(r.queue) != DefaultBuffer || r.batchSize != DefaultBatchSize || r.flushInterval != DefaultFlushInterval {
		t.Errorf("defaults: buffer %d, batch %d, interval %v", cap(r.queue), r.batchSize, r.flushInterval)
	}
	r.Record(event(0)) // the default logger and clock work
}

// discardSink accepts everything at once.
type discardSink struct{}

func (discardSink) RecordUsage(context.Context, string, []store.UsageEvent) error { return nil }

func (discardSink) RecordUsageTotals(context.Context, string, []store.UsageTotal) error { return nil }

// BenchmarkRecord measures Record from parallel goroutines while Run writes
// to a sink that costs nothing, so the queue rarely fills.
func BenchmarkRecord(b *testing.B) {
	r := New(discardSink{}, Options{})
	ctx, cancel := context.WithCancel(b.Context())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	e := event(1)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r.Record(e)
		}
	})
	b.StopTimer()
	cancel()
	<-done
	b.ReportMetric(float64(r.Omitted())/float64(b.N), "omitted/op")
}

// BenchmarkRecordQueued measures Record when the queue has room, without a
// writer competing for the CPU: the cost the request path pays in normal
// operation.
func BenchmarkRecordQueued(b *testing.B) {
	r := New(discardSink{}, Options{})
	e := event(1)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if n == r.sampleFrom { // from there on the log would be sampled
			b.StopTimer()
			for range n {
				<-r.queue
			}
			n = 0
			b.StartTimer()
		}
		if !r.Record(e) {
			b.Fatal("not queued")
		}
		n++
	}
}

// BenchmarkRecordOmitted measures Record from parallel goroutines when the
// queue is full and every event is left out of the request log, added to the
// totals.
func BenchmarkRecordOmitted(b *testing.B) {
	r := New(discardSink{}, Options{Buffer: 1})
	e := event(1)
	r.Record(e)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r.Record(e)
		}
	})
}

// A store down for longer than a few attempts (a PostgreSQL restart) loses
// nothing: the batch is retried until RetryFor has passed on the clock.
func TestSinkDownForLongRetriedUntilRetryFor(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	sink := &memSink{fail: func(call int64, _ context.Context) error {
		if call <= 40 {
			clk.Advance(5 * time.Second) // 200 s of outage, under RetryFor
			return errors.New("store down")
		}
		return nil
	}}
	r := New(sink, Options{BatchSize: 100, FlushInterval: time.Millisecond, Clock: clk, RetryFor: 5 * time.Minute})
	r.retryMin, r.retryMax = time.Millisecond, time.Millisecond
	for i := range 5 {
		r.Record(event(i))
	}
	start(t, r)
	waitFor(t, "the batch written after a long outage", func() bool { return r.Written() == 5 })
	if r.Failed() != 0 {
		t.Errorf("Failed() = %d, want 0", r.Failed())
	}

	// Past RetryFor, the batch is given up and counted.
	sink2 := &memSink{fail: func(int64, context.Context) error { clk.Advance(time.Minute); return errors.New("down") }}
	r2 := New(sink2, Options{BatchSize: 100, FlushInterval: time.Millisecond, Clock: clk, RetryFor: 5 * time.Minute})
	r2.retryMin, r2.retryMax = time.Millisecond, time.Millisecond
	r2.Record(event(0))
	start(t, r2)
	waitFor(t, "the batch given up after RetryFor", func() bool { return r2.Failed() == 1 })
	if got := sink2.calls.Load(); got != 6 {
		t.Errorf("%d attempts, want 6 (first failure, then 5 more minutes)", got)
	}
}
