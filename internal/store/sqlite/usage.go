package sqlite

import (
	"context"
	"database/sql"
	"fmt"
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
	requestColumns = `id, time, org_id, app_id, credential_id, auth_method, method, route, path, status, error_code, latency, request_bytes, response_bytes, units, client_ip, user_agent, websocket`
	requestInsert  = `INSERT INTO request_log (` + requestColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO NOTHING`
	requestSelect = `SELECT ` + requestColumns + ` FROM request_log`
	requestOrder  = ` ORDER BY time DESC, id DESC LIMIT ?`
	requestPurge  = `DELETE FROM request_log WHERE time < ?`

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

// RecordUsage inserts the events into the request log, skipping IDs already
// there, and adds the inserted events of an organization to their hourly,
// daily and monthly rollups, all in one transaction. The additions are summed
// per rollup row in memory first, so that a batch writes each row once. An
// event with a zero Time is recorded at the store clock's current time.
func (s *Store) RecordUsage(ctx context.Context, events []store.UsageEvent) error {
	if len(events) == 0 {
		return nil
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		// The transaction is bound to ctx; its statements are not, which
		// spares the driver a goroutine per statement watching ctx.
		ctx := context.WithoutCancel(ctx)
		insert, err := tx.PrepareContext(ctx, requestInsert)
		if err != nil {
			return wrapErr(err, "record usage")
		}
		defer insert.Close()
		sums := make(map[rollupKey]rollupSum)
		for _, e := range events {
			at := s.orNow(e.Time)
			res, err := insert.ExecContext(ctx, e.ID, at.UnixMicro(), e.OrgID, e.AppID, e.CredentialID,
				e.AuthMethod, e.Method, e.Route, e.Path, e.Status, e.ErrorCode, e.Latency.Microseconds(),
				e.RequestBytes, e.ResponseBytes, e.Units, e.ClientIP, e.UserAgent, e.WebSocket)
			if err != nil {
				return wrapErr(err, "usage event "+quote(e.ID))
			}
			n, err := res.RowsAffected()
			if err != nil {
				return wrapErr(err, "usage event "+quote(e.ID))
			}
			if n == 0 || e.OrgID == "" { // already recorded, or no rollup
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

func scanRequest(r rowScanner) (store.UsageEvent, error) {
	var e store.UsageEvent
	var latency int64
	err := r.Scan(&e.ID, timeCol{&e.Time}, &e.OrgID, &e.AppID, &e.CredentialID, &e.AuthMethod, &e.Method,
		&e.Route, &e.Path, &e.Status, &e.ErrorCode, &latency, &e.RequestBytes, &e.ResponseBytes, &e.Units,
		&e.ClientIP, &e.UserAgent, &e.WebSocket)
	e.Latency = time.Duration(latency) * time.Microsecond
	return e, err
}

// ListRequests lists request-log entries newest first (by time, then by ID),
// filtered by f. f.OrgID is matched as it is, so "" lists the requests of no
// organization. f.Limit defaults to 100 and is capped at 10000.
func (s *Store) ListRequests(ctx context.Context, f store.RequestFilter) ([]store.UsageEvent, error) {
	where := []string{"org_id = ?"}
	args := []any{f.OrgID}
	for _, c := range []struct {
		set  bool
		cond string
		arg  any
	}{
		{f.AppID != "", "app_id = ?", f.AppID},
		{f.CredentialID != "", "credential_id = ?", f.CredentialID},
		{f.StatusMin != 0, "status >= ?", f.StatusMin},
		{f.StatusMax != 0, "status <= ?", f.StatusMax},
		{!f.From.IsZero(), "time >= ?", ceilMicros(f.From)},
		{!f.To.IsZero(), "time < ?", ceilMicros(f.To)},
	} {
		if c.set {
			where = append(where, c.cond)
			args = append(args, c.arg)
		}
	}
	if !f.AfterTime.IsZero() {
		after := ceilMicros(f.AfterTime)
		if f.AfterTime.Nanosecond()%1000 == 0 {
			// Older, or as old with a smaller ID. The first condition
			// bounds the index range; the second one filters it.
			where = append(where, "time <= ? AND (time < ? OR id < ?)")
			args = append(args, after, after, f.AfterID)
		} else {
			// Between two stored microseconds: no entry has that time.
			where = append(where, "time < ?")
			args = append(args, after)
		}
	}
	args = append(args, clampLimit(f.Limit, defaultRequestLimit, maxRequestLimit))

	query := requestSelect + " WHERE " + strings.Join(where, " AND ") + requestOrder
	out, err := queryAll(ctx, s.reader, scanRequest, query, args...)
	return out, wrapErr(err, "list requests of organization "+quote(f.OrgID))
}

// PurgeRequests deletes, in one transaction, the request-log entries older
// than before and the hourly rollups that started before hourlyBefore, and
// returns how many log entries it deleted.
func (s *Store) PurgeRequests(ctx context.Context, before, hourlyBefore time.Time) (int64, error) {
	var n int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		if n, err = execAffected(ctx, tx, requestPurge, ceilMicros(before)); err != nil {
			return wrapErr(err, "purge request log")
		}
		_, err = tx.ExecContext(ctx, rollupPurgeHourly, ceilMicros(hourlyBefore))
		return wrapErr(err, "purge hourly usage rollups")
	})
	if err != nil {
		return 0, err
	}
	return n, nil
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
