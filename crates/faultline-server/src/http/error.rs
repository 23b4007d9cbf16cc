//! `ApiError`: every failure answered as `{"error": {"code", "message"}}` with
//! the right status, and `ApiJson`, a JSON extractor whose rejections (bad
//! syntax, wrong types, oversize) use the same shape. Bodies are parsed as
//! JSON whatever the `Content-Type` says (Prometheus, curl `-d` and many
//! scripts send none or a form type), and `decode_json` words what is wrong
//! in the sender's terms — the field and the problem, never the parser's
//! vocabulary (`expected ident at line 1 column 2`).
//!
//! Not here: deciding what is an error — handlers and the store do that; this
//! module only maps their typed errors onto HTTP.

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

/// Why a body could not be decoded, worded for the sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonProblem {
    /// Not JSON at all (400).
    Malformed(String),
    /// JSON, but not the expected shape (422): `field: what is wrong`.
    Invalid(String),
}

impl JsonProblem {
    pub fn message(&self) -> &str {
        match self {
            JsonProblem::Malformed(m) | JsonProblem::Invalid(m) => m,
        }
    }
}

impl From<JsonProblem> for ApiError {
    fn from(p: JsonProblem) -> ApiError {
        match p {
            JsonProblem::Malformed(m) => ApiError::bad_request("malformed_json", m),
            JsonProblem::Invalid(m) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", m),
        }
    }
}

/// Decodes `bytes` as `T`, naming the field a data error is in.
pub fn decode_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, JsonProblem> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        problem(bytes, &path, e.into_inner())
    })?;
    // Anything after the document is not JSON either.
    de.end().map_err(|e| problem(bytes, "", e))?;
    Ok(value)
}

fn problem(bytes: &[u8], path: &str, e: serde_json::Error) -> JsonProblem {
    use serde_json::error::Category;
    let at = format!("line {}, column {}", e.line(), e.column());
    match e.classify() {
        Category::Eof if bytes.iter().all(u8::is_ascii_whitespace) => JsonProblem::Malformed("the body is empty; send a JSON document".into()),
        Category::Eof => JsonProblem::Malformed(format!("the body is not valid JSON: it stops before the document is complete ({at})")),
        Category::Syntax | Category::Io => JsonProblem::Malformed(format!("the body is not valid JSON ({at})")),
        Category::Data => {
            let what = plain_data_error(&e.to_string());
            // The path of an unknown field ends in the field itself, which the message names already.
            let path = if what.starts_with("unknown field") { path.rsplit_once('.').map_or("", |(parent, _)| parent) } else { path };
            JsonProblem::Invalid(if path == "." || path.is_empty() { what } else { format!("{path}: {what}") })
        }
    }
}

/// A query-string rejection in the sender's terms (`limit: expected a whole
/// number, found "ten"`), not axum's and serde's wording.
pub fn query_problem(e: &axum::extract::rejection::QueryRejection) -> ApiError {
    let text = e.body_text();
    let detail = text.strip_prefix("Failed to deserialize query string: ").unwrap_or(&text);
    let (field, what) = match detail.split_once(": ") {
        Some((f, w)) if !f.contains(' ') => (Some(f), w),
        _ => (None, detail),
    };
    let what = plain_data_error(what);
    let what = if what == "invalid digit found in string" { "expected a whole number".to_owned() } else { what };
    // An unknown field's message names it already.
    let field = field.filter(|_| !what.starts_with("unknown field"));
    ApiError::bad_request("invalid_query", field.map_or_else(|| format!("query: {what}"), |f| format!("{f}: {what}")))
}

/// serde's data error in plain words: no location suffix, quotes instead of
/// backticks, JSON's names for types (object, list, text, number).
fn plain_data_error(msg: &str) -> String {
    let msg = match msg.rfind(" at line ") {
        Some(i) if msg[i..].contains(" column ") => &msg[..i],
        _ => msg,
    };
    let msg = msg.replace('`', "\"");
    if msg.starts_with("invalid length ") && msg.contains(", expected struct ") {
        // serde reads a list as a struct's fields in order; the sender sent a list where an object belongs.
        return "expected an object, found a list".to_owned();
    }
    let Some(rest) = msg.strip_prefix("invalid type: ").or_else(|| msg.strip_prefix("invalid value: ")) else { return msg };
    let Some((found, expected)) = rest.split_once(", expected ") else { return msg.clone() };
    let found = match found {
        "map" => "an object".to_owned(),
        "sequence" => "a list".to_owned(),
        "null" => "null".to_owned(),
        other => match ["integer ", "floating point ", "boolean "].iter().find_map(|p| other.strip_prefix(p)) {
            // A number or boolean reads as itself, without quotes.
            Some(v) => v.trim_matches('"').to_owned(),
            None => other.strip_prefix("string ").unwrap_or(other).to_owned(),
        },
    };
    let expected = match expected {
        "a sequence" => "a list",
        "a map" => "an object",
        "a string" => "text",
        e if e.starts_with("struct ") || e.starts_with("a map") => "an object",
        e if e.starts_with("u8") || e.starts_with("u16") || e.starts_with("u32") || e.starts_with("u64") || e.starts_with("i32") || e.starts_with("i64") => {
            "a whole number"
        }
        "f64" | "f32" => "a number",
        e => e,
    };
    format!("expected {expected}, found {found}")
}

/// A JSON body decoded with `decode_json` (any content type), rejections as
/// `ApiError`s.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = body_bytes(req, state).await?;
        Ok(ApiJson(decode_json(&bytes)?))
    }
}

async fn body_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<axum::body::Bytes, ApiError> {
    axum::body::Bytes::from_request(req, state).await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "request body is larger than the configured limit")
        } else {
            ApiError::new(e.status(), "bad_request", "the request body could not be read")
        }
    })
}

/// A body that may be absent: empty means `T::default()`, otherwise it must
/// be valid JSON of `T`.
pub struct OptionalJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = body_bytes(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(T::default()));
        }
        Ok(OptionalJson(decode_json(&bytes)?))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)] // fields are only decoded
    struct Body {
        title: String,
        #[serde(default)]
        limit: Option<u32>,
        #[serde(default)]
        labels: BTreeMap<String, String>,
    }

    #[track_caller]
    fn problem(json: &str) -> JsonProblem {
        decode_json::<Body>(json.as_bytes()).unwrap_err()
    }

    /// What is wrong, in the sender's terms: never the parser's
    /// (`expected ident at line 1 column 2`, backticks, Rust type names).
    #[test]
    fn json_problems_are_worded_for_the_sender() {
        assert_eq!(problem("nope"), JsonProblem::Malformed("the body is not valid JSON (line 1, column 2)".into()));
        assert_eq!(problem(""), JsonProblem::Malformed("the body is empty; send a JSON document".into()));
        assert_eq!(
            problem(r#"{"title": "#),
            JsonProblem::Malformed("the body is not valid JSON: it stops before the document is complete (line 1, column 10)".into())
        );
        assert_eq!(problem(r#"{"title": 5}"#), JsonProblem::Invalid("title: expected text, found 5".into()));
        assert_eq!(problem(r#"{"title": "x", "limit": "ten"}"#), JsonProblem::Invalid("limit: expected a whole number, found \"ten\"".into()));
        assert_eq!(problem(r#"{"title": "x", "labels": [1]}"#), JsonProblem::Invalid("labels: expected an object, found a list".into()));
        assert_eq!(problem(r#"{}"#), JsonProblem::Invalid("missing field \"title\"".into()));
        assert_eq!(problem(r#"[]"#), JsonProblem::Invalid("expected an object, found a list".into()));
        assert_eq!(
            problem(r#"{"title": "x", "colour": 1}"#),
            JsonProblem::Invalid("unknown field \"colour\", expected one of \"title\", \"limit\", \"labels\"".into())
        );
        assert_eq!(problem(r#"{"title": "x"} trailing"#), JsonProblem::Malformed("the body is not valid JSON (line 1, column 16)".into()));
    }
}
