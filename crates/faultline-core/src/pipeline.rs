//! The detection-to-incident pipeline as one sans-IO component: signals go
//! through the `DetectorSet`, findings and alerts through the `Correlator`,
//! and what comes out is a list of `IncidentAction`s — open this incident,
//! record this event on that one — for a driver to carry out.
//!
//! The engine executes the actions against the store with real time; the
//! simulator's drills execute them on virtual time. Both run this code, so a
//! drill exercises exactly what production does. Not here: incident ids
//! (actions name correlator `GroupId`s; the driver maps them), persistence,
//! notification.

use std::collections::{BTreeMap, BTreeSet};

use crate::correlate::{CorrelationEvent, Correlator, CorrelatorChanges, CorrelatorConfig, GroupId, Member, MemberKey, Observation, Topology};
use crate::detect::DetectorSet;
use crate::finding::{CausalChain, Finding, Subject};
use crate::ids::{FlowName, ServiceName};
use crate::incident::title::{alert_title, finding_title};
use crate::incident::{IncidentEvent, Severity};
use crate::severity::{SeverityDefinitions, SeverityFacts, SloBurn};
use crate::signal::{ExternalAlert, Signal};
use crate::time::{Duration, Timestamp};

/// What the driver must do to incidents.
#[derive(Clone, Debug, PartialEq)]
pub enum IncidentAction {
    Open {
        group: GroupId,
        title: String,
        severity: Severity,
        summary: Option<String>,
        at: Timestamp,
    },
    Record {
        group: GroupId,
        event: IncidentEvent,
        at: Timestamp,
    },
    /// `group` is a recurrence of `previous` soon enough to be the same
    /// incident: map `group` to `previous`'s incident and reopen it (a no-op
    /// when a person already reopened it).
    Reopen {
        group: GroupId,
        previous: GroupId,
        reason: String,
        at: Timestamp,
    },
    /// `group` recurs `previous` (record `LinkedTo` on `group`).
    Link {
        group: GroupId,
        previous: GroupId,
        at: Timestamp,
    },
    /// `from` merges into `into` (`MergedInto` on `from`, `Absorbed` on `into`).
    Merge {
        into: GroupId,
        from: GroupId,
        at: Timestamp,
    },
}

pub struct Pipeline {
    detectors: DetectorSet,
    correlator: Correlator,
    topology: Topology,
    severity: SeverityDefinitions,
    /// Current severity per open group, to raise (never silently lower) it.
    severities: BTreeMap<GroupId, Severity>,
    /// The most severe suggestion of any alert in each open group, with its
    /// reason: alerts stay part of the group, so their word keeps holding.
    alert_floors: BTreeMap<GroupId, (Severity, String)>,
    /// The lower suggestion last noted per group, so a lower suggestion is
    /// noted once when it appears rather than at every diagnosis update.
    noted_lower: BTreeMap<GroupId, Severity>,
    /// Groups a finding opened: the opening member and the title last given,
    /// so the title follows the diagnosis's origin (until a person sets one).
    auto_titles: BTreeMap<GroupId, (MemberKey, String)>,
    /// Active findings carried across a restart whose detectors report
    /// clears, with the time by which they must fire again (set on the first
    /// `now` after the restart). A fresh detector that does not fire one
    /// again would never clear it, so at the deadline it is cleared.
    carried: BTreeMap<MemberKey, Option<Timestamp>>,
    /// How long a carried finding has to fire again.
    carry_grace: Duration,
}

/// Most labels of an alert a symptom event carries.
const MAX_SYMPTOM_LABELS: usize = 32;

/// Default time a finding carried across a restart has to fire again: the
/// detectors' warm-up (about 150 s of windows) with room to spare.
pub const DEFAULT_CARRY_GRACE: Duration = Duration::from_mins(5);

impl Pipeline {
    pub fn new(detectors: DetectorSet, config: CorrelatorConfig, topology: Topology, severity: SeverityDefinitions) -> Pipeline {
        Pipeline {
            detectors,
            correlator: Correlator::new(config),
            topology,
            severity,
            severities: BTreeMap::new(),
            alert_floors: BTreeMap::new(),
            noted_lower: BTreeMap::new(),
            auto_titles: BTreeMap::new(),
            carried: BTreeMap::new(),
            carry_grace: DEFAULT_CARRY_GRACE,
        }
    }

    /// How long a finding carried across a restart has to fire again before
    /// it is cleared (`DEFAULT_CARRY_GRACE`).
    pub fn with_carry_grace(mut self, grace: Duration) -> Pipeline {
        self.carry_grace = grace;
        self
    }

    /// The detectors' baselines worth keeping across a restart
    /// (`DetectorSet::learned`).
    pub fn learned(&self) -> BTreeMap<String, serde_json::Value> {
        self.detectors.learned()
    }

    /// Gives the detectors back their baselines from an earlier run; the
    /// names of those that refused theirs, with why.
    pub fn relearn(&mut self, saved: BTreeMap<String, serde_json::Value>) -> Vec<String> {
        self.detectors.relearn(saved)
    }

    /// Findings carried across a restart still waiting to fire again.
    pub fn carried(&self) -> impl Iterator<Item = &MemberKey> {
        self.carried.keys()
    }

    /// Replaces the topology (the graph learns new edges over time).
    pub fn set_topology(&mut self, topology: Topology) {
        self.topology = topology;
    }

    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    pub fn correlator(&self) -> &Correlator {
        &self.correlator
    }

    pub fn detectors(&self) -> &DetectorSet {
        &self.detectors
    }

    /// Continues from a saved correlator (after a restart). Its active
    /// findings of kinds whose detectors report clears are carried: they
    /// must fire again within the carry grace or they are cleared, so an
    /// incident whose failure ended during the restart still resolves.
    pub fn restore_correlator(&mut self, correlator: Correlator) {
        self.correlator = correlator;
        self.carried = self
            .correlator
            .open_groups()
            .flat_map(|g| g.members.values())
            .filter(|m| m.active && m.finding.as_ref().is_some_and(|f| self.detectors.clears(&f.kind)))
            .map(|m| (m.key.clone(), None))
            .collect();
        self.rederive_group_state();
    }

    /// What this pipeline keeps per open group beside the correlator (alert
    /// floors, current severities, automatic titles), derived again from the
    /// restored groups, so after a restart an alert still raises its
    /// incident and a finding-born title still follows the origin. The
    /// severity is taken as the group's suggestion: the incident may stand
    /// higher (a person raised it), and the core refuses a suggested change
    /// that would not raise it.
    fn rederive_group_state(&mut self) {
        self.severities.clear();
        self.alert_floors.clear();
        self.noted_lower.clear();
        self.auto_titles.clear();
        let open: Vec<(GroupId, CausalChain)> = self.correlator.open_groups().map(|g| (g.id, g.chain.clone())).collect();
        for (gid, chain) in open {
            let Some(g) = self.correlator.group(gid) else { continue };
            let floor = g.members.keys().filter_map(|k| self.alert_suggestion(gid, k)).min_by(|a, b| a.0.cmp(&b.0));
            // The member that opened the group: the earliest seen.
            let opener = g.members.values().min_by_key(|m| (m.first_seen, m.key.clone()));
            let auto = opener.and_then(|m| m.finding.as_ref().map(|f| (m.key.clone(), finding_title(f, chain.origins.first().map(|o| &o.subject)))));
            if let Some(f) = floor {
                self.alert_floors.insert(gid, f);
            }
            let (severity, _) = self.effective_suggestion(gid, &chain);
            self.severities.insert(gid, severity);
            if let Some(a) = auto {
                self.auto_titles.insert(gid, a);
            }
        }
    }

    /// Clears the carried findings whose deadline passed.
    fn expire_carried(&mut self, now: Timestamp) -> Vec<IncidentAction> {
        if self.carried.is_empty() {
            return Vec::new();
        }
        let grace = self.carry_grace;
        let mut due = Vec::new();
        for (key, deadline) in &mut self.carried {
            let d = *deadline.get_or_insert(now + grace);
            if d <= now {
                due.push(key.clone());
            }
        }
        let mut out = Vec::new();
        for key in due {
            self.carried.remove(&key);
            if let MemberKey::Finding { kind, subject } = key {
                out.extend(self.observe(Observation::Cleared { kind, subject, at: now }, now));
            }
        }
        out
    }

    /// Closes the group of an incident a person resolved
    /// (`Correlator::close`); later symptoms open (or reopen) and page.
    pub fn close_group(&mut self, group: GroupId, at: Timestamp) -> bool {
        let closed = self.correlator.close(group, at);
        if closed {
            self.forget(group);
        }
        closed
    }

    /// What the correlator changed since the last call, for the driver to
    /// save (`Correlator::take_changes`).
    pub fn take_correlator_changes(&mut self) -> CorrelatorChanges {
        self.correlator.take_changes()
    }

    /// The whole correlator as changes, for a full save (`Correlator::take_everything`).
    pub fn take_whole_correlator(&mut self) -> CorrelatorChanges {
        self.correlator.take_everything()
    }

    pub fn observe_signal(&mut self, signal: &Signal, now: Timestamp) -> Vec<IncidentAction> {
        if let Signal::Alert(alert) = signal {
            let services = self.alert_services(alert);
            return self.observe(Observation::Alert { alert: alert.clone(), services }, now);
        }
        let findings = self.detectors.observe(signal, now);
        let mut actions: Vec<IncidentAction> = findings.into_iter().flat_map(|f| self.observe(Observation::Fired(f), now)).collect();
        actions.extend(self.drain_cleared(now));
        actions
    }

    /// Feeds what the detectors report as cleared to the correlator, so
    /// telemetry-born incidents resolve after the hold-down.
    fn drain_cleared(&mut self, now: Timestamp) -> Vec<IncidentAction> {
        let cleared = self.detectors.take_cleared();
        cleared.into_iter().flat_map(|(kind, subject)| self.observe(Observation::Cleared { kind, subject, at: now }, now)).collect()
    }

    pub fn observe_finding(&mut self, finding: Finding, now: Timestamp) -> Vec<IncidentAction> {
        self.observe(Observation::Fired(finding), now)
    }

    pub fn observe_cleared(&mut self, kind: String, subject: Subject, now: Timestamp) -> Vec<IncidentAction> {
        self.observe(Observation::Cleared { kind, subject, at: now }, now)
    }

    /// Lets time pass: detectors that fire on silence, and hold-down resolution.
    pub fn tick(&mut self, now: Timestamp) -> Vec<IncidentAction> {
        let findings = self.detectors.tick(now);
        let mut actions: Vec<IncidentAction> = findings.into_iter().flat_map(|f| self.observe(Observation::Fired(f), now)).collect();
        actions.extend(self.drain_cleared(now));
        actions.extend(self.expire_carried(now));
        let events = self.correlator.tick(now);
        actions.extend(self.translate(events));
        actions
    }

    /// Services an alert is about: its `service`, `service_name`, `job` or
    /// `app` label, when that names a service in the topology or catalogue;
    /// otherwise the label value as given (it may name a service we have not
    /// seen traffic for yet).
    pub fn alert_services(&self, alert: &ExternalAlert) -> BTreeSet<ServiceName> {
        ExternalAlert::SERVICE_LABELS.iter().filter_map(|k| alert.labels.get(*k)).filter_map(|v| ServiceName::new(v.as_str()).ok()).take(1).collect()
    }

    fn observe(&mut self, obs: Observation, now: Timestamp) -> Vec<IncidentAction> {
        if !self.carried.is_empty() {
            // A carried finding that fires (or clears) again is the
            // detector's own again.
            let key = match &obs {
                Observation::Fired(f) => Some(MemberKey::Finding { kind: f.kind.clone(), subject: f.subject.clone() }),
                Observation::Cleared { kind, subject, .. } => Some(MemberKey::Finding { kind: kind.clone(), subject: subject.clone() }),
                Observation::Alert { .. } => None,
            };
            if let Some(k) = key {
                self.carried.remove(&k);
            }
        }
        let events = self.correlator.observe(obs, &self.topology, now);
        self.translate(events)
    }

    /// A symptom as its timeline event: the member, its evidence in words,
    /// and an alert's labels (at most `MAX_SYMPTOM_LABELS`, values clipped)
    /// for routing to match on.
    fn symptom(&self, group: GroupId, member: &MemberKey) -> IncidentEvent {
        let (member_text, evidence) = self.describe(group, member);
        let labels = self
            .correlator
            .group(group)
            .and_then(|g| g.members.get(member))
            .and_then(|m| m.alert.as_ref())
            .map(|a| a.labels.iter().take(MAX_SYMPTOM_LABELS).map(|(k, v)| (k.chars().take(128).collect(), v.chars().take(256).collect())).collect())
            .unwrap_or_default();
        IncidentEvent::SymptomAttached { member: member_text, evidence, labels }
    }

    fn describe(&self, group: GroupId, member: &MemberKey) -> (String, String) {
        let m = self.correlator.group(group).and_then(|g| g.members.get(member));
        let evidence = match m {
            Some(m) => match (&m.finding, &m.alert) {
                (Some(f), _) => {
                    let e = &f.evidence;
                    match e.baseline {
                        Some(b) => format!("{} = {:.4} (baseline {:.4}, strength {:.2}) since {}", e.measure, e.observed, b, f.strength, f.started_at),
                        None => format!("{} = {:.4} (strength {:.2}) since {}", e.measure, e.observed, f.strength, f.started_at),
                    }
                }
                // Named as the alert names itself (alertname, service, summary), not by fingerprint.
                (None, Some(a)) => format!("{} since {}", alert_title(a), a.starts_at),
                (None, None) => String::new(),
            },
            None => String::new(),
        };
        (member.to_string(), evidence)
    }

    /// The title an incident opened by `member` gets: what the alert says,
    /// or the finding's subject and condition with the diagnosis's origin.
    fn title(&self, group: GroupId, member: &MemberKey) -> String {
        let g = self.correlator.group(group);
        match g.and_then(|g| g.members.get(member)) {
            Some(Member { alert: Some(a), .. }) => alert_title(a),
            Some(Member { finding: Some(f), .. }) => finding_title(f, g.and_then(|g| g.chain.origins.first()).map(|o| &o.subject)),
            _ => member.to_string(),
        }
    }

    /// An alert member's own severity suggestion, if it carries one the map knows.
    fn alert_suggestion(&self, group: GroupId, member: &MemberKey) -> Option<(Severity, String)> {
        let alert = self.correlator.group(group)?.members.get(member)?.alert.as_ref()?;
        self.severity.suggest_for_alert(alert).map(|s| (s.severity, s.reason))
    }

    /// The most severe of the group's suggestions: flows and burn from its
    /// chain, and the alert floor.
    fn effective_suggestion(&self, group: GroupId, chain: &CausalChain) -> (Severity, String) {
        let flows = self.suggest(chain);
        match self.alert_floors.get(&group) {
            Some((s, reason)) if *s < flows.0 => (*s, reason.clone()),
            _ => flows,
        }
    }

    /// Raises the group's severity to the suggestion, or notes (once) a
    /// suggestion lower than the current severity without applying it.
    fn reconcile_severity(&mut self, group: GroupId, chain: &CausalChain, at: Timestamp, out: &mut Vec<IncidentAction>) {
        let Some(current) = self.severities.get(&group).copied() else { return };
        let (suggested, reason) = self.effective_suggestion(group, chain);
        if suggested < current {
            self.severities.insert(group, suggested);
            self.noted_lower.remove(&group);
            out.push(IncidentAction::Record {
                group,
                event: IncidentEvent::SeverityChanged { from: current, to: suggested, reason: format!("suggested: {reason}") },
                at,
            });
        } else if suggested > current && self.noted_lower.get(&group) != Some(&suggested) {
            self.noted_lower.insert(group, suggested);
            let text = format!("suggested {reason}; kept {current}: a suggestion never lowers the severity (a person can)");
            out.push(IncidentAction::Record { group, event: IncidentEvent::SystemNote { component: "severity".into(), text }, at });
        }
    }

    /// A finding-born incident's title follows the diagnosis's origin (the
    /// incident refuses the rename once a person set a title).
    fn retitle(&mut self, group: GroupId, chain: &CausalChain, at: Timestamp, out: &mut Vec<IncidentAction>) {
        let Some((member, last)) = self.auto_titles.get(&group) else { return };
        let Some(f) = self.correlator.group(group).and_then(|g| g.members.get(member)).and_then(|m| m.finding.as_ref()) else { return };
        let title = finding_title(f, chain.origins.first().map(|o| &o.subject));
        if title != *last {
            out.push(IncidentAction::Record { group, event: IncidentEvent::TitleChanged { title: title.clone(), automatic: true }, at });
            if let Some(entry) = self.auto_titles.get_mut(&group) {
                entry.1 = title;
            }
        }
    }

    fn forget(&mut self, group: GroupId) {
        self.severities.remove(&group);
        self.alert_floors.remove(&group);
        self.noted_lower.remove(&group);
        self.auto_titles.remove(&group);
    }

    fn suggest(&self, chain: &CausalChain) -> (Severity, String) {
        let flows: Vec<FlowName> = chain.impacted_flows.iter().map(|f| f.flow.clone()).collect();
        let burns: Vec<SloBurn> = chain
            .impacted_flows
            .iter()
            .filter_map(|f| f.burn_rate.map(|b| SloBurn { slo: format!("{} (from findings)", f.flow), flow: Some(f.flow.clone()), burn_rate: b }))
            .collect();
        let s = self.severity.suggest(&SeverityFacts { impacted_flows: &flows, burns: &burns });
        (s.severity, s.reason)
    }

    fn translate(&mut self, events: Vec<CorrelationEvent>) -> Vec<IncidentAction> {
        let mut out = Vec::new();
        for e in events {
            match e {
                CorrelationEvent::Opened { group, member, related_to, at } => {
                    let chain = self.correlator.group(group).map(|g| g.chain.clone()).unwrap_or_default();
                    if let Some(floor) = self.alert_suggestion(group, &member) {
                        self.alert_floors.insert(group, floor);
                    }
                    let (severity, reason) = self.effective_suggestion(group, &chain);
                    self.severities.insert(group, severity);
                    let title = self.title(group, &member);
                    if matches!(member, MemberKey::Finding { .. }) {
                        self.auto_titles.insert(group, (member.clone(), title.clone()));
                    }
                    let reopen = related_to.filter(|&previous| self.correlator.reopens(previous, at));
                    match reopen {
                        Some(previous) => {
                            out.push(IncidentAction::Reopen {
                                group,
                                previous,
                                reason: format!("{title} fired again soon after the resolve; reopened rather than opening another incident"),
                                at,
                            });
                            if severity < Severity::Sev3 {
                                // The reopened incident keeps its severity unless this suggestion raises it.
                                let event = IncidentEvent::SeverityChanged { from: Severity::Sev3, to: severity, reason: format!("suggested: {reason}") };
                                out.push(IncidentAction::Record { group, event, at });
                            }
                        }
                        None => {
                            out.push(IncidentAction::Open {
                                group,
                                title,
                                severity,
                                summary: Some("Opened by the correlator; the diagnosis on the timeline updates as symptoms arrive.".into()),
                                at,
                            });
                            if self.alert_floors.get(&group).is_some_and(|(s, _)| *s == severity) {
                                // Say why an alert-born incident has the severity it has.
                                let text = format!("opened at {reason}");
                                out.push(IncidentAction::Record { group, event: IncidentEvent::SystemNote { component: "severity".into(), text }, at });
                            }
                        }
                    }
                    let event = self.symptom(group, &member);
                    out.push(IncidentAction::Record { group, event, at });
                    if let Some(previous) = related_to.filter(|_| reopen.is_none()) {
                        out.push(IncidentAction::Link { group, previous, at });
                    }
                }
                CorrelationEvent::Joined { group, member, at } | CorrelationEvent::MemberRefired { group, member, at } => {
                    let raised = match self.alert_suggestion(group, &member) {
                        Some(s) if self.alert_floors.get(&group).is_none_or(|(floor, _)| s.0 < *floor) => {
                            self.alert_floors.insert(group, s);
                            true
                        }
                        _ => false,
                    };
                    let event = self.symptom(group, &member);
                    out.push(IncidentAction::Record { group, event, at });
                    if raised {
                        // Only when an alert raised the floor: a storm's
                        // thousands of alerts do not each recompute the chain.
                        let chain = self.correlator.group(group).map(|g| g.chain.clone()).unwrap_or_default();
                        self.reconcile_severity(group, &chain, at, &mut out);
                    }
                }
                CorrelationEvent::MemberCleared { group, member, at } => {
                    out.push(IncidentAction::Record { group, event: IncidentEvent::SymptomCleared { member: member.to_string() }, at });
                }
                CorrelationEvent::Merged { into, from, at } => {
                    // The floor of the merged group's alerts carries over.
                    if let Some(floor) = self.alert_floors.get(&from).cloned()
                        && self.alert_floors.get(&into).is_none_or(|(s, _)| floor.0 < *s)
                    {
                        self.alert_floors.insert(into, floor);
                    }
                    self.forget(from);
                    out.push(IncidentAction::Merge { into, from, at });
                }
                CorrelationEvent::DiagnosisChanged { group, chain, sentence, at } => {
                    let top = chain.origins.first();
                    let event = IncidentEvent::DiagnosisUpdated {
                        sentence,
                        origin: top.map(|o| o.subject.to_string()),
                        confidence_pct: top.map(|o| (o.confidence * 100.0).round().clamp(0.0, 100.0) as u8),
                        chain: chain.clone(),
                    };
                    out.push(IncidentAction::Record { group, event, at });
                    self.retitle(group, &chain, at, &mut out);
                    self.reconcile_severity(group, &chain, at, &mut out);
                }
                CorrelationEvent::Quiet { group, resolves_at, at } => {
                    out.push(IncidentAction::Record {
                        group,
                        event: IncidentEvent::SystemNote {
                            component: "correlator".into(),
                            text: format!("every symptom has cleared; resolves automatically at {resolves_at} unless a symptom returns"),
                        },
                        at,
                    });
                }
                CorrelationEvent::Resolved { group, at } => {
                    self.forget(group);
                    out.push(IncidentAction::Record {
                        group,
                        event: IncidentEvent::Resolved { note: Some("every symptom cleared and stayed clear for the hold-down period".into()) },
                        at,
                    });
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::{Evidence, FailureModel};
    use crate::ids::TeamId;
    use crate::model::{Flow, Interaction};
    use crate::time::Duration;

    fn svc(s: &str) -> ServiceName {
        ServiceName::new(s).unwrap()
    }
    fn edge(a: &str, b: &str) -> Interaction {
        Interaction { caller: svc(a), callee: svc(b), operation: String::new() }
    }
    fn t(s: i64) -> Timestamp {
        Timestamp::from_secs(1_800_000_000 + s)
    }
    fn f(kind: &str, subject: Subject, model: FailureModel, at: i64, observed: f64) -> Finding {
        Finding {
            kind: kind.into(),
            subject,
            failure_model: model,
            started_at: t(at),
            strength: 3.0,
            evidence: Evidence { measure: "m".into(), observed, baseline: None, threshold: None, window: Duration::from_secs(10), exemplar_trace_ids: vec![] },
        }
    }

    #[test]
    fn findings_become_one_incident_whose_severity_rises_with_flow_burn() {
        let checkout = FlowName::new("checkout").unwrap();
        let flow = Flow {
            name: checkout.clone(),
            owner: TeamId::new("payments").unwrap(),
            description: String::new(),
            interactions: vec![edge("web", "gateway"), edge("gateway", "fraud-check")],
        };
        let topo = Topology::new([edge("fraud-check", "fraud-db")], vec![flow]);
        let mut p = Pipeline::new(DetectorSet::empty(), CorrelatorConfig::default(), topo, SeverityDefinitions::standard(vec![checkout.clone()]));
        let pool = Subject::Resource { service: svc("fraud-check"), resource: "db-pool".into() };
        let mut actions = p.observe_finding(f("resource_exhaustion", pool.clone(), FailureModel::Exhaustion, 0, 1.0), t(0));
        actions.extend(p.observe_finding(f("slo_burn_rate", Subject::Flow { flow: checkout }, FailureModel::Unknown, 30, 16.0), t(30)));
        let kinds: Vec<String> = actions
            .iter()
            .map(|a| match a {
                IncidentAction::Open { group, severity, .. } => format!("open {group} {severity}"),
                IncidentAction::Record { group, event, .. } => format!("{} {group}", event.kind()),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(
            kinds,
            ["open g1 SEV2", "symptom_attached g1", "diagnosis_updated g1", "symptom_attached g1", "diagnosis_updated g1", "severity_changed g1",],
            "{actions:#?}"
        );
        let IncidentAction::Record { event: IncidentEvent::SeverityChanged { to, reason, .. }, .. } = &actions[5] else { panic!() };
        assert_eq!(*to, Severity::Sev1);
        assert!(reason.contains("critical flow fast burn"), "{reason}");
        // Clearing both and waiting out the hold-down resolves it.
        p.observe_cleared("resource_exhaustion".into(), pool, t(100));
        p.observe_cleared("slo_burn_rate".into(), Subject::Flow { flow: FlowName::new("checkout").unwrap() }, t(100));
        let done = p.tick(t(100 + 600));
        assert!(matches!(&done[..], [IncidentAction::Record { event: IncidentEvent::Resolved { .. }, .. }]), "{done:#?}");
    }
}

#[cfg(test)]
mod source_tests {
    //! What the source says names the incident and sets its severity.
    use super::*;
    use crate::finding::{Evidence, FailureModel};
    use crate::model::Interaction;
    use crate::signal::AlertState;
    use crate::time::Duration;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_secs(1_800_000_000 + s)
    }
    fn alert(name: &str, severity: &str, at: i64) -> Signal {
        let labels = [("alertname", name), ("service", "payments"), ("severity", severity)];
        Signal::Alert(ExternalAlert {
            source: "alertmanager".into(),
            fingerprint: format!("fp-{name}"),
            state: AlertState::Firing,
            summary: format!("{name} summary"),
            labels: labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            starts_at: t(at),
            ends_at: Some(t(at + 300)),
        })
    }
    fn pipeline() -> Pipeline {
        Pipeline::new(DetectorSet::empty(), CorrelatorConfig::default(), Topology::default(), SeverityDefinitions::standard(vec![]))
    }
    fn render(actions: &[IncidentAction]) -> Vec<String> {
        actions
            .iter()
            .map(|a| match a {
                IncidentAction::Open { title, severity, .. } => format!("open {severity} {title:?}"),
                IncidentAction::Record { event: IncidentEvent::SeverityChanged { from, to, reason }, .. } => format!("severity {from}→{to}: {reason}"),
                IncidentAction::Record { event: IncidentEvent::SystemNote { component, text }, .. } => format!("note {component}: {text}"),
                IncidentAction::Record { event: IncidentEvent::TitleChanged { title, .. }, .. } => format!("title {title:?}"),
                IncidentAction::Record { event, .. } => event.kind().to_owned(),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn a_critical_alert_opens_a_sev1_incident_named_by_its_alertname() {
        let mut p = pipeline();
        let raw = p.observe_signal(&alert("CheckoutErrors", "critical", 0), t(0));
        let evidence = raw.iter().find_map(|a| match a {
            IncidentAction::Record { event: IncidentEvent::SymptomAttached { evidence, .. }, .. } => Some(evidence.clone()),
            _ => None,
        });
        assert!(evidence.as_deref().is_some_and(|e| e.starts_with("CheckoutErrors on payments: CheckoutErrors summary since")), "{evidence:?}");
        let actions = render(&raw);
        assert_eq!(actions[0], "open SEV1 \"CheckoutErrors on payments: CheckoutErrors summary\"", "{actions:#?}");
        assert_eq!(actions[1], "note severity: opened at SEV1: alert CheckoutErrors has severity \"critical\" (alert_severities)");
    }

    #[test]
    fn alert_severities_take_the_highest_and_never_lower_silently() {
        let mut p = pipeline();
        let opened = render(&p.observe_signal(&alert("PaymentsSlow", "warning", 0), t(0)));
        assert_eq!(opened[0], "open SEV3 \"PaymentsSlow on payments: PaymentsSlow summary\"");
        let raised = render(&p.observe_signal(&alert("PaymentsDown", "critical", 10), t(10)));
        assert!(
            raised.contains(&"severity SEV3→SEV1: suggested: SEV1: alert PaymentsDown has severity \"critical\" (alert_severities)".to_owned()),
            "{raised:#?}"
        );
        // A later, lower alert neither lowers nor re-notes anything.
        let later = render(&p.observe_signal(&alert("PaymentsLatency", "error", 20), t(20)));
        assert!(!later.iter().any(|a| a.starts_with("severity")), "{later:#?}");
        // A configured map wins over the defaults.
        let mut defs = SeverityDefinitions::standard(vec![]);
        defs.alert_severities.insert("page".into(), Severity::Sev1);
        let mut p = Pipeline::new(DetectorSet::empty(), CorrelatorConfig::default(), Topology::default(), defs);
        assert!(render(&p.observe_signal(&alert("X", "page", 0), t(0)))[0].starts_with("open SEV1"));
    }

    #[test]
    fn a_reopened_incident_is_raised_by_a_more_severe_alert() {
        let config = CorrelatorConfig { reopen_window: Duration::from_mins(30), ..CorrelatorConfig::default() };
        let mut p = Pipeline::new(DetectorSet::empty(), config, Topology::default(), SeverityDefinitions::standard(vec![]));
        p.observe_signal(&alert("PaymentsSlow", "warning", 0), t(0));
        let group = p.correlator().groups().next().map(|g| g.id).unwrap();
        assert!(p.close_group(group, t(60)), "a person resolved it");
        let again = render(&p.observe_signal(&alert("PaymentsDown", "critical", 120), t(120)));
        assert!(again[0].starts_with("Reopen"), "{again:#?}");
        assert!(again[0].contains("PaymentsDown on payments: PaymentsDown summary fired again"), "titled, not by fingerprint: {again:#?}");
        assert_eq!(again[1], "severity SEV3→SEV1: suggested: SEV1: alert PaymentsDown has severity \"critical\" (alert_severities)");
    }

    #[test]
    fn a_lower_flow_suggestion_is_noted_not_applied() {
        let mut p = pipeline();
        p.observe_signal(&alert("PaymentsDown", "critical", 0), t(0));
        let mut out = Vec::new();
        let group = p.correlator().groups().next().map(|g| g.id).unwrap();
        p.alert_floors.clear(); // as if only the flows spoke now (SEV3)
        p.reconcile_severity(group, &CausalChain::default(), t(5), &mut out);
        p.reconcile_severity(group, &CausalChain::default(), t(6), &mut out);
        assert_eq!(
            render(&out),
            ["note severity: suggested SEV3: no severity rule matched (default); kept SEV1: a suggestion never lowers the severity (a person can)"],
            "noted once"
        );
    }

    #[test]
    fn a_telemetry_incident_names_the_interaction_and_follows_the_origin() {
        let svc = |s: &str| ServiceName::new(s).unwrap();
        let edge = |a: &str, b: &str| Interaction { caller: svc(a), callee: svc(b), operation: String::new() };
        let topo = Topology::new([edge("checkout", "payments"), edge("payments", "payments-db")], vec![]);
        let mut p = Pipeline::new(DetectorSet::empty(), CorrelatorConfig::default(), topo, SeverityDefinitions::standard(vec![]));
        let finding = |subject: Subject, kind: &str, at: i64, observed: f64| Finding {
            kind: kind.into(),
            subject,
            failure_model: FailureModel::Unknown,
            started_at: t(at),
            strength: 3.0,
            evidence: Evidence {
                measure: "error_ratio".into(),
                observed,
                baseline: Some(0.01),
                threshold: None,
                window: Duration::from_secs(10),
                exemplar_trace_ids: vec![],
            },
        };
        let opened =
            render(&p.observe_finding(finding(Subject::Interaction { interaction: edge("checkout", "payments") }, "error_rate_change", 0, 0.31), t(0)));
        assert_eq!(opened[0], "open SEV3 \"checkout → payments: errors 31 %\"", "{opened:#?}");
        // The database fails first and hardest: the origin moves there and the title says so.
        let db = finding(Subject::Resource { service: svc("payments-db"), resource: "connections".into() }, "resource_exhaustion", -30, 0.99);
        let later = render(&p.observe_finding(db, t(5)));
        assert!(later.contains(&"title \"checkout → payments: errors 31 %; origin payments-db/connections\"".to_owned()), "{later:#?}");
    }
}

#[cfg(test)]
mod clearing_tests {
    use super::*;
    use crate::model::Interaction;
    use crate::signal::EdgeWindow;
    use crate::time::Duration;

    fn window(i: i64, errors: u64) -> Signal {
        let svc = |s: &str| ServiceName::new(s).unwrap();
        Signal::Edge(EdgeWindow {
            interaction: Interaction { caller: svc("web"), callee: svc("api"), operation: String::new() },
            start: Timestamp::from_secs(1_800_000_000 + i * 10),
            length: Duration::from_secs(10),
            requests: 1000,
            errors,
            timeouts: 0,
            retries: 0,
            p50_ms: 20.0,
            p99_ms: 80.0 + (i % 3) as f64,
            in_flight: None,
            zones: Vec::new(),
            exemplar_trace_ids: Vec::new(),
        })
    }

    /// Detectors report when a condition clears; the correlator then
    /// resolves the telemetry-born incident after the hold-down.
    #[test]
    fn an_incident_from_edge_errors_resolves_after_they_clear() {
        let mut p = Pipeline::new(DetectorSet::standard(), CorrelatorConfig::default(), Topology::default(), SeverityDefinitions::standard(vec![]));
        let mut kinds = Vec::new();
        let mut last = Timestamp::EPOCH;
        for i in 0..80 {
            let errors = if (30..40).contains(&i) { 400 } else { (i % 2) as u64 };
            let s = window(i, errors);
            last = s.at();
            for a in p.observe_signal(&s, last) {
                kinds.push(match a {
                    IncidentAction::Open { .. } => "open".to_owned(),
                    IncidentAction::Record { event, .. } => event.kind().to_owned(),
                    other => format!("{other:?}"),
                });
            }
        }
        assert!(kinds.contains(&"open".to_owned()), "{kinds:?}");
        assert!(kinds.contains(&"symptom_cleared".to_owned()), "the error finding cleared: {kinds:?}");
        let resolved = p.tick(last + Duration::from_mins(11));
        assert!(resolved.iter().any(|a| matches!(a, IncidentAction::Record { event: IncidentEvent::Resolved { .. }, .. })), "{resolved:?}");
    }
}

#[cfg(test)]
mod restart_tests {
    use super::*;
    use crate::finding::{Evidence, FailureModel};
    use crate::model::Interaction;

    fn svc(s: &str) -> ServiceName {
        ServiceName::new(s).unwrap()
    }
    fn t(s: i64) -> Timestamp {
        Timestamp::from_secs(1_800_000_000 + s)
    }
    fn edge_errors(at: i64) -> Finding {
        Finding {
            kind: "error_rate_change".into(),
            subject: Subject::Interaction { interaction: Interaction { caller: svc("checkout"), callee: svc("payments"), operation: String::new() } },
            failure_model: FailureModel::Unknown,
            started_at: t(at),
            strength: 3.0,
            evidence: Evidence {
                measure: "error_ratio".into(),
                observed: 0.3,
                baseline: Some(0.01),
                threshold: None,
                window: Duration::from_secs(10),
                exemplar_trace_ids: vec![],
            },
        }
    }
    fn pipeline() -> Pipeline {
        Pipeline::new(DetectorSet::standard(), CorrelatorConfig::default(), Topology::default(), SeverityDefinitions::standard(vec![]))
    }

    /// Fresh detectors after a restart never clear a finding they did not
    /// fire, so a carried finding that does not fire again within the grace
    /// is cleared and its incident resolves after the hold-down.
    #[test]
    fn a_finding_carried_across_a_restart_that_does_not_fire_again_is_cleared() {
        let mut before = pipeline();
        before.observe_finding(edge_errors(0), t(0));
        let mut after = pipeline();
        after.restore_correlator(before.correlator().clone());
        assert_eq!(after.carried().count(), 1);
        assert!(after.tick(t(100)).is_empty(), "the grace starts at the first tick after the restart");
        let cleared = after.tick(t(100 + 300));
        assert!(cleared.iter().any(|a| matches!(a, IncidentAction::Record { event: IncidentEvent::SymptomCleared { .. }, .. })), "{cleared:#?}");
        assert_eq!(after.carried().count(), 0);
        let resolved = after.tick(t(400 + 600));
        assert!(resolved.iter().any(|a| matches!(a, IncidentAction::Record { event: IncidentEvent::Resolved { .. }, .. })), "{resolved:#?}");
    }

    /// A carried finding its detector fires again is the detector's own:
    /// it is not cleared at the deadline.
    #[test]
    fn a_carried_finding_that_fires_again_stays() {
        let mut before = pipeline();
        before.observe_finding(edge_errors(0), t(0));
        let mut after = pipeline();
        after.restore_correlator(before.correlator().clone());
        after.tick(t(100));
        after.observe_finding(edge_errors(0), t(150));
        assert_eq!(after.carried().count(), 0);
        assert!(after.tick(t(1000)).is_empty());
        assert!(after.correlator().open_groups().next().is_some_and(|g| g.members.values().all(|m| m.active)));
    }

    /// After a restart an alert still raises its incident: a critical alert
    /// joining a warning-born incident makes it SEV1 (the pipeline's
    /// per-group severities were lost with the process).
    #[test]
    fn after_a_restart_a_more_severe_alert_still_raises_the_incident() {
        use crate::signal::{AlertState, ExternalAlert};
        let alert = |fp: &str, severity: &str| {
            Signal::Alert(ExternalAlert {
                source: "alertmanager".into(),
                fingerprint: fp.into(),
                state: AlertState::Firing,
                summary: String::new(),
                labels: BTreeMap::from([
                    ("alertname".into(), "PaymentsErrors".into()),
                    ("service".into(), "payments".into()),
                    ("severity".into(), severity.into()),
                ]),
                starts_at: t(0),
                ends_at: None,
            })
        };
        let mut before = pipeline();
        let opened = before.observe_signal(&alert("a1", "warning"), t(0));
        assert!(opened.iter().any(|a| matches!(a, IncidentAction::Open { severity: Severity::Sev3, .. })), "{opened:#?}");
        let mut after = pipeline();
        after.restore_correlator(before.correlator().clone());
        let joined = after.observe_signal(&alert("a2", "critical"), t(10));
        assert!(
            joined.iter().any(|a| matches!(a, IncidentAction::Record { event: IncidentEvent::SeverityChanged { to: Severity::Sev1, .. }, .. })),
            "{joined:#?}"
        );
    }

    /// Findings of detectors that never report clears (a missed check-in)
    /// are not carried: only a person or their alert resolves them.
    #[test]
    fn fire_only_findings_are_not_carried() {
        let mut before = pipeline();
        let missed = Finding { kind: "missed_checkin".into(), subject: Subject::Service { service: svc("nightly-backup") }, ..edge_errors(0) };
        before.observe_finding(missed, t(0));
        let mut after = pipeline();
        after.restore_correlator(before.correlator().clone());
        assert_eq!(after.carried().count(), 0);
    }
}
