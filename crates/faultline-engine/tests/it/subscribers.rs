//! Status-page subscriber webhooks through the durable outbox: every
//! published update reaches every live subscriber (one incident webhook and
//! one per component change, Statuspage's shape) with an `Idempotency-Key`;
//! a failing endpoint is retried, a restart neither loses nor repeats a
//! delivery, and an unsubscribed endpoint gets nothing more.

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
    Arc::new(OutboxWorker::new(store.clone(), Default::default(), Sender::new(StdDuration::from_secs(5)).unwrap(), policy, "sub-worker"))
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
    let opened = faultline_core::incident::Incident::open("checkout errors", faultline_core::incident::Severity::Sev2, None, t(0), Actor::User(faultline_core::UserId::new("bot").unwrap())).unwrap();
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
    assert!(notes[0].contains("auto-published: investigating (checkout operational → partial_outage)") && notes[0].ends_with("; 4 subscriber notification(s) enqueued"), "{notes:#?}");
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
    let opened = faultline_core::incident::Incident::open("checkout errors", faultline_core::incident::Severity::Sev1, None, t(0), Actor::System("correlator".into())).unwrap();
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
