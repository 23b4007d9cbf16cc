//! `faultline demo [--data-dir DIR] [--scenario NAME] [--serve]`: the main
//! job on the embedded default. It opens a SQLite store (a temporary
//! directory unless `--data-dir`), runs a simulated payment pipeline whose
//! fraud-check database pool saturates, feeds the simulator's telemetry to
//! the production engine (detectors → correlator → incidents in the store)
//! on an accelerated virtual clock, and prints the findings as they join,
//! then the incident with its causal chain. `--serve` keeps the API up
//! afterwards with a fresh admin token.
//!
//! Honest scope: the simulator's windows enter the engine in-process as
//! `Signal`s (the same type the OTLP receivers produce), not over the OTLP
//! wire. Not here: any detection logic — this module only drives and prints.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use faultline_core::correlate::CorrelatorConfig;
use faultline_core::detect::DetectorSet;
use faultline_core::incident::IncidentEvent;
use faultline_core::pipeline::Pipeline;
use faultline_core::severity::SeverityDefinitions;
use faultline_core::Timestamp;
use faultline_engine::{Engine, Event};
use faultline_store::{IncidentFilter, SqlStore, Store};

#[derive(Args)]
pub struct DemoArgs {
    /// Keep the store here instead of a temporary directory.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The built-in scenario to run.
    #[arg(long, default_value = "cascading-failure")]
    scenario: String,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Keep serving the API afterwards (Ctrl-C to stop).
    #[arg(long)]
    serve: bool,
    /// API address when serving.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let (dir, _temp) = match &args.data_dir {
        Some(d) => (d.clone(), None),
        None => {
            let t = std::env::temp_dir().join(format!("faultline-demo-{}", std::process::id()));
            (t.clone(), Some(TempDir(t)))
        }
    };
    let store = SqlStore::open_sqlite(&dir).await?;
    let sc = faultline_sim::builtin::load(&args.scenario, false)
        .ok_or_else(|| anyhow::anyhow!("no built-in scenario named {:?} (see `faultline sim list`)", args.scenario))?
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("Faultline demo: {} — {}", sc.name, sc.description);
    println!("store: {}/faultline.db (SQLite)\n", dir.display());

    // The demo's catalogue: one critical flow, "checkout", across every
    // interaction of the simulated system, owned by the payments team.
    let checkout = faultline_core::FlowName::new("checkout")?;
    let (interactions, edges) = crate::drill::interactions(&sc);
    let flow = faultline_core::Flow { name: checkout.clone(), owner: faultline_core::TeamId::new("payments")?, description: "pay for an order".into(), interactions };
    let topology = faultline_core::correlate::Topology::new(edges, vec![flow]);
    let pipeline = Pipeline::new(DetectorSet::standard(), CorrelatorConfig::default(), topology, SeverityDefinitions::standard(vec![checkout]));
    let mut engine = Engine::new(pipeline, Arc::new(store.clone()));
    // Virtual time starts at the current wall-clock second, so the incident's
    // timestamps read naturally; the run itself takes a fraction of a second.
    let epoch = Timestamp::from_secs(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs() as i64);
    let mut batches: Vec<(Timestamp, Vec<faultline_core::Signal>)> = Vec::new();
    let started = std::time::Instant::now();
    let out = faultline_sim::run::run_with_signals(&sc, Some(args.seed), false, epoch, |s| {
        let at = s.at();
        match batches.last_mut() {
            Some((t, b)) if *t == at => b.push(s),
            _ => batches.push((at, vec![s])),
        }
    });
    let sim_wall = started.elapsed();
    let mut printed = 0usize;
    for (at, signals) in batches {
        engine.process(Event::Signals(signals), at).await?;
        engine.process(Event::Tick, at).await?;
        // Print what the correlator recorded since the last window.
        for inc in store.list_incidents(&IncidentFilter::default()).await? {
            let Some((_, timeline)) = store.incident(inc.id).await? else { continue };
            for ev in timeline.iter().skip(printed) {
                let t = (ev.at - epoch).as_secs_f64();
                match &ev.event {
                    IncidentEvent::Opened { title, severity, .. } => println!("t={t:>5.0}s  incident opened ({severity}): {title}"),
                    IncidentEvent::SymptomAttached { member, evidence } => println!("t={t:>5.0}s  finding: {member} — {evidence}"),
                    IncidentEvent::DiagnosisUpdated { sentence, .. } => println!("t={t:>5.0}s  diagnosis: {sentence}"),
                    IncidentEvent::SeverityChanged { to, reason, .. } => println!("t={t:>5.0}s  severity → {to}: {reason}"),
                    _ => {}
                }
            }
            printed = printed.max(timeline.len());
        }
    }
    let incidents = store.list_incidents(&IncidentFilter::default()).await?;
    println!(
        "\nsimulated {:.0} s of traffic ({} events) in {:.2} s; fault injected at t={:.0}s: {}",
        out.totals.sim_seconds,
        out.totals.events,
        sim_wall.as_secs_f64(),
        out.ground_truth.fault_start_s.unwrap_or(0.0),
        out.ground_truth.summary
    );
    println!("{} incident(s) opened\n", incidents.len());
    for inc in &incidents {
        if let Some((inc, timeline)) = store.incident(inc.id).await? {
            crate::incidents::print_one(&faultline_server::http::convert::incident(&inc, Some(&timeline)));
        }
    }
    if args.serve {
        let now = faultline_server::clock::Clock::now(&faultline_server::clock::SystemClock);
        let (_, token) = faultline_server::auth::create_token(&store, &format!("demo-{}", now.as_millis() % 1_000_000), faultline_store::TokenScope::Admin, now).await?;
        store.close().await;
        let mut config = faultline_server::Config { data_dir: dir.clone(), otlp_grpc_listen: None, otlp_http_listen: None, ..faultline_server::Config::default() };
        config.listen = faultline_server::config::parse_listen("--listen", &args.listen)?;
        let app = faultline_server::App::open(config).await?;
        let listener = app.bind().await?;
        println!("\nserving the API at http://{} — try:", listener.local_addr()?);
        println!("  faultline incidents list --url http://{} --token {token}", listener.local_addr()?);
        app.run(listener, faultline_server::shutdown_signal()).await?;
    } else {
        store.close().await;
    }
    Ok(())
}

/// Removes the demo's temporary directory on exit.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
