//! Unit tests of the dependency-graph learner: pairing, uninstrumented peers,
//! messaging, errors/timeouts/retries, windows, bounds, queries.

use std::borrow::Cow;

use proptest::prelude::*;

use super::*;
use crate::catalogue::Catalogue;

const T0: i64 = 1_800_000_000_000; // ms; a window boundary (multiple of 10 s)

fn ms(t: i64) -> Timestamp {
    Timestamp::from_millis(t)
}

struct B(Span<'static>);

fn span(service: &str, kind: SpanKind, name: &str, trace: u8, id: u8, parent: Option<u8>) -> B {
    B(Span {
        trace_id: TraceId([trace; 16]),
        span_id: SpanId([id; 8]),
        parent_span_id: parent.map(|p| SpanId([p; 8])),
        service: Cow::Owned(service.into()),
        kind,
        name: Cow::Owned(name.into()),
        start_unix_nanos: (T0 as u64) * 1_000_000,
        end_unix_nanos: (T0 as u64 + 10) * 1_000_000,
        ..Span::default()
    })
}

impl B {
    fn at(mut self, start_ms: i64, dur_ms: f64) -> B {
        self.0.start_unix_nanos = (start_ms as u64) * 1_000_000;
        self.0.end_unix_nanos = self.0.start_unix_nanos + (dur_ms * 1e6) as u64;
        self
    }
    fn attr(mut self, k: &str, v: AttrValue<'static>) -> B {
        self.0.attributes.set(k, v);
        self
    }
    fn s(self, k: &str, v: &str) -> B {
        self.attr(k, AttrValue::Str(Cow::Owned(v.into())))
    }
    fn i(self, k: &str, v: i64) -> B {
        self.attr(k, AttrValue::Int(v))
    }
    fn error(mut self) -> B {
        self.0.status = SpanStatus::Error;
        self
    }
    fn link(mut self, trace: u8, id: u8) -> B {
        self.0.links.push(SpanContext { trace_id: TraceId([trace; 16]), span_id: SpanId([id; 8]) });
        self
    }
}

fn feed(g: &mut DependencyGraph, spans: Vec<B>, now: i64) {
    let spans: Vec<Span<'static>> = spans.into_iter().map(|b| b.0).collect();
    g.observe_spans(&spans, ms(now));
}

fn edges(g: &DependencyGraph) -> Vec<(String, u64, u64, u64, u64)> {
    g.edges(ms(T0 - 3_600_000), ms(T0 + 3_600_000)).into_iter().map(|e| (format!("{}", e.interaction()), e.requests, e.errors, e.timeouts, e.retries)).collect()
}

fn e(s: &str, req: u64, err: u64, to: u64, re: u64) -> (String, u64, u64, u64, u64) {
    (s.to_owned(), req, err, to, re)
}

#[test]
fn client_and_server_halves_pair_in_either_order() {
    for flip in [false, true] {
        let mut g = DependencyGraph::default();
        let client = span("frontend", SpanKind::Client, "GET", 1, 2, Some(1)).at(T0 + 100, 20.0);
        let server = span("cart", SpanKind::Server, "GET /cart/{id}", 1, 3, Some(2)).at(T0 + 102, 15.0);
        let v = if flip { vec![server, client] } else { vec![client, server] };
        feed(&mut g, v, T0 + 1000);
        assert_eq!(edges(&g), vec![e("frontend → cart (GET /cart/{id})", 1, 0, 0, 0)]);
        let s = &g.edges(ms(T0), ms(T0 + 10_000))[0];
        assert!((s.p50_ms.unwrap() - 20.0).abs() <= 0.2, "client-side latency is used: {s:?}");
        assert_eq!(g.counters().calls_paired, 1);
    }
}

#[test]
fn halves_arriving_in_different_batches_within_the_join_window_pair() {
    let mut g = DependencyGraph::default();
    feed(&mut g, vec![span("cart", SpanKind::Server, "GET /cart", 1, 3, Some(2)).at(T0, 5.0)], T0 + 100);
    g.tick(ms(T0 + 5_000));
    feed(&mut g, vec![span("frontend", SpanKind::Client, "GET", 1, 2, Some(1)).at(T0, 6.0)], T0 + 12_000);
    assert_eq!(edges(&g), vec![e("frontend → cart (GET /cart)", 1, 0, 0, 0)]);
}

#[test]
fn unmatched_halves_expire_after_the_join_window() {
    let mut g = DependencyGraph::default();
    // A client span to an uninstrumented HTTP API, named by its URL host.
    feed(
        &mut g,
        vec![
            span("checkout", SpanKind::Client, "POST", 1, 2, Some(1)).s("url.full", "https://api.stripe.com:443/v1/charges"),
            span("checkout", SpanKind::Client, "GET", 1, 4, Some(1)),            // names nothing
            span("checkout", SpanKind::Server, "POST /checkout", 1, 5, Some(9)), // caller not instrumented
        ],
        T0 + 100,
    );
    assert!(edges(&g).is_empty(), "nothing resolved before the join window passes");
    g.tick(ms(T0 + 100 + 15_000));
    g.tick(ms(T0 + 100 + 30_000));
    assert_eq!(edges(&g), vec![e("checkout → api.stripe.com (POST)", 1, 0, 0, 0)]);
    let c = g.counters();
    assert_eq!((c.calls_uninstrumented, c.client_halves_unpaired, c.server_halves_unpaired), (1, 1, 1));
    let node = g.graph(ms(T0), ms(T0 + 10_000)).nodes.into_iter().find(|n| n.name.as_str() == "api.stripe.com").unwrap();
    assert_eq!((node.kind, node.instrumented), (ServiceKind::External, false));
}

#[test]
fn databases_are_named_from_current_and_older_attribute_names_at_once() {
    let mut g = DependencyGraph::default();
    feed(
        &mut g,
        vec![
            span("orders", SpanKind::Client, "SELECT orders", 1, 2, Some(1)).s("db.system.name", "postgresql").s("server.address", "orders-db"),
            span("orders", SpanKind::Client, "SELECT items", 1, 3, Some(1)).s("db.system", "postgresql").s("net.peer.name", "orders-db"),
            span("orders", SpanKind::Client, "GET", 1, 4, Some(1)).s("db.system", "redis"),
            span("orders", SpanKind::Client, "q", 1, 5, Some(1)).s("db.system", "mysql").s("peer.service", "legacy-db").s("server.address", "10.0.0.7"),
            // An older name arriving after the current one does not win.
            span("orders", SpanKind::Client, "x", 1, 6, Some(1)).s("server.address", "new-name").s("db.system", "mysql").s("net.peer.name", "old-name"),
        ],
        T0 + 100,
    );
    assert_eq!(
        edges(&g),
        vec![
            e("orders → legacy-db (q)", 1, 0, 0, 0),
            e("orders → new-name (x)", 1, 0, 0, 0),
            e("orders → orders-db (SELECT items)", 1, 0, 0, 0),
            e("orders → orders-db (SELECT orders)", 1, 0, 0, 0),
            e("orders → redis (GET)", 1, 0, 0, 0),
        ]
    );
    let kinds: Vec<(String, ServiceKind)> = g.graph(ms(T0), ms(T0 + 10_000)).nodes.into_iter().map(|n| (n.name.to_string(), n.kind)).collect();
    assert!(kinds.contains(&("redis".into(), ServiceKind::Cache)));
    assert!(kinds.contains(&("orders-db".into(), ServiceKind::Database)));
    assert!(kinds.contains(&("orders".into(), ServiceKind::Service)));
}

#[test]
fn errors_and_timeouts_from_status_http_and_grpc() {
    let mut g = DependencyGraph::default();
    let pair = |id: u8, client: B, server: B| {
        let _ = id;
        vec![client, server]
    };
    let mut v = Vec::new();
    v.extend(pair(1, span("a", SpanKind::Client, "c", 1, 10, None), span("b", SpanKind::Server, "op", 1, 11, Some(10)).i("http.response.status_code", 503)));
    v.extend(pair(2, span("a", SpanKind::Client, "c", 1, 20, None).i("http.status_code", 404), span("b", SpanKind::Server, "op", 1, 21, Some(20))));
    v.extend(pair(3, span("a", SpanKind::Client, "c", 1, 30, None).i("rpc.grpc.status_code", 14), span("b", SpanKind::Server, "op", 1, 31, Some(30))));
    v.extend(pair(4, span("a", SpanKind::Client, "c", 1, 40, None).i("rpc.grpc.status_code", 4), span("b", SpanKind::Server, "op", 1, 41, Some(40))));
    v.extend(pair(
        5,
        span("a", SpanKind::Client, "c", 1, 50, None).error().s("error.type", "java.net.SocketTimeoutException"),
        span("b", SpanKind::Server, "op", 1, 51, Some(50)),
    ));
    v.extend(pair(6, span("a", SpanKind::Client, "c", 1, 60, None).error(), span("b", SpanKind::Server, "op", 1, 61, Some(60))));
    v.extend(pair(7, span("a", SpanKind::Client, "c", 1, 70, None).i("rpc.grpc.status_code", 5), span("b", SpanKind::Server, "op", 1, 71, Some(70))));
    feed(&mut g, v, T0 + 100);
    // 503, UNAVAILABLE, DEADLINE_EXCEEDED, timeout exception, error status = 5 errors;
    // 404 and NOT_FOUND are the caller's problem, not the edge's.
    assert_eq!(edges(&g), vec![e("a → b (op)", 7, 5, 2, 0)]);
}

#[test]
fn retries_from_resend_count_and_from_repeated_attempts_after_failure() {
    let mut g = DependencyGraph::default();
    feed(
        &mut g,
        vec![
            // Attempt 1 fails, attempt 2 (same parent, same name, later) is a retry.
            span("api", SpanKind::Client, "GET", 1, 2, Some(1)).at(T0, 10.0).i("http.response.status_code", 503),
            span("api", SpanKind::Client, "GET", 1, 3, Some(1)).at(T0 + 20, 10.0),
            span("users", SpanKind::Server, "GET /u", 1, 12, Some(2)).at(T0, 9.0).i("http.response.status_code", 503),
            span("users", SpanKind::Server, "GET /u", 1, 13, Some(3)).at(T0 + 20, 9.0),
            // Resend count says so directly.
            span("api", SpanKind::Client, "GET", 2, 4, Some(1)).at(T0, 10.0).i("http.request.resend_count", 1),
            span("users", SpanKind::Server, "GET /u", 2, 14, Some(4)).at(T0, 9.0),
            // Sequential successful calls under one parent (N+1 queries) are not retries.
            span("api", SpanKind::Client, "GET", 3, 5, Some(1)).at(T0, 10.0),
            span("api", SpanKind::Client, "GET", 3, 6, Some(1)).at(T0 + 20, 10.0),
            span("users", SpanKind::Server, "GET /u", 3, 15, Some(5)).at(T0, 9.0),
            span("users", SpanKind::Server, "GET /u", 3, 16, Some(6)).at(T0 + 20, 9.0),
        ],
        T0 + 100,
    );
    assert_eq!(edges(&g), vec![e("api → users (GET /u)", 5, 1, 0, 2)]);
}

#[test]
fn a_retry_that_arrives_before_the_failed_attempt_still_counts() {
    let mut g = DependencyGraph::default();
    feed(
        &mut g,
        vec![
            span("api", SpanKind::Client, "GET", 1, 3, Some(1)).at(T0 + 20, 10.0).s("peer.service", "users"),
            span("api", SpanKind::Client, "GET", 1, 2, Some(1)).at(T0, 10.0).error().s("peer.service", "users"),
        ],
        T0 + 100,
    );
    g.tick(ms(T0 + 100 + 15_000));
    g.tick(ms(T0 + 100 + 30_000));
    assert_eq!(edges(&g), vec![e("api → users (GET)", 2, 1, 0, 1)]);
}

#[test]
fn messaging_pairs_through_links_and_unmatched_consumers_read_from_the_queue() {
    let mut g = DependencyGraph::default();
    feed(
        &mut g,
        vec![
            span("orders", SpanKind::Producer, "orders publish", 1, 2, Some(1))
                .at(T0, 2.0)
                .s("messaging.system", "kafka")
                .s("messaging.destination.name", "orders"),
            // Batch consumer in another trace, linked to the producer.
            span("billing", SpanKind::Consumer, "orders process", 7, 9, None).at(T0 + 50, 5.0).link(1, 2).s("messaging.system", "kafka"),
            // Fan-out: a second consumer group.
            span("email", SpanKind::Consumer, "orders process", 8, 9, None).at(T0 + 60, 5.0).link(1, 2),
            // A consumer whose producer is not instrumented.
            span("audit", SpanKind::Consumer, "payments process", 9, 9, None)
                .at(T0 + 70, 5.0)
                .link(5, 5)
                .s("messaging.system", "kafka")
                .s("messaging.destination", "payments"),
        ],
        T0 + 100,
    );
    g.tick(ms(T0 + 100 + 15_000));
    g.tick(ms(T0 + 100 + 30_000));
    assert_eq!(
        edges(&g),
        vec![e("orders → billing (orders)", 1, 0, 0, 0), e("orders → email (orders)", 1, 0, 0, 0), e("payments → audit (payments process)", 1, 0, 0, 0),]
    );
    let s = &g.edges(ms(T0), ms(T0 + 10_000))[0];
    assert!((s.p50_ms.unwrap() - 55.0).abs() < 0.6, "publish start to processing end: {s:?}");
}

#[test]
fn windows_sum_over_ranges_and_close_into_signals_once() {
    let mut g = DependencyGraph::default();
    let mut v = Vec::new();
    for i in 0..30u8 {
        // 10 calls in each of three windows.
        let start = T0 + i64::from(i / 10) * 10_000 + 100;
        v.push(span("a", SpanKind::Client, "c", i, 2, Some(1)).at(start, 5.0));
        v.push(span("b", SpanKind::Server, "op", i, 3, Some(2)).at(start, 4.0));
    }
    feed(&mut g, v, T0 + 30_000);
    assert_eq!(g.edges(ms(T0), ms(T0 + 20_000))[0].requests, 20);
    assert_eq!(g.edges(ms(T0 + 10_000), ms(T0 + 30_000))[0].requests, 20);
    // Window [T0, T0+10s) closes at T0 + 10 s + join window.
    let sig = g.tick(ms(T0 + 25_000));
    assert_eq!(sig.len(), 1);
    let Signal::Edge(w) = &sig[0] else { panic!("edge signal expected") };
    assert_eq!((w.start, w.requests, w.interaction.to_string()), (ms(T0), 10, "a → b (op)".to_owned()));
    assert!((w.p50_ms - 5.0).abs() <= 0.05);
    assert!(g.tick(ms(T0 + 25_000)).is_empty(), "emitted once");
    assert_eq!(g.tick(ms(T0 + 60_000)).len(), 2);
    // Ingress of b: 30 requests.
    let b = g.service("b", ms(T0), ms(T0 + 30_000)).unwrap();
    assert_eq!(b.ingress.requests, 30);
    assert!((b.ingress.rate_per_s - 1.0).abs() < 1e-9);
    assert_eq!(b.callers.len(), 1);
    assert!(b.callees.is_empty());
}

#[test]
fn retention_and_age_out_bound_memory() {
    let mut g = DependencyGraph::new(GraphConfig { idle_timeout: Duration::from_mins(10), ..GraphConfig::default() });
    feed(&mut g, vec![span("a", SpanKind::Client, "c", 1, 2, None).s("peer.service", "x").s("db.system", "redis")], T0 + 100);
    assert_eq!(g.memory().interactions, 1);
    g.tick(ms(T0 + 5 * 60_000));
    assert_eq!(g.memory().interactions, 1);
    g.tick(ms(T0 + 11 * 60_000));
    assert_eq!(g.memory().interactions, 0);
    assert_eq!(g.counters().interactions_aged_out, 1);
    // Spans older than the retention or from the far future are refused.
    feed(&mut g, vec![span("a", SpanKind::Client, "c", 1, 2, None).s("db.system", "redis")], T0 + 2 * 3_600_000);
    feed(&mut g, vec![span("a", SpanKind::Client, "c", 1, 2, None).s("db.system", "redis")], T0 - 3_600_000);
    assert_eq!(g.counters().spans_out_of_range, 2);
}

#[test]
fn interaction_cardinality_is_limited_per_service_and_a_real_newcomer_gets_in() {
    let mut g = DependencyGraph::new(GraphConfig { max_interactions_per_service: 3, ..GraphConfig::default() });
    // A junk burst of distinct operations on one service, one at a time:
    // each new one evicts the service's least recently seen.
    for i in 0..10u8 {
        feed(&mut g, vec![span("a", SpanKind::Client, &format!("SELECT {i}"), 1, i + 1, None).s("db.system", "pg")], T0 + 100 + i64::from(i));
    }
    assert_eq!(edges(&g).len(), 3);
    assert_eq!(g.counters().interactions_evicted, 7);
    // The three most recent are the ones kept.
    let ops: Vec<String> = edges(&g).iter().map(|e| e.0.clone()).collect();
    assert!(ops.iter().all(|o| o.contains("SELECT 7") || o.contains("SELECT 8") || o.contains("SELECT 9")), "{ops:?}");
    // A real new interaction of the same service is taken at once, and the
    // other services are untouched by a's cardinality.
    feed(&mut g, vec![span("b", SpanKind::Client, "GET k", 1, 30, None).s("db.system", "redis")], T0 + 200);
    feed(&mut g, vec![span("a", SpanKind::Client, "INSERT", 1, 31, None).s("db.system", "pg")], T0 + 201);
    let all: Vec<String> = edges(&g).iter().map(|e| e.0.clone()).collect();
    assert!(all.iter().any(|o| o == "a → pg (INSERT)") && all.iter().any(|o| o.starts_with("b → redis")), "{all:?}");
    assert_eq!(all.iter().filter(|o| o.starts_with("a ")).count(), 3);
}

#[test]
fn the_join_buffer_is_bounded() {
    let mut g = DependencyGraph::new(GraphConfig { max_pending: 100, ..GraphConfig::default() });
    let v = (0..250u32)
        .map(|i| {
            let mut b = span("a", SpanKind::Client, "GET", 1, 1, None).s("peer.service", "x");
            b.0.span_id = SpanId((u64::from(i) + 1).to_le_bytes());
            b
        })
        .collect();
    feed(&mut g, v, T0 + 100);
    assert!(g.memory().pending_halves <= 100);
    assert!(g.counters().join_buffer_evictions > 0);
    g.tick(ms(T0 + 100_000));
    assert_eq!(edges(&g), vec![e("a → x (GET)", 250, 0, 0, 0)], "evicted halves are resolved, not lost");
}

#[test]
fn in_flight_counts_calls_spanning_a_window_end() {
    let mut g = DependencyGraph::default();
    feed(&mut g, vec![span("a", SpanKind::Client, "c", 1, 2, None).s("db.system", "pg").at(T0 + 5_000, 12_000.0)], T0 + 30_000);
    let w = g.edge_windows(ms(T0), ms(T0 + 30_000));
    let got: Vec<(i64, u64, Option<u64>)> = w.iter().map(|w| (w.start.as_millis() - T0, w.requests, w.in_flight)).collect();
    assert_eq!(got, vec![(0, 0, Some(1)), (10_000, 1, Some(0))]);
}

#[test]
fn diff_reports_new_gone_and_changed_edges() {
    let mut g = DependencyGraph::default();
    let mut v = Vec::new();
    let mut id = 0u8;
    let mut call = |v: &mut Vec<B>, callee: &str, start: i64, dur: f64, err: bool| {
        id = id.wrapping_add(1);
        let mut b = span("a", SpanKind::Client, "q", id, 1, None).s("db.system", "pg").s("peer.service", callee).at(start, dur);
        if err {
            b = b.error();
        }
        v.push(b);
    };
    for i in 0..20 {
        call(&mut v, "steady", T0 + i * 100, 5.0, false);
        call(&mut v, "old", T0 + i * 100, 5.0, false);
        call(&mut v, "worse", T0 + i * 100, 5.0, false);
        call(&mut v, "steady", T0 + 10_000 + i * 100, 5.2, false);
        call(&mut v, "new", T0 + 10_000 + i * 100, 5.0, false);
        call(&mut v, "worse", T0 + 10_000 + i * 100, 50.0, i % 2 == 0);
    }
    feed(&mut g, v, T0 + 20_000);
    let d = g.diff((ms(T0), ms(T0 + 10_000)), (ms(T0 + 10_000), ms(T0 + 20_000)), &DiffThresholds::default());
    let names = |v: &[EdgeSummary]| v.iter().map(|e| e.callee.to_string()).collect::<Vec<_>>();
    assert_eq!(names(&d.new), vec!["new"]);
    assert_eq!(names(&d.gone), vec!["old"]);
    assert_eq!(d.changed.len(), 1);
    assert_eq!(d.changed[0].b.callee.as_str(), "worse");
    assert_eq!(d.changed[0].reasons, vec!["errors 0.0% → 50.0%".to_owned(), "p99 5.0 ms → 50.0 ms".to_owned()]);
}

#[test]
fn drift_against_the_catalogue() {
    let cat = Catalogue::from_yaml(
        "services:\n  - {name: a, depends_on: [pg]}\n  - {name: b, depends_on: [c]}\nflows:\n  - {name: f, owner: t, interactions: [{caller: a, callee: pg, operation: q}]}\n",
    )
    .unwrap();
    let mut g = DependencyGraph::default();
    feed(
        &mut g,
        vec![span("a", SpanKind::Client, "q", 1, 1, None).s("db.system", "pg"), span("a", SpanKind::Client, "q", 1, 2, None).s("db.system", "redis")],
        T0 + 100,
    );
    let d = g.drift(&cat, ms(T0), ms(T0 + 10_000));
    assert_eq!(d.declared_unseen.iter().map(|i| i.to_string()).collect::<Vec<_>>(), vec!["b → c"]);
    assert_eq!(d.seen_undeclared.iter().map(|i| i.to_string()).collect::<Vec<_>>(), vec!["a → redis (q)"]);
}

#[test]
fn metric_points_are_windowed_per_service() {
    let mut g = DependencyGraph::default();
    let point = |job: &str, at: i64, v: f64| MetricPoint {
        name: "queue_depth".into(),
        labels: [("job".to_owned(), job.to_owned()), ("instance".to_owned(), "h:9".to_owned())].into(),
        service: None,
        at: ms(at),
        value: v,
    };
    for (at, v) in [(T0 + 1000, 3.0), (T0 + 5000, 7.0), (T0 + 12_000, 1.0)] {
        g.observe_metric(&point("billing", at, v), ms(T0 + 20_000));
    }
    let s = g.service("billing", ms(T0), ms(T0 + 20_000)).unwrap();
    assert_eq!(s.metrics.len(), 1);
    let w: Vec<(u64, f64, f64, f64)> = s.metrics[0].windows.iter().map(|w| (w.count, w.min, w.max, w.last)).collect();
    assert_eq!(w, vec![(2, 3.0, 7.0, 7.0), (1, 1.0, 1.0, 1.0)]);
    let mut g2 = DependencyGraph::new(GraphConfig { max_metric_series_per_service: 1, ..GraphConfig::default() });
    g2.observe_metric(&point("x", T0, 1.0), ms(T0));
    let mut p = point("x", T0 + 1000, 1.0);
    p.name = "other".into();
    g2.observe_metric(&p, ms(T0 + 1000));
    assert_eq!((g2.counters().metric_series_evicted, g2.counters().metric_series_dropped), (1, 0), "the service's older series made room");
    let s = g2.service("x", ms(T0), ms(T0 + 1000)).unwrap();
    assert_eq!(s.metrics.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(), ["other"]);
}

#[test]
fn url_host_parsing() {
    assert_eq!(span::url_host("https://user@api.example.com:8443/x?y"), Some("api.example.com"));
    assert_eq!(span::url_host("http://[::1]:80/"), Some("::1"));
    assert_eq!(span::url_host("db.internal:5432"), Some("db.internal"));
    assert_eq!(span::url_host("https:///nohost"), None);
}

proptest! {
    /// Whatever order the halves of a call tree arrive in (within the join
    /// window), the learned graph is the same.
    #[test]
    fn arrival_order_does_not_change_the_graph(perm in Just((0..40usize).collect::<Vec<_>>()).prop_shuffle(), split in 0usize..40) {
        let mut spans = Vec::new();
        for t in 0..10u8 {
            spans.push(span("web", SpanKind::Server, "GET /", t, 1, None).at(T0, 30.0));
            spans.push(span("web", SpanKind::Client, "GET", t, 2, Some(1)).at(T0 + 1, 20.0));
            spans.push(span("api", SpanKind::Server, "GET /items", t, 3, Some(2)).at(T0 + 2, 15.0).i("http.response.status_code", if t % 3 == 0 { 500 } else { 200 }));
            spans.push(span("api", SpanKind::Client, "SELECT", t, 4, Some(3)).at(T0 + 3, 5.0).s("db.system", "postgresql").s("server.address", "pg"));
        }
        let ordered: Vec<Span<'static>> = spans.iter().map(|b| b.0.clone()).collect();
        let shuffled: Vec<Span<'static>> = perm.iter().map(|&i| ordered[i].clone()).collect();
        let mut g1 = DependencyGraph::default();
        g1.observe_spans(&ordered, ms(T0 + 1000));
        let mut g2 = DependencyGraph::default();
        g2.observe_spans(&shuffled[..split], ms(T0 + 1000));
        g2.tick(ms(T0 + 5000));
        g2.observe_spans(&shuffled[split..], ms(T0 + 6000));
        for g in [&mut g1, &mut g2] { g.tick(ms(T0 + 60_000)); g.tick(ms(T0 + 90_000)); }
        let (v1, v2) = (g1.graph(ms(T0), ms(T0 + 10_000)), g2.graph(ms(T0), ms(T0 + 10_000)));
        prop_assert_eq!(&v1, &v2);
        prop_assert_eq!(v1.edges.len(), 2);
        prop_assert_eq!((v1.edges[0].requests, v1.edges[0].errors), (10, 0));
        prop_assert_eq!((v1.edges[1].requests, v1.edges[1].errors), (10, 4));
    }
}

#[test]
fn edge_windows_carry_the_zone_split_and_bounded_exemplars_of_failing_calls() {
    let mut g = DependencyGraph::default();
    let mut spans = Vec::new();
    // 20 calls web → db within one window: web in zone a; db instances in a
    // (even calls, fine) and b (odd calls, failing). Trace ids are distinct.
    for k in 0..20u8 {
        let (zone, failing) = if k % 2 == 0 { ("a", false) } else { ("b", true) };
        let client =
            span("web", SpanKind::Client, "query", k + 1, 2 * k + 1, Some(200)).at(T0 + 100 + k as i64, 5.0 + k as f64).s("cloud.availability_zone", "a");
        spans.push(if failing { client.error() } else { client });
        spans.push(span("db", SpanKind::Server, "SELECT", k + 1, 2 * k + 2, Some(2 * k + 1)).at(T0 + 101 + k as i64, 3.0).s("cloud.availability_zone", zone));
    }
    feed(&mut g, spans, T0 + 1_000);
    let signals = g.tick(ms(T0 + 40_000));
    let w = signals
        .iter()
        .find_map(|s| match s {
            Signal::Edge(w) if w.interaction.caller.as_str() == "web" => Some(w),
            _ => None,
        })
        .expect("web → db window");
    let split: Vec<(&str, &str, u64, u64)> = w.zones.iter().map(|z| (z.caller_zone.as_str(), z.callee_zone.as_str(), z.requests, z.errors)).collect();
    // In the order the zone pairs were first seen.
    assert_eq!(split, vec![("a", "a", 10, 0), ("a", "b", 10, 10)]);
    // At most MAX_EXEMPLARS, all failing calls, the slowest failing first
    // (k = 19 took 24 ms).
    assert_eq!(w.exemplar_trace_ids.len(), crate::signal::MAX_EXEMPLARS);
    assert_eq!(w.exemplar_trace_ids[0], TraceId([20; 16]).to_hex());
    let failing: Vec<String> = (0..20u8).filter(|k| k % 2 == 1).map(|k| TraceId([k + 1; 16]).to_hex()).collect();
    assert!(w.exemplar_trace_ids.iter().all(|t| failing.contains(t)), "{:?}", w.exemplar_trace_ids);
}

#[test]
fn a_window_keeps_at_most_max_zone_pairs_whatever_zones_spans_claim() {
    use super::window::{MAX_ZONE_PAIRS, WindowStats};
    let mut st = WindowStats::default();
    // One invented zone per call: the split stops growing at the cap...
    for z in 0..(2 * MAX_ZONE_PAIRS as u32) {
        st.add_zone(0, z, 1, 0, 0);
    }
    assert_eq!(st.zones.len(), MAX_ZONE_PAIRS);
    // ...while pairs already kept still count, also through a merge.
    st.add_zone(0, 0, 2, 1, 0);
    let mut other = WindowStats::default();
    other.add_zone(0, 0, 3, 0, 0);
    other.add_zone(9, 9_999, 3, 0, 0);
    st.merge(&other);
    assert_eq!(st.zones.len(), MAX_ZONE_PAIRS);
    assert_eq!((st.zones[0].requests, st.zones[0].errors), (6, 1));
    assert!(!st.zones.iter().any(|z| z.caller_zone == 9));
}

#[test]
fn findings_on_an_edge_carry_exemplar_trace_ids_of_its_failing_calls() {
    // Spans → graph windows → detectors: 25 windows of 30 web → db calls,
    // half of them failing from window 20; the error finding names failing traces.
    let mut g = DependencyGraph::default();
    let mut set = crate::detect::DetectorSet::standard();
    let trace = |n: u32| {
        let mut t = [7u8; 16];
        t[..4].copy_from_slice(&n.to_be_bytes());
        TraceId(t)
    };
    let mut failing = Vec::new();
    let mut found = Vec::new();
    for w in 0..25i64 {
        let mut spans = Vec::new();
        for k in 0..30u32 {
            let n = w as u32 * 100 + k;
            let start = T0 + w * 10_000 + k as i64 * 100;
            let fails = w >= 20 && k % 2 == 0;
            let mut client = span("web", SpanKind::Client, "query", 0, 1, Some(9)).at(start, 5.0);
            client.0.trace_id = trace(n);
            if fails {
                client = client.error();
                failing.push(trace(n).to_hex());
            }
            let mut server = span("db", SpanKind::Server, "SELECT", 0, 2, Some(1)).at(start + 1, 3.0);
            server.0.trace_id = trace(n);
            spans.push(client);
            spans.push(server);
        }
        feed(&mut g, spans, T0 + w * 10_000 + 9_000);
        for s in g.tick(ms(T0 + w * 10_000 + 9_500)) {
            found.extend(set.observe(&s, s.at()));
        }
    }
    for s in g.tick(ms(T0 + 400_000)) {
        found.extend(set.observe(&s, s.at()));
    }
    let f = found.iter().find(|f| f.kind == "error_rate_change").expect("an error finding");
    assert!(!f.evidence.exemplar_trace_ids.is_empty() && f.evidence.exemplar_trace_ids.len() <= crate::signal::MAX_EXEMPLARS);
    assert!(f.evidence.exemplar_trace_ids.iter().all(|t| failing.contains(t)), "{:?}", f.evidence.exemplar_trace_ids);
}

/// A root server span: the service is learned (ingress only).
fn root(service: &str, trace: u8, at: i64) -> B {
    span(service, SpanKind::Server, "GET /", trace, 1, None).at(at, 5.0)
}

#[test]
fn a_full_service_table_evicts_the_least_recently_seen_and_accepts_a_real_newcomer() {
    let mut g = DependencyGraph::new(GraphConfig { max_services: 3, ..GraphConfig::default() });
    // A real service, then junk filling the table, then the real one seen again.
    feed(&mut g, vec![root("checkout", 1, T0)], T0 + 10);
    feed(&mut g, vec![root("junk-1", 2, T0), root("junk-2", 3, T0)], T0 + 20);
    feed(&mut g, vec![root("checkout", 4, T0 + 25)], T0 + 30);
    // More junk evicts the least recently seen — junk-1 — not checkout.
    feed(&mut g, vec![root("junk-3", 5, T0 + 35)], T0 + 40);
    assert!(g.service("junk-1", ms(T0), ms(T0 + 3_600_000)).is_none());
    assert!(g.service("checkout", ms(T0), ms(T0 + 3_600_000)).is_some());
    assert_eq!(g.counters().services_evicted, 1);
    // A real new service is accepted at once (before this fix it was refused
    // until the junk aged out, an hour later).
    feed(&mut g, vec![root("payments", 6, T0 + 45)], T0 + 50);
    assert!(g.service("payments", ms(T0), ms(T0 + 3_600_000)).is_some());
    assert_eq!(g.counters().services_evicted, 2);
    assert_eq!(g.counters().services_dropped, 0);
}

#[test]
fn an_evicted_service_takes_its_interactions_and_a_waiting_half_is_not_misattributed() {
    let mut g = DependencyGraph::new(GraphConfig { max_services: 2, ..GraphConfig::default() });
    let client = span("web", SpanKind::Client, "GET", 1, 2, Some(1)).at(T0 + 100, 20.0);
    let server = span("api", SpanKind::Server, "GET /x", 1, 3, Some(2)).at(T0 + 102, 15.0);
    feed(&mut g, vec![client, server], T0 + 1000);
    assert_eq!(edges(&g), vec![e("web → api (GET /x)", 1, 0, 0, 0)]);
    // A client half of "web" waits in the join buffer; then two newcomers
    // evict both services (and their edge).
    feed(&mut g, vec![span("web", SpanKind::Client, "GET", 9, 2, Some(1)).at(T0 + 1500, 5.0)], T0 + 1500);
    feed(&mut g, vec![root("new-a", 7, T0 + 2000)], T0 + 2000);
    feed(&mut g, vec![root("new-b", 8, T0 + 2000)], T0 + 2001);
    assert_eq!(edges(&g), vec![]);
    assert_eq!(g.counters().interactions_evicted, 1);
    // The waiting half's server arrives: "api" is new again, "web" is gone —
    // the call is not recorded under whichever service took web's slot.
    feed(&mut g, vec![span("api", SpanKind::Server, "GET /x", 9, 3, Some(2)).at(T0 + 1502, 1.0)], T0 + 2500);
    assert!(edges(&g).iter().all(|(name, ..)| !name.contains("new-")), "{:?}", edges(&g));
}

#[test]
fn a_full_interaction_table_evicts_the_least_recently_seen_interaction() {
    let mut g = DependencyGraph::new(GraphConfig { max_interactions: 2, ..GraphConfig::default() });
    let call = |callee: &str, trace: u8, at: i64| {
        vec![span("web", SpanKind::Client, "GET", trace, 2, Some(1)).at(at, 5.0), span(callee, SpanKind::Server, "GET /", trace, 3, Some(2)).at(at + 1, 3.0)]
    };
    feed(&mut g, call("a", 1, T0), T0 + 100);
    feed(&mut g, call("b", 2, T0), T0 + 200);
    feed(&mut g, call("a", 3, T0 + 250), T0 + 300);
    feed(&mut g, call("c", 4, T0 + 350), T0 + 400);
    let names: Vec<String> = edges(&g).into_iter().map(|x| x.0).collect();
    assert_eq!(names, ["web → a (GET /)", "web → c (GET /)"]);
    assert_eq!(g.counters().interactions_evicted, 1);
}

#[test]
fn a_full_metric_table_evicts_the_least_recently_seen_series_and_clips_labels() {
    let mut g = DependencyGraph::new(GraphConfig { max_metric_series: 2, ..GraphConfig::default() });
    let obs = |g: &mut DependencyGraph, job: &str, v: &str, now: i64| {
        g.observe_metric_samples("up", &[("job", job), ("v", v)], None, &[(ms(now), 1.0)], ms(now));
    };
    obs(&mut g, "api", "1", T0);
    obs(&mut g, "api", "2", T0 + 10);
    obs(&mut g, "api", "1", T0 + 20);
    obs(&mut g, "api", "3", T0 + 30);
    let s = g.service("api", ms(T0), ms(T0 + 60_000)).unwrap();
    let vs: Vec<&str> = s.metrics.iter().map(|m| m.labels["v"].as_str()).collect();
    assert_eq!(vs, ["1", "3"]);
    assert_eq!(g.counters().metric_series_evicted, 1);
    // A megabyte label value is kept clipped, not whole.
    let huge = "x".repeat(1 << 20);
    obs(&mut g, "api", &huge, T0 + 40);
    let s = g.service("api", ms(T0), ms(T0 + 60_000)).unwrap();
    assert!(s.metrics.iter().all(|m| m.labels["v"].len() <= crate::bounded::MAX_LABEL_VALUE_BYTES));
    assert!(s.metrics.iter().any(|m| m.labels["v"].starts_with("xxx")));
}

#[test]
fn idle_services_age_out() {
    let mut g = DependencyGraph::default();
    feed(&mut g, vec![root("once", 1, T0)], T0 + 10);
    g.tick(ms(T0 + 10 + 3_600_001));
    assert!(g.service("once", ms(T0), ms(T0 + 3_600_000)).is_none());
    assert_eq!(g.counters().services_aged_out, 1);
}

/// The graph survives a restart: a snapshot through JSON restores the
/// services and the recent windows (same counts and p99), restored windows
/// are not emitted to the detectors a second time, and a snapshot entry that
/// does not add up is skipped and counted, not trusted.
#[test]
fn a_snapshot_restores_the_graph_without_re_emitting_its_windows() {
    let mut g = DependencyGraph::default();
    let mut spans = Vec::new();
    for i in 0..20u8 {
        spans.push(span("frontend", SpanKind::Client, "GET", i, 2, Some(1)).at(T0 + 100 + i64::from(i), 20.0));
        let s = span("cart", SpanKind::Server, "GET /cart", i, 3, Some(2)).at(T0 + 102 + i64::from(i), 15.0 + f64::from(i));
        spans.push(if i < 3 { s.error() } else { s });
    }
    feed(&mut g, spans, T0 + 1000);
    let emitted_before = g.tick(ms(T0 + 60_000)).len();
    assert!(emitted_before > 0);
    let before = edges(&g);
    assert_eq!(before, vec![e("frontend → cart (GET /cart)", 20, 3, 0, 0)]);
    let p99 = |g: &DependencyGraph| g.edges(ms(T0 - 3_600_000), ms(T0 + 3_600_000))[0].p99_ms;

    let json = serde_json::to_string(&g.snapshot(ms(T0 + 60_000))).unwrap();
    let mut restored = DependencyGraph::default();
    let report = restored.restore(serde_json::from_str(&json).unwrap(), ms(T0 + 61_000));
    assert_eq!((report.services, report.edges, report.windows, report.skipped), (2, 1, 1, 0), "{report:?}");
    assert_eq!(edges(&restored), before);
    assert_eq!(p99(&restored), p99(&g));
    assert!(restored.tick(ms(T0 + 62_000)).is_empty(), "restored windows were emitted before the restart");

    // A window whose sketch does not add up is skipped, the rest restored.
    let mut bad: GraphSnapshot = serde_json::from_str(&json).unwrap();
    bad.edges[0].windows[0].latency.count += 1;
    let mut r2 = DependencyGraph::default();
    let report = r2.restore(bad, ms(T0 + 61_000));
    assert_eq!((report.edges, report.windows, report.skipped), (1, 0, 1));
    // Far past the idle timeout nothing comes back.
    let mut r3 = DependencyGraph::default();
    let report = r3.restore(serde_json::from_str(&json).unwrap(), ms(T0 + 10 * 3_600_000));
    assert_eq!((report.services, report.edges), (0, 0));
}
