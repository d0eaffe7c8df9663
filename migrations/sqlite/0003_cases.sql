-- Cases (办件): one row per application, with its append-only history, materials, the
-- outbox of events for department systems, in-app notifications, idempotency records,
-- uploads waiting to be attached, and drafts.
CREATE TABLE cases (
    id                  TEXT PRIMARY KEY,          -- UUIDv7
    case_no             TEXT NOT NULL UNIQUE,
    query_code          TEXT NOT NULL,
    service_code        TEXT NOT NULL,
    service_version     TEXT NOT NULL,
    department          TEXT NOT NULL,             -- responsible department (USCC)
    applicant_account   TEXT,                      -- null for a walk-in applicant without an account
    applicant_kind      TEXT NOT NULL CHECK (applicant_kind IN ('person', 'enterprise')),
    applicant_name      TEXT NOT NULL,
    applicant_id_number TEXT,                      -- personal data: only through the store's case methods
    applicant_uscc      TEXT,
    applicant_phone     TEXT,                      -- personal data
    channel             TEXT NOT NULL CHECK (channel IN ('online', 'window')),
    intake_account      TEXT,
    intake_hall         TEXT,
    status              TEXT NOT NULL,
    form                TEXT NOT NULL,             -- JSON: field id → value
    accepted_on         TEXT,
    due_on              TEXT,                      -- promised time limit (承诺时限)
    legal_due_on        TEXT,                      -- legal time limit (法定时限)
    pauses              TEXT NOT NULL DEFAULT '[]',-- JSON [{from, to}]
    concluded_on        TEXT,
    result              TEXT,
    rating              INTEGER,
    rating_comment      TEXT,
    rated_at            TEXT,
    version             INTEGER NOT NULL DEFAULT 1,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL
);
CREATE INDEX cases_applicant ON cases (applicant_account, created_at);
CREATE INDEX cases_department_status ON cases (department, status);

CREATE TABLE case_events (
    case_id     TEXT NOT NULL REFERENCES cases (id),
    seq         INTEGER NOT NULL,
    at          TEXT NOT NULL,
    actor       TEXT NOT NULL,                     -- applicant | clerk | department_officer | department_system | system
    actor_id    TEXT,
    actor_name  TEXT NOT NULL,
    action      TEXT,                              -- null for the creating event
    from_status TEXT,
    to_status   TEXT NOT NULL,
    note        TEXT,
    attachments TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (case_id, seq)
);

CREATE TABLE uploads (
    id            TEXT PRIMARY KEY,
    owner         TEXT NOT NULL,                   -- account id of the uploader
    file_name     TEXT NOT NULL,
    file_type     TEXT NOT NULL,                   -- sniffed: pdf | jpg | png | ofd
    size          INTEGER NOT NULL,
    sha256        TEXT NOT NULL,
    storage_key   TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    case_id       TEXT REFERENCES cases (id)       -- set when attached
);
CREATE INDEX uploads_unattached ON uploads (created_at) WHERE case_id IS NULL;

CREATE TABLE case_materials (
    case_id     TEXT NOT NULL REFERENCES cases (id),
    material_id TEXT NOT NULL,
    upload_id   TEXT REFERENCES uploads (id),
    substituted INTEGER NOT NULL DEFAULT 0,
    source      TEXT,                              -- e-licence or shared-data item that stood in
    added_seq   INTEGER NOT NULL                   -- the history entry that added it
);
CREATE INDEX case_materials_case ON case_materials (case_id);

CREATE TABLE outbox (
    id          TEXT PRIMARY KEY,                  -- event id (UUIDv7)
    case_id     TEXT NOT NULL REFERENCES cases (id),
    case_seq    INTEGER NOT NULL,                  -- the history entry that caused it
    event_type  TEXT NOT NULL,
    payload     TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
CREATE INDEX outbox_case ON outbox (case_id, case_seq);

CREATE TABLE notifications (
    id          TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL,
    case_id     TEXT NOT NULL REFERENCES cases (id),
    case_no     TEXT NOT NULL,
    title_zh    TEXT NOT NULL,
    title_en    TEXT NOT NULL,
    body_zh     TEXT NOT NULL,
    body_en     TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    read_at     TEXT,
    email_state TEXT NOT NULL DEFAULT 'none'       -- none | pending | sent | failed
);
CREATE INDEX notifications_account ON notifications (account_id, created_at);

CREATE TABLE idempotency (
    scope         TEXT NOT NULL,                   -- who: account id or token id
    key           TEXT NOT NULL,
    request_hash  TEXT NOT NULL,
    status        INTEGER NOT NULL,
    response      TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    PRIMARY KEY (scope, key)
);

CREATE TABLE drafts (
    id            TEXT PRIMARY KEY,
    account_id    TEXT NOT NULL,
    service_code  TEXT NOT NULL,
    form          TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    expires_at    TEXT NOT NULL
);
CREATE INDEX drafts_account ON drafts (account_id, updated_at);
