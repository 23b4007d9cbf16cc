//! Fuzz target `alert_decoders`: see `bodies::alert_decoders` (shared with the seeded mutation
//! run in the normal test suite).
#![no_main]

#[path = "../bodies.rs"]
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::alert_decoders(data));
