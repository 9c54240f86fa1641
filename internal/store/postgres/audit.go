package postgres

import (
	"context"

	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/store/internal/sqlstore"
)

const (
	auditInsert = `INSERT INTO audit_log (` + sqlstore.AuditColumns + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`
	auditSelect = `SELECT ` + sqlstore.AuditColumns + ` FROM audit_log`
	auditOrder  = ` ORDER BY time DESC, id DESC LIMIT `
)

// writeAudit inserts an audit entry, filling in its ID and Time when empty,
// and its TargetID with targetID when empty (targetID is the ID of the object
// the calling method creates, or "").
func (s *Store) writeAudit(ctx context.Context, q querier, a store.AuditEntry, targetID string) error {
	a = sqlstore.CompleteAudit(a, s.clock, targetID)
	_, err := q.Exec(ctx, auditInsert, sqlstore.AuditValues(a)...)
	return wrapErr(err, "audit entry "+quote(a.ID))
}

// AppendAudit records an entry that goes with no other change.
func (s *Store) AppendAudit(ctx context.Context, a store.AuditEntry) error {
	return s.retry(ctx, func() error { return s.writeAudit(ctx, s.pool, a, "") })
}

// ListAudit lists entries newest first (by time, then by ID), filtered by
// f. f.Limit defaults to 100 and is capped at 1000.
func (s *Store) ListAudit(ctx context.Context, f store.AuditFilter) ([]store.AuditEntry, error) {
	var w where
	if f.OrgID != "" {
		w.add("org_id = ?", f.OrgID)
	}
	if f.TargetID != "" {
		w.add("target_id = ?", f.TargetID)
	}
	if len(f.Actions) > 0 {
		w.add("action = ANY(?)", f.Actions)
	}
	if !f.Before.IsZero() {
		w.add("time < ?", sqlstore.CeilMicros(f.Before)) // strictly older than Before
	}
	limit := w.param(sqlstore.ClampLimit(f.Limit, sqlstore.DefaultAuditLimit, sqlstore.MaxAuditLimit))
	out, err := queryAll(ctx, s.pool, sqlstore.ScanAudit, auditSelect+w.String()+auditOrder+limit, w.args...)
	return out, wrapErr(err, "list audit")
}
