-- The request log moves from one row per request to one row per recorded
-- batch and organization: a chunk of events as a JSON array. A row per request
-- cost four B-tree insertions and eighteen bound parameters for every request
-- proxied, most of the gateway's own CPU time per request; a chunk costs that
-- once per batch. Reads decode the chunks that can hold what they ask for.
--
-- batch_id is the batch's idempotency key (NULL for chunks moved from
-- request_log). min_time and max_time bound the events' times, in unix
-- microseconds; entries counts them. The keys of each event object are
-- listed in internal/store/internal/sqlstore/chunk.go (ChunkEvent).

-- +goose Up
CREATE TABLE request_chunks (
    id        INTEGER PRIMARY KEY,
    batch_id  TEXT,
    org_id    TEXT    NOT NULL,
    min_time  INTEGER NOT NULL,
    max_time  INTEGER NOT NULL,
    entries   INTEGER NOT NULL,
    events    TEXT    NOT NULL
) STRICT;
-- Retries find their batch; pages of one organization walk back from its
-- newest chunk; the purge finds the chunks that ended before its horizon,
-- and those that began before it (which it rewrites).
CREATE UNIQUE INDEX request_chunks_batch ON request_chunks (batch_id, org_id);
CREATE INDEX request_chunks_org ON request_chunks (org_id, max_time);
CREATE INDEX request_chunks_time ON request_chunks (max_time);
CREATE INDEX request_chunks_start ON request_chunks (min_time);

INSERT INTO request_chunks (org_id, min_time, max_time, entries, events)
SELECT org_id, min(time), max(time), count(*), json_group_array(json_object(
    'i', id, 't', time, 'a', app_id, 'c', credential_id, 'm', auth_method,
    'v', method, 'r', route, 'p', path, 's', status, 'e', error_code,
    'l', latency, 'q', request_bytes, 'b', response_bytes, 'u', units,
    'ip', client_ip, 'ua', user_agent, 'w', websocket))
FROM request_log
GROUP BY org_id, rowid / 1000;

DROP TABLE request_log;

-- +goose Down
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
CREATE INDEX request_log_org_time ON request_log (org_id, time DESC, id DESC);
CREATE INDEX request_log_time ON request_log (time);

INSERT INTO request_log
SELECT json_extract(e.value, '$.i'), json_extract(e.value, '$.t'), c.org_id,
    ifnull(json_extract(e.value, '$.a'), ''), ifnull(json_extract(e.value, '$.c'), ''),
    ifnull(json_extract(e.value, '$.m'), ''), ifnull(json_extract(e.value, '$.v'), ''),
    ifnull(json_extract(e.value, '$.r'), ''), ifnull(json_extract(e.value, '$.p'), ''),
    ifnull(json_extract(e.value, '$.s'), 0), ifnull(json_extract(e.value, '$.e'), ''),
    ifnull(json_extract(e.value, '$.l'), 0), ifnull(json_extract(e.value, '$.q'), 0),
    ifnull(json_extract(e.value, '$.b'), 0), ifnull(json_extract(e.value, '$.u'), 0),
    ifnull(json_extract(e.value, '$.ip'), ''), ifnull(json_extract(e.value, '$.ua'), ''),
    ifnull(json_extract(e.value, '$.w'), 0)
FROM request_chunks AS c, json_each(c.events) AS e
WHERE true
ON CONFLICT (id) DO NOTHING;

DROP TABLE request_chunks;
