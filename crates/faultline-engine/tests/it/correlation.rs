//! Findings and alerts in, incidents with their correlator timelines out.

use std::collections::BTreeMap;
use std::sync::Arc;

use faultline_core::correlate::{CorrelatorConfig, GroupId, Topology};
use faultline_core::detect::DetectorSet;
use faultline_core::finding::{Evidence, FailureModel};
use faultline_core::incident::IncidentStatus;
use faultline_core::model::Interaction;
use faultline_core::pipeline::Pipeline;
use faultline_core::severity::SeverityDefinitions;
use faultline_core::signal::{AlertState, ExternalAlert, Signal};
use faultline_core::{Duration, Finding, ServiceName, Subject, Timestamp};
use faultline_engine::{Engine, Event};
use faultline_store::{IncidentFilter, SqlStore, Store};

fn svc(s: &str) -> ServiceName {
    ServiceName::new(s).unwrap()
}
fn t(s: i64) -> Timestamp {
    Timestamp::from_secs(1_800_000_000 + s)
}

async fn engine() -> (Engine, SqlStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqlStore::open_sqlite(dir.path()).await.unwrap();
    let edges = [("gateway", "fraud-check"), ("fraud-check", "fraud-db"), ("fraud-check", "ledger")].map(|(a, b)| Interaction {
        caller: svc(a),
        callee: svc(b),
        operation: String::new(),
    });
    let pipeline = Pipeline::new(DetectorSet::empty(), CorrelatorConfig::default(), Topology::new(edges, vec![]), SeverityDefinitions::standard(vec![]));
    (Engine::new(pipeline, Arc::new(store.clone())), store, dir)
}

fn finding(kind: &str, subject: Subject, at: i64) -> Finding {
    Finding {
        kind: kind.into(),
        subject,
        failure_model: FailureModel::Exhaustion,
        started_at: t(at),
        strength: 2.0,
        evidence: Evidence {
            measure: "ratio".into(),
            observed: 0.9,
            baseline: Some(0.1),
            threshold: None,
            window: Duration::from_secs(10),
            exemplar_trace_ids: vec![],
        },
    }
}

#[tokio::test]
async fn related_findings_and_an_alert_make_one_incident_that_resolves_itself() {
    let (mut engine, store, _dir) = engine().await;
    let pool = Subject::Resource { service: svc("fraud-check"), resource: "db-pool".into() };
    engine.process(Event::Finding(finding("resource_exhaustion", pool.clone(), 0)), t(0)).await.unwrap();
    let edge = Subject::Interaction { interaction: Interaction { caller: svc("gateway"), callee: svc("fraud-check"), operation: String::new() } };
    engine.process(Event::Finding(finding("retry_amplification", edge.clone(), 20)), t(20)).await.unwrap();
    let alert = ExternalAlert {
        source: "alertmanager".into(),
        fingerprint: "f00d".into(),
        state: AlertState::Firing,
        summary: "GatewayErrors".into(),
        labels: BTreeMap::from([("service".into(), "gateway".into())]),
        starts_at: t(25),
        ends_at: None,
    };
    engine.process(Event::Signals(vec![Signal::Alert(alert.clone())]), t(25)).await.unwrap();

    let incidents = store.list_incidents(&IncidentFilter::default()).await.unwrap();
    assert_eq!(incidents.len(), 1, "one incident for one failure");
    let id = engine.incident_of(GroupId(1)).unwrap();
    let findings = engine.findings_view().snapshot();
    assert_eq!(findings.len(), 2, "the two findings (the alert is not a finding)");
    assert!(findings.iter().all(|f| f.incident == Some(id) && f.active));
    let (inc, timeline) = store.incident(id).await.unwrap().unwrap();
    assert_eq!(inc.symptoms, 3);
    assert!(inc.diagnosis.as_deref().unwrap().starts_with("fraud-check/db-pool (origin"), "{:?}", inc.diagnosis);
    assert!(timeline.iter().all(|e| e.actor.to_string() == "system:correlator"));

    // Acknowledged at the alert's source → the incident is acknowledged.
    engine.process(Event::AlertAcknowledged { source: "alertmanager".into(), fingerprint: "f00d".into() }, t(30)).await.unwrap();
    assert_eq!(store.incident(id).await.unwrap().unwrap().0.status, IncidentStatus::Acknowledged);

    // Everything clears; after the hold-down the correlator resolves it.
    engine.process(Event::Cleared { kind: "resource_exhaustion".into(), subject: pool }, t(100)).await.unwrap();
    engine.process(Event::Cleared { kind: "retry_amplification".into(), subject: edge }, t(100)).await.unwrap();
    let resolved = ExternalAlert { state: AlertState::Resolved, ends_at: Some(t(100)), ..alert };
    engine.process(Event::Signals(vec![Signal::Alert(resolved)]), t(100)).await.unwrap();
    engine.process(Event::Tick, t(699)).await.unwrap();
    assert_eq!(store.incident(id).await.unwrap().unwrap().0.status, IncidentStatus::Acknowledged);
    engine.process(Event::Tick, t(700)).await.unwrap();
    let (inc, timeline) = store.incident(id).await.unwrap().unwrap();
    assert_eq!(inc.status, IncidentStatus::Resolved);
    let kinds: Vec<&str> = timeline.iter().map(|e| e.event.kind()).collect();
    assert_eq!(
        kinds,
        [
            "opened",
            "symptom_attached",
            "diagnosis_updated",
            "symptom_attached",
            "diagnosis_updated",
            "symptom_attached",
            "acknowledged",
            "symptom_cleared",
            "symptom_cleared",
            "symptom_cleared",
            "system_note",
            "resolved"
        ]
    );
}

#[tokio::test]
async fn a_person_resolving_first_is_not_an_engine_error() {
    let (mut engine, store, _dir) = engine().await;
    let pool = Subject::Resource { service: svc("fraud-check"), resource: "db-pool".into() };
    engine.process(Event::Finding(finding("resource_exhaustion", pool.clone(), 0)), t(0)).await.unwrap();
    let id = engine.incident_of(GroupId(1)).unwrap();
    faultline_store::commands::execute(
        &store,
        id,
        faultline_core::incident::Command::Resolve { note: None },
        faultline_core::incident::Actor::System("test".into()),
        t(5),
    )
    .await
    .unwrap();
    engine.process(Event::Cleared { kind: "resource_exhaustion".into(), subject: pool }, t(10)).await.unwrap();
    engine.process(Event::Tick, t(1000)).await.unwrap();
    let (inc, timeline) = store.incident(id).await.unwrap().unwrap();
    assert_eq!(inc.status, IncidentStatus::Resolved);
    assert_eq!(timeline.iter().filter(|e| e.event.kind() == "resolved").count(), 1);
}

#[tokio::test]
async fn the_channel_is_bounded() {
    let (handle, _rx) = Engine::channel(2);
    handle.try_send(Event::Tick).unwrap();
    handle.try_send(Event::Tick).unwrap();
    assert!(matches!(handle.try_send(Event::Tick), Err(faultline_engine::SendError::Full)));
}

#[tokio::test]
async fn a_missed_check_in_opens_a_crash_incident() {
    use faultline_core::detect::checkin::{CheckInMonitor, CheckSpec, Schedule};
    use faultline_core::signal::{CheckIn, CheckInKind};
    let dir = tempfile::tempdir().unwrap();
    let store = SqlStore::open_sqlite(dir.path()).await.unwrap();
    let mut monitor = CheckInMonitor::new();
    monitor
        .add_check(CheckSpec {
            name: "backup".into(),
            schedule: Schedule::Simple { period: Duration::from_mins(60) },
            grace: Duration::from_mins(5),
            service: Some(svc("ledger")),
        })
        .unwrap();
    let pipeline =
        Pipeline::new(DetectorSet::empty().with_checkins(monitor), CorrelatorConfig::default(), Topology::default(), SeverityDefinitions::standard(vec![]));
    let mut engine = Engine::new(pipeline, Arc::new(store.clone()));
    let ping = Signal::CheckIn(CheckIn { check: "backup".into(), kind: CheckInKind::Success, at: t(0) });
    engine.process(Event::Signals(vec![ping]), t(0)).await.unwrap();
    engine.process(Event::Tick, t(64 * 60)).await.unwrap();
    assert!(store.list_incidents(&IncidentFilter::default()).await.unwrap().is_empty(), "within period + grace");
    engine.process(Event::Tick, t(66 * 60)).await.unwrap();
    let incidents = store.list_incidents(&IncidentFilter::default()).await.unwrap();
    assert_eq!(incidents.len(), 1);
    let (inc, _) = store.incident(incidents[0].id).await.unwrap().unwrap();
    assert_eq!(inc.failure_model, Some(FailureModel::Crash), "{:?}", inc.diagnosis);
}

/// After a restart (a new engine over the same store), a related symptom
/// joins the incident opened before the restart instead of opening another.
#[tokio::test]
async fn correlation_continues_across_a_restart() {
    let (mut engine, store, _dir) = engine().await;
    let pool = Subject::Resource { service: svc("fraud-check"), resource: "db-pool".into() };
    engine.process(Event::Finding(finding("resource_exhaustion", pool, 0)), t(0)).await.unwrap();
    let id = engine.incident_of(GroupId(1)).unwrap();
    drop(engine);

    let edges = [("gateway", "fraud-check"), ("fraud-check", "fraud-db"), ("fraud-check", "ledger")].map(|(a, b)| Interaction {
        caller: svc(a),
        callee: svc(b),
        operation: String::new(),
    });
    let pipeline = Pipeline::new(DetectorSet::empty(), CorrelatorConfig::default(), Topology::new(edges, vec![]), SeverityDefinitions::standard(vec![]));
    let mut restarted = Engine::new(pipeline, Arc::new(store.clone()));
    assert!(restarted.restore().await.unwrap(), "saved state found");
    assert_eq!(restarted.incident_of(GroupId(1)), Some(id));
    let edge = Subject::Interaction { interaction: Interaction { caller: svc("gateway"), callee: svc("fraud-check"), operation: String::new() } };
    restarted.process(Event::Finding(finding("retry_amplification", edge, 20)), t(20)).await.unwrap();
    let incidents = store.list_incidents(&IncidentFilter::default()).await.unwrap();
    assert_eq!(incidents.len(), 1, "the symptom after the restart joined the same incident");
    assert_eq!(store.incident(id).await.unwrap().unwrap().0.symptoms, 2);
}

/// A store whose next `commit_turn` fails (a database error that is not
/// "busy", so the engine does not retry it); everything else is SQLite.
/// It notes how many correlator rows each committed turn wrote.
struct FlakyStore {
    inner: SqlStore,
    fail_next_commit: std::sync::atomic::AtomicBool,
    /// Per committed turn with correlator rows: (replace, groups, members written).
    writes: std::sync::Mutex<Vec<(bool, usize, usize)>>,
}

impl FlakyStore {
    fn new(inner: SqlStore) -> FlakyStore {
        FlakyStore { inner, fail_next_commit: std::sync::atomic::AtomicBool::new(false), writes: std::sync::Mutex::new(Vec::new()) }
    }
}

#[async_trait::async_trait]
impl Store for FlakyStore {
    async fn create_incident(
        &self,
        id: faultline_core::IncidentId,
        opened: &faultline_core::incident::TimelineEvent,
    ) -> faultline_store::Result<faultline_core::incident::Incident> {
        self.inner.create_incident(id, opened).await
    }
    async fn append(
        &self,
        id: faultline_core::IncidentId,
        v: u64,
        events: &[faultline_core::incident::TimelineEvent],
    ) -> faultline_store::Result<faultline_core::incident::Incident> {
        self.inner.append(id, v, events).await
    }
    async fn update(
        &self,
        id: faultline_core::IncidentId,
        decide: faultline_store::Decide,
    ) -> faultline_store::Result<(faultline_core::incident::Incident, Vec<faultline_core::incident::TimelineEvent>)> {
        self.inner.update(id, decide).await
    }
    async fn commit_turn(&self, turn: faultline_store::Turn) -> faultline_store::Result<Vec<(faultline_core::IncidentId, faultline_core::incident::Incident)>> {
        if self.fail_next_commit.swap(false, std::sync::atomic::Ordering::SeqCst) {
            return Err(faultline_store::StoreError::Database("injected: disk I/O error".into()));
        }
        let size = turn.correlator.as_ref().map(|w| (w.replace, w.groups.len(), w.members.len()));
        let out = self.inner.commit_turn(turn).await?;
        if let Some(size) = size {
            self.writes.lock().unwrap().push(size);
        }
        Ok(out)
    }
    async fn incident(
        &self,
        id: faultline_core::IncidentId,
    ) -> faultline_store::Result<Option<(faultline_core::incident::Incident, Vec<faultline_core::incident::TimelineEvent>)>> {
        self.inner.incident(id).await
    }
    async fn list_incidents(&self, filter: &IncidentFilter) -> faultline_store::Result<Vec<faultline_core::incident::Incident>> {
        self.inner.list_incidents(filter).await
    }
    async fn insert_token(&self, token: &faultline_store::TokenRecord) -> faultline_store::Result<()> {
        self.inner.insert_token(token).await
    }
    async fn token_by_hash(&self, h: &str) -> faultline_store::Result<Option<faultline_store::TokenRecord>> {
        self.inner.token_by_hash(h).await
    }
    async fn list_tokens(&self) -> faultline_store::Result<Vec<faultline_store::TokenRecord>> {
        self.inner.list_tokens().await
    }
    async fn revoke_token(&self, id_or_name: &str, at: Timestamp) -> faultline_store::Result<bool> {
        self.inner.revoke_token(id_or_name, at).await
    }
    async fn load_state(&self, name: &str) -> faultline_store::Result<Option<String>> {
        self.inner.load_state(name).await
    }
    async fn save_state(&self, name: &str, json: &str, at: Timestamp) -> faultline_store::Result<()> {
        self.inner.save_state(name, json, at).await
    }
    async fn load_correlator(&self) -> faultline_store::Result<Option<faultline_store::SavedCorrelator>> {
        self.inner.load_correlator().await
    }
    async fn ping(&self) -> faultline_store::Result<()> {
        self.inner.ping().await
    }
}

/// A turn that fails to commit must not leave the correlator ahead of the
/// store: the client's retry of the refused alert must open the incident
/// (and be answered "committed" only then), not join an in-memory group
/// that has no incident.
#[tokio::test]
async fn a_failed_commit_is_forgotten_so_the_retried_alert_opens_its_incident() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqlStore::open_sqlite(dir.path()).await.unwrap();
    let flaky = Arc::new(FlakyStore::new(store.clone()));
    let pipeline = Pipeline::new(DetectorSet::empty(), CorrelatorConfig::default(), Topology::default(), SeverityDefinitions::standard(vec![]));
    let mut engine = Engine::new(pipeline, flaky.clone());
    let alert = |fp: &str, svc_name: &str| {
        Signal::Alert(ExternalAlert {
            source: "alertmanager".into(),
            fingerprint: fp.into(),
            state: AlertState::Firing,
            summary: format!("{svc_name} errors"),
            labels: BTreeMap::from([("service".into(), svc_name.into())]),
            starts_at: t(0),
            ends_at: None,
        })
    };
    // An earlier, committed incident on another service.
    let (tx, rx) = tokio::sync::oneshot::channel();
    engine.process(Event::DurableSignals { signals: vec![alert("a1", "search")], committed: tx, hold: None }, t(0)).await.unwrap();
    assert!(rx.await.unwrap());

    // The ledger alert's turn fails: the sender hears "not committed".
    flaky.fail_next_commit.store(true, std::sync::atomic::Ordering::SeqCst);
    let (tx, rx) = tokio::sync::oneshot::channel();
    assert!(engine.process(Event::DurableSignals { signals: vec![alert("b1", "ledger")], committed: tx, hold: None }, t(5)).await.is_err());
    assert!(!rx.await.unwrap());
    assert_eq!(store.list_incidents(&IncidentFilter::default()).await.unwrap().len(), 1);

    // The retry commits, and only now is it answered "committed": with an
    // incident of its own that holds the alert.
    let (tx, rx) = tokio::sync::oneshot::channel();
    engine.process(Event::DurableSignals { signals: vec![alert("b1", "ledger")], committed: tx, hold: None }, t(6)).await.unwrap();
    assert!(rx.await.unwrap());
    let incidents = store.list_incidents(&IncidentFilter::default()).await.unwrap();
    assert_eq!(incidents.len(), 2, "the retried alert opened its incident");
    let mut with_b1 = 0;
    for inc in &incidents {
        let (_, timeline) = store.incident(inc.id).await.unwrap().unwrap();
        with_b1 += timeline
            .iter()
            .filter(|e| matches!(&e.event, faultline_core::incident::IncidentEvent::SymptomAttached { member, .. } if member.contains("b1")))
            .count();
    }
    assert_eq!(with_b1, 1);
    // The committed incident is still known: its alert re-sent joins it, no
    // new incident. Its sender's hold (a share of the request-bytes budget)
    // lives as long as the queued event and goes with it once processed.
    let (tx, rx) = tokio::sync::oneshot::channel();
    let hold = Arc::new(());
    let event = Event::DurableSignals { signals: vec![alert("a1", "search")], committed: tx, hold: Some(Box::new(hold.clone())) };
    assert_eq!(Arc::strong_count(&hold), 2, "the queued event holds it");
    engine.process(event, t(7)).await.unwrap();
    assert!(rx.await.unwrap());
    assert_eq!(Arc::strong_count(&hold), 1, "processed: the hold is given back");
    assert_eq!(store.list_incidents(&IncidentFilter::default()).await.unwrap().len(), 2);
}

fn storm_alert(fp: usize, service: &str, at: i64) -> Signal {
    Signal::Alert(ExternalAlert {
        source: "alertmanager".into(),
        fingerprint: format!("fp{fp}"),
        state: AlertState::Firing,
        summary: format!("{service} errors"),
        labels: BTreeMap::from([("service".into(), service.into())]),
        starts_at: t(at),
        ends_at: Some(t(at + 240)),
    })
}

fn bare_pipeline() -> Pipeline {
    Pipeline::new(DetectorSet::empty(), CorrelatorConfig::default(), Topology::default(), SeverityDefinitions::standard(vec![]))
}

/// A turn saves what it touched, not what the correlator holds: after 200
/// alerts on two services, one more alert writes one member row (and its
/// group's header); a re-sent alert (a refresh, no incident change) costs
/// no commit of its own and is saved with the next tick. A restarted engine
/// rebuilds exactly the correlator that was running, incidents and all.
#[tokio::test]
async fn a_turn_saves_only_the_members_it_touched_and_a_restart_rebuilds_them_all() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqlStore::open_sqlite(dir.path()).await.unwrap();
    let flaky = Arc::new(FlakyStore::new(store.clone()));
    let mut engine = Engine::new(bare_pipeline(), flaky.clone());
    let storm: Vec<Signal> = (0..200).map(|i| storm_alert(i, if i % 2 == 0 { "search" } else { "ledger" }, 0)).collect();
    for batch in storm.chunks(50) {
        engine.process_turn(vec![Event::Signals(batch.to_vec())], t(1)).await.unwrap();
    }
    assert_eq!(flaky.writes.lock().unwrap().iter().map(|w| w.2).sum::<usize>(), 200, "each member written once");
    flaky.writes.lock().unwrap().clear();
    engine.process(Event::Signals(vec![storm_alert(200, "search", 2)]), t(2)).await.unwrap();
    engine.process(Event::Signals(vec![storm_alert(3, "ledger", 3)]), t(3)).await.unwrap();
    assert_eq!(*flaky.writes.lock().unwrap(), [(false, 1, 1)], "the new alert; the re-sent one waits");
    engine.process(Event::Tick, t(4)).await.unwrap();
    assert_eq!(*flaky.writes.lock().unwrap(), [(false, 1, 1), (false, 1, 1)], "the re-sent alert's refresh, on the tick");

    let mut restarted = Engine::new(bare_pipeline(), Arc::new(store.clone()));
    assert!(restarted.restore().await.unwrap());
    assert!(restarted.pipeline().correlator() == engine.pipeline().correlator(), "rebuilt from the rows");
    for g in [GroupId(1), GroupId(2)] {
        assert_eq!(restarted.incident_of(g), engine.incident_of(g));
    }
    assert_eq!(restarted.pipeline().correlator().group(GroupId(1)).unwrap().members.len(), 101);
}

/// A data dir written by a version that saved the whole correlator as one
/// JSON value: the state is read, correlation continues with it, and the
/// first turn replaces it with rows and deletes it — in one commit.
#[tokio::test]
async fn an_older_whole_state_save_is_read_and_replaced_by_rows() {
    use faultline_core::correlate::{Correlator, Observation};
    let dir = tempfile::tempdir().unwrap();
    let store = SqlStore::open_sqlite(dir.path()).await.unwrap();
    // What such a version left: a correlator with one group, its incident.
    let mut old = Correlator::new(CorrelatorConfig::default());
    let Signal::Alert(alert) = storm_alert(1, "search", 0) else { unreachable!("an alert") };
    old.observe(Observation::Alert { alert, services: [svc("search")].into() }, &Topology::default(), t(0));
    let id = faultline_engine::new_incident_id(t(0));
    let opened = faultline_core::incident::Incident::open(
        "search",
        faultline_core::incident::Severity::Sev3,
        None,
        t(0),
        faultline_core::incident::Actor::System("correlator".into()),
    )
    .unwrap();
    store.create_incident(id, &opened).await.unwrap();
    let whole = serde_json::json!({ "correlator": old, "incidents": [[GroupId(1), id], [GroupId(7), faultline_engine::new_incident_id(t(0))]] });
    store.save_state(faultline_engine::LEGACY_STATE_KEY, &whole.to_string(), t(0)).await.unwrap();

    let flaky = Arc::new(FlakyStore::new(store.clone()));
    let mut engine = Engine::new(bare_pipeline(), flaky.clone());
    assert!(engine.restore().await.unwrap());
    assert_eq!(engine.incident_of(GroupId(1)), Some(id));
    assert!(engine.pipeline().correlator() == &old);
    // The next alert on the service joins the old incident; the turn saves everything as rows.
    engine.process(Event::Signals(vec![storm_alert(2, "search", 5)]), t(5)).await.unwrap();
    assert_eq!(*flaky.writes.lock().unwrap(), [(true, 1, 2)]);
    assert_eq!(store.load_state(faultline_engine::LEGACY_STATE_KEY).await.unwrap(), None, "retired");
    assert_eq!(store.list_incidents(&IncidentFilter::default()).await.unwrap().len(), 1);
    let mut restarted = Engine::new(bare_pipeline(), Arc::new(store.clone()));
    assert!(restarted.restore().await.unwrap());
    assert!(restarted.pipeline().correlator() == engine.pipeline().correlator());
    assert_eq!(restarted.incident_of(GroupId(1)), Some(id));
    assert_eq!(restarted.incident_of(GroupId(7)), None, "a group the correlator had forgotten is not carried over");
}

/// Rows that cannot be read are not continued from: correlation starts
/// afresh and the first turn replaces every saved row.
#[tokio::test]
async fn unreadable_rows_are_replaced_by_the_next_turn() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqlStore::open_sqlite(dir.path()).await.unwrap();
    let bad = faultline_store::CorrelatorWrite {
        next_group_id: 5,
        groups: vec![faultline_store::SavedGroup { group: 4, incident: None, header_json: "{not json".into() }],
        ..Default::default()
    };
    store.commit_turn(faultline_store::Turn { create: vec![], update: vec![], correlator: Some(bad), retire_state: None, at: t(0) }).await.unwrap();
    let mut engine = Engine::new(bare_pipeline(), Arc::new(store.clone()));
    assert!(!engine.restore().await.unwrap());
    engine.process(Event::Tick, t(1)).await.unwrap();
    let saved = store.load_correlator().await.unwrap().unwrap();
    assert!(saved.groups.is_empty() && saved.members.is_empty(), "{saved:?}");
    engine.process(Event::Signals(vec![storm_alert(1, "search", 2)]), t(2)).await.unwrap();
    let mut restarted = Engine::new(bare_pipeline(), Arc::new(store.clone()));
    assert!(restarted.restore().await.unwrap());
    assert!(restarted.pipeline().correlator() == engine.pipeline().correlator());
}

/// Re-sent alerts (refreshes, no incident change) are saved without a
/// commit of their own, but never pile up unbounded: once enough wait, the
/// turn that has them commits them.
#[tokio::test]
async fn deferred_refreshes_are_saved_before_they_pile_up() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqlStore::open_sqlite(dir.path()).await.unwrap();
    let flaky = Arc::new(FlakyStore::new(store.clone()));
    let mut engine = Engine::new(bare_pipeline(), flaky.clone());
    let storm: Vec<Signal> = (0..2100).map(|i| storm_alert(i, if i % 2 == 0 { "search" } else { "ledger" }, 0)).collect();
    engine.process_turn(vec![Event::Signals(storm.clone())], t(1)).await.unwrap();
    flaky.writes.lock().unwrap().clear();
    for batch in storm.chunks(100) {
        engine.process_turn(vec![Event::Signals(batch.to_vec())], t(2)).await.unwrap();
    }
    assert_eq!(*flaky.writes.lock().unwrap(), [(false, 2, 2100)], "one commit, when 2,100 refreshes waited");
    engine.process(Event::Tick, t(3)).await.unwrap();
    assert_eq!(flaky.writes.lock().unwrap().len(), 1, "nothing left for the tick");
}
