//! Fixed time windows of per-interaction (or per-service) statistics, and the
//! time-ordered series that holds them.
//!
//! A window is `[start, start + length)` with `start` aligned to a multiple of
//! the length since the epoch, so windows from different series line up and
//! merge. Not here: deciding what a request, error or retry is (the learner in
//! `graph/mod.rs` does that) or any clock.

use std::collections::VecDeque;

use super::NameId;
use super::sketch::LatencySketch;
use super::span::TraceId;
use crate::signal::MAX_EXEMPLARS;

/// Counts and latency of one interaction (or one service's ingress) in one
/// window.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WindowStats {
    pub requests: u64,
    pub errors: u64,
    pub timeouts: u64,
    pub retries: u64,
    /// Requests observed in flight at the window's end (from spans that
    /// started before and ended after it).
    pub in_flight: u64,
    pub latency: LatencySketch,
    /// Calls by (caller zone, callee zone) where both are known: requests,
    /// errors, timeouts. At most `MAX_ZONE_PAIRS` entries (zone names come
    /// from span attributes, so their number is not ours to trust); empty
    /// without zones.
    pub zones: Vec<ZoneStats>,
    /// Trace ids of the worst calls: failing before slow, then slowest
    /// first; at most `MAX_EXEMPLARS`.
    pub exemplars: Vec<(f64, TraceId)>,
}

/// Calls from one zone to another in one window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ZoneStats {
    pub caller_zone: NameId,
    pub callee_zone: NameId,
    pub requests: u64,
    pub errors: u64,
    pub timeouts: u64,
}

/// Zone pairs one window keeps; calls between further pairs are left out of
/// the split (still counted in the window's totals). Real deployments have a
/// handful of zones; the cap keeps `add_zone`'s linear search and the
/// window's memory bounded when a sender invents a zone per span.
pub const MAX_ZONE_PAIRS: usize = 128;

/// Score of a failing call in the exemplar ranking (above any latency).
const FAILED_SCORE: f64 = 1e15;

impl WindowStats {
    pub fn merge(&mut self, o: &WindowStats) {
        self.requests += o.requests;
        self.errors += o.errors;
        self.timeouts += o.timeouts;
        self.retries += o.retries;
        self.in_flight = self.in_flight.max(o.in_flight);
        self.latency.merge(&o.latency);
        for z in &o.zones {
            self.add_zone(z.caller_zone, z.callee_zone, z.requests, z.errors, z.timeouts);
        }
        for &(score, trace) in &o.exemplars {
            self.offer_exemplar(score, trace);
        }
    }

    pub fn add_zone(&mut self, caller_zone: NameId, callee_zone: NameId, requests: u64, errors: u64, timeouts: u64) {
        match self.zones.iter_mut().find(|z| z.caller_zone == caller_zone && z.callee_zone == callee_zone) {
            Some(z) => {
                z.requests += requests;
                z.errors += errors;
                z.timeouts += timeouts;
            }
            None => {
                if self.zones.len() < MAX_ZONE_PAIRS {
                    self.zones.push(ZoneStats { caller_zone, callee_zone, requests, errors, timeouts });
                }
            }
        }
    }

    /// Offers one call as an exemplar: kept if it is among the
    /// `MAX_EXEMPLARS` worst of the window (bounded, O(MAX_EXEMPLARS)).
    pub fn offer_call(&mut self, latency_ms: f64, failed: bool, trace: TraceId) {
        let score = if failed { FAILED_SCORE + latency_ms } else { latency_ms };
        self.offer_exemplar(score, trace);
    }

    fn offer_exemplar(&mut self, score: f64, trace: TraceId) {
        if !score.is_finite() || self.exemplars.iter().any(|e| e.1 == trace) {
            return;
        }
        if self.exemplars.len() < MAX_EXEMPLARS {
            self.exemplars.push((score, trace));
            return;
        }
        if let Some(min) = self.exemplars.iter_mut().min_by(|a, b| a.0.total_cmp(&b.0))
            && score > min.0
        {
            *min = (score, trace);
        }
    }

    /// Exemplar trace ids, worst first, as hex.
    pub fn exemplar_ids(&self) -> Vec<String> {
        let mut e = self.exemplars.clone();
        e.sort_by(|a, b| b.0.total_cmp(&a.0));
        e.iter().map(|(_, t)| t.to_hex()).collect()
    }

    /// Approximate bytes this window occupies (struct plus sketch buckets).
    pub fn bytes(&self) -> usize {
        std::mem::size_of::<Window<WindowStats>>()
            + self.latency.heap_bytes()
            + self.zones.capacity() * std::mem::size_of::<ZoneStats>()
            + self.exemplars.capacity() * std::mem::size_of::<(f64, TraceId)>()
    }
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Window<T> {
    pub start_ms: i64,
    pub stats: T,
}

/// Windows of one series, ordered by start.
#[derive(Clone, Debug)]
pub(crate) struct Series<T> {
    pub windows: VecDeque<Window<T>>,
    pub last_seen_ms: i64,
    /// Every window starting before this has been emitted as a signal.
    pub emitted_before_ms: i64,
}

impl<T: Default> Series<T> {
    pub fn new(now_ms: i64) -> Series<T> {
        Series { windows: VecDeque::new(), last_seen_ms: now_ms, emitted_before_ms: i64::MIN }
    }

    /// The window starting at `start_ms`, created if missing.
    pub fn window_mut(&mut self, start_ms: i64) -> &mut T {
        let pos = match self.windows.back() {
            None => None,
            Some(b) if b.start_ms < start_ms => None,
            Some(b) if b.start_ms == start_ms => Some(Ok(self.windows.len() - 1)),
            _ => Some(self.windows.binary_search_by_key(&start_ms, |w| w.start_ms)),
        };
        let i = match pos {
            None => {
                self.windows.push_back(Window { start_ms, stats: T::default() });
                self.windows.len() - 1
            }
            Some(Ok(i)) => i,
            Some(Err(i)) => {
                self.windows.insert(i, Window { start_ms, stats: T::default() });
                i
            }
        };
        &mut self.windows[i].stats
    }

    /// Drops windows that start before `cutoff_ms`.
    pub fn prune(&mut self, cutoff_ms: i64) {
        while self.windows.front().is_some_and(|w| w.start_ms < cutoff_ms) {
            self.windows.pop_front();
        }
    }

    /// Windows whose start lies in `[from_ms, to_ms)`.
    pub fn range(&self, from_ms: i64, to_ms: i64) -> impl Iterator<Item = &Window<T>> {
        let lo = self.windows.partition_point(|w| w.start_ms < from_ms);
        self.windows.range(lo..).take_while(move |w| w.start_ms < to_ms)
    }
}

/// Start of the window of `length_ms` containing `t_ms`.
pub(crate) fn align(t_ms: i64, length_ms: i64) -> i64 {
    t_ms.div_euclid(length_ms) * length_ms
}
