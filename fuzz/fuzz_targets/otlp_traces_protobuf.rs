//! Fuzz target: the zero-copy OTLP trace decoder. Never panics; whenever
//! prost accepts the bytes, the zero-copy decoder accepts them too and yields
//! exactly the spans of the prost + conversion path; decoded spans then go
//! through the dependency graph.
#![no_main]

use faultline_core::graph::DependencyGraph;
use faultline_core::time::Timestamp;
use libfuzzer_sys::fuzz_target;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let fast = faultline_receivers::decode_traces_protobuf(data);
    if let Ok(req) = ExportTraceServiceRequest::decode(data) {
        let slow = faultline_receivers::spans_from_request(&req);
        let fast = fast.as_ref().expect("prost accepted what the zero-copy decoder refused");
        let owned: Vec<_> = fast.spans.iter().cloned().map(|s| s.into_owned()).collect();
        assert_eq!(owned, slow.spans, "decoders disagree");
        assert_eq!(fast.rejected, slow.rejected);
    }
    if let Ok(d) = fast {
        let mut g = DependencyGraph::default();
        let now = d.spans.first().map_or(Timestamp::EPOCH, |s| Timestamp::from_millis((s.end_unix_nanos / 1_000_000) as i64));
        g.observe_spans(&d.spans, now);
        let _ = g.tick(Timestamp::from_millis(now.as_millis().saturating_add(60_000)));
        let _ = g.graph(Timestamp::from_millis(i64::MIN), Timestamp::from_millis(i64::MAX));
    }
});
