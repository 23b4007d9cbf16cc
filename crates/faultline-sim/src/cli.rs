//! The `faultline sim` command: `list`, `show <name>` and `run <name|file>`.
//!
//! What it is: clap argument types the `faultline` binary embeds, and `run`,
//! which executes a subcommand, shows a progress bar on stderr, writes the
//! series (CSV, JSON) and SVG charts, and prints a summary (JSON with
//! `--json`). Measuring wall time for the summary happens here, never in the
//! engine. What it is not: the binary itself (the lead's `faultline-cli`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::json;

mod otlp;

use crate::builtin;
use crate::run::{GroundTruth, RunOutput};
use crate::scenario::{Dur, Scenario, parse_duration};
use crate::svg;
use crate::world::World;

/// `faultline sim …`
#[derive(clap::Args, Debug, Clone)]
pub struct SimArgs {
    #[command(subcommand)]
    pub command: SimCommand,
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum SimCommand {
    /// List the built-in scenarios.
    List,
    /// Print a built-in scenario's YAML (copy it, edit it, run the file).
    Show { name: String },
    /// Run a built-in scenario or a scenario file.
    Run(RunArgs),
}

#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// A built-in scenario name (see `list`) or a path to a scenario YAML file.
    pub scenario: String,
    /// Random seed (default: the scenario's, else 1). Same seed, same output.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Run the defended variant (the scenario's `defended` patch applied).
    #[arg(long)]
    pub defended: bool,
    /// Simulated duration, e.g. 90s, 10m (default: the scenario's).
    #[arg(long, value_parser = parse_dur_arg)]
    pub duration: Option<Dur>,
    /// Write series (CSV, JSON), ground truth and SVG charts into this directory.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Also run the other variant and write compare.svg (before/after defences).
    #[arg(long)]
    pub compare: bool,
    /// Drop the scenario's faults (a steady-state baseline or benchmark).
    #[arg(long)]
    pub no_faults: bool,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Also send the run as OTLP/JSON (spans per attempt, per-window gauges)
    /// to this OTLP/HTTP endpoint, e.g. http://localhost:4318, window by window.
    #[arg(long)]
    pub otlp: Option<String>,
    /// With --otlp: run N times faster than real time (default: as fast as
    /// the receiver accepts).
    #[arg(long, requires = "otlp")]
    pub speed: Option<f64>,
    /// With --otlp: at most this many attempts per window become spans (an even sample).
    #[arg(long, default_value_t = 5000)]
    pub otlp_max_spans: usize,
    /// With --otlp: the ingest token to send (`faultline token create --scope ingest`).
    #[arg(long, requires = "otlp")]
    pub otlp_token: Option<String>,
}

fn parse_dur_arg(s: &str) -> Result<Dur, String> {
    match parse_duration(s) {
        Ok(d) if d.0 > 0.0 => Ok(d),
        Ok(_) => Err("duration must be > 0".into()),
        Err(e) => Err(e),
    }
}

/// Runs a `faultline sim` subcommand. The error is one line for the user.
pub fn run(args: SimArgs) -> Result<(), String> {
    match args.command {
        SimCommand::List => {
            let mut out = String::new();
            for name in builtin::names() {
                let desc = match builtin::load(name, false) {
                    Some(Ok(sc)) => sc.description,
                    _ => String::new(),
                };
                let _ = writeln!(out, "{name:<20} {desc}");
            }
            emit(&out);
            Ok(())
        }
        SimCommand::Show { name } => match builtin::text(&name) {
            Some(t) => {
                emit(t);
                Ok(())
            }
            None => Err(unknown(&name)),
        },
        SimCommand::Run(a) => run_cmd(a),
    }
}

/// Writes to stdout; a closed pipe (`| head`) is not an error worth a panic.
fn emit(text: &str) {
    use std::io::Write;
    let _ = std::io::stdout().write_all(text.as_bytes());
}

fn unknown(name: &str) -> String {
    let names: Vec<&str> = builtin::names().collect();
    format!("no built-in scenario or file named {name:?} (built-ins: {})", names.join(", "))
}

/// Loads a built-in by name, or a file by path.
pub fn load_scenario(name_or_path: &str, defended: bool) -> Result<Scenario, String> {
    if let Some(r) = builtin::load(name_or_path, defended) {
        return r.map_err(|e| format!("built-in {name_or_path}: {e}"));
    }
    let p = Path::new(name_or_path);
    if !p.exists() {
        return Err(unknown(name_or_path));
    }
    let text = std::fs::read_to_string(p).map_err(|e| format!("cannot read {}: {e}", p.display()))?;
    let parsed = if defended { Scenario::defended_from_yaml(&text) } else { Scenario::from_yaml(&text) };
    parsed.map_err(|e| format!("{}: {e}", p.display()))
}

struct Timed {
    out: RunOutput,
    wall: f64,
}

/// Export settings for `--otlp`.
struct Export {
    endpoint: otlp::Endpoint,
    speed: Option<f64>,
    max_spans: usize,
    epoch_ns: u64,
}

/// Where and how fast a library caller (the demo) has a run sent as OTLP.
#[derive(Clone, Debug)]
pub struct OtlpExport {
    /// An `http://host:port[/prefix]` OTLP/HTTP base URL.
    pub url: String,
    /// Virtual seconds per wall second; `None`: as fast as the receiver accepts.
    pub speed: Option<f64>,
    /// At most this many attempts per window become spans (an even sample).
    pub max_spans: usize,
    /// Unix time in nanoseconds that virtual time 0 maps to.
    pub epoch_ns: u64,
    /// The ingest token to send, if the receiver needs one.
    pub token: Option<String>,
}

/// Runs `sc` and sends its telemetry window by window to `export.url` as
/// OTLP/JSON (spans per attempt, every per-window metric as a gauge), paced
/// at `export.speed`. The first failed POST ends the run with its error.
/// `sent(t)` is called with the virtual time (seconds) up to which
/// everything has been sent, after each window: a receiver's clock can
/// follow it, so time never runs ahead of telemetry on a slow machine.
pub fn run_exporting(sc: &Scenario, seed: Option<u64>, defended: bool, export: &OtlpExport, sent: &mut dyn FnMut(f64)) -> Result<RunOutput, String> {
    if export.speed.is_some_and(|s| !(s > 0.0 && s.is_finite())) {
        return Err("speed must be a positive number".into());
    }
    let endpoint = otlp::Endpoint { token: export.token.clone(), ..otlp::parse_url(&export.url)? };
    let ex = Export { endpoint, speed: export.speed, max_spans: export.max_spans, epoch_ns: export.epoch_ns };
    Ok(execute_with(sc, seed, defended, false, Some(&ex), sent)?.out)
}

fn execute_with(
    sc: &Scenario,
    seed: Option<u64>,
    defended: bool,
    show_progress: bool,
    export: Option<&Export>,
    sent: &mut dyn FnMut(f64),
) -> Result<Timed, String> {
    let bar = if show_progress {
        let b = indicatif::ProgressBar::new(1000);
        b.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {msg} [{bar:40}] {percent}% sim time ({elapsed})")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b.set_message(format!("{}{}", sc.name.trim_end_matches(" (defended)"), if defended { " (defended)" } else { "" }));
        Some(b)
    } else {
        None
    };
    let start = Instant::now();
    let mut w = World::new(sc, seed);
    let end = w.end();
    // With an export, step window by window so each window is sent when it closes.
    let step = match export {
        Some(_) => crate::engine::secs(sc.window.0).max(1),
        None => (end / 200).max(1),
    };
    if export.is_some() {
        w.record_attempts();
    }
    let mut t = 0;
    let mut sent_windows = 0;
    let mut spans_sent = 0u64;
    loop {
        t = (t + step).min(end);
        let done = w.run_until(t);
        if let Some(ex) = export {
            let attempts = w.drain_attempts();
            let body = otlp::traces_json(w.series(), &attempts, ex.epoch_ns, ex.max_spans, spans_sent);
            spans_sent += attempts.len().min(ex.max_spans) as u64 + 1;
            otlp::post(&ex.endpoint, "/v1/traces", &body)?;
            while sent_windows < w.windows_closed() {
                otlp::post(&ex.endpoint, "/v1/metrics", &otlp::metrics_json(w.series(), sent_windows, ex.epoch_ns))?;
                sent_windows += 1;
            }
            sent(crate::engine::to_secs(t));
            if let Some(speed) = ex.speed {
                // Pace: virtual time t should be reached at t / speed of wall time.
                let due = crate::engine::to_secs(t) / speed;
                let elapsed = start.elapsed().as_secs_f64();
                if due > elapsed {
                    std::thread::sleep(std::time::Duration::from_secs_f64(due - elapsed));
                }
            }
        }
        if let Some(b) = &bar {
            b.set_position((t as f64 / end as f64 * 1000.0) as u64);
        }
        if done {
            break;
        }
    }
    let wall = start.elapsed().as_secs_f64();
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let totals = w.totals();
    let out = RunOutput { ground_truth: GroundTruth::of(sc, defended), totals, series: w.into_series() };
    Ok(Timed { out, wall })
}

fn run_cmd(a: RunArgs) -> Result<(), String> {
    let mut sc = load_scenario(&a.scenario, a.defended)?;
    if let Some(d) = a.duration {
        sc.duration = d;
        if sc.window.0 > d.0 {
            sc.window = d;
        }
    }
    if a.no_faults {
        sc.faults.clear();
    }
    let progress = !a.json || std::io::IsTerminal::is_terminal(&std::io::stderr());
    let export = match &a.otlp {
        None => None,
        Some(url) => {
            if a.speed.is_some_and(|s| !(s > 0.0 && s.is_finite())) {
                return Err("--speed must be a positive number".into());
            }
            // The CLI (not the engine) maps virtual time 0 to "now".
            let epoch_ns = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
            let endpoint = otlp::Endpoint { token: a.otlp_token.clone(), ..otlp::parse_url(url)? };
            Some(Export { endpoint, speed: a.speed, max_spans: a.otlp_max_spans, epoch_ns })
        }
    };
    let run = execute_with(&sc, a.seed, a.defended, progress, export.as_ref(), &mut |_| {})?;
    let mut written: Vec<String> = Vec::new();
    if let Some(dir) = &a.out {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let s = &run.out.series;
        let files: Vec<(&str, String)> = vec![
            ("edges.csv", s.edges_csv()),
            ("services.csv", s.services_csv()),
            ("flows.csv", s.flows_csv()),
            ("metrics.csv", s.metrics_csv()),
            ("series.json", serde_json::to_string(s).map_err(|e| e.to_string())?),
            ("ground_truth.json", serde_json::to_string_pretty(&run.out.ground_truth).map_err(|e| e.to_string())?),
            ("chart.svg", svg::run_chart(s, &run.out.ground_truth, &sc.chart.services)),
        ];
        for (name, body) in files {
            let p = dir.join(name);
            std::fs::write(&p, body).map_err(|e| format!("cannot write {}: {e}", p.display()))?;
            written.push(p.display().to_string());
        }
        if a.compare {
            let mut other = load_scenario(&a.scenario, !a.defended)?;
            other.duration = sc.duration;
            other.window = sc.window;
            if a.no_faults {
                other.faults.clear();
            }
            let o = execute_with(&other, a.seed, !a.defended, progress, None, &mut |_| {})?;
            let (before, after) = if a.defended { (&o.out.series, s) } else { (s, &o.out.series) };
            let gt = GroundTruth::of(&sc, false);
            let p = dir.join("compare.svg");
            std::fs::write(&p, svg::compare_chart(before, after, &gt)).map_err(|e| format!("cannot write {}: {e}", p.display()))?;
            written.push(p.display().to_string());
        }
    } else if a.compare {
        return Err("--compare needs --out DIR (it writes compare.svg)".into());
    }
    let t = &run.out.totals;
    let events_per_sec = if run.wall > 0.0 { t.events as f64 / run.wall } else { 0.0 };
    if a.json {
        let services: serde_json::Map<String, serde_json::Value> = t.services.iter().map(|(n, v)| (n.clone(), json!(v))).collect();
        let sources: serde_json::Map<String, serde_json::Value> = t.sources.iter().map(|(n, v)| (n.clone(), json!(v))).collect();
        let summary = json!({
            "scenario": run.out.ground_truth.scenario,
            "defended": a.defended,
            "seed": a.seed.or(sc.seed).unwrap_or(1),
            "events": t.events,
            "events_per_sec": events_per_sec,
            "sim_seconds": t.sim_seconds,
            "wall_seconds": run.wall,
            "peak_in_flight": t.peak_in_flight,
            "ground_truth": run.out.ground_truth,
            "services": services,
            "sources": sources,
            "caches": t.caches,
            "outputs": written,
        });
        emit(&(serde_json::to_string_pretty(&summary).map_err(|e| e.to_string())? + "\n"));
    } else {
        emit(&human_summary(&run.out, run.wall, events_per_sec, &written));
    }
    Ok(())
}

fn human_summary(out: &RunOutput, wall: f64, eps: f64, written: &[String]) -> String {
    let gt = &out.ground_truth;
    let t = &out.totals;
    let s = &out.series;
    let mut o = String::new();
    let _ = writeln!(o, "{}{}", gt.scenario, if gt.defended { " (defended)" } else { "" });
    let _ = writeln!(o, "  ground truth: {} ({}), origin {}", gt.class, gt.failure_model, gt.origin);
    if let (Some(a), Some(b)) = (gt.fault_start_s, gt.fault_end_s) {
        let _ = writeln!(o, "  fault: {a}s .. {b}s");
    }
    let _ = writeln!(o, "  {} events, {:.1} s simulated in {:.3} s wall ({:.2} M events/s)", t.events, t.sim_seconds, wall, eps / 1e6);
    let end = t.sim_seconds;
    let fault = gt.fault_start_s.unwrap_or(end);
    let fault_end = gt.fault_end_s.unwrap_or(end);
    for (name, st) in &t.sources {
        let before = s.goodput_rate(name, 0.0, fault.max(s.window_s));
        let during = s.goodput_rate(name, fault, fault_end.max(fault + s.window_s));
        let late_from = (end - (end - fault_end).max(s.window_s)).max(0.0);
        let after = s.goodput_rate(name, late_from, end);
        let _ = writeln!(
            o,
            "  {name}: {} requests, {} good, {} failed, {} wrong | goodput/s before {before:.0}, during fault {during:.0}, after {after:.0}",
            st.requests, st.goodput, st.failed, st.wrong
        );
    }
    let _ = writeln!(o, "  {:<24} {:>10} {:>10} {:>9} {:>9} {:>9} {:>10}", "service", "arrivals", "served", "dropped", "rejected", "errors", "max queue");
    for (name, st) in &t.services {
        let _ = writeln!(o, "  {name:<24} {:>10} {:>10} {:>9} {:>9} {:>9} {:>10}", st.arrivals, st.served, st.dropped, st.rejected, st.errors, st.max_queue);
    }
    for f in written {
        let _ = writeln!(o, "  wrote {f}");
    }
    o
}
