//! Notification channels and the outbox delivery worker.
//!
//! What it is: the channel-independent [`Message`] the response driver puts
//! in the outbox, the configured [`Channel`]s (generic webhook with an
//! Alertmanager-compatible body, Slack incoming webhook, email over SMTP,
//! PagerDuty Events v2), one sender per channel type (one file each), and
//! [`worker::OutboxWorker`], which claims due outbox rows, delivers them with
//! retries (exponential backoff under a retry budget) and per-channel rate
//! limits, and writes the outcome to the ledger. [`target`] decides which
//! status-page subscriber endpoints may be posted to (no private addresses
//! unless allowed), and the subscriber HTTP client connects only there,
//! directly or through the operator's proxy ([`proxy`]).
//!
//! Secrets: webhook URLs, routing keys and SMTP passwords are [`Secret`]s —
//! their `Debug`/`Display` print `***`, and no error or ledger line is ever
//! built from a URL, a request or a response body: errors are classified
//! into a status code or an error class by our own code
//! (`tests/it/notify.rs` renders every error and ledger row and checks).
//!
//! What it is not: deciding who is paged (core escalation and the response
//! driver) or storage (the store's `ResponseStore`).

pub mod email;
pub mod pagerduty;
pub mod proxy;
pub mod slack;
pub mod target;
pub mod webhook;
pub mod worker;

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration as StdDuration;

use faultline_core::{IncidentId, Timestamp};
use serde::{Deserialize, Serialize};

/// A value that must never be printed: a webhook URL with a token in it, a
/// routing key, a password. `Debug` and `Display` print `***`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    /// The secret value, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// What a notification is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    /// A page: the incident needs you.
    Trigger,
    /// Someone acknowledged (PagerDuty forwarding; informational elsewhere).
    Acknowledge,
    /// The incident is resolved.
    Resolve,
    /// Any other change a chat channel or a person is told about (mitigated,
    /// a role assigned, severity changed): `Message::change` says what.
    Update,
}

impl MessageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Trigger => "trigger",
            MessageKind::Acknowledge => "acknowledge",
            MessageKind::Resolve => "resolve",
            MessageKind::Update => "update",
        }
    }

    /// The word a person reads for it: `FIRING`, `ACKNOWLEDGED`, …
    pub fn verb(self) -> &'static str {
        match self {
            MessageKind::Trigger => "FIRING",
            MessageKind::Acknowledge => "ACKNOWLEDGED",
            MessageKind::Resolve => "RESOLVED",
            MessageKind::Update => "UPDATE",
        }
    }
}

/// The channel-independent content of a notification, stored in the outbox
/// as JSON and rendered by each channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub incident: IncidentId,
    /// Stable key of the incident (PagerDuty `dedup_key`, Alertmanager
    /// fingerprint): the incident id.
    pub incident_key: String,
    pub kind: MessageKind,
    pub title: String,
    pub severity: String,
    /// Internal status when the message was enqueued.
    pub status: String,
    pub summary: Option<String>,
    /// The person this is for, if it is a page to a person.
    pub recipient: Option<String>,
    /// Their address on this channel (email address), if any.
    pub address: Option<String>,
    /// Escalation level and round of a page.
    pub level: Option<u32>,
    pub round: Option<u32>,
    /// Routing labels (team, flow, severity, …).
    pub labels: BTreeMap<String, String>,
    pub opened_at: Timestamp,
    pub at: Timestamp,
    /// Link to the incident in Faultline, if the server's URL is known.
    pub url: Option<String>,
    /// The routing receiver that led here.
    pub receiver: String,
    /// What changed, in words, with who did it ("acknowledged by alice").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<String>,
    /// A page's one-click acknowledge link (signed, expiring, single use).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ack_url: Option<String>,
}

/// A configured channel.
#[derive(Clone, Debug)]
pub struct Channel {
    pub name: String,
    pub kind: ChannelKind,
    /// At most this many sends per second (Slack: 1). `None`: unlimited.
    pub max_per_sec: Option<f64>,
}

#[derive(Clone, Debug)]
pub enum ChannelKind {
    /// POSTs an Alertmanager webhook (version 4) body.
    Webhook { url: Secret },
    /// Slack incoming webhook: blocks plus a text fallback. A webhook cannot
    /// edit what it posted: every message is a new one.
    Slack { webhook_url: Secret },
    /// Slack Web API with a bot token: an incident's first message on the
    /// channel is `chat.postMessage`, every later one edits it in place
    /// (`chat.update`), so the channel holds one live message per incident.
    /// Pages to a person go to their `address` (a member or DM id) as new
    /// messages.
    SlackApi { token: Secret, channel: String, api_url: String },
    /// Email over SMTP (plain on `port`, or STARTTLS when `starttls`).
    Email(email::SmtpSettings),
    /// PagerDuty Events API v2.
    PagerDuty { routing_key: Secret, events_url: String },
}

impl ChannelKind {
    pub fn type_name(&self) -> &'static str {
        match self {
            ChannelKind::Webhook { .. } => "webhook",
            ChannelKind::Slack { .. } | ChannelKind::SlackApi { .. } => "slack",
            ChannelKind::Email(_) => "email",
            ChannelKind::PagerDuty { .. } => "pagerduty",
        }
    }
}

/// The driver's clock: real time in the server, a chosen time in tests.
pub type NowFn = std::sync::Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// Slack's Web API.
pub const SLACK_API_URL: &str = "https://slack.com/api";

/// PagerDuty's public Events v2 endpoint.
pub const PAGERDUTY_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// Why a send did not succeed. The text is built only from status codes and
/// error classes, never from a URL, key or remote body.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Worth retrying (5xx, 429, timeout, connection refused).
    #[error("{detail}")]
    Retryable { detail: String, retry_after: Option<StdDuration> },
    /// Retrying will not help (4xx other than 408/429, bad address).
    #[error("{detail} (permanent)")]
    Permanent { detail: String },
}

/// A successful send: a short detail for the ledger (e.g. `HTTP 200`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sent {
    pub detail: String,
    /// The message the peer made, where it can be edited later (a Slack
    /// message's `ts`): the incident's next message on this channel edits it.
    pub message_ref: Option<String>,
}

impl Sent {
    pub fn new(detail: impl Into<String>) -> Sent {
        Sent { detail: detail.into(), message_ref: None }
    }
}

/// Sends messages over HTTP and SMTP. One per worker; cheap to clone.
#[derive(Clone)]
pub struct Sender {
    http: reqwest::Client,
    /// For status-page subscribers: resolves with `lookup` through
    /// `target::GuardedResolver`, which lets it connect to public addresses
    /// only, and goes through the proxy of `proxy::ProxySettings` (never one
    /// from the process environment): the endpoint is checked before the
    /// request is handed to it (`post_to_subscriber`).
    subscriber_http: reqwest::Client,
    /// The same without the guard, for when private targets are allowed.
    subscriber_http_open: reqwest::Client,
    lookup: target::Lookup,
    /// Per-send timeout (connect and whole request).
    pub timeout: StdDuration,
}

impl fmt::Debug for Sender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender").field("timeout", &self.timeout).finish_non_exhaustive()
    }
}

impl Sender {
    pub fn new(timeout: StdDuration) -> Result<Sender, String> {
        Sender::with_lookup(timeout, target::system_lookup())
    }

    /// A sender resolving subscriber host names with `lookup` (tests pin
    /// names to chosen addresses; production uses `target::system_lookup`),
    /// sending subscriber webhooks directly.
    pub fn with_lookup(timeout: StdDuration, lookup: target::Lookup) -> Result<Sender, String> {
        Sender::with_proxy(timeout, lookup, &proxy::ProxySettings::default())
    }

    /// A sender whose subscriber webhooks go through `proxy` (per scheme,
    /// except endpoints its `no_proxy` lists); the proxies' own names
    /// resolve without the private-address guard (operator-trusted).
    pub fn with_proxy(timeout: StdDuration, lookup: target::Lookup, proxy: &proxy::ProxySettings) -> Result<Sender, String> {
        // reqwest is built without a default crypto provider and panics
        // without one; `main` installs ring, and so does this (a no-op then).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let builder = || {
            reqwest::Client::builder()
                .timeout(timeout)
                .connect_timeout(timeout)
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("faultline/", env!("CARGO_PKG_VERSION")))
        };
        let built = |b: reqwest::ClientBuilder| b.build().map_err(|e| format!("cannot build the HTTP client: {}", e.without_url()));
        let http = built(builder())?;
        let trusted = proxy.host_names();
        let guarded = |allow_private| {
            proxy.apply(builder()).map(|b| b.dns_resolver(target::GuardedResolver { lookup: lookup.clone(), allow_private, trusted: trusted.clone() }))
        };
        let subscriber_http = built(guarded(false)?)?;
        let subscriber_http_open = built(guarded(true)?)?;
        Ok(Sender { http, subscriber_http, subscriber_http_open, lookup, timeout })
    }

    /// Sends `msg` on `channel` with the outbox idempotency key; `edit` is
    /// the message to edit in place, where the channel can (`SlackApi`).
    pub async fn send(&self, channel: &Channel, msg: &Message, key: &str, edit: Option<&str>) -> Result<Sent, SendError> {
        match &channel.kind {
            ChannelKind::SlackApi { token, channel: default_channel, api_url } => {
                let to = msg.address.as_deref().filter(|_| msg.recipient.is_some()).unwrap_or(default_channel);
                if let Some(ts) = edit {
                    match self.slack_api(token, api_url, "chat.update", &slack::api_body(msg, to, Some(ts)), key).await {
                        // The message was deleted in Slack: post a new one.
                        Err(SendError::Permanent { detail }) if detail.contains("message_not_found") => {}
                        other => return other,
                    }
                }
                self.slack_api(token, api_url, "chat.postMessage", &slack::api_body(msg, to, None), key).await
            }
            ChannelKind::Webhook { url } => {
                let body = webhook::body(&channel.name, msg);
                self.post_json(url, &body, key).await
            }
            ChannelKind::Slack { webhook_url } => {
                let body = slack::body(msg);
                self.post_json(webhook_url, &body, key).await
            }
            ChannelKind::PagerDuty { routing_key, events_url } => {
                let body = pagerduty::body(routing_key, msg);
                self.post_json(&Secret::new(events_url.clone()), &body, key).await
            }
            ChannelKind::Email(settings) => email::send(settings, msg, key, self.timeout).await,
        }
    }

    /// Posts a status-page notification to a subscriber's endpoint. Unless
    /// `allow_private`, the endpoint is checked first (`target::check_url`;
    /// a host name is resolved and refused if any address is blocked) and
    /// then sent through the guarded client: a refused endpoint is a
    /// permanent failure that says why, a name that does not resolve is
    /// retried. The check runs whether or not a proxy applies: it is what
    /// guards a proxied request, since the proxy connects for us.
    pub async fn post_to_subscriber(&self, url: &Secret, body: &serde_json::Value, key: &str, allow_private: bool) -> Result<Sent, SendError> {
        let refused = |why: String| SendError::Permanent { detail: format!("subscriber endpoint {why}; private targets are not allowed, not sent") };
        let t = match target::check_url(url.expose(), allow_private) {
            Ok(t) => t,
            Err(e @ (target::TargetError::Blocked(_) | target::TargetError::ResolvesToBlocked(_))) => return Err(refused(e.to_string())),
            Err(e) => return Err(SendError::Permanent { detail: format!("subscriber endpoint {e}") }),
        };
        if allow_private {
            return self.post_json_with(&self.subscriber_http_open, url, body, key).await;
        }
        if let target::Host::Name(name) = &t.host {
            let unresolved = || SendError::Retryable { detail: "could not resolve the endpoint's host".into(), retry_after: None };
            let addrs = (self.lookup)(name.clone(), t.port).await.map_err(|_| unresolved())?;
            if let Some(class) = target::first_blocked(&addrs) {
                return Err(refused(target::TargetError::ResolvesToBlocked(class).to_string()));
            }
            if addrs.is_empty() {
                return Err(unresolved());
            }
        }
        self.post_json_with(&self.subscriber_http, url, body, key).await
    }

    /// A Slack Web API call: HTTP errors as any peer's, then Slack's own
    /// `ok`/`error` (Slack answers 200 with `ok: false`).
    async fn slack_api(&self, token: &Secret, api_url: &str, method: &str, body: &serde_json::Value, key: &str) -> Result<Sent, SendError> {
        let resp = self
            .http
            .post(format!("{}/{method}", api_url.trim_end_matches('/')))
            .bearer_auth(token.expose())
            .header("Idempotency-Key", key)
            .json(body)
            .send()
            .await
            .map_err(|e| classify_transport(&e))?;
        let code = resp.status().as_u16();
        let after = retry_after(resp.headers());
        classify_status(code, after)?;
        let v: serde_json::Value =
            resp.json().await.map_err(|_| SendError::Retryable { detail: format!("Slack {method}: bad response body"), retry_after: None })?;
        slack::api_outcome(method, &v)
    }

    async fn post_json(&self, url: &Secret, body: &serde_json::Value, key: &str) -> Result<Sent, SendError> {
        self.post_json_with(&self.http, url, body, key).await
    }

    async fn post_json_with(&self, client: &reqwest::Client, url: &Secret, body: &serde_json::Value, key: &str) -> Result<Sent, SendError> {
        let resp = client.post(url.expose()).header("Idempotency-Key", key).json(body).send().await.map_err(|e| classify_transport(&e))?;
        classify_status(resp.status().as_u16(), retry_after(resp.headers()))
    }
}

/// Maps a transport error to an error class, without its URL.
fn classify_transport(e: &reqwest::Error) -> SendError {
    let class = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_request() {
        "request failed"
    } else if e.is_body() || e.is_decode() {
        "bad response body"
    } else if e.is_builder() {
        return SendError::Permanent { detail: "invalid channel URL".into() };
    } else {
        "transport error"
    };
    SendError::Retryable { detail: class.into(), retry_after: None }
}

fn retry_after(h: &reqwest::header::HeaderMap) -> Option<StdDuration> {
    let v = h.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    // Seconds form only; an HTTP-date is rare from Slack/PagerDuty and falls
    // back to our own backoff.
    v.parse::<u64>().ok().map(|s| StdDuration::from_secs(s.min(3600)))
}

/// 2xx is delivered; 408, 429 and 5xx are worth retrying; other 4xx are not.
pub fn classify_status(code: u16, retry_after: Option<StdDuration>) -> Result<Sent, SendError> {
    match code {
        200..=299 => Ok(Sent::new(format!("HTTP {code}"))),
        408 | 425 | 429 | 500..=599 => Err(SendError::Retryable { detail: format!("HTTP {code}"), retry_after }),
        _ => Err(SendError::Permanent { detail: format!("HTTP {code}") }),
    }
}

#[cfg(test)]
mod tests;
