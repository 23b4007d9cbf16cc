-- Faultline schema v1 (SQLite). Timestamps are INTEGER milliseconds since the Unix epoch, UTC.
CREATE TABLE incidents (
    id          TEXT PRIMARY KEY,
    title       TEXT NOT NULL,
    severity    TEXT NOT NULL,
    status      TEXT NOT NULL,
    version     INTEGER NOT NULL,
    opened_at   INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    state_json  TEXT NOT NULL
);
CREATE INDEX incidents_status_opened ON incidents (status, opened_at);

-- Append-only: rows are inserted, never updated or deleted. (incident_id, seq)
-- is the optimistic-concurrency guard.
CREATE TABLE timeline_events (
    incident_id TEXT NOT NULL REFERENCES incidents (id),
    seq         INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    actor       TEXT NOT NULL,
    kind        TEXT NOT NULL,
    event_json  TEXT NOT NULL,
    PRIMARY KEY (incident_id, seq)
);

CREATE TABLE api_tokens (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    scope       TEXT NOT NULL,
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);
