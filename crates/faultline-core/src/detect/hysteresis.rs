//! Anti-flapping building blocks shared by every detector: `Hysteresis`
//! (separate fire and clear thresholds, minimum durations to fire and to
//! clear) and `RobustBaseline` (median / MAD of recent healthy values, frozen
//! while a detector is firing so it never learns the incident).
//!
//! Not here: what a detector measures; these types only see numbers.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::time::{Duration, Timestamp};

/// Fire at `value >= fire` held for `min_fire`; clear at `value < clear` held
/// for `min_clear`. `clear <= fire` gives a dead band between them.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct HysteresisConfig {
    pub fire: f64,
    pub clear: f64,
    pub min_fire: Duration,
    pub min_clear: Duration,
}

impl HysteresisConfig {
    pub const fn new(fire: f64, clear: f64, min_fire: Duration, min_clear: Duration) -> HysteresisConfig {
        HysteresisConfig { fire, clear, min_fire, min_clear }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum HState {
    #[default]
    Quiet,
    Pending { since: Timestamp },
    Firing { since: Timestamp },
    Clearing { fired: Timestamp, since: Timestamp },
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
        let (next, t) = match self.state {
            HState::Quiet if above => {
                if cfg.min_fire <= Duration::ZERO {
                    (HState::Firing { since: now }, Transition::Fired { since: now })
                } else {
                    (HState::Pending { since: now }, Transition::None)
                }
            }
            HState::Quiet => (HState::Quiet, Transition::None),
            HState::Pending { since } if above => {
                if now - since >= cfg.min_fire {
                    (HState::Firing { since }, Transition::Fired { since })
                } else {
                    (HState::Pending { since }, Transition::None)
                }
            }
            HState::Pending { .. } => (HState::Quiet, Transition::None),
            HState::Firing { since } if below => {
                if cfg.min_clear <= Duration::ZERO {
                    (HState::Quiet, Transition::Cleared)
                } else {
                    (HState::Clearing { fired: since, since: now }, Transition::None)
                }
            }
            HState::Firing { since } => (HState::Firing { since }, Transition::None),
            HState::Clearing { fired, since } if below => {
                if now - since >= cfg.min_clear {
                    (HState::Quiet, Transition::Cleared)
                } else {
                    (HState::Clearing { fired, since }, Transition::None)
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
