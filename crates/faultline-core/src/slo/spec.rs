//! The engine's view of one SLO, whatever format it was written in
//! (`SloSpec`), and `load_slo_specs`, which detects the format of a spec file.
//!
//! Not here: the format-specific parsers (`openslo`, `sloth`) and evaluation
//! (`eval`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::node::{SpecErrors, parse_yaml_objects};
use super::windows::{AlertSeverity, AlertWindows};
use crate::time::Duration;

/// The objective, kept in the unit it was written in so the error budget is
/// bit-identical to the peer tool's (`(100 - 99.9) / 100` for Sloth's percent,
/// `1 - 0.999` for ratios).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "unit", content = "value", rename_all = "snake_case")]
pub enum Objective {
    Percent(f64),
    Ratio(f64),
}

impl Objective {
    /// Allowed error ratio, e.g. 0.001 for 99.9 %.
    pub fn error_budget(&self) -> f64 {
        match *self {
            Objective::Percent(p) => (100.0 - p) / 100.0,
            Objective::Ratio(r) => 1.0 - r,
        }
    }
    pub fn ratio(&self) -> f64 {
        match *self {
            Objective::Percent(p) => p / 100.0,
            Objective::Ratio(r) => r,
        }
    }
}

/// What the SLO is about, so findings and pages follow the right owner.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SloTarget {
    Service { service: String },
    Flow { flow: String },
    Interaction { caller: String, callee: String },
}

/// How the SLI is measured, as the spec wrote it (queries are opaque here).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Sli {
    /// Error events over total events (Sloth `events`, OpenSLO `bad`/`total`).
    Events { error_query: String, total_query: String },
    /// Good events over total events (OpenSLO `good`/`total`).
    GoodTotal { good_query: String, total_query: String },
    /// A precomputed error (or success) ratio.
    Raw { ratio_query: String, is_success_ratio: bool },
    /// A threshold on a single metric (OpenSLO `thresholdMetric`): an event is
    /// good when `value op threshold` holds.
    Threshold { query: String, op: Option<String>, value: Option<f64> },
    /// A Sloth SLI plugin, by id.
    Plugin { id: String },
}

/// One SLO as the burn-rate engine needs it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SloSpec {
    pub name: String,
    pub service: String,
    pub description: String,
    pub target: SloTarget,
    pub objective: Objective,
    pub sli: Sli,
    /// Period and alerting pairs; an SLO with alerting disabled has no pairs.
    pub windows: AlertWindows,
    pub alert_name: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// `sloth/prometheus-v1`, `sloth/k8s`, `openslo/v1`, `openslo/v1alpha`.
    pub format: String,
}

impl SloSpec {
    pub fn error_budget(&self) -> f64 {
        self.objective.error_budget()
    }
    pub fn period(&self) -> Duration {
        self.windows.period
    }
    /// The error-ratio threshold of a pair: `factor × error budget`, as the
    /// same float64 product Sloth and Pyrra print in their rules.
    pub fn threshold(&self, factor: f64) -> f64 {
        factor * self.error_budget()
    }
    pub fn pairs_of(&self, severity: AlertSeverity) -> impl Iterator<Item = &super::windows::BurnPair> {
        self.windows.pairs.iter().filter(move |p| p.severity == severity)
    }
}

/// Loads every SLO in a spec file, detecting the format per document:
/// Sloth `version: prometheus/v1`, Sloth `kind: PrometheusServiceLevel`, or
/// OpenSLO (`apiVersion: openslo/v1`, plus `openslo/v1alpha` SLOs as Sloth
/// reads them). `default_period` applies where the format has no period
/// (Sloth `prometheus/v1`); `None` means 30 days. Mixed files are fine.
pub fn load_slo_specs(text: &str, default_period: Option<Duration>) -> Result<Vec<SloSpec>, SpecErrors> {
    let period = default_period.unwrap_or(Duration::from_millis(30 * 86_400_000));
    let objects = parse_yaml_objects(text)?;
    if objects.is_empty() {
        return Err(SpecErrors::single(0, "", "no SLO documents found"));
    }
    let is_openslo = objects.iter().any(|o| o.get("apiVersion").and_then(|v| v.as_str()).is_some_and(|v| v == "openslo/v1"));
    if is_openslo {
        let objs = super::openslo::parse_objects(&objects)?;
        return super::openslo::to_slo_specs(&objs, Some(period));
    }
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        match super::sloth::parse_document(o, i, period) {
            Ok(specs) => out.extend(specs),
            Err(e) => errors.extend(e.0),
        }
    }
    if errors.is_empty() { Ok(out) } else { Err(SpecErrors(errors)) }
}
