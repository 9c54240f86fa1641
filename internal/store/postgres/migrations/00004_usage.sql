-- Usage metering: an API key's own plan; the request log; the hourly, daily
-- and monthly rollups of units, requests and errors; and the durable copy of
-- the quota counters.

-- +goose Up
ALTER TABLE api_keys ADD COLUMN plan TEXT NOT NULL DEFAULT '';

-- request_log has no foreign keys: the record outlives what it describes, and
-- requests refused before authentication have no organization ('').
-- latency is in microseconds.
CREATE TABLE request_log (
    id             TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    time           BIGINT           NOT NULL,
    org_id         TEXT             NOT NULL DEFAULT '',
    app_id         TEXT             NOT NULL DEFAULT '',
    credential_id  TEXT             NOT NULL DEFAULT '',
    auth_method    TEXT             NOT NULL DEFAULT '',
    method         TEXT             NOT NULL DEFAULT '',
    route          TEXT             NOT NULL DEFAULT '',
    path           TEXT             NOT NULL DEFAULT '',
    status         BIGINT           NOT NULL,
    error_code     TEXT             NOT NULL DEFAULT '',
    latency        BIGINT           NOT NULL DEFAULT 0,
    request_bytes  BIGINT           NOT NULL DEFAULT 0,
    response_bytes BIGINT           NOT NULL DEFAULT 0,
    units          BIGINT           NOT NULL DEFAULT 0,
    client_ip      TEXT             NOT NULL DEFAULT '',
    user_agent     TEXT             NOT NULL DEFAULT '',
    websocket      BOOLEAN          NOT NULL DEFAULT false
);
-- Pages of one organization's log, newest first; and the purge by time.
CREATE INDEX request_log_org_time ON request_log (org_id, time DESC, id DESC);
CREATE INDEX request_log_time ON request_log (time);

-- usage_rollups: granularity is 'hour', 'day' or 'month'; bucket_start the
-- start of the calendar period in UTC. The key serves the purge of hourly
-- rows by time, the second index the series of one organization.
CREATE TABLE usage_rollups (
    granularity   TEXT   NOT NULL,
    bucket_start  BIGINT NOT NULL,
    org_id        TEXT   NOT NULL,
    app_id        TEXT   NOT NULL DEFAULT '',
    credential_id TEXT   NOT NULL DEFAULT '',
    units         BIGINT NOT NULL DEFAULT 0,
    requests      BIGINT NOT NULL DEFAULT 0,
    errors        BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (granularity, bucket_start, org_id, app_id, credential_id)
);
CREATE INDEX usage_rollups_org ON usage_rollups (org_id, granularity, bucket_start);

CREATE TABLE quota_counts (
    key        TEXT   NOT NULL PRIMARY KEY,
    used       BIGINT NOT NULL,
    period_end BIGINT NOT NULL
);
CREATE INDEX quota_counts_period_end ON quota_counts (period_end);

-- +goose Down
DROP TABLE quota_counts;
DROP TABLE usage_rollups;
DROP TABLE request_log;
ALTER TABLE api_keys DROP COLUMN plan;
