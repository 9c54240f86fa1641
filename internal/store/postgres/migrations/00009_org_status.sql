-- An operator can disable an organization (and enable it again): its
-- credentials, tokens, wallet subscriptions and logins are refused while
-- disabled_at is set; nothing else changes. disabled_reason is the
-- operator's reason, '' while the organization is enabled.

-- +goose Up
ALTER TABLE organizations ADD COLUMN disabled_at BIGINT;
ALTER TABLE organizations ADD COLUMN disabled_reason TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE organizations DROP COLUMN disabled_reason;
ALTER TABLE organizations DROP COLUMN disabled_at;
