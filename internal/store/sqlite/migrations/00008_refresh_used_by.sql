-- Refresh tokens: a digest of the client (address and User-Agent) that used
-- a token, so that the same client presenting it again within a few seconds
-- (two tabs refreshing at once) is told apart from a thief. NULL: unused, or
-- used before this column existed.

-- +goose Up
ALTER TABLE refresh_tokens ADD COLUMN used_by BLOB;

-- +goose Down
ALTER TABLE refresh_tokens DROP COLUMN used_by;
