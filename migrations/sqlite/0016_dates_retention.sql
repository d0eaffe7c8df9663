-- Issue 13, items 7, 9 and 10.
-- Provisional due dates: counted in part by the weekday rule because the holiday calendar
-- lacked a year; counted again when `onewindow calendar import` loads that year.
ALTER TABLE cases ADD COLUMN due_provisional INTEGER NOT NULL DEFAULT 0;
CREATE INDEX cases_due_provisional ON cases (due_provisional) WHERE due_provisional = 1;

-- Holiday calendar years imported by operators (one calendar file per year, as JSON).
CREATE TABLE calendar_years (
    year        INTEGER PRIMARY KEY,
    data        TEXT NOT NULL,
    imported_at TEXT NOT NULL
);

-- Sessions on the embedded default (no Redis): kept here so a restart logs nobody out.
-- The key is the SHA-256 of the cookie value; the value is sealed.
CREATE TABLE sessions (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    expires_at INTEGER NOT NULL               -- unix seconds
);
CREATE INDEX sessions_expiry ON sessions (expires_at);

-- Retention: the files of a closed case's materials are removed after the configured
-- period; the row (name, type, size, hash) stays as the record of what was filed.
ALTER TABLE uploads ADD COLUMN purged_at TEXT;
