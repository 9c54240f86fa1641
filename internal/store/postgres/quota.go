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

const (
	// quotaSave only ever raises a count and moves its period end later,
	// for the counts given as parallel arrays (one per key, sorted by key,
	// so that concurrent saves lock shared rows in the same order).
	quotaSave = `INSERT INTO quota_counts (key, used, period_end)
		SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[])
		ON CONFLICT (key) DO UPDATE SET
			used = greatest(quota_counts.used, excluded.used),
			period_end = greatest(quota_counts.period_end, excluded.period_end)`
	quotaGet   = `SELECT used FROM quota_counts WHERE key = $1`
	quotaPurge = `DELETE FROM quota_counts WHERE period_end < $1`
)

// SaveQuotaCounts stores the counts in one statement. A stored count is
// raised to Used and never lowered; its period end is the later of the stored
// and the given one. A key given twice counts as the larger of its counts. A
// zero PeriodEnd is an error.
func (s *Store) SaveQuotaCounts(ctx context.Context, counts []store.QuotaCount) error {
	if len(counts) == 0 {
		return nil
	}
	merged := make(map[string]store.QuotaCount, len(counts))
	for _, c := range counts {
		if c.PeriodEnd.IsZero() {
			return fmt.Errorf("postgres: quota count %q: no period end", c.Key)
		}
		if m, ok := merged[c.Key]; ok {
			c.Used = max(c.Used, m.Used)
			if m.PeriodEnd.After(c.PeriodEnd) {
				c.PeriodEnd = m.PeriodEnd
			}
		}
		merged[c.Key] = c
	}
	keys := slices.Sorted(maps.Keys(merged))
	used := make([]int64, len(keys))
	ends := make([]int64, len(keys))
	for i, k := range keys {
		used[i], ends[i] = merged[k].Used, merged[k].PeriodEnd.UnixMicro()
	}
	_, err := s.exec(ctx, quotaSave, keys, used, ends)
	return wrapErr(err, "save quota counts")
}

// GetQuotaCount returns the stored count of key, 0 when there is none.
func (s *Store) GetQuotaCount(ctx context.Context, key string) (int64, error) {
	var used int64
	err := s.pool.QueryRow(ctx, quotaGet, key).Scan(&used)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	return used, wrapErr(err, "quota count "+quote(key))
}

// PurgeQuotaCounts deletes the counts of periods that ended before the given
// time.
func (s *Store) PurgeQuotaCounts(ctx context.Context, endedBefore time.Time) error {
	_, err := s.exec(ctx, quotaPurge, sqlstore.CeilMicros(endedBefore))
	return wrapErr(err, "purge quota counts")
}
