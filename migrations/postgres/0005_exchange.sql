-- Delivery of outbox events to departments: each outbox row is one event for one
-- department, delivered by push (signed POST) or pull (leased from the inbox).
ALTER TABLE outbox ADD COLUMN department TEXT NOT NULL DEFAULT '';
ALTER TABLE outbox ADD COLUMN state TEXT NOT NULL DEFAULT 'pending';  -- pending | delivered | dead
ALTER TABLE outbox ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN retry_from INTEGER NOT NULL DEFAULT 0;       -- attempts before the last redelivery
ALTER TABLE outbox ADD COLUMN next_attempt_at TIMESTAMPTZ;
ALTER TABLE outbox ADD COLUMN lease_until TIMESTAMPTZ;
ALTER TABLE outbox ADD COLUMN last_status INTEGER;
ALTER TABLE outbox ADD COLUMN last_error TEXT;
ALTER TABLE outbox ADD COLUMN delivered_at TIMESTAMPTZ;
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);
CREATE INDEX outbox_department ON outbox (department, state, case_id, case_seq);

CREATE TABLE delivery_attempts (
    event_id    UUID NOT NULL REFERENCES outbox (id),
    attempt     INTEGER NOT NULL,
    at          TIMESTAMPTZ NOT NULL,
    status      INTEGER,
    latency_ms  INTEGER NOT NULL,
    error       TEXT,
    PRIMARY KEY (event_id, attempt)
);

CREATE TABLE department_endpoints (
    department  TEXT PRIMARY KEY,
    mode        TEXT NOT NULL CHECK (mode IN ('push', 'pull')),
    endpoint    TEXT,
    updated_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE signing_keys (
    kid         TEXT PRIMARY KEY,
    secret      TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    retires_at  TIMESTAMPTZ
);
