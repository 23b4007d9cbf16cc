//! `/api/v1/incidents`: declare, list, show, and move incidents through their
//! lifecycle. Every handler is thin: parse, authorise, run one
//! `faultline_core::incident::Command` through `faultline_store::commands`,
//! convert. The rules live in the core state machine, not here.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use faultline_api as api;
use faultline_core::incident::{Command, Incident, IncidentStatus, Role, Severity};
use faultline_core::{IncidentId, UserId};
use faultline_store::{IncidentFilter, commands};
use serde::Deserialize;

use super::AppState;
use super::auth::{AdminAccess, ReadAccess};
use super::convert;
use super::error::{ApiError, ApiJson, OptionalJson};
use crate::metrics::EventLabels;

fn parse_id(s: &str) -> Result<IncidentId, ApiError> {
    s.parse().map_err(|_| ApiError::bad_request("invalid_id", format!("{s:?} is not an incident id (expected a UUID)")))
}

fn parse_severity(s: &str) -> Result<Severity, ApiError> {
    s.parse()
        .map_err(|e: faultline_core::incident::SeverityParseError| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", format!("severity: {e}")))
}

pub async fn create(State(state): State<AppState>, admin: AdminAccess, ApiJson(body): ApiJson<api::CreateIncident>) -> Result<Response, ApiError> {
    let severity = parse_severity(&body.severity)?;
    let now = state.clock.now();
    let opened = Incident::open(&body.title, severity, body.summary.as_deref(), now, admin.actor())?;
    let id = faultline_engine::new_incident_id(now);
    let incident = state.store.create_incident(id, &opened).await?;
    state.metrics.incidents_opened.inc();
    state.metrics.timeline_events.get_or_create(&EventLabels { kind: "opened" }).inc();
    let body = convert::incident(&incident, Some(std::slice::from_ref(&opened)));
    Ok((StatusCode::CREATED, [(header::LOCATION, format!("/api/v1/incidents/{id}"))], Json(body)).into_response())
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    status: Option<String>,
    severity: Option<String>,
    /// `true`: only incidents that are not resolved.
    open: Option<bool>,
    limit: Option<u32>,
}

pub async fn list(
    State(state): State<AppState>,
    _: ReadAccess,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<api::IncidentList>, ApiError> {
    let Query(q) = query.map_err(|e| super::error::query_problem(&e))?;
    let filter = IncidentFilter {
        status: q.status.as_deref().map(str::parse::<IncidentStatus>).transpose().map_err(|e| ApiError::bad_request("invalid_query", e))?,
        severity: q.severity.as_deref().map(parse_severity).transpose()?,
        open_only: q.open.unwrap_or(false),
        limit: q.limit,
        ..IncidentFilter::default()
    };
    let incidents = state.store.list_incidents(&filter).await?;
    Ok(Json(api::IncidentList { incidents: incidents.iter().map(|i| convert::incident(i, None)).collect() }))
}

pub async fn show(State(state): State<AppState>, _: ReadAccess, Path(id): Path<String>) -> Result<Json<api::Incident>, ApiError> {
    let id = parse_id(&id)?;
    let (incident, timeline) = state.store.incident(id).await?.ok_or_else(|| ApiError::not_found(format!("no incident with id {id}")))?;
    Ok(Json(convert::incident(&incident, Some(&timeline))))
}

async fn run(state: &AppState, admin: &AdminAccess, id: &str, command: Command) -> Result<Json<api::Incident>, ApiError> {
    let id = parse_id(id)?;
    let (incident, event) = commands::execute(state.store.as_ref(), id, command, admin.actor(), state.clock.now()).await?;
    state.metrics.timeline_events.get_or_create(&EventLabels { kind: event.event.kind() }).inc();
    if !incident.status.is_open() {
        // The correlator must stop attaching symptoms to it: the next one
        // opens (or reopens) an incident and pages.
        state.engine.incident_resolved(id);
    }
    // Return the full incident with its timeline, as GET does.
    let (incident, timeline) = match state.store.incident(id).await? {
        Some(found) => found,
        None => (incident, vec![event]),
    };
    Ok(Json(convert::incident(&incident, Some(&timeline))))
}

pub async fn ack(State(state): State<AppState>, admin: AdminAccess, Path(id): Path<String>) -> Result<Json<api::Incident>, ApiError> {
    run(&state, &admin, &id, Command::Acknowledge).await
}

pub async fn mitigate(
    State(state): State<AppState>,
    admin: AdminAccess,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<api::TransitionRequest>,
) -> Result<Json<api::Incident>, ApiError> {
    run(&state, &admin, &id, Command::Mitigate { note: body.note }).await
}

pub async fn resolve(
    State(state): State<AppState>,
    admin: AdminAccess,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<api::TransitionRequest>,
) -> Result<Json<api::Incident>, ApiError> {
    run(&state, &admin, &id, Command::Resolve { note: body.note }).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReopenBody {
    reason: String,
}

pub async fn reopen(
    State(state): State<AppState>,
    admin: AdminAccess,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ReopenBody>,
) -> Result<Json<api::Incident>, ApiError> {
    run(&state, &admin, &id, Command::Reopen { reason: body.reason }).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeverityBody {
    severity: String,
    reason: String,
}

pub async fn change_severity(
    State(state): State<AppState>,
    admin: AdminAccess,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<SeverityBody>,
) -> Result<Json<api::Incident>, ApiError> {
    let to = parse_severity(&body.severity)?;
    run(&state, &admin, &id, Command::ChangeSeverity { to, reason: body.reason }).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleBody {
    role: String,
    /// Omit to unassign the role.
    user: Option<String>,
}

pub async fn assign_role(
    State(state): State<AppState>,
    admin: AdminAccess,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RoleBody>,
) -> Result<Json<api::Incident>, ApiError> {
    let role = Role::from(body.role);
    let command = match body.user {
        Some(u) => Command::AssignRole {
            role,
            user: UserId::new(u).map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", format!("user: {e}")))?,
        },
        None => Command::UnassignRole { role },
    };
    run(&state, &admin, &id, command).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoteBody {
    text: String,
}

pub async fn add_note(
    State(state): State<AppState>,
    admin: AdminAccess,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<NoteBody>,
) -> Result<Json<api::Incident>, ApiError> {
    run(&state, &admin, &id, Command::AddNote { text: body.text }).await
}

/// Renames the incident (`title`) or sets its public title (`public: true`);
/// recorded on the timeline as `title_changed` / `public_title_changed`.
pub async fn change_title(
    State(state): State<AppState>,
    admin: AdminAccess,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<api::TitleRequest>,
) -> Result<Json<api::Incident>, ApiError> {
    let command = if body.public { Command::ChangePublicTitle { title: body.title } } else { Command::ChangeTitle { title: body.title } };
    run(&state, &admin, &id, command).await
}
