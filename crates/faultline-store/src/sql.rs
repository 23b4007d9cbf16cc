//! `SqlStore`: the `Store` implementation for SQLite and PostgreSQL.
//!
//! Both backends run the same queries through sqlx's `Any` driver (`$n`
//! placeholders, BIGINT millisecond timestamps, JSON as TEXT), so behaviour
//! cannot drift between them; only the schema files differ. Not here: query
//! building for other databases, or any business rule — `append` folds the
//! new events with `faultline_core::Incident::apply`, which is the only place
//! transitions are judged.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use faultline_core::incident::{Incident, IncidentStatus, Severity, TimelineEvent};
use faultline_core::{IncidentId, Timestamp, UserId};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyPool, Executor, Row};

use crate::health::{Fatal, StoreHealth};
use crate::{CorrelatorWrite, Decide, IncidentFilter, Result, SavedCorrelator, SavedGroup, SavedMember, Store, StoreError, TokenRecord, TokenScope, Turn};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A SQL-backed store. Cheap to clone (the pool and the health are shared).
#[derive(Clone, Debug)]
pub struct SqlStore {
    pub(crate) pool: AnyPool,
    backend: Backend,
    pub(crate) health: Arc<StoreHealth>,
}

/// A driver error as a `StoreError`: a fatal one (`Fatal::classify`) is
/// `Unavailable`, anything else `Database`.
pub(crate) fn db(e: sqlx::Error) -> StoreError {
    match Fatal::classify(&e) {
        Some(reason) => StoreError::Unavailable { reason, message: e.to_string() },
        None => StoreError::Database(e.to_string()),
    }
}

/// SQLite's SQLITE_BUSY family (5, and extended codes 261, 517, 773) means
/// "another writer holds the lock": retryable, not a failure.
pub(crate) fn busy_or_db(e: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(d) = &e
        && let Some(code) = d.code()
        && code.parse::<i32>().is_ok_and(|c| c & 0xff == 5)
    {
        return StoreError::Busy(e.to_string());
    }
    db(e)
}

/// A pooled connection held for one write. `settle` hands it back to the
/// pool, or closes it instead when the write met a fatal error or left the
/// connection's transaction state unknown (see `health`): a connection that
/// hit `SQLITE_FULL`, an I/O error or a lost link is never reused.
pub(crate) struct WriteConn<'s> {
    pub(crate) conn: PoolConnection<Any>,
    health: &'s StoreHealth,
}

impl WriteConn<'_> {
    /// `clean` is false when a COMMIT, ROLLBACK or BEGIN failed.
    pub(crate) fn settle<T>(mut self, out: Result<T>, clean: bool) -> Result<T> {
        match &out {
            Ok(_) => self.health.record_success(),
            Err(StoreError::Unavailable { reason, message }) => {
                self.conn.close_on_drop();
                self.health.record_failure(*reason, message);
            }
            Err(e) if !clean => {
                self.conn.close_on_drop();
                self.health.record_discard(&e.to_string());
            }
            Err(_) => {}
        }
        out
    }
}

/// Runs `$body` — an expression of type `Result<T>` that uses
/// `$tx: &mut AnyConnection` — in a transaction on a connection of its own:
/// committed if it is `Ok`, rolled back otherwise, and the connection
/// settled (`WriteConn::settle`). Evaluates to `Result<T>` and must be used
/// in a function returning `Result`. A macro rather than a function taking
/// a closure, so the body can borrow the caller's arguments.
macro_rules! transaction {
    ($store:expr, |$tx:ident| $body:expr) => {{
        let mut conn = $store.write_conn().await?;
        let mut clean = true;
        let out = async {
            let mut tx = match sqlx::Connection::begin(&mut *conn.conn).await {
                Ok(tx) => tx,
                Err(e) => {
                    clean = false;
                    return Err(crate::sql::busy_or_db(e));
                }
            };
            let body = {
                let $tx: &mut sqlx::AnyConnection = &mut tx;
                async { $body }.await
            };
            match body {
                Ok(v) => match tx.commit().await {
                    Ok(()) => Ok(v),
                    Err(e) => {
                        clean = false;
                        Err(crate::sql::busy_or_db(e))
                    }
                },
                Err(e) => {
                    if tx.rollback().await.is_err() {
                        clean = false;
                    }
                    Err(e)
                }
            }
        }
        .await;
        conn.settle(out, clean)
    }};
}

pub(crate) use transaction;

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

/// Removes a password from a connection URL so it can appear in errors.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let creds = &url[scheme_end + 3..at];
            match creds.find(':') {
                Some(colon) => format!("{}{}:***{}", &url[..scheme_end + 3], &creds[..colon], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

impl SqlStore {
    /// Opens (creating if needed) `faultline.db` in `data_dir`, in WAL mode,
    /// and applies migrations.
    pub async fn open_sqlite(data_dir: &Path) -> Result<SqlStore> {
        std::fs::create_dir_all(data_dir).map_err(|e| StoreError::Open(format!("cannot create data dir {}: {e}", data_dir.display())))?;
        // Probe writability up front: SQLite would otherwise fail later, on the
        // first write, with a less helpful message.
        let probe = data_dir.join(".faultline-write-test");
        std::fs::write(&probe, b"ok").map_err(|e| StoreError::Open(format!("data dir {} is not writable: {e}", data_dir.display())))?;
        let _ = std::fs::remove_file(&probe);
        let path = data_dir.join("faultline.db");
        let url = format!("sqlite://{}?mode=rwc", path.display());
        Self::connect_sqlite_url(&url, 8).await
    }

    /// An in-memory SQLite store (tests, the simulator's drills). One
    /// connection, because each `:memory:` connection is its own database.
    pub async fn open_sqlite_memory() -> Result<SqlStore> {
        Self::connect_sqlite_url("sqlite::memory:", 1).await
    }

    async fn connect_sqlite_url(url: &str, max_connections: u32) -> Result<SqlStore> {
        sqlx::any::install_default_drivers();
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(|conn, _| {
                Box::pin(async move {
                    // WAL: readers never block the writer. synchronous=FULL: a
                    // committed incident event survives power loss, because we
                    // acknowledge writes to callers only after commit.
                    conn.execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;").await?;
                    Ok(())
                })
            })
            .connect(url)
            .await
            .map_err(|e| StoreError::Open(format!("cannot open SQLite database {url}: {e}")))?;
        let store = SqlStore { pool, backend: Backend::Sqlite, health: Arc::default() };
        crate::migrate::run(&store.pool, store.backend).await?;
        Ok(store)
    }

    /// Connects to PostgreSQL (`postgres://user@host:port/db`) and applies
    /// migrations. Fails within a few seconds if the server does not answer.
    pub async fn connect_postgres(url: &str) -> Result<SqlStore> {
        sqlx::any::install_default_drivers();
        let pool = AnyPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(5))
            .connect(url)
            .await
            .map_err(|e| StoreError::Open(format!("cannot connect to PostgreSQL at {}: {e}", redact_url(url))))?;
        let store = SqlStore { pool, backend: Backend::Postgres, health: Arc::default() };
        crate::migrate::run(&store.pool, store.backend).await?;
        Ok(store)
    }

    /// Opens the store a URL names: `sqlite://…`, `sqlite::memory:` or `postgres://…`.
    pub async fn connect(url: &str) -> Result<SqlStore> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Self::connect_postgres(url).await
        } else if url.starts_with("sqlite:") {
            Self::connect_sqlite_url(url, if url.contains(":memory:") { 1 } else { 8 }).await
        } else {
            Err(StoreError::Open(format!("unsupported database URL {}: expected sqlite:// or postgres://", redact_url(url))))
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Write health: failures by reason, discarded connections, whether
    /// writes are failing now (`/readyz`, `/metrics`).
    pub fn health(&self) -> Arc<StoreHealth> {
        self.health.clone()
    }

    /// Runs one autocommit write statement on a connection of its own and
    /// settles it (`WriteConn::settle`); `map` turns a driver error into the
    /// caller's `StoreError` (`db` unless some error means more).
    pub(crate) async fn execute_write<'q>(
        &self,
        q: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments>,
        map: impl FnOnce(sqlx::Error) -> StoreError + Send,
    ) -> Result<sqlx::any::AnyQueryResult> {
        let mut conn = self.write_conn().await?;
        let out = q.execute(&mut *conn.conn).await.map_err(map);
        conn.settle(out, true)
    }

    /// A connection of the pool for one write (see `transaction!`).
    ///
    /// A connection that cannot be had is a failed write, recorded like one
    /// (so `/readyz` names it): a database refusing to start a session is
    /// unavailable whatever its error code says — PostgreSQL on a full data
    /// volume fails new sessions with `XX000 could not write init file`.
    /// Only a busy pool (every connection in use) and SQLite's busy lock
    /// stay retryable as they are.
    pub(crate) async fn write_conn(&self) -> Result<WriteConn<'_>> {
        let conn = match self.pool.acquire().await {
            Ok(c) => c,
            Err(e @ sqlx::Error::PoolTimedOut) => return Err(StoreError::Busy(e.to_string())),
            Err(e) => {
                let e = match busy_or_db(e) {
                    StoreError::Database(message) => StoreError::Unavailable { reason: Fatal::ConnectionLost, message },
                    other => other,
                };
                if let StoreError::Unavailable { reason, message } = &e {
                    self.health.record_failure(*reason, message);
                }
                return Err(e);
            }
        };
        Ok(WriteConn { conn, health: &self.health })
    }

    /// Closes the pool, waiting for in-flight queries (graceful shutdown).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Deletes all rows. For test isolation on a shared PostgreSQL database.
    pub async fn wipe_for_tests(&self) -> Result<()> {
        sqlx::raw_sql(
            "DELETE FROM timeline_events; DELETE FROM incidents; DELETE FROM api_tokens;
             DELETE FROM correlator_members; DELETE FROM correlator_groups; DELETE FROM correlator_state;",
        )
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }
}

/// The `engine_state` row `check_writable` rewrites to learn whether writes
/// have recovered; nothing reads it.
const WRITE_PROBE_STATE: &str = "write_probe";

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn incident_from_row(row: &AnyRow) -> Result<Incident> {
    let json: String = row.try_get("state_json").map_err(db)?;
    serde_json::from_str(&json).map_err(|e| StoreError::Corrupt(format!("incident snapshot: {e}")))
}

fn event_from_row(row: &AnyRow) -> Result<TimelineEvent> {
    let json: String = row.try_get("event_json").map_err(db)?;
    serde_json::from_str(&json).map_err(|e| StoreError::Corrupt(format!("timeline event: {e}")))
}

fn token_from_row(row: &AnyRow) -> Result<TokenRecord> {
    let scope: String = row.try_get("scope").map_err(db)?;
    Ok(TokenRecord {
        id: row.try_get("id").map_err(db)?,
        name: row.try_get("name").map_err(db)?,
        scope: TokenScope::parse(&scope).ok_or_else(|| StoreError::Corrupt(format!("token scope {scope:?}")))?,
        token_hash: row.try_get("token_hash").map_err(db)?,
        created_at: Timestamp::from_millis(row.try_get("created_at").map_err(db)?),
        revoked_at: row.try_get::<Option<i64>, _>("revoked_at").map_err(db)?.map(Timestamp::from_millis),
        user: row
            .try_get::<Option<String>, _>("user_id")
            .map_err(db)?
            .map(|u| UserId::new(&u).map_err(|e| StoreError::Corrupt(format!("token user {u:?}: {e}"))))
            .transpose()?,
    })
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String> {
    // Serializing our own plain data types cannot fail (no maps with non-string
    // keys, no custom serializers that error); map it anyway rather than panic.
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

async fn insert_events(conn: &mut sqlx::AnyConnection, id: IncidentId, events: &[TimelineEvent]) -> Result<()> {
    for ev in events {
        sqlx::query("INSERT INTO timeline_events (incident_id, seq, at, actor, kind, event_json) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(id.to_string())
            .bind(to_i64(ev.seq))
            .bind(ev.at.as_millis())
            .bind(ev.actor.to_string())
            .bind(ev.event.kind())
            .bind(to_json(ev)?)
            .execute(&mut *conn)
            .await
            .map_err(|e| if is_unique_violation(&e) { StoreError::Conflict { id, expected: ev.seq - 1, found: ev.seq } } else { db(e) })?;
    }
    Ok(())
}

/// Serialises the numbering of new incidents on PostgreSQL (SQLite has one
/// writer anyway), so two creations never draw the same short number.
const PG_NUMBER_LOCK: i64 = 0x666c_6e75_6d62;

async fn create_in(conn: &mut sqlx::AnyConnection, backend: Backend, id: IncidentId, opened: &TimelineEvent) -> Result<Incident> {
    let incident = Incident::fold(id, std::slice::from_ref(opened))?;
    if backend == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(PG_NUMBER_LOCK).execute(&mut *conn).await.map_err(db)?;
    }
    // The short number: one more than the highest handed out (never reused:
    // incidents are never deleted).
    sqlx::query(
        "INSERT INTO incidents (id, title, severity, status, version, opened_at, updated_at, state_json, number)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, (SELECT COALESCE(MAX(number), 0) + 1 FROM incidents))",
    )
    .bind(id.to_string())
    .bind(&incident.title)
    .bind(incident.severity.as_str())
    .bind(incident.status.as_str())
    .bind(to_i64(incident.version))
    .bind(incident.opened_at.as_millis())
    .bind(incident.updated_at.as_millis())
    .bind(to_json(&incident)?)
    .execute(&mut *conn)
    .await
    .map_err(|e| if is_unique_violation(&e) { StoreError::AlreadyExists(format!("incident {id}")) } else { busy_or_db(e) })?;
    insert_events(conn, id, std::slice::from_ref(opened)).await?;
    Ok(incident)
}

/// `Store::update`'s body inside a caller's transaction.
async fn update_in(conn: &mut sqlx::AnyConnection, id: IncidentId, decide: Decide) -> Result<(Incident, Vec<TimelineEvent>)> {
    // Take the incident's write lock with a no-op write as the first
    // statement: PostgreSQL locks the row (others block until we commit,
    // then read our result); SQLite takes its write lock, waiting up to
    // busy_timeout. From here to commit we are the only writer.
    let locked =
        sqlx::query("UPDATE incidents SET version = version WHERE id = $1").bind(id.to_string()).execute(&mut *conn).await.map_err(busy_or_db)?.rows_affected();
    if locked != 1 {
        return Err(StoreError::NotFound(id));
    }
    let row = sqlx::query("SELECT state_json FROM incidents WHERE id = $1").bind(id.to_string()).fetch_one(&mut *conn).await.map_err(db)?;
    let mut incident = incident_from_row(&row)?;
    let events = decide(&incident)?;
    for ev in &events {
        incident.apply(ev)?;
    }
    sqlx::query("UPDATE incidents SET title = $1, severity = $2, status = $3, version = $4, updated_at = $5, state_json = $6 WHERE id = $7")
        .bind(&incident.title)
        .bind(incident.severity.as_str())
        .bind(incident.status.as_str())
        .bind(to_i64(incident.version))
        .bind(incident.updated_at.as_millis())
        .bind(to_json(&incident)?)
        .bind(id.to_string())
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    insert_events(conn, id, &events).await?;
    Ok((incident, events))
}

fn save_state_query<'q>(name: &'q str, state_json: &'q str, at: Timestamp) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments> {
    sqlx::query(
        "INSERT INTO engine_state (name, state_json, updated_at) VALUES ($1, $2, $3)
         ON CONFLICT (name) DO UPDATE SET state_json = excluded.state_json, updated_at = excluded.updated_at",
    )
    .bind(name)
    .bind(state_json)
    .bind(at.as_millis())
}

/// Writes what a turn changed in the saved correlator (see `CorrelatorWrite`
/// for the order) inside the turn's transaction.
async fn save_correlator_in(conn: &mut sqlx::AnyConnection, w: &CorrelatorWrite, at: Timestamp) -> Result<()> {
    if w.replace {
        sqlx::raw_sql("DELETE FROM correlator_members; DELETE FROM correlator_groups;").execute(&mut *conn).await.map_err(busy_or_db)?;
    }
    sqlx::query(
        "INSERT INTO correlator_state (singleton, next_group_id, updated_at) VALUES (1, $1, $2)
         ON CONFLICT (singleton) DO UPDATE SET next_group_id = excluded.next_group_id, updated_at = excluded.updated_at",
    )
    .bind(to_i64(w.next_group_id))
    .bind(at.as_millis())
    .execute(&mut *conn)
    .await
    .map_err(busy_or_db)?;
    for &g in &w.removed_groups {
        sqlx::query("DELETE FROM correlator_members WHERE group_id = $1").bind(to_i64(g)).execute(&mut *conn).await.map_err(db)?;
        sqlx::query("DELETE FROM correlator_groups WHERE group_id = $1").bind(to_i64(g)).execute(&mut *conn).await.map_err(db)?;
    }
    for (g, key) in &w.removed_members {
        sqlx::query("DELETE FROM correlator_members WHERE group_id = $1 AND member_key = $2")
            .bind(to_i64(*g))
            .bind(key)
            .execute(&mut *conn)
            .await
            .map_err(db)?;
    }
    for g in &w.groups {
        sqlx::query(
            "INSERT INTO correlator_groups (group_id, incident_id, header_json, updated_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (group_id) DO UPDATE SET incident_id = excluded.incident_id, header_json = excluded.header_json, updated_at = excluded.updated_at",
        )
        .bind(to_i64(g.group))
        .bind(g.incident.map(|i| i.to_string()))
        .bind(&g.header_json)
        .bind(at.as_millis())
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    }
    for m in &w.members {
        sqlx::query(
            "INSERT INTO correlator_members (group_id, member_key, member_json, updated_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (group_id, member_key) DO UPDATE SET member_json = excluded.member_json, updated_at = excluded.updated_at",
        )
        .bind(to_i64(m.group))
        .bind(&m.key)
        .bind(&m.member_json)
        .bind(at.as_millis())
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    }
    Ok(())
}

fn group_id_from_row(row: &AnyRow) -> Result<u64> {
    let g: i64 = row.try_get("group_id").map_err(db)?;
    u64::try_from(g).map_err(|_| StoreError::Corrupt(format!("correlator group id {g}")))
}

#[async_trait]
impl Store for SqlStore {
    async fn create_incident(&self, id: IncidentId, opened: &TimelineEvent) -> Result<Incident> {
        transaction!(self, |tx| create_in(tx, self.backend, id, opened).await)
    }

    async fn append(&self, id: IncidentId, expected_version: u64, events: &[TimelineEvent]) -> Result<Incident> {
        transaction!(self, |tx| {
            // Claim the version first: a write as the transaction's first statement
            // takes SQLite's write lock (waiting on busy_timeout) and PostgreSQL's
            // row lock, so a concurrent appender either waits and then sees the new
            // version, or loses with Conflict. Nothing is written on Conflict.
            let new_version = expected_version + events.len() as u64;
            let claimed = sqlx::query("UPDATE incidents SET version = $1 WHERE id = $2 AND version = $3")
                .bind(to_i64(new_version))
                .bind(id.to_string())
                .bind(to_i64(expected_version))
                .execute(&mut *tx)
                .await
                .map_err(busy_or_db)?
                .rows_affected();
            if claimed != 1 {
                let found = sqlx::query("SELECT version FROM incidents WHERE id = $1").bind(id.to_string()).fetch_optional(&mut *tx).await.map_err(db)?;
                return match found {
                    None => Err(StoreError::NotFound(id)),
                    Some(row) => {
                        let found: i64 = row.try_get("version").map_err(db)?;
                        Err(StoreError::Conflict { id, expected: expected_version, found: found as u64 })
                    }
                };
            }
            let row = sqlx::query("SELECT state_json FROM incidents WHERE id = $1").bind(id.to_string()).fetch_one(&mut *tx).await.map_err(db)?;
            let mut incident = incident_from_row(&row)?;
            // The snapshot is at `expected_version` (we hold the lock); apply the
            // new events through the state machine so an invalid one aborts the
            // whole append.
            for ev in events {
                incident.apply(ev)?;
            }
            sqlx::query("UPDATE incidents SET title = $1, severity = $2, status = $3, updated_at = $4, state_json = $5 WHERE id = $6")
                .bind(&incident.title)
                .bind(incident.severity.as_str())
                .bind(incident.status.as_str())
                .bind(incident.updated_at.as_millis())
                .bind(to_json(&incident)?)
                .bind(id.to_string())
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            insert_events(tx, id, events).await?;
            Ok(incident)
        })
    }

    async fn update(&self, id: IncidentId, decide: Decide) -> Result<(Incident, Vec<TimelineEvent>)> {
        transaction!(self, |tx| update_in(tx, id, decide).await)
    }

    async fn commit_turn(&self, turn: Turn) -> Result<Vec<(IncidentId, Incident)>> {
        transaction!(self, |tx| {
            let mut out = Vec::with_capacity(turn.create.len() + turn.update.len());
            for (id, opened) in &turn.create {
                out.push((*id, create_in(tx, self.backend, *id, opened).await?));
            }
            for (id, decide) in turn.update {
                out.push((id, update_in(tx, id, decide).await?.0));
            }
            if let Some(write) = &turn.correlator {
                save_correlator_in(tx, write, turn.at).await?;
            }
            if let Some(name) = &turn.retire_state {
                sqlx::query("DELETE FROM engine_state WHERE name = $1").bind(name).execute(&mut *tx).await.map_err(busy_or_db)?;
            }
            Ok(out)
        })
    }

    async fn incident(&self, id: IncidentId) -> Result<Option<(Incident, Vec<TimelineEvent>)>> {
        // Read the timeline and fold it, rather than trusting the snapshot:
        // the timeline is the source of truth (INV-INC-1).
        let rows = sqlx::query("SELECT event_json FROM timeline_events WHERE incident_id = $1 ORDER BY seq")
            .bind(id.to_string())
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        if rows.is_empty() {
            return Ok(None);
        }
        let timeline = rows.iter().map(event_from_row).collect::<Result<Vec<_>>>()?;
        let incident = Incident::fold(id, &timeline).map_err(|e| StoreError::Corrupt(format!("incident {id}: {e}")))?;
        Ok(Some((incident, timeline)))
    }

    async fn incident_numbers(&self, ids: &[IncidentId]) -> Result<std::collections::HashMap<IncidentId, u64>> {
        let mut out = std::collections::HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(crate::MAX_BATCH_IDS) {
            let placeholders: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            // Only numbered placeholders are formatted in; values are bound.
            let sql = format!("SELECT id, number FROM incidents WHERE id IN ({}) AND number IS NOT NULL", placeholders.join(", "));
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for id in chunk {
                q = q.bind(id.to_string());
            }
            for row in q.fetch_all(&self.pool).await.map_err(db)? {
                let id: String = row.try_get("id").map_err(db)?;
                let n: i64 = row.try_get("number").map_err(db)?;
                let id = id.parse().map_err(|_| StoreError::Corrupt(format!("incident id {id:?} in the incidents table")))?;
                out.insert(id, u64::try_from(n).map_err(|_| StoreError::Corrupt(format!("incident number {n}")))?);
            }
        }
        Ok(out)
    }

    async fn incident_by_number(&self, number: u64) -> Result<Option<IncidentId>> {
        let Ok(n) = i64::try_from(number) else { return Ok(None) };
        let row = sqlx::query("SELECT id FROM incidents WHERE number = $1").bind(n).fetch_optional(&self.pool).await.map_err(db)?;
        row.map(|r| {
            let id: String = r.try_get("id").map_err(db)?;
            id.parse().map_err(|_| StoreError::Corrupt(format!("incident id {id:?} in the incidents table")))
        })
        .transpose()
    }

    async fn incident_state(&self, id: IncidentId) -> Result<Option<Incident>> {
        // The snapshot is written in the same transaction as the events it
        // folds, so it is never behind a committed timeline.
        let row = sqlx::query("SELECT state_json FROM incidents WHERE id = $1").bind(id.to_string()).fetch_optional(&self.pool).await.map_err(db)?;
        row.as_ref().map(incident_from_row).transpose()
    }

    async fn timeline_after(&self, id: IncidentId, seq: u64) -> Result<Vec<TimelineEvent>> {
        let rows = sqlx::query("SELECT event_json FROM timeline_events WHERE incident_id = $1 AND seq > $2 ORDER BY seq")
            .bind(id.to_string())
            .bind(to_i64(seq))
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter().map(event_from_row).collect()
    }

    async fn incidents_with_timelines(&self, ids: &[IncidentId]) -> Result<Vec<(Incident, Vec<TimelineEvent>)>> {
        let mut by_id: std::collections::HashMap<IncidentId, Vec<TimelineEvent>> = std::collections::HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(crate::MAX_BATCH_IDS) {
            let placeholders: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql =
                format!("SELECT incident_id, event_json FROM timeline_events WHERE incident_id IN ({}) ORDER BY incident_id, seq", placeholders.join(", "));
            // Safe: the only text spliced in is our own `$1, …, $n`; every id is bound.
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for id in chunk {
                q = q.bind(id.to_string());
            }
            let rows = q.fetch_all(&self.pool).await.map_err(db)?;
            for row in &rows {
                let raw: String = row.try_get("incident_id").map_err(db)?;
                let id: IncidentId = raw.parse().map_err(|_| StoreError::Corrupt(format!("timeline incident id {raw:?}")))?;
                by_id.entry(id).or_default().push(event_from_row(row)?);
            }
        }
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            // Fold as `incident` does: the timeline is the source of truth.
            let Some(timeline) = by_id.remove(id) else { continue };
            let incident = Incident::fold(*id, &timeline).map_err(|e| StoreError::Corrupt(format!("incident {id}: {e}")))?;
            out.push((incident, timeline));
        }
        Ok(out)
    }

    async fn list_incidents(&self, filter: &IncidentFilter) -> Result<Vec<Incident>> {
        let limit = i64::from(filter.limit.unwrap_or(100).min(1000));
        let rows = sqlx::query(
            "SELECT state_json FROM incidents
             WHERE ($1 = '' OR status = $1) AND ($2 = '' OR severity = $2) AND ($3 = 0 OR status <> 'resolved')
               AND opened_at >= $5 AND opened_at < $6
               AND ($7 = 0 OR opened_at < $8 OR (opened_at = $8 AND id < $9))
             ORDER BY opened_at DESC, id DESC LIMIT $4",
        )
        .bind(filter.status.map_or("", IncidentStatus::as_str))
        .bind(filter.severity.map_or("", Severity::as_str))
        .bind(i64::from(filter.open_only))
        .bind(limit)
        .bind(filter.opened_from.map_or(i64::MIN, Timestamp::as_millis))
        .bind(filter.opened_before.map_or(i64::MAX, Timestamp::as_millis))
        .bind(i64::from(filter.after.is_some()))
        .bind(filter.after.map_or(0, |(at, _)| at.as_millis()))
        .bind(filter.after.map_or_else(String::new, |(_, id)| id.to_string()))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter().map(incident_from_row).collect()
    }

    async fn insert_token(&self, token: &TokenRecord) -> Result<()> {
        let q = sqlx::query("INSERT INTO api_tokens (id, name, scope, token_hash, created_at, revoked_at, user_id) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(&token.id)
            .bind(&token.name)
            .bind(token.scope.as_str())
            .bind(&token.token_hash)
            .bind(token.created_at.as_millis())
            .bind(token.revoked_at.map(Timestamp::as_millis))
            .bind(token.user.as_ref().map(|u| u.as_str().to_owned()));
        self.execute_write(q, |e| if is_unique_violation(&e) { StoreError::AlreadyExists(format!("token named {:?}", token.name)) } else { db(e) }).await?;
        Ok(())
    }

    async fn token_by_hash(&self, token_hash: &str) -> Result<Option<TokenRecord>> {
        let row = sqlx::query("SELECT * FROM api_tokens WHERE token_hash = $1").bind(token_hash).fetch_optional(&self.pool).await.map_err(db)?;
        row.as_ref().map(token_from_row).transpose()
    }

    async fn list_tokens(&self) -> Result<Vec<TokenRecord>> {
        let rows = sqlx::query("SELECT * FROM api_tokens ORDER BY created_at, name").fetch_all(&self.pool).await.map_err(db)?;
        rows.iter().map(token_from_row).collect()
    }

    async fn revoke_token(&self, id_or_name: &str, at: Timestamp) -> Result<bool> {
        let q = sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE (id = $2 OR name = $2) AND revoked_at IS NULL").bind(at.as_millis()).bind(id_or_name);
        Ok(self.execute_write(q, db).await?.rows_affected() > 0)
    }

    async fn load_state(&self, name: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT state_json FROM engine_state WHERE name = $1").bind(name).fetch_optional(&self.pool).await.map_err(db)?;
        row.map(|r| r.try_get::<String, _>("state_json").map_err(db)).transpose()
    }

    async fn save_state(&self, name: &str, state_json: &str, at: Timestamp) -> Result<()> {
        self.execute_write(save_state_query(name, state_json, at), busy_or_db).await?;
        Ok(())
    }

    async fn load_correlator(&self) -> Result<Option<SavedCorrelator>> {
        // One transaction, so the three reads see one committed turn.
        let mut tx = self.pool.begin().await.map_err(db)?;
        let Some(state) = sqlx::query("SELECT next_group_id FROM correlator_state WHERE singleton = 1").fetch_optional(&mut *tx).await.map_err(db)? else {
            return Ok(None);
        };
        let next: i64 = state.try_get("next_group_id").map_err(db)?;
        let next_group_id = u64::try_from(next).map_err(|_| StoreError::Corrupt(format!("correlator next group id {next}")))?;
        let rows = sqlx::query("SELECT group_id, incident_id, header_json FROM correlator_groups ORDER BY group_id").fetch_all(&mut *tx).await.map_err(db)?;
        let mut groups = Vec::with_capacity(rows.len());
        for row in &rows {
            let incident = match row.try_get::<Option<String>, _>("incident_id").map_err(db)? {
                Some(raw) => Some(raw.parse().map_err(|_| StoreError::Corrupt(format!("correlator group incident id {raw:?}")))?),
                None => None,
            };
            groups.push(SavedGroup { group: group_id_from_row(row)?, incident, header_json: row.try_get("header_json").map_err(db)? });
        }
        let rows = sqlx::query("SELECT group_id, member_key, member_json FROM correlator_members ORDER BY group_id, member_key")
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
        let members = rows
            .iter()
            .map(|row| {
                Ok(SavedMember {
                    group: group_id_from_row(row)?,
                    key: row.try_get("member_key").map_err(db)?,
                    member_json: row.try_get("member_json").map_err(db)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        tx.commit().await.map_err(db)?;
        Ok(Some(SavedCorrelator { next_group_id, groups, members }))
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(db)?;
        Ok(())
    }

    async fn check_writable(&self) -> Result<()> {
        if self.health.failing().is_none() {
            return self.ping().await;
        }
        // Writes were failing: only a write that commits says they are back.
        // A kilobyte, so it needs room in the log as a real write does.
        let padding = "x".repeat(1024);
        self.execute_write(save_state_query(WRITE_PROBE_STATE, &padding, Timestamp::from_millis(0)), db).await?;
        Ok(())
    }
}

impl FromStr for Backend {
    type Err = String;
    fn from_str(s: &str) -> Result<Backend, String> {
        match s {
            "sqlite" => Ok(Backend::Sqlite),
            "postgres" | "postgresql" => Ok(Backend::Postgres),
            other => Err(format!("unknown backend {other:?}: expected sqlite or postgres")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_never_appear_in_urls_we_print() {
        assert_eq!(redact_url("postgres://u:secret@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_url("sqlite://x.db"), "sqlite://x.db");
    }
}
