package postgres

import (
	"context"

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
	auditInsert  = `INSERT INTO audit_log (` + auditColumns + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`
	auditSelect  = `SELECT ` + auditColumns + ` FROM audit_log`
	auditOrder   = ` ORDER BY time DESC, id DESC LIMIT `
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
	_, err := q.Exec(ctx, auditInsert, a.ID, micros(a.Time), a.OrgID, string(a.ActorType), a.ActorID,
		a.Action, a.TargetType, a.TargetID, a.IP, jsonObject(a.Details))
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
	if !f.Before.IsZero() {
		w.add("time < ?", ceilMicros(f.Before)) // strictly older than Before
	}
	limit := w.param(clampLimit(f.Limit, defaultAuditLimit, maxAuditLimit))
	out, err := queryAll(ctx, s.pool, scanAudit, auditSelect+w.String()+auditOrder+limit, w.args...)
	return out, wrapErr(err, "list audit")
}
