-- Wallet subscriptions bought with x402 payments, and the payments.
--
-- A subscription's organization is created with it (one per wallet). The
-- unique authorization_key makes the same signed payment authorization buy
-- once only, whatever the facilitator says.

-- +goose Up
CREATE TABLE subscriptions (
    wallet     TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    org_id     TEXT             NOT NULL REFERENCES organizations (id),
    plan       TEXT             NOT NULL,
    started_at BIGINT           NOT NULL,
    expires_at BIGINT           NOT NULL,
    created_at BIGINT,
    updated_at BIGINT
);
CREATE UNIQUE INDEX subscriptions_org ON subscriptions (org_id);

CREATE TABLE payments (
    id                TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    authorization_key TEXT             NOT NULL,
    wallet            TEXT             NOT NULL,
    plan              TEXT             NOT NULL,
    network           TEXT             NOT NULL,
    asset             TEXT             NOT NULL,
    amount            TEXT             NOT NULL,
    pay_to            TEXT             NOT NULL,
    transaction_ref   TEXT             NOT NULL,
    facilitator       TEXT             NOT NULL,
    time              BIGINT           NOT NULL
);
CREATE UNIQUE INDEX payments_authorization ON payments (authorization_key);
CREATE INDEX payments_wallet ON payments (wallet, time);

-- +goose Down
DROP TABLE payments;
DROP TABLE subscriptions;
