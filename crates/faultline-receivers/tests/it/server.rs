//! The receivers on real sockets (127.0.0.1:0) driven by real clients: the
//! OpenTelemetry Rust SDK's OTLP exporters (HTTP protobuf + gzip, gRPC +
//! gzip) sending a small multi-service call tree, and reqwest for OTLP/JSON,
//! remote-write, garbage, oversize, backpressure and token checks.

use std::time::{Duration, SystemTime};

use faultline_core::time::Timestamp;
use faultline_receivers::auth::{AuthFuture, Authenticator, IngestAuth, MalformedCredential, Refusal, RefusalKind};
use faultline_receivers::{Ingest, IngestConfig};
use opentelemetry::trace::{Span as _, SpanKind, Status, TraceContextExt, Tracer, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{Compression, Protocol, WithExportConfig, WithHttpConfig, WithTonicConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;

fn install_crypto() {
    // reqwest is built with `rustls-no-provider`: every client needs a provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn wide() -> (Timestamp, Timestamp) {
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_millis() as i64;
    (Timestamp::from_millis(now - 3_600_000), Timestamp::from_millis(now + 3_600_000))
}

async fn http_server(ingest: &Ingest) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = ingest.router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

async fn grpc_server(ingest: &Ingest) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let ingest = ingest.clone();
    tokio::spawn(async move { ingest.serve_grpc(listener, std::future::pending()).await });
    addr
}

fn provider(exporter: opentelemetry_otlp::SpanExporter, service: &str) -> SdkTracerProvider {
    SdkTracerProvider::builder().with_simple_exporter(exporter).with_resource(Resource::builder_empty().with_service_name(service.to_owned()).build()).build()
}

/// frontend `GET /` → checkout `POST /checkout` twice (the first attempt
/// fails with 503 and is retried) → orders-db (a PostgreSQL client span).
fn call_tree(frontend: &SdkTracerProvider, checkout: &SdkTracerProvider) {
    let tf = frontend.tracer("test");
    let tc = checkout.tracer("test");
    let root = tf.span_builder("GET /").with_kind(SpanKind::Server).start(&tf);
    let root_cx = Context::new().with_remote_span_context(root.span_context().clone());
    for attempt in 0..2 {
        let mut client = tf
            .span_builder("POST")
            .with_kind(SpanKind::Client)
            .with_attributes(vec![
                KeyValue::new("http.request.method", "POST"),
                KeyValue::new("server.address", "checkout"),
                KeyValue::new("url.full", "http://checkout:8080/checkout"),
            ])
            .start_with_context(&tf, &root_cx);
        let remote = Context::new().with_remote_span_context(client.span_context().clone());
        let mut server = tc.span_builder("POST /checkout").with_kind(SpanKind::Server).start_with_context(&tc, &remote);
        if attempt == 0 {
            server.set_attribute(KeyValue::new("http.response.status_code", 503));
            server.set_status(Status::error("upstream unavailable"));
            client.set_attribute(KeyValue::new("http.response.status_code", 503));
            client.set_status(Status::error("503"));
        } else {
            let db_parent = Context::new().with_remote_span_context(server.span_context().clone());
            let mut db = tc
                .span_builder("SELECT orders")
                .with_kind(SpanKind::Client)
                .with_attributes(vec![
                    KeyValue::new("db.system.name", "postgresql"),
                    KeyValue::new("server.address", "orders-db"),
                    KeyValue::new("db.query.text", "SELECT * FROM orders WHERE id = $1"),
                ])
                .start_with_context(&tc, &db_parent);
            db.end();
            server.set_attribute(KeyValue::new("http.response.status_code", 200));
            client.set_attribute(KeyValue::new("http.response.status_code", 200));
        }
        server.end();
        client.end();
        std::thread::sleep(Duration::from_millis(2)); // attempts do not overlap in time
    }
    let mut root = root;
    root.end();
}

pub type EdgeRow = (String, u64, u64, u64, u64);

pub fn edge_rows(ingest: &Ingest) -> Vec<EdgeRow> {
    let (from, to) = wide();
    ingest.edges(from, to).into_iter().map(|e| (e.interaction().to_string(), e.requests, e.errors, e.timeouts, e.retries)).collect()
}

pub fn expected_tree() -> Vec<EdgeRow> {
    vec![("checkout → orders-db (SELECT orders)".to_owned(), 1, 0, 0, 0), ("frontend → checkout (POST /checkout)".to_owned(), 2, 1, 0, 1)]
}

pub fn check_nodes(ingest: &Ingest) {
    let (from, to) = wide();
    let g = ingest.graph_snapshot(from, to);
    let nodes: Vec<String> = g.nodes.iter().map(|n| format!("{}:{:?}:{}", n.name, n.kind, n.instrumented)).collect();
    assert_eq!(nodes, vec!["checkout:Service:true", "frontend:Service:true", "orders-db:Database:false"]);
    let f = ingest.service("frontend", from, to).unwrap();
    assert_eq!(f.ingress.requests, 1, "the root server span is frontend's ingress");
    let c = ingest.service("checkout", from, to).unwrap();
    assert_eq!((c.ingress.requests, c.ingress.errors), (2, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otel_sdk_over_http_protobuf_gzip_builds_the_graph() {
    install_crypto();
    let ingest = Ingest::new(IngestConfig::default());
    let addr = http_server(&ingest).await;
    let endpoint = format!("http://{addr}/v1/traces");
    tokio::task::spawn_blocking(move || {
        let exp = |svc: &str| {
            let e = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary)
                .with_endpoint(endpoint.clone())
                .with_compression(Compression::Gzip)
                .build()
                .unwrap();
            provider(e, svc)
        };
        let (f, c) = (exp("frontend"), exp("checkout"));
        call_tree(&f, &c);
        f.shutdown().unwrap();
        c.shutdown().unwrap();
    })
    .await
    .unwrap();
    ingest.flush().await;
    assert_eq!(edge_rows(&ingest), expected_tree());
    check_nodes(&ingest);
    let st = ingest.stats();
    assert_eq!((st.spans_accepted, st.bad_payloads, st.graph.calls_paired), (6, 0, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otel_sdk_over_grpc_gzip_builds_the_graph() {
    install_crypto();
    let ingest = Ingest::new(IngestConfig::default());
    let addr = grpc_server(&ingest).await;
    let endpoint = format!("http://{addr}");
    // The tonic exporter needs a runtime; the simple processor blocks, so
    // run it on a blocking thread that enters the runtime.
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let _guard = handle.enter();
        let exp = |svc: &str| {
            let e =
                opentelemetry_otlp::SpanExporter::builder().with_tonic().with_endpoint(endpoint.clone()).with_compression(Compression::Gzip).build().unwrap();
            SdkTracerProvider::builder().with_batch_exporter(e).with_resource(Resource::builder_empty().with_service_name(svc.to_owned()).build()).build()
        };
        let (f, c) = (exp("frontend"), exp("checkout"));
        call_tree(&f, &c);
        f.force_flush().unwrap();
        c.force_flush().unwrap();
        f.shutdown().unwrap();
        c.shutdown().unwrap();
    })
    .await
    .unwrap();
    ingest.flush().await;
    assert_eq!(edge_rows(&ingest), expected_tree());
    check_nodes(&ingest);
    assert_eq!(ingest.stats().spans_accepted, 6);
}

fn client() -> reqwest::Client {
    install_crypto();
    reqwest::Client::new()
}

const JSON_BODY: &str = r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"web"}}]},
 "scopeSpans":[{"spans":[
  {"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"GET","kind":3,
   "startTimeUnixNano":"NOW0","endTimeUnixNano":"NOW1",
   "attributes":[{"key":"peer.service","value":{"stringValue":"redis"}},{"key":"db.system","value":{"stringValue":"redis"}}]},
  {"traceId":"5b8efff798038103d269b633813fc60c","spanId":"","name":"bad","kind":3,
   "startTimeUnixNano":"NOW0","endTimeUnixNano":"NOW1"}]}]}]}"#;

fn json_body() -> String {
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_nanos();
    JSON_BODY.replace("NOW0", &now.to_string()).replace("NOW1", &(now + 3_000_000).to_string())
}

#[tokio::test]
async fn otlp_json_partial_success_garbage_and_oversize() {
    let ingest = Ingest::new(IngestConfig { max_body_bytes: 64 << 10, ..IngestConfig::default() });
    let addr = http_server(&ingest).await;
    let c = client();
    let url = format!("http://{addr}/v1/traces");
    let post = |ct: &'static str, body: Vec<u8>| c.post(&url).header("content-type", ct).body(body).send();

    // JSON with one bad span: 200 + partial success in JSON.
    let r = post("application/json", json_body().into_bytes()).await.unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    // opentelemetry-proto's serde writes int64 as a JSON number; proto3 JSON
    // parsers accept both forms.
    let rejected = &v["partialSuccess"]["rejectedSpans"];
    assert!(rejected == &serde_json::json!(1) || rejected == &serde_json::json!("1"), "{v}");
    assert!(v["partialSuccess"]["errorMessage"].as_str().unwrap().contains("span_id"));

    // Garbage protobuf: 400 with a google.rpc.Status naming the problem.
    let r = post("application/x-protobuf", vec![0x0a, 0xff, 0xff, 0x01]).await.unwrap();
    assert_eq!(r.status(), 400);
    let body = r.bytes().await.unwrap();
    let msg = String::from_utf8_lossy(&body);
    assert!(msg.contains("runs past the end"), "{msg}");
    // Truncated JSON.
    let r = post("application/json", json_body().as_bytes()[..50].to_vec()).await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("invalid OTLP JSON"));
    // Oversize.
    let r = post("application/x-protobuf", vec![0u8; 100 << 10]).await.unwrap();
    assert_eq!(r.status(), 413);
    // Wrong content type, wrong encoding.
    assert_eq!(post("text/plain", b"hi".to_vec()).await.unwrap().status(), 415);
    let r = c.post(&url).header("content-type", "application/json").header("content-encoding", "br").body("x").send().await.unwrap();
    assert_eq!(r.status(), 415);
    // Corrupt gzip.
    let r = c.post(&url).header("content-type", "application/json").header("content-encoding", "gzip").body("nope").send().await.unwrap();
    assert_eq!(r.status(), 400);

    // Good traffic still flows.
    let r = post("application/json", json_body().into_bytes()).await.unwrap();
    assert_eq!(r.status(), 200);
    ingest.flush().await;
    let st = ingest.stats();
    assert_eq!((st.requests_ok, st.bad_payloads, st.too_large, st.records_rejected, st.spans_accepted), (2, 3, 1, 2, 2));
    assert_eq!(edge_rows(&ingest), vec![("web → redis (GET)".to_owned(), 2, 0, 0, 0)]);

    // The counters render into a Prometheus registry.
    let mut reg = prometheus_client::registry::Registry::default();
    ingest.register_metrics(&mut reg);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &reg).unwrap();
    assert!(text.contains(r#"faultline_ingest_requests_total{transport="http",signal="traces",outcome="bad_payload"} 3"#), "{text}");
    assert!(text.contains(r#"faultline_graph_events_total{event="calls_uninstrumented"} 2"#), "{text}");
}

#[tokio::test]
async fn a_full_queue_answers_429_with_retry_after_then_recovers() {
    let (ingest, consumer) = Ingest::unstarted(IngestConfig { queue_capacity: 1, ..IngestConfig::default() });
    let addr = http_server(&ingest).await;
    let c = client();
    let url = format!("http://{addr}/v1/traces");
    let send = || c.post(&url).header("content-type", "application/json").body(json_body()).send();
    assert_eq!(send().await.unwrap().status(), 200, "fills the only slot");
    let r = send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "1");
    // Remote-write gets 503 (senders must retry 5xx).
    let rw = crate::decode::remote_write_body(&[("up", &[("job", "x")], &[(1.0, 1)])]);
    let r = c
        .post(format!("http://{addr}/api/v1/write"))
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "snappy")
        .body(rw)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(ingest.stats().backpressure, 2);
    tokio::spawn(consumer);
    ingest.flush().await;
    assert_eq!(send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn grpc_backpressure_is_resource_exhausted() {
    install_crypto();
    let (ingest, _consumer) = Ingest::unstarted(IngestConfig { queue_capacity: 1, ..IngestConfig::default() });
    let addr = grpc_server(&ingest).await;
    let mut client =
        opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient::connect(format!("http://{addr}")).await.unwrap();
    let req = || {
        let d: opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest = serde_json::from_str(&json_body()).unwrap();
        d
    };
    let ok = client.export(req()).await.unwrap().into_inner();
    assert_eq!(ok.partial_success.unwrap().rejected_spans, 1);
    let err = client.export(req()).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::ResourceExhausted);
    assert!(!err.details().is_empty(), "carries RetryInfo");
}

/// Stands in for the server's token store: "s3cret" may ingest, "r3ad" is
/// a valid token of another scope; the credential arrives parsed.
struct TwoTokens;

impl Authenticator for TwoTokens {
    fn authenticate<'a>(&'a self, credential: Option<Result<String, MalformedCredential>>) -> AuthFuture<'a> {
        Box::pin(async move {
            let refuse = |kind, message: &str| Err(Refusal { kind, message: message.to_owned() });
            match credential {
                Some(Ok(t)) if t == "s3cret" => Ok(()),
                Some(Ok(t)) if t == "r3ad" => refuse(RefusalKind::Forbidden, "read token"),
                Some(Ok(_)) => refuse(RefusalKind::Unauthenticated, "invalid token"),
                Some(Err(e)) => refuse(RefusalKind::Unauthenticated, &e.to_string()),
                None => refuse(RefusalKind::Unauthenticated, "missing"),
            }
        })
    }
}

#[tokio::test]
async fn ingest_asks_the_authenticator_over_http_and_grpc() {
    install_crypto();
    let ingest = Ingest::new(IngestConfig { auth: IngestAuth::Required(std::sync::Arc::new(TwoTokens)), ..IngestConfig::default() });
    let addr = http_server(&ingest).await;
    let c = client();
    let url = format!("http://{addr}/v1/traces");
    let post = |auth: Option<String>| {
        let mut r = c.post(&url).header("content-type", "application/json").body(json_body());
        if let Some(a) = auth {
            r = r.header("authorization", a);
        }
        async move { r.send().await.unwrap() }
    };
    let r = post(None).await;
    assert_eq!((r.status().as_u16(), r.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned())), (401, Some("Bearer".into())));
    assert_eq!(post(Some("Bearer wrong".into())).await.status(), 401);
    assert_eq!(post(Some("s3cret".into())).await.status(), 401, "a bare token is not a credential");
    assert_eq!(post(Some("Bearer r3ad".into())).await.status(), 403);
    assert_eq!(post(Some("Bearer s3cret".into())).await.status(), 200);
    // Prometheus's basic_auth (remote_write): the token is the password.
    let basic = format!("Basic {}", base64_encode("prometheus:s3cret"));
    assert_eq!(post(Some(basic)).await.status(), 200);
    assert_eq!(ingest.stats().unauthorized, 3);

    // gRPC: the same parsing of the `authorization` metadata.
    let addr = grpc_server(&ingest).await;
    let mut grpc = opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient::connect(format!("http://{addr}")).await.unwrap();
    let req = |auth: Option<&str>| {
        let body: opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest = serde_json::from_str(&json_body()).unwrap();
        let mut r = tonic::Request::new(body);
        if let Some(a) = auth {
            r.metadata_mut().insert("authorization", a.parse().unwrap());
        }
        r
    };
    assert_eq!(grpc.export(req(None)).await.unwrap_err().code(), tonic::Code::Unauthenticated);
    assert_eq!(grpc.export(req(Some("Bearer s3cre"))).await.unwrap_err().code(), tonic::Code::Unauthenticated);
    assert_eq!(grpc.export(req(Some("Bearer r3ad"))).await.unwrap_err().code(), tonic::Code::PermissionDenied);
    grpc.export(req(Some("bearer s3cret"))).await.unwrap();
    let mut metrics =
        opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient::connect(format!("http://{addr}")).await.unwrap();
    let err = metrics.export(tonic::Request::new(Default::default())).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated);
}

/// A stranger's body is never read: the refusal comes before it is sent.
#[tokio::test]
async fn an_unauthenticated_sender_is_refused_before_its_body_is_read() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let ingest = Ingest::new(IngestConfig { auth: IngestAuth::Required(std::sync::Arc::new(TwoTokens)), ..IngestConfig::default() });
    let addr = http_server(&ingest).await;
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    // Announces 4 MiB and sends none of it.
    conn.write_all(b"POST /v1/traces HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 4194304\r\n\r\n").await.unwrap();
    let mut head = [0u8; 12];
    // A guard against hanging, not a synchronisation: the answer needs no body.
    tokio::time::timeout(Duration::from_secs(30), conn.read_exact(&mut head)).await.expect("answered without the body").unwrap();
    assert_eq!(&head, b"HTTP/1.1 401");
}

/// Sends raw bytes as a gRPC message; ignores the answer's body.
#[derive(Clone, Copy, Default)]
struct Garbage;
struct GarbageEncoder;
struct IgnoreDecoder;

impl tonic::codec::Codec for Garbage {
    type Encode = Vec<u8>;
    type Decode = ();
    type Encoder = GarbageEncoder;
    type Decoder = IgnoreDecoder;
    fn encoder(&mut self) -> GarbageEncoder {
        GarbageEncoder
    }
    fn decoder(&mut self) -> IgnoreDecoder {
        IgnoreDecoder
    }
}

impl tonic::codec::Encoder for GarbageEncoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut tonic::codec::EncodeBuf<'_>) -> Result<(), tonic::Status> {
        use bytes::BufMut;
        dst.put_slice(&item);
        Ok(())
    }
}

impl tonic::codec::Decoder for IgnoreDecoder {
    type Item = ();
    type Error = tonic::Status;
    fn decode(&mut self, src: &mut tonic::codec::DecodeBuf<'_>) -> Result<Option<()>, tonic::Status> {
        use bytes::Buf;
        src.advance(src.remaining());
        Ok(Some(()))
    }
}

/// An undecodable message is the sender's error (INVALID_ARGUMENT, not
/// retried), not ours (INTERNAL, which OTLP senders retry forever).
#[tokio::test]
async fn undecodable_grpc_messages_are_invalid_argument_on_every_service() {
    install_crypto();
    let ingest = Ingest::new(IngestConfig::default());
    let addr = grpc_server(&ingest).await;
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap();
    for service in ["trace.v1.TraceService", "metrics.v1.MetricsService", "logs.v1.LogsService"] {
        let mut grpc = tonic::client::Grpc::new(channel.clone());
        grpc.ready().await.unwrap();
        let path: tonic::codegen::http::uri::PathAndQuery = format!("/opentelemetry.proto.collector.{service}/Export").parse().unwrap();
        // A length-delimited field that runs past the end.
        let err = grpc.unary(tonic::Request::new(vec![0x0a, 0xff, 0xff, 0x01]), path, Garbage).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{service}: {err:?}");
        assert!(err.message().starts_with("invalid OTLP protobuf"), "{service}: {}", err.message());
    }
}

fn base64_encode(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[tokio::test]
async fn remote_write_series_attach_to_services_by_job() {
    let ingest = Ingest::new(IngestConfig::default());
    let addr = http_server(&ingest).await;
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_millis() as i64;
    let body = crate::decode::remote_write_body(&[
        ("queue_depth", &[("job", "billing"), ("instance", "b1:9100")], &[(3.0, now - 1000), (5.0, now)]),
        ("up", &[("job", "billing"), ("instance", "b1:9100")], &[(1.0, now)]),
    ]);
    let r = client()
        .post(format!("http://{addr}/api/v1/write"))
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "snappy")
        .header("x-prometheus-remote-write-version", "0.1.0")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    ingest.flush().await;
    let (from, to) = wide();
    let s = ingest.service("billing", from, to).unwrap();
    let names: Vec<(&str, &str)> = s.metrics.iter().map(|m| (m.name.as_str(), m.labels.get("instance").map_or("", String::as_str))).collect();
    assert_eq!(names, vec![("queue_depth", "b1:9100"), ("up", "b1:9100")]);
    let total: u64 = s.metrics[0].windows.iter().map(|w| w.count).sum();
    assert_eq!(total, 2);
    assert_eq!(ingest.stats().metric_points_accepted, 3);
}

#[tokio::test]
async fn metrics_and_logs_over_otlp_json_and_closed_windows_reach_the_detectors() {
    use faultline_core::graph::GraphConfig;
    use faultline_core::signal::Signal;
    let (tx, mut rx) = tokio::sync::mpsc::channel(1000);
    let cfg = IngestConfig {
        graph: GraphConfig {
            window: faultline_core::time::Duration::from_millis(100),
            join_window: faultline_core::time::Duration::from_millis(100),
            ..GraphConfig::default()
        },
        tick_interval: Duration::from_millis(20),
        signals: Some(tx),
        ..IngestConfig::default()
    };
    let ingest = Ingest::new(cfg);
    let addr = http_server(&ingest).await;
    let c = client();
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_nanos();
    let metrics = format!(
        r#"{{"resourceMetrics":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"billing"}}}}]}},
        "scopeMetrics":[{{"metrics":[
          {{"name":"queue_depth","gauge":{{"dataPoints":[{{"asInt":"17","timeUnixNano":"{now}","attributes":[{{"key":"queue","value":{{"stringValue":"invoices"}}}}]}}]}}}},
          {{"name":"rpc_latency","histogram":{{"dataPoints":[{{"count":"4","sum":12.5,"timeUnixNano":"{now}","bucketCounts":["1","3"],"explicitBounds":[5.0]}}],"aggregationTemporality":2}}}}
        ]}}]}}]}}"#
    );
    let r = c.post(format!("http://{addr}/v1/metrics")).header("content-type", "application/json").body(metrics).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let logs = format!(
        r#"{{"resourceLogs":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"billing"}}}}]}},
        "scopeLogs":[{{"logRecords":[
          {{"timeUnixNano":"{now}","severityNumber":17,"severityText":"ERROR","body":{{"stringValue":"payment provider timed out"}},"traceId":"5b8efff798038103d269b633813fc60c"}},
          {{"timeUnixNano":"{now}","severityNumber":9,"body":{{"stringValue":"all good"}}}}
        ]}}]}}]}}"#
    );
    let r = c.post(format!("http://{addr}/v1/logs")).header("content-type", "application/json").body(logs).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = c.post(format!("http://{addr}/v1/traces")).header("content-type", "application/json").body(json_body()).send().await.unwrap();
    assert_eq!(r.status(), 200);

    // Wait (event-driven, bounded) for the metric points, the error log and
    // the closed edge window of `web → redis`.
    let (mut metric_names, mut logs_seen, mut edge) = (Vec::new(), Vec::new(), None);
    tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(s) = rx.recv().await {
            match s {
                Signal::Metric(p) => metric_names.push((p.name, p.value, p.service.map(|s| s.to_string()))),
                Signal::Log(l) => logs_seen.push((l.body, l.severity, l.trace_id)),
                Signal::Edge(w) => {
                    edge = Some(w);
                    break;
                }
                _ => {}
            }
        }
    })
    .await
    .expect("a closed edge window arrived");
    metric_names.sort_by(|a, b| a.0.cmp(&b.0));
    let billing = Some("billing".to_owned());
    assert_eq!(
        metric_names,
        vec![
            ("queue_depth".to_owned(), 17.0, billing.clone()),
            ("rpc_latency_count".to_owned(), 4.0, billing.clone()),
            ("rpc_latency_sum".to_owned(), 12.5, billing.clone()),
        ]
    );
    assert_eq!(
        logs_seen,
        vec![("payment provider timed out".to_owned(), "ERROR".to_owned(), Some("5b8efff798038103d269b633813fc60c".to_owned()))],
        "only ERROR and above become signals"
    );
    let edge = edge.unwrap();
    assert_eq!((edge.interaction.to_string().as_str(), edge.requests), ("web → redis (GET)", 1));
    let st = ingest.stats();
    assert_eq!((st.metric_points_accepted, st.log_records_accepted), (3, 2));
}

/// The remote-write path the server uses (the queued raw body, walked by the
/// consumer) clips label values both in the graph and in the points sent to
/// the detectors — it kept them whole (5.25 GB RSS from 174 requests).
#[tokio::test]
async fn remote_write_label_values_are_clipped_on_the_queued_path() {
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    let ingest = Ingest::new(IngestConfig { signals: Some(tx), ..IngestConfig::default() });
    let addr = http_server(&ingest).await;
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_millis() as i64;
    let huge = "v".repeat(1 << 20);
    let body = crate::decode::remote_write_body(&[("up", &[("job", "billing"), ("junk", &huge)], &[(1.0, now)])]);
    let r = client()
        .post(format!("http://{addr}/api/v1/write"))
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "snappy")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    ingest.flush().await;
    let max = faultline_core::bounded::MAX_LABEL_VALUE_BYTES;
    let (from, to) = wide();
    let s = ingest.service("billing", from, to).unwrap();
    assert_eq!(s.metrics[0].labels["junk"].len(), max);
    let Some(faultline_core::signal::Signal::Metric(p)) = rx.recv().await else { panic!("a metric point reaches the detectors") };
    assert_eq!(p.labels["junk"].len(), max);
}

/// The queue is sized in bytes, not only in batches: 256 batches of up to
/// 32 MiB each allowed ≈ 8 GiB (3.67 GB reached with no 429/503).
#[tokio::test]
async fn the_queue_answers_backpressure_at_its_byte_budget() {
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_millis() as i64;
    let value = "v".repeat(600);
    let body = crate::decode::remote_write_body(&[("up", &[("job", "x"), ("big", &value)], &[(1.0, now)])]);
    let (ingest, consumer) = Ingest::unstarted(IngestConfig { queue_capacity: 100, queue_max_bytes: 1000, ..IngestConfig::default() });
    let addr = http_server(&ingest).await;
    let c = client();
    let send = || {
        c.post(format!("http://{addr}/api/v1/write"))
            .header("content-type", "application/x-protobuf")
            .header("content-encoding", "snappy")
            .body(body.clone())
            .send()
    };
    assert_eq!(send().await.unwrap().status(), 204, "an empty queue takes a batch");
    assert!(ingest.queued_bytes() > 600);
    let r = send().await.unwrap();
    assert_eq!(r.status(), 503, "a second batch would pass 1000 bytes, though 99 batch slots are free");
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(ingest.stats().backpressure, 1);
    tokio::spawn(consumer);
    ingest.flush().await;
    assert_eq!(ingest.queued_bytes(), 0, "consumed batches give their bytes back");
    assert_eq!(send().await.unwrap().status(), 204);
}
