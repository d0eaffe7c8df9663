-- Local accounts, created or updated at every login, keyed by provider and subject.
-- id_number and phone are only ever read and written through the store's account
-- methods, so that encrypting them at rest is a change to those methods alone.
CREATE TABLE accounts (
    id                TEXT PRIMARY KEY,        -- UUIDv7
    issuer            TEXT NOT NULL,
    subject           TEXT NOT NULL,
    kind              TEXT NOT NULL CHECK (kind IN ('person', 'enterprise', 'staff')),
    name              TEXT NOT NULL,
    id_number         TEXT,
    phone             TEXT,
    assurance         INTEGER NOT NULL,
    enterprise_uscc   TEXT,
    enterprise_name   TEXT,
    enterprise_role   TEXT,
    roles             TEXT NOT NULL,           -- JSON array of roles with their bindings
    created_at        TEXT NOT NULL,
    last_login_at     TEXT NOT NULL,
    UNIQUE (issuer, subject)
);

-- API tokens of department back-end systems. Only a SHA-256 of the token is kept.
CREATE TABLE api_tokens (
    id          TEXT PRIMARY KEY,              -- UUIDv7
    department  TEXT NOT NULL,                 -- USCC
    name        TEXT NOT NULL,
    scopes      TEXT NOT NULL,                 -- space-separated
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL,
    expires_at  TEXT,
    revoked_at  TEXT
);
CREATE INDEX api_tokens_department ON api_tokens (department);
