-- Tollgate's initial schema: the PostgreSQL twin of the SQLite migration of
-- the same name (internal/store/sqlite/migrations), table for table.
--
-- Conventions (see package postgres):
--   * times are BIGINT unix microseconds, NULL for "not set";
--   * string lists are JSONB arrays, audit details a JSONB object;
--   * hashes are BYTEA with a UNIQUE index;
--   * integers are BIGINT, flags BOOLEAN;
--   * the text columns that lists are ordered or paged by (IDs, plan names)
--     are COLLATE "C", so that they sort bytewise as in SQLite, whatever the
--     database's collation;
--   * emails are stored lower-cased by the Go code.

-- +goose Up
CREATE TABLE organizations (
    id         TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    name       TEXT             NOT NULL,
    slug       TEXT             NOT NULL,
    plan       TEXT             NOT NULL DEFAULT '',
    created_at BIGINT,
    updated_at BIGINT
);
CREATE UNIQUE INDEX organizations_slug ON organizations (slug);

CREATE TABLE users (
    id            TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    org_id        TEXT             NOT NULL REFERENCES organizations (id),
    email         TEXT             NOT NULL,
    password_hash TEXT             NOT NULL,
    role          TEXT             NOT NULL,
    status        TEXT             NOT NULL,
    created_at    BIGINT,
    updated_at    BIGINT,
    last_login_at BIGINT
);
CREATE UNIQUE INDEX users_email ON users (email);
CREATE INDEX users_org_status ON users (org_id, status);
CREATE INDEX users_status ON users (status);

CREATE TABLE apps (
    id             TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    org_id         TEXT             NOT NULL REFERENCES organizations (id),
    name           TEXT             NOT NULL,
    environment    TEXT             NOT NULL,
    client_id      TEXT             NOT NULL,
    secret_hash    BYTEA            NOT NULL,
    allowed_scopes JSONB            NOT NULL DEFAULT '[]',
    ip_allowlist   JSONB            NOT NULL DEFAULT '[]',
    created_at     BIGINT,
    updated_at     BIGINT
);
CREATE UNIQUE INDEX apps_client_id ON apps (client_id);
CREATE INDEX apps_org ON apps (org_id, created_at);

-- api_keys.app_id has no foreign key: keys outlive their app as history.
CREATE TABLE api_keys (
    id           TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    org_id       TEXT             NOT NULL REFERENCES organizations (id),
    app_id       TEXT             NOT NULL DEFAULT '',
    name         TEXT             NOT NULL,
    prefix       TEXT             NOT NULL,
    hash         BYTEA            NOT NULL,
    scopes       JSONB            NOT NULL DEFAULT '[]',
    ip_allowlist JSONB            NOT NULL DEFAULT '[]',
    expires_at   BIGINT,
    created_at   BIGINT,
    updated_at   BIGINT,
    created_by   TEXT             NOT NULL DEFAULT '',
    last_used_at BIGINT,
    revoked_at   BIGINT
);
CREATE UNIQUE INDEX api_keys_hash ON api_keys (hash);
CREATE INDEX api_keys_org_created ON api_keys (org_id, created_at);
CREATE INDEX api_keys_app ON api_keys (app_id);

CREATE TABLE plans (
    name                TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    requests_per_second DOUBLE PRECISION NOT NULL,
    burst               BIGINT           NOT NULL,
    quota_units         BIGINT           NOT NULL,
    quota_period        TEXT             NOT NULL,
    updated_at          BIGINT
);

CREATE TABLE signing_keys (
    id          TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    algorithm   TEXT             NOT NULL,
    private_key BYTEA            NOT NULL,
    created_at  BIGINT,
    retired_at  BIGINT
);
CREATE INDEX signing_keys_created ON signing_keys (created_at);

CREATE TABLE refresh_tokens (
    id         TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    family_id  TEXT             NOT NULL,
    user_id    TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    hash       BYTEA            NOT NULL,
    created_at BIGINT,
    expires_at BIGINT,
    used_at    BIGINT,
    revoked_at BIGINT
);
CREATE UNIQUE INDEX refresh_tokens_hash ON refresh_tokens (hash);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);

-- audit_log has no foreign keys: the record outlives what it describes.
CREATE TABLE audit_log (
    id          TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    time        BIGINT           NOT NULL,
    org_id      TEXT             NOT NULL DEFAULT '',
    actor_type  TEXT             NOT NULL,
    actor_id    TEXT             NOT NULL DEFAULT '',
    action      TEXT             NOT NULL,
    target_type TEXT             NOT NULL DEFAULT '',
    target_id   TEXT             NOT NULL DEFAULT '',
    ip          TEXT             NOT NULL DEFAULT '',
    details     JSONB            NOT NULL DEFAULT '{}'
);
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
