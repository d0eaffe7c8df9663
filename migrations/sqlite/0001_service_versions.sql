-- Every version of every service definition the gateway has served. Cases will record
-- the version they were lodged against, so a later edit of a form never rewrites what
-- an applicant saw and signed.
CREATE TABLE service_versions (
    code         TEXT NOT NULL,
    version      TEXT NOT NULL,           -- sha256 of the definition's canonical JSON
    definition   TEXT NOT NULL,           -- the definition as JSON
    published_at TEXT NOT NULL,           -- RFC 3339, UTC
    PRIMARY KEY (code, version)
);
