//! Scenario files: the YAML description of a simulated world (services, calls
//! and their policies, load, scheduled faults, ground truth) and its
//! `defended` variant.
//!
//! What it is: serde types with strict field checking, a duration syntax
//! (`250ms`, `5s`, `2m`, or a number of seconds), a merge patch that turns a
//! scenario into its defended variant, and validation whose errors name the
//! field and the line. What it is not: the simulation itself (`world`), which
//! compiles a validated scenario into flat runtime tables.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_saphyr::Spanned;

use faultline_core::model::ServiceKind;
use faultline_core::{FailureModel, IncidentClass};

/// A duration in seconds, written `250ms`, `1.5s`, `2m`, `1h` or as a number of seconds.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd, Default)]
pub struct Dur(pub f64);

impl Dur {
    pub fn secs(self) -> f64 {
        self.0
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        if s != 0.0 && s < 1.0 { write!(f, "{}ms", (s * 1000.0 * 1000.0).round() / 1000.0) } else { write!(f, "{s}s") }
    }
}

pub fn parse_duration(s: &str) -> Result<Dur, String> {
    let t = s.trim();
    let (num, mult) = if let Some(n) = t.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = t.strip_suffix("us") {
        (n, 1e-6)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = t.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (t, 1.0)
    };
    match num.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(Dur(v * mult)),
        _ => Err(format!("invalid duration {s:?} (write e.g. 250ms, 5s, 2m)")),
    }
}

impl Serialize for Dur {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Dur, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Dur;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as 250ms, 5s, 2m or a number of seconds")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Dur, E> {
                parse_duration(v).map_err(E::custom)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Dur, E> {
                if v.is_finite() && v >= 0.0 { Ok(Dur(v)) } else { Err(E::custom("duration must be >= 0")) }
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Dur, E> {
                Ok(Dur(v as f64))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Dur, E> {
                if v >= 0 { Ok(Dur(v as f64)) } else { Err(E::custom("duration must be >= 0")) }
            }
        }
        d.deserialize_any(V)
    }
}

/// A service-time or think-time distribution.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum DistSpec {
    Const(Dur),
    Exp(Dur),
    Uniform(Dur, Dur),
    /// Log-normal with the given median and shape sigma.
    Lognormal {
        median: Dur,
        sigma: f64,
    },
    /// Exponential with mean `fast`, except a fraction `p_slow` with mean `slow`.
    Bimodal {
        fast: Dur,
        slow: Dur,
        p_slow: f64,
    },
}

impl Default for DistSpec {
    fn default() -> Self {
        DistSpec::Const(Dur(0.0))
    }
}

impl DistSpec {
    pub fn mean(&self) -> f64 {
        match self {
            DistSpec::Const(d) | DistSpec::Exp(d) => d.0,
            DistSpec::Uniform(a, b) => (a.0 + b.0) / 2.0,
            DistSpec::Lognormal { median, sigma } => median.0 * (sigma * sigma / 2.0).exp(),
            DistSpec::Bimodal { fast, slow, p_slow } => fast.0 * (1.0 - p_slow) + slow.0 * p_slow,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Discipline {
    #[default]
    Fifo,
    Lifo,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct QueueSpec {
    /// Waiting requests beyond the busy slots; absent = unbounded.
    #[serde(default)]
    pub capacity: Option<u32>,
    #[serde(default)]
    pub discipline: Discipline,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum BackoffKind {
    #[default]
    None,
    Constant,
    Exponential,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Jitter {
    #[default]
    None,
    Full,
    Equal,
    Decorrelated,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct BackoffSpec {
    #[serde(default)]
    pub kind: BackoffKind,
    #[serde(default)]
    pub base: Dur,
    #[serde(default)]
    pub cap: Option<Dur>,
    #[serde(default)]
    pub jitter: Jitter,
}

/// A per-client retry token bucket (Brooker's adaptive retries; the SRE
/// book's per-client retry budget): every call adds `ratio` tokens up to
/// `cap`; a retry needs more than one token and spends one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetSpec {
    pub ratio: f64,
    #[serde(default = "five")]
    pub cap: f64,
}

fn five() -> f64 {
    5.0
}
fn one_u32() -> u32 {
    1
}
fn one_f64() -> f64 {
    1.0
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetrySpec {
    /// Total attempts including the first (1 = no retries).
    #[serde(default = "one_u32")]
    pub attempts: u32,
    #[serde(default)]
    pub backoff: BackoffSpec,
    #[serde(default)]
    pub budget: Option<BudgetSpec>,
}

impl Default for RetrySpec {
    fn default() -> Self {
        RetrySpec { attempts: 1, backoff: BackoffSpec::default(), budget: None }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum BreakerScope {
    /// An open breaker fails every call fast (the classic breaker).
    #[default]
    All,
    /// An open breaker only suppresses retries (Brooker 2022's variant).
    Retries,
}

/// A per-client circuit breaker on a failure ratio measured over a decaying window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakerSpec {
    pub failure_ratio: f64,
    #[serde(default = "ten_s")]
    pub window: Dur,
    #[serde(default = "twenty")]
    pub min_calls: u32,
    /// How long the breaker stays open before letting a probe through.
    #[serde(default = "five_s")]
    pub open_for: Dur,
    #[serde(default)]
    pub scope: BreakerScope,
}

fn ten_s() -> Dur {
    Dur(10.0)
}
fn five_s() -> Dur {
    Dur(5.0)
}
fn twenty() -> u32 {
    20
}
fn two_min() -> Dur {
    Dur(120.0)
}

/// Client-side adaptive throttling (SRE book ch. 21): reject locally with
/// probability max(0, (requests − k·accepts) / (requests + 1)).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThrottleSpec {
    pub k: f64,
    #[serde(default = "two_min")]
    pub window: Dur,
}

/// A look-aside cache in front of a call: a hit skips the call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheSpec {
    #[serde(default = "one_u32")]
    pub keys: u32,
    /// Zipf exponent of key popularity; 0 = uniform.
    #[serde(default)]
    pub zipf: f64,
    pub ttl: Dur,
    /// Per-key lock / single flight: one recompute per key at a time.
    #[serde(default)]
    pub lock: bool,
    /// XFetch probabilistic early expiration with this beta.
    #[serde(default)]
    pub xfetch_beta: Option<f64>,
    /// Serve the stale value while one request refreshes it.
    #[serde(default)]
    pub stale_while_revalidate: bool,
    /// Serve the stale value when the refresh fails (last-known-good).
    #[serde(default)]
    pub stale_on_error: bool,
    /// Entries start filled (a warm cache).
    #[serde(default)]
    pub warm: bool,
}

/// One downstream call a service (or a load source) makes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallSpec {
    pub to: Spanned<String>,
    #[serde(default = "one_f64")]
    pub probability: f64,
    /// Per-attempt timeout; absent = wait forever.
    #[serde(default)]
    pub timeout: Option<Dur>,
    #[serde(default)]
    pub retry: RetrySpec,
    #[serde(default)]
    pub breaker: Option<BreakerSpec>,
    #[serde(default)]
    pub throttle: Option<ThrottleSpec>,
    #[serde(default)]
    pub cache: Option<CacheSpec>,
    /// Fire and forget into the callee's queue (a message queue): the caller
    /// only waits for the enqueue.
    #[serde(default, rename = "async")]
    pub is_async: bool,
    /// Graceful degradation: if the call fails, the caller carries on.
    #[serde(default)]
    pub fallback: bool,
    /// Verify answers (checksums, semantic checks): a wrong answer counts as an error.
    #[serde(default)]
    pub verify: bool,
    /// Zone-aware routing: stay in the caller's zone when the callee has one there.
    #[serde(default)]
    pub prefer_local_zone: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardSpec {
    pub count: u32,
    #[serde(default = "thousand")]
    pub keys: u32,
    #[serde(default)]
    pub zipf: f64,
    /// Defence: spread the known hot key over this many shards (key salting).
    #[serde(default)]
    pub salt: Option<u32>,
}

fn thousand() -> u32 {
    1000
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoscaleSpec {
    pub max_instances: u32,
    /// Add an instance while the queue holds more than this per instance.
    pub queue_per_instance: u32,
    #[serde(default = "five_s")]
    pub every: Dur,
}

/// A resource that bounds concurrency (connection pool, file handles,
/// memory in units) and can leak.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolSpec {
    pub name: String,
    pub size: u32,
    /// Defence: restart (recycle) the service when this fraction has leaked.
    #[serde(default)]
    pub recycle_at: Option<f64>,
    #[serde(default = "ten_s")]
    pub recycle_takes: Dur,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    pub name: Spanned<String>,
    #[serde(default)]
    pub kind: ServiceKind,
    #[serde(default = "one_u32")]
    pub instances: u32,
    /// Requests served at once per instance; absent = unlimited.
    #[serde(default)]
    pub concurrency: Option<u32>,
    #[serde(default)]
    pub queue: QueueSpec,
    #[serde(default)]
    pub service_time: DistSpec,
    /// Deadline propagation: skip queued work whose caller has given up.
    #[serde(default)]
    pub drop_expired: bool,
    #[serde(default)]
    pub error_rate: f64,
    /// Zones the instances are spread over, round-robin.
    #[serde(default)]
    pub zones: Vec<String>,
    /// Downstream calls made after the local work, one after another.
    #[serde(default)]
    pub calls: Vec<CallSpec>,
    /// `all` (default): make every call (each with its probability). `one`:
    /// make exactly one, chosen with the calls' probabilities as weights (a
    /// router or gateway serving several flows).
    #[serde(default)]
    pub route: Route,
    #[serde(default)]
    pub shards: Option<ShardSpec>,
    #[serde(default)]
    pub autoscale: Option<AutoscaleSpec>,
    #[serde(default)]
    pub pool: Option<PoolSpec>,
    /// The load balancer ejects crashed or unreachable instances this long after they fail.
    #[serde(default)]
    pub health_check: Option<Dur>,
    #[serde(default)]
    pub overload: Option<OverloadSpec>,
}

/// Load-dependent slowdown (Bronson et al.'s database: fast below a rate,
/// an order of magnitude slower above it): service time is multiplied by
/// `factor` while the arrival rate, averaged over `window`, exceeds `above_rate`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverloadSpec {
    pub above_rate: f64,
    pub factor: f64,
    #[serde(default = "five_s")]
    pub window: Dur,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Route {
    #[default]
    All,
    One,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadKind {
    /// Poisson arrivals at `rate`, whatever happens to earlier requests.
    Open,
    /// `clients` users, each waiting for its answer and then thinking.
    Closed,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadSpec {
    #[serde(default = "users")]
    pub name: String,
    pub kind: LoadKind,
    #[serde(default)]
    pub rate: Option<f64>,
    /// Open: client identities sharing the rate (retry state is per client).
    /// Closed: the number of users.
    #[serde(default)]
    pub clients: Option<u32>,
    #[serde(default)]
    pub think: Option<DistSpec>,
    #[serde(default)]
    pub zone: Option<String>,
    pub call: CallSpec,
}

fn users() -> String {
    "users".to_owned()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// Remove `factor` of a service's capacity (1.0 = stalled: requests queue, none served).
    CapacityCut,
    /// Multiply service time by `factor` and/or add `add`.
    Latency,
    /// Fail a fraction `rate` of requests.
    Errors,
    /// Crash `instances` (default all); restart when the fault ends.
    Crash,
    /// Drop traffic between zones `a` and `b` (calls hang until their timeout).
    Partition,
    /// Set an open load source's `rate`.
    Load,
    /// Flush the caches of a service's calls at the fault start.
    CacheFlush,
    /// A fraction `share` of requests to a sharded service hit one key.
    HotKey,
    /// A pool leaks `per_sec` units per second while the fault lasts.
    Leak,
    /// `instances` answer 200 with wrong data (Byzantine).
    WrongAnswers,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    pub at: Dur,
    /// How long the fault lasts; absent = until the end of the run.
    #[serde(default, rename = "for")]
    pub duration: Option<Dur>,
    pub fault: FaultKind,
    #[serde(default)]
    pub service: Option<Spanned<String>>,
    #[serde(default)]
    pub source: Option<Spanned<String>>,
    #[serde(default)]
    pub factor: Option<f64>,
    #[serde(default)]
    pub add: Option<Dur>,
    #[serde(default)]
    pub rate: Option<f64>,
    #[serde(default)]
    pub instances: Option<u32>,
    #[serde(default)]
    pub a: Option<String>,
    #[serde(default)]
    pub b: Option<String>,
    #[serde(default)]
    pub share: Option<f64>,
    #[serde(default)]
    pub per_sec: Option<f64>,
}

/// A replicated cluster with leader election (split-brain scenarios).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSpec {
    pub name: String,
    /// Zone of each replica, e.g. [a, a, b].
    pub replicas: Vec<String>,
    /// Leader election needs a majority (Raft-style). Without it, any side
    /// that loses the leader elects its own.
    pub quorum: bool,
    #[serde(default = "one_s")]
    pub election_timeout: Dur,
    /// Client writes per second arriving in each zone.
    pub write_rate: f64,
}

fn one_s() -> Dur {
    Dur(1.0)
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroundTruthSpec {
    /// An incident class (retry_storm, …) or a failure model (crash, …).
    pub class: String,
    pub failure_model: FailureModel,
    /// `caller -> callee` for an interaction, `service/resource` for a
    /// resource, or a service name.
    pub origin: String,
    #[serde(default)]
    pub amplifiers: Vec<String>,
    #[serde(default)]
    pub summary: String,
}

/// What the chart shows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ChartSpec {
    /// Services whose queue depth is plotted (default: all, up to 6).
    #[serde(default)]
    pub services: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub duration: Dur,
    #[serde(default = "one_s")]
    pub window: Dur,
    #[serde(default)]
    pub seed: Option<u64>,
    pub ground_truth: GroundTruthSpec,
    #[serde(default)]
    pub services: Vec<ServiceSpec>,
    #[serde(default)]
    pub load: Vec<LoadSpec>,
    #[serde(default)]
    pub faults: Vec<FaultSpec>,
    #[serde(default)]
    pub cluster: Option<ClusterSpec>,
    #[serde(default)]
    pub chart: ChartSpec,
    /// A merge patch giving the defended variant: objects merge, lists of
    /// objects with `name` (or `to`) merge by that key, anything else replaces.
    #[serde(default)]
    pub defended: Option<serde_json::Value>,
}

/// A scenario file problem, naming the field and (when known) the line.
#[derive(Clone, Debug, PartialEq)]
pub struct ScenarioError {
    pub line: Option<u64>,
    pub field: String,
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) if l > 0 && self.field.is_empty() && self.message.starts_with("column ") => write!(f, "line {l}, ")?,
            Some(l) if l > 0 => write!(f, "line {l}: ")?,
            _ => {}
        }
        if self.field.is_empty() { write!(f, "{}", self.message) } else { write!(f, "{}: {}", self.field, self.message) }
    }
}

impl std::error::Error for ScenarioError {}

fn err_at<T>(line: Option<u64>, field: impl Into<String>, message: impl Into<String>) -> Result<T, ScenarioError> {
    Err(ScenarioError { line, field: field.into(), message: message.into() })
}

fn line_of<T>(s: &Spanned<T>) -> Option<u64> {
    let l = s.referenced.line();
    (l > 0).then_some(l)
}

/// Turns a serde-saphyr error into one line naming the line and the problem.
fn yaml_error(e: serde_saphyr::Error) -> ScenarioError {
    let text = e.to_string();
    // serde-saphyr renders a multi-line snippet; keep the first informative line.
    let first = text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("invalid YAML");
    // It reads "error: line L column C: message"; we print the line ourselves.
    let mut msg = first.strip_prefix("error: ").unwrap_or(first);
    if let Some((_, m)) = msg.strip_prefix("line ").and_then(|rest| rest.split_once(": ")) {
        msg = m;
    }
    let loc = e.location();
    let line = loc.map(|l| l.line()).filter(|&l| l > 0);
    let message = match loc.map(|l| l.column()).filter(|&c| c > 0) {
        Some(c) => format!("column {c}: {msg}"),
        None => msg.to_owned(),
    };
    ScenarioError { line, field: String::new(), message }
}

impl Scenario {
    /// Parses and validates a scenario file (the base, undefended variant).
    pub fn from_yaml(text: &str) -> Result<Scenario, ScenarioError> {
        let sc: Scenario = serde_saphyr::from_str(text).map_err(yaml_error)?;
        sc.validate()?;
        Ok(sc)
    }

    /// Parses a scenario and returns its defended variant (the `defended`
    /// patch applied). A scenario without a patch is its own defended variant.
    pub fn defended_from_yaml(text: &str) -> Result<Scenario, ScenarioError> {
        let base = Scenario::from_yaml(text)?;
        base.defended_variant()
    }

    /// Applies the `defended` patch.
    pub fn defended_variant(&self) -> Result<Scenario, ScenarioError> {
        let Some(patch) = &self.defended else {
            return Ok(self.clone());
        };
        let mut doc =
            serde_json::to_value(self).map_err(|e| ScenarioError { line: None, field: String::new(), message: format!("cannot re-encode scenario: {e}") })?;
        merge_patch(&mut doc, patch);
        if let Some(obj) = doc.as_object_mut() {
            obj.remove("defended");
            if let Some(serde_json::Value::String(n)) = obj.get("name").cloned() {
                obj.insert("name".into(), serde_json::Value::String(format!("{n} (defended)")));
            }
        }
        let sc: Scenario = serde_json::from_value(doc).map_err(|e| ScenarioError { line: None, field: "defended".into(), message: e.to_string() })?;
        sc.validate().map_err(|mut e| {
            e.field = format!("defended: {}", e.field);
            e
        })?;
        Ok(sc)
    }

    pub fn incident_class(&self) -> Option<IncidentClass> {
        parse_class(&self.ground_truth.class)
    }

    /// Checks references and ranges that the types alone cannot.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        if self.duration.0 <= 0.0 {
            return err_at(None, "duration", "must be > 0");
        }
        if self.window.0 <= 0.0 || self.window.0 > self.duration.0 {
            return err_at(None, "window", "must be > 0 and at most the duration");
        }
        if self.duration.0 / self.window.0 > 100_000.0 {
            return err_at(None, "window", "more than 100000 windows; use a longer window");
        }
        if parse_class(&self.ground_truth.class).is_none() {
            return err_at(None, "ground_truth.class", format!("unknown incident class {:?}", self.ground_truth.class));
        }
        let names: Vec<&str> = self.services.iter().map(|s| s.name.value.as_str()).collect();
        for (i, s) in self.services.iter().enumerate() {
            let f = |x: &str| format!("services[{i}].{x}");
            let line = line_of(&s.name);
            if s.name.value.is_empty() || faultline_core::ServiceName::new(s.name.value.clone()).is_err() {
                return err_at(line, f("name"), "must be a non-empty name without control characters");
            }
            if names.iter().filter(|n| **n == s.name.value).count() > 1 {
                return err_at(line, f("name"), format!("duplicate service {:?}", s.name.value));
            }
            if s.instances == 0 {
                return err_at(line, f("instances"), "must be >= 1");
            }
            if s.concurrency == Some(0) {
                return err_at(line, f("concurrency"), "must be >= 1 (omit it for unlimited)");
            }
            if !(0.0..=1.0).contains(&s.error_rate) {
                return err_at(line, f("error_rate"), "must be within [0, 1]");
            }
            check_dist(&s.service_time).map_err(|m| ScenarioError { line, field: f("service_time"), message: m })?;
            if let Some(sh) = &s.shards
                && (sh.count == 0 || sh.keys == 0)
            {
                return err_at(line, f("shards"), "count and keys must be >= 1");
            }
            if let Some(o) = &s.overload
                && !(o.above_rate >= 0.0 && o.factor >= 0.0 && o.window.0 > 0.0)
            {
                return err_at(line, f("overload"), "above_rate and factor must be >= 0, window > 0");
            }
            if let Some(p) = &s.pool
                && p.size == 0
            {
                return err_at(line, f("pool.size"), "must be >= 1");
            }
            for (j, c) in s.calls.iter().enumerate() {
                check_call(c, &names, &format!("services[{i}].calls[{j}]"))?;
            }
        }
        for (i, l) in self.load.iter().enumerate() {
            let f = |x: &str| format!("load[{i}].{x}");
            let line = line_of(&l.call.to);
            match l.kind {
                LoadKind::Open => match l.rate {
                    Some(r) if r >= 0.0 && r.is_finite() => {}
                    _ => return err_at(line, f("rate"), "an open load needs a rate >= 0 (requests per second)"),
                },
                LoadKind::Closed => {
                    if l.clients.unwrap_or(0) == 0 {
                        return err_at(line, f("clients"), "a closed load needs clients >= 1");
                    }
                    if l.think.is_none() {
                        return err_at(line, f("think"), "a closed load needs a think time distribution");
                    }
                }
            }
            if let Some(t) = &l.think {
                check_dist(t).map_err(|m| ScenarioError { line, field: f("think"), message: m })?;
            }
            check_call(&l.call, &names, &format!("load[{i}].call"))?;
        }
        let zones: Vec<&str> = self
            .services
            .iter()
            .flat_map(|s| s.zones.iter().map(String::as_str))
            .chain(self.load.iter().filter_map(|l| l.zone.as_deref()))
            .chain(self.cluster.iter().flat_map(|c| c.replicas.iter().map(String::as_str)))
            .collect();
        for (i, ft) in self.faults.iter().enumerate() {
            let f = |x: &str| format!("faults[{i}].{x}");
            let svc_line = ft.service.as_ref().and_then(line_of);
            let need_service = |ft: &FaultSpec| -> Result<(), ScenarioError> {
                match &ft.service {
                    None => err_at(None, f("service"), format!("a {:?} fault needs `service`", ft.fault)),
                    Some(s) if !names.contains(&s.value.as_str()) => err_at(line_of(s), f("service"), format!("unknown service {:?}", s.value)),
                    Some(_) => Ok(()),
                }
            };
            if ft.at.0 > self.duration.0 {
                return err_at(svc_line, f("at"), "is after the end of the run");
            }
            match ft.fault {
                FaultKind::CapacityCut => {
                    need_service(ft)?;
                    match ft.factor {
                        Some(x) if (0.0..=1.0).contains(&x) => {}
                        _ => return err_at(svc_line, f("factor"), "capacity_cut needs factor within [0, 1]"),
                    }
                }
                FaultKind::Latency => {
                    need_service(ft)?;
                    if ft.factor.is_none() && ft.add.is_none() {
                        return err_at(svc_line, f("factor"), "latency needs factor and/or add");
                    }
                    if ft.factor.is_some_and(|x| x < 0.0) {
                        return err_at(svc_line, f("factor"), "must be >= 0");
                    }
                }
                FaultKind::Errors => {
                    need_service(ft)?;
                    match ft.rate {
                        Some(x) if (0.0..=1.0).contains(&x) => {}
                        _ => return err_at(svc_line, f("rate"), "errors needs rate within [0, 1]"),
                    }
                }
                FaultKind::Crash | FaultKind::WrongAnswers | FaultKind::CacheFlush => need_service(ft)?,
                FaultKind::HotKey => {
                    need_service(ft)?;
                    match ft.share {
                        Some(x) if (0.0..=1.0).contains(&x) => {}
                        _ => return err_at(svc_line, f("share"), "hot_key needs share within [0, 1]"),
                    }
                }
                FaultKind::Leak => {
                    need_service(ft)?;
                    if ft.per_sec.is_none_or(|x| x < 0.0) {
                        return err_at(svc_line, f("per_sec"), "leak needs per_sec >= 0");
                    }
                }
                FaultKind::Partition => {
                    for (k, z) in [("a", &ft.a), ("b", &ft.b)] {
                        match z {
                            None => return err_at(None, f(k), "partition needs zones a and b"),
                            Some(z) if !zones.contains(&z.as_str()) => {
                                return err_at(None, f(k), format!("unknown zone {z:?}"));
                            }
                            Some(_) => {}
                        }
                    }
                }
                FaultKind::Load => match &ft.source {
                    None => return err_at(None, f("source"), "a load fault needs `source`"),
                    Some(s) if !self.load.iter().any(|l| l.name == s.value) => {
                        return err_at(line_of(s), f("source"), format!("unknown load source {:?}", s.value));
                    }
                    Some(s) => {
                        let open = self.load.iter().any(|l| l.name == s.value && l.kind == LoadKind::Open);
                        if ft.rate.is_none_or(|r| r < 0.0) || !open {
                            return err_at(line_of(s), f("rate"), "a load fault needs an open source and rate >= 0");
                        }
                    }
                },
            }
        }
        if let Some(c) = &self.cluster
            && c.replicas.is_empty()
        {
            return err_at(None, "cluster.replicas", "needs at least one replica");
        }
        Ok(())
    }
}

fn check_dist(d: &DistSpec) -> Result<(), String> {
    match d {
        DistSpec::Uniform(a, b) if b.0 < a.0 => Err("uniform needs lo <= hi".into()),
        DistSpec::Lognormal { sigma, .. } if !(*sigma >= 0.0 && sigma.is_finite()) => Err("sigma must be >= 0".into()),
        DistSpec::Bimodal { p_slow, .. } if !(0.0..=1.0).contains(p_slow) => Err("p_slow must be within [0, 1]".into()),
        _ => Ok(()),
    }
}

fn check_call(c: &CallSpec, names: &[&str], path: &str) -> Result<(), ScenarioError> {
    let line = line_of(&c.to);
    if !names.contains(&c.to.value.as_str()) {
        return err_at(line, format!("{path}.to"), format!("unknown service {:?}", c.to.value));
    }
    if !(0.0..=1.0).contains(&c.probability) {
        return err_at(line, format!("{path}.probability"), "must be within [0, 1]");
    }
    if c.retry.attempts == 0 || c.retry.attempts > 100 {
        return err_at(line, format!("{path}.retry.attempts"), "must be within 1..=100");
    }
    if let Some(b) = &c.retry.budget
        && !(b.ratio >= 0.0 && b.cap >= 0.0)
    {
        return err_at(line, format!("{path}.retry.budget"), "ratio and cap must be >= 0");
    }
    if let Some(b) = &c.breaker
        && (!(0.0..=1.0).contains(&b.failure_ratio) || b.window.0 <= 0.0)
    {
        return err_at(line, format!("{path}.breaker"), "failure_ratio within [0, 1] and window > 0");
    }
    if let Some(t) = &c.throttle
        && (t.k < 1.0 || t.window.0 <= 0.0)
    {
        return err_at(line, format!("{path}.throttle"), "k must be >= 1 and window > 0");
    }
    if let Some(k) = &c.cache {
        if k.keys == 0 || k.ttl.0 <= 0.0 {
            return err_at(line, format!("{path}.cache"), "keys must be >= 1 and ttl > 0");
        }
        if k.xfetch_beta.is_some_and(|b| b <= 0.0) {
            return err_at(line, format!("{path}.cache.xfetch_beta"), "must be > 0");
        }
    }
    Ok(())
}

/// Parses `retry_storm`, …, or a failure model name into an incident class.
pub fn parse_class(s: &str) -> Option<IncidentClass> {
    Some(match s {
        "retry_storm" => IncidentClass::RetryStorm,
        "cache_stampede" => IncidentClass::CacheStampede,
        "split_brain" => IncidentClass::SplitBrain,
        "hot_partition" => IncidentClass::HotPartition,
        "queue_overload" => IncidentClass::QueueOverload,
        "dns_outage" => IncidentClass::DnsOutage,
        "discovery_failure" => IncidentClass::DiscoveryFailure,
        "cascading_failure" => IncidentClass::CascadingFailure,
        "crash" => IncidentClass::Failure(FailureModel::Crash),
        "partition" => IncidentClass::Failure(FailureModel::Partition),
        "byzantine" => IncidentClass::Failure(FailureModel::Byzantine),
        "exhaustion" => IncidentClass::Failure(FailureModel::Exhaustion),
        _ => return None,
    })
}

fn key_of(v: &serde_json::Value) -> Option<&str> {
    let o = v.as_object()?;
    for k in ["name", "to"] {
        if let Some(serde_json::Value::String(s)) = o.get(k) {
            return Some(s);
        }
    }
    None
}

/// RFC 7386 merge patch, extended: lists of objects keyed by `name` or `to`
/// merge element by element (new keys are appended).
pub fn merge_patch(target: &mut serde_json::Value, patch: &serde_json::Value) {
    use serde_json::Value;
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, pv) in p {
                if pv.is_null() {
                    t.remove(k);
                } else if let Some(tv) = t.get_mut(k) {
                    merge_patch(tv, pv);
                } else {
                    t.insert(k.clone(), pv.clone());
                }
            }
        }
        (Value::Array(t), Value::Array(p)) if p.iter().all(|x| key_of(x).is_some()) && !p.is_empty() => {
            for pv in p {
                let key = key_of(pv).map(str::to_owned);
                match t.iter_mut().find(|tv| key_of(tv).map(str::to_owned) == key) {
                    Some(tv) => merge_patch(tv, pv),
                    None => t.push(pv.clone()),
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}
