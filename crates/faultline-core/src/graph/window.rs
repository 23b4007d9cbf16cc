//! Fixed time windows of per-interaction (or per-service) statistics, and the
//! time-ordered series that holds them.
//!
//! A window is `[start, start + length)` with `start` aligned to a multiple of
//! the length since the epoch, so windows from different series line up and
//! merge. Not here: deciding what a request, error or retry is (the learner in
//! `graph/mod.rs` does that) or any clock.

use std::collections::VecDeque;

use super::sketch::LatencySketch;

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
}

impl WindowStats {
    pub fn merge(&mut self, o: &WindowStats) {
        self.requests += o.requests;
        self.errors += o.errors;
        self.timeouts += o.timeouts;
        self.retries += o.retries;
        self.in_flight = self.in_flight.max(o.in_flight);
        self.latency.merge(&o.latency);
    }

    /// Approximate bytes this window occupies (struct plus sketch buckets).
    pub fn bytes(&self) -> usize {
        std::mem::size_of::<Window<WindowStats>>() + self.latency.heap_bytes()
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
