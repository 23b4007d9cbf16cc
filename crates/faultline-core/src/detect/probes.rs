//! Probe-driven detectors: per-probe failure/success thresholds (Gatus
//! style, classified by what failed), the cross-location probe matrix that
//! tells a network partition from an outage, canary-vs-baseline comparison
//! for Byzantine (alive but wrong) behaviour, and vanished telemetry sources.
//!
//! Not here: running probes or evaluating their conditions (see `probe`).

use crate::bounded::LruMap;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::hysteresis::{CLEAR_WINDOWS, Hysteresis, HysteresisConfig, RobustBaseline, Transition, median_in_place};
use super::{Detector, MAX_TRACKED_KEYS, finding, literal_service, service_subject};
use crate::finding::{FailureModel, Finding, Subject};
use crate::signal::{ProbeResult, Signal};
use crate::time::{Duration, Timestamp};

/// What a failed probe says about the failure model.
pub fn classify_probe_failure(p: &ProbeResult) -> FailureModel {
    let text = p.failures.join(" ").to_ascii_uppercase();
    if text.contains("[CONNECTED]") || text.contains("CONNECT") || text.contains("REFUSED") || p.response_ms.is_none() {
        FailureModel::Crash
    } else if text.contains("[BODY]") || text.contains("LEN(") || text.contains("HAS(") || text.contains("[CONTEXT]") {
        FailureModel::Byzantine
    } else if text.contains("[RESPONSE_TIME]") {
        FailureModel::Exhaustion
    } else {
        FailureModel::Unknown
    }
}

#[derive(Clone, Debug, Default)]
struct Streak {
    failures: u32,
    successes: u32,
    firing: bool,
    first_failure: Option<Timestamp>,
}

/// One probe from one location: fires after `failure_threshold` consecutive
/// failures, clears after `success_threshold` consecutive successes (Gatus'
/// defaults 3 and 2) — count-based hysteresis.
#[derive(Clone, Debug)]
pub struct ProbeFailureDetector {
    pub failure_threshold: u32,
    pub success_threshold: u32,
    streaks: LruMap<(String, String), Streak>,
}

impl Default for ProbeFailureDetector {
    fn default() -> Self {
        ProbeFailureDetector { failure_threshold: 3, success_threshold: 2, streaks: LruMap::new(MAX_TRACKED_KEYS) }
    }
}

impl Detector for ProbeFailureDetector {
    fn reads_edges(&self) -> bool {
        false
    }
    fn name(&self) -> &'static str {
        "probe_failing"
    }
    fn evicted(&self) -> u64 {
        self.streaks.evicted()
    }
    fn observe(&mut self, signal: &Signal, _now: Timestamp) -> Vec<Finding> {
        let Signal::Probe(p) = signal else { return Vec::new() };
        let s = self.streaks.get_or_insert_with((p.probe.clone(), p.location.clone()), Streak::default);
        if p.success {
            s.failures = 0;
            s.successes += 1;
            if s.firing && s.successes >= self.success_threshold {
                s.firing = false;
            }
            if !s.firing {
                s.first_failure = None;
            }
            return Vec::new();
        }
        s.successes = 0;
        s.failures += 1;
        s.first_failure.get_or_insert(p.at);
        if s.firing || s.failures < self.failure_threshold {
            return Vec::new();
        }
        s.firing = true;
        let subject = match &p.target {
            Some(t) => Subject::Resource { service: t.clone(), resource: format!("probe {}", p.probe) },
            None => Subject::Resource { service: literal_service("probes"), resource: p.probe.clone() },
        };
        let mut f = finding(
            "probe_failing",
            subject,
            classify_probe_failure(p),
            s.first_failure.unwrap_or(p.at),
            s.failures as f64 / self.failure_threshold as f64,
            "consecutive_failures",
            s.failures as f64,
            None,
            Some(self.failure_threshold as f64),
            p.at - s.first_failure.unwrap_or(p.at),
        );
        f.evidence.measure = format!("consecutive_failures from {} ({})", p.location, p.failures.join("; "));
        vec![f]
    }
}

/// A cross-location probe matrix. Each probe is mapped to the location it
/// targets; a partition between A and B is: A→B failing while A→A and B→B
/// (each side's local probes) pass. Everything failing is an outage, not a
/// partition, and is left to `ProbeFailureDetector`.
#[derive(Clone, Debug)]
pub struct PartitionDetector {
    /// probe name → the location it targets.
    pub targets: BTreeMap<String, String>,
    /// Results older than this are ignored.
    pub stale_after: Duration,
    /// Consecutive cross failures needed (and successes to clear).
    pub failure_threshold: u32,
    pub success_threshold: u32,
    /// (from, to) → (last at, consecutive failures, consecutive successes).
    cells: LruMap<(String, String), (Timestamp, u32, u32)>,
    active: BTreeSet<(String, String)>,
}

impl PartitionDetector {
    pub fn new(targets: BTreeMap<String, String>) -> PartitionDetector {
        PartitionDetector {
            targets,
            stale_after: Duration::from_mins(5),
            failure_threshold: 2,
            success_threshold: 2,
            cells: LruMap::new(MAX_TRACKED_KEYS),
            active: BTreeSet::new(),
        }
    }
    fn healthy(&self, loc: &str, now: Timestamp) -> bool {
        matches!(self.cells.get(&(loc.to_owned(), loc.to_owned())), Some((at, 0, s)) if *s > 0 && now - *at <= self.stale_after)
    }
}

impl Detector for PartitionDetector {
    fn reads_edges(&self) -> bool {
        false
    }
    fn name(&self) -> &'static str {
        "network_partition"
    }
    fn evicted(&self) -> u64 {
        self.cells.evicted()
    }
    fn observe(&mut self, signal: &Signal, now: Timestamp) -> Vec<Finding> {
        let Signal::Probe(p) = signal else { return Vec::new() };
        let Some(to) = self.targets.get(&p.probe).cloned() else { return Vec::new() };
        let key = (p.location.clone(), to.clone());
        let cell = self.cells.get_or_insert_with(key.clone(), || (p.at, 0, 0));
        cell.0 = p.at;
        if p.success {
            cell.1 = 0;
            cell.2 += 1;
        } else {
            cell.1 += 1;
            cell.2 = 0;
        }
        let mut out = Vec::new();
        // Re-evaluate every cross pair this result can affect.
        let pairs: Vec<(String, String)> = self.cells.keys().filter(|(a, b)| a != b).cloned().collect();
        for (a, b) in pairs {
            let Some(&(at, fails, succ)) = self.cells.get(&(a.clone(), b.clone())) else { continue };
            let fresh = now - at <= self.stale_after;
            let pkey = if a < b { (a.clone(), b.clone()) } else { (b.clone(), a.clone()) };
            if self.active.contains(&pkey) {
                if succ >= self.success_threshold {
                    let reverse_ok = self.cells.get(&(b.clone(), a.clone())).is_none_or(|c| c.1 == 0);
                    if reverse_ok {
                        self.active.remove(&pkey);
                    }
                }
                continue;
            }
            if fresh && fails >= self.failure_threshold && self.healthy(&a, now) && self.healthy(&b, now) {
                self.active.insert(pkey.clone());
                let reverse = self.cells.get(&(b.clone(), a.clone())).map(|c| c.1 > 0);
                let mut f = finding(
                    "network_partition",
                    Subject::Resource { service: p.target.clone().unwrap_or_else(|| literal_service("network")), resource: format!("{}↔{}", pkey.0, pkey.1) },
                    FailureModel::Partition,
                    at,
                    fails as f64 / self.failure_threshold as f64,
                    "cross_location_consecutive_failures",
                    fails as f64,
                    Some(0.0),
                    Some(self.failure_threshold as f64),
                    self.stale_after,
                );
                f.evidence.measure = format!(
                    "{a}→{b} failing {fails}x while {a}→{a} and {b}→{b} pass{}",
                    match reverse {
                        Some(true) => format!("; {b}→{a} failing too"),
                        Some(false) => format!("; {b}→{a} passes (asymmetric)"),
                        None => String::new(),
                    }
                );
                out.push(f);
            }
        }
        out
    }
}

/// Canary vs baseline: the same metric from both cohorts (label `role` or
/// `deployment` = `canary` / `baseline`); fires when the canary's recent
/// median departs from the baseline's by more than `k` robust deviations
/// (and a relative floor), i.e. answers changed while both are "up".
#[derive(Clone, Debug)]
pub struct CanaryDetector {
    pub k: f64,
    pub relative_floor: f64,
    pub window: usize,
    pub hysteresis: HysteresisConfig,
    cohorts: LruMap<(String, String), (VecDeque<f64>, RobustBaseline, Hysteresis)>,
}

impl Default for CanaryDetector {
    fn default() -> Self {
        CanaryDetector {
            k: 4.0,
            relative_floor: 0.1,
            window: 5,
            hysteresis: HysteresisConfig::counted(1.0, 0.5, 1, CLEAR_WINDOWS),
            cohorts: LruMap::new(MAX_TRACKED_KEYS),
        }
    }
}

impl Detector for CanaryDetector {
    fn reads_edges(&self) -> bool {
        false
    }
    fn name(&self) -> &'static str {
        "canary_divergence"
    }
    fn evicted(&self) -> u64 {
        self.cohorts.evicted()
    }
    fn observe(&mut self, signal: &Signal, now: Timestamp) -> Vec<Finding> {
        let Signal::Metric(m) = signal else { return Vec::new() };
        let role = m.labels.get("role").or_else(|| m.labels.get("deployment")).map(String::as_str);
        if !matches!(role, Some("canary" | "baseline")) {
            return Vec::new();
        }
        let svc = m.service.as_ref().map(|s| s.as_str().to_owned()).unwrap_or_default();
        let key = (svc.clone(), crate::bounded::clip(&m.name, crate::bounded::MAX_KEY_BYTES).to_owned());
        let window = self.window;
        let entry = self.cohorts.get_or_insert_with(key, || (VecDeque::new(), RobustBaseline::new(30, 5), Hysteresis::default()));
        match role {
            Some("baseline") => {
                entry.1.push(m.value);
                Vec::new()
            }
            Some("canary") => {
                if entry.0.len() == window {
                    entry.0.pop_front();
                }
                entry.0.push_back(m.value);
                let Some((base, mad)) = entry.1.stats() else { return Vec::new() };
                if entry.0.len() < 3 {
                    return Vec::new();
                }
                let mut c: Vec<f64> = entry.0.iter().copied().collect();
                let canary = median_in_place(&mut c);
                let scale = (self.k * mad).max(self.relative_floor * base.abs()).max(1e-9);
                let value = (canary - base).abs() / scale;
                match entry.2.update(&self.hysteresis, value, now) {
                    Transition::Fired { since } => {
                        let Some(subject) = service_subject(&svc) else { return Vec::new() };
                        let mut f = finding(
                            "canary_divergence",
                            subject,
                            FailureModel::Byzantine,
                            since,
                            value,
                            &format!("canary_median_{}", m.name),
                            canary,
                            Some(base),
                            Some(base + scale),
                            Duration::ZERO,
                        );
                        f.evidence.measure = format!("canary median of {} vs baseline median", m.name);
                        vec![f]
                    }
                    _ => Vec::new(),
                }
            }
            _ => Vec::new(),
        }
    }
}

/// A service that reported metrics regularly and then went silent for more
/// than `factor` × its usual interval (at least `min_silence`).
#[derive(Clone, Debug)]
pub struct SourceVanishedDetector {
    pub factor: f64,
    pub min_silence: Duration,
    seen: LruMap<String, (Timestamp, RobustBaseline, bool)>,
}

impl Default for SourceVanishedDetector {
    fn default() -> Self {
        SourceVanishedDetector { factor: 3.0, min_silence: Duration::from_mins(2), seen: LruMap::new(MAX_TRACKED_KEYS) }
    }
}

impl Detector for SourceVanishedDetector {
    fn reads_edges(&self) -> bool {
        false
    }
    fn name(&self) -> &'static str {
        "telemetry_vanished"
    }
    fn evicted(&self) -> u64 {
        self.seen.evicted()
    }
    fn observe(&mut self, signal: &Signal, _now: Timestamp) -> Vec<Finding> {
        let Signal::Metric(m) = signal else { return Vec::new() };
        let Some(svc) = &m.service else { return Vec::new() };
        let e = self.seen.get_or_insert_with(svc.as_str().to_owned(), || (m.at, RobustBaseline::new(20, 3), false));
        if m.at > e.0 {
            e.1.push((m.at - e.0).as_millis() as f64);
            e.0 = m.at;
            e.2 = false;
        }
        Vec::new()
    }
    fn tick(&mut self, now: Timestamp) -> Vec<Finding> {
        let mut out = Vec::new();
        for (svc, (last, gaps, reported)) in self.seen.iter_mut() {
            let Some((gap, _)) = gaps.stats() else { continue };
            let limit = Duration::from_millis((gap * self.factor) as i64).max(self.min_silence);
            if *reported || now - *last <= limit {
                continue;
            }
            *reported = true;
            let Some(subject) = service_subject(svc) else { continue };
            out.push(finding(
                "telemetry_vanished",
                subject,
                FailureModel::Crash,
                *last + limit,
                (now - *last).as_secs_f64() / limit.as_secs_f64(),
                "seconds_silent",
                (now - *last).as_secs_f64(),
                Some(gap / 1000.0),
                Some(limit.as_secs_f64()),
                limit,
            ));
        }
        out
    }
}

/// Wrong answers from a service that is otherwise up (Byzantine): counts
/// `wrong_answers` against `answers` (per service, optionally per `caller`
/// label) — what semantic checks, checksum comparisons or a simulator's
/// ground truth report — or a ready-made `wrong_answer_ratio` gauge. Fires
/// when the ratio exceeds max(`min_ratio`, baseline + 4 MAD).
#[derive(Clone, Debug)]
pub struct WrongAnswerDetector {
    pub min_ratio: f64,
    pub hysteresis: HysteresisConfig,
    state: LruMap<(String, String), WrongState>,
}

#[derive(Clone, Debug)]
struct WrongState {
    answers: Option<(Timestamp, f64)>,
    wrong: Option<(Timestamp, f64)>,
    base: RobustBaseline,
    h: Hysteresis,
}

impl Default for WrongAnswerDetector {
    fn default() -> Self {
        WrongAnswerDetector { min_ratio: 0.01, hysteresis: HysteresisConfig::counted(1.0, 0.5, 1, CLEAR_WINDOWS), state: LruMap::new(MAX_TRACKED_KEYS) }
    }
}

impl Detector for WrongAnswerDetector {
    fn reads_edges(&self) -> bool {
        false
    }
    fn name(&self) -> &'static str {
        "wrong_answers"
    }
    fn evicted(&self) -> u64 {
        self.state.evicted()
    }
    fn observe(&mut self, signal: &Signal, now: Timestamp) -> Vec<Finding> {
        let Signal::Metric(m) = signal else { return Vec::new() };
        if !matches!(m.name.as_str(), "wrong_answers" | "answers" | "wrong_answer_ratio") {
            return Vec::new();
        }
        let svc = m.service.as_ref().map(|s| s.as_str().to_owned()).unwrap_or_default();
        let caller = m.labels.get("caller").cloned().unwrap_or_default();
        let st = self.state.get_or_insert_with((svc.clone(), caller.clone()), || WrongState {
            answers: None,
            wrong: None,
            base: RobustBaseline::new(60, 5),
            h: Hysteresis::default(),
        });
        let ratio = match m.name.as_str() {
            "wrong_answer_ratio" => m.value,
            "answers" => {
                st.answers = Some((m.at, m.value));
                match st.wrong {
                    Some((t, w)) if t == m.at && m.value > 0.0 => w / m.value,
                    _ => return Vec::new(),
                }
            }
            _ => {
                st.wrong = Some((m.at, m.value));
                match st.answers {
                    Some((t, a)) if t == m.at && a > 0.0 => m.value / a,
                    _ => return Vec::new(),
                }
            }
        };
        let (base, mad) = st.base.stats().unwrap_or((0.0, 0.0));
        let limit = self.min_ratio.max(base + 4.0 * mad);
        let value = ratio / limit;
        let quiet = matches!(st.h.state, super::hysteresis::HState::Quiet);
        let t = st.h.update(&self.hysteresis, value, now);
        if quiet && matches!(st.h.state, super::hysteresis::HState::Quiet) {
            st.base.push(ratio);
        }
        let Transition::Fired { since } = t else { return Vec::new() };
        let Some(subject) = resource_or_service(&svc, &caller) else { return Vec::new() };
        let mut f =
            finding("wrong_answers", subject, FailureModel::Byzantine, since, value, "wrong_answer_ratio", ratio, Some(base), Some(limit), Duration::ZERO);
        if !caller.is_empty() {
            f.evidence.measure = format!("wrong_answer_ratio (as seen by {caller})");
        }
        vec![f]
    }
}

fn resource_or_service(service: &str, caller: &str) -> Option<Subject> {
    let callee = crate::ids::ServiceName::new(service).ok()?;
    match crate::ids::ServiceName::new(caller) {
        Ok(c) => Some(Subject::Interaction { interaction: crate::model::Interaction { caller: c, callee, operation: String::new() } }),
        Err(_) => Some(Subject::Service { service: callee }),
    }
}
