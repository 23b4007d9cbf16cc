//! The probe runner: HTTP checks from this server's location, judged by
//! Gatus-style conditions (`[STATUS] == 200`, `[BODY].price > 0`,
//! `[RESPONSE_TIME] < 300`), each result sent to the engine as a
//! `Signal::Probe` — where the probe and partition detectors turn failures
//! into findings (with their own fire/clear thresholds). Remote locations
//! push their results to `POST /api/v1/probes/results` (see `http::alerts`).
//!
//! What it is not: the condition language (core `probe`) or the decision
//! that something is down (core `detect::probes`).

use std::time::{Duration as StdDuration, Instant};

use faultline_core::probe::{DisplayOptions, ProbeObservation, evaluate_condition, validate_condition};
use faultline_core::signal::{ProbeResult, Signal};
use faultline_core::{ServiceName, Timestamp};
use faultline_engine::{EngineHandle, Event};
use serde::Deserialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Bodies are read up to this many bytes for `[BODY]` conditions.
const MAX_BODY: usize = 64 * 1024;

fn default_interval() -> u64 {
    30
}
fn default_timeout() -> u64 {
    10
}
fn default_location() -> String {
    "local".into()
}

/// One `[[probes]]` entry of the config.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProbeSpec {
    pub name: String,
    pub url: String,
    #[serde(default = "default_interval")]
    pub interval_secs: u64,
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    pub conditions: Vec<String>,
    /// Where this server is, for the partition matrix.
    #[serde(default = "default_location")]
    pub location: String,
    /// The service the probe checks.
    pub target: Option<String>,
}

impl ProbeSpec {
    /// Every condition parses; errors name the probe and the condition.
    pub fn validate(&self) -> Result<(), String> {
        if self.interval_secs == 0 || self.timeout_secs == 0 {
            return Err(format!("probe {:?}: interval_secs and timeout_secs must be at least 1", self.name));
        }
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            return Err(format!("probe {:?}: url must start with http:// or https://", self.name));
        }
        for c in &self.conditions {
            validate_condition(c).map_err(|e| format!("probe {:?}: condition {c:?}: {e}", self.name))?;
        }
        Ok(())
    }
}

/// Runs one probe once and judges it.
pub async fn run_once(spec: &ProbeSpec, client: &reqwest::Client, now: Timestamp) -> ProbeResult {
    let started = Instant::now();
    let mut obs = ProbeObservation::default();
    match client.get(&spec.url).timeout(StdDuration::from_secs(spec.timeout_secs)).send().await {
        Ok(resp) => {
            obs.connected = true;
            obs.status = i64::from(resp.status().as_u16());
            if let Some(addr) = resp.remote_addr() {
                obs.ip = addr.ip().to_string();
            }
            let bytes = resp.bytes().await.unwrap_or_default();
            obs.body = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_BODY)]).into_owned();
        }
        Err(e) => {
            // Refused, timed out or unresolvable: not connected; conditions on
            // [CONNECTED] or [STATUS] say what that means for this probe.
            obs.connected = false;
            tracing::debug!(probe = %spec.name, error = %e, "probe request failed");
        }
    }
    obs.response_time_ms = started.elapsed().as_millis() as i64;
    let failures: Vec<String> =
        spec.conditions.iter().map(|c| evaluate_condition(c, &obs, DisplayOptions::default())).filter(|o| !o.success).map(|o| o.display).collect();
    ProbeResult {
        probe: spec.name.clone(),
        location: spec.location.clone(),
        target: spec.target.as_deref().and_then(|t| ServiceName::new(t).ok()),
        at: now,
        success: failures.is_empty(),
        response_ms: Some(obs.response_time_ms as f64),
        failures,
    }
}

/// Starts one task per probe; each stops when `stop` turns true.
pub fn start(
    specs: &[ProbeSpec],
    engine: EngineHandle,
    now: impl Fn() -> Timestamp + Send + Sync + Clone + 'static,
    stop: watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    let client = match reqwest::Client::builder().build() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "probe runner cannot build an HTTP client; probes disabled");
            return Vec::new();
        }
    };
    specs
        .iter()
        .cloned()
        .map(|spec| {
            let (client, engine, now, mut stop) = (client.clone(), engine.clone(), now.clone(), stop.clone());
            tokio::spawn(async move {
                let mut every = tokio::time::interval(StdDuration::from_secs(spec.interval_secs));
                every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        _ = every.tick() => {}
                        _ = stop.wait_for(|s| *s) => break,
                    }
                    let result = run_once(&spec, &client, now()).await;
                    if let Err(e) = engine.try_send(Event::Signals(vec![Signal::Probe(result)])) {
                        tracing::warn!(probe = %spec.name, error = %e, "probe result dropped");
                    }
                }
            })
        })
        .collect()
}
