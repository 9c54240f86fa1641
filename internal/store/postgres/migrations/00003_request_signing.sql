-- Request signing (HMAC): an API key's signing secret, sealed with the master
-- key (NULL: the key has none), and whether the key's requests must be signed.

-- +goose Up
ALTER TABLE api_keys ADD COLUMN signing_secret BYTEA;
ALTER TABLE api_keys ADD COLUMN signature_required BOOLEAN NOT NULL DEFAULT false;

-- +goose Down
ALTER TABLE api_keys DROP COLUMN signature_required;
ALTER TABLE api_keys DROP COLUMN signing_secret;
