package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/tollgate/tollgate/internal/ids"
	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/store/internal/sqlstore"
)

// The webhook outbox: events, their deliveries (the delivery log) and the
// deliveries' attempts.
//
// Claims run in a write transaction (BEGIN IMMEDIATE), which holds the
// file's write lock from the first read: two claims, from this process or
// another, cannot read the same due delivery, since the second one reads
// after the first one has moved it past the lease.

const (
	eventInsert = `INSERT INTO webhook_events (id, org_id, type, payload, endpoint_id, created_at) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO NOTHING`

	// deliverySelect reads deliveries with their event.
	deliverySelect = `SELECT ` + sqlstore.DeliveryColumns + `
		FROM webhook_deliveries AS d JOIN webhook_events AS ev ON ev.id = d.event_id`
	deliveryByID   = deliverySelect + ` WHERE d.id = ?`
	deliveryInsert = `INSERT INTO webhook_deliveries (id, event_id, endpoint_id, org_id, status, attempts, next_attempt_at,
		created_at, redelivery_of) VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?)`
	deliveryCursor = `SELECT created_at FROM webhook_deliveries WHERE id = ?`
	deliveryOrder  = ` ORDER BY d.created_at DESC, d.id DESC LIMIT ?`
	// deliveriesDue selects the due pending deliveries whose endpoint is
	// enabled, or is the one their event is addressed to.
	deliveriesDue = deliverySelect + ` JOIN webhook_endpoints AS e ON e.id = d.endpoint_id
		WHERE d.status = ? AND d.next_attempt_at <= ? AND (e.disabled = 0 OR ev.endpoint_id = e.id)
		ORDER BY d.next_attempt_at, d.id LIMIT ?`
	// deliveriesLease moves deliveries, given as a JSON array of IDs, to the
	// end of their lease.
	deliveriesLease   = `UPDATE webhook_deliveries SET next_attempt_at = ? WHERE id IN (SELECT value FROM json_each(?))`
	deliveryAttempted = `UPDATE webhook_deliveries SET status = ?, attempts = ?, next_attempt_at = ?, last_attempt_at = ?,
		last_status_code = ?, last_error = ?, finished_at = ? WHERE id = ?`
	// deliveriesEndpointDeleted fails an endpoint's pending deliveries. The
	// unary + keeps SQLite from walking every pending delivery through
	// webhook_deliveries_due rather than the endpoint's through
	// webhook_deliveries_endpoint.
	deliveriesEndpointDeleted = `UPDATE webhook_deliveries SET status = ?, last_error = ?, finished_at = ?, next_attempt_at = NULL
		WHERE endpoint_id = ? AND +status = ?`
	// deliveriesPurge deletes finished deliveries; their attempts go with
	// them (ON DELETE CASCADE).
	deliveriesPurge = `DELETE FROM webhook_deliveries WHERE finished_at < ? AND status <> ?`
	eventsPurge     = `DELETE FROM webhook_events WHERE created_at < ?
		AND NOT EXISTS (SELECT 1 FROM webhook_deliveries AS d WHERE d.event_id = webhook_events.id)`

	// deliveriesBacklog counts an endpoint's pending deliveries, through
	// webhook_deliveries_pending.
	deliveriesBacklog = `SELECT count(*), min(next_attempt_at) FROM webhook_deliveries WHERE endpoint_id = ? AND status = 'pending'`

	attemptInsert = `INSERT INTO webhook_attempts (` + sqlstore.AttemptColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?)`
	attemptsOf    = `SELECT ` + sqlstore.AttemptColumns + ` FROM webhook_attempts WHERE delivery_id = ? ORDER BY n`
)

func getDelivery(ctx context.Context, q querier, id string) (store.WebhookDelivery, error) {
	d, err := sqlstore.ScanDelivery(q.QueryRowContext(ctx, deliveryByID, id))
	return d, wrapErr(err, "webhook delivery "+quote(id))
}

// EnqueueWebhookEvent stores ev and queues its deliveries, in one
// transaction (see store.Store).
func (s *Store) EnqueueWebhookEvent(ctx context.Context, ev store.WebhookEvent) (int, error) {
	if err := sqlstore.CheckEvent(ev); err != nil {
		return 0, fmt.Errorf("sqlite: %w", err)
	}
	at := sqlstore.Micros(s.orNow(ev.CreatedAt))
	queued := 0
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		n, err := execAffected(ctx, tx, eventInsert, ev.ID, ev.OrgID, ev.Type, sqlstore.Blob(ev.Payload), ev.Endpoint, at)
		if err != nil {
			return wrapErr(err, "webhook event "+quote(ev.ID))
		}
		if n == 0 {
			return nil // stored already: a retry
		}
		endpoints, err := endpointIDs(ctx, tx, ev)
		if err != nil {
			return err
		}
		for _, endpoint := range endpoints {
			id := ids.New(ids.WebhookDelivery)
			if _, err := tx.ExecContext(ctx, deliveryInsert, id, ev.ID, endpoint, ev.OrgID,
				string(store.WebhookPending), at, at, ""); err != nil {
				return wrapErr(err, "webhook delivery "+quote(id))
			}
		}
		queued = len(endpoints)
		return nil
	})
	if err != nil {
		return 0, err
	}
	return queued, nil
}

// ClaimWebhookDeliveries claims due deliveries for a lease (see
// store.Store).
func (s *Store) ClaimWebhookDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]store.WebhookDelivery, error) {
	if err := sqlstore.CheckClaim(lease, limit); err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	until := sqlstore.LeaseEnd(now, lease)
	var claimed []store.WebhookDelivery
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		claimed, err = queryAll(ctx, tx, sqlstore.ScanDelivery, deliveriesDue, string(store.WebhookPending), now.UnixMicro(), limit)
		if err != nil || len(claimed) == 0 {
			return wrapErr(err, "claim webhook deliveries")
		}
		claimedIDs := sqlstore.Lease(claimed, until)
		_, err = tx.ExecContext(ctx, deliveriesLease, sqlstore.Micros(until), sqlstore.JSONList(claimedIDs))
		return wrapErr(err, "claim webhook deliveries")
	})
	if err != nil {
		return nil, err
	}
	return claimed, nil
}

// RecordWebhookAttempt records an attempt of a pending delivery and its
// outcome (see store.Store). A zero at.At means now.
func (s *Store) RecordWebhookAttempt(ctx context.Context, at store.WebhookAttempt, next time.Time, health func(store.WebhookHealth) store.WebhookHealth) (store.WebhookDelivery, store.WebhookEndpoint, error) {
	if err := sqlstore.CheckAttempt(at); err != nil {
		return store.WebhookDelivery{}, store.WebhookEndpoint{}, fmt.Errorf("sqlite: %w", err)
	}
	at.At = s.orNow(at.At)
	var (
		d store.WebhookDelivery
		e store.WebhookEndpoint
	)
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		old, err := getDelivery(ctx, tx, at.DeliveryID)
		if err != nil {
			return err
		}
		if err := sqlstore.CheckAttemptOf(old, at); err != nil {
			return fmt.Errorf("sqlite: %w", err)
		}
		if _, err := tx.ExecContext(ctx, attemptInsert, sqlstore.AttemptValues(at)...); err != nil {
			return wrapErr(err, fmt.Sprintf("webhook attempt %d of %q", at.N, at.DeliveryID))
		}
		o := sqlstore.Outcome(at, next)
		if _, err := tx.ExecContext(ctx, deliveryAttempted, string(o.Status), at.N, o.NextAttemptAt, sqlstore.Micros(at.At),
			at.StatusCode, o.LastError, o.FinishedAt, at.DeliveryID); err != nil {
			return wrapErr(err, "webhook delivery "+quote(at.DeliveryID))
		}
		if d, err = getDelivery(ctx, tx, at.DeliveryID); err != nil {
			return err
		}
		if e, err = getEndpoint(ctx, tx, old.EndpointID); err != nil || health == nil {
			return err
		}
		e.Health = sqlstore.NormalizeHealth(health(e.Health))
		_, err = tx.ExecContext(ctx, endpointAttempted, append(sqlstore.HealthValues(e.Health), e.ID)...)
		return wrapErr(err, "webhook endpoint "+quote(e.ID))
	})
	if err != nil {
		return store.WebhookDelivery{}, store.WebhookEndpoint{}, err
	}
	return d, e, nil
}

// WebhookBacklog returns the count and the earliest due time of an
// endpoint's pending deliveries.
func (s *Store) WebhookBacklog(ctx context.Context, endpointID string) (store.WebhookBacklog, error) {
	b, err := sqlstore.ScanBacklog(s.reader.QueryRowContext(ctx, deliveriesBacklog, endpointID))
	return b, wrapErr(err, "backlog of webhook endpoint "+quote(endpointID))
}

// GetWebhookDelivery returns the webhook delivery with the given ID.
func (s *Store) GetWebhookDelivery(ctx context.Context, id string) (store.WebhookDelivery, error) {
	return getDelivery(ctx, s.reader, id)
}

// ListWebhookDeliveries lists deliveries newest first (by creation time,
// then by ID descending), filtered by f. f.Limit defaults to 100 and is
// capped at 1000.
func (s *Store) ListWebhookDeliveries(ctx context.Context, f store.WebhookDeliveryFilter) ([]store.WebhookDelivery, error) {
	var where []string
	var args []any
	for _, c := range []struct{ column, value string }{
		{"d.org_id", f.OrgID},
		{"d.endpoint_id", f.EndpointID},
		{"d.event_id", f.EventID},
		{"d.status", string(f.Status)},
	} {
		if c.value != "" {
			where = append(where, c.column+" = ?")
			args = append(args, c.value)
		}
	}
	if f.Before != "" {
		var createdAt int64
		if err := s.reader.QueryRowContext(ctx, deliveryCursor, f.Before).Scan(&createdAt); err != nil {
			return nil, wrapErr(err, "webhook delivery cursor "+quote(f.Before))
		}
		where = append(where, "(d.created_at, d.id) < (?, ?)")
		args = append(args, createdAt, f.Before)
	}
	args = append(args, sqlstore.ClampLimit(f.Limit, sqlstore.DefaultDeliveryLimit, sqlstore.MaxDeliveryLimit))

	query := deliverySelect
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	out, err := queryAll(ctx, s.reader, sqlstore.ScanDelivery, query+deliveryOrder, args...)
	return out, wrapErr(err, "list webhook deliveries")
}

// ListWebhookAttempts lists a delivery's attempts in order.
func (s *Store) ListWebhookAttempts(ctx context.Context, deliveryID string) ([]store.WebhookAttempt, error) {
	out, err := queryAll(ctx, s.reader, sqlstore.ScanAttempt, attemptsOf, deliveryID)
	return out, wrapErr(err, "list attempts of webhook delivery "+quote(deliveryID))
}

// RedeliverWebhook queues a finished delivery's event again, to the same
// endpoint, due at the given time (a zero at means now).
func (s *Store) RedeliverWebhook(ctx context.Context, deliveryID string, at time.Time, a store.AuditEntry) (store.WebhookDelivery, error) {
	due := sqlstore.Micros(s.orNow(at))
	var d store.WebhookDelivery
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		old, err := getDelivery(ctx, tx, deliveryID)
		if err != nil {
			return err
		}
		if err := sqlstore.CheckRedelivery(old); err != nil {
			return fmt.Errorf("sqlite: %w", err)
		}
		if _, err := getEndpoint(ctx, tx, old.EndpointID); err != nil {
			return err
		}
		id := ids.New(ids.WebhookDelivery)
		if _, err := tx.ExecContext(ctx, deliveryInsert, id, old.EventID, old.EndpointID, old.OrgID,
			string(store.WebhookPending), due, due, old.ID); err != nil {
			return wrapErr(err, "webhook delivery "+quote(id))
		}
		if err := s.writeAudit(ctx, tx, a, id); err != nil {
			return err
		}
		d, err = getDelivery(ctx, tx, id)
		return err
	})
	if err != nil {
		return store.WebhookDelivery{}, err
	}
	return d, nil
}

// PurgeWebhookDeliveries deletes the deliveries that finished before the
// given time, with their attempts, then the events created before it that
// are left without deliveries, in one transaction. It returns how many
// deliveries it deleted.
func (s *Store) PurgeWebhookDeliveries(ctx context.Context, finishedBefore time.Time) (int64, error) {
	if finishedBefore.IsZero() {
		return 0, nil
	}
	before := sqlstore.CeilMicros(finishedBefore)
	var n int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		if n, err = execAffected(ctx, tx, deliveriesPurge, before, string(store.WebhookPending)); err != nil {
			return wrapErr(err, "purge webhook deliveries")
		}
		_, err = tx.ExecContext(ctx, eventsPurge, before)
		return wrapErr(err, "purge webhook events")
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}
