package sqlstore

import (
	"errors"

	"github.com/tollgate/tollgate/internal/store"
)

// The cluster settings: values every node sharing the store must agree on.

// SettingColumns are the columns of cluster_settings.
const SettingColumns = `name, value, recorded_at, recorded_by`

// ScanSetting reads a row of SettingColumns.
func ScanSetting(r RowScanner) (store.ClusterSetting, error) {
	var s store.ClusterSetting
	err := r.Scan(&s.Name, &s.Value, TimeCol(&s.RecordedAt), &s.RecordedBy)
	return s, err
}

// SettingValues returns the values of SettingColumns for s.
func SettingValues(s store.ClusterSetting) []any {
	return []any{s.Name, s.Value, Micros(s.RecordedAt), s.RecordedBy}
}

// CheckSetting refuses a setting without a name.
func CheckSetting(s store.ClusterSetting) error {
	if s.Name == "" {
		return errors.New("cluster setting: a name is required")
	}
	return nil
}
