package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tollgate/tollgate/internal/store"
)

// Request-log limits: ListRequests returns defaultRequestLimit entries when
// the filter does not say, and never more than maxRequestLimit.
const (
	defaultRequestLimit = 100
	maxRequestLimit     = 10000
)

// Pages of chunks ListRequests reads: the first page holds firstChunkPage
// chunks, each next one twice as many as the one before, up to maxChunkPage.
const (
	firstChunkPage = 4
	maxChunkPage   = 64
)

const (
	// chunkLock serializes the recordings of one batch ID, so that a batch
	// recorded twice at once is recorded once: the second finds the first's
	// chunks once the first commits.
	chunkLock   = `SELECT pg_advisory_xact_lock($1, hashtext($2))`
	chunkSeen   = `SELECT EXISTS (SELECT 1 FROM request_chunks WHERE batch_id = $1)`
	chunkInsert = `INSERT INTO request_chunks (batch_id, org_id, min_time, max_time, entries, events) VALUES ($1, $2, $3, $4, $5, $6)`
	// chunkSelect lists an organization's chunks newest first, by the
	// newest event each holds, a page at a time; conditions are added by
	// ListRequests, chunkOrder ends the query.
	chunkSelect = `SELECT id, max_time, events FROM request_chunks`
	chunkOrder  = ` ORDER BY max_time DESC, id DESC LIMIT `
	// chunkPurge deletes the chunks that ended before a time and counts
	// their entries.
	chunkPurge = `WITH purged AS (DELETE FROM request_chunks WHERE max_time < $1 RETURNING entries)
		SELECT coalesce(sum(entries), 0)::bigint FROM purged`
	// chunkStraddling locks the chunks that began before a time, for the
	// purge to rewrite them.
	chunkStraddling = `SELECT id, events FROM request_chunks WHERE min_time < $1 ORDER BY id FOR UPDATE`
	chunkRewrite    = `UPDATE request_chunks SET min_time = $1, entries = $2, events = $3 WHERE id = $4`

	// rollupAdd adds to the rollup rows given as parallel arrays, creating
	// the missing ones; RecordUsage sorts them, so that concurrent batches
	// lock the rows they share in the same order.
	rollupAdd = `INSERT INTO usage_rollups (granularity, bucket_start, org_id, app_id, credential_id, units, requests, errors)
		SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bigint[], $8::bigint[])
		ON CONFLICT (granularity, bucket_start, org_id, app_id, credential_id) DO UPDATE SET
			units = usage_rollups.units + excluded.units,
			requests = usage_rollups.requests + excluded.requests,
			errors = usage_rollups.errors + excluded.errors`
	rollupSeries = `SELECT bucket_start, sum(units)::bigint, sum(requests)::bigint, sum(errors)::bigint FROM usage_rollups
		WHERE org_id = $1 AND granularity = $2 AND bucket_start >= $3 AND bucket_start < $4`
	rollupGroup       = ` GROUP BY bucket_start ORDER BY bucket_start`
	rollupPurgeHourly = `DELETE FROM usage_rollups WHERE granularity = '` + store.GranularityHour + `' AND bucket_start < $1`
)

// granularities are the rollups every event of an organization is added to.
var granularities = []string{store.GranularityHour, store.GranularityDay, store.GranularityMonth}

// rollupKey is the key of one usage_rollups row; bucket is unix microseconds.
type rollupKey struct {
	granularity                string
	bucket                     int64
	orgID, appID, credentialID string
}

func (k rollupKey) compare(o rollupKey) int {
	return cmp.Or(
		strings.Compare(k.granularity, o.granularity),
		cmp.Compare(k.bucket, o.bucket),
		strings.Compare(k.orgID, o.orgID),
		strings.Compare(k.appID, o.appID),
		strings.Compare(k.credentialID, o.credentialID),
	)
}

// rollupSum is what a batch adds to one usage_rollups row.
type rollupSum struct{ units, requests, errors int64 }

// RecordUsage stores the events as one request-log chunk per organization
// and adds the events of an organization to their hourly, daily and monthly
// rollups, all in one transaction, unless batchID is recorded already. The
// additions are summed per rollup row in memory first, so that a batch writes
// each row once, in one statement. An event with a zero Time is recorded at
// the store clock's current time.
func (s *Store) RecordUsage(ctx context.Context, batchID string, events []store.UsageEvent) error {
	if batchID == "" {
		return errors.New("postgres: record usage: no batch ID")
	}
	if len(events) == 0 {
		return nil
	}
	chunks := make(map[string]*chunkWriter, 1)
	sums := make(map[rollupKey]rollupSum)
	for i := range events {
		e := &events[i]
		at := s.orNow(e.Time)
		c := newChunkEvent(e, at.UnixMicro())
		w := chunks[e.OrgID]
		if w == nil {
			w = &chunkWriter{buf: make([]byte, 0, 256*(len(events)-i))}
			chunks[e.OrgID] = w
		}
		w.add(&c)
		if e.OrgID == "" { // no rollup
			continue
		}
		add := rollupSum{units: e.Units, requests: 1}
		if e.Status >= 400 {
			add.errors = 1
		}
		for _, g := range granularities {
			k := rollupKey{g, store.BucketStart(g, at).UnixMicro(), e.OrgID, e.AppID, e.CredentialID}
			sum := sums[k]
			sums[k] = rollupSum{sum.units + add.units, sum.requests + add.requests, sum.errors + add.errors}
		}
	}
	orgs := slices.Sorted(maps.Keys(chunks))
	texts := make([]string, len(orgs))
	for i, org := range orgs {
		texts[i] = chunks[org].text()
	}
	rollups := newRollupArgs(sums)

	return s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, chunkLock, lockBatch, batchID); err != nil {
			return wrapErr(err, "lock usage batch "+quote(batchID))
		}
		var seen bool
		if err := tx.QueryRow(ctx, chunkSeen, batchID).Scan(&seen); err != nil {
			return wrapErr(err, "usage batch "+quote(batchID))
		}
		if seen {
			return nil
		}
		for i, org := range orgs {
			w := chunks[org]
			if _, err := tx.Exec(ctx, chunkInsert, batchID, org, w.minTime, w.maxTime, w.entries, texts[i]); err != nil {
				return wrapErr(err, "usage batch "+quote(batchID))
			}
		}
		if rollups == nil {
			return nil
		}
		_, err := tx.Exec(ctx, rollupAdd, rollups...)
		return wrapErr(err, "usage rollups")
	})
}

// newRollupArgs returns the arguments of rollupAdd for sums: its columns as
// arrays, in key order; nil when sums is empty.
func newRollupArgs(sums map[rollupKey]rollupSum) []any {
	if len(sums) == 0 {
		return nil
	}
	keys := slices.SortedFunc(maps.Keys(sums), rollupKey.compare)
	n := len(keys)
	gs, buckets := make([]string, n), make([]int64, n)
	orgs, apps, creds := make([]string, n), make([]string, n), make([]string, n)
	units, requests, errCounts := make([]int64, n), make([]int64, n), make([]int64, n)
	for i, k := range keys {
		v := sums[k]
		gs[i], buckets[i], orgs[i], apps[i], creds[i] = k.granularity, k.bucket, k.orgID, k.appID, k.credentialID
		units[i], requests[i], errCounts[i] = v.units, v.requests, v.errors
	}
	return []any{gs, buckets, orgs, apps, creds, units, requests, errCounts}
}

// UsageSeries sums the rollup rows of q's granularity whose bucket starts in
// [q.From, q.To), per bucket, oldest first. Only buckets with at least one
// request have a row, so every point returned is non-empty.
func (s *Store) UsageSeries(ctx context.Context, q store.UsageQuery) ([]store.UsagePoint, error) {
	switch q.Granularity {
	case store.GranularityHour, store.GranularityDay, store.GranularityMonth:
	default:
		return nil, fmt.Errorf("postgres: usage series: unknown granularity %q", q.Granularity)
	}
	query := rollupSeries
	args := []any{q.OrgID, q.Granularity, ceilMicros(q.From), ceilMicros(q.To)}
	if q.AppID != "" {
		args = append(args, q.AppID)
		query += fmt.Sprintf(` AND app_id = $%d`, len(args))
	}
	if q.CredentialID != "" {
		args = append(args, q.CredentialID)
		query += fmt.Sprintf(` AND credential_id = $%d`, len(args))
	}
	out, err := queryAll(ctx, s.pool, func(r rowScanner) (store.UsagePoint, error) {
		var p store.UsagePoint
		err := r.Scan(timeCol{&p.Start}, &p.Units, &p.Requests, &p.Errors)
		return p, err
	}, query+rollupGroup, args...)
	return out, wrapErr(err, "usage series of organization "+quote(q.OrgID))
}

// ListRequests lists request-log entries newest first (by time, then by ID),
// filtered by f. f.OrgID is matched as it is, so "" lists the requests of no
// organization. f.Limit defaults to 100 and is capped at 10000.
//
// It walks the organization's chunks from the one holding its newest event
// back, a page of chunks at a time (in one read-only snapshot), decoding
// each, and stops at the first chunk whose newest event is older than the
// last of a full page of entries.
func (s *Store) ListRequests(ctx context.Context, f store.RequestFilter) ([]store.UsageEvent, error) {
	limit := clampLimit(f.Limit, defaultRequestLimit, maxRequestLimit)
	sel := requestSelector{f: f}
	if !f.From.IsZero() {
		sel.from = ceilMicros(f.From)
	}
	// Entries before `before` (unix microseconds), or at it when the
	// cursor's ID says so.
	before, hasBefore := int64(0), false
	if !f.To.IsZero() {
		before, hasBefore = ceilMicros(f.To), true
	}
	if !f.AfterTime.IsZero() {
		after := ceilMicros(f.AfterTime)
		sel.cursor, sel.cursorExact = after, f.AfterTime.Nanosecond()%1000 == 0
		bound := after
		if sel.cursorExact {
			bound++ // entries at the cursor's time may follow it
		}
		if !hasBefore || bound < before {
			before, hasBefore = bound, true
		}
	}
	if hasBefore {
		sel.before, sel.hasBefore = before, true
	}
	// page returns the query of the page of up to size chunks after the
	// chunk (maxTime, id) in list order, or of the first page when first.
	page := func(first bool, maxTime, id int64, size int) (string, []any) {
		var w where
		w.add("org_id = ?", f.OrgID)
		if !f.From.IsZero() {
			w.add("max_time >= ?", sel.from)
		}
		if hasBefore {
			w.add("min_time < ?", before)
		}
		if !first {
			w.add("(max_time, id) < (?, ?)", maxTime, id)
		}
		return chunkSelect + w.String() + chunkOrder + w.param(size), w.args
	}

	what := "list requests of organization " + quote(f.OrgID)
	// The pages are read in one snapshot, as SQLite reads them in one
	// statement: a purge or a batch committed meanwhile is not half seen.
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, wrapErr(err, what)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	out := []store.UsageEvent{}
	var (
		decoded []chunkEvent
		sorted  bool // out is in list order, at most limit long
		last    chunkRow
	)
	for size, first := firstChunkPage, true; ; size, first = min(2*size, maxChunkPage), false {
		query, args := page(first, last.maxTime, last.id, size)
		chunks, err := queryAll(ctx, tx, scanChunkRow, query, args...)
		if err != nil {
			return nil, wrapErr(err, what)
		}
		for _, c := range chunks {
			if len(out) >= limit {
				if !sorted {
					out, sorted = trimRequests(out, limit), true
				}
				if c.maxTime < out[limit-1].Time.UnixMicro() {
					// This chunk and every later one hold older entries
					// only.
					return out, nil
				}
			}
			if decoded, err = decodeChunk(c.events, decoded); err != nil {
				return nil, wrapErr(err, what)
			}
			for i := range decoded {
				if sel.match(&decoded[i]) {
					out, sorted = append(out, decoded[i].event(f.OrgID)), false
				}
			}
		}
		if len(chunks) < size {
			return trimRequests(out, limit), nil
		}
		last = chunks[len(chunks)-1]
	}
}

// chunkRow is a request_chunks row as ListRequests reads it.
type chunkRow struct {
	id, maxTime int64
	events      []byte
}

func scanChunkRow(r rowScanner) (chunkRow, error) {
	var c chunkRow
	err := r.Scan(&c.id, &c.maxTime, &c.events)
	return c, err
}

// requestSelector holds a RequestFilter's conditions on one entry, with its
// times in unix microseconds.
type requestSelector struct {
	f           store.RequestFilter
	from        int64 // entries at or after, when f.From is set
	before      int64 // entries before, when hasBefore
	hasBefore   bool
	cursor      int64 // when f.AfterTime is set
	cursorExact bool  // the cursor's time is a stored microsecond
}

func (s *requestSelector) match(c *chunkEvent) bool {
	f := &s.f
	switch {
	case f.AppID != "" && c.AppID != f.AppID,
		f.CredentialID != "" && c.CredentialID != f.CredentialID,
		f.StatusMin != 0 && c.Status < f.StatusMin,
		f.StatusMax != 0 && c.Status > f.StatusMax,
		!f.From.IsZero() && c.Time < s.from,
		s.hasBefore && c.Time >= s.before:
		return false
	case f.AfterTime.IsZero():
		return true
	case s.cursorExact && c.Time == s.cursor:
		// As old as the cursor: after it when the ID is smaller.
		return c.ID < f.AfterID
	}
	return c.Time < s.cursor
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

// PurgeRequests deletes, in one transaction, the request-log entries older
// than before and the hourly rollups that started before hourlyBefore, and
// returns how many log entries it deleted. Chunks that ended before before go
// whole; chunks that began before it are locked and rewritten without their
// older entries.
func (s *Store) PurgeRequests(ctx context.Context, before, hourlyBefore time.Time) (int64, error) {
	var n int64
	horizon := ceilMicros(before)
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, chunkPurge, horizon).Scan(&n); err != nil {
			return wrapErr(err, "purge request log")
		}
		cut, err := cutChunks(ctx, tx, horizon)
		if err != nil {
			return wrapErr(err, "purge request log")
		}
		n += cut
		_, err = tx.Exec(ctx, rollupPurgeHourly, ceilMicros(hourlyBefore))
		return wrapErr(err, "purge hourly usage rollups")
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// cutChunks rewrites the chunks that began before horizon (and, once the
// chunks that ended before it are gone, end at or after it) without their
// entries before horizon, and returns how many entries it removed.
func cutChunks(ctx context.Context, tx pgx.Tx, horizon int64) (int64, error) {
	type straddling struct {
		id   int64
		data []byte
	}
	found, err := queryAll(ctx, tx, func(r rowScanner) (straddling, error) {
		var c straddling
		err := r.Scan(&c.id, &c.data)
		return c, err
	}, chunkStraddling, horizon)
	if err != nil {
		return 0, err
	}
	var removed int64
	var decoded []chunkEvent
	for _, c := range found {
		if decoded, err = decodeChunk(c.data, decoded); err != nil {
			return 0, err
		}
		var w chunkWriter
		for i := range decoded {
			if decoded[i].Time >= horizon {
				w.add(&decoded[i])
			} else {
				removed++
			}
		}
		if w.entries == 0 { // cannot happen: the chunk ends after horizon
			return 0, fmt.Errorf("chunk %d: nothing left after cutting", c.id)
		}
		if _, err := tx.Exec(ctx, chunkRewrite, w.minTime, w.entries, w.text(), c.id); err != nil {
			return 0, err
		}
	}
	return removed, nil
}

// clampLimit returns a list's limit: def when none is asked for, at most
// most.
func clampLimit(limit, def, most int) int {
	switch {
	case limit <= 0:
		return def
	case limit > most:
		return most
	}
	return limit
}

// ceilMicros returns the first unix microsecond not before t. A stored time
// (whole microseconds) m is >= t, or < t, exactly when m is >= or < than
// ceilMicros(t), so bounds given at any precision compare right.
func ceilMicros(t time.Time) int64 {
	us := t.UnixMicro()
	if t.Nanosecond()%1000 != 0 {
		us++
	}
	return us
}
