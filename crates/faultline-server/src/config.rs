//! Server configuration: a TOML file, overridden by `FAULTLINE_*` environment
//! variables, overridden by command-line flags (applied by the CLI).
//!
//! What it is: the raw settings and their validation into `Config`, with
//! errors that name the key. What it is not: a place for defaults scattered
//! elsewhere — every default is in `Config::default`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use faultline_engine::notify::proxy::ProxySettings;
use serde::Deserialize;

/// Validated settings for `faultline serve`.
#[derive(Clone, Debug)]
pub struct Config {
    /// Address of the HTTP API.
    pub listen: SocketAddr,
    /// Directory for the embedded SQLite database (`faultline.db`).
    pub data_dir: PathBuf,
    /// `postgres://…` to use PostgreSQL instead of the embedded SQLite file.
    pub database_url: Option<String>,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// API and alert requests taking longer than this (reading the body
    /// included) are answered 408.
    pub request_timeout: Duration,
    /// The same deadline for OTLP/HTTP and remote-write requests (larger bodies).
    pub ingest_request_timeout: Duration,
    /// A request's headers must arrive within this (also closes connections
    /// that send nothing, fresh or between keep-alive requests).
    pub header_read_timeout: Duration,
    /// A connection on which no byte moves either way for this long is closed.
    pub idle_timeout: Duration,
    /// Open client connections across every listener, at most; lowered at
    /// start to fit the file-descriptor limit (`serve::effective_max_connections`).
    pub max_connections: usize,
    /// Open connections from one client (an IPv4 address or an IPv6 /64), at
    /// most (default 256): one host cannot take every place under
    /// `max_connections`. Peers in `trusted_proxies` are not held to it
    /// (every client behind them shares their address).
    pub max_connections_per_client: usize,
    /// Request body bytes being read and decoded at once over every route
    /// (API and ingest share it; default 64 MiB): past it a request is
    /// answered 503/429 with Retry-After before its body is read.
    pub max_request_bytes_in_flight: usize,
    /// How long shutdown waits for in-flight requests to finish.
    pub shutdown_grace: Duration,
    /// Whether ingest (alerts, probes, check-ins, OTLP, remote-write) needs a
    /// token with the ingest (or admin) scope: `Token` by default; `None` only
    /// for a trusted loopback setup (a loud warning otherwise, see
    /// `open_ingest_warning`).
    pub ingest_auth: IngestAuthMode,
    /// PagerDuty integration keys: a `/v2/enqueue` event whose `routing_key`
    /// is one of these is accepted without an `Authorization` header (PagerDuty
    /// senders authenticate with the routing key alone).
    pub pagerduty_routing_keys: Vec<String>,
    /// Events that may wait for the correlation engine before ingest answers 503.
    pub engine_queue: usize,
    /// OTLP/gRPC listener (`None`: off). OTLP/HTTP is always also served on `listen`.
    pub otlp_grpc_listen: Option<SocketAddr>,
    /// A separate OTLP/HTTP listener (`None`: off).
    pub otlp_http_listen: Option<SocketAddr>,
    /// Check-ins (healthchecks.io semantics) that `/ping/{check}` feeds; a
    /// missing ping beyond period + grace is a crash finding.
    pub checks: Vec<faultline_core::detect::checkin::CheckSpec>,
    /// HTTP probes run from this server (`[[probes]]`).
    pub probes: Vec<crate::probes::ProbeSpec>,
    /// SLOs (OpenSLO v1 or Sloth prometheus/v1 files listed under `slos`),
    /// evaluated live on interaction windows.
    pub slos: Vec<faultline_core::slo::SloSpec>,
    /// The response workflow (`response_config` file / FAULTLINE_RESPONSE_CONFIG).
    pub response: Option<std::sync::Arc<crate::response_config::ResponseConfig>>,
    /// How often the engine and the graph learner look at the clock (close
    /// windows, fire hold-downs). One second in production; the demo, whose
    /// clock runs N times faster, divides it by N. Not a file setting.
    pub tick_interval: Duration,
    /// Limits on public status-page subscriptions (`POST /api/v2/subscribers`).
    pub subscribers: SubscriberLimits,
    /// Reverse proxies (addresses or CIDR blocks) whose `X-Forwarded-For`
    /// names the client; empty (the default): the header is never believed
    /// and the client is the connection's peer (`http::client_ip`).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Correlation: `hold_down_secs` (how long every symptom must stay clear
    /// before an incident resolves itself, 600), `reopen_window_secs` (a
    /// recurrence this soon after a resolve reopens the incident instead of
    /// opening a linked one; 0, the default, always opens a new one),
    /// `max_alerts_held` (alert and finding members held over all groups,
    /// 20,000; past it the least recently seen is evicted).
    pub correlator: faultline_core::correlate::CorrelatorConfig,
}

/// Whether the ingest endpoints ask for a token (`ingest_auth`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IngestAuthMode {
    /// An ingest or admin token from the store (`faultline token create --scope ingest`).
    Token,
    /// Anyone who can reach the port may send: only for a trusted loopback setup.
    None,
}

fn parse_ingest_auth(key: &str, s: &str) -> Result<IngestAuthMode, ConfigError> {
    match s.trim().to_ascii_lowercase().as_str() {
        "token" => Ok(IngestAuthMode::Token),
        "none" => Ok(IngestAuthMode::None),
        _ => Err(ConfigError::Invalid { key: key.to_owned(), reason: format!("{s:?} is not \"token\" or \"none\"") }),
    }
}

/// The static shared ingest secrets of earlier versions, refused with the way to their replacement.
fn removed_ingest_secret(key: &str) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        reason: "shared ingest secrets were replaced by ingest tokens: create one per source with `faultline token create --scope ingest --name <source>` and remove this setting".into(),
    }
}

fn parse_routing_keys<'a>(key: &str, keys: impl Iterator<Item = &'a str>) -> Result<Vec<String>, ConfigError> {
    keys.map(str::trim)
        .filter(|k| !k.is_empty())
        .map(|k| {
            if k.len() > 128 || !k.chars().all(|c| c.is_ascii_graphic()) {
                Err(ConfigError::Invalid { key: key.to_owned(), reason: "a routing key is 1-128 printable ASCII characters without spaces".into() })
            } else {
                Ok(k.to_owned())
            }
        })
        .collect()
}

/// Limits on status-page subscriber webhooks. Subscribing needs no token
/// (Statuspage semantics), so these are what stand between a stranger and
/// our outbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscriberLimits {
    /// Accept and deliver to endpoints on loopback, private (RFC 1918, ULA),
    /// link-local, unspecified, multicast and other non-public addresses.
    /// Off by default (it would let anyone make the server post into its own
    /// network); for tests and local demos with a receiver on 127.0.0.1.
    pub allow_private_targets: bool,
    /// Live subscribers at most; a subscribe beyond it is answered 409.
    pub max_subscribers: u64,
    /// New subscriptions per minute from all sources together (a bucket of
    /// this many, refilled at this rate): the global ceiling; beyond it the
    /// answer is 429.
    pub creations_per_minute: u32,
    /// New subscriptions per minute from one source (client address, IPv6
    /// by /64; see `Config::trusted_proxies`), under the global ceiling, so
    /// one client cannot use up everyone's budget; beyond it, 429.
    pub creations_per_source_per_minute: u32,
    /// Days an unsubscribed subscriber is kept (for the ledger lines that
    /// name it) before housekeeping deletes it; 0: at the next pass.
    pub unsubscribed_retention_days: u32,
    /// The proxy subscriber webhooks go through: the standard `HTTPS_PROXY`,
    /// `HTTP_PROXY` and `NO_PROXY` variables. The endpoint is checked (and
    /// its name resolved) before the request is handed to the proxy; the
    /// proxy itself is trusted (`notify::proxy`).
    pub proxy: ProxySettings,
}

impl Default for SubscriberLimits {
    fn default() -> SubscriberLimits {
        SubscriberLimits {
            allow_private_targets: false,
            max_subscribers: 10_000,
            creations_per_minute: 60,
            creations_per_source_per_minute: 10,
            unsubscribed_retention_days: 30,
            proxy: ProxySettings::default(),
        }
    }
}

impl Default for Config {
    fn default() -> Config {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("data"),
            database_url: None,
            max_body_bytes: 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            ingest_request_timeout: Duration::from_secs(60),
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 4096,
            max_connections_per_client: 256,
            max_request_bytes_in_flight: faultline_receivers::inflight::DEFAULT_MAX_BYTES,
            shutdown_grace: Duration::from_secs(30),
            ingest_auth: IngestAuthMode::Token,
            pagerduty_routing_keys: Vec::new(),
            engine_queue: 10_000,
            otlp_grpc_listen: Some(SocketAddr::from(([127, 0, 0, 1], 4317))),
            otlp_http_listen: Some(SocketAddr::from(([127, 0, 0, 1], 4318))),
            checks: Vec::new(),
            probes: Vec::new(),
            slos: Vec::new(),
            response: None,
            tick_interval: Duration::from_secs(1),
            subscribers: SubscriberLimits::default(),
            trusted_proxies: Vec::new(),
            correlator: faultline_core::correlate::CorrelatorConfig::default(),
        }
    }
}

/// The file format. Every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    max_body_bytes: Option<usize>,
    request_timeout_secs: Option<u64>,
    ingest_request_timeout_secs: Option<u64>,
    header_read_timeout_secs: Option<u64>,
    idle_timeout_secs: Option<u64>,
    max_connections: Option<usize>,
    max_connections_per_client: Option<usize>,
    max_request_bytes_in_flight: Option<usize>,
    shutdown_grace_secs: Option<u64>,
    hold_down_secs: Option<u64>,
    reopen_window_secs: Option<u64>,
    max_alerts_held: Option<usize>,
    /// Removed; present only to refuse it with a clear message.
    alert_ingest_token: Option<String>,
    ingest_auth: Option<String>,
    pagerduty_routing_keys: Option<Vec<String>>,
    engine_queue: Option<usize>,
    otlp_grpc_listen: Option<String>,
    otlp_http_listen: Option<String>,
    /// Removed; present only to refuse it with a clear message.
    ingest_token: Option<String>,
    #[serde(default)]
    checks: Vec<faultline_core::detect::checkin::CheckSpec>,
    #[serde(default)]
    probes: Vec<crate::probes::ProbeSpec>,
    /// SLO spec files, relative to the config file.
    #[serde(default)]
    slos: Vec<PathBuf>,
    response_config: Option<PathBuf>,
    allow_private_subscriber_targets: Option<bool>,
    max_subscribers: Option<u64>,
    subscriber_creations_per_minute: Option<u32>,
    subscriber_creations_per_source_per_minute: Option<u32>,
    unsubscribed_retention_days: Option<u32>,
    trusted_proxies: Option<Vec<String>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("invalid config file {path}: {reason}")]
    Parse { path: String, reason: String },
    #[error("invalid {key}: {reason}")]
    Invalid { key: String, reason: String },
}

pub fn parse_listen(key: &str, s: &str) -> Result<SocketAddr, ConfigError> {
    s.parse().map_err(|_| ConfigError::Invalid { key: key.to_owned(), reason: format!("{s:?} is not an address like 127.0.0.1:8080") })
}

/// An address, or `off` to disable the listener.
pub fn parse_optional_listen(key: &str, s: &str) -> Result<Option<SocketAddr>, ConfigError> {
    if s.eq_ignore_ascii_case("off") || s.is_empty() { Ok(None) } else { parse_listen(key, s).map(Some) }
}

fn parse_whole<T: std::str::FromStr>(key: &str, s: &str) -> Result<T, ConfigError> {
    s.trim().parse().map_err(|_| ConfigError::Invalid { key: key.to_owned(), reason: format!("{s:?} is not a whole number") })
}

/// Trusted proxies: addresses or CIDR blocks.
fn parse_trusted_proxies<'a>(key: &str, entries: impl Iterator<Item = &'a str>) -> Result<Vec<ipnet::IpNet>, ConfigError> {
    entries
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            crate::http::client_ip::parse_trusted(e)
                .ok_or_else(|| ConfigError::Invalid { key: key.to_owned(), reason: format!("{e:?} is not an IP address or CIDR block like 10.0.0.0/8") })
        })
        .collect()
}

fn parse_secs(key: &str, s: &str) -> Result<u64, ConfigError> {
    s.parse().map_err(|_| ConfigError::Invalid { key: key.to_owned(), reason: format!("{s:?} is not a whole number of seconds") })
}

/// A correlation period in whole seconds, at most a week.
fn correlation_secs(key: &str, secs: u64) -> Result<faultline_core::Duration, ConfigError> {
    const WEEK: u64 = 7 * 24 * 3600;
    if secs > WEEK {
        return Err(ConfigError::Invalid { key: key.into(), reason: format!("{secs} s is more than a week ({WEEK} s)") });
    }
    // Invariant: secs <= WEEK, so the cast cannot overflow.
    Ok(faultline_core::Duration::from_secs(secs as i64))
}

impl Config {
    /// Defaults, then the file (if given), then the environment.
    /// `env` is passed in (not read here) so tests stay hermetic.
    pub fn load(file: Option<&Path>, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let mut c = Config::default();
        let mut response_path: Option<PathBuf> = None;
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read { path: path.display().to_string(), reason: e.to_string() })?;
            let f: FileConfig = toml::from_str(&text).map_err(|e| ConfigError::Parse { path: path.display().to_string(), reason: e.to_string() })?;
            if let Some(l) = f.listen {
                c.listen = parse_listen("listen", &l)?;
            }
            if let Some(d) = f.data_dir {
                c.data_dir = d;
            }
            c.database_url = f.database_url.or(c.database_url);
            if let Some(b) = f.max_body_bytes {
                c.max_body_bytes = b;
            }
            if let Some(s) = f.request_timeout_secs {
                c.request_timeout = Duration::from_secs(s);
            }
            if let Some(s) = f.ingest_request_timeout_secs {
                c.ingest_request_timeout = Duration::from_secs(s);
            }
            if let Some(s) = f.header_read_timeout_secs {
                c.header_read_timeout = Duration::from_secs(s);
            }
            if let Some(s) = f.idle_timeout_secs {
                c.idle_timeout = Duration::from_secs(s);
            }
            if let Some(m) = f.max_connections {
                c.max_connections = m;
            }
            if let Some(m) = f.max_connections_per_client {
                c.max_connections_per_client = m;
            }
            if let Some(m) = f.max_request_bytes_in_flight {
                c.max_request_bytes_in_flight = m;
            }
            if let Some(s) = f.shutdown_grace_secs {
                c.shutdown_grace = Duration::from_secs(s);
            }
            if let Some(s) = f.hold_down_secs {
                c.correlator.hold_down = correlation_secs("hold_down_secs", s)?;
            }
            if let Some(s) = f.reopen_window_secs {
                c.correlator.reopen_window = correlation_secs("reopen_window_secs", s)?;
            }
            if let Some(n) = f.max_alerts_held {
                c.correlator.max_members = n.max(1);
            }
            if f.alert_ingest_token.is_some() {
                return Err(removed_ingest_secret("alert_ingest_token"));
            }
            if f.ingest_token.is_some() {
                return Err(removed_ingest_secret("ingest_token"));
            }
            if let Some(a) = &f.ingest_auth {
                c.ingest_auth = parse_ingest_auth("ingest_auth", a)?;
            }
            if let Some(k) = &f.pagerduty_routing_keys {
                c.pagerduty_routing_keys = parse_routing_keys("pagerduty_routing_keys", k.iter().map(String::as_str))?;
            }
            if let Some(q) = f.engine_queue {
                c.engine_queue = q;
            }
            if let Some(l) = f.otlp_grpc_listen {
                c.otlp_grpc_listen = parse_optional_listen("otlp_grpc_listen", &l)?;
            }
            if let Some(l) = f.otlp_http_listen {
                c.otlp_http_listen = parse_optional_listen("otlp_http_listen", &l)?;
            }
            for check in &f.checks {
                faultline_core::detect::checkin::validate_schedule(&check.schedule)
                    .map_err(|e| ConfigError::Invalid { key: format!("checks.{}.schedule", check.name), reason: e.to_string() })?;
            }
            c.checks = f.checks;
            for p in &f.probes {
                p.validate().map_err(|reason| ConfigError::Invalid { key: "probes".into(), reason })?;
            }
            c.probes = f.probes;
            let base = path.parent().unwrap_or(Path::new("."));
            for file in &f.slos {
                let full = base.join(file);
                let text = std::fs::read_to_string(&full).map_err(|e| ConfigError::Read { path: full.display().to_string(), reason: e.to_string() })?;
                let specs = faultline_core::slo::load_slo_specs(&text, None)
                    .map_err(|e| ConfigError::Parse { path: full.display().to_string(), reason: e.to_string() })?;
                c.slos.extend(specs);
            }
            response_path = f.response_config.map(|r| path.parent().unwrap_or(Path::new(".")).join(r));
            if let Some(a) = f.allow_private_subscriber_targets {
                c.subscribers.allow_private_targets = a;
            }
            if let Some(m) = f.max_subscribers {
                c.subscribers.max_subscribers = m;
            }
            if let Some(r) = f.subscriber_creations_per_minute {
                c.subscribers.creations_per_minute = r;
            }
            if let Some(r) = f.subscriber_creations_per_source_per_minute {
                c.subscribers.creations_per_source_per_minute = r;
            }
            if let Some(d) = f.unsubscribed_retention_days {
                c.subscribers.unsubscribed_retention_days = d;
            }
            if let Some(t) = &f.trusted_proxies {
                c.trusted_proxies = parse_trusted_proxies("trusted_proxies", t.iter().map(String::as_str))?;
            }
        }
        if let Some(l) = env("FAULTLINE_LISTEN") {
            c.listen = parse_listen("FAULTLINE_LISTEN", &l)?;
        }
        if let Some(d) = env("FAULTLINE_DATA_DIR") {
            c.data_dir = PathBuf::from(d);
        }
        if let Some(u) = env("FAULTLINE_DATABASE_URL") {
            c.database_url = Some(u).filter(|u| !u.is_empty());
        }
        if let Some(b) = env("FAULTLINE_MAX_BODY_BYTES") {
            c.max_body_bytes =
                b.parse().map_err(|_| ConfigError::Invalid { key: "FAULTLINE_MAX_BODY_BYTES".into(), reason: format!("{b:?} is not a number of bytes") })?;
        }
        if let Some(l) = env("FAULTLINE_OTLP_GRPC_LISTEN") {
            c.otlp_grpc_listen = parse_optional_listen("FAULTLINE_OTLP_GRPC_LISTEN", &l)?;
        }
        if let Some(l) = env("FAULTLINE_OTLP_HTTP_LISTEN") {
            c.otlp_http_listen = parse_optional_listen("FAULTLINE_OTLP_HTTP_LISTEN", &l)?;
        }
        for removed in ["FAULTLINE_INGEST_TOKEN", "FAULTLINE_ALERT_INGEST_TOKEN"] {
            if env(removed).is_some_and(|t| !t.is_empty()) {
                return Err(removed_ingest_secret(removed));
            }
        }
        if let Some(a) = env("FAULTLINE_INGEST_AUTH") {
            c.ingest_auth = parse_ingest_auth("FAULTLINE_INGEST_AUTH", &a)?;
        }
        if let Some(k) = env("FAULTLINE_PAGERDUTY_ROUTING_KEYS") {
            c.pagerduty_routing_keys = parse_routing_keys("FAULTLINE_PAGERDUTY_ROUTING_KEYS", k.split(','))?;
        }
        if let Some(s) = env("FAULTLINE_REQUEST_TIMEOUT_SECS") {
            c.request_timeout = Duration::from_secs(parse_secs("FAULTLINE_REQUEST_TIMEOUT_SECS", &s)?);
        }
        if let Some(s) = env("FAULTLINE_INGEST_REQUEST_TIMEOUT_SECS") {
            c.ingest_request_timeout = Duration::from_secs(parse_secs("FAULTLINE_INGEST_REQUEST_TIMEOUT_SECS", &s)?);
        }
        if let Some(s) = env("FAULTLINE_HEADER_READ_TIMEOUT_SECS") {
            c.header_read_timeout = Duration::from_secs(parse_secs("FAULTLINE_HEADER_READ_TIMEOUT_SECS", &s)?);
        }
        if let Some(s) = env("FAULTLINE_IDLE_TIMEOUT_SECS") {
            c.idle_timeout = Duration::from_secs(parse_secs("FAULTLINE_IDLE_TIMEOUT_SECS", &s)?);
        }
        if let Some(m) = env("FAULTLINE_MAX_CONNECTIONS") {
            c.max_connections = parse_whole("FAULTLINE_MAX_CONNECTIONS", &m)?;
        }
        if let Some(m) = env("FAULTLINE_MAX_CONNECTIONS_PER_CLIENT") {
            c.max_connections_per_client = parse_whole("FAULTLINE_MAX_CONNECTIONS_PER_CLIENT", &m)?;
        }
        if let Some(a) = env("FAULTLINE_ALLOW_PRIVATE_SUBSCRIBER_TARGETS") {
            c.subscribers.allow_private_targets = match a.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => true,
                "false" | "0" | "no" | "" => false,
                _ => {
                    return Err(ConfigError::Invalid {
                        key: "FAULTLINE_ALLOW_PRIVATE_SUBSCRIBER_TARGETS".into(),
                        reason: format!("{a:?} is not true or false"),
                    });
                }
            };
        }
        if let Some(m) = env("FAULTLINE_MAX_SUBSCRIBERS") {
            c.subscribers.max_subscribers = parse_whole("FAULTLINE_MAX_SUBSCRIBERS", &m)?;
        }
        if let Some(r) = env("FAULTLINE_SUBSCRIBER_CREATIONS_PER_MINUTE") {
            c.subscribers.creations_per_minute = parse_whole("FAULTLINE_SUBSCRIBER_CREATIONS_PER_MINUTE", &r)?;
        }
        if let Some(r) = env("FAULTLINE_SUBSCRIBER_CREATIONS_PER_SOURCE_PER_MINUTE") {
            c.subscribers.creations_per_source_per_minute = parse_whole("FAULTLINE_SUBSCRIBER_CREATIONS_PER_SOURCE_PER_MINUTE", &r)?;
        }
        if let Some(d) = env("FAULTLINE_UNSUBSCRIBED_RETENTION_DAYS") {
            c.subscribers.unsubscribed_retention_days = parse_whole("FAULTLINE_UNSUBSCRIBED_RETENTION_DAYS", &d)?;
        }
        if let Some(t) = env("FAULTLINE_TRUSTED_PROXIES") {
            c.trusted_proxies = parse_trusted_proxies("FAULTLINE_TRUSTED_PROXIES", t.split(','))?;
        }
        // The standard proxy variables, as curl and reqwest read them.
        c.subscribers.proxy = ProxySettings::from_env(env).map_err(|e| ConfigError::Invalid { key: e.var.into(), reason: e.reason.into() })?;
        if let Some(r) = env("FAULTLINE_RESPONSE_CONFIG") {
            response_path = Some(PathBuf::from(r)).filter(|p| !p.as_os_str().is_empty());
        }
        if let Some(p) = response_path {
            let r = crate::response_config::ResponseConfig::load(&p, env)
                .map_err(|e| ConfigError::Invalid { key: "response_config".into(), reason: e.to_string() })?;
            c.response = Some(std::sync::Arc::new(r));
        }
        c.validate()?;
        Ok(c)
    }

    /// The warning to log loudly at start when ingest is open to anyone
    /// (`ingest_auth = "none"`) on a listener beyond loopback; `None` when
    /// ingest needs tokens or every listener is on loopback.
    pub fn open_ingest_warning(&self) -> Option<String> {
        if self.ingest_auth != IngestAuthMode::None {
            return None;
        }
        let exposed: Vec<String> = [Some(self.listen), self.otlp_grpc_listen, self.otlp_http_listen]
            .into_iter()
            .flatten()
            .filter(|a| !a.ip().is_loopback())
            .map(|a| a.to_string())
            .collect();
        (!exposed.is_empty()).then(|| {
            format!(
                "INGEST IS OPEN TO ANYONE: ingest_auth = \"none\" while listening beyond loopback on {}; anyone who can reach these ports can open, page and resolve incidents. Use ingest tokens (`faultline token create --scope ingest`) or listen on 127.0.0.1 only",
                exposed.join(", ")
            )
        })
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_body_bytes < 1024 {
            return Err(ConfigError::Invalid { key: "max_body_bytes".into(), reason: "must be at least 1024".into() });
        }
        if self.subscribers.creations_per_minute == 0 {
            return Err(ConfigError::Invalid { key: "subscriber_creations_per_minute".into(), reason: "must be at least 1".into() });
        }
        if self.subscribers.creations_per_source_per_minute == 0 {
            return Err(ConfigError::Invalid { key: "subscriber_creations_per_source_per_minute".into(), reason: "must be at least 1".into() });
        }
        for (key, d) in [
            ("request_timeout_secs", self.request_timeout),
            ("ingest_request_timeout_secs", self.ingest_request_timeout),
            ("header_read_timeout_secs", self.header_read_timeout),
            ("idle_timeout_secs", self.idle_timeout),
        ] {
            if d.is_zero() {
                return Err(ConfigError::Invalid { key: key.into(), reason: "must be at least 1".into() });
            }
        }
        if self.max_connections == 0 {
            return Err(ConfigError::Invalid { key: "max_connections".into(), reason: "must be at least 1".into() });
        }
        if self.max_request_bytes_in_flight == 0 {
            return Err(ConfigError::Invalid { key: "max_request_bytes_in_flight".into(), reason: "must be at least 1".into() });
        }
        if self.max_connections_per_client == 0 {
            return Err(ConfigError::Invalid { key: "max_connections_per_client".into(), reason: "must be at least 1".into() });
        }
        if let Some(u) = &self.database_url
            && !(u.starts_with("postgres://") || u.starts_with("postgresql://") || u.starts_with("sqlite:"))
        {
            return Err(ConfigError::Invalid { key: "database_url".into(), reason: "must start with postgres://, postgresql:// or sqlite:".into() });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn file_then_env_override_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("faultline.toml");
        std::fs::write(&path, "listen = \"0.0.0.0:9000\"\ndata_dir = \"/var/lib/faultline\"\nrequest_timeout_secs = 5\n").unwrap();
        let c = Config::load(Some(&path), &env(&[("FAULTLINE_LISTEN", "127.0.0.1:9100")])).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:9100");
        assert_eq!(c.data_dir, PathBuf::from("/var/lib/faultline"));
        assert_eq!(c.request_timeout, Duration::from_secs(5));
    }

    /// The hold-down and the reopen window are settings, not constants.
    #[test]
    fn correlation_periods_are_configurable_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("faultline.toml");
        std::fs::write(
            &path,
            "hold_down_secs = 120
reopen_window_secs = 900
max_alerts_held = 500
",
        )
        .unwrap();
        let c = Config::load(Some(&path), &env(&[])).unwrap();
        assert_eq!(c.correlator.hold_down, faultline_core::Duration::from_secs(120));
        assert_eq!(c.correlator.reopen_window, faultline_core::Duration::from_mins(15));
        assert_eq!((c.correlator.max_members, Config::default().correlator.max_members), (500, 20_000));
        assert_eq!(Config::default().correlator.reopen_window, faultline_core::Duration::ZERO);
        std::fs::write(
            &path,
            "hold_down_secs = 99999999
",
        )
        .unwrap();
        let e = Config::load(Some(&path), &env(&[])).unwrap_err().to_string();
        assert!(e.contains("hold_down_secs") && e.contains("more than a week"), "{e}");
    }

    #[test]
    fn check_ins_load_and_bad_schedules_name_the_check() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("faultline.toml");
        std::fs::write(
            &path,
            "[[checks]]\nname = \"nightly-backup\"\ngrace = 600000\nschedule = { kind = \"cron\", expr = \"0 2 * * *\", tz = \"Europe/Berlin\" }\n",
        )
        .unwrap();
        let c = Config::load(Some(&path), &env(&[])).unwrap();
        assert_eq!(c.checks[0].name, "nightly-backup");
        std::fs::write(&path, "[[checks]]\nname = \"bad\"\ngrace = 1\nschedule = { kind = \"cron\", expr = \"99 * * * *\", tz = \"UTC\" }\n").unwrap();
        let e = Config::load(Some(&path), &env(&[])).unwrap_err().to_string();
        assert!(e.starts_with("invalid checks.bad.schedule"), "{e}");
    }

    #[test]
    fn subscriber_limits_default_to_refusing_private_targets_and_are_configurable() {
        let c = Config::load(None, &env(&[])).unwrap();
        assert_eq!(
            c.subscribers,
            SubscriberLimits {
                allow_private_targets: false,
                max_subscribers: 10_000,
                creations_per_minute: 60,
                creations_per_source_per_minute: 10,
                unsubscribed_retention_days: 30,
                proxy: ProxySettings::default(),
            }
        );
        assert!(c.trusted_proxies.is_empty(), "X-Forwarded-For is not believed by default");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("faultline.toml");
        std::fs::write(
            &path,
            "allow_private_subscriber_targets = true
max_subscribers = 50
subscriber_creations_per_minute = 5
subscriber_creations_per_source_per_minute = 2
unsubscribed_retention_days = 90
trusted_proxies = [\"10.0.0.0/8\", \"192.0.2.7\"]
",
        )
        .unwrap();
        let c = Config::load(Some(&path), &env(&[("FAULTLINE_MAX_SUBSCRIBERS", "7"), ("FAULTLINE_UNSUBSCRIBED_RETENTION_DAYS", "0")])).unwrap();
        assert_eq!(
            c.subscribers,
            SubscriberLimits {
                allow_private_targets: true,
                max_subscribers: 7,
                creations_per_minute: 5,
                creations_per_source_per_minute: 2,
                unsubscribed_retention_days: 0,
                proxy: ProxySettings::default(),
            }
        );
        assert_eq!(c.trusted_proxies, ["10.0.0.0/8".parse::<ipnet::IpNet>().unwrap(), "192.0.2.7/32".parse().unwrap()]);
        let c = Config::load(Some(&path), &env(&[("FAULTLINE_TRUSTED_PROXIES", "")])).unwrap();
        assert!(c.trusted_proxies.is_empty(), "the environment can trust nobody again");
        let e = Config::load(None, &env(&[("FAULTLINE_TRUSTED_PROXIES", "10.0.0.1, proxy.internal")])).unwrap_err().to_string();
        assert_eq!(e, "invalid FAULTLINE_TRUSTED_PROXIES: \" proxy.internal\" is not an IP address or CIDR block like 10.0.0.0/8");
        let e = Config::load(None, &env(&[("FAULTLINE_SUBSCRIBER_CREATIONS_PER_SOURCE_PER_MINUTE", "0")])).unwrap_err().to_string();
        assert_eq!(e, "invalid subscriber_creations_per_source_per_minute: must be at least 1");
        let c = Config::load(Some(&path), &env(&[("FAULTLINE_ALLOW_PRIVATE_SUBSCRIBER_TARGETS", "false")])).unwrap();
        assert!(!c.subscribers.allow_private_targets);
        let e = Config::load(None, &env(&[("FAULTLINE_ALLOW_PRIVATE_SUBSCRIBER_TARGETS", "maybe")])).unwrap_err().to_string();
        assert_eq!(e, "invalid FAULTLINE_ALLOW_PRIVATE_SUBSCRIBER_TARGETS: \"maybe\" is not true or false");
        let e = Config::load(None, &env(&[("FAULTLINE_SUBSCRIBER_CREATIONS_PER_MINUTE", "0")])).unwrap_err().to_string();
        assert_eq!(e, "invalid subscriber_creations_per_minute: must be at least 1");
    }

    #[test]
    fn subscriber_webhooks_take_the_standard_proxy_variables() {
        let c = Config::load(None, &env(&[("HTTPS_PROXY", "http://egress.internal:3128"), ("no_proxy", "example.org")])).unwrap();
        assert_eq!(c.subscribers.proxy.https.as_ref().map(|s| s.expose()), Some("http://egress.internal:3128"));
        assert_eq!((c.subscribers.proxy.http.as_ref(), c.subscribers.proxy.no_proxy.as_deref()), (None, Some("example.org")));
        let e = Config::load(None, &env(&[("HTTP_PROXY", "socks5://user:s3cret@proxy:1080")])).unwrap_err().to_string();
        assert_eq!(e, "invalid HTTP_PROXY: must be an http:// or https:// proxy");
    }

    #[test]
    fn ingest_needs_tokens_unless_opted_out_and_an_exposed_opt_out_is_warned_about() {
        let c = Config::load(None, &env(&[])).unwrap();
        assert_eq!((c.ingest_auth, c.open_ingest_warning()), (IngestAuthMode::Token, None));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("faultline.toml");
        std::fs::write(&path, "ingest_auth = \"none\"\npagerduty_routing_keys = [\"R0123\", \"R4567\"]\n").unwrap();
        let c = Config::load(Some(&path), &env(&[])).unwrap();
        assert_eq!((c.ingest_auth, c.pagerduty_routing_keys.as_slice()), (IngestAuthMode::None, ["R0123".to_owned(), "R4567".to_owned()].as_slice()));
        assert_eq!(c.open_ingest_warning(), None, "every default listener is on loopback");
        let c = Config::load(Some(&path), &env(&[("FAULTLINE_LISTEN", "0.0.0.0:8080"), ("FAULTLINE_OTLP_GRPC_LISTEN", "off")])).unwrap();
        let w = c.open_ingest_warning().unwrap();
        assert!(w.starts_with("INGEST IS OPEN TO ANYONE") && w.contains("0.0.0.0:8080") && !w.contains("4317"), "{w}");
        let c = Config::load(Some(&path), &env(&[("FAULTLINE_INGEST_AUTH", "token"), ("FAULTLINE_PAGERDUTY_ROUTING_KEYS", "A, B")])).unwrap();
        assert_eq!((c.ingest_auth, c.pagerduty_routing_keys), (IngestAuthMode::Token, vec!["A".to_owned(), "B".to_owned()]));
        let e = Config::load(None, &env(&[("FAULTLINE_INGEST_AUTH", "open")])).unwrap_err().to_string();
        assert_eq!(e, "invalid FAULTLINE_INGEST_AUTH: \"open\" is not \"token\" or \"none\"");
        let e = Config::load(None, &env(&[("FAULTLINE_PAGERDUTY_ROUTING_KEYS", "has space")])).unwrap_err().to_string();
        assert!(e.starts_with("invalid FAULTLINE_PAGERDUTY_ROUTING_KEYS: a routing key is"), "{e}");
        // The shared secrets of earlier versions say what replaced them.
        std::fs::write(&path, "alert_ingest_token = \"s3cret\"\n").unwrap();
        let e = Config::load(Some(&path), &env(&[])).unwrap_err().to_string();
        assert!(e.starts_with("invalid alert_ingest_token: shared ingest secrets were replaced by ingest tokens") && e.contains("--scope ingest"), "{e}");
        let e = Config::load(None, &env(&[("FAULTLINE_INGEST_TOKEN", "s3cret")])).unwrap_err().to_string();
        assert!(e.starts_with("invalid FAULTLINE_INGEST_TOKEN: shared ingest secrets were replaced"), "{e}");
    }

    #[test]
    fn connection_bounds_load_and_zero_is_refused() {
        let c = Config::load(None, &env(&[])).unwrap();
        assert_eq!(
            (c.header_read_timeout, c.idle_timeout, c.ingest_request_timeout, c.max_connections),
            (Duration::from_secs(10), Duration::from_secs(60), Duration::from_secs(60), 4096)
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("faultline.toml");
        std::fs::write(&path, "header_read_timeout_secs = 5\nidle_timeout_secs = 20\ningest_request_timeout_secs = 90\nmax_connections = 512\n").unwrap();
        let c = Config::load(Some(&path), &env(&[("FAULTLINE_MAX_CONNECTIONS", "256")])).unwrap();
        assert_eq!(
            (c.header_read_timeout, c.idle_timeout, c.ingest_request_timeout, c.max_connections),
            (Duration::from_secs(5), Duration::from_secs(20), Duration::from_secs(90), 256)
        );
        let e = Config::load(None, &env(&[("FAULTLINE_HEADER_READ_TIMEOUT_SECS", "0")])).unwrap_err().to_string();
        assert_eq!(e, "invalid header_read_timeout_secs: must be at least 1");
        let e = Config::load(None, &env(&[("FAULTLINE_MAX_CONNECTIONS", "many")])).unwrap_err().to_string();
        assert_eq!(e, "invalid FAULTLINE_MAX_CONNECTIONS: \"many\" is not a whole number");
    }

    #[test]
    fn errors_name_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "lisen = \"x\"\n").unwrap();
        let e = Config::load(Some(&path), &env(&[])).unwrap_err().to_string();
        assert!(e.contains("unknown field `lisen`"), "{e}");
        let e = Config::load(None, &env(&[("FAULTLINE_LISTEN", "nope")])).unwrap_err().to_string();
        assert_eq!(e, "invalid FAULTLINE_LISTEN: \"nope\" is not an address like 127.0.0.1:8080");
        let e = Config::load(None, &env(&[("FAULTLINE_DATABASE_URL", "mysql://x")])).unwrap_err().to_string();
        assert!(e.starts_with("invalid database_url"), "{e}");
    }
}
