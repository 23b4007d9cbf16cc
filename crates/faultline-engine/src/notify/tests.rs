//! Unit tests of the channel renderers, error classification, backoff and
//! `Secret` redaction.

use std::collections::BTreeMap;
use std::time::Duration as StdDuration;

use faultline_core::{IncidentId, Timestamp};

use super::worker::RetryPolicy;
use super::*;

fn msg(kind: MessageKind) -> Message {
    let id: IncidentId = "0190a5a4-0000-7000-8000-000000000001".parse().unwrap();
    Message {
        incident: id,
        incident_key: id.to_string(),
        kind,
        title: "Checkout errors".into(),
        severity: "SEV1".into(),
        status: "triggered".into(),
        summary: Some("5xx on checkout".into()),
        recipient: Some("alice".into()),
        address: Some("alice@example.com".into()),
        level: Some(1),
        round: Some(1),
        labels: BTreeMap::from([("team".into(), "payments".into()), ("flow".into(), "checkout".into())]),
        opened_at: Timestamp::from_secs(1_800_000_000),
        at: Timestamp::from_secs(1_800_000_060),
        url: None,
        receiver: "payments-pager".into(),
        change: None,
        ack_url: None,
    }
}

#[test]
fn webhook_body_has_the_alertmanager_v4_shape() {
    let b = webhook::body("ops", &msg(MessageKind::Trigger));
    assert_eq!(b["version"], "4");
    assert_eq!(b["status"], "firing");
    assert_eq!(b["receiver"], "ops");
    assert_eq!(b["alerts"][0]["status"], "firing");
    assert_eq!(b["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
    assert_eq!(b["alerts"][0]["labels"]["team"], "payments");
    assert_eq!(b["commonLabels"]["severity"], "SEV1");
    for k in ["groupKey", "truncatedAlerts", "groupLabels", "commonAnnotations", "externalURL"] {
        assert!(b.get(k).is_some(), "{k}");
    }
    let r = webhook::body("ops", &msg(MessageKind::Resolve));
    assert_eq!((r["status"].as_str(), r["alerts"][0]["endsAt"].as_str()), (Some("resolved"), Some("2027-01-15T08:01:00.000Z")));
}

#[test]
fn slack_body_has_blocks_and_a_text_fallback() {
    let b = slack::body(&msg(MessageKind::Trigger));
    assert!(b["text"].as_str().unwrap().starts_with("[FIRING] SEV1 Checkout errors"));
    let blocks = b["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    assert_eq!(blocks[1]["type"], "section");
    assert!(blocks[1]["text"]["text"].as_str().unwrap().contains("*Paged:* alice"));
}

#[test]
fn pagerduty_events_use_the_incident_as_dedup_key() {
    let key = Secret::new("R0UTING");
    let t = pagerduty::body(&key, &msg(MessageKind::Trigger));
    assert_eq!(t["event_action"], "trigger");
    assert_eq!(t["dedup_key"], "0190a5a4-0000-7000-8000-000000000001");
    assert_eq!(t["payload"]["severity"], "critical");
    assert_eq!(t["payload"]["source"], "faultline");
    let r = pagerduty::body(&key, &msg(MessageKind::Resolve));
    assert_eq!((r["event_action"].as_str(), r["dedup_key"].as_str()), (Some("resolve"), t["dedup_key"].as_str()));
    assert!(r.get("payload").is_none(), "resolve carries no payload");
    let a = pagerduty::body(&key, &msg(MessageKind::Acknowledge));
    assert_eq!(a["event_action"], "acknowledge");
}

#[test]
fn status_codes_are_classified() {
    assert!(classify_status(202, None).is_ok());
    assert!(matches!(classify_status(429, Some(StdDuration::from_secs(3))), Err(SendError::Retryable { retry_after: Some(d), .. }) if d.as_secs() == 3));
    assert!(matches!(classify_status(503, None), Err(SendError::Retryable { .. })));
    assert!(matches!(classify_status(400, None), Err(SendError::Permanent { .. })));
    assert_eq!(classify_status(404, None).unwrap_err().to_string(), "HTTP 404 (permanent)");
}

#[test]
fn backoff_grows_exponentially_within_its_spread_and_cap() {
    let p = RetryPolicy { base: StdDuration::from_secs(1), max_backoff: StdDuration::from_secs(60), ..RetryPolicy::default() };
    for attempt in 1..=10u32 {
        let b = p.backoff(attempt, "k").as_secs_f64();
        let nominal = (2f64.powi(attempt as i32 - 1)).min(60.0);
        assert!(b >= nominal * 0.8 - 1e-9 && b <= nominal * 1.2 + 1e-9, "attempt {attempt}: {b} vs {nominal}");
    }
    assert_eq!(p.backoff(3, "k"), p.backoff(3, "k"), "deterministic");
}

#[test]
fn secrets_never_print() {
    let s = Secret::new("hunter2");
    assert_eq!(format!("{s} {s:?}"), "*** ***");
    let c = Channel { name: "pd".into(), kind: ChannelKind::PagerDuty { routing_key: s, events_url: PAGERDUTY_EVENTS_URL.into() }, max_per_sec: None };
    assert!(!format!("{c:?}").contains("hunter2"));
}

#[test]
fn a_change_and_an_acknowledge_link_reach_every_rendering() {
    let m =
        Message { change: Some("acknowledged by alice".into()), ack_url: Some("https://faultline.example.com/ack/v1.x".into()), ..msg(MessageKind::Update) };
    let w = webhook::body("ops", &m);
    assert_eq!(w["status"], "firing", "an update is not a resolve");
    assert_eq!(w["commonAnnotations"]["faultline_change"], "acknowledged by alice");
    assert_eq!(w["commonAnnotations"]["faultline_ack_url"], "https://faultline.example.com/ack/v1.x");
    let s = slack::body(&m);
    assert!(s["text"].as_str().unwrap().starts_with("[UPDATE] SEV1 Checkout errors") && s["text"].as_str().unwrap().ends_with(": acknowledged by alice"));
    assert!(s["blocks"][1]["text"]["text"].as_str().unwrap().contains("<https://faultline.example.com/ack/v1.x|Acknowledge>"));
    assert_eq!(email::subject(&m), "[UPDATE] SEV1 Checkout errors: acknowledged by alice");
    assert!(email::text(&m).contains("Acknowledge (one click, no login): https://faultline.example.com/ack/v1.x"));
}
