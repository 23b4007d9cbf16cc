//! Email channel over SMTP with `lettre`: a plain-text message per
//! notification, `Message-ID` derived from the outbox idempotency key (so a
//! redelivered copy is recognisably the same mail), sent to the recipient's
//! email contact method or the channel's default address.
//!
//! Transport security (`tls`): `none` (plain SMTP, for a local relay),
//! `starttls` (upgrade before anything else is sent; a server that does not
//! offer STARTTLS or presents an untrusted certificate gets nothing, not even
//! the credentials) or `implicit` (SMTPS, TLS from the first byte, usually
//! port 465). Certificates are checked against the webpki roots plus an
//! optional private CA (`ca_pem`). AUTH credentials are a `Secret` and are
//! never printed. Errors are classified by SMTP reply class (transient 4xx →
//! retry, permanent 5xx → give up) or error kind (TLS, connection, timeout),
//! never by the server's text, which could quote what we sent.

use std::time::Duration as StdDuration;

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use serde::Deserialize;

use super::{Message, Secret, SendError, Sent};

/// How the SMTP connection is secured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    /// Plain SMTP (a relay on the same host or network).
    #[default]
    None,
    /// STARTTLS is required: without it (or with a bad certificate) nothing is sent.
    Starttls,
    /// SMTPS: TLS from the first byte (port 465).
    Implicit,
}

impl SmtpTls {
    /// The usual port for this mode: 25, 587 (submission) or 465.
    pub fn default_port(self) -> u16 {
        match self {
            SmtpTls::None => 25,
            SmtpTls::Starttls => 587,
            SmtpTls::Implicit => 465,
        }
    }
}

#[derive(Clone, Debug)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub from: String,
    /// Where mail goes when the recipient has no email contact method.
    pub default_to: Option<String>,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub tls: SmtpTls,
    /// A private CA (PEM) trusted besides the webpki roots.
    pub ca_pem: Option<String>,
}

pub fn subject(msg: &Message) -> String {
    let verb = msg.kind.verb();
    match &msg.change {
        Some(c) => format!("[{verb}] {} {}: {c}", msg.severity, msg.title),
        None => format!("[{verb}] {} {}", msg.severity, msg.title),
    }
    .chars()
    .take(200)
    .collect()
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
    if let Some(u) = &msg.ack_url {
        s.push_str(&format!("\nAcknowledge (one click, no login): {u}\n"));
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
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(settings.host.as_str()).port(settings.port).timeout(Some(timeout));
    if settings.tls != SmtpTls::None {
        let mut params = TlsParameters::builder(settings.host.clone());
        if let Some(pem) = &settings.ca_pem {
            let ca = Certificate::from_pem(pem.as_bytes()).map_err(|_| permanent("the email channel's CA certificate is not valid PEM"))?;
            params = params.add_root_certificate(ca);
        }
        let params = params.build_rustls().map_err(|_| permanent("cannot set up TLS for the email channel"))?;
        builder = builder.tls(if settings.tls == SmtpTls::Implicit { Tls::Wrapper(params) } else { Tls::Required(params) });
    }
    if let (Some(u), Some(p)) = (&settings.username, &settings.password) {
        builder = builder.credentials(Credentials::new(u.clone(), p.expose().to_owned()));
    }
    let mailer = builder.build();
    match mailer.send(email).await {
        Ok(resp) => Ok(Sent::new(format!("SMTP {}", resp.code()))),
        Err(e) => {
            let code = e.status().map(|c| format!("SMTP {c}")).unwrap_or_else(|| {
                if e.is_timeout() {
                    "SMTP timed out".into()
                } else if e.is_tls() || tls_in_chain(&e) {
                    "SMTP TLS failed (handshake or certificate)".into()
                } else if settings.tls == SmtpTls::Starttls && e.is_client() {
                    // lettre refuses to go on when the server offers no STARTTLS.
                    "SMTP server does not offer STARTTLS".into()
                } else {
                    "SMTP connection failed".into()
                }
            });
            if e.is_permanent() { Err(SendError::Permanent { detail: code }) } else { Err(SendError::Retryable { detail: code, retry_after: None }) }
        }
    }
}

/// Whether a rustls error (a failed handshake, an untrusted certificate) is
/// behind `e`: lettre reports a failed upgrade as a network error.
fn tls_in_chain(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if err.is::<rustls::Error>() {
            return true;
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && io.get_ref().is_some_and(|inner| inner.is::<rustls::Error>())
        {
            return true;
        }
        cur = err.source();
    }
    false
}
