-- Request signing (HMAC): an API key's signing secret, sealed with the master
-- key (NULL: the key has none), and whether the key's requests must be signed.

-- +goose Up
ALTER TABLE api_keys ADD COLUMN signing_secret BLOB;
ALTER TABLE api_keys ADD COLUMN signature_required INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE api_keys DROP COLUMN signature_required;
ALTER TABLE api_keys DROP COLUMN signing_secret;
