-- Every version of every service definition the gateway has served. Cases will record
-- the version they were lodged against, so a later edit of a form never rewrites what
-- an applicant saw and signed.
CREATE TABLE service_versions (
    code         TEXT NOT NULL,
    version      TEXT NOT NULL,           -- sha256 of the definition's canonical JSON
    definition   JSONB NOT NULL,
    published_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (code, version)
);
