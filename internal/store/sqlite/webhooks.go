package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	"github.com/tollgate/tollgate/internal/store"
)

// Webhook endpoints. The outbox of their deliveries is in
// webhook_deliveries.go.

const (
	endpointColumns = `id, org_id, url, description, event_types, secret, previous_secret, previous_secret_expires_at,
		disabled, disabled_reason, disabled_at, consecutive_failures, created_at, updated_at`
	endpointSelect = `SELECT ` + endpointColumns + ` FROM webhook_endpoints`
	endpointInsert = `INSERT INTO webhook_endpoints (` + endpointColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	endpointUpdate = `UPDATE webhook_endpoints SET url = ?, description = ?, event_types = ?, secret = ?, previous_secret = ?,
		previous_secret_expires_at = ?, disabled = ?, disabled_reason = ?, disabled_at = ?, consecutive_failures = ?,
		updated_at = ? WHERE id = ?`
	endpointByID     = endpointSelect + ` WHERE id = ?`
	endpointsOfOrg   = endpointSelect + ` WHERE org_id = ? ORDER BY created_at, id`
	endpointsOrdered = endpointSelect + ` ORDER BY created_at, id`
	endpointDelete   = `DELETE FROM webhook_endpoints WHERE id = ?`
	// endpointsFor selects the enabled endpoints of an organization that
	// take an event type (the type, or "*", is in their JSON list).
	endpointsFor = `SELECT id FROM webhook_endpoints
		WHERE org_id = ? AND disabled = 0 AND EXISTS (SELECT 1 FROM json_each(event_types) WHERE value IN (?, '*'))
		ORDER BY created_at, id`
	endpointOfOrg = `SELECT 1 FROM webhook_endpoints WHERE id = ? AND org_id = ?`
	// endpointAttempted keeps the count of consecutive failures.
	endpointAttempted = `UPDATE webhook_endpoints SET consecutive_failures = CASE WHEN ? THEN 0 ELSE consecutive_failures + 1 END WHERE id = ?`
)

func scanEndpoint(r rowScanner) (store.WebhookEndpoint, error) {
	var e store.WebhookEndpoint
	err := r.Scan(&e.ID, &e.OrgID, &e.URL, &e.Description, listCol{&e.EventTypes}, blobCol{&e.Secret},
		blobCol{&e.PreviousSecret}, timeCol{&e.PreviousSecretExpiresAt}, &e.Disabled, &e.DisabledReason,
		timeCol{&e.DisabledAt}, &e.ConsecutiveFailures, timeCol{&e.CreatedAt}, timeCol{&e.UpdatedAt})
	return e, err
}

func getEndpoint(ctx context.Context, q querier, id string) (store.WebhookEndpoint, error) {
	e, err := scanEndpoint(q.QueryRowContext(ctx, endpointByID, id))
	return e, wrapErr(err, "webhook endpoint "+quote(id))
}

// checkEndpoint refuses an endpoint without one of its required fields.
func checkEndpoint(e store.WebhookEndpoint) error {
	if e.ID == "" || e.OrgID == "" || e.URL == "" || len(e.EventTypes) == 0 || len(e.Secret) == 0 {
		return fmt.Errorf("sqlite: webhook endpoint %q: ID, organization, URL, event types and secret are required", e.ID)
	}
	return nil
}

// eventTypes returns the event types as stored: sorted, without duplicates.
func eventTypes(types []string) string {
	return jsonList(slices.Compact(slices.Sorted(slices.Values(types))))
}

// CreateWebhookEndpoint creates a webhook endpoint; its event types are
// stored sorted, without duplicates.
func (s *Store) CreateWebhookEndpoint(ctx context.Context, e store.WebhookEndpoint, a store.AuditEntry) error {
	if err := checkEndpoint(e); err != nil {
		return err
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, endpointInsert, e.ID, e.OrgID, e.URL, e.Description, eventTypes(e.EventTypes),
			blob(e.Secret), nullBlob(e.PreviousSecret), micros(e.PreviousSecretExpiresAt), e.Disabled, e.DisabledReason,
			micros(e.DisabledAt), e.ConsecutiveFailures, micros(e.CreatedAt), micros(e.UpdatedAt))
		if err != nil {
			return wrapErr(err, "webhook endpoint "+quote(e.ID))
		}
		return s.writeAudit(ctx, tx, a, e.ID)
	})
}

// GetWebhookEndpoint returns the webhook endpoint with the given ID.
func (s *Store) GetWebhookEndpoint(ctx context.Context, id string) (store.WebhookEndpoint, error) {
	return getEndpoint(ctx, s.reader, id)
}

// ListWebhookEndpoints lists an organization's webhook endpoints (every
// organization's for orgID ""), oldest first.
func (s *Store) ListWebhookEndpoints(ctx context.Context, orgID string) ([]store.WebhookEndpoint, error) {
	query, args := endpointsOrdered, []any{}
	if orgID != "" {
		query, args = endpointsOfOrg, []any{orgID}
	}
	out, err := queryAll(ctx, s.reader, scanEndpoint, query, args...)
	return out, wrapErr(err, "list webhook endpoints")
}

// UpdateWebhookEndpoint updates a webhook endpoint; ID, OrgID and CreatedAt
// cannot change, and the required fields must stay set.
func (s *Store) UpdateWebhookEndpoint(ctx context.Context, id string, fn func(store.WebhookEndpoint) (store.WebhookEndpoint, error), a store.AuditEntry) (store.WebhookEndpoint, error) {
	return update(ctx, s, rowUpdate[store.WebhookEndpoint]{
		get: func(ctx context.Context, q querier) (store.WebhookEndpoint, error) {
			return getEndpoint(ctx, q, id)
		},
		keep: func(old, e store.WebhookEndpoint) store.WebhookEndpoint {
			e.ID, e.OrgID, e.CreatedAt = old.ID, old.OrgID, old.CreatedAt
			return e
		},
		put: func(ctx context.Context, q querier, e store.WebhookEndpoint) error {
			if err := checkEndpoint(e); err != nil {
				return err
			}
			_, err := q.ExecContext(ctx, endpointUpdate, e.URL, e.Description, eventTypes(e.EventTypes), blob(e.Secret),
				nullBlob(e.PreviousSecret), micros(e.PreviousSecretExpiresAt), e.Disabled, e.DisabledReason,
				micros(e.DisabledAt), e.ConsecutiveFailures, micros(e.UpdatedAt), e.ID)
			return wrapErr(err, "webhook endpoint "+quote(e.ID))
		},
	}, fn, a)
}

// DeleteWebhookEndpoint deletes a webhook endpoint and fails its pending
// deliveries at the given time (a zero at means now). Its deliveries stay,
// as the delivery log.
func (s *Store) DeleteWebhookEndpoint(ctx context.Context, id string, at time.Time, a store.AuditEntry) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		n, err := execAffected(ctx, tx, endpointDelete, id)
		if err == nil && n == 0 {
			err = sql.ErrNoRows
		}
		if err != nil {
			return wrapErr(err, "webhook endpoint "+quote(id))
		}
		if _, err := tx.ExecContext(ctx, deliveriesEndpointDeleted, string(store.WebhookFailed), endpointDeletedError,
			micros(s.orNow(at)), id, string(store.WebhookPending)); err != nil {
			return wrapErr(err, "fail deliveries of webhook endpoint "+quote(id))
		}
		return s.writeAudit(ctx, tx, a, "")
	})
}

// endpointIDs returns the endpoints an event goes to: ev.Endpoint if set (an
// endpoint of ev.OrgID, enabled or not), or else the enabled endpoints of
// ev.OrgID that take ev.Type.
func endpointIDs(ctx context.Context, q querier, ev store.WebhookEvent) ([]string, error) {
	if ev.Endpoint != "" {
		var one int
		err := q.QueryRowContext(ctx, endpointOfOrg, ev.Endpoint, ev.OrgID).Scan(&one)
		if err != nil {
			return nil, wrapErr(err, fmt.Sprintf("webhook endpoint %q of organization %q", ev.Endpoint, ev.OrgID))
		}
		return []string{ev.Endpoint}, nil
	}
	out, err := queryAll(ctx, q, scanID, endpointsFor, ev.OrgID, ev.Type)
	return out, wrapErr(err, "webhook endpoints of organization "+quote(ev.OrgID))
}

func scanID(r rowScanner) (id string, err error) {
	err = r.Scan(&id)
	return id, err
}
