-- The request log may be sampled under overload while the rollups stay exact
-- (package usage): requests left out of the log are added to the rollups as
-- totals, and counted in omitted, the number of a row's requests that are not
-- in the request log.
--
-- usage_batches remembers the IDs of the batches of totals, which write no
-- request-log chunk to hold them (request_chunks.batch_id), so that a batch
-- retried after an uncertain failure is counted once. recorded_at is in unix
-- microseconds; the IDs are purged with the request log.

-- +goose Up
ALTER TABLE usage_rollups ADD COLUMN omitted BIGINT NOT NULL DEFAULT 0;

CREATE TABLE usage_batches (
    batch_id    TEXT   NOT NULL PRIMARY KEY,
    recorded_at BIGINT NOT NULL
);
CREATE INDEX usage_batches_recorded_at ON usage_batches (recorded_at);

-- +goose Down
DROP TABLE usage_batches;
ALTER TABLE usage_rollups DROP COLUMN omitted;
