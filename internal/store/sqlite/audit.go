package sqlite

import (
	"context"
	"strings"

	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/store/internal/sqlstore"
)

const (
	auditInsert = `INSERT INTO audit_log (` + sqlstore.AuditColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	auditSelect = `SELECT ` + sqlstore.AuditColumns + ` FROM audit_log`
	auditOrder  = ` ORDER BY time DESC, id DESC LIMIT ?`
)

// writeAudit inserts an audit entry, filling in its ID and Time when empty,
// and its TargetID with targetID when empty (targetID is the ID of the object
// the calling method creates, or "").
func (s *Store) writeAudit(ctx context.Context, q querier, a store.AuditEntry, targetID string) error {
	a = sqlstore.CompleteAudit(a, s.clock, targetID)
	_, err := q.ExecContext(ctx, auditInsert, sqlstore.AuditValues(a)...)
	return wrapErr(err, "audit entry "+quote(a.ID))
}

// AppendAudit records an entry that goes with no other change.
func (s *Store) AppendAudit(ctx context.Context, a store.AuditEntry) error {
	return s.writeAudit(ctx, s.writer, a, "")
}

// ListAudit lists entries newest first (by time, then by ID), filtered by
// f. f.Limit defaults to 100 and is capped at 1000.
func (s *Store) ListAudit(ctx context.Context, f store.AuditFilter) ([]store.AuditEntry, error) {
	var where []string
	var args []any
	if f.OrgID != "" {
		where = append(where, "org_id = ?")
		args = append(args, f.OrgID)
	}
	if f.TargetID != "" {
		where = append(where, "target_id = ?")
		args = append(args, f.TargetID)
	}
	if len(f.Actions) > 0 {
		where = append(where, "action IN (?"+strings.Repeat(", ?", len(f.Actions)-1)+")")
		for _, a := range f.Actions {
			args = append(args, a)
		}
	}
	if !f.Before.IsZero() {
		where = append(where, "time < ?") // strictly older than Before
		args = append(args, sqlstore.CeilMicros(f.Before))
	}
	args = append(args, sqlstore.ClampLimit(f.Limit, sqlstore.DefaultAuditLimit, sqlstore.MaxAuditLimit))

	query := auditSelect
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	out, err := queryAll(ctx, s.reader, sqlstore.ScanAudit, query+auditOrder, args...)
	return out, wrapErr(err, "list audit")
}
