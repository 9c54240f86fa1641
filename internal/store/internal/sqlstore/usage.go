package sqlstore

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tollgate/tollgate/internal/store"
)

// Request-log limits: ListRequests returns DefaultRequestLimit entries when
// the filter does not say, and never more than MaxRequestLimit.
const (
	DefaultRequestLimit = 100
	MaxRequestLimit     = 10000
)

// Granularities are the rollups every event of an organization is added to.
var Granularities = []string{store.GranularityHour, store.GranularityDay, store.GranularityMonth}

// CheckGranularity refuses a granularity that has no rollups.
func CheckGranularity(g string) error {
	switch g {
	case store.GranularityHour, store.GranularityDay, store.GranularityMonth:
		return nil
	}
	return fmt.Errorf("usage series: unknown granularity %q", g)
}

// RollupKey is the key of one usage_rollups row; Bucket is unix
// microseconds.
type RollupKey struct {
	Granularity                string
	Bucket                     int64
	OrgID, AppID, CredentialID string
}

// Compare orders rollup keys field by field, strings bytewise.
func (k RollupKey) Compare(o RollupKey) int {
	return cmp.Or(
		strings.Compare(k.Granularity, o.Granularity),
		cmp.Compare(k.Bucket, o.Bucket),
		strings.Compare(k.OrgID, o.OrgID),
		strings.Compare(k.AppID, o.AppID),
		strings.Compare(k.CredentialID, o.CredentialID),
	)
}

// RollupSum is what a batch adds to one usage_rollups row. Omitted counts
// the requests of Requests that are not in the request log.
type RollupSum struct{ Units, Requests, Errors, Omitted int64 }

func (s RollupSum) add(o RollupSum) RollupSum {
	return RollupSum{s.Units + o.Units, s.Requests + o.Requests, s.Errors + o.Errors, s.Omitted + o.Omitted}
}

// ScanUsagePoint reads a row of a usage series: a bucket's start and its
// sums of units, requests, errors and requests omitted from the log.
func ScanUsagePoint(r RowScanner) (store.UsagePoint, error) {
	var p store.UsagePoint
	err := r.Scan(TimeCol(&p.Start), &p.Units, &p.Requests, &p.Errors, &p.Omitted)
	return p, err
}

// TotalsRollups sums the totals of requests left out of the request log
// (store.UsageTotal) into the rollup rows of their hour, day and month, all
// of them omitted. It refuses a total of no organization, or with a
// negative count.
func TotalsRollups(totals []store.UsageTotal) (map[RollupKey]RollupSum, error) {
	sums := make(map[RollupKey]RollupSum, 3*len(totals))
	for _, t := range totals {
		switch {
		case t.OrgID == "":
			return nil, fmt.Errorf("usage totals: a total of no organization (hour %s)", t.Hour.UTC().Format(time.RFC3339))
		case t.Requests < 0 || t.Errors < 0 || t.Units < 0:
			return nil, fmt.Errorf("usage totals of organization %q: negative count", t.OrgID)
		}
		add := RollupSum{Units: t.Units, Requests: t.Requests, Errors: t.Errors, Omitted: t.Requests}
		for _, g := range Granularities {
			k := RollupKey{g, store.BucketStart(g, t.Hour).UnixMicro(), t.OrgID, t.AppID, t.CredentialID}
			sums[k] = sums[k].add(add)
		}
	}
	return sums, nil
}

// UsageBatch is a batch of usage events as RecordUsage writes it: one
// request-log chunk per organization, and the additions to the rollup rows,
// summed per row in memory so that a batch writes each row once.
type UsageBatch struct {
	// Chunks are the request-log chunks, by organization ID ("" for the
	// events of no organization).
	Chunks map[string]*ChunkWriter
	// Rollups are the additions to the hourly, daily and monthly rollups
	// of the events of an organization (events of none have no rollup).
	Rollups map[RollupKey]RollupSum
}

// NewUsageBatch splits events into chunks and sums them into rollups. An
// event is recorded at at(e.Time): its time, or the store clock's current
// time when that is zero.
func NewUsageBatch(events []store.UsageEvent, at func(time.Time) time.Time) UsageBatch {
	b := UsageBatch{
		Chunks:  make(map[string]*ChunkWriter, 1),
		Rollups: make(map[RollupKey]RollupSum),
	}
	for i := range events {
		e := &events[i]
		t := at(e.Time)
		c := NewChunkEvent(e, t.UnixMicro())
		w := b.Chunks[e.OrgID]
		if w == nil {
			w = newChunkWriter(256 * (len(events) - i))
			b.Chunks[e.OrgID] = w
		}
		w.Add(&c)
		if e.OrgID == "" { // no rollup
			continue
		}
		add := RollupSum{Units: e.Units, Requests: 1}
		if e.Status >= 400 {
			add.Errors = 1
		}
		for _, g := range Granularities {
			k := RollupKey{g, store.BucketStart(g, t).UnixMicro(), e.OrgID, e.AppID, e.CredentialID}
			b.Rollups[k] = b.Rollups[k].add(add)
		}
	}
	return b
}

// RequestReader lists the request-log entries of a RequestFilter from the
// organization's chunks, read newest first (by the newest event each holds):
// it holds the filter's conditions, with its times in unix microseconds, and
// the entries found so far.
//
// The backend selects the organization's chunks that can hold a match (see
// From and Before), in order, gives each to Add until Done says the rest
// can hold nothing newer than what the list has, and returns Entries.
type RequestReader struct {
	f           store.RequestFilter
	limit       int
	from        int64 // entries at or after, when f.From is set
	before      int64 // entries before, when hasBefore
	hasBefore   bool
	cursor      int64 // when f.AfterTime is set
	cursorExact bool  // the cursor's time is a stored microsecond

	out     []store.UsageEvent
	decoded []ChunkEvent
	sorted  bool // out is in list order, at most limit long
}

// NewRequestReader returns a reader of the entries f asks for. f.Limit
// defaults to DefaultRequestLimit and is capped at MaxRequestLimit.
func NewRequestReader(f store.RequestFilter) *RequestReader {
	r := &RequestReader{f: f, limit: ClampLimit(f.Limit, DefaultRequestLimit, MaxRequestLimit), out: []store.UsageEvent{}}
	if !f.From.IsZero() {
		r.from = CeilMicros(f.From)
	}
	// Entries before `before` (unix microseconds), or at it when the
	// cursor's ID says so.
	before, hasBefore := int64(0), false
	if !f.To.IsZero() {
		before, hasBefore = CeilMicros(f.To), true
	}
	if !f.AfterTime.IsZero() {
		after := CeilMicros(f.AfterTime)
		r.cursor, r.cursorExact = after, f.AfterTime.Nanosecond()%1000 == 0
		bound := after
		if r.cursorExact {
			bound++ // entries at the cursor's time may follow it
		}
		if !hasBefore || bound < before {
			before, hasBefore = bound, true
		}
	}
	r.before, r.hasBefore = before, hasBefore
	return r
}

// From returns the time (unix microseconds) that the newest event of a
// chunk holding a match is at or after (max_time >= from), if there is one.
func (r *RequestReader) From() (int64, bool) { return r.from, !r.f.From.IsZero() }

// Before returns the time (unix microseconds) that the oldest event of a
// chunk holding a match is before (min_time < before), if there is one.
func (r *RequestReader) Before() (int64, bool) { return r.before, r.hasBefore }

// Done reports whether a chunk whose newest event is at maxTime, and every
// chunk after it in the order they are read, can be left unread: the list
// is full of entries newer than any they hold.
func (r *RequestReader) Done(maxTime int64) bool {
	if len(r.out) < r.limit {
		return false
	}
	if !r.sorted {
		r.out, r.sorted = trimRequests(r.out, r.limit), true
	}
	return maxTime < r.out[r.limit-1].Time.UnixMicro()
}

// Add decodes a chunk (its events column) and adds the entries that match.
func (r *RequestReader) Add(chunk []byte) error {
	var err error
	if r.decoded, err = DecodeChunk(chunk, r.decoded); err != nil {
		return err
	}
	for i := range r.decoded {
		if r.match(&r.decoded[i]) {
			r.out, r.sorted = append(r.out, r.decoded[i].Event(r.f.OrgID)), false
		}
	}
	return nil
}

// Entries returns the entries found, newest first (by time, then by ID), at
// most the limit; never nil.
func (r *RequestReader) Entries() []store.UsageEvent {
	if r.sorted {
		return r.out
	}
	return trimRequests(r.out, r.limit)
}

func (r *RequestReader) match(c *ChunkEvent) bool {
	f := &r.f
	switch {
	case f.AppID != "" && c.AppID != f.AppID,
		f.CredentialID != "" && c.CredentialID != f.CredentialID,
		f.StatusMin != 0 && c.Status < f.StatusMin,
		f.StatusMax != 0 && c.Status > f.StatusMax,
		!f.From.IsZero() && c.Time < r.from,
		r.hasBefore && c.Time >= r.before:
		return false
	case f.AfterTime.IsZero():
		return true
	case r.cursorExact && c.Time == r.cursor:
		// As old as the cursor: after it when the ID is smaller.
		return c.ID < f.AfterID
	}
	return c.Time < r.cursor
}

// trimRequests sorts entries in list order and keeps the first limit.
func trimRequests(out []store.UsageEvent, limit int) []store.UsageEvent {
	slices.SortFunc(out, func(a, b store.UsageEvent) int {
		if c := b.Time.Compare(a.Time); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	if len(out) > limit {
		clear(out[limit:])
		out = out[:limit]
	}
	return out
}
