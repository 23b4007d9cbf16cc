//! Integration tests of the simulator (one test binary): published-behaviour
//! anchors, built-in scenarios, determinism, scenario errors and outputs.

mod anchors;
mod determinism;
mod outputs;
mod scenarios;
