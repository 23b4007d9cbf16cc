//! Slack incoming-webhook channel: Block Kit `blocks` (header, section with
//! the facts, context line) plus a plain `text` fallback that notifications
//! and old clients show. Slack rate-limits incoming webhooks to about one
//! message per second per channel and answers 429 with `Retry-After`; the
//! worker's per-channel limiter and `SendError::Retryable { retry_after }`
//! honour both.
//!
//! The Web API form (`ChannelKind::SlackApi`): the same blocks with the
//! channel (and, to edit, the `ts` of the message being replaced) for
//! `chat.postMessage` / `chat.update`; Slack answers 200 with `ok: false`
//! and an error code, which [`api_outcome`] classifies into our own words
//! (the ledger never carries a remote body).
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

/// The Web API body: `chat.postMessage` (no `ts`) or `chat.update`.
pub fn api_body(msg: &Message, channel: &str, ts: Option<&str>) -> Value {
    let mut v = body(msg);
    v["channel"] = json!(channel);
    if let Some(ts) = ts {
        v["ts"] = json!(ts);
    }
    v
}

/// Slack's answer to a Web API call: delivered with the message's `ts`, or
/// an error class. Only Slack's fixed error codes are named, never free text.
pub fn api_outcome(method: &str, v: &Value) -> Result<super::Sent, super::SendError> {
    use super::{SendError, Sent};
    if v["ok"].as_bool() == Some(true) {
        let ts = v["ts"].as_str().map(str::to_owned);
        return Ok(Sent { detail: format!("Slack {method} ok"), message_ref: ts });
    }
    let code = v["error"].as_str().unwrap_or("");
    let known = [
        "ratelimited",
        "message_not_found",
        "channel_not_found",
        "not_in_channel",
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "cant_update_message",
        "edit_window_closed",
        "is_archived",
        "msg_too_long",
        "invalid_blocks",
    ];
    let named = known.iter().find(|k| **k == code).copied().unwrap_or("error");
    let detail = format!("Slack {method}: {named}");
    match named {
        "ratelimited" => Err(SendError::Retryable { detail, retry_after: None }),
        _ => Err(SendError::Permanent { detail }),
    }
}
