package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tollgate/tollgate/internal/store"
)

// Request-log limits: ListRequests returns defaultRequestLimit entries when
// the filter does not say, and never more than maxRequestLimit.
const (
	defaultRequestLimit = 100
	maxRequestLimit     = 10000
)

const (
	chunkSeen   = `SELECT EXISTS (SELECT 1 FROM request_chunks WHERE batch_id = ?)`
	chunkInsert = `INSERT INTO request_chunks (batch_id, org_id, min_time, max_time, entries, events) VALUES (?, ?, ?, ?, ?, ?)`
	// chunkSelect lists an organization's chunks newest first, by the
	// newest event each holds; conditions are added before chunkOrder.
	chunkSelect     = `SELECT max_time, events FROM request_chunks WHERE org_id = ?`
	chunkOrder      = ` ORDER BY max_time DESC`
	chunkPurgeCount = `SELECT ifnull(sum(entries), 0) FROM request_chunks WHERE max_time < ?`
	chunkPurge      = `DELETE FROM request_chunks WHERE max_time < ?`
	chunkStraddling = `SELECT id, events FROM request_chunks WHERE min_time < ?`
	chunkRewrite    = `UPDATE request_chunks SET min_time = ?, entries = ?, events = ? WHERE id = ?`

	rollupAdd = `INSERT INTO usage_rollups (granularity, bucket_start, org_id, app_id, credential_id, units, requests, errors)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (granularity, bucket_start, org_id, app_id, credential_id) DO UPDATE SET
			units = units + excluded.units,
			requests = requests + excluded.requests,
			errors = errors + excluded.errors`
	rollupSeries = `SELECT bucket_start, SUM(units), SUM(requests), SUM(errors) FROM usage_rollups
		WHERE org_id = ? AND granularity = ? AND bucket_start >= ? AND bucket_start < ?`
	rollupGroup       = ` GROUP BY bucket_start ORDER BY bucket_start`
	rollupPurgeHourly = `DELETE FROM usage_rollups WHERE granularity = '` + store.GranularityHour + `' AND bucket_start < ?`
)

// granularities are the rollups every event of an organization is added to.
var granularities = []string{store.GranularityHour, store.GranularityDay, store.GranularityMonth}

// rollupKey is the key of one usage_rollups row; bucket is unix microseconds.
type rollupKey struct {
	granularity                string
	bucket                     int64
	orgID, appID, credentialID string
}

// rollupSum is what a batch adds to one usage_rollups row.
type rollupSum struct{ units, requests, errors int64 }

// RecordUsage stores the events as one request-log chunk per organization
// and adds the events of an organization to their hourly, daily and monthly
// rollups, all in one transaction, unless batchID is recorded already. The
// additions are summed per rollup row in memory first, so that a batch writes
// each row once. An event with a zero Time is recorded at the store clock's
// current time.
func (s *Store) RecordUsage(ctx context.Context, batchID string, events []store.UsageEvent) error {
	if batchID == "" {
		return errors.New("sqlite: record usage: no batch ID")
	}
	if len(events) == 0 {
		return nil
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		// The transaction is bound to ctx; its statements are not, which
		// spares the driver a goroutine per statement watching ctx.
		ctx := context.WithoutCancel(ctx)
		var seen bool
		if err := tx.QueryRowContext(ctx, chunkSeen, batchID).Scan(&seen); err != nil {
			return wrapErr(err, "usage batch "+quote(batchID))
		}
		if seen {
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
		for orgID, w := range chunks {
			if _, err := tx.ExecContext(ctx, chunkInsert, batchID, orgID, w.minTime, w.maxTime, w.entries, w.text()); err != nil {
				return wrapErr(err, "usage batch "+quote(batchID))
			}
		}
		return addRollups(ctx, tx, sums)
	})
}

// addRollups adds sums to their usage_rollups rows, creating missing ones.
func addRollups(ctx context.Context, tx *sql.Tx, sums map[rollupKey]rollupSum) error {
	if len(sums) == 0 {
		return nil
	}
	stmt, err := tx.PrepareContext(ctx, rollupAdd)
	if err != nil {
		return wrapErr(err, "usage rollups")
	}
	defer stmt.Close()
	for k, v := range sums {
		if _, err := stmt.ExecContext(ctx, k.granularity, k.bucket, k.orgID, k.appID, k.credentialID,
			v.units, v.requests, v.errors); err != nil {
			return wrapErr(err, "usage rollup of organization "+quote(k.orgID))
		}
	}
	return nil
}

// UsageSeries sums the rollup rows of q's granularity whose bucket starts in
// [q.From, q.To), per bucket, oldest first. Only buckets with at least one
// request have a row, so every point returned is non-empty.
func (s *Store) UsageSeries(ctx context.Context, q store.UsageQuery) ([]store.UsagePoint, error) {
	switch q.Granularity {
	case store.GranularityHour, store.GranularityDay, store.GranularityMonth:
	default:
		return nil, fmt.Errorf("sqlite: usage series: unknown granularity %q", q.Granularity)
	}
	query := rollupSeries
	args := []any{q.OrgID, q.Granularity, ceilMicros(q.From), ceilMicros(q.To)}
	if q.AppID != "" {
		query += ` AND app_id = ?`
		args = append(args, q.AppID)
	}
	if q.CredentialID != "" {
		query += ` AND credential_id = ?`
		args = append(args, q.CredentialID)
	}
	out, err := queryAll(ctx, s.reader, func(r rowScanner) (store.UsagePoint, error) {
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
// back, decoding each, and stops at the first chunk whose newest event is
// older than the last of a full page.
func (s *Store) ListRequests(ctx context.Context, f store.RequestFilter) ([]store.UsageEvent, error) {
	limit := clampLimit(f.Limit, defaultRequestLimit, maxRequestLimit)
	sel := requestSelector{f: f}
	query, args := chunkSelect, []any{f.OrgID}
	if !f.From.IsZero() {
		sel.from = ceilMicros(f.From)
		query += ` AND max_time >= ?`
		args = append(args, sel.from)
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
		query += ` AND min_time < ?`
		args = append(args, before)
	}

	rows, err := s.reader.QueryContext(ctx, query+chunkOrder, args...)
	if err != nil {
		return nil, wrapErr(err, "list requests of organization "+quote(f.OrgID))
	}
	defer rows.Close()
	out := []store.UsageEvent{}
	var (
		data    []byte
		decoded []chunkEvent
		sorted  bool // out is in list order, at most limit long
	)
	for rows.Next() {
		var chunkMax int64
		if err := rows.Scan(&chunkMax, &data); err != nil {
			return nil, wrapErr(err, "list requests of organization "+quote(f.OrgID))
		}
		if len(out) >= limit {
			if !sorted {
				out, sorted = trimRequests(out, limit), true
			}
			if chunkMax < out[limit-1].Time.UnixMicro() {
				break // this chunk and every later one hold older entries only
			}
		}
		if decoded, err = decodeChunk(data, decoded); err != nil {
			return nil, wrapErr(err, "list requests of organization "+quote(f.OrgID))
		}
		for i := range decoded {
			if sel.match(&decoded[i]) {
				out, sorted = append(out, decoded[i].event(f.OrgID)), false
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, wrapErr(err, "list requests of organization "+quote(f.OrgID))
	}
	return trimRequests(out, limit), nil
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
// whole; chunks that began before it are rewritten without their older
// entries.
func (s *Store) PurgeRequests(ctx context.Context, before, hourlyBefore time.Time) (int64, error) {
	var n int64
	horizon := ceilMicros(before)
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, chunkPurgeCount, horizon).Scan(&n); err != nil {
			return wrapErr(err, "purge request log")
		}
		if _, err := tx.ExecContext(ctx, chunkPurge, horizon); err != nil {
			return wrapErr(err, "purge request log")
		}
		cut, err := cutChunks(ctx, tx, horizon)
		if err != nil {
			return wrapErr(err, "purge request log")
		}
		n += cut
		_, err = tx.ExecContext(ctx, rollupPurgeHourly, ceilMicros(hourlyBefore))
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
func cutChunks(ctx context.Context, tx *sql.Tx, horizon int64) (int64, error) {
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
		if _, err := tx.ExecContext(ctx, chunkRewrite, w.minTime, w.entries, w.text(), c.id); err != nil {
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
