//! PagerDuty Events API v2 forwarding: `trigger`, `acknowledge` and
//! `resolve` events with `dedup_key` = the incident key, so PagerDuty keeps
//! one alert per Faultline incident however often we (re)send. PagerDuty
//! answers 202 on success, 400 on a malformed event (permanent) and 429 when
//! rate-limited (retried).
//!
//! Not here: sending or retries. The routing key is a `Secret` and appears
//! only in the request body.

use serde_json::{Value, json};

use super::{Message, MessageKind, Secret};

/// PagerDuty's severities from ours.
fn severity(s: &str) -> &'static str {
    match s {
        "SEV1" => "critical",
        "SEV2" => "error",
        _ => "warning",
    }
}

pub fn body(routing_key: &Secret, msg: &Message) -> Value {
    let action = msg.kind.as_str();
    let mut v = json!({
        "routing_key": routing_key.expose(),
        "event_action": action,
        "dedup_key": msg.incident_key,
    });
    if msg.kind == MessageKind::Trigger {
        let summary: String = format!("[{}] {}", msg.severity, msg.title).chars().take(1024).collect();
        v["payload"] = json!({
            "summary": summary,
            "source": "faultline",
            "severity": severity(&msg.severity),
            "timestamp": msg.opened_at.to_string(),
            "component": msg.labels.get("flow").or_else(|| msg.labels.get("origin_service")).cloned().unwrap_or_default(),
            "group": msg.labels.get("team").cloned().unwrap_or_default(),
            "class": msg.labels.get("class").cloned().unwrap_or_default(),
            "custom_details": {"incident_id": msg.incident.to_string(), "status": msg.status, "labels": msg.labels, "summary": msg.summary},
        });
        v["client"] = json!("Faultline");
        if let Some(u) = &msg.url {
            v["client_url"] = json!(u);
            v["links"] = json!([{"href": u, "text": "Incident in Faultline"}]);
        }
    }
    v
}
