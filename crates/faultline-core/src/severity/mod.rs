//! Severity suggestion: SEV1–SEV3 from the flows an incident impacts and how
//! fast their SLOs burn error budget, with configurable definitions.
//!
//! What it is: [`SeverityDefinitions`] (critical flows and an ordered list of
//! rules; the first rule whose conditions all hold wins, else the default)
//! and [`SeverityDefinitions::suggest`], which returns the severity with a
//! one-line reason for the timeline. The built-in default follows DESIGN.md:
//! SEV1 = a critical flow with a fast SLO burn (≥ 14.4×, the 2%-in-1h page)
//! or two or more flows burning ≥ 6×; SEV2 = any SLO burning ≥ 6× or a
//! critical flow impacted; SEV3 otherwise.
//!
//! Alerts carry their own severity (Prometheus's `severity` label,
//! PagerDuty's `payload.severity`): [`SeverityDefinitions::suggest_for_alert`]
//! maps it through `alert_severities` (defaults in [`default_alert_severities`]:
//! `critical` → SEV1; `error`, `high`, `major`, `page` → SEV2; `warning`,
//! `minor`, `info`, `low`, `ticket`, `none` → SEV3; `sev1`–`sev3` as named).
//! An incident takes the most severe of its suggestions (flows and burn, and
//! every alert in it); a suggestion only ever raises the severity.
//!
//! What it is not: the decision. A suggestion is applied or overridden by a
//! person (`Command::ChangeSeverity` with a reason); burn rates come from the
//! SLO engine, impacted flows from the correlator.

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ids::FlowName;
use crate::incident::Severity;
use crate::signal::ExternalAlert;

/// How fast one flow's SLO is burning its error budget right now.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SloBurn {
    pub slo: String,
    pub flow: Option<FlowName>,
    /// Burn rate over the alert's long window (1.0 = exactly on budget).
    pub burn_rate: f64,
}

/// What the suggestion is computed from.
#[derive(Clone, Debug, Default)]
pub struct SeverityFacts<'a> {
    pub impacted_flows: &'a [FlowName],
    pub burns: &'a [SloBurn],
}

/// Conditions of one rule; every condition that is set must hold.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Conditions {
    /// A flow listed in `critical_flows` is impacted.
    #[serde(default)]
    pub critical_flow_impacted: Option<bool>,
    #[serde(default)]
    pub min_impacted_flows: Option<u32>,
    /// The fastest burn among the incident's SLOs is at least this.
    #[serde(default)]
    pub min_burn_rate: Option<f64>,
    /// At least this many SLOs burn at `min_burn_rate` or faster (default 1).
    #[serde(default)]
    pub min_burning_slos: Option<u32>,
    /// One of these flows is impacted.
    #[serde(default)]
    pub any_flow: Vec<FlowName>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub severity: Severity,
    pub when: Conditions,
    /// Shown in the reason, e.g. "core flow down".
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeverityDefinitions {
    #[serde(default)]
    pub critical_flows: Vec<FlowName>,
    pub rules: Vec<Rule>,
    #[serde(default = "default_sev")]
    pub default: Severity,
    /// An alert's own severity (its `severity` label, lowercased) → SEV.
    #[serde(default = "default_alert_severities")]
    pub alert_severities: BTreeMap<String, Severity>,
}

/// The built-in alert severity map. Every peer's scale tops out at
/// `critical` (Prometheus rule conventions, PagerDuty Events, Keep, Grafana
/// IRM), and a `critical` alert is the sender saying "wake someone now": SEV1.
/// `error` / `high` / `major` (PagerDuty's second level, Keep's `high`) and
/// `page` (the SRE workbook's page-vs-ticket split, which says urgent but not
/// how broad) are SEV2; everything below is SEV3, the floor anyway.
pub fn default_alert_severities() -> BTreeMap<String, Severity> {
    use Severity::*;
    [
        ("critical", Sev1),
        ("sev1", Sev1),
        ("error", Sev2),
        ("high", Sev2),
        ("major", Sev2),
        ("page", Sev2),
        ("sev2", Sev2),
        ("warning", Sev3),
        ("minor", Sev3),
        ("info", Sev3),
        ("low", Sev3),
        ("ticket", Sev3),
        ("none", Sev3),
        ("sev3", Sev3),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

fn default_sev() -> Severity {
    Severity::Sev3
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeveritySuggestion {
    pub severity: Severity,
    /// 0-based index of the rule that matched; `None` for the default.
    pub rule: Option<usize>,
    pub reason: String,
}

/// What is wrong with severity definitions; every message names the field
/// (`rules[2].when.min_burn_rate`, `critical_flows`), rules counted from 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SeverityConfigError {
    #[error("rule {0}: has no conditions (it would always match); use `default` instead")]
    EmptyRule(usize),
    #[error("rule {0}: min_burn_rate must be a positive number")]
    BadBurnRate(usize),
    #[error("rule {0}: min_burning_slos needs min_burn_rate (the rate they must burn at)")]
    BurningSlosWithoutRate(usize),
    #[error("rule {0}: min_impacted_flows and min_burning_slos must be at least 1")]
    ZeroCount(usize),
    #[error("{field}: unknown flow {flow:?} (not in the catalogue)")]
    UnknownFlow { field: String, flow: String },
}

impl SeverityDefinitions {
    /// The built-in definitions described in the module doc, with these
    /// critical flows.
    pub fn standard(critical_flows: Vec<FlowName>) -> SeverityDefinitions {
        let rule = |severity, name: &str, when| Rule { severity, when, name: Some(name.to_owned()) };
        SeverityDefinitions {
            critical_flows,
            rules: vec![
                rule(
                    Severity::Sev1,
                    "critical flow fast burn",
                    Conditions { critical_flow_impacted: Some(true), min_burn_rate: Some(14.4), ..Conditions::default() },
                ),
                rule(
                    Severity::Sev1,
                    "several flows burning",
                    Conditions { min_impacted_flows: Some(2), min_burn_rate: Some(6.0), min_burning_slos: Some(2), ..Conditions::default() },
                ),
                rule(Severity::Sev2, "SLO burning", Conditions { min_burn_rate: Some(6.0), ..Conditions::default() }),
                rule(Severity::Sev2, "critical flow impacted", Conditions { critical_flow_impacted: Some(true), ..Conditions::default() }),
            ],
            default: Severity::Sev3,
            alert_severities: default_alert_severities(),
        }
    }

    /// What an alert's own severity suggests, through `alert_severities`;
    /// `None` when it carries none or one the map does not know.
    pub fn suggest_for_alert(&self, alert: &ExternalAlert) -> Option<SeveritySuggestion> {
        let given = alert.labels.get("severity")?.trim();
        let severity = *self.alert_severities.get(&given.to_lowercase())?;
        let name = alert.labels.get("alertname").map_or_else(|| format!("{} alert", alert.source), |n| format!("alert {n}"));
        Some(SeveritySuggestion { severity, rule: None, reason: format!("{severity}: {name} has severity {given:?} (alert_severities)") })
    }

    pub fn validate(&self) -> Result<(), SeverityConfigError> {
        for (i, r) in self.rules.iter().enumerate() {
            let w = &r.when;
            if w.critical_flow_impacted.is_none() && w.min_impacted_flows.is_none() && w.min_burn_rate.is_none() && w.any_flow.is_empty() {
                return Err(SeverityConfigError::EmptyRule(i + 1));
            }
            if w.min_burn_rate.is_some_and(|b| !(b.is_finite() && b > 0.0)) {
                return Err(SeverityConfigError::BadBurnRate(i + 1));
            }
            if w.min_burning_slos.is_some() && w.min_burn_rate.is_none() {
                return Err(SeverityConfigError::BurningSlosWithoutRate(i + 1));
            }
            if w.min_impacted_flows == Some(0) || w.min_burning_slos == Some(0) {
                return Err(SeverityConfigError::ZeroCount(i + 1));
            }
        }
        Ok(())
    }

    /// Checks that every flow named (critical flows, `any_flow`) is one of
    /// `known` (the catalogue's). With no known flows nothing is checked.
    pub fn validate_flows(&self, known: &[FlowName]) -> Result<(), SeverityConfigError> {
        if known.is_empty() {
            return Ok(());
        }
        let unknown = |field: String, flows: &[FlowName]| -> Result<(), SeverityConfigError> {
            match flows.iter().find(|f| !known.contains(f)) {
                Some(f) => Err(SeverityConfigError::UnknownFlow { field, flow: f.to_string() }),
                None => Ok(()),
            }
        };
        unknown("critical_flows".into(), &self.critical_flows)?;
        for (i, r) in self.rules.iter().enumerate() {
            unknown(format!("rule {}: when.any_flow", i + 1), &r.when.any_flow)?;
        }
        Ok(())
    }

    /// Suggests a severity and says why.
    pub fn suggest(&self, facts: &SeverityFacts<'_>) -> SeveritySuggestion {
        let critical: Vec<&FlowName> = facts.impacted_flows.iter().filter(|f| self.critical_flows.contains(f)).collect();
        // Non-finite burn rates (no data) never satisfy a threshold.
        let burns: Vec<&SloBurn> = facts.burns.iter().filter(|b| b.burn_rate.is_finite()).collect();
        for (i, rule) in self.rules.iter().enumerate() {
            let w = &rule.when;
            let mut why: Vec<String> = Vec::new();
            if let Some(want) = w.critical_flow_impacted {
                if critical.is_empty() == want {
                    continue;
                }
                if want {
                    why.push(format!("critical flow {} impacted", names(critical.iter().copied())));
                } else {
                    why.push("no critical flow impacted".to_owned());
                }
            }
            if let Some(n) = w.min_impacted_flows {
                if (facts.impacted_flows.len() as u64) < u64::from(n) {
                    continue;
                }
                why.push(format!("{} flows impacted (≥ {n})", facts.impacted_flows.len()));
            }
            if !w.any_flow.is_empty() {
                let hit: Vec<&FlowName> = facts.impacted_flows.iter().filter(|f| w.any_flow.contains(f)).collect();
                if hit.is_empty() {
                    continue;
                }
                why.push(format!("flow {} impacted", names(hit.into_iter())));
            }
            if let Some(min) = w.min_burn_rate {
                let mut fast: Vec<&&SloBurn> = burns.iter().filter(|b| b.burn_rate >= min).collect();
                let need = w.min_burning_slos.unwrap_or(1).max(1) as usize;
                if fast.len() < need {
                    continue;
                }
                fast.sort_by(|a, b| b.burn_rate.total_cmp(&a.burn_rate).then_with(|| a.slo.cmp(&b.slo)));
                let list = fast.iter().map(|b| format!("{} at {:.1}×", b.slo, b.burn_rate)).collect::<Vec<_>>().join(", ");
                why.push(format!("SLO {list} (≥ {min}×)"));
            }
            let label = rule.name.as_ref().map_or_else(|| format!("rule {}", i + 1), |n| format!("rule {} {n:?}", i + 1));
            return SeveritySuggestion { severity: rule.severity, rule: Some(i), reason: format!("{}: {} ({label})", rule.severity, why.join(" and ")) };
        }
        SeveritySuggestion { severity: self.default, rule: None, reason: format!("{}: no severity rule matched (default)", self.default) }
    }
}

fn names<'a>(it: impl Iterator<Item = &'a FlowName>) -> String {
    it.map(FlowName::as_str).collect::<Vec<_>>().join(", ")
}
