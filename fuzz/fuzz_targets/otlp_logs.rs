//! Fuzz target `otlp_logs`: see `bodies::otlp_logs` (shared with the seeded mutation
//! run in the normal test suite).
#![no_main]

#[path = "../bodies.rs"]
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::otlp_logs(data));
