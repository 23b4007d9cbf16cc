-- Faultline schema v5 (sqlite): the correlator's state as rows, saved
-- incrementally. A turn writes only the group headers and members it
-- touched (a storm holds tens of thousands of members; rewriting them all
-- on every turn made a turn cost O(alerts held)). The v3 whole-state row in
-- engine_state ('correlator'), if any, is converted by the engine on its
-- first start after this migration and then deleted.

-- One row: present once the correlator has been saved as rows.
CREATE TABLE correlator_state (
    singleton      INTEGER PRIMARY KEY CHECK (singleton = 1),
    next_group_id  INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);

-- A group without its members, and the incident it became (a merged
-- group names the incident it merged into).
CREATE TABLE correlator_groups (
    group_id     INTEGER PRIMARY KEY,
    incident_id  TEXT,
    header_json  TEXT NOT NULL,
    updated_at   INTEGER NOT NULL
);

-- One member of one group; member_key is the member's key as JSON.
CREATE TABLE correlator_members (
    group_id     INTEGER NOT NULL,
    member_key   TEXT NOT NULL,
    member_json  TEXT NOT NULL,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (group_id, member_key)
);
