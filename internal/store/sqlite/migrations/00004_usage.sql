-- Usage metering: an API key's own plan; the request log; the hourly, daily
-- and monthly rollups of units, requests and errors; and the durable copy of
-- the quota counters.

-- +goose Up
ALTER TABLE api_keys ADD COLUMN plan TEXT NOT NULL DEFAULT '';

-- request_log has no foreign keys: the record outlives what it describes, and
-- requests refused before authentication have no organization ('').
-- latency is in microseconds, websocket 0 or 1.
CREATE TABLE request_log (
    id             TEXT    NOT NULL PRIMARY KEY,
    time           INTEGER NOT NULL,
    org_id         TEXT    NOT NULL DEFAULT '',
    app_id         TEXT    NOT NULL DEFAULT '',
    credential_id  TEXT    NOT NULL DEFAULT '',
    auth_method    TEXT    NOT NULL DEFAULT '',
    method         TEXT    NOT NULL DEFAULT '',
    route          TEXT    NOT NULL DEFAULT '',
    path           TEXT    NOT NULL DEFAULT '',
    status         INTEGER NOT NULL,
    error_code     TEXT    NOT NULL DEFAULT '',
    latency        INTEGER NOT NULL DEFAULT 0,
    request_bytes  INTEGER NOT NULL DEFAULT 0,
    response_bytes INTEGER NOT NULL DEFAULT 0,
    units          INTEGER NOT NULL DEFAULT 0,
    client_ip      TEXT    NOT NULL DEFAULT '',
    user_agent     TEXT    NOT NULL DEFAULT '',
    websocket      INTEGER NOT NULL DEFAULT 0
) STRICT;
-- Pages of one organization's log, newest first; and the purge by time.
CREATE INDEX request_log_org_time ON request_log (org_id, time DESC, id DESC);
CREATE INDEX request_log_time ON request_log (time);

-- usage_rollups: granularity is 'hour', 'day' or 'month'; bucket_start the
-- start of the calendar period in UTC. The key serves the purge of hourly
-- rows by time, the second index the series of one organization.
CREATE TABLE usage_rollups (
    granularity   TEXT    NOT NULL,
    bucket_start  INTEGER NOT NULL,
    org_id        TEXT    NOT NULL,
    app_id        TEXT    NOT NULL DEFAULT '',
    credential_id TEXT    NOT NULL DEFAULT '',
    units         INTEGER NOT NULL DEFAULT 0,
    requests      INTEGER NOT NULL DEFAULT 0,
    errors        INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (granularity, bucket_start, org_id, app_id, credential_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX usage_rollups_org ON usage_rollups (org_id, granularity, bucket_start);

CREATE TABLE quota_counts (
    key        TEXT    NOT NULL PRIMARY KEY,
    used       INTEGER NOT NULL,
    period_end INTEGER NOT NULL
) STRICT;
CREATE INDEX quota_counts_period_end ON quota_counts (period_end);

-- +goose Down
DROP TABLE quota_counts;
DROP TABLE usage_rollups;
DROP TABLE request_log;
ALTER TABLE api_keys DROP COLUMN plan;
