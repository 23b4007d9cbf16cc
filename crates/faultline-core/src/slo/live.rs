//! The live SLO engine: `SloMonitor` is a sans-IO detector that binds one
//! `SloSpec` to interaction windows (its service, flow interactions or one
//! interaction), keeps a bounded series, and fires a `slo_burn` finding per
//! severity when a multiwindow pair trips — the same window and threshold
//! semantics as `eval_series` (which `faultline slo eval` uses).
//!
//! Not here: storage of long histories (the buffer holds the longest window
//! and the period is summarised from it) or notification.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use super::eval::SeriesRow;
use super::spec::{SloSpec, SloTarget};
use super::windows::AlertSeverity;
use crate::detect::hysteresis::{Hysteresis, HysteresisConfig, Transition};
use crate::detect::{Detector, finding};
use crate::finding::{FailureModel, Finding, Subject};
use crate::ids::{FlowName, ServiceName};
use crate::model::Interaction;
use crate::signal::Signal;
use crate::time::{Duration, Timestamp};

/// Current burn of one pair, for `GET /api/v1/slos`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairBurn {
    pub name: String,
    pub severity: AlertSeverity,
    pub short: Duration,
    pub long: Duration,
    pub factor: f64,
    pub burn_short: Option<f64>,
    pub burn_long: Option<f64>,
    pub firing: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SloStatus {
    pub slo: String,
    pub objective: f64,
    /// Burn over the buffered part of the period, and the budget it leaves
    /// if that burn held for the whole period.
    pub burn_rate: Option<f64>,
    pub budget_remaining: f64,
    pub pairs: Vec<PairBurn>,
}

/// Burn of every pair at the last row of `rows` (windows `(t - w, t]`).
pub fn burn_at_end(spec: &SloSpec, rows: &VecDeque<SeriesRow>) -> Vec<(Option<f64>, Option<f64>, bool)> {
    let eb = spec.error_budget();
    let Some(last) = rows.back() else { return spec.windows.pairs.iter().map(|_| (None, None, false)).collect() };
    let ratio = |w: Duration| -> Option<f64> {
        let (mut bad, mut total) = (0.0, 0.0);
        for r in rows.iter().rev() {
            if r.at <= last.at - w {
                break;
            }
            bad += r.bad;
            total += r.total;
        }
        (total > 0.0).then(|| bad / total)
    };
    spec.windows
        .pairs
        .iter()
        .map(|p| {
            let thr = spec.threshold(p.factor);
            let (rs, rl) = (ratio(p.short), ratio(p.long));
            let cond = matches!((rs, rl), (Some(a), Some(b)) if a > thr && b > thr);
            (rs.map(|r| r / eb), rl.map(|r| r / eb), cond)
        })
        .collect()
}

/// One SLO, live.
#[derive(Clone, Debug)]
pub struct SloMonitor {
    pub spec: SloSpec,
    /// Interactions that make up a flow target (ignored for other targets).
    pub flow_interactions: Vec<Interaction>,
    rows: VecDeque<SeriesRow>,
    /// Window end → row index being accumulated (several edges per window).
    keep: Duration,
    pairs: Vec<Hysteresis>,
    severities: BTreeMap<AlertSeverity, bool>,
}

impl SloMonitor {
    pub fn new(spec: SloSpec) -> SloMonitor {
        let keep = spec.windows.distinct_windows().last().copied().unwrap_or(Duration::from_mins(60));
        let n = spec.windows.pairs.len();
        SloMonitor { spec, flow_interactions: Vec::new(), rows: VecDeque::new(), keep, pairs: vec![Hysteresis::default(); n], severities: BTreeMap::new() }
    }
    pub fn with_flow(mut self, interactions: Vec<Interaction>) -> SloMonitor {
        self.flow_interactions = interactions;
        self
    }

    fn matches(&self, i: &Interaction) -> bool {
        match &self.spec.target {
            SloTarget::Service { service } => i.callee.as_str() == service,
            SloTarget::Interaction { caller, callee } => i.caller.as_str() == caller && i.callee.as_str() == callee,
            SloTarget::Flow { .. } => self.flow_interactions.iter().any(|f| f.caller == i.caller && f.callee == i.callee),
        }
    }

    fn subject(&self) -> Option<Subject> {
        Some(match &self.spec.target {
            SloTarget::Service { service } => Subject::Service { service: ServiceName::new(service.clone()).ok()? },
            SloTarget::Flow { flow } => Subject::Flow { flow: FlowName::new(flow.clone()).ok()? },
            SloTarget::Interaction { caller, callee } => Subject::Interaction {
                interaction: Interaction {
                    caller: ServiceName::new(caller.clone()).ok()?,
                    callee: ServiceName::new(callee.clone()).ok()?,
                    operation: String::new(),
                },
            },
        })
    }

    /// Adds events to the series (rows are merged per timestamp).
    pub fn record(&mut self, at: Timestamp, bad: f64, total: f64) {
        match self.rows.back_mut() {
            Some(r) if r.at == at => {
                r.bad += bad;
                r.total += total;
            }
            Some(r) if r.at > at => {} // late data for a closed window: dropped
            _ => self.rows.push_back(SeriesRow { at, bad, total }),
        }
        while self.rows.front().is_some_and(|f| f.at <= at - self.keep) {
            self.rows.pop_front();
        }
    }

    pub fn status(&self) -> SloStatus {
        let burns = burn_at_end(&self.spec, &self.rows);
        let (bad, total) = self.rows.iter().fold((0.0, 0.0), |(b, t), r| (b + r.bad, t + r.total));
        let burn = (total > 0.0).then(|| bad / total / self.spec.error_budget());
        let covered = match (self.rows.front(), self.rows.back()) {
            (Some(a), Some(b)) => (b.at - a.at).as_millis() as f64,
            _ => 0.0,
        };
        let share = (covered / self.spec.period().as_millis() as f64).min(1.0);
        SloStatus {
            slo: self.spec.name.clone(),
            objective: self.spec.objective.ratio(),
            burn_rate: burn,
            budget_remaining: 1.0 - burn.unwrap_or(0.0) * share,
            pairs: self
                .spec
                .windows
                .pairs
                .iter()
                .zip(burns)
                .zip(&self.pairs)
                .map(|((p, (bs, bl, _)), h)| PairBurn {
                    name: p.name.clone(),
                    severity: p.severity,
                    short: p.short,
                    long: p.long,
                    factor: p.factor,
                    burn_short: bs,
                    burn_long: bl,
                    firing: h.is_firing(),
                })
                .collect(),
        }
    }

    /// Re-evaluates the pairs at the last row (on the row's own timestamp, as
    /// `eval_series` does); returns newly fired severities.
    fn evaluate(&mut self) -> Vec<Finding> {
        let Some(now) = self.rows.back().map(|r| r.at) else { return Vec::new() };
        let burns = burn_at_end(&self.spec, &self.rows);
        let mut out = Vec::new();
        let mut firing_now: BTreeMap<AlertSeverity, Option<(usize, Timestamp)>> = BTreeMap::new();
        for (k, (p, (_, bl, cond))) in self.spec.windows.pairs.iter().zip(burns.iter()).enumerate() {
            // A pair is a boolean condition: fire at 1 held for `for_`, clear at once.
            let cfg = HysteresisConfig::new(1.0, 1.0, p.for_, Duration::ZERO);
            let t = self.pairs[k].update(&cfg, if *cond { 1.0 } else { 0.0 }, now);
            let e = firing_now.entry(p.severity).or_insert(None);
            if self.pairs[k].is_firing() && e.is_none() {
                let since = match t {
                    Transition::Fired { since } => since,
                    _ => now,
                };
                *e = Some((k, since));
            }
            let _ = bl;
        }
        for (sev, hit) in firing_now {
            let was = self.severities.get(&sev).copied().unwrap_or(false);
            self.severities.insert(sev, hit.is_some());
            let (Some((k, since)), false) = (hit, was) else { continue };
            let Some(subject) = self.subject() else { continue };
            let p = &self.spec.windows.pairs[k];
            let burn = burns[k].1.unwrap_or(0.0);
            let mut f = finding("slo_burn", subject, FailureModel::Unknown, since, burn / p.factor, "burn_rate", burn, Some(1.0), Some(p.factor), p.long);
            f.evidence.measure = format!("burn_rate ({sev} · SLO {} · {} pair {})", self.spec.name, p.name, p.label());
            out.push(f);
        }
        out
    }
}

impl Detector for SloMonitor {
    fn name(&self) -> &'static str {
        "slo_burn"
    }
    fn observe(&mut self, signal: &Signal, _now: Timestamp) -> Vec<Finding> {
        let Signal::Edge(w) = signal else { return Vec::new() };
        if !self.matches(&w.interaction) {
            return Vec::new();
        }
        let end = w.start + w.length;
        // A new window closes the previous one: evaluate on the first edge of
        // a later window, and in `tick`.
        let closes_previous = self.rows.back().is_some_and(|r| r.at < end);
        let out = if closes_previous { self.evaluate() } else { Vec::new() };
        self.record(end, w.errors as f64, w.requests as f64);
        out
    }
    fn tick(&mut self, now: Timestamp) -> Vec<Finding> {
        if self.rows.back().is_some_and(|r| r.at < now) { self.evaluate() } else { Vec::new() }
    }
}
