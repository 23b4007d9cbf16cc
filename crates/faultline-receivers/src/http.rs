//! OTLP/HTTP (`/v1/traces`, `/v1/metrics`, `/v1/logs`; protobuf or JSON;
//! gzip) and Prometheus remote-write (`/api/v1/write`) as an axum router.
//!
//! Answers follow the OTLP/HTTP spec: 200 with an `Export*ServiceResponse`
//! (partial success when records were rejected) in the request's encoding;
//! 400 with a `google.rpc.Status` body for undecodable payloads; 413 for
//! oversize bodies; 415 for other content types; 429 (queue full) or 503
//! (pipeline stopped) with `Retry-After`; 401 without a valid ingest token
//! (`Authorization: Bearer`, or Basic with the token as the password), 403
//! for a token whose scope is not ingest.
//! Remote-write answers 204, and 503 + Retry-After on backpressure (senders
//! must retry 5xx); 408 when a request, reading its body included, takes
//! longer than `request_timeout`. Not here: decoding itself or the graph.

#![allow(clippy::result_large_err)] // responses are the error type, built once per request

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use opentelemetry_proto::tonic::collector::logs::v1::{ExportLogsPartialSuccess, ExportLogsServiceResponse};
use opentelemetry_proto::tonic::collector::metrics::v1::{ExportMetricsPartialSuccess, ExportMetricsServiceResponse};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTracePartialSuccess, ExportTraceServiceResponse};
use prost::Message;

use crate::auth::RefusalKind;
use crate::ingest::{Batch, Ingest};
use crate::{DecodeError, Encoding, PartialSuccess, decode_otlp_logs, decode_otlp_metrics, decode_otlp_traces, gunzip};

/// `google.rpc.Status` (the OTLP/HTTP error body).
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
    #[prost(message, repeated, tag = "3")]
    pub details: Vec<ProtoAny>,
}

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct ProtoAny {
    #[prost(string, tag = "1")]
    pub type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

/// gRPC codes used in error bodies.
const INVALID_ARGUMENT: i32 = 3;
const DEADLINE_EXCEEDED: i32 = 4;
const RESOURCE_EXHAUSTED: i32 = 8;
const PERMISSION_DENIED: i32 = 7;
const UNAVAILABLE: i32 = 14;
const UNAUTHENTICATED: i32 = 16;

impl Ingest {
    /// The ingest routes: `POST /v1/traces`, `/v1/metrics`, `/v1/logs`,
    /// `/api/v1/write`. Mount with `Router::merge`; the body limit applies to
    /// these routes only.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/v1/traces", post(traces))
            .route("/v1/metrics", post(metrics))
            .route("/v1/logs", post(logs))
            .route("/api/v1/write", post(remote_write))
            // After the sender is known, before its body is read.
            .route_layer(axum::middleware::from_fn_with_state(self.clone(), admit_body))
            // Before the body is read: a stranger's body is never buffered.
            .route_layer(axum::middleware::from_fn_with_state(self.clone(), authenticate))
            .layer(DefaultBodyLimit::max(self.shared.cfg.max_body_bytes))
            .layer(
                tower::ServiceBuilder::new()
                    .layer(axum::error_handling::HandleErrorLayer::new(|_: tower::BoxError| async {
                        error(
                            StatusCode::REQUEST_TIMEOUT,
                            Encoding::Json,
                            DEADLINE_EXCEEDED,
                            "request took too long (the body arrived too slowly)".into(),
                            None,
                        )
                    }))
                    .timeout(self.shared.cfg.request_timeout),
            )
            .with_state(self.clone())
    }
}

fn error(status: StatusCode, enc: Encoding, code: i32, message: String, retry_after: Option<u32>) -> Response {
    let mut resp = match enc {
        Encoding::Protobuf => {
            (status, [(header::CONTENT_TYPE, "application/x-protobuf")], RpcStatus { code, message, details: vec![] }.encode_to_vec()).into_response()
        }
        Encoding::Json => (status, axum::Json(serde_json::json!({ "code": code, "message": message }))).into_response(),
    };
    if let Some(s) = retry_after {
        resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(s));
    }
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    resp
}

/// The body's encoding from its Content-Type (JSON only for OTLP).
fn encoding_of(headers: &HeaderMap, otlp: bool) -> Option<Encoding> {
    let ctype = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let mime = ctype.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match mime.as_str() {
        "application/x-protobuf" | "application/protobuf" => Some(Encoding::Protobuf),
        "application/json" if otlp => Some(Encoding::Json),
        _ => None,
    }
}

/// Asks the authenticator (`auth`) about the sender's credential before
/// the handler reads the body; a refusal is answered in the request's encoding.
async fn authenticate(State(ingest): State<Ingest>, req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let (signal, otlp) = signal_of(req.uri().path());
    let Err(refusal) = ingest.shared.cfg.auth.check(req.headers().get(header::AUTHORIZATION).map(HeaderValue::as_bytes)).await else {
        return next.run(req).await;
    };
    let (status, code, outcome) = match refusal.kind {
        RefusalKind::Unauthenticated => (StatusCode::UNAUTHORIZED, UNAUTHENTICATED, "unauthorized"),
        RefusalKind::Forbidden => (StatusCode::FORBIDDEN, PERMISSION_DENIED, "forbidden"),
        RefusalKind::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, UNAVAILABLE, "unavailable"),
    };
    ingest.shared.metrics.request("http", signal, outcome);
    let retry = (status == StatusCode::SERVICE_UNAVAILABLE).then_some(ingest.shared.cfg.retry_after_secs);
    error(status, encoding_of(req.headers(), otlp).unwrap_or(Encoding::Json), code, refusal.message, retry)
}

/// Reserves the request's announced body under the bytes-in-flight budget
/// (`inflight`) for as long as it is handled; past the budget it is
/// answered as backpressure (429 for OTLP, 503 for remote-write, with
/// Retry-After) before its body is read.
async fn admit_body(State(ingest): State<Ingest>, req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let (signal, otlp) = signal_of(req.uri().path());
    let n = crate::inflight::announced(req.headers(), ingest.shared.cfg.max_body_bytes);
    let Some(_held) = ingest.shared.cfg.bodies.try_reserve(n) else {
        return in_flight_refusal(&ingest, signal, encoding_of(req.headers(), otlp).unwrap_or(Encoding::Json), otlp);
    };
    next.run(req).await
}

fn signal_of(path: &str) -> (&'static str, bool) {
    match path {
        "/v1/traces" => ("traces", true),
        "/v1/metrics" => ("metrics", true),
        "/v1/logs" => ("logs", true),
        _ => ("remote_write", false),
    }
}

fn in_flight_refusal(ingest: &Ingest, signal: &str, enc: Encoding, otlp: bool) -> Response {
    ingest.shared.metrics.request("http", signal, "backpressure");
    let status = if otlp { StatusCode::TOO_MANY_REQUESTS } else { StatusCode::SERVICE_UNAVAILABLE };
    error(status, enc, RESOURCE_EXHAUSTED, "too many request bytes in flight; retry later".into(), Some(ingest.shared.cfg.retry_after_secs))
}

/// Reserves what a body decompressed to, beside its announced size.
fn hold_decoded(ingest: &Ingest, signal: &str, enc: Encoding, otlp: bool, n: usize) -> Result<Option<crate::inflight::Reservation>, Response> {
    if n == 0 {
        return Ok(None);
    }
    ingest.shared.cfg.bodies.try_reserve(n).map(Some).ok_or_else(|| in_flight_refusal(ingest, signal, enc, otlp))
}

/// Checks the content type and encoding (the sender was authenticated by
/// `authenticate`), and returns the decoded-ready body.
fn prepare(
    ingest: &Ingest,
    signal: &str,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    otlp: bool,
) -> Result<(Encoding, Bytes, Option<crate::inflight::Reservation>), Response> {
    let m = &ingest.shared.metrics;
    let ctype = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let enc = encoding_of(headers, otlp);
    let err_enc = enc.unwrap_or(Encoding::Json);
    let Some(enc) = enc else {
        m.request("http", signal, "unsupported_media_type");
        let want = if otlp { "application/x-protobuf or application/json" } else { "application/x-protobuf" };
        return Err(error(StatusCode::UNSUPPORTED_MEDIA_TYPE, err_enc, INVALID_ARGUMENT, format!("unsupported Content-Type {ctype:?}: send {want}"), None));
    };
    let body = match body {
        Ok(b) => b,
        Err(rej) => {
            let status = rej.status();
            let outcome = if status == StatusCode::PAYLOAD_TOO_LARGE { "too_large" } else { "bad_payload" };
            m.request("http", signal, outcome);
            let msg = if status == StatusCode::PAYLOAD_TOO_LARGE {
                format!("request body larger than {} bytes", ingest.shared.cfg.max_body_bytes)
            } else {
                format!("could not read the request body: {rej}")
            };
            return Err(error(status, enc, INVALID_ARGUMENT, msg, None));
        }
    };
    let coding = headers.get(header::CONTENT_ENCODING).and_then(|v| v.to_str().ok()).unwrap_or("identity");
    let coding = coding.trim().to_ascii_lowercase();
    let (body, held) = match coding.as_str() {
        "gzip" if otlp => match gunzip(&body, ingest.shared.cfg.max_decoded_bytes) {
            Ok(b) => {
                let held = hold_decoded(ingest, signal, enc, otlp, b.len())?;
                (Bytes::from(b), held)
            }
            Err(e) => return Err(bad(ingest, signal, enc, &e)),
        },
        "identity" | "" if otlp => (body, None),
        "snappy" if !otlp => (body, None),
        _ => {
            m.request("http", signal, "unsupported_media_type");
            return Err(error(StatusCode::UNSUPPORTED_MEDIA_TYPE, enc, INVALID_ARGUMENT, format!("unsupported Content-Encoding {coding:?}"), None));
        }
    };
    Ok((enc, body, held))
}

fn bad(ingest: &Ingest, signal: &str, enc: Encoding, e: &DecodeError) -> Response {
    let too_large = matches!(e, DecodeError::TooLarge { .. });
    ingest.shared.metrics.request("http", signal, if too_large { "too_large" } else { "bad_payload" });
    let status = if too_large { StatusCode::PAYLOAD_TOO_LARGE } else { StatusCode::BAD_REQUEST };
    error(status, enc, INVALID_ARGUMENT, e.to_string(), None)
}

/// Queues a batch; on a full or closed queue answers with a retryable error.
fn enqueue(ingest: &Ingest, signal: &str, enc: Encoding, batch: Batch, remote_write: bool) -> Result<(), Response> {
    let retry = ingest.shared.cfg.retry_after_secs;
    match ingest.offer(batch) {
        Ok(()) => Ok(()),
        Err(full) => {
            let m = &ingest.shared.metrics;
            m.request("http", signal, if full { "backpressure" } else { "unavailable" });
            let (status, code, msg) = if full && !remote_write {
                (StatusCode::TOO_MANY_REQUESTS, RESOURCE_EXHAUSTED, "ingest queue is full; retry later")
            } else if full {
                (StatusCode::SERVICE_UNAVAILABLE, RESOURCE_EXHAUSTED, "ingest queue is full; retry later")
            } else {
                (StatusCode::SERVICE_UNAVAILABLE, UNAVAILABLE, "ingest pipeline is not running")
            };
            Err(error(status, enc, code, msg.into(), Some(retry)))
        }
    }
}

fn ok_response<M: Message + serde::Serialize>(enc: Encoding, msg: &M) -> Response {
    match enc {
        Encoding::Protobuf => (StatusCode::OK, [(header::CONTENT_TYPE, "application/x-protobuf")], msg.encode_to_vec()).into_response(),
        Encoding::Json => (StatusCode::OK, axum::Json(msg)).into_response(),
    }
}

fn partial(p: &PartialSuccess) -> Option<(i64, String)> {
    (p.rejected > 0 || !p.message.is_empty()).then(|| (p.rejected, p.message.clone()))
}

async fn traces(State(ingest): State<Ingest>, headers: HeaderMap, body: Result<Bytes, BytesRejection>) -> Response {
    let (enc, body, _decoded) = match prepare(&ingest, "traces", &headers, body, true) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let decoded = match decode_otlp_traces(&body, enc) {
        Ok(d) => d,
        Err(e) => return bad(&ingest, "traces", enc, &e),
    };
    let n = decoded.spans.len() as u64;
    let rejected = decoded.rejected;
    if n > 0 {
        let spans = decoded.spans.into_iter().map(|s| s.into_owned()).collect();
        if let Err(r) = enqueue(&ingest, "traces", enc, Batch::Spans(spans), false) {
            return r;
        }
    }
    let m = &ingest.shared.metrics;
    m.request("http", "traces", "ok");
    m.records("traces", "accepted", n);
    m.records("traces", "rejected", rejected.rejected.max(0) as u64);
    let resp = ExportTraceServiceResponse {
        partial_success: partial(&rejected).map(|(rejected_spans, error_message)| ExportTracePartialSuccess { rejected_spans, error_message }),
    };
    ok_response(enc, &resp)
}

async fn metrics(State(ingest): State<Ingest>, headers: HeaderMap, body: Result<Bytes, BytesRejection>) -> Response {
    let (enc, body, _decoded) = match prepare(&ingest, "metrics", &headers, body, true) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let decoded = match decode_otlp_metrics(&body, enc) {
        Ok(d) => d,
        Err(e) => return bad(&ingest, "metrics", enc, &e),
    };
    let n = decoded.points.len() as u64;
    if n > 0
        && let Err(r) = enqueue(&ingest, "metrics", enc, Batch::Metrics(decoded.points), false)
    {
        return r;
    }
    let m = &ingest.shared.metrics;
    m.request("http", "metrics", "ok");
    m.records("metrics", "accepted", n);
    m.records("metrics", "rejected", decoded.rejected.rejected.max(0) as u64);
    let resp = ExportMetricsServiceResponse {
        partial_success: partial(&decoded.rejected)
            .map(|(rejected_data_points, error_message)| ExportMetricsPartialSuccess { rejected_data_points, error_message }),
    };
    ok_response(enc, &resp)
}

async fn logs(State(ingest): State<Ingest>, headers: HeaderMap, body: Result<Bytes, BytesRejection>) -> Response {
    let (enc, body, _decoded) = match prepare(&ingest, "logs", &headers, body, true) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let decoded = match decode_otlp_logs(&body, enc) {
        Ok(d) => d,
        Err(e) => return bad(&ingest, "logs", enc, &e),
    };
    if !decoded.events.is_empty()
        && let Err(r) = enqueue(&ingest, "logs", enc, Batch::Logs(decoded.events), false)
    {
        return r;
    }
    let m = &ingest.shared.metrics;
    m.request("http", "logs", "ok");
    m.records("logs", "accepted", decoded.records);
    let resp = ExportLogsServiceResponse {
        partial_success: partial(&decoded.rejected)
            .map(|(rejected_log_records, error_message)| ExportLogsPartialSuccess { rejected_log_records, error_message }),
    };
    ok_response(enc, &resp)
}

async fn remote_write(State(ingest): State<Ingest>, headers: HeaderMap, body: Result<Bytes, BytesRejection>) -> Response {
    let (enc, body, _) = match prepare(&ingest, "remote_write", &headers, body, false) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let raw = match crate::unsnappy(&body, ingest.shared.cfg.max_decoded_bytes) {
        Ok(r) => r,
        Err(e) => return bad(&ingest, "remote_write", enc, &e),
    };
    // The compressed body is no longer needed: only the decompressed copy
    // is held (and reserved) from here on.
    drop(body);
    let _decoded = match hold_decoded(&ingest, "remote_write", enc, false, raw.len()) {
        Ok(h) => h,
        Err(r) => return r,
    };
    // Validate here (a bad payload must be answered, not queued); the
    // consumer walks the same bytes again.
    let summary = match crate::scan_remote_write(&raw, |_, _, _| {}) {
        Ok(s) => s,
        Err(e) => return bad(&ingest, "remote_write", enc, &e),
    };
    let n = summary.samples;
    if n > 0
        && let Err(r) = enqueue(&ingest, "remote_write", enc, Batch::RemoteWrite(raw), true)
    {
        return r;
    }
    let m = &ingest.shared.metrics;
    m.request("http", "remote_write", "ok");
    m.records("remote_write", "accepted", n);
    m.records("remote_write", "rejected", summary.rejected.rejected.max(0) as u64);
    StatusCode::NO_CONTENT.into_response()
}
