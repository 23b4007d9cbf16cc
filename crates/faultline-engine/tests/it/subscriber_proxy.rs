//! Subscriber webhooks through the operator's proxy (`HTTPS_PROXY` /
//! `HTTP_PROXY` / `NO_PROXY`, here given as `ProxySettings`): a public
//! endpoint is handed to the proxy (absolute-form for http, CONNECT for
//! https) with its host name, while an endpoint on, or resolving to, a
//! private address is refused before anything is sent, proxy or not. The
//! proxy is a stub on 127.0.0.1 reached by a name that resolves there: the
//! operator's proxy is trusted, a subscriber's endpoint is not. Nothing here
//! connects to a public address.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use faultline_engine::notify::proxy::ProxySettings;
use faultline_engine::notify::{Secret, SendError, Sender, target};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One request the stub proxy received.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Seen {
    /// The request line: `POST http://host/path HTTP/1.1` or `CONNECT host:443 HTTP/1.1`.
    line: String,
    idempotency_key: Option<String>,
    body: String,
}

/// A forward proxy that answers every forwarded request 200 itself and
/// refuses every CONNECT (502): enough to see what a client asks of it.
struct StubProxy {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl StubProxy {
    async fn start() -> StubProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                tokio::spawn(serve_one(conn, log.clone()));
            }
        });
        StubProxy { port, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// Reads one request head (and its body, by Content-Length), records it and
/// answers; the connection is closed after one exchange.
async fn serve_one(mut conn: tokio::net::TcpStream, log: Arc<Mutex<Vec<Seen>>>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match conn.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let line = lines.next().unwrap_or_default().to_owned();
    let header = |name: &str| {
        head.split("\r\n").skip(1).find_map(|l| l.split_once(':').filter(|(k, _)| k.trim().eq_ignore_ascii_case(name)).map(|(_, v)| v.trim().to_owned()))
    };
    let length: usize = header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    while buf.len() < head_end + length {
        match conn.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let body = String::from_utf8_lossy(&buf[head_end..buf.len().min(head_end + length)]).into_owned();
    let answer: &[u8] = if line.starts_with("CONNECT ") {
        b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    } else {
        b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    };
    log.lock().unwrap().push(Seen { line, idempotency_key: header("idempotency-key"), body });
    let _ = conn.write_all(answer).await;
    let _ = conn.shutdown().await;
}

/// Names resolved from a fixed table (the test's DNS).
fn table(entries: &[(&'static str, IpAddr)]) -> target::Lookup {
    let entries = entries.to_vec();
    Arc::new(move |host: String, port: u16| {
        let found: Vec<SocketAddr> = entries.iter().filter(|(h, _)| *h == host).map(|(_, ip)| SocketAddr::new(*ip, port)).collect();
        Box::pin(async move { if found.is_empty() { Err(std::io::Error::other("no such host")) } else { Ok(found) } })
    })
}

fn via(proxy: &StubProxy, no_proxy: Option<&str>) -> ProxySettings {
    let url = format!("http://egress-proxy.internal:{}", proxy.port);
    ProxySettings { https: Some(Secret::new(url.clone())), http: Some(Secret::new(url)), no_proxy: no_proxy.map(str::to_owned) }
}

const PUBLIC: IpAddr = IpAddr::V4(Ipv4Addr::new(93, 184, 216, 34));

fn dns() -> target::Lookup {
    table(&[
        ("hooks.example.com", PUBLIC),
        ("direct.example.com", PUBLIC),
        ("internal.example.com", IpAddr::V4(Ipv4Addr::new(10, 0, 0, 5))),
        ("metadata.example.com", IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254))),
        // The operator's proxy, on a loopback (private) address.
        ("egress-proxy.internal", IpAddr::V4(Ipv4Addr::LOCALHOST)),
    ])
}

fn permanent(r: &Result<faultline_engine::notify::Sent, SendError>) -> Option<&str> {
    match r {
        Err(SendError::Permanent { detail }) => Some(detail),
        _ => None,
    }
}

/// A public endpoint goes to the proxy — by name, for the proxy to resolve —
/// with its body and idempotency key; https is tunnelled with CONNECT. A
/// private endpoint is refused before the proxy hears of it, whether its
/// address is in the URL or behind a name, and whether or not it is the
/// proxy's own address: only the proxy, as the proxy, is trusted.
#[tokio::test]
async fn subscriber_webhooks_go_through_the_proxy_and_private_endpoints_are_still_refused() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let proxy = StubProxy::start().await;
    let sender = Sender::with_proxy(StdDuration::from_secs(5), dns(), &via(&proxy, None)).unwrap();
    let body = serde_json::json!({"page": "status"});
    let post = |url: String, key: &'static str| {
        let sender = sender.clone();
        let body = body.clone();
        async move { sender.post_to_subscriber(&Secret::new(url), &body, key, false).await }
    };

    let sent = post("http://hooks.example.com/status?token=t".into(), "k1").await;
    assert_eq!(sent.map(|s| s.detail), Ok("HTTP 200".to_owned()), "answered by the proxy");
    assert_eq!(
        proxy.seen(),
        [Seen { line: "POST http://hooks.example.com/status?token=t HTTP/1.1".into(), idempotency_key: Some("k1".into()), body: body.to_string() }]
    );

    let tunnelled = post("https://hooks.example.com/status".into(), "k2").await;
    assert!(matches!(tunnelled, Err(SendError::Retryable { .. })), "the stub refuses tunnels: {tunnelled:?}");
    assert_eq!(proxy.seen().last().map(|s| s.line.as_str()), Some("CONNECT hooks.example.com:443 HTTP/1.1"));

    let before = proxy.seen().len();
    let loopback_proxy = format!("http://127.0.0.1:{}/hook", proxy.port);
    let proxy_by_name = format!("http://egress-proxy.internal:{}/hook", proxy.port);
    for (url, why) in [
        ("http://internal.example.com/hook", "subscriber endpoint resolves to a private address"),
        ("https://internal.example.com/hook", "subscriber endpoint resolves to a private address"),
        ("http://metadata.example.com/latest", "subscriber endpoint resolves to a link-local address"),
        ("http://169.254.169.254/latest/meta-data", "subscriber endpoint points at a link-local address"),
        ("http://10.0.0.5/hook", "subscriber endpoint points at a private address"),
        (loopback_proxy.as_str(), "subscriber endpoint points at a loopback address"),
        (proxy_by_name.as_str(), "subscriber endpoint resolves to a loopback address"),
    ] {
        let r = post(url.to_owned(), "k3").await;
        assert_eq!(permanent(&r), Some(format!("{why}; private targets are not allowed, not sent").as_str()), "{url}: {r:?}");
    }
    assert_eq!(proxy.seen().len(), before, "the proxy heard of no private endpoint: {:#?}", proxy.seen());
}

/// Endpoints `NO_PROXY` lists are reached directly, still through the
/// guarded resolver: a name that passed the check and then resolves to a
/// loopback address is not connected to (and the proxy is not used).
#[tokio::test]
async fn no_proxy_endpoints_go_direct_and_stay_guarded() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let proxy = StubProxy::start().await;
    let calls = Arc::new(Mutex::new(0u32));
    let counted = calls.clone();
    let inner = dns();
    // direct.example.com is public when checked, then loopback (rebinding).
    let lookup: target::Lookup = Arc::new(move |host: String, port: u16| {
        let n = {
            let mut c = counted.lock().unwrap();
            if host == "direct.example.com" {
                *c += 1;
            }
            *c
        };
        if host == "direct.example.com" && n > 1 {
            return Box::pin(async move { Ok(vec![SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port)]) });
        }
        inner(host, port)
    });
    let sender = Sender::with_proxy(StdDuration::from_secs(5), lookup, &via(&proxy, Some("direct.example.com"))).unwrap();
    let r = sender.post_to_subscriber(&Secret::new(format!("http://direct.example.com:{}/hook", proxy.port)), &serde_json::json!({}), "k", false).await;
    assert!(matches!(&r, Err(SendError::Retryable { detail, .. }) if detail == "request failed" || detail == "could not connect"), "{r:?}");
    assert_eq!(*calls.lock().unwrap(), 2, "checked, then resolved again by the client itself (not by the proxy)");
    assert!(proxy.seen().is_empty(), "{:#?}", proxy.seen());
}

/// With private targets allowed (tests, demos) the proxy is used as well.
#[tokio::test]
async fn with_private_targets_allowed_the_proxy_is_still_used() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let proxy = StubProxy::start().await;
    let sender = Sender::with_proxy(StdDuration::from_secs(5), dns(), &via(&proxy, None)).unwrap();
    let r = sender.post_to_subscriber(&Secret::new("http://internal.example.com/hook"), &serde_json::json!({}), "k", true).await;
    assert_eq!(r.map(|s| s.detail), Ok("HTTP 200".to_owned()));
    assert_eq!(proxy.seen().iter().map(|s| s.line.as_str()).collect::<Vec<_>>(), ["POST http://internal.example.com/hook HTTP/1.1"]);
}
