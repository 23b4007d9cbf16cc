//! `faultline rca eval <dir> [--json]`: root-cause accuracy of the diagnosis
//! on dataset folders laid out like `../shared/data/rca` (one dataset, or a
//! folder of datasets). Thin: `faultline_eval` does the loading and scoring.

use std::path::PathBuf;

use clap::{Args, Subcommand};

#[derive(Args)]
pub struct RcaArgs {
    #[command(subcommand)]
    command: RcaCommand,
}

#[derive(Subcommand)]
enum RcaCommand {
    /// Score origin ranking (AC@1, AC@3, Avg@5) per dataset, next to published figures.
    Eval {
        /// A dataset folder, or a folder holding several.
        dir: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(args: RcaArgs) -> anyhow::Result<()> {
    match args.command {
        RcaCommand::Eval { dir, json } => {
            let reports = faultline_eval::rca_eval(&dir)?;
            if json {
                println!("{}", faultline_eval::render_json(&reports));
            } else {
                print!("{}", faultline_eval::render_table(&reports));
            }
        }
    }
    Ok(())
}
