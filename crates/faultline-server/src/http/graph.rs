//! `/api/v1/graph`, `/api/v1/graph/diff` and `/api/v1/services/{name}`: the
//! dependency graph learned from traces, summed over a time range (RFC 3339
//! or epoch milliseconds; default the last 15 minutes).
//!
//! The JSON is the graph module's own serialisation (`GraphView`,
//! `GraphDiff`, `ServiceView`), a deliberate exception to "wire types live
//! in faultline-api": these are read-only views whose fields are the
//! documented API (`nodes[{name,kind}]`, `edges[{caller,callee,operation,
//! requests,errors,retries,timeouts,p50_ms,p99_ms}]`).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use faultline_core::{Duration, Timestamp};
use serde::Deserialize;

use super::AppState;
use super::auth::ReadAccess;
use super::error::ApiError;

fn parse_time(field: &str, v: Option<&str>, default: Timestamp) -> Result<Timestamp, ApiError> {
    match v {
        None | Some("") => Ok(default),
        Some(s) => match s.parse::<i64>() {
            Ok(ms) => Ok(Timestamp::from_millis(ms)),
            Err(_) => Timestamp::parse_rfc3339(s).map_err(|e| ApiError::bad_request("invalid_query", format!("{field}: {e}"))),
        },
    }
}

#[derive(Debug, Deserialize)]
pub struct RangeQuery {
    from: Option<String>,
    to: Option<String>,
}

fn range(state: &AppState, q: &RangeQuery) -> Result<(Timestamp, Timestamp), ApiError> {
    let now = state.clock.now();
    let to = parse_time("to", q.to.as_deref(), now + Duration::from_secs(1))?;
    let from = parse_time("from", q.from.as_deref(), to - Duration::from_mins(15))?;
    if from >= to {
        return Err(ApiError::bad_request("invalid_query", "from must be before to"));
    }
    Ok((from, to))
}

pub async fn graph(State(state): State<AppState>, _: ReadAccess, Query(q): Query<RangeQuery>) -> Result<Response, ApiError> {
    let (from, to) = range(&state, &q)?;
    Ok(Json(state.ingest.graph_snapshot(from, to)).into_response())
}

#[derive(Debug, Deserialize)]
pub struct DiffQuery {
    a_from: String,
    a_to: String,
    b_from: String,
    b_to: String,
}

pub async fn diff(
    State(state): State<AppState>,
    _: ReadAccess,
    q: Result<Query<DiffQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = q.map_err(|e| super::error::query_problem(&e))?;
    let now = state.clock.now();
    let a = (parse_time("a_from", Some(&q.a_from), now)?, parse_time("a_to", Some(&q.a_to), now)?);
    let b = (parse_time("b_from", Some(&q.b_from), now)?, parse_time("b_to", Some(&q.b_to), now)?);
    Ok(Json(state.ingest.graph_diff(a, b)).into_response())
}

pub async fn service(State(state): State<AppState>, _: ReadAccess, Path(name): Path<String>, Query(q): Query<RangeQuery>) -> Result<Response, ApiError> {
    let (from, to) = range(&state, &q)?;
    match state.ingest.service(&name, from, to) {
        Some(view) => Ok(Json(view).into_response()),
        None => Err(ApiError::not_found(format!("no service named {name:?} seen between {from} and {to}"))),
    }
}
