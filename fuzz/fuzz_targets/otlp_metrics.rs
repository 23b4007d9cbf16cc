//! Fuzz target: OTLP metrics decoding (protobuf and JSON) never panics, and
//! decoded points feed the graph's metric windows.
#![no_main]

use faultline_core::graph::DependencyGraph;
use faultline_receivers::{Encoding, decode_otlp_metrics};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let enc = if data.first() == Some(&b'{') { Encoding::Json } else { Encoding::Protobuf };
    if let Ok(d) = decode_otlp_metrics(data, enc) {
        let mut g = DependencyGraph::default();
        for p in &d.points {
            g.observe_metric(p, p.at);
        }
    }
});
