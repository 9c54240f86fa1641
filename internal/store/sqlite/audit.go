package sqlite

import (
	"context"
	"strings"

	"github.com/tollgate/tollgate/internal/ids"
	"github.com/tollgate/tollgate/internal/store"
)

// Audit limits: ListAudit returns defaultAuditLimit entries when the filter
// does not say, and never more than maxAuditLimit.
const (
	defaultAuditLimit = 100
	maxAuditLimit     = 1000
)

const (
	auditColumns = `id, time, org_id, actor_type, actor_id, action, target_type, target_id, ip, details`
	auditInsert  = `INSERT INTO audit_log (` + auditColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	auditSelect  = `SELECT ` + auditColumns + ` FROM audit_log`
	auditOrder   = ` ORDER BY time DESC, id DESC LIMIT ?`
)

func scanAudit(r rowScanner) (store.AuditEntry, error) {
	var a store.AuditEntry
	err := r.Scan(&a.ID, timeCol{&a.Time}, &a.OrgID, &a.ActorType, &a.ActorID, &a.Action,
		&a.TargetType, &a.TargetID, &a.IP, objectCol{&a.Details})
	return a, err
}

// writeAudit inserts an audit entry, filling in its ID and Time when empty,
// and its TargetID with targetID when empty (targetID is the ID of the object
// the calling method creates, or "").
func (s *Store) writeAudit(ctx context.Context, q querier, a store.AuditEntry, targetID string) error {
	if a.ID == "" {
		a.ID = ids.New(ids.Audit)
	}
	if a.Time.IsZero() {
		a.Time = s.clock.Now()
	}
	if a.TargetID == "" {
		a.TargetID = targetID
	}
	_, err := q.ExecContext(ctx, auditInsert, a.ID, micros(a.Time), a.OrgID, string(a.ActorType), a.ActorID,
		a.Action, a.TargetType, a.TargetID, a.IP, jsonObject(a.Details))
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
	if !f.Before.IsZero() {
		where = append(where, "time < ?") // strictly older than Before
		args = append(args, ceilMicros(f.Before))
	}
	args = append(args, clampLimit(f.Limit, defaultAuditLimit, maxAuditLimit))

	query := auditSelect
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	out, err := queryAll(ctx, s.reader, scanAudit, query+auditOrder, args...)
	return out, wrapErr(err, "list audit")
}
