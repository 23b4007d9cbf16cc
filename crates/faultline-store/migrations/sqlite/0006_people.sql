-- Faultline schema v6 (sqlite): people are identities. A token may belong to a
-- user of the response configuration (actions through it are recorded as
-- that user); a one-click acknowledge link from a page is used once, and
-- its use is recorded here (the nonce is derived from the page's key);
-- the message an incident has on a channel that edits in place.
ALTER TABLE api_tokens ADD COLUMN user_id TEXT;

CREATE TABLE ack_link_uses (
    nonce       TEXT PRIMARY KEY,
    incident_id TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    used_at     INTEGER NOT NULL
);

-- The message an incident has on a channel that edits in place (a Slack
-- message's ts): the incident's next state change there edits it.
CREATE TABLE channel_message_refs (
    incident_id TEXT NOT NULL,
    channel     TEXT NOT NULL,
    message_ref TEXT NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (incident_id, channel)
);
