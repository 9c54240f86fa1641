-- Settings every node sharing the store must agree on, such as the issuer
-- and audience of the tokens they sign and accept: the first node records
-- its own, the others refuse to start with different ones (package server),
-- and `tollgate config record-issuer` replaces them.

-- +goose Up
CREATE TABLE cluster_settings (
    name        TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    value       TEXT             NOT NULL,
    recorded_at BIGINT           NOT NULL,
    recorded_by TEXT             NOT NULL DEFAULT ''
);

-- +goose Down
DROP TABLE cluster_settings;
