package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/store/internal/sqlstore"
)

// The request log and the usage rollups. Chunks are encoded and decoded,
// batches summed into rollups, and the entries of chunks filtered and paged,
// by the sqlstore package; this file holds the SQL.

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

	rollupAdd = `INSERT INTO usage_rollups (granularity, bucket_start, org_id, app_id, credential_id, units, requests, errors, omitted)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (granularity, bucket_start, org_id, app_id, credential_id) DO UPDATE SET
			units = units + excluded.units,
			requests = requests + excluded.requests,
			errors = errors + excluded.errors,
			omitted = omitted + excluded.omitted`
	rollupSeries = `SELECT bucket_start, SUM(units), SUM(requests), SUM(errors), SUM(omitted) FROM usage_rollups
		WHERE org_id = ? AND granularity = ? AND bucket_start >= ? AND bucket_start < ?`
	rollupGroup       = ` GROUP BY bucket_start ORDER BY bucket_start`
	rollupPurgeHourly = `DELETE FROM usage_rollups WHERE granularity = '` + store.GranularityHour + `' AND bucket_start < ?`

	// The IDs of the batches of totals (RecordUsageTotals).
	totalsSeen   = `SELECT EXISTS (SELECT 1 FROM usage_batches WHERE batch_id = ?)`
	totalsInsert = `INSERT INTO usage_batches (batch_id, recorded_at) VALUES (?, ?)`
	totalsPurge  = `DELETE FROM usage_batches WHERE recorded_at < ?`
)

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
		batch := sqlstore.NewUsageBatch(events, s.orNow)
		for orgID, w := range batch.Chunks {
			if _, err := tx.ExecContext(ctx, chunkInsert, batchID, orgID, w.MinTime(), w.MaxTime(), w.Entries(), w.Text()); err != nil {
				return wrapErr(err, "usage batch "+quote(batchID))
			}
		}
		return addRollups(ctx, tx, batch.Rollups)
	})
}

// RecordUsageTotals adds the totals of requests left out of the request log
// to their hourly, daily and monthly rollups and omitted counts, in one
// transaction, unless batchID is recorded already.
func (s *Store) RecordUsageTotals(ctx context.Context, batchID string, totals []store.UsageTotal) error {
	if batchID == "" {
		return errors.New("sqlite: record usage totals: no batch ID")
	}
	sums, err := sqlstore.TotalsRollups(totals)
	if err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	if len(sums) == 0 {
		return nil
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		ctx := context.WithoutCancel(ctx) // as in RecordUsage
		var seen bool
		if err := tx.QueryRowContext(ctx, totalsSeen, batchID).Scan(&seen); err != nil {
			return wrapErr(err, "usage totals batch "+quote(batchID))
		}
		if seen {
			return nil
		}
		if _, err := tx.ExecContext(ctx, totalsInsert, batchID, s.clock.Now().UnixMicro()); err != nil {
			return wrapErr(err, "usage totals batch "+quote(batchID))
		}
		return addRollups(ctx, tx, sums)
	})
}

// addRollups adds sums to their usage_rollups rows, creating missing ones.
func addRollups(ctx context.Context, tx *sql.Tx, sums map[sqlstore.RollupKey]sqlstore.RollupSum) error {
	if len(sums) == 0 {
		return nil
	}
	stmt, err := tx.PrepareContext(ctx, rollupAdd)
	if err != nil {
		return wrapErr(err, "usage rollups")
	}
	defer stmt.Close()
	for k, v := range sums {
		if _, err := stmt.ExecContext(ctx, k.Granularity, k.Bucket, k.OrgID, k.AppID, k.CredentialID,
			v.Units, v.Requests, v.Errors, v.Omitted); err != nil {
			return wrapErr(err, "usage rollup of organization "+quote(k.OrgID))
		}
	}
	return nil
}

// UsageSeries sums the rollup rows of q's granularity whose bucket starts in
// [q.From, q.To), per bucket, oldest first. Only buckets with at least one
// request have a row, so every point returned is non-empty.
func (s *Store) UsageSeries(ctx context.Context, q store.UsageQuery) ([]store.UsagePoint, error) {
	if err := sqlstore.CheckGranularity(q.Granularity); err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	query := rollupSeries
	args := []any{q.OrgID, q.Granularity, sqlstore.CeilMicros(q.From), sqlstore.CeilMicros(q.To)}
	if q.AppID != "" {
		query += ` AND app_id = ?`
		args = append(args, q.AppID)
	}
	if q.CredentialID != "" {
		query += ` AND credential_id = ?`
		args = append(args, q.CredentialID)
	}
	out, err := queryAll(ctx, s.reader, sqlstore.ScanUsagePoint, query+rollupGroup, args...)
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
	r := sqlstore.NewRequestReader(f)
	query, args := chunkSelect, []any{f.OrgID}
	if from, ok := r.From(); ok {
		query += ` AND max_time >= ?`
		args = append(args, from)
	}
	if before, ok := r.Before(); ok {
		query += ` AND min_time < ?`
		args = append(args, before)
	}

	what := "list requests of organization " + quote(f.OrgID)
	rows, err := s.reader.QueryContext(ctx, query+chunkOrder, args...)
	if err != nil {
		return nil, wrapErr(err, what)
	}
	defer rows.Close()
	var data []byte
	for rows.Next() {
		var chunkMax int64
		if err := rows.Scan(&chunkMax, &data); err != nil {
			return nil, wrapErr(err, what)
		}
		if r.Done(chunkMax) {
			break // this chunk and every later one hold older entries only
		}
		if err := r.Add(data); err != nil {
			return nil, wrapErr(err, what)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, wrapErr(err, what)
	}
	return r.Entries(), nil
}

// PurgeRequests deletes, in one transaction, the request-log entries older
// than before (and the IDs of batches of totals recorded before it) and the
// hourly rollups that started before hourlyBefore, and returns how many log
// entries it deleted. Chunks that ended before before go
// whole; chunks that began before it are rewritten without their older
// entries.
func (s *Store) PurgeRequests(ctx context.Context, before, hourlyBefore time.Time) (int64, error) {
	var n int64
	horizon := sqlstore.CeilMicros(before)
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
		if _, err := tx.ExecContext(ctx, totalsPurge, horizon); err != nil {
			return wrapErr(err, "purge usage totals batch IDs")
		}
		_, err = tx.ExecContext(ctx, rollupPurgeHourly, sqlstore.CeilMicros(hourlyBefore))
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
	found, err := queryAll(ctx, tx, sqlstore.ScanChunkRow, chunkStraddling, horizon)
	if err != nil {
		return 0, err
	}
	return sqlstore.CutChunks(found, horizon, func(id int64, w *sqlstore.ChunkWriter) error {
		_, err := tx.ExecContext(ctx, chunkRewrite, w.MinTime(), w.Entries(), w.Text(), id)
		return err
	})
}
