package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tollgate/tollgate/internal/ids"
	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/store/internal/sqlstore"
)

// The webhook outbox: events, their deliveries (the delivery log) and the
// deliveries' attempts.
//
// A claim selects the due deliveries FOR UPDATE SKIP LOCKED and moves them to
// the end of their lease in the same transaction: a concurrent claim, from
// this process or another, skips the deliveries locked by the first, and
// once the first commits, finds them no longer due (PostgreSQL checks a row
// locked by a committed transaction against the query again).

const (
	eventInsert = `INSERT INTO webhook_events (id, org_id, type, payload, endpoint_id, created_at) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (id) DO NOTHING`

	// deliverySelect reads deliveries with their event.
	deliverySelect = `SELECT ` + sqlstore.DeliveryColumns + `
		FROM webhook_deliveries AS d JOIN webhook_events AS ev ON ev.id = d.event_id`
	deliveryByID = deliverySelect + ` WHERE d.id = $1`
	// deliveryByIDForUpd locks a delivery for an attempt to be recorded.
	deliveryByIDForUpd = deliveryByID + ` FOR UPDATE OF d`
	// deliveryByIDKept keeps the delivery a redelivery repeats from being
	// purged, with its event, until the redelivery is committed.
	deliveryByIDKept = deliveryByID + ` FOR KEY SHARE OF d`
	deliveryInsert   = `INSERT INTO webhook_deliveries (id, event_id, endpoint_id, org_id, status, attempts, next_attempt_at,
		created_at, redelivery_of) VALUES ($1, $2, $3, $4, $5, 0, $6, $7, $8)`
	deliveryCursor = `SELECT created_at FROM webhook_deliveries WHERE id = $1`
	deliveryOrder  = ` ORDER BY d.created_at DESC, d.id DESC LIMIT `
	// deliveriesDue selects and locks the due pending deliveries whose
	// endpoint is enabled, or is the one their event is addressed to,
	// skipping those another claim has locked.
	deliveriesDue = deliverySelect + ` JOIN webhook_endpoints AS e ON e.id = d.endpoint_id
		WHERE d.status = $1 AND d.next_attempt_at <= $2 AND (NOT e.disabled OR ev.endpoint_id = e.id)
		ORDER BY d.next_attempt_at, d.id LIMIT $3
		FOR UPDATE OF d SKIP LOCKED`
	// deliveriesLease moves deliveries to the end of their lease.
	deliveriesLease   = `UPDATE webhook_deliveries SET next_attempt_at = $1 WHERE id = ANY($2)`
	deliveryAttempted = `UPDATE webhook_deliveries SET status = $1, attempts = $2, next_attempt_at = $3, last_attempt_at = $4,
		last_status_code = $5, last_error = $6, finished_at = $7 WHERE id = $8`
	// deliveriesEndpointDeleted fails an endpoint's pending deliveries.
	deliveriesEndpointDeleted = `UPDATE webhook_deliveries SET status = $1, last_error = $2, finished_at = $3, next_attempt_at = NULL
		WHERE endpoint_id = $4 AND status = $5`
	// deliveriesPurge deletes finished deliveries; their attempts go with
	// them (ON DELETE CASCADE).
	deliveriesPurge = `DELETE FROM webhook_deliveries WHERE finished_at < $1 AND status <> $2`
	eventsPurge     = `DELETE FROM webhook_events WHERE created_at < $1
		AND NOT EXISTS (SELECT 1 FROM webhook_deliveries AS d WHERE d.event_id = webhook_events.id)`

	// deliveriesBacklog counts an endpoint's pending deliveries, through
	// webhook_deliveries_pending.
	deliveriesBacklog = `SELECT count(*), min(next_attempt_at) FROM webhook_deliveries WHERE endpoint_id = $1 AND status = 'pending'`

	attemptInsert = `INSERT INTO webhook_attempts (` + sqlstore.AttemptColumns + `) VALUES ($1, $2, $3, $4, $5, $6, $7)`
	attemptsOf    = `SELECT ` + sqlstore.AttemptColumns + ` FROM webhook_attempts WHERE delivery_id = $1 ORDER BY n`
)

func getDelivery(ctx context.Context, q querier, query, id string) (store.WebhookDelivery, error) {
	d, err := sqlstore.ScanDelivery(q.QueryRow(ctx, query, id))
	return d, wrapErr(err, "webhook delivery "+quote(id))
}

// EnqueueWebhookEvent stores ev and queues its deliveries, in one
// transaction (see store.Store). An event enqueued twice at once is stored
// and queued once: the second insertion waits for the first to commit, then
// inserts nothing.
func (s *Store) EnqueueWebhookEvent(ctx context.Context, ev store.WebhookEvent) (int, error) {
	if err := sqlstore.CheckEvent(ev); err != nil {
		return 0, fmt.Errorf("postgres: %w", err)
	}
	at := sqlstore.Micros(s.orNow(ev.CreatedAt))
	queued := 0
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		queued = 0
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
			if _, err := tx.Exec(ctx, deliveryInsert, id, ev.ID, endpoint, ev.OrgID,
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
		return nil, fmt.Errorf("postgres: %w", err)
	}
	until := sqlstore.LeaseEnd(now, lease)
	var claimed []store.WebhookDelivery
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		claimed, err = queryAll(ctx, tx, sqlstore.ScanDelivery, deliveriesDue, string(store.WebhookPending), now.UnixMicro(), limit)
		if err != nil || len(claimed) == 0 {
			return wrapErr(err, "claim webhook deliveries")
		}
		claimedIDs := sqlstore.Lease(claimed, until)
		_, err = tx.Exec(ctx, deliveriesLease, sqlstore.Micros(until), claimedIDs)
		return wrapErr(err, "claim webhook deliveries")
	})
	if err != nil {
		return nil, err
	}
	return claimed, nil
}

// RecordWebhookAttempt records an attempt of a pending delivery and its
// outcome (see store.Store). A zero at.At means now. The delivery is locked
// first, so that of two attempts recorded at once with the same number, the
// second finds it moved on (store.ErrConflict).
func (s *Store) RecordWebhookAttempt(ctx context.Context, at store.WebhookAttempt, next time.Time, health func(store.WebhookHealth) store.WebhookHealth) (store.WebhookDelivery, store.WebhookEndpoint, error) {
	if err := sqlstore.CheckAttempt(at); err != nil {
		return store.WebhookDelivery{}, store.WebhookEndpoint{}, fmt.Errorf("postgres: %w", err)
	}
	at.At = s.orNow(at.At)
	var (
		d store.WebhookDelivery
		e store.WebhookEndpoint
	)
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		old, err := getDelivery(ctx, tx, deliveryByIDForUpd, at.DeliveryID)
		if err != nil {
			return err
		}
		if err := sqlstore.CheckAttemptOf(old, at); err != nil {
			return fmt.Errorf("postgres: %w", err)
		}
		if _, err := tx.Exec(ctx, attemptInsert, sqlstore.AttemptValues(at)...); err != nil {
			return wrapErr(err, fmt.Sprintf("webhook attempt %d of %q", at.N, at.DeliveryID))
		}
		o := sqlstore.Outcome(at, next)
		if _, err := tx.Exec(ctx, deliveryAttempted, string(o.Status), at.N, o.NextAttemptAt, sqlstore.Micros(at.At),
			at.StatusCode, o.LastError, o.FinishedAt, at.DeliveryID); err != nil {
			return wrapErr(err, "webhook delivery "+quote(at.DeliveryID))
		}
		if d, err = getDelivery(ctx, tx, deliveryByID, at.DeliveryID); err != nil {
			return err
		}
		// Locked, so that two attempts recorded at once both count.
		if e, err = getEndpoint(ctx, tx, endpointByIDForUpd, old.EndpointID); err != nil || health == nil {
			return err
		}
		e.Health = sqlstore.NormalizeHealth(health(e.Health))
		_, err = tx.Exec(ctx, endpointAttempted, append(sqlstore.HealthValues(e.Health), e.ID)...)
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
	b, err := sqlstore.ScanBacklog(s.pool.QueryRow(ctx, deliveriesBacklog, endpointID))
	return b, wrapErr(err, "backlog of webhook endpoint "+quote(endpointID))
}

// GetWebhookDelivery returns the webhook delivery with the given ID.
func (s *Store) GetWebhookDelivery(ctx context.Context, id string) (store.WebhookDelivery, error) {
	return getDelivery(ctx, s.pool, deliveryByID, id)
}

// ListWebhookDeliveries lists deliveries newest first (by creation time,
// then by ID descending), filtered by f. f.Limit defaults to 100 and is
// capped at 1000.
func (s *Store) ListWebhookDeliveries(ctx context.Context, f store.WebhookDeliveryFilter) ([]store.WebhookDelivery, error) {
	var w where
	for _, c := range []struct{ column, value string }{
		{"d.org_id", f.OrgID},
		{"d.endpoint_id", f.EndpointID},
		{"d.event_id", f.EventID},
		{"d.status", string(f.Status)},
	} {
		if c.value != "" {
			w.add(c.column+" = ?", c.value)
		}
	}
	if f.Before != "" {
		var createdAt int64
		if err := s.pool.QueryRow(ctx, deliveryCursor, f.Before).Scan(&createdAt); err != nil {
			return nil, wrapErr(err, "webhook delivery cursor "+quote(f.Before))
		}
		w.add("(d.created_at, d.id) < (?, ?)", createdAt, f.Before)
	}
	limit := w.param(sqlstore.ClampLimit(f.Limit, sqlstore.DefaultDeliveryLimit, sqlstore.MaxDeliveryLimit))
	out, err := queryAll(ctx, s.pool, sqlstore.ScanDelivery, deliverySelect+w.String()+deliveryOrder+limit, w.args...)
	return out, wrapErr(err, "list webhook deliveries")
}

// ListWebhookAttempts lists a delivery's attempts in order.
func (s *Store) ListWebhookAttempts(ctx context.Context, deliveryID string) ([]store.WebhookAttempt, error) {
	out, err := queryAll(ctx, s.pool, sqlstore.ScanAttempt, attemptsOf, deliveryID)
	return out, wrapErr(err, "list attempts of webhook delivery "+quote(deliveryID))
}

// RedeliverWebhook queues a finished delivery's event again, to the same
// endpoint, due at the given time (a zero at means now). The original
// delivery and the endpoint are locked FOR KEY SHARE, so that neither a
// purge nor the endpoint's deletion can come between the checks and the
// commit.
func (s *Store) RedeliverWebhook(ctx context.Context, deliveryID string, at time.Time, a store.AuditEntry) (store.WebhookDelivery, error) {
	due := sqlstore.Micros(s.orNow(at))
	var d store.WebhookDelivery
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		old, err := getDelivery(ctx, tx, deliveryByIDKept, deliveryID)
		if err != nil {
			return err
		}
		if err := sqlstore.CheckRedelivery(old); err != nil {
			return fmt.Errorf("postgres: %w", err)
		}
		var one int
		if err := tx.QueryRow(ctx, endpointKept, old.EndpointID).Scan(&one); err != nil {
			return wrapErr(err, "webhook endpoint "+quote(old.EndpointID))
		}
		id := ids.New(ids.WebhookDelivery)
		if _, err := tx.Exec(ctx, deliveryInsert, id, old.EventID, old.EndpointID, old.OrgID,
			string(store.WebhookPending), due, due, old.ID); err != nil {
			return wrapErr(err, "webhook delivery "+quote(id))
		}
		if err := s.writeAudit(ctx, tx, a, id); err != nil {
			return err
		}
		d, err = getDelivery(ctx, tx, deliveryByID, id)
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
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		if n, err = execAffected(ctx, tx, deliveriesPurge, before, string(store.WebhookPending)); err != nil {
			return wrapErr(err, "purge webhook deliveries")
		}
		_, err = tx.Exec(ctx, eventsPurge, before)
		return wrapErr(err, "purge webhook events")
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}
