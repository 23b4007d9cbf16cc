//! Fuzz target `catalogue_yaml`: see `bodies::catalogue_yaml` (shared with the seeded mutation
//! run in the normal test suite).
#![no_main]

#[path = "../bodies.rs"]
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::catalogue_yaml(data));
