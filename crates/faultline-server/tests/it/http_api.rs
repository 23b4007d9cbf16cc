//! HTTP API behaviour: auth (401 vs 403), the incident lifecycle, and every
//! bad-input case answering a JSON error while stored data stays intact.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use faultline_core::Timestamp;
use faultline_server::clock::FixedClock;
use faultline_server::{App, Config};
use faultline_store::{SqlStore, Store, TokenScope};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

struct Harness {
    router: axum::Router,
    store: SqlStore,
    admin: String,
    read: String,
    _dir: tempfile::TempDir,
}

const NOW: i64 = 1_800_000_000_000;

async fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store = SqlStore::open_sqlite(dir.path()).await.unwrap();
    let now = Timestamp::from_millis(NOW);
    let (_, admin) = faultline_server::auth::create_token(&store, "ops-admin", TokenScope::Admin, None, now).await.unwrap();
    let (_, read) = faultline_server::auth::create_token(&store, "viewer", TokenScope::Read, None, now).await.unwrap();
    let config = Config { max_body_bytes: 4096, ..Config::default() };
    let app = App::with_store(config, store.clone(), Arc::new(FixedClock(now)));
    Harness { router: app.router(), store, admin, read, _dir: dir }
}

struct Resp {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Value,
    text: String,
}

impl Harness {
    async fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> Resp {
        self.call_with(method, path, token, body, Some("application/json")).await
    }

    async fn call_with(&self, method: &str, path: &str, token: Option<&str>, body: Option<&str>, content_type: Option<&str>) -> Resp {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        if let (Some(ct), Some(_)) = (content_type, body) {
            req = req.header(header::CONTENT_TYPE, ct);
        }
        let req = req.body(body.map_or_else(Body::empty, |b| Body::from(b.to_owned()))).unwrap();
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Resp { status, headers, body, text }
    }

    async fn create(&self, title: &str, severity: &str) -> Value {
        let r = self.call("POST", "/api/v1/incidents", Some(&self.admin), Some(&json!({"title": title, "severity": severity}).to_string())).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        r.body
    }
}

#[track_caller]
fn assert_error(r: &Resp, status: StatusCode, code: &str) {
    assert_eq!(r.status, status, "{}", r.text);
    assert_eq!(r.body["error"]["code"], code, "{}", r.text);
    assert!(r.body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{}", r.text);
}

#[tokio::test]
async fn health_and_metrics_are_open() {
    let h = harness().await;
    let r = h.call("GET", "/healthz", None, None).await;
    assert_eq!((r.status, r.text.as_str()), (StatusCode::OK, "ok\n"));
    let r = h.call("GET", "/readyz", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = h.call("GET", "/metrics", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text.contains("faultline_http_requests_total{method=\"GET\",route=\"/readyz\",status=\"200\"} 1"), "{}", r.text);
    assert!(r.text.ends_with("# EOF\n"));
}

#[tokio::test]
async fn reads_need_a_token_and_writes_need_admin() {
    let h = harness().await;
    assert_error(&h.call("GET", "/api/v1/incidents", None, None).await, StatusCode::UNAUTHORIZED, "unauthorized");
    let r = h.call("GET", "/api/v1/incidents", Some("flt_0000"), None).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "unauthorized");
    assert_eq!(r.headers[header::WWW_AUTHENTICATE], "Bearer realm=\"faultline\"");
    assert_eq!(h.call("GET", "/api/v1/incidents", Some(&h.read), None).await.status, StatusCode::OK);

    let body = r#"{"title":"db down","severity":"SEV1"}"#;
    assert_error(&h.call("POST", "/api/v1/incidents", None, Some(body)).await, StatusCode::UNAUTHORIZED, "unauthorized");
    assert_error(&h.call("POST", "/api/v1/incidents", Some(&h.read), Some(body)).await, StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(h.call("POST", "/api/v1/incidents", Some(&h.admin), Some(body)).await.status, StatusCode::CREATED);

    // A malformed header is 401 too, not 400: the client is not authenticated.
    let req = Request::builder().uri("/api/v1/incidents").header(header::AUTHORIZATION, "Basic abc").body(Body::empty()).unwrap();
    let resp = h.router.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn revoked_tokens_are_refused() {
    let h = harness().await;
    assert!(h.store.revoke_token("viewer", Timestamp::from_millis(NOW)).await.unwrap());
    let r = h.call("GET", "/api/v1/incidents", Some(&h.read), None).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "unauthorized");
    assert_eq!(r.body["error"]["message"], "token has been revoked");
}

#[tokio::test]
async fn incident_lifecycle_over_http() {
    let h = harness().await;
    let created = h.create("checkout failing", "SEV2").await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["status"], "triggered");
    assert_eq!(created["severity"], "SEV2");
    assert_eq!(created["timeline"][0]["type"], "opened");
    assert_eq!(created["timeline"][0]["actor"], "token:ops-admin");
    assert_eq!(created["opened_at"], "2027-01-15T08:00:00.000Z");

    let r = h.call("POST", &format!("/api/v1/incidents/{id}/ack"), Some(&h.admin), None).await;
    assert_eq!((r.status, r.body["status"].as_str()), (StatusCode::OK, Some("acknowledged")));
    let r = h.call("POST", &format!("/api/v1/incidents/{id}/ack"), Some(&h.admin), None).await;
    assert_error(&r, StatusCode::CONFLICT, "invalid_transition");
    assert_eq!(r.body["error"]["message"], "incident is already acknowledged");

    let r = h.call("POST", &format!("/api/v1/incidents/{id}/severity"), Some(&h.admin), Some(r#"{"severity":"SEV1","reason":"all regions"}"#)).await;
    assert_eq!(r.body["severity"], "SEV1", "{}", r.text);
    let r = h.call("POST", &format!("/api/v1/incidents/{id}/roles"), Some(&h.admin), Some(r#"{"role":"incident_commander","user":"bob"}"#)).await;
    assert_eq!(r.body["roles"]["incident_commander"], "bob", "{}", r.text);
    let r = h.call("POST", &format!("/api/v1/incidents/{id}/notes"), Some(&h.admin), Some(r#"{"text":"rolled back v42"}"#)).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = h.call_with("POST", &format!("/api/v1/incidents/{id}/resolve"), Some(&h.admin), Some(r#"{"note":"fixed"}"#), None).await;
    assert_eq!(r.body["status"], "resolved", "{}", r.text);

    let r = h.call("GET", &format!("/api/v1/incidents/{id}"), Some(&h.read), None).await;
    let kinds: Vec<&str> = r.body["timeline"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["opened", "acknowledged", "severity_changed", "role_assigned", "note_added", "resolved"]);
    assert_eq!(r.body["timeline"][2]["details"], json!({"from": "SEV2", "to": "SEV1", "reason": "all regions"}));
    assert_eq!(r.body["timeline"][5]["details"], json!({"note": "fixed"}));

    let r = h.call("POST", &format!("/api/v1/incidents/{id}/reopen"), Some(&h.admin), Some(r#"{"reason":"errors are back"}"#)).await;
    assert_eq!(r.body["status"], "triggered");
}

#[tokio::test]
async fn list_filters() {
    let h = harness().await;
    let a = h.create("a", "SEV1").await;
    h.create("b", "SEV3").await;
    h.call("POST", &format!("/api/v1/incidents/{}/resolve", a["id"].as_str().unwrap()), Some(&h.admin), None).await;
    let titles = |r: Resp| r.body["incidents"].as_array().unwrap().iter().map(|i| i["title"].as_str().unwrap().to_owned()).collect::<Vec<_>>();
    assert_eq!(titles(h.call("GET", "/api/v1/incidents?open=true", Some(&h.read), None).await), ["b"]);
    assert_eq!(titles(h.call("GET", "/api/v1/incidents?severity=SEV1", Some(&h.read), None).await), ["a"]);
    assert_eq!(titles(h.call("GET", "/api/v1/incidents?status=resolved", Some(&h.read), None).await), ["a"]);
    assert_error(&h.call("GET", "/api/v1/incidents?status=sleeping", Some(&h.read), None).await, StatusCode::BAD_REQUEST, "invalid_query");
    assert_error(&h.call("GET", "/api/v1/incidents?limit=-1", Some(&h.read), None).await, StatusCode::BAD_REQUEST, "invalid_query");
    let r = h.call("GET", "/api/v1/incidents?limit=ten", Some(&h.read), None).await;
    assert_eq!(r.body["error"]["message"], "limit: expected a whole number", "no parser wording");
    let r = h.call("GET", "/api/v1/incidents?colour=red", Some(&h.read), None).await;
    assert!(r.body["error"]["message"].as_str().unwrap().starts_with("query: unknown field \"colour\""), "{}", r.text);
    let list = h.call("GET", "/api/v1/incidents", Some(&h.read), None).await;
    assert!(list.body["incidents"][0].get("timeline").is_none(), "lists omit timelines");
}

/// Titles are editable by API and recorded on the timeline; the public
/// title is separate from the internal one.
#[tokio::test]
async fn titles_are_editable_and_the_public_title_is_separate() {
    let h = harness().await;
    let id = h.create("alertmanager alert 9e8060cd64bb5676", "SEV2").await["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/incidents/{id}/title");
    let r = h.call("POST", &path, Some(&h.admin), Some(r#"{"title":"Checkout payments failing"}"#)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["title"], "Checkout payments failing");
    let r = h.call("POST", &path, Some(&h.admin), Some(r#"{"title":"Payments are failing for some customers","public":true}"#)).await;
    assert_eq!(
        (r.body["title"].as_str(), r.body["public_title"].as_str()),
        (Some("Checkout payments failing"), Some("Payments are failing for some customers"))
    );
    let kinds: Vec<&str> = r.body["timeline"].as_array().unwrap().iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(kinds, ["opened", "title_changed", "public_title_changed"]);
    assert_eq!(r.body["timeline"][1]["actor"], "token:ops-admin");
    assert_error(&h.call("POST", &path, Some(&h.admin), Some(r#"{"title":"  "}"#)).await, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    assert_error(&h.call("POST", &path, Some(&h.admin), Some(r#"{"title":"Checkout payments failing"}"#)).await, StatusCode::CONFLICT, "invalid_transition");
    assert_error(&h.call("POST", &path, Some(&h.read), Some(r#"{"title":"x"}"#)).await, StatusCode::FORBIDDEN, "forbidden");
}

#[tokio::test]
async fn bad_input_gets_clear_errors_and_loses_nothing() {
    let h = harness().await;
    let kept = h.create("keep me", "SEV2").await;
    let post = |body: &'static str| h.call("POST", "/api/v1/incidents", Some(&h.admin), Some(body));

    assert_error(&post("{\"title\": ").await, StatusCode::BAD_REQUEST, "malformed_json");
    assert_error(&post(r#"{"title": 5, "severity": "SEV1"}"#).await, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
    assert_error(&post(r#"{"severity": "SEV1"}"#).await, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
    assert_error(&post(r#"{"title": "x", "severity": "SEV1", "colour": "red"}"#).await, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
    let r = post(r#"{"title": "x", "severity": "SEV7"}"#).await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    assert_eq!(r.body["error"]["message"], "severity: unknown severity \"SEV7\": expected SEV1, SEV2 or SEV3");
    assert_error(&post(r#"{"title": "  ", "severity": "SEV1"}"#).await, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    // Issue 13: JSON is JSON whatever the Content-Type says (curl -d sends a
    // form type, many scripts none); it used to be a 415.
    for ct in [Some("text/plain"), Some("application/x-www-form-urlencoded"), None] {
        let r = h.call_with("POST", "/api/v1/incidents", Some(&h.admin), Some(r#"{"title":"x","severity":"SEV1"}"#), ct).await;
        assert_eq!(r.status, StatusCode::CREATED, "{ct:?}: {}", r.text);
    }
    // Errors say what is wrong in the sender's terms, not the parser's.
    let r = post("{nope").await;
    assert_eq!(r.body["error"]["message"], "the body is not valid JSON (line 1, column 2)");
    let r = post(r#"{"title": 5, "severity": "SEV1"}"#).await;
    assert_eq!(r.body["error"]["message"], "title: expected text, found 5");
    let r = post(r#"{"severity": "SEV1"}"#).await;
    assert_eq!(r.body["error"]["message"], "missing field \"title\"");
    let huge = format!(r#"{{"title":"x","severity":"SEV1","summary":"{}"}}"#, "a".repeat(10_000));
    let r = h.call("POST", "/api/v1/incidents", Some(&h.admin), Some(&huge)).await;
    assert_error(&r, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    let r = h.call("POST", &format!("/api/v1/incidents/{}/resolve", kept["id"].as_str().unwrap()), Some(&h.admin), Some("{nope")).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "malformed_json");

    assert_error(&h.call("GET", "/api/v1/incidents/not-a-uuid", Some(&h.read), None).await, StatusCode::BAD_REQUEST, "invalid_id");
    let missing = "01936a8e-6f5c-7d2a-9b1e-0c4d5e6f7a8b";
    assert_error(&h.call("GET", &format!("/api/v1/incidents/{missing}"), Some(&h.read), None).await, StatusCode::NOT_FOUND, "not_found");
    assert_error(&h.call("POST", &format!("/api/v1/incidents/{missing}/ack"), Some(&h.admin), None).await, StatusCode::NOT_FOUND, "not_found");
    assert_error(&h.call("GET", "/api/v2/nothing", None, None).await, StatusCode::NOT_FOUND, "not_found");
    assert_error(&h.call("DELETE", "/api/v1/incidents", Some(&h.admin), None).await, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");

    // Nothing accepted before was lost or changed by the failed requests
    // (beside it, the three declared without a JSON content type).
    let list = h.call("GET", "/api/v1/incidents", Some(&h.read), None).await;
    assert_eq!(list.body["incidents"].as_array().unwrap().len(), 4);
    let r = h.call("GET", &format!("/api/v1/incidents/{}", kept["id"].as_str().unwrap()), Some(&h.read), None).await;
    assert_eq!((r.body["status"].as_str(), r.body["version"].as_u64()), (Some("triggered"), Some(1)));
}

#[tokio::test]
async fn readyz_reports_a_closed_database() {
    let h = harness().await;
    h.store.close().await;
    let r = h.call("GET", "/readyz", None, None).await;
    assert_error(&r, StatusCode::SERVICE_UNAVAILABLE, "not_ready");
    let r = h.call("GET", "/healthz", None, None).await;
    assert_eq!(r.status, StatusCode::OK, "liveness does not depend on the database");
}

#[tokio::test]
async fn findings_are_listed_for_readers() {
    let h = harness().await;
    assert_error(&h.call("GET", "/api/v1/findings", None, None).await, StatusCode::UNAUTHORIZED, "unauthorized");
    let r = h.call("GET", "/api/v1/findings?active=true", Some(&h.read), None).await;
    assert_eq!((r.status, r.body["findings"].as_array().map(Vec::len)), (StatusCode::OK, Some(0)), "{}", r.text);
}

#[tokio::test]
async fn slos_from_config_files_report_their_budget() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("gateway-slo.yaml"),
        r#"version: "prometheus/v1"
service: "gateway"
slos:
  - name: "requests-availability"
    objective: 99.9
    sli:
      events:
        error_query: sum(rate(http_requests_total{job="gateway",code=~"5.."}[{{.window}}]))
        total_query: sum(rate(http_requests_total{job="gateway"}[{{.window}}]))
    alerting:
      name: GatewayHighErrorRate
"#,
    )
    .unwrap();
    std::fs::write(dir.path().join("faultline.toml"), "slos = [\"gateway-slo.yaml\"]\n").unwrap();
    let config = Config::load(Some(&dir.path().join("faultline.toml")), &|_| None).unwrap();
    assert_eq!(config.slos.len(), 1);
    let store = SqlStore::open_sqlite(&dir.path().join("data")).await.unwrap();
    let (_, read) = faultline_server::auth::create_token(&store, "viewer", TokenScope::Read, None, Timestamp::from_millis(NOW)).await.unwrap();
    let app = App::with_store(config, store, Arc::new(FixedClock(Timestamp::from_millis(NOW))));
    let req = Request::builder().uri("/api/v1/slos").header(header::AUTHORIZATION, format!("Bearer {read}")).body(Body::empty()).unwrap();
    let resp = app.router().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let v: Value = serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(v["slos"][0]["slo"], "requests-availability", "{v}");
    assert!((v["slos"][0]["objective"].as_f64().unwrap() - 0.999).abs() < 1e-12, "{v}");
    assert_eq!(v["slos"][0]["budget_remaining"], 1.0, "no traffic yet, nothing spent: {v}");
    assert_eq!(v["slos"][0]["pairs"].as_array().map(Vec::len), Some(4), "the workbook's four window pairs: {v}");
    // A missing spec file names the file.
    std::fs::write(dir.path().join("bad.toml"), "slos = [\"nope.yaml\"]\n").unwrap();
    let e = Config::load(Some(&dir.path().join("bad.toml")), &|_| None).unwrap_err().to_string();
    assert!(e.contains("nope.yaml"), "{e}");
}
