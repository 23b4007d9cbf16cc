//! Fuzz target `otlp_traces_json`: see `bodies::otlp_traces_json` (shared with the seeded mutation
//! run in the normal test suite).
#![no_main]

#[path = "../bodies.rs"]
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::otlp_traces_json(data));
