package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/tollgate/tollgate/internal/ids"
	"github.com/tollgate/tollgate/internal/store"
)

// The webhook outbox: events, their deliveries (the delivery log) and the
// deliveries' attempts.
//
// Claims run in a write transaction (BEGIN IMMEDIATE), which holds the
// file's write lock from the first read: two claims, from this process or
// another, cannot read the same due delivery, since the second one reads
// after the first one has moved it past the lease.

// Webhook delivery list limits: ListWebhookDeliveries returns
// defaultDeliveryLimit deliveries when the filter does not say, and never
// more than maxDeliveryLimit.
const (
	defaultDeliveryLimit = 100
	maxDeliveryLimit     = 1000
)

// endpointDeletedError is the LastError of the deliveries failed by the
// deletion of their endpoint.
const endpointDeletedError = "endpoint deleted"

const (
	eventInsert = `INSERT INTO webhook_events (id, org_id, type, payload, endpoint_id, created_at) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO NOTHING`

	// deliverySelect reads deliveries with their event.
	deliverySelect = `SELECT d.id, d.event_id, d.endpoint_id, d.org_id, ev.type, ev.payload, ev.created_at, d.status,
		d.attempts, d.next_attempt_at, d.last_attempt_at, d.last_status_code, d.last_error, d.created_at, d.finished_at,
		d.redelivery_of
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

	attemptColumns = `delivery_id, n, at, duration, status_code, error, succeeded`
	attemptInsert  = `INSERT INTO webhook_attempts (` + attemptColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?)`
	attemptsOf     = `SELECT ` + attemptColumns + ` FROM webhook_attempts WHERE delivery_id = ? ORDER BY n`
)

func scanDelivery(r rowScanner) (store.WebhookDelivery, error) {
	var d store.WebhookDelivery
	err := r.Scan(&d.ID, &d.EventID, &d.EndpointID, &d.OrgID, &d.EventType, blobCol{&d.Payload},
		timeCol{&d.EventCreatedAt}, &d.Status, &d.Attempts, timeCol{&d.NextAttemptAt}, timeCol{&d.LastAttemptAt},
		&d.LastStatusCode, &d.LastError, timeCol{&d.CreatedAt}, timeCol{&d.FinishedAt}, &d.RedeliveryOf)
	return d, err
}

func getDelivery(ctx context.Context, q querier, id string) (store.WebhookDelivery, error) {
	d, err := scanDelivery(q.QueryRowContext(ctx, deliveryByID, id))
	return d, wrapErr(err, "webhook delivery "+quote(id))
}

func scanAttempt(r rowScanner) (store.WebhookAttempt, error) {
	var a store.WebhookAttempt
	var us int64
	err := r.Scan(&a.DeliveryID, &a.N, timeCol{&a.At}, &us, &a.StatusCode, &a.Error, &a.Succeeded)
	a.Duration = time.Duration(us) * time.Microsecond
	return a, err
}

// EnqueueWebhookEvent stores ev and queues its deliveries, in one
// transaction (see store.Store).
func (s *Store) EnqueueWebhookEvent(ctx context.Context, ev store.WebhookEvent) (int, error) {
	if ev.ID == "" || ev.OrgID == "" || ev.Type == "" {
		return 0, fmt.Errorf("sqlite: webhook event %q: ID, organization and type are required", ev.ID)
	}
	at := micros(s.orNow(ev.CreatedAt))
	queued := 0
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		n, err := execAffected(ctx, tx, eventInsert, ev.ID, ev.OrgID, ev.Type, blob(ev.Payload), ev.Endpoint, at)
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
	if lease <= 0 || limit <= 0 {
		return nil, fmt.Errorf("sqlite: claim webhook deliveries: lease %v and limit %d must be positive", lease, limit)
	}
	until := time.UnixMicro(now.Add(lease).UnixMicro()).UTC()
	var claimed []store.WebhookDelivery
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		claimed, err = queryAll(ctx, tx, scanDelivery, deliveriesDue, string(store.WebhookPending), now.UnixMicro(), limit)
		if err != nil || len(claimed) == 0 {
			return wrapErr(err, "claim webhook deliveries")
		}
		claimedIDs := make([]string, len(claimed))
		for i := range claimed {
			claimedIDs[i] = claimed[i].ID
			claimed[i].NextAttemptAt = until
		}
		_, err = tx.ExecContext(ctx, deliveriesLease, micros(until), jsonList(claimedIDs))
		return wrapErr(err, "claim webhook deliveries")
	})
	if err != nil {
		return nil, err
	}
	return claimed, nil
}

// RecordWebhookAttempt records an attempt of a pending delivery and its
// outcome (see store.Store). A zero at.At means now.
func (s *Store) RecordWebhookAttempt(ctx context.Context, at store.WebhookAttempt, next time.Time) (store.WebhookDelivery, store.WebhookEndpoint, error) {
	if at.DeliveryID == "" || at.N < 1 {
		return store.WebhookDelivery{}, store.WebhookEndpoint{}, fmt.Errorf(
			"sqlite: webhook attempt %d of %q: a delivery ID and an attempt number from 1 are required", at.N, at.DeliveryID)
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
		if old.Status != store.WebhookPending || old.Attempts != at.N-1 {
			return fmt.Errorf("sqlite: webhook attempt %d of %q, which is %s after %d attempts: %w",
				at.N, at.DeliveryID, old.Status, old.Attempts, store.ErrConflict)
		}
		if _, err := tx.ExecContext(ctx, attemptInsert, at.DeliveryID, at.N, micros(at.At), at.Duration.Microseconds(),
			at.StatusCode, at.Error, at.Succeeded); err != nil {
			return wrapErr(err, fmt.Sprintf("webhook attempt %d of %q", at.N, at.DeliveryID))
		}
		status, lastError, nextAt, finishedAt := store.WebhookPending, at.Error, micros(next), any(nil)
		switch {
		case at.Succeeded:
			status, lastError, nextAt, finishedAt = store.WebhookSucceeded, "", nil, micros(at.At)
		case next.IsZero():
			status, finishedAt = store.WebhookFailed, micros(at.At)
		}
		if _, err := tx.ExecContext(ctx, deliveryAttempted, string(status), at.N, nextAt, micros(at.At), at.StatusCode,
			lastError, finishedAt, at.DeliveryID); err != nil {
			return wrapErr(err, "webhook delivery "+quote(at.DeliveryID))
		}
		if _, err := tx.ExecContext(ctx, endpointAttempted, at.Succeeded, old.EndpointID); err != nil {
			return wrapErr(err, "webhook endpoint "+quote(old.EndpointID))
		}
		if d, err = getDelivery(ctx, tx, at.DeliveryID); err != nil {
			return err
		}
		e, err = getEndpoint(ctx, tx, old.EndpointID)
		return err
	})
	if err != nil {
		return store.WebhookDelivery{}, store.WebhookEndpoint{}, err
	}
	return d, e, nil
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
	args = append(args, clampLimit(f.Limit, defaultDeliveryLimit, maxDeliveryLimit))

	query := deliverySelect
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	out, err := queryAll(ctx, s.reader, scanDelivery, query+deliveryOrder, args...)
	return out, wrapErr(err, "list webhook deliveries")
}

// ListWebhookAttempts lists a delivery's attempts in order.
func (s *Store) ListWebhookAttempts(ctx context.Context, deliveryID string) ([]store.WebhookAttempt, error) {
	out, err := queryAll(ctx, s.reader, scanAttempt, attemptsOf, deliveryID)
	return out, wrapErr(err, "list attempts of webhook delivery "+quote(deliveryID))
}

// RedeliverWebhook queues a finished delivery's event again, to the same
// endpoint, due at the given time (a zero at means now).
func (s *Store) RedeliverWebhook(ctx context.Context, deliveryID string, at time.Time, a store.AuditEntry) (store.WebhookDelivery, error) {
	due := micros(s.orNow(at))
	var d store.WebhookDelivery
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		old, err := getDelivery(ctx, tx, deliveryID)
		if err != nil {
			return err
		}
		if old.Status == store.WebhookPending {
			return fmt.Errorf("sqlite: redeliver webhook delivery %q, which is pending: %w", deliveryID, store.ErrConflict)
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
	before := ceilMicros(finishedBefore)
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
