//! `Signal`: one normalised input, whatever protocol it arrived by.
//!
//! Receivers decode wire formats into signals; the graph, SLO engine and
//! detectors consume them. A signal is typed, timestamped and bounded (no
//! unbounded label sets). This module defines the shapes only; decoding lives
//! at the edge (server receivers) and aggregation in the graph.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ids::ServiceName;
use crate::model::Interaction;
use crate::time::{Duration, Timestamp};

/// Windowed statistics of one interaction, as the graph aggregates them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EdgeWindow {
    pub interaction: Interaction,
    pub start: Timestamp,
    pub length: Duration,
    pub requests: u64,
    pub errors: u64,
    pub timeouts: u64,
    pub retries: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub in_flight: Option<u64>,
    /// The same window split by (caller zone, callee zone), where the
    /// telemetry knows zones (`cloud.availability_zone`); empty otherwise.
    /// A breakdown of the counts above, not extra calls.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub zones: Vec<ZoneCounts>,
    /// A few trace ids of failing or slow calls in this window (bounded by
    /// the graph builder), for findings' evidence.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exemplar_trace_ids: Vec<String>,
}

/// Calls of one interaction in one window from one zone to another.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneCounts {
    pub caller_zone: String,
    pub callee_zone: String,
    pub requests: u64,
    /// Failed calls, timeouts included.
    pub errors: u64,
    pub timeouts: u64,
}

/// Most exemplar trace ids an edge window or a finding carries.
pub const MAX_EXEMPLARS: usize = 5;

/// One sample of a metric series attached to a service or resource.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricPoint {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub service: Option<ServiceName>,
    pub at: Timestamp,
    pub value: f64,
}

/// The result of one probe run from one location.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProbeResult {
    pub probe: String,
    pub location: String,
    pub target: Option<ServiceName>,
    pub at: Timestamp,
    pub success: bool,
    pub response_ms: Option<f64>,
    /// Which conditions failed, rendered for humans.
    pub failures: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckInKind {
    Success,
    Start,
    Fail,
}

/// A heartbeat ping from a job or host (healthchecks.io semantics).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckIn {
    pub check: String,
    pub kind: CheckInKind,
    pub at: Timestamp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    Firing,
    Resolved,
}

/// An alert from another system (Alertmanager, PagerDuty Events, generic JSON),
/// deduplicated by `fingerprint`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExternalAlert {
    pub source: String,
    pub fingerprint: String,
    pub state: AlertState,
    pub summary: String,
    pub labels: BTreeMap<String, String>,
    pub starts_at: Timestamp,
    pub ends_at: Option<Timestamp>,
}

impl ExternalAlert {
    /// Label keys that name the service an alert is about, in the order
    /// they are tried (Prometheus and OpenTelemetry conventions, PagerDuty's
    /// `component`).
    pub const SERVICE_LABELS: [&'static str; 5] = ["service", "service_name", "job", "app", "component"];

    /// The service the alert names, if any: the first non-empty value of
    /// `SERVICE_LABELS` it carries.
    pub fn service_label(&self) -> Option<&str> {
        Self::SERVICE_LABELS.iter().filter_map(|k| self.labels.get(*k)).map(|v| v.trim()).find(|v| !v.is_empty())
    }
}

/// A structured log record worth keeping (errors, not every line).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEvent {
    pub service: Option<ServiceName>,
    pub at: Timestamp,
    pub severity: String,
    pub body: String,
    pub trace_id: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Signal {
    Edge(EdgeWindow),
    Metric(MetricPoint),
    Probe(ProbeResult),
    CheckIn(CheckIn),
    Alert(ExternalAlert),
    Log(LogEvent),
}

impl Signal {
    /// When the signal happened (for windows: the window's end).
    pub fn at(&self) -> Timestamp {
        match self {
            Signal::Edge(w) => w.start + w.length,
            Signal::Metric(m) => m.at,
            Signal::Probe(p) => p.at,
            Signal::CheckIn(c) => c.at,
            Signal::Alert(a) => a.starts_at,
            Signal::Log(l) => l.at,
        }
    }
}
