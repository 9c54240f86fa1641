-- OAuth 2.0 access tokens: per-app revocation of every token issued before a
-- time, and single revoked tokens (RFC 7009), kept until they expire.

-- +goose Up
ALTER TABLE apps ADD COLUMN tokens_not_before BIGINT;

CREATE TABLE revoked_tokens (
    jti        TEXT   NOT NULL PRIMARY KEY,
    client_id  TEXT   NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT NOT NULL
);
CREATE INDEX revoked_tokens_expires ON revoked_tokens (expires_at);

-- +goose Down
DROP TABLE revoked_tokens;
ALTER TABLE apps DROP COLUMN tokens_not_before;
