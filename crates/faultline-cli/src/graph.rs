//! `faultline graph [--from T] [--to T] [--json]`: the dependency graph a
//! running server learned from traces, as a table of interactions (or the
//! server's JSON). A client of `GET /api/v1/graph`; no logic of its own.

use clap::Args;
use faultline_api::client::Client;
use serde_json::Value;

#[derive(Args)]
pub struct GraphArgs {
    #[arg(long, env = "FAULTLINE_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    #[arg(long, env = "FAULTLINE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Start of the range: RFC 3339 or epoch milliseconds [default: 15 minutes before --to].
    #[arg(long)]
    from: Option<String>,
    /// End of the range [default: now].
    #[arg(long)]
    to: Option<String>,
    #[arg(long)]
    json: bool,
}

fn num(v: &Value, k: &str) -> String {
    match v.get(k) {
        Some(Value::Number(n)) => match n.as_f64() {
            Some(f) if f.fract() != 0.0 => format!("{f:.1}"),
            _ => n.to_string(),
        },
        _ => "-".into(),
    }
}

pub async fn run(args: GraphArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.url, args.token.clone())?;
    let mut q = Vec::new();
    if let Some(f) = args.from {
        q.push(("from", f));
    }
    if let Some(t) = args.to {
        q.push(("to", t));
    }
    let g = client.get_json("/api/v1/graph", &q).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&g)?);
        return Ok(());
    }
    let edges = g.get("edges").and_then(Value::as_array).cloned().unwrap_or_default();
    let nodes = g.get("nodes").and_then(Value::as_array).map_or(0, Vec::len);
    if edges.is_empty() {
        println!("no interactions seen in this range ({nodes} services)");
        return Ok(());
    }
    let mut table = comfy_table::Table::new();
    table.load_style(comfy_table::presets::NOTHING).set_header([
        "CALLER",
        "CALLEE",
        "OPERATION",
        "REQUESTS",
        "ERRORS",
        "RETRIES",
        "TIMEOUTS",
        "P50 ms",
        "P99 ms",
    ]);
    for e in &edges {
        let s = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        table.add_row([
            s("caller"),
            s("callee"),
            s("operation"),
            num(e, "requests"),
            num(e, "errors"),
            num(e, "retries"),
            num(e, "timeouts"),
            num(e, "p50_ms"),
            num(e, "p99_ms"),
        ]);
    }
    println!("{table}");
    println!("{} interactions between {nodes} services", edges.len());
    Ok(())
}
