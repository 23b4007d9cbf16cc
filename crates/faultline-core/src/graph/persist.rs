//! The learned graph across a restart: a bounded snapshot of what the
//! `DependencyGraph` knows — its services and, per interaction, the windows
//! of the last `SNAPSHOT_SPAN` — and the way back in.
//!
//! Why: after a restart `faultline graph` showed nothing and the correlator
//! had no topology until traffic had taught it again. The driver takes a
//! snapshot periodically and at shutdown and restores it at start.
//!
//! Bounded: at most `SNAPSHOT_SPAN` of windows per interaction (not the whole
//! retention), and no zone splits, exemplar trace ids, metric series or
//! half-joined spans (those are re-learned within a join window). Restored
//! windows are marked as already emitted, so detectors do not see them twice.
//! A snapshot is input like any other: every entry is checked, and a bad one
//! is skipped and counted, never a panic.
//!
//! Not here: where the snapshot is kept (the driver's store) or when.

use serde::{Deserialize, Serialize};

use super::sketch::SavedSketch;
use super::window::align;
use super::{DependencyGraph, LatencySketch, WindowStats};
use crate::model::ServiceKind;
use crate::time::{Duration, Timestamp};

/// How much recent history a snapshot keeps per interaction.
pub const SNAPSHOT_SPAN: Duration = Duration::from_mins(15);

/// Format version; a snapshot of another version is not restored.
const VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GraphSnapshot {
    pub version: u32,
    pub taken_at: Timestamp,
    /// Window length the windows were counted in; a graph with another
    /// window length restores the services and edges but not the windows.
    pub window_ms: i64,
    pub services: Vec<SavedService>,
    pub edges: Vec<SavedEdge>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SavedService {
    pub name: String,
    pub kind: ServiceKind,
    pub instrumented: bool,
    pub last_seen_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SavedEdge {
    pub caller: String,
    pub callee: String,
    pub operation: String,
    pub last_seen_ms: i64,
    pub windows: Vec<SavedWindow>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SavedWindow {
    pub start_ms: i64,
    pub requests: u64,
    pub errors: u64,
    pub timeouts: u64,
    pub retries: u64,
    pub in_flight: u64,
    pub latency: SavedSketch,
}

/// What a restore took back and what it skipped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RestoreReport {
    pub services: usize,
    pub edges: usize,
    pub windows: usize,
    /// Entries refused: invalid names, full tables, inconsistent windows,
    /// windows outside the retention.
    pub skipped: usize,
}

impl DependencyGraph {
    /// The graph's services and the last `SNAPSHOT_SPAN` of each
    /// interaction's windows, as of `now`.
    pub fn snapshot(&self, now: Timestamp) -> GraphSnapshot {
        let from_ms = now.as_millis().saturating_sub(SNAPSHOT_SPAN.as_millis());
        let services = self
            .services
            .iter()
            .filter(|s| s.live)
            .map(|s| SavedService { name: s.name.as_str().to_owned(), kind: s.kind, instrumented: s.instrumented, last_seen_ms: s.last_seen_ms })
            .collect();
        let edges = self
            .edges
            .iter()
            .flatten()
            .map(|e| SavedEdge {
                caller: self.services[e.caller as usize].name.as_str().to_owned(),
                callee: self.services[e.callee as usize].name.as_str().to_owned(),
                operation: self.names.name(e.op).to_owned(),
                last_seen_ms: e.series.last_seen_ms,
                windows: e
                    .series
                    .range(from_ms, i64::MAX)
                    .map(|w| SavedWindow {
                        start_ms: w.start_ms,
                        requests: w.stats.requests,
                        errors: w.stats.errors,
                        timeouts: w.stats.timeouts,
                        retries: w.stats.retries,
                        in_flight: w.stats.in_flight,
                        latency: w.stats.latency.to_saved(),
                    })
                    .collect(),
            })
            .collect();
        GraphSnapshot { version: VERSION, taken_at: now, window_ms: self.window_ms(), services, edges }
    }

    /// Takes a snapshot back into this graph (normally a new, empty one at
    /// start). Services and edges go through the same interning and limits
    /// as live traffic; windows outside the retention, or that do not add
    /// up, are skipped. Restored windows count as emitted.
    pub fn restore(&mut self, snapshot: GraphSnapshot, now: Timestamp) -> RestoreReport {
        let mut report = RestoreReport::default();
        if snapshot.version != VERSION {
            report.skipped = snapshot.services.len() + snapshot.edges.len();
            return report;
        }
        let now_ms = now.as_millis();
        let idle_cutoff = now_ms.saturating_sub(self.cfg.idle_timeout.as_millis());
        let retention_cutoff = now_ms.saturating_sub(self.cfg.retention.as_millis());
        let wlen = self.window_ms();
        let same_windows = snapshot.window_ms == wlen;
        for s in snapshot.services {
            let seen = s.last_seen_ms.min(now_ms);
            if seen < idle_cutoff {
                report.skipped += 1;
                continue;
            }
            match self.intern_service(&s.name, s.kind, s.instrumented, seen) {
                Some(_) => report.services += 1,
                None => report.skipped += 1,
            }
        }
        for e in snapshot.edges {
            let seen = e.last_seen_ms.min(now_ms);
            if seen < idle_cutoff {
                report.skipped += 1;
                continue;
            }
            let ids = (|| {
                let caller = *self.service_ids.get(e.caller.as_str())?;
                let callee = *self.service_ids.get(e.callee.as_str())?;
                let op = self.intern_name(&e.operation)?;
                self.edge_index(caller, callee, op, seen)
            })();
            let Some(idx) = ids else {
                report.skipped += 1 + e.windows.len();
                continue;
            };
            report.edges += 1;
            if self.edges[idx as usize].as_ref().is_some_and(|e| e.series.last_seen_ms < seen) {
                self.touch_edge(idx, seen);
            }
            // Invariant: edge_index returns the index of an occupied slot.
            let Some(edge) = self.edges[idx as usize].as_mut() else { continue };
            let mut emitted = edge.series.emitted_before_ms;
            for w in e.windows {
                let aligned = w.start_ms == align(w.start_ms, wlen);
                let in_time = w.start_ms >= retention_cutoff && w.start_ms <= now_ms;
                let sketch = LatencySketch::from_saved(w.latency);
                match sketch {
                    Ok(latency) if same_windows && aligned && in_time && w.errors <= w.requests && w.timeouts <= w.requests => {
                        let st: &mut WindowStats = edge.series.window_mut(w.start_ms);
                        st.requests = st.requests.saturating_add(w.requests);
                        st.errors = st.errors.saturating_add(w.errors);
                        st.timeouts = st.timeouts.saturating_add(w.timeouts);
                        st.retries = st.retries.saturating_add(w.retries);
                        st.in_flight = st.in_flight.saturating_add(w.in_flight);
                        st.latency.merge(&latency);
                        emitted = emitted.max(w.start_ms + wlen);
                        report.windows += 1;
                    }
                    _ => report.skipped += 1,
                }
            }
            edge.series.emitted_before_ms = emitted;
        }
        report
    }
}
