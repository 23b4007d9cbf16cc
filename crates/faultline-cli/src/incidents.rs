//! `faultline incidents list|show|declare|ack|mitigate|resolve|reopen|
//! severity|role|note|metrics` (also spelled `faultline incident …`): a
//! client of the HTTP API (`--url`, `--token` or
//! `FAULTLINE_URL`/`FAULTLINE_TOKEN`) through `faultline-api`'s typed client.
//! Prints tables for people and `--json` for scripts. Not here: any rule —
//! the server decides; this only formats.

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
        /// A service it concerns (repeatable): its owner team is paged.
        #[arg(long = "service")]
        services: Vec<String>,
        /// A flow it impacts (repeatable): the flow's owner team is paged.
        #[arg(long = "flow")]
        flows: Vec<String>,
        /// The team that owns the response (overrides the catalogue's owners).
        #[arg(long)]
        team: Option<String>,
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
    /// Reopen a resolved incident.
    Reopen {
        id: String,
        #[arg(long)]
        reason: String,
    },
    /// Change severity, with a reason.
    Severity {
        id: String,
        /// SEV1, SEV2 or SEV3.
        severity: String,
        #[arg(long)]
        reason: String,
    },
    /// Assign a role (incident_commander, comms_lead, scribe, or any name); omit --user to unassign.
    #[command(alias = "roles")]
    Role {
        id: String,
        role: String,
        #[arg(long)]
        user: Option<String>,
    },
    /// Add a note to the timeline.
    #[command(alias = "notes")]
    Note { id: String, text: String },
    /// Time to acknowledge, mitigate and resolve over incidents: count, p50, p90, max.
    Metrics {
        /// Incidents opened at or after this RFC 3339 instant.
        #[arg(long)]
        from: Option<String>,
        /// Incidents opened before this RFC 3339 instant.
        #[arg(long)]
        to: Option<String>,
        /// Only incidents of this severity (SEV1, SEV2, SEV3).
        #[arg(long)]
        severity: Option<String>,
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
        IncidentsCommand::Declare { title, severity, summary, services, flows, team } => {
            client.create_incident(&api::CreateIncident { title, severity, summary, services, flows, team }).await?
        }
        IncidentsCommand::Ack { id } => client.transition(&id, "ack", &api::TransitionRequest::default()).await?,
        IncidentsCommand::Mitigate { id, note } => client.transition(&id, "mitigate", &api::TransitionRequest { note }).await?,
        IncidentsCommand::Resolve { id, note } => client.transition(&id, "resolve", &api::TransitionRequest { note }).await?,
        IncidentsCommand::Reopen { id, reason } => client.reopen(&id, &api::ReopenRequest { reason }).await?,
        IncidentsCommand::Severity { id, severity, reason } => client.change_severity(&id, &api::SeverityRequest { severity, reason }).await?,
        IncidentsCommand::Role { id, role, user } => client.assign_role(&id, &api::RoleRequest { role, user }).await?,
        IncidentsCommand::Note { id, text } => client.add_note(&id, &api::NoteRequest { text }).await?,
        IncidentsCommand::Metrics { from, to, severity } => {
            let q: Vec<(&str, String)> = [("from", from), ("to", to), ("severity", severity)].into_iter().filter_map(|(k, v)| v.map(|v| (k, v))).collect();
            let m = client.response_metrics(&q).await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&m)?);
            } else {
                print_metrics(&m);
            }
            return Ok(());
        }
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

/// Seconds as a short human duration: `45s`, `12m 5s`, `3h 20m`.
fn human(secs: f64) -> String {
    let s = secs.round().max(0.0) as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {}s", s / 60, s % 60),
        _ => format!("{}h {}m", s / 3600, (s % 3600) / 60),
    }
}

fn opt_human(secs: Option<f64>) -> String {
    secs.map_or_else(|| "-".to_owned(), human)
}

fn print_metrics(m: &api::ResponseMetrics) {
    let range = match (&m.from, &m.to) {
        (None, None) => "all incidents".to_owned(),
        (f, t) => format!("incidents opened {} – {}", f.as_deref().unwrap_or("…"), t.as_deref().unwrap_or("…")),
    };
    let sev = m.severity.as_deref().map(|s| format!(", {s}")).unwrap_or_default();
    println!("{range}{sev}: {} counted, {} merged (left out), {} unacknowledged, {} unresolved", m.incidents, m.merged, m.unacknowledged, m.unresolved);
    let mut table = comfy_table::Table::new();
    table.load_style(comfy_table::presets::NOTHING).set_header(["", "COUNT", "P50", "P90", "MAX"]);
    for (name, d) in [("time to acknowledge", &m.time_to_acknowledge), ("time to mitigate", &m.time_to_mitigate), ("time to resolve", &m.time_to_resolve)] {
        table.add_row([name.to_owned(), d.count.to_string(), opt_human(d.p50_seconds), opt_human(d.p90_seconds), opt_human(d.max_seconds)]);
    }
    println!("{table}");
    if m.truncated {
        println!("(only the newest 1000 incidents were read: narrow --from/--to)");
    }
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
    if let Some(r) = &i.response {
        let by = r.acknowledged_by.as_deref().map(|b| format!(" by {b}{}", if r.implicit_ack { " (by mitigating/resolving)" } else { "" })).unwrap_or_default();
        println!(
            "response: acknowledged after {}{by} · mitigated after {} · resolved after {}{}",
            opt_human(r.time_to_acknowledge_seconds),
            opt_human(r.time_to_mitigate_seconds),
            opt_human(r.time_to_resolve_seconds),
            if r.reopened > 0 { format!(" · reopened {}×", r.reopened) } else { String::new() },
        );
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
        println!("class:     {}   failure model: {}", i.class.as_deref().unwrap_or("-"), i.failure_model.as_deref().unwrap_or("-"));
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
