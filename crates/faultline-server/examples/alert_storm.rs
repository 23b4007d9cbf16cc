//! Alert-storm benchmark harness: sends a storm of Alertmanager v2 alerts
//! (`POST /api/v2/alerts`, batches of 64 like Prometheus's notifier) to a
//! running receiver — `faultline serve` or Alertmanager itself — and counts
//! what comes out the other side at a webhook sink it serves.
//!
//! The storm is realistic rather than uniform: `--alerts` distinct
//! fingerprints spread over `--services` services × `--alertnames` alert
//! names (the rest is the `instance` label), sent in a seeded shuffled order,
//! then re-sent the way Prometheus re-sends firing alerts (must dedupe), then
//! resolved (`endsAt` in the past).
//!
//! Measured: accepted alerts/s and request latency per phase, and what the
//! sink received (for Faultline: pages by idempotency key, checked for at
//! most one page per incident per escalation step; for Alertmanager:
//! webhook notifications). Against Faultline it also reads the incidents
//! back (needs `--token`) and checks every accepted alert is on one. A
//! Faultline `200` is given only once the alert is committed to its
//! incident, so the request latency *is* the alert → incident-update latency.
//!
//! Run by `scripts/alert-storm.sh` (which starts both servers); see
//! docs/benchmarks.md "Alert storm". What it is not: a test — the
//! correctness checks at CI size are `faultline-cli/tests/it/storm.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::http::HeaderMap;
use serde_json::{Value, json};

const ALERTNAMES: &[&str] = &[
    "HighErrorRate",
    "HighLatency",
    "PodCrashLooping",
    "TargetDown",
    "DiskFilling",
    "CPUThrottling",
    "MemoryPressure",
    "QueueBacklog",
    "CertificateExpiry",
    "ReplicaLag",
    "ConnectionPoolExhausted",
    "SLOBurnFast",
    "SLOBurnSlow",
    "ProbeFailing",
    "NodeNotReady",
    "OOMKilled",
    "GCPauseLong",
    "ThreadPoolSaturated",
    "CacheMissSpike",
    "DNSErrors",
];

#[derive(Clone, Debug)]
struct Args {
    target: String,
    url: String,
    sink: SocketAddr,
    token: Option<String>,
    alerts: usize,
    services: usize,
    alertnames: usize,
    batch: usize,
    concurrency: usize,
    /// Spread the first send over this many seconds (0: as fast as accepted).
    over_secs: f64,
    resend_rounds: usize,
    /// Seconds to wait after the first send before counting notifications.
    settle_secs: u64,
    /// Seconds to wait after the resolve round for resolve notifications.
    resolve_wait_secs: u64,
    seed: u64,
    json_out: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        target: "faultline".into(),
        url: "http://127.0.0.1:8080".into(),
        sink: SocketAddr::from(([127, 0, 0, 1], 9099)),
        token: None,
        alerts: 100_000,
        services: 50,
        alertnames: 20,
        batch: 64,
        concurrency: 8,
        over_secs: 0.0,
        resend_rounds: 1,
        settle_secs: 40,
        resolve_wait_secs: 0,
        seed: 7,
        json_out: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let num = |s: String| s.parse::<usize>().map_err(|e| format!("{s}: {e}"));
        match flag.as_str() {
            "--target" => a.target = val()?,
            "--url" => a.url = val()?,
            "--sink" => a.sink = val()?.parse().map_err(|e| format!("--sink: {e}"))?,
            "--token" => a.token = Some(val()?),
            "--alerts" => a.alerts = num(val()?)?,
            "--services" => a.services = num(val()?)?,
            "--alertnames" => a.alertnames = num(val()?)?.clamp(1, ALERTNAMES.len()),
            "--batch" => a.batch = num(val()?)?.max(1),
            "--concurrency" => a.concurrency = num(val()?)?.max(1),
            "--over-secs" => a.over_secs = val()?.parse().map_err(|e| format!("--over-secs: {e}"))?,
            "--resend-rounds" => a.resend_rounds = num(val()?)?,
            "--settle-secs" => a.settle_secs = num(val()?)? as u64,
            "--resolve-wait-secs" => a.resolve_wait_secs = num(val()?)? as u64,
            "--seed" => a.seed = num(val()?)? as u64,
            "--json" => a.json_out = Some(val()?),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if !matches!(a.target.as_str(), "faultline" | "alertmanager") {
        return Err("--target must be faultline or alertmanager".into());
    }
    Ok(a)
}

/// splitmix64: a named, seeded generator (the storm is the same every run).
struct SplitMix(u64);
impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// The label sets of the storm, in send order.
fn storm_labels(a: &Args) -> Vec<BTreeMap<String, String>> {
    let per = a.alerts.div_ceil(a.services * a.alertnames).max(1);
    let mut out = Vec::with_capacity(a.alerts);
    'all: for s in 0..a.services {
        for n in ALERTNAMES.iter().take(a.alertnames) {
            for i in 0..per {
                if out.len() == a.alerts {
                    break 'all;
                }
                out.push(BTreeMap::from([
                    ("alertname".to_owned(), (*n).to_owned()),
                    ("service".to_owned(), format!("svc-{s:03}")),
                    ("instance".to_owned(), format!("10.{}.{}.{}:9100", s % 256, i / 256, i % 256)),
                    ("severity".to_owned(), if n.starts_with("SLO") || *n == "TargetDown" { "critical" } else { "warning" }.to_owned()),
                ]));
            }
        }
    }
    let mut rng = SplitMix(a.seed);
    for i in (1..out.len()).rev() {
        let j = (rng.next() % (i as u64 + 1)) as usize;
        out.swap(i, j);
    }
    out
}

fn rfc3339(t: SystemTime) -> String {
    let ms = t.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
    faultline_core::Timestamp::from_millis(ms).to_string()
}

#[derive(Default)]
struct PhaseStats {
    accepted_alerts: usize,
    requests: usize,
    retried: usize,
    failed_requests: usize,
    latencies_ms: Vec<f64>,
    wall_s: f64,
}

impl PhaseStats {
    fn pct(&self, p: f64) -> f64 {
        let mut v = self.latencies_ms.clone();
        v.sort_by(f64::total_cmp);
        if v.is_empty() {
            return f64::NAN;
        }
        v[((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1]
    }
    fn json(&self, name: &str) -> Value {
        json!({
            "phase": name,
            "accepted_alerts": self.accepted_alerts,
            "requests": self.requests,
            "retried_requests": self.retried,
            "failed_requests": self.failed_requests,
            "wall_s": self.wall_s,
            "alerts_per_s": self.accepted_alerts as f64 / self.wall_s.max(1e-9),
            "latency_ms": {"p50": self.pct(0.5), "p99": self.pct(0.99), "max": self.pct(1.0)},
        })
    }
}

/// Sends every label set once (`resolved`: with `endsAt` now), `batch` per
/// request, `concurrency` requests in flight, optionally paced over
/// `over_secs`. A 429/503 is retried after a short pause and counted.
async fn send_phase(a: &Args, client: &reqwest::Client, labels: &Arc<Vec<BTreeMap<String, String>>>, resolved: bool, over_secs: f64) -> PhaseStats {
    let batches: Vec<(usize, usize)> = (0..labels.len()).step_by(a.batch).map(|s| (s, (s + a.batch).min(labels.len()))).collect();
    let batches = Arc::new(batches);
    let next = Arc::new(AtomicUsize::new(0));
    let stats = Arc::new(Mutex::new(PhaseStats::default()));
    let start = Instant::now();
    let url = format!("{}/api/v2/alerts", a.url.trim_end_matches('/'));
    let mut tasks = Vec::new();
    for _ in 0..a.concurrency {
        let (batches, next, stats, labels, client, url) = (batches.clone(), next.clone(), stats.clone(), labels.clone(), client.clone(), url.clone());
        // Faultline's ingest needs a token (admin or ingest); Alertmanager ignores it.
        let token = a.token.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(&(s, e)) = batches.get(i) else { break };
                if over_secs > 0.0 {
                    let due = start + Duration::from_secs_f64(over_secs * i as f64 / batches.len() as f64);
                    tokio::time::sleep_until(due.into()).await;
                }
                let now = SystemTime::now();
                let (starts, ends) = if resolved {
                    (rfc3339(now - Duration::from_secs(120)), rfc3339(now))
                } else {
                    // Prometheus: endsAt = now + 4 × max(eval interval, resend delay).
                    (rfc3339(now), rfc3339(now + Duration::from_secs(240)))
                };
                let body: Vec<Value> = labels[s..e]
                    .iter()
                    .map(|l| {
                        json!({"labels": l, "annotations": {"summary": format!("{} on {}", l["alertname"], l["instance"])},
                               "startsAt": starts, "endsAt": ends, "generatorURL": "http://prometheus.example:9090/graph"})
                    })
                    .collect();
                let body = serde_json::to_vec(&body).unwrap_or_default();
                let first = Instant::now();
                let mut retries = 0;
                let ok = loop {
                    let mut req = client.post(&url).header("content-type", "application/json").body(body.clone());
                    if let Some(t) = &token {
                        req = req.bearer_auth(t);
                    }
                    let r = req.send().await;
                    match r.map(|r| r.status()) {
                        Ok(st) if st.is_success() => break true,
                        Ok(st) if (st.as_u16() == 503 || st.as_u16() == 429) && retries < 200 => {
                            retries += 1;
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        _ => break false,
                    }
                };
                let mut st = stats.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                st.requests += 1 + retries;
                st.retried += usize::from(retries > 0);
                if ok {
                    st.accepted_alerts += e - s;
                    st.latencies_ms.push(first.elapsed().as_secs_f64() * 1000.0);
                } else {
                    st.failed_requests += 1;
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let mut st = std::mem::take(&mut *stats.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
    st.wall_s = start.elapsed().as_secs_f64();
    st
}

/// What the webhook sink received.
#[derive(Default)]
struct Sink {
    requests: usize,
    /// Faultline: idempotency keys in arrival order.
    keys: Vec<String>,
    /// Alertmanager: (status, alerts in the notification).
    am: Vec<(String, usize)>,
}

async fn start_sink(addr: SocketAddr, sink: Arc<Mutex<Sink>>) -> Result<(), String> {
    let app = axum::Router::new().fallback(axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
        let sink = sink.clone();
        async move {
            let mut s = sink.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            s.requests += 1;
            if let Some(k) = headers.get("idempotency-key").and_then(|v| v.to_str().ok()) {
                s.keys.push(k.to_owned());
            } else if let Ok(v) = serde_json::from_slice::<Value>(&body) {
                let status = v["status"].as_str().unwrap_or("").to_owned();
                let n = v["alerts"].as_array().map_or(0, Vec::len);
                s.am.push((status, n));
            }
            "ok"
        }
    }));
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| format!("sink {addr}: {e}"))?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(())
}

/// Pages by (incident, step or "resolve", recipient) from Faultline keys
/// `{incident}/e{epoch}/c{cycle}/s{step}/{user}/trigger/{channel}` and
/// `{incident}/e{epoch}/{user}/resolve/{channel}`.
fn page_summary(keys: &[String]) -> Value {
    let distinct: BTreeSet<&String> = keys.iter().collect();
    let mut per_step: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut incidents = BTreeSet::new();
    let (mut triggers, mut resolves) = (0, 0);
    for k in &distinct {
        let parts: Vec<&str> = k.split('/').collect();
        incidents.insert(parts[0].to_owned());
        if k.contains("/resolve/") {
            resolves += 1;
        } else {
            triggers += 1;
            let step = parts.iter().find(|p| p.starts_with('s') && p[1..].parse::<u32>().is_ok()).copied().unwrap_or("?");
            let epoch_cycle = parts.get(1..3).map(|p| p.join("/")).unwrap_or_default();
            *per_step.entry((parts[0].to_owned(), format!("{epoch_cycle}/{step}"))).or_default() += 1;
        }
    }
    json!({
        "requests": keys.len(),
        "distinct_keys": distinct.len(),
        "duplicate_deliveries": keys.len() - distinct.len(),
        "incidents_paged": incidents.len(),
        "trigger_pages": triggers,
        "resolve_pages": resolves,
        "max_pages_per_incident_step": per_step.values().max().copied().unwrap_or(0),
    })
}

/// Sends a request and reads its JSON body; errors as text for the report.
async fn get_json(req: reqwest::RequestBuilder) -> Result<Value, String> {
    req.send().await.map_err(|e| e.to_string())?.json().await.map_err(|e| e.to_string())
}

/// Reads Faultline's incidents back: how many, and how many distinct alert
/// fingerprints are attached to them.
async fn faultline_incidents(a: &Args, client: &reqwest::Client) -> Result<Value, String> {
    let Some(token) = &a.token else { return Ok(Value::Null) };
    let base = a.url.trim_end_matches('/');
    let list = get_json(client.get(format!("{base}/api/v1/incidents?limit=1000")).bearer_auth(token)).await?;
    let incidents = list["incidents"].as_array().cloned().unwrap_or_default();
    let mut members = BTreeSet::new();
    let mut statuses: BTreeMap<String, usize> = BTreeMap::new();
    for inc in &incidents {
        *statuses.entry(inc["status"].as_str().unwrap_or("?").to_owned()).or_default() += 1;
        let id = inc["id"].as_str().unwrap_or_default();
        let v = get_json(client.get(format!("{base}/api/v1/incidents/{id}")).bearer_auth(token)).await?;
        for f in v["findings"].as_array().into_iter().flatten() {
            if let Some(m) = f["member"].as_str() {
                members.insert(m.to_owned());
            }
        }
    }
    Ok(json!({"incidents": incidents.len(), "statuses": statuses, "alerts_on_incidents": members.len()}))
}

/// Polls the incident list until the sum of incident versions (timeline
/// lengths) has not changed for two seconds: how long after the last answer
/// the server was still writing what it had accepted. With durable answers
/// this is ~0; with answers on queueing it is the backlog's drain time.
async fn drain(a: &Args, client: &reqwest::Client) -> Option<f64> {
    let token = a.token.as_ref()?;
    let url = format!("{}/api/v1/incidents?limit=1000", a.url.trim_end_matches('/'));
    let start = Instant::now();
    let (mut last, mut last_change) = (u64::MAX, start);
    loop {
        let v: Value = client.get(&url).bearer_auth(token).send().await.ok()?.json().await.ok()?;
        let sum: u64 = v["incidents"].as_array().into_iter().flatten().filter_map(|i| i["version"].as_u64()).sum();
        if sum != last {
            last = sum;
            last_change = Instant::now();
        } else if last_change.elapsed() >= Duration::from_secs(2) {
            return Some((last_change - start).as_secs_f64());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn alertmanager_alerts(a: &Args, client: &reqwest::Client) -> Result<Value, String> {
    let v = get_json(client.get(format!("{}/api/v2/alerts?active=true&silenced=true&inhibited=true", a.url.trim_end_matches('/')))).await?;
    Ok(json!({"alerts_held": v.as_array().map_or(0, Vec::len)}))
}

fn sink_summary(a: &Args, sink: &Arc<Mutex<Sink>>) -> Value {
    let s = sink.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if a.target == "faultline" {
        page_summary(&s.keys)
    } else {
        let firing = s.am.iter().filter(|(st, _)| st == "firing").count();
        json!({"notifications": s.requests, "firing": firing, "resolved": s.am.len() - firing,
               "alerts_in_notifications": s.am.iter().map(|(_, n)| n).sum::<usize>()})
    }
}

#[tokio::main]
async fn main() {
    let a = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    // reqwest is built without a default TLS provider; plain HTTP still needs one installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let sink = Arc::new(Mutex::new(Sink::default()));
    if let Err(e) = start_sink(a.sink, sink.clone()).await {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
    let client = match reqwest::Client::builder().pool_max_idle_per_host(a.concurrency).timeout(Duration::from_secs(60)).build() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    let labels = Arc::new(storm_labels(&a));
    let distinct: BTreeSet<String> = labels.iter().map(faultline_server::http::alerts::fingerprint).collect();
    eprintln!(
        "storm: {} alerts ({} distinct fingerprints) over {} services x {} alertnames, batches of {}, {} in flight, target {} at {}",
        labels.len(),
        distinct.len(),
        a.services,
        a.alertnames,
        a.batch,
        a.concurrency,
        a.target,
        a.url
    );
    let mut report = json!({"target": a.target, "alerts": labels.len(), "services": a.services, "alertnames": a.alertnames,
                            "batch": a.batch, "concurrency": a.concurrency, "over_secs": a.over_secs});
    let mut phases = Vec::new();
    let t0 = Instant::now();
    let first = send_phase(&a, &client, &labels, false, a.over_secs).await;
    let mut phase = first.json("first");
    phase["drain_after_last_answer_s"] = json!(drain(&a, &client).await);
    eprintln!("first send: {phase:#}");
    phases.push(phase);
    for round in 0..a.resend_rounds {
        let r = send_phase(&a, &client, &labels, false, 0.0).await;
        eprintln!("resend {round}: {:#}", r.json("resend"));
        phases.push(r.json("resend"));
    }
    let settle = Duration::from_secs(a.settle_secs).saturating_sub(t0.elapsed());
    eprintln!("waiting {:.0} s for notifications to settle", settle.as_secs_f64());
    tokio::time::sleep(settle).await;
    report["after_firing"] = sink_summary(&a, &sink);
    report["store"] = if a.target == "faultline" { faultline_incidents(&a, &client).await } else { alertmanager_alerts(&a, &client).await }
        .unwrap_or_else(|e| json!({"error": e}));
    eprintln!("after firing: {:#}\n{:#}", report["after_firing"], report["store"]);
    let resolve = send_phase(&a, &client, &labels, true, 0.0).await;
    eprintln!("resolve: {:#}", resolve.json("resolve"));
    phases.push(resolve.json("resolve"));
    report["phases"] = Value::Array(phases);
    if a.resolve_wait_secs > 0 {
        eprintln!("waiting {} s for resolves", a.resolve_wait_secs);
        tokio::time::sleep(Duration::from_secs(a.resolve_wait_secs)).await;
    }
    report["final"] = sink_summary(&a, &sink);
    if a.target == "faultline" {
        report["store_final"] = faultline_incidents(&a, &client).await.unwrap_or_else(|e| json!({"error": e}));
    }
    let text = format!("{report:#}");
    println!("{text}");
    if let Some(path) = &a.json_out
        && let Err(e) = std::fs::write(path, &text)
    {
        eprintln!("error: cannot write {path}: {e}");
    }
}
