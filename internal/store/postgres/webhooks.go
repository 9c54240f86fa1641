package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/store/internal/sqlstore"
)

// Webhook endpoints. The outbox of their deliveries is in
// webhook_deliveries.go.

const (
	endpointSelect = `SELECT ` + sqlstore.EndpointColumns + ` FROM webhook_endpoints`
	endpointInsert = `INSERT INTO webhook_endpoints (` + sqlstore.EndpointColumns + `)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)`
	endpointUpdate = `UPDATE webhook_endpoints SET url = $1, description = $2, event_types = $3, secret = $4, previous_secret = $5,
		previous_secret_expires_at = $6, disabled = $7, disabled_reason = $8, disabled_at = $9, updated_at = $10,
		consecutive_failures = $11, failing_since = $12, last_success_at = $13, last_failure_at = $14,
		last_failure_status = $15, last_failure_error = $16 WHERE id = $17`
	endpointByID       = endpointSelect + ` WHERE id = $1`
	endpointByIDForUpd = endpointByID + ` FOR UPDATE`
	endpointsOfOrg     = endpointSelect + ` WHERE org_id = $1 ORDER BY created_at, id`
	endpointsOrdered   = endpointSelect + ` ORDER BY created_at, id`
	endpointDelete     = `DELETE FROM webhook_endpoints WHERE id = $1`
	// endpointsFor selects the enabled endpoints of an organization that
	// take an event type (the type, or "*", is in their JSON list), and
	// keeps them from being deleted before the deliveries queued for them
	// are committed (FOR KEY SHARE conflicts with DELETE only, not with the
	// updates of other fields).
	endpointsFor = `SELECT id FROM webhook_endpoints
		WHERE org_id = $1 AND NOT disabled AND (event_types @> jsonb_build_array($2::text) OR event_types @> '["*"]')
		ORDER BY created_at, id FOR KEY SHARE`
	endpointOfOrg = `SELECT 1 FROM webhook_endpoints WHERE id = $1 AND org_id = $2 FOR KEY SHARE`
	// endpointKept checks that an endpoint exists and keeps it from being
	// deleted until the transaction ends.
	endpointKept = `SELECT 1 FROM webhook_endpoints WHERE id = $1 FOR KEY SHARE`
	// endpointAttempted sets an endpoint's health (sqlstore.HealthColumns)
	// after an attempt.
	endpointAttempted = `UPDATE webhook_endpoints SET consecutive_failures = $1, failing_since = $2, last_success_at = $3,
		last_failure_at = $4, last_failure_status = $5, last_failure_error = $6 WHERE id = $7`
)

func getEndpoint(ctx context.Context, q querier, query, id string) (store.WebhookEndpoint, error) {
	e, err := sqlstore.ScanEndpoint(q.QueryRow(ctx, query, id))
	return e, wrapErr(err, "webhook endpoint "+quote(id))
}

// checkEndpoint refuses an endpoint without one of its required fields.
func checkEndpoint(e store.WebhookEndpoint) error {
	if err := sqlstore.CheckEndpoint(e); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	return nil
}

// CreateWebhookEndpoint creates a webhook endpoint; its event types are
// stored sorted, without duplicates.
func (s *Store) CreateWebhookEndpoint(ctx context.Context, e store.WebhookEndpoint, a store.AuditEntry) error {
	if err := checkEndpoint(e); err != nil {
		return err
	}
	return s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, endpointInsert, sqlstore.EndpointValues(e)...); err != nil {
			return wrapErr(err, "webhook endpoint "+quote(e.ID))
		}
		return s.writeAudit(ctx, tx, a, e.ID)
	})
}

// GetWebhookEndpoint returns the webhook endpoint with the given ID.
func (s *Store) GetWebhookEndpoint(ctx context.Context, id string) (store.WebhookEndpoint, error) {
	return getEndpoint(ctx, s.pool, endpointByID, id)
}

// ListWebhookEndpoints lists an organization's webhook endpoints (every
// organization's for orgID ""), oldest first.
func (s *Store) ListWebhookEndpoints(ctx context.Context, orgID string) ([]store.WebhookEndpoint, error) {
	query, args := endpointsOrdered, []any{}
	if orgID != "" {
		query, args = endpointsOfOrg, []any{orgID}
	}
	out, err := queryAll(ctx, s.pool, sqlstore.ScanEndpoint, query, args...)
	return out, wrapErr(err, "list webhook endpoints")
}

// UpdateWebhookEndpoint updates a webhook endpoint; ID, OrgID and CreatedAt
// cannot change, and the required fields must stay set.
func (s *Store) UpdateWebhookEndpoint(ctx context.Context, id string, fn func(store.WebhookEndpoint) (store.WebhookEndpoint, error), a store.AuditEntry) (store.WebhookEndpoint, error) {
	return update(ctx, s, rowUpdate[store.WebhookEndpoint]{
		Get: func(ctx context.Context, q querier) (store.WebhookEndpoint, error) {
			return getEndpoint(ctx, q, endpointByIDForUpd, id)
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
			_, err := q.Exec(ctx, endpointUpdate, append(args, e.ID)...)
			return wrapErr(err, "webhook endpoint "+quote(e.ID))
		},
	}, fn, a)
}

// DeleteWebhookEndpoint deletes a webhook endpoint and fails its pending
// deliveries at the given time (a zero at means now). Its deliveries stay,
// as the delivery log. The deletion waits for the transactions queueing
// deliveries for the endpoint (which lock it FOR KEY SHARE), so that it
// fails theirs too.
func (s *Store) DeleteWebhookEndpoint(ctx context.Context, id string, at time.Time, a store.AuditEntry) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		n, err := execAffected(ctx, tx, endpointDelete, id)
		if err == nil && n == 0 {
			err = pgx.ErrNoRows
		}
		if err != nil {
			return wrapErr(err, "webhook endpoint "+quote(id))
		}
		if _, err := tx.Exec(ctx, deliveriesEndpointDeleted, string(store.WebhookFailed), sqlstore.EndpointDeletedError,
			sqlstore.Micros(s.orNow(at)), id, string(store.WebhookPending)); err != nil {
			return wrapErr(err, "fail deliveries of webhook endpoint "+quote(id))
		}
		return s.writeAudit(ctx, tx, a, "")
	})
}

// endpointIDs returns the endpoints an event goes to: ev.Endpoint if set (an
// endpoint of ev.OrgID, enabled or not), or else the enabled endpoints of
// ev.OrgID that take ev.Type. It locks them FOR KEY SHARE.
func endpointIDs(ctx context.Context, q querier, ev store.WebhookEvent) ([]string, error) {
	if ev.Endpoint != "" {
		var one int
		err := q.QueryRow(ctx, endpointOfOrg, ev.Endpoint, ev.OrgID).Scan(&one)
		if err != nil {
			return nil, wrapErr(err, fmt.Sprintf("webhook endpoint %q of organization %q", ev.Endpoint, ev.OrgID))
		}
		return []string{ev.Endpoint}, nil
	}
	out, err := queryAll(ctx, q, sqlstore.ScanID, endpointsFor, ev.OrgID, ev.Type)
	return out, wrapErr(err, "webhook endpoints of organization "+quote(ev.OrgID))
}
