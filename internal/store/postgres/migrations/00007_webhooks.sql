-- Webhooks: organizations' endpoints, and a durable outbox of their events'
-- deliveries, which is also the delivery log.
--
--   * webhook_endpoints.event_types is a JSONB array, like the other string
--     lists; EnqueueWebhookEvent matches it with @>. An organization has a
--     handful of endpoints, read in full through webhook_endpoints_org, so a
--     join table would buy nothing but a second write.
--   * An event's payload is stored once, in webhook_events; its deliveries
--     (one per endpoint, plus redeliveries) refer to it.
--   * webhook_deliveries.endpoint_id has no foreign key: the delivery log
--     outlives the endpoint, as api_keys.app_id outlives the app. Deleting
--     an endpoint fails its pending deliveries (in Go, in the same
--     transaction). redelivery_of is a plain column for the same reason:
--     the purge may remove the original first.
--   * webhook_events.endpoint_id is the endpoint a test event is addressed
--     to, '' for an ordinary event.
--   * webhook_attempts.duration is in microseconds.

-- +goose Up
CREATE TABLE webhook_endpoints (
    id                         TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    org_id                     TEXT             NOT NULL REFERENCES organizations (id),
    url                        TEXT             NOT NULL,
    description                TEXT             NOT NULL DEFAULT '',
    event_types                JSONB            NOT NULL DEFAULT '[]',
    secret                     BYTEA            NOT NULL,
    previous_secret            BYTEA,
    previous_secret_expires_at BIGINT,
    disabled                   BOOLEAN          NOT NULL DEFAULT false,
    disabled_reason            TEXT             NOT NULL DEFAULT '',
    disabled_at                BIGINT,
    consecutive_failures       BIGINT           NOT NULL DEFAULT 0,
    created_at                 BIGINT,
    updated_at                 BIGINT
);
-- An organization's endpoints, oldest first (listing and fan-out).
CREATE INDEX webhook_endpoints_org ON webhook_endpoints (org_id, created_at, id);

CREATE TABLE webhook_events (
    id          TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    org_id      TEXT             NOT NULL REFERENCES organizations (id),
    type        TEXT             NOT NULL,
    payload     BYTEA            NOT NULL,
    endpoint_id TEXT             NOT NULL DEFAULT '',
    created_at  BIGINT           NOT NULL
);
-- The purge finds old events.
CREATE INDEX webhook_events_created ON webhook_events (created_at);

CREATE TABLE webhook_deliveries (
    id               TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    event_id         TEXT COLLATE "C" NOT NULL REFERENCES webhook_events (id),
    endpoint_id      TEXT COLLATE "C" NOT NULL,
    org_id           TEXT             NOT NULL,
    status           TEXT             NOT NULL,
    attempts         BIGINT           NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT,
    last_attempt_at  BIGINT,
    last_status_code BIGINT           NOT NULL DEFAULT 0,
    last_error       TEXT             NOT NULL DEFAULT '',
    created_at       BIGINT           NOT NULL,
    finished_at      BIGINT,
    redelivery_of    TEXT             NOT NULL DEFAULT ''
);
-- Claims walk the due pending deliveries, oldest first (id breaks ties, so
-- that a claim reads no more rows than it takes).
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at, id);
-- The delivery log (all of it, of an endpoint, of an organization), newest
-- first.
CREATE INDEX webhook_deliveries_created ON webhook_deliveries (created_at DESC, id DESC);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, created_at DESC, id DESC);
CREATE INDEX webhook_deliveries_org ON webhook_deliveries (org_id, created_at DESC, id DESC);
-- An event's deliveries (listing, and the purge of events left without any).
CREATE INDEX webhook_deliveries_event ON webhook_deliveries (event_id);
-- The purge finds finished deliveries.
CREATE INDEX webhook_deliveries_finished ON webhook_deliveries (finished_at);

CREATE TABLE webhook_attempts (
    delivery_id TEXT COLLATE "C" NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    n           BIGINT           NOT NULL,
    at          BIGINT           NOT NULL,
    duration    BIGINT           NOT NULL DEFAULT 0,
    status_code BIGINT           NOT NULL DEFAULT 0,
    error       TEXT             NOT NULL DEFAULT '',
    succeeded   BOOLEAN          NOT NULL DEFAULT false,
    PRIMARY KEY (delivery_id, n)
);

-- +goose Down
DROP TABLE webhook_attempts;
DROP TABLE webhook_deliveries;
DROP TABLE webhook_events;
DROP TABLE webhook_endpoints;
