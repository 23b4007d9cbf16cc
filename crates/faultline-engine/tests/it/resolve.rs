//! A person's resolve never leaves the next failure unpaged (issue: a
//! symptom after a hand resolve was attached to the resolved incident and
//! nobody was paged). Random interleavings of symptoms, clears, person
//! resolves (the engine told at once, or not at all until a restart),
//! reopens, ticks and restarts, against a real SQLite store with the real
//! response driver paging through its outbox. After every step:
//! - no timeline ever holds a symptom attached while the incident was resolved;
//! - a symptom that arrives while nothing open holds it is paged: the incident
//!   that holds it afterwards is open, and was open before (paged then) or
//!   got a new trigger page in that step.

use std::collections::BTreeMap;
use std::sync::Arc;

use faultline_core::UserId;
use faultline_core::correlate::{CorrelatorConfig, MemberKey, Topology};
use faultline_core::detect::DetectorSet;
use faultline_core::escalation::EscalationPolicy;
use faultline_core::finding::{Evidence, FailureModel};
use faultline_core::incident::{Actor, Command, IncidentEvent, IncidentStatus, TimelineEvent};
use faultline_core::model::Interaction;
use faultline_core::pipeline::Pipeline;
use faultline_core::severity::SeverityDefinitions;
use faultline_core::signal::{AlertState, ExternalAlert, Signal};
use faultline_core::{Duration, Finding, IncidentId, ServiceName, Subject, Timestamp};
use faultline_engine::response::{ContactMethod, ResponseDriver, ResponseSetup};
use faultline_engine::{Engine, Event};
use faultline_store::response::ResponseStore;
use faultline_store::{IncidentFilter, SqlStore, Store, commands};
use proptest::prelude::*;

const SERVICES: [&str; 4] = ["gateway", "fraud-check", "fraud-db", "search"];

fn svc(s: &str) -> ServiceName {
    ServiceName::new(s).unwrap()
}

fn t(s: i64) -> Timestamp {
    Timestamp::from_secs(1_800_000_000 + s)
}

fn config(reopen: bool) -> CorrelatorConfig {
    CorrelatorConfig {
        hold_down: Duration::from_mins(5),
        reopen_window: if reopen { Duration::from_mins(20) } else { Duration::ZERO },
        ..CorrelatorConfig::default()
    }
}

fn engine(store: &SqlStore, reopen: bool) -> Engine {
    let edges =
        [("gateway", "fraud-check"), ("fraud-check", "fraud-db")].map(|(a, b)| Interaction { caller: svc(a), callee: svc(b), operation: String::new() });
    let pipeline = Pipeline::new(DetectorSet::empty(), config(reopen), Topology::new(edges, vec![]), SeverityDefinitions::standard(vec![]));
    Engine::new(pipeline, Arc::new(store.clone()))
}

/// Every incident pages alice (the default policy), so a trigger page is
/// visible for every incident that opens or reopens.
fn driver(store: &SqlStore) -> ResponseDriver {
    let policy: EscalationPolicy =
        serde_json::from_value(serde_json::json!({"name": "everyone", "levels": [{"delay_minutes": 5, "targets": [{"user": "alice"}]}]})).unwrap();
    let setup = ResponseSetup {
        policies: BTreeMap::from([("everyone".into(), policy)]),
        default_policy: Some("everyone".into()),
        contacts: BTreeMap::from([(UserId::new("alice").unwrap(), vec![ContactMethod { channel: "hook".into(), address: None }])]),
        ..ResponseSetup::default()
    };
    let s = Arc::new(store.clone());
    ResponseDriver::new(s.clone(), s, Arc::new(setup), None)
}

fn finding(svc_i: usize, at: Timestamp) -> Finding {
    Finding {
        kind: "error_rate_change".into(),
        subject: Subject::Service { service: svc(SERVICES[svc_i]) },
        failure_model: FailureModel::Unknown,
        started_at: at,
        strength: 2.0,
        evidence: Evidence {
            measure: "errors".into(),
            observed: 0.3,
            baseline: Some(0.01),
            threshold: None,
            window: Duration::from_secs(10),
            exemplar_trace_ids: vec![],
        },
    }
}

fn alert(fp: usize, svc_i: usize, firing: bool, at: Timestamp) -> ExternalAlert {
    ExternalAlert {
        source: "alertmanager".into(),
        fingerprint: format!("fp{fp}"),
        state: if firing { AlertState::Firing } else { AlertState::Resolved },
        summary: "HighErrorRate".into(),
        labels: BTreeMap::from([("service".into(), SERVICES[svc_i].into())]),
        starts_at: at,
        ends_at: if firing { None } else { Some(at) },
    }
}

#[derive(Clone, Debug)]
enum Op {
    Fire {
        svc: usize,
    },
    Clear {
        svc: usize,
    },
    Alert {
        fp: usize,
        svc: usize,
        firing: bool,
    },
    /// A person resolves the `pick`-th open incident; `tell`: the API tells the
    /// engine (as the server does), else the engine hears nothing until a restart.
    Resolve {
        pick: usize,
        tell: bool,
    },
    Reopen {
        pick: usize,
    },
    Advance {
        secs: i64,
    },
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..SERVICES.len()).prop_map(|svc| Op::Fire { svc }),
        2 => (0..SERVICES.len()).prop_map(|svc| Op::Clear { svc }),
        3 => (0..3usize, 0..SERVICES.len(), prop::bool::weighted(0.7)).prop_map(|(fp, svc, firing)| Op::Alert { fp, svc, firing }),
        3 => (0..3usize, prop::bool::weighted(0.8)).prop_map(|(pick, tell)| Op::Resolve { pick, tell }),
        1 => (0..3usize).prop_map(|pick| Op::Reopen { pick }),
        2 => (1..900i64).prop_map(|secs| Op::Advance { secs }),
        1 => Just(Op::Restart),
    ]
}

/// No `symptom_attached` while the incident stood resolved.
fn no_symptom_on_a_resolved_incident(id: IncidentId, timeline: &[TimelineEvent]) -> Result<(), String> {
    let mut resolved = false;
    for e in timeline {
        match &e.event {
            IncidentEvent::Resolved { .. } | IncidentEvent::MergedInto { .. } => resolved = true,
            IncidentEvent::Reopened { .. } => resolved = false,
            IncidentEvent::SymptomAttached { member, .. } if resolved => {
                return Err(format!("incident {id}: symptom {member} attached at seq {} while resolved", e.seq));
            }
            _ => {}
        }
    }
    Ok(())
}

struct World {
    store: SqlStore,
    engine: Engine,
    driver: ResponseDriver,
    reopen: bool,
    now: Timestamp,
    /// A person resolved something the engine was not told of.
    untold: bool,
}

impl World {
    async fn open_incidents(&self) -> Vec<IncidentId> {
        let mut ids: Vec<IncidentId> =
            self.store.list_incidents(&IncidentFilter { open_only: true, ..IncidentFilter::default() }).await.unwrap().iter().map(|i| i.id).collect();
        ids.sort();
        ids
    }

    async fn resolved_incidents(&self) -> Vec<IncidentId> {
        let mut ids: Vec<IncidentId> = self
            .store
            .list_incidents(&IncidentFilter { status: Some(IncidentStatus::Resolved), ..IncidentFilter::default() })
            .await
            .unwrap()
            .iter()
            .filter(|i| i.merged_into.is_none())
            .map(|i| i.id)
            .collect();
        ids.sort();
        ids
    }

    /// The open incident the engine holds this member in, if any.
    async fn open_holder(&self, key: &MemberKey) -> Option<IncidentId> {
        let id = self.engine.pipeline().correlator().group_of(key).and_then(|g| self.engine.incident_of(g))?;
        let state = self.store.incident_state(id).await.unwrap()?;
        state.status.is_open().then_some(id)
    }

    /// Whether the member is an active member of an open group (a re-send of
    /// it is a refresh, not a new symptom).
    fn active(&self, key: &MemberKey) -> bool {
        let c = self.engine.pipeline().correlator();
        c.group_of(key).and_then(|g| c.group(g)).and_then(|g| g.members.get(key)).is_some_and(|m| m.active)
    }

    async fn trigger_pages(&self) -> BTreeMap<IncidentId, usize> {
        let mut out = BTreeMap::new();
        for i in self.store.list_incidents(&IncidentFilter { limit: Some(1000), ..IncidentFilter::default() }).await.unwrap() {
            let n = self.store.notifications(i.id).await.unwrap().iter().filter(|r| r.kind == "trigger").count();
            out.insert(i.id, n);
        }
        out
    }

    async fn step(&mut self, op: &Op) -> Result<(), String> {
        let symptom: Option<MemberKey> = match *op {
            Op::Fire { svc } => Some(MemberKey::Finding { kind: "error_rate_change".into(), subject: Subject::Service { service: self::svc(SERVICES[svc]) } }),
            Op::Alert { fp, firing: true, .. } => Some(MemberKey::Alert { source: "alertmanager".into(), fingerprint: format!("fp{fp}") }),
            _ => None,
        };
        // A symptom nothing open holds: it must be paged. A refresh of an
        // active member is not a new symptom — unless a person resolved its
        // incident and the engine was told (the server always tells it).
        let must_page = match &symptom {
            Some(key) => self.open_holder(key).await.is_none() && (!self.active(key) || !self.untold),
            None => false,
        };
        let pages_before = self.trigger_pages().await;
        let open_before = self.open_incidents().await;
        let now = self.now;
        match *op {
            Op::Fire { svc } => self.engine.process(Event::Finding(finding(svc, now)), now).await.map_err(|e| e.to_string())?,
            Op::Clear { svc } => self
                .engine
                .process(Event::Cleared { kind: "error_rate_change".into(), subject: Subject::Service { service: self::svc(SERVICES[svc]) } }, now)
                .await
                .map_err(|e| e.to_string())?,
            Op::Alert { fp, svc, firing } => {
                self.engine.process(Event::Signals(vec![Signal::Alert(alert(fp, svc, firing, now))]), now).await.map_err(|e| e.to_string())?
            }
            Op::Resolve { pick, tell } => {
                let open = self.open_incidents().await;
                if let Some(&id) = open.get(pick % open.len().max(1)) {
                    commands::execute(&self.store, id, Command::Resolve { note: None }, Actor::System("test-person".into()), now)
                        .await
                        .map_err(|e| e.to_string())?;
                    if tell {
                        self.engine.process(Event::IncidentResolved(id), now).await.map_err(|e| e.to_string())?;
                    } else {
                        self.untold = true;
                    }
                }
            }
            Op::Reopen { pick } => {
                let resolved = self.resolved_incidents().await;
                if let Some(&id) = resolved.get(pick % resolved.len().max(1)) {
                    commands::execute(&self.store, id, Command::Reopen { reason: "not fixed".into() }, Actor::System("test-person".into()), now)
                        .await
                        .map_err(|e| e.to_string())?;
                }
            }
            Op::Advance { secs } => {
                self.now = self.now + Duration::from_secs(secs);
                self.engine.process(Event::Tick, self.now).await.map_err(|e| e.to_string())?;
            }
            Op::Restart => {
                self.engine = engine(&self.store, self.reopen);
                self.engine.restore().await.map_err(|e| e.to_string())?;
                self.driver = driver(&self.store);
                self.untold = false;
            }
        }
        self.driver.step(self.now).await.map_err(|e| e.to_string())?;
        for i in self.store.list_incidents(&IncidentFilter { limit: Some(1000), ..IncidentFilter::default() }).await.unwrap() {
            let (_, timeline) = self.store.incident(i.id).await.unwrap().unwrap();
            no_symptom_on_a_resolved_incident(i.id, &timeline)?;
        }
        if must_page && let Some(key) = &symptom {
            let holder = self.open_holder(key).await.ok_or_else(|| format!("{op:?}: {key} is held by no open incident"))?;
            // Joining an incident that was open (and paged) already is fine;
            // anything else must have paged in this step.
            if open_before.contains(&holder) {
                self.now = self.now + Duration::from_secs(1);
                return Ok(());
            }
            let after = self.trigger_pages().await;
            let (before, now) = (pages_before.get(&holder).copied().unwrap_or(0), after.get(&holder).copied().unwrap_or(0));
            if now <= before {
                return Err(format!("{op:?}: {key} arrived with nothing open for it and incident {holder} was not paged ({before} -> {now} trigger pages)"));
            }
        }
        self.now = self.now + Duration::from_secs(1);
        Ok(())
    }
}

async fn run(ops: Vec<Op>, reopen: bool) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let store = SqlStore::open_sqlite(dir.path()).await.unwrap();
    let mut w = World { engine: engine(&store, reopen), driver: driver(&store), store, reopen, now: t(0), untold: false };
    for (i, op) in ops.iter().enumerate() {
        w.step(op).await.map_err(|e| format!("step {i}: {e}\nops: {ops:?}"))?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn a_symptom_after_a_person_resolves_is_paged_and_never_attached_to_the_resolved_incident(
        ops in proptest::collection::vec(op(), 1..40),
        reopen in any::<bool>(),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let result = rt.block_on(run(ops, reopen));
        prop_assert!(result.is_ok(), "{}", result.unwrap_err());
    }
}

/// The reported defect, step by step: resolve by hand, then a new critical
/// alert for the same service opens a new incident, linked to the old one as
/// a recurrence, and pages.
#[tokio::test]
async fn a_new_alert_after_a_hand_resolve_opens_a_linked_incident_and_pages() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqlStore::open_sqlite(dir.path()).await.unwrap();
    let mut e = engine(&store, false);
    let d = driver(&store);
    e.process(Event::Signals(vec![Signal::Alert(alert(0, 0, true, t(0)))]), t(0)).await.unwrap();
    d.step(t(0)).await.unwrap();
    let first = store.list_incidents(&IncidentFilter::default()).await.unwrap()[0].id;
    commands::execute(&store, first, Command::Resolve { note: None }, Actor::System("test-person".into()), t(60)).await.unwrap();
    e.process(Event::IncidentResolved(first), t(60)).await.unwrap();
    d.step(t(60)).await.unwrap();
    e.process(Event::Signals(vec![Signal::Alert(alert(1, 0, true, t(120)))]), t(120)).await.unwrap();
    d.step(t(120)).await.unwrap();
    let all = store.list_incidents(&IncidentFilter::default()).await.unwrap();
    assert_eq!(all.len(), 2, "a new incident for the new alert");
    let second = all.iter().find(|i| i.id != first).unwrap();
    assert!(second.status.is_open());
    assert_eq!(second.related, vec![first], "linked to the resolved one as a recurrence");
    let pages: Vec<String> = store.notifications(second.id).await.unwrap().into_iter().map(|r| format!("{} {}", r.recipient, r.kind)).collect();
    assert_eq!(pages, ["alice trigger"]);
    let (_, timeline) = store.incident(first).await.unwrap().unwrap();
    assert!(!timeline.iter().any(|e| e.at >= t(60) && e.event.kind() == "symptom_attached"), "nothing attached to the resolved incident");
}

/// With a reopen window, the recurrence reopens the resolved incident (and
/// pages again) instead of opening another.
#[tokio::test]
async fn within_the_reopen_window_a_recurrence_reopens_and_pages() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqlStore::open_sqlite(dir.path()).await.unwrap();
    let mut e = engine(&store, true);
    let d = driver(&store);
    e.process(Event::Finding(finding(1, t(0))), t(0)).await.unwrap();
    d.step(t(0)).await.unwrap();
    let id = store.list_incidents(&IncidentFilter::default()).await.unwrap()[0].id;
    commands::execute(&store, id, Command::Resolve { note: None }, Actor::System("test-person".into()), t(60)).await.unwrap();
    e.process(Event::IncidentResolved(id), t(60)).await.unwrap();
    d.step(t(60)).await.unwrap();
    // The detector refreshes the finding: the same failure is still there.
    e.process(Event::Finding(finding(1, t(0))), t(70)).await.unwrap();
    d.step(t(70)).await.unwrap();
    let all = store.list_incidents(&IncidentFilter::default()).await.unwrap();
    assert_eq!(all.len(), 1, "reopened, not another incident");
    let (inc, timeline) = store.incident(id).await.unwrap().unwrap();
    assert_eq!(inc.status, IncidentStatus::Triggered);
    assert_eq!(inc.reopen_count, 1);
    let kinds: Vec<&str> = timeline.iter().map(|e| e.event.kind()).filter(|k| *k != "system_note").collect();
    assert_eq!(kinds, ["opened", "symptom_attached", "diagnosis_updated", "resolved", "reopened", "symptom_attached", "diagnosis_updated"]);
    let triggers = store.notifications(id).await.unwrap().iter().filter(|r| r.kind == "trigger").count();
    assert_eq!(triggers, 2, "paged at the open and again at the reopen");
}

/// The engine never heard of the resolve (it was down): at restart it closes
/// the groups of incidents resolved in the store, so the next symptom pages.
#[tokio::test]
async fn a_restart_closes_the_groups_of_incidents_resolved_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqlStore::open_sqlite(dir.path()).await.unwrap();
    let mut e = engine(&store, false);
    e.process(Event::Signals(vec![Signal::Alert(alert(0, 0, true, t(0)))]), t(0)).await.unwrap();
    let first = store.list_incidents(&IncidentFilter::default()).await.unwrap()[0].id;
    commands::execute(&store, first, Command::Resolve { note: None }, Actor::System("test-person".into()), t(60)).await.unwrap();
    let mut e = engine(&store, false);
    e.restore().await.unwrap();
    assert_eq!(e.pipeline().correlator().open_groups().count(), 0, "the resolved incident's group is closed at restart");
    // The alert is re-sent while still firing: a symptom with nothing open for it.
    e.process(Event::Signals(vec![Signal::Alert(alert(0, 0, true, t(0)))]), t(90)).await.unwrap();
    let all = store.list_incidents(&IncidentFilter::default()).await.unwrap();
    assert_eq!(all.len(), 2);
    assert!(all.iter().any(|i| i.id != first && i.status.is_open()));
}

/// The detectors' baselines are saved and taken back by a restarted engine:
/// the first faulty window after the restart opens an incident (a fresh
/// engine would still be warming up).
#[tokio::test]
async fn detector_baselines_survive_a_restart() {
    use faultline_core::signal::EdgeWindow;
    let dir = tempfile::tempdir().unwrap();
    let store = SqlStore::open_sqlite(dir.path()).await.unwrap();
    let standard = |store: &SqlStore| {
        let p = Pipeline::new(DetectorSet::standard(), config(false), Topology::default(), SeverityDefinitions::standard(vec![]));
        Engine::new(p, Arc::new(store.clone()))
    };
    let window = |i: i64, errors: u64| {
        Signal::Edge(EdgeWindow {
            interaction: Interaction { caller: svc("checkout"), callee: svc("payments"), operation: String::new() },
            start: t(i * 10),
            length: Duration::from_secs(10),
            requests: 200,
            errors,
            timeouts: 0,
            retries: 0,
            p50_ms: 20.0,
            p99_ms: 80.0 + (i % 3) as f64,
            in_flight: None,
            zones: Vec::new(),
            exemplar_trace_ids: Vec::new(),
        })
    };
    let mut e = standard(&store);
    for i in 0..40 {
        e.process(Event::Signals(vec![window(i, 1)]), t(i * 10 + 10)).await.unwrap();
    }
    e.save_learned(t(400)).await.unwrap();
    let mut after = standard(&store);
    after.restore().await.unwrap();
    after.restore_learned().await.unwrap();
    after.process(Event::Signals(vec![window(41, 90)]), t(420)).await.unwrap();
    assert_eq!(store.list_incidents(&IncidentFilter::default()).await.unwrap().len(), 1, "the restored baseline judged the first window");
    // Without the saved baselines the same window is not judged yet.
    let other = tempfile::tempdir().unwrap();
    let fresh_store = SqlStore::open_sqlite(other.path()).await.unwrap();
    let mut fresh = standard(&fresh_store);
    fresh.process(Event::Signals(vec![window(41, 90)]), t(420)).await.unwrap();
    assert!(fresh_store.list_incidents(&IncidentFilter::default()).await.unwrap().is_empty());
}
