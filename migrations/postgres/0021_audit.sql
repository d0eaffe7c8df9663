-- A tamper-evident audit trail that truly is (issue 13, item 2).
--
-- Every record's link is now an HMAC under a key the database does not hold (derived from
-- the configured audit secret); `link` says which: `hmac` for records written from now on,
-- `sha256` for the plain hash chain of earlier versions (kept as it is, and anchored by
-- the first signed checkpoint; see src/audit).
ALTER TABLE data_access ADD COLUMN link TEXT NOT NULL DEFAULT 'sha256';

-- Staff, operator and department actions (intake, every step, material downloads, case
-- reads, redeliveries, settings, decisions): one chain per target (`case:<case no>`,
-- `department:<uscc>`, `system:<id>`, `filing:<id>` …), so appends to different targets
-- never wait on each other. No personal data: actors by id, targets by number.
CREATE TABLE audit_events (
    id          UUID PRIMARY KEY,
    chain       TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    at          TIMESTAMPTZ NOT NULL,
    actor_kind  TEXT NOT NULL,                    -- applicant | clerk | officer | department | operator | system
    actor_id    TEXT,
    action      TEXT NOT NULL,
    target      TEXT NOT NULL,
    detail      JSONB NOT NULL,                   -- JSON, no personal data
    link        TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL,
    UNIQUE (chain, seq)
);

-- Signed checkpoints of every chain's head (a Merkle root over all heads, as
-- Certificate Transparency's signed tree heads), each linking to the one before; also
-- appended to a file in the data directory, outside the database.
CREATE TABLE audit_checkpoints (
    seq         BIGINT PRIMARY KEY,
    at          TIMESTAMPTZ NOT NULL,
    records     BIGINT NOT NULL,
    chains      BIGINT NOT NULL,
    root        TEXT NOT NULL,
    heads       JSONB NOT NULL,                   -- [[chain, seq, hash]] that moved since the one before
    prev        TEXT NOT NULL,
    public_key  TEXT NOT NULL,
    signature   TEXT NOT NULL
);
