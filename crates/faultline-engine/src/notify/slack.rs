//! Slack incoming-webhook channel: Block Kit `blocks` (header, section with
//! the facts, context line) plus a plain `text` fallback that notifications
//! and old clients show. Slack rate-limits incoming webhooks to about one
//! message per second per channel and answers 429 with `Retry-After`; the
//! worker's per-channel limiter and `SendError::Retryable { retry_after }`
//! honour both.
//!
//! Not here: sending or retries.

use serde_json::{Value, json};

use super::{Message, MessageKind};

/// Slack's limit on a header block's text.
const MAX_HEADER: usize = 150;
/// Slack's limit on a section's text.
const MAX_SECTION: usize = 3000;

fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max { s.to_owned() } else { s.chars().take(max - 1).collect::<String>() + "…" }
}

/// Escapes Slack mrkdwn control characters.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

pub fn body(msg: &Message) -> Value {
    let emoji = match msg.kind {
        MessageKind::Trigger => ":rotating_light:",
        MessageKind::Acknowledge => ":eyes:",
        MessageKind::Resolve => ":white_check_mark:",
        MessageKind::Update => ":memo:",
    };
    let verb = msg.kind.verb();
    let text = match &msg.change {
        Some(c) => format!("[{verb}] {} {} ({}): {c}", msg.severity, msg.title, msg.incident),
        None => format!("[{verb}] {} {} ({})", msg.severity, msg.title, msg.incident),
    };
    let mut facts = format!("*Severity:* {}\n*Status:* {}\n*Incident:* `{}`", msg.severity, msg.status, msg.incident);
    if let Some(c) = &msg.change {
        facts = format!("*{}*\n{facts}", esc(c));
    }
    if let Some(r) = &msg.recipient {
        facts.push_str(&format!("\n*Paged:* {}", esc(r)));
    }
    if let (Some(l), Some(r)) = (msg.level, msg.round) {
        facts.push_str(&format!("\n*Escalation:* level {l}, round {r}"));
    }
    if let Some(s) = &msg.summary {
        facts.push_str(&format!("\n{}", esc(s)));
    }
    if let Some(u) = &msg.url {
        facts.push_str(&format!("\n<{}|Open in Faultline>", esc(u)));
    }
    if let Some(u) = &msg.ack_url {
        facts.push_str(&format!("\n<{}|Acknowledge>", esc(u)));
    }
    let labels = msg.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ");
    json!({
        "text": text,
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": clip(&format!("{verb}: {}", msg.title), MAX_HEADER), "emoji": true}},
            {"type": "section", "text": {"type": "mrkdwn", "text": clip(&format!("{emoji} {facts}"), MAX_SECTION)}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": clip(&format!("via {} · {}", esc(&msg.receiver), esc(&labels)), MAX_SECTION)}]}
        ]
    })
}
