//! Fuzz target: bounded gzip decompression never panics nor exceeds its limit.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(out) = faultline_receivers::gunzip(data, 1 << 16) {
        assert!(out.len() <= 1 << 16);
    }
});
