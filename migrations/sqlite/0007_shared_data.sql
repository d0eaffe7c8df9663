-- Shared data (数据共享): the base library, consent to prefill, the data-access audit trail,
-- the provenance of prefilled fields on cases, and the evidence for 免提交 materials.

-- The base library (基础库): the gateway's own copy of resources whose `access` is
-- base_library, filled by `onewindow import`. One row per subject; a licence library
-- (电子证照) keeps one row per licence, `record` naming the licence item.
CREATE TABLE base_records (
    resource    TEXT NOT NULL,
    subject     TEXT NOT NULL,                     -- resident ID number or USCC (personal data)
    record      TEXT NOT NULL DEFAULT '',
    data        TEXT NOT NULL,                    -- item id → value
    digest      TEXT NOT NULL,                     -- SHA-256 of the canonical data: same row, no write
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (resource, subject, record)
);

-- Who read whose data, which items, why and for which case (数据调用留痕). Each subject's
-- records form their own hash chain (seq, prev_hash, hash), so the trail is tamper-evident
-- without one global chain that every write must extend in turn.
CREATE TABLE data_access (
    id            TEXT PRIMARY KEY,
    subject_index TEXT NOT NULL,                   -- HMAC blind index of the subject, never the ID itself
    seq           INTEGER NOT NULL,
    at            TEXT NOT NULL,
    subject_kind  TEXT NOT NULL CHECK (subject_kind IN ('person', 'enterprise')),
    resource      TEXT NOT NULL,
    items         TEXT NOT NULL,                  -- ids of the items read
    reader_kind   TEXT NOT NULL,                   -- applicant | clerk | department | system
    reader_id     TEXT,
    reader_name   TEXT NOT NULL,
    purpose       TEXT NOT NULL,
    service_code  TEXT,
    case_no       TEXT,
    prev_hash     TEXT NOT NULL,
    hash          TEXT NOT NULL,
    UNIQUE (subject_index, seq)
);

-- An applicant's agreement that a service's form be prefilled from the named resources.
CREATE TABLE consents (
    id            TEXT PRIMARY KEY,
    account       TEXT NOT NULL,
    service_code  TEXT NOT NULL,
    resources     TEXT NOT NULL,
    given_at      TEXT NOT NULL
);
CREATE INDEX consents_account ON consents (account, service_code, given_at);

-- Server secrets generated on first start (the blind-index key).
CREATE TABLE secrets (
    name        TEXT PRIMARY KEY,
    value       TEXT NOT NULL,
    created_at  TEXT NOT NULL
);

ALTER TABLE cases ADD COLUMN provenance TEXT NOT NULL DEFAULT '{}';   -- field id → {source, as_of, authoritative}
ALTER TABLE cases ADD COLUMN fields_filled INTEGER NOT NULL DEFAULT 0;
ALTER TABLE cases ADD COLUMN fields_prefilled INTEGER NOT NULL DEFAULT 0;
ALTER TABLE case_materials ADD COLUMN evidence TEXT;                    -- licence number, issuer … of a 免提交 material
ALTER TABLE department_endpoints ADD COLUMN data_api TEXT;               -- the department's data API for department_api resources
