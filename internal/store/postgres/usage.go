package postgres

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/store/internal/sqlstore"
)

// The request log and the usage rollups. Chunks are encoded and decoded,
// batches summed into rollups, and the entries of chunks filtered and paged,
// by the sqlstore package; this file holds the SQL.

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
	rollupAdd = `INSERT INTO usage_rollups (granularity, bucket_start, org_id, app_id, credential_id, units, requests, errors, omitted)
		SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[])
		ON CONFLICT (granularity, bucket_start, org_id, app_id, credential_id) DO UPDATE SET
			units = usage_rollups.units + excluded.units,
			requests = usage_rollups.requests + excluded.requests,
			errors = usage_rollups.errors + excluded.errors,
			omitted = usage_rollups.omitted + excluded.omitted`
	rollupSeries = `SELECT bucket_start, sum(units)::bigint, sum(requests)::bigint, sum(errors)::bigint, sum(omitted)::bigint FROM usage_rollups
		WHERE org_id = $1 AND granularity = $2 AND bucket_start >= $3 AND bucket_start < $4`
	rollupGroup       = ` GROUP BY bucket_start ORDER BY bucket_start`
	rollupPurgeHourly = `DELETE FROM usage_rollups WHERE granularity = '` + store.GranularityHour + `' AND bucket_start < $1`

	// The IDs of the batches of totals (RecordUsageTotals). An ID recorded
	// by a concurrent transaction makes the insert wait for it, then do
	// nothing.
	totalsInsert = `INSERT INTO usage_batches (batch_id, recorded_at) VALUES ($1, $2) ON CONFLICT (batch_id) DO NOTHING`
	totalsPurge  = `DELETE FROM usage_batches WHERE recorded_at < $1`
)

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
	batch := sqlstore.NewUsageBatch(events, s.orNow)
	orgs := slices.Sorted(maps.Keys(batch.Chunks))
	texts := make([]string, len(orgs))
	for i, org := range orgs {
		texts[i] = batch.Chunks[org].Text()
	}
	rollups := newRollupArgs(batch.Rollups)

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
			w := batch.Chunks[org]
			if _, err := tx.Exec(ctx, chunkInsert, batchID, org, w.MinTime(), w.MaxTime(), w.Entries(), texts[i]); err != nil {
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

// RecordUsageTotals adds the totals of requests left out of the request log
// to their hourly, daily and monthly rollups and omitted counts, in one
// transaction, unless batchID is recorded already.
func (s *Store) RecordUsageTotals(ctx context.Context, batchID string, totals []store.UsageTotal) error {
	if batchID == "" {
		return errors.New("postgres: record usage totals: no batch ID")
	}
	sums, err := sqlstore.TotalsRollups(totals)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	if len(sums) == 0 {
		return nil
	}
	rollups := newRollupArgs(sums)
	return s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, totalsInsert, batchID, s.clock.Now().UnixMicro())
		if err != nil {
			return wrapErr(err, "usage totals batch "+quote(batchID))
		}
		if tag.RowsAffected() == 0 {
			return nil // recorded already
		}
		_, err = tx.Exec(ctx, rollupAdd, rollups...)
		return wrapErr(err, "usage totals")
	})
}

// newRollupArgs returns the arguments of rollupAdd for sums: its columns as
// arrays, in key order; nil when sums is empty.
func newRollupArgs(sums map[sqlstore.RollupKey]sqlstore.RollupSum) []any {
	if len(sums) == 0 {
		return nil
	}
	keys := slices.SortedFunc(maps.Keys(sums), sqlstore.RollupKey.Compare)
	n := len(keys)
	gs, buckets := make([]string, n), make([]int64, n)
	orgs, apps, creds := make([]string, n), make([]string, n), make([]string, n)
	units, requests, errCounts, omitted := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	for i, k := range keys {
		v := sums[k]
		gs[i], buckets[i], orgs[i], apps[i], creds[i] = k.Granularity, k.Bucket, k.OrgID, k.AppID, k.CredentialID
		units[i], requests[i], errCounts[i], omitted[i] = v.Units, v.Requests, v.Errors, v.Omitted
	}
	return []any{gs, buckets, orgs, apps, creds, units, requests, errCounts, omitted}
}

// UsageSeries sums the rollup rows of q's granularity whose bucket starts in
// [q.From, q.To), per bucket, oldest first. Only buckets with at least one
// request have a row, so every point returned is non-empty.
func (s *Store) UsageSeries(ctx context.Context, q store.UsageQuery) ([]store.UsagePoint, error) {
	if err := sqlstore.CheckGranularity(q.Granularity); err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	query := rollupSeries
	args := []any{q.OrgID, q.Granularity, sqlstore.CeilMicros(q.From), sqlstore.CeilMicros(q.To)}
	if q.AppID != "" {
		args = append(args, q.AppID)
		query += fmt.Sprintf(` AND app_id = $%d`, len(args))
	}
	if q.CredentialID != "" {
		args = append(args, q.CredentialID)
		query += fmt.Sprintf(` AND credential_id = $%d`, len(args))
	}
	out, err := queryAll(ctx, s.pool, sqlstore.ScanUsagePoint, query+rollupGroup, args...)
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
	r := sqlstore.NewRequestReader(f)
	// page returns the query of the page of up to size chunks after the
	// chunk (maxTime, id) in list order, or of the first page when first.
	page := func(first bool, maxTime, id int64, size int) (string, []any) {
		var w where
		w.add("org_id = ?", f.OrgID)
		if from, ok := r.From(); ok {
			w.add("max_time >= ?", from)
		}
		if before, ok := r.Before(); ok {
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
	var last chunkRow
	for size, first := firstChunkPage, true; ; size, first = min(2*size, maxChunkPage), false {
		query, args := page(first, last.maxTime, last.id, size)
		chunks, err := queryAll(ctx, tx, scanChunkRow, query, args...)
		if err != nil {
			return nil, wrapErr(err, what)
		}
		for _, c := range chunks {
			if r.Done(c.maxTime) {
				// This chunk and every later one hold older entries only.
				return r.Entries(), nil
			}
			if err := r.Add(c.events); err != nil {
				return nil, wrapErr(err, what)
			}
		}
		if len(chunks) < size {
			return r.Entries(), nil
		}
		last = chunks[len(chunks)-1]
	}
}

// chunkRow is a request_chunks row as ListRequests reads it.
type chunkRow struct {
	id, maxTime int64
	events      []byte
}

func scanChunkRow(r sqlstore.RowScanner) (chunkRow, error) {
	var c chunkRow
	err := r.Scan(&c.id, &c.maxTime, &c.events)
	return c, err
}

// PurgeRequests deletes, in one transaction, the request-log entries older
// than before (and the IDs of batches of totals recorded before it) and the
// hourly rollups that started before hourlyBefore, and returns how many log
// entries it deleted. Chunks that ended before before go
// whole; chunks that began before it are locked and rewritten without their
// older entries.
func (s *Store) PurgeRequests(ctx context.Context, before, hourlyBefore time.Time) (int64, error) {
	var n int64
	horizon := sqlstore.CeilMicros(before)
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, chunkPurge, horizon).Scan(&n); err != nil {
			return wrapErr(err, "purge request log")
		}
		cut, err := cutChunks(ctx, tx, horizon)
		if err != nil {
			return wrapErr(err, "purge request log")
		}
		n += cut
		if _, err := tx.Exec(ctx, totalsPurge, horizon); err != nil {
			return wrapErr(err, "purge usage totals batch IDs")
		}
		_, err = tx.Exec(ctx, rollupPurgeHourly, sqlstore.CeilMicros(hourlyBefore))
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
	found, err := queryAll(ctx, tx, sqlstore.ScanChunkRow, chunkStraddling, horizon)
	if err != nil {
		return 0, err
	}
	return sqlstore.CutChunks(found, horizon, func(id int64, w *sqlstore.ChunkWriter) error {
		_, err := tx.Exec(ctx, chunkRewrite, w.MinTime(), w.Entries(), w.Text(), id)
		return err
	})
}
