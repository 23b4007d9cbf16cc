//! Ingest benchmark (release): spans/s from OTLP protobuf bytes to updated
//! graph windows, in batches of 512 realistic spans, on one core; and memory
//! per interaction-window. Run with
//! `cargo bench -p faultline-receivers --bench ingest`.
//!
//! The payloads are generated (seeded) call trees: gateway → 3 services →
//! a database and a cache, each span with 8–12 realistic attributes, as the
//! OTel SDKs send them (one resource per service per batch). Every batch has
//! fresh trace ids, so pairing does real work.

use std::hint::black_box;
use std::time::Instant;

use faultline_core::graph::{DependencyGraph, GraphConfig};
use faultline_core::time::{Duration, Timestamp};
use faultline_receivers::decode_traces_protobuf;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use prost::Message;

struct Rng(u64);
impl Rng {
    fn u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn f(&mut self) -> f64 {
        (self.u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn s(k: &str, v: &str) -> KeyValue {
    KeyValue { key: k.into(), value: Some(AnyValue { value: Some(any_value::Value::StringValue(v.into())) }), ..Default::default() }
}
fn i(k: &str, v: i64) -> KeyValue {
    KeyValue { key: k.into(), value: Some(AnyValue { value: Some(any_value::Value::IntValue(v)) }), ..Default::default() }
}

const SERVICES: [&str; 4] = ["gateway", "cart", "checkout", "catalog"];

/// One batch of 512 spans as 4 resources.
fn batch(rng: &mut Rng, t0_ns: u64) -> Vec<u8> {
    let mut per_service: Vec<Vec<Span>> = vec![Vec::new(); SERVICES.len()];
    let mut n = 0;
    while n < 512 {
        let trace: Vec<u8> = (0..16).map(|_| rng.u64() as u8).collect();
        let id = |rng: &mut Rng| -> Vec<u8> { rng.u64().to_le_bytes().to_vec() };
        let start = t0_ns + (rng.f() * 1e9) as u64;
        let lat = |rng: &mut Rng, base: f64| (base * (1.0 + 3.0 * rng.f() * rng.f()) * 1e6) as u64;
        let callee = 1 + (rng.u64() % 3) as usize;
        let err = rng.f() < 0.02;
        let (root, gw_client, srv, db) = (id(rng), id(rng), id(rng), id(rng));
        let d_srv = lat(rng, 8.0);
        let d_db = lat(rng, 2.0);
        let common = |name: &str| {
            vec![
                s("http.request.method", "GET"),
                s("url.scheme", "http"),
                s("network.protocol.version", "1.1"),
                s("user_agent.original", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36"),
                s("http.route", name),
                i("server.port", 8080),
            ]
        };
        let span = |trace: &Vec<u8>, id: Vec<u8>, parent: Vec<u8>, name: &str, kind: i32, st: u64, d: u64, attrs: Vec<KeyValue>| Span {
            trace_id: trace.clone(),
            span_id: id,
            parent_span_id: parent,
            name: name.into(),
            kind,
            start_time_unix_nano: st,
            end_time_unix_nano: st + d,
            attributes: attrs,
            status: err.then(|| Status { code: 2, message: "upstream error".into() }),
            flags: 0x301,
            ..Default::default()
        };
        let route = ["/cart/{id}", "/checkout", "/items/{id}"][callee - 1];
        let mut a = common("/api/v1/*");
        a.push(i("http.response.status_code", if err { 502 } else { 200 }));
        a.push(s("client.address", "10.1.2.3"));
        per_service[0].push(span(&trace, root.clone(), vec![], "GET /api/v1/*", 2, start, d_srv + 2_000_000, a));
        let mut a = common(route);
        a.push(s("server.address", SERVICES[callee]));
        a.push(s("url.full", &format!("http://{}:8080{}", SERVICES[callee], route)));
        a.push(i("http.response.status_code", if err { 503 } else { 200 }));
        per_service[0].push(span(&trace, gw_client.clone(), root, "GET", 3, start + 500_000, d_srv + 1_000_000, a));
        let mut a = common(route);
        a.push(i("http.response.status_code", if err { 503 } else { 200 }));
        per_service[callee].push(span(&trace, srv.clone(), gw_client, &format!("GET {route}"), 2, start + 700_000, d_srv, a));
        let a = vec![
            s("db.system.name", "postgresql"),
            s("db.namespace", "shop"),
            s("db.operation.name", "SELECT"),
            s("db.query.text", "SELECT id, name, price FROM items WHERE id = $1"),
            s("server.address", "shop-db"),
            i("server.port", 5432),
            s("network.peer.address", "10.0.0.12"),
            s("db.collection.name", "items"),
        ];
        per_service[callee].push(span(&trace, db, srv, "SELECT items", 3, start + 1_000_000, d_db, a));
        n += 4;
    }
    let req = ExportTraceServiceRequest {
        resource_spans: per_service
            .into_iter()
            .enumerate()
            .map(|(k, spans)| ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![
                        s("service.name", SERVICES[k]),
                        s("service.version", "1.4.2"),
                        s("telemetry.sdk.language", "rust"),
                        s("telemetry.sdk.name", "opentelemetry"),
                        s("host.name", "node-7"),
                    ],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
                ..Default::default()
            })
            .collect(),
    };
    req.encode_to_vec()
}

/// CPU time of this thread in ns (from the scheduler), so the rate is per
/// core even when the shared machine is busy.
fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat").ok().and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok())).unwrap_or(0)
}

struct Clock(Instant, u64);
impl Clock {
    fn start() -> Clock {
        Clock(Instant::now(), cpu_ns())
    }
    /// (wall seconds, CPU seconds)
    fn stop(&self) -> (f64, f64) {
        (self.0.elapsed().as_secs_f64(), (cpu_ns() - self.1) as f64 / 1e9)
    }
}

fn min2(a: (f64, f64), b: (f64, f64)) -> (f64, f64) {
    (a.0.min(b.0), a.1.min(b.1))
}

fn main() {
    let batches_n = 400; // 204,800 spans per pass
    let mut rng = Rng(2026);
    let t0_ms: i64 = 1_800_000_000_000;
    let batches: Vec<Vec<u8>> = (0..batches_n).map(|b| batch(&mut rng, (t0_ms as u64 + b as u64 * 50) * 1_000_000)).collect();
    let spans_total: usize = batches.iter().map(|b| decode_traces_protobuf(b).map_or(0, |d| d.spans.len())).sum();
    let bytes_total: usize = batches.iter().map(Vec::len).sum();
    println!("payload: {batches_n} batches, {spans_total} spans, {:.0} bytes/span", bytes_total as f64 / spans_total as f64);

    let now = |b: usize| Timestamp::from_millis(t0_ms + b as i64 * 50 + 2000);
    let mut best = [(f64::MAX, f64::MAX); 4];
    for _round in 0..5 {
        // 1. decode only
        let t = Clock::start();
        for b in &batches {
            black_box(decode_traces_protobuf(b).map(|d| d.spans.len()).unwrap_or(0));
        }
        best[0] = min2(best[0], t.stop());
        // 2. decode + graph (the receiver's pure path)
        let mut g = DependencyGraph::new(GraphConfig::default());
        let t = Clock::start();
        for (k, b) in batches.iter().enumerate() {
            let Ok(d) = decode_traces_protobuf(b) else { continue };
            g.observe_spans(&d.spans, now(k));
        }
        best[1] = min2(best[1], t.stop());
        black_box(g.counters());
        // 3. decode + into_owned + graph (what the HTTP handler + queue do)
        let mut g = DependencyGraph::new(GraphConfig::default());
        let t = Clock::start();
        for (k, b) in batches.iter().enumerate() {
            let Ok(d) = decode_traces_protobuf(b) else { continue };
            let owned: Vec<_> = d.spans.into_iter().map(|s| s.into_owned()).collect();
            g.observe_spans(&owned, now(k));
        }
        best[2] = min2(best[2], t.stop());
        let c = g.counters();
        assert_eq!(c.calls_paired as usize, spans_total / 4, "every gateway→service call paired");
        assert_eq!(c.calls_uninstrumented as usize, spans_total / 4, "every DB call recorded");
        // 4. prost decode + conversion (the JSON/gRPC path's second half)
        let t = Clock::start();
        for b in &batches {
            let req = ExportTraceServiceRequest::decode(b.as_slice()).unwrap_or_default();
            black_box(faultline_receivers::spans_from_request(&req).spans.len());
        }
        best[3] = min2(best[3], t.stop());
    }
    let rate = |secs: f64| spans_total as f64 / secs;
    println!("best of 5 passes; spans per CPU-second of this thread (wall-clock rate in brackets)");
    let names = ["decode only (zero-copy)", "decode + graph update", "decode + owned copy + graph update", "prost decode + conversion (gRPC/JSON path)"];
    for (n, (wall, cpu)) in names.iter().zip(best) {
        println!("{n:<44} {:>10.0} spans/s  [{:>10.0} wall]", rate(cpu), rate(wall));
    }

    // Memory per interaction-window: 1,000 interactions × 360 windows (1 h of
    // 10 s windows), 50 calls per window with log-normal-ish latency.
    let mut g = DependencyGraph::new(GraphConfig { max_interactions_per_service: 10_000, window: Duration::from_secs(10), ..GraphConfig::default() });
    let mut rng = Rng(9);
    let end_ms = t0_ms + 3_600_000;
    let mut spans = Vec::new();
    for w in 0..360i64 {
        spans.clear();
        for e in 0..1000u32 {
            for _ in 0..50 {
                let start = (t0_ms + w * 10_000 + (rng.f() * 9_000.0) as i64) as u64 * 1_000_000;
                let lat_ms = 5.0 * (2.0 * (rng.f() + rng.f() + rng.f() - 1.5)).exp();
                let mut sp = faultline_core::graph::Span {
                    service: format!("svc-{}", e % 50).into(),
                    kind: faultline_core::graph::SpanKind::Client,
                    name: format!("op-{e}").into(),
                    start_unix_nanos: start,
                    end_unix_nanos: start + (lat_ms * 1e6) as u64,
                    ..Default::default()
                };
                sp.trace_id.0[..8].copy_from_slice(&rng.u64().to_le_bytes());
                sp.span_id.0 = rng.u64().to_le_bytes();
                sp.attributes.set("db.system", faultline_core::graph::AttrValue::Str("postgresql".into()));
                spans.push(sp);
            }
        }
        g.observe_spans(&spans, Timestamp::from_millis(t0_ms + w * 10_000 + 9_999));
    }
    g.tick(Timestamp::from_millis(end_ms));
    let m = g.memory();
    println!(
        "memory: {} interactions, {} windows, {} bytes in windows = {:.0} bytes per interaction-window",
        m.interactions,
        m.interaction_windows,
        m.interaction_window_bytes,
        m.interaction_window_bytes as f64 / m.interaction_windows.max(1) as f64
    );
}
