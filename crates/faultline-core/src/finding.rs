//! Findings and their explanation: `Finding`, `FailureModel`, `IncidentClass`
//! and `CausalChain`.
//!
//! A finding is a detector's output about one subject with the evidence behind
//! it. A causal chain is the correlator's explanation of many findings: origin
//! candidates, the amplifiers on the path and the impacted flows, rendered as
//! one sentence a person can check. This module holds the shapes and the
//! rendering; detectors and the correlator produce them.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::{FlowName, ServiceName};
use crate::model::Interaction;
use crate::time::{Duration, Timestamp};

/// How a component fails; each needs a different detector (DESIGN.md §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureModel {
    Crash,
    Partition,
    Byzantine,
    Exhaustion,
    Unknown,
}

/// What kind of incident this is, by the mechanism that made it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentClass {
    RetryStorm,
    CacheStampede,
    SplitBrain,
    HotPartition,
    QueueOverload,
    DnsOutage,
    DiscoveryFailure,
    CascadingFailure,
    /// Nothing more specific fits: the class is the failure model itself.
    Failure(FailureModel),
}

impl fmt::Display for FailureModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FailureModel::Crash => "crash",
            FailureModel::Partition => "partition",
            FailureModel::Byzantine => "byzantine",
            FailureModel::Exhaustion => "exhaustion",
            FailureModel::Unknown => "unknown",
        })
    }
}

impl fmt::Display for IncidentClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            IncidentClass::RetryStorm => "retry_storm",
            IncidentClass::CacheStampede => "cache_stampede",
            IncidentClass::SplitBrain => "split_brain",
            IncidentClass::HotPartition => "hot_partition",
            IncidentClass::QueueOverload => "queue_overload",
            IncidentClass::DnsOutage => "dns_outage",
            IncidentClass::DiscoveryFailure => "discovery_failure",
            IncidentClass::CascadingFailure => "cascading_failure",
            IncidentClass::Failure(m) => return m.fmt(f),
        };
        f.write_str(s)
    }
}

/// What a finding is about.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Subject {
    Service {
        service: ServiceName,
    },
    Interaction {
        interaction: Interaction,
    },
    Flow {
        flow: FlowName,
    },
    /// A resource of a service: a connection pool, a disk, a queue, a shard.
    Resource {
        service: ServiceName,
        resource: String,
    },
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Service { service } => write!(f, "{service}"),
            Subject::Interaction { interaction } => write!(f, "{interaction}"),
            Subject::Flow { flow } => write!(f, "flow {flow}"),
            Subject::Resource { service, resource } => write!(f, "{service}/{resource}"),
        }
    }
}

/// The numbers behind a finding, so a person can check it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct Evidence {
    /// What was measured, e.g. `error_ratio`.
    pub measure: String,
    pub observed: f64,
    pub baseline: Option<f64>,
    pub threshold: Option<f64>,
    pub window: Duration,
    #[serde(default)]
    pub exemplar_trace_ids: Vec<String>,
}

/// A detector's output: one symptom, on one subject, with evidence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// The detector that produced it, e.g. `retry_amplification`.
    pub kind: String,
    pub subject: Subject,
    pub failure_model: FailureModel,
    pub started_at: Timestamp,
    /// How far past its threshold, normalised so 1.0 is "just fired".
    pub strength: f64,
    pub evidence: Evidence,
}

/// One candidate origin with the confidence the diagnosis gives it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OriginCandidate {
    pub subject: Subject,
    /// In `[0, 1]`.
    pub confidence: f64,
    /// Why it ranks where it does, for humans.
    pub reasons: Vec<String>,
}

/// A mechanism that turned a small fault into a large one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Amplifier {
    pub subject: Subject,
    /// e.g. `retries`, `queue_growth`, `timeout_saturation`, `cache_expiry`.
    pub mechanism: String,
    /// e.g. the retry multiplication factor.
    pub factor: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlowImpact {
    pub flow: FlowName,
    /// Current error-budget burn rate, when an SLO covers the flow.
    pub burn_rate: Option<f64>,
}

/// The explanation of an incident: origin → amplifiers → impacted flows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct CausalChain {
    /// Ranked, most likely first.
    pub origins: Vec<OriginCandidate>,
    pub amplifiers: Vec<Amplifier>,
    pub impacted_flows: Vec<FlowImpact>,
    pub class: Option<IncidentClass>,
    pub failure_model: Option<FailureModel>,
}

impl CausalChain {
    /// One sentence a human can check, e.g.
    /// `fraud-check/db-pool: origin, amplified by gateway → fraud-check retries ×3.1; checkout flow burning error budget at 14×`.
    pub fn render_sentence(&self) -> String {
        let mut s = match self.origins.first() {
            Some(o) => format!("{} (origin, {:.0}% confidence)", o.subject, o.confidence * 100.0),
            None => "origin unknown".to_owned(),
        };
        if !self.amplifiers.is_empty() {
            s.push_str(", amplified by ");
            let parts: Vec<String> = self
                .amplifiers
                .iter()
                .map(|a| match a.factor {
                    Some(k) => format!("{} {} ×{k:.1}", a.subject, a.mechanism),
                    None => format!("{} {}", a.subject, a.mechanism),
                })
                .collect();
            s.push_str(&parts.join(", "));
        }
        for impact in &self.impacted_flows {
            match impact.burn_rate {
                Some(b) => s.push_str(&format!("; {} flow burning error budget at {b:.0}×", impact.flow)),
                None => s.push_str(&format!("; {} flow impacted", impact.flow)),
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(s: &str) -> ServiceName {
        ServiceName::new(s).unwrap()
    }

    #[test]
    fn renders_the_chain_as_one_checkable_sentence() {
        let chain = CausalChain {
            origins: vec![OriginCandidate {
                subject: Subject::Resource { service: svc("fraud-check"), resource: "db-pool".into() },
                confidence: 0.82,
                reasons: vec![],
            }],
            amplifiers: vec![Amplifier {
                subject: Subject::Interaction { interaction: Interaction { caller: svc("gateway"), callee: svc("fraud-check"), operation: String::new() } },
                mechanism: "retries".into(),
                factor: Some(3.1),
            }],
            impacted_flows: vec![FlowImpact { flow: FlowName::new("checkout").unwrap(), burn_rate: Some(14.0) }],
            class: Some(IncidentClass::CascadingFailure),
            failure_model: Some(FailureModel::Exhaustion),
        };
        assert_eq!(
            chain.render_sentence(),
            "fraud-check/db-pool (origin, 82% confidence), amplified by gateway → fraud-check retries ×3.1; checkout flow burning error budget at 14×"
        );
    }

    #[test]
    fn class_names_match_design_vocabulary() {
        assert_eq!(IncidentClass::RetryStorm.to_string(), "retry_storm");
        assert_eq!(IncidentClass::Failure(FailureModel::Byzantine).to_string(), "byzantine");
        assert_eq!(serde_json::to_string(&IncidentClass::DnsOutage).unwrap(), "\"dns_outage\"");
    }
}
