//! `faultline config check FILE`: validates a response configuration the way
//! `faultline serve` does at start-up — every reference (users, schedules,
//! escalation policies, receivers, channels, teams) resolved — for CI, like
//! `amtool check-config`. Exit 0 and a summary when it would start; exit 1
//! and one line naming `file:line` and the unknown name when it would not.
//!
//! Not here: any rule — it calls `ResponseConfig::load`, the one loader.
//! Secrets (`*_env` keys) need not be set where the check runs: an unset
//! variable is checked as set and listed in the summary.

use std::cell::RefCell;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use faultline_server::response_config::ResponseConfig;

#[derive(Args)]
pub struct ConfigArgs {
    #[command(subcommand)]
    command: ConfigCommand,
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Check a response configuration (docs/response-config.md): exit 0 if
    /// `faultline serve --response-config FILE` would accept it, else 1 with
    /// file:line and the unknown name.
    Check {
        /// The response configuration file (YAML, or TOML when it ends in .toml).
        file: PathBuf,
    },
}

pub fn run(args: ConfigArgs) -> anyhow::Result<()> {
    match args.command {
        ConfigCommand::Check { file } => {
            let unset = RefCell::new(Vec::new());
            let env = |k: &str| {
                std::env::var(k).ok().filter(|v| !v.is_empty()).or_else(|| {
                    unset.borrow_mut().push(k.to_owned());
                    Some("unset-in-check".to_owned())
                })
            };
            let c = ResponseConfig::load(&file, &env)?;
            let s = &c.setup;
            println!(
                "{}: ok — {} user(s), {} schedule(s), {} escalation polic(ies), {} receiver(s), {} channel(s){}",
                file.display(),
                c.users.len(),
                c.schedules.len(),
                s.policies.len(),
                s.receivers.len(),
                c.channels.len(),
                if s.router.is_some() { ", a routing tree" } else { "" }
            );
            let unset = unset.into_inner();
            if !unset.is_empty() {
                println!("not set here (checked as set): {}", unset.join(", "));
            }
            Ok(())
        }
    }
}
