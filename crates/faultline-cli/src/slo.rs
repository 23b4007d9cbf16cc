//! `faultline slo status` (live, from a server) and
//! `faultline slo eval --spec FILE --series CSV [--slo NAME] [--json]`: the
//! server's burn-rate engine run offline over a `timestamp,good,total` (or
//! `timestamp,bad,total`) CSV, printing every alert's firing intervals.
//! Reading the two files is all this module does; `faultline_core::slo`
//! parses, evaluates and renders.

use std::path::PathBuf;

use clap::{Args, Subcommand};

#[derive(Args)]
pub struct SloArgs {
    #[command(subcommand)]
    command: SloCommand,
}

#[derive(Subcommand)]
enum SloCommand {
    /// Evaluate multiwindow multi-burn-rate alerts over a series.
    Eval {
        /// OpenSLO v1 or Sloth prometheus/v1 YAML.
        #[arg(long)]
        spec: PathBuf,
        /// CSV with a header `timestamp,good,total` or `timestamp,bad,total`.
        #[arg(long)]
        series: PathBuf,
        /// Only this SLO (by name) when the spec holds several.
        #[arg(long)]
        slo: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Live status of the SLOs a running server evaluates: burn, budget left, each window pair.
    Status {
        #[arg(long, env = "FAULTLINE_URL", default_value = "http://127.0.0.1:8080")]
        url: String,
        #[arg(long, env = "FAULTLINE_TOKEN", hide_env_values = true)]
        token: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

fn read(path: &PathBuf, what: &str) -> anyhow::Result<String> {
    std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("cannot read {what} {}: {e}", path.display()))
}

pub async fn run(args: SloArgs) -> anyhow::Result<()> {
    match args.command {
        SloCommand::Eval { spec, series, slo, json } => {
            let out =
                faultline_core::slo::run_eval(&read(&spec, "spec")?, &read(&series, "series")?, slo.as_deref(), json).map_err(|e| anyhow::anyhow!("{e}"))?;
            print!("{out}");
            if !out.ends_with('\n') {
                println!();
            }
        }
        SloCommand::Status { url, token, json } => {
            let client = faultline_api::client::Client::new(&url, token)?;
            let v = client.get_json("/api/v1/slos", &[]).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(());
            }
            let slos = v.get("slos").and_then(serde_json::Value::as_array).cloned().unwrap_or_default();
            if slos.is_empty() {
                println!("no SLOs configured (list OpenSLO or Sloth files under `slos` in the config)");
            }
            for s in &slos {
                let f = |k: &str| s.get(k).and_then(serde_json::Value::as_f64);
                println!(
                    "{}  objective {:.3}%  burn {}  budget left {:.1}%",
                    s.get("slo").and_then(serde_json::Value::as_str).unwrap_or("?"),
                    f("objective").unwrap_or(0.0) * 100.0,
                    f("burn_rate").map_or("-".into(), |b| format!("{b:.2}×")),
                    f("budget_remaining").unwrap_or(0.0) * 100.0
                );
                for p in s.get("pairs").and_then(serde_json::Value::as_array).into_iter().flatten() {
                    let g = |k: &str| p.get(k).and_then(serde_json::Value::as_f64);
                    println!(
                        "  {:<14} factor {:>5.1}  short {}  long {}  {}",
                        p.get("name").and_then(serde_json::Value::as_str).unwrap_or("?"),
                        g("factor").unwrap_or(0.0),
                        g("burn_short").map_or("-".into(), |b| format!("{b:.2}×")),
                        g("burn_long").map_or("-".into(), |b| format!("{b:.2}×")),
                        if p.get("firing").and_then(serde_json::Value::as_bool) == Some(true) { "FIRING" } else { "ok" }
                    );
                }
            }
        }
    }
    Ok(())
}
