//! Connections cannot starve the server: a bounded slowloris on loopback
//! against a served `App` (real sockets), with its timeouts set small by
//! config. A few hundred slow-header, silent and stalled-body connections
//! are held open; a normal client's request still completes; every slow
//! connection is then closed by the server (the client reads EOF or a
//! reset), and `/metrics` says why. Past the connection cap a new
//! connection is told so at once and closed.
//!
//! Synchronisation is on what the sockets report (a completed answer, an
//! end of stream), never on a sleep; the only time bound is a guard that
//! turns a hang into a failure.

use std::sync::Arc;
use std::time::Duration;

use faultline_core::Timestamp;
use faultline_server::{App, Config};
use faultline_store::{SqlStore, TokenScope};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A guard against hanging (a failure, not a synchronisation).
const GUARD: Duration = Duration::from_secs(60);

struct Served {
    addr: std::net::SocketAddr,
    ingest_token: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _dir: tempfile::TempDir,
}

impl Served {
    async fn start(config: Config) -> Served {
        Served::start_config(Config { otlp_grpc_listen: None, ..config }).await
    }

    async fn start_with_grpc(config: Config, grpc: std::net::SocketAddr) -> Served {
        Served::start_config(Config { otlp_grpc_listen: Some(grpc), ..config }).await
    }

    async fn start_config(config: Config) -> Served {
        let _ = faultline_server::serve::raise_fd_limit();
        let dir = tempfile::tempdir().unwrap();
        let store = SqlStore::open_sqlite(dir.path()).await.unwrap();
        let (_, ingest_token) = faultline_server::auth::create_token(&store, "prometheus", TokenScope::Ingest, None, Timestamp::from_secs(0)).await.unwrap();
        let config = Config { listen: "127.0.0.1:0".parse().unwrap(), otlp_http_listen: None, ..config };
        let app = App::with_store(config, store, Arc::new(faultline_server::clock::SystemClock));
        let listener = app.bind().await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(app.run(listener, async move {
            let _ = rx.await;
        }));
        Served { addr, ingest_token, stop: Some(tx), task: Some(task), _dir: dir }
    }

    async fn get(&self, path: &str) -> (u16, String) {
        let r = reqwest::get(format!("http://{}{path}", self.addr)).await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.take().unwrap().await.unwrap().unwrap();
    }
}

/// Reads until the server closes the connection; what it had sent before.
async fn until_closed(mut c: TcpStream) -> Vec<u8> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match c.read(&mut buf).await {
            Ok(0) | Err(_) => return seen,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
}

fn counter(metrics: &str, name_and_labels: &str) -> f64 {
    metrics.lines().find_map(|l| l.strip_prefix(name_and_labels).and_then(|v| v.trim().parse().ok())).unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bounded_slowloris_does_not_stop_a_normal_client_and_is_closed_by_the_server() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let s = Served::start(Config {
        header_read_timeout: Duration::from_millis(400),
        idle_timeout: Duration::from_millis(600),
        max_connections: 1000,
        // Every connection here comes from 127.0.0.1: this test is about the
        // timeouts, the per-client cap has its own below.
        max_connections_per_client: 1000,
        ..Config::default()
    })
    .await;
    const EACH: usize = 100;
    let mut slow = Vec::new();
    for i in 0..3 * EACH {
        let mut c = TcpStream::connect(s.addr).await.unwrap();
        match i % 3 {
            // Slow headers: a request line and one header, then nothing.
            0 => c.write_all(b"POST /api/v2/alerts HTTP/1.1\r\nhost: x\r\n").await.unwrap(),
            // Silent: connected, never a byte.
            1 => {}
            // A stalled body: whole headers with a valid token, a few bytes of 4 KiB.
            _ => c
                .write_all(
                    format!("POST /api/v2/alerts HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\ncontent-length: 4096\r\n\r\n[{{\"la", s.ingest_token)
                        .as_bytes(),
                )
                .await
                .unwrap(),
        }
        slow.push(c);
    }
    // A normal client is answered while all of them are held open.
    let (status, body) = tokio::time::timeout(GUARD, s.get("/healthz")).await.expect("a normal request completes during the slowloris");
    assert_eq!((status, body.as_str()), (200, "ok\n"));

    // Every slow connection is closed by the server, none by us.
    let closed =
        tokio::time::timeout(GUARD, futures_join_all(slow.into_iter().map(until_closed).collect())).await.expect("the server closes every slow connection");
    assert_eq!(closed.len(), 3 * EACH);
    let (_, metrics) = s.get("/metrics").await;
    let header = counter(&metrics, "faultline_connections_closed_total{reason=\"header_timeout\"}");
    let idle = counter(&metrics, "faultline_connections_closed_total{reason=\"idle_timeout\"}");
    assert!(header >= (2 * EACH) as f64, "slow-header and silent connections end at the header timeout: {header}\n{metrics}");
    assert!(idle >= EACH as f64, "stalled bodies end at the idle timeout: {idle}");
    assert_eq!(counter(&metrics, "faultline_connections_refused_total"), 0.0);
    // And the server still answers.
    assert_eq!(s.get("/healthz").await.0, 200);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_connection_cap_a_new_connection_is_refused_clearly() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let s = Served::start(Config { max_connections: 5, header_read_timeout: Duration::from_secs(30), ..Config::default() }).await;
    // Five silent connections take every place; the server holds them
    // (until its header timeout), so each is admitted once it is accepted:
    // a request on one of them proves the accept loop has seen them all.
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(TcpStream::connect(s.addr).await.unwrap());
    }
    let mut fifth = TcpStream::connect(s.addr).await.unwrap();
    fifth.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 12];
    fifth.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"HTTP/1.1 200");
    held.push(fifth);
    // The sixth is told why, and closed.
    let refused = tokio::time::timeout(GUARD, until_closed(TcpStream::connect(s.addr).await.unwrap())).await.unwrap();
    let text = String::from_utf8(refused).unwrap();
    assert!(text.starts_with("HTTP/1.1 503") && text.contains("\"code\":\"too_many_connections\""), "{text}");
    assert!(text.to_ascii_lowercase().contains("retry-after: 1"), "{text}");
    // One place freed (we close, the server closes in turn, having given
    // the place back first): the next connection is served.
    let mut fifth = held.pop().unwrap();
    fifth.shutdown().await.unwrap();
    tokio::time::timeout(GUARD, until_closed(fifth)).await.unwrap();
    let (status, _) = tokio::time::timeout(GUARD, s.get("/healthz")).await.unwrap();
    assert_eq!(status, 200);
    drop(held);
    s.stop().await;
}

/// Connects from a chosen loopback address (all of 127/8 is loopback on
/// Linux), so one machine can play two clients.
async fn connect_from(from: [u8; 4], to: std::net::SocketAddr) -> TcpStream {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind(std::net::SocketAddr::from((from, 0))).unwrap();
    sock.connect(to).await.unwrap()
}

/// Sends one GET on `c` and reads the status line's first 12 bytes.
async fn status_on(c: &mut TcpStream) -> [u8; 12] {
    c.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 12];
    c.read_exact(&mut buf).await.unwrap();
    buf
}

/// One client holding its share of connections is refused more, while
/// another client is still served; a place it gives back is its again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_cannot_take_every_connection() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let s =
        Served::start(Config { max_connections: 100, max_connections_per_client: 3, header_read_timeout: Duration::from_secs(30), ..Config::default() }).await;
    let greedy = [127, 0, 0, 2];
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut c = connect_from(greedy, s.addr).await;
        // Answered: the accept loop has admitted it (and counted it).
        assert_eq!(&status_on(&mut c).await, b"HTTP/1.1 200");
        held.push(c);
    }
    let refused = tokio::time::timeout(GUARD, until_closed(connect_from(greedy, s.addr).await)).await.unwrap();
    let text = String::from_utf8(refused).unwrap();
    assert!(text.starts_with("HTTP/1.1 503") && text.contains("\"code\":\"too_many_connections\"") && text.contains("this client"), "{text}");
    // Another client is served meanwhile.
    let mut other = connect_from([127, 0, 0, 3], s.addr).await;
    assert_eq!(&status_on(&mut other).await, b"HTTP/1.1 200");
    // The greedy client closes one; its next connection is admitted.
    let mut first = held.remove(0);
    first.shutdown().await.unwrap();
    tokio::time::timeout(GUARD, until_closed(first)).await.unwrap();
    let mut again = connect_from(greedy, s.addr).await;
    assert_eq!(&status_on(&mut again).await, b"HTTP/1.1 200");
    let (_, metrics) = s.get("/metrics").await;
    assert_eq!(counter(&metrics, "faultline_connections_refused_client_total"), 1.0, "{metrics}");
    assert_eq!(counter(&metrics, "faultline_connections_refused_total"), 0.0);
    drop((held, other, again));
    s.stop().await;
}

/// Reads one HTTP/1.1 answer's status line and headers from `c`.
async fn head_of(c: &mut TcpStream) -> String {
    let mut seen = Vec::new();
    let mut buf = [0u8; 1];
    while !seen.ends_with(b"\r\n\r\n") {
        if c.read(&mut buf).await.unwrap() == 0 {
            break;
        }
        seen.push(buf[0]);
    }
    String::from_utf8(seen).unwrap()
}

/// Request bodies in flight share one byte budget over the API and ingest
/// routes: while one request holds most of it (its body still arriving),
/// another that does not fit is answered at once with a retryable refusal
/// in its protocol's shape, before its body is read; when the first is
/// done, the same request is taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_bytes_in_flight_are_bounded_across_routes() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let s = Served::start(Config { max_request_bytes_in_flight: 1_000, header_read_timeout: Duration::from_secs(30), ..Config::default() }).await;
    let token = s.ingest_token.clone();
    // 800 bytes announced, 10 sent: its reservation is held while the body trickles.
    let body = format!("[{{\"labels\":{{\"alertname\":\"Held\",\"service\":\"a\",\"pad\":\"{}\"}}}}]", "x".repeat(800 - 56));
    assert_eq!(body.len(), 800);
    let mut holder = TcpStream::connect(s.addr).await.unwrap();
    holder
        .write_all(
            format!(
                "POST /api/v2/alerts HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\ncontent-type: application/json\r\ncontent-length: 800\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    holder.write_all(&body.as_bytes()[..10]).await.unwrap();
    // Wait until the server holds it (the gauge says so), not for a time.
    let gauge = loop {
        let (_, m) = s.get("/metrics").await;
        let v = counter(&m, "faultline_request_bytes_in_flight");
        if v > 0.0 {
            break v;
        }
        tokio::task::yield_now().await;
    };
    assert_eq!(gauge, 800.0, "{}", s.get("/metrics").await.1.lines().filter(|l| l.contains("request_bytes")).collect::<Vec<_>>().join("\n"));
    let client = reqwest::Client::new();
    let post = |path: &str, ctype: &str, body: Vec<u8>| {
        client.post(format!("http://{}{path}", s.addr)).bearer_auth(&token).header("content-type", ctype).body(body).send()
    };
    // API route: 503 in the API's error shape.
    let r = post("/api/v2/alerts", "application/json", vec![b' '; 300]).await.unwrap();
    assert_eq!(r.status().as_u16(), 503);
    assert_eq!(r.headers()["retry-after"], "1");
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "too_many_bytes_in_flight", "{v}");
    // Remote-write: 503 (senders retry 5xx); OTLP/HTTP: 429 — both with Retry-After.
    let r = post("/api/v1/write", "application/x-protobuf", vec![0; 300]).await.unwrap();
    assert_eq!((r.status().as_u16(), r.headers().get("retry-after").is_some()), (503, true));
    let r = post("/v1/traces", "application/json", vec![b' '; 300]).await.unwrap();
    assert_eq!((r.status().as_u16(), r.headers().get("retry-after").is_some()), (429, true));
    // A small request still fits beside it.
    let r = post("/api/v2/alerts", "application/json", b"[]".to_vec()).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    // The holder's body completes: it is accepted and its bytes are given back.
    holder.write_all(&body.as_bytes()[10..]).await.unwrap();
    let head = tokio::time::timeout(GUARD, head_of(&mut holder)).await.unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let r = post(
        "/api/v2/alerts",
        "application/json",
        format!("[{{\"labels\":{{\"alertname\":\"Next\",\"service\":\"b\",\"pad\":\"{}\"}}}}]", "y".repeat(300)).into_bytes(),
    )
    .await
    .unwrap();
    assert_eq!(r.status().as_u16(), 200, "room again once the first is done");
    let (_, m) = s.get("/metrics").await;
    assert_eq!(counter(&m, "faultline_request_bytes_refused_total"), 3.0, "{m}");
    drop(holder);
    s.stop().await;
}

/// The OTLP/gRPC listener shares the bounds: silent connections to it are
/// closed at the idle timeout and count in `faultline_connections_*`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_connections_are_bounded_too() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    // A free port for the gRPC listener (the App binds it by address).
    let grpc = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let s = Served::start_with_grpc(Config { idle_timeout: Duration::from_millis(300), ..Config::default() }, grpc).await;
    // `App::run` binds the OTLP listeners before it serves the API: an
    // answer from the API means the gRPC port is listening.
    assert_eq!(s.get("/healthz").await.0, 200);
    let mut silent = Vec::new();
    for _ in 0..50 {
        silent.push(TcpStream::connect(grpc).await.unwrap());
    }
    let closed =
        tokio::time::timeout(GUARD, futures_join_all(silent.into_iter().map(until_closed).collect())).await.expect("silent gRPC connections are closed");
    assert_eq!(closed.len(), 50);
    let (_, metrics) = s.get("/metrics").await;
    assert!(counter(&metrics, "faultline_connections_closed_total{reason=\"idle_timeout\"}") >= 50.0, "{metrics}");
    s.stop().await;
}

/// Awaits every future (concurrently) and collects their outputs.
async fn futures_join_all<F: std::future::Future + Send + 'static>(futures: Vec<F>) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}
