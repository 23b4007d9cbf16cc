//! Detectors: sans-IO components that turn `Signal`s into `Finding`s, one
//! per failure model or amplifier (DESIGN.md §4), and `DetectorSet`, which
//! runs all of them.
//!
//! Each detector is a state machine: `observe(signal, now)` and `tick(now)`
//! return the findings that just fired (each once, until it clears and fires
//! again). The engine drives them with the real clock, the simulator with
//! virtual time — the same code. Not here: correlation of findings into
//! incidents, or any IO.

pub mod amplifiers;
pub mod checkin;
pub mod hysteresis;
pub mod probes;
pub mod trend;
pub mod zones;

#[cfg(test)]
mod tests;

use crate::finding::{Evidence, FailureModel, Finding, Subject};
use crate::ids::ServiceName;
use crate::signal::Signal;
use crate::time::{Duration, Timestamp};

pub use hysteresis::{Hysteresis, HysteresisConfig, RobustBaseline, Transition};

/// A sans-IO detector.
pub trait Detector {
    /// Stable name, e.g. `retry_amplification`.
    fn name(&self) -> &'static str;
    /// Feeds one signal; returns findings that fired because of it.
    fn observe(&mut self, signal: &Signal, now: Timestamp) -> Vec<Finding>;
    /// Lets time pass (missing check-ins, silent sources, closing windows).
    fn tick(&mut self, _now: Timestamp) -> Vec<Finding> {
        Vec::new()
    }
    /// Whether `observe` ever uses a `Signal::Edge`. Edge windows are the
    /// bulk of all signals; `DetectorSet` does not offer them to detectors
    /// that answer false. Default true (always safe).
    fn reads_edges(&self) -> bool {
        true
    }
    /// Findings (kind, subject) whose condition stopped holding since the
    /// last call. Detectors that only report firing keep the default.
    fn take_cleared(&mut self) -> Vec<(String, Subject)> {
        Vec::new()
    }
    /// Whether this detector reports a clear for findings of `kind` (it
    /// emits them and overrides `take_cleared`). A finding of such a kind
    /// carried across a restart is re-evaluated: a fresh detector that does
    /// not fire it again will never clear it either.
    fn clears(&self, _kind: &str) -> bool {
        false
    }
    /// Keys (services, metrics, resources, probes, …) this detector forgot
    /// to stay under [`MAX_TRACKED_KEYS`] (only grows). Detectors whose state
    /// does not grow per key keep the default.
    fn evicted(&self) -> u64 {
        0
    }
    /// What this detector has learnt that is worth keeping across a restart
    /// (its baselines, never its firing state), as JSON; `None`: nothing.
    fn learned(&self) -> Option<serde_json::Value> {
        None
    }
    /// Takes back what `learned` returned in an earlier run. Bad input is
    /// an error and leaves the detector as it was.
    fn relearn(&mut self, _saved: serde_json::Value) -> Result<(), String> {
        Ok(())
    }
}

/// The most keys one detector table tracks (a service × metric name, a
/// service × resource, a probe × location, …). A new key in a full table
/// evicts the least recently seen one ([`crate::bounded::LruMap`]), so a
/// flood of distinct names costs at most this many entries per table and
/// pushes out what has been quiet longest. A quiet source evicted this way
/// is forgotten: a vanished-source finding for it needs it to be seen again.
pub const MAX_TRACKED_KEYS: usize = 10_000;

/// A finding with its evidence, in one call.
#[allow(clippy::too_many_arguments)]
pub fn finding(
    kind: &str,
    subject: Subject,
    failure_model: FailureModel,
    started_at: Timestamp,
    strength: f64,
    measure: &str,
    observed: f64,
    baseline: Option<f64>,
    threshold: Option<f64>,
    window: Duration,
) -> Finding {
    Finding {
        kind: kind.to_owned(),
        subject,
        failure_model,
        started_at,
        strength: if strength.is_finite() { strength } else { f64::MAX },
        evidence: Evidence { measure: measure.to_owned(), observed, baseline, threshold, window, exemplar_trace_ids: Vec::new() },
    }
}

/// A service name written in this source as a literal.
pub(crate) fn literal_service(name: &'static str) -> ServiceName {
    // Invariant: callers pass short lowercase ASCII literals ("dns",
    // "network", "check-ins", "probes"), which always satisfy ServiceName's
    // rules (non-empty, ≤ 256 bytes, no control characters).
    ServiceName::new(name).expect("literal service names are valid")
}

pub(crate) fn service_subject(name: &str) -> Option<Subject> {
    ServiceName::new(name).ok().map(|service| Subject::Service { service })
}

/// `Resource` when there is a resource name, else `Service`.
pub(crate) fn resource_subject(service: &str, resource: &str) -> Option<Subject> {
    let service = ServiceName::new(service).ok()?;
    Some(if resource.is_empty() { Subject::Service { service } } else { Subject::Resource { service, resource: resource.to_owned() } })
}

/// Every detector, fed the same signals. Order is fixed, so output is
/// deterministic.
pub struct DetectorSet {
    detectors: Vec<Box<dyn Detector + Send>>,
    /// Indices of the detectors that read edge windows, in order.
    edge_readers: Vec<usize>,
}

impl Default for DetectorSet {
    fn default() -> Self {
        DetectorSet::standard()
    }
}

impl DetectorSet {
    /// All built-in detectors with their default tunables. Check-ins and the
    /// partition matrix need configuration: use `with_checkins` /
    /// `with_partition_targets` or `push`.
    pub fn standard() -> DetectorSet {
        let mut set = DetectorSet::empty();
        let all: Vec<Box<dyn Detector + Send>> = vec![
            Box::new(amplifiers::EdgeDetectors::default()),
            Box::new(amplifiers::LoadSkewDetector::default()),
            Box::new(amplifiers::BroadFailureDetector::default()),
            Box::new(amplifiers::CacheCollapseDetector::default()),
            Box::new(amplifiers::LeaderConflictDetector::default()),
            Box::new(zones::ZonePartitionDetector::default()),
            Box::new(trend::ExhaustionDetector::default()),
            Box::new(trend::QueueGrowthDetector::default()),
            Box::new(probes::ProbeFailureDetector::default()),
            Box::new(probes::CanaryDetector::default()),
            Box::new(probes::SourceVanishedDetector::default()),
            Box::new(probes::WrongAnswerDetector::default()),
        ];
        for d in all {
            set.push(d);
        }
        set
    }
    pub fn empty() -> DetectorSet {
        DetectorSet { detectors: Vec::new(), edge_readers: Vec::new() }
    }
    pub fn push(&mut self, d: Box<dyn Detector + Send>) {
        if d.reads_edges() {
            self.edge_readers.push(self.detectors.len());
        }
        self.detectors.push(d);
    }
    pub fn with_checkins(mut self, monitor: checkin::CheckInMonitor) -> DetectorSet {
        self.push(Box::new(monitor));
        self
    }
    pub fn with_partition_targets(mut self, targets: std::collections::BTreeMap<String, String>) -> DetectorSet {
        self.push(Box::new(probes::PartitionDetector::new(targets)));
        self
    }
    /// Adds one live burn-rate monitor per SLO (`slo_burn` findings).
    pub fn with_slos(mut self, specs: Vec<crate::slo::SloSpec>) -> DetectorSet {
        for s in specs {
            self.push(Box::new(crate::slo::SloMonitor::new(s)));
        }
        self
    }
    pub fn names(&self) -> Vec<&'static str> {
        self.detectors.iter().map(|d| d.name()).collect()
    }
    pub fn observe(&mut self, signal: &Signal, now: Timestamp) -> Vec<Finding> {
        // A plain loop: nearly every call returns nothing, and the iterator
        // adapters of `flat_map().collect()` cost more than the detectors.
        let mut out = Vec::new();
        if let Signal::Edge(_) = signal {
            for &i in &self.edge_readers {
                if let Some(d) = self.detectors.get_mut(i) {
                    let f = d.observe(signal, now);
                    if !f.is_empty() {
                        out.extend(f);
                    }
                }
            }
            return out;
        }
        for d in self.detectors.iter_mut() {
            let f = d.observe(signal, now);
            if !f.is_empty() {
                out.extend(f);
            }
        }
        out
    }
    /// Every detector's baselines worth keeping across a restart, by name.
    pub fn learned(&self) -> std::collections::BTreeMap<String, serde_json::Value> {
        let mut out = std::collections::BTreeMap::new();
        for d in &self.detectors {
            if let Some(v) = d.learned() {
                out.entry(d.name().to_owned()).or_insert(v);
            }
        }
        out
    }
    /// Gives each detector back what it learnt in an earlier run; returns
    /// the names of those that refused theirs (with why).
    pub fn relearn(&mut self, mut saved: std::collections::BTreeMap<String, serde_json::Value>) -> Vec<String> {
        let mut refused = Vec::new();
        for d in &mut self.detectors {
            if let Some(v) = saved.remove(d.name())
                && let Err(e) = d.relearn(v)
            {
                refused.push(format!("{}: {e}", d.name()));
            }
        }
        refused
    }
    /// Whether some detector reports clears for findings of `kind`.
    pub fn clears(&self, kind: &str) -> bool {
        self.detectors.iter().any(|d| d.clears(kind))
    }
    /// Everything that cleared since the last call, across detectors.
    pub fn take_cleared(&mut self) -> Vec<(String, Subject)> {
        self.detectors.iter_mut().flat_map(|d| d.take_cleared()).collect()
    }
    pub fn tick(&mut self, now: Timestamp) -> Vec<Finding> {
        self.detectors.iter_mut().flat_map(|d| d.tick(now)).collect()
    }
    /// Keys each detector evicted so far, by detector name (for `/metrics`).
    pub fn evicted(&self) -> Vec<(&'static str, u64)> {
        self.detectors.iter().map(|d| (d.name(), d.evicted())).filter(|(_, n)| *n > 0).collect()
    }
}
