-- Faultline schema v1 (PostgreSQL). Timestamps are BIGINT milliseconds since the Unix epoch, UTC.
CREATE TABLE incidents (
    id          TEXT PRIMARY KEY,
    title       TEXT NOT NULL,
    severity    TEXT NOT NULL,
    status      TEXT NOT NULL,
    version     BIGINT NOT NULL,
    opened_at   BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    state_json  TEXT NOT NULL
);
CREATE INDEX incidents_status_opened ON incidents (status, opened_at);

-- Append-only: rows are inserted, never updated or deleted. (incident_id, seq)
-- is the optimistic-concurrency guard.
CREATE TABLE timeline_events (
    incident_id TEXT NOT NULL REFERENCES incidents (id),
    seq         BIGINT NOT NULL,
    at          BIGINT NOT NULL,
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
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
