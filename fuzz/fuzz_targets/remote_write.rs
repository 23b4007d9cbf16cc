//! Fuzz target: Prometheus remote-write decoding, both on raw bytes (snappy
//! framing errors) and on snappy-compressed fuzz bytes (protobuf errors).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = faultline_receivers::decode_remote_write(data, 1 << 20);
    if let Ok(c) = snap::raw::Encoder::new().compress_vec(data) {
        let _ = faultline_receivers::decode_remote_write(&c, 1 << 20);
    }
});
