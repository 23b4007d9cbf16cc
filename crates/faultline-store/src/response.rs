//! Durable state of the response workflow: the notification outbox and its
//! ledger, persisted escalation states with their next wake-up, the response
//! driver's read cursor per incident, silences, and the status page
//! (published incidents, drafts, maintenance, subscribers).
//!
//! What it is: `ResponseStore`, implemented for `SqlStore` with the same
//! dialect subset as the incident store (`$n` placeholders, BIGINT ms times,
//! JSON as TEXT). Its central guarantee is `commit_response`: a driver step's
//! escalation states, new outbox rows and read cursor are written in ONE
//! transaction, so a crash either keeps the whole step or none of it, and a
//! replayed step enqueues nothing twice (the idempotency key is the outbox's
//! primary key). Delivery is at-least-once: `claim_due` leases due rows to a
//! worker; a lease that expires (the worker died mid-send) makes the row
//! claimable again.
//!
//! What it is not: it decides nothing (who to page is the core's escalation;
//! when to retry is the engine's worker) and it never holds a secret — rows
//! name a configured channel, whose URL or key stays in the config.

use async_trait::async_trait;
use faultline_core::escalation::Escalation;
use faultline_core::routing::Silence;
use faultline_core::status_page::{DraftUpdate, PublicIncident, ScheduledMaintenance};
use faultline_core::{IncidentId, Timestamp, UserId};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::sql::{SqlStore, db, transaction};
use crate::{Result, StoreError};

/// Whether a notification still needs sending.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for its next attempt (possibly leased by a worker right now).
    Pending,
    Delivered,
    /// Gave up: the channel rejected it permanently or the retry budget ran out.
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }
    pub fn parse(s: &str) -> Option<DeliveryStatus> {
        match s {
            "pending" => Some(DeliveryStatus::Pending),
            "delivered" => Some(DeliveryStatus::Delivered),
            "failed" => Some(DeliveryStatus::Failed),
            _ => None,
        }
    }
}

/// A notification to put in the outbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxItem {
    pub idempotency_key: String,
    pub incident: IncidentId,
    /// Name of a configured channel (never its URL or key).
    pub channel: String,
    /// Who or what it is for: a user id, or the channel itself.
    pub recipient: String,
    /// `trigger`, `acknowledge`, `resolve`, …
    pub kind: String,
    /// Channel-independent message content; the notifier renders it.
    pub payload: serde_json::Value,
    /// First attempt no earlier than this.
    pub not_before: Timestamp,
}

/// A row of the outbox as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxRecord {
    pub idempotency_key: String,
    pub incident: IncidentId,
    pub channel: String,
    pub recipient: String,
    pub kind: String,
    pub payload: serde_json::Value,
    pub status: DeliveryStatus,
    /// Attempts started (a claim counts as an attempt).
    pub attempts: u32,
    pub next_attempt_at: Timestamp,
    pub lease_owner: Option<String>,
    pub lease_until: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub delivered_at: Option<Timestamp>,
    pub last_error: Option<String>,
}

/// One line of the notification ledger (append-only).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub id: i64,
    pub incident: IncidentId,
    pub idempotency_key: String,
    pub channel: String,
    pub recipient: String,
    pub kind: String,
    pub at: Timestamp,
    /// `enqueued`, `deduplicated`, `delivered`, `retry`, `failed`.
    pub outcome: String,
    pub attempt: u32,
    /// Status code, error class or reason. Never a secret.
    pub detail: String,
}

/// The persisted escalation of one incident under one policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EscalationRecord {
    pub incident: IncidentId,
    pub policy: String,
    pub state: Escalation,
    pub next_wake_at: Option<Timestamp>,
    pub updated_at: Timestamp,
}

/// Everything one step of the response driver writes, atomically.
#[derive(Clone, Debug, Default)]
pub struct ResponseBatch {
    /// The incident whose timeline was read, and how far (None: a timer
    /// step that read no new event).
    pub cursor: Option<(IncidentId, u64)>,
    pub escalations: Vec<EscalationRecord>,
    pub enqueue: Vec<OutboxItem>,
}

/// What `commit_response` did with the batch's notifications.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommitOutcome {
    /// Keys newly put in the outbox.
    pub enqueued: Vec<String>,
    /// Keys that were already there (a replay): not enqueued again.
    pub deduplicated: Vec<String>,
}

/// A draft status-page update waiting for the comms lead.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DraftRecord {
    pub incident: IncidentId,
    pub draft: DraftUpdate,
    pub created_at: Timestamp,
}

/// A status-page subscriber (`kind`: `webhook` or `email`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscriber {
    pub id: String,
    pub kind: String,
    pub target: String,
    pub created_at: Timestamp,
    pub unsubscribed_at: Option<Timestamp>,
}

/// Counts of outbox rows by status (for metrics and the storm benchmark).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OutboxCounts {
    pub pending: u64,
    pub delivered: u64,
    pub failed: u64,
}

#[async_trait]
pub trait ResponseStore: Send + Sync {
    /// Writes a driver step in one transaction: escalation states (upsert),
    /// new outbox rows (a key already present is left alone and reported as
    /// deduplicated), ledger lines for both, and the read cursor (which only
    /// moves forward).
    async fn commit_response(&self, batch: &ResponseBatch, now: Timestamp) -> Result<CommitOutcome>;
    /// How far the driver has read this incident's timeline (0: nothing yet).
    async fn response_cursor(&self, incident: IncidentId) -> Result<u64>;
    /// Incidents whose timeline has events the driver has not read yet
    /// (version above the cursor), oldest change first.
    async fn stale_incidents(&self, limit: u32) -> Result<Vec<IncidentId>>;
    async fn escalations(&self, incident: IncidentId) -> Result<Vec<EscalationRecord>>;
    /// Escalations with a wake-up at or before `now`, earliest first.
    async fn due_escalations(&self, now: Timestamp, limit: u32) -> Result<Vec<EscalationRecord>>;
    /// The earliest pending wake-up of any escalation.
    async fn next_escalation_wake(&self) -> Result<Option<Timestamp>>;

    /// Leases up to `limit` due, unleased pending rows to `owner` until
    /// `now + lease_ms`, counting an attempt on each. Earliest due first.
    async fn claim_due(&self, owner: &str, now: Timestamp, lease_ms: i64, limit: u32) -> Result<Vec<OutboxRecord>>;
    /// Marks a leased row delivered. False if `owner` no longer holds it.
    async fn mark_delivered(&self, key: &str, owner: &str, now: Timestamp, detail: &str) -> Result<bool>;
    /// Releases a leased row for another attempt at `next_attempt_at`.
    async fn mark_retry(&self, key: &str, owner: &str, now: Timestamp, next_attempt_at: Timestamp, error: &str) -> Result<bool>;
    /// Puts a leased row back untried (rate limit, retry budget): the claim
    /// does not count as an attempt and no ledger line is written.
    async fn defer(&self, key: &str, owner: &str, now: Timestamp, next_attempt_at: Timestamp) -> Result<bool>;
    /// Gives up on a leased row.
    async fn mark_failed(&self, key: &str, owner: &str, now: Timestamp, error: &str) -> Result<bool>;
    /// The outbox rows of one incident, oldest first.
    async fn notifications(&self, incident: IncidentId) -> Result<Vec<OutboxRecord>>;
    async fn notification(&self, key: &str) -> Result<Option<OutboxRecord>>;
    /// The ledger lines of one incident, in order.
    async fn ledger(&self, incident: IncidentId) -> Result<Vec<LedgerEntry>>;
    async fn outbox_counts(&self) -> Result<OutboxCounts>;
    /// The earliest next attempt of any pending row.
    async fn next_outbox_due(&self) -> Result<Option<Timestamp>>;

    /// Inserts or replaces a silence (by id).
    async fn put_silence(&self, silence: &Silence, now: Timestamp) -> Result<()>;
    async fn silence(&self, id: &str) -> Result<Option<Silence>>;
    /// All silences, newest start first (expired ones included).
    async fn silences(&self) -> Result<Vec<Silence>>;

    /// Inserts or replaces a published status-page incident.
    async fn put_public_incident(&self, incident: Option<IncidentId>, public: &PublicIncident) -> Result<()>;
    async fn public_incidents(&self) -> Result<Vec<PublicIncident>>;
    /// The public incident published for an internal one.
    async fn public_incident_for(&self, incident: IncidentId) -> Result<Option<PublicIncident>>;
    async fn put_draft(&self, draft: &DraftRecord) -> Result<()>;
    async fn drafts(&self) -> Result<Vec<DraftRecord>>;
    async fn draft(&self, incident: IncidentId) -> Result<Option<DraftRecord>>;
    async fn delete_draft(&self, incident: IncidentId) -> Result<bool>;
    async fn put_maintenance(&self, m: &ScheduledMaintenance) -> Result<()>;
    async fn maintenances(&self) -> Result<Vec<ScheduledMaintenance>>;
    /// Publishes a status-page update in ONE transaction: the public
    /// incident (linked to `incident`), the draft it came from removed, and
    /// the subscriber notifications put in the outbox (a key already present
    /// is left alone and reported as deduplicated). A crash keeps all or none.
    ///
    /// Compare-and-set: `based_on` is the number of updates the stored public
    /// incident had when `public` was computed from it (0: there was none).
    /// If another publish got there first, nothing is written and the answer
    /// is `StoreError::Conflict` (`expected`: `based_on`, `found`: the stored
    /// count); the caller re-reads and decides again. So two publishes racing
    /// from the same state never both write (nor reuse one update id).
    async fn publish_status(
        &self,
        incident: IncidentId,
        public: &PublicIncident,
        based_on: usize,
        enqueue: &[OutboxItem],
        now: Timestamp,
    ) -> Result<CommitOutcome>;
    async fn add_subscriber(&self, s: &Subscriber) -> Result<()>;
    /// Adds `s` unless `max_live` live (not unsubscribed) subscribers exist
    /// already: false then, and nothing is written. The count and the insert
    /// are one atomic step, so racing subscribes cannot overshoot the cap.
    async fn add_subscriber_within(&self, s: &Subscriber, max_live: u64) -> Result<bool>;
    /// One subscriber by id, unsubscribed or not.
    async fn subscriber(&self, id: &str) -> Result<Option<Subscriber>>;
    /// Live (not unsubscribed) subscribers.
    async fn subscribers(&self) -> Result<Vec<Subscriber>>;
    async fn unsubscribe(&self, id: &str, at: Timestamp) -> Result<bool>;
    /// Deletes the subscribers unsubscribed before `before` (retention);
    /// live ones are never touched. Returns how many were deleted. Each
    /// statement deletes at most `batch` rows, so a large backlog never holds
    /// the write lock for long.
    async fn purge_unsubscribed(&self, before: Timestamp, batch: u32) -> Result<u64>;
    /// Records the use of the one-click acknowledge link `nonce`: true the
    /// first time, false ever after (a link is single use, whoever races).
    async fn use_ack_link(&self, nonce: &str, incident: IncidentId, user: &UserId, at: Timestamp) -> Result<bool>;
    /// The message `incident` has on `channel`, where the channel edits in
    /// place (a Slack `ts`), if one was posted.
    async fn channel_message_ref(&self, incident: IncidentId, channel: &str) -> Result<Option<String>>;
    async fn put_channel_message_ref(&self, incident: IncidentId, channel: &str, message_ref: &str, at: Timestamp) -> Result<()>;
}

/// Key of the PostgreSQL advisory lock that serialises capped subscribes.
const PG_SUBSCRIBERS_LOCK: i64 = 0x666c_7473_7562;

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

fn to_json<T: Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn from_json<T: serde::de::DeserializeOwned>(what: &str, s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

fn parse_incident(s: &str) -> Result<IncidentId> {
    s.parse().map_err(|_| StoreError::Corrupt(format!("incident id {s:?}")))
}

fn ts(row: &AnyRow, col: &str) -> Result<Timestamp> {
    Ok(Timestamp::from_millis(row.try_get::<i64, _>(col).map_err(db)?))
}

fn opt_ts(row: &AnyRow, col: &str) -> Result<Option<Timestamp>> {
    Ok(row.try_get::<Option<i64>, _>(col).map_err(db)?.map(Timestamp::from_millis))
}

fn count_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn u32_of(v: i64) -> u32 {
    u32::try_from(v.max(0)).unwrap_or(u32::MAX)
}

fn outbox_from_row(row: &AnyRow) -> Result<OutboxRecord> {
    let status: String = row.try_get("status").map_err(db)?;
    let payload: String = row.try_get("payload_json").map_err(db)?;
    Ok(OutboxRecord {
        idempotency_key: row.try_get("idempotency_key").map_err(db)?,
        incident: parse_incident(&row.try_get::<String, _>("incident_id").map_err(db)?)?,
        channel: row.try_get("channel").map_err(db)?,
        recipient: row.try_get("recipient").map_err(db)?,
        kind: row.try_get("kind").map_err(db)?,
        payload: from_json("outbox payload", &payload)?,
        status: DeliveryStatus::parse(&status).ok_or_else(|| StoreError::Corrupt(format!("outbox status {status:?}")))?,
        attempts: u32_of(row.try_get("attempts").map_err(db)?),
        next_attempt_at: ts(row, "next_attempt_at")?,
        lease_owner: row.try_get("lease_owner").map_err(db)?,
        lease_until: opt_ts(row, "lease_until")?,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
        delivered_at: opt_ts(row, "delivered_at")?,
        last_error: row.try_get("last_error").map_err(db)?,
    })
}

fn ledger_from_row(row: &AnyRow) -> Result<LedgerEntry> {
    Ok(LedgerEntry {
        id: row.try_get("id").map_err(db)?,
        incident: parse_incident(&row.try_get::<String, _>("incident_id").map_err(db)?)?,
        idempotency_key: row.try_get("idempotency_key").map_err(db)?,
        channel: row.try_get("channel").map_err(db)?,
        recipient: row.try_get("recipient").map_err(db)?,
        kind: row.try_get("kind").map_err(db)?,
        at: ts(row, "at")?,
        outcome: row.try_get("outcome").map_err(db)?,
        attempt: u32_of(row.try_get("attempt").map_err(db)?),
        detail: row.try_get("detail").map_err(db)?,
    })
}

fn escalation_from_row(row: &AnyRow) -> Result<EscalationRecord> {
    let json: String = row.try_get("state_json").map_err(db)?;
    Ok(EscalationRecord {
        incident: parse_incident(&row.try_get::<String, _>("incident_id").map_err(db)?)?,
        policy: row.try_get("policy").map_err(db)?,
        state: from_json("escalation state", &json)?,
        next_wake_at: opt_ts(row, "next_wake_at")?,
        updated_at: ts(row, "updated_at")?,
    })
}

/// Longest ledger detail / error we keep (a remote error page is not a log).
const MAX_DETAIL: usize = 500;

fn clip(s: &str) -> String {
    s.chars().take(MAX_DETAIL).collect()
}

async fn ledger_line(
    conn: &mut sqlx::AnyConnection,
    rec: (&str, &str, &str, &str, &str),
    at: Timestamp,
    outcome: &str,
    attempt: u32,
    detail: &str,
) -> Result<()> {
    let (incident, key, channel, recipient, kind) = rec;
    sqlx::query(
        "INSERT INTO notification_ledger (incident_id, idempotency_key, channel, recipient, kind, at, outcome, attempt, detail)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(incident)
    .bind(key)
    .bind(channel)
    .bind(recipient)
    .bind(kind)
    .bind(at.as_millis())
    .bind(outcome)
    .bind(i64::from(attempt))
    .bind(clip(detail))
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    Ok(())
}

/// Inserts outbox rows (a key already present is left alone) with their
/// ledger lines, inside the caller's transaction.
async fn enqueue_rows(conn: &mut sqlx::AnyConnection, items: &[OutboxItem], now: Timestamp, out: &mut CommitOutcome) -> Result<()> {
    for item in items {
        let inc = item.incident.to_string();
        let n = sqlx::query(
            "INSERT INTO notification_outbox (idempotency_key, incident_id, channel, recipient, kind, payload_json, status,
                 attempts, next_attempt_at, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $7, $8, $8)
             ON CONFLICT (idempotency_key) DO NOTHING",
        )
        .bind(&item.idempotency_key)
        .bind(&inc)
        .bind(&item.channel)
        .bind(&item.recipient)
        .bind(&item.kind)
        .bind(to_json(&item.payload)?)
        .bind(item.not_before.as_millis())
        .bind(now.as_millis())
        .execute(&mut *conn)
        .await
        .map_err(db)?
        .rows_affected();
        let rec = (inc.as_str(), item.idempotency_key.as_str(), item.channel.as_str(), item.recipient.as_str(), item.kind.as_str());
        if n == 1 {
            ledger_line(&mut *conn, rec, now, "enqueued", 0, "").await?;
            out.enqueued.push(item.idempotency_key.clone());
        } else {
            ledger_line(&mut *conn, rec, now, "deduplicated", 0, "already in the outbox").await?;
            out.deduplicated.push(item.idempotency_key.clone());
        }
    }
    Ok(())
}

fn subscriber_from_row(r: &AnyRow) -> Result<Subscriber> {
    Ok(Subscriber {
        id: r.try_get("id").map_err(db)?,
        kind: r.try_get("kind").map_err(db)?,
        target: r.try_get("target").map_err(db)?,
        created_at: ts(r, "created_at")?,
        unsubscribed_at: opt_ts(r, "unsubscribed_at")?,
    })
}

impl SqlStore {
    /// Moves a leased row to a final or retry state and writes its ledger
    /// line, in one transaction. `None` status means retry at `next`.
    async fn finish(&self, key: &str, owner: &str, now: Timestamp, outcome: (&str, Option<DeliveryStatus>, Option<Timestamp>), detail: &str) -> Result<bool> {
        let (outcome, status, next) = outcome;
        transaction!(self, |tx| {
            let status_s = status.unwrap_or(DeliveryStatus::Pending).as_str();
            let delivered_at = (status == Some(DeliveryStatus::Delivered)).then_some(now.as_millis());
            let last_error = (status != Some(DeliveryStatus::Delivered)).then(|| clip(detail));
            let n = sqlx::query(
                "UPDATE notification_outbox SET status = $1, lease_owner = NULL, lease_until = NULL, updated_at = $2,
                 delivered_at = COALESCE($3, delivered_at), last_error = COALESCE($4, last_error),
                 next_attempt_at = COALESCE($5, next_attempt_at)
             WHERE idempotency_key = $6 AND lease_owner = $7 AND status = 'pending'",
            )
            .bind(status_s)
            .bind(now.as_millis())
            .bind(delivered_at)
            .bind(last_error)
            .bind(next.map(Timestamp::as_millis))
            .bind(key)
            .bind(owner)
            .execute(&mut *tx)
            .await
            .map_err(db)?
            .rows_affected();
            if n != 1 {
                return Ok(false);
            }
            let row = sqlx::query("SELECT * FROM notification_outbox WHERE idempotency_key = $1").bind(key).fetch_one(&mut *tx).await.map_err(db)?;
            let rec = outbox_from_row(&row)?;
            let inc = rec.incident.to_string();
            ledger_line(tx, (&inc, key, &rec.channel, &rec.recipient, &rec.kind), now, outcome, rec.attempts, detail).await?;
            Ok(true)
        })
    }
}

#[async_trait]
impl ResponseStore for SqlStore {
    async fn commit_response(&self, batch: &ResponseBatch, now: Timestamp) -> Result<CommitOutcome> {
        transaction!(self, |tx| {
            let mut out = CommitOutcome::default();
            // Cursor first: a write as the first statement takes SQLite's write
            // lock for the whole step.
            if let Some((incident, seq)) = batch.cursor {
                sqlx::query(
                    "INSERT INTO response_cursors (incident_id, seq, updated_at) VALUES ($1, $2, $3)
                 ON CONFLICT (incident_id) DO UPDATE SET seq = excluded.seq, updated_at = excluded.updated_at
                 WHERE response_cursors.seq < excluded.seq",
                )
                .bind(incident.to_string())
                .bind(i64::try_from(seq).unwrap_or(i64::MAX))
                .bind(now.as_millis())
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            }
            for e in &batch.escalations {
                sqlx::query(
                    "INSERT INTO escalations (incident_id, policy, state_json, next_wake_at, updated_at) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (incident_id, policy) DO UPDATE SET state_json = excluded.state_json,
                     next_wake_at = excluded.next_wake_at, updated_at = excluded.updated_at",
                )
                .bind(e.incident.to_string())
                .bind(&e.policy)
                .bind(to_json(&e.state)?)
                .bind(e.next_wake_at.map(Timestamp::as_millis))
                .bind(e.updated_at.as_millis())
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            }
            enqueue_rows(tx, &batch.enqueue, now, &mut out).await?;
            Ok(out)
        })
    }

    async fn response_cursor(&self, incident: IncidentId) -> Result<u64> {
        let row =
            sqlx::query("SELECT seq FROM response_cursors WHERE incident_id = $1").bind(incident.to_string()).fetch_optional(&self.pool).await.map_err(db)?;
        Ok(match row {
            Some(r) => u64::try_from(r.try_get::<i64, _>("seq").map_err(db)?).unwrap_or(0),
            None => 0,
        })
    }

    async fn stale_incidents(&self, limit: u32) -> Result<Vec<IncidentId>> {
        let rows = sqlx::query(
            "SELECT i.id AS id FROM incidents i LEFT JOIN response_cursors c ON c.incident_id = i.id
             WHERE c.seq IS NULL OR c.seq < i.version ORDER BY i.updated_at, i.id LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter().map(|r| parse_incident(&r.try_get::<String, _>("id").map_err(db)?)).collect()
    }

    async fn escalations(&self, incident: IncidentId) -> Result<Vec<EscalationRecord>> {
        let rows = sqlx::query("SELECT * FROM escalations WHERE incident_id = $1 ORDER BY policy")
            .bind(incident.to_string())
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter().map(escalation_from_row).collect()
    }

    async fn due_escalations(&self, now: Timestamp, limit: u32) -> Result<Vec<EscalationRecord>> {
        let rows = sqlx::query(
            "SELECT * FROM escalations WHERE next_wake_at IS NOT NULL AND next_wake_at <= $1
             ORDER BY next_wake_at, incident_id, policy LIMIT $2",
        )
        .bind(now.as_millis())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter().map(escalation_from_row).collect()
    }

    async fn next_escalation_wake(&self) -> Result<Option<Timestamp>> {
        let row = sqlx::query("SELECT MIN(next_wake_at) AS w FROM escalations").fetch_one(&self.pool).await.map_err(db)?;
        opt_ts(&row, "w")
    }

    async fn claim_due(&self, owner: &str, now: Timestamp, lease_ms: i64, limit: u32) -> Result<Vec<OutboxRecord>> {
        // The inner SELECT picks candidates; the outer WHERE re-checks the
        // lease so two workers racing for a row (PostgreSQL re-evaluates it
        // under the row lock) cannot both win it.
        let rows = sqlx::query(
            "UPDATE notification_outbox SET lease_owner = $1, lease_until = $2, attempts = attempts + 1, updated_at = $3
             WHERE idempotency_key IN (
                 SELECT idempotency_key FROM notification_outbox
                 WHERE status = 'pending' AND next_attempt_at <= $3 AND (lease_until IS NULL OR lease_until <= $3)
                 ORDER BY next_attempt_at, created_at, idempotency_key LIMIT $4)
               AND status = 'pending' AND (lease_until IS NULL OR lease_until <= $3)
             RETURNING *",
        )
        .bind(owner)
        .bind(now.as_millis().saturating_add(lease_ms.max(1)))
        .bind(now.as_millis())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        let mut out = rows.iter().map(outbox_from_row).collect::<Result<Vec<_>>>()?;
        out.sort_by(|a, b| (a.next_attempt_at, a.created_at, &a.idempotency_key).cmp(&(b.next_attempt_at, b.created_at, &b.idempotency_key)));
        Ok(out)
    }

    async fn mark_delivered(&self, key: &str, owner: &str, now: Timestamp, detail: &str) -> Result<bool> {
        self.finish(key, owner, now, ("delivered", Some(DeliveryStatus::Delivered), None), detail).await
    }

    async fn mark_retry(&self, key: &str, owner: &str, now: Timestamp, next_attempt_at: Timestamp, error: &str) -> Result<bool> {
        self.finish(key, owner, now, ("retry", None, Some(next_attempt_at)), error).await
    }

    async fn defer(&self, key: &str, owner: &str, now: Timestamp, next_attempt_at: Timestamp) -> Result<bool> {
        let n = self
            .execute_write(
                sqlx::query(
                    "UPDATE notification_outbox SET lease_owner = NULL, lease_until = NULL, attempts = attempts - 1,
                 next_attempt_at = $1, updated_at = $2
             WHERE idempotency_key = $3 AND lease_owner = $4 AND status = 'pending' AND attempts > 0",
                )
                .bind(next_attempt_at.as_millis())
                .bind(now.as_millis())
                .bind(key)
                .bind(owner),
                db,
            )
            .await?
            .rows_affected();
        Ok(n == 1)
    }

    async fn mark_failed(&self, key: &str, owner: &str, now: Timestamp, error: &str) -> Result<bool> {
        self.finish(key, owner, now, ("failed", Some(DeliveryStatus::Failed), None), error).await
    }

    async fn notifications(&self, incident: IncidentId) -> Result<Vec<OutboxRecord>> {
        let rows = sqlx::query("SELECT * FROM notification_outbox WHERE incident_id = $1 ORDER BY created_at, idempotency_key")
            .bind(incident.to_string())
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter().map(outbox_from_row).collect()
    }

    async fn notification(&self, key: &str) -> Result<Option<OutboxRecord>> {
        let row = sqlx::query("SELECT * FROM notification_outbox WHERE idempotency_key = $1").bind(key).fetch_optional(&self.pool).await.map_err(db)?;
        row.as_ref().map(outbox_from_row).transpose()
    }

    async fn ledger(&self, incident: IncidentId) -> Result<Vec<LedgerEntry>> {
        let rows = sqlx::query("SELECT * FROM notification_ledger WHERE incident_id = $1 ORDER BY id")
            .bind(incident.to_string())
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter().map(ledger_from_row).collect()
    }

    async fn outbox_counts(&self) -> Result<OutboxCounts> {
        let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM notification_outbox GROUP BY status").fetch_all(&self.pool).await.map_err(db)?;
        let mut c = OutboxCounts::default();
        for r in rows {
            let s: String = r.try_get("status").map_err(db)?;
            let n = u64::try_from(r.try_get::<i64, _>("n").map_err(db)?).unwrap_or(0);
            match DeliveryStatus::parse(&s) {
                Some(DeliveryStatus::Pending) => c.pending = n,
                Some(DeliveryStatus::Delivered) => c.delivered = n,
                Some(DeliveryStatus::Failed) => c.failed = n,
                None => return Err(StoreError::Corrupt(format!("outbox status {s:?}"))),
            }
        }
        Ok(c)
    }

    async fn next_outbox_due(&self) -> Result<Option<Timestamp>> {
        let row = sqlx::query(
            "SELECT MIN(CASE WHEN lease_until IS NOT NULL AND lease_until > next_attempt_at THEN lease_until ELSE next_attempt_at END) AS w
             FROM notification_outbox WHERE status = 'pending'",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(db)?;
        opt_ts(&row, "w")
    }

    async fn put_silence(&self, silence: &Silence, now: Timestamp) -> Result<()> {
        if silence.id.is_empty() {
            return Err(StoreError::Corrupt("a stored silence needs an id".into()));
        }
        self.execute_write(
            sqlx::query(
                "INSERT INTO silences (id, silence_json, starts_at, ends_at, updated_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (id) DO UPDATE SET silence_json = excluded.silence_json, starts_at = excluded.starts_at,
                 ends_at = excluded.ends_at, updated_at = excluded.updated_at",
            )
            .bind(&silence.id)
            .bind(to_json(silence)?)
            .bind(silence.starts_at.as_millisecond())
            .bind(silence.ends_at.as_millisecond())
            .bind(now.as_millis()),
            db,
        )
        .await?;
        Ok(())
    }

    async fn silence(&self, id: &str) -> Result<Option<Silence>> {
        let row = sqlx::query("SELECT silence_json FROM silences WHERE id = $1").bind(id).fetch_optional(&self.pool).await.map_err(db)?;
        row.map(|r| from_json("silence", &r.try_get::<String, _>("silence_json").map_err(db)?)).transpose()
    }

    async fn silences(&self) -> Result<Vec<Silence>> {
        let rows = sqlx::query("SELECT silence_json FROM silences ORDER BY starts_at DESC, id").fetch_all(&self.pool).await.map_err(db)?;
        rows.iter().map(|r| from_json("silence", &r.try_get::<String, _>("silence_json").map_err(db)?)).collect()
    }

    async fn put_public_incident(&self, incident: Option<IncidentId>, public: &PublicIncident) -> Result<()> {
        self.execute_write(
            sqlx::query(
                "INSERT INTO status_incidents (id, incident_id, json, created_at, updated_at, update_count) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (id) DO UPDATE SET json = excluded.json, updated_at = excluded.updated_at, update_count = excluded.update_count,
                 incident_id = COALESCE(excluded.incident_id, status_incidents.incident_id)",
            )
            .bind(&public.id)
            .bind(incident.map(|i| i.to_string()))
            .bind(to_json(public)?)
            .bind(public.created_at.as_millis())
            .bind(public.updated_at.as_millis())
            .bind(count_i64(public.updates.len())),
            db,
        )
        .await?;
        Ok(())
    }

    async fn public_incidents(&self) -> Result<Vec<PublicIncident>> {
        let rows = sqlx::query("SELECT json FROM status_incidents ORDER BY created_at DESC, id").fetch_all(&self.pool).await.map_err(db)?;
        rows.iter().map(|r| from_json("public incident", &r.try_get::<String, _>("json").map_err(db)?)).collect()
    }

    async fn public_incident_for(&self, incident: IncidentId) -> Result<Option<PublicIncident>> {
        let row = sqlx::query("SELECT json FROM status_incidents WHERE incident_id = $1 ORDER BY created_at DESC LIMIT 1")
            .bind(incident.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.map(|r| from_json("public incident", &r.try_get::<String, _>("json").map_err(db)?)).transpose()
    }

    async fn put_draft(&self, draft: &DraftRecord) -> Result<()> {
        self.execute_write(
            sqlx::query(
                "INSERT INTO status_drafts (incident_id, json, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (incident_id) DO UPDATE SET json = excluded.json, created_at = excluded.created_at",
            )
            .bind(draft.incident.to_string())
            .bind(to_json(&draft.draft)?)
            .bind(draft.created_at.as_millis()),
            db,
        )
        .await?;
        Ok(())
    }

    async fn drafts(&self) -> Result<Vec<DraftRecord>> {
        let rows = sqlx::query("SELECT * FROM status_drafts ORDER BY created_at, incident_id").fetch_all(&self.pool).await.map_err(db)?;
        rows.iter()
            .map(|r| {
                Ok(DraftRecord {
                    incident: parse_incident(&r.try_get::<String, _>("incident_id").map_err(db)?)?,
                    draft: from_json("draft", &r.try_get::<String, _>("json").map_err(db)?)?,
                    created_at: ts(r, "created_at")?,
                })
            })
            .collect()
    }

    async fn draft(&self, incident: IncidentId) -> Result<Option<DraftRecord>> {
        Ok(self.drafts().await?.into_iter().find(|d| d.incident == incident))
    }

    async fn delete_draft(&self, incident: IncidentId) -> Result<bool> {
        let n = self.execute_write(sqlx::query("DELETE FROM status_drafts WHERE incident_id = $1").bind(incident.to_string()), db).await?.rows_affected();
        Ok(n > 0)
    }

    async fn put_maintenance(&self, m: &ScheduledMaintenance) -> Result<()> {
        self.execute_write(
            sqlx::query(
                "INSERT INTO status_maintenances (id, json, scheduled_for) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO UPDATE SET json = excluded.json, scheduled_for = excluded.scheduled_for",
            )
            .bind(&m.id)
            .bind(to_json(m)?)
            .bind(m.scheduled_for.as_millis()),
            db,
        )
        .await?;
        Ok(())
    }

    async fn maintenances(&self) -> Result<Vec<ScheduledMaintenance>> {
        let rows = sqlx::query("SELECT json FROM status_maintenances ORDER BY scheduled_for DESC, id").fetch_all(&self.pool).await.map_err(db)?;
        rows.iter().map(|r| from_json("maintenance", &r.try_get::<String, _>("json").map_err(db)?)).collect()
    }

    async fn add_subscriber(&self, s: &Subscriber) -> Result<()> {
        self.execute_write(
            sqlx::query("INSERT INTO status_subscribers (id, kind, target, created_at, unsubscribed_at) VALUES ($1, $2, $3, $4, $5)")
                .bind(&s.id)
                .bind(&s.kind)
                .bind(&s.target)
                .bind(s.created_at.as_millis())
                .bind(s.unsubscribed_at.map(Timestamp::as_millis)),
            |e| if is_unique_violation(&e) { StoreError::AlreadyExists(format!("subscriber {}", s.id)) } else { db(e) },
        )
        .await?;
        Ok(())
    }

    async fn add_subscriber_within(&self, s: &Subscriber, max_live: u64) -> Result<bool> {
        transaction!(self, |tx| {
            // SQLite runs the statement below under its one write lock; PostgreSQL
            // needs a lock, or two racing inserts would both count below the cap.
            if self.backend() == crate::Backend::Postgres {
                sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(PG_SUBSCRIBERS_LOCK).execute(&mut *tx).await.map_err(db)?;
            }
            let n = sqlx::query(
                "INSERT INTO status_subscribers (id, kind, target, created_at, unsubscribed_at)
             SELECT $1, $2, $3, $4, $5 WHERE (SELECT COUNT(*) FROM status_subscribers WHERE unsubscribed_at IS NULL) < $6",
            )
            .bind(&s.id)
            .bind(&s.kind)
            .bind(&s.target)
            .bind(s.created_at.as_millis())
            .bind(s.unsubscribed_at.map(Timestamp::as_millis))
            .bind(i64::try_from(max_live).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await
            .map_err(|e| if is_unique_violation(&e) { StoreError::AlreadyExists(format!("subscriber {}", s.id)) } else { db(e) })?
            .rows_affected();
            Ok(n == 1)
        })
    }

    async fn subscribers(&self) -> Result<Vec<Subscriber>> {
        let rows =
            sqlx::query("SELECT * FROM status_subscribers WHERE unsubscribed_at IS NULL ORDER BY created_at, id").fetch_all(&self.pool).await.map_err(db)?;
        rows.iter().map(subscriber_from_row).collect()
    }

    async fn subscriber(&self, id: &str) -> Result<Option<Subscriber>> {
        let row = sqlx::query("SELECT * FROM status_subscribers WHERE id = $1").bind(id).fetch_optional(&self.pool).await.map_err(db)?;
        row.as_ref().map(subscriber_from_row).transpose()
    }

    async fn publish_status(
        &self,
        incident: IncidentId,
        public: &PublicIncident,
        based_on: usize,
        enqueue: &[OutboxItem],
        now: Timestamp,
    ) -> Result<CommitOutcome> {
        transaction!(self, |tx| {
            let mut out = CommitOutcome::default();
            let json = to_json(public)?;
            // Compare-and-set as the transaction's first statement: it takes
            // SQLite's write lock and PostgreSQL's row lock, so a racing publish
            // waits, then finds the count moved on and matches no row.
            let set = sqlx::query(
                "UPDATE status_incidents SET json = $1, updated_at = $2, update_count = $3, incident_id = $4
             WHERE id = $5 AND update_count = $6",
            )
            .bind(&json)
            .bind(public.updated_at.as_millis())
            .bind(count_i64(public.updates.len()))
            .bind(incident.to_string())
            .bind(&public.id)
            .bind(count_i64(based_on))
            .execute(&mut *tx)
            .await
            .map_err(db)?
            .rows_affected();
            if set != 1 {
                let conflict = || StoreError::StatusPageConflict { incident, based_on: based_on as u64 };
                let exists = sqlx::query("SELECT id FROM status_incidents WHERE id = $1").bind(&public.id).fetch_optional(&mut *tx).await.map_err(db)?;
                if exists.is_some() || based_on != 0 {
                    return Err(conflict());
                }
                // The first publish creates it; a racing first publish makes this
                // a unique violation, i.e. the same conflict.
                sqlx::query("INSERT INTO status_incidents (id, incident_id, json, created_at, updated_at, update_count) VALUES ($1, $2, $3, $4, $5, $6)")
                    .bind(&public.id)
                    .bind(incident.to_string())
                    .bind(&json)
                    .bind(public.created_at.as_millis())
                    .bind(public.updated_at.as_millis())
                    .bind(count_i64(public.updates.len()))
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| if is_unique_violation(&e) { conflict() } else { db(e) })?;
            }
            sqlx::query("DELETE FROM status_drafts WHERE incident_id = $1").bind(incident.to_string()).execute(&mut *tx).await.map_err(db)?;
            enqueue_rows(tx, enqueue, now, &mut out).await?;
            Ok(out)
        })
    }

    async fn unsubscribe(&self, id: &str, at: Timestamp) -> Result<bool> {
        let n = self
            .execute_write(
                sqlx::query("UPDATE status_subscribers SET unsubscribed_at = $1 WHERE id = $2 AND unsubscribed_at IS NULL").bind(at.as_millis()).bind(id),
                db,
            )
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    async fn use_ack_link(&self, nonce: &str, incident: IncidentId, user: &UserId, at: Timestamp) -> Result<bool> {
        let n = sqlx::query("INSERT INTO ack_link_uses (nonce, incident_id, user_id, used_at) VALUES ($1, $2, $3, $4) ON CONFLICT (nonce) DO NOTHING")
            .bind(nonce)
            .bind(incident.to_string())
            .bind(user.as_str())
            .bind(at.as_millis())
            .execute(&self.pool)
            .await
            .map_err(db)?
            .rows_affected();
        Ok(n == 1)
    }

    async fn channel_message_ref(&self, incident: IncidentId, channel: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT message_ref FROM channel_message_refs WHERE incident_id = $1 AND channel = $2")
            .bind(incident.to_string())
            .bind(channel)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.map(|r| r.try_get::<String, _>("message_ref").map_err(db)).transpose()
    }

    async fn put_channel_message_ref(&self, incident: IncidentId, channel: &str, message_ref: &str, at: Timestamp) -> Result<()> {
        sqlx::query(
            "INSERT INTO channel_message_refs (incident_id, channel, message_ref, updated_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (incident_id, channel) DO UPDATE SET message_ref = excluded.message_ref, updated_at = excluded.updated_at",
        )
        .bind(incident.to_string())
        .bind(channel)
        .bind(message_ref)
        .bind(at.as_millis())
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn purge_unsubscribed(&self, before: Timestamp, batch: u32) -> Result<u64> {
        let batch = batch.max(1);
        let mut total = 0;
        loop {
            // The sub-select bounds each statement (neither backend takes LIMIT on DELETE portably).
            let n = self
                .execute_write(
                    sqlx::query(
                        "DELETE FROM status_subscribers WHERE id IN
                 (SELECT id FROM status_subscribers WHERE unsubscribed_at IS NOT NULL AND unsubscribed_at < $1 LIMIT $2)",
                    )
                    .bind(before.as_millis())
                    .bind(i64::from(batch)),
                    db,
                )
                .await?
                .rows_affected();
            total += n;
            if n < u64::from(batch) {
                return Ok(total);
            }
        }
    }
}
