//! `ApiError`: every failure answered as `{"error": {"code", "message"}}` with
//! the right status, and `ApiJson`, a JSON extractor whose rejections (bad
//! syntax, wrong types, oversize, wrong content type) use the same shape.
//!
//! Not here: deciding what is an error — handlers and the store do that; this
//! module only maps their typed errors onto HTTP.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use faultline_api as api;
use faultline_core::incident::TransitionError;
use faultline_store::StoreError;
use serde::de::DeserializeOwned;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into() }
    }
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = api::ErrorBody { error: api::ErrorDetail { code: self.code.to_owned(), message: self.message } };
        let mut resp = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"faultline\""));
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            // Every 503 is "retry later": say when, so clients back off.
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        resp
    }
}

impl From<TransitionError> for ApiError {
    fn from(e: TransitionError) -> ApiError {
        match e {
            TransitionError::Invalid { .. } | TransitionError::TooLong { .. } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", e.to_string())
            }
            TransitionError::CorruptTimeline(_) => {
                tracing::error!(error = %e, "corrupt timeline");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "stored incident is corrupt; see server log")
            }
            _ => ApiError::new(StatusCode::CONFLICT, "invalid_transition", e.to_string()),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::NotFound(id) => ApiError::not_found(format!("no incident with id {id}")),
            StoreError::Invalid(t) => t.into(),
            StoreError::Conflict { .. } | StoreError::StatusPageConflict { .. } => ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string()),
            StoreError::AlreadyExists(_) => ApiError::new(StatusCode::CONFLICT, "already_exists", e.to_string()),
            StoreError::Unavailable { reason, .. } => {
                // Logged (with the reason) by the store when it happened.
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store_unavailable",
                    format!("the database cannot take writes ({}); nothing was written, retry later", reason.as_str()),
                )
            }
            StoreError::Open(_) | StoreError::Database(_) | StoreError::Busy(_) => {
                tracing::error!(error = %e, "store error");
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable", "the database is unavailable; retry later")
            }
            StoreError::Corrupt(_) => {
                tracing::error!(error = %e, "corrupt data");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "stored data is corrupt; see server log")
            }
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> ApiError {
        match r {
            JsonRejection::JsonSyntaxError(e) => ApiError::bad_request("malformed_json", format!("malformed JSON: {}", e.body_text())),
            JsonRejection::JsonDataError(e) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", e.body_text()),
            JsonRejection::MissingJsonContentType(_) => {
                ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", "expected Content-Type: application/json")
            }
            JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "request body is larger than the configured limit")
            }
            other => ApiError::new(other.status(), "bad_request", other.body_text()),
        }
    }
}

/// `axum::Json` with `ApiError` rejections.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let axum::Json(v) = axum::Json::<T>::from_request(req, state).await?;
        Ok(ApiJson(v))
    }
}

/// A body that may be absent: empty means `T::default()`, otherwise it must
/// be valid JSON of `T` (content type is not required for these small command
/// bodies, so `curl -X POST` without `-H` works).
pub struct OptionalJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = axum::body::Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "request body is larger than the configured limit")
            } else {
                ApiError::new(e.status(), "bad_request", e.body_text())
            }
        })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(T::default()));
        }
        match serde_json::from_slice::<T>(&bytes) {
            Ok(v) => Ok(OptionalJson(v)),
            Err(e) if e.is_syntax() || e.is_eof() => Err(ApiError::bad_request("malformed_json", format!("malformed JSON: {e}"))),
            Err(e) => Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", e.to_string())),
        }
    }
}
