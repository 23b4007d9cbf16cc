//! The response configuration file (YAML, or TOML when the name ends in
//! `.toml`): users and their contact methods, schedules, escalation
//! policies, the Alertmanager-style routing tree with receivers, channels
//! (secrets from environment variables), and the status page.
//!
//! ```yaml
//! base_url: https://faultline.example.com
//! catalogue_file: catalogue.yaml        # teams, services, flows (relative to this file)
//! users:
//!   - id: alice
//!     contacts: [{channel: ops-webhook}, {channel: mail, address: alice@example.com}]
//! schedules:                            # faultline_core::oncall::ScheduleConfig
//!   - {name: payments-primary, time_zone: Europe/London, layers: [...]}
//! escalation_policies:                  # faultline_core::escalation::EscalationPolicy
//!   - {name: payments, levels: [{delay_minutes: 5, targets: [{schedule: payments-primary}]}]}
//! default_policy: payments              # when no route names one
//! routing:                              # faultline_core::routing::RoutingConfig (optional)
//!   route: {receiver: default, routes: [{matchers: ['team="payments"'], receiver: payments, escalation_policy: payments}]}
//! receivers:                            # incident-level channels per receiver
//!   - {name: payments, channels: [payments-slack, pagerduty]}
//! channels:
//!   - {name: ops-webhook, type: webhook, url_env: OPS_WEBHOOK_URL}
//!   - {name: payments-slack, type: slack, url_env: SLACK_WEBHOOK_URL, max_per_sec: 1}
//!   - {name: payments-room, type: slack, token_env: SLACK_BOT_TOKEN, channel: C0123ABCD}  # edits one message per incident
//!   - {name: mail, type: email, host: 127.0.0.1, port: 25, from: faultline@example.com}
//!   - {name: smtp, type: email, host: smtp.example.com, tls: starttls, username: faultline, password_env: SMTP_PASSWORD, from: faultline@example.com}
//!     # tls: none (default, port 25) | starttls (587) | implicit (SMTPS, 465); ca_file: private CA (PEM)
//!   - {name: pagerduty, type: pagerduty, routing_key_env: PD_ROUTING_KEY}
//! status_page: {name: Example, url: https://status.example.com, auto_publish: false}
//! retry: {base_ms: 2000, max_backoff_ms: 300000, max_attempts: 12}
//! severity:                             # faultline_core::severity::SeverityDefinitions (optional)
//!   critical_flows: [checkout]          # default: every catalogue flow
//!   default: SEV3                       # when no rule matches
//!   rules:                              # first match wins; default: the built-in SEV1–SEV3 rules
//!     - {severity: SEV1, name: core flow fast burn, when: {critical_flow_impacted: true, min_burn_rate: 14.4}}
//!     - {severity: SEV1, name: several flows burning, when: {min_impacted_flows: 2, min_burn_rate: 6, min_burning_slos: 2}}
//!     - {severity: SEV2, name: SLO burning, when: {min_burn_rate: 6}}
//!     - {severity: SEV2, when: {any_flow: [login, search]}}
//!   alert_severities: {page: SEV1, p1: SEV1}   # over the built-in map below
//! ```
//!
//! Alert severities: an alert's own `severity` label (PagerDuty's
//! `payload.severity`) suggests a SEV through `alert_severities`; the
//! built-in map is `critical` → SEV1; `error`, `high`, `major`, `page` →
//! SEV2; `warning`, `minor`, `info`, `low`, `ticket`, `none` → SEV3 (and
//! `sev1`–`sev3`). Keys given replace or extend it. An incident takes the
//! most severe suggestion and is never lowered by one (a lower one is noted).
//!
//! Severity rules: each rule's `when` holds when every condition it sets
//! holds — `critical_flow_impacted` (a `critical_flows` flow is impacted, or
//! none is when `false`), `min_impacted_flows`, `any_flow` (one of these
//! flows is impacted), `min_burn_rate` (the fastest SLO burn, 1.0 = on
//! budget) with `min_burning_slos` (how many SLOs must burn that fast,
//! default 1). Rules are tried in order; the first that holds sets the
//! suggested severity, with its reason on the timeline. The same section in
//! TOML is `[severity]` with `[[severity.rules]]` tables. Errors name the
//! field: `severity: rule 2: min_burn_rate must be a positive number`,
//! `severity: critical_flows: unknown flow "chekout" (not in the catalogue)`.
//!
//! What it is: parsing and validation into the engine's `ResponseSetup` plus
//! the channel table, with errors naming the key. Secrets are read from the
//! environment (`*_env` keys) or given inline, and held as `Secret`s that
//! never print. What it is not: the runtime (`faultline_engine::response`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use faultline_core::catalogue::Catalogue;
use faultline_core::escalation::{EscalationPolicy, StaticDirectory, Target};
use faultline_core::oncall::ScheduleConfig;
use faultline_core::routing::{MatchOp, RouteConfig, RoutingConfig};
use faultline_core::severity::{Rule, SeverityDefinitions};
use faultline_core::status_page::{ComponentConfig, PageInfo, components_from_flows};
use faultline_core::{TeamId, Timestamp, UserId};
use faultline_engine::notify::email::{SmtpSettings, SmtpTls};
use faultline_engine::notify::worker::RetryPolicy;
use faultline_engine::notify::{Channel, ChannelKind, PAGERDUTY_EVENTS_URL, SLACK_API_URL, Secret};
use faultline_engine::response::{ContactMethod, ResponseSetup};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    base_url: Option<String>,
    #[serde(default)]
    catalogue_file: Option<String>,
    #[serde(default)]
    users: Vec<UserDecl>,
    #[serde(default)]
    schedules: Vec<ScheduleConfig>,
    #[serde(default)]
    escalation_policies: Vec<EscalationPolicy>,
    #[serde(default)]
    default_policy: Option<String>,
    #[serde(default)]
    routing: Option<RoutingConfig>,
    #[serde(default)]
    receivers: Vec<ReceiverDecl>,
    #[serde(default)]
    channels: Vec<ChannelDecl>,
    #[serde(default)]
    status_page: Option<StatusPageDecl>,
    #[serde(default)]
    retry: Option<RetryDecl>,
    #[serde(default)]
    severity: Option<SeverityDecl>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeverityDecl {
    #[serde(default)]
    critical_flows: Option<Vec<faultline_core::FlowName>>,
    #[serde(default)]
    rules: Option<Vec<Rule>>,
    #[serde(default)]
    default: Option<faultline_core::incident::Severity>,
    /// Alert severity (label value) → SEV, over the built-in map.
    #[serde(default)]
    alert_severities: Option<BTreeMap<String, faultline_core::incident::Severity>>,
}

/// The configured alert severities laid over the built-in ones (a key given
/// replaces the built-in mapping of that name; keys are matched lowercased).
fn merged_alert_severities(
    mut standard: BTreeMap<String, faultline_core::incident::Severity>,
    given: Option<BTreeMap<String, faultline_core::incident::Severity>>,
) -> Result<BTreeMap<String, faultline_core::incident::Severity>, String> {
    for (k, v) in given.unwrap_or_default() {
        let key = k.trim().to_lowercase();
        if key.is_empty() {
            return Err("severity: alert_severities: an empty severity name cannot match any alert".into());
        }
        standard.insert(key, v);
    }
    Ok(standard)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserDecl {
    id: UserId,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    contacts: Vec<ContactDecl>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ContactDecl {
    channel: String,
    #[serde(default)]
    address: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReceiverDecl {
    name: String,
    #[serde(default)]
    channels: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, tag = "type", rename_all = "snake_case")]
enum ChannelDecl {
    Webhook {
        name: String,
        #[serde(default)]
        url: Option<String>,
        #[serde(default)]
        url_env: Option<String>,
        #[serde(default)]
        max_per_sec: Option<f64>,
    },
    /// An incoming webhook (`url`/`url_env`: every message is new) or the
    /// Web API (`token`/`token_env` and `channel`: an incident's messages
    /// edit one message in place).
    Slack {
        name: String,
        #[serde(default)]
        url: Option<String>,
        #[serde(default)]
        url_env: Option<String>,
        #[serde(default)]
        token: Option<String>,
        #[serde(default)]
        token_env: Option<String>,
        #[serde(default)]
        channel: Option<String>,
        #[serde(default)]
        api_url: Option<String>,
        #[serde(default)]
        max_per_sec: Option<f64>,
    },
    Email {
        name: String,
        host: String,
        /// Default: 25 plain, 587 STARTTLS, 465 implicit TLS.
        #[serde(default)]
        port: Option<u16>,
        /// `none` (default), `starttls` or `implicit`.
        #[serde(default)]
        tls: SmtpTls,
        /// A private CA certificate (PEM file, relative to this file) to trust.
        #[serde(default)]
        ca_file: Option<String>,
        from: String,
        #[serde(default)]
        default_to: Option<String>,
        #[serde(default)]
        username: Option<String>,
        #[serde(default)]
        password: Option<String>,
        #[serde(default)]
        password_env: Option<String>,
        #[serde(default)]
        max_per_sec: Option<f64>,
    },
    Pagerduty {
        name: String,
        #[serde(default)]
        routing_key: Option<String>,
        #[serde(default)]
        routing_key_env: Option<String>,
        #[serde(default)]
        events_url: Option<String>,
        #[serde(default)]
        max_per_sec: Option<f64>,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusPageDecl {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    time_zone: Option<String>,
    #[serde(default)]
    auto_publish: bool,
    /// Defaults to one component per catalogue flow.
    #[serde(default)]
    components: Option<Vec<ComponentConfig>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RetryDecl {
    #[serde(default)]
    base_ms: Option<u64>,
    #[serde(default)]
    max_backoff_ms: Option<u64>,
    #[serde(default)]
    max_attempts: Option<u32>,
    #[serde(default)]
    lease_ms: Option<u64>,
}

/// A loaded, validated response configuration.
#[derive(Clone, Debug)]
pub struct ResponseConfig {
    pub setup: Arc<ResponseSetup>,
    pub channels: BTreeMap<String, Channel>,
    pub retry: RetryPolicy,
    pub page: PageInfo,
    pub schedules: Vec<ScheduleConfig>,
    pub users: Vec<(UserId, Option<String>)>,
    /// How the correlator suggests SEV1–SEV3 (`severity` section; the
    /// built-in rules with every catalogue flow critical when absent).
    pub severity: SeverityDefinitions,
}

/// A refused response configuration: the file (the response config, or the
/// catalogue it names), the line of the offending name when it can be found,
/// and the reason naming the key and the unknown name.
#[derive(Debug, thiserror::Error)]
#[error("response config {}: {reason}", location(path, *line))]
pub struct ResponseConfigError {
    pub path: String,
    /// 1-based line of the offending name, when it can be found.
    pub line: Option<usize>,
    pub reason: String,
}

fn location(path: &str, line: Option<usize>) -> String {
    match line {
        Some(l) => format!("{path}:{l}"),
        None => path.to_owned(),
    }
}

/// Why `build` refused, and where to point: the name to look for and the
/// top-level section it sits under (and whether it is in the catalogue file).
#[derive(Debug)]
struct Fail {
    reason: String,
    at: Option<Spot>,
}

#[derive(Debug)]
struct Spot {
    in_catalogue: bool,
    section: &'static str,
    name: String,
}

impl From<String> for Fail {
    fn from(reason: String) -> Fail {
        Fail { reason, at: None }
    }
}

/// A refusal pointing at `name` under the response file's `section`.
fn refuse(section: &'static str, name: &str, reason: String) -> Fail {
    Fail { reason, at: Some(Spot { in_catalogue: false, section, name: name.to_owned() }) }
}

/// The 1-based line where `name` first appears as a whole word at or after
/// the top-level `section` (a YAML `section:` key or a TOML `[section]`,
/// `[[section]]`, `[section.…]` or `section =` line), comments skipped.
/// The parsers used here keep no positions for values, so the line is found
/// in the text: the name is unknown, so its first occurrence in its section
/// is the reference being refused.
fn line_of(text: &str, section: &str, name: &str) -> Option<usize> {
    let header = |l: &str| {
        let t = l.trim_end();
        (t.starts_with(section) && t[section.len()..].trim_start().starts_with([':', '=']))
            || ["[", "[["].iter().any(|open| t.strip_prefix(open).is_some_and(|r| r.starts_with(section) && r[section.len()..].starts_with([']', '.'])))
    };
    let start = text.lines().position(header).unwrap_or(0);
    let word = |c: char| c.is_alphanumeric() || "-_.@".contains(c);
    let has = |line: &str| {
        let line = line.split(" #").next().unwrap_or(line);
        if line.trim_start().starts_with('#') {
            return false;
        }
        line.match_indices(name).any(|(i, _)| {
            let before = line[..i].chars().next_back();
            let after = line[i + name.len()..].chars().next();
            !before.is_some_and(word) && !after.is_some_and(word)
        })
    };
    text.lines().enumerate().skip(start).find(|(_, l)| has(l)).map(|(i, _)| i + 1)
}

fn names<'a>(known: impl Iterator<Item = &'a str>) -> String {
    let v: Vec<&str> = known.collect();
    if v.is_empty() { "none declared".to_owned() } else { v.join(", ") }
}

impl ResponseConfig {
    /// An empty configuration: nothing routed, nobody paged, a status page
    /// with no components.
    pub fn empty() -> ResponseConfig {
        ResponseConfig {
            setup: Arc::new(ResponseSetup::default()),
            channels: BTreeMap::new(),
            retry: RetryPolicy::default(),
            page: default_page(),
            schedules: Vec::new(),
            users: Vec::new(),
            severity: SeverityDefinitions::standard(Vec::new()),
        }
    }

    /// Reads and validates the file; `env` resolves `*_env` secrets.
    pub fn load(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<ResponseConfig, ResponseConfigError> {
        let err = |reason: String| ResponseConfigError { path: path.display().to_string(), line: None, reason };
        let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read: {e}")))?;
        let toml = path.extension().is_some_and(|e| e == "toml");
        let mut config = parse(&text, toml, path.parent().unwrap_or(Path::new(".")), env).map_err(|(f, catalogue)| {
            let Some(spot) = f.at else { return err(f.reason) };
            match (&catalogue, spot.in_catalogue) {
                (Some((p, t)), true) => ResponseConfigError { path: p.display().to_string(), line: line_of(t, spot.section, &spot.name), reason: f.reason },
                _ => ResponseConfigError { path: path.display().to_string(), line: line_of(&text, spot.section, &spot.name), reason: f.reason },
            }
        })?;
        // Components made from the catalogue's flows were defined when this
        // file was last written: say so rather than 1970 on the status page.
        let written = std::fs::metadata(path).and_then(|m| m.modified()).ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
        if let Some(d) = written {
            let at = Timestamp::from_millis(i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
            for c in &mut Arc::make_mut(&mut config.setup).components {
                if c.created_at == Timestamp::EPOCH {
                    c.created_at = at;
                }
            }
        }
        Ok(config)
    }

    /// Parses and validates a configuration's text (TOML if `toml`, else
    /// YAML) as `load` does a file's; a `catalogue_file` is read relative to
    /// `base_dir`. The error is the reason alone (`load` adds the path and line).
    pub fn from_text(text: &str, toml: bool, base_dir: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<ResponseConfig, String> {
        parse(text, toml, base_dir, env).map_err(|(f, _)| f.reason)
    }
}

/// The catalogue file's path and text, for pointing at a line in it.
type CatalogueText = Option<(std::path::PathBuf, String)>;

fn parse(text: &str, toml: bool, base_dir: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<ResponseConfig, (Fail, CatalogueText)> {
    let plain = |reason: String| (Fail::from(reason), None);
    let file: File =
        if toml { toml::from_str(text).map_err(|e| plain(e.to_string()))? } else { serde_saphyr::from_str(text).map_err(|e| plain(e.to_string()))? };
    let (catalogue, catalogue_text) = match &file.catalogue_file {
        Some(rel) => {
            let p = base_dir.join(rel);
            let t = std::fs::read_to_string(&p).map_err(|e| plain(format!("catalogue_file {}: {e}", p.display())))?;
            let c = Catalogue::from_yaml(&t).map_err(|e| plain(format!("catalogue_file {}: {e}", p.display())))?;
            (c, Some((p, t)))
        }
        None => (Catalogue::default(), None),
    };
    build(file, catalogue, base_dir, env).map_err(|f| (f, catalogue_text))
}

fn default_page() -> PageInfo {
    PageInfo { id: "faultline".into(), name: "Status".into(), url: "http://localhost:8080/status".into(), time_zone: "Etc/UTC".into() }
}

fn secret(channel: &str, key: &str, inline: Option<String>, env_key: Option<String>, env: &dyn Fn(&str) -> Option<String>) -> Result<Secret, Fail> {
    match (inline, env_key) {
        (_, Some(var)) => env(&var)
            .filter(|v| !v.is_empty())
            .map(Secret::new)
            .ok_or_else(|| refuse("channels", &var, format!("channel {channel}: environment variable {var} ({key}_env) is not set"))),
        (Some(v), None) => Ok(Secret::new(v)),
        (None, None) => Err(refuse("channels", channel, format!("channel {channel}: set {key} or {key}_env"))),
    }
}

fn build(file: File, catalogue: Catalogue, base_dir: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<ResponseConfig, Fail> {
    let mut channels = BTreeMap::new();
    let mut ack_channels = BTreeSet::new();
    for c in file.channels {
        let (name, kind, max_per_sec) = match c {
            ChannelDecl::Webhook { name, url, url_env, max_per_sec } => {
                let url = secret(&name, "url", url, url_env, env)?;
                (name, ChannelKind::Webhook { url }, max_per_sec)
            }
            ChannelDecl::Slack { name, url, url_env, token, token_env, channel, api_url, max_per_sec } => {
                let web_api = token.is_some() || token_env.is_some();
                if web_api && (url.is_some() || url_env.is_some()) {
                    return Err(refuse("channels", &name, format!("channel {name}: set url (incoming webhook) or token (Web API), not both")));
                }
                let kind = if web_api {
                    let token = secret(&name, "token", token, token_env, env)?;
                    let Some(channel) = channel.filter(|c| !c.trim().is_empty()) else {
                        return Err(refuse("channels", &name, format!("channel {name}: a Slack token needs channel (the channel id, e.g. C0123ABCD)")));
                    };
                    ChannelKind::SlackApi { token, channel, api_url: api_url.unwrap_or_else(|| SLACK_API_URL.into()) }
                } else {
                    if channel.is_some() || api_url.is_some() {
                        return Err(refuse(
                            "channels",
                            &name,
                            format!("channel {name}: channel and api_url need token (the Web API); an incoming webhook posts where it was made for"),
                        ));
                    }
                    ChannelKind::Slack { webhook_url: secret(&name, "url", url, url_env, env)? }
                };
                // Slack allows about one message per second per webhook (and channel).
                (name, kind, Some(max_per_sec.unwrap_or(1.0)))
            }
            ChannelDecl::Email { name, host, port, tls, ca_file, from, default_to, username, password, password_env, max_per_sec } => {
                let password = if password.is_some() || password_env.is_some() { Some(secret(&name, "password", password, password_env, env)?) } else { None };
                let loopback = matches!(host.as_str(), "localhost" | "127.0.0.1" | "::1" | "[::1]");
                if tls == SmtpTls::None && (username.is_some() || password.is_some()) && !loopback {
                    return Err(refuse(
                        "channels",
                        &name,
                        format!("channel {name}: username/password need tls: starttls or implicit (credentials would cross the network in clear)"),
                    ));
                }
                if tls == SmtpTls::None && ca_file.is_some() {
                    return Err(refuse("channels", &name, format!("channel {name}: ca_file needs tls: starttls or implicit")));
                }
                let ca_pem = match ca_file {
                    Some(rel) => {
                        let p = base_dir.join(&rel);
                        Some(std::fs::read_to_string(&p).map_err(|e| refuse("channels", &rel, format!("channel {name}: ca_file {}: {e}", p.display())))?)
                    }
                    None => None,
                };
                let port = port.unwrap_or_else(|| tls.default_port());
                (name, ChannelKind::Email(SmtpSettings { host, port, from, default_to, username, password, tls, ca_pem }), max_per_sec)
            }
            ChannelDecl::Pagerduty { name, routing_key, routing_key_env, events_url, max_per_sec } => {
                let routing_key = secret(&name, "routing_key", routing_key, routing_key_env, env)?;
                ack_channels.insert(name.clone());
                (name, ChannelKind::PagerDuty { routing_key, events_url: events_url.unwrap_or_else(|| PAGERDUTY_EVENTS_URL.into()) }, max_per_sec)
            }
        };
        if channels.contains_key(&name) {
            return Err(refuse("channels", &name, format!("channel {name} is defined twice")));
        }
        channels.insert(name.clone(), Channel { name, kind, max_per_sec });
    }
    let mut contacts = BTreeMap::new();
    let mut users = Vec::new();
    for u in file.users {
        let mut methods = Vec::new();
        for c in u.contacts {
            if !channels.contains_key(&c.channel) {
                return Err(refuse("users", &c.channel, format!("user {}: unknown channel {}", u.id, c.channel)));
            }
            methods.push(ContactMethod { channel: c.channel, address: c.address });
        }
        if contacts.contains_key(&u.id) {
            return Err(refuse("users", u.id.as_str(), format!("user {} is defined twice", u.id)));
        }
        users.push((u.id.clone(), u.name));
        contacts.insert(u.id, methods);
    }
    // Every person a page can reach must be a declared user: a typo here
    // (`bobb`) would otherwise page nobody, silently.
    let known_users = || names(contacts.keys().map(UserId::as_str));
    for s in &file.schedules {
        let people = s.layers.iter().flat_map(|l| l.participants.iter().map(move |p| (format!("layer {}: participant", l.name), p)));
        let overrides = s.overrides.iter().map(|o| ("override: user".to_owned(), &o.user));
        for (what, user) in people.chain(overrides) {
            if !contacts.contains_key(user) {
                return Err(refuse(
                    "schedules",
                    user.as_str(),
                    format!("schedule {}: {what} \"{user}\" is not a declared user (users: {})", s.name, known_users()),
                ));
            }
        }
    }
    // An owner that is not a declared team routes to a `team` label no
    // route and no policy knows.
    if !catalogue.teams.is_empty() {
        let known_teams = || names(catalogue.teams.iter().map(|t| t.id.as_str()));
        let is_team = |o: &TeamId| catalogue.teams.iter().any(|t| &t.id == o);
        let owners = catalogue.services.iter().filter_map(|s| s.owner.as_ref().map(|o| ("services", format!("service {}", s.name), o)));
        let flow_owners = catalogue.flows.iter().map(|f| ("flows", format!("flow {}", f.name), &f.owner));
        if let Some((section, what, owner)) = owners.chain(flow_owners).find(|(_, _, o)| !is_team(o)) {
            return Err(Fail {
                reason: format!("catalogue: {what}: owner \"{owner}\" is not a declared team (teams: {})", known_teams()),
                at: Some(Spot { in_catalogue: true, section, name: owner.to_string() }),
            });
        }
    }
    let mut directory = StaticDirectory::default();
    for team in &catalogue.teams {
        directory.teams.insert(team.id.clone(), team.members.clone());
    }
    for s in &file.schedules {
        let built = s.build().map_err(|e| refuse("schedules", &s.name, format!("schedule {}: {e}", s.name)))?;
        if directory.schedules.insert(s.name.clone(), built).is_some() {
            return Err(refuse("schedules", &s.name, format!("schedule {} is defined twice", s.name)));
        }
    }
    let mut policies = BTreeMap::new();
    for p in file.escalation_policies {
        p.validate().map_err(|e| refuse("escalation_policies", &p.name, e.to_string()))?;
        let unknown = p.unknown_targets(&|s| directory.schedules.contains_key(s), &|t| directory.teams.contains_key(t));
        if let Some(t) = unknown.first() {
            let (name, known) = match t {
                Target::Schedule(s) => (s.clone(), format!("schedules: {}", names(directory.schedules.keys().map(String::as_str)))),
                Target::Team(team) => (team.to_string(), format!("teams in the catalogue: {}", names(directory.teams.keys().map(TeamId::as_str)))),
                Target::User(u) => (u.to_string(), String::new()),
            };
            return Err(refuse("escalation_policies", &name, format!("escalation policy {}: unknown target {t} ({known})", p.name)));
        }
        for t in p.levels.iter().flat_map(|l| &l.targets).chain(&p.fallback) {
            match t {
                Target::User(u) if !contacts.contains_key(u) => {
                    return Err(refuse(
                        "escalation_policies",
                        u.as_str(),
                        format!("escalation policy {}: target {t}: \"{u}\" is not a declared user (users: {})", p.name, known_users()),
                    ));
                }
                // A team's members are paged one by one: each must be a user.
                Target::Team(team) => {
                    if let Some(m) = directory.teams.get(team).into_iter().flatten().find(|m| !contacts.contains_key(*m)) {
                        return Err(Fail {
                            reason: format!(
                                "team {team} (paged by escalation policy {}): member \"{m}\" is not a declared user in the response config (users: {})",
                                p.name,
                                known_users()
                            ),
                            at: Some(Spot { in_catalogue: true, section: "teams", name: m.to_string() }),
                        });
                    }
                }
                _ => {}
            }
        }
        if policies.contains_key(&p.name) {
            return Err(refuse("escalation_policies", &p.name, format!("escalation policy {} is defined twice", p.name)));
        }
        policies.insert(p.name.clone(), p);
    }
    let known_policies = || names(policies.keys().map(String::as_str));
    if let Some(d) = &file.default_policy
        && !policies.contains_key(d)
    {
        return Err(refuse("default_policy", d, format!("default_policy {d:?} is not an escalation policy (escalation_policies: {})", known_policies())));
    }
    let mut receivers = BTreeMap::new();
    for r in file.receivers {
        for c in &r.channels {
            if !channels.contains_key(c) {
                return Err(refuse("receivers", c, format!("receiver {}: unknown channel {c}", r.name)));
            }
        }
        if receivers.contains_key(&r.name) {
            return Err(refuse("receivers", &r.name, format!("receiver {} is defined twice", r.name)));
        }
        receivers.insert(r.name, r.channels);
    }
    let router = match &file.routing {
        Some(r) => {
            check_routes(&r.route, &receivers, &policies, &directory.teams)?;
            Some(r.build().map_err(|e| Fail::from(format!("routing: {e}")))?)
        }
        None => None,
    };
    let sp = file.status_page;
    let page = PageInfo {
        id: "faultline".into(),
        name: sp.as_ref().and_then(|s| s.name.clone()).unwrap_or_else(|| "Status".into()),
        url: sp
            .as_ref()
            .and_then(|s| s.url.clone())
            .or_else(|| file.base_url.as_ref().map(|b| format!("{}/status", b.trim_end_matches('/'))))
            .unwrap_or_else(|| default_page().url),
        time_zone: sp.as_ref().and_then(|s| s.time_zone.clone()).unwrap_or_else(|| "Etc/UTC".into()),
    };
    let components = match sp.as_ref().and_then(|s| s.components.clone()) {
        Some(c) => c,
        None => components_from_flows(&catalogue.flows, Timestamp::EPOCH),
    };
    // A component showing a flow the catalogue does not have never changes.
    for c in &components {
        if let Some(f) = &c.flow
            && !catalogue.flows.iter().any(|x| &x.name == f)
        {
            let known = names(catalogue.flows.iter().map(|x| x.name.as_str()));
            return Err(refuse("status_page", f.as_str(), format!("status_page: component {}: unknown flow \"{f}\" (flows in the catalogue: {known})", c.id)));
        }
    }
    let mut retry = RetryPolicy::default();
    if let Some(r) = file.retry {
        if let Some(b) = r.base_ms {
            retry.base = StdDuration::from_millis(b.max(1));
        }
        if let Some(m) = r.max_backoff_ms {
            retry.max_backoff = StdDuration::from_millis(m.max(1));
        }
        if let Some(a) = r.max_attempts {
            retry.max_attempts = a.max(1);
        }
        if let Some(l) = r.lease_ms {
            retry.lease = StdDuration::from_millis(l.max(100));
        }
    }
    let flows: Vec<faultline_core::FlowName> = catalogue.flows.iter().map(|f| f.name.clone()).collect();
    let severity = match file.severity {
        None => SeverityDefinitions::standard(flows.clone()),
        Some(d) => {
            let standard = SeverityDefinitions::standard(flows.clone());
            SeverityDefinitions {
                critical_flows: d.critical_flows.unwrap_or(standard.critical_flows),
                rules: d.rules.unwrap_or(standard.rules),
                default: d.default.unwrap_or(standard.default),
                alert_severities: merged_alert_severities(standard.alert_severities, d.alert_severities)?,
            }
        }
    };
    severity.validate().map_err(|e| Fail::from(format!("severity: {e}")))?;
    severity.validate_flows(&flows).map_err(|e| Fail::from(format!("severity: {e}")))?;
    let setup = ResponseSetup {
        catalogue,
        directory,
        policies,
        router,
        receivers,
        contacts,
        default_policy: file.default_policy,
        base_url: file.base_url,
        components,
        auto_publish: sp.as_ref().is_some_and(|s| s.auto_publish),
        ack_channels,
        page: page.clone(),
    };
    Ok(ResponseConfig { setup: Arc::new(setup), channels, retry, page, schedules: file.schedules, users, severity })
}

/// Every route's receiver must be declared under `receivers:`, its
/// escalation policy configured, and a `team="…"` matcher must name a
/// catalogue team (the `team` label comes from the catalogue's ownership, so
/// any other value never matches): each is a route that pages nobody.
fn check_routes(
    route: &RouteConfig,
    receivers: &BTreeMap<String, Vec<String>>,
    policies: &BTreeMap<String, EscalationPolicy>,
    teams: &BTreeMap<TeamId, Vec<UserId>>,
) -> Result<(), Fail> {
    if let Some(r) = &route.receiver
        && !receivers.contains_key(r)
    {
        return Err(refuse("routing", r, format!("routing: route to undefined receiver {r:?} (receivers: {})", names(receivers.keys().map(String::as_str)))));
    }
    if let Some(p) = &route.escalation_policy
        && !policies.contains_key(p)
    {
        return Err(refuse(
            "routing",
            p,
            format!("routing: route names unknown escalation_policy {p:?} (escalation_policies: {})", names(policies.keys().map(String::as_str))),
        ));
    }
    for m in route.matchers.iter().filter(|m| m.name == "team" && m.op == MatchOp::Equal) {
        if !teams.keys().any(|t| t.as_str() == m.value) {
            return Err(refuse(
                "routing",
                &m.value,
                format!("routing: matcher {m} names unknown team {:?} (teams in the catalogue: {})", m.value, names(teams.keys().map(TeamId::as_str))),
            ));
        }
    }
    route.routes.iter().try_for_each(|r| check_routes(r, receivers, policies, teams))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Status-page components made from the catalogue's flows are dated by
    /// the config file, never 1970.
    #[test]
    fn components_from_flows_are_dated_by_the_file_not_1970() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("response.yaml");
        std::fs::write(
            dir.path().join("catalogue.yaml"),
            "teams:\n  - {id: payments, name: Payments, members: [alice]}\nflows:\n  - {name: checkout, owner: payments, interactions: [{caller: web, callee: checkout}]}\n",
        )
        .unwrap();
        std::fs::write(&p, "catalogue_file: catalogue.yaml\nusers:\n  - {id: alice}\n").unwrap();
        let c = ResponseConfig::load(&p, &|_| None).unwrap();
        assert!(!c.setup.components.is_empty());
        assert!(c.setup.components.iter().all(|c| c.created_at.as_millis() > 1_600_000_000_000), "{:?}", c.setup.components);
    }

    #[test]
    fn secrets_come_from_the_environment_and_errors_name_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("response.yaml");
        std::fs::write(&p, "channels:\n  - {name: pd, type: pagerduty, routing_key_env: PD_KEY}\n").unwrap();
        let e = ResponseConfig::load(&p, &|_| None).unwrap_err().to_string();
        assert!(e.contains("environment variable PD_KEY (routing_key_env) is not set"), "{e}");
        let c = ResponseConfig::load(&p, &|k| (k == "PD_KEY").then(|| "s3cret".to_owned())).unwrap();
        assert!(c.setup.ack_channels.contains("pd"));
        assert!(!format!("{c:?}").contains("s3cret"), "the config never prints a secret");
        std::fs::write(&p, "users:\n  - {id: alice, contacts: [{channel: nope}]}\n").unwrap();
        let e = ResponseConfig::load(&p, &|_| None).unwrap_err().to_string();
        assert!(e.ends_with("user alice: unknown channel nope"), "{e}");
    }

    #[test]
    fn email_tls_options() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("response.yaml");
        let load = |yaml: &str| {
            std::fs::write(&p, yaml).unwrap();
            ResponseConfig::load(&p, &|k| (k == "SMTP_PASSWORD").then(|| "hunter2".to_owned())).map_err(|e| e.to_string())
        };
        let email = |c: &ResponseConfig| match &c.channels["mail"].kind {
            ChannelKind::Email(s) => s.clone(),
            other => panic!("{other:?}"),
        };
        let c = load(
            "channels:\n  - {name: mail, type: email, host: smtp.example.com, tls: starttls, username: fl, password_env: SMTP_PASSWORD, from: a@example.com}\n",
        )
        .unwrap();
        let s = email(&c);
        assert_eq!((s.tls, s.port), (SmtpTls::Starttls, 587));
        assert!(!format!("{c:?}").contains("hunter2"), "the password never prints");
        let s = email(&load("channels:\n  - {name: mail, type: email, host: smtp.example.com, tls: implicit, from: a@example.com}\n").unwrap());
        assert_eq!((s.tls, s.port), (SmtpTls::Implicit, 465));
        let s = email(&load("channels:\n  - {name: mail, type: email, host: 127.0.0.1, port: 2525, from: a@example.com}\n").unwrap());
        assert_eq!((s.tls, s.port), (SmtpTls::None, 2525));
        let e = load("channels:\n  - {name: mail, type: email, host: smtp.example.com, username: fl, password: pw, from: a@example.com}\n").unwrap_err();
        assert!(e.ends_with("channel mail: username/password need tls: starttls or implicit (credentials would cross the network in clear)"), "{e}");
        assert!(!e.contains("pw,") && !e.contains(": pw"), "{e}");
        let e = load("channels:\n  - {name: mail, type: email, host: h, tls: starttls, ca_file: nope.pem, from: a@example.com}\n").unwrap_err();
        assert!(e.contains("channel mail: ca_file") && e.contains("nope.pem"), "{e}");
        let e = load("channels:\n  - {name: mail, type: email, host: h, tls: sometimes, from: a@example.com}\n").unwrap_err();
        assert!(e.contains("sometimes"), "{e}");
        std::fs::write(dir.path().join("ca.pem"), "-----BEGIN CERTIFICATE-----\n").unwrap();
        let s = email(&load("channels:\n  - {name: mail, type: email, host: h, tls: starttls, ca_file: ca.pem, from: a@example.com}\n").unwrap());
        assert_eq!(s.ca_pem.as_deref(), Some("-----BEGIN CERTIFICATE-----\n"), "read relative to the config file");
    }

    const CATALOGUE: &str = "teams: [{id: payments, name: Payments, members: [alice]}]\nflows:\n  - {name: checkout, owner: payments, interactions: [{caller: web, callee: checkout}]}\n  - {name: login, owner: payments, interactions: [{caller: web, callee: auth}]}\n";

    fn load_toml(body: &str) -> Result<ResponseConfig, String> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("catalogue.yaml"), CATALOGUE).unwrap();
        let p = dir.path().join("response.toml");
        std::fs::write(&p, format!("catalogue_file = \"catalogue.yaml\"\n{body}")).unwrap();
        ResponseConfig::load(&p, &|_| None).map_err(|e| e.to_string())
    }

    #[test]
    fn severity_definitions_come_from_the_config_and_errors_name_the_field() {
        use faultline_core::incident::Severity;
        use faultline_core::severity::{SeverityFacts, SloBurn};
        // Absent: the built-in rules, every catalogue flow critical.
        let c = load_toml("").unwrap();
        assert_eq!(c.severity, SeverityDefinitions::standard(vec!["checkout".parse().unwrap(), "login".parse().unwrap()]));
        let c = load_toml(
            "[severity]\ncritical_flows = [\"checkout\"]\ndefault = \"SEV2\"\n\n[[severity.rules]]\nseverity = \"SEV1\"\nname = \"login down\"\nwhen = { any_flow = [\"login\"], min_burn_rate = 2.0 }\n",
        )
        .unwrap();
        let login = ["login".parse().unwrap()];
        let burns = [SloBurn { slo: "login-avail".into(), flow: Some("login".parse().unwrap()), burn_rate: 3.0 }];
        let s = c.severity.suggest(&SeverityFacts { impacted_flows: &login, burns: &burns });
        assert_eq!((s.severity, s.reason.as_str()), (Severity::Sev1, "SEV1: flow login impacted and SLO login-avail at 3.0× (≥ 2×) (rule 1 \"login down\")"));
        assert_eq!(c.severity.suggest(&SeverityFacts::default()).severity, Severity::Sev2, "the configured default");
        let e = load_toml("[[severity.rules]]\nseverity = \"SEV1\"\nwhen = { min_burn_rate = 0.0 }\n").unwrap_err();
        assert!(e.ends_with("severity: rule 1: min_burn_rate must be a positive number"), "{e}");
        let e = load_toml("[severity]\ncritical_flows = [\"chekout\"]\n").unwrap_err();
        assert!(e.ends_with("severity: critical_flows: unknown flow \"chekout\" (not in the catalogue)"), "{e}");
        let e = load_toml("[[severity.rules]]\nseverity = \"SEV4\"\nwhen = { min_burn_rate = 1.0 }\n").unwrap_err();
        assert!(e.contains("severity") && e.contains("SEV4"), "{e}");
        let e = load_toml("[[severity.rules]]\nseverity = \"SEV1\"\nwhen = { min_burn = 1.0 }\n").unwrap_err();
        assert!(e.contains("min_burn"), "{e}");
    }

    /// A config that pages correctly; each case below breaks one reference.
    const GOOD: &str = "\
catalogue_file: catalogue.yaml
users:
  - {id: alice, contacts: [{channel: hook}]}
  - {id: bob, contacts: [{channel: hook}]}
schedules:
  - name: payments-primary
    time_zone: Europe/London
    layers:
      - {name: weekly, start: \"2026-01-05T09:00:00\", rotation: weekly, participants: [alice, bob]}
escalation_policies:
  - name: payments
    levels:
      - {delay_minutes: 5, targets: [{schedule: payments-primary}]}
      - {delay_minutes: 10, targets: [{team: payments}]}
default_policy: payments
routing:
  route:
    receiver: default
    routes:
      - {matchers: ['team=\"payments\"'], receiver: payments-chat, escalation_policy: payments}
receivers:
  - {name: default}
  - {name: payments-chat, channels: [hook]}
channels:
  - {name: hook, type: webhook, url: \"http://127.0.0.1:9/hook\"}
";

    fn load_yaml(body: &str, catalogue: &str) -> Result<ResponseConfig, String> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("catalogue.yaml"), catalogue).unwrap();
        let p = dir.path().join("response.yaml");
        std::fs::write(&p, body).unwrap();
        ResponseConfig::load(&p, &|_| None).map_err(|e| e.to_string().replace(&dir.path().display().to_string(), "DIR"))
    }

    #[test]
    fn typos_that_would_page_nobody_are_refused_with_file_line_and_name() {
        let catalogue = "teams: [{id: payments, name: Payments, members: [alice]}]\n";
        let c = load_yaml(GOOD, catalogue).unwrap();
        assert_eq!(c.setup.policies.len(), 1);
        let cases = [
            (
                GOOD.replace("participants: [alice, bob]", "participants: [alice, bobb]"),
                "response config DIR/response.yaml:9: schedule payments-primary: layer weekly: participant \"bobb\" is not a declared user (users: alice, bob)",
            ),
            (
                GOOD.replace("receiver: payments-chat", "receiver: payments-chta"),
                "response config DIR/response.yaml:20: routing: route to undefined receiver \"payments-chta\" (receivers: default, payments-chat)",
            ),
            (
                GOOD.replace("receiver: default\n", "receiver: defualt\n"),
                "response config DIR/response.yaml:18: routing: route to undefined receiver \"defualt\" (receivers: default, payments-chat)",
            ),
            (
                GOOD.replace("escalation_policy: payments}", "escalation_policy: paymnets}"),
                "response config DIR/response.yaml:20: routing: route names unknown escalation_policy \"paymnets\" (escalation_policies: payments)",
            ),
            (
                GOOD.replace("team=\"payments\"", "team=\"paymnets\""),
                "response config DIR/response.yaml:20: routing: matcher team=\"paymnets\" names unknown team \"paymnets\" (teams in the catalogue: payments)",
            ),
            (
                GOOD.replace("{team: payments}", "{team: paymnets}"),
                "response config DIR/response.yaml:14: escalation policy payments: unknown target team:paymnets (teams in the catalogue: payments)",
            ),
            (
                GOOD.replace("{schedule: payments-primary}", "{schedule: payments-primray}"),
                "response config DIR/response.yaml:13: escalation policy payments: unknown target schedule:payments-primray (schedules: payments-primary)",
            ),
            (
                GOOD.replace("{team: payments}", "{user: carol}"),
                "response config DIR/response.yaml:14: escalation policy payments: target user:carol: \"carol\" is not a declared user (users: alice, bob)",
            ),
            (
                GOOD.replace("default_policy: payments", "    fallback: [{user: erin}]\ndefault_policy: payments"),
                "response config DIR/response.yaml:15: escalation policy payments: target user:erin: \"erin\" is not a declared user (users: alice, bob)",
            ),
            (
                GOOD.replace("default_policy: payments", "default_policy: paymnts"),
                "response config DIR/response.yaml:15: default_policy \"paymnts\" is not an escalation policy (escalation_policies: payments)",
            ),
            (GOOD.replace("channels: [hook]}", "channels: [hok]}"), "response config DIR/response.yaml:23: receiver payments-chat: unknown channel hok"),
        ];
        for (yaml, want) in cases {
            assert_eq!(load_yaml(&yaml, catalogue).unwrap_err(), want);
        }
        // An owner that is not a declared team: the catalogue's line.
        let e = load_yaml(GOOD, "teams: [{id: payments, name: Payments, members: [alice]}]\nservices:\n  - {name: checkout, owner: paymnts}\n").unwrap_err();
        assert_eq!(e, "response config DIR/catalogue.yaml:3: catalogue: service checkout: owner \"paymnts\" is not a declared team (teams: payments)");
        let flows = "teams: [{id: payments, name: Payments, members: [alice]}]\nflows:\n  - {name: checkout, owner: payment, interactions: [{caller: web, callee: checkout}]}\n";
        let e = load_yaml(GOOD, flows).unwrap_err();
        assert_eq!(e, "response config DIR/catalogue.yaml:3: catalogue: flow checkout: owner \"payment\" is not a declared team (teams: payments)");
        let bad_component = format!("{GOOD}status_page:\n  components: [{{id: c1, name: Checkout, flow: chekout, created_at: 0}}]\n");
        let e = load_yaml(&bad_component, catalogue).unwrap_err();
        assert_eq!(e, "response config DIR/response.yaml:27: status_page: component c1: unknown flow \"chekout\" (flows in the catalogue: none declared)");
        // A member of a paged team who is not a user: the catalogue's line.
        let e = load_yaml(GOOD, "teams:\n  - id: payments\n    name: Payments\n    members: [alice, erin]\n").unwrap_err();
        assert_eq!(
            e,
            "response config DIR/catalogue.yaml:4: team payments (paged by escalation policy payments): member \"erin\" is not a declared user in the response config (users: alice, bob)"
        );
    }

    #[test]
    fn toml_typos_are_refused_with_their_line_too() {
        let e = load_toml("[[users]]\nid = \"alice\"\n\n[[schedules]]\nname = \"s\"\ntime_zone = \"Etc/UTC\"\n\n[[schedules.layers]]\nname = \"l\"\nstart = \"2026-01-05T09:00:00\"\nrotation = \"daily\"\nparticipants = [\"alice\", \"bobb\"]\n").unwrap_err();
        assert!(e.contains("response.toml:13: schedule s: layer l: participant \"bobb\" is not a declared user (users: alice)"), "{e}");
    }

    #[test]
    fn slack_is_an_incoming_webhook_or_the_web_api_that_edits_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("response.yaml");
        let load = |yaml: &str| {
            std::fs::write(&p, yaml).unwrap();
            ResponseConfig::load(&p, &|k| (k == "SLACK_BOT_TOKEN").then(|| "xoxb-1".to_owned())).map_err(|e| e.to_string())
        };
        let c = load("channels:\n  - {name: room, type: slack, token_env: SLACK_BOT_TOKEN, channel: C0123ABCD}\n").unwrap();
        match &c.channels["room"].kind {
            ChannelKind::SlackApi { channel, api_url, .. } => assert_eq!((channel.as_str(), api_url.as_str()), ("C0123ABCD", SLACK_API_URL)),
            other => panic!("{other:?}"),
        }
        let e = load("channels:\n  - {name: room, type: slack, token_env: SLACK_BOT_TOKEN}\n").unwrap_err();
        assert!(e.ends_with(":2: channel room: a Slack token needs channel (the channel id, e.g. C0123ABCD)"), "{e}");
        let e = load("channels:\n  - {name: room, type: slack, url: \"https://hooks.slack.com/x\", token: t, channel: C1}\n").unwrap_err();
        assert!(e.ends_with("channel room: set url (incoming webhook) or token (Web API), not both"), "{e}");
        let e = load("channels:\n  - {name: room, type: slack, url: \"https://hooks.slack.com/x\", channel: C1}\n").unwrap_err();
        assert!(e.contains("channel and api_url need token"), "{e}");
    }
}
