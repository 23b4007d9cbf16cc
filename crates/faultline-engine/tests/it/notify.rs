//! The outbox worker against real peers: an HTTP receiver standing in for a
//! webhook consumer, Slack and PagerDuty, and a real SMTP server (aiosmtpd).
//! Virtual time drives retries (`round(now)`); only the Slack rate limit is
//! measured in real time, because it is a real-time property.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use faultline_core::{Duration, IncidentId, Timestamp};
use faultline_engine::notify::email::SmtpSettings;
use faultline_engine::notify::worker::{OutboxWorker, RetryPolicy};
use faultline_engine::notify::{Channel, ChannelKind, Message, MessageKind, Secret, Sender};
use faultline_store::SqlStore;
use faultline_store::response::{DeliveryStatus, OutboxItem, ResponseBatch, ResponseStore};

use crate::peers::{HttpReceiver, Smtp};

fn t(ms: i64) -> Timestamp {
    Timestamp::from_millis(1_800_000_000_000 + ms)
}

fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn new_id() -> IncidentId {
    IncidentId::from_uuid(uuid::Uuid::now_v7())
}

fn message(incident: IncidentId, kind: MessageKind, recipient: &str) -> Message {
    Message {
        incident,
        incident_key: incident.to_string(),
        kind,
        title: "Checkout errors".into(),
        severity: "SEV1".into(),
        status: "triggered".into(),
        summary: Some("5xx on checkout".into()),
        recipient: Some(recipient.into()),
        address: Some(format!("{recipient}@example.com")),
        level: Some(1),
        round: Some(1),
        labels: BTreeMap::from([("team".into(), "payments".into())]),
        opened_at: t(0),
        at: t(0),
        url: None,
        receiver: "payments".into(),
        change: None,
        ack_url: None,
    }
}

fn item(channel: &str, msg: &Message, at: Timestamp) -> OutboxItem {
    OutboxItem {
        idempotency_key: format!("{}/{}/{}/{}", msg.incident, channel, msg.recipient.as_deref().unwrap_or("-"), msg.kind.as_str()),
        incident: msg.incident,
        channel: channel.into(),
        recipient: msg.recipient.clone().unwrap_or_default(),
        kind: msg.kind.as_str().into(),
        payload: serde_json::to_value(msg).unwrap(),
        not_before: at,
    }
}

async fn store() -> (Arc<SqlStore>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    (Arc::new(SqlStore::open_sqlite(dir.path()).await.unwrap()), dir)
}

fn worker(store: &Arc<SqlStore>, channels: Vec<Channel>, policy: RetryPolicy) -> Arc<OutboxWorker> {
    let channels = channels.into_iter().map(|c| (c.name.clone(), c)).collect();
    Arc::new(OutboxWorker::new(store.clone(), channels, Sender::new(StdDuration::from_secs(5)).unwrap(), policy, "test-worker"))
}

/// Runs rounds at `start`, `start + step`, … until nothing is pending.
async fn drain(w: &Arc<OutboxWorker>, store: &SqlStore, start: Timestamp, step: Duration, max_rounds: usize) -> Timestamp {
    let mut now = start;
    for _ in 0..max_rounds {
        w.clone().round(now).await.unwrap();
        if store.outbox_counts().await.unwrap().pending == 0 {
            return now;
        }
        now = now + step;
    }
    panic!("outbox not drained after {max_rounds} rounds");
}

fn fast_policy() -> RetryPolicy {
    RetryPolicy { base: StdDuration::from_millis(100), max_backoff: StdDuration::from_secs(2), max_attempts: 4, ..RetryPolicy::default() }
}

#[tokio::test]
async fn every_channel_delivers_to_a_real_peer() {
    install_crypto();
    let Some(smtp) = Smtp::start() else { return };
    let rx = HttpReceiver::start().await;
    rx.always("/pd", 202, Some(r#"{"status":"success"}"#));
    let (store, _dir) = store().await;
    let channels = vec![
        Channel { name: "hook".into(), kind: ChannelKind::Webhook { url: Secret::new(rx.url("/hook")) }, max_per_sec: None },
        Channel { name: "slack".into(), kind: ChannelKind::Slack { webhook_url: Secret::new(rx.url("/slack")) }, max_per_sec: None },
        Channel {
            name: "pd".into(),
            kind: ChannelKind::PagerDuty { routing_key: Secret::new("R0UTING"), events_url: rx.url("/pd/v2/enqueue") },
            max_per_sec: None,
        },
        Channel {
            name: "mail".into(),
            kind: ChannelKind::Email(SmtpSettings {
                host: "127.0.0.1".into(),
                port: smtp.port,
                from: "faultline@example.com".into(),
                default_to: None,
                username: None,
                password: None,
                tls: Default::default(),
                ca_pem: None,
            }),
            max_per_sec: None,
        },
    ];
    let inc = new_id();
    let mut enqueue = Vec::new();
    for ch in ["hook", "slack", "pd", "mail"] {
        enqueue.push(item(ch, &message(inc, MessageKind::Trigger, "alice"), t(0)));
        enqueue.push(item(ch, &message(inc, MessageKind::Resolve, "alice"), t(0)));
    }
    store.commit_response(&ResponseBatch { enqueue, ..Default::default() }, t(0)).await.unwrap();
    let w = worker(&store, channels, fast_policy());
    drain(&w, &store, t(0), Duration::from_millis(200), 20).await;

    let rows = store.notifications(inc).await.unwrap();
    assert_eq!(rows.len(), 8);
    assert!(rows.iter().all(|r| r.status == DeliveryStatus::Delivered), "{rows:#?}");

    let hook = rx.received_on("/hook");
    let statuses: Vec<_> = hook.iter().map(|r| r.body["status"].as_str().unwrap().to_owned()).collect();
    assert_eq!(statuses, ["firing", "resolved"], "the resolve comes after the page");
    assert_eq!(hook[0].body["version"], "4");
    assert!(hook[0].idempotency_key.as_deref().unwrap().ends_with("/hook/alice/trigger"));

    let slack = rx.received_on("/slack");
    assert_eq!(slack.len(), 2);
    assert!(slack[0].body["text"].as_str().unwrap().starts_with("[FIRING] SEV1"));
    assert_eq!(slack[0].body["blocks"][0]["type"], "header");

    let pd = rx.received_on("/pd");
    let actions: Vec<_> = pd.iter().map(|r| (r.body["event_action"].as_str().unwrap().to_owned(), r.body["dedup_key"].as_str().unwrap().to_owned())).collect();
    assert_eq!(actions, [("trigger".to_owned(), inc.to_string()), ("resolve".to_owned(), inc.to_string())]);
    assert_eq!(pd[0].body["routing_key"], "R0UTING");

    let mails = smtp.wait_messages(2, StdDuration::from_secs(10));
    let subjects: Vec<_> = mails.iter().filter_map(|m| m.iter().find(|l| l.starts_with("Subject: ")).cloned()).collect();
    assert_eq!(subjects, ["Subject: [FIRING] SEV1 Checkout errors", "Subject: [RESOLVED] SEV1 Checkout errors"]);
    assert!(mails[0].iter().any(|l| l.starts_with("To: alice@example.com")), "{:?}", mails[0]);
    assert!(mails[0].iter().any(|l| l.starts_with("Message-ID: <") && l.contains("trigger@faultline>")), "{:?}", mails[0]);

    let ledger = store.ledger(inc).await.unwrap();
    assert_eq!(ledger.iter().filter(|l| l.outcome == "delivered").count(), 8);
    assert!(ledger.iter().filter(|l| l.outcome == "delivered" && l.channel == "mail").all(|l| l.detail == "SMTP 250"), "{ledger:#?}");
    assert!(ledger.iter().filter(|l| l.outcome == "delivered" && l.channel == "pd").all(|l| l.detail == "HTTP 202"));
}

#[tokio::test]
async fn failing_receiver_is_retried_with_backoff_then_given_up() {
    install_crypto();
    let rx = HttpReceiver::start().await;
    rx.always("/hook", 503, None);
    let (store, _dir) = store().await;
    let w = worker(
        &store,
        vec![Channel { name: "hook".into(), kind: ChannelKind::Webhook { url: Secret::new(rx.url("/hook")) }, max_per_sec: None }],
        fast_policy(),
    );
    let inc = new_id();
    store
        .commit_response(&ResponseBatch { enqueue: vec![item("hook", &message(inc, MessageKind::Trigger, "bob"), t(0))], ..Default::default() }, t(0))
        .await
        .unwrap();
    drain(&w, &store, t(0), Duration::from_millis(50), 400).await;
    let got = rx.received_on("/hook");
    assert_eq!(got.len(), 4, "max_attempts sends");
    assert!(got.iter().all(|r| r.idempotency_key == got[0].idempotency_key), "same key every time");
    let ledger = store.ledger(inc).await.unwrap();
    let outcomes: Vec<_> = ledger.iter().map(|l| (l.outcome.as_str(), l.attempt)).collect();
    assert_eq!(outcomes, [("enqueued", 0), ("retry", 1), ("retry", 2), ("retry", 3), ("failed", 4)]);
    assert_eq!(ledger.last().unwrap().detail, "HTTP 503; gave up after 4 attempts");
    // Backoff: the gaps between attempts grow (virtual time, from the ledger).
    let at: Vec<i64> = ledger.iter().skip(1).map(|l| l.at.as_millis()).collect();
    let gaps: Vec<i64> = at.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.windows(2).all(|g| g[1] > g[0]), "growing gaps {gaps:?}");
}

#[tokio::test]
async fn a_resolve_never_overtakes_its_page() {
    install_crypto();
    let rx = HttpReceiver::start().await;
    rx.script("/hook", &[(503, None)]);
    let (store, _dir) = store().await;
    let w = worker(
        &store,
        vec![Channel { name: "hook".into(), kind: ChannelKind::Webhook { url: Secret::new(rx.url("/hook")) }, max_per_sec: None }],
        fast_policy(),
    );
    let inc = new_id();
    let enqueue = vec![item("hook", &message(inc, MessageKind::Trigger, "bob"), t(0)), item("hook", &message(inc, MessageKind::Resolve, "bob"), t(0))];
    store.commit_response(&ResponseBatch { enqueue, ..Default::default() }, t(0)).await.unwrap();
    drain(&w, &store, t(0), Duration::from_millis(100), 50).await;
    let order: Vec<_> = rx.received_on("/hook").iter().map(|r| r.body["status"].as_str().unwrap().to_owned()).collect();
    assert_eq!(order, ["firing", "firing", "resolved"], "page failed once, was retried, then the resolve went");
}

#[tokio::test]
async fn slack_retry_after_pauses_the_channel_and_sends_are_spaced_one_per_second() {
    install_crypto();
    let rx = HttpReceiver::start().await;
    rx.script("/slack", &[(429, Some(3))]);
    let (store, _dir) = store().await;
    let policy = RetryPolicy { lease: StdDuration::from_secs(8), ..fast_policy() };
    let w = worker(
        &store,
        vec![Channel { name: "slack".into(), kind: ChannelKind::Slack { webhook_url: Secret::new(rx.url("/slack")) }, max_per_sec: Some(1.0) }],
        policy,
    );
    let inc = new_id();
    let enqueue: Vec<_> = ["a", "b", "c"].iter().map(|u| item("slack", &message(inc, MessageKind::Trigger, u), t(0))).collect();
    store.commit_response(&ResponseBatch { enqueue, ..Default::default() }, t(0)).await.unwrap();
    // Round 1: the first send is answered 429 Retry-After: 3; the channel is
    // paused for 3 s, so the other two are deferred, not sent.
    let s = w.clone().round(t(0)).await.unwrap();
    assert_eq!((s.retried, s.deferred, s.delivered), (1, 2, 0), "{s:?}");
    assert_eq!(rx.received_on("/slack").len(), 1);
    let row = store.notifications(inc).await.unwrap().into_iter().find(|r| r.recipient == "a").unwrap();
    assert!(row.next_attempt_at >= t(3000), "Retry-After honoured: next attempt {}", row.next_attempt_at);
    // Round 2, after the pause: all three go, one per second of real time.
    let s = w.clone().round(t(3500)).await.unwrap();
    assert_eq!(s.delivered, 3, "{s:?}");
    let got = rx.received_on("/slack");
    assert_eq!(got.len(), 4);
    let gaps: Vec<_> = got[1..].windows(2).map(|p| p[1].at.duration_since(p[0].at)).collect();
    assert!(gaps.iter().all(|g| *g >= StdDuration::from_millis(990)), "Slack sends at most 1/s: gaps {gaps:?}");
    println!("slack gaps under a 1/s limit: {gaps:?}");
}

/// A `tracing` writer that keeps everything logged, to search it for secrets.
#[derive(Clone, Default)]
struct LogBuf(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogBuf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Compliance: channels configured with secret URLs, keys and passwords fail
/// in every way we can provoke (5xx, 4xx with the secret echoed in the
/// response body, connection refused, SMTP down); then every error, ledger
/// row, outbox row, channel config and log line is rendered and searched.
#[tokio::test]
async fn secrets_never_appear_in_errors_ledger_or_logs() {
    install_crypto();
    let logs = LogBuf::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt().with_max_level(tracing::Level::TRACE).with_writer(move || writer.clone()).with_ansi(false).finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let rx = HttpReceiver::start().await;
    const HOOK: &str = "S3CRET-WEBHOOK-TOKEN";
    const SLACK: &str = "S3CRET-SLACK-T000-B000";
    const PD: &str = "S3CRET-ROUTING-KEY";
    const PASS: &str = "S3CRET-SMTP-PASSWORD";
    const DEAD: &str = "S3CRET-UNREACHABLE";
    rx.always(&format!("/hook/{HOOK}"), 500, Some(&format!("internal error for /hook/{HOOK}")));
    rx.always("/slack", 404, Some(&format!("no_team {SLACK}")));
    rx.always("/pd", 400, Some(&format!(r#"{{"status":"invalid event","message":"bad routing_key {PD}"}}"#)));
    // A port nothing listens on: bind :0, note it, release it.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let channels = vec![
        Channel { name: "hook".into(), kind: ChannelKind::Webhook { url: Secret::new(rx.url(&format!("/hook/{HOOK}"))) }, max_per_sec: None },
        Channel {
            name: "dead".into(),
            kind: ChannelKind::Webhook { url: Secret::new(format!("http://user:{DEAD}@127.0.0.1:{closed}/x/{DEAD}")) },
            max_per_sec: None,
        },
        Channel { name: "slack".into(), kind: ChannelKind::Slack { webhook_url: Secret::new(rx.url(&format!("/slack/services/{SLACK}"))) }, max_per_sec: None },
        Channel { name: "pd".into(), kind: ChannelKind::PagerDuty { routing_key: Secret::new(PD), events_url: rx.url("/pd/v2/enqueue") }, max_per_sec: None },
        Channel {
            name: "mail".into(),
            kind: ChannelKind::Email(SmtpSettings {
                host: "127.0.0.1".into(),
                port: closed,
                from: "faultline@example.com".into(),
                default_to: Some("ops@example.com".into()),
                username: Some("faultline".into()),
                password: Some(Secret::new(PASS)),
                tls: Default::default(),
                ca_pem: None,
            }),
            max_per_sec: None,
        },
    ];
    let secrets = [HOOK, SLACK, PD, PASS, DEAD];
    let mut rendered = String::new();
    // Errors straight from the sender, Display and Debug.
    let sender = Sender::new(StdDuration::from_secs(5)).unwrap();
    let inc = new_id();
    for c in &channels {
        rendered.push_str(&format!("{c:?}\n"));
        let err = sender.send(c, &message(inc, MessageKind::Trigger, "alice"), "k", None).await.unwrap_err();
        rendered.push_str(&format!("{err}\n{err:?}\n"));
    }
    // The worker's retries, failures, ledger and outbox rows.
    let (store, _dir) = store().await;
    let enqueue: Vec<_> = channels.iter().map(|c| item(&c.name, &message(inc, MessageKind::Trigger, "alice"), t(0))).collect();
    store.commit_response(&ResponseBatch { enqueue, ..Default::default() }, t(0)).await.unwrap();
    let w = worker(&store, channels, fast_policy());
    drain(&w, &store, t(0), Duration::from_millis(500), 100).await;
    let rows = store.notifications(inc).await.unwrap();
    assert_eq!(rows.len(), 5);
    assert!(rows.iter().all(|r| r.status == DeliveryStatus::Failed), "every channel failed: {rows:#?}");
    for r in &rows {
        rendered.push_str(&format!("{r:?}\n{}\n", serde_json::to_string(r).unwrap()));
    }
    let ledger = store.ledger(inc).await.unwrap();
    assert!(ledger.len() >= 10, "retries and failures were recorded");
    for l in &ledger {
        rendered.push_str(&format!("{l:?}\n{}\n", serde_json::to_string(l).unwrap()));
    }
    drop(_guard);
    let log_text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(log_text.contains("notification not delivered"), "the failures were logged");
    rendered.push_str(&log_text);
    for s in secrets {
        assert!(!rendered.contains(s), "secret {s} leaked:\n{}", rendered.lines().filter(|l| l.contains(s)).collect::<Vec<_>>().join("\n"));
    }
    // And the failures are still explained.
    let details: Vec<_> = rows.iter().map(|r| (r.channel.as_str(), r.last_error.clone().unwrap_or_default())).collect();
    println!("{details:#?}");
    assert!(details.iter().any(|(c, e)| *c == "pd" && e == "HTTP 400 (permanent)"));
    assert!(details.iter().any(|(c, e)| *c == "dead" && e.starts_with("could not connect")));
}

/// A burst through one webhook channel: every notification arrives exactly
/// once (no crash here, so no redelivery), and the delivery rate is printed
/// (debug build, SQLite with synchronous=FULL, sequential per channel).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_is_delivered_once_per_key() {
    install_crypto();
    let rx = HttpReceiver::start().await;
    let (store, _dir) = store().await;
    let w = worker(
        &store,
        vec![Channel { name: "hook".into(), kind: ChannelKind::Webhook { url: Secret::new(rx.url("/hook")) }, max_per_sec: None }],
        RetryPolicy { batch: 256, ..fast_policy() },
    );
    const N: usize = 2000;
    let inc = new_id();
    let enqueue: Vec<_> = (0..N).map(|i| item("hook", &message(inc, MessageKind::Trigger, &format!("u{i}")), t(0))).collect();
    let started = std::time::Instant::now();
    store.commit_response(&ResponseBatch { enqueue, ..Default::default() }, t(0)).await.unwrap();
    let enq = started.elapsed();
    let started = std::time::Instant::now();
    drain(&w, &store, t(0), Duration::from_millis(1), 100).await;
    let took = started.elapsed();
    let got = rx.received_on("/hook");
    let keys: std::collections::BTreeSet<_> = got.iter().filter_map(|r| r.idempotency_key.clone()).collect();
    assert_eq!((got.len(), keys.len()), (N, N));
    println!("burst: enqueued {N} in {enq:?} ({:.0}/s), delivered in {took:?} ({:.0}/s)", N as f64 / enq.as_secs_f64(), N as f64 / took.as_secs_f64());
}

#[tokio::test]
async fn slack_web_api_edits_the_incidents_message_in_place() {
    install_crypto();
    let rx = HttpReceiver::start().await;
    let ok = r#"{"ok":true,"channel":"C1","ts":"1700000000.000100"}"#;
    rx.always("/slack-api/chat.postMessage", 200, Some(ok));
    rx.always("/slack-api/chat.update", 200, Some(ok));
    rx.always("/slack-gone/chat.postMessage", 200, Some(r#"{"ok":true,"channel":"C2","ts":"1700000000.000900"}"#));
    rx.always("/slack-gone/chat.update", 200, Some(r#"{"ok":false,"error":"message_not_found"}"#));
    let (store, _dir) = store().await;
    let api = |name: &str, path: &str| Channel {
        name: name.into(),
        kind: ChannelKind::SlackApi { token: Secret::new("xoxb-S3CRET"), channel: "C1".into(), api_url: rx.url(path) },
        max_per_sec: None,
    };
    let w = worker(&store, vec![api("room", "/slack-api"), api("gone", "/slack-gone")], fast_policy());
    let inc = new_id();
    let chat =
        |kind: MessageKind, change: Option<&str>| Message { recipient: None, address: None, change: change.map(str::to_owned), ..message(inc, kind, "x") };
    let send = |channel: &str, msg: Message, at: Timestamp| {
        let store = store.clone();
        let w = w.clone();
        let channel = channel.to_owned();
        async move {
            let mut it = item(&channel, &msg, at);
            it.idempotency_key.push_str(&format!("/{}", at.as_millis()));
            store.commit_response(&ResponseBatch { enqueue: vec![it], ..Default::default() }, at).await.unwrap();
            drain(&w, &store, at, Duration::from_millis(200), 10).await;
        }
    };
    send("room", chat(MessageKind::Trigger, None), t(0)).await;
    send("room", chat(MessageKind::Acknowledge, Some("acknowledged by alice")), t(1000)).await;
    send("room", chat(MessageKind::Update, Some("bob is now incident_commander (assigned by alice)")), t(2000)).await;
    // A page to a person: a new message to their address, never an edit.
    send("room", Message { address: Some("U0ALICE".into()), ..message(inc, MessageKind::Trigger, "alice") }, t(3000)).await;

    let posts = rx.received_on("/slack-api/chat.postMessage");
    let updates = rx.received_on("/slack-api/chat.update");
    assert_eq!(posts.len(), 2, "{posts:#?}");
    assert_eq!(posts[0].body["channel"], "C1");
    assert!(posts[0].body["text"].as_str().unwrap().starts_with("[FIRING]"));
    assert_eq!(posts[1].body["channel"], "U0ALICE");
    assert_eq!(updates.len(), 2);
    assert!(updates.iter().all(|u| u.body["ts"] == "1700000000.000100" && u.body["channel"] == "C1"));
    assert_eq!(updates[0].body["text"].as_str().unwrap(), format!("[ACKNOWLEDGED] SEV1 Checkout errors ({inc}): acknowledged by alice"));
    assert!(updates[1].body["text"].as_str().unwrap().ends_with("bob is now incident_commander (assigned by alice)"));
    assert_eq!(store.channel_message_ref(inc, "room").await.unwrap().as_deref(), Some("1700000000.000100"));
    let ledger = store.ledger(inc).await.unwrap();
    assert!(ledger.iter().filter(|l| l.outcome == "delivered").any(|l| l.detail == "Slack chat.update ok"), "{ledger:#?}");
    assert!(!format!("{ledger:?}").contains("S3CRET"));

    // The message was deleted in Slack: the next change posts a new one and edits that from then on.
    store.put_channel_message_ref(inc, "gone", "1600000000.000001", t(0)).await.unwrap();
    send("gone", chat(MessageKind::Resolve, Some("resolved by alice")), t(4000)).await;
    assert_eq!(rx.received_on("/slack-gone/chat.update").len(), 1);
    assert_eq!(rx.received_on("/slack-gone/chat.postMessage").len(), 1);
    assert_eq!(store.channel_message_ref(inc, "gone").await.unwrap().as_deref(), Some("1700000000.000900"));
}
