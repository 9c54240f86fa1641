package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/store/internal/sqlstore"
)

// Webhook endpoints. The outbox of their deliveries is in
// webhook_deliveries.go.

const (
	endpointSelect = `SELECT ` + sqlstore.EndpointColumns + ` FROM webhook_endpoints`
	endpointInsert = `INSERT INTO webhook_endpoints (` + sqlstore.EndpointColumns + `)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	endpointUpdate = `UPDATE webhook_endpoints SET url = ?, description = ?, event_types = ?, secret = ?, previous_secret = ?,
		previous_secret_expires_at = ?, disabled = ?, disabled_reason = ?, disabled_at = ?, updated_at = ?,
		` + endpointHealthSet + ` WHERE id = ?`
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
	// endpointHealthSet sets sqlstore.HealthColumns.
	endpointHealthSet = `consecutive_failures = ?, failing_since = ?, last_success_at = ?, last_failure_at = ?,
		last_failure_status = ?, last_failure_error = ?`
	// endpointAttempted sets an endpoint's health after an attempt.
	endpointAttempted = `UPDATE webhook_endpoints SET ` + endpointHealthSet + ` WHERE id = ?`
)

func getEndpoint(ctx context.Context, q querier, id string) (store.WebhookEndpoint, error) {
	e, err := sqlstore.ScanEndpoint(q.QueryRowContext(ctx, endpointByID, id))
	return e, wrapErr(err, "webhook endpoint "+quote(id))
}

// checkEndpoint refuses an endpoint without one of its required fields.
func checkEndpoint(e store.WebhookEndpoint) error {
	if err := sqlstore.CheckEndpoint(e); err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	return nil
}

// CreateWebhookEndpoint creates a webhook endpoint; its event types are
// stored sorted, without duplicates.
func (s *Store) CreateWebhookEndpoint(ctx context.Context, e store.WebhookEndpoint, a store.AuditEntry) error {
	if err := checkEndpoint(e); err != nil {
		return err
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, endpointInsert, sqlstore.EndpointValues(e)...); err != nil {
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
	out, err := queryAll(ctx, s.reader, sqlstore.ScanEndpoint, query, args...)
	return out, wrapErr(err, "list webhook endpoints")
}

// UpdateWebhookEndpoint updates a webhook endpoint; ID, OrgID and CreatedAt
// cannot change, and the required fields must stay set.
func (s *Store) UpdateWebhookEndpoint(ctx context.Context, id string, fn func(store.WebhookEndpoint) (store.WebhookEndpoint, error), a store.AuditEntry) (store.WebhookEndpoint, error) {
	return update(ctx, s, rowUpdate[store.WebhookEndpoint]{
		Get: func(ctx context.Context, q querier) (store.WebhookEndpoint, error) {
			return getEndpoint(ctx, q, id)
		},
		Keep: sqlstore.KeepEndpoint,
		Put: func(ctx context.Context, q querier, e store.WebhookEndpoint) error {
			if err := checkEndpoint(e); err != nil {
				return err
			}
			args := append([]any{e.URL, e.Description, sqlstore.EventTypes(e.EventTypes),
				sqlstore.Blob(e.Secret), sqlstore.NullBlob(e.PreviousSecret), sqlstore.Micros(e.PreviousSecretExpiresAt),
				e.Disabled, e.DisabledReason, sqlstore.Micros(e.DisabledAt), sqlstore.Micros(e.UpdatedAt)},
				sqlstore.HealthValues(e.Health)...)
			_, err := q.ExecContext(ctx, endpointUpdate, append(args, e.ID)...)
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
		if _, err := tx.ExecContext(ctx, deliveriesEndpointDeleted, string(store.WebhookFailed), sqlstore.EndpointDeletedError,
			sqlstore.Micros(s.orNow(at)), id, string(store.WebhookPending)); err != nil {
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
	out, err := queryAll(ctx, q, sqlstore.ScanID, endpointsFor, ev.OrgID, ev.Type)
	return out, wrapErr(err, "webhook endpoints of organization "+quote(ev.OrgID))
}
