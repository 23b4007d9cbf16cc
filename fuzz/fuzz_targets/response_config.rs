//! Fuzz target `response_config`: see `bodies::response_config` (shared with the seeded mutation
//! run in the normal test suite).
#![no_main]

#[path = "../bodies.rs"]
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::response_config(data));
