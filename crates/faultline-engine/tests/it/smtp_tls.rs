//! The email channel's transport security against a real SMTP server
//! (aiosmtpd) with a certificate made here by the `openssl` CLI (a test CA
//! and a server certificate for 127.0.0.1): STARTTLS and implicit TLS
//! deliver when the CA is trusted; an untrusted certificate, a server
//! without STARTTLS, and plain SMTP to a server that requires STARTTLS are
//! each refused with a classified error that carries no secret.

use std::path::Path;
use std::process::Command;
use std::time::Duration as StdDuration;

use faultline_core::{IncidentId, Timestamp};
use faultline_engine::notify::email::{SmtpSettings, SmtpTls};
use faultline_engine::notify::{Channel, ChannelKind, Message, MessageKind, Secret, SendError, Sender};

use crate::peers::Smtp;

const PASS: &str = "pa55-n3ver-logged";

/// A CA and a server certificate for 127.0.0.1 (and localhost) in `dir`;
/// false (skip) when openssl is missing outside CI.
fn make_certs(dir: &Path) -> bool {
    if Command::new("openssl").arg("version").output().is_err() {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "CI=true but the openssl CLI is missing");
        eprintln!("skipped: openssl CLI not available");
        return false;
    }
    let run = |args: &[&str]| {
        let out = Command::new("openssl").args(args).current_dir(dir).output().unwrap();
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=Faultline Test CA"]);
    run(&["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"]);
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ]);
    true
}

fn message() -> Message {
    let incident = IncidentId::from_uuid(uuid::Uuid::now_v7());
    Message {
        incident,
        incident_key: incident.to_string(),
        kind: MessageKind::Trigger,
        title: "Checkout errors".into(),
        severity: "SEV1".into(),
        status: "triggered".into(),
        summary: None,
        recipient: Some("alice".into()),
        address: Some("alice@example.com".into()),
        level: Some(1),
        round: Some(1),
        labels: Default::default(),
        opened_at: Timestamp::from_secs(1_800_000_000),
        at: Timestamp::from_secs(1_800_000_000),
        url: None,
        receiver: "payments".into(),
        change: None,
        ack_url: None,
    }
}

/// Without credentials unless `creds` (aiosmtpd offers AUTH only inside TLS
/// and accepts no password, so an AUTH attempt ends in 535).
fn mail(port: u16, tls: SmtpTls, ca_pem: Option<String>, creds: bool) -> Channel {
    Channel {
        name: "mail".into(),
        kind: ChannelKind::Email(SmtpSettings {
            host: "127.0.0.1".into(),
            port,
            from: "faultline@example.com".into(),
            default_to: None,
            username: creds.then(|| "faultline".into()),
            password: creds.then(|| Secret::new(PASS)),
            tls,
            ca_pem,
        }),
        max_per_sec: None,
    }
}

async fn send(ch: &Channel) -> Result<String, SendError> {
    let sender = Sender::new(StdDuration::from_secs(10)).unwrap();
    let r = sender.send(ch, &message(), "inc/mail/alice/trigger", None).await.map(|s| s.detail);
    if let Err(e) = &r {
        assert!(!format!("{e} {e:?}").contains(PASS), "no secret in errors");
    }
    r
}

#[tokio::test]
async fn starttls_and_implicit_tls_deliver_only_to_a_trusted_server() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    if !make_certs(dir.path()) {
        return;
    }
    let p = |f: &str| dir.path().join(f).to_str().unwrap().to_owned();
    let ca = std::fs::read_to_string(dir.path().join("ca.pem")).unwrap();
    // A server that requires STARTTLS before MAIL.
    let Some(starttls) = Smtp::start_with(&["--tlscert", &p("server.pem"), "--tlskey", &p("server.key")]) else { return };

    assert_eq!(send(&mail(starttls.port, SmtpTls::Starttls, Some(ca.clone()), false)).await, Ok("SMTP 250".to_owned()));
    let msgs = starttls.wait_messages(1, StdDuration::from_secs(10));
    assert!(msgs[0].iter().any(|l| l == "Subject: [FIRING] SEV1 Checkout errors"), "{:?}", msgs[0]);

    // With credentials the client authenticates inside the TLS session
    // (aiosmtpd advertises AUTH only there) and is turned away by 535.
    let auth = send(&mail(starttls.port, SmtpTls::Starttls, Some(ca.clone()), true)).await;
    assert_eq!(auth, Err(SendError::Permanent { detail: "SMTP 535".into() }));

    // The same server without trusting its CA: nothing is sent, worth a retry.
    let untrusted = send(&mail(starttls.port, SmtpTls::Starttls, None, true)).await;
    assert_eq!(untrusted, Err(SendError::Retryable { detail: "SMTP TLS failed (handshake or certificate)".into(), retry_after: None }));
    // Plain SMTP to it: refused with 530 (must issue STARTTLS first), permanent.
    let plain = send(&mail(starttls.port, SmtpTls::None, None, false)).await;
    assert!(matches!(&plain, Err(SendError::Permanent { detail }) if detail.starts_with("SMTP 530")), "{plain:?}");
    assert_eq!(starttls.messages().len(), 1, "only the trusted STARTTLS send arrived");

    // A server that offers no STARTTLS: a starttls channel sends nothing (not even AUTH).
    let Some(plain_server) = Smtp::start() else { return };
    let refused = send(&mail(plain_server.port, SmtpTls::Starttls, Some(ca.clone()), true)).await;
    assert_eq!(refused, Err(SendError::Retryable { detail: "SMTP server does not offer STARTTLS".into(), retry_after: None }));
    assert!(plain_server.messages().is_empty());

    // SMTPS: TLS from the first byte.
    let Some(smtps) = Smtp::start_with(&["--smtpscert", &p("server.pem"), "--smtpskey", &p("server.key")]) else { return };
    assert_eq!(send(&mail(smtps.port, SmtpTls::Implicit, Some(ca), false)).await, Ok("SMTP 250".to_owned()));
    assert_eq!(smtps.wait_messages(1, StdDuration::from_secs(10)).len(), 1);
}
