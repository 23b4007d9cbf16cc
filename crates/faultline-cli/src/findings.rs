//! `faultline findings [--active] [--json]`: the findings in open incidents,
//! with their evidence, from a running server (`GET /api/v1/findings`).

use clap::Args;
use faultline_api::client::Client;
use serde_json::Value;

#[derive(Args)]
pub struct FindingsArgs {
    #[arg(long, env = "FAULTLINE_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    #[arg(long, env = "FAULTLINE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Only findings whose condition still holds.
    #[arg(long)]
    active: bool,
    #[arg(long)]
    json: bool,
}

pub async fn run(args: FindingsArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.url, args.token.clone())?;
    let q = if args.active { vec![("active", "true".to_owned())] } else { Vec::new() };
    let v = client.get_json("/api/v1/findings", &q).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let list = v.get("findings").and_then(Value::as_array).cloned().unwrap_or_default();
    if list.is_empty() {
        println!("no findings in open incidents");
        return Ok(());
    }
    let mut table = comfy_table::Table::new();
    table.load_style(comfy_table::presets::NOTHING).set_header(["SINCE", "KIND", "SUBJECT", "MODEL", "EVIDENCE", "STATE", "INCIDENT"]);
    for f in &list {
        let s = |k: &str| f.get(k).and_then(Value::as_str).unwrap_or("-").to_owned();
        let n = |k: &str| f.get(k).and_then(Value::as_f64);
        let evidence = match (n("observed"), n("baseline")) {
            (Some(o), Some(b)) => format!("{} = {o:.4} (baseline {b:.4})", s("measure")),
            (Some(o), None) => format!("{} = {o:.4}", s("measure")),
            _ => s("measure"),
        };
        let active = f.get("active").and_then(Value::as_bool).unwrap_or(false);
        table.add_row([
            s("started_at"),
            s("kind"),
            s("subject"),
            s("failure_model"),
            evidence,
            (if active { "active" } else { "cleared" }).to_owned(),
            s("incident"),
        ]);
    }
    println!("{table}");
    Ok(())
}
