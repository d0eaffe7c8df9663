-- Issue 16, item 2: sharing requests (共享申请) for conditional (有条件共享) resources, their
-- steps, and the grants that entitle a consumer (a service or an information system of a
-- department) to a resource's items, with validity, revocation and read counts.

-- A consuming department's request for a resource.
CREATE TABLE sharing_requests (
    id                  UUID PRIMARY KEY,              -- UUIDv7
    resource            TEXT NOT NULL,                 -- catalogue resource code
    provider            TEXT NOT NULL,                 -- USCC of the providing department
    consumer_department TEXT NOT NULL,                 -- USCC of the requesting department
    consumer_kind       TEXT NOT NULL CHECK (consumer_kind IN ('service', 'system')),
    consumer            TEXT NOT NULL,                 -- service code or info_systems id
    purpose             TEXT NOT NULL,
    legal_basis         TEXT NOT NULL,
    items               JSONB NOT NULL,               -- item ids asked for
    period_from         DATE NOT NULL,
    period_until        DATE,                          -- none: for as long as the need lasts
    state               TEXT NOT NULL
                        CHECK (state IN ('pending', 'more_info', 'approved', 'refused')),
    grant_id            UUID,                          -- the grant an approval made
    created_by          TEXT NOT NULL,                 -- account id
    created_name        TEXT NOT NULL,
    created_at          TIMESTAMPTZ NOT NULL,
    updated_at          TIMESTAMPTZ NOT NULL
);
CREATE INDEX sharing_requests_provider ON sharing_requests (provider, state);
CREATE INDEX sharing_requests_consumer ON sharing_requests (consumer_department, state);

-- Every step of a request, with its author and time.
CREATE TABLE sharing_request_events (
    request_id  UUID NOT NULL REFERENCES sharing_requests (id),
    seq         INTEGER NOT NULL,
    action      TEXT NOT NULL
                CHECK (action IN ('submitted', 'approved', 'refused', 'asked', 'answered')),
    note        TEXT NOT NULL,
    items       JSONB,                                -- the items approved (approval only)
    valid_until TIMESTAMPTZ,                                -- the expiry given (approval only)
    author_id   TEXT NOT NULL,
    author_name TEXT NOT NULL,
    department  TEXT NOT NULL,                         -- the author's department
    at          TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (request_id, seq)
);

-- What a consumer may read of a resource.
CREATE TABLE sharing_grants (
    id                  UUID PRIMARY KEY,              -- UUIDv7
    resource            TEXT NOT NULL,
    provider            TEXT NOT NULL,
    consumer_department TEXT NOT NULL,
    consumer_kind       TEXT NOT NULL CHECK (consumer_kind IN ('service', 'system')),
    consumer            TEXT NOT NULL,
    items               JSONB NOT NULL,               -- item ids granted
    valid_from          TIMESTAMPTZ NOT NULL,
    valid_until         TIMESTAMPTZ,                        -- none: no expiry
    revoked_at          TIMESTAMPTZ,
    revoked_by          TEXT,                          -- name of who revoked it
    revoked_reason      TEXT,
    source              TEXT NOT NULL CHECK (source IN ('request', 'import')),
    request_id          UUID,
    import_key          TEXT UNIQUE,                   -- resource/service of a catalogue grant
    reads               BIGINT NOT NULL DEFAULT 0,
    last_read_at        TIMESTAMPTZ,
    created_at          TIMESTAMPTZ NOT NULL
);
CREATE INDEX sharing_grants_consumer ON sharing_grants (consumer_kind, consumer, resource);
CREATE INDEX sharing_grants_provider ON sharing_grants (provider);
CREATE INDEX sharing_grants_department ON sharing_grants (consumer_department);
