//! Faultline's HTTP API as wire types: the JSON request and response bodies
//! of `/api/v1`, and (feature `client`) a small async client for the CLI.
//!
//! What it is: the contract with users' scripts and the CLI. Field names here
//! are public API; change them only additively.
//!
//! What it is not: the domain. This crate deliberately does not depend on
//! `faultline-core`, so refactoring the domain cannot silently change the wire
//! format; the server converts between the two in `http::convert`.
//! Timestamps are RFC 3339 strings in UTC.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[cfg(feature = "client")]
pub mod client;

/// Every error response: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Stable, machine-readable, snake_case (e.g. `invalid_transition`).
    pub code: String,
    /// For humans; may change between versions.
    pub message: String,
}

/// `POST /api/v1/incidents`
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateIncident {
    pub title: String,
    /// `SEV1`, `SEV2` or `SEV3`.
    pub severity: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
}

/// Optional body of `POST /api/v1/incidents/{id}/ack|resolve|mitigate`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TransitionRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// One timeline entry. `details` carries the event's own fields (e.g.
/// `{"from":"SEV2","to":"SEV1","reason":"..."}` for `severity_changed`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimelineEntry {
    pub seq: u64,
    pub at: String,
    /// `user:alice`, `token:ci`, `system:correlator`.
    pub actor: String,
    /// Past tense, snake_case: `opened`, `acknowledged`, `severity_changed`, ...
    #[serde(rename = "type")]
    pub kind: String,
    pub details: serde_json::Value,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub id: String,
    pub title: String,
    pub summary: Option<String>,
    pub severity: String,
    /// `triggered`, `acknowledged`, `mitigated` or `resolved`.
    pub status: String,
    pub roles: BTreeMap<String, String>,
    pub opened_at: String,
    pub acknowledged_at: Option<String>,
    pub mitigated_at: Option<String>,
    pub resolved_at: Option<String>,
    pub updated_at: String,
    pub version: u64,
    /// `retry_storm`, `cascading_failure`, … (DESIGN.md §4), when diagnosed.
    #[serde(default)]
    pub class: Option<String>,
    /// `crash`, `partition`, `byzantine`, `exhaustion` or `unknown`.
    #[serde(default)]
    pub failure_model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causal_chain: Option<CausalChain>,
    /// Symptoms the correlator attached (present on single-incident responses).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub findings: Option<Vec<FindingView>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub related: Vec<String>,
    /// Present on single-incident responses; omitted in lists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeline: Option<Vec<TimelineEntry>>,
}

/// The explanation of an incident: origin → amplifiers → impacted flows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CausalChain {
    pub sentence: String,
    /// Ranked, most likely first; each with the evidence behind its rank.
    pub origins: Vec<OriginCandidate>,
    pub amplifiers: Vec<Amplifier>,
    pub impacted_flows: Vec<FlowImpact>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OriginCandidate {
    pub subject: String,
    pub confidence: f64,
    pub reasons: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Amplifier {
    pub subject: String,
    pub mechanism: String,
    pub factor: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlowImpact {
    pub flow: String,
    pub burn_rate: Option<f64>,
}

/// One symptom attached to an incident.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FindingView {
    /// e.g. `retry_amplification on gateway → fraud-check`.
    pub member: String,
    pub evidence: String,
    pub first_attached_at: String,
    /// Whether it still holds.
    pub active: bool,
}

/// `GET /api/v1/incidents`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IncidentList {
    pub incidents: Vec<Incident>,
}

/// One detector finding with its evidence (`GET /api/v1/findings`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// The detector, e.g. `retry_amplification`.
    pub kind: String,
    pub subject: String,
    pub failure_model: String,
    pub started_at: String,
    pub strength: f64,
    pub measure: String,
    pub observed: f64,
    pub baseline: Option<f64>,
    pub threshold: Option<f64>,
    pub window_ms: i64,
    pub exemplar_trace_ids: Vec<String>,
    /// The incident it joined.
    pub incident: Option<String>,
    pub active: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FindingList {
    pub findings: Vec<Finding>,
}
