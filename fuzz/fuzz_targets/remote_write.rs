//! Fuzz target `remote_write`: see `bodies::remote_write` (shared with the seeded mutation
//! run in the normal test suite).
#![no_main]

#[path = "../bodies.rs"]
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::remote_write(data));
