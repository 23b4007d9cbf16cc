//! The `faultline` binary: one executable for the server and every command a
//! person runs against it.
//!
//! `serve` runs `faultline_server::App`; `token` manages API tokens directly in
//! the store (it needs the data dir, not a running server, so the very first
//! admin token can be made); `incidents` talks to a running server over HTTP.
//! Errors print one line to stderr and exit non-zero. Not here: any logic
//! beyond argument handling and output formatting.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

mod config;
mod demo;
mod drill;
mod findings;
mod graph;
mod incidents;
mod rca;
mod response;
mod slo;
mod tokens;

#[derive(Parser)]
#[command(
    name = "faultline",
    version,
    about = "Self-hosted incident management for distributed systems",
    long_about = "Faultline receives telemetry and alerts, learns how services depend on each other, \
                  correlates symptoms into one incident with a causal chain, and runs the response.\n\n\
                  Start here:\n  faultline serve                      # API on 127.0.0.1:8080, SQLite in ./data\n  \
                  faultline token create --scope admin  # prints a token\n  \
                  faultline incidents list --token <token>"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The demo: a simulated payment outage through the real engine, explained.
    Demo(demo::DemoArgs),
    /// Run the Faultline server (HTTP API, embedded SQLite by default).
    #[command(after_help = "Response configuration (users, schedules, escalation policies, routing, receivers, channels, status page): \
                      --response-config FILE, documented key by key with a complete example in docs/response-config.md. \
                      Check it before deploying with `faultline config check FILE`.")]
    Serve(ServeArgs),
    /// Check configuration files (`config check FILE`) as `serve` would load them.
    Config(config::ConfigArgs),
    /// Create, list and revoke API tokens (works on the data dir directly).
    Token(tokens::TokenArgs),
    /// Incidents on a running server: list, show, declare, ack, mitigate, resolve,
    /// reopen, severity, role, note, metrics (`incident` works too).
    #[command(alias = "incident")]
    Incidents(incidents::IncidentsArgs),
    /// Findings (detector output with evidence) in open incidents.
    Findings(findings::FindingsArgs),
    /// The dependency graph learned from traces, as a table.
    Graph(graph::GraphArgs),
    /// Root-cause accuracy on labelled fault datasets.
    Rca(rca::RcaArgs),
    /// Run simulator scenarios through the real detectors and correlator and score them.
    Drill(drill::DrillArgs),
    /// SLOs: live status from a server, and offline burn-rate evaluation.
    Slo(slo::SloArgs),
    /// The incident simulator: list, show and run scenarios.
    Sim(faultline_sim::cli::SimArgs),
    #[command(flatten)]
    Response(response::ResponseCommand),
}

/// Where the store is: shared by `serve` and `token`.
#[derive(Args, Clone)]
pub struct StoreArgs {
    /// TOML config file (see README); flags and FAULTLINE_* env override it.
    #[arg(long, env = "FAULTLINE_CONFIG")]
    config: Option<PathBuf>,
    /// Directory for the embedded SQLite database [default: ./data].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Use PostgreSQL instead of SQLite, e.g. postgres://faultline@localhost/faultline.
    #[arg(long)]
    database_url: Option<String>,
    /// The response configuration: users, schedules, escalation policies,
    /// routing, channels (docs/response-config.md) [env FAULTLINE_RESPONSE_CONFIG].
    #[arg(long)]
    response_config: Option<PathBuf>,
}

impl StoreArgs {
    /// Config file, then environment, then these flags.
    pub fn config(&self) -> anyhow::Result<faultline_server::Config> {
        self.load(false)
    }

    /// The same for commands that send nothing (`token`): a channel secret
    /// (`*_env`) not set in this shell is taken as set, so a token can be
    /// made where the server's secrets are not exported.
    pub fn config_without_secrets(&self) -> anyhow::Result<faultline_server::Config> {
        self.load(true)
    }

    fn load(&self, secrets_optional: bool) -> anyhow::Result<faultline_server::Config> {
        let env = |k: &str| match (k, &self.response_config) {
            // The flag wins over the environment and the config file's key.
            ("FAULTLINE_RESPONSE_CONFIG", Some(p)) => Some(p.display().to_string()),
            _ => std::env::var(k).ok().or_else(|| {
                // Faultline's own settings and the proxy variables keep "unset".
                let own = k.starts_with("FAULTLINE_") || k.to_ascii_uppercase().ends_with("_PROXY");
                (secrets_optional && !own).then(|| "unset-here".to_owned())
            }),
        };
        let mut c = faultline_server::Config::load(self.config.as_deref(), &env)?;
        if let Some(d) = &self.data_dir {
            c.data_dir = d.clone();
        }
        if let Some(u) = &self.database_url {
            c.database_url = Some(u.clone());
        }
        c.validate()?;
        Ok(c)
    }
}

#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Address for the HTTP API [default: 127.0.0.1:8080; env FAULTLINE_LISTEN].
    #[arg(long)]
    listen: Option<String>,
    /// OTLP/gRPC listener, or `off` [default: 127.0.0.1:4317; env FAULTLINE_OTLP_GRPC_LISTEN].
    #[arg(long)]
    otlp_grpc_listen: Option<String>,
    /// Separate OTLP/HTTP listener, or `off` (OTLP/HTTP is also on --listen)
    /// [default: 127.0.0.1:4318; env FAULTLINE_OTLP_HTTP_LISTEN].
    #[arg(long)]
    otlp_http_listen: Option<String>,
}

/// A reader that stopped reading (`faultline incidents list | head`) is not
/// an error: Rust's `println!` panics on a closed pipe, so that one panic
/// ends the process quietly, as `cat` would, instead of printing a panic.
fn exit_quietly_on_a_closed_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info.payload().downcast_ref::<String>().map(String::as_str).or_else(|| info.payload().downcast_ref::<&str>().copied()).unwrap_or("");
        if message.contains("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}

fn main() -> ExitCode {
    exit_quietly_on_a_closed_pipe();
    let cli = Cli::parse();
    // One crypto provider for every TLS user in the process (reqwest, sqlx):
    // reqwest is built without a default provider to avoid a second one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Demo(args) => demo::run(args).await,
            Command::Serve(args) => serve(args).await,
            Command::Config(args) => config::run(args),
            Command::Token(args) => tokens::run(args).await,
            Command::Incidents(args) => incidents::run(args).await,
            Command::Findings(args) => findings::run(args).await,
            Command::Graph(args) => graph::run(args).await,
            Command::Rca(args) => rca::run(args),
            Command::Drill(args) => drill::run(args),
            Command::Slo(args) => slo::run(args).await,
            Command::Sim(args) => faultline_sim::cli::run(args).map_err(anyhow::Error::msg),
            Command::Response(cmd) => response::run(cmd).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One clear line: the error and its causes, joined.
            eprintln!("error: {}", format_chain(&e));
            ExitCode::FAILURE
        }
    }
}

fn format_chain(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let s = cause.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ")
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("FAULTLINE_LOG").unwrap_or_else(|_| "info,sqlx=warn".into()))
        .with_writer(std::io::stderr)
        // Colour only for a person at a terminal, never into a log file.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let mut config = args.store.config()?;
    if let Some(l) = &args.listen {
        config.listen = faultline_server::config::parse_listen("--listen", l)?;
    }
    if let Some(l) = &args.otlp_grpc_listen {
        config.otlp_grpc_listen = faultline_server::config::parse_optional_listen("--otlp-grpc-listen", l)?;
    }
    if let Some(l) = &args.otlp_http_listen {
        config.otlp_http_listen = faultline_server::config::parse_optional_listen("--otlp-http-listen", l)?;
    }
    let app = faultline_server::App::open(config).await?;
    let listener = app.bind().await?;
    // Printed on stdout so scripts (and our own e2e test) can find the port.
    println!("faultline listening on http://{}", listener.local_addr()?);
    app.run(listener, faultline_server::shutdown_signal()).await
}
