package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/store/internal/sqlstore"
)

const (
	// quotaSave only ever raises a count and moves its period end later.
	quotaSave = `INSERT INTO quota_counts (key, used, period_end) VALUES (?, ?, ?)
		ON CONFLICT (key) DO UPDATE SET
			used = MAX(used, excluded.used),
			period_end = MAX(period_end, excluded.period_end)`
	quotaGet   = `SELECT used FROM quota_counts WHERE key = ?`
	quotaPurge = `DELETE FROM quota_counts WHERE period_end < ?`
)

// SaveQuotaCounts stores the counts in one transaction. A stored count is
// raised to Used and never lowered; its period end is the later of the stored
// and the given one. A zero PeriodEnd is an error.
func (s *Store) SaveQuotaCounts(ctx context.Context, counts []store.QuotaCount) error {
	if len(counts) == 0 {
		return nil
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, quotaSave)
		if err != nil {
			return wrapErr(err, "save quota counts")
		}
		defer stmt.Close()
		for _, c := range counts {
			if _, err := stmt.ExecContext(ctx, c.Key, c.Used, sqlstore.Micros(c.PeriodEnd)); err != nil {
				return wrapErr(err, "quota count "+quote(c.Key))
			}
		}
		return nil
	})
}

// GetQuotaCount returns the stored count of key, 0 when there is none.
func (s *Store) GetQuotaCount(ctx context.Context, key string) (int64, error) {
	var used int64
	err := s.reader.QueryRowContext(ctx, quotaGet, key).Scan(&used)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return used, wrapErr(err, "quota count "+quote(key))
}

// PurgeQuotaCounts deletes the counts of periods that ended before the given
// time.
func (s *Store) PurgeQuotaCounts(ctx context.Context, endedBefore time.Time) error {
	_, err := s.writer.ExecContext(ctx, quotaPurge, sqlstore.CeilMicros(endedBefore))
	return wrapErr(err, "purge quota counts")
}
