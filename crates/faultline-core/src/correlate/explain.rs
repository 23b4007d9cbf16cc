//! Diagnosis of one correlated group: ranked origin candidates with the
//! evidence behind each rank, the amplifiers on the path, impacted flows,
//! and the incident class and failure model.
//!
//! The method, in the open so a person can check it. Every subject with a
//! finding is a candidate. Its score adds four parts:
//! - **graph direction** (0.40): the share of the other anomalous services
//!   that call the candidate's service, directly or transitively — the most
//!   downstream anomaly explains the symptoms upstream of it;
//! - **not explained by a dependency** (0.20): one minus the share of other
//!   anomalous services the candidate itself calls;
//! - **onset** (0.25): earlier first-anomaly time ranks higher;
//! - **evidence** (0.15): how far past its threshold the strongest finding is,
//!   plus a prior for findings that name a cause (exhaustion, crash,
//!   partition, wrong answers) over those that name a mechanism (retries,
//!   timeouts) — mechanisms are amplifiers, not origins.
//!
//! Confidence is the candidate's share of the top-3 scores. Not here:
//! metric-series change-point analysis (that is `diagnose`, used for offline
//! root-cause datasets).

use std::collections::{BTreeMap, BTreeSet};

use crate::finding::{Amplifier, CausalChain, FailureModel, Finding, FlowImpact, IncidentClass, OriginCandidate, Subject};
use crate::ids::ServiceName;
use crate::time::Timestamp;

use super::digest::Digest;
use super::{Group, Topology, subject_services};

/// Finding kinds that describe a mechanism that multiplies load or delay.
pub const AMPLIFIER_KINDS: &[&str] = &["retry_amplification", "timeout_saturation", "queue_growth", "cache_collapse"];

fn mechanism(kind: &str) -> &'static str {
    match kind {
        "retry_amplification" => "retries",
        "timeout_saturation" => "timeouts saturating",
        "queue_growth" => "queue growing",
        "cache_collapse" => "cache expiry",
        _ => "amplification",
    }
}

/// The service a subject "is", for graph direction: an interaction is judged
/// at its callee (where the work happens), a resource at its owner.
fn primary_service(subject: &Subject) -> Option<&ServiceName> {
    match subject {
        Subject::Service { service } | Subject::Resource { service, .. } => Some(service),
        Subject::Interaction { interaction } => Some(&interaction.callee),
        Subject::Flow { .. } => None,
    }
}

fn cause_prior(f: &Finding) -> f64 {
    if AMPLIFIER_KINDS.contains(&f.kind.as_str()) && f.kind != "queue_growth" && f.kind != "cache_collapse" {
        return 0.0;
    }
    match f.failure_model {
        FailureModel::Crash | FailureModel::Partition | FailureModel::Byzantine | FailureModel::Exhaustion => 1.0,
        FailureModel::Unknown => 0.5,
    }
}

struct Candidate<'a> {
    subject: &'a Subject,
    onset: Timestamp,
    strongest: &'a Finding,
    prior: f64,
}

pub fn explain(group: &Group, topology: &Topology) -> CausalChain {
    explain_digested(group, &Digest::of(group), topology)
}

/// `explain` from the group's digest, which the correlator keeps as members
/// join: an alert storm puts thousands of alert members on a group and this
/// runs on every observation, so it reads the few members with findings
/// and, for alerts, their earliest onset per service — never every member.
pub(super) fn explain_digested(group: &Group, digest: &Digest, topology: &Topology) -> CausalChain {
    let findings: Vec<&Finding> = digest.finding_keys.iter().filter_map(|k| group.members.get(k)?.finding.as_ref()).collect();
    let findings = findings.as_slice();
    // Collect candidates: one per subject, earliest onset, strongest finding.
    let mut by_subject: BTreeMap<&Subject, Candidate<'_>> = BTreeMap::new();
    for &f in findings {
        if matches!(f.subject, Subject::Flow { .. }) {
            continue; // flows are impact, never origins
        }
        let c = by_subject.entry(&f.subject).or_insert(Candidate { subject: &f.subject, onset: f.started_at, strongest: f, prior: 0.0 });
        c.onset = c.onset.min(f.started_at);
        if f.strength > c.strongest.strength {
            c.strongest = f;
        }
        c.prior = c.prior.max(cause_prior(f));
    }
    // Alerts with mapped services are candidates at service level: one
    // candidate per service, at its earliest alert (each of a storm's alerts
    // is not a candidate).
    let alert_subjects: Vec<(Subject, Timestamp)> = digest.earliest_alerts().map(|(s, at)| (Subject::Service { service: s.clone() }, at)).collect();

    // Every service a finding touches is anomalous (an interaction finding
    // `web → gateway` is felt at both ends).
    let anomalous_owned: BTreeSet<ServiceName> = by_subject.keys().flat_map(|s| subject_services(s, topology)).collect();
    let anomalous: BTreeSet<&ServiceName> = anomalous_owned.iter().collect();
    let first_onset = by_subject.values().map(|c| c.onset).min();
    let last_onset = by_subject.values().map(|c| c.onset).max();
    let span = match (first_onset, last_onset) {
        (Some(a), Some(b)) => (b - a).as_millis().max(1) as f64,
        _ => 1.0,
    };
    let max_strength = by_subject.values().map(|c| c.strongest.strength).fold(1.0_f64, f64::max);

    let mut scored: Vec<(f64, OriginCandidate)> = Vec::new();
    for c in by_subject.values() {
        let Some(svc) = primary_service(c.subject) else { continue };
        let others: Vec<&&ServiceName> = anomalous.iter().filter(|o| **o != svc).collect();
        let n = others.len().max(1) as f64;
        let upstream_of_me = others.iter().filter(|o| topology.calls_transitively(o, svc)).count();
        let i_call = others.iter().filter(|o| topology.calls_transitively(svc, o)).count();
        let direction = if others.is_empty() { 1.0 } else { upstream_of_me as f64 / n };
        let unexplained = if others.is_empty() { 1.0 } else { 1.0 - i_call as f64 / n };
        let onset = first_onset.map_or(1.0, |f| 1.0 - ((c.onset - f).as_millis() as f64 / span));
        let strength = (c.strongest.strength.max(0.0).ln_1p() / max_strength.ln_1p()).clamp(0.0, 1.0);
        let evidence = 0.5 * strength + 0.5 * c.prior;
        let score = 0.40 * direction + 0.20 * unexplained + 0.25 * onset + 0.15 * evidence;
        let e = &c.strongest.evidence;
        let mut reasons = vec![
            format!("{upstream_of_me} of {} other anomalous services call it (directly or transitively)", others.len()),
            format!("it calls {i_call} of them"),
            match first_onset {
                Some(f) => format!("first anomaly at {} (+{:.0}s after the earliest)", c.onset, (c.onset - f).as_secs_f64()),
                None => format!("first anomaly at {}", c.onset),
            },
        ];
        reasons.push(match e.baseline {
            Some(b) => format!("{}: {} = {:.4} vs baseline {:.4} (strength {:.2})", c.strongest.kind, e.measure, e.observed, b, c.strongest.strength),
            None => format!("{}: {} = {:.4} (strength {:.2})", c.strongest.kind, e.measure, e.observed, c.strongest.strength),
        });
        reasons.push(format!(
            "score {score:.3} = 0.40×direction {direction:.2} + 0.20×unexplained {unexplained:.2} + 0.25×onset {onset:.2} + 0.15×evidence {evidence:.2}"
        ));
        scored.push((score, OriginCandidate { subject: c.subject.clone(), confidence: 0.0, reasons }));
    }
    for (s, at) in alert_subjects {
        if by_subject.contains_key(&s) {
            continue;
        }
        let onset = first_onset.map_or(1.0, |f| if at <= f { 1.0 } else { 0.5 });
        let score = 0.25 * onset + 0.05;
        scored.push((
            score,
            OriginCandidate { subject: s, confidence: 0.0, reasons: vec![format!("named by an external alert at {at}; no telemetry finding on it")] },
        ));
    }
    // Highest score first; ties broken by subject order for determinism.
    let rank = |scored: &mut Vec<(f64, OriginCandidate)>| {
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.subject.cmp(&b.1.subject)));
    };
    rank(&mut scored);
    // Some classes are defined by their mechanism: a stampede starts at the
    // cache whose hit ratio collapsed, a hot partition at the hot shard, a
    // split brain at the conflicting leaders, a DNS outage at resolution. Once
    // the class is clear, the subject carrying its defining finding ranks
    // first by that definition (its score is lifted just above the best),
    // whatever the graph says about the load it caused downstream.
    let preliminary_origin = scored.first().map(|(_, o)| o.subject.clone());
    let preliminary = classify(findings, preliminary_origin.as_ref(), topology);
    if let Some(kind) = defining_kind(preliminary) {
        let best = scored.first().map_or(0.0, |(s, _)| *s);
        for (score, o) in scored.iter_mut() {
            if findings.iter().any(|f| f.kind == kind && f.subject == o.subject) && *score < best + MECHANISM_MARGIN {
                o.reasons
                    .push(format!("carries {kind}, the defining finding of a {preliminary}: score lifted from {score:.3} to {:.3}", best + MECHANISM_MARGIN));
                *score = best + MECHANISM_MARGIN;
            }
        }
        rank(&mut scored);
    }
    let top: f64 = scored.iter().take(3).map(|(s, _)| s).sum::<f64>().max(f64::MIN_POSITIVE);
    let origins: Vec<OriginCandidate> = scored
        .into_iter()
        .take(5)
        .map(|(s, mut o)| {
            o.confidence = (s / top).clamp(0.0, 1.0);
            o
        })
        .collect();

    // Amplifiers: mechanism findings not at the origin. A queue or cache on
    // the origin's own service is part of the origin's failure, not something
    // that amplified it (interaction amplifiers into it, like retries, count).
    let origin_subject = origins.first().map(|o| &o.subject);
    let origin_service = origin_subject.and_then(primary_service);
    let mut amplifiers: Vec<Amplifier> = findings
        .iter()
        .filter(|f| AMPLIFIER_KINDS.contains(&f.kind.as_str()) && Some(&f.subject) != origin_subject)
        .filter(|f| matches!(f.subject, Subject::Interaction { .. }) || primary_service(&f.subject) != origin_service)
        .map(|f| Amplifier {
            subject: f.subject.clone(),
            mechanism: mechanism(&f.kind).to_owned(),
            // Retry ratio r means each request costs 1 + r attempts.
            factor: (f.kind == "retry_amplification").then(|| 1.0 + f.evidence.observed.max(0.0)),
        })
        .collect();
    amplifiers.sort_by(|a, b| a.subject.cmp(&b.subject).then_with(|| a.mechanism.cmp(&b.mechanism)));
    amplifiers.dedup_by(|a, b| a.subject == b.subject && a.mechanism == b.mechanism);

    // Impacted flows: flows with findings on them (with burn rate when it is
    // a burn-rate finding), then flows crossing anomalous services.
    let mut impacted: BTreeMap<crate::ids::FlowName, Option<f64>> = BTreeMap::new();
    for f in findings {
        if let Subject::Flow { flow } = &f.subject {
            let burn = f.kind.contains("burn").then_some(f.evidence.observed);
            let e = impacted.entry(flow.clone()).or_insert(None);
            *e = match (*e, burn) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
        }
    }
    // The group's services are its members' (kept up to date as they join
    // and merge), so they are not gathered from every member again.
    let services: BTreeSet<ServiceName> = group.services.iter().cloned().chain(findings.iter().flat_map(|f| subject_services(&f.subject, topology))).collect();
    for flow in topology.flows_touching(&services) {
        impacted.entry(flow.clone()).or_insert(None);
    }
    let impacted_flows = impacted.into_iter().map(|(flow, burn_rate)| FlowImpact { flow, burn_rate }).collect();

    let class = classify(findings, origins.first().map(|o| &o.subject), topology);
    let failure_model = match class {
        IncidentClass::Failure(m) => m,
        _ => origin_model(findings, origins.first().map(|o| &o.subject)).unwrap_or(FailureModel::Unknown),
    };
    CausalChain { origins, amplifiers, impacted_flows, class: Some(class), failure_model: Some(failure_model) }
}

/// How far above the best candidate a class-defining subject is placed.
const MECHANISM_MARGIN: f64 = 0.05;

/// The finding kind that defines a class, when one does.
fn defining_kind(class: IncidentClass) -> Option<&'static str> {
    match class {
        IncidentClass::CacheStampede => Some("cache_collapse"),
        IncidentClass::HotPartition => Some("load_skew"),
        IncidentClass::SplitBrain => Some("leader_conflict"),
        IncidentClass::DnsOutage | IncidentClass::DiscoveryFailure => Some("dependency_resolution_failure"),
        _ => None,
    }
}

/// The most specific failure model among the origin's own findings.
fn origin_model(findings: &[&Finding], origin: Option<&Subject>) -> Option<FailureModel> {
    let o = origin?;
    findings.iter().filter(|f| &f.subject == o).map(|f| f.failure_model).filter(|m| *m != FailureModel::Unknown).min()
}

/// Incident class from the mechanisms present (DESIGN.md §4), most specific
/// first. The rules, stated so they can be checked:
/// - a leader conflict is a split brain;
/// - a resolution failure is a DNS outage, or a discovery failure when the
///   subject is named like a discovery system (`discovery`, `registry`,
///   `consul`, `eureka`);
/// - a cache hit-ratio collapse is a stampede; shard load skew a hot partition;
/// - retries: a cascade when saturation climbed above the origin's service
///   (an amplifier — retries, timeouts, queue growth — whose saturated callee
///   calls the origin), else a retry storm confined to the origin's edge;
/// - queue growth is a queue overload unless a resource of the same service
///   ran out (then the queue is a symptom of exhaustion);
/// - otherwise the failure model: the origin's own findings decide, except
///   that errors with no slowdown anywhere on the origin mean refused
///   connections (crash), and an edge timing out while its callee shows no
///   saturation of its own means the network between them (partition).
fn classify(findings: &[&Finding], origin: Option<&Subject>, topology: &Topology) -> IncidentClass {
    let kinds: BTreeSet<&str> = findings.iter().map(|f| f.kind.as_str()).collect();
    if kinds.contains("leader_conflict") {
        return IncidentClass::SplitBrain;
    }
    if let Some(f) = findings.iter().find(|f| f.kind == "dependency_resolution_failure") {
        let name = f.subject.to_string().to_lowercase();
        return if ["discovery", "registry", "consul", "eureka"].iter().any(|n| name.contains(n)) {
            IncidentClass::DiscoveryFailure
        } else {
            IncidentClass::DnsOutage
        };
    }
    if kinds.contains("cache_collapse") {
        return IncidentClass::CacheStampede;
    }
    if kinds.contains("load_skew") {
        return IncidentClass::HotPartition;
    }
    let origin_service = origin.and_then(primary_service);
    if kinds.contains("retry_amplification") {
        let depth = origin_service.map_or(0, |o| {
            findings
                .iter()
                .filter(|f| AMPLIFIER_KINDS.contains(&f.kind.as_str()))
                .filter_map(|f| primary_service(&f.subject))
                .filter(|s| topology.calls_transitively(s, o))
                .filter_map(|s| topology.distance(s, o, 8))
                .max()
                .unwrap_or(0)
        });
        return if depth >= 1 { IncidentClass::CascadingFailure } else { IncidentClass::RetryStorm };
    }
    let exhausted: BTreeSet<&ServiceName> = findings.iter().filter(|f| f.kind == "resource_exhaustion").filter_map(|f| primary_service(&f.subject)).collect();
    if findings.iter().any(|f| f.kind == "queue_growth" && primary_service(&f.subject).is_some_and(|s| !exhausted.contains(s))) {
        return IncidentClass::QueueOverload;
    }
    let Some(o) = origin else { return IncidentClass::Failure(FailureModel::Unknown) };
    let on_origin: Vec<&Finding> = findings.iter().copied().filter(|f| &f.subject == o).collect();
    if let Some(m) = on_origin.iter().map(|f| f.failure_model).filter(|m| *m != FailureModel::Unknown && *m != FailureModel::Exhaustion).min() {
        return IncidentClass::Failure(m);
    }
    let slowed = |s: &Subject| findings.iter().any(|f| &f.subject == s && matches!(f.kind.as_str(), "latency_change" | "timeout_saturation"));
    if on_origin.iter().any(|f| f.kind == "error_rate_change") && !slowed(o) {
        return IncidentClass::Failure(FailureModel::Crash);
    }
    if let Subject::Interaction { interaction } = o {
        let callee_saturated =
            findings.iter().any(|f| matches!(&f.subject, Subject::Service { service } | Subject::Resource { service, .. } if *service == interaction.callee));
        if slowed(o) && !callee_saturated && exhausted.is_empty() {
            return IncidentClass::Failure(FailureModel::Partition);
        }
    }
    IncidentClass::Failure(origin_model(findings, Some(o)).unwrap_or(FailureModel::Unknown))
}

/// Whether a new chain is worth a timeline entry: the top origin, class,
/// failure model, amplifier set, impacted flows or their burn changed. Confidence
/// wobble alone is not news.
pub fn materially_differs(old: &CausalChain, new: &CausalChain) -> bool {
    let amps = |c: &CausalChain| c.amplifiers.iter().map(|a| (a.subject.clone(), a.mechanism.clone())).collect::<Vec<_>>();
    // Burn rates compared in whole multiples: 14.2× → 14.9× is not news, 1× → 14× is.
    let flows = |c: &CausalChain| c.impacted_flows.iter().map(|f| (f.flow.clone(), f.burn_rate.map(|b| b.floor() as i64))).collect::<Vec<_>>();
    old.origins.first().map(|o| &o.subject) != new.origins.first().map(|o| &o.subject)
        || old.class != new.class
        || old.failure_model != new.failure_model
        || amps(old) != amps(new)
        || flows(old) != flows(new)
}
