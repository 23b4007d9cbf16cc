//! Partition by zone split on interactions: an interaction whose calls
//! between two zones fail while calls inside each zone stay healthy is a
//! network partition between those zones (DESIGN.md §4, "edge errors split
//! by zone/region"), not a broken callee.
//!
//! Reads the `zones` breakdown of `Signal::Edge` windows (filled by the graph
//! from `cloud.availability_zone`, or by the simulator); windows without it
//! are ignored. Not here: the probe matrix between locations (see
//! `probes::PartitionDetector`), or deciding the incident class.

use std::collections::BTreeMap;

use super::hysteresis::{CLEAR_WINDOWS, Hysteresis, HysteresisConfig, Transition};
use super::{Detector, finding};
use crate::finding::{FailureModel, Finding, Subject};
use crate::model::Interaction;
use crate::signal::{EdgeWindow, Signal};

/// Fires per (interaction, zone pair) when the cross-zone error ratio is at
/// least `cross_error_ratio` above the same-zone ratio, and same-zone calls
/// (at least `min_requests` of them) fail at most `healthy_ratio`.
#[derive(Clone, Debug)]
pub struct ZonePartitionDetector {
    pub cross_error_ratio: f64,
    pub healthy_ratio: f64,
    pub min_requests: u64,
    pub hysteresis: HysteresisConfig,
    state: crate::bounded::LruMap<(Interaction, String, String), Hysteresis>,
    cleared: Vec<(String, Subject)>,
}

impl Default for ZonePartitionDetector {
    fn default() -> Self {
        ZonePartitionDetector {
            cross_error_ratio: 0.2,
            healthy_ratio: 0.05,
            min_requests: 10,
            // value = (cross − same) / cross_error_ratio, zero unless the same
            // zone is healthy: fire at 1, clear under 0.5.
            hysteresis: HysteresisConfig::counted(1.0, 0.5, 1, CLEAR_WINDOWS),
            state: crate::bounded::LruMap::new(super::MAX_TRACKED_KEYS),
            cleared: Vec::new(),
        }
    }
}

/// (requests, errors) by unordered zone pair.
type CrossZone<'a> = BTreeMap<(&'a str, &'a str), (u64, u64)>;

/// Requests and errors of one window, by unordered zone pair and inside zones.
fn split(w: &EdgeWindow) -> (CrossZone<'_>, (u64, u64)) {
    let mut cross: CrossZone<'_> = BTreeMap::new();
    let mut same = (0, 0);
    for z in &w.zones {
        let (a, b) = (z.caller_zone.as_str(), z.callee_zone.as_str());
        let slot = if a == b { &mut same } else { cross.entry(if a < b { (a, b) } else { (b, a) }).or_insert((0, 0)) };
        slot.0 += z.requests;
        slot.1 += z.errors.max(z.timeouts);
    }
    (cross, same)
}

impl Detector for ZonePartitionDetector {
    fn name(&self) -> &'static str {
        "zone_partition"
    }
    fn evicted(&self) -> u64 {
        self.state.evicted()
    }
    fn take_cleared(&mut self) -> Vec<(String, Subject)> {
        std::mem::take(&mut self.cleared)
    }
    fn clears(&self, kind: &str) -> bool {
        matches!(kind, "zone_partition")
    }
    fn observe(&mut self, signal: &Signal, now: crate::time::Timestamp) -> Vec<Finding> {
        let Signal::Edge(w) = signal else { return Vec::new() };
        if w.zones.is_empty() {
            return Vec::new();
        }
        let (cross, same) = split(w);
        let same_ratio = if same.0 >= self.min_requests { Some(same.1 as f64 / same.0 as f64) } else { None };
        let mut out = Vec::new();
        for ((a, b), (req, err)) in cross {
            let key = (w.interaction.clone(), a.to_owned(), b.to_owned());
            let known = self.state.contains_key(&key);
            let ratio = if req >= self.min_requests { err as f64 / req as f64 } else { 0.0 };
            let value = match same_ratio {
                Some(s) if s <= self.healthy_ratio => (ratio - s) / self.cross_error_ratio,
                _ => 0.0,
            };
            if !known && value <= 0.0 {
                continue; // keep state only for pairs that ever looked bad
            }
            let h = self.state.get_or_insert_with(key, Hysteresis::default);
            let subject = || Subject::Interaction { interaction: w.interaction.clone() };
            match h.update(&self.hysteresis, value, now) {
                Transition::Fired { since } => {
                    let s = same_ratio.unwrap_or(0.0);
                    let mut f = finding(
                        "zone_partition",
                        subject(),
                        FailureModel::Partition,
                        since,
                        value,
                        "cross_zone_error_ratio",
                        ratio,
                        Some(s),
                        Some(s + self.cross_error_ratio),
                        w.length,
                    );
                    f.evidence.measure =
                        format!("cross_zone_error_ratio (zones {a}↔{b}: {err} of {req} calls failing; same-zone calls {:.0}% failing)", s * 100.0);
                    out.push(f);
                }
                Transition::Cleared => self.cleared.push(("zone_partition".to_owned(), subject())),
                Transition::None => {}
            }
        }
        super::amplifiers::with_exemplars(&mut out, w);
        out
    }
}
