//! Generic webhook channel: the body Alertmanager's webhook receiver sends
//! (`version: "4"`, `groupKey`, `status`, `receiver`, `groupLabels`,
//! `commonLabels`, `commonAnnotations`, `externalURL`, `alerts[]`), so any
//! tool that consumes Alertmanager webhooks consumes Faultline's. One
//! notification is one group with one alert: the incident.
//!
//! Not here: sending (`Sender::send`) or retries (the worker).

use serde_json::{Value, json};

use super::{Message, MessageKind};

/// Alertmanager's zero time for an alert that has not ended.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

pub fn body(receiver: &str, msg: &Message) -> Value {
    let status = match msg.kind {
        MessageKind::Resolve => "resolved",
        MessageKind::Trigger | MessageKind::Acknowledge | MessageKind::Update => "firing",
    };
    let mut labels = msg.labels.clone();
    labels.insert("alertname".into(), msg.title.clone());
    labels.insert("severity".into(), msg.severity.clone());
    labels.insert("incident_id".into(), msg.incident.to_string());
    let mut annotations = serde_json::Map::new();
    annotations.insert("summary".into(), json!(msg.title));
    if let Some(s) = &msg.summary {
        annotations.insert("description".into(), json!(s));
    }
    annotations.insert("faultline_kind".into(), json!(msg.kind.as_str()));
    if let Some(r) = &msg.recipient {
        annotations.insert("recipient".into(), json!(r));
    }
    if let (Some(l), Some(r)) = (msg.level, msg.round) {
        annotations.insert("escalation".into(), json!(format!("level {l} round {r}")));
    }
    if let Some(c) = &msg.change {
        annotations.insert("faultline_change".into(), json!(c));
    }
    if let Some(u) = &msg.ack_url {
        annotations.insert("faultline_ack_url".into(), json!(u));
    }
    let ends_at = if msg.kind == MessageKind::Resolve { msg.at.to_string() } else { ZERO_TIME.to_owned() };
    json!({
        "version": "4",
        "groupKey": format!("{{}}:{{incident_id=\"{}\"}}", msg.incident),
        "truncatedAlerts": 0,
        "status": status,
        "receiver": receiver,
        "groupLabels": {"incident_id": msg.incident.to_string()},
        "commonLabels": labels,
        "commonAnnotations": annotations,
        "externalURL": msg.url.clone().unwrap_or_default(),
        "alerts": [{
            "status": status,
            "labels": labels,
            "annotations": annotations,
            "startsAt": msg.opened_at.to_string(),
            "endsAt": ends_at,
            "generatorURL": msg.url.clone().unwrap_or_default(),
            "fingerprint": msg.incident_key,
        }],
    })
}
