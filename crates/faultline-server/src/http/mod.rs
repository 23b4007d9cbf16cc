//! The HTTP API: `router(state)` builds every route with its middleware
//! (metrics, request timeout, body limit) and JSON errors everywhere, including
//! unknown routes and wrong methods.
//!
//! Route map (all under `/api/v1` need a token; see `http::auth`):
//! `GET /healthz` (process alive), `GET /readyz` (database answers and takes writes),
//! `GET /metrics` (Prometheus text), `http::incidents`, and the alert ingest
//! endpoints of `http::alerts` (`/api/v2/alerts`, `/v2/enqueue`, …), which
//! need an ingest or admin token unless `ingest_auth = "none"`.
//! Not here: business rules (core) or SQL (store).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use faultline_store::Store;
use tower::ServiceBuilder;

use crate::clock::Clock;
use crate::metrics::{Metrics, RequestLabels};

pub mod ack;
pub mod alerts;
pub mod auth;
pub mod client_ip;
pub mod convert;
pub mod error;
pub mod findings;
pub mod graph;
pub mod incidents;
pub mod response;
pub mod slos;

use error::ApiError;

/// Everything a handler may touch. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub metrics: Arc<Metrics>,
    pub clock: Arc<dyn Clock>,
    /// The correlation engine's queue.
    pub engine: faultline_engine::EngineHandle,
    /// Findings in open incidents, as the engine last left them.
    pub findings: faultline_engine::FindingsView,
    /// Names of the configured check-ins (`/ping/{check}`).
    pub checks: Arc<std::collections::BTreeSet<String>>,
    /// The live SLO monitors (shared with the engine's detectors).
    pub slos: Arc<Vec<slos::SharedSlo>>,
    /// Telemetry receivers and the live dependency graph.
    pub ingest: faultline_receivers::Ingest,
    /// Whether ingest endpoints need an ingest token (`http::auth::IngestAccess`).
    pub ingest_auth: crate::config::IngestAuthMode,
    /// PagerDuty integration keys that authenticate `/v2/enqueue` by `routing_key`.
    pub pagerduty_routing_keys: Arc<[String]>,
    /// The response workflow: driver, outbox worker, config (http::response).
    pub response: Arc<response::ResponseState>,
    /// Reverse proxies whose `X-Forwarded-For` is believed (`client_ip`).
    pub trusted_proxies: Arc<[ipnet::IpNet]>,
    /// Request bytes being read at once, shared with the ingest routes
    /// (`faultline_receivers::inflight`).
    pub bodies: faultline_receivers::inflight::BodyBudget,
}

pub struct Limits {
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
}

pub fn router(state: AppState, limits: &Limits) -> Router {
    let api = Router::new()
        .route("/incidents", post(incidents::create).get(incidents::list))
        .route("/incidents/{id}", get(incidents::show))
        .route("/incidents/{id}/ack", post(incidents::ack))
        .route("/incidents/{id}/mitigate", post(incidents::mitigate))
        .route("/incidents/{id}/resolve", post(incidents::resolve))
        .route("/incidents/{id}/reopen", post(incidents::reopen))
        .route("/incidents/{id}/severity", post(incidents::change_severity))
        .route("/incidents/{id}/roles", post(incidents::assign_role))
        .route("/incidents/{id}/notes", post(incidents::add_note))
        .route("/incidents/{id}/title", post(incidents::change_title))
        .route("/findings", get(findings::list))
        .route("/slos", get(slos::list))
        .route("/graph", get(graph::graph))
        .route("/graph/diff", get(graph::diff))
        .route("/services/{name}", get(graph::service))
        .route("/alerts", post(alerts::generic))
        .route("/probes/results", post(alerts::probe_results))
        .route("/alerts/alertmanager", post(alerts::alertmanager_webhook));

    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/v2/alerts", post(alerts::alertmanager_v2))
        .route("/v2/enqueue", post(alerts::pagerduty_enqueue))
        .route("/ping/{check}", get(alerts::ping).post(alerts::ping))
        .route("/ping/{check}/{kind}", get(alerts::ping_kind).post(alerts::ping_kind))
        .route("/ack/{token}", get(ack::confirm).post(ack::acknowledge))
        .nest("/api/v1", api)
        .merge(response::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state((state.clone(), limits.max_body_bytes), admit_body))
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(|_: tower::BoxError| async { ApiError::new(StatusCode::REQUEST_TIMEOUT, "timeout", "request took too long") }))
                .timeout(limits.request_timeout),
        )
        .layer(middleware::from_fn_with_state(state.clone(), record_metrics))
        .with_state(state)
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready when the database answers and takes writes: while writes fail
/// (disk full, I/O errors) the store tries a small write on each call, so
/// readiness comes back by itself once one commits.
async fn readyz(State(state): State<AppState>) -> Response {
    match state.store.check_writable().await {
        Ok(()) => "ready\n".into_response(),
        Err(faultline_store::StoreError::Unavailable { reason, message }) => {
            tracing::warn!(reason = reason.as_str(), error = %message, "not ready: database writes are failing");
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", format!("the database cannot take writes ({})", reason.as_str())).into_response()
        }
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", "database is not answering").into_response()
        }
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], state.metrics.render()).into_response()
}

async fn not_found(req: Request) -> ApiError {
    ApiError::not_found(format!("no route for {} {}", req.method(), req.uri().path()))
}

async fn method_not_allowed(req: Request) -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", format!("{} is not allowed on {}", req.method(), req.uri().path()))
}

/// Holds the request's announced body under the shared bytes-in-flight
/// budget while it is handled; past it, 503 `too_many_bytes_in_flight`
/// with Retry-After, before the body is read.
async fn admit_body(State((state, limit)): State<(AppState, usize)>, req: Request, next: Next) -> Response {
    let n = faultline_receivers::inflight::announced(req.headers(), limit);
    let Some(held) = state.bodies.try_reserve(n) else {
        let mut resp =
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "too_many_bytes_in_flight", "too many request bytes are being read; retry shortly").into_response();
        resp.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from_static("1"));
        return resp;
    };
    HELD_BODY.scope(Arc::new(held), next.run(req)).await
}

tokio::task_local! {
    /// The reservation `admit_body` made for the request being handled, for
    /// a handler that hands the request's work on (`alerts::commit` gives a
    /// clone to the engine with the signals). A task-local rather than an
    /// argument: the handler runs inside the middleware's future.
    static HELD_BODY: Arc<faultline_receivers::inflight::Reservation>;
}

/// The current request's reservation of bytes in flight, if it has one.
fn held_body() -> Option<Arc<faultline_receivers::inflight::Reservation>> {
    HELD_BODY.try_with(Arc::clone).ok()
}

async fn record_metrics(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().to_string();
    let route = req.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let resp = next.run(req).await;
    let labels = RequestLabels { method, route, status: resp.status().as_u16() };
    state.metrics.http_requests.get_or_create(&labels).inc();
    state.metrics.http_request_duration.get_or_create(&labels).observe(started.elapsed().as_secs_f64());
    resp
}
