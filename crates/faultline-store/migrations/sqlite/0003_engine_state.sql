-- Faultline schema v3 (sqlite): named engine state (the correlator's groups and
-- their incidents), so a restart continues correlation where it stopped.
CREATE TABLE engine_state (
    name        TEXT PRIMARY KEY,
    state_json  TEXT NOT NULL,
    updated_at  INTEGER NOT NULL
);
