//! Running a scenario end to end: compile the world, run it, and package the
//! series, totals and ground truth.
//!
//! What it is: the library entry point the CLI, tests and drills use. What it
//! is not: output formatting (see `series`, `svg` and `cli`).

use serde::Serialize;

use faultline_core::model::Interaction;
use faultline_core::{FailureModel, ServiceName, Signal, Subject, Timestamp};

use crate::scenario::{Dur, Scenario};
use crate::series::Series;
use crate::world::{RunTotals, World};

/// What really happened in a scenario, for scoring drills: fault start,
/// origin, incident class and failure model.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GroundTruth {
    pub scenario: String,
    pub defended: bool,
    pub class: String,
    pub failure_model: FailureModel,
    pub origin: Subject,
    pub fault_start_s: Option<f64>,
    pub fault_end_s: Option<f64>,
    pub amplifiers: Vec<String>,
    pub summary: String,
}

/// Everything one run produced.
#[derive(Clone, Debug, Serialize)]
pub struct RunOutput {
    pub ground_truth: GroundTruth,
    pub totals: RunTotals,
    pub series: Series,
}

fn subject(origin: &str) -> Subject {
    let name = |s: &str| {
        ServiceName::new(s.trim().to_owned()).unwrap_or_else(|_| {
            // Invariant: "unknown" is a valid name (non-empty, no control characters).
            ServiceName::new("unknown").expect("valid literal name")
        })
    };
    if let Some((a, b)) = origin.split_once("->") {
        Subject::Interaction { interaction: Interaction { caller: name(a), callee: name(b), operation: String::new() } }
    } else if let Some((s, r)) = origin.split_once('/') {
        Subject::Resource { service: name(s), resource: r.trim().to_owned() }
    } else {
        Subject::Service { service: name(origin) }
    }
}

impl GroundTruth {
    pub fn of(sc: &Scenario, defended: bool) -> GroundTruth {
        let start = sc.faults.iter().map(|f| f.at.0).reduce(f64::min);
        let end = sc.faults.iter().map(|f| f.duration.map(|d| f.at.0 + d.0).unwrap_or(sc.duration.0)).reduce(f64::max);
        GroundTruth {
            scenario: sc.name.trim_end_matches(" (defended)").to_owned(),
            defended,
            class: sc.ground_truth.class.clone(),
            failure_model: sc.ground_truth.failure_model,
            origin: subject(&sc.ground_truth.origin),
            fault_start_s: start,
            fault_end_s: end,
            amplifiers: sc.ground_truth.amplifiers.clone(),
            summary: sc.ground_truth.summary.clone(),
        }
    }
}

/// Runs a validated scenario to its end. `duration` overrides the scenario's.
pub fn run_scenario(sc: &Scenario, seed: Option<u64>, duration: Option<Dur>, defended: bool) -> RunOutput {
    let mut sc = sc.clone();
    if let Some(d) = duration {
        sc.duration = d;
        if sc.window.0 > d.0 {
            sc.window = d;
        }
    }
    let mut w = World::new(&sc, seed);
    w.run();
    RunOutput { ground_truth: GroundTruth::of(&sc, defended), totals: w.totals(), series: w.into_series() }
}

/// Runs a scenario window by window and hands every window's signals
/// (`Signal::Edge` per interaction, `Signal::Metric` for queue depth,
/// utilisation, pools, caches and cluster state) to `emit` as soon as the
/// window closes, so detectors can consume them in-process. `epoch` is the
/// timestamp virtual time 0 maps to.
pub fn run_with_signals(sc: &Scenario, seed: Option<u64>, defended: bool, epoch: Timestamp, mut emit: impl FnMut(Signal)) -> RunOutput {
    let mut w = World::new(sc, seed);
    let window = crate::engine::secs(sc.window.0).max(1);
    let mut emitted = 0;
    loop {
        let next = (w.windows_closed() as u64 + 1) * window;
        let done = w.run_until(next);
        while emitted < w.windows_closed() {
            for s in w.series().window_signals(emitted, epoch) {
                emit(s);
            }
            emitted += 1;
        }
        if done {
            break;
        }
    }
    RunOutput { ground_truth: GroundTruth::of(sc, defended), totals: w.totals(), series: w.into_series() }
}
