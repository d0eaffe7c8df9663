-- Keys and materials at rest (issue 13, item 3).
-- Personal-data keys by id, each wrapped by the key-encryption key (never in plain text).
-- state: next (every instance reads with it, none seals yet), current (seals),
-- retiring (read only, values are being re-sealed), retired (its key material erased).
-- The legacy key (id '', from before keys had ids) lives in secrets or the settings; a
-- row for it records only its state.
CREATE TABLE data_keys (
    kid         TEXT PRIMARY KEY,
    wrapped     TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('next', 'current', 'retiring', 'retired')),
    created_at  TEXT NOT NULL
);

-- Uploaded materials kept in the database (materials_store = database), sealed.
CREATE TABLE material_blobs (
    storage_key TEXT PRIMARY KEY,
    bytes       BLOB NOT NULL,
    created_at  TEXT NOT NULL
);
