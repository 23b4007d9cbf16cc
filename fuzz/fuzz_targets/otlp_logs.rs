//! Fuzz target: OTLP logs decoding (protobuf and JSON) never panics.
#![no_main]

use faultline_receivers::{Encoding, decode_otlp_logs};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let enc = if data.first() == Some(&b'{') { Encoding::Json } else { Encoding::Protobuf };
    let _ = decode_otlp_logs(data, enc);
});
