package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/store/internal/sqlstore"
)

// The cluster settings (see store.ClusterSetting).

const (
	settingPin = `INSERT INTO cluster_settings (` + sqlstore.SettingColumns + `) VALUES (?, ?, ?, ?)
		ON CONFLICT (name) DO NOTHING`
	settingSet = `INSERT INTO cluster_settings (` + sqlstore.SettingColumns + `) VALUES (?, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value, recorded_at = excluded.recorded_at,
		recorded_by = excluded.recorded_by`
	settingByName = `SELECT ` + sqlstore.SettingColumns + ` FROM cluster_settings WHERE name = ?`
)

func getSetting(ctx context.Context, q querier, name string) (store.ClusterSetting, error) {
	st, err := sqlstore.ScanSetting(q.QueryRowContext(ctx, settingByName, name))
	return st, wrapErr(err, "cluster setting "+quote(name))
}

// PinClusterSetting records st unless its name is recorded already, and
// returns the recorded setting.
func (s *Store) PinClusterSetting(ctx context.Context, st store.ClusterSetting) (store.ClusterSetting, error) {
	if err := sqlstore.CheckSetting(st); err != nil {
		return store.ClusterSetting{}, fmt.Errorf("sqlite: %w", err)
	}
	st.RecordedAt = s.orNow(st.RecordedAt)
	var got store.ClusterSetting
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, settingPin, sqlstore.SettingValues(st)...); err != nil {
			return wrapErr(err, "cluster setting "+quote(st.Name))
		}
		var err error
		got, err = getSetting(ctx, tx, st.Name)
		return err
	})
	return got, err
}

// GetClusterSetting returns the setting recorded under name.
func (s *Store) GetClusterSetting(ctx context.Context, name string) (store.ClusterSetting, error) {
	return getSetting(ctx, s.reader, name)
}

// SetClusterSetting records st, replacing the setting of its name, with an
// audit entry.
func (s *Store) SetClusterSetting(ctx context.Context, st store.ClusterSetting, a store.AuditEntry) error {
	if err := sqlstore.CheckSetting(st); err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	st.RecordedAt = s.orNow(st.RecordedAt)
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, settingSet, sqlstore.SettingValues(st)...); err != nil {
			return wrapErr(err, "cluster setting "+quote(st.Name))
		}
		return s.writeAudit(ctx, tx, a, st.Name)
	})
}
