//! Anti-flapping building blocks shared by every detector: `Hysteresis`
//! (separate fire and clear thresholds, minimum durations to fire and to
//! clear) and `RobustBaseline` (median / MAD of recent healthy values, frozen
//! while a detector is firing so it never learns the incident).
//!
//! Not here: what a detector measures; these types only see numbers.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::time::{Duration, Timestamp};

/// Fire at `value >= fire` held for `min_fire` AND for `fire_count`
/// consecutive observations; clear at `value < clear` held for `min_clear`
/// AND `clear_count` observations. `clear <= fire` leaves a dead band. Counts
/// make the defaults independent of the window length (1 s in the simulator,
/// 1 min in production); durations add wall-clock minimums where wanted.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct HysteresisConfig {
    pub fire: f64,
    pub clear: f64,
    pub min_fire: Duration,
    pub min_clear: Duration,
    pub fire_count: u32,
    pub clear_count: u32,
}

impl HysteresisConfig {
    /// Duration-based; one observation suffices on each side.
    pub const fn new(fire: f64, clear: f64, min_fire: Duration, min_clear: Duration) -> HysteresisConfig {
        HysteresisConfig { fire, clear, min_fire, min_clear, fire_count: 1, clear_count: 1 }
    }
    /// Count-based: `fire_n` consecutive observations to fire, `clear_n` to clear.
    pub const fn counted(fire: f64, clear: f64, fire_n: u32, clear_n: u32) -> HysteresisConfig {
        HysteresisConfig { fire, clear, min_fire: Duration::ZERO, min_clear: Duration::ZERO, fire_count: fire_n, clear_count: clear_n }
    }
}

/// Default number of consecutive quiet windows before a detector clears.
/// Measured on the simulator's DNS outage: with 3 the finding re-fired every
/// 5 windows as the resolver cache's TTL cycled; 10 rides that out.
pub const CLEAR_WINDOWS: u32 = 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum HState {
    #[default]
    Quiet,
    Pending {
        since: Timestamp,
        n: u32,
    },
    Firing {
        since: Timestamp,
    },
    Clearing {
        fired: Timestamp,
        since: Timestamp,
        n: u32,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    None,
    /// Just fired; `since` is when the condition started holding.
    Fired {
        since: Timestamp,
    },
    Cleared,
}

/// One subject's hysteresis state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hysteresis {
    pub state: HState,
}

impl Hysteresis {
    pub fn is_firing(&self) -> bool {
        matches!(self.state, HState::Firing { .. } | HState::Clearing { .. })
    }

    /// Feeds one observation. Non-finite values count as "condition false".
    pub fn update(&mut self, cfg: &HysteresisConfig, value: f64, now: Timestamp) -> Transition {
        let above = value.is_finite() && value >= cfg.fire;
        let below = !value.is_finite() || value < cfg.clear;
        let fire_ok = |since: Timestamp, n: u32| now - since >= cfg.min_fire && n >= cfg.fire_count;
        let clear_ok = |since: Timestamp, n: u32| now - since >= cfg.min_clear && n >= cfg.clear_count;
        let (next, t) = match self.state {
            HState::Quiet if above => {
                if fire_ok(now, 1) {
                    (HState::Firing { since: now }, Transition::Fired { since: now })
                } else {
                    (HState::Pending { since: now, n: 1 }, Transition::None)
                }
            }
            HState::Quiet => (HState::Quiet, Transition::None),
            HState::Pending { since, n } if above => {
                if fire_ok(since, n + 1) {
                    (HState::Firing { since }, Transition::Fired { since })
                } else {
                    (HState::Pending { since, n: n + 1 }, Transition::None)
                }
            }
            HState::Pending { .. } => (HState::Quiet, Transition::None),
            HState::Firing { since } if below => {
                if clear_ok(now, 1) {
                    (HState::Quiet, Transition::Cleared)
                } else {
                    (HState::Clearing { fired: since, since: now, n: 1 }, Transition::None)
                }
            }
            HState::Firing { since } => (HState::Firing { since }, Transition::None),
            HState::Clearing { fired, since, n } if below => {
                if clear_ok(since, n + 1) {
                    (HState::Quiet, Transition::Cleared)
                } else {
                    (HState::Clearing { fired, since, n: n + 1 }, Transition::None)
                }
            }
            HState::Clearing { fired, .. } => (HState::Firing { since: fired }, Transition::None),
        };
        self.state = next;
        t
    }
}

/// Median and scaled MAD of the last `capacity` healthy values.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RobustBaseline {
    values: VecDeque<f64>,
    /// The same values, sorted (kept in step with `values` by `push`;
    /// rebuilt if it is not, e.g. after deserialising), so the median is
    /// an index and the MAD a merge of the two sides — no selection.
    #[serde(skip)]
    sorted: Vec<f64>,
    capacity: usize,
    /// Fewer values than this: no baseline yet (warm-up).
    min_samples: usize,
    /// (median, scaled MAD) and pushes since it was computed: a baseline
    /// moves slowly, so it is recomputed every `REFRESH` pushes, not per call.
    cached: Option<(f64, f64)>,
    stale: usize,
}

const REFRESH: usize = 16;

impl RobustBaseline {
    pub fn new(capacity: usize, min_samples: usize) -> RobustBaseline {
        RobustBaseline {
            values: VecDeque::with_capacity(capacity),
            sorted: Vec::with_capacity(capacity),
            capacity: capacity.max(1),
            min_samples: min_samples.max(1),
            cached: None,
            stale: 0,
        }
    }
    pub fn push(&mut self, v: f64) {
        if !v.is_finite() {
            return;
        }
        let in_step = self.sorted.len() == self.values.len();
        let evicted = if self.values.len() == self.capacity { self.values.pop_front() } else { None };
        self.values.push_back(v);
        if in_step {
            // Values are finite, so `<` orders them. Replacing the evicted
            // value moves only the elements between its slot and v's.
            let s = &mut self.sorted;
            match evicted {
                Some(old) => {
                    let i = s.partition_point(|x| *x < old).min(s.len() - 1);
                    let j = s.partition_point(|x| *x < v);
                    if j > i {
                        s.copy_within(i + 1..j, i);
                        s[j - 1] = v;
                    } else {
                        s.copy_within(j..i, j + 1);
                        s[j] = v;
                    }
                }
                None => {
                    let j = s.partition_point(|x| *x < v);
                    s.insert(j, v);
                }
            }
        }
        self.stale += 1;
        // During warm-up every push matters; afterwards refresh periodically.
        if self.values.len() <= self.min_samples || self.stale >= REFRESH {
            self.cached = None;
        }
    }
    /// The mean of the values held (`None` when empty). Not robust, but
    /// unbiased where the median is not: of sparse counts (a few errors
    /// among dozens of requests) most windows hold none, so the median
    /// is 0 while the rate is not.
    pub fn mean(&self) -> Option<f64> {
        (!self.values.is_empty()).then(|| self.values.iter().sum::<f64>() / self.values.len() as f64)
    }

    /// The values the baseline holds, oldest first (what a restart keeps).
    pub fn values(&self) -> impl Iterator<Item = f64> + '_ {
        self.values.iter().copied()
    }
    pub fn len(&self) -> usize {
        self.values.len()
    }
    #[cfg(test)]
    pub(crate) fn sorted_values(&self) -> &[f64] {
        &self.sorted
    }
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
    /// (median, MAD × 1.4826) once warmed up (refreshed every few pushes).
    pub fn stats(&mut self) -> Option<(f64, f64)> {
        if self.values.len() < self.min_samples {
            return None;
        }
        if let Some(c) = self.cached {
            return Some(c);
        }
        let s = self.compute();
        self.cached = Some(s);
        self.stale = 0;
        Some(s)
    }

    fn compute(&mut self) -> (f64, f64) {
        if self.sorted.len() != self.values.len() {
            self.sorted = self.values.iter().copied().collect();
            self.sorted.sort_by(f64::total_cmp);
        }
        let (med, mad) = sorted_median_mad(&self.sorted);
        (med, mad * 1.4826)
    }
}

/// Median and (unscaled) median absolute deviation of sorted values, in
/// O(n): the deviations left of the median grow leftwards and those right
/// of it rightwards, so their k-th smallest is a merge of the two runs.
/// Same definitions as `median_in_place` (even n: mean of the middle two).
pub fn sorted_median_mad(v: &[f64]) -> (f64, f64) {
    let n = v.len();
    if n == 0 {
        return (0.0, 0.0);
    }
    let med = if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 };
    // Walk the deviations in increasing order up to index n/2.
    let mut right = v.partition_point(|x| *x < med);
    let mut left = right; // next on the left is left - 1
    let mut prev = 0.0;
    let mut cur = 0.0;
    for _ in 0..=n / 2 {
        let r = v.get(right).map(|x| x - med);
        let l = left.checked_sub(1).map(|i| med - v[i]);
        prev = cur;
        cur = match (l, r) {
            (Some(l), Some(r)) if l <= r => {
                left -= 1;
                l
            }
            (_, Some(r)) => {
                right += 1;
                r
            }
            (Some(l), None) => {
                left -= 1;
                l
            }
            (None, None) => break,
        };
    }
    let mad = if n % 2 == 1 { cur } else { (prev + cur) / 2.0 };
    (med, mad)
}

/// Median of a slice (reordered in place, O(n) selection); 0 when empty.
pub fn median_in_place(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let n = v.len();
    let (lower, &mut mid, _) = v.select_nth_unstable_by(n / 2, f64::total_cmp);
    if n % 2 == 1 {
        mid
    } else {
        // The other middle value is the largest of the lower part.
        let below = lower.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (below + mid) / 2.0
    }
}
