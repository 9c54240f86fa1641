-- Webhook endpoints' health: when the current run of failed attempts began
-- (failing_since, NULL while healthy), the latest success and failure, and
-- the latest failure's status and error. Package webhooks disables an
-- endpoint by how long it has been failing, not by a count of attempts.
--
-- The columns are filled from what the delivery log still holds; an
-- endpoint with failures counted but none left in the log starts healthy.
-- webhook_deliveries_pending finds an endpoint's pending deliveries (its
-- backlog and next attempt) without reading its finished ones.

-- +goose Up
ALTER TABLE webhook_endpoints ADD COLUMN failing_since INTEGER;
ALTER TABLE webhook_endpoints ADD COLUMN last_success_at INTEGER;
ALTER TABLE webhook_endpoints ADD COLUMN last_failure_at INTEGER;
ALTER TABLE webhook_endpoints ADD COLUMN last_failure_status INTEGER NOT NULL DEFAULT 0;
ALTER TABLE webhook_endpoints ADD COLUMN last_failure_error TEXT NOT NULL DEFAULT '';

UPDATE webhook_endpoints SET
    last_success_at = (SELECT max(a.at) FROM webhook_attempts AS a JOIN webhook_deliveries AS d ON d.id = a.delivery_id
        WHERE d.endpoint_id = webhook_endpoints.id AND a.succeeded = 1),
    last_failure_at = (SELECT max(a.at) FROM webhook_attempts AS a JOIN webhook_deliveries AS d ON d.id = a.delivery_id
        WHERE d.endpoint_id = webhook_endpoints.id AND a.succeeded = 0);
UPDATE webhook_endpoints SET
    last_failure_status = (SELECT a.status_code FROM webhook_attempts AS a JOIN webhook_deliveries AS d ON d.id = a.delivery_id
        WHERE d.endpoint_id = webhook_endpoints.id AND a.succeeded = 0 ORDER BY a.at DESC LIMIT 1),
    last_failure_error = (SELECT a.error FROM webhook_attempts AS a JOIN webhook_deliveries AS d ON d.id = a.delivery_id
        WHERE d.endpoint_id = webhook_endpoints.id AND a.succeeded = 0 ORDER BY a.at DESC LIMIT 1)
    WHERE last_failure_at IS NOT NULL;
UPDATE webhook_endpoints SET
    failing_since = (SELECT min(a.at) FROM webhook_attempts AS a JOIN webhook_deliveries AS d ON d.id = a.delivery_id
        WHERE d.endpoint_id = webhook_endpoints.id AND a.succeeded = 0 AND a.at > coalesce(webhook_endpoints.last_success_at, 0))
    WHERE consecutive_failures > 0;
UPDATE webhook_endpoints SET consecutive_failures = 0 WHERE failing_since IS NULL;

CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (endpoint_id, next_attempt_at) WHERE status = 'pending';

-- +goose Down
DROP INDEX webhook_deliveries_pending;
ALTER TABLE webhook_endpoints DROP COLUMN last_failure_error;
ALTER TABLE webhook_endpoints DROP COLUMN last_failure_status;
ALTER TABLE webhook_endpoints DROP COLUMN last_failure_at;
ALTER TABLE webhook_endpoints DROP COLUMN last_success_at;
ALTER TABLE webhook_endpoints DROP COLUMN failing_since;
