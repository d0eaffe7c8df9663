-- Issue 16, item 5: the cascade to the autonomous region's platform (接入自治区平台).
-- One queue of reports to the regional platform: case reports (办件信息汇聚), one per
-- case history entry, and catalogue changes (目录同步), one per resource version. The
-- exchange worker delivers them as it delivers department events (signed, retried,
-- dead-lettered, in order per `order_key`).
CREATE TABLE region_outbox (
    id              TEXT PRIMARY KEY,             -- report id (UUIDv7) = webhook-id
    kind            TEXT NOT NULL CHECK (kind IN ('case_report', 'catalogue_change')),
    order_key       TEXT NOT NULL,                -- 'case:<case id>' or 'resource:<code>'
    seq             INTEGER NOT NULL,             -- order within the key (case history seq)
    case_id         TEXT,                         -- case reports: the case and its history entry
    case_seq        INTEGER,
    resource_code   TEXT,                         -- catalogue changes: the resource and version
    resource_version TEXT,
    payload         TEXT NOT NULL,                -- the report in the gateway's field names
    created_at      TEXT NOT NULL,
    state           TEXT NOT NULL DEFAULT 'pending',  -- pending | delivered | dead
    attempts        INTEGER NOT NULL DEFAULT 0,
    retry_from      INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT,
    lease_until     TEXT,
    last_status     INTEGER,
    last_error      TEXT,
    delivered_at    TEXT
);
-- Exactly one report per history entry and per resource version, however many
-- instances queue them.
CREATE UNIQUE INDEX region_outbox_case ON region_outbox (case_id, case_seq);
CREATE UNIQUE INDEX region_outbox_resource ON region_outbox (resource_code, resource_version);
CREATE INDEX region_outbox_due ON region_outbox (state, next_attempt_at);
CREATE INDEX region_outbox_order ON region_outbox (order_key, state, seq);

CREATE TABLE region_attempts (
    event_id    TEXT NOT NULL REFERENCES region_outbox (id),
    attempt     INTEGER NOT NULL,
    at          TEXT NOT NULL,
    status      INTEGER,
    latency_ms  INTEGER NOT NULL,
    error       TEXT,
    PRIMARY KEY (event_id, attempt)
);

-- The sweep that queues case reports looks at recent history entries by time.
CREATE INDEX case_events_at ON case_events (at);
