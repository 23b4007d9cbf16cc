//! `GET /api/v1/findings[?active=true]`: the findings in open incidents, each
//! with its evidence (measure, observed value, baseline, threshold, window,
//! and exemplar trace ids of failing or slow calls where spans taught the
//! graph) and the incident it joined. Read from the engine's snapshot; nothing is
//! computed here.

use axum::Json;
use axum::extract::{Query, State};
use faultline_api as api;
use serde::Deserialize;

use super::AppState;
use super::auth::ReadAccess;

#[derive(Debug, Deserialize)]
pub struct FindingsQuery {
    /// Only findings whose condition still holds.
    active: Option<bool>,
}

pub async fn list(State(state): State<AppState>, _: ReadAccess, Query(q): Query<FindingsQuery>) -> Json<api::FindingList> {
    let mut records = state.findings.snapshot();
    if q.active.unwrap_or(false) {
        records.retain(|r| r.active);
    }
    records.sort_by_key(|r| r.finding.started_at);
    Json(api::FindingList {
        findings: records
            .into_iter()
            .map(|r| {
                let f = r.finding;
                api::Finding {
                    kind: f.kind,
                    subject: f.subject.to_string(),
                    failure_model: f.failure_model.to_string(),
                    started_at: f.started_at.to_string(),
                    strength: f.strength,
                    measure: f.evidence.measure,
                    observed: f.evidence.observed,
                    baseline: f.evidence.baseline,
                    threshold: f.evidence.threshold,
                    window_ms: f.evidence.window.as_millis(),
                    exemplar_trace_ids: f.evidence.exemplar_trace_ids,
                    incident: r.incident.map(|i| i.to_string()),
                    active: r.active,
                }
            })
            .collect(),
    })
}
