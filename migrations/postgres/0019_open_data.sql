-- The open-data site (公共数据开放网站): datasets with their metadata, schema and current
-- file, the download counts per dataset and file, and the public's data requests (数据需求).

-- A dataset. `id` is its stable name (CKAN's `name`, the Data Package's `name`): lower case,
-- digits and hyphens. `source` says where its rows come from: generated from what the
-- gateway holds (`catalogue`, `case_stats`, `figures`) or uploaded by its department.
CREATE TABLE open_datasets (
    id             TEXT PRIMARY KEY,
    title_zh       TEXT NOT NULL,
    title_en       TEXT NOT NULL,
    description_zh TEXT NOT NULL DEFAULT '',
    description_en TEXT NOT NULL DEFAULT '',
    topic          TEXT NOT NULL,
    department     TEXT NOT NULL,                 -- publisher (USCC)
    licence        TEXT NOT NULL,
    update_cycle   TEXT NOT NULL,
    source         TEXT NOT NULL CHECK (source IN ('catalogue', 'case_stats', 'figures', 'upload')),
    resource_code  TEXT,                          -- the catalogue resource it opens
    schema         JSONB NOT NULL,                -- JSON [{name, title_zh, title_en, type, unit}]
    data_csv       TEXT NOT NULL DEFAULT '',      -- the current file (CSV, header first)
    row_count      BIGINT NOT NULL DEFAULT 0,
    status         TEXT NOT NULL CHECK (status IN ('draft', 'published', 'returned')),
    return_reason  TEXT,
    created_by     TEXT NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL,
    modified_at    TIMESTAMPTZ NOT NULL,                 -- metadata or data last changed
    published_at   TIMESTAMPTZ,
    refreshed_at   TIMESTAMPTZ                           -- file last regenerated
);
CREATE INDEX open_datasets_status ON open_datasets (status, department);

-- Downloads, one row per dataset and file format.
CREATE TABLE open_downloads (
    dataset_id TEXT NOT NULL REFERENCES open_datasets (id),
    format     TEXT NOT NULL,
    count      BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (dataset_id, format)
);

-- A data request from the public and its answer.
CREATE TABLE open_requests (
    id          UUID PRIMARY KEY,                 -- UUIDv7
    title       TEXT NOT NULL,
    body        TEXT NOT NULL,
    email       TEXT,                             -- optional contact, never shown publicly
    department  TEXT,                             -- the department it is meant for (USCC), if known
    status      TEXT NOT NULL CHECK (status IN ('open', 'answered')),
    answer      TEXT,
    answered_by TEXT,                             -- who answered (name shown publicly: the department)
    created_at  TIMESTAMPTZ NOT NULL,
    answered_at TIMESTAMPTZ
);
CREATE INDEX open_requests_created ON open_requests (created_at);
