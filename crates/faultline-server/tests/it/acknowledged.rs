//! Property: no acknowledged write is lost across a restart. Random
//! sequences of HTTP requests — incident creations and every command on
//! them, alerts — with restarts in between (engine stopped, store closed,
//! a new `App` on the same SQLite file); after each restart, every request
//! answered 2xx is in the database exactly once (each incident with exactly
//! the events people were told were recorded; each alert in the correlator).
//!
//! Seeded (`RngSeed::Fixed`): the same cases every run. Not here: kill -9
//! (the CLI's storm test) or a full disk (`full_disk`).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use faultline_core::incident::Actor;
use faultline_core::{IncidentId, Timestamp};
use faultline_server::clock::FixedClock;
use faultline_server::{App, Config};
use faultline_store::{SqlStore, Store, TokenScope};
use http_body_util::BodyExt;
use proptest::prelude::*;
use proptest::test_runner::{RngSeed, TestCaseError};
use serde_json::{Value, json};
use tower::ServiceExt;

#[derive(Clone, Debug)]
enum Op {
    Create {
        severity: u8,
    },
    /// A command on the `n`-th incident created so far (modulo).
    Command {
        n: usize,
        path: &'static str,
        body: Option<Value>,
    },
    Alert {
        key: u16,
        service: u8,
    },
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    let command = prop_oneof![
        Just(("ack", None)),
        Just(("mitigate", None)),
        Just(("resolve", None)),
        Just(("reopen", Some(json!({"reason": "it came back"})))),
        Just(("notes", Some(json!({"text": "checked the dashboards"})))),
        Just(("severity", Some(json!({"severity": "SEV1", "reason": "customers affected"})))),
        Just(("severity", Some(json!({"severity": "SEV3", "reason": "contained"})))),
    ];
    prop_oneof![
        3 => (1u8..=3).prop_map(|severity| Op::Create { severity }),
        6 => (any::<usize>(), command).prop_map(|(n, (path, body))| Op::Command { n, path, body }),
        3 => (0u16..40, 0u8..4).prop_map(|(key, service)| Op::Alert { key, service }),
        1 => Just(Op::Restart),
    ]
}

struct Server {
    router: axum::Router,
    store: SqlStore,
    stop: tokio::sync::oneshot::Sender<()>,
    engine: tokio::task::JoinHandle<()>,
}

const NOW: i64 = 1_800_000_000_000;

async fn start(dir: &Path) -> Server {
    let store = SqlStore::open_sqlite(dir).await.unwrap();
    let mut app = App::with_store(Config::default(), store.clone(), Arc::new(FixedClock(Timestamp::from_millis(NOW))));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let engine = app
        .start_engine(async move {
            let _ = stopped.await;
        })
        .expect("a new App starts its engine");
    Server { router: app.router(), store, stop, engine }
}

impl Server {
    async fn stop(self) {
        let _ = self.stop.send(());
        self.engine.await.unwrap();
        drop(self.router);
        self.store.close().await;
    }

    async fn call(&self, path: &str, token: Option<&str>, body: Option<Value>) -> (StatusCode, Value) {
        let mut req = Request::builder().method("POST").uri(path).header(header::CONTENT_TYPE, "application/json");
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
        let resp = self.router.clone().oneshot(req.body(body).unwrap()).await.unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }
}

/// What the server acknowledged: per incident, the events people were told
/// were recorded; the alerts accepted.
#[derive(Default)]
struct Acknowledged {
    incidents: Vec<IncidentId>,
    events: BTreeMap<IncidentId, usize>,
    alerts: Vec<String>,
}

async fn check(store: &SqlStore, acked: &Acknowledged) -> Result<(), TestCaseError> {
    for id in &acked.incidents {
        let Some((_, timeline)) = store.incident(*id).await.unwrap() else {
            return Err(TestCaseError::fail(format!("incident {id} was answered 201 and is gone")));
        };
        let by_people = timeline.iter().filter(|e| !matches!(e.actor, Actor::System(_))).count();
        prop_assert_eq!(by_people, acked.events[id], "incident {}: events answered 2xx vs recorded", id);
    }
    let saved = store.load_correlator().await.unwrap().unwrap_or_default();
    for key in &acked.alerts {
        prop_assert!(saved.members.iter().any(|m| m.key.contains(key.as_str())), "alert {} was answered 202 and is gone", key);
    }
    Ok(())
}

async fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let admin = {
        let store = SqlStore::open_sqlite(dir.path()).await.unwrap();
        let (_, admin) = faultline_server::auth::create_token(&store, "ops-admin", TokenScope::Admin, None, Timestamp::from_millis(NOW)).await.unwrap();
        store.close().await;
        admin
    };
    let mut server = start(dir.path()).await;
    let mut acked = Acknowledged::default();
    for op in ops {
        match op {
            Op::Create { severity } => {
                let (s, body) =
                    server.call("/api/v1/incidents", Some(&admin), Some(json!({"title": "checkout failing", "severity": format!("SEV{severity}")}))).await;
                prop_assert_eq!(s, StatusCode::CREATED, "{}", body);
                let id: IncidentId = body["id"].as_str().unwrap().parse().unwrap();
                acked.incidents.push(id);
                acked.events.insert(id, 1);
            }
            Op::Command { n, path, body } => {
                let Some(id) = (!acked.incidents.is_empty()).then(|| acked.incidents[n % acked.incidents.len()]) else { continue };
                let (s, answer) = server.call(&format!("/api/v1/incidents/{id}/{path}"), Some(&admin), body).await;
                if s.is_success() {
                    *acked.events.get_mut(&id).unwrap() += 1;
                } else {
                    // A refusal by the state machine (already resolved, …).
                    prop_assert_eq!(s, StatusCode::CONFLICT, "{} {}: {}", path, id, answer);
                }
            }
            Op::Alert { key, service } => {
                let key = format!("prop-alert-{key}");
                let body = json!({"title": "queue backing up", "service": format!("svc-{service}"), "dedup_key": key});
                let (s, answer) = server.call("/api/v1/alerts", None, Some(body)).await;
                prop_assert_eq!(s, StatusCode::ACCEPTED, "{}", answer);
                if !acked.alerts.contains(&key) {
                    acked.alerts.push(key);
                }
            }
            Op::Restart => {
                server.stop().await;
                server = start(dir.path()).await;
                check(&server.store, &acked).await?;
            }
        }
    }
    server.stop().await;
    let store = SqlStore::open_sqlite(dir.path()).await.unwrap();
    let result = check(&store, &acked).await;
    store.close().await;
    result
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, rng_seed: RngSeed::Fixed(0x14_0007), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn no_acknowledged_write_is_lost_across_restarts(ops in proptest::collection::vec(op(), 1..40)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(run(ops))?;
    }
}
