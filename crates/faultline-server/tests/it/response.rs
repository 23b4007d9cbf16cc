//! Response-workflow routes in-process: Alertmanager-compatible silences,
//! the public Statuspage-compatible status page with the comms lead's draft
//! approval, on-call queries and the notification ledger. The response
//! driver is stepped by hand on the fixed clock (no background tasks).

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use faultline_core::Timestamp;
use faultline_server::clock::FixedClock;
use faultline_server::config::SubscriberLimits;
use faultline_server::response_config::ResponseConfig;
use faultline_server::{App, Config};
use faultline_store::{SqlStore, TokenScope};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

// 2027-01-15T08:00:00Z, a Friday.
const NOW: i64 = 1_800_000_000_000;

const CATALOGUE: &str = "teams:\n  - {id: payments, name: Payments, members: [alice]}\n  - {id: search, name: Search, members: [carol]}\n  - {id: platform, name: Platform, members: [dave]}\n\
services:\n  - {name: checkout, owner: payments}\n  - {name: payments-db, owner: platform}\n  - {name: search-api, owner: search}\n\
flows:\n  - name: checkout\n    owner: payments\n    interactions: [{caller: frontend, callee: checkout}, {caller: checkout, callee: payments-db}]\n  \
- name: search\n    owner: search\n    interactions: [{caller: frontend, callee: search-api}]\n";

const RESPONSE: &str = r#"
catalogue_file: catalogue.yaml
users:
  - {id: alice, contacts: [{channel: hook}]}
schedules:
  - name: payments-primary
    time_zone: Europe/London
    layers:
      - name: office
        start: "2026-01-05T09:00:00"
        rotation: weekly
        participants: [alice]
        restrictions: [{type: daily, days: [mon, tue, wed, thu, fri], start: "09:00", end: "17:00"}]
escalation_policies:
  - {name: payments, levels: [{delay_minutes: 5, targets: [{user: alice}]}]}
channels:
  - {name: hook, type: webhook, url: "http://127.0.0.1:9/hook"}
status_page: {name: Example, url: "https://status.example.com"}
"#;

struct H {
    router: axum::Router,
    app: App,
    admin: String,
    read: String,
    _dir: tempfile::TempDir,
}

async fn harness() -> H {
    harness_with(SubscriberLimits::default(), Arc::new(FixedClock(Timestamp::from_millis(NOW)))).await
}

async fn harness_with(subscribers: SubscriberLimits, clock: Arc<dyn faultline_server::clock::Clock>) -> H {
    harness_config(Config { subscribers, ..Config::default() }, clock).await
}

async fn harness_config(config: Config, clock: Arc<dyn faultline_server::clock::Clock>) -> H {
    harness_response(config, clock, RESPONSE).await
}

async fn harness_response(config: Config, clock: Arc<dyn faultline_server::clock::Clock>, response: &str) -> H {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("catalogue.yaml"), CATALOGUE).unwrap();
    std::fs::write(dir.path().join("response.yaml"), response).unwrap();
    let rc = ResponseConfig::load(&dir.path().join("response.yaml"), &|_| None).unwrap();
    let store = SqlStore::open_sqlite(dir.path()).await.unwrap();
    let now = Timestamp::from_millis(NOW);
    let (_, admin) = faultline_server::auth::create_token(&store, "ops-admin", TokenScope::Admin, None, now).await.unwrap();
    let (_, read) = faultline_server::auth::create_token(&store, "viewer", TokenScope::Read, None, now).await.unwrap();
    let config = Config { response: Some(Arc::new(rc)), ..config };
    let app = App::with_store(config, store, clock);
    H { router: app.router(), app, admin, read, _dir: dir }
}

struct R {
    status: StatusCode,
    ctype: String,
    body: Value,
    text: String,
}

impl H {
    async fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> R {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        if body.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        let req = req.body(body.map_or_else(Body::empty, |b| Body::from(b.to_string()))).unwrap();
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let ctype = resp.headers().get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        R { status, ctype, body: serde_json::from_slice(&bytes).unwrap_or(Value::Null), text }
    }

    async fn step(&self) {
        self.app.state().response.driver.step(Timestamp::from_millis(NOW)).await.unwrap();
    }
}

#[tokio::test]
async fn silences_follow_the_alertmanager_v2_api() {
    let h = harness().await;
    let silence = json!({
        "matchers": [{"name": "team", "value": "payments", "isRegex": false, "isEqual": true}],
        "startsAt": "2027-01-15T07:00:00Z",
        "endsAt": "2027-01-15T10:00:00Z",
        "createdBy": "alice",
        "comment": "deploy"
    });
    let r = h.call("POST", "/api/v2/silences", Some(&h.read), Some(silence.clone())).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    let r = h.call("POST", "/api/v2/silences", None, Some(silence.clone())).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = h.call("POST", "/api/v2/silences", Some(&h.admin), Some(silence.clone())).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let id = r.body["silenceID"].as_str().unwrap().to_owned();

    let r = h.call("GET", "/api/v2/silences", Some(&h.read), None).await;
    assert_eq!(r.body.as_array().unwrap().len(), 1);
    let s = &r.body[0];
    assert_eq!((s["id"].as_str(), s["status"]["state"].as_str()), (Some(id.as_str()), Some("active")));
    assert_eq!(s["matchers"][0]["isEqual"], true);
    assert!(s["updatedAt"].is_string());
    let r = h.call("GET", "/api/v2/silences?filter=team%3D%22payments%22", Some(&h.read), None).await;
    assert_eq!(r.body.as_array().unwrap().len(), 1, "amtool-style filter {}", r.text);
    let r = h.call("GET", "/api/v2/silences?filter=team%3D%22search%22", Some(&h.read), None).await;
    assert!(r.body.as_array().unwrap().is_empty());

    let r = h.call("DELETE", &format!("/api/v2/silence/{id}"), Some(&h.admin), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = h.call("GET", &format!("/api/v2/silence/{id}"), Some(&h.read), None).await;
    assert_eq!(r.body["status"]["state"], "expired");
    let r = h.call("DELETE", &format!("/api/v2/silence/{id}"), Some(&h.admin), None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "already expired");
    let r = h.call("GET", "/api/v2/silence/nope", Some(&h.read), None).await;
    assert_eq!((r.status, r.body["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));

    let bad = json!({"matchers": [], "startsAt": "2027-01-15T07:00:00Z", "endsAt": "2027-01-15T10:00:00Z", "createdBy": "a", "comment": "c"});
    let r = h.call("POST", "/api/v2/silences", Some(&h.admin), Some(bad)).await;
    assert_eq!((r.status, r.body["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_silence")));
    assert_eq!(r.body["error"]["message"], "silence has no matchers");
}

#[tokio::test]
async fn the_status_page_is_public_statuspage_shaped_and_waits_for_the_comms_lead() {
    let h = harness().await;
    let r = h.call("GET", "/api/v2/status.json", None, None).await;
    assert_eq!(r.status, StatusCode::OK, "public, no token: {}", r.text);
    assert_eq!(r.body["status"]["indicator"], "none");
    assert_eq!(r.body["status"]["description"], "All Systems Operational");

    let inc = h.call("POST", "/api/v1/incidents", Some(&h.admin), Some(json!({"title": "checkout errors", "severity": "SEV2"}))).await;
    let id = inc.body["id"].as_str().unwrap().to_owned();
    h.step().await;
    // Nothing public until the comms lead approves the draft.
    let r = h.call("GET", "/api/v2/summary.json", None, None).await;
    assert!(r.body["incidents"].as_array().unwrap().is_empty());
    let r = h.call("GET", "/api/v1/status-page/drafts", Some(&h.read), None).await;
    let draft = &r.body["drafts"][0];
    assert_eq!((draft["incident_id"].as_str(), draft["status"].as_str()), (Some(id.as_str()), Some("investigating")));
    assert_eq!(draft["components"]["flow-checkout"], "partial_outage");
    assert!(!draft["body"].as_str().unwrap().contains("payments-db"), "drafts carry no internal detail");

    let edited = "Some card payments are failing. We are on it.";
    let r = h.call("POST", &format!("/api/v1/status-page/drafts/{id}/publish"), Some(&h.admin), Some(json!({"body": edited}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = h.call("GET", "/api/v2/summary.json", None, None).await;
    let comp = r.body["components"].as_array().unwrap().iter().find(|c| c["id"] == "flow-checkout").unwrap().clone();
    assert_eq!(comp["status"], "partial_outage");
    assert_eq!(r.body["status"]["indicator"], "major");
    assert_eq!(r.body["incidents"][0]["incident_updates"][0]["body"], edited);
    for k in ["page", "components", "incidents", "scheduled_maintenances", "status"] {
        assert!(r.body.get(k).is_some(), "summary.json has {k}");
    }
    let html = h.call("GET", "/status", None, None).await;
    assert!(html.ctype.starts_with("text/html"));
    assert!(html.text.contains("checkout") && html.text.contains("partial outage") && html.text.contains(edited));
    let atom = h.call("GET", "/history.atom", None, None).await;
    assert!(atom.ctype.starts_with("application/atom+xml"));
    // Named by what is affected, not by the internal title.
    assert!(atom.text.contains("<title>Partial outage affecting checkout</title>"), "{}", atom.text);
    assert!(!atom.text.contains("checkout errors") && !html.text.contains("checkout errors"), "{}", atom.text);
    // The feed's self link resolves (it was a 404).
    let self_href = atom.text.split("rel=\"self\" type=\"application/atom+xml\" href=\"").nth(1).and_then(|r| r.split('"').next()).unwrap();
    let self_path = self_href.split_once("://").map_or(self_href, |(_, rest)| &rest[rest.find('/').unwrap_or(rest.len())..]);
    assert_eq!(h.call("GET", self_path, None, None).await.status, StatusCode::OK, "self link {self_href}");

    // Resolve: a new draft says resolved; published, the page is operational.
    h.call("POST", &format!("/api/v1/incidents/{id}/resolve"), Some(&h.admin), Some(json!({}))).await;
    h.step().await;
    let r = h.call("POST", &format!("/api/v1/status-page/drafts/{id}/publish"), Some(&h.admin), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = h.call("GET", "/api/v2/components.json", None, None).await;
    assert!(r.body["components"].as_array().unwrap().iter().all(|c| c["status"] == "operational"), "{}", r.text);
    let r = h.call("GET", "/api/v2/incidents/unresolved.json", None, None).await;
    assert!(r.body["incidents"].as_array().unwrap().is_empty());
    let r = h.call("GET", "/api/v2/incidents.json", None, None).await;
    let updates: Vec<&str> = r.body["incidents"][0]["incident_updates"].as_array().unwrap().iter().map(|u| u["status"].as_str().unwrap()).collect();
    assert_eq!(updates, ["resolved", "investigating"], "history, newest first");

    // Scheduled maintenance, and subscribers.
    let r = h
        .call("POST", "/api/v1/status-page/maintenances", Some(&h.admin), Some(json!({"name": "DB upgrade", "scheduled_for": "2027-01-16T01:00:00Z", "scheduled_until": "2027-01-16T03:00:00Z", "component_ids": ["flow-checkout"]})))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = h.call("GET", "/api/v2/scheduled-maintenances/upcoming.json", None, None).await;
    assert_eq!(r.body["scheduled_maintenances"][0]["name"], "DB upgrade");
    let r = h.call("POST", "/api/v2/subscribers", None, Some(json!({"endpoint": "https://example.com/hook"}))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = h.call("POST", "/api/v2/subscribers", None, Some(json!({"endpoint": "ftp://x"}))).await;
    assert_eq!(r.body["error"]["code"], "invalid_field");
}

/// Issue 13: the comms lead could not speak — no update without a draft, no
/// second update without a state change, no chosen status, and the page
/// showed the internal title. Now: free text with a chosen status and
/// component impact, as often as needed, under a public title.
#[tokio::test]
async fn the_comms_lead_posts_free_text_updates_under_the_public_title() {
    let h = harness().await;
    let inc = h.call("POST", "/api/v1/incidents", Some(&h.admin), Some(json!({"title": "payments-db pool exhausted", "severity": "SEV1"}))).await;
    let id = inc.body["id"].as_str().unwrap().to_owned();
    h.step().await;
    let path = format!("/api/v1/incidents/{id}/status-updates");
    let post = |body: Value| h.call("POST", &path, Some(&h.admin), Some(body));
    let r = post(json!({"status": "identified", "body": "Card payments are failing; we know why and are fixing it.", "title": "Card payments failing",
        "components": {"flow-checkout": "partial_outage"}}))
    .await;
    assert_eq!((r.status, r.body["published"]["status"].as_str()), (StatusCode::OK, Some("identified")), "{}", r.text);
    // A second update, nothing changed: still published.
    let r = post(json!({"body": "Still working on it; next update at 09:30."})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    let r = h.call("GET", "/api/v2/summary.json", None, None).await;
    let public = &r.body["incidents"][0];
    assert_eq!((public["name"].as_str(), public["status"].as_str()), (Some("Card payments failing"), Some("identified")));
    let bodies: Vec<&str> = public["incident_updates"].as_array().unwrap().iter().map(|u| u["body"].as_str().unwrap()).collect();
    assert_eq!(bodies, ["Still working on it; next update at 09:30.", "Card payments are failing; we know why and are fixing it."]);
    let comp = r.body["components"].as_array().unwrap().iter().find(|c| c["id"] == "flow-checkout").unwrap().clone();
    assert_eq!(comp["status"], "partial_outage", "the comms lead's impact, not SEV1's major outage");
    let html = h.call("GET", "/status", None, None).await;
    assert!(html.text.contains("Card payments failing") && !html.text.contains("payments-db"), "{}", html.text);

    // Who said what is on the timeline; the internal title is untouched.
    let r = h.call("GET", &format!("/api/v1/incidents/{id}"), Some(&h.read), None).await;
    assert_eq!((r.body["title"].as_str(), r.body["public_title"].as_str()), (Some("payments-db pool exhausted"), Some("Card payments failing")));
    let notes: Vec<String> = r.body["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["details"]["component"] == "status_page")
        .map(|e| format!("{} {}", e["actor"].as_str().unwrap(), e["details"]["text"].as_str().unwrap()))
        .collect();
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(notes[0].starts_with("token:ops-admin status page update") && notes[0].contains("posted by the comms lead: identified"), "{notes:?}");
    assert!(notes[0].ends_with("said: \"Card payments are failing; we know why and are fixing it.\""), "what the public was told: {notes:?}");

    let r = post(json!({"status": "found", "body": "x"})).await;
    assert_eq!(
        (r.status, r.body["error"]["message"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("status \"found\" is not one of investigating, identified, monitoring, resolved"))
    );
    let r = post(json!({"body": "x", "components": {"flow-chekout": "major_outage"}})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(r.body["error"]["message"].as_str().unwrap().starts_with("components: no component \"flow-chekout\""), "{}", r.text);
    let r = post(json!({"body": " "})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
}

#[tokio::test]
async fn on_call_coverage_and_the_notification_ledger() {
    let h = harness().await;
    // Friday 08:00 London: before office hours, nobody.
    let r = h.call("GET", "/api/v1/oncall?schedule=payments-primary", Some(&h.read), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.body["on_call"][0]["users"].as_array().unwrap().is_empty());
    let r = h.call("GET", "/api/v1/oncall?schedule=payments-primary&at=2027-01-15T10:00:00Z", Some(&h.read), None).await;
    assert_eq!(r.body["on_call"][0]["users"][0], "alice");
    let r = h.call("GET", "/api/v1/oncall?schedule=nope", Some(&h.read), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = h.call("GET", "/api/v1/oncall?at=yesterday", Some(&h.read), None).await;
    assert_eq!(r.body["error"]["code"], "invalid_query");
    let r = h.call("GET", "/api/v1/oncall/gaps?from=2027-01-15T00:00:00Z&to=2027-01-16T00:00:00Z", Some(&h.read), None).await;
    let gaps: Vec<(String, String)> = r.body["schedules"][0]["gaps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["start"].as_str().unwrap().to_owned(), g["end"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(
        gaps,
        [("2027-01-15T00:00:00.000Z", "2027-01-15T09:00:00.000Z"), ("2027-01-15T17:00:00.000Z", "2027-01-16T00:00:00.000Z")]
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    let r = h.call("GET", "/api/v1/escalation-policies", None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    let inc = h.call("POST", "/api/v1/incidents", Some(&h.admin), Some(json!({"title": "checkout errors", "severity": "SEV1"}))).await;
    let id = inc.body["id"].as_str().unwrap().to_owned();
    h.step().await;
    let r = h.call("GET", &format!("/api/v1/incidents/{id}/notifications"), Some(&h.read), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let n = &r.body["notifications"][0];
    assert_eq!(
        (n["recipient"].as_str(), n["kind"].as_str(), n["status"].as_str(), n["channel"].as_str()),
        (Some("alice"), Some("trigger"), Some("pending"), Some("hook"))
    );
    assert_eq!(r.body["ledger"][0]["outcome"], "enqueued");
    assert!(!r.text.contains("127.0.0.1:9/hook"), "the channel URL never appears in the ledger");
    let r = h.call("GET", "/api/v1/incidents/0190a5a4-0000-7000-8000-000000000001/notifications", Some(&h.read), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

/// Records a command on an incident at `secs` after NOW, as `user`.
async fn at(h: &H, id: &str, secs: i64, user: &str, cmd: faultline_core::incident::Command) {
    use faultline_core::incident::Actor;
    let id: faultline_core::IncidentId = id.parse().unwrap();
    let actor = Actor::User(faultline_core::UserId::new(user).unwrap());
    faultline_store::commands::execute(h.app.state().store.as_ref(), id, cmd, actor, Timestamp::from_millis(NOW + secs * 1000)).await.unwrap();
}

#[tokio::test]
async fn response_times_per_incident_and_their_distribution() {
    use faultline_core::incident::Command;
    let h = harness().await;
    let mut ids = Vec::new();
    for (title, sev) in [("checkout errors", "SEV1"), ("search slow", "SEV2"), ("login flaky", "SEV2")] {
        let r = h.call("POST", "/api/v1/incidents", Some(&h.admin), Some(json!({"title": title, "severity": sev}))).await;
        ids.push(r.body["id"].as_str().unwrap().to_owned());
    }
    // Acknowledged after 2 and 10 minutes; the third never; resolved after 30 and 60.
    at(&h, &ids[0], 120, "alice", Command::Acknowledge).await;
    at(&h, &ids[0], 600, "alice", Command::Mitigate { note: None }).await;
    at(&h, &ids[0], 1800, "alice", Command::Resolve { note: None }).await;
    at(&h, &ids[1], 600, "carol", Command::Acknowledge).await;
    at(&h, &ids[1], 3600, "carol", Command::Resolve { note: None }).await;

    let r = h.call("GET", &format!("/api/v1/incidents/{}", ids[0]), Some(&h.read), None).await;
    let rt = &r.body["response"];
    assert_eq!(
        (rt["time_to_acknowledge_seconds"].as_f64(), rt["time_to_mitigate_seconds"].as_f64(), rt["time_to_resolve_seconds"].as_f64()),
        (Some(120.0), Some(600.0), Some(1800.0)),
        "{}",
        r.text
    );
    assert_eq!(rt["acknowledged_by"], "user:alice");
    let r = h.call("GET", "/api/v1/incidents", Some(&h.read), None).await;
    assert!(r.body["incidents"][0].get("response").is_none(), "lists stay lean");

    let r = h.call("GET", "/api/v1/metrics/response", Some(&h.read), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!((r.body["incidents"].as_u64(), r.body["unacknowledged"].as_u64(), r.body["unresolved"].as_u64()), (Some(3), Some(1), Some(1)));
    let ack = &r.body["time_to_acknowledge"];
    assert_eq!(
        (ack["count"].as_u64(), ack["p50_seconds"].as_f64(), ack["p90_seconds"].as_f64(), ack["max_seconds"].as_f64()),
        (Some(2), Some(120.0), Some(600.0), Some(600.0))
    );
    assert_eq!(r.body["time_to_resolve"]["max_seconds"].as_f64(), Some(3600.0));
    let r = h.call("GET", "/api/v1/metrics/response?severity=SEV2", Some(&h.read), None).await;
    assert_eq!((r.body["incidents"].as_u64(), r.body["time_to_acknowledge"]["max_seconds"].as_f64()), (Some(2), Some(600.0)));
    let r = h.call("GET", "/api/v1/metrics/response?from=2027-01-16T00:00:00Z", Some(&h.read), None).await;
    assert_eq!((r.body["incidents"].as_u64(), r.body["time_to_acknowledge"]["p50_seconds"].clone()), (Some(0), Value::Null));
    let r = h.call("GET", "/api/v1/metrics/response?severity=SEV9", Some(&h.read), None).await;
    assert_eq!((r.status, r.body["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_query")));
    let r = h.call("GET", "/api/v1/metrics/response", None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

/// The metrics endpoint reads all timelines in one batched store read; what
/// it answers is exactly what reading each listed incident on its own gives.
#[tokio::test]
async fn response_metrics_from_the_batched_read_equal_the_per_incident_path() {
    use faultline_core::incident::Command;
    use faultline_core::incident::metrics::{response_times, summarize};
    use faultline_store::IncidentFilter;
    let h = harness().await;
    let mut ids = Vec::new();
    for i in 0..12 {
        let sev = ["SEV1", "SEV2", "SEV3"][i % 3];
        let r = h.call("POST", "/api/v1/incidents", Some(&h.admin), Some(json!({"title": format!("incident {i}"), "severity": sev}))).await;
        ids.push(r.body["id"].as_str().unwrap().to_owned());
    }
    for (i, id) in ids.iter().enumerate() {
        let i = i as i64;
        if i % 4 != 3 {
            at(&h, id, 60 * (i + 1), "alice", Command::Acknowledge).await;
        }
        if i % 3 == 0 {
            at(&h, id, 100 * (i + 2), "alice", Command::Mitigate { note: None }).await;
        }
        if i % 2 == 0 {
            at(&h, id, 700 * (i + 1), "alice", Command::Resolve { note: None }).await;
        }
    }
    let store = h.app.state().store.clone();
    for (query, severity) in [("", None), ("?severity=SEV2", Some(faultline_core::incident::Severity::Sev2))] {
        let r = h.call("GET", &format!("/api/v1/metrics/response{query}"), Some(&h.read), None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let listed = store.list_incidents(&IncidentFilter { severity, limit: Some(1000), ..IncidentFilter::default() }).await.unwrap();
        let mut times = Vec::new();
        for inc in &listed {
            let (_, timeline) = store.incident(inc.id).await.unwrap().unwrap();
            times.extend(response_times(&timeline));
        }
        let s = summarize(&times);
        let d = faultline_server::http::convert::distribution;
        let expected = faultline_api::ResponseMetrics {
            from: None,
            to: None,
            severity: severity.map(|s| s.to_string()),
            incidents: s.incidents as u64,
            merged: s.merged as u64,
            unacknowledged: s.unacknowledged as u64,
            unresolved: s.unresolved as u64,
            time_to_acknowledge: d(&s.time_to_acknowledge),
            time_to_mitigate: d(&s.time_to_mitigate),
            time_to_resolve: d(&s.time_to_resolve),
            truncated: false,
        };
        assert_eq!(r.body, serde_json::to_value(&expected).unwrap(), "{query}");
        assert!(s.incidents > 0 && s.time_to_acknowledge.count > 0 && s.time_to_mitigate.count > 0 && s.time_to_resolve.count > 0, "{query}: {s:?}");
    }
}

#[tokio::test]
async fn publishing_a_draft_notifies_subscribers_through_the_outbox_and_notes_it() {
    // The subscriber below is on 127.0.0.1: private targets must be allowed.
    let limits = SubscriberLimits { allow_private_targets: true, ..SubscriberLimits::default() };
    let h = harness_with(limits, Arc::new(FixedClock(Timestamp::from_millis(NOW)))).await;
    let r = h.call("POST", "/api/v2/subscribers", None, Some(json!({"endpoint": "http://127.0.0.1:9/subscriber?token=s3cret"}))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let sub = r.body["subscriber"]["id"].as_str().unwrap().to_owned();
    assert_eq!(r.body["subscriber"]["mode"], "webhook");
    let inc = h.call("POST", "/api/v1/incidents", Some(&h.admin), Some(json!({"title": "checkout errors", "severity": "SEV2"}))).await;
    let id = inc.body["id"].as_str().unwrap().to_owned();
    h.step().await;
    let r = h.call("POST", &format!("/api/v1/status-page/drafts/{id}/publish"), Some(&h.admin), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!((r.body["published"]["status"].as_str(), r.body["published"]["subscriber_notifications"].as_u64()), (Some("investigating"), Some(2)));
    let r = h.call("GET", &format!("/api/v1/incidents/{id}/notifications"), Some(&h.read), None).await;
    let subs: Vec<(String, String)> = r.body["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["channel"] == format!("subscriber:{sub}"))
        .map(|n| (n["kind"].as_str().unwrap().to_owned(), n["status"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(subs, [("status_incident", "pending"), ("status_component", "pending")].map(|(a, b)| (a.to_owned(), b.to_owned())));
    assert!(!r.text.contains("s3cret"), "the subscriber's URL is not in the outbox or ledger");
    let r = h.call("GET", &format!("/api/v1/incidents/{id}"), Some(&h.read), None).await;
    let note = r.body["timeline"].as_array().unwrap().iter().find(|e| e["details"]["component"] == "status_page").cloned().unwrap();
    assert_eq!(note["actor"], "token:ops-admin");
    assert!(
        note["details"]["text"]
            .as_str()
            .unwrap()
            .contains("published as drafted: investigating (checkout operational → partial_outage); 2 subscriber notification(s) enqueued"),
        "{note}"
    );
    // A second publish of the same draft is refused: the draft is gone.
    let r = h.call("POST", &format!("/api/v1/status-page/drafts/{id}/publish"), Some(&h.admin), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

/// Subscribing needs no token, so by default no endpoint on a private,
/// loopback, link-local or other non-public address is accepted (the server
/// would otherwise post into its own network for anyone), in any spelling;
/// the flag lets tests and local demos use a receiver on 127.0.0.1.
#[tokio::test]
async fn subscriber_endpoints_on_private_addresses_are_refused() {
    let h = harness().await;
    for endpoint in [
        "http://127.0.0.1:9/hook",
        "http://0x7f.1/hook",
        "http://localhost:8080/hook",
        "http://[::1]/hook",
        "http://[::ffff:10.0.0.1]/hook",
        "http://10.0.0.5/hook",
        "https://192.168.1.10/hook",
        "http://172.20.0.1/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[fd00::1]/hook",
        "http://0.0.0.0/hook",
        "http://224.0.0.251/hook",
    ] {
        let r = h.call("POST", "/api/v2/subscribers", None, Some(json!({"endpoint": endpoint}))).await;
        assert_eq!((r.status, r.body["error"]["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_field")), "{endpoint}: {}", r.text);
        assert!(r.body["error"]["message"].as_str().unwrap().contains("this server does not send to private"), "{}", r.text);
    }
    for endpoint in ["ftp://hooks.example.com/x", "file:///etc/passwd", "gopher://hooks.example.com/"] {
        let r = h.call("POST", "/api/v2/subscribers", None, Some(json!({"endpoint": endpoint}))).await;
        assert_eq!(r.body["error"]["message"], "endpoint must be an http or https URL", "{endpoint}");
    }
    assert!(h.app.state().response.responses.subscribers().await.unwrap().is_empty(), "nothing refused was stored");
    let r = h.call("POST", "/api/v2/subscribers", None, Some(json!({"endpoint": "https://hooks.example.com/status?token=x"}))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);

    let limits = SubscriberLimits { allow_private_targets: true, ..SubscriberLimits::default() };
    let h = harness_with(limits, Arc::new(FixedClock(Timestamp::from_millis(NOW)))).await;
    let r = h.call("POST", "/api/v2/subscribers", None, Some(json!({"endpoint": "http://127.0.0.1:9/hook"}))).await;
    assert_eq!(r.status, StatusCode::CREATED, "allowed by the flag: {}", r.text);
    let r = h.call("POST", "/api/v2/subscribers", None, Some(json!({"endpoint": "ftp://127.0.0.1/"}))).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "still http(s) only");
}

/// A clock the test moves by hand.
struct SteppedClock(std::sync::atomic::AtomicI64);

impl faultline_server::clock::Clock for SteppedClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(self.0.load(std::sync::atomic::Ordering::SeqCst))
    }
}

/// Live subscribers are capped (409 with a JSON error once full; an
/// unsubscribe frees a place) and new subscriptions share a global
/// per-minute budget (429 with Retry-After, refilled as time passes).
#[tokio::test]
async fn subscriptions_are_capped_and_rate_limited() {
    let endpoint = |i: usize| json!({"endpoint": format!("https://hooks.example.com/{i}")});
    let h = harness_with(SubscriberLimits { max_subscribers: 3, ..SubscriberLimits::default() }, Arc::new(FixedClock(Timestamp::from_millis(NOW)))).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let r = h.call("POST", "/api/v2/subscribers", None, Some(endpoint(i))).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        ids.push(r.body["subscriber"]["id"].as_str().unwrap().to_owned());
    }
    let r = h.call("POST", "/api/v2/subscribers", None, Some(endpoint(3))).await;
    assert_eq!((r.status, r.body["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("subscriber_limit")), "{}", r.text);
    assert!(r.body["error"]["message"].as_str().unwrap().contains("(3)"), "{}", r.text);
    assert_eq!(h.app.state().response.responses.subscribers().await.unwrap().len(), 3);
    let r = h.call("DELETE", &format!("/api/v2/subscribers/{}", ids[0]), None, None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = h.call("POST", "/api/v2/subscribers", None, Some(endpoint(3))).await;
    assert_eq!(r.status, StatusCode::CREATED, "an unsubscribe frees a place: {}", r.text);

    let clock = Arc::new(SteppedClock(std::sync::atomic::AtomicI64::new(NOW)));
    let h = harness_with(SubscriberLimits { creations_per_minute: 2, ..SubscriberLimits::default() }, clock.clone()).await;
    for i in 0..2 {
        assert_eq!(h.call("POST", "/api/v2/subscribers", None, Some(endpoint(i))).await.status, StatusCode::CREATED);
    }
    let req = Request::builder()
        .method("POST")
        .uri("/api/v2/subscribers")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(endpoint(2).to_string()))
        .unwrap();
    let resp = h.router.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(resp.headers().get(header::RETRY_AFTER).unwrap(), "30", "one token in 30 s at 2 a minute");
    let body: Value = serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    clock.0.fetch_add(29_000, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(h.call("POST", "/api/v2/subscribers", None, Some(endpoint(2))).await.status, StatusCode::TOO_MANY_REQUESTS);
    clock.0.fetch_add(1_000, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(h.call("POST", "/api/v2/subscribers", None, Some(endpoint(2))).await.status, StatusCode::CREATED, "refilled");
    assert_eq!(h.app.state().response.responses.subscribers().await.unwrap().len(), 3, "refused requests stored nothing");
}

/// What a subscribe from `peer` (as the server's listener reports it), with
/// `forwarded_for` if given, is answered: status, Retry-After, error message.
async fn subscribe_from(h: &H, peer: &str, forwarded_for: Option<&str>, i: usize) -> (StatusCode, Option<String>, String) {
    let mut req = Request::builder().method("POST").uri("/api/v2/subscribers").header(header::CONTENT_TYPE, "application/json");
    if let Some(f) = forwarded_for {
        req = req.header("x-forwarded-for", f);
    }
    let mut req = req.body(Body::from(json!({"endpoint": format!("https://hooks.example.com/{i}")}).to_string())).unwrap();
    let peer = std::net::SocketAddr::new(peer.parse().unwrap(), 40000);
    req.extensions_mut().insert(axum::extract::ConnectInfo(peer));
    let resp = h.router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let retry = resp.headers().get(header::RETRY_AFTER).map(|v| v.to_str().unwrap().to_owned());
    let body: Value = serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap_or(Value::Null);
    (status, retry, body["error"]["message"].as_str().unwrap_or_default().to_owned())
}

/// One client over its own budget is refused (429, Retry-After for its own
/// next token) while other clients still subscribe; all clients together
/// stay under the global ceiling. Time is moved by hand.
#[tokio::test]
async fn subscriptions_are_rate_limited_per_client_under_a_global_ceiling() {
    let clock = Arc::new(SteppedClock(std::sync::atomic::AtomicI64::new(NOW)));
    let limits = SubscriberLimits { creations_per_source_per_minute: 2, creations_per_minute: 5, ..SubscriberLimits::default() };
    let h = harness_with(limits, clock.clone()).await;
    let created = (StatusCode::CREATED, None, String::new());
    assert_eq!(subscribe_from(&h, "203.0.113.1", None, 0).await, created);
    assert_eq!(subscribe_from(&h, "203.0.113.1", None, 1).await, created);
    for i in 2..6 {
        let (status, retry, message) = subscribe_from(&h, "203.0.113.1", None, i).await;
        assert_eq!((status, retry.as_deref()), (StatusCode::TOO_MANY_REQUESTS, Some("30")), "one token in 30 s at 2 a minute");
        assert_eq!(message, "too many new subscriptions from your address (at most 2 a minute); retry in 30 s");
    }
    // The abusive client's refusals cost the others nothing.
    assert_eq!(subscribe_from(&h, "198.51.100.2", None, 6).await, created);
    assert_eq!(subscribe_from(&h, "198.51.100.2", None, 7).await, created);
    assert_eq!(subscribe_from(&h, "2001:db8:7::1", None, 8).await, created);
    // Five created a minute from everyone: the ceiling.
    let (status, retry, message) = subscribe_from(&h, "192.0.2.3", None, 9).await;
    assert_eq!((status, retry.as_deref()), (StatusCode::TOO_MANY_REQUESTS, Some("12")), "one token in 12 s at 5 a minute");
    assert_eq!(message, "too many new subscriptions (at most 5 a minute from everyone); retry in 12 s");
    clock.0.fetch_add(12_000, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(subscribe_from(&h, "192.0.2.3", None, 9).await, created, "the global bucket refilled");
    assert_eq!(subscribe_from(&h, "203.0.113.1", None, 10).await.1.as_deref(), Some("18"), "still 18 s to its own next token");
    assert_eq!(h.app.state().response.responses.subscribers().await.unwrap().len(), 6, "refused requests stored nothing");
}

/// `X-Forwarded-For` is believed only from a configured trusted proxy: by
/// default a client cannot dodge its budget by naming someone else, and
/// behind a trusted proxy each forwarded client has its own budget.
#[tokio::test]
async fn x_forwarded_for_counts_only_from_trusted_proxies() {
    let limits = SubscriberLimits { creations_per_source_per_minute: 1, ..SubscriberLimits::default() };
    let fixed = || Arc::new(FixedClock(Timestamp::from_millis(NOW)));
    let h = harness_with(limits.clone(), fixed()).await;
    assert_eq!(subscribe_from(&h, "203.0.113.1", Some("198.51.100.1"), 0).await.0, StatusCode::CREATED);
    assert_eq!(subscribe_from(&h, "203.0.113.1", Some("198.51.100.2"), 1).await.0, StatusCode::TOO_MANY_REQUESTS, "the header is not believed");
    assert_eq!(subscribe_from(&h, "10.0.0.2", Some("198.51.100.3"), 2).await.0, StatusCode::CREATED);
    assert_eq!(subscribe_from(&h, "10.0.0.2", Some("198.51.100.4"), 3).await.0, StatusCode::TOO_MANY_REQUESTS, "nor from a proxy nobody trusts");

    let config = Config { subscribers: limits, trusted_proxies: vec!["10.0.0.0/8".parse().unwrap()], ..Config::default() };
    let h = harness_config(config, fixed()).await;
    assert_eq!(subscribe_from(&h, "10.0.0.2", Some("198.51.100.1"), 0).await.0, StatusCode::CREATED);
    assert_eq!(subscribe_from(&h, "10.0.0.2", Some("198.51.100.2"), 1).await.0, StatusCode::CREATED, "another client behind the same proxy");
    assert_eq!(subscribe_from(&h, "10.0.0.3", Some("198.51.100.1, 10.0.0.9"), 2).await.0, StatusCode::TOO_MANY_REQUESTS, "the same client via two hops");
    assert_eq!(
        subscribe_from(&h, "10.0.0.2", Some("203.0.113.50, 198.51.100.2"), 3).await.0,
        StatusCode::TOO_MANY_REQUESTS,
        "a forged leftmost entry is ignored"
    );
    assert_eq!(subscribe_from(&h, "203.0.113.1", Some("198.51.100.9"), 4).await.0, StatusCode::CREATED);
    assert_eq!(
        subscribe_from(&h, "203.0.113.1", Some("198.51.100.10"), 5).await.0,
        StatusCode::TOO_MANY_REQUESTS,
        "a direct client's header is still not believed"
    );
}

/// The served App sees each connection's peer: two clients on different
/// loopback addresses have a budget each (without the peer both would share
/// the one bucket of unknown sources, and the second would be refused).
#[tokio::test]
async fn the_served_app_counts_each_connection_peer() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let store = SqlStore::open_sqlite(dir.path()).await.unwrap();
    let limits = SubscriberLimits { creations_per_source_per_minute: 1, ..SubscriberLimits::default() };
    let config = Config { listen: "127.0.0.1:0".parse().unwrap(), otlp_grpc_listen: None, otlp_http_listen: None, subscribers: limits, ..Config::default() };
    let app = App::with_store(config, store, Arc::new(FixedClock(Timestamp::from_millis(NOW))));
    let listener = app.bind().await.unwrap();
    let url = format!("http://{}/api/v2/subscribers", listener.local_addr().unwrap());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run(listener, async move {
        let _ = stop_rx.await;
    }));
    let from = |local: [u8; 4]| reqwest::Client::builder().no_proxy().local_address(std::net::IpAddr::from(local)).build().unwrap();
    let subscribe = |client: reqwest::Client, i: usize| {
        let url = url.clone();
        async move { client.post(url).json(&json!({"endpoint": format!("https://hooks.example.com/{i}")})).send().await.unwrap().status().as_u16() }
    };
    assert_eq!(subscribe(from([127, 0, 0, 1]), 0).await, 201);
    assert_eq!(subscribe(from([127, 0, 0, 1]), 1).await, 429);
    assert_eq!(subscribe(from([127, 0, 0, 2]), 2).await, 201, "another peer");
    let _ = stop_tx.send(());
    server.await.unwrap().unwrap();
}

/// Unsubscribed subscribers are deleted by housekeeping once
/// `unsubscribed_retention_days` have passed since they unsubscribed — not
/// a millisecond earlier — and live ones never are.
#[tokio::test]
async fn unsubscribed_subscribers_are_deleted_after_their_retention() {
    const DAY: i64 = 86_400_000;
    let clock = Arc::new(SteppedClock(std::sync::atomic::AtomicI64::new(NOW)));
    let h = harness_with(SubscriberLimits { unsubscribed_retention_days: 30, ..SubscriberLimits::default() }, clock.clone()).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let r = h.call("POST", "/api/v2/subscribers", None, Some(json!({"endpoint": format!("https://hooks.example.com/{i}")}))).await;
        ids.push(r.body["subscriber"]["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(h.call("DELETE", &format!("/api/v2/subscribers/{}", ids[0]), None, None).await.status, StatusCode::NO_CONTENT);
    clock.0.fetch_add(DAY, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(h.call("DELETE", &format!("/api/v2/subscribers/{}", ids[1]), None, None).await.status, StatusCode::NO_CONTENT);
    let r = &h.app.state().response;
    let found = async |id: &str| r.responses.subscriber(id).await.unwrap().is_some();
    assert_eq!(r.housekeep(Timestamp::from_millis(NOW + 30 * DAY)).await.unwrap(), 0, "30 days to the millisecond: kept");
    assert!(found(&ids[0]).await);
    assert_eq!(r.housekeep(Timestamp::from_millis(NOW + 30 * DAY + 1)).await.unwrap(), 1);
    assert!(!found(&ids[0]).await && found(&ids[1]).await);
    assert_eq!(r.housekeep(Timestamp::from_millis(NOW + 400 * DAY)).await.unwrap(), 1);
    assert!(!found(&ids[1]).await);
    assert!(found(&ids[2]).await, "a live subscriber is never deleted");
    assert_eq!(h.call("DELETE", &format!("/api/v2/subscribers/{}", ids[0]), None, None).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_declared_incident_names_its_services_flows_and_team_and_is_routed_on_them() {
    let h = harness().await;
    let declare = |body: Value| h.call("POST", "/api/v1/incidents", Some(&h.admin), Some(body));
    let inc =
        declare(json!({"title": "card payments failing", "severity": "SEV1", "flows": ["checkout"], "services": ["payments-db"], "team": "payments"})).await;
    assert_eq!(inc.status, StatusCode::CREATED, "{}", inc.text);
    let id = inc.body["id"].as_str().unwrap().to_owned();
    let opened = &inc.body["timeline"][0];
    assert_eq!(opened["details"]["scope"], json!({"services": ["payments-db"], "flows": ["checkout"], "team": "payments"}), "{opened}");
    h.step().await;
    let r = h.call("GET", &format!("/api/v1/incidents/{id}/notifications"), Some(&h.read), None).await;
    assert_eq!(r.body["notifications"][0]["recipient"], "alice", "the payments team's policy: {}", r.text);

    for (body, want) in [
        (json!({"title": "x", "severity": "SEV1", "team": "paymnts"}), "team: unknown team \"paymnts\" (known: payments, search, platform)"),
        (json!({"title": "x", "severity": "SEV1", "flows": ["chekout"]}), "flows: unknown flow \"chekout\" (known: checkout, search)"),
        (json!({"title": "x", "severity": "SEV1", "services": ["nope"]}), "services: unknown service \"nope\" (known: checkout, payments-db, search-api)"),
    ] {
        let r = declare(body).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
        assert_eq!(r.body["error"]["message"], want);
    }
}

/// A token that belongs to a user of the response configuration.
async fn user_token(h: &H, user: &str) -> String {
    let store = h.app.state().store.clone();
    let (_, secret) = faultline_server::auth::create_token(
        store.as_ref(),
        user,
        TokenScope::Admin,
        Some(faultline_core::UserId::new(user).unwrap()),
        Timestamp::from_millis(NOW),
    )
    .await
    .unwrap();
    secret
}

#[tokio::test]
async fn actions_through_a_users_token_are_that_users_and_roles_need_a_known_user() {
    let h = harness().await;
    let alice = user_token(&h, "alice").await;
    let inc = h.call("POST", "/api/v1/incidents", Some(&alice), Some(json!({"title": "checkout errors", "severity": "SEV1"}))).await;
    let id = inc.body["id"].as_str().unwrap().to_owned();
    assert_eq!(inc.body["timeline"][0]["actor"], "user:alice");
    h.step().await;
    let r = h.call("POST", &format!("/api/v1/incidents/{id}/ack"), Some(&alice), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    h.step().await;
    let r = h.call("GET", &format!("/api/v1/incidents/{id}"), Some(&h.read), None).await;
    let timeline = r.body["timeline"].as_array().unwrap();
    let ack = timeline.iter().find(|e| e["type"] == "acknowledged").unwrap();
    assert_eq!(ack["actor"], "user:alice", "never token:…");
    assert!(r.text.contains("acknowledged by alice: escalation stopped"), "{}", r.text);
    assert!(!r.text.contains("acknowledged by someone"), "{}", r.text);
    // A token without a user still acts, as itself.
    let r = h.call("POST", &format!("/api/v1/incidents/{id}/notes"), Some(&h.admin), Some(json!({"text": "looking"}))).await;
    assert_eq!(r.body["timeline"].as_array().unwrap().last().unwrap()["actor"], "token:ops-admin", "{}", r.text);

    let r = h.call("POST", &format!("/api/v1/incidents/{id}/roles"), Some(&alice), Some(json!({"role": "incident_commander", "user": "bobb"}))).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(r.body["error"]["message"], "user: \"bobb\" is not a user of the response configuration (users: alice)");
    let r = h.call("POST", &format!("/api/v1/incidents/{id}/roles"), Some(&alice), Some(json!({"role": "incident_commander", "user": "alice"}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

#[tokio::test]
async fn a_silence_without_created_by_is_the_token_users_or_a_clear_refusal() {
    let h = harness().await;
    let alice = user_token(&h, "alice").await;
    let body = json!({"matchers": [{"name": "team", "value": "payments", "isRegex": false}], "startsAt": "2027-01-15T07:00:00Z", "endsAt": "2027-01-15T10:00:00Z", "comment": "deploy"});
    let r = h.call("POST", "/api/v2/silences", Some(&alice), Some(body.clone())).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let id = r.body["silenceID"].as_str().unwrap().to_owned();
    let r = h.call("GET", &format!("/api/v2/silence/{id}"), Some(&h.read), None).await;
    assert_eq!(r.body["createdBy"], "alice");
    let r = h.call("POST", "/api/v2/silences", Some(&h.admin), Some(body)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["error"]["message"], "createdBy is required: token \"ops-admin\" belongs to no user (faultline silences add --created-by NAME)");
}

#[tokio::test]
async fn a_pages_acknowledge_link_works_once_without_logging_in_as_the_paged_user() {
    // The incident's chat channel is the receiver's `hook`.
    let response = format!(
        "base_url: https://faultline.example.com\n{RESPONSE}default_policy: payments\nrouting: {{route: {{receiver: chat}}}}\nreceivers: [{{name: chat, channels: [hook]}}]\n"
    );
    let h = harness_response(Config::default(), Arc::new(FixedClock(Timestamp::from_millis(NOW))), &response).await;
    let inc = h.call("POST", "/api/v1/incidents", Some(&h.admin), Some(json!({"title": "checkout errors", "severity": "SEV1"}))).await;
    let id = inc.body["id"].as_str().unwrap().to_owned();
    h.step().await;
    let r = h.call("GET", &format!("/api/v1/incidents/{id}/notifications"), Some(&h.read), None).await;
    let page = r.body["notifications"].as_array().unwrap().iter().find(|n| n["recipient"] == "alice" && n["kind"] == "trigger").unwrap();
    let link = h.app.state().response.responses.notification(page["idempotency_key"].as_str().unwrap()).await.unwrap().unwrap().payload["ack_url"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = link.strip_prefix("https://faultline.example.com").unwrap().to_owned();
    assert!(path.starts_with("/ack/v1."), "{link}");

    // GET only asks; it never acknowledges (link previews fetch with GET).
    let r = h.call("GET", &path, None, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.ctype.starts_with("text/html"));
    assert!(
        r.text.contains("checkout errors") && r.text.contains("Acknowledge it as <strong>alice</strong>?") && r.text.contains("method=\"post\""),
        "{}",
        r.text
    );
    let r = h.call("GET", &format!("/api/v1/incidents/{id}"), Some(&h.read), None).await;
    assert_eq!(r.body["status"], "triggered");

    // Altered: refused.
    let tampered = path.replacen(&hex_of("alice"), &hex_of("bob"), 1);
    assert_ne!(tampered, path);
    let r = h.call("POST", &tampered, None, None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.text.contains("this link has been altered"), "{}", r.text);

    let r = h.call("POST", &path, None, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.text.contains("is acknowledged by alice"), "{}", r.text);
    let r = h.call("GET", &format!("/api/v1/incidents/{id}"), Some(&h.read), None).await;
    assert_eq!(r.body["status"], "acknowledged");
    let ack = r.body["timeline"].as_array().unwrap().iter().find(|e| e["type"] == "acknowledged").unwrap().clone();
    assert_eq!(ack["actor"], "user:alice", "attributed to the paged user");
    // …and posted to the incident's chat channel, saying who.
    h.step().await;
    let r = h.call("GET", &format!("/api/v1/incidents/{id}/notifications"), Some(&h.read), None).await;
    let posted = r.body["notifications"].as_array().unwrap().iter().any(|n| n["recipient"] == "chat" && n["kind"] == "acknowledge");
    assert!(posted, "{}", r.text);
    let (_, timeline) = h.app.state().store.incident(id.parse().unwrap()).await.unwrap().unwrap();
    assert!(
        timeline.iter().any(|e| matches!(&e.event, faultline_core::incident::IncidentEvent::SystemNote { text, .. } if text == "acknowledgement posted to channel hook (receiver chat) (acknowledged by alice)")),
        "{timeline:#?}"
    );

    let r = h.call("POST", &path, None, None).await;
    assert_eq!(r.status, StatusCode::GONE);
    assert!(r.text.contains("already used"), "{}", r.text);

    // Expired: a link signed with the server's key whose time has passed.
    let key = h.app.state().response.driver.ack_key(Timestamp::from_millis(NOW)).await.unwrap();
    let alice = faultline_core::UserId::new("alice").unwrap();
    let old = key.sign(id.parse().unwrap(), &alice, "some-page", Timestamp::from_millis(NOW - 1));
    let r = h.call("GET", &format!("/ack/{old}"), None, None).await;
    assert_eq!(r.status, StatusCode::GONE);
    assert!(r.text.contains("this link expired at"), "{}", r.text);
    let r = h.call("POST", "/ack/not-a-link", None, None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // A fresh link for an incident resolved meanwhile: nothing to acknowledge.
    let fresh = key.sign(id.parse().unwrap(), &alice, "another-page", Timestamp::from_millis(NOW + 60_000));
    let r = h.call("POST", &format!("/api/v1/incidents/{id}/resolve"), Some(&h.admin), None).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = h.call("POST", &format!("/ack/{fresh}"), None, None).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.text.contains("is already resolved"), "{}", r.text);
}

fn hex_of(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}
