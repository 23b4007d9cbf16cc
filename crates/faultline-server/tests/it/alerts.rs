//! Alert ingest through HTTP with the engine running: Alertmanager v2 and
//! webhook bodies, PagerDuty Events v2 and generic alerts become (one)
//! incident through the correlator; bad events get clear errors.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use faultline_core::Timestamp;
use faultline_server::clock::FixedClock;
use faultline_server::{App, Config};
use faultline_store::{IncidentFilter, SqlStore, Store};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

struct H {
    app_router: axum::Router,
    engine: faultline_engine::EngineHandle,
    store: SqlStore,
    _dir: tempfile::TempDir,
}

async fn start(config: Config) -> H {
    let dir = tempfile::tempdir().unwrap();
    let store = SqlStore::open_sqlite(dir.path()).await.unwrap();
    let mut app = App::with_store(config, store.clone(), Arc::new(FixedClock(Timestamp::parse_rfc3339("2026-11-21T12:00:00Z").unwrap())));
    app.start_engine(std::future::pending());
    H { app_router: app.router(), engine: app.state().engine.clone(), store, _dir: dir }
}

impl H {
    async fn post(&self, path: &str, body: &str, token: Option<&str>) -> (StatusCode, Value, axum::http::HeaderMap) {
        self.post_as(path, body, token, Some("application/json")).await
    }

    async fn post_as(&self, path: &str, body: &str, token: Option<&str>, content_type: Option<&str>) -> (StatusCode, Value, axum::http::HeaderMap) {
        let mut req = Request::builder().method("POST").uri(path);
        if let Some(ct) = content_type {
            req = req.header(header::CONTENT_TYPE, ct);
        }
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let resp = self.app_router.clone().oneshot(req.body(Body::from(body.to_owned())).unwrap()).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null), headers)
    }

    async fn incidents(&self) -> Vec<faultline_core::Incident> {
        self.engine.flush().await.unwrap();
        self.store.list_incidents(&IncidentFilter::default()).await.unwrap()
    }
}

const AM_ALERT: &str = r#"[{"labels":{"alertname":"GatewayErrors","service":"gateway","severity":"page"},
  "annotations":{"summary":"gateway 5xx above 5%"},"startsAt":"2026-11-21T11:59:00Z","endsAt":"2026-11-21T12:05:00Z"}]"#;

#[tokio::test]
async fn alertmanager_alerts_open_one_incident_and_dedup_on_resend() {
    let h = start(Config::default()).await;
    let (s, _, _) = h.post("/api/v2/alerts", AM_ALERT, None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, _) = h.post("/api/v2/alerts", AM_ALERT, None).await;
    assert_eq!(s, StatusCode::OK);
    let incidents = h.incidents().await;
    assert_eq!(incidents.len(), 1);
    let (_, timeline) = h.store.incident(incidents[0].id).await.unwrap().unwrap();
    assert_eq!(timeline.iter().filter(|e| e.event.kind() == "symptom_attached").count(), 1, "a re-sent alert is the same symptom");
    assert_eq!(timeline[0].actor.to_string(), "system:correlator");
}

/// Issue 13: an alert was named by its fingerprint and its `severity:
/// critical` left a SEV3. Sent as Prometheus and curl send it (no JSON
/// content type), it opens an incident named by its alertname, service and
/// summary, at the SEV its severity maps to, with the reason on the timeline.
#[tokio::test]
async fn an_alert_is_named_by_its_alertname_at_the_sev_its_severity_maps_to() {
    let h = start(Config::default()).await;
    let critical = r#"[{"labels":{"alertname":"CheckoutErrors","service":"payments","severity":"critical"},
      "annotations":{"summary":"checkout 5xx above 5%"},"startsAt":"2026-11-21T11:59:00Z"}]"#;
    let (s, body, _) = h.post_as("/api/v2/alerts", critical, None, None).await;
    assert_eq!(s, StatusCode::OK, "no Content-Type is fine: {body}");
    let (s, _, _) = h.post_as("/api/v2/alerts", critical, None, Some("application/x-www-form-urlencoded")).await;
    assert_eq!(s, StatusCode::OK, "curl -d's default content type is fine too");
    let incidents = h.incidents().await;
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0].title, "CheckoutErrors on payments: checkout 5xx above 5%");
    assert_eq!(incidents[0].severity.as_str(), "SEV1");
    let (_, timeline) = h.store.incident(incidents[0].id).await.unwrap().unwrap();
    assert!(
        timeline.iter().any(|e| matches!(&e.event, faultline_core::incident::IncidentEvent::SystemNote { component, text } if component == "severity" && text.contains("severity \"critical\""))),
        "{timeline:#?}"
    );

    // PagerDuty: the summary is the title, payload.severity the SEV.
    let (s, _, _) = h
        .post_as("/v2/enqueue", r#"{"routing_key":"R1","event_action":"trigger","dedup_key":"l1","payload":{"summary":"ledger writes failing","source":"db9","severity":"error","component":"ledger"}}"#, None, None)
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let incidents = h.incidents().await;
    let ledger = incidents.iter().find(|i| i.title == "ledger writes failing").expect("titled by the PagerDuty summary");
    assert_eq!(ledger.severity.as_str(), "SEV2");

    // Not JSON: a clear 400 in the sender's terms, no parser internals.
    let (s, body, _) = h.post_as("/api/v2/alerts", "alertname=X", None, None).await;
    assert_eq!((s, body["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_alert")));
    assert_eq!(body["error"]["message"], "the body is not valid JSON (line 1, column 1)");
}

#[tokio::test]
async fn pagerduty_events_trigger_acknowledge_resolve() {
    let h = start(Config::default()).await;
    let (s, body, _) = h
        .post("/v2/enqueue", r#"{"routing_key":"R1","event_action":"trigger","dedup_key":"db-1","payload":{"summary":"fraud-db down","source":"db1","severity":"critical","component":"fraud-db"}}"#, None)
        .await;
    assert_eq!((s, body["status"].as_str(), body["dedup_key"].as_str()), (StatusCode::ACCEPTED, Some("success"), Some("db-1")));
    assert_eq!(body["message"], "Event processed");
    let (s, _, _) = h.post("/v2/enqueue", r#"{"routing_key":"R1","event_action":"acknowledge","dedup_key":"db-1"}"#, None).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let incidents = h.incidents().await;
    assert_eq!((incidents.len(), incidents[0].status.as_str()), (1, "acknowledged"));

    // A trigger without dedup_key gets a generated one.
    let (_, body, _) =
        h.post("/v2/enqueue", r#"{"routing_key":"R1","event_action":"trigger","payload":{"summary":"x","source":"s","severity":"info"}}"#, None).await;
    assert_eq!(body["dedup_key"].as_str().map(str::len), Some(32));

    let (s, body, _) = h.post("/v2/enqueue", r#"{"routing_key":"R1","event_action":"trigger","payload":{"source":"s","severity":"info"}}"#, None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(body["status"], "invalid event");
    assert_eq!(body["errors"][0], "payload.summary: required");
    let (s, _, _) = h.post("/v2/enqueue", "not json", None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn webhook_and_generic_alerts_correlate_with_each_other() {
    let h = start(Config::default()).await;
    let webhook = r#"{"version":"4","groupKey":"g","status":"firing","receiver":"faultline","groupLabels":{},"commonLabels":{},"commonAnnotations":{},"externalURL":"http://am",
      "alerts":[{"status":"firing","labels":{"alertname":"LedgerSlow","service":"ledger"},"annotations":{},"startsAt":"2026-11-21T11:58:00Z","endsAt":"0001-01-01T00:00:00Z","fingerprint":"aaaa000011112222"}]}"#;
    let (s, body, _) = h.post("/api/v1/alerts/alertmanager", webhook, None).await;
    assert_eq!((s, body["accepted"].as_u64()), (StatusCode::ACCEPTED, Some(1)));
    // Same service → same incident (the service is the shared subject).
    let (s, body, _) = h.post("/api/v1/alerts", r#"{"title":"ledger queue backing up","service":"ledger"}"#, None).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{body}");
    assert_eq!(h.incidents().await.len(), 1);
    let (s, body, _) = h.post("/api/v1/alerts", r#"{"title":""}"#, None).await;
    assert_eq!((s, body["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_alert")));
}

#[tokio::test]
async fn ingest_token_when_configured() {
    let h = start(Config { alert_ingest_token: Some("s3cret".into()), ..Config::default() }).await;
    let (s, body, _) = h.post("/api/v2/alerts", AM_ALERT, None).await;
    assert_eq!((s, body["error"]["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("unauthorized")));
    assert_eq!(h.post("/api/v2/alerts", AM_ALERT, Some("wrong!")).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(h.post("/api/v2/alerts", AM_ALERT, Some("s3cret")).await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_full_engine_queue_answers_503_with_retry_after() {
    // Engine not started and a queue of one, already taken: the request finds
    // it full. (An accepted alert waits for the engine's commit, so a request
    // cannot be the one that fills the queue here.)
    let dir = tempfile::tempdir().unwrap();
    let store = SqlStore::open_sqlite(dir.path()).await.unwrap();
    let app = App::with_store(Config { engine_queue: 1, ..Config::default() }, store, Arc::new(FixedClock(Timestamp::from_secs(0))));
    let router = app.router();
    let post = |router: axum::Router| async move {
        let req = Request::builder().method("POST").uri("/api/v2/alerts").body(Body::from(AM_ALERT)).unwrap();
        router.oneshot(req).await.unwrap()
    };
    app.state().engine.try_send(faultline_engine::Event::Tick).unwrap();
    let resp = post(router).await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(resp.headers()[header::RETRY_AFTER], "5");
}

/// Real Prometheus (Debian package) with `alerting.alertmanagers` pointed at
/// Faultline, unchanged: its alert becomes an incident. Waiting here is on an
/// external process, so it polls the store with a deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_sends_alerts_to_faultline_unchanged() {
    let Some(prometheus) = ["/usr/bin/prometheus", "/usr/local/bin/prometheus"].into_iter().find(|p| std::path::Path::new(p).exists()) else {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "CI=true but the prometheus binary (Debian package prometheus) is missing");
        eprintln!("skipped: prometheus not installed");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = SqlStore::open_sqlite(&dir.path().join("data")).await.unwrap();
    let config = Config { listen: "127.0.0.1:0".parse().unwrap(), otlp_grpc_listen: None, otlp_http_listen: None, ..Config::default() };
    let app = App::with_store(config, store.clone(), Arc::new(faultline_server::clock::SystemClock));
    let listener = app.bind().await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run(listener, async move {
        let _ = stop_rx.await;
    }));

    std::fs::write(
        dir.path().join("rules.yml"),
        "groups:\n- name: faultline-test\n  interval: 1s\n  rules:\n  - alert: CheckoutErrors\n    expr: vector(1)\n    labels: {service: gateway, severity: critical}\n    annotations: {summary: checkout errors above budget}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("prometheus.yml"),
        format!(
            "global: {{evaluation_interval: 1s, scrape_interval: 1m}}\nrule_files: [rules.yml]\nalerting:\n  alertmanagers:\n  - api_version: v2\n    static_configs:\n    - targets: ['{addr}']\n"
        ),
    )
    .unwrap();
    let web_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = std::process::Command::new(prometheus)
        .current_dir(dir.path())
        .args([
            "--config.file=prometheus.yml",
            "--storage.tsdb.path=tsdb",
            &format!("--web.listen-address=127.0.0.1:{web_port}"),
            "--log.level=warn",
            // Prometheus drops the first notification if it fires before its
            // Alertmanager discovery syncs, then waits the resend delay (1 m
            // by default); shorten it so the test is quick.
            "--rules.alert.resend-delay=1s",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let incidents = loop {
        let found = store.list_incidents(&IncidentFilter::default()).await.unwrap();
        if !found.is_empty() || std::time::Instant::now() > deadline {
            break found;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    };
    let _ = child.kill();
    let _ = child.wait();
    let _ = stop_tx.send(());
    server.await.unwrap().unwrap();

    assert_eq!(incidents.len(), 1, "Prometheus's alert should have opened one incident within 60 s");
    // Named by its alertname, at the SEV its severity label maps to (issue 13).
    assert_eq!(incidents[0].title, "CheckoutErrors on gateway: checkout errors above budget");
    assert_eq!(incidents[0].severity, faultline_core::incident::Severity::Sev1);
    let store = SqlStore::open_sqlite(&dir.path().join("data")).await.unwrap();
    let (_, timeline) = store.incident(incidents[0].id).await.unwrap().unwrap();
    let attached = timeline.iter().find(|e| e.event.kind() == "symptom_attached").unwrap();
    assert!(format!("{:?}", attached.event).contains("checkout errors above budget"), "{attached:?}");
}

#[tokio::test]
async fn check_in_pings() {
    let mut config = Config::default();
    config.checks.push(faultline_core::detect::checkin::CheckSpec::simple("nightly-backup"));
    let h = start(config).await;
    let get = |path: &'static str| {
        let router = h.app_router.clone();
        async move { router.oneshot(Request::builder().uri(path).body(Body::empty()).unwrap()).await.unwrap().status() }
    };
    assert_eq!(get("/ping/nightly-backup").await, StatusCode::OK);
    assert_eq!(get("/ping/nightly-backup/start").await, StatusCode::OK);
    assert_eq!(h.post("/ping/nightly-backup/fail", "", None).await.0, StatusCode::OK);
    assert_eq!(get("/ping/nope").await, StatusCode::NOT_FOUND);
    assert_eq!(get("/ping/nightly-backup/explode").await, StatusCode::NOT_FOUND);
    // The failure ping is a crash finding → an incident.
    let incidents = h.incidents().await;
    assert_eq!(incidents.len(), 1, "{incidents:?}");
}

#[tokio::test]
async fn the_probe_runner_judges_conditions_and_remote_results_are_accepted() {
    use faultline_server::probes::{ProbeSpec, run_once};
    let _ = rustls::crypto::ring::default_provider().install_default();
    // A real HTTP endpoint to probe.
    let target = axum::Router::new().route("/health", axum::routing::get(|| async { axum::Json(serde_json::json!({"ok": true, "price": 0})) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, target).await });
    let spec = |conditions: &[&str], url: String| ProbeSpec {
        name: "pricing-health".into(),
        url,
        interval_secs: 30,
        timeout_secs: 5,
        conditions: conditions.iter().map(|c| c.to_string()).collect(),
        location: "eu-west".into(),
        target: Some("pricing".into()),
    };
    let client = reqwest::Client::new();
    let now = Timestamp::from_secs(1_800_000_000);
    let ok = run_once(&spec(&["[STATUS] == 200", "[BODY].ok == true"], format!("http://{addr}/health")), &client, now).await;
    assert!(ok.success, "{ok:?}");
    let wrong = run_once(&spec(&["[STATUS] == 200", "[BODY].price > 0"], format!("http://{addr}/health")), &client, now).await;
    assert_eq!((wrong.success, wrong.failures.len()), (false, 1), "{wrong:?}");
    assert!(wrong.failures[0].contains("[BODY].price"), "{wrong:?}");
    let refused = run_once(&spec(&["[CONNECTED] == true"], "http://127.0.0.1:1/".into()), &client, now).await;
    assert!(!refused.success, "{refused:?}");
    assert!(spec(&["[STATUS] =="], "http://x/".into()).validate().unwrap_err().contains("pricing-health"));

    let h = start(Config::default()).await;
    let (s, body, _) = h
        .post(
            "/api/v1/probes/results",
            r#"[{"probe":"pricing-health","location":"us-east","target":"pricing","success":false,"failures":["[BODY].price (0) > 0"]}]"#,
            None,
        )
        .await;
    assert_eq!((s, body["accepted"].as_u64()), (StatusCode::ACCEPTED, Some(1)), "{body}");
    let (s, body, _) = h.post("/api/v1/probes/results", r#"{"probe":"","location":"x","success":true}"#, None).await;
    assert_eq!((s, body["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_alert")), "{body}");
}
