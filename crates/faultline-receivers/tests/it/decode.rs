//! Decoder tests: the zero-copy protobuf path agrees with prost + the
//! conversion used for JSON and gRPC; OTLP/JSON spec bodies; remote-write;
//! garbage, truncation and decompression bombs give typed errors.

use faultline_core::graph::{SpanKind, SpanStatus};
use faultline_receivers::{
    DecodeError, Encoding, decode_otlp_logs, decode_otlp_metrics, decode_otlp_traces, decode_remote_write, decode_traces_protobuf, gunzip, prompb,
    spans_from_request,
};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::{Event, Link};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use prost::Message;

use crate::SplitMix;

fn kv(k: &str, v: any_value::Value) -> KeyValue {
    KeyValue { key: k.into(), value: Some(AnyValue { value: Some(v) }), ..Default::default() }
}
fn s(k: &str, v: &str) -> KeyValue {
    kv(k, any_value::Value::StringValue(v.into()))
}
fn i(k: &str, v: i64) -> KeyValue {
    kv(k, any_value::Value::IntValue(v))
}

/// A random but plausible request: several resources, spans of every kind
/// with a mix of used and unused attributes, events, links, bad ids.
fn random_request(rng: &mut SplitMix) -> ExportTraceServiceRequest {
    let keys = [
        "http.request.method",
        "http.response.status_code",
        "http.status_code",
        "url.full",
        "http.url",
        "server.address",
        "net.peer.name",
        "peer.service",
        "db.system",
        "db.system.name",
        "db.query.text",
        "messaging.system",
        "messaging.destination.name",
        "rpc.grpc.status_code",
        "http.request.resend_count",
        "error.type",
        "user_agent.original",
    ];
    let mut req = ExportTraceServiceRequest::default();
    for r in 0..1 + rng.below(3) {
        let mut rs = ResourceSpans {
            resource: (rng.below(5) > 0)
                .then(|| Resource { attributes: vec![s("service.name", &format!("svc-{r}")), s("host.name", "h1")], ..Default::default() }),
            ..Default::default()
        };
        let mut ss = ScopeSpans::default();
        for _ in 0..rng.below(20) {
            let mut attrs = Vec::new();
            for _ in 0..rng.below(8) {
                let k = keys[rng.below(keys.len() as u64) as usize];
                attrs.push(match rng.below(4) {
                    0 => i(k, rng.below(600) as i64),
                    1 => s(k, &format!("v{}", rng.below(5))),
                    2 => kv(k, any_value::Value::ArrayValue(ArrayValue { values: vec![] })),
                    _ => kv(k, any_value::Value::DoubleValue(rng.below(10) as f64)),
                });
            }
            let id_len = if rng.below(20) == 0 { 7 } else { 8 };
            let span = Span {
                trace_id: (0..16).map(|_| rng.below(256) as u8).collect(),
                span_id: (0..id_len).map(|_| 1 + rng.below(255) as u8).collect(),
                parent_span_id: if rng.below(3) == 0 { vec![] } else { (0..8).map(|_| rng.below(256) as u8).collect() },
                name: format!("op{}", rng.below(4)),
                kind: rng.below(6) as i32,
                start_time_unix_nano: 1_800_000_000_000_000_000 + rng.below(1_000_000_000),
                end_time_unix_nano: 1_800_000_001_000_000_000 + rng.below(1_000_000_000),
                attributes: attrs,
                events: (0..rng.below(2))
                    .map(|_| Event {
                        name: if rng.below(2) == 0 { "exception".into() } else { "log".into() },
                        attributes: vec![s("exception.type", "TimeoutError")],
                        ..Default::default()
                    })
                    .collect(),
                links: (0..rng.below(3))
                    .map(|_| Link {
                        trace_id: (0..16).map(|_| rng.below(256) as u8).collect(),
                        span_id: (0..8).map(|_| rng.below(256) as u8).collect(),
                        ..Default::default()
                    })
                    .collect(),
                status: (rng.below(2) == 0)
                    .then(|| Status { code: rng.below(3) as i32, message: if rng.below(2) == 0 { "deadline exceeded".into() } else { String::new() } }),
                ..Default::default()
            };
            ss.spans.push(span);
        }
        rs.scope_spans.push(ss);
        req.resource_spans.push(rs);
    }
    req
}

#[test]
fn zero_copy_decoder_agrees_with_prost_on_random_requests() {
    let mut rng = SplitMix(7);
    let mut spans = 0;
    let mut rejected = 0;
    for _ in 0..300 {
        let req = random_request(&mut rng);
        let bytes = req.encode_to_vec();
        let fast = decode_traces_protobuf(&bytes).expect("valid protobuf decodes");
        let slow = spans_from_request(&ExportTraceServiceRequest::decode(bytes.as_slice()).unwrap());
        let fast_owned: Vec<_> = fast.spans.into_iter().map(|s| s.into_owned()).collect();
        assert_eq!(fast_owned, slow.spans);
        assert_eq!(fast.rejected, slow.rejected);
        spans += slow.spans.len();
        rejected += slow.rejected.rejected;
    }
    assert!(spans > 1000 && rejected > 10, "the generator exercised both paths: {spans} spans, {rejected} rejected");
}

#[test]
fn semantic_attributes_are_extracted() {
    let req = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource { attributes: vec![s("service.name", "checkout")], ..Default::default() }),
            scope_spans: vec![ScopeSpans {
                spans: vec![Span {
                    trace_id: vec![1; 16],
                    span_id: vec![2; 8],
                    parent_span_id: vec![3; 8],
                    name: "SELECT orders".into(),
                    kind: 3,
                    start_time_unix_nano: 1_000_000,
                    end_time_unix_nano: 6_000_000,
                    attributes: vec![
                        s("db.system.name", "postgresql"),
                        s("db.system", "mysql"),
                        s("server.address", "orders-db"),
                        i("http.request.resend_count", 2),
                        s("db.query.text", "SELECT * FROM orders"),
                    ],
                    status: Some(Status { code: 2, message: "boom".into() }),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let bytes = req.encode_to_vec();
    let d = decode_traces_protobuf(&bytes).unwrap();
    let sp = &d.spans[0];
    assert_eq!((sp.service.as_ref(), sp.kind, sp.status), ("checkout", SpanKind::Client, SpanStatus::Error));
    assert_eq!(sp.attributes.db_system.as_deref(), Some("postgresql"), "the current name wins");
    assert_eq!(sp.attributes.server_address.as_deref(), Some("orders-db"));
    assert_eq!(sp.attributes.resend_count, Some(2));
    assert_eq!(sp.duration_ms(), 5.0);
    assert!(matches!(sp.service, std::borrow::Cow::Borrowed(_)), "the fast path borrows");
}

#[test]
fn the_resource_availability_zone_reaches_every_span_in_both_decoders() {
    let req = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource { attributes: vec![s("cloud.availability_zone", "eu-west-1a"), s("service.name", "web")], ..Default::default() }),
            scope_spans: vec![ScopeSpans {
                spans: vec![Span { trace_id: vec![1; 16], span_id: vec![2; 8], kind: 3, ..Default::default() }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let bytes = req.encode_to_vec();
    let fast = decode_traces_protobuf(&bytes).unwrap();
    let slow = spans_from_request(&req);
    for sp in [&fast.spans[0], &slow.spans[0]] {
        assert_eq!((sp.service.as_ref(), sp.attributes.availability_zone.as_deref()), ("web", Some("eu-west-1a")));
    }
}

/// The OTLP/JSON example of the spec: hex ids, lowerCamelCase, enums as
/// numbers, int64 as a string.
const SPEC_JSON: &str = r#"{
  "resourceSpans": [{
    "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "my.service"}}]},
    "scopeSpans": [{
      "scope": {"name": "my.library", "version": "1.0.0", "attributes": [{"key": "my.scope.attribute", "value": {"stringValue": "some scope attribute"}}]},
      "spans": [{
        "traceId": "5B8EFFF798038103D269B633813FC60C",
        "spanId": "EEE19B7EC3C1B174",
        "parentSpanId": "EEE19B7EC3C1B173",
        "name": "I'm a server span",
        "startTimeUnixNano": "1544712660000000000",
        "endTimeUnixNano": "1544712661000000000",
        "kind": 2,
        "attributes": [
          {"key": "my.span.attr", "value": {"stringValue": "some value"}},
          {"key": "http.response.status_code", "value": {"intValue": "503"}}
        ]
      }]
    }]
  }]
}"#;

#[test]
fn otlp_json_spec_example_decodes() {
    let d = decode_otlp_traces(SPEC_JSON.as_bytes(), Encoding::Json).unwrap();
    assert_eq!(d.spans.len(), 1);
    let sp = &d.spans[0];
    assert_eq!(sp.service, "my.service");
    assert_eq!(sp.kind, SpanKind::Server);
    assert_eq!(sp.trace_id.0[0], 0x5b);
    assert_eq!(sp.parent_span_id.unwrap().0[7], 0x73);
    assert_eq!(sp.attributes.http_status, Some(503));
    assert!(sp.is_error());
    assert_eq!(sp.duration_ms(), 1000.0);
}

#[test]
fn invalid_ids_are_rejected_as_partial_success() {
    let bad = SPEC_JSON.replace("EEE19B7EC3C1B174", "");
    let d = decode_otlp_traces(bad.as_bytes(), Encoding::Json).unwrap();
    assert_eq!((d.spans.len(), d.rejected.rejected), (0, 1));
    assert!(d.rejected.message.contains("span_id"), "{}", d.rejected.message);
}

#[test]
fn garbage_and_truncation_are_typed_errors_never_panics() {
    let mut rng = SplitMix(42);
    let valid = random_request(&mut SplitMix(3)).encode_to_vec();
    assert!(valid.len() > 200);
    let mut errors = 0;
    for n in 0..valid.len() {
        // Every truncation either decodes (a field boundary) or is an error.
        if decode_traces_protobuf(&valid[..n]).is_err() {
            errors += 1;
        }
    }
    assert!(errors > valid.len() / 2, "most truncations are detected: {errors}/{}", valid.len());
    for _ in 0..2000 {
        let len = rng.below(200) as usize;
        let junk: Vec<u8> = (0..len).map(|_| rng.below(256) as u8).collect();
        let _ = decode_traces_protobuf(&junk);
        let _ = decode_otlp_metrics(&junk, Encoding::Protobuf);
        let _ = decode_otlp_logs(&junk, Encoding::Protobuf);
        let _ = decode_remote_write(&junk, 1 << 20);
    }
    let err = decode_traces_protobuf(&[0x0a, 0xff, 0xff, 0x01]).unwrap_err();
    assert_eq!(err.to_string(), "invalid OTLP protobuf: length-delimited field runs past the end at byte 4");
    assert!(matches!(decode_otlp_traces(b"{\"resourceSpans\": 3}", Encoding::Json), Err(DecodeError::Json(_))));
    // Remote-write is not OTLP, and its errors say so.
    let raw = [0x0a, 0xff, 0xff, 0x01];
    let err = decode_remote_write(&snap::raw::Encoder::new().compress_vec(&raw).unwrap(), 1 << 20).unwrap_err();
    assert_eq!(err.to_string(), "invalid remote-write protobuf: length-delimited field runs past the end at byte 4");
}

#[test]
fn gzip_bombs_are_refused() {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(&vec![0u8; 10 << 20]).unwrap();
    let bomb = enc.finish().unwrap();
    assert!(bomb.len() < 64 << 10);
    assert_eq!(gunzip(&bomb, 1 << 20), Err(DecodeError::TooLarge { limit: 1 << 20 }));
    assert_eq!(gunzip(&bomb, 16 << 20).unwrap().len(), 10 << 20);
    assert!(matches!(gunzip(b"not gzip", 100), Err(DecodeError::Gzip(_))));
}

/// (metric name, labels, samples (value, timestamp ms)).
pub type SeriesSpec<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a [(f64, i64)]);

pub fn remote_write_body(series: &[SeriesSpec<'_>]) -> Vec<u8> {
    let req = prompb::WriteRequest {
        timeseries: series
            .iter()
            .map(|(name, labels, samples)| prompb::TimeSeries {
                labels: std::iter::once(prompb::Label { name: "__name__".into(), value: (*name).into() })
                    .chain(labels.iter().map(|(k, v)| prompb::Label { name: (*k).into(), value: (*v).into() }))
                    .collect(),
                samples: samples.iter().map(|(v, t)| prompb::Sample { value: *v, timestamp: *t }).collect(),
            })
            .collect(),
    };
    snap::raw::Encoder::new().compress_vec(&req.encode_to_vec()).unwrap()
}

#[test]
fn remote_write_decodes_and_bounds_the_decompressed_size() {
    let body = remote_write_body(&[
        ("http_requests_total", &[("job", "api"), ("instance", "a:9090")], &[(1.0, 1000), (2.0, 2000)]),
        ("up", &[("job", "db")], &[(1.0, 1000)]),
    ]);
    let d = decode_remote_write(&body, 1 << 20).unwrap();
    assert_eq!(d.points.len(), 3);
    assert_eq!(d.points[0].name, "http_requests_total");
    assert_eq!(d.points[0].labels.get("instance").map(String::as_str), Some("a:9090"));
    assert_eq!(d.points[1].at.as_millis(), 2000);
    assert!(matches!(decode_remote_write(&body, 10), Err(DecodeError::TooLarge { limit: 10 })));
    assert!(matches!(decode_remote_write(b"\xff\xff\xff\xff\x0f", 1 << 20), Err(DecodeError::TooLarge { .. })));
    let unnamed = remote_write_body(&[("", &[("job", "x")], &[(1.0, 1)])]);
    assert_eq!(decode_remote_write(&unnamed, 1 << 20).unwrap().rejected.rejected, 1);
}
