-- Cases (办件): one row per application, with its append-only history, materials, the
-- outbox of events for department systems, in-app notifications, idempotency records,
-- uploads waiting to be attached, and drafts.
CREATE TABLE cases (
    id                  UUID PRIMARY KEY,          -- UUIDv7
    case_no             TEXT NOT NULL UNIQUE,
    query_code          TEXT NOT NULL,
    service_code        TEXT NOT NULL,
    service_version     TEXT NOT NULL,
    department          TEXT NOT NULL,             -- responsible department (USCC)
    applicant_account   UUID,                      -- null for a walk-in applicant without an account
    applicant_kind      TEXT NOT NULL CHECK (applicant_kind IN ('person', 'enterprise')),
    applicant_name      TEXT NOT NULL,
    applicant_id_number TEXT,                      -- personal data: only through the store's case methods
    applicant_uscc      TEXT,
    applicant_phone     TEXT,                      -- personal data
    channel             TEXT NOT NULL CHECK (channel IN ('online', 'window')),
    intake_account      UUID,
    intake_hall         TEXT,
    status              TEXT NOT NULL,
    form                JSONB NOT NULL,
    accepted_on         DATE,
    due_on              DATE,                      -- promised time limit (承诺时限)
    legal_due_on        DATE,                      -- legal time limit (法定时限)
    pauses              JSONB NOT NULL DEFAULT '[]',
    concluded_on        DATE,
    result              TEXT,
    rating              SMALLINT,
    rating_comment      TEXT,
    rated_at            TIMESTAMPTZ,
    version             BIGINT NOT NULL DEFAULT 1,
    created_at          TIMESTAMPTZ NOT NULL,
    updated_at          TIMESTAMPTZ NOT NULL
);
CREATE INDEX cases_applicant ON cases (applicant_account, created_at);
CREATE INDEX cases_department_status ON cases (department, status);

CREATE TABLE case_events (
    case_id     UUID NOT NULL REFERENCES cases (id),
    seq         INTEGER NOT NULL,
    at          TIMESTAMPTZ NOT NULL,
    actor       TEXT NOT NULL,
    actor_id    TEXT,
    actor_name  TEXT NOT NULL,
    action      TEXT,
    from_status TEXT,
    to_status   TEXT NOT NULL,
    note        TEXT,
    attachments JSONB NOT NULL DEFAULT '[]',
    PRIMARY KEY (case_id, seq)
);

CREATE TABLE uploads (
    id            UUID PRIMARY KEY,
    owner         UUID NOT NULL,
    file_name     TEXT NOT NULL,
    file_type     TEXT NOT NULL,
    size          BIGINT NOT NULL,
    sha256        TEXT NOT NULL,
    storage_key   TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    case_id       UUID REFERENCES cases (id)
);
CREATE INDEX uploads_unattached ON uploads (created_at) WHERE case_id IS NULL;

CREATE TABLE case_materials (
    case_id     UUID NOT NULL REFERENCES cases (id),
    material_id TEXT NOT NULL,
    upload_id   UUID REFERENCES uploads (id),
    substituted BOOLEAN NOT NULL DEFAULT FALSE,
    source      TEXT,
    added_seq   INTEGER NOT NULL
);
CREATE INDEX case_materials_case ON case_materials (case_id);

CREATE TABLE outbox (
    id          UUID PRIMARY KEY,
    case_id     UUID NOT NULL REFERENCES cases (id),
    case_seq    INTEGER NOT NULL,
    event_type  TEXT NOT NULL,
    payload     JSONB NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX outbox_case ON outbox (case_id, case_seq);

CREATE TABLE notifications (
    id          UUID PRIMARY KEY,
    account_id  UUID NOT NULL,
    case_id     UUID NOT NULL REFERENCES cases (id),
    case_no     TEXT NOT NULL,
    title_zh    TEXT NOT NULL,
    title_en    TEXT NOT NULL,
    body_zh     TEXT NOT NULL,
    body_en     TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    read_at     TIMESTAMPTZ,
    email_state TEXT NOT NULL DEFAULT 'none'
);
CREATE INDEX notifications_account ON notifications (account_id, created_at);

CREATE TABLE idempotency (
    scope         TEXT NOT NULL,
    key           TEXT NOT NULL,
    request_hash  TEXT NOT NULL,
    status        SMALLINT NOT NULL,
    response      JSONB NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (scope, key)
);

CREATE TABLE drafts (
    id            UUID PRIMARY KEY,
    account_id    UUID NOT NULL,
    service_code  TEXT NOT NULL,
    form          JSONB NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    expires_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX drafts_account ON drafts (account_id, updated_at);
