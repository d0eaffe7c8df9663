-- Catalogue management (政务信息资源目录): each shared-data resource and its versions.
-- A providing department's edit is a new version (pending); the operator publishes it
-- (it becomes the live one) or returns it with a comment. Earlier versions stay.
-- The definitions' data-catalogue.toml is imported once per code as version 1.

CREATE TABLE catalogue_resources (
    code              TEXT PRIMARY KEY,           -- the resource code (`person`)
    provider          TEXT NOT NULL,              -- USCC of the providing department
    published_version BIGINT,                     -- the live version; NULL for a proposal not yet published
    created_at        TIMESTAMPTZ NOT NULL
);

CREATE TABLE catalogue_versions (
    code         TEXT NOT NULL REFERENCES catalogue_resources (code),
    version      BIGINT NOT NULL,                 -- 1, 2, … per resource
    body         JSONB NOT NULL,                  -- the resource as JSON (domain::catalogue::Resource)
    system_id    UUID REFERENCES info_systems (id), -- the information system that holds it
    status       TEXT NOT NULL CHECK (status IN ('pending', 'published', 'returned', 'withdrawn')),
    note         TEXT NOT NULL DEFAULT '',        -- the author's note on the change
    author       TEXT NOT NULL,                   -- account id, or `import`
    author_name  TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    decided_by   TEXT,                            -- the operator's account id
    decided_name TEXT,
    decided_at   TIMESTAMPTZ,
    comment      TEXT,                            -- the operator's comment on return
    PRIMARY KEY (code, version)
);
CREATE INDEX catalogue_versions_status ON catalogue_versions (status, created_at);
