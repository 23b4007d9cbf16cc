//! `/api/v1/incidents`: declare, list, show, and move incidents through their
//! lifecycle. Every handler is thin: parse, authorise, run one
//! `faultline_core::incident::Command` through `faultline_store::commands`,
//! convert. The rules live in the core state machine, not here.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use faultline_api as api;
use faultline_core::incident::{Command, DeclaredScope, Incident, IncidentStatus, Role, Severity};
use faultline_core::{FlowName, IncidentId, ServiceName, TeamId, UserId};
use faultline_store::{IncidentFilter, commands};
use serde::Deserialize;

use super::AppState;
use super::auth::{AdminAccess, ReadAccess};
use super::convert;
use super::error::{ApiError, ApiJson, OptionalJson};
use crate::metrics::EventLabels;

/// The incident a path names: its UUID, or its short number (`42`, `#42`,
/// `%2342` in a URL). An unknown number is 404, like an unknown UUID.
pub async fn resolve_id(store: &dyn faultline_store::Store, s: &str) -> Result<IncidentId, ApiError> {
    if let Ok(id) = s.parse() {
        return Ok(id);
    }
    let digits = s.trim().trim_start_matches('#');
    match digits.parse::<u64>() {
        Ok(n) => store.incident_by_number(n).await?.ok_or_else(|| ApiError::not_found(format!("no incident #{n}"))),
        Err(_) => Err(ApiError::bad_request("invalid_id", format!("{s:?} is not an incident id (a UUID, or a number such as #42)"))),
    }
}

/// The API form of incidents, with their short numbers.
pub async fn numbered(store: &dyn faultline_store::Store, mut out: Vec<api::Incident>) -> Result<Vec<api::Incident>, ApiError> {
    let ids: Vec<IncidentId> = out.iter().filter_map(|i| i.id.parse().ok()).collect();
    let numbers = store.incident_numbers(&ids).await?;
    for i in &mut out {
        i.number = i.id.parse().ok().and_then(|id: IncidentId| numbers.get(&id).copied());
    }
    Ok(out)
}

async fn numbered_one(store: &dyn faultline_store::Store, mut one: api::Incident) -> Result<api::Incident, ApiError> {
    if let Ok(id) = one.id.parse::<IncidentId>() {
        one.number = store.incident_numbers(&[id]).await?.get(&id).copied();
    }
    Ok(one)
}

fn parse_severity(s: &str) -> Result<Severity, ApiError> {
    s.parse()
        .map_err(|e: faultline_core::incident::SeverityParseError| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", format!("severity: {e}")))
}

pub async fn create(State(state): State<AppState>, admin: AdminAccess, ApiJson(body): ApiJson<api::CreateIncident>) -> Result<Response, ApiError> {
    let severity = parse_severity(&body.severity)?;
    let scope = declared_scope(&state, &body)?;
    let now = state.clock.now();
    let opened = Incident::declare(&body.title, severity, body.summary.as_deref(), scope, now, admin.actor())?;
    let id = faultline_engine::new_incident_id(now);
    let incident = state.store.create_incident(id, &opened).await?;
    state.metrics.incidents_opened.inc();
    state.metrics.timeline_events.get_or_create(&EventLabels { kind: "opened" }).inc();
    let body = numbered_one(state.store.as_ref(), convert::incident(&incident, Some(std::slice::from_ref(&opened)))).await?;
    Ok((StatusCode::CREATED, [(header::LOCATION, format!("/api/v1/incidents/{id}"))], Json(body)).into_response())
}

/// The declared services, flows and team, each known to the catalogue: a
/// misspelt name would route the incident to nobody (or only the default).
fn declared_scope(state: &AppState, body: &api::CreateIncident) -> Result<DeclaredScope, ApiError> {
    let catalogue = &state.response.config.setup.catalogue;
    let invalid = |msg: String| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", msg);
    let known = |v: Vec<&str>| if v.is_empty() { "none in the catalogue".to_owned() } else { v.join(", ") };
    let mut scope = DeclaredScope::default();
    for s in &body.services {
        let name: ServiceName = s.parse().map_err(|e| invalid(format!("services: {s:?}: {e}")))?;
        if !catalogue.services.iter().any(|c| c.name == name) && !catalogue.flows.iter().any(|f| f.touches(&name)) {
            return Err(invalid(format!("services: unknown service {s:?} (known: {})", known(catalogue.services.iter().map(|c| c.name.as_str()).collect()))));
        }
        scope.services.push(name);
    }
    for f in &body.flows {
        let name: FlowName = f.parse().map_err(|e| invalid(format!("flows: {f:?}: {e}")))?;
        if !catalogue.flows.iter().any(|c| c.name == name) {
            return Err(invalid(format!("flows: unknown flow {f:?} (known: {})", known(catalogue.flows.iter().map(|c| c.name.as_str()).collect()))));
        }
        scope.flows.push(name);
    }
    if let Some(t) = &body.team {
        let team: TeamId = t.parse().map_err(|e| invalid(format!("team: {t:?}: {e}")))?;
        if !catalogue.teams.iter().any(|c| c.id == team) {
            return Err(invalid(format!("team: unknown team {t:?} (known: {})", known(catalogue.teams.iter().map(|c| c.id.as_str()).collect()))));
        }
        scope.team = Some(team);
    }
    Ok(scope)
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    status: Option<String>,
    severity: Option<String>,
    /// `true`: only incidents that are not resolved.
    open: Option<bool>,
    /// Page size (default 100, at most 1000).
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Default and largest page of `GET /api/v1/incidents`.
const DEFAULT_PAGE: u32 = 100;
const MAX_PAGE: u32 = 1000;

/// A listing position as an opaque cursor: the last incident's opened-at
/// (ms) and id, which is the store's listing order (`IncidentFilter::after`).
fn cursor_of(i: &Incident) -> String {
    format!("{}.{}", i.opened_at.as_millis(), i.id)
}

fn parse_cursor(s: &str) -> Result<(faultline_core::Timestamp, IncidentId), ApiError> {
    let bad = || ApiError::bad_request("invalid_query", format!("cursor {s:?} is not a next_cursor from a previous page"));
    let (at, id) = s.split_once('.').ok_or_else(bad)?;
    Ok((faultline_core::Timestamp::from_millis(at.parse().map_err(|_| bad())?), id.parse().map_err(|_| bad())?))
}

pub async fn list(
    State(state): State<AppState>,
    _: ReadAccess,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<api::IncidentList>, ApiError> {
    let Query(q) = query.map_err(|e| super::error::query_problem(&e))?;
    let limit = q.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
    let filter = IncidentFilter {
        status: q.status.as_deref().map(str::parse::<IncidentStatus>).transpose().map_err(|e| ApiError::bad_request("invalid_query", e))?,
        severity: q.severity.as_deref().map(parse_severity).transpose()?,
        open_only: q.open.unwrap_or(false),
        limit: Some(limit),
        after: q.cursor.as_deref().map(parse_cursor).transpose()?,
        ..IncidentFilter::default()
    };
    let incidents = state.store.list_incidents(&filter).await?;
    // A full page may have a next one (at worst the next page is empty).
    let next_cursor = incidents.last().filter(|_| incidents.len() as u32 >= limit).map(cursor_of);
    let incidents = numbered(state.store.as_ref(), incidents.iter().map(|i| convert::incident(i, None)).collect()).await?;
    Ok(Json(api::IncidentList { incidents, next_cursor }))
}

pub async fn show(State(state): State<AppState>, _: ReadAccess, Path(id): Path<String>) -> Result<Json<api::Incident>, ApiError> {
    let id = resolve_id(state.store.as_ref(), &id).await?;
    let (incident, timeline) = state.store.incident(id).await?.ok_or_else(|| ApiError::not_found(format!("no incident with id {id}")))?;
    Ok(Json(numbered_one(state.store.as_ref(), convert::incident(&incident, Some(&timeline))).await?))
}

async fn run(state: &AppState, admin: &AdminAccess, id: &str, command: Command) -> Result<Json<api::Incident>, ApiError> {
    let id = resolve_id(state.store.as_ref(), id).await?;
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
    Ok(Json(numbered_one(state.store.as_ref(), convert::incident(&incident, Some(&timeline))).await?))
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
        Some(u) => {
            let user = UserId::new(&u).map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", format!("user: {e}")))?;
            // A role for someone who does not exist is a role nobody holds.
            // A server that declares no users (no response config) has
            // nobody to check against: roles stay free-form there.
            let users = &state.response.config.users;
            if !users.is_empty() && !users.iter().any(|(known, _)| known == &user) {
                let known = users.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>().join(", ");
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "unknown_user",
                    format!("user: {u:?} is not a user of the response configuration (users: {known})"),
                ));
            }
            Command::AssignRole { role, user }
        }
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
