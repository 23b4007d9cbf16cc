//! `faultline incidents list|show|declare|ack|mitigate|resolve`: a client of
//! the HTTP API (`--url`, `--token` or `FAULTLINE_URL`/`FAULTLINE_TOKEN`).
//! Prints tables for people and `--json` for scripts.

use clap::{Args, Subcommand};
use faultline_api as api;
use faultline_api::client::Client;

#[derive(Args)]
pub struct IncidentsArgs {
    /// Base URL of the Faultline server.
    #[arg(long, env = "FAULTLINE_URL", default_value = "http://127.0.0.1:8080", global = true)]
    url: String,
    /// API token (see `faultline token create`).
    #[arg(long, env = "FAULTLINE_TOKEN", global = true, hide_env_values = true)]
    token: Option<String>,
    /// Print the server's JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: IncidentsCommand,
}

#[derive(Subcommand)]
enum IncidentsCommand {
    /// List incidents, newest first.
    List {
        /// Only incidents that are not resolved.
        #[arg(long)]
        open: bool,
        /// triggered, acknowledged, mitigated or resolved.
        #[arg(long)]
        status: Option<String>,
        /// SEV1, SEV2 or SEV3.
        #[arg(long)]
        severity: Option<String>,
        #[arg(long)]
        limit: Option<u32>,
    },
    /// Show one incident with its timeline.
    Show { id: String },
    /// Declare an incident by hand.
    Declare {
        title: String,
        #[arg(long, default_value = "SEV3")]
        severity: String,
        #[arg(long)]
        summary: Option<String>,
    },
    /// Acknowledge: someone is on it.
    Ack { id: String },
    /// Mark mitigated: impact has stopped, cause may remain.
    Mitigate {
        id: String,
        #[arg(long)]
        note: Option<String>,
    },
    /// Resolve.
    Resolve {
        id: String,
        #[arg(long)]
        note: Option<String>,
    },
}

pub async fn run(args: IncidentsArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.url, args.token.clone())?;
    let one = match args.command {
        IncidentsCommand::List { open, status, severity, limit } => {
            let mut q = Vec::new();
            if open {
                q.push(("open", "true".to_owned()));
            }
            if let Some(s) = status {
                q.push(("status", s));
            }
            if let Some(s) = severity {
                q.push(("severity", s));
            }
            if let Some(l) = limit {
                q.push(("limit", l.to_string()));
            }
            let list = client.list_incidents(&q).await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                print_list(&list.incidents);
            }
            return Ok(());
        }
        IncidentsCommand::Show { id } => client.incident(&id).await?,
        IncidentsCommand::Declare { title, severity, summary } => {
            client.create_incident(&api::CreateIncident { title, severity, summary }).await?
        }
        IncidentsCommand::Ack { id } => client.transition(&id, "ack", &api::TransitionRequest::default()).await?,
        IncidentsCommand::Mitigate { id, note } => client.transition(&id, "mitigate", &api::TransitionRequest { note }).await?,
        IncidentsCommand::Resolve { id, note } => client.transition(&id, "resolve", &api::TransitionRequest { note }).await?,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&one)?);
    } else {
        print_one(&one);
    }
    Ok(())
}

fn print_list(incidents: &[api::Incident]) {
    if incidents.is_empty() {
        println!("no incidents");
        return;
    }
    let mut table = comfy_table::Table::new();
    table.load_style(comfy_table::presets::NOTHING).set_header(["ID", "SEV", "STATUS", "OPENED", "TITLE"]);
    for i in incidents {
        table.add_row([&i.id, &i.severity, &i.status, &i.opened_at, &i.title]);
    }
    println!("{table}");
}

pub fn print_one(i: &api::Incident) {
    println!("{}  {}  {}", i.severity, i.status, i.title);
    println!("id:      {}", i.id);
    println!("opened:  {}", i.opened_at);
    if let Some(s) = &i.summary {
        println!("summary: {s}");
    }
    for (role, user) in &i.roles {
        println!("{role}: {user}");
    }
    if let Some(into) = &i.merged_into {
        println!("merged into: {into}");
    }
    if !i.related.is_empty() {
        println!("related: {}", i.related.join(", "));
    }
    if let Some(c) = &i.causal_chain {
        println!();
        println!("diagnosis: {}", c.sentence);
        println!(
            "class:     {}   failure model: {}",
            i.class.as_deref().unwrap_or("-"),
            i.failure_model.as_deref().unwrap_or("-")
        );
        println!("origin candidates (most likely first):");
        for (n, o) in c.origins.iter().enumerate() {
            println!("  {}. {}  ({:.0}%)", n + 1, o.subject, o.confidence * 100.0);
            for r in &o.reasons {
                println!("       - {r}");
            }
        }
        if !c.amplifiers.is_empty() {
            println!("amplifiers:");
            for a in &c.amplifiers {
                match a.factor {
                    Some(k) => println!("  {} {} ×{k:.1}", a.subject, a.mechanism),
                    None => println!("  {} {}", a.subject, a.mechanism),
                }
            }
        }
        if !c.impacted_flows.is_empty() {
            println!("impacted flows:");
            for f in &c.impacted_flows {
                match f.burn_rate {
                    Some(b) => println!("  {} (burning error budget at {b:.1}×)", f.flow),
                    None => println!("  {}", f.flow),
                }
            }
        }
    }
    if let Some(findings) = i.findings.as_ref().filter(|f| !f.is_empty()) {
        println!("findings:");
        for f in findings {
            println!("  [{}] {}  — {}", if f.active { "active" } else { "cleared" }, f.member, f.evidence);
        }
    }
    if let Some(timeline) = &i.timeline {
        println!("timeline:");
        for e in timeline {
            let details = match &e.details {
                serde_json::Value::Object(m) if !m.is_empty() => format!(" {}", serde_json::Value::Object(m.clone())),
                _ => String::new(),
            };
            println!("  #{:<3} {}  {:<16} by {}{details}", e.seq, e.at, e.kind, e.actor);
        }
    }
}
