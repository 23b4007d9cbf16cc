//! Read-only views of the dependency graph: the graph summed over a time
//! range, one service's view, the difference between two ranges, and the
//! drift between the learned graph and the declared catalogue.
//!
//! These are plain serde types so the API can return them as JSON unchanged.
//! Not here: any mutation of the graph.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::window::WindowStats;
use super::{DependencyGraph, MetricWindow, Sid};
use crate::catalogue::Catalogue;
use crate::ids::ServiceName;
use crate::model::{Interaction, ServiceKind};
use crate::time::Timestamp;

/// A node of the graph: a service, or an uninstrumented dependency.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeView {
    pub name: ServiceName,
    pub kind: ServiceKind,
    /// Emits spans itself (false: only named by its callers).
    pub instrumented: bool,
}

/// One interaction summed over a range.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EdgeSummary {
    pub caller: ServiceName,
    pub callee: ServiceName,
    pub operation: String,
    pub requests: u64,
    pub errors: u64,
    pub timeouts: u64,
    pub retries: u64,
    pub p50_ms: Option<f64>,
    pub p90_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// The most requests seen in flight at any window end in the range.
    pub in_flight_max: u64,
}

impl EdgeSummary {
    pub fn interaction(&self) -> Interaction {
        Interaction { caller: self.caller.clone(), callee: self.callee.clone(), operation: self.operation.clone() }
    }
    pub fn error_ratio(&self) -> f64 {
        if self.requests == 0 { 0.0 } else { self.errors as f64 / self.requests as f64 }
    }
}

/// The graph over `[from, to)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GraphView {
    pub from: Timestamp,
    pub to: Timestamp,
    pub nodes: Vec<NodeView>,
    pub edges: Vec<EdgeSummary>,
}

/// A service's own ingress (its SERVER and CONSUMER spans) over a range.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct IngressSummary {
    pub requests: u64,
    pub errors: u64,
    pub timeouts: u64,
    pub rate_per_s: f64,
    pub p50_ms: Option<f64>,
    pub p90_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricWindowView {
    pub start: Timestamp,
    pub count: u64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    pub last: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricSeriesView {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub windows: Vec<MetricWindowView>,
}

/// One service: its ingress, who calls it, what it calls, its metric series.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServiceView {
    pub node: NodeView,
    pub from: Timestamp,
    pub to: Timestamp,
    pub ingress: IngressSummary,
    /// Edges into this service.
    pub callers: Vec<EdgeSummary>,
    /// Edges out of this service.
    pub callees: Vec<EdgeSummary>,
    pub metrics: Vec<MetricSeriesView>,
}

/// When an edge present in both ranges counts as changed.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct DiffThresholds {
    /// Edges with fewer requests than this in both ranges are never "changed".
    pub min_requests: u64,
    /// Request rate changed by at least this factor (either way).
    pub rate_factor: f64,
    /// Error ratio moved by at least this much (absolute, 0.05 = 5 points).
    pub error_ratio_delta: f64,
    /// p99 latency changed by at least this factor (either way).
    pub latency_factor: f64,
}

impl Default for DiffThresholds {
    fn default() -> DiffThresholds {
        DiffThresholds { min_requests: 10, rate_factor: 2.0, error_ratio_delta: 0.05, latency_factor: 1.5 }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EdgeChange {
    pub a: EdgeSummary,
    pub b: EdgeSummary,
    /// Human-readable reasons, e.g. `p99 12.0 ms → 48.3 ms`.
    pub reasons: Vec<String>,
}

/// Edges in range B but not A (`new`), in A but not B (`gone`), and in both
/// with a significant change (`changed`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GraphDiff {
    pub new: Vec<EdgeSummary>,
    pub gone: Vec<EdgeSummary>,
    pub changed: Vec<EdgeChange>,
}

/// The learned graph against the catalogue, at the (caller, callee) level
/// (a declared operation must match exactly; a declaration without one
/// matches every operation).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CatalogueDrift {
    pub declared_unseen: Vec<Interaction>,
    pub seen_undeclared: Vec<Interaction>,
}

fn ratio_changed(a: f64, b: f64, factor: f64) -> bool {
    if a <= 0.0 || b <= 0.0 {
        return (a > 0.0) != (b > 0.0);
    }
    b / a >= factor || a / b >= factor
}

impl DependencyGraph {
    fn node(&self, sid: Sid) -> NodeView {
        let s = &self.services[sid as usize];
        NodeView { name: s.name.clone(), kind: s.kind, instrumented: s.instrumented }
    }

    fn summarise(&self, caller: Sid, callee: Sid, op: &str, st: &WindowStats) -> EdgeSummary {
        EdgeSummary {
            caller: self.service_name(caller).clone(),
            callee: self.service_name(callee).clone(),
            operation: op.to_owned(),
            requests: st.requests,
            errors: st.errors,
            timeouts: st.timeouts,
            retries: st.retries,
            p50_ms: st.latency.quantile(0.5),
            p90_ms: st.latency.quantile(0.9),
            p99_ms: st.latency.quantile(0.99),
            in_flight_max: st.in_flight,
        }
    }

    /// Every interaction with traffic in windows starting in `[from, to)`,
    /// summed, sorted by (caller, callee, operation).
    pub fn edges(&self, from: Timestamp, to: Timestamp) -> Vec<EdgeSummary> {
        self.edges_where(from, to, |_, _| true)
    }

    fn edges_where(&self, from: Timestamp, to: Timestamp, keep: impl Fn(Sid, Sid) -> bool) -> Vec<EdgeSummary> {
        let mut out = Vec::new();
        for e in self.edges.iter().flatten() {
            if !keep(e.caller, e.callee) {
                continue;
            }
            let mut st = WindowStats::default();
            for w in e.series.range(from.as_millis(), to.as_millis()) {
                st.merge(&w.stats);
            }
            if st.requests > 0 || st.in_flight > 0 {
                out.push(self.summarise(e.caller, e.callee, self.names.name(e.op), &st));
            }
        }
        out.sort_by(|a, b| (&a.caller, &a.callee, &a.operation).cmp(&(&b.caller, &b.callee, &b.operation)));
        out
    }

    /// The graph over `[from, to)`: nodes are the services with edges or
    /// ingress in the range.
    pub fn graph(&self, from: Timestamp, to: Timestamp) -> GraphView {
        let edges = self.edges(from, to);
        let mut names: BTreeSet<&ServiceName> = BTreeSet::new();
        for e in &edges {
            names.insert(&e.caller);
            names.insert(&e.callee);
        }
        for (sid, s) in &self.ingress {
            if s.range(from.as_millis(), to.as_millis()).any(|w| w.stats.requests > 0) {
                names.insert(self.service_name(*sid));
            }
        }
        let nodes = names.into_iter().filter_map(|n| self.service_ids.get(n.as_str())).map(|&sid| self.node(sid)).collect();
        GraphView { from, to, nodes, edges }
    }

    /// Closed windows of every interaction in `[from, to)`, as detectors see them.
    pub fn edge_windows(&self, from: Timestamp, to: Timestamp) -> Vec<crate::signal::EdgeWindow> {
        let wlen = self.window_ms();
        let mut out = Vec::new();
        for e in self.edges.iter().flatten() {
            for w in e.series.range(from.as_millis(), to.as_millis()) {
                out.push(crate::signal::EdgeWindow {
                    interaction: Interaction {
                        caller: self.service_name(e.caller).clone(),
                        callee: self.service_name(e.callee).clone(),
                        operation: self.names.name(e.op).to_owned(),
                    },
                    start: Timestamp::from_millis(w.start_ms),
                    length: crate::time::Duration::from_millis(wlen),
                    requests: w.stats.requests,
                    errors: w.stats.errors,
                    timeouts: w.stats.timeouts,
                    retries: w.stats.retries,
                    p50_ms: w.stats.latency.quantile(0.5).unwrap_or(0.0),
                    p99_ms: w.stats.latency.quantile(0.99).unwrap_or(0.0),
                    in_flight: Some(w.stats.in_flight),
                    zones: super::zone_counts(&self.names, &w.stats),
                    exemplar_trace_ids: w.stats.exemplar_ids(),
                });
            }
        }
        out.sort_by(|a, b| (a.start, &a.interaction).cmp(&(b.start, &b.interaction)));
        out
    }

    /// One service over `[from, to)`; `None` if the graph has never seen it.
    pub fn service(&self, name: &str, from: Timestamp, to: Timestamp) -> Option<ServiceView> {
        let &sid = self.service_ids.get(name)?;
        let (f, t) = (from.as_millis(), to.as_millis());
        let mut st = WindowStats::default();
        if let Some(s) = self.ingress.get(&sid) {
            for w in s.range(f, t) {
                st.merge(&w.stats);
            }
        }
        let secs = ((t - f) as f64 / 1000.0).max(1e-3);
        let ingress = IngressSummary {
            requests: st.requests,
            errors: st.errors,
            timeouts: st.timeouts,
            rate_per_s: st.requests as f64 / secs,
            p50_ms: st.latency.quantile(0.5),
            p90_ms: st.latency.quantile(0.9),
            p99_ms: st.latency.quantile(0.99),
        };
        let mut metrics: Vec<MetricSeriesView> = self
            .metrics
            .values()
            .filter(|m| m.service == sid)
            .map(|m| MetricSeriesView {
                name: m.name.clone(),
                labels: m.labels.clone(),
                windows: m
                    .series
                    .range(f, t)
                    .map(|w| {
                        let MetricWindow { count, sum, min, max, last, .. } = w.stats;
                        MetricWindowView { start: Timestamp::from_millis(w.start_ms), count, sum, min, max, last }
                    })
                    .collect(),
            })
            .filter(|m| !m.windows.is_empty())
            .collect();
        metrics.sort_by(|a, b| (&a.name, &a.labels).cmp(&(&b.name, &b.labels)));
        Some(ServiceView {
            node: self.node(sid),
            from,
            to,
            ingress,
            callers: self.edges_where(from, to, |_, callee| callee == sid),
            callees: self.edges_where(from, to, |caller, _| caller == sid),
            metrics,
        })
    }

    /// What changed from range A to range B.
    pub fn diff(&self, a: (Timestamp, Timestamp), b: (Timestamp, Timestamp), th: &DiffThresholds) -> GraphDiff {
        let ea = self.edges(a.0, a.1);
        let eb = self.edges(b.0, b.1);
        let secs = |r: (Timestamp, Timestamp)| ((r.1 - r.0).as_millis() as f64 / 1000.0).max(1e-3);
        let (sa, sb) = (secs(a), secs(b));
        let key = |e: &EdgeSummary| (e.caller.clone(), e.callee.clone(), e.operation.clone());
        let ma: BTreeMap<_, _> = ea.iter().map(|e| (key(e), e)).collect();
        let mb: BTreeMap<_, _> = eb.iter().map(|e| (key(e), e)).collect();
        let mut d = GraphDiff { new: Vec::new(), gone: Vec::new(), changed: Vec::new() };
        for (k, e) in &mb {
            if !ma.contains_key(k) {
                d.new.push((*e).clone());
            }
        }
        for (k, ea) in &ma {
            let Some(eb) = mb.get(k) else {
                d.gone.push((*ea).clone());
                continue;
            };
            if ea.requests < th.min_requests && eb.requests < th.min_requests {
                continue;
            }
            let mut reasons = Vec::new();
            let (ra, rb) = (ea.requests as f64 / sa, eb.requests as f64 / sb);
            if ratio_changed(ra, rb, th.rate_factor) {
                reasons.push(format!("rate {ra:.2}/s → {rb:.2}/s"));
            }
            let (xa, xb) = (ea.error_ratio(), eb.error_ratio());
            if (xb - xa).abs() >= th.error_ratio_delta {
                reasons.push(format!("errors {:.1}% → {:.1}%", xa * 100.0, xb * 100.0));
            }
            if let (Some(pa), Some(pb)) = (ea.p99_ms, eb.p99_ms)
                && ratio_changed(pa, pb, th.latency_factor)
            {
                reasons.push(format!("p99 {pa:.1} ms → {pb:.1} ms"));
            }
            if !reasons.is_empty() {
                d.changed.push(EdgeChange { a: (*ea).clone(), b: (*eb).clone(), reasons });
            }
        }
        d
    }

    /// Declared-but-unseen and seen-but-undeclared edges over `[from, to)`.
    pub fn drift(&self, catalogue: &Catalogue, from: Timestamp, to: Timestamp) -> CatalogueDrift {
        let declared = catalogue.declared_interactions();
        let seen = self.edges(from, to);
        let matches = |d: &Interaction, s: &EdgeSummary| d.caller == s.caller && d.callee == s.callee && (d.operation.is_empty() || d.operation == s.operation);
        let declared_unseen = declared.iter().filter(|d| !seen.iter().any(|s| matches(d, s))).cloned().collect();
        let seen_undeclared = seen.iter().filter(|s| !declared.iter().any(|d| matches(d, s))).map(EdgeSummary::interaction).collect();
        CatalogueDrift { declared_unseen, seen_undeclared }
    }
}
