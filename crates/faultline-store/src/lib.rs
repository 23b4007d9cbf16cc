//! Faultline's durable state behind one `Store` trait, with a SQLite backend
//! (one WAL-mode file under the data dir; the zero-setup default) and a
//! PostgreSQL backend (for teams and HA). Both are `SqlStore`, which speaks
//! one SQL dialect subset through sqlx's `Any` driver; the schema differs per
//! backend and lives in `migrations/<backend>/`, applied on open.
//!
//! What it is: incidents as an append-only timeline with optimistic
//! concurrency (`Store::append` checks the expected version), a folded
//! snapshot per incident for listing, hashed API tokens, and the engine's
//! state: the correlator as a row per group and per member, written
//! incrementally with each engine turn (`Turn::correlator`).
//!
//! What it is not: it makes no decisions. Whether a command is allowed is
//! `faultline_core::Incident::decide`, which `commands::execute` runs inside
//! `Store::update` under the incident's write lock. It knows
//! nothing of HTTP, the engine or the clock (times come in as arguments).

use async_trait::async_trait;
use faultline_core::incident::{Incident, IncidentStatus, Severity, TimelineEvent, TransitionError};
use faultline_core::{IncidentId, Timestamp, UserId};

pub mod commands;
pub mod health;
mod migrate;
pub mod response;
mod sql;

pub use health::{Fatal, StoreHealth};
pub use sql::{Backend, SqlStore};

/// Errors from a store. `Conflict` and `StatusPageConflict` are the ones
/// callers retry (after re-reading).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("incident {0} not found")]
    NotFound(IncidentId),
    #[error("incident {id} was changed concurrently (expected version {expected}, found {found})")]
    Conflict { id: IncidentId, expected: u64, found: u64 },
    /// `ResponseStore::publish_status` lost a race: another update of the
    /// incident's public page was published after this one was computed.
    #[error(
        "the status page of incident {incident} was updated concurrently (this update was based on {based_on} earlier update(s)); re-read it and publish again"
    )]
    StatusPageConflict { incident: IncidentId, based_on: u64 },
    /// The database was too busy to take the write lock in time; retryable.
    #[error("database is busy: {0}")]
    Busy(String),
    #[error("{0} already exists")]
    AlreadyExists(String),
    #[error("rejected by the incident state machine: {0}")]
    Invalid(#[from] TransitionError),
    #[error("cannot open the database: {0}")]
    Open(String),
    #[error("database error: {0}")]
    Database(String),
    /// The database cannot take writes now — the disk is full, an I/O
    /// error, the connection was lost (`Fatal`): nothing was written, the
    /// connection was discarded, and the caller answers "retry later" (503).
    #[error("the database cannot take writes ({}): {message}", reason.as_str())]
    Unavailable { reason: Fatal, message: String },
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The decision `Store::update` runs under the lock: current state → events.
pub type Decide = Box<dyn FnOnce(&Incident) -> Result<Vec<TimelineEvent>, TransitionError> + Send>;

/// One engine turn, written in ONE transaction by `Store::commit_turn`: the
/// incidents it opened, the events it decided for existing incidents (each
/// `Decide` runs under that incident's write lock, as in `Store::update`),
/// and what the turn changed in the correlator's saved state, which refers
/// to both. All or nothing, so a crash can never leave an incident the saved
/// state does not know, nor state naming an incident that was never written.
pub struct Turn {
    pub create: Vec<(IncidentId, TimelineEvent)>,
    pub update: Vec<(IncidentId, Decide)>,
    /// The correlator rows to write and delete with them.
    pub correlator: Option<CorrelatorWrite>,
    /// A named whole-state row (`save_state`) the correlator rows supersede,
    /// deleted in the same transaction (the migration of a v3 save).
    pub retire_state: Option<String>,
    pub at: Timestamp,
}

/// One group of the saved correlator: its header (JSON the engine encodes;
/// the store does not read inside it) and the incident it became.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavedGroup {
    pub group: u64,
    pub incident: Option<IncidentId>,
    pub header_json: String,
}

/// One member of one saved group: `key` identifies it within the group (the
/// engine's encoding of the member key), `member_json` is the member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavedMember {
    pub group: u64,
    pub key: String,
    pub member_json: String,
}

/// The correlator's saved state: a row per group, a row per member.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SavedCorrelator {
    pub next_group_id: u64,
    /// In group order.
    pub groups: Vec<SavedGroup>,
    /// Ordered by group, then key (as the database collates it).
    pub members: Vec<SavedMember>,
}

/// What one turn changes in the saved correlator. Applied in this order:
/// `replace` (delete every group and member), `removed_groups` (each with
/// its members), `removed_members`, then `groups` and `members` written
/// over what is there.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CorrelatorWrite {
    /// A full save: nothing saved before survives it.
    pub replace: bool,
    pub next_group_id: u64,
    pub groups: Vec<SavedGroup>,
    pub members: Vec<SavedMember>,
    /// (group, key)
    pub removed_members: Vec<(u64, String)>,
    pub removed_groups: Vec<u64>,
}

/// Incident ids one batched read (`Store::incidents_with_timelines`) binds in
/// a single query; more are read in several. Far below SQLite's (32766) and
/// PostgreSQL's (65535) bound-parameter limits, and the metrics' 1000 cap
/// fits in one.
pub const MAX_BATCH_IDS: usize = 1000;

/// What an API token may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenScope {
    /// Read everything, change nothing.
    Read,
    /// Read and change everything.
    Admin,
}

impl TokenScope {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenScope::Read => "read",
            TokenScope::Admin => "admin",
        }
    }
    pub fn parse(s: &str) -> Option<TokenScope> {
        match s {
            "read" => Some(TokenScope::Read),
            "admin" => Some(TokenScope::Admin),
            _ => None,
        }
    }
}

/// A stored API token. The secret itself is never stored: only its hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRecord {
    pub id: String,
    pub name: String,
    pub scope: TokenScope,
    /// Hex SHA-256 of the secret.
    pub token_hash: String,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
    /// The user (of the response configuration) the token belongs to:
    /// actions through it are recorded as that user. `None` for automation.
    pub user: Option<UserId>,
}

/// Which incidents to list. Newest first.
#[derive(Clone, Debug, Default)]
pub struct IncidentFilter {
    pub status: Option<IncidentStatus>,
    pub severity: Option<Severity>,
    /// Only open (not resolved) incidents.
    pub open_only: bool,
    /// At most this many (the store caps it at 1000).
    pub limit: Option<u32>,
    /// Only incidents opened at or after this instant.
    pub opened_from: Option<Timestamp>,
    /// Only incidents opened before this instant.
    pub opened_before: Option<Timestamp>,
}

#[async_trait]
pub trait Store: Send + Sync {
    /// Records a new incident from its `opened` event (seq 1).
    async fn create_incident(&self, id: IncidentId, opened: &TimelineEvent) -> Result<Incident>;

    /// Appends events to an incident's timeline if its current version is
    /// `expected_version`; otherwise nothing is written and `Conflict` is
    /// returned. The events must continue the sequence (`expected_version + 1`,
    /// …) and be valid for the state machine. Returns the new state.
    async fn append(&self, id: IncidentId, expected_version: u64, events: &[TimelineEvent]) -> Result<Incident>;

    /// Decides and appends under the incident's write lock: `decide` sees the
    /// latest committed state and returns the events to append (continuing
    /// the sequence). Concurrent callers are serialised, so none starves and
    /// none decides on a stale state. Nothing is written if `decide` fails.
    async fn update(&self, id: IncidentId, decide: Decide) -> Result<(Incident, Vec<TimelineEvent>)>;

    /// Commits a whole engine turn atomically (see `Turn`); returns the new
    /// state of every incident it created or updated. Nothing is written if
    /// any part fails (a `Decide` refusing, a conflict, a busy database).
    async fn commit_turn(&self, turn: Turn) -> Result<Vec<(IncidentId, Incident)>>;

    /// The incident's state and full timeline.
    async fn incident(&self, id: IncidentId) -> Result<Option<(Incident, Vec<TimelineEvent>)>>;

    /// The short numbers (#42) of these incidents, where they have one
    /// (numbers are handed out at creation, in order, and never reused).
    /// The default knows none.
    async fn incident_numbers(&self, _ids: &[IncidentId]) -> Result<std::collections::HashMap<IncidentId, u64>> {
        Ok(std::collections::HashMap::new())
    }

    /// The incident with this short number, if any. The default knows none.
    async fn incident_by_number(&self, _number: u64) -> Result<Option<IncidentId>> {
        Ok(None)
    }

    /// The incident's current state alone, without its timeline: for a
    /// reader that needs only the status (the engine checking whether a
    /// person resolved it). This default folds the timeline; `SqlStore`
    /// reads the snapshot row written with the last event.
    async fn incident_state(&self, id: IncidentId) -> Result<Option<Incident>> {
        Ok(self.incident(id).await?.map(|(incident, _)| incident))
    }

    /// The incident's timeline events after `seq`, in order (empty for an
    /// unknown incident). For a reader that keeps a cursor and would
    /// otherwise re-read a long timeline to find its few new events; this
    /// default reads the whole timeline, `SqlStore` only the tail.
    async fn timeline_after(&self, id: IncidentId, seq: u64) -> Result<Vec<TimelineEvent>> {
        Ok(self.incident(id).await?.map(|(_, timeline)| timeline.into_iter().filter(|e| e.seq > seq).collect()).unwrap_or_default())
    }

    async fn list_incidents(&self, filter: &IncidentFilter) -> Result<Vec<Incident>>;

    /// The state and full timeline of each of `ids` that exists, in the
    /// order given (an unknown id is left out, a repeated one comes once),
    /// each folded as `incident` folds it. For reading many incidents at
    /// once (response metrics): this default reads them one by one;
    /// `SqlStore` reads all their events in one query (per `MAX_BATCH_IDS` ids).
    async fn incidents_with_timelines(&self, ids: &[IncidentId]) -> Result<Vec<(Incident, Vec<TimelineEvent>)>> {
        let mut out = Vec::with_capacity(ids.len());
        let mut seen = std::collections::HashSet::with_capacity(ids.len());
        for id in ids {
            if seen.insert(*id)
                && let Some(found) = self.incident(*id).await?
            {
                out.push(found);
            }
        }
        Ok(out)
    }

    async fn insert_token(&self, token: &TokenRecord) -> Result<()>;
    /// An unrevoked or revoked token by the hash of its secret.
    async fn token_by_hash(&self, token_hash: &str) -> Result<Option<TokenRecord>>;
    async fn list_tokens(&self) -> Result<Vec<TokenRecord>>;
    /// Revokes by id or name; returns whether a live token was revoked.
    async fn revoke_token(&self, id_or_name: &str, at: Timestamp) -> Result<bool>;

    /// A named piece of engine state (JSON), if saved.
    async fn load_state(&self, name: &str) -> Result<Option<String>>;
    /// Saves (replaces) a named piece of engine state.
    async fn save_state(&self, name: &str, state_json: &str, at: Timestamp) -> Result<()>;

    /// The correlator's saved rows, read in one snapshot; `None` if it was
    /// never saved as rows (`Turn::correlator`).
    async fn load_correlator(&self) -> Result<Option<SavedCorrelator>>;

    /// Cheap liveness check of the database connection.
    async fn ping(&self) -> Result<()>;

    /// Whether the store can take writes (`/readyz`): `ping` by default.
    /// `SqlStore` answers `Unavailable` while writes are failing (since a
    /// write met a fatal error), trying a small write to learn whether they
    /// have recovered, and pings otherwise.
    async fn check_writable(&self) -> Result<()> {
        self.ping().await
    }
}
