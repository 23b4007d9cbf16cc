//! `faultline demo`: the main job on the embedded default, end to end.
//!
//! It starts a real Faultline — SQLite store, API, OTLP/HTTP receivers,
//! detectors, correlator, response workflow, status page — in this process
//! on an accelerated clock, writes a demo catalogue (three teams, two flows)
//! and response config next to the database, and runs the simulator's
//! payment pipeline against it: the simulator sends its spans and gauges as
//! OTLP/JSON over HTTP to the server's own receivers, window by window, at
//! `--speed` virtual seconds per wall second. As it goes it prints the
//! incident's timeline (findings joining, the diagnosis, routing, pages,
//! escalation), the pages a webhook receives, and the status page's state;
//! once telemetry has opened the incident the demo also sends a Prometheus
//! alert (Alertmanager v2 API) and a PagerDuty Events v2 trigger, which join
//! it; the demo acknowledges as the second-level responder once the escalation
//! reaches them, and waits for the incident to resolve after the hold-down
//! so the resolve page and the status page's return to operational show.
//! Then it prints the incident with its causal chain and exits 0, or keeps
//! serving with `--serve`.
//!
//! What it is not: any detection, correlation or response logic — this
//! module only configures, drives and prints. The clock it runs on is the
//! server's `Clock`, so every component sees the same accelerated time.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Instant;

use clap::Args;
use faultline_core::incident::{IncidentEvent, IncidentStatus};
use faultline_core::{Duration, IncidentId, Timestamp};
use faultline_server::clock::Clock;
use faultline_store::response::{DeliveryStatus, ResponseStore};
use faultline_store::{IncidentFilter, SqlStore, Store};

#[derive(Args)]
pub struct DemoArgs {
    /// Keep the store (and the demo's config files) here instead of a temporary directory.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The built-in scenario to run.
    #[arg(long, default_value = "cascading-failure")]
    scenario: String,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Virtual seconds per wall second.
    #[arg(long, default_value_t = 40.0)]
    speed: f64,
    /// Send the pages to this webhook URL (Alertmanager webhook body) instead
    /// of the demo's own local receiver.
    #[arg(long)]
    webhook: Option<String>,
    /// Keep serving the API afterwards (Ctrl-C to stop).
    #[arg(long)]
    serve: bool,
    /// API address (OTLP/HTTP is served on it too).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
}

/// The demo's virtual time: `epoch` plus the simulated time up to which the
/// simulator has sent its telemetry. The simulator paces itself at
/// `--speed`, so this runs that much faster than the wall clock; on a slow
/// machine it slows down with the telemetry instead of running ahead of it
/// (which would look like every service going silent). Every server
/// component reads it through `Clock`.
/// Once the traffic is over and the demo keeps serving, time runs on at the
/// wall clock's pace from where the telemetry left it (`release`).
struct TelemetryClock {
    epoch: Timestamp,
    sent_ms: AtomicI64,
    released: std::sync::OnceLock<Instant>,
}

impl TelemetryClock {
    fn release(&self) {
        let _ = self.released.set(Instant::now());
    }
}

impl Clock for TelemetryClock {
    fn now(&self) -> Timestamp {
        let since_release = self.released.get().map_or(0, |t| t.elapsed().as_millis() as i64);
        self.epoch + Duration::from_millis(self.sent_ms.load(Ordering::Acquire) + since_release)
    }
}

/// The integration key of the demo's PagerDuty monitor (configured in `pagerduty_routing_keys`).
const DEMO_ROUTING_KEY: &str = "demo-gateway-monitor";

/// The demo's user who acknowledges once the escalation reaches them.
const SECOND_LEVEL: &str = "bob";

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    if !(args.speed.is_finite() && args.speed >= 1.0 && args.speed <= 1000.0) {
        anyhow::bail!("--speed must be between 1 and 1000");
    }
    let (dir, _temp) = match &args.data_dir {
        Some(d) => {
            std::fs::create_dir_all(d).map_err(|e| anyhow::anyhow!("cannot create {}: {e}", d.display()))?;
            (d.clone(), None)
        }
        None => {
            let parent = std::env::temp_dir();
            let t = create_private_dir(&parent, "faultline-demo", &mut os_random_u64)
                .map_err(|e| anyhow::anyhow!("cannot create a private demo directory in {}: {e}", parent.display()))?;
            (t.clone(), Some(TempDir(t)))
        }
    };
    let mut sc = faultline_sim::builtin::load(&args.scenario, false)
        .ok_or_else(|| anyhow::anyhow!("no built-in scenario named {:?} (see `faultline sim list`)", args.scenario))?
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    // Run long enough after the last fault for the correlator's hold-down
    // (10 minutes quiet) to resolve the incident, so the resolve shows.
    let last_fault_end = sc.faults.iter().map(|f| f.at.0 + f.duration.map_or(0.0, |d| d.0)).fold(0.0, f64::max);
    sc.duration.0 = sc.duration.0.max(last_fault_end + 15.0 * 60.0);

    // A local webhook receiver stands in for the on-call person's pager
    // unless the user brought their own.
    let webhook = match &args.webhook {
        Some(u) => u.clone(),
        None => start_pager().await?,
    };
    let config_path = write_demo_config(&dir, &webhook)?;
    let response = faultline_server::response_config::ResponseConfig::load(&config_path, &|k| std::env::var(k).ok())?;

    let epoch = Timestamp::from_secs(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs() as i64);
    let clock = Arc::new(TelemetryClock { epoch, sent_ms: AtomicI64::new(0), released: std::sync::OnceLock::new() });
    let mut config = faultline_server::Config {
        data_dir: dir.clone(),
        otlp_grpc_listen: None,
        otlp_http_listen: None,
        response: Some(Arc::new(response)),
        // The demo's PagerDuty monitor authenticates with its routing key,
        // as PagerDuty senders do.
        pagerduty_routing_keys: vec![DEMO_ROUTING_KEY.to_owned()],
        // One look at the clock per virtual second, as in production.
        tick_interval: std::time::Duration::from_secs_f64((1.0 / args.speed).max(0.005)),
        ..faultline_server::Config::default()
    };
    config.listen = faultline_server::config::parse_listen("--listen", &args.listen)?;
    let store = faultline_server::open_store(&config).await?;
    // Ingest needs a token: the simulator and the demo's Prometheus alert
    // send this one (scope ingest, so it can do nothing else).
    let (_, ingest_token) = faultline_server::auth::create_token(&store, "demo-simulator", faultline_store::TokenScope::Ingest, None, clock.now()).await?;
    let app = faultline_server::App::with_store(config, store.clone(), clock.clone());
    let listener = app.bind().await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run(listener, async move {
        let _ = stop_rx.await;
    }));
    let (_, token) = faultline_server::auth::create_token(
        &store,
        SECOND_LEVEL,
        faultline_store::TokenScope::Admin,
        Some(faultline_core::UserId::new(SECOND_LEVEL)?),
        clock.now(),
    )
    .await?;

    println!("Faultline demo: {} — {}", sc.name, sc.description);
    println!("store:    {}/faultline.db (SQLite)", dir.display());
    println!("config:   {} (three teams, two flows, on-call schedules, escalation)", config_path.display());
    println!("API:      {base}   (OTLP/HTTP on the same address)");
    println!("pages to: {webhook}");
    println!(
        "clock:    {}× — {:.0} simulated seconds in about {:.0} s; fault at t={:.0}s\n",
        args.speed,
        sc.duration.0,
        sc.duration.0 / args.speed,
        sc.faults.first().map_or(0.0, |f| f.at.0)
    );

    // The simulator sends its telemetry over the OTLP wire from a blocking
    // thread, paced against the same accelerated clock.
    let export = faultline_sim::cli::OtlpExport {
        url: base.clone(),
        speed: Some(args.speed),
        max_spans: 2000,
        epoch_ns: (epoch.as_millis().max(0) as u64) * 1_000_000,
        token: Some(ingest_token.clone()),
    };
    let (sc2, seed, progress) = (sc.clone(), args.seed, clock.clone());
    let started = Instant::now();
    let sim = tokio::task::spawn_blocking(move || {
        faultline_sim::cli::run_exporting(&sc2, Some(seed), false, &export, &mut |t| {
            progress.sent_ms.store((t * 1000.0) as i64, Ordering::Release);
        })
    });

    let mut watch = Watch::new(epoch, base.clone(), token.clone(), ingest_token);
    let mut sim = Some(sim);
    let mut outcome = None;
    let mut waited_after_end = 0u32;
    let poll = tokio::time::Duration::from_millis(100);
    loop {
        watch.step(&store, clock.now()).await?;
        if let Some(h) = sim.take_if(|h| h.is_finished()) {
            match h.await? {
                Ok(o) => outcome = Some(o),
                Err(e) => anyhow::bail!("the simulator could not send its telemetry: {e}"),
            }
        }
        // Done when the traffic is over and every incident has resolved (the
        // run is long enough for the hold-down), or shortly after the
        // traffic if something is still open.
        let ended = sim.is_none();
        if ended {
            waited_after_end += 1;
        }
        if ended && ((watch.seen_incident && watch.all_resolved) || waited_after_end > 50) {
            // Let the resolve pages go out.
            for _ in 0..30 {
                tokio::time::sleep(poll).await;
                watch.step(&store, clock.now()).await?;
                if watch.outbox_drained(&store).await? {
                    break;
                }
            }
            break;
        }
        tokio::time::sleep(poll).await;
    }
    let wall = started.elapsed().as_secs_f64();

    let incidents = store.list_incidents(&IncidentFilter::default()).await?;
    if let Some(out) = &outcome {
        println!(
            "\nsimulated {:.0} s of traffic ({} events) in {:.1} s, sent as OTLP to {base}; fault: {}",
            out.totals.sim_seconds, out.totals.events, wall, out.ground_truth.summary
        );
    }
    println!("{} incident(s) opened; {} page(s) delivered to the webhook\n", incidents.len(), watch.delivered.len());
    for inc in &incidents {
        if let Some((inc, timeline)) = store.incident(inc.id).await? {
            let mut view = faultline_server::http::convert::incident(&inc, Some(&timeline));
            // The timeline was printed as it happened; the chain is the summary.
            view.timeline = None;
            crate::incidents::print_one(&view);
        }
    }
    if args.serve {
        clock.release();
        println!("\nserving the API at {base} (the clock now runs at wall-clock pace) — try:");
        println!("  faultline incidents list --url {base} --token {token}");
        println!("  curl {base}/api/v2/summary.json");
        let _ = faultline_server::shutdown_signal().await;
    }
    let _ = stop_tx.send(());
    server.await??;
    Ok(())
}

/// What the demo has already printed, and what it has done.
struct Watch {
    epoch: Timestamp,
    base: String,
    token: String,
    /// Sent with the Prometheus alert (PagerDuty events carry their routing key).
    ingest_token: String,
    client: reqwest::Client,
    printed: std::collections::BTreeMap<IncidentId, usize>,
    delivered: BTreeSet<String>,
    acked: BTreeSet<IncidentId>,
    status: Option<String>,
    seen_incident: bool,
    all_resolved: bool,
    /// When the demo's external alerts were sent (virtual time), and
    /// whether the PagerDuty event has been resolved.
    alerts_sent_at: Option<Timestamp>,
    pd_resolved: bool,
}

impl Watch {
    fn new(epoch: Timestamp, base: String, token: String, ingest_token: String) -> Watch {
        Watch {
            epoch,
            base,
            token,
            ingest_token,
            client: reqwest::Client::new(),
            printed: Default::default(),
            delivered: BTreeSet::new(),
            acked: BTreeSet::new(),
            status: None,
            seen_incident: false,
            all_resolved: true,
            alerts_sent_at: None,
            pd_resolved: false,
        }
    }

    fn t(&self, at: Timestamp) -> String {
        format!("t={:>4.0}s", (at - self.epoch).as_secs_f64())
    }

    async fn step(&mut self, store: &SqlStore, now: Timestamp) -> anyhow::Result<()> {
        let incidents = store.list_incidents(&IncidentFilter::default()).await?;
        self.seen_incident |= !incidents.is_empty();
        self.external_alerts(now).await?;
        self.all_resolved = incidents.iter().all(|i| i.status == IncidentStatus::Resolved);
        for inc in &incidents {
            // An incident's version is its timeline's length: read the
            // timeline only when something was appended since the last poll.
            let done = self.printed.get(&inc.id).copied().unwrap_or(0);
            if (inc.version as usize) > done
                && let Some((_, timeline)) = store.incident(inc.id).await?
            {
                for ev in timeline.iter().skip(done) {
                    if let Some(line) = describe(&ev.event) {
                        println!("{}  {line}", self.t(ev.at));
                    }
                }
                self.printed.insert(inc.id, timeline.len());
            }
            // Pages as the webhook saw them (the ledger says delivered).
            for n in store.notifications(inc.id).await? {
                if n.status == DeliveryStatus::Delivered && self.delivered.insert(n.idempotency_key.clone()) {
                    let at = n.delivered_at.unwrap_or(n.updated_at);
                    println!("{}  ▶ page delivered: {} to {} via {}", self.t(at), n.kind, n.recipient, n.channel);
                    // The second-level responder acknowledges once paged:
                    // escalation must stop there.
                    if n.recipient.contains(SECOND_LEVEL) && n.kind.contains("trigger") && !self.acked.contains(&inc.id) {
                        self.acked.insert(inc.id);
                        let url = format!("{}/api/v1/incidents/{}/ack", self.base, inc.id);
                        let r = self.client.post(url).bearer_auth(&self.token).json(&serde_json::json!({})).send().await?;
                        if !r.status().is_success() {
                            println!("           (acknowledging as {SECOND_LEVEL} failed: {})", r.status());
                        }
                    }
                }
            }
        }
        // The public status page, as a customer would see it.
        if let Ok(r) = self.client.get(format!("{}/api/v2/status.json", self.base)).send().await
            && let Ok(v) = r.json::<serde_json::Value>().await
        {
            let s = v["status"]["description"].as_str().unwrap_or("?").to_owned();
            if self.status.as_deref() != Some(s.as_str()) {
                println!("           ◆ status page: {s}");
                self.status = Some(s);
            }
        }
        Ok(())
    }

    /// The alerts a team already has keep arriving in the formats they use
    /// today: once telemetry has opened the incident, a Prometheus alert on
    /// fraud-check (Alertmanager v2 API, as Prometheus itself sends it; it
    /// expires at `endsAt` unless re-sent) and a PagerDuty Events v2 trigger
    /// from a gateway monitor, resolved four minutes later. Both must join
    /// the incident the telemetry opened, not open their own.
    async fn external_alerts(&mut self, now: Timestamp) -> anyhow::Result<()> {
        match self.alerts_sent_at {
            None if self.seen_incident => {
                let rfc = |t: Timestamp| t.to_string();
                let am = serde_json::json!([{
                    "labels": {"alertname": "FraudCheckLatencyHigh", "service": "fraud-check", "severity": "page"},
                    "annotations": {"summary": "fraud-check p99 latency above 2 s"},
                    "startsAt": rfc(now),
                    "endsAt": rfc(now + Duration::from_mins(4)),
                    "generatorURL": "http://prometheus.example/graph"
                }]);
                self.post("/api/v2/alerts", &am, "Prometheus alert FraudCheckLatencyHigh{service=fraud-check} → /api/v2/alerts", now).await?;
                let pd = serde_json::json!({
                    "routing_key": DEMO_ROUTING_KEY, "event_action": "trigger", "dedup_key": "gateway-5xx",
                    "payload": {"summary": "gateway 5xx rate above 5%", "source": "synthetic-monitor", "severity": "error", "component": "gateway"}
                });
                self.post("/v2/enqueue", &pd, "PagerDuty event trigger gateway-5xx{component=gateway} → /v2/enqueue", now).await?;
                self.alerts_sent_at = Some(now);
            }
            Some(sent) if !self.pd_resolved && now - sent >= Duration::from_mins(4) => {
                let pd = serde_json::json!({"routing_key": DEMO_ROUTING_KEY, "event_action": "resolve", "dedup_key": "gateway-5xx"});
                self.post("/v2/enqueue", &pd, "PagerDuty event resolve gateway-5xx → /v2/enqueue", now).await?;
                self.pd_resolved = true;
            }
            _ => {}
        }
        Ok(())
    }

    async fn post(&self, path: &str, body: &serde_json::Value, what: &str, now: Timestamp) -> anyhow::Result<()> {
        let mut req = self.client.post(format!("{}{path}", self.base)).json(body);
        // PagerDuty senders authenticate with the routing key alone.
        if path != "/v2/enqueue" {
            req = req.bearer_auth(&self.ingest_token);
        }
        let r = req.send().await?;
        let status = r.status();
        if !status.is_success() {
            anyhow::bail!("{what}: {status}: {}", r.text().await.unwrap_or_default());
        }
        println!("{}  ◀ {what} ({})", self.t(now), status.as_u16());
        Ok(())
    }

    async fn outbox_drained(&self, store: &SqlStore) -> anyhow::Result<bool> {
        let c = store.outbox_counts().await?;
        Ok(c.pending == 0)
    }
}

/// One line per timeline event worth a person's attention.
fn describe(ev: &IncidentEvent) -> Option<String> {
    Some(match ev {
        IncidentEvent::Opened { title, severity, .. } => format!("incident opened ({severity}): {title}"),
        IncidentEvent::Acknowledged => "acknowledged".into(),
        IncidentEvent::Mitigated { .. } => "mitigated".into(),
        IncidentEvent::Resolved { note } => format!("resolved{}", note.as_deref().map(|n| format!(": {n}")).unwrap_or_default()),
        IncidentEvent::SymptomAttached { member, evidence, .. } => format!("finding: {member} — {evidence}"),
        IncidentEvent::SymptomCleared { member } => format!("cleared: {member}"),
        IncidentEvent::DiagnosisUpdated { sentence, .. } => format!("diagnosis: {sentence}"),
        IncidentEvent::SeverityChanged { to, reason, .. } => format!("severity → {to}: {reason}"),
        IncidentEvent::RoleAssigned { role, user } => format!("{role:?} → {user}"),
        IncidentEvent::SystemNote { component, text } => format!("[{component}] {text}"),
        IncidentEvent::LinkedTo { previous } => format!("linked to earlier incident {previous}"),
        IncidentEvent::TitleChanged { title, .. } => format!("renamed: {title}"),
        IncidentEvent::PublicTitleChanged { title } => format!("public title: {title}"),
        _ => return None,
    })
}

/// The demo's catalogue and response config, written next to the database
/// so a user can read and copy them. Returns the response config's path.
fn write_demo_config(dir: &Path, webhook: &str) -> anyhow::Result<PathBuf> {
    let cfg_dir = dir.join("demo-config");
    std::fs::create_dir_all(&cfg_dir)?;
    std::fs::write(cfg_dir.join("catalogue.yaml"), DEMO_CATALOGUE)?;
    let response = DEMO_RESPONSE.replace("{WEBHOOK}", &serde_json::Value::String(webhook.to_owned()).to_string());
    let path = cfg_dir.join("response.yaml");
    std::fs::write(&path, response)?;
    Ok(path)
}

/// Three teams; two flows through the payment pipeline. Payments owns the
/// checkout flow, accounts the balance flow, risk owns fraud-check and its
/// database (an incident's origin brings its owners in as responders).
const DEMO_CATALOGUE: &str = "\
teams:
  - {id: payments, name: Payments, members: [alice, bob]}
  - {id: accounts, name: Accounts, members: [carol]}
  - {id: risk, name: Risk, members: [dave]}
services:
  - {name: gateway, owner: payments}
  - {name: ledger, owner: accounts}
  - {name: bank-connector, owner: accounts}
  - {name: fraud-check, owner: risk}
  - {name: fraud-db, owner: risk}
flows:
  - name: checkout
    owner: payments
    description: pay for an order
    interactions:
      - {caller: payments, callee: gateway}
      - {caller: gateway, callee: fraud-check}
      - {caller: fraud-check, callee: fraud-db}
      - {caller: fraud-check, callee: ledger}
      - {caller: ledger, callee: bank-connector}
  - name: balance
    owner: accounts
    description: show an account's balance
    interactions:
      - {caller: payments, callee: gateway}
      - {caller: gateway, callee: ledger}
";

/// Alice is on call for payments around the clock; Bob is the second
/// level, paged two minutes after Alice if nobody acknowledges.
const DEMO_RESPONSE: &str = "\
catalogue_file: catalogue.yaml
users:
  - {id: alice, name: Alice, contacts: [{channel: pager}]}
  - {id: bob, name: Bob, contacts: [{channel: pager}]}
  - {id: carol, name: Carol, contacts: [{channel: pager}]}
  - {id: dave, name: Dave, contacts: [{channel: pager}]}
schedules:
  - name: payments-primary
    time_zone: Europe/London
    layers:
      - {name: everyone, start: \"2026-01-05T09:00:00\", rotation: weekly, participants: [alice]}
  - name: accounts-primary
    time_zone: America/New_York
    layers:
      - {name: everyone, start: \"2026-01-05T09:00:00\", rotation: weekly, participants: [carol]}
escalation_policies:
  - name: payments
    levels:
      - {delay_minutes: 2, targets: [{schedule: payments-primary}]}
      - {delay_minutes: 10, targets: [{user: bob}]}
  - name: accounts
    levels:
      - {delay_minutes: 5, targets: [{schedule: accounts-primary}]}
  - name: risk
    levels:
      - {delay_minutes: 5, targets: [{user: dave}]}
channels:
  - {name: pager, type: webhook, url: {WEBHOOK}}
severity: {critical_flows: [checkout]}
status_page: {name: Demo Payments, auto_publish: true}
retry: {base_ms: 200, max_backoff_ms: 2000}
";

/// A local webhook receiver standing in for the on-call people's pagers:
/// it accepts every page (what was delivered is read from the ledger).
async fn start_pager() -> anyhow::Result<String> {
    let app = axum::Router::new().route("/hook", axum::routing::post(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(url)
}

/// Attempts `create_private_dir` makes before giving up (each with a fresh
/// random name; only a name that already exists is retried).
const PRIVATE_DIR_ATTEMPTS: u32 = 16;

/// Creates a new directory `<parent>/<prefix>-<16 hex digits>` that nobody
/// else can have prepared: the name is random (`next_suffix`), the directory
/// is made with `create_dir` (never `create_dir_all`), so a path that already
/// exists — a directory, a file or a symlink planted by another user of a
/// shared temp dir — is refused and another name is tried, and on unix it is
/// created with mode 0700.
fn create_private_dir(parent: &Path, prefix: &str, next_suffix: &mut dyn FnMut() -> u64) -> std::io::Result<PathBuf> {
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    for _ in 0..PRIVATE_DIR_ATTEMPTS {
        let path = parent.join(format!("{prefix}-{:016x}", next_suffix()));
        match builder.create(&path) {
            Ok(()) => return Ok(path),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::new(std::io::ErrorKind::AlreadyExists, format!("{PRIVATE_DIR_ATTEMPTS} random names were all taken")))
}

/// 64 random bits from the OS: `RandomState`'s keys come from the OS's
/// random source (per process, then varied per instance); hashing the time,
/// the pid and a counter with a fresh one gives a new value on every call.
fn os_random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    h.write_u32(std::process::id());
    h.write_u64(CALLS.fetch_add(1, Ordering::Relaxed));
    h.finish()
}

/// Removes the demo's temporary directory on exit.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_dir_is_new_random_and_private() {
        let parent = tempfile::tempdir().unwrap();
        let a = create_private_dir(parent.path(), "faultline-demo", &mut os_random_u64).unwrap();
        let b = create_private_dir(parent.path(), "faultline-demo", &mut os_random_u64).unwrap();
        assert_ne!(a, b);
        assert!(a.is_dir() && b.is_dir());
        let name = a.file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with("faultline-demo-") && name.len() == "faultline-demo-".len() + 16, "{name}");
        assert_ne!(name, format!("faultline-demo-{}", std::process::id()), "not the predictable pid name");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&a).unwrap().permissions().mode() & 0o777, 0o700);
        }
    }

    #[test]
    fn a_path_that_already_exists_is_never_used() {
        let parent = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        // Another user planted the first name the generator will produce: a
        // directory, and a symlink to one of theirs.
        std::fs::create_dir(parent.path().join(format!("faultline-demo-{:016x}", 1))).unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(elsewhere.path(), parent.path().join(format!("faultline-demo-{:016x}", 2))).unwrap();
        let mut next = 0u64;
        let got = create_private_dir(parent.path(), "faultline-demo", &mut || {
            next += 1;
            next
        })
        .unwrap();
        #[cfg(unix)]
        assert_eq!(got, parent.path().join(format!("faultline-demo-{:016x}", 3)));
        assert!(std::fs::read_dir(elsewhere.path()).unwrap().next().is_none(), "nothing written through the planted link");
        // A generator stuck on a taken name gives up with an error.
        let err = create_private_dir(parent.path(), "faultline-demo", &mut || 1).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
    }
}
