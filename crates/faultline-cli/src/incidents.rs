//! `faultline incidents list|show|declare|ack|mitigate|resolve|reopen|
//! severity|title|role|note|status-update|metrics` (also spelled `faultline incident …`): a
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
        /// At most this many (the CLI follows the API's pages) [default: 100].
        #[arg(long, conflicts_with = "all", value_parser = clap::value_parser!(u32).range(1..))]
        limit: Option<u32>,
        /// Every incident that matches, page after page.
        #[arg(long)]
        all: bool,
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
    /// Rename the incident, or with --public set the title the status page shows.
    Title {
        id: String,
        title: String,
        /// Set the public status-page title (the internal title is unchanged).
        #[arg(long)]
        public: bool,
    },
    /// Post a status-page update in your own words, published at once.
    #[command(name = "status-update")]
    StatusUpdate {
        id: String,
        /// The text customers read.
        #[arg(long)]
        message: String,
        /// investigating, identified, monitoring or resolved [default: the page's current status].
        #[arg(long)]
        status: Option<String>,
        /// Component impact, repeatable: `flow-checkout=partial_outage`.
        #[arg(long = "component", value_name = "ID=STATUS")]
        components: Vec<String>,
        /// Also set the public title.
        #[arg(long)]
        public_title: Option<String>,
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
        IncidentsCommand::List { open, status, severity, limit, all } => {
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
            // Follow next_cursor until the limit, or to the end with --all.
            let want = if all { usize::MAX } else { limit.unwrap_or(100) as usize };
            let mut list = api::IncidentList { incidents: Vec::new(), next_cursor: None };
            loop {
                let remaining = want - list.incidents.len();
                let mut page_q = q.clone();
                page_q.push(("limit", remaining.min(1000).to_string()));
                if let Some(c) = list.next_cursor.take() {
                    page_q.push(("cursor", c));
                }
                let page = client.list_incidents(&page_q).await?;
                let done = page.incidents.is_empty() || page.next_cursor.is_none();
                list.incidents.extend(page.incidents);
                list.next_cursor = page.next_cursor;
                if done || list.incidents.len() >= want {
                    break;
                }
            }
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
        IncidentsCommand::Title { id, title, public } => client.change_title(&id, &api::TitleRequest { title, public }).await?,
        IncidentsCommand::StatusUpdate { id, message, status, components, public_title } => {
            let mut impact = std::collections::BTreeMap::new();
            for c in components {
                let (component, status) =
                    c.split_once('=').ok_or_else(|| anyhow::anyhow!("--component {c:?}: expected ID=STATUS, e.g. flow-checkout=partial_outage"))?;
                impact.insert(component.trim().to_owned(), status.trim().to_owned());
            }
            let p = client.post_status_update(&id, &api::StatusUpdateRequest { status, body: message, components: impact, title: public_title }).await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&p)?);
            } else {
                let u = &p.published;
                println!("published status-page update {}: {} ({} subscriber notification(s))", u.update_id, u.status, u.subscriber_notifications);
            }
            return Ok(());
        }
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
    table.load_style(comfy_table::presets::NOTHING).set_header(["#", "ID", "SEV", "STATUS", "OPENED", "TITLE"]);
    for i in incidents {
        let number = i.number.map(|n| format!("#{n}")).unwrap_or_default();
        table.add_row([&number, &i.id, &i.severity, &i.status, &i.opened_at, &i.title]);
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
    if let Some(n) = i.number {
        println!("number:  #{n} (use it anywhere the id goes)");
    }
    if let Some(t) = &i.public_title {
        println!("public:  {t}");
    }
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
        for line in render_timeline(timeline) {
            println!("  {line}");
        }
    }
}

/// The timeline as a person reads it: in time order (events are appended in
/// the order they were recorded, but a symptom's time is when it began),
/// each event in words rather than JSON, and a system note repeated word for
/// word folded into its first line with a count (`--json` keeps it raw).
pub fn render_timeline(timeline: &[api::TimelineEntry]) -> Vec<String> {
    let mut ordered: Vec<&api::TimelineEntry> = timeline.iter().collect();
    // RFC 3339 UTC strings of one format sort as times; stable, so ties keep seq order.
    ordered.sort_by(|a, b| a.at.cmp(&b.at));
    let mut lines: Vec<(String, usize, String)> = Vec::new();
    let mut seen_notes: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    for e in ordered {
        let text = describe_event(e);
        if e.kind == "system_note" {
            if let Some(&at) = seen_notes.get(&text) {
                lines[at].1 += 1;
                lines[at].2.clone_from(&e.at);
                continue;
            }
            seen_notes.insert(text.clone(), lines.len());
        }
        lines.push((format!("#{:<3} {}  {}  by {}", e.seq, e.at, text, e.actor), 1, e.at.clone()));
    }
    lines.into_iter().map(|(l, n, last)| if n > 1 { format!("{l}  (×{n}, last at {last})") } else { l }).collect()
}

fn describe_event(e: &api::TimelineEntry) -> String {
    let d = &e.details;
    let s = |k: &str| d.get(k).and_then(|v| v.as_str()).unwrap_or("");
    let with = |what: &str, extra: &str| if extra.is_empty() { what.to_owned() } else { format!("{what}: {extra}") };
    match e.kind.as_str() {
        "opened" => format!("opened {} {:?}", s("severity"), s("title")),
        "acknowledged" => "acknowledged".into(),
        "mitigated" => with("mitigated", s("note")),
        "resolved" => with("resolved", s("note")),
        "reopened" => with("reopened", s("reason")),
        "severity_changed" => format!("severity {} → {}: {}", s("from"), s("to"), s("reason")),
        "role_assigned" => format!("{} is now {}", s("user"), s("role")),
        "role_unassigned" => format!("{} unassigned", s("role")),
        "note_added" => format!("note: {}", s("text")),
        "summary_updated" => format!("summary: {}", s("summary")),
        "symptom_attached" => with(&format!("symptom {}", s("member")), s("evidence")),
        "symptom_cleared" => format!("symptom cleared: {}", s("member")),
        "diagnosis_updated" => format!("diagnosis: {}", s("sentence")),
        "absorbed" => format!("absorbed incident {}", s("from")),
        "merged_into" => format!("merged into incident {}", s("into")),
        "linked_to" => format!("recurrence of incident {}", s("previous")),
        "system_note" => format!("[{}] {}", s("component"), s("text")),
        other => match d {
            serde_json::Value::Object(m) if !m.is_empty() => format!("{other} {d}"),
            _ => other.to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: u64, at: &str, kind: &str, details: serde_json::Value) -> api::TimelineEntry {
        api::TimelineEntry { seq, at: at.into(), actor: "system:routing".into(), kind: kind.into(), details }
    }

    /// In time order, in words, and a note repeated word for word is one
    /// line with its count (it was repeated after every diagnosis update).
    #[test]
    fn the_timeline_reads_in_time_order_with_repeats_folded() {
        let note = || serde_json::json!({"component": "routing", "text": "re-routed after diagnosis_updated: payments"});
        let t = vec![
            entry(1, "2026-12-04T10:00:05.000Z", "opened", serde_json::json!({"title": "checkout errors", "severity": "SEV2"})),
            entry(
                2,
                "2026-12-04T10:00:00.000Z",
                "symptom_attached",
                serde_json::json!({"member": "error_rate_change on a → b", "evidence": "error_ratio = 0.31"}),
            ),
            entry(3, "2026-12-04T10:00:06.000Z", "system_note", note()),
            entry(4, "2026-12-04T10:00:07.000Z", "diagnosis_updated", serde_json::json!({"sentence": "b is the origin"})),
            entry(5, "2026-12-04T10:00:08.000Z", "system_note", note()),
        ];
        let lines = render_timeline(&t);
        assert_eq!(lines.len(), 4, "{lines:#?}");
        assert!(lines[0].starts_with("#2 ") && lines[0].contains("symptom error_rate_change on a → b: error_ratio = 0.31"), "{lines:#?}");
        assert!(lines[1].contains("opened SEV2 \"checkout errors\""), "{lines:#?}");
        assert!(
            lines[2].contains("[routing] re-routed after diagnosis_updated: payments") && lines[2].ends_with("(×2, last at 2026-12-04T10:00:08.000Z)"),
            "{lines:#?}"
        );
        assert!(lines.iter().all(|l| !l.contains("{\"")), "no raw JSON: {lines:#?}");
    }
}
