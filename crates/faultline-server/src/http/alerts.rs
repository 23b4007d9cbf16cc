//! External alert ingest, in the formats senders already speak, all feeding
//! the same correlation as Faultline's own findings:
//!
//! - `POST /api/v2/alerts` — the Alertmanager v2 API, so Prometheus's
//!   `alerting.alertmanagers` can point at Faultline unchanged;
//! - `POST /api/v1/alerts/alertmanager` — Alertmanager's webhook (version 4);
//! - `POST /v2/enqueue` — PagerDuty Events API v2 (trigger / acknowledge /
//!   resolve, `dedup_key` scoped to the routing key, 202 answers);
//! - `POST /api/v1/alerts` — a generic JSON alert;
//! - `GET|POST /ping/{check}[/start|/fail]` — check-in pings (healthchecks.io
//!   style) for the checks configured in `checks`.
//!
//! Decoding is pure (`decode_*` functions return alerts or a list of field
//! errors); handlers only authenticate, decode and hand the alerts to the
//! engine. An alert is answered with success only once the engine has
//! committed it (to its incident and the correlator state, in the turn's one
//! transaction), so an accepted alert survives kill -9; a full engine queue
//! is 503 with Retry-After at once. Every endpoint needs an ingest (or
//! admin) token (`http::auth::IngestAccess`: `Authorization: Bearer`, or
//! Basic auth with the token as the password, which is how Prometheus's
//! `alerting` and a `https://:token@host/ping/…` URL send it), unless
//! `ingest_auth = "none"`; `/v2/enqueue` also takes an event whose
//! `routing_key` is a configured integration key (`pagerduty_routing_keys`).
//! The routing key itself is never kept: the alert's fingerprint carries a
//! digest of it, so no title, log line or page can show it.
//! Not here: dedup and grouping — the correlator keys alerts by fingerprint.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use faultline_core::Timestamp;
use faultline_core::signal::{AlertState, ExternalAlert, Signal};
use faultline_engine::{Event, SendError};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::auth::IngestAccess;
use super::error::{ApiBytes, ApiError, JsonProblem, decode_json};

/// Longest accepted summary (PagerDuty's limit).
const MAX_SUMMARY: usize = 1024;
/// Longest dedup key (PagerDuty's limit).
const MAX_DEDUP_KEY: usize = 255;
/// Labels per alert and bytes per label: bounded so an alert cannot grow memory.
const MAX_LABELS: usize = faultline_core::bounded::MAX_LABELS;
const MAX_LABEL_BYTES: usize = faultline_core::bounded::MAX_LABEL_VALUE_BYTES;
/// Most label bytes of one alert in all: with the correlator's member cap
/// (`max_members`, 20,000) this bounds what alerts held can take (≈ 160 MiB).
const MAX_ALERT_LABEL_BYTES: usize = 8 << 10;
/// Longest identifier (fingerprint, routing key, probe name or location):
/// refused rather than clipped, since clipping would merge distinct alerts.
const MAX_KEY_BYTES: usize = faultline_core::bounded::MAX_KEY_BYTES;
/// Most failure reasons kept per pushed probe result.
const MAX_PROBE_FAILURES: usize = 16;

/// An identifier from the network longer than `MAX_KEY_BYTES` is an error.
fn bounded_key(field: &str, key: &str, errors: &mut Vec<String>) {
    if key.len() > MAX_KEY_BYTES {
        errors.push(format!("{field}: at most {MAX_KEY_BYTES} bytes"));
    }
}

/// Alertmanager's fingerprint: FNV-1a 64 over label names and values sorted
/// by name, each followed by the 0xFF separator byte, as 16 hex digits.
pub fn fingerprint(labels: &BTreeMap<String, String>) -> String {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = OFFSET;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(PRIME);
        }
    };
    for (k, v) in labels {
        eat(k.as_bytes());
        eat(&[0xff]);
        eat(v.as_bytes());
        eat(&[0xff]);
    }
    format!("{h:016x}")
}

/// A body as `T`, or the one error saying what is wrong with it in the
/// sender's terms (`body: …` when the problem is the whole document).
fn decode<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Vec<String>> {
    decode_json(body).map_err(|p| {
        let m = p.message();
        // A field path already says where; a bare problem is about the body.
        let located = m.split_once(": ").is_some_and(|(path, _)| !path.contains(' '));
        vec![if matches!(p, JsonProblem::Malformed(_)) || located { m.to_owned() } else { format!("body: {m}") }]
    })
}

fn parse_time(field: &str, v: Option<&str>, errors: &mut Vec<String>) -> Option<Timestamp> {
    let s = v?;
    // Go's zero time means "unset" in Alertmanager payloads.
    if s.is_empty() || s.starts_with("0001-01-01") {
        return None;
    }
    match Timestamp::parse_rfc3339(s) {
        Ok(t) => Some(t),
        Err(e) => {
            errors.push(format!("{field}: {e}"));
            None
        }
    }
}

fn bounded_labels(field: &str, labels: BTreeMap<String, String>, errors: &mut Vec<String>) -> BTreeMap<String, String> {
    if labels.len() > MAX_LABELS {
        errors.push(format!("{field}: at most {MAX_LABELS} labels"));
    }
    if labels.iter().any(|(k, v)| k.len() + v.len() > MAX_LABEL_BYTES) {
        errors.push(format!("{field}: a label is longer than {MAX_LABEL_BYTES} bytes"));
    }
    if labels.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>() > MAX_ALERT_LABEL_BYTES {
        errors.push(format!("{field}: more than {MAX_ALERT_LABEL_BYTES} bytes of labels in all"));
    }
    labels
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PostableAlert {
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    starts_at: Option<String>,
    ends_at: Option<String>,
    #[serde(default, rename = "generatorURL")]
    _generator_url: Option<String>,
}

fn summary_of(labels: &BTreeMap<String, String>, annotations: &BTreeMap<String, String>) -> String {
    let s = annotations
        .get("summary")
        .or_else(|| annotations.get("description"))
        .or_else(|| labels.get("alertname"))
        .cloned()
        .unwrap_or_else(|| "alert".to_owned());
    s.chars().take(MAX_SUMMARY).collect()
}

/// Alertmanager v2 `POST /api/v2/alerts` body → alerts. An alert whose
/// `endsAt` has passed is resolved; otherwise it is firing until `endsAt`
/// (senders re-send firing alerts before that).
pub fn decode_am_v2(body: &[u8], now: Timestamp) -> Result<Vec<ExternalAlert>, Vec<String>> {
    let alerts: Vec<PostableAlert> = decode(body)?;
    let mut errors = Vec::new();
    let mut out = Vec::with_capacity(alerts.len());
    for (i, a) in alerts.into_iter().enumerate() {
        let mut errs = Vec::new();
        if a.labels.is_empty() {
            errs.push(format!("[{i}].labels: at least one label is required"));
        }
        let labels = bounded_labels(&format!("[{i}].labels"), a.labels, &mut errs);
        let starts_at = parse_time(&format!("[{i}].startsAt"), a.starts_at.as_deref(), &mut errs).unwrap_or(now);
        let ends_at = parse_time(&format!("[{i}].endsAt"), a.ends_at.as_deref(), &mut errs);
        if !errs.is_empty() {
            errors.extend(errs);
            continue;
        }
        let state = if ends_at.is_some_and(|e| e <= now) { AlertState::Resolved } else { AlertState::Firing };
        out.push(ExternalAlert {
            source: "alertmanager".into(),
            fingerprint: fingerprint(&labels),
            state,
            summary: summary_of(&labels, &a.annotations),
            labels,
            starts_at,
            // No endsAt: Alertmanager's resolve_timeout (5 m) applies.
            ends_at: Some(ends_at.unwrap_or(now + faultline_core::Duration::from_mins(5))),
        });
    }
    if errors.is_empty() { Ok(out) } else { Err(errors) }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WebhookMessage {
    version: String,
    alerts: Vec<WebhookAlert>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WebhookAlert {
    status: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    starts_at: Option<String>,
    ends_at: Option<String>,
    fingerprint: Option<String>,
}

/// Alertmanager webhook (version "4") body → alerts.
pub fn decode_am_webhook(body: &[u8], now: Timestamp) -> Result<Vec<ExternalAlert>, Vec<String>> {
    let msg: WebhookMessage = decode(body)?;
    if msg.version != "4" {
        return Err(vec![format!("version: {:?} is not supported (expected \"4\")", msg.version)]);
    }
    let mut errors = Vec::new();
    let mut out = Vec::new();
    for (i, a) in msg.alerts.into_iter().enumerate() {
        let mut errs = Vec::new();
        let state = match a.status.as_str() {
            "firing" => AlertState::Firing,
            "resolved" => AlertState::Resolved,
            other => {
                errs.push(format!("alerts[{i}].status: {other:?} is not firing or resolved"));
                AlertState::Firing
            }
        };
        if a.labels.is_empty() {
            errs.push(format!("alerts[{i}].labels: at least one label is required"));
        }
        let labels = bounded_labels(&format!("alerts[{i}].labels"), a.labels, &mut errs);
        if let Some(f) = &a.fingerprint {
            bounded_key(&format!("alerts[{i}].fingerprint"), f, &mut errs);
        }
        let starts_at = parse_time(&format!("alerts[{i}].startsAt"), a.starts_at.as_deref(), &mut errs).unwrap_or(now);
        let ends_at = parse_time(&format!("alerts[{i}].endsAt"), a.ends_at.as_deref(), &mut errs);
        if !errs.is_empty() {
            errors.extend(errs);
            continue;
        }
        out.push(ExternalAlert {
            source: "alertmanager".into(),
            fingerprint: a.fingerprint.filter(|f| !f.is_empty()).unwrap_or_else(|| fingerprint(&labels)),
            state,
            summary: summary_of(&labels, &a.annotations),
            labels,
            starts_at,
            ends_at: if state == AlertState::Resolved { Some(ends_at.unwrap_or(now)) } else { None },
        });
    }
    if errors.is_empty() { Ok(out) } else { Err(errors) }
}

/// A decoded PagerDuty event.
#[derive(Debug, PartialEq)]
pub enum PdEvent {
    Trigger(ExternalAlert),
    Acknowledge { fingerprint: String, dedup_key: String },
    Resolve(ExternalAlert),
}

/// PagerDuty Events API v2 body → event. `new_key` supplies a dedup key
/// when a trigger omits one (PagerDuty generates a UUID).
pub fn decode_pd(body: &[u8], now: Timestamp, new_key: impl FnOnce() -> String) -> Result<(PdEvent, String), Vec<String>> {
    let v: Value = decode(body)?;
    let mut errors = Vec::new();
    let str_field = |v: &Value, name: &str| v.get(name).and_then(Value::as_str).map(str::to_owned);
    let routing_key = str_field(&v, "routing_key").unwrap_or_default();
    if routing_key.is_empty() {
        errors.push("routing_key: required".into());
    }
    bounded_key("routing_key", &routing_key, &mut errors);
    let action = str_field(&v, "event_action").unwrap_or_default();
    if !matches!(action.as_str(), "trigger" | "acknowledge" | "resolve") {
        errors.push(format!("event_action: {action:?} must be trigger, acknowledge or resolve"));
    }
    let given_key = str_field(&v, "dedup_key").filter(|k| !k.is_empty());
    if given_key.as_ref().is_some_and(|k| k.chars().count() > MAX_DEDUP_KEY) {
        errors.push(format!("dedup_key: at most {MAX_DEDUP_KEY} characters"));
    }
    if action != "trigger" && given_key.is_none() {
        errors.push("dedup_key: required for acknowledge and resolve".into());
    }
    let payload = v.get("payload").cloned().unwrap_or(Value::Null);
    let mut labels = BTreeMap::new();
    let mut summary = String::new();
    if action == "trigger" {
        summary = str_field(&payload, "summary").unwrap_or_default();
        if summary.is_empty() {
            errors.push("payload.summary: required".into());
        } else if summary.chars().count() > MAX_SUMMARY {
            errors.push(format!("payload.summary: at most {MAX_SUMMARY} characters"));
        }
        match str_field(&payload, "source") {
            Some(s) if !s.is_empty() => {
                labels.insert("source".into(), s);
            }
            _ => errors.push("payload.source: required".into()),
        }
        match str_field(&payload, "severity").as_deref() {
            Some(s @ ("critical" | "error" | "warning" | "info")) => {
                labels.insert("severity".into(), s.to_owned());
            }
            Some(other) => errors.push(format!("payload.severity: {other:?} is not one of critical, error, warning, info")),
            None => errors.push("payload.severity: required (critical, error, warning or info)".into()),
        }
        for k in ["component", "group", "class"] {
            if let Some(s) = str_field(&payload, k) {
                labels.insert(k.into(), s);
            }
        }
    }
    let starts_at = parse_time("payload.timestamp", payload.get("timestamp").and_then(Value::as_str), &mut errors).unwrap_or(now);
    let labels = bounded_labels("payload", labels, &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    let dedup_key = given_key.unwrap_or_else(new_key);
    // Follow-ups apply only through the same routing key, so it scopes the
    // fingerprint, but only as a digest: the key is a credential, and the
    // fingerprint shows in titles and pages.
    let fingerprint = format!("{}/{dedup_key}", routing_key_digest(&routing_key));
    let alert = |state, summary: String| ExternalAlert {
        source: "pagerduty".into(),
        fingerprint: fingerprint.clone(),
        state,
        summary,
        labels: labels.clone(),
        starts_at,
        ends_at: (state == AlertState::Resolved).then_some(now),
    };
    let event = match action.as_str() {
        "trigger" => PdEvent::Trigger(alert(AlertState::Firing, summary)),
        "acknowledge" => PdEvent::Acknowledge { fingerprint: fingerprint.clone(), dedup_key: dedup_key.clone() },
        _ => PdEvent::Resolve(alert(AlertState::Resolved, String::new())),
    };
    Ok((event, dedup_key))
}

/// 12 hex digits of the routing key's SHA-256: enough to keep two
/// integrations' dedup keys apart, nothing that gives the key away.
fn routing_key_digest(routing_key: &str) -> String {
    format!("rk-{}", &crate::auth::hash_token(routing_key)[..12])
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GenericAlert {
    title: String,
    #[serde(default)]
    status: Option<String>,
    dedup_key: Option<String>,
    service: Option<String>,
    description: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    starts_at: Option<String>,
}

/// The generic JSON alert → alert. The dedup key defaults to a fingerprint of
/// title and labels, so re-sending the same alert deduplicates.
pub fn decode_generic(body: &[u8], now: Timestamp) -> Result<(ExternalAlert, String), Vec<String>> {
    let a: GenericAlert = decode(body)?;
    let mut errors = Vec::new();
    if a.title.trim().is_empty() {
        errors.push("title: must not be empty".into());
    }
    let state = match a.status.as_deref().unwrap_or("firing") {
        "firing" | "triggered" => AlertState::Firing,
        "resolved" => AlertState::Resolved,
        other => {
            errors.push(format!("status: {other:?} must be firing or resolved"));
            AlertState::Firing
        }
    };
    let mut labels = a.labels;
    if let Some(s) = a.service {
        labels.insert("service".into(), s);
    }
    let mut labels = bounded_labels("labels", labels, &mut errors);
    if let Some(k) = &a.dedup_key {
        bounded_key("dedup_key", k, &mut errors);
    }
    let starts_at = parse_time("starts_at", a.starts_at.as_deref(), &mut errors).unwrap_or(now);
    if !errors.is_empty() {
        return Err(errors);
    }
    let key = a.dedup_key.filter(|k| !k.is_empty()).unwrap_or_else(|| {
        let mut l = labels.clone();
        l.insert("__title__".into(), a.title.clone());
        fingerprint(&l)
    });
    // The title names the alert as `alertname` does in Alertmanager's
    // format (after the dedup key, so keys stay what they were).
    labels.entry("alertname".into()).or_insert_with(|| a.title.chars().take(MAX_SUMMARY).collect());
    let summary = a.description.filter(|d| !d.is_empty()).unwrap_or(a.title).chars().take(MAX_SUMMARY).collect();
    Ok((
        ExternalAlert {
            source: "generic".into(),
            fingerprint: key.clone(),
            state,
            summary,
            labels,
            starts_at,
            ends_at: (state == AlertState::Resolved).then_some(now),
        },
        key,
    ))
}

/// PagerDuty senders authenticate with the routing key alone: an event whose
/// `routing_key` is a configured integration key is accepted; any other
/// needs an ingest token like every ingest endpoint (so a Faultline-aware
/// sender may use any routing key with its token).
async fn authorize_pagerduty(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<(), ApiError> {
    if state.ingest_auth == crate::config::IngestAuthMode::None {
        return Ok(());
    }
    #[derive(Deserialize)]
    struct Keyed {
        routing_key: Option<String>,
    }
    let key = serde_json::from_slice::<Keyed>(body).ok().and_then(|k| k.routing_key).unwrap_or_default();
    // Every configured key is compared, in constant time, whatever matched.
    let known = !key.is_empty()
        && state.pagerduty_routing_keys.iter().fold(false, |found, k| found | faultline_receivers::auth::constant_time_eq(k.as_bytes(), key.as_bytes()));
    if known {
        return Ok(());
    }
    if headers.contains_key(header::AUTHORIZATION) {
        return super::auth::require(headers, state, crate::auth::Need::Ingest).await.map(drop);
    }
    state.metrics.auth_failures.get_or_create(&crate::metrics::AuthLabels { outcome: "unknown_routing_key" }).inc();
    Err(ApiError::unauthorized(
        "routing_key is not a configured integration key (pagerduty_routing_keys) and no ingest token was sent (`Authorization: Bearer <token>`)",
    ))
}

fn queue(state: &AppState, event: Event) -> Result<(), ApiError> {
    state.engine.try_send(event).map_err(send_error)
}

fn send_error(e: SendError) -> ApiError {
    match e {
        SendError::Full => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "overloaded", "the correlation queue is full; retry shortly"),
        SendError::Stopped => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "shutting_down", "the server is shutting down"),
    }
}

/// Queues signals and waits until the engine has committed them to their
/// incidents and the correlator state (one transaction per engine turn,
/// shared by every request waiting in it): a success answer means the alert
/// survives a crash. A full queue is 503 at once, never a wait.
///
/// The request's reservation of bytes in flight goes with the signals
/// (`super::held_body`): if the request times out while they are still
/// queued, they keep counting until the engine has taken them.
async fn commit(state: &AppState, signals: Vec<Signal>) -> Result<(), ApiError> {
    let hold = super::held_body().map(|h| Box::new(h) as faultline_engine::Hold);
    let committed = state.engine.try_send_durable(signals, hold).map_err(send_error)?;
    match committed.await {
        Ok(true) => Ok(()),
        Ok(false) => Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not_committed", "the alerts could not be stored; retry shortly")),
        Err(_) => Err(send_error(SendError::Stopped)),
    }
}

fn invalid(errors: Vec<String>) -> ApiError {
    ApiError::bad_request("invalid_alert", errors.join("; "))
}

fn with_retry_after(mut r: Response) -> Response {
    if r.status() == StatusCode::SERVICE_UNAVAILABLE || r.status() == StatusCode::TOO_MANY_REQUESTS {
        r.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
    }
    r
}

/// The shared shape of the Faultline-format ingest endpoints (authenticated
/// by their `IngestAccess` extractor): decode into signals plus the success answer, commit, count.
async fn accept(state: &AppState, decode: impl FnOnce(Timestamp) -> Result<(Vec<Signal>, Response), ApiError>) -> Response {
    let decoded = decode(state.clock.now());
    let result = match decoded {
        Ok((signals, ok)) => {
            let n = signals.len() as u64;
            commit(state, signals).await.map(|()| {
                state.metrics.alerts_received.inc_by(n);
                ok
            })
        }
        Err(e) => Err(e),
    };
    with_retry_after(result.unwrap_or_else(|e| {
        state.metrics.alerts_rejected.inc();
        e.into_response()
    }))
}

fn signals(alerts: Vec<ExternalAlert>) -> Vec<Signal> {
    alerts.into_iter().map(Signal::Alert).collect()
}

pub async fn alertmanager_v2(State(state): State<AppState>, _access: IngestAccess, ApiBytes(body): ApiBytes) -> Response {
    accept(&state, |now| {
        let alerts = decode_am_v2(&body, now).map_err(invalid)?;
        Ok((signals(alerts), StatusCode::OK.into_response()))
    })
    .await
}

pub async fn alertmanager_webhook(State(state): State<AppState>, _access: IngestAccess, ApiBytes(body): ApiBytes) -> Response {
    accept(&state, |now| {
        let alerts = decode_am_webhook(&body, now).map_err(invalid)?;
        let n = alerts.len();
        Ok((signals(alerts), (StatusCode::ACCEPTED, Json(json!({"status": "success", "accepted": n}))).into_response()))
    })
    .await
}

/// PagerDuty answers in its own shape, not Faultline's error shape, so
/// existing PagerDuty clients understand the reply.
pub async fn pagerduty_enqueue(State(state): State<AppState>, headers: HeaderMap, ApiBytes(body): ApiBytes) -> Response {
    if let Err(e) = authorize_pagerduty(&state, &headers, &body).await {
        return e.into_response();
    }
    let decoded = decode_pd(&body, state.clock.now(), || uuid::Uuid::now_v7().simple().to_string());
    let (event, dedup_key) = match decoded {
        Ok(ok) => ok,
        Err(errors) => {
            state.metrics.alerts_rejected.inc();
            return (StatusCode::BAD_REQUEST, Json(json!({"status": "invalid event", "message": "Event object is invalid", "errors": errors}))).into_response();
        }
    };
    let queued = match event {
        PdEvent::Trigger(a) | PdEvent::Resolve(a) => commit(&state, vec![Signal::Alert(a)]).await,
        PdEvent::Acknowledge { fingerprint, .. } => queue(&state, Event::AlertAcknowledged { source: "pagerduty".into(), fingerprint }),
    };
    state.metrics.alerts_received.inc();
    match queued {
        Ok(()) => (StatusCode::ACCEPTED, Json(json!({"status": "success", "message": "Event processed", "dedup_key": dedup_key}))).into_response(),
        Err(_) => with_retry_after(
            (
                StatusCode::TOO_MANY_REQUESTS,
                Json(json!({"status": "throttle event", "message": "Requests for this service are arriving too quickly. Please retry later."})),
            )
                .into_response(),
        ),
    }
}

pub async fn generic(State(state): State<AppState>, _access: IngestAccess, ApiBytes(body): ApiBytes) -> Response {
    accept(&state, |now| {
        let (alert, key) = decode_generic(&body, now).map_err(invalid)?;
        Ok((signals(vec![alert]), (StatusCode::ACCEPTED, Json(json!({"status": "success", "dedup_key": key}))).into_response()))
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PushedProbe {
    probe: String,
    location: String,
    target: Option<String>,
    success: bool,
    response_ms: Option<f64>,
    #[serde(default)]
    failures: Vec<String>,
    at: Option<String>,
}

/// `POST /api/v1/probes/results`: a probe result (or an array of them) from
/// a runner in another location, for the partition matrix and the probe
/// detectors.
pub async fn probe_results(State(state): State<AppState>, _access: IngestAccess, ApiBytes(body): ApiBytes) -> Response {
    accept(&state, |now| {
        // One result or an array of them.
        let pushed: Vec<PushedProbe> = if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
            decode(&body).map_err(invalid)?
        } else {
            decode::<PushedProbe>(&body).map(|p| vec![p]).map_err(invalid)?
        };
        let mut signals = Vec::with_capacity(pushed.len());
        for (i, p) in pushed.into_iter().enumerate() {
            let mut errs = Vec::new();
            if p.probe.trim().is_empty() || p.location.trim().is_empty() {
                errs.push(format!("[{i}]: probe and location must not be empty"));
            }
            bounded_key(&format!("[{i}].probe"), &p.probe, &mut errs);
            bounded_key(&format!("[{i}].location"), &p.location, &mut errs);
            if p.failures.len() > MAX_PROBE_FAILURES || p.failures.iter().any(|f| f.len() > MAX_KEY_BYTES) {
                errs.push(format!("[{i}].failures: at most {MAX_PROBE_FAILURES}, each at most {MAX_KEY_BYTES} bytes"));
            }
            let at = parse_time(&format!("[{i}].at"), p.at.as_deref(), &mut errs).unwrap_or(now);
            let target = match p.target.as_deref().map(faultline_core::ServiceName::new).transpose() {
                Ok(t) => t,
                Err(e) => {
                    errs.push(format!("[{i}].target: {e}"));
                    None
                }
            };
            if !errs.is_empty() {
                return Err(invalid(errs));
            }
            signals.push(Signal::Probe(faultline_core::signal::ProbeResult {
                probe: p.probe,
                location: p.location,
                target,
                at,
                success: p.success,
                response_ms: p.response_ms,
                failures: p.failures,
            }));
        }
        let n = signals.len();
        Ok((signals, (StatusCode::ACCEPTED, Json(json!({"status": "success", "accepted": n}))).into_response()))
    })
    .await
}

/// `/ping/{check}`: the job ran and succeeded.
pub async fn ping(State(state): State<AppState>, _access: IngestAccess, axum::extract::Path(check): axum::extract::Path<String>) -> Response {
    checkin(&state, check, faultline_core::signal::CheckInKind::Success)
}

/// `/ping/{check}/start` and `/ping/{check}/fail`.
pub async fn ping_kind(
    State(state): State<AppState>,
    _access: IngestAccess,
    axum::extract::Path((check, kind)): axum::extract::Path<(String, String)>,
) -> Response {
    let kind = match kind.as_str() {
        "start" => faultline_core::signal::CheckInKind::Start,
        "fail" => faultline_core::signal::CheckInKind::Fail,
        other => return ApiError::not_found(format!("no ping kind {other:?}: use /ping/{check}, /ping/{check}/start or /ping/{check}/fail")).into_response(),
    };
    checkin(&state, check, kind)
}

fn checkin(state: &AppState, check: String, kind: faultline_core::signal::CheckInKind) -> Response {
    if !state.checks.contains(&check) {
        return ApiError::not_found(format!("no check-in named {check:?} is configured")).into_response();
    }
    let event = Event::Signals(vec![Signal::CheckIn(faultline_core::signal::CheckIn { check, kind, at: state.clock.now() })]);
    match queue(state, event) {
        Ok(()) => "OK\n".into_response(),
        Err(e) => with_retry_after(e.into_response()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        Timestamp::parse_rfc3339("2026-11-21T12:00:00Z").unwrap()
    }

    #[test]
    fn fingerprint_matches_prometheus_common_model() {
        // prometheus/common returns the bare FNV-1a offset basis for an
        // empty label set.
        assert_eq!(fingerprint(&BTreeMap::new()), "cbf29ce484222325");
        let a = BTreeMap::from([("alertname".to_string(), "X".to_string()), ("job".to_string(), "api".to_string())]);
        let b = BTreeMap::from([("job".to_string(), "api".to_string()), ("alertname".to_string(), "X".to_string())]);
        assert_eq!(fingerprint(&a), fingerprint(&b), "order-independent");
        assert_ne!(fingerprint(&a), fingerprint(&BTreeMap::from([("alertname".to_string(), "Xjob".to_string())])));
    }

    #[test]
    fn am_v2_firing_and_resolved() {
        let body = br#"[
            {"labels":{"alertname":"HighErrors","service":"gateway"},"annotations":{"summary":"gateway 5xx"},"startsAt":"2026-11-21T11:59:00Z","endsAt":"2026-11-21T12:04:00Z"},
            {"labels":{"alertname":"Old"},"endsAt":"2026-11-21T11:00:00Z"}
        ]"#;
        let alerts = decode_am_v2(body, now()).unwrap();
        assert_eq!(alerts[0].state, AlertState::Firing);
        assert_eq!(alerts[0].summary, "gateway 5xx");
        assert_eq!(alerts[0].labels["service"], "gateway");
        assert_eq!(alerts[1].state, AlertState::Resolved);
        assert_eq!(alerts[1].summary, "Old");
    }

    #[test]
    fn am_v2_errors_name_the_field() {
        let e = decode_am_v2(br#"[{"labels":{}},{"labels":{"a":"b"},"startsAt":"noon"}]"#, now()).unwrap_err();
        assert_eq!(e[0], "[0].labels: at least one label is required");
        assert!(e[1].starts_with("[1].startsAt: invalid timestamp \"noon\""), "{e:?}");
        assert_eq!(decode_am_v2(b"{}", now()).unwrap_err(), ["body: expected a list, found an object"]);
        assert_eq!(decode_am_v2(b"[{labels", now()).unwrap_err(), ["the body is not valid JSON (line 1, column 3)"]);
        assert_eq!(decode_am_v2(br#"[{"labels":{"a":1}}]"#, now()).unwrap_err(), ["[0].labels.a: expected text, found 1"]);
    }

    #[test]
    fn am_webhook_v4_keeps_fingerprints() {
        let body = br#"{"version":"4","groupKey":"{}:{alertname=\"X\"}","status":"resolved","receiver":"faultline",
            "alerts":[{"status":"resolved","labels":{"alertname":"X"},"annotations":{},"startsAt":"2026-11-21T11:00:00Z","endsAt":"2026-11-21T11:30:00Z","fingerprint":"c0ffee0123456789"}]}"#;
        let a = decode_am_webhook(body, now()).unwrap();
        assert_eq!((a[0].fingerprint.as_str(), a[0].state), ("c0ffee0123456789", AlertState::Resolved));
        let e = decode_am_webhook(br#"{"version":"3","alerts":[]}"#, now()).unwrap_err();
        assert_eq!(e[0], "version: \"3\" is not supported (expected \"4\")");
    }

    #[test]
    fn pagerduty_trigger_ack_resolve_and_validation() {
        let trigger =
            br#"{"routing_key":"R0123","event_action":"trigger","payload":{"summary":"DB down","source":"db1","severity":"critical","component":"fraud-db"}}"#;
        let (ev, key) = decode_pd(trigger, now(), || "generated".into()).unwrap();
        assert_eq!(key, "generated");
        let PdEvent::Trigger(a) = ev else { panic!("{ev:?}") };
        assert_eq!((a.fingerprint.as_str(), a.labels["component"].as_str()), ("rk-aeec523febca/generated", "fraud-db"));
        assert!(!format!("{a:?}").contains("R0123"), "the routing key is a credential and is not kept: {a:?}");
        let ack = br#"{"routing_key":"R0123","event_action":"acknowledge","dedup_key":"generated"}"#;
        assert!(matches!(decode_pd(ack, now(), || unreachable!()).unwrap().0, PdEvent::Acknowledge { .. }));
        let e = decode_pd(br#"{"routing_key":"","event_action":"explode","payload":{}}"#, now(), || "k".into()).unwrap_err();
        assert_eq!(
            e,
            ["routing_key: required", "event_action: \"explode\" must be trigger, acknowledge or resolve", "dedup_key: required for acknowledge and resolve"]
        );
        let e = decode_pd(br#"{"routing_key":"R","event_action":"trigger","payload":{"summary":"x","source":"s","severity":"fatal"}}"#, now(), || "k".into())
            .unwrap_err();
        assert_eq!(e, ["payload.severity: \"fatal\" is not one of critical, error, warning, info"]);
        let e = decode_pd(br#"{"routing_key":"R","event_action":"trigger","payload":{"summary":"x","source":"s"}}"#, now(), || "k".into()).unwrap_err();
        assert_eq!(e, ["payload.severity: required (critical, error, warning or info)"], "no parser or Rust words (None, Some)");
    }

    #[test]
    fn generic_alert_dedups_by_content() {
        let (a, k1) = decode_generic(br#"{"title":"Disk full","service":"ledger"}"#, now()).unwrap();
        let (_, k2) = decode_generic(br#"{"title":"Disk full","service":"ledger"}"#, now()).unwrap();
        assert_eq!((k1.clone(), a.labels["service"].as_str()), (k2, "ledger"));
        assert!(decode_generic(br#"{"title":" "}"#, now()).unwrap_err()[0].starts_with("title"));
        assert!(decode_generic(br#"{"title":"x","colour":"red"}"#, now()).unwrap_err()[0].starts_with("body: unknown field \"colour\""));
        assert_eq!(a.labels["alertname"], "Disk full", "the title names the alert");
    }

    /// Identifiers that arrive from the network are bounded: before this,
    /// a megabyte fingerprint, routing key, dedup key or service name was
    /// held as the correlator member's key (704 MB from 150 requests).
    #[test]
    fn overlong_identifiers_are_refused_with_the_field_named() {
        let long = "k".repeat(MAX_KEY_BYTES + 1);
        let hook = format!(r#"{{"version":"4","status":"firing","alerts":[{{"status":"firing","labels":{{"a":"b"}},"fingerprint":"{long}"}}]}}"#);
        assert_eq!(decode_am_webhook(hook.as_bytes(), now()).unwrap_err(), [format!("alerts[0].fingerprint: at most {MAX_KEY_BYTES} bytes")]);
        let pd = format!(r#"{{"routing_key":"{long}","event_action":"trigger","payload":{{"summary":"x","source":"s","severity":"info"}}}}"#);
        assert_eq!(decode_pd(pd.as_bytes(), now(), || "k".into()).unwrap_err(), [format!("routing_key: at most {MAX_KEY_BYTES} bytes")]);
        let generic = format!(r#"{{"title":"x","dedup_key":"{long}"}}"#);
        assert_eq!(decode_generic(generic.as_bytes(), now()).unwrap_err(), [format!("dedup_key: at most {MAX_KEY_BYTES} bytes")]);
        let service = "s".repeat(MAX_LABEL_BYTES + 1);
        let generic = format!(r#"{{"title":"x","service":"{service}"}}"#);
        assert_eq!(decode_generic(generic.as_bytes(), now()).unwrap_err(), [format!("labels: a label is longer than {MAX_LABEL_BYTES} bytes")]);
        let many: BTreeMap<String, String> = (0..20).map(|i| (format!("l{i}"), "v".repeat(500))).collect();
        let body = serde_json::to_vec(&json!([{ "labels": many }])).unwrap();
        assert_eq!(decode_am_v2(&body, now()).unwrap_err(), [format!("[0].labels: more than {MAX_ALERT_LABEL_BYTES} bytes of labels in all")]);
        // At the limit they are accepted as they are.
        let ok = "k".repeat(MAX_KEY_BYTES);
        let generic = format!(r#"{{"title":"x","dedup_key":"{ok}"}}"#);
        assert_eq!(decode_generic(generic.as_bytes(), now()).unwrap().1, ok);
    }
}
