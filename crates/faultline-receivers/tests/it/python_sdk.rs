//! The OpenTelemetry Python SDK (`opentelemetry-sdk` with the OTLP HTTP and
//! gRPC exporters from PyPI) exports the same small call tree as the Rust SDK
//! test; the learned edges and counts must match exactly. Skipped when the
//! packages are missing, except under CI (`CI=true`), where that is a failure
//! (`.ci/run` installs them).

use std::process::Command;

use faultline_receivers::{Ingest, IngestConfig};

const SCRIPT: &str = r#"
import sys, time
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.trace import SpanKind, Status, StatusCode, set_span_in_context

proto, addr = sys.argv[1], sys.argv[2]

def provider(name):
    if proto == "http":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.exporter.otlp.proto.http import Compression
        exp = OTLPSpanExporter(endpoint=f"http://{addr}/v1/traces", compression=Compression.Gzip)
    else:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        from grpc import Compression
        exp = OTLPSpanExporter(endpoint=f"http://{addr}", insecure=True, compression=Compression.Gzip)
    tp = TracerProvider(resource=Resource.create({"service.name": name}))
    tp.add_span_processor(SimpleSpanProcessor(exp))
    return tp

fp, cp = provider("frontend"), provider("checkout")
tf, tc = fp.get_tracer("t"), cp.get_tracer("t")
root = tf.start_span("GET /", kind=SpanKind.SERVER)
for attempt in (0, 1):
    client = tf.start_span("POST", context=set_span_in_context(root), kind=SpanKind.CLIENT,
                           attributes={"http.request.method": "POST", "server.address": "checkout",
                                       "url.full": "http://checkout:8080/checkout"})
    server = tc.start_span("POST /checkout", context=set_span_in_context(client), kind=SpanKind.SERVER)
    if attempt == 0:
        server.set_attribute("http.response.status_code", 503)
        server.set_status(Status(StatusCode.ERROR, "upstream unavailable"))
        client.set_attribute("http.response.status_code", 503)
        client.set_status(Status(StatusCode.ERROR, "503"))
    else:
        db = tc.start_span("SELECT orders", context=set_span_in_context(server), kind=SpanKind.CLIENT,
                           attributes={"db.system": "postgresql", "net.peer.name": "orders-db",
                                       "db.statement": "SELECT * FROM orders WHERE id = %s"})
        db.end()
        server.set_attribute("http.status_code", 200)
        client.set_attribute("http.status_code", 200)
    server.end()
    client.end()
    time.sleep(0.002)
root.end()
fp.shutdown()
cp.shutdown()
"#;

fn python_otel_available() -> bool {
    Command::new("python3")
        .args([
            "-c",
            "import opentelemetry.sdk, opentelemetry.exporter.otlp.proto.http.trace_exporter, \
             opentelemetry.exporter.otlp.proto.grpc.trace_exporter",
        ])
        .output()
        .is_ok_and(|o| o.status.success())
}

async fn run(proto: &'static str) {
    if !python_otel_available() {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "CI must install opentelemetry-sdk and the OTLP exporters from PyPI");
        eprintln!("skipped: python opentelemetry-sdk not installed");
        return;
    }
    let ingest = Ingest::new(IngestConfig::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    if proto == "http" {
        let router = ingest.router();
        tokio::spawn(async move { axum::serve(listener, router).await });
    } else {
        let i = ingest.clone();
        tokio::spawn(async move { i.serve_grpc(listener, std::future::pending()).await });
    }
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("tree.py");
    std::fs::write(&script, SCRIPT).unwrap();
    let out = tokio::task::spawn_blocking(move || Command::new("python3").arg(&script).arg(proto).arg(addr.to_string()).output().unwrap()).await.unwrap();
    assert!(out.status.success(), "python exporter failed: {}", String::from_utf8_lossy(&out.stderr));
    ingest.flush().await;
    assert_eq!(crate::server::edge_rows(&ingest), crate::server::expected_tree());
    crate::server::check_nodes(&ingest);
    let st = ingest.stats();
    assert_eq!((st.spans_accepted, st.bad_payloads, st.graph.calls_paired), (6, 0, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_over_http_protobuf_gzip() {
    run("http").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_over_grpc_gzip() {
    run("grpc").await;
}
