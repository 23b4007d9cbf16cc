//! Fuzz target `otlp_metrics`: see `bodies::otlp_metrics` (shared with the seeded mutation
//! run in the normal test suite).
#![no_main]

#[path = "../bodies.rs"]
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::otlp_metrics(data));
