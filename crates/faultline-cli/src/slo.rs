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
}

fn read(path: &PathBuf, what: &str) -> anyhow::Result<String> {
    std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("cannot read {what} {}: {e}", path.display()))
}

pub fn run(args: SloArgs) -> anyhow::Result<()> {
    match args.command {
        SloCommand::Eval { spec, series, slo, json } => {
            let out = faultline_core::slo::run_eval(&read(&spec, "spec")?, &read(&series, "series")?, slo.as_deref(), json)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            print!("{out}");
            if !out.ends_with('\n') {
                println!();
            }
        }
    }
    Ok(())
}
