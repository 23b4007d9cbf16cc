//! Response-workflow routes: the notification ledger per incident, on-call
//! queries (who is on call at T, coverage gaps), the configured schedules,
//! escalation policies and teams, Alertmanager-compatible silences
//! (`/api/v2/silences`, `/api/v2/silence/{id}`, so amtool-style clients
//! work), and the public status page (Statuspage-compatible `/api/v2/*.json`,
//! an HTML page, an Atom feed, subscribers) with the comms lead's drafts and
//! scheduled maintenance under `/api/v1/status-page`.
//!
//! Also `GET /api/v1/metrics/response` (MTTA / MTTM / MTTR distributions read
//! from timelines by the core) and `ResponseState`: the response driver and
//! outbox worker the `App` starts (`ResponseState::start`). Handlers stay
//! thin: parse, authorise, call the core or the store, convert. Bodies are
//! `faultline-api` types, except where a peer's format is the contract and
//! the core already models it field for field (Alertmanager silences,
//! Statuspage documents) and the configured schedules and escalation
//! policies, answered in their config format. The status page needs no token;
//! publishing a draft notifies subscribers through the outbox. Subscribing
//! needs no token either, so it is bounded (`config::SubscriberLimits`: no
//! private targets by default, a creation rate per client under a global
//! one, a subscriber cap), and unsubscribed subscribers are deleted after
//! their retention by a low-frequency housekeeping task
//! (`ResponseState::housekeep`).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use faultline_api as api;
use faultline_core::incident::metrics::{response_times, summarize};
use faultline_core::incident::{Actor, Command, IncidentEvent, Severity};
use faultline_core::routing::{Silence, SilenceState};
use faultline_core::status_page::{
    ComponentStatus, ImpactFacts, MaintenanceStatus, PublicIncidentStatus, ScheduledMaintenance, StatusPageView, comms_update, xml,
};
use faultline_core::{Duration, IncidentId, Timestamp};
use faultline_engine::notify::worker::OutboxWorker;
use faultline_engine::notify::{Sender, target};
use faultline_engine::response::{ResponseDriver, status_note};
use faultline_store::response::{ResponseStore, Subscriber};
use faultline_store::{IncidentFilter, SqlStore, Store, commands};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::auth::{AdminAccess, ReadAccess};
use super::client_ip::ClientIp;
use super::convert;
use super::error::{ApiError, ApiJson, OptionalJson};
use crate::clock::Clock;
use crate::config::SubscriberLimits;
use crate::ratelimit::{Refused, Source, SourceLimiter};
use crate::response_config::ResponseConfig;

/// The response runtime shared by handlers: config, store, driver, worker.
pub struct ResponseState {
    pub config: ResponseConfig,
    pub responses: Arc<dyn ResponseStore>,
    pub driver: Arc<ResponseDriver>,
    pub worker: Option<Arc<OutboxWorker>>,
    /// Limits on public subscriptions (cap, creation rates, private
    /// targets, retention, proxy).
    pub subscribers: SubscriberLimits,
    /// The budget of new subscriptions: per client under a global ceiling,
    /// on the App's clock.
    creations: std::sync::Mutex<SourceLimiter>,
}

/// Clients whose subscription budget is remembered at most (see
/// `ratelimit`: only admitted subscriptions add one and an idle one is
/// forgotten within a minute, so the global rate keeps the table far below
/// this unless it is set very high).
const MAX_TRACKED_SOURCES: usize = 10_000;

/// Housekeeping runs once at start, then every this many ticks (one hour at
/// the production tick of 1 s).
const HOUSEKEEPING_TICKS: u32 = 3_600;

/// Rows one purge statement deletes at most.
const PURGE_BATCH: u32 = 500;

impl ResponseState {
    /// Builds the runtime from the loaded config (empty when none is given).
    pub fn new(config: Option<&ResponseConfig>, store: &SqlStore, subscribers: &SubscriberLimits) -> Arc<ResponseState> {
        let config = config.cloned().unwrap_or_else(ResponseConfig::empty);
        let responses: Arc<dyn ResponseStore> = Arc::new(store.clone());
        let incidents: Arc<dyn Store> = Arc::new(store.clone());
        let worker = match Sender::with_proxy(std::time::Duration::from_secs(10), target::system_lookup(), &subscribers.proxy) {
            Ok(sender) => Some(Arc::new(
                OutboxWorker::new(responses.clone(), config.channels.clone(), sender, config.retry.clone(), worker_id())
                    .allow_private_subscriber_targets(subscribers.allow_private_targets),
            )),
            Err(e) => {
                tracing::error!(error = %e, "notifications disabled: cannot build the HTTP client");
                None
            }
        };
        let driver = Arc::new(ResponseDriver::new(incidents, responses.clone(), config.setup.clone(), worker.clone()));
        Arc::new(ResponseState {
            config,
            responses,
            driver,
            worker,
            subscribers: subscribers.clone(),
            creations: std::sync::Mutex::new(SourceLimiter::new(
                subscribers.creations_per_source_per_minute,
                subscribers.creations_per_minute,
                MAX_TRACKED_SOURCES,
            )),
        })
    }

    /// One housekeeping pass at `now`: deletes the subscribers unsubscribed
    /// more than `unsubscribed_retention_days` ago (live ones are never
    /// touched). Returns how many were deleted.
    pub async fn housekeep(&self, now: Timestamp) -> Result<u64, faultline_store::StoreError> {
        let retention = Duration::from_secs(i64::from(self.subscribers.unsubscribed_retention_days) * 86_400);
        let purged = self.responses.purge_unsubscribed(now - retention, PURGE_BATCH).await?;
        if purged > 0 {
            tracing::info!(purged, retention_days = self.subscribers.unsubscribed_retention_days, "unsubscribed status-page subscribers deleted");
        }
        Ok(purged)
    }

    /// Starts the response driver and the outbox worker; both stop when
    /// `stop` becomes true. On start the driver catches up every unread
    /// timeline and overdue escalation (the restart path).
    /// `tick` is the App's `Config::tick_interval`: the worker polls once a
    /// tick and the driver four times (1 s and 250 ms in production; the
    /// demo's accelerated clock shortens both).
    ///
    /// Also the low-frequency housekeeping (`housekeep`): at start, then
    /// every `HOUSEKEEPING_TICKS` ticks; a failed pass is logged and tried
    /// again at the next.
    pub fn start(
        self: &Arc<Self>,
        clock: Arc<dyn Clock>,
        tick: std::time::Duration,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        let mut tasks = vec![tokio::spawn(self.clone().housekeeping(clock.clone(), tick * HOUSEKEEPING_TICKS, stop.clone()))];
        let now: faultline_engine::notify::NowFn = Arc::new(move || clock.now());
        let mut s1 = stop.clone();
        tasks.push(tokio::spawn(self.driver.clone().run(now.clone(), tick / 4, async move {
            let _ = s1.wait_for(|s| *s).await;
        })));
        if let Some(w) = &self.worker {
            let mut s2 = stop;
            tasks.push(tokio::spawn(w.clone().run(now, tick, async move {
                let _ = s2.wait_for(|s| *s).await;
            })));
        }
        tasks
    }

    async fn housekeeping(self: Arc<Self>, clock: Arc<dyn Clock>, every: std::time::Duration, mut stop: tokio::sync::watch::Receiver<bool>) {
        // A zero period would make `interval` panic.
        let mut interval = tokio::time::interval(every.max(std::time::Duration::from_millis(1)));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            if let Err(e) = self.housekeep(clock.now()).await {
                tracing::warn!(error = %e, "housekeeping pass failed; trying again at the next");
            }
        }
    }
}

/// A lease owner name unique to this process.
fn worker_id() -> String {
    format!("worker-{}-{}", std::process::id(), uuid::Uuid::now_v7().simple())
}

pub fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/api/v1/incidents/{id}/notifications", get(notifications))
        .route("/api/v1/metrics/response", get(response_metrics))
        .route("/api/v1/oncall", get(oncall))
        .route("/api/v1/oncall/gaps", get(gaps))
        .route("/api/v1/schedules", get(schedules))
        .route("/api/v1/escalation-policies", get(policies))
        .route("/api/v1/teams", get(teams))
        .route("/api/v2/silences", get(list_silences).post(post_silence))
        .route("/api/v2/silence/{id}", get(get_silence).delete(delete_silence))
        .route("/api/v2/summary.json", get(summary))
        .route("/api/v2/status.json", get(status))
        .route("/api/v2/components.json", get(components))
        .route("/api/v2/incidents.json", get(incidents_all))
        .route("/api/v2/incidents/unresolved.json", get(incidents_unresolved))
        .route("/api/v2/scheduled-maintenances.json", get(maint_all))
        .route("/api/v2/scheduled-maintenances/upcoming.json", get(maint_upcoming))
        .route("/api/v2/scheduled-maintenances/active.json", get(maint_active))
        .route("/api/v2/subscribers", post(subscribe))
        .route("/api/v2/subscribers/{id}", axum::routing::delete(unsubscribe))
        .route("/status", get(status_html))
        .route("/history.atom", get(atom))
        .route("/api/v1/incidents/{id}/status-updates", post(post_status_update))
        // The feed's self link is the page URL (default `/status`) plus
        // `/history.atom`, as on Statuspage: serve it there too.
        .route("/status/history.atom", get(atom))
        .route("/api/v1/status-page/drafts", get(drafts))
        .route("/api/v1/status-page/drafts/{id}/publish", post(publish_draft))
        .route("/api/v1/status-page/drafts/{id}", axum::routing::delete(discard_draft))
        .route("/api/v1/status-page/maintenances", post(create_maintenance))
}

fn rs(state: &AppState) -> &ResponseState {
    &state.response
}

fn parse_time(key: &str, s: &str) -> Result<Timestamp, ApiError> {
    Timestamp::parse_rfc3339(s).map_err(|e| ApiError::bad_request("invalid_query", format!("{key}: {e}")))
}

fn invalid(msg: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", msg)
}

async fn notifications(State(state): State<AppState>, _: ReadAccess, Path(id): Path<String>) -> Result<Json<api::NotificationList>, ApiError> {
    let id = super::incidents::resolve_id(state.store.as_ref(), &id).await?;
    if state.store.incident(id).await?.is_none() {
        return Err(ApiError::not_found(format!("no incident with id {id}")));
    }
    let r = rs(&state);
    let rows = r.responses.notifications(id).await?;
    let ledger = r.responses.ledger(id).await?;
    Ok(Json(api::NotificationList {
        incident_id: id.to_string(),
        notifications: rows
            .iter()
            .map(|n| api::Notification {
                idempotency_key: n.idempotency_key.clone(),
                channel: n.channel.clone(),
                recipient: n.recipient.clone(),
                kind: n.kind.clone(),
                status: n.status.as_str().to_owned(),
                attempts: n.attempts,
                created_at: n.created_at.to_string(),
                next_attempt_at: n.next_attempt_at.to_string(),
                delivered_at: n.delivered_at.map(|t| t.to_string()),
                last_error: n.last_error.clone(),
            })
            .collect(),
        ledger: ledger
            .iter()
            .map(|l| api::LedgerLine {
                at: l.at.to_string(),
                idempotency_key: l.idempotency_key.clone(),
                channel: l.channel.clone(),
                recipient: l.recipient.clone(),
                kind: l.kind.clone(),
                outcome: l.outcome.clone(),
                attempt: l.attempt,
                detail: l.detail.clone(),
            })
            .collect(),
    }))
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct MetricsQuery {
    from: Option<String>,
    to: Option<String>,
    severity: Option<String>,
}

/// Incidents one metrics request reads at most (the store's list cap).
const METRICS_MAX_INCIDENTS: u32 = 1000;

/// MTTA / MTTM / MTTR distributions over incidents opened in `[from, to)`,
/// each incident's times read from its timeline by the core (the timelines
/// of all listed incidents in one batched store read).
async fn response_metrics(
    State(state): State<AppState>,
    _: ReadAccess,
    q: Result<Query<MetricsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<api::ResponseMetrics>, ApiError> {
    let q = query(q)?;
    let from = q.from.as_deref().map(|s| parse_time("from", s)).transpose()?;
    let to = q.to.as_deref().map(|s| parse_time("to", s)).transpose()?;
    let severity: Option<Severity> = q
        .severity
        .as_deref()
        .map(|s| s.parse().map_err(|e: faultline_core::incident::SeverityParseError| ApiError::bad_request("invalid_query", format!("severity: {e}"))))
        .transpose()?;
    // The window goes to the store: filtered here, after the cap, a window
    // older than the newest 1000 incidents would come back empty.
    let filter = IncidentFilter { severity, limit: Some(METRICS_MAX_INCIDENTS), opened_from: from, opened_before: to, ..IncidentFilter::default() };
    let listed = state.store.list_incidents(&filter).await?;
    let truncated = listed.len() >= METRICS_MAX_INCIDENTS as usize;
    // One query for the events of every listed incident, not one per incident.
    let ids: Vec<IncidentId> = listed.iter().map(|i| i.id).collect();
    let timelines = state.store.incidents_with_timelines(&ids).await?;
    let times: Vec<_> = timelines.iter().filter_map(|(_, timeline)| response_times(timeline)).collect();
    let s = summarize(&times);
    Ok(Json(api::ResponseMetrics {
        from: from.map(|t| t.to_string()),
        to: to.map(|t| t.to_string()),
        severity: severity.map(|s| s.to_string()),
        incidents: s.incidents as u64,
        merged: s.merged as u64,
        unacknowledged: s.unacknowledged as u64,
        unresolved: s.unresolved as u64,
        time_to_acknowledge: convert::distribution(&s.time_to_acknowledge),
        time_to_mitigate: convert::distribution(&s.time_to_mitigate),
        time_to_resolve: convert::distribution(&s.time_to_resolve),
        truncated,
    }))
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct OnCallQuery {
    schedule: Option<String>,
    at: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

fn query<T: Default>(q: Result<Query<T>, axum::extract::rejection::QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(v)| v).map_err(|e| super::error::query_problem(&e))
}

async fn oncall(
    State(state): State<AppState>,
    _: ReadAccess,
    q: Result<Query<OnCallQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<api::OnCallList>, ApiError> {
    let q = query(q)?;
    let at = match &q.at {
        Some(s) => parse_time("at", s)?,
        None => state.clock.now(),
    };
    let schedules = &rs(&state).config.setup.directory.schedules;
    if let Some(name) = &q.schedule
        && !schedules.contains_key(name)
    {
        return Err(ApiError::not_found(format!("no schedule named {name:?}")));
    }
    let on_call = schedules
        .iter()
        .filter(|(n, _)| q.schedule.as_ref().is_none_or(|s| s == *n))
        .map(|(name, s)| api::OnCall {
            schedule: name.clone(),
            time_zone: s.time_zone_name().to_string(),
            users: s.on_call_users(at).iter().map(ToString::to_string).collect(),
            shift: s.who_is_on_call(at).map(|sh| api::Shift {
                user: sh.user.to_string(),
                start: sh.start.to_string(),
                end: sh.end.to_string(),
                source: format!("{:?}", sh.source),
            }),
        })
        .collect();
    Ok(Json(api::OnCallList { at: at.to_string(), on_call }))
}

async fn gaps(
    State(state): State<AppState>,
    _: ReadAccess,
    q: Result<Query<OnCallQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<api::CoverageGaps>, ApiError> {
    let q = query(q)?;
    let now = state.clock.now();
    let from = match &q.from {
        Some(s) => parse_time("from", s)?,
        None => now,
    };
    let to = match &q.to {
        Some(s) => parse_time("to", s)?,
        None => from + Duration::from_mins(14 * 24 * 60),
    };
    let schedules = &rs(&state).config.setup.directory.schedules;
    let mut out = Vec::new();
    for (name, s) in schedules.iter().filter(|(n, _)| q.schedule.as_ref().is_none_or(|s| s == *n)) {
        let gaps = s.coverage_gaps(from, to).map_err(|e| invalid(format!("schedule {name}: {e}")))?;
        out.push(api::ScheduleGaps {
            schedule: name.clone(),
            gaps: gaps.iter().map(|g| api::Interval { start: g.start.to_string(), end: g.end.to_string() }).collect(),
        });
    }
    if out.is_empty()
        && let Some(name) = &q.schedule
    {
        return Err(ApiError::not_found(format!("no schedule named {name:?}")));
    }
    Ok(Json(api::CoverageGaps { from: from.to_string(), to: to.to_string(), schedules: out }))
}

async fn schedules(State(state): State<AppState>, _: ReadAccess) -> Json<Value> {
    Json(json!({"schedules": rs(&state).config.schedules}))
}

async fn policies(State(state): State<AppState>, _: ReadAccess) -> Json<Value> {
    let setup = &rs(&state).config.setup;
    Json(json!({"escalation_policies": setup.policies.values().collect::<Vec<_>>(), "default_policy": setup.default_policy}))
}

async fn teams(State(state): State<AppState>, _: ReadAccess) -> Json<api::TeamList> {
    let c = &rs(&state).config;
    let users = c
        .users
        .iter()
        .map(|(id, name)| api::UserView {
            id: id.to_string(),
            name: name.clone(),
            contacts: c.setup.contacts.get(id).into_iter().flatten().map(|m| api::ContactView { channel: m.channel.clone() }).collect(),
        })
        .collect();
    let teams = c
        .setup
        .catalogue
        .teams
        .iter()
        .map(|t| api::Team { id: t.id.to_string(), name: t.name.clone(), members: t.members.iter().map(ToString::to_string).collect() })
        .collect();
    Json(api::TeamList { teams, users })
}

// ------------------------------------------------------------- silences

#[derive(Debug, Deserialize, Default)]
struct SilenceQuery {
    #[serde(default)]
    filter: Vec<String>,
}

async fn list_silences(
    State(state): State<AppState>,
    _: ReadAccess,
    axum::extract::RawQuery(raw): axum::extract::RawQuery,
) -> Result<Json<Vec<Silence>>, ApiError> {
    // `filter` may repeat (amtool sends one per matcher).
    let q = SilenceQuery { filter: raw.unwrap_or_default().split('&').filter_map(|kv| kv.strip_prefix("filter=")).map(percent_decode).collect() };
    let matchers = q
        .filter
        .iter()
        .map(|f| faultline_core::routing::Matcher::parse(f))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApiError::bad_request("invalid_query", e.to_string()))?;
    let now = state.clock.now();
    let all = rs(&state).responses.silences().await?;
    let out = all
        .into_iter()
        .filter(|s| matchers.iter().all(|m| s.matchers.iter().any(|sm| sm.name == m.name && sm.value == m.value)))
        .map(|s| s.with_status(now))
        .collect();
    Ok(Json(out))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.replace('+', " ").into_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"), 16)
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn post_silence(State(state): State<AppState>, admin: AdminAccess, ApiJson(mut s): ApiJson<Silence>) -> Result<Json<api::SilenceCreated>, ApiError> {
    if s.created_by.trim().is_empty() {
        match &admin.0.user {
            Some(u) => s.created_by = u.to_string(),
            None => {
                return Err(ApiError::bad_request(
                    "invalid_silence",
                    format!("createdBy is required: token {:?} belongs to no user (faultline silences add --created-by NAME)", admin.0.name),
                ));
            }
        }
    }
    s.validate().map_err(|e| ApiError::bad_request("invalid_silence", e.to_string()))?;
    let now = state.clock.now();
    let r = rs(&state);
    if s.id.is_empty() {
        s.id = uuid::Uuid::now_v7().to_string();
    } else {
        match r.responses.silence(&s.id).await? {
            None => return Err(ApiError::not_found(format!("no silence with id {}", s.id))),
            Some(old) if old.state(now) == SilenceState::Expired => {
                return Err(ApiError::bad_request("invalid_silence", "silence is expired and cannot be updated"));
            }
            Some(_) => {}
        }
    }
    s.status = None;
    s.updated_at = Some(now.to_jiff());
    r.responses.put_silence(&s, now).await?;
    tracing::info!(silence = %s.id, by = %admin.0.name, "silence saved");
    r.driver.wake();
    Ok(Json(api::SilenceCreated { silence_id: s.id }))
}

async fn get_silence(State(state): State<AppState>, _: ReadAccess, Path(id): Path<String>) -> Result<Json<Silence>, ApiError> {
    let s = rs(&state).responses.silence(&id).await?.ok_or_else(|| ApiError::not_found(format!("no silence with id {id}")))?;
    Ok(Json(s.with_status(state.clock.now())))
}

async fn delete_silence(State(state): State<AppState>, _: AdminAccess, Path(id): Path<String>) -> Result<Response, ApiError> {
    let r = rs(&state);
    let now = state.clock.now();
    let mut s = r.responses.silence(&id).await?.ok_or_else(|| ApiError::not_found(format!("no silence with id {id}")))?;
    if s.state(now) == SilenceState::Expired {
        return Err(ApiError::bad_request("invalid_silence", format!("silence {id} already expired")));
    }
    // Alertmanager expires rather than deletes: a pending silence ends before it starts.
    if s.state(now) == SilenceState::Pending {
        s.starts_at = now.to_jiff();
    }
    s.ends_at = now.to_jiff();
    s.updated_at = Some(now.to_jiff());
    r.responses.put_silence(&s, now).await?;
    r.driver.wake();
    Ok(StatusCode::OK.into_response())
}

// ---------------------------------------------------------- status page

async fn view_parts(state: &AppState) -> Result<(Vec<faultline_core::status_page::PublicIncident>, Vec<ScheduledMaintenance>), ApiError> {
    let r = rs(state);
    Ok((r.responses.public_incidents().await?, r.responses.maintenances().await?))
}

macro_rules! with_view {
    ($state:expr, |$v:ident, $now:ident| $body:expr) => {{
        let (incidents, maintenances) = view_parts(&$state).await?;
        let c = &rs(&$state).config;
        let $v = StatusPageView { page: &c.page, components: &c.setup.components, incidents: &incidents, maintenances: &maintenances };
        let $now = $state.clock.now();
        $body
    }};
}

async fn summary(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    with_view!(state, |v, now| Ok(Json(json!(v.summary_json(now)))))
}
async fn status(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    with_view!(state, |v, now| Ok(Json(json!(v.status_json(now)))))
}
async fn components(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    with_view!(state, |v, now| Ok(Json(json!(v.components_doc(now)))))
}
async fn incidents_all(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    with_view!(state, |v, now| Ok(Json(json!(v.incidents_doc(now, false, 50)))))
}
async fn incidents_unresolved(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    with_view!(state, |v, now| Ok(Json(json!(v.incidents_doc(now, true, 50)))))
}
async fn maint_all(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    with_view!(state, |v, now| Ok(Json(json!(v.maintenances_doc(now, &[])))))
}
async fn maint_upcoming(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    with_view!(state, |v, now| Ok(Json(json!(v.maintenances_doc(now, &[MaintenanceStatus::Scheduled])))))
}
async fn maint_active(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    with_view!(state, |v, now| Ok(Json(json!(v.maintenances_doc(now, &[MaintenanceStatus::InProgress, MaintenanceStatus::Verifying])))))
}

async fn atom(State(state): State<AppState>) -> Result<Response, ApiError> {
    with_view!(state, |v, _now| Ok(([(header::CONTENT_TYPE, "application/atom+xml; charset=utf-8")], v.render_atom(50)).into_response()))
}

async fn status_html(State(state): State<AppState>) -> Result<Html<String>, ApiError> {
    with_view!(state, |v, now| {
        let s = v.summary_json(now);
        let all = v.incidents_doc(now, false, 20);
        let mut h = String::new();
        h.push_str("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">");
        h.push_str(&format!("<title>{} status</title>", xml(&s.page.name)));
        h.push_str("<style>body{font-family:system-ui,sans-serif;max-width:48rem;margin:2rem auto;padding:0 1rem}.c{display:flex;justify-content:space-between;border-bottom:1px solid #ddd;padding:.5rem 0}.operational{color:#1a7f37}.degraded_performance{color:#9a6700}.partial_outage{color:#bc4c00}.major_outage{color:#cf222e}.under_maintenance{color:#0969da}</style></head><body>");
        h.push_str(&format!("<h1>{}</h1><p class=\"indicator\"><strong>{}</strong></p>", xml(&s.page.name), xml(&s.status.description)));
        h.push_str("<h2>Components</h2>");
        for c in &s.components {
            let st = c.status.as_str();
            h.push_str(&format!("<div class=\"c\"><span>{}</span><span class=\"{st}\">{}</span></div>", xml(&c.name), st.replace('_', " ")));
        }
        if !s.scheduled_maintenances.is_empty() {
            h.push_str("<h2>Scheduled maintenance</h2>");
            for m in &s.scheduled_maintenances {
                h.push_str(&format!("<p><strong>{}</strong> {} – {}</p>", xml(&m.name), xml(&m.scheduled_for), xml(&m.scheduled_until)));
            }
        }
        h.push_str("<h2>Incidents</h2>");
        if all.incidents.is_empty() {
            h.push_str("<p>No incidents reported.</p>");
        }
        for i in &all.incidents {
            h.push_str(&format!("<h3>{} <small>({})</small></h3>", xml(&i.name), i.status.as_str()));
            for u in &i.incident_updates {
                h.push_str(&format!("<p><small>{}</small> <strong>{}</strong> – {}</p>", xml(&u.created_at), u.status.as_str(), xml(&u.body)));
            }
        }
        h.push_str("<p><a href=\"/history.atom\">Atom feed</a> · <a href=\"/api/v2/summary.json\">summary.json</a></p></body></html>");
        Ok(Html(h))
    })
}

/// A public subscription (no token, as on Statuspage). What keeps it from
/// being abused: the endpoint must be http(s) and, unless the server allows
/// private targets, must not name a private, loopback, link-local, … address
/// (422; a host name is checked again after resolution when sending); new
/// subscriptions take from a per-client budget and a global one (429 with
/// Retry-After; the client is the connection's peer, or whom a trusted
/// proxy names: `client_ip`); and live subscribers are capped (409).
async fn subscribe(State(state): State<AppState>, ClientIp(client): ClientIp, ApiJson(body): ApiJson<api::SubscribeRequest>) -> Result<Response, ApiError> {
    let r = rs(&state);
    let limits = &r.subscribers;
    if body.endpoint.len() > 2000 {
        return Err(invalid("endpoint: must be an http(s) URL of at most 2000 characters"));
    }
    match target::check_url(&body.endpoint, limits.allow_private_targets) {
        Ok(_) => {}
        Err(e @ target::TargetError::Blocked(_)) => {
            return Err(invalid(format!("endpoint {e}: this server does not send to private, loopback, link-local or other non-public addresses")));
        }
        Err(e) => return Err(invalid(format!("endpoint {e}"))),
    }
    let now = state.clock.now();
    // Invariant: the lock is never held across an await or a panic point.
    let budget = r.creations.lock().unwrap_or_else(std::sync::PoisonError::into_inner).admit(Source::of(client), now);
    if let Err(refused) = budget {
        let (wait_secs, message) = match refused {
            Refused::Source { wait_secs } => (
                wait_secs,
                format!("too many new subscriptions from your address (at most {} a minute); retry in {wait_secs} s", limits.creations_per_source_per_minute),
            ),
            Refused::Global { wait_secs } => {
                (wait_secs, format!("too many new subscriptions (at most {} a minute from everyone); retry in {wait_secs} s", limits.creations_per_minute))
            }
        };
        let mut resp = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message).into_response();
        resp.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from(wait_secs));
        return Ok(resp);
    }
    let s = Subscriber { id: uuid::Uuid::now_v7().to_string(), kind: "webhook".into(), target: body.endpoint, created_at: now, unsubscribed_at: None };
    if !r.responses.add_subscriber_within(&s, limits.max_subscribers).await? {
        tracing::warn!(max = limits.max_subscribers, "status-page subscriber refused: the subscriber limit is reached");
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "subscriber_limit",
            format!("this status page already has the most subscribers it takes ({}); no more can subscribe", limits.max_subscribers),
        ));
    }
    // The endpoint may carry a token: it is never logged, only the id.
    tracing::info!(subscriber = %s.id, "status-page subscriber added");
    let created = api::SubscriberCreated { subscriber: api::SubscriberView { id: s.id, mode: "webhook".into(), created_at: s.created_at.to_string() } };
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

async fn unsubscribe(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    if rs(&state).responses.unsubscribe(&id, state.clock.now()).await? {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError::not_found(format!("no subscriber with id {id}")))
    }
}

async fn drafts(State(state): State<AppState>, _: ReadAccess) -> Result<Json<api::DraftList>, ApiError> {
    let d = rs(&state).responses.drafts().await?;
    Ok(Json(api::DraftList {
        drafts: d
            .iter()
            .map(|d| api::Draft {
                incident_id: d.incident.to_string(),
                created_at: d.created_at.to_string(),
                status: d.draft.status.as_str().to_owned(),
                impact: impact_str(d.draft.impact),
                body: d.draft.body.clone(),
                components: d.draft.components.iter().map(|(c, s)| (c.clone(), s.as_str().to_owned())).collect(),
            })
            .collect(),
    }))
}

fn impact_str(i: faultline_core::status_page::Impact) -> String {
    serde_json::to_value(i).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

/// The comms lead approves (or edits) a draft: it is published, subscribers
/// are notified through the outbox in the same transaction, and the
/// incident's timeline records who published what.
async fn publish_draft(
    State(state): State<AppState>,
    admin: AdminAccess,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<api::PublishRequest>,
) -> Result<Json<api::Published>, ApiError> {
    let id = super::incidents::resolve_id(state.store.as_ref(), &id).await?;
    let r = rs(&state);
    let draft = r.responses.draft(id).await?.ok_or_else(|| ApiError::not_found(format!("no draft for incident {id}")))?;
    if let Some(b) = &body.body {
        check_update_body(b)?;
    }
    let (incident, _) = state.store.incident(id).await?.ok_or_else(|| ApiError::not_found(format!("no incident with id {id}")))?;
    let previous = r.responses.public_incident_for(id).await?;
    let how = if body.body.is_some() { "published with edits" } else { "published as drafted" };
    // A person's words either way: the draft's text when approved as is.
    let words = body.body.as_deref().unwrap_or(&draft.draft.body);
    publish_as_person(&state, &admin, &incident, previous, &draft.draft, words, how).await
}

fn check_update_body(b: &str) -> Result<(), ApiError> {
    if b.trim().is_empty() || b.chars().count() > 10_000 { Err(invalid("body: must be 1 to 10000 characters")) } else { Ok(()) }
}

/// Publishes `draft` with a person's `words`, answers 409 when another
/// publish of the incident won the race, and notes who published what on
/// the timeline.
async fn publish_as_person(
    state: &AppState,
    admin: &AdminAccess,
    incident: &faultline_core::Incident,
    previous: Option<faultline_core::status_page::PublicIncident>,
    draft: &faultline_core::status_page::DraftUpdate,
    words: &str,
    how: &str,
) -> Result<Json<api::Published>, ApiError> {
    let id = incident.id;
    let now = state.clock.now();
    let p = match rs(state).driver.publish_status(incident, previous, draft, Some(words), now).await {
        Err(faultline_store::StoreError::StatusPageConflict { .. }) => {
            // Another publish of this incident (automatic, or another
            // person's) was written while this one was prepared: nothing was
            // published, so no update id is reused and nothing overwritten.
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                format!(
                    "another status-page update of incident {id} was published meanwhile; nothing was published: check the status page and the drafts, then publish again if still needed"
                ),
            ));
        }
        other => other?,
    };
    // What the public was told, on the timeline (for the review), bounded.
    let told: String = words.chars().take(500).collect();
    let ellipsis = if told.len() < words.len() { "…" } else { "" };
    let text = format!("{} — said: \"{told}{ellipsis}\"", status_note(&p, how));
    let note = Command::Record(IncidentEvent::SystemNote { component: "status_page".into(), text });
    let actor: Actor = admin.actor();
    if let Err(e) = commands::execute(state.store.as_ref(), id, note, actor, now).await {
        // The update is public already; a missing note is logged, not a failure.
        tracing::warn!(incident = %id, error = %e, "status-page publish not noted on the timeline");
    }
    tracing::info!(incident = %id, by = %admin.0.name, subscribers = p.subscriber_notifications, "status-page update published");
    Ok(Json(api::Published {
        published: api::PublishedUpdate {
            id: p.public.id.clone(),
            status: p.public.status.as_str().to_owned(),
            update_id: p.update_id,
            subscriber_notifications: p.subscriber_notifications as u64,
        },
    }))
}

/// `POST /api/v1/incidents/{id}/status-updates`: the comms lead's own
/// update — chosen status, free text, component impact, optionally the
/// public title — published at once, whether or not anything changed since
/// the last one.
async fn post_status_update(
    State(state): State<AppState>,
    admin: AdminAccess,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<api::StatusUpdateRequest>,
) -> Result<Json<api::Published>, ApiError> {
    let id = super::incidents::resolve_id(state.store.as_ref(), &id).await?;
    check_update_body(&body.body)?;
    let status = body.status.as_deref().map(str::parse::<PublicIncidentStatus>).transpose().map_err(invalid)?;
    let mut given = std::collections::BTreeMap::new();
    for (component, s) in &body.components {
        given.insert(component.clone(), s.parse::<ComponentStatus>().map_err(|e| invalid(format!("components.{component}: {e}")))?);
    }
    if let Some(title) = body.title {
        match commands::execute(state.store.as_ref(), id, Command::ChangePublicTitle { title }, admin.actor(), state.clock.now()).await {
            Ok(_) | Err(faultline_store::StoreError::Invalid(faultline_core::incident::TransitionError::Unchanged(_))) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let r = rs(&state);
    let (incident, timeline) = state.store.incident(id).await?.ok_or_else(|| ApiError::not_found(format!("no incident with id {id}")))?;
    let facts = r.driver.setup().facts(&incident, &timeline);
    let impact = ImpactFacts { incident: &incident, impacted_flows: &facts.impacted_flows, impacted_services: &facts.services, origin_identified: false };
    let previous = r.responses.public_incident_for(id).await?;
    let draft = comms_update(&r.config.setup.components, &impact, previous.as_ref(), status, &given, &body.body).map_err(invalid)?;
    publish_as_person(&state, &admin, &incident, previous, &draft, &body.body, "posted by the comms lead").await
}

async fn discard_draft(State(state): State<AppState>, _: AdminAccess, Path(id): Path<String>) -> Result<Response, ApiError> {
    let id = super::incidents::resolve_id(state.store.as_ref(), &id).await?;
    if rs(&state).responses.delete_draft(id).await? {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError::not_found(format!("no draft for incident {id}")))
    }
}

async fn create_maintenance(State(state): State<AppState>, _: AdminAccess, ApiJson(b): ApiJson<api::MaintenanceRequest>) -> Result<Response, ApiError> {
    let from = Timestamp::parse_rfc3339(&b.scheduled_for).map_err(|e| invalid(format!("scheduled_for: {e}")))?;
    let until = Timestamp::parse_rfc3339(&b.scheduled_until).map_err(|e| invalid(format!("scheduled_until: {e}")))?;
    if until <= from {
        return Err(invalid("scheduled_until must be after scheduled_for"));
    }
    if b.name.trim().is_empty() || b.name.chars().count() > 200 {
        return Err(invalid("name: must be 1 to 200 characters"));
    }
    let known = &rs(&state).config.setup.components;
    if let Some(bad) = b.component_ids.iter().find(|c| !known.iter().any(|k| &k.id == *c)) {
        return Err(invalid(format!("component_ids: unknown component {bad:?}")));
    }
    let m = ScheduledMaintenance {
        id: uuid::Uuid::now_v7().to_string(),
        name: b.name,
        scheduled_for: from,
        scheduled_until: until,
        component_ids: b.component_ids,
        body: b.body,
        manual_status: None,
        created_at: state.clock.now(),
    };
    rs(&state).responses.put_maintenance(&m).await?;
    Ok((StatusCode::CREATED, Json(api::Created { id: m.id })).into_response())
}
