//! Status-page subscriber webhooks through the durable outbox: every
//! published update reaches every live subscriber (one incident webhook and
//! one per component change, Statuspage's shape) with an `Idempotency-Key`;
//! a failing endpoint is retried, a restart neither loses nor repeats a
//! delivery, and an unsubscribed endpoint gets nothing more. Publishes
//! racing from the same state never reuse an update id: the loser is a
//! conflict, and the automatic publish drafts again and publishes its own.
//! By default no notification goes to a private address, written in the
//! URL or resolved (also after a rebinding).

use std::sync::Arc;
use std::time::Duration as StdDuration;

use faultline_core::incident::{Actor, Command, IncidentEvent};
use faultline_core::{Duration, Timestamp};
use faultline_engine::notify::Sender;
use faultline_engine::notify::worker::{OutboxWorker, RetryPolicy};
use faultline_engine::response::{ResponseDriver, ResponseSetup};
use faultline_store::response::{DeliveryStatus, ResponseStore, Subscriber};
use faultline_store::{SqlStore, Store, commands};

use crate::peers::HttpReceiver;
use crate::response::setup;

fn t(s: i64) -> Timestamp {
    Timestamp::from_secs(1_800_000_000 + s)
}

fn subscriber(id: &str, url: String) -> Subscriber {
    Subscriber { id: id.into(), kind: "webhook".into(), target: url, created_at: t(-10), unsubscribed_at: None }
}

fn worker(store: &Arc<SqlStore>) -> Arc<OutboxWorker> {
    let policy = RetryPolicy { base: StdDuration::from_millis(100), max_backoff: StdDuration::from_secs(2), max_attempts: 4, ..RetryPolicy::default() };
    // The receivers listen on 127.0.0.1: a private target, allowed here.
    Arc::new(
        OutboxWorker::new(store.clone(), Default::default(), Sender::new(StdDuration::from_secs(5)).unwrap(), policy, "sub-worker")
            .allow_private_subscriber_targets(true),
    )
}

/// A worker as production builds it (private subscriber targets refused),
/// resolving host names with `lookup`.
fn guarded_worker(store: &Arc<SqlStore>, lookup: faultline_engine::notify::target::Lookup) -> Arc<OutboxWorker> {
    let policy = RetryPolicy { base: StdDuration::from_millis(100), max_backoff: StdDuration::from_secs(2), max_attempts: 2, ..RetryPolicy::default() };
    Arc::new(OutboxWorker::new(store.clone(), Default::default(), Sender::with_lookup(StdDuration::from_secs(5), lookup).unwrap(), policy, "guarded-worker"))
}

/// A resolver answering from a table, then (for names listed in `later`)
/// differently from the second lookup on: DNS rebinding.
fn table_lookup(first: Vec<(&'static str, std::net::IpAddr)>, later: Vec<(&'static str, std::net::IpAddr)>) -> faultline_engine::notify::target::Lookup {
    let calls = Arc::new(std::sync::Mutex::new(std::collections::BTreeMap::<String, u32>::new()));
    Arc::new(move |host: String, port: u16| {
        let n = {
            let mut c = calls.lock().unwrap();
            let n = c.entry(host.clone()).or_insert(0);
            *n += 1;
            *n
        };
        let table = if n > 1 && later.iter().any(|(h, _)| *h == host) { &later } else { &first };
        let found: Vec<std::net::SocketAddr> = table.iter().filter(|(h, _)| *h == host).map(|(_, ip)| std::net::SocketAddr::new(*ip, port)).collect();
        Box::pin(async move { if found.is_empty() { Err(std::io::Error::other("no such host")) } else { Ok(found) } })
    })
}

/// Publishes an incident's first update to the subscribers in `store`.
async fn publish_first_update(store: &Arc<SqlStore>) -> faultline_core::IncidentId {
    let driver = ResponseDriver::new(store.clone(), store.clone(), Arc::new(setup_with_url()), None);
    let id = faultline_core::IncidentId::from_uuid(uuid::Uuid::now_v7());
    let opened =
        faultline_core::incident::Incident::open("checkout errors", faultline_core::incident::Severity::Sev2, None, t(0), Actor::System("correlator".into()))
            .unwrap();
    store.create_incident(id, &opened).await.unwrap();
    driver.step(t(0)).await.unwrap();
    id
}

/// Anyone may subscribe, so by default the worker never posts to a private
/// address: not to one written in the URL (a row from before subscribe-time
/// checks, or a hand-written one), and not to a public-looking name that
/// resolves to one. Each is failed with the reason; the endpoint hears nothing.
#[tokio::test]
async fn subscriber_endpoints_on_private_addresses_are_refused_at_send_time() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rx = HttpReceiver::start().await;
    let port = rx.url("/").trim_start_matches("http://127.0.0.1:").trim_end_matches('/').parse::<u16>().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqlStore::open_sqlite(dir.path()).await.unwrap());
    store.add_subscriber(&subscriber("literal", rx.url("/literal"))).await.unwrap();
    store.add_subscriber(&subscriber("named", format!("http://hooks.example.com:{port}/named"))).await.unwrap();
    store.add_subscriber(&subscriber("nowhere", format!("http://nxdomain.example.com:{port}/nowhere"))).await.unwrap();
    let id = publish_first_update(&store).await;
    let lookup = table_lookup(vec![("hooks.example.com", std::net::Ipv4Addr::LOCALHOST.into())], vec![]);
    let w = guarded_worker(&store, lookup);
    drain(&w, &store, t(1)).await;
    assert!(rx.received().is_empty(), "{:#?}", rx.received());
    let ledger = store.ledger(id).await.unwrap();
    let failed = |sub: &str| -> Vec<String> {
        ledger.iter().filter(|l| l.outcome == "failed" && l.channel == format!("subscriber:{sub}")).map(|l| l.detail.clone()).collect()
    };
    assert_eq!(failed("literal"), ["subscriber endpoint points at a loopback address; private targets are not allowed, not sent (permanent)"; 2]);
    assert_eq!(failed("named"), ["subscriber endpoint resolves to a loopback address; private targets are not allowed, not sent (permanent)"; 2]);
    // A name that does not resolve is retried, then given up on.
    assert!(failed("nowhere").iter().all(|d| d.starts_with("could not resolve the endpoint's host")), "{:?}", failed("nowhere"));
    assert!(ledger.iter().any(|l| l.outcome == "retry" && l.channel == "subscriber:nowhere"));
    assert!(ledger.iter().all(|l| !l.detail.contains(&port.to_string())), "no URL in the ledger");
}

/// A name that resolved to a public address when checked but to a private
/// one when connecting (DNS rebinding) still reaches nothing: the client
/// resolves through the same guard. (Control: with private targets allowed,
/// the name resolved to the receiver does reach it, so it is the guard that
/// stops it, not the name.) Nothing here connects to a public address.
#[tokio::test]
async fn a_name_rebound_to_a_private_address_after_the_check_is_not_contacted() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rx = HttpReceiver::start().await;
    let port = rx.url("/").trim_start_matches("http://127.0.0.1:").trim_end_matches('/').parse::<u16>().unwrap();
    let public: std::net::IpAddr = "93.184.216.34".parse().unwrap();
    let rebinding = || table_lookup(vec![("rebind.example.com", public)], vec![("rebind.example.com", std::net::Ipv4Addr::LOCALHOST.into())]);

    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqlStore::open_sqlite(dir.path()).await.unwrap());
    store.add_subscriber(&subscriber("allowed", format!("http://rebind.example.com:{port}/allowed"))).await.unwrap();
    publish_first_update(&store).await;
    let policy = RetryPolicy { max_attempts: 1, ..RetryPolicy::default() };
    let to_loopback = table_lookup(vec![("rebind.example.com", std::net::Ipv4Addr::LOCALHOST.into())], vec![]);
    let open = Arc::new(
        OutboxWorker::new(store.clone(), Default::default(), Sender::with_lookup(StdDuration::from_secs(5), to_loopback).unwrap(), policy, "open")
            .allow_private_subscriber_targets(true),
    );
    open.round(t(1)).await.unwrap();
    assert_eq!(rx.received_on("/allowed").len(), 2, "control: the name, resolved to the receiver, reaches it when private targets are allowed");

    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqlStore::open_sqlite(dir.path()).await.unwrap());
    store.add_subscriber(&subscriber("rebound", format!("http://rebind.example.com:{port}/rebound"))).await.unwrap();
    let id = publish_first_update(&store).await;
    let w = guarded_worker(&store, rebinding());
    w.clone().round(t(1)).await.unwrap();
    assert!(rx.received_on("/rebound").is_empty(), "{:#?}", rx.received());
    let ledger = store.ledger(id).await.unwrap();
    let outcomes: Vec<(&str, &str)> =
        ledger.iter().filter(|l| l.channel == "subscriber:rebound" && l.outcome != "enqueued").map(|l| (l.outcome.as_str(), l.detail.as_str())).collect();
    // The first row passed the check (public) and was refused by the guard
    // when connecting (rebound); by the second row's check the name is
    // private already and it fails with the reason.
    assert_eq!(
        outcomes,
        [
            ("retry", "could not connect"),
            ("failed", "subscriber endpoint resolves to a loopback address; private targets are not allowed, not sent (permanent)")
        ]
    );
}

async fn drain(w: &Arc<OutboxWorker>, store: &SqlStore, start: Timestamp) {
    let mut now = start;
    for _ in 0..40 {
        w.clone().round(now).await.unwrap();
        if store.outbox_counts().await.unwrap().pending == 0 {
            return;
        }
        now = now + Duration::from_millis(500);
    }
    panic!("outbox not drained");
}

#[tokio::test]
async fn published_updates_reach_every_subscriber_through_the_outbox() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rx = HttpReceiver::start().await;
    // The second subscriber fails twice before it accepts.
    rx.script("/b", &[(503, None), (500, None)]);
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqlStore::open_sqlite(dir.path()).await.unwrap());
    store.add_subscriber(&subscriber("a", rx.url("/a"))).await.unwrap();
    store.add_subscriber(&subscriber("b", rx.url("/b"))).await.unwrap();
    let setup = ResponseSetup { base_url: Some("https://faultline.example.com".into()), ..setup() };
    let driver = ResponseDriver::new(store.clone(), store.clone(), Arc::new(setup), None);

    let id = faultline_core::IncidentId::from_uuid(uuid::Uuid::now_v7());
    let opened = faultline_core::incident::Incident::open(
        "checkout errors",
        faultline_core::incident::Severity::Sev2,
        None,
        t(0),
        Actor::User(faultline_core::UserId::new("bot").unwrap()),
    )
    .unwrap();
    store.create_incident(id, &opened).await.unwrap();
    driver.step(t(0)).await.unwrap();
    let w = worker(&store);
    drain(&w, &store, t(1)).await;

    let a = rx.received_on("/a");
    assert_eq!(a.len(), 2, "one incident webhook and one component change: {a:#?}");
    assert_eq!(a[0].body["incident"]["status"], "investigating");
    assert_eq!(a[0].body["page"]["status_indicator"], "major", "SEV2: partial outage");
    assert_eq!(a[0].body["meta"]["unsubscribe"], "https://faultline.example.com/api/v2/subscribers/a");
    assert_eq!(a[1].body["component_update"]["component_id"], "flow-checkout");
    assert_eq!(a[1].body["component_update"]["old_status"], "operational");
    assert_eq!(a[1].body["component_update"]["new_status"], a[1].body["component"]["status"]);
    assert!(a[0].idempotency_key.as_deref().unwrap().ends_with("/a/incident"));
    let b = rx.received_on("/b");
    assert_eq!(b.len(), 4, "two failures, then both delivered");
    let rows = sub_rows(&store, id).await;
    assert_eq!(rows.len(), 4);
    assert!(rows.iter().all(|r| r.status == DeliveryStatus::Delivered), "{rows:#?}");
    let retries = store.ledger(id).await.unwrap().iter().filter(|l| l.outcome == "retry" && l.channel == "subscriber:b").count();
    assert_eq!(retries, 2);

    // A restarted driver (same store) publishes nothing twice.
    let driver = ResponseDriver::new(store.clone(), store.clone(), Arc::new(setup_with_url()), None);
    driver.step(t(2)).await.unwrap();
    assert_eq!(sub_rows(&store, id).await.len(), 4);

    // Subscriber b leaves; the resolve reaches a only.
    assert!(store.unsubscribe("b", t(3)).await.unwrap());
    commands::execute(store.as_ref(), id, Command::Resolve { note: None }, Actor::User(faultline_core::UserId::new("alice").unwrap()), t(60)).await.unwrap();
    driver.step(t(60)).await.unwrap();
    drain(&w, &store, t(61)).await;
    let a = rx.received_on("/a");
    assert_eq!(a.len(), 4, "resolved incident + component back to operational");
    assert_eq!(a[2].body["incident"]["status"], "resolved");
    assert_eq!(a[3].body["component_update"]["new_status"], "operational");
    assert_eq!(rx.received_on("/b").len(), 4, "nothing after unsubscribing");

    // Every publish is on the timeline, with the subscriber count.
    let (_, timeline) = store.incident(id).await.unwrap().unwrap();
    let notes: Vec<String> = timeline
        .iter()
        .filter_map(|e| match &e.event {
            IncidentEvent::SystemNote { component, text } if component == "status_page" => Some(format!("{} {text}", e.actor)),
            _ => None,
        })
        .collect();
    assert_eq!(notes.len(), 2, "{notes:#?}");
    assert!(notes[0].starts_with("system:response status page update"), "{notes:#?}");
    assert!(
        notes[0].contains("auto-published: investigating (checkout operational → partial_outage)")
            && notes[0].ends_with("; 4 subscriber notification(s) enqueued"),
        "{notes:#?}"
    );
    assert!(notes[1].contains("resolved") && notes[1].ends_with("; 2 subscriber notification(s) enqueued"), "{notes:#?}");
}

/// The outbox rows of status-page subscribers (the incident also pages people).
async fn sub_rows(store: &SqlStore, id: faultline_core::IncidentId) -> Vec<faultline_store::response::OutboxRecord> {
    store.notifications(id).await.unwrap().into_iter().filter(|r| r.channel.starts_with("subscriber:")).collect()
}

fn setup_with_url() -> ResponseSetup {
    ResponseSetup { base_url: Some("https://faultline.example.com".into()), ..setup() }
}

#[tokio::test]
async fn an_unsubscribed_endpoint_pending_delivery_is_not_sent() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rx = HttpReceiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqlStore::open_sqlite(dir.path()).await.unwrap());
    store.add_subscriber(&subscriber("gone", rx.url("/gone"))).await.unwrap();
    let driver = ResponseDriver::new(store.clone(), store.clone(), Arc::new(setup_with_url()), None);
    let id = faultline_core::IncidentId::from_uuid(uuid::Uuid::now_v7());
    let opened =
        faultline_core::incident::Incident::open("checkout errors", faultline_core::incident::Severity::Sev1, None, t(0), Actor::System("correlator".into()))
            .unwrap();
    store.create_incident(id, &opened).await.unwrap();
    driver.step(t(0)).await.unwrap();
    let subscriber_rows = |rows: Vec<faultline_store::response::OutboxRecord>| rows.into_iter().filter(|r| r.channel == "subscriber:gone").collect::<Vec<_>>();
    assert_eq!(subscriber_rows(store.notifications(id).await.unwrap()).len(), 2);
    store.unsubscribe("gone", t(1)).await.unwrap();
    drain(&worker(&store), &store, t(1)).await;
    assert!(rx.received().is_empty());
    let ledger = store.ledger(id).await.unwrap();
    let failed: Vec<_> = ledger.iter().filter(|l| l.outcome == "failed" && l.channel == "subscriber:gone").map(|l| l.detail.as_str()).collect();
    assert_eq!(failed, ["subscriber unsubscribed: not sent"; 2]);
}

/// Two publishes computed from the same published state (the comms lead's
/// manual publish and the automatic one): the second must not reuse the
/// first's update id, overwrite its update, or have its notifications
/// swallowed as duplicates of the first's. It is refused, and published
/// again from the new state it is a distinct update.
#[tokio::test]
async fn two_publishes_from_the_same_state_never_reuse_an_update_id() {
    use faultline_core::status_page::{ComponentStatus, DraftUpdate, Impact, PublicIncidentStatus};
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqlStore::open_sqlite(dir.path()).await.unwrap());
    store.add_subscriber(&subscriber("a", "https://hooks.example.com/a".into())).await.unwrap();
    let driver = ResponseDriver::new(store.clone(), store.clone(), Arc::new(setup_with_url()), None);
    let id = faultline_core::IncidentId::from_uuid(uuid::Uuid::now_v7());
    let opened =
        faultline_core::incident::Incident::open("checkout errors", faultline_core::incident::Severity::Sev2, None, t(0), Actor::System("correlator".into()))
            .unwrap();
    let incident = store.create_incident(id, &opened).await.unwrap();
    let draft = |status, body: &str, comp| DraftUpdate {
        status,
        impact: Impact::Major,
        body: body.into(),
        components: [("flow-checkout".to_owned(), comp)].into(),
        changed: true,
    };
    let manual = draft(PublicIncidentStatus::Investigating, "looking into checkout", ComponentStatus::PartialOutage);
    let auto = draft(PublicIncidentStatus::Identified, "found it", ComponentStatus::MajorOutage);
    // Both read the page before either wrote.
    let previous = store.public_incident_for(id).await.unwrap();
    let first = driver.publish_status(&incident, previous.clone(), &manual, None, t(1)).await.unwrap();
    let second = driver.publish_status(&incident, previous, &auto, None, t(1)).await;
    assert!(matches!(second, Err(faultline_store::StoreError::StatusPageConflict { based_on: 0, .. })), "{second:?}");
    let stored = store.public_incident_for(id).await.unwrap().unwrap();
    assert_eq!(stored.updates.iter().map(|u| (u.id.as_str(), u.body.as_str())).collect::<Vec<_>>(), [(first.update_id.as_str(), "looking into checkout")]);
    // Re-read and published again: a second, distinct update.
    let previous = store.public_incident_for(id).await.unwrap();
    let again = driver.publish_status(&incident, previous, &auto, None, t(2)).await.unwrap();
    assert_ne!(again.update_id, first.update_id);
    let stored = store.public_incident_for(id).await.unwrap().unwrap();
    assert_eq!(stored.updates.iter().map(|u| u.id.clone()).collect::<Vec<_>>(), [first.update_id.clone(), again.update_id.clone()]);
    assert_eq!(stored.status, PublicIncidentStatus::Identified);
    // Each update told the subscriber (incident + component change), none swallowed.
    assert_eq!((first.subscriber_notifications, again.subscriber_notifications), (2, 2));
    assert_eq!(sub_rows(&store, id).await.len(), 4);
}

/// The automatic publish that loses the race drafts again from what the
/// winner published and publishes its own update (a distinct id) — the
/// driver step succeeds; nothing is lost or overwritten.
#[tokio::test]
async fn the_automatic_publish_that_loses_a_race_drafts_again_and_publishes_its_own_update() {
    use faultline_core::status_page::{ComponentStatus, Impact, PublicIncident, PublicIncidentStatus, PublicUpdate};
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqlStore::open_sqlite(dir.path()).await.unwrap());
    let id = faultline_core::IncidentId::from_uuid(uuid::Uuid::now_v7());
    // What the comms lead publishes between the driver's read and its write.
    let theirs = PublicIncident {
        id: id.to_string(),
        name: "Checkout".into(),
        status: PublicIncidentStatus::Identified,
        impact: Impact::Critical,
        started_at: t(0),
        created_at: t(0),
        updated_at: t(0),
        monitoring_at: None,
        resolved_at: None,
        components: [("flow-checkout".to_owned(), ComponentStatus::MajorOutage)].into(),
        updates: vec![PublicUpdate {
            id: format!("{id}-u1"),
            status: PublicIncidentStatus::Identified,
            body: "comms lead".into(),
            created_at: t(0),
            affected_components: vec![],
            by_person: false,
        }],
    };
    let racing = Arc::new(RacingResponses { inner: store.clone(), competitor: std::sync::Mutex::new(Some(theirs)) });
    let driver = ResponseDriver::new(store.clone(), racing.clone(), Arc::new(setup_with_url()), None);
    let opened =
        faultline_core::incident::Incident::open("checkout errors", faultline_core::incident::Severity::Sev2, None, t(0), Actor::System("correlator".into()))
            .unwrap();
    store.create_incident(id, &opened).await.unwrap();
    driver.step(t(1)).await.unwrap();
    assert!(racing.competitor.lock().unwrap().is_none(), "the competing publish happened");
    let stored = store.public_incident_for(id).await.unwrap().unwrap();
    let updates: Vec<(String, String)> = stored.updates.iter().map(|u| (u.id.clone(), u.body.clone())).collect();
    assert_eq!(updates.len(), 2, "{updates:#?}");
    assert_eq!(updates[0], (format!("{id}-u1"), "comms lead".to_owned()));
    assert_eq!(updates[1].0, format!("{id}-u2"), "the driver's own update, with the next id");
    assert_eq!(stored.components.get("flow-checkout"), Some(&ComponentStatus::PartialOutage), "drafted again from the winner's state");
    let (_, timeline) = store.incident(id).await.unwrap().unwrap();
    assert!(
        timeline
            .iter()
            .any(|e| matches!(&e.event, IncidentEvent::SystemNote { text, .. } if text.starts_with(&format!("status page update {id}-u2 auto-published")))),
        "{timeline:#?}"
    );
}

/// A `ResponseStore` that, on the first `publish_status`, lets a competing
/// publish (computed from the same state) commit first.
struct RacingResponses {
    inner: Arc<SqlStore>,
    competitor: std::sync::Mutex<Option<faultline_core::status_page::PublicIncident>>,
}

#[async_trait::async_trait]
impl ResponseStore for RacingResponses {
    async fn publish_status(
        &self,
        incident: faultline_core::IncidentId,
        public: &faultline_core::status_page::PublicIncident,
        based_on: usize,
        enqueue: &[faultline_store::response::OutboxItem],
        now: Timestamp,
    ) -> faultline_store::Result<faultline_store::response::CommitOutcome> {
        let competitor = self.competitor.lock().unwrap().take();
        if let Some(theirs) = competitor {
            self.inner.publish_status(incident, &theirs, based_on, &[], now).await.unwrap();
        }
        self.inner.publish_status(incident, public, based_on, enqueue, now).await
    }
    async fn commit_response(
        &self,
        b: &faultline_store::response::ResponseBatch,
        now: Timestamp,
    ) -> faultline_store::Result<faultline_store::response::CommitOutcome> {
        self.inner.commit_response(b, now).await
    }
    async fn response_cursor(&self, i: faultline_core::IncidentId) -> faultline_store::Result<u64> {
        self.inner.response_cursor(i).await
    }
    async fn stale_incidents(&self, limit: u32) -> faultline_store::Result<Vec<faultline_core::IncidentId>> {
        self.inner.stale_incidents(limit).await
    }
    async fn escalations(&self, i: faultline_core::IncidentId) -> faultline_store::Result<Vec<faultline_store::response::EscalationRecord>> {
        self.inner.escalations(i).await
    }
    async fn due_escalations(&self, now: Timestamp, limit: u32) -> faultline_store::Result<Vec<faultline_store::response::EscalationRecord>> {
        self.inner.due_escalations(now, limit).await
    }
    async fn next_escalation_wake(&self) -> faultline_store::Result<Option<Timestamp>> {
        self.inner.next_escalation_wake().await
    }
    async fn claim_due(&self, owner: &str, now: Timestamp, lease_ms: i64, limit: u32) -> faultline_store::Result<Vec<faultline_store::response::OutboxRecord>> {
        self.inner.claim_due(owner, now, lease_ms, limit).await
    }
    async fn mark_delivered(&self, key: &str, owner: &str, now: Timestamp, detail: &str) -> faultline_store::Result<bool> {
        self.inner.mark_delivered(key, owner, now, detail).await
    }
    async fn mark_retry(&self, key: &str, owner: &str, now: Timestamp, next: Timestamp, error: &str) -> faultline_store::Result<bool> {
        self.inner.mark_retry(key, owner, now, next, error).await
    }
    async fn defer(&self, key: &str, owner: &str, now: Timestamp, next: Timestamp) -> faultline_store::Result<bool> {
        self.inner.defer(key, owner, now, next).await
    }
    async fn mark_failed(&self, key: &str, owner: &str, now: Timestamp, error: &str) -> faultline_store::Result<bool> {
        self.inner.mark_failed(key, owner, now, error).await
    }
    async fn notifications(&self, i: faultline_core::IncidentId) -> faultline_store::Result<Vec<faultline_store::response::OutboxRecord>> {
        self.inner.notifications(i).await
    }
    async fn notification(&self, key: &str) -> faultline_store::Result<Option<faultline_store::response::OutboxRecord>> {
        self.inner.notification(key).await
    }
    async fn ledger(&self, i: faultline_core::IncidentId) -> faultline_store::Result<Vec<faultline_store::response::LedgerEntry>> {
        self.inner.ledger(i).await
    }
    async fn outbox_counts(&self) -> faultline_store::Result<faultline_store::response::OutboxCounts> {
        self.inner.outbox_counts().await
    }
    async fn next_outbox_due(&self) -> faultline_store::Result<Option<Timestamp>> {
        self.inner.next_outbox_due().await
    }
    async fn put_silence(&self, s: &faultline_core::routing::Silence, now: Timestamp) -> faultline_store::Result<()> {
        self.inner.put_silence(s, now).await
    }
    async fn silence(&self, id: &str) -> faultline_store::Result<Option<faultline_core::routing::Silence>> {
        self.inner.silence(id).await
    }
    async fn silences(&self) -> faultline_store::Result<Vec<faultline_core::routing::Silence>> {
        self.inner.silences().await
    }
    async fn put_public_incident(&self, i: Option<faultline_core::IncidentId>, p: &faultline_core::status_page::PublicIncident) -> faultline_store::Result<()> {
        self.inner.put_public_incident(i, p).await
    }
    async fn public_incidents(&self) -> faultline_store::Result<Vec<faultline_core::status_page::PublicIncident>> {
        self.inner.public_incidents().await
    }
    async fn public_incident_for(&self, i: faultline_core::IncidentId) -> faultline_store::Result<Option<faultline_core::status_page::PublicIncident>> {
        self.inner.public_incident_for(i).await
    }
    async fn put_draft(&self, d: &faultline_store::response::DraftRecord) -> faultline_store::Result<()> {
        self.inner.put_draft(d).await
    }
    async fn drafts(&self) -> faultline_store::Result<Vec<faultline_store::response::DraftRecord>> {
        self.inner.drafts().await
    }
    async fn draft(&self, i: faultline_core::IncidentId) -> faultline_store::Result<Option<faultline_store::response::DraftRecord>> {
        self.inner.draft(i).await
    }
    async fn delete_draft(&self, i: faultline_core::IncidentId) -> faultline_store::Result<bool> {
        self.inner.delete_draft(i).await
    }
    async fn put_maintenance(&self, m: &faultline_core::status_page::ScheduledMaintenance) -> faultline_store::Result<()> {
        self.inner.put_maintenance(m).await
    }
    async fn maintenances(&self) -> faultline_store::Result<Vec<faultline_core::status_page::ScheduledMaintenance>> {
        self.inner.maintenances().await
    }
    async fn add_subscriber(&self, s: &Subscriber) -> faultline_store::Result<()> {
        self.inner.add_subscriber(s).await
    }
    async fn add_subscriber_within(&self, s: &Subscriber, max_live: u64) -> faultline_store::Result<bool> {
        self.inner.add_subscriber_within(s, max_live).await
    }
    async fn subscriber(&self, id: &str) -> faultline_store::Result<Option<Subscriber>> {
        self.inner.subscriber(id).await
    }
    async fn subscribers(&self) -> faultline_store::Result<Vec<Subscriber>> {
        self.inner.subscribers().await
    }
    async fn unsubscribe(&self, id: &str, at: Timestamp) -> faultline_store::Result<bool> {
        self.inner.unsubscribe(id, at).await
    }
    async fn purge_unsubscribed(&self, before: Timestamp, batch: u32) -> faultline_store::Result<u64> {
        self.inner.purge_unsubscribed(before, batch).await
    }
    async fn use_ack_link(
        &self,
        nonce: &str,
        incident: faultline_core::IncidentId,
        user: &faultline_core::UserId,
        at: Timestamp,
    ) -> faultline_store::Result<bool> {
        self.inner.use_ack_link(nonce, incident, user, at).await
    }
    async fn channel_message_ref(&self, incident: faultline_core::IncidentId, channel: &str) -> faultline_store::Result<Option<String>> {
        self.inner.channel_message_ref(incident, channel).await
    }
    async fn put_channel_message_ref(&self, incident: faultline_core::IncidentId, channel: &str, r: &str, at: Timestamp) -> faultline_store::Result<()> {
        self.inner.put_channel_message_ref(incident, channel, r, at).await
    }
}
