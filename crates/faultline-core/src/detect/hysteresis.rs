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
    Pending { since: Timestamp, n: u32 },
    Firing { since: Timestamp },
    Clearing { fired: Timestamp, since: Timestamp, n: u32 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    None,
    /// Just fired; `since` is when the condition started holding.
    Fired { since: Timestamp },
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
        if self.values.len() == self.capacity {
            self.values.pop_front();
        }
        self.values.push_back(v);
        self.stale += 1;
        // During warm-up every push matters; afterwards refresh periodically.
        if self.values.len() <= self.min_samples || self.stale >= REFRESH {
            self.cached = None;
        }
    }
    pub fn len(&self) -> usize {
        self.values.len()
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

    fn compute(&self) -> (f64, f64) {
        let mut v: Vec<f64> = self.values.iter().copied().collect();
        let med = median_in_place(&mut v);
        let mut dev: Vec<f64> = v.iter().map(|x| (x - med).abs()).collect();
        let mad = median_in_place(&mut dev) * 1.4826;
        (med, mad)
    }
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
