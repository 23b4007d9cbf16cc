//! Correlator tests: grouping by graph and time, merging, hold-down
//! resolution, relinking, external alerts, the diagnosis of canonical
//! incidents, and INV-CORR-1 as a property.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::*;
use crate::finding::{Evidence, FailureModel, IncidentClass};
use crate::ids::TeamId;

fn svc(s: &str) -> ServiceName {
    ServiceName::new(s).unwrap()
}
fn edge(a: &str, b: &str) -> Interaction {
    Interaction { caller: svc(a), callee: svc(b), operation: String::new() }
}
fn t(s: i64) -> Timestamp {
    Timestamp::from_secs(1_800_000_000 + s)
}

/// The payment pipeline of DESIGN.md: web → gateway → fraud-check →
/// (fraud-db, ledger → bank-connector), plus an unrelated search stack.
fn payments() -> Topology {
    let checkout = Flow {
        name: FlowName::new("checkout").unwrap(),
        owner: TeamId::new("payments").unwrap(),
        description: String::new(),
        interactions: vec![edge("web", "gateway"), edge("gateway", "fraud-check"), edge("fraud-check", "ledger"), edge("ledger", "bank-connector")],
    };
    Topology::new([edge("fraud-check", "fraud-db"), edge("search-api", "search-index"), edge("search-index", "search-store")], vec![checkout])
}

// A fixture that names every field of a finding a case varies.
#[allow(clippy::too_many_arguments)]
fn finding(kind: &str, subject: Subject, model: FailureModel, at: i64, strength: f64, measure: &str, observed: f64, baseline: Option<f64>) -> Finding {
    Finding {
        kind: kind.into(),
        subject,
        failure_model: model,
        started_at: t(at),
        strength,
        evidence: Evidence { measure: measure.into(), observed, baseline, threshold: None, window: Duration::from_secs(10), exemplar_trace_ids: vec![] },
    }
}
fn on_service(s: &str) -> Subject {
    Subject::Service { service: svc(s) }
}
fn on_edge(a: &str, b: &str) -> Subject {
    Subject::Interaction { interaction: edge(a, b) }
}
fn on_resource(s: &str, r: &str) -> Subject {
    Subject::Resource { service: svc(s), resource: r.into() }
}

fn groups_opened(events: &[CorrelationEvent]) -> usize {
    events.iter().filter(|e| matches!(e, CorrelationEvent::Opened { .. })).count()
}

/// Feeds findings in order, each observed at its own start time.
fn run(topology: &Topology, findings: Vec<Finding>) -> (Correlator, Vec<CorrelationEvent>) {
    let mut c = Correlator::new(CorrelatorConfig::default());
    let mut events = Vec::new();
    for f in findings {
        let now = f.started_at;
        events.extend(c.observe(Observation::Fired(f), topology, now));
        c.check_invariants().unwrap();
    }
    (c, events)
}

fn cascade() -> Vec<Finding> {
    vec![
        finding("resource_exhaustion", on_resource("fraud-check", "db-pool"), FailureModel::Exhaustion, 0, 4.0, "pool_in_use_ratio", 1.0, Some(0.35)),
        finding("latency_change", on_edge("gateway", "fraud-check"), FailureModel::Exhaustion, 20, 3.0, "p99_ms", 5000.0, Some(120.0)),
        finding("retry_amplification", on_edge("gateway", "fraud-check"), FailureModel::Unknown, 30, 5.0, "retry_ratio", 2.1, Some(0.02)),
        finding("timeout_saturation", on_edge("gateway", "fraud-check"), FailureModel::Exhaustion, 35, 2.0, "timeout_ratio", 0.6, None),
        // The gateway saturates in turn: calls into it time out (two hops above the pool).
        finding("timeout_saturation", on_edge("web", "gateway"), FailureModel::Exhaustion, 45, 2.0, "timeout_ratio", 0.5, None),
        finding("error_rate_change", on_edge("web", "gateway"), FailureModel::Unknown, 50, 6.0, "error_ratio", 0.4, Some(0.001)),
    ]
}

#[test]
fn a_cascade_is_one_incident_with_the_pool_as_origin() {
    let topo = payments();
    let (c, events) = run(&topo, cascade());
    assert_eq!(groups_opened(&events), 1, "{events:#?}");
    let g = c.open_groups().next().unwrap();
    assert_eq!(g.members.len(), 6);
    assert_eq!(g.chain.origins[0].subject, on_resource("fraud-check", "db-pool"));
    assert_eq!(g.chain.class, Some(IncidentClass::CascadingFailure));
    assert_eq!(g.chain.failure_model, Some(FailureModel::Exhaustion));
    assert_eq!(
        g.chain.render_sentence(),
        "fraud-check/db-pool (origin, 43% confidence), amplified by gateway → fraud-check retries ×3.1, gateway → fraud-check timeouts saturating, web → gateway timeouts saturating; checkout flow impacted"
    );
    // Every candidate shows the evidence behind its rank.
    for o in &g.chain.origins {
        assert!(o.reasons.iter().any(|r| r.starts_with("score ")), "{o:?}");
    }
    let top = &g.chain.origins[0].reasons;
    assert_eq!(top[0], "2 of 2 other anomalous services call it (directly or transitively)");
    assert!(top[3].starts_with("resource_exhaustion: pool_in_use_ratio = 1.0000 vs baseline 0.3500"), "{top:?}");
}

#[test]
fn diagnosis_changes_are_recorded_as_the_incident_evolves() {
    let topo = payments();
    let (_, events) = run(&topo, cascade());
    let changes: Vec<(String, String)> = events
        .iter()
        .filter_map(|e| match e {
            CorrelationEvent::DiagnosisChanged { chain, sentence, .. } => Some((chain.class.unwrap().to_string(), sentence.clone())),
            _ => None,
        })
        .collect();
    assert!(changes.len() >= 2, "{changes:#?}");
    assert_eq!(changes[0].0, "exhaustion", "a lone exhausted pool is an exhaustion failure");
    assert_eq!(changes.last().unwrap().0, "cascading_failure");
}

#[test]
fn a_retry_storm_on_one_edge_is_classed_as_such() {
    let topo = payments();
    let (c, _) = run(
        &topo,
        vec![
            finding("error_rate_change", on_edge("ledger", "bank-connector"), FailureModel::Unknown, 0, 3.0, "error_ratio", 0.5, Some(0.01)),
            finding("retry_amplification", on_edge("ledger", "bank-connector"), FailureModel::Unknown, 10, 4.0, "retry_ratio", 1.5, Some(0.0)),
        ],
    );
    let g = c.open_groups().next().unwrap();
    assert_eq!(g.chain.class, Some(IncidentClass::RetryStorm));
    assert_eq!(g.chain.origins[0].subject, on_edge("ledger", "bank-connector"));
}

#[test]
fn unrelated_failures_are_separate_incidents() {
    let topo = payments();
    let (c, events) = run(
        &topo,
        vec![
            finding("resource_exhaustion", on_resource("fraud-check", "db-pool"), FailureModel::Exhaustion, 0, 4.0, "pool", 1.0, None),
            finding("error_rate_change", on_edge("search-api", "search-index"), FailureModel::Unknown, 5, 3.0, "error_ratio", 0.3, None),
        ],
    );
    assert_eq!(groups_opened(&events), 2);
    assert_eq!(c.open_groups().count(), 2);
}

#[test]
fn a_symptom_bridging_two_incidents_merges_them_keeping_both_histories() {
    // search-api and search-store are 2 hops apart, on no flow: with a
    // 1-hop radius they start as separate incidents.
    let topo = payments();
    let mut c = Correlator::new(CorrelatorConfig { max_hops: 1, ..CorrelatorConfig::default() });
    let mut events = Vec::new();
    for f in [
        finding("error_rate_change", on_service("search-api"), FailureModel::Unknown, 0, 3.0, "error_ratio", 0.2, None),
        finding("error_rate_change", on_service("search-store"), FailureModel::Unknown, 5, 3.0, "error_ratio", 0.2, None),
        finding("latency_change", on_service("search-index"), FailureModel::Exhaustion, 9, 3.0, "p99_ms", 900.0, None),
    ] {
        let now = f.started_at;
        events.extend(c.observe(Observation::Fired(f), &topo, now));
        c.check_invariants().unwrap();
    }
    assert_eq!(groups_opened(&events), 2);
    assert!(events.iter().any(|e| matches!(e, CorrelationEvent::Merged { into: GroupId(1), from: GroupId(2), .. })), "{events:#?}");
    let open: Vec<_> = c.open_groups().collect();
    assert_eq!(open.len(), 1);
    assert_eq!((open[0].members.len(), open[0].absorbed.clone()), (3, vec![GroupId(2)]));
    assert_eq!(c.group(GroupId(2)).unwrap().merged_into, Some(GroupId(1)), "the merged group's record is kept");
}

#[test]
fn shared_flows_group_even_when_the_graph_is_far() {
    let topo = payments();
    // web → bank-connector is 4 hops, but both are on the checkout flow.
    let mut c = Correlator::new(CorrelatorConfig { max_hops: 1, ..CorrelatorConfig::default() });
    c.observe(Observation::Fired(finding("error_rate_change", on_service("web"), FailureModel::Unknown, 0, 2.0, "e", 0.1, None)), &topo, t(0));
    let ev =
        c.observe(Observation::Fired(finding("error_rate_change", on_service("bank-connector"), FailureModel::Unknown, 1, 2.0, "e", 0.1, None)), &topo, t(1));
    assert!(matches!(ev[0], CorrelationEvent::Joined { group: GroupId(1), .. }), "{ev:#?}");
}

#[test]
fn resolves_after_hold_down_and_relinks_a_recurrence() {
    let topo = payments();
    let pool = finding("resource_exhaustion", on_resource("fraud-check", "db-pool"), FailureModel::Exhaustion, 0, 4.0, "pool", 1.0, None);
    let mut c = Correlator::new(CorrelatorConfig::default());
    c.observe(Observation::Fired(pool.clone()), &topo, t(0));
    c.observe(Observation::Cleared { kind: pool.kind.clone(), subject: pool.subject.clone(), at: t(100) }, &topo, t(100));
    assert_eq!(c.next_wake(), Some(t(700)));
    assert!(c.tick(t(699)).is_empty(), "not before hold-down");
    // Flapping back within hold-down keeps the same incident open.
    let ev = c.observe(Observation::Fired(pool.clone()), &topo, t(650));
    assert!(matches!(ev[0], CorrelationEvent::MemberRefired { .. }), "{ev:#?}");
    assert!(c.tick(t(800)).is_empty());
    c.observe(Observation::Cleared { kind: pool.kind.clone(), subject: pool.subject.clone(), at: t(900) }, &topo, t(900));
    assert_eq!(c.tick(t(1500)), vec![CorrelationEvent::Resolved { group: GroupId(1), at: t(1500) }]);
    assert_eq!(c.open_groups().count(), 0);
    c.check_invariants().unwrap();
    // The same failure again, 20 minutes later: a new incident linked to the old.
    let ev = c.observe(Observation::Fired(pool), &topo, t(2700));
    assert!(matches!(ev[0], CorrelationEvent::Opened { group: GroupId(2), related_to: Some(GroupId(1)), .. }), "{ev:#?}");
}

#[test]
fn external_alerts_join_by_mapped_service_and_clear_on_resolve() {
    let topo = payments();
    let mut c = Correlator::new(CorrelatorConfig::default());
    c.observe(
        Observation::Fired(finding("resource_exhaustion", on_resource("fraud-check", "db-pool"), FailureModel::Exhaustion, 0, 4.0, "pool", 1.0, None)),
        &topo,
        t(0),
    );
    let alert = ExternalAlert {
        source: "alertmanager".into(),
        fingerprint: "abc123".into(),
        state: AlertState::Firing,
        summary: "GatewayHighErrorRate".into(),
        labels: BTreeMap::from([("service".into(), "gateway".into())]),
        starts_at: t(30),
        ends_at: None,
    };
    let services = BTreeSet::from([svc("gateway")]);
    let ev = c.observe(Observation::Alert { alert: alert.clone(), services: services.clone() }, &topo, t(30));
    assert!(matches!(ev[0], CorrelationEvent::Joined { group: GroupId(1), .. }), "{ev:#?}");
    // The same alert again (re-sent by Alertmanager) is deduplicated.
    assert!(
        c.observe(Observation::Alert { alert: alert.clone(), services: services.clone() }, &topo, t(60))
            .iter()
            .all(|e| !matches!(e, CorrelationEvent::Joined { .. } | CorrelationEvent::Opened { .. }))
    );
    let resolved = ExternalAlert { state: AlertState::Resolved, ends_at: Some(t(90)), ..alert };
    let ev = c.observe(Observation::Alert { alert: resolved, services }, &topo, t(90));
    assert!(matches!(ev[0], CorrelationEvent::MemberCleared { .. }), "{ev:#?}");
    c.check_invariants().unwrap();
}

/// A person's resolve closes the group: the same symptom afterwards (a
/// re-sent alert, a finding firing again) opens a new group related to the
/// closed one instead of attaching to it.
#[test]
fn a_closed_group_takes_no_more_symptoms_and_its_recurrence_is_related() {
    let topo = payments();
    let mut c = Correlator::new(CorrelatorConfig::default());
    let pool = finding("resource_exhaustion", on_resource("fraud-check", "db-pool"), FailureModel::Exhaustion, 0, 2.0, "ratio", 0.9, Some(0.1));
    let ev = c.observe(Observation::Fired(pool.clone()), &topo, t(0));
    assert_eq!(groups_opened(&ev), 1);
    assert!(c.close(GroupId(1), t(60)));
    assert!(!c.close(GroupId(1), t(61)), "closing twice is a no-op");
    c.check_invariants().unwrap();
    assert_eq!(c.group_of(&MemberKey::Finding { kind: pool.kind.clone(), subject: pool.subject.clone() }), None);
    // The still-active finding is refreshed by its detector: a new group.
    let ev = c.observe(Observation::Fired(Finding { started_at: t(70), ..pool.clone() }), &topo, t(70));
    assert!(matches!(&ev[0], CorrelationEvent::Opened { group: GroupId(2), related_to: Some(GroupId(1)), .. }), "{ev:#?}");
    assert!(!c.reopens(GroupId(1), t(70)), "no reopen window by default");
    let windowed = Correlator::new(CorrelatorConfig { reopen_window: Duration::from_mins(30), ..CorrelatorConfig::default() });
    let mut w = windowed;
    w.observe(Observation::Fired(pool.clone()), &topo, t(0));
    w.close(GroupId(1), t(60));
    assert!(w.reopens(GroupId(1), t(60 + 1800)));
    assert!(!w.reopens(GroupId(1), t(60 + 1801)));
}

/// The hold-down is never silent: the moment everything has cleared, the
/// correlator says when the group resolves unless a symptom returns.
#[test]
fn the_last_clear_announces_when_the_group_resolves() {
    let topo = payments();
    let config = CorrelatorConfig { hold_down: Duration::from_mins(3), ..CorrelatorConfig::default() };
    let mut c = Correlator::new(config);
    let pool = finding("resource_exhaustion", on_resource("fraud-check", "db-pool"), FailureModel::Exhaustion, 0, 2.0, "ratio", 0.9, Some(0.1));
    c.observe(Observation::Fired(pool.clone()), &topo, t(0));
    let ev = c.observe(Observation::Cleared { kind: pool.kind.clone(), subject: pool.subject.clone(), at: t(40) }, &topo, t(40));
    assert!(ev.iter().any(|e| matches!(e, CorrelationEvent::Quiet { resolves_at, .. } if *resolves_at == t(40 + 180))), "{ev:#?}");
    assert!(c.tick(t(219)).is_empty());
    assert_eq!(c.tick(t(220)), vec![CorrelationEvent::Resolved { group: GroupId(1), at: t(220) }]);
}

#[test]
fn firing_alerts_expire_when_their_sender_stops_refreshing_them() {
    let topo = payments();
    let mut c = Correlator::new(CorrelatorConfig::default());
    let alert = ExternalAlert {
        source: "alertmanager".into(),
        fingerprint: "abc".into(),
        state: AlertState::Firing,
        summary: "X".into(),
        labels: BTreeMap::new(),
        starts_at: t(0),
        ends_at: Some(t(60)),
    };
    let services = BTreeSet::from([svc("gateway")]);
    c.observe(Observation::Alert { alert: alert.clone(), services: services.clone() }, &topo, t(0));
    // Re-sent with a later end: still firing at 90 s.
    c.observe(Observation::Alert { alert: ExternalAlert { ends_at: Some(t(120)), ..alert }, services }, &topo, t(50));
    assert!(c.tick(t(90)).is_empty());
    let ev = c.tick(t(130));
    assert!(
        matches!(&ev[..], [CorrelationEvent::MemberCleared { at, .. }, CorrelationEvent::Quiet { resolves_at, .. }] if *at == t(120) && *resolves_at == t(720)),
        "{ev:#?}"
    );
    assert_eq!(c.tick(t(120 + 600)), vec![CorrelationEvent::Resolved { group: GroupId(1), at: t(720) }]);
}

#[test]
fn state_survives_a_json_round_trip_and_correlation_continues() {
    let topo = payments();
    let (c, _) = run(&topo, cascade()[..2].to_vec());
    let json = serde_json::to_string(&c).unwrap();
    let mut restored: Correlator = serde_json::from_str(&json).unwrap();
    restored.check_invariants().unwrap();
    let next = cascade()[2].clone();
    let at = next.started_at;
    let ev = restored.observe(Observation::Fired(next), &topo, at);
    assert!(matches!(ev[0], CorrelationEvent::Joined { group: GroupId(1), .. }), "{ev:#?}");
}

#[test]
fn closed_groups_are_forgotten_after_the_relink_window() {
    let topo = payments();
    let pool = finding("resource_exhaustion", on_resource("fraud-check", "db-pool"), FailureModel::Exhaustion, 0, 4.0, "pool", 1.0, None);
    let mut c = Correlator::new(CorrelatorConfig::default());
    c.observe(Observation::Fired(pool.clone()), &topo, t(0));
    c.observe(Observation::Cleared { kind: pool.kind.clone(), subject: pool.subject.clone(), at: t(10) }, &topo, t(10));
    c.tick(t(700));
    assert!(c.group(GroupId(1)).is_some(), "kept for relinking");
    c.tick(t(700 + 3601));
    assert!(c.group(GroupId(1)).is_none(), "forgotten after the relink window");
}

#[test]
fn stale_groups_do_not_absorb_new_failures() {
    let topo = payments();
    let mut c = Correlator::new(CorrelatorConfig::default());
    c.observe(Observation::Fired(finding("error_rate_change", on_service("gateway"), FailureModel::Unknown, 0, 2.0, "e", 0.1, None)), &topo, t(0));
    // Still open (never cleared) but silent for longer than join_window.
    let ev = c.observe(
        Observation::Fired(finding("latency_change", on_service("fraud-check"), FailureModel::Exhaustion, 3600, 2.0, "p99", 1.0, None)),
        &topo,
        t(3600),
    );
    assert!(matches!(ev[0], CorrelationEvent::Opened { group: GroupId(2), .. }), "{ev:#?}");
}

const KINDS: &[&str] = &["error_rate_change", "latency_change", "retry_amplification", "resource_exhaustion"];

#[derive(Clone, Debug)]
enum Op {
    Fire {
        kind: usize,
        svc: usize,
    },
    Clear {
        kind: usize,
        svc: usize,
    },
    Alert {
        fp: usize,
        svc: usize,
        firing: bool,
    },
    Advance {
        secs: i64,
    },
    /// A person resolves the incident of the `pick`-th open group.
    Close {
        pick: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..KINDS.len(), 0..8usize).prop_map(|(kind, svc)| Op::Fire { kind, svc }),
        2 => (0..KINDS.len(), 0..8usize).prop_map(|(kind, svc)| Op::Clear { kind, svc }),
        1 => (0..3usize, 0..8usize, any::<bool>()).prop_map(|(fp, svc, firing)| Op::Alert { fp, svc, firing }),
        2 => (1..1200i64).prop_map(|secs| Op::Advance { secs }),
        1 => (0..4usize).prop_map(|pick| Op::Close { pick }),
    ]
}

/// Feeds one generated op to `c` (the clock moves on `Advance`), returning
/// what the correlator reported.
fn apply(c: &mut Correlator, op: &Op, names: &[ServiceName], topo: &Topology, now: &mut Timestamp) -> Vec<CorrelationEvent> {
    match *op {
        Op::Fire { kind, svc } => {
            let f = finding(KINDS[kind], Subject::Service { service: names[svc].clone() }, FailureModel::Unknown, 0, 1.0, "m", 1.0, None);
            let f = Finding { started_at: *now, ..f };
            c.observe(Observation::Fired(f), topo, *now)
        }
        Op::Clear { kind, svc } => {
            c.observe(Observation::Cleared { kind: KINDS[kind].into(), subject: Subject::Service { service: names[svc].clone() }, at: *now }, topo, *now)
        }
        Op::Alert { fp, svc, firing } => {
            let alert = ExternalAlert {
                source: "am".into(),
                fingerprint: format!("fp{fp}"),
                state: if firing { AlertState::Firing } else { AlertState::Resolved },
                summary: String::new(),
                labels: BTreeMap::new(),
                starts_at: *now,
                ends_at: None,
            };
            c.observe(Observation::Alert { alert, services: BTreeSet::from([names[svc].clone()]) }, topo, *now)
        }
        Op::Advance { secs } => {
            *now = *now + Duration::from_secs(secs);
            c.tick(*now)
        }
        Op::Close { pick } => {
            let open: Vec<GroupId> = c.open_groups().map(|g| g.id).collect();
            if let Some(&g) = open.get(pick % open.len().max(1)) {
                assert!(c.close(g, *now));
            }
            Vec::new()
        }
    }
}

fn prop_world(edges: &[(usize, usize)]) -> (Vec<ServiceName>, Topology, Correlator) {
    let names: Vec<ServiceName> = (0..8).map(|i| svc(&format!("s{i}"))).collect();
    let topo = Topology::new(edges.iter().map(|&(a, b)| Interaction { caller: names[a].clone(), callee: names[b].clone(), operation: String::new() }), vec![]);
    let c = Correlator::new(prop_config());
    (names, topo, c)
}

fn prop_config() -> CorrelatorConfig {
    CorrelatorConfig {
        join_window: Duration::from_mins(5),
        max_hops: 1,
        hold_down: Duration::from_mins(3),
        relink_window: Duration::from_mins(30),
        reopen_window: Duration::ZERO,
        ..CorrelatorConfig::default()
    }
}

/// A saved copy kept the way a driver's store keeps it: one entry per group
/// header, one per member, each through JSON.
#[derive(Default)]
struct SavedCopy {
    next_group_id: u64,
    groups: BTreeMap<GroupId, String>,
    members: BTreeMap<(GroupId, String), String>,
}

impl SavedCopy {
    fn write(&mut self, changes: CorrelatorChanges) {
        let key = |k: &MemberKey| serde_json::to_string(k).unwrap();
        self.next_group_id = changes.next_group_id;
        for g in changes.removed_groups {
            self.groups.remove(&g);
            self.members.retain(|(gid, _), _| *gid != g);
        }
        for (g, k) in changes.removed_members {
            self.members.remove(&(g, key(&k)));
        }
        for h in changes.groups {
            self.groups.insert(h.id, serde_json::to_string(&h).unwrap());
        }
        for (g, m) in changes.members {
            self.members.insert((g, key(&m.key)), serde_json::to_string(&m).unwrap());
        }
    }

    fn rebuild(&self) -> Result<Correlator, RebuildError> {
        Correlator::rebuild(
            prop_config(),
            self.next_group_id,
            self.groups.values().map(|j| serde_json::from_str(j).unwrap()),
            self.members.iter().map(|((g, _), j)| (*g, serde_json::from_str(j).unwrap())),
        )
    }
}

proptest! {
    /// INV-CORR-1: whatever arrives in whatever order, a finding or alert
    /// belongs to at most one open incident, and the membership index agrees
    /// with the groups.
    #[test]
    fn a_member_belongs_to_at_most_one_open_group(
        edges in proptest::collection::vec((0..8usize, 0..8usize), 0..12),
        ops in proptest::collection::vec(op(), 1..80),
    ) {
        let (names, topo, mut c) = prop_world(&edges);
        let mut now = t(0);
        for op in &ops {
            apply(&mut c, op, &names, &topo, &mut now);
            prop_assert!(c.check_invariants().is_ok(), "{:?}", c.check_invariants());
            for g in c.open_groups() {
                prop_assert!(!g.members.is_empty());
                // `explain` reads the group's services rather than gathering its members'.
                let gathered: BTreeSet<ServiceName> = g.members.values().flat_map(|m| m.services.iter().cloned()).collect();
                prop_assert_eq!(&g.services, &gathered);
                prop_assert!(g.chain.origins.iter().all(|o| (0.0..=1.0).contains(&o.confidence)));
            }
        }
    }

    /// Saving only what each turn changed and rebuilding from the saved
    /// pieces gives the correlator back: equal state after every turn, and
    /// the rebuilt one decides the rest of the run exactly as the original.
    #[test]
    fn a_correlator_rebuilt_from_its_saved_changes_equals_the_original(
        edges in proptest::collection::vec((0..8usize, 0..8usize), 0..12),
        turns in proptest::collection::vec(proptest::collection::vec(op(), 0..6), 1..30),
        restart_at in 0..30usize,
    ) {
        let (names, topo, mut c) = prop_world(&edges);
        let mut saved = SavedCopy::default();
        let mut now = t(0);
        let restart_at = restart_at % turns.len();
        for (i, turn) in turns.iter().enumerate() {
            for op in turn {
                apply(&mut c, op, &names, &topo, &mut now);
            }
            saved.write(c.take_changes());
            prop_assert!(!c.has_changes());
            let rebuilt = saved.rebuild();
            prop_assert!(rebuilt.is_ok(), "{:?}", rebuilt.as_ref().err());
            let mut rebuilt = rebuilt.unwrap();
            prop_assert!(rebuilt == c, "turn {i}: rebuilt {rebuilt:#?}\noriginal {c:#?}");
            rebuilt.check_invariants().unwrap();
            if i == restart_at {
                // A restart here: the rest of the run decides the same on both.
                let (mut original, mut later, mut later_rebuilt) = (c.clone(), now, now);
                for op in turns[i + 1..].iter().flatten() {
                    let a = apply(&mut original, op, &names, &topo, &mut later);
                    let b = apply(&mut rebuilt, op, &names, &topo, &mut later_rebuilt);
                    prop_assert_eq!(a, b);
                }
                prop_assert!(rebuilt == original);
            }
        }
        // A full save into an empty copy is the same state too.
        let mut full = SavedCopy::default();
        full.write(c.take_everything());
        prop_assert!(full.rebuild().unwrap() == c);
    }
}

#[test]
fn rebuilding_refuses_a_member_in_two_open_groups_or_in_no_saved_group() {
    let mut c = Correlator::new(CorrelatorConfig::default());
    let topo = payments();
    for (fp, service) in [("a", "search-api"), ("b", "ledger")] {
        let alert = ExternalAlert {
            source: "am".into(),
            fingerprint: fp.into(),
            state: AlertState::Firing,
            summary: String::new(),
            labels: BTreeMap::new(),
            starts_at: t(0),
            ends_at: None,
        };
        c.observe(Observation::Alert { alert, services: BTreeSet::from([svc(service)]) }, &topo, t(0));
    }
    let all = c.take_everything();
    assert_eq!((all.groups.len(), all.members.len(), all.next_group_id), (2, 2, 3));
    let rebuilt = Correlator::rebuild(CorrelatorConfig::default(), 0, all.groups.clone(), all.members.clone()).unwrap();
    assert!(rebuilt == c, "next id raised above the saved groups");
    // Member "a" also saved in group 2, which is open too.
    let mut twice = all.members.clone();
    twice.push((GroupId(2), all.members[0].1.clone()));
    let err = Correlator::rebuild(CorrelatorConfig::default(), 3, all.groups.clone(), twice).unwrap_err();
    assert!(matches!(err, RebuildError::InTwoOpenGroups { first: GroupId(1), second: GroupId(2), .. }), "{err}");
    let orphan = vec![(GroupId(9), all.members[0].1.clone())];
    let err = Correlator::rebuild(CorrelatorConfig::default(), 3, all.groups, orphan).unwrap_err();
    assert!(matches!(err, RebuildError::UnknownGroup { group: GroupId(9), .. }), "{err}");
}

#[test]
fn an_alert_storm_on_one_service_names_it_once_as_an_origin_candidate() {
    let topo = payments();
    let mut c = Correlator::new(CorrelatorConfig::default());
    let services = BTreeSet::from([svc("gateway")]);
    for i in 0..50 {
        let alert = ExternalAlert {
            source: "alertmanager".into(),
            fingerprint: format!("fp{i}"),
            state: AlertState::Firing,
            summary: "GatewayHighErrorRate".into(),
            labels: BTreeMap::from([("service".into(), "gateway".into()), ("instance".into(), format!("i{i}"))]),
            starts_at: t(100 - i),
            ends_at: None,
        };
        c.observe(Observation::Alert { alert, services: services.clone() }, &topo, t(100));
    }
    let g = c.open_groups().next().unwrap();
    assert_eq!(g.members.len(), 50);
    let candidates: Vec<String> = g.chain.origins.iter().map(|o| o.subject.to_string()).collect();
    assert_eq!(candidates.len(), 1, "one candidate per service, not per alert: {candidates:?}");
    assert!(g.chain.origins[0].reasons[0].contains(&t(51).to_string()), "named at its earliest alert: {:?}", g.chain.origins[0].reasons);
}

/// A re-sent alert may carry another `startsAt`: the service's earliest
/// alert onset (what `explain` names) follows it both ways, whether or not
/// that alert held the earliest onset, and the kept digest stays equal to
/// a recomputation (`check_invariants`).
#[test]
fn a_re_sent_alert_with_another_onset_moves_its_services_earliest_alert() {
    let topo = payments();
    let mut c = Correlator::new(CorrelatorConfig::default());
    let mut send = |fp: &str, starts: i64, now: i64| -> String {
        let alert = ExternalAlert {
            source: "alertmanager".into(),
            fingerprint: fp.into(),
            state: AlertState::Firing,
            summary: String::new(),
            labels: BTreeMap::new(),
            starts_at: t(starts),
            ends_at: None,
        };
        c.observe(Observation::Alert { alert, services: BTreeSet::from([svc("gateway")]) }, &topo, t(now));
        c.check_invariants().unwrap();
        c.open_groups().next().unwrap().chain.origins[0].reasons[0].clone()
    };
    assert!(send("a", 50, 50).contains(&t(50).to_string()));
    assert!(send("b", 60, 60).contains(&t(50).to_string()));
    assert!(send("a", 70, 70).contains(&t(60).to_string()), "a held the earliest onset and moved later");
    assert!(send("b", 40, 80).contains(&t(40).to_string()), "b moved earlier");
    assert!(send("a", 45, 90).contains(&t(40).to_string()), "a moved earlier, but not before b");
    assert!(send("a", 95, 95).contains(&t(40).to_string()), "a moved later; b still holds the earliest");
}

fn alert_on(fingerprint: &str, service: &str, at: i64) -> Observation {
    Observation::Alert {
        alert: ExternalAlert {
            source: "alertmanager".into(),
            fingerprint: fingerprint.into(),
            state: AlertState::Firing,
            summary: "x".into(),
            labels: BTreeMap::from([("service".into(), service.into())]),
            starts_at: t(at),
            ends_at: None,
        },
        services: BTreeSet::from([svc(service)]),
    }
}

/// Alerts held had no cap (8,400 large alerts: 625 MB). Past `max_members`
/// the least recently seen member goes, as a saved change, and is counted.
#[test]
fn members_past_the_cap_evict_the_least_recently_seen() {
    let topo = payments();
    let mut c = Correlator::new(CorrelatorConfig { max_members: 3, ..CorrelatorConfig::default() });
    c.observe(alert_on("a", "gateway", 0), &topo, t(0));
    c.observe(alert_on("b", "gateway", 1), &topo, t(1));
    c.observe(alert_on("c", "gateway", 2), &topo, t(2));
    // Re-sent: "a" is now seen more recently than "b".
    c.observe(alert_on("a", "gateway", 0), &topo, t(3));
    c.take_changes();
    c.observe(alert_on("d", "gateway", 4), &topo, t(4));
    assert_eq!(c.evicted(), 1);
    assert_eq!(c.members_held(), 3);
    let key = |f: &str| MemberKey::Alert { source: "alertmanager".into(), fingerprint: f.into() };
    assert_eq!(c.group_of(&key("b")), None, "the least recently seen is gone");
    for f in ["a", "c", "d"] {
        assert!(c.group_of(&key(f)).is_some(), "{f} is held");
    }
    // The eviction is saved: the member's row goes.
    let changes = c.take_changes();
    assert!(changes.removed_members.iter().any(|(_, k)| *k == key("b")), "{changes:?}");
    c.check_invariants().unwrap();
    // A rebuilt correlator keeps the cap.
    let mut all = c.clone();
    let everything = all.take_everything();
    let mut r = Correlator::rebuild(c.config(), everything.next_group_id, everything.groups, everything.members).unwrap();
    assert_eq!(r.members_held(), 3);
    r.observe(alert_on("e", "gateway", 5), &topo, t(5));
    assert_eq!((r.members_held(), r.evicted()), (3, 1));
    r.check_invariants().unwrap();
}
