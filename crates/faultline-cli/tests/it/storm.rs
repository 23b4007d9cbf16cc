//! An alert storm through the real binary, with a real kill -9 in the middle
//! of it: `faultline serve` (SQLite, a response config paging a local
//! webhook receiver) gets a few thousand distinct Alertmanager v2 alerts
//! over a bounded set of services, in batches from concurrent senders, and
//! is SIGKILLed once part of the storm has been answered. After a restart on
//! the same data dir:
//!
//! - every alert that got a 200 before the kill is on an incident;
//! - the rest of the storm plus a Prometheus-style re-send of everything
//!   opens no second incident for any service (none orphaned by the kill),
//!   attaches each fingerprint exactly once, and pages nobody again;
//! - resolved alerts are accepted, and every paged incident, once resolved,
//!   gets its resolve — one trigger and one resolve per incident, each
//!   delivered once per idempotency key, in the notification ledger too.
//!
//! The incidents are resolved through the API after the resolved alerts:
//! the correlator's hold-down before it resolves an incident on its own is
//! ten minutes, too long for a test. Synchronisation: the server's
//! "listening" line, HTTP answers, and the receiver's own record of what
//! arrived (waited on with a notification, never a sleep). What this is not:
//! the throughput benchmark (`crates/faultline-server/examples/alert_storm.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::Notify;

use crate::support::{Receiver, Server, api, create_token, ingest_client};

const SERVICES: usize = 8;
const ALERTNAMES: [&str; 5] = ["HighErrorRate", "HighLatency", "TargetDown", "DiskFilling", "QueueBacklog"];
const INSTANCES: usize = 60;
const BATCH: usize = 40;
const SENDERS: usize = 4;

/// One policy for everything: level 1 pages `oncall` at once; level 2
/// (`lead`) only after 30 minutes, so within this test each incident is
/// owed exactly one trigger and, once resolved, one resolve.
fn write_config(dir: &Path) -> std::path::PathBuf {
    let cfg = "users:\n  - {id: oncall, contacts: [{channel: hook}]}\n  - {id: lead, contacts: [{channel: hook}]}\n\
               escalation_policies:\n  - name: storm\n    levels:\n      - {delay_minutes: 30, targets: [{user: oncall}]}\n      - {delay_minutes: 30, targets: [{user: lead}]}\n\
               default_policy: storm\n\
               channels:\n  - {name: hook, type: webhook, url_env: STORM_HOOK_URL}\n\
               retry: {base_ms: 200, max_backoff_ms: 2000, lease_ms: 3000}\n";
    let path = dir.join("response.yaml");
    std::fs::write(&path, cfg).unwrap();
    path
}

/// The storm's label sets in a seeded shuffled order (splitmix64), so each
/// batch mixes services the way a busy Prometheus does.
fn storm() -> Vec<BTreeMap<String, String>> {
    let mut out = Vec::new();
    for s in 0..SERVICES {
        for name in ALERTNAMES {
            for i in 0..INSTANCES {
                out.push(BTreeMap::from([
                    ("alertname".to_owned(), name.to_owned()),
                    ("service".to_owned(), format!("svc-{s}")),
                    ("instance".to_owned(), format!("10.0.{s}.{i}:9100")),
                ]));
            }
        }
    }
    let mut state: u64 = 42;
    let mut next = || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    for i in (1..out.len()).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        out.swap(i, j);
    }
    out
}

/// Alertmanager's fingerprint (FNV-1a 64 over sorted names and values, each
/// followed by 0xFF), as the server computes it.
fn fingerprint(labels: &BTreeMap<String, String>) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (k, v) in labels {
        for b in k.as_bytes().iter().chain([0xff].iter()).chain(v.as_bytes()).chain([0xff].iter()) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

fn body(alerts: &[BTreeMap<String, String>], starts_at: &str, ends_at: &str) -> Value {
    Value::Array(alerts.iter().map(|l| json!({"labels": l, "annotations": {"summary": "storm"}, "startsAt": starts_at, "endsAt": ends_at})).collect())
}

/// Posts one batch; retries 503 (queue full) the way a sender honouring
/// Retry-After would, faster. `Ok(false)`: the server is gone.
async fn post(client: &reqwest::Client, url: &str, body: &Value) -> bool {
    for _ in 0..200 {
        match client.post(format!("{url}/api/v2/alerts")).json(body).send().await {
            Ok(r) if r.status().is_success() => return true,
            Ok(r) if r.status().as_u16() == 503 => tokio::task::yield_now().await,
            Ok(r) => panic!("unexpected {}: {}", r.status(), r.text().await.unwrap_or_default()),
            Err(_) => return false,
        }
    }
    panic!("still 503 after 200 attempts");
}

/// Incident id → the alert fingerprints attached to it.
async fn incidents(client: &reqwest::Client, url: &str, token: &str) -> BTreeMap<String, Vec<String>> {
    let list = api(client, reqwest::Method::GET, format!("{url}/api/v1/incidents?limit=1000"), token, None).await;
    let mut out = BTreeMap::new();
    for inc in list["incidents"].as_array().unwrap() {
        let id = inc["id"].as_str().unwrap().to_owned();
        let v = api(client, reqwest::Method::GET, format!("{url}/api/v1/incidents/{id}"), token, None).await;
        let fps = v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|f| f["member"].as_str().and_then(|m| m.strip_prefix("alertmanager alert ")).map(str::to_owned))
            .collect();
        out.insert(id, fps);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_mid_storm_loses_no_accepted_alert_and_pages_each_incident_once() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rx = Receiver::default();
    let hook = rx.clone().start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path());
    let token = create_token(dir.path(), "admin");
    let client = reqwest::Client::new();
    // Prometheus's side: every alert is sent with an ingest token.
    let sender = ingest_client(&create_token(dir.path(), "ingest"));
    let alerts = Arc::new(storm());
    let service_of: BTreeMap<String, String> = alerts.iter().map(|l| (fingerprint(l), l["service"].clone())).collect();
    assert_eq!(service_of.len(), alerts.len(), "every alert has its own fingerprint");
    let now = faultline_core::Timestamp::parse_rfc3339(&wall_clock_now()).unwrap();
    let starts = now.to_string();
    let ends = (now + faultline_core::Duration::from_mins(60)).to_string();

    // Phase 1: the storm, killed once a third of it has been answered. The
    // last third is held back until after the kill, so the kill is always
    // mid-storm, with the middle third in flight or queued.
    let server = Server::start(dir.path(), &[("FAULTLINE_RESPONSE_CONFIG", cfg.to_str().unwrap()), ("STORM_HOOK_URL", &hook)]);
    let batches: Vec<Vec<BTreeMap<String, String>>> = alerts.chunks(BATCH).map(<[_]>::to_vec).collect();
    let n_batches = batches.len();
    let (kill_after, held_back) = (n_batches / 3, 2 * n_batches / 3);
    let next = Arc::new(AtomicUsize::new(0));
    let accepted = Arc::new(Mutex::new(Vec::<usize>::new()));
    let answered = Arc::new(Notify::new());
    let mut senders = Vec::new();
    for _ in 0..SENDERS {
        let (next, accepted, answered, client, url) = (next.clone(), accepted.clone(), answered.clone(), sender.clone(), server.url.clone());
        let (batches, starts, ends) = (batches.clone(), starts.clone(), ends.clone());
        senders.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= held_back {
                    return;
                }
                if post(&client, &url, &body(&batches[i], &starts, &ends)).await {
                    accepted.lock().unwrap().push(i);
                    answered.notify_waiters();
                }
            }
        }));
    }
    loop {
        let notified = answered.notified();
        if accepted.lock().unwrap().len() >= kill_after {
            break;
        }
        tokio::time::timeout(Duration::from_secs(60), notified).await.expect("the storm's first third is answered within a minute");
    }
    server.kill9();
    for s in senders {
        s.await.unwrap();
    }
    let accepted: BTreeSet<usize> = accepted.lock().unwrap().iter().copied().collect();
    let accepted_fps: BTreeSet<String> = accepted.iter().flat_map(|&i| batches[i].iter().map(fingerprint)).collect();

    // After the restart: every accepted alert is on an incident.
    let server = Server::start(dir.path(), &[("FAULTLINE_RESPONSE_CONFIG", cfg.to_str().unwrap()), ("STORM_HOOK_URL", &hook)]);
    let on_incidents: BTreeSet<String> = incidents(&client, &server.url, &token).await.into_values().flatten().collect();
    let lost: Vec<&String> = accepted_fps.difference(&on_incidents).collect();
    assert!(lost.is_empty(), "{} of {} accepted alerts lost by the kill: {lost:?}", lost.len(), accepted_fps.len());

    // Phase 2: the whole storm again (the part the kill cut off, and the
    // answered part a second time), then a Prometheus-style re-send of all.
    for _round in 0..2 {
        let todo = Arc::new(AtomicUsize::new(0));
        let mut senders = Vec::new();
        for _ in 0..SENDERS {
            let (todo, client, url, batches, starts, ends) = (todo.clone(), sender.clone(), server.url.clone(), batches.clone(), starts.clone(), ends.clone());
            senders.push(tokio::spawn(async move {
                loop {
                    let i = todo.fetch_add(1, Ordering::SeqCst);
                    if i >= batches.len() {
                        return;
                    }
                    assert!(post(&client, &url, &body(&batches[i], &starts, &ends)).await, "the restarted server answers");
                }
            }));
        }
        for s in senders {
            s.await.unwrap();
        }
    }
    let by_incident = incidents(&client, &server.url, &token).await;
    assert_eq!(by_incident.len(), SERVICES, "one incident per service, none orphaned or duplicated by the kill: {:?}", by_incident.keys());
    let mut seen: BTreeMap<&String, usize> = BTreeMap::new();
    for (id, fps) in &by_incident {
        let services: BTreeSet<&String> = fps.iter().map(|f| &service_of[f]).collect();
        assert_eq!(services.len(), 1, "incident {id} mixes services {services:?}");
        for f in fps {
            *seen.entry(f).or_default() += 1;
        }
    }
    assert_eq!(seen.len(), alerts.len(), "every alert of the storm is on an incident");
    assert!(seen.values().all(|n| *n == 1), "each alert attached once, re-sends deduplicated");

    // Pages: one level-1 trigger per incident, whatever the kill interrupted.
    let ids: Vec<String> = by_incident.keys().cloned().collect();
    let triggered = |k: &BTreeSet<String>| ids.iter().all(|id| k.iter().any(|x| x.starts_with(id.as_str()) && x.contains("/oncall/trigger")));
    rx.wait_for("a level-1 page for every incident", Duration::from_secs(60), triggered).await;

    // Phase 3: the storm resolves (endsAt now), then the incidents are resolved.
    let resolved_at = faultline_core::Timestamp::parse_rfc3339(&wall_clock_now()).unwrap().to_string();
    for b in &batches {
        assert!(post(&sender, &server.url, &body(b, &starts, &resolved_at)).await);
    }
    for id in &ids {
        api(&client, reqwest::Method::POST, format!("{}/api/v1/incidents/{id}/resolve", server.url), &token, Some(json!({}))).await;
    }
    let resolves = |k: &BTreeSet<String>| ids.iter().all(|id| k.iter().any(|x| x.starts_with(id.as_str()) && x.contains("/oncall/resolve")));
    rx.wait_for("a resolve for every paged incident", Duration::from_secs(60), resolves).await;

    let distinct = rx.distinct();
    let expected: BTreeSet<String> = distinct.iter().filter(|k| ids.iter().any(|id| k.starts_with(id.as_str()))).cloned().collect();
    assert_eq!(expected, distinct, "no page for an incident that does not exist");
    for id in &ids {
        let mine: Vec<&String> = distinct.iter().filter(|k| k.starts_with(id.as_str())).collect();
        assert_eq!(mine.len(), 2, "incident {id}: exactly one trigger and one resolve: {mine:?}");
        let v = api(&client, reqwest::Method::GET, format!("{}/api/v1/incidents/{id}/notifications", server.url), &token, None).await;
        let mut kinds: Vec<(String, String)> = v["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["recipient"].as_str().unwrap().to_owned(), r["kind"].as_str().unwrap().to_owned()))
            .collect();
        kinds.sort();
        assert_eq!(kinds, [("oncall".to_owned(), "resolve".to_owned()), ("oncall".to_owned(), "trigger".to_owned())], "incident {id}: {v:#}");
    }
    let raw = rx.received();
    println!(
        "storm kill test: {} alerts, {} accepted before the kill ({} batches of {n_batches}), {} incidents, {} distinct notifications, {raw} deliveries",
        alerts.len(),
        accepted_fps.len(),
        accepted.len(),
        ids.len(),
        distinct.len()
    );
}

/// Now as RFC 3339 from the system clock (the test's alerts are stamped
/// with real time, as Prometheus stamps them).
fn wall_clock_now() -> String {
    let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    faultline_core::Timestamp::from_millis(ms).to_string()
}
