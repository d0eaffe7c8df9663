-- Delivery of outbox events to departments: each outbox row is one event for one
-- department, delivered by push (signed POST) or pull (leased from the inbox).
ALTER TABLE outbox ADD COLUMN department TEXT NOT NULL DEFAULT '';
ALTER TABLE outbox ADD COLUMN state TEXT NOT NULL DEFAULT 'pending';  -- pending | delivered | dead
ALTER TABLE outbox ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN retry_from INTEGER NOT NULL DEFAULT 0;       -- attempts before the last redelivery
ALTER TABLE outbox ADD COLUMN next_attempt_at TEXT;                   -- null: due now
ALTER TABLE outbox ADD COLUMN lease_until TEXT;                       -- a worker or a pull client holds it
ALTER TABLE outbox ADD COLUMN last_status INTEGER;
ALTER TABLE outbox ADD COLUMN last_error TEXT;
ALTER TABLE outbox ADD COLUMN delivered_at TEXT;
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);
CREATE INDEX outbox_department ON outbox (department, state, case_id, case_seq);

-- Every attempt, for operators and for the department's own questions.
CREATE TABLE delivery_attempts (
    event_id    TEXT NOT NULL REFERENCES outbox (id),
    attempt     INTEGER NOT NULL,
    at          TEXT NOT NULL,
    status      INTEGER,             -- HTTP status, when there was an answer
    latency_ms  INTEGER NOT NULL,
    error       TEXT,
    PRIMARY KEY (event_id, attempt)
);

-- How each department receives its events; no row means pull.
CREATE TABLE department_endpoints (
    department  TEXT PRIMARY KEY,
    mode        TEXT NOT NULL CHECK (mode IN ('push', 'pull')),
    endpoint    TEXT,
    updated_at  TEXT NOT NULL
);

-- Ed25519 keys that sign deliveries; the newest signs, older ones stay published
-- until they retire.
CREATE TABLE signing_keys (
    kid         TEXT PRIMARY KEY,
    secret      TEXT NOT NULL,       -- base64 seed
    created_at  TEXT NOT NULL,
    retires_at  TEXT
);
