//! Conversions from domain types (`faultline_core`) to wire types
//! (`faultline_api`). The only place that knows both, so the wire format
//! changes only when this file does.

use faultline_api as api;
use faultline_core::incident::{Incident, TimelineEvent};

pub fn incident(inc: &Incident, timeline: Option<&[TimelineEvent]>) -> api::Incident {
    api::Incident {
        id: inc.id.to_string(),
        title: inc.title.clone(),
        summary: inc.summary.clone(),
        severity: inc.severity.to_string(),
        status: inc.status.to_string(),
        roles: inc.roles.iter().map(|(r, u)| (r.to_string(), u.to_string())).collect(),
        opened_at: inc.opened_at.to_string(),
        acknowledged_at: inc.acknowledged_at.map(|t| t.to_string()),
        mitigated_at: inc.mitigated_at.map(|t| t.to_string()),
        resolved_at: inc.resolved_at.map(|t| t.to_string()),
        updated_at: inc.updated_at.to_string(),
        version: inc.version,
        timeline: timeline.map(|t| t.iter().map(timeline_entry).collect()),
    }
}

pub fn timeline_entry(ev: &TimelineEvent) -> api::TimelineEntry {
    // The event's own fields, without the `type` tag (that is `kind`).
    let mut details = serde_json::to_value(&ev.event).unwrap_or(serde_json::Value::Null);
    if let Some(obj) = details.as_object_mut() {
        obj.remove("type");
    }
    api::TimelineEntry {
        seq: ev.seq,
        at: ev.at.to_string(),
        actor: ev.actor.to_string(),
        kind: ev.event.kind().to_owned(),
        details,
    }
}
