//! What the binary-level tests share: the built `faultline` binary, a
//! `faultline serve` child process on a free port, admin tokens made on a
//! data dir, and a local webhook receiver that records each delivery's
//! idempotency key. Synchronisation is by the server's "listening" line and
//! by the receiver's own notification of what arrived — never a sleep.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::HeaderMap;
use tokio::sync::Notify;

pub const BIN: &str = env!("CARGO_BIN_EXE_faultline");

/// A `faultline serve` process (SQLite in `data_dir`, every listener on a
/// free port); killed when dropped.
pub struct Server {
    child: Child,
    pub url: String,
}

impl Server {
    /// Starts the server with these extra environment variables (a response
    /// config path, a secret webhook URL) and waits for its listening line.
    pub fn start(data_dir: &Path, env: &[(&str, &str)]) -> Server {
        let mut cmd = Command::new(BIN);
        cmd.args([
            "serve",
            "--data-dir",
            data_dir.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--otlp-grpc-listen",
            "127.0.0.1:0",
            "--otlp-http-listen",
            "127.0.0.1:0",
        ])
        .env("FAULTLINE_LOG", "warn")
        .env_remove("FAULTLINE_CONFIG")
        .env_remove("FAULTLINE_DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let url = line.trim().strip_prefix("faultline listening on ").unwrap_or_else(|| panic!("unexpected first line {line:?}")).to_owned();
        Server { child, url }
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn stop(mut self) {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
        let exit = self.child.wait().unwrap();
        assert!(exit.success(), "server exited with {exit:?} after SIGTERM");
    }

    /// SIGKILL: no shutdown path runs.
    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `faultline token create` on the data dir (no server needed); the secret.
pub fn create_token(data_dir: &Path, scope: &str) -> String {
    let out = Command::new(BIN).args(["token", "create", "--data-dir", data_dir.to_str().unwrap(), "--scope", scope]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().last().unwrap().trim().to_owned()
}

/// A client that sends `Authorization: Bearer <token>` on every request,
/// as a configured sender (Prometheus, a collector) does.
pub fn ingest_client(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    // A token is `flt_` and hex digits: always a valid header value.
    headers.insert(reqwest::header::AUTHORIZATION, format!("Bearer {token}").parse().unwrap());
    reqwest::Client::builder().default_headers(headers).build().unwrap()
}

/// A local webhook receiver: records every request's idempotency key in
/// arrival order (repeats included), after an optional delay that makes it
/// a slow peer (so a kill catches deliveries in flight).
#[derive(Clone, Default)]
pub struct Receiver {
    keys: Arc<Mutex<Vec<String>>>,
    changed: Arc<Notify>,
    delay: Duration,
}

impl Receiver {
    pub fn slow(delay: Duration) -> Receiver {
        Receiver { delay, ..Receiver::default() }
    }

    /// Serves on a free port; returns the hook URL.
    pub async fn start(self) -> String {
        let r = self.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, _body: axum::body::Bytes| {
                let r = r.clone();
                async move {
                    if !r.delay.is_zero() {
                        tokio::time::sleep(r.delay).await;
                    }
                    let key = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                    r.keys.lock().unwrap().push(key);
                    r.changed.notify_waiters();
                    "ok"
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        url
    }

    /// Requests received so far, repeats included.
    pub fn received(&self) -> usize {
        self.keys.lock().unwrap().len()
    }

    pub fn distinct(&self) -> BTreeSet<String> {
        self.keys.lock().unwrap().iter().cloned().collect()
    }

    /// Waits until `pred` holds over the distinct keys seen, or fails after `limit`.
    pub async fn wait_for(&self, what: &str, limit: Duration, pred: impl Fn(&BTreeSet<String>) -> bool) {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.changed.notified();
            if pred(&self.distinct()) {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("timed out waiting for {what}; seen {:#?}", self.distinct());
            }
        }
    }
}

/// One authenticated API call that must succeed; its JSON body (`null`
/// when it has none).
pub async fn api(client: &reqwest::Client, method: reqwest::Method, url: String, token: &str, body: Option<serde_json::Value>) -> serde_json::Value {
    let mut rb = client.request(method, url).bearer_auth(token);
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let resp = rb.send().await.unwrap();
    let status = resp.status();
    let v: serde_json::Value = resp.json().await.unwrap_or(serde_json::Value::Null);
    assert!(status.is_success(), "{status}: {v}");
    v
}
