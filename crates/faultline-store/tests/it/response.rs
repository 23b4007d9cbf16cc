//! Conformance of `ResponseStore` on every backend: the outbox (idempotent
//! enqueue, leases, at-least-once redelivery after a lost lease, retries,
//! ledger), atomic driver steps with persisted escalations and cursors,
//! silences and status-page state. Same per-backend pattern as
//! `conformance.rs` (`response_suite!` instantiates each case per backend).

use std::sync::Arc;

use faultline_core::escalation::Escalation;
use faultline_core::routing::{ApiMatcher, Silence};
use faultline_core::status_page::{DraftUpdate, Impact, PublicIncident, PublicIncidentStatus, PublicUpdate, ScheduledMaintenance};
use faultline_core::{IncidentId, Timestamp};
use faultline_store::response::{DeliveryStatus, DraftRecord, EscalationRecord, OutboxItem, ResponseBatch, ResponseStore, Subscriber};
use faultline_store::{SqlStore, StoreError};

fn t(s: i64) -> Timestamp {
    Timestamp::from_secs(1_800_000_000 + s)
}

fn item(incident: IncidentId, key: &str, at: Timestamp) -> OutboxItem {
    OutboxItem {
        idempotency_key: key.into(),
        incident,
        channel: "ops-webhook".into(),
        recipient: "alice".into(),
        kind: "trigger".into(),
        payload: serde_json::json!({"title": "checkout down", "key": key}),
        not_before: at,
    }
}

fn new_id() -> IncidentId {
    IncidentId::from_uuid(uuid::Uuid::now_v7())
}

pub async fn enqueue_is_idempotent_and_ledgered(store: SqlStore) {
    let inc = new_id();
    let batch = ResponseBatch { cursor: Some((inc, 3)), escalations: vec![], enqueue: vec![item(inc, "k1", t(0)), item(inc, "k2", t(0))] };
    let first = store.commit_response(&batch, t(0)).await.unwrap();
    assert_eq!(first.enqueued, ["k1", "k2"]);
    // A replay of the same step (driver crashed before it knew it committed).
    let again = store.commit_response(&batch, t(1)).await.unwrap();
    assert!(again.enqueued.is_empty());
    assert_eq!(again.deduplicated, ["k1", "k2"]);
    let rows = store.notifications(inc).await.unwrap();
    assert_eq!(rows.len(), 2, "one row per idempotency key");
    assert!(rows.iter().all(|r| r.status == DeliveryStatus::Pending && r.attempts == 0));
    let ledger = store.ledger(inc).await.unwrap();
    let outcomes: Vec<_> = ledger.iter().map(|l| (l.idempotency_key.as_str(), l.outcome.as_str())).collect();
    assert_eq!(outcomes, [("k1", "enqueued"), ("k2", "enqueued"), ("k1", "deduplicated"), ("k2", "deduplicated")]);
    assert_eq!(store.response_cursor(inc).await.unwrap(), 3);
    // The cursor never moves back.
    store.commit_response(&ResponseBatch { cursor: Some((inc, 2)), ..Default::default() }, t(2)).await.unwrap();
    assert_eq!(store.response_cursor(inc).await.unwrap(), 3);
    assert_eq!(store.response_cursor(new_id()).await.unwrap(), 0);
}

pub async fn stale_incidents_are_those_read_past_their_cursor(store: SqlStore) {
    use faultline_core::incident::{Actor, Command, Incident, Severity};
    use faultline_store::Store;
    let actor = Actor::System("test".into());
    let a = new_id();
    let b = new_id();
    store.create_incident(a, &Incident::open("a", Severity::Sev2, None, t(0), actor.clone()).unwrap()).await.unwrap();
    store.create_incident(b, &Incident::open("b", Severity::Sev2, None, t(1), actor.clone()).unwrap()).await.unwrap();
    assert_eq!(store.stale_incidents(10).await.unwrap(), [a, b]);
    store.commit_response(&ResponseBatch { cursor: Some((a, 1)), ..Default::default() }, t(2)).await.unwrap();
    assert_eq!(store.stale_incidents(10).await.unwrap(), [b]);
    faultline_store::commands::execute(&store, a, Command::Acknowledge, actor, t(3)).await.unwrap();
    assert_eq!(store.stale_incidents(10).await.unwrap(), [b, a], "a has an unread event again");
    assert_eq!(store.stale_incidents(1).await.unwrap().len(), 1);
}

pub async fn claims_lease_due_rows_once_and_redeliver_after_a_lost_lease(store: SqlStore) {
    let inc = new_id();
    let batch = ResponseBatch { enqueue: vec![item(inc, "now", t(0)), item(inc, "later", t(60))], ..Default::default() };
    store.commit_response(&batch, t(0)).await.unwrap();
    let claimed = store.claim_due("w1", t(0), 30_000, 10).await.unwrap();
    assert_eq!(claimed.iter().map(|r| r.idempotency_key.as_str()).collect::<Vec<_>>(), ["now"], "only due rows");
    assert_eq!(claimed[0].attempts, 1);
    assert_eq!(claimed[0].lease_owner.as_deref(), Some("w1"));
    // Leased: nobody else gets it while the lease holds.
    assert!(store.claim_due("w2", t(10), 30_000, 10).await.unwrap().is_empty());
    // w1 died: after the lease, w2 claims it (at-least-once).
    let again = store.claim_due("w2", t(31), 30_000, 10).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 2);
    // The dead worker's late answer is refused; the live one's is recorded.
    assert!(!store.mark_delivered("now", "w1", t(32), "HTTP 200").await.unwrap());
    assert!(store.mark_delivered("now", "w2", t(32), "HTTP 200").await.unwrap());
    assert!(!store.mark_delivered("now", "w2", t(33), "HTTP 200").await.unwrap(), "delivered once");
    let row = store.notification("now").await.unwrap().unwrap();
    assert_eq!((row.status, row.delivered_at, row.lease_owner), (DeliveryStatus::Delivered, Some(t(32)), None));
    assert!(store.claim_due("w3", t(100), 30_000, 10).await.unwrap().iter().all(|r| r.idempotency_key == "later"));
}

pub async fn retries_wait_and_failures_are_final(store: SqlStore) {
    let inc = new_id();
    store.commit_response(&ResponseBatch { enqueue: vec![item(inc, "r", t(0))], ..Default::default() }, t(0)).await.unwrap();
    let c = store.claim_due("w", t(0), 10_000, 10).await.unwrap();
    assert_eq!(c.len(), 1);
    assert!(store.mark_retry("r", "w", t(1), t(5), "HTTP 503").await.unwrap());
    assert!(store.claim_due("w", t(4), 10_000, 10).await.unwrap().is_empty(), "not before its next attempt");
    assert_eq!(store.next_outbox_due().await.unwrap(), Some(t(5)));
    let c = store.claim_due("w", t(5), 10_000, 10).await.unwrap();
    assert_eq!(c[0].attempts, 2);
    assert_eq!(c[0].last_error.as_deref(), Some("HTTP 503"));
    // A deferral (rate limit) does not count as an attempt and leaves no ledger line.
    assert!(store.defer("r", "w", t(5), t(6)).await.unwrap());
    assert!(!store.defer("r", "w", t(5), t(6)).await.unwrap(), "no longer leased");
    let c = store.claim_due("w", t(6), 10_000, 10).await.unwrap();
    assert_eq!(c[0].attempts, 2);
    assert!(store.mark_failed("r", "w", t(6), "HTTP 400 (permanent)").await.unwrap());
    assert!(store.claim_due("w", t(100), 10_000, 10).await.unwrap().is_empty());
    let counts = store.outbox_counts().await.unwrap();
    assert_eq!((counts.pending, counts.delivered, counts.failed), (0, 0, 1));
    let ledger: Vec<_> = store.ledger(inc).await.unwrap().into_iter().map(|l| (l.outcome, l.attempt, l.detail)).collect();
    assert_eq!(
        ledger,
        [
            ("enqueued".to_owned(), 0, String::new()),
            ("retry".to_owned(), 1, "HTTP 503".to_owned()),
            ("failed".to_owned(), 2, "HTTP 400 (permanent)".to_owned())
        ]
    );
}

/// Two workers racing for the same due rows: every row is claimed by exactly
/// one of them.
pub async fn racing_workers_never_claim_the_same_row(store: SqlStore) {
    let inc = new_id();
    let items: Vec<_> = (0..40).map(|i| item(inc, &format!("k{i:02}"), t(0))).collect();
    store.commit_response(&ResponseBatch { enqueue: items, ..Default::default() }, t(0)).await.unwrap();
    let store = Arc::new(store);
    let mut tasks = Vec::new();
    for w in 0..4 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let got = s.claim_due(&format!("w{w}"), t(1), 60_000, 3).await.unwrap();
                if got.is_empty() {
                    break;
                }
                mine.extend(got.into_iter().map(|r| r.idempotency_key));
            }
            mine
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    all.sort();
    let expected: Vec<_> = (0..40).map(|i| format!("k{i:02}")).collect();
    assert_eq!(all, expected, "each row claimed exactly once");
}

pub async fn escalation_states_persist_with_their_wake_up(store: SqlStore) {
    let inc = new_id();
    let state = Escalation::new(inc);
    let rec = EscalationRecord { incident: inc, policy: "payments".into(), state: state.clone(), next_wake_at: Some(t(300)), updated_at: t(0) };
    let other = EscalationRecord { incident: new_id(), policy: "db".into(), state: state.clone(), next_wake_at: Some(t(100)), updated_at: t(0) };
    let idle = EscalationRecord { incident: new_id(), policy: "db".into(), state, next_wake_at: None, updated_at: t(0) };
    store.commit_response(&ResponseBatch { escalations: vec![rec.clone(), other.clone(), idle], ..Default::default() }, t(0)).await.unwrap();
    assert_eq!(store.escalations(inc).await.unwrap(), std::slice::from_ref(&rec));
    assert_eq!(store.next_escalation_wake().await.unwrap(), Some(t(100)));
    let due: Vec<_> = store.due_escalations(t(300), 10).await.unwrap().into_iter().map(|e| e.policy).collect();
    assert_eq!(due, ["db", "payments"], "earliest first; idle ones never due");
    // Upsert replaces.
    let moved = EscalationRecord { next_wake_at: None, updated_at: t(5), ..rec };
    store.commit_response(&ResponseBatch { escalations: vec![moved.clone()], ..Default::default() }, t(5)).await.unwrap();
    assert_eq!(store.escalations(inc).await.unwrap(), [moved]);
    assert_eq!(store.due_escalations(t(1000), 10).await.unwrap().len(), 1);
}

fn silence(id: &str, starts: Timestamp, ends: Timestamp) -> Silence {
    Silence {
        id: id.into(),
        matchers: vec![ApiMatcher { name: "team".into(), value: "payments".into(), is_regex: false, is_equal: true }],
        starts_at: starts.to_jiff(),
        ends_at: ends.to_jiff(),
        created_by: "alice".into(),
        comment: "deploy".into(),
        status: None,
        updated_at: Some(starts.to_jiff()),
    }
}

pub async fn silences_round_trip_and_expire_by_update(store: SqlStore) {
    let a = silence("s-a", t(0), t(3600));
    let b = silence("s-b", t(10), t(20));
    store.put_silence(&a, t(0)).await.unwrap();
    store.put_silence(&b, t(0)).await.unwrap();
    assert_eq!(store.silence("s-a").await.unwrap(), Some(a.clone()));
    assert_eq!(store.silence("nope").await.unwrap(), None);
    assert_eq!(store.silences().await.unwrap().iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), ["s-b", "s-a"]);
    let expired = Silence { ends_at: t(50).to_jiff(), ..a };
    store.put_silence(&expired, t(50)).await.unwrap();
    assert_eq!(store.silence("s-a").await.unwrap().unwrap().ends_at, t(50).to_jiff());
    assert_eq!(store.silences().await.unwrap().len(), 2);
}

pub async fn status_page_state_round_trips(store: SqlStore) {
    let inc = new_id();
    let public = PublicIncident { updated_at: t(1), ..public_with("p1", 0, "") };
    store.put_public_incident(Some(inc), &public).await.unwrap();
    let resolved = PublicIncident { status: PublicIncidentStatus::Resolved, updated_at: t(9), resolved_at: Some(t(9)), ..public.clone() };
    store.put_public_incident(None, &resolved).await.unwrap();
    assert_eq!(store.public_incidents().await.unwrap(), std::slice::from_ref(&resolved));
    assert_eq!(store.public_incident_for(inc).await.unwrap(), Some(resolved), "the link to the internal incident is kept");
    let draft = DraftRecord {
        incident: inc,
        draft: DraftUpdate {
            status: PublicIncidentStatus::Identified,
            impact: Impact::Major,
            body: "found it".into(),
            components: Default::default(),
            changed: true,
        },
        created_at: t(3),
    };
    store.put_draft(&draft).await.unwrap();
    assert_eq!(store.draft(inc).await.unwrap(), Some(draft.clone()));
    assert_eq!(store.drafts().await.unwrap().len(), 1);
    assert!(store.delete_draft(inc).await.unwrap());
    assert!(!store.delete_draft(inc).await.unwrap());
    let m = ScheduledMaintenance {
        id: "m1".into(),
        name: "DB upgrade".into(),
        scheduled_for: t(100),
        scheduled_until: t(200),
        component_ids: vec!["flow-checkout".into()],
        body: String::new(),
        manual_status: None,
        created_at: t(0),
    };
    store.put_maintenance(&m).await.unwrap();
    assert_eq!(store.maintenances().await.unwrap(), [m]);
    let s = Subscriber { id: "sub1".into(), kind: "webhook".into(), target: "http://127.0.0.1:1/hook".into(), created_at: t(0), unsubscribed_at: None };
    store.add_subscriber(&s).await.unwrap();
    assert!(store.add_subscriber(&s).await.is_err(), "duplicate id");
    assert_eq!(store.subscribers().await.unwrap(), [s]);
    assert!(store.unsubscribe("sub1", t(5)).await.unwrap());
    assert!(store.subscribers().await.unwrap().is_empty());
}

pub async fn publishing_is_one_transaction_with_its_subscriber_notifications(store: SqlStore) {
    let inc = new_id();
    let public = PublicIncident { updated_at: t(1), ..public_with(&inc.to_string(), 0, "") };
    let draft = DraftRecord {
        incident: inc,
        draft: DraftUpdate {
            status: PublicIncidentStatus::Investigating,
            impact: Impact::Major,
            body: "looking".into(),
            components: Default::default(),
            changed: true,
        },
        created_at: t(1),
    };
    store.put_draft(&draft).await.unwrap();
    let sub = |key: &str| OutboxItem { channel: "subscriber:s1".into(), recipient: "s1".into(), kind: "status_incident".into(), ..item(inc, key, t(1)) };
    let out = store.publish_status(inc, &public, 0, &[sub("u1/s1"), sub("u1/s1/c")], t(1)).await.unwrap();
    assert_eq!(out.enqueued, ["u1/s1", "u1/s1/c"]);
    assert_eq!(store.public_incident_for(inc).await.unwrap(), Some(public.clone()));
    assert_eq!(store.draft(inc).await.unwrap(), None, "the published draft is gone");
    // Publishing the same update again (a retried request) sends nothing twice.
    let again = store.publish_status(inc, &public, 0, &[sub("u1/s1")], t(2)).await.unwrap();
    assert_eq!((again.enqueued.len(), again.deduplicated.as_slice()), (0, ["u1/s1".to_owned()].as_slice()));
    let rows = store.notifications(inc).await.unwrap();
    assert_eq!(rows.iter().map(|r| r.channel.as_str()).collect::<Vec<_>>(), ["subscriber:s1", "subscriber:s1"]);
    let s = Subscriber { id: "s1".into(), kind: "webhook".into(), target: "http://127.0.0.1:1/hook".into(), created_at: t(0), unsubscribed_at: None };
    store.add_subscriber(&s).await.unwrap();
    assert_eq!(store.subscriber("s1").await.unwrap(), Some(s));
    store.unsubscribe("s1", t(3)).await.unwrap();
    assert_eq!(store.subscriber("s1").await.unwrap().and_then(|s| s.unsubscribed_at), Some(t(3)), "an unsubscribed subscriber is still found, marked");
    assert_eq!(store.subscriber("nope").await.unwrap(), None);
}

/// Unsubscribed subscribers are deleted once their retention has passed
/// (`purge_unsubscribed(before, batch)`): only those unsubscribed strictly before
/// the cut-off, never a live one, and a backlog of several batches in one
/// call.
pub async fn unsubscribed_subscribers_are_purged_after_their_retention(store: SqlStore) {
    let sub = |id: String, unsubscribed_at: Option<Timestamp>| Subscriber {
        id,
        kind: "webhook".into(),
        target: "https://hooks.example.com/x".into(),
        created_at: t(0),
        unsubscribed_at,
    };
    store.add_subscriber(&sub("live".into(), None)).await.unwrap();
    store.add_subscriber(&sub("recent".into(), None)).await.unwrap();
    assert!(store.unsubscribe("recent", t(100)).await.unwrap());
    store.add_subscriber(&sub("at-cutoff".into(), Some(t(50)))).await.unwrap();
    let backlog = 7;
    for i in 0..backlog {
        store.add_subscriber(&sub(format!("old{i}"), Some(t(10)))).await.unwrap();
    }
    assert_eq!(store.purge_unsubscribed(t(0), 3).await.unwrap(), 0, "nothing unsubscribed before the cut-off");
    assert_eq!(store.purge_unsubscribed(t(50), 3).await.unwrap(), backlog as u64, "every batch of the backlog, nothing at the cut-off");
    assert_eq!(store.subscriber("old0").await.unwrap(), None);
    assert!(store.subscriber("at-cutoff").await.unwrap().is_some());
    assert!(store.subscriber("recent").await.unwrap().is_some());
    assert_eq!(store.purge_unsubscribed(t(1_000_000), 500).await.unwrap(), 2, "at-cutoff and recent");
    assert_eq!(store.subscribers().await.unwrap().iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), ["live"], "a live subscriber is never purged");
    assert!(store.subscriber("live").await.unwrap().is_some());
}

/// The subscriber cap counts live subscribers and holds under racing
/// subscribes: of many at once, exactly as many as fit are added.
pub async fn subscribers_are_capped_atomically(store: SqlStore) {
    let store = Arc::new(store);
    let sub = |id: String| Subscriber { id, kind: "webhook".into(), target: "https://hooks.example.com/x".into(), created_at: t(0), unsubscribed_at: None };
    for i in 0..3 {
        assert!(store.add_subscriber_within(&sub(format!("s{i}")), 3).await.unwrap());
    }
    assert!(!store.add_subscriber_within(&sub("s3".into()), 3).await.unwrap(), "full");
    assert_eq!(store.subscriber("s3").await.unwrap(), None, "nothing written when full");
    assert!(store.unsubscribe("s0", t(1)).await.unwrap());
    assert!(store.add_subscriber_within(&sub("s3".into()), 3).await.unwrap(), "an unsubscribe frees a place");
    assert!(matches!(store.add_subscriber_within(&sub("s3".into()), 10).await, Err(StoreError::AlreadyExists(_))));
    // 16 racing subscribes for 5 free places.
    let mut tasks = Vec::new();
    for i in 0..16 {
        let (store, s) = (store.clone(), sub(format!("r{i}")));
        tasks.push(tokio::spawn(async move { store.add_subscriber_within(&s, 8).await.unwrap() }));
    }
    let mut added = 0;
    for task in tasks {
        added += usize::from(task.await.unwrap());
    }
    assert_eq!((added, store.subscribers().await.unwrap().len()), (5, 8));
}

/// A public incident with `n` updates (`<id>-u1` … `<id>-u<n>`), the last one saying `body`.
fn public_with(id: &str, n: usize, body: &str) -> PublicIncident {
    PublicIncident {
        id: id.into(),
        name: "Checkout degraded".into(),
        status: PublicIncidentStatus::Investigating,
        impact: Impact::Major,
        started_at: t(0),
        created_at: t(1),
        updated_at: t(n as i64),
        monitoring_at: None,
        resolved_at: None,
        components: Default::default(),
        updates: (1..=n)
            .map(|i| PublicUpdate {
                id: format!("{id}-u{i}"),
                status: PublicIncidentStatus::Investigating,
                body: if i == n { body.into() } else { format!("update {i}") },
                created_at: t(i as i64),
                affected_components: vec![],
                by_person: false,
            })
            .collect(),
    }
}

/// Publishes racing from the same state (the comms lead's manual publish
/// and the automatic one, or two nodes): exactly one is written, every
/// other is a `StatusPageConflict` that wrote nothing (no update overwritten,
/// no notification enqueued), for the first publish and for a later one.
pub async fn racing_publishes_from_the_same_state_write_one(store: SqlStore) {
    let store = Arc::new(store);
    let inc = new_id();
    let id = inc.to_string();
    let sub = |key: String| OutboxItem { channel: "subscriber:s1".into(), recipient: "s1".into(), kind: "status_incident".into(), ..item(inc, &key, t(1)) };
    for based_on in [0usize, 1] {
        let mut tasks = Vec::new();
        for racer in 0..8 {
            let (store, id) = (store.clone(), id.clone());
            let public = public_with(&id, based_on + 1, &format!("racer {racer}"));
            let items = [sub(format!("{id}-u{}/racer-{racer}", based_on + 1))];
            tasks.push(tokio::spawn(async move { store.publish_status(inc, &public, based_on, &items, t(1)).await }));
        }
        let mut won = Vec::new();
        for (racer, task) in tasks.into_iter().enumerate() {
            match task.await.unwrap() {
                Ok(out) => won.push((racer, out)),
                Err(StoreError::StatusPageConflict { incident, based_on: b }) => assert_eq!((incident, b), (inc, based_on as u64)),
                Err(e) => panic!("racer {racer}: {e}"),
            }
        }
        assert_eq!(won.len(), 1, "exactly one publish from {based_on} update(s) is written: {won:?}");
        let (winner, out) = &won[0];
        assert_eq!(out.enqueued, [format!("{id}-u{}/racer-{winner}", based_on + 1)]);
        let stored = store.public_incident_for(inc).await.unwrap().unwrap();
        assert_eq!(stored, public_with(&id, based_on + 1, &format!("racer {winner}")), "the winner's update, not overwritten");
    }
    let keys: Vec<String> = store.notifications(inc).await.unwrap().into_iter().map(|r| r.idempotency_key).collect();
    assert_eq!(keys.len(), 2, "only the two winners' notifications: {keys:?}");
    // A publish computed from a state that has moved on is refused, whatever it says.
    let stale = store.publish_status(inc, &public_with(&id, 2, "late"), 1, &[sub("late".into())], t(2)).await.unwrap_err();
    assert!(matches!(stale, StoreError::StatusPageConflict { based_on: 1, .. }), "{stale}");
    assert_eq!(store.public_incident_for(inc).await.unwrap().unwrap().updates.len(), 2);
    assert_eq!(store.notification("late").await.unwrap(), None);
    // `put_public_incident` keeps the version too.
    store.put_public_incident(Some(inc), &public_with(&id, 5, "edited")).await.unwrap();
    assert!(store.publish_status(inc, &public_with(&id, 5, "x"), 2, &[], t(3)).await.is_err());
    store.publish_status(inc, &public_with(&id, 6, "sixth"), 5, &[], t(3)).await.unwrap();
    assert_eq!(store.public_incident_for(inc).await.unwrap().unwrap().updates.len(), 6);
}

/// Upgrading a database that already has published status pages: migration
/// 4 sets each one's version (`update_count`) from its stored updates, so the
/// first publish after the upgrade, based on what it read, is accepted (and
/// a stale one still refused). Run on a database put back to schema 3.
async fn status_version_is_backfilled_on_upgrade(url: &str) {
    use sqlx::Connection;
    let inc = new_id();
    let id = inc.to_string();
    let store = SqlStore::connect(url).await.unwrap();
    store.put_public_incident(Some(inc), &public_with(&id, 3, "third")).await.unwrap();
    store.close().await;
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url).await.unwrap();
    sqlx::raw_sql("ALTER TABLE status_incidents DROP COLUMN update_count; DELETE FROM faultline_migrations WHERE version = 4")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    let store = SqlStore::connect(url).await.unwrap();
    assert!(store.publish_status(inc, &public_with(&id, 4, "stale"), 2, &[], t(5)).await.is_err());
    store.publish_status(inc, &public_with(&id, 4, "fourth"), 3, &[], t(5)).await.unwrap();
    assert_eq!(store.public_incident_for(inc).await.unwrap().unwrap().updates.len(), 4);
}

#[tokio::test]
async fn status_version_is_backfilled_on_upgrade_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("faultline.db").display());
    status_version_is_backfilled_on_upgrade(&url).await;
}

#[tokio::test]
async fn status_version_is_backfilled_on_upgrade_on_postgres() {
    let Some(url) = crate::conformance::postgres_url().await else { return };
    status_version_is_backfilled_on_upgrade(&url).await;
}

pub async fn an_ack_link_is_used_once(store: SqlStore) {
    let inc = IncidentId::from_uuid(uuid::Uuid::now_v7());
    let alice = faultline_core::UserId::new("alice").unwrap();
    assert!(store.use_ack_link("n1", inc, &alice, t(1)).await.unwrap());
    assert!(!store.use_ack_link("n1", inc, &alice, t(2)).await.unwrap(), "single use");
    assert!(store.use_ack_link("n2", inc, &alice, t(3)).await.unwrap());
    // Racing uses of one link: exactly one wins.
    let (a, b) = tokio::join!(store.use_ack_link("n3", inc, &alice, t(4)), store.use_ack_link("n3", inc, &alice, t(4)));
    assert_eq!(u8::from(a.unwrap()) + u8::from(b.unwrap()), 1);
}

pub async fn channel_message_refs_round_trip_and_replace(store: SqlStore) {
    let inc = IncidentId::from_uuid(uuid::Uuid::now_v7());
    assert_eq!(store.channel_message_ref(inc, "slack").await.unwrap(), None);
    store.put_channel_message_ref(inc, "slack", "1700000000.000100", t(1)).await.unwrap();
    store.put_channel_message_ref(inc, "other", "x", t(1)).await.unwrap();
    assert_eq!(store.channel_message_ref(inc, "slack").await.unwrap().as_deref(), Some("1700000000.000100"));
    store.put_channel_message_ref(inc, "slack", "1700000000.000200", t(2)).await.unwrap();
    assert_eq!(store.channel_message_ref(inc, "slack").await.unwrap().as_deref(), Some("1700000000.000200"));
}

macro_rules! response_suite {
    ($backend:ident, $make:expr) => {
        mod $backend {
            response_suite!(@cases $make;
                enqueue_is_idempotent_and_ledgered,
                stale_incidents_are_those_read_past_their_cursor,
                claims_lease_due_rows_once_and_redeliver_after_a_lost_lease,
                retries_wait_and_failures_are_final,
                racing_workers_never_claim_the_same_row,
                escalation_states_persist_with_their_wake_up,
                silences_round_trip_and_expire_by_update,
                status_page_state_round_trips,
                publishing_is_one_transaction_with_its_subscriber_notifications,
                racing_publishes_from_the_same_state_write_one,
                subscribers_are_capped_atomically,
                unsubscribed_subscribers_are_purged_after_their_retention,
                an_ack_link_is_used_once,
                channel_message_refs_round_trip_and_replace,
            );
        }
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some(store) = $make.await else { return };
                super::$case(store).await;
            }
        )*
    };
}

response_suite!(on_sqlite, crate::conformance::sqlite());
response_suite!(on_postgres, crate::conformance::postgres());
