//! The detection harness behind `examples/detect_scenarios` and the
//! `detect_scenarios` integration test: every built-in simulator scenario
//! (not defended) streamed window by window into `DetectorSet::standard()`
//! — `observe` per signal, `tick` at each window boundary, exactly as the
//! drills feed the pipeline — and the same world with its faults removed,
//! where every finding is a false positive.
//!
//! What it is: scoring of detectors against each scenario's expected
//! mechanism and its *visible onset* (defined per scenario in `EXPECTED`,
//! computed from the run's own series). What it is not: correlation or
//! incident scoring (that is `faultline drill`).

use faultline_core::detect::DetectorSet;
use faultline_core::{Finding, Timestamp};
use faultline_sim::scenario::{Dur, Scenario};
use faultline_sim::series::Series;

/// Virtual time 0 maps to this instant (any fixed one works).
pub const EPOCH_S: i64 = 1_800_000_000;

/// When a fault becomes visible in telemetry.
#[derive(Clone, Copy, Debug)]
pub enum Onset {
    /// The first window of the fault.
    FaultStart,
    /// The first window at or after the fault start in which calls on this
    /// interaction fail, time out, or stall (attempts sent, fewer than half
    /// answered) — a fault behind a warm cache is invisible until the cached
    /// answer expires.
    FirstFailure { caller: &'static str, callee: &'static str },
    /// A draining resource (`metric` on `subject`): the first window at or
    /// after the fault start at which the least-squares slope of the metric
    /// over the last `TREND_WINDOWS` windows is more significant than noise
    /// ever made it in the fault-free run of the same world (and t ≥ 3) —
    /// when a `deriv()` over that range first tells the trend from an hour
    /// of noise. Before that a leak is not visible in the data.
    Trend { metric: &'static str, subject: &'static str },
}

/// Scenario → the finding kinds that name its mechanism, and its onset rule.
pub const EXPECTED: &[(&str, &[&str], Onset)] = &[
    ("retry-storm", &["retry_amplification"], Onset::FaultStart),
    ("cache-stampede", &["cache_collapse"], Onset::FaultStart),
    ("cascading-failure", &["resource_exhaustion"], Onset::FaultStart),
    ("queue-overload", &["queue_growth"], Onset::FaultStart),
    ("hot-partition", &["load_skew"], Onset::FaultStart),
    ("dns-outage", &["dependency_resolution_failure"], Onset::FirstFailure { caller: "web", callee: "dns" }),
    ("discovery-failure", &["dependency_resolution_failure"], Onset::FirstFailure { caller: "checkout", callee: "discovery" }),
    ("split-brain", &["leader_conflict"], Onset::FaultStart),
    ("crash", &["error_rate_change"], Onset::FaultStart),
    ("partition", &["zone_partition"], Onset::FaultStart),
    ("byzantine", &["wrong_answers"], Onset::FaultStart),
    ("exhaustion", &["resource_exhaustion"], Onset::Trend { metric: "pool_in_use", subject: "api/db-connections" }),
    ("simpy-reference", &["retry_amplification"], Onset::FaultStart),
];

/// One finding as the harness saw it: when it was emitted (window end of
/// the signal or tick that produced it) and the finding itself.
#[derive(Clone, Debug)]
pub struct Seen {
    pub emitted_s: f64,
    pub finding: Finding,
}

impl Seen {
    pub fn label(&self) -> String {
        format!("{} {}", self.finding.kind, self.finding.subject)
    }
}

/// One scenario's result.
#[derive(Clone, Debug)]
pub struct Row {
    pub scenario: String,
    pub expected: Vec<&'static str>,
    pub window_s: f64,
    pub fault_start_s: f64,
    pub onset_s: f64,
    /// The first expected finding and its delay in windows (emission − onset).
    pub first: Option<(Seen, f64)>,
    pub findings: Vec<Seen>,
    pub fault_free_s: f64,
    pub fault_free: Vec<Seen>,
}

/// Streams a scenario through the standard detectors; returns the findings
/// with their emission times (seconds of virtual time) and the series.
pub fn detect(sc: &Scenario, seed: Option<u64>) -> (Vec<Seen>, Series) {
    let epoch = Timestamp::from_secs(EPOCH_S);
    let mut set = DetectorSet::standard();
    let mut seen = Vec::new();
    let mut last_tick = epoch;
    let secs = |t: Timestamp| (t - epoch).as_secs_f64();
    let run = faultline_sim::run::run_with_signals(sc, seed, false, epoch, |signal| {
        let at = signal.at();
        if at > last_tick {
            seen.extend(set.tick(at).into_iter().map(|f| Seen { emitted_s: secs(at), finding: f }));
            last_tick = at;
        }
        seen.extend(set.observe(&signal, at).into_iter().map(|f| Seen { emitted_s: secs(at), finding: f }));
    });
    (seen, run.series)
}

/// Windows at the start of a run in which the world fills up from empty
/// (a ramp that is neither noise nor fault); trend fits leave them out.
pub const WARMUP_WINDOWS: u32 = 10;

/// Fewest points of a trend fit.
pub const MIN_FIT: usize = 10;

/// (window, start s, value) of a metric after the warm-up.
fn steady(series: &Series, metric: &str, subject: &str) -> Vec<(u32, f64, f64)> {
    series.metric(metric, subject).into_iter().filter(|r| r.window >= WARMUP_WINDOWS).map(|r| (r.window, series.window_start_s(r.window), r.value)).collect()
}

/// The t statistic of the trailing `TREND_WINDOWS`-point fit ending at `i`
/// (0 with fewer than `MIN_FIT` points: a handful of points is no trend).
fn trailing_t(pts: &[(u32, f64, f64)], i: usize) -> f64 {
    if i + 1 < MIN_FIT {
        return 0.0;
    }
    let fit: Vec<(f64, f64)> = pts[(i + 1).saturating_sub(TREND_WINDOWS)..=i].iter().map(|p| (p.1, p.2)).collect();
    slope_t(&fit)
}

/// The largest trailing-fit t statistic of a metric anywhere in a series
/// (after the warm-up).
pub fn max_trend_t(series: &Series, metric: &str, subject: &str) -> f64 {
    let pts = steady(series, metric, subject);
    (0..pts.len()).map(|i| trailing_t(&pts, i)).fold(0.0, f64::max)
}

/// The visible onset in seconds of virtual time (start of the first window
/// in which the fault shows), by the scenario's rule; `quiet` is the same
/// world's fault-free series (the noise a trend must beat).
pub fn onset_s(rule: Onset, series: &Series, quiet: &Series, fault_start_s: f64) -> f64 {
    let ws = series.window_s;
    let first_window = (fault_start_s / ws).floor() as u32;
    match rule {
        Onset::FaultStart => fault_start_s,
        Onset::FirstFailure { caller, callee } => series
            .edge(caller, callee)
            .into_iter()
            .filter(|r| r.window >= first_window)
            .find(|r| r.errors + r.timeouts + r.rejected > 0 || (r.attempts > 0 && 2 * (r.ok + r.errors + r.timeouts) < r.attempts))
            .map_or(fault_start_s, |r| series.window_start_s(r.window)),
        Onset::Trend { metric, subject } => {
            let noise = max_trend_t(quiet, metric, subject).max(3.0);
            let pts = steady(series, metric, subject);
            (0..pts.len()).filter(|&i| pts[i].0 >= first_window).find(|&i| trailing_t(&pts, i) > noise).map_or(fault_start_s, |i| pts[i].1)
        }
    }
}

/// Windows of the least-squares fit that decides a trend's visibility.
pub const TREND_WINDOWS: usize = 30;

/// The t statistic of an ordinary least-squares slope, its standard error
/// widened for lag-1 autocorrelation of the residuals (pools and queues are
/// autocorrelated; the plain t overstates significance) — 0 when undefined.
/// Written out here rather than borrowed from the detector under test.
pub fn slope_t(pts: &[(f64, f64)]) -> f64 {
    let n = pts.len() as f64;
    if n < 3.0 {
        return 0.0;
    }
    let mx = pts.iter().map(|p| p.0).sum::<f64>() / n;
    let my = pts.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    if sxx <= 0.0 {
        return 0.0;
    }
    let slope = sxy / sxx;
    let res: Vec<f64> = pts.iter().map(|p| p.1 - my - slope * (p.0 - mx)).collect();
    let ss: f64 = res.iter().map(|r| r * r).sum();
    let rho = if ss > 0.0 { (res.windows(2).map(|w| w[0] * w[1]).sum::<f64>() / ss).clamp(0.0, 0.9) } else { 0.0 };
    let se = (ss / (n - 2.0) / sxx * (1.0 + rho) / (1.0 - rho)).sqrt();
    if se > 0.0 {
        slope / se
    } else if slope > 0.0 {
        f64::INFINITY
    } else {
        0.0
    }
}

/// Runs one built-in scenario (seed 1, not defended) and its fault-free
/// world for `fault_free_s` seconds of virtual time.
pub fn run(name: &str, fault_free_s: f64) -> Result<Row, String> {
    run_seeded(name, fault_free_s, 1)
}

/// `run` with another simulator seed.
pub fn run_seeded(name: &str, fault_free_s: f64, seed: u64) -> Result<Row, String> {
    let (_, kinds, rule) = EXPECTED.iter().find(|(n, ..)| *n == name).ok_or_else(|| format!("no expectation for {name}"))?;
    let sc = faultline_sim::builtin::load(name, false).ok_or_else(|| format!("no built-in scenario {name}"))?.map_err(|e| e.to_string())?;
    let fault_start_s = sc.faults.iter().map(|f| f.at.0).reduce(f64::min).unwrap_or(0.0);
    let (findings, series) = detect(&sc, Some(seed));
    let mut quiet = sc.clone();
    quiet.faults.clear();
    quiet.duration = Dur(fault_free_s);
    let (fault_free, quiet_series) = detect(&quiet, Some(seed));
    let onset = onset_s(*rule, &series, &quiet_series, fault_start_s);
    let ws = series.window_s;
    let first = findings
        .iter()
        .filter(|s| kinds.contains(&s.finding.kind.as_str()) && s.emitted_s > fault_start_s)
        .min_by(|a, b| a.emitted_s.total_cmp(&b.emitted_s))
        .map(|s| (s.clone(), ((s.emitted_s - onset) / ws).round()));
    Ok(Row { scenario: name.to_owned(), expected: kinds.to_vec(), window_s: ws, fault_start_s, onset_s: onset, first, findings, fault_free_s, fault_free })
}

/// Every scenario in `EXPECTED`, in order.
pub fn run_all(fault_free_s: f64) -> Result<Vec<Row>, String> {
    EXPECTED.iter().map(|(n, ..)| run(n, fault_free_s)).collect()
}

/// The markdown table of docs/benchmarks.md.
pub fn render(rows: &[Row]) -> String {
    let mut s = String::from(
        "| scenario | expected | onset (fault start) | first expected finding | delay (windows) | other findings (delay) | false positives fault-free |\n|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let (first, delay) = match &r.first {
            Some((seen, d)) => (seen.label(), format!("{d:.0}")),
            None => ("**none**".to_owned(), "–".to_owned()),
        };
        let mut others: Vec<String> = Vec::new();
        for f in r.findings.iter().filter(|f| !r.expected.contains(&f.finding.kind.as_str())) {
            let l = format!("{} ({:.0})", f.label(), (f.emitted_s - r.onset_s) / r.window_s);
            if !others.contains(&l) && others.len() < 4 {
                others.push(l);
            }
        }
        let fp = if r.fault_free.is_empty() {
            "0".to_owned()
        } else {
            let mut l: Vec<String> = r.fault_free.iter().map(|f| format!("{} at {:.0}s", f.label(), f.emitted_s)).collect();
            l.truncate(3);
            format!("{} ({})", r.fault_free.len(), l.join("; "))
        };
        s.push_str(&format!(
            "| {} | {} | {:.0} s ({:.0} s) | {} | {} | {} | {} in {:.0} s |\n",
            r.scenario,
            r.expected.join(", "),
            r.onset_s,
            r.fault_start_s,
            first,
            delay,
            if others.is_empty() { "–".to_owned() } else { others.join(", ") },
            fp,
            r.fault_free_s,
        ));
    }
    s
}
