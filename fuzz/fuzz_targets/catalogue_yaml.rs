//! Fuzz target: catalogue YAML (own format and Backstage) never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = faultline_core::catalogue::Catalogue::from_yaml(s);
        let _ = faultline_core::catalogue::Catalogue::from_backstage_yaml(s);
    }
});
