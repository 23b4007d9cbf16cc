//! Probes: the assertion language (Gatus conditions) used by synthetic checks
//! to catch "alive but wrong" answers.
//!
//! Not here: running probes (HTTP, schedules, locations) — that is the
//! server's probe runner — nor the detectors that turn probe results into
//! findings (`detect`).

pub mod condition;

pub use condition::{DisplayOptions, ProbeObservation, evaluate_condition, validate_condition};
