-- Tollgate's initial schema.
--
-- Conventions (see package sqlite):
--   * times are INTEGER unix microseconds, NULL for "not set";
--   * string lists are TEXT holding a JSON array, audit details a JSON object;
--   * hashes are BLOBs with a UNIQUE index;
--   * emails are stored lower-cased by the Go code.

-- +goose Up
CREATE TABLE organizations (
    id         TEXT    NOT NULL PRIMARY KEY,
    name       TEXT    NOT NULL,
    slug       TEXT    NOT NULL,
    plan       TEXT    NOT NULL DEFAULT '',
    created_at INTEGER,
    updated_at INTEGER
) STRICT;
CREATE UNIQUE INDEX organizations_slug ON organizations (slug);

CREATE TABLE users (
    id            TEXT    NOT NULL PRIMARY KEY,
    org_id        TEXT    NOT NULL REFERENCES organizations (id),
    email         TEXT    NOT NULL,
    password_hash TEXT    NOT NULL,
    role          TEXT    NOT NULL,
    status        TEXT    NOT NULL,
    created_at    INTEGER,
    updated_at    INTEGER,
    last_login_at INTEGER
) STRICT;
CREATE UNIQUE INDEX users_email ON users (email);
CREATE INDEX users_org_status ON users (org_id, status);
CREATE INDEX users_status ON users (status);

CREATE TABLE apps (
    id             TEXT    NOT NULL PRIMARY KEY,
    org_id         TEXT    NOT NULL REFERENCES organizations (id),
    name           TEXT    NOT NULL,
    environment    TEXT    NOT NULL,
    client_id      TEXT    NOT NULL,
    secret_hash    BLOB    NOT NULL,
    allowed_scopes TEXT    NOT NULL DEFAULT '[]',
    ip_allowlist   TEXT    NOT NULL DEFAULT '[]',
    created_at     INTEGER,
    updated_at     INTEGER
) STRICT;
CREATE UNIQUE INDEX apps_client_id ON apps (client_id);
CREATE INDEX apps_org ON apps (org_id, created_at);

-- api_keys.app_id has no foreign key: keys outlive their app as history.
CREATE TABLE api_keys (
    id           TEXT    NOT NULL PRIMARY KEY,
    org_id       TEXT    NOT NULL REFERENCES organizations (id),
    app_id       TEXT    NOT NULL DEFAULT '',
    name         TEXT    NOT NULL,
    prefix       TEXT    NOT NULL,
    hash         BLOB    NOT NULL,
    scopes       TEXT    NOT NULL DEFAULT '[]',
    ip_allowlist TEXT    NOT NULL DEFAULT '[]',
    expires_at   INTEGER,
    created_at   INTEGER,
    updated_at   INTEGER,
    created_by   TEXT    NOT NULL DEFAULT '',
    last_used_at INTEGER,
    revoked_at   INTEGER
) STRICT;
CREATE UNIQUE INDEX api_keys_hash ON api_keys (hash);
CREATE INDEX api_keys_org_created ON api_keys (org_id, created_at);
CREATE INDEX api_keys_app ON api_keys (app_id);

CREATE TABLE plans (
    name                TEXT    NOT NULL PRIMARY KEY,
    requests_per_second REAL    NOT NULL,
    burst               INTEGER NOT NULL,
    quota_units         INTEGER NOT NULL,
    quota_period        TEXT    NOT NULL,
    updated_at          INTEGER
) STRICT;

CREATE TABLE signing_keys (
    id          TEXT    NOT NULL PRIMARY KEY,
    algorithm   TEXT    NOT NULL,
    private_key BLOB    NOT NULL,
    created_at  INTEGER,
    retired_at  INTEGER
) STRICT;
CREATE INDEX signing_keys_created ON signing_keys (created_at);

CREATE TABLE refresh_tokens (
    id         TEXT    NOT NULL PRIMARY KEY,
    family_id  TEXT    NOT NULL,
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    hash       BLOB    NOT NULL,
    created_at INTEGER,
    expires_at INTEGER,
    used_at    INTEGER,
    revoked_at INTEGER
) STRICT;
CREATE UNIQUE INDEX refresh_tokens_hash ON refresh_tokens (hash);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);

-- audit_log has no foreign keys: the record outlives what it describes.
CREATE TABLE audit_log (
    id          TEXT    NOT NULL PRIMARY KEY,
    time        INTEGER NOT NULL,
    org_id      TEXT    NOT NULL DEFAULT '',
    actor_type  TEXT    NOT NULL,
    actor_id    TEXT    NOT NULL DEFAULT '',
    action      TEXT    NOT NULL,
    target_type TEXT    NOT NULL DEFAULT '',
    target_id   TEXT    NOT NULL DEFAULT '',
    ip          TEXT    NOT NULL DEFAULT '',
    details     TEXT    NOT NULL DEFAULT '{}'
) STRICT;
CREATE INDEX audit_log_time ON audit_log (time, id);
CREATE INDEX audit_log_org_time ON audit_log (org_id, time, id);
CREATE INDEX audit_log_target_time ON audit_log (target_id, time, id);

-- +goose Down
DROP TABLE audit_log;
DROP TABLE refresh_tokens;
DROP TABLE signing_keys;
DROP TABLE plans;
DROP TABLE api_keys;
DROP TABLE apps;
DROP TABLE users;
DROP TABLE organizations;
