//! The built-in scenarios: one YAML file per canonical incident, each with a
//! `defended` patch, compiled into the binary.
//!
//! What it is: the list behind `faultline sim list` and the text behind
//! `faultline sim show` (users copy and edit it). What it is not: a second
//! format; these are ordinary scenario files, parsed like any user file.

use crate::scenario::{Scenario, ScenarioError};

/// (name, YAML text) of every built-in scenario.
pub const BUILTIN: &[(&str, &str)] = &[
    ("retry-storm", include_str!("../scenarios/retry-storm.yaml")),
    ("cache-stampede", include_str!("../scenarios/cache-stampede.yaml")),
    ("cascading-failure", include_str!("../scenarios/cascading-failure.yaml")),
    ("queue-overload", include_str!("../scenarios/queue-overload.yaml")),
    ("hot-partition", include_str!("../scenarios/hot-partition.yaml")),
    ("dns-outage", include_str!("../scenarios/dns-outage.yaml")),
    ("discovery-failure", include_str!("../scenarios/discovery-failure.yaml")),
    ("split-brain", include_str!("../scenarios/split-brain.yaml")),
    ("crash", include_str!("../scenarios/crash.yaml")),
    ("partition", include_str!("../scenarios/partition.yaml")),
    ("byzantine", include_str!("../scenarios/byzantine.yaml")),
    ("exhaustion", include_str!("../scenarios/exhaustion.yaml")),
    ("simpy-reference", include_str!("../scenarios/simpy-reference.yaml")),
];

/// The YAML text of a built-in scenario.
pub fn text(name: &str) -> Option<&'static str> {
    BUILTIN.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// A built-in scenario, parsed; `defended` applies its defended patch.
pub fn load(name: &str, defended: bool) -> Option<Result<Scenario, ScenarioError>> {
    let t = text(name)?;
    Some(if defended { Scenario::defended_from_yaml(t) } else { Scenario::from_yaml(t) })
}

pub fn names() -> impl Iterator<Item = &'static str> {
    BUILTIN.iter().map(|(n, _)| *n)
}
