//! Fuzz target: OTLP/JSON trace decoding never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = faultline_receivers::decode_otlp_traces(data, faultline_receivers::Encoding::Json);
});
