-- Faultline schema v2 (SQLite): the response workflow. Times are INTEGER ms since the Unix epoch, UTC.

-- Durable notification outbox: one row per idempotency key (a retried or
-- replayed enqueue of the same key is a no-op). Delivery is at-least-once:
-- a worker claims due rows with a lease; an expired lease is claimable again.
-- Rows hold no secrets: `channel` names a configured channel, whose URL or
-- key stays in the config.
CREATE TABLE notification_outbox (
    idempotency_key TEXT PRIMARY KEY,
    incident_id     TEXT NOT NULL,
    channel         TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    kind            TEXT NOT NULL,
    payload_json    TEXT NOT NULL,
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    lease_owner     TEXT,
    lease_until     INTEGER,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    delivered_at    INTEGER,
    last_error      TEXT
);
CREATE INDEX notification_outbox_due ON notification_outbox (status, next_attempt_at);
CREATE INDEX notification_outbox_incident ON notification_outbox (incident_id, created_at);

-- Append-only ledger of what happened to each notification.
CREATE TABLE notification_ledger (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id     TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    channel         TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    kind            TEXT NOT NULL,
    at              INTEGER NOT NULL,
    outcome         TEXT NOT NULL,
    attempt         INTEGER NOT NULL,
    detail          TEXT NOT NULL
);
CREATE INDEX notification_ledger_incident ON notification_ledger (incident_id, id);

-- Persisted escalation state per (incident, policy), with its next wake-up.
CREATE TABLE escalations (
    incident_id  TEXT NOT NULL,
    policy       TEXT NOT NULL,
    state_json   TEXT NOT NULL,
    next_wake_at INTEGER,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (incident_id, policy)
);
CREATE INDEX escalations_wake ON escalations (next_wake_at);

-- How far the response driver has read each incident's timeline.
CREATE TABLE response_cursors (
    incident_id TEXT PRIMARY KEY,
    seq         INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

-- Silences in the Alertmanager /api/v2 shape (JSON), expired rather than deleted.
CREATE TABLE silences (
    id          TEXT PRIMARY KEY,
    silence_json TEXT NOT NULL,
    starts_at   INTEGER NOT NULL,
    ends_at     INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

-- Status page: published incidents, drafts awaiting the comms lead,
-- scheduled maintenance, subscribers.
CREATE TABLE status_incidents (
    id          TEXT PRIMARY KEY,
    incident_id TEXT,
    json        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE TABLE status_drafts (
    incident_id TEXT PRIMARY KEY,
    json        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE TABLE status_maintenances (
    id            TEXT PRIMARY KEY,
    json          TEXT NOT NULL,
    scheduled_for INTEGER NOT NULL
);
CREATE TABLE status_subscribers (
    id              TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,
    target          TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    unsubscribed_at INTEGER
);
