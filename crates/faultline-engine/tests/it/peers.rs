//! Real peers for notification tests: an HTTP receiver (axum on
//! 127.0.0.1:0) that records every request and answers from a per-path
//! script, and a real SMTP server (`python3 -m aiosmtpd`, from PyPI) whose
//! printed messages are collected. Tests wait on the servers' own readiness
//! (a bound listener; aiosmtpd's "Server is listening" line), never on sleeps.

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

#[derive(Clone, Debug)]
pub struct Received {
    pub path: String,
    pub idempotency_key: Option<String>,
    pub body: serde_json::Value,
    pub at: Instant,
}

#[derive(Default)]
struct Inner {
    received: Vec<Received>,
    /// Scripted answers per path prefix: (status, Retry-After seconds).
    script: BTreeMap<String, VecDeque<(u16, Option<u64>)>>,
    /// Answer for a path prefix once its script is used up.
    default: BTreeMap<String, (u16, Option<String>)>,
}

#[derive(Clone, Default)]
pub struct HttpReceiver {
    inner: Arc<Mutex<Inner>>,
    pub addr: Option<SocketAddr>,
}

impl HttpReceiver {
    pub async fn start() -> HttpReceiver {
        let mut r = HttpReceiver::default();
        let app = axum::Router::new().fallback(handle).with_state(r.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        r.addr = Some(listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        r
    }
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr.unwrap())
    }
    /// The next answers for paths starting with `prefix`.
    pub fn script(&self, prefix: &str, answers: &[(u16, Option<u64>)]) {
        self.inner.lock().unwrap().script.entry(prefix.into()).or_default().extend(answers.iter().copied());
    }
    /// The answer (and body) for `prefix` after its script.
    pub fn always(&self, prefix: &str, status: u16, body: Option<&str>) {
        self.inner.lock().unwrap().default.insert(prefix.into(), (status, body.map(str::to_owned)));
    }
    pub fn received(&self) -> Vec<Received> {
        self.inner.lock().unwrap().received.clone()
    }
    pub fn received_on(&self, prefix: &str) -> Vec<Received> {
        self.received().into_iter().filter(|r| r.path.starts_with(prefix)).collect()
    }
}

async fn handle(State(r): State<HttpReceiver>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let path = uri.path().to_owned();
    let mut inner = r.inner.lock().unwrap();
    inner.received.push(Received {
        path: path.clone(),
        idempotency_key: headers.get("idempotency-key").and_then(|v| v.to_str().ok()).map(str::to_owned),
        body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
        at: Instant::now(),
    });
    let scripted = inner.script.iter_mut().find(|(p, _)| path.starts_with(p.as_str())).and_then(|(_, q)| q.pop_front());
    if let Some((status, retry_after)) = scripted {
        let mut resp = StatusCode::from_u16(status).unwrap().into_response();
        if let Some(s) = retry_after {
            resp.headers_mut().insert("retry-after", s.to_string().parse().unwrap());
        }
        return resp;
    }
    match inner.default.iter().find(|(p, _)| path.starts_with(p.as_str())) {
        Some((_, (status, body))) => (StatusCode::from_u16(*status).unwrap(), body.clone().unwrap_or_default()).into_response(),
        None => (StatusCode::OK, "ok").into_response(),
    }
}

/// A real SMTP server (aiosmtpd's debugging handler prints each message).
pub struct Smtp {
    child: Child,
    pub port: u16,
    lines: Arc<(Mutex<Vec<String>>, Condvar)>,
}

impl Smtp {
    /// Starts aiosmtpd, or returns None (skipping) when it is not installed
    /// outside CI. Under `CI=true` a missing aiosmtpd fails the test.
    pub fn start() -> Option<Smtp> {
        Smtp::start_with(&[])
    }

    /// aiosmtpd with extra arguments, e.g. `--tlscert c --tlskey k`
    /// (STARTTLS, required by default) or `--smtpscert c --smtpskey k`.
    pub fn start_with(extra: &[&str]) -> Option<Smtp> {
        let installed = Command::new("python3").args(["-c", "import aiosmtpd"]).status().is_ok_and(|s| s.success());
        if !installed {
            assert!(std::env::var("CI").as_deref() != Ok("true"), "CI=true but the aiosmtpd Python package is missing (pip install aiosmtpd)");
            eprintln!("skipped: python3 -m aiosmtpd not available (pip install aiosmtpd)");
            return None;
        }
        // Find a free port: bind :0, read it, release it for aiosmtpd.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut child = Command::new("python3")
            .args(["-u", "-m", "aiosmtpd", "-n", "-d", "-l", &format!("127.0.0.1:{port}")])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let mut err = BufReader::new(stderr);
        let mut line = String::new();
        loop {
            line.clear();
            assert!(err.read_line(&mut line).unwrap() > 0, "aiosmtpd exited before listening");
            if line.contains("Server is listening") {
                break;
            }
        }
        // Keep draining stderr so aiosmtpd never blocks on a full pipe.
        std::thread::spawn(move || for _ in err.lines() {});
        let lines = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
        let out = child.stdout.take().unwrap();
        let l2 = lines.clone();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                l2.0.lock().unwrap().push(l);
                l2.1.notify_all();
            }
        });
        Some(Smtp { child, port, lines })
    }

    /// Printed messages so far, each as its header/body lines.
    pub fn messages(&self) -> Vec<Vec<String>> {
        let lines = self.lines.0.lock().unwrap().clone();
        let mut out = Vec::new();
        let mut cur: Option<Vec<String>> = None;
        for l in lines {
            if l.starts_with("---------- MESSAGE FOLLOWS") {
                cur = Some(Vec::new());
            } else if l.starts_with("------------ END MESSAGE") {
                out.extend(cur.take());
            } else if let Some(c) = cur.as_mut() {
                c.push(l);
            }
        }
        out
    }
}

impl Smtp {
    /// Blocks until `n` messages were printed (or `limit` passes: a failure).
    pub fn wait_messages(&self, n: usize, limit: Duration) -> Vec<Vec<String>> {
        let deadline = Instant::now() + limit;
        let (lock, cv) = &*self.lines;
        let mut guard = lock.lock().unwrap();
        loop {
            drop(guard);
            let msgs = self.messages();
            if msgs.len() >= n {
                return msgs;
            }
            guard = lock.lock().unwrap();
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "aiosmtpd printed {} of {n} messages", msgs.len());
            guard = cv.wait_timeout(guard, left).unwrap().0;
        }
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
