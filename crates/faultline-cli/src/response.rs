//! Response-workflow commands against a running server: `faultline oncall
//! who|gaps`, `faultline notifications <incident>` (through `faultline-api`'s
//! typed client) and `faultline silences list|add|expire` (Alertmanager's
//! `/api/v2` shape, so raw JSON). Incident lifecycle verbs live under
//! `faultline incidents` (`incidents.rs`). Tables for people, `--json` for
//! scripts. Not here: any rule — the server decides; this only formats.

use clap::{Args, Subcommand};
use faultline_api::client::Client;
use serde_json::{Value, json};

#[derive(Args, Clone)]
pub struct Conn {
    /// Base URL of the Faultline server.
    #[arg(long, env = "FAULTLINE_URL", default_value = "http://127.0.0.1:8080", global = true)]
    url: String,
    /// API token (see `faultline token create`).
    #[arg(long, env = "FAULTLINE_TOKEN", global = true, hide_env_values = true)]
    token: Option<String>,
    /// Print the server's JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Subcommand)]
pub enum ResponseCommand {
    /// Who is on call, and where nobody is.
    Oncall(OncallArgs),
    /// The notification ledger of an incident: every page, retry and resolve.
    Notifications {
        #[command(flatten)]
        conn: Conn,
        /// Incident id.
        incident: String,
    },
    /// Alertmanager-compatible silences.
    Silences(SilencesArgs),
}

#[derive(Args)]
pub struct OncallArgs {
    #[command(flatten)]
    conn: Conn,
    #[command(subcommand)]
    command: OncallCommand,
}

#[derive(Subcommand)]
enum OncallCommand {
    /// Who is on call at a time (default: now).
    Who {
        #[arg(long)]
        schedule: Option<String>,
        /// RFC 3339 instant, e.g. 2026-03-29T01:30:00Z.
        #[arg(long)]
        at: Option<String>,
    },
    /// Stretches with nobody on call (default: the next 14 days).
    Gaps {
        #[arg(long)]
        schedule: Option<String>,
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        to: Option<String>,
    },
}

#[derive(Args)]
pub struct SilencesArgs {
    #[command(flatten)]
    conn: Conn,
    #[command(subcommand)]
    command: SilencesCommand,
}

#[derive(Subcommand)]
enum SilencesCommand {
    /// List silences.
    List,
    /// Add a silence: `faultline silences add 'team="payments"' --duration 2h --comment deploy`.
    Add {
        /// Matchers like `team="payments"` or `severity=~"SEV2|SEV3"`.
        #[arg(required = true)]
        matchers: Vec<String>,
        /// How long, e.g. `90m`, `2h`, `1d`.
        #[arg(long, default_value = "1h")]
        duration: String,
        #[arg(long)]
        comment: String,
        /// Who is silencing [default: the token's user, else $USER].
        #[arg(long)]
        created_by: Option<String>,
    },
    /// Expire a silence now.
    Expire { id: String },
}

struct Http {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Http {
    fn new(c: &Conn) -> anyhow::Result<Http> {
        let http = reqwest::Client::builder().timeout(std::time::Duration::from_secs(30)).build()?;
        Ok(Http { http, base: c.url.trim_end_matches('/').to_owned(), token: c.token.clone() })
    }

    async fn call(&self, method: reqwest::Method, path: &str, query: &[(&str, String)], body: Option<Value>) -> anyhow::Result<Value> {
        let mut rb = self.http.request(method, format!("{}{path}", self.base)).query(query);
        if let Some(t) = &self.token {
            rb = rb.bearer_auth(t);
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let resp = rb.send().await.map_err(|e| anyhow::anyhow!("cannot reach Faultline at {}: {}", self.base, e.without_url()))?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await?;
        if (200..300).contains(&status) {
            if bytes.is_empty() {
                return Ok(Value::Null);
            }
            return Ok(serde_json::from_slice(&bytes)?);
        }
        let msg = serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
            .unwrap_or_else(|| String::from_utf8_lossy(&bytes).chars().take(200).collect());
        anyhow::bail!("{msg} (HTTP {status})")
    }
}

fn opt(q: &mut Vec<(&'static str, String)>, k: &'static str, v: Option<String>) {
    if let Some(v) = v {
        q.push((k, v));
    }
}

/// `90m`, `2h`, `1d`, `30s` → milliseconds.
fn parse_duration(s: &str) -> anyhow::Result<i64> {
    let (num, unit) = s.trim().split_at(s.trim().find(|c: char| !c.is_ascii_digit()).unwrap_or(s.trim().len()));
    let n: i64 = num.parse().map_err(|_| anyhow::anyhow!("invalid duration {s:?}: expected e.g. 90m, 2h, 1d"))?;
    let unit_ms = match unit {
        "s" => 1_000,
        "m" | "" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => anyhow::bail!("invalid duration {s:?}: unit must be s, m, h or d"),
    };
    Ok(n.saturating_mul(unit_ms))
}

fn table(header: &[&str], rows: Vec<Vec<String>>) {
    let mut t = comfy_table::Table::new();
    t.load_style(comfy_table::presets::NOTHING).set_header(header.to_vec());
    for r in rows {
        t.add_row(r);
    }
    println!("{t}");
}

fn s(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub async fn run(cmd: ResponseCommand) -> anyhow::Result<()> {
    match cmd {
        ResponseCommand::Oncall(a) => {
            let client = Client::new(&a.conn.url, a.conn.token.clone())?;
            match a.command {
                OncallCommand::Who { schedule, at } => {
                    let mut q = Vec::new();
                    opt(&mut q, "schedule", schedule);
                    opt(&mut q, "at", at);
                    let v = client.oncall(&q).await?;
                    if a.conn.json {
                        println!("{}", serde_json::to_string_pretty(&v)?);
                    } else {
                        let rows = v.on_call.iter().map(|o| {
                            let users = if o.users.is_empty() { "nobody".to_owned() } else { o.users.join(", ") };
                            let (start, end) = o.shift.as_ref().map_or(("-".to_owned(), "-".to_owned()), |sh| (sh.start.clone(), sh.end.clone()));
                            vec![o.schedule.clone(), users, start, end]
                        });
                        println!("at {}", v.at);
                        table(&["SCHEDULE", "ON CALL", "SHIFT START", "SHIFT END"], rows.collect());
                    }
                }
                OncallCommand::Gaps { schedule, from, to } => {
                    let mut q = Vec::new();
                    opt(&mut q, "schedule", schedule);
                    opt(&mut q, "from", from);
                    opt(&mut q, "to", to);
                    let v = client.coverage_gaps(&q).await?;
                    if a.conn.json {
                        println!("{}", serde_json::to_string_pretty(&v)?);
                    } else {
                        let rows: Vec<Vec<String>> =
                            v.schedules.iter().flat_map(|sc| sc.gaps.iter().map(|g| vec![sc.schedule.clone(), g.start.clone(), g.end.clone()])).collect();
                        if rows.is_empty() {
                            println!("no coverage gaps between {} and {}", v.from, v.to);
                        } else {
                            table(&["SCHEDULE", "NOBODY FROM", "UNTIL"], rows);
                        }
                    }
                }
            }
        }
        ResponseCommand::Notifications { conn, incident } => {
            let client = Client::new(&conn.url, conn.token.clone())?;
            let v = client.notifications(&incident).await?;
            if conn.json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                let rows = v.ledger.iter().map(|l| {
                    vec![l.at.clone(), l.kind.clone(), l.recipient.clone(), l.channel.clone(), l.outcome.clone(), l.attempt.to_string(), l.detail.clone()]
                });
                table(&["AT", "KIND", "RECIPIENT", "CHANNEL", "OUTCOME", "ATTEMPT", "DETAIL"], rows.collect());
            }
        }
        ResponseCommand::Silences(a) => {
            let http = Http::new(&a.conn)?;
            match a.command {
                SilencesCommand::List => {
                    let v = http.call(reqwest::Method::GET, "/api/v2/silences", &[], None).await?;
                    if a.conn.json {
                        println!("{}", serde_json::to_string_pretty(&v)?);
                    } else {
                        let rows = v.as_array().into_iter().flatten().map(|sl| {
                            let m = sl["matchers"]
                                .as_array()
                                .into_iter()
                                .flatten()
                                .map(|m| {
                                    let op = match (m["isRegex"].as_bool(), m["isEqual"].as_bool()) {
                                        (Some(true), Some(false)) => "!~",
                                        (Some(true), _) => "=~",
                                        (_, Some(false)) => "!=",
                                        _ => "=",
                                    };
                                    format!("{}{op}{:?}", s(&m["name"]), s(&m["value"]))
                                })
                                .collect::<Vec<_>>()
                                .join(",");
                            vec![s(&sl["id"]), s(&sl["status"]["state"]), m, s(&sl["endsAt"]), s(&sl["createdBy"]), s(&sl["comment"])]
                        });
                        table(&["ID", "STATE", "MATCHERS", "ENDS", "BY", "COMMENT"], rows.collect());
                    }
                }
                SilencesCommand::Add { matchers, duration, comment, created_by } => {
                    let ms = parse_duration(&duration)?;
                    let now = jiff_now();
                    let mut api = Vec::new();
                    for m in &matchers {
                        let p = faultline_core::routing::Matcher::parse(m)?;
                        api.push(p.to_api());
                    }
                    let mut body = json!({
                        "matchers": api,
                        "startsAt": faultline_core::Timestamp::from_millis(now).to_string(),
                        "endsAt": faultline_core::Timestamp::from_millis(now + ms).to_string(),
                        "comment": comment,
                    });
                    // Absent, the server takes the token's user; $USER only
                    // when the token belongs to nobody.
                    if let Some(by) = created_by {
                        body["createdBy"] = json!(by);
                    }
                    let v = match http.call(reqwest::Method::POST, "/api/v2/silences", &[], Some(body.clone())).await {
                        Err(e) if body.get("createdBy").is_none() && e.to_string().contains("createdBy is required") => {
                            match std::env::var("USER").ok().filter(|u| !u.trim().is_empty()) {
                                Some(user) => {
                                    body["createdBy"] = json!(user);
                                    http.call(reqwest::Method::POST, "/api/v2/silences", &[], Some(body)).await?
                                }
                                None => anyhow::bail!(
                                    "silences add: say who is silencing with --created-by NAME (the token belongs to no user and $USER is not set)"
                                ),
                            }
                        }
                        other => other?,
                    };
                    if a.conn.json {
                        println!("{}", serde_json::to_string_pretty(&v)?);
                    } else {
                        println!("{}", s(&v["silenceID"]));
                    }
                }
                SilencesCommand::Expire { id } => {
                    http.call(reqwest::Method::DELETE, &format!("/api/v2/silence/{id}"), &[], None).await?;
                    println!("expired {id}");
                }
            }
        }
    }
    Ok(())
}

/// Wall-clock now in ms: the CLI stamps a new silence's start.
fn jiff_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
