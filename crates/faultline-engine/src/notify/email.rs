//! Email channel over SMTP with `lettre`: a plain-text message per
//! notification, `Message-ID` derived from the outbox idempotency key (so a
//! redelivered copy is recognisably the same mail), sent to the recipient's
//! email contact method or the channel's default address.
//!
//! Plain SMTP (optionally with AUTH) is supported; STARTTLS/implicit TLS are
//! not built in yet (use a local relay). Errors are classified by SMTP
//! reply class (transient 4xx → retry, permanent 5xx → give up), never by the
//! server's text, which could quote what we sent.

use std::time::Duration as StdDuration;

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::{Message, MessageKind, Secret, SendError, Sent};

#[derive(Clone, Debug)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub from: String,
    /// Where mail goes when the recipient has no email contact method.
    pub default_to: Option<String>,
    pub username: Option<String>,
    pub password: Option<Secret>,
}

pub fn subject(msg: &Message) -> String {
    let verb = match msg.kind {
        MessageKind::Trigger => "FIRING",
        MessageKind::Acknowledge => "ACKNOWLEDGED",
        MessageKind::Resolve => "RESOLVED",
    };
    format!("[{verb}] {} {}", msg.severity, msg.title).chars().take(200).collect()
}

pub fn text(msg: &Message) -> String {
    let mut s = format!("{}\n\nIncident: {}\nSeverity: {}\nStatus: {}\nOpened: {}\n", subject(msg), msg.incident, msg.severity, msg.status, msg.opened_at);
    if let Some(r) = &msg.recipient {
        s.push_str(&format!("Paged: {r}\n"));
    }
    if let (Some(l), Some(r)) = (msg.level, msg.round) {
        s.push_str(&format!("Escalation: level {l}, round {r}\n"));
    }
    for (k, v) in &msg.labels {
        s.push_str(&format!("{k}: {v}\n"));
    }
    if let Some(sum) = &msg.summary {
        s.push_str(&format!("\n{sum}\n"));
    }
    if let Some(u) = &msg.url {
        s.push_str(&format!("\n{u}\n"));
    }
    s
}

fn message_id(key: &str) -> String {
    let local: String = key.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '.' }).collect();
    format!("<{local}@faultline>")
}

pub async fn send(settings: &SmtpSettings, msg: &Message, key: &str, timeout: StdDuration) -> Result<Sent, SendError> {
    let permanent = |detail: &str| SendError::Permanent { detail: detail.to_owned() };
    let from: Mailbox = settings.from.parse().map_err(|_| permanent("invalid From address in the email channel"))?;
    let to_addr = msg.address.as_deref().or(settings.default_to.as_deref()).ok_or_else(|| permanent("recipient has no email address"))?;
    let to: Mailbox = to_addr.parse().map_err(|_| permanent("invalid recipient email address"))?;
    let email = lettre::Message::builder()
        .from(from)
        .to(to)
        .subject(subject(msg))
        .message_id(Some(message_id(key)))
        .header(ContentType::TEXT_PLAIN)
        .body(text(msg))
        .map_err(|_| permanent("cannot build the email"))?;
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(settings.host.as_str())
        .port(settings.port)
        .timeout(Some(timeout));
    if let (Some(u), Some(p)) = (&settings.username, &settings.password) {
        builder = builder.credentials(Credentials::new(u.clone(), p.expose().to_owned()));
    }
    let mailer = builder.build();
    match mailer.send(email).await {
        Ok(resp) => Ok(Sent { detail: format!("SMTP {}", resp.code()) }),
        Err(e) => {
            let code = e.status().map(|c| format!("SMTP {c}")).unwrap_or_else(|| {
                if e.is_timeout() { "SMTP timed out".into() } else { "SMTP connection failed".into() }
            });
            if e.is_permanent() { Err(SendError::Permanent { detail: code }) } else { Err(SendError::Retryable { detail: code, retry_after: None }) }
        }
    }
}
