//! Ingest authentication as a user meets it, through the real binary: an
//! ingest token made with `faultline token create --scope ingest` lets a
//! sender post alerts and nothing else; a default `faultline serve` refuses
//! an alert or span without one; the trusted-loopback opt-out
//! (`FAULTLINE_INGEST_AUTH=none`) on a non-loopback address says so loudly.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

use crate::support::{BIN, Server, create_token, ingest_client};

const ALERT: &str = r#"[{"labels":{"alertname":"CheckoutErrors","service":"checkout"},"annotations":{"summary":"checkout 5xx"}}]"#;
const SPANS: &str = r#"{"resourceSpans":[]}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_default_server_refuses_alerts_and_spans_without_an_ingest_token() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let out = Command::new(BIN).args(["token", "create", "--data-dir", d, "--scope", "ingest", "--name", "prometheus"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.starts_with("created ingest token \"prometheus\""), "{text}");
    let ingest = text.lines().last().unwrap().trim().to_owned();
    let read = create_token(dir.path(), "read");
    let server = Server::start(dir.path(), &[]);

    let anonymous = reqwest::Client::new();
    let post = |client: &reqwest::Client, path: &str, body: &'static str| {
        client.post(format!("{}{path}", server.url)).header("content-type", "application/json").body(body).send()
    };
    let r = post(&anonymous, "/api/v2/alerts", ALERT).await.unwrap();
    assert_eq!(r.status(), 401);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("--scope ingest"), "the refusal says how to get a token: {body}");
    assert_eq!(post(&anonymous, "/v1/traces", SPANS).await.unwrap().status(), 401);
    assert_eq!(post(&ingest_client(&read), "/api/v2/alerts", ALERT).await.unwrap().status(), 403);
    let sender = ingest_client(&ingest);
    assert_eq!(post(&sender, "/api/v2/alerts", ALERT).await.unwrap().status(), 200);
    assert_eq!(post(&sender, "/v1/traces", SPANS).await.unwrap().status(), 200);

    // The ingest token reads nothing.
    let out = Command::new(BIN).args(["incidents", "--url", &server.url, "--token", &ingest, "list"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("scope ingest"), "{err}");
    server.stop();
}

#[test]
fn open_ingest_beyond_loopback_is_warned_about_loudly() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--data-dir", dir.path().to_str().unwrap(), "--listen", "0.0.0.0:0", "--otlp-grpc-listen", "off", "--otlp-http-listen", "off"])
        .env("FAULTLINE_LOG", "warn")
        .env("FAULTLINE_INGEST_AUTH", "none")
        .env_remove("FAULTLINE_CONFIG")
        .env_remove("FAULTLINE_DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The warning is written before the listening line; then the server is
    // stopped and its stderr read to the end.
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert!(line.starts_with("faultline listening on http://0.0.0.0:"), "{line:?}");
    child.kill().unwrap();
    child.wait().unwrap();
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert!(stderr.contains("INGEST IS OPEN TO ANYONE") && stderr.contains("0.0.0.0:"), "{stderr}");
}
